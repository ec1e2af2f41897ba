//! The server on a real Redis Cluster (three masters, three replicas):
//! rooms spread over the shards and fan out across replicas through sharded
//! pub/sub only; a master killed under a live room fails over to its replica
//! and nothing acknowledged is lost, duplicated or reordered.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::redis_cluster::RedisCluster;
use support::{seqs, Client, Replica};
use tierlab_protocol::{ClientFrame, Data, ServerFrame};

async fn replica(cluster: &RedisCluster, id: &str, extra: &[&str]) -> Replica {
    let nodes = cluster.nodes();
    let mut args = vec!["--redis-cluster", nodes.as_str(), "--server-id", id];
    args.extend_from_slice(extra);
    Replica::start(&args).await
}

fn seq_key(room: &str) -> String {
    format!("{{room:{room}}}:seq")
}

fn channel(room: &str) -> String {
    format!("{{room:{room}}}:events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_spread_over_shards_and_fan_out_by_sharded_pubsub() {
    let cluster = RedisCluster::start();
    let a = replica(&cluster, "srv-a", &[]).await;
    let b = replica(&cluster, "srv-b", &[]).await;
    let mut owners = HashSet::new();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let mut on_a = Client::connect(&a.ws()).await;
        let mut on_b = Client::connect(&b.ws()).await;
        let room = on_a.create(4).await;
        on_a.join(&room, "a").await;
        on_b.join(&room, "b").await;
        owners.insert(cluster.owner(&seq_key(&room)).unwrap());
        clients.push((room, on_a, on_b));
    }
    assert!(owners.len() >= 2, "8 rooms all on one shard: {owners:?}");

    for (room, on_a, on_b) in &mut clients {
        let mut back = Vec::new();
        for id in 1..=3 {
            back.extend(on_a.act(id, "\"from a\"").await.1);
        }
        assert_eq!(seqs(&on_b.events(3).await), vec![1, 2, 3], "{room}");
        on_b.act(1, "\"from b\"").await;
        let rest = on_a.events(4 - back.len()).await;
        back.extend(rest);
        assert_eq!(seqs(&back), vec![1, 2, 3, 4], "{room}");
        assert_eq!(back[3].data.get(), "\"from b\"");
    }

    // The room's channel is a shard channel on the master that owns the room,
    // and no classic channel exists anywhere (a PUBLISH would reach every node).
    let (room, ..) = &clients[0];
    let owner = cluster.owner(&seq_key(room)).unwrap();
    let shard_channels = cluster.ask(owner, &["PUBSUB", "SHARDCHANNELS"]);
    assert!(shard_channels.contains(&channel(room)), "{shard_channels}");
    for &port in &cluster.ports {
        assert_eq!(
            cluster.ask(port, &["PUBSUB", "CHANNELS"]).trim(),
            "",
            "node {port}"
        );
    }
}

/// Acts until `want` of them are acknowledged after `since`, tolerating
/// `unavailable` while the cluster fails over; returns every acked seq.
async fn act_through(
    sender: &mut Client,
    first_id: u64,
    want_after: usize,
    since: Instant,
) -> Vec<u64> {
    let mut acked = Vec::new();
    let mut after = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut id = first_id;
    while after < want_after {
        assert!(
            Instant::now() < deadline,
            "acks did not come back: {acked:?}"
        );
        sender
            .send(&ClientFrame::Act {
                id,
                data: Data::from_json(format!("{id}")).unwrap(),
                key: None,
            })
            .await;
        loop {
            match sender.recv().await {
                ServerFrame::Ack { id: got, seq } if got == id => {
                    acked.push(seq);
                    if Instant::now() > since {
                        after += 1;
                    }
                    break;
                }
                ServerFrame::Error { id: Some(got), .. } if got == id => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
                ServerFrame::Event(_) | ServerFrame::Ack { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        id += 1;
    }
    acked
}

/// Every event a member got until `last` arrives: strictly increasing seqs.
async fn received_until(member: &mut Client, last: u64) -> Vec<u64> {
    let mut got = Vec::new();
    while got.last() < Some(&last) {
        got.push(member.event().await.seq);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_a_live_room_loses_nothing_acked() {
    let mut cluster = RedisCluster::start();
    let wait = ["--redis-wait-replicas", "1", "--heartbeat", "300ms"];
    let a = replica(&cluster, "srv-a", &wait).await;
    let b = replica(&cluster, "srv-b", &wait).await;
    let mut sender = Client::connect(&a.ws()).await;
    let mut near = Client::connect(&a.ws()).await;
    let mut far = Client::connect(&b.ws()).await;
    let room = sender.create(4).await;
    sender.join(&room, "sender").await;
    near.join(&room, "near").await;
    far.join(&room, "far").await;

    // On a busy machine a healthy cluster's WAIT may still time out: that
    // act is refused, though written, and takes a seq no ack names.
    let before = act_through(&mut sender, 1, 5, Instant::now()).await;
    assert!(before.windows(2).all(|w| w[0] < w[1]), "{before:?}");
    let old = cluster.owner(&seq_key(&room)).unwrap();
    cluster.kill(old);
    let killed_at = Instant::now();
    let new = cluster.wait_failover(&seq_key(&room), old);
    assert_ne!(new, old);
    // The promoted replica has no replica of its own: acks wait (and fail
    // as `unavailable`) until the old master is back as its replica.
    cluster.restart(old);
    let after = act_through(&mut sender, 100, 5, killed_at + Duration::from_millis(1)).await;

    let acked: Vec<u64> = before.into_iter().chain(after).collect();
    let last = *acked.last().unwrap();
    for (name, member) in [("near", &mut near), ("far", &mut far)] {
        let got = received_until(member, last).await;
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{name}: out of order or duplicated: {got:?}"
        );
        let missing: Vec<u64> = acked.iter().filter(|s| !got.contains(s)).copied().collect();
        assert_eq!(
            missing,
            Vec::<u64>::new(),
            "{name} lost acked events; got {got:?}"
        );
    }
    let health = support::get_json(&b.http("/health")).await;
    assert_eq!(health["redis"]["status"], "up", "{health}");
}
