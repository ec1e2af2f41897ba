//! The reference server as a container (the tierlab/server and tierlab/redis
//! images `just images` builds; nothing is pulled), beside a replica on the
//! host: both halves of one room, across a container network and the host.
//! Skipped, with one line saying so, where no Docker engine answers.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;

use support::{seqs, wait_ready, Client, Replica, WAIT};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_in_a_container_serves_a_room_with_one_on_the_host() {
    if !support::docker::docker_engine_answers() {
        return;
    }
    let network = format!("tierlab-server-test-{}", std::process::id());
    let redis_name = format!("{network}-redis");
    let redis = GenericImage::new("tierlab/redis", "latest")
        .with_cmd(["--appendonly", "no"])
        .with_network(&network)
        .with_container_name(&redis_name)
        .with_host_config_modifier(|host| host.publish_all_ports = Some(false))
        .start()
        .await
        .expect("tierlab/redis runs (built by `just images`)");
    let redis_ip = redis.get_bridge_ip_address().await.unwrap();
    let boxed = GenericImage::new("tierlab/server", "latest")
        .with_cmd([
            "--server-id",
            "srv-box",
            "--redis-url",
            &format!("redis://{redis_name}:6379"),
        ])
        .with_network(&network)
        .with_container_name(format!("{network}-srv"))
        .with_host_config_modifier(|host| host.publish_all_ports = Some(false))
        .start()
        .await
        .expect("tierlab/server runs (built by `just images`)");
    let boxed_addr = SocketAddr::new(boxed.get_bridge_ip_address().await.unwrap(), 8080);
    wait_ready(boxed_addr).await;
    let redis_url = format!("redis://{redis_ip}:6379");
    let host = Replica::start(&["--redis-url", &redis_url, "--server-id", "srv-host"]).await;

    let mut inside = Client::connect(&format!("ws://{boxed_addr}/ws")).await;
    let mut outside = Client::connect(&host.ws()).await;
    let room = inside.create(10).await;
    inside.join(&room, "inside").await;
    outside.join(&room, "outside").await;

    let (first, _) = inside.act(1, "\"from the container\"").await;
    let heard = outside.events(1).await;
    assert_eq!(seqs(&heard), vec![first]);
    assert_eq!(heard[0].data.get(), "\"from the container\"");

    let (second, _) = outside.act(2, "\"from the host\"").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, inside.event())
            .await
            .expect("the container's player hears the host's act");
        if event.seq == second {
            assert_eq!(event.data.get(), "\"from the host\"");
            break;
        }
    }
    // The container's replica reports the room's player on /health.
    let health = support::get_json(&format!("http://{boxed_addr}/health")).await;
    assert_eq!(health["connections"], 1, "{health}");
}
