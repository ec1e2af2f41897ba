//! A `srv-N->redis` link fault in containers, as shell scripts run inside
//! them: drops and resets by iptables in the replica's container, delay and
//! rate by tc netem on each side's egress towards the other. Each script
//! first clears what an earlier one set, so a heal is a script too.

use std::net::IpAddr;

use crate::proxy::{LinkState, Toxics};

/// The replica's side of a `srv-N->redis` link: up is what it sends to
/// Redis (OUTPUT, egress shaping), down what it receives (INPUT).
pub fn replica_script(state: &LinkState, redis: IpAddr) -> String {
    let mut lines = Vec::new();
    let rules = [
        ("OUTPUT", "-d", &state.upstream),
        ("INPUT", "-s", &state.downstream),
    ];
    for (chain, side, toxics) in rules {
        if state.reset {
            lines.push(format!(
                "iptables -A {chain} -p tcp {side} {redis} -j REJECT --reject-with tcp-reset"
            ));
        } else if toxics.blackhole {
            lines.push(format!("iptables -A {chain} {side} {redis} -j DROP"));
        }
    }
    let mut script = heal();
    for line in lines {
        script.push_str(&line);
        script.push('\n');
    }
    append_shaping(&mut script, &state.upstream, redis);
    script
}

/// Redis's side: only egress shaping (its rules would cut every replica).
pub fn shaping_script(toxics: &Toxics, replica: IpAddr) -> String {
    let mut script = heal();
    append_shaping(&mut script, toxics, replica);
    script
}

/// Clears earlier rules (there may be none); what follows must succeed.
pub fn heal() -> String {
    "iptables -F INPUT; iptables -F OUTPUT; tc qdisc del dev eth0 root 2>/dev/null\nset -e\n".into()
}

/// tc netem on eth0 for traffic to `peer` only (a prio qdisc whose third
/// band is delayed, selected by destination).
fn append_shaping(script: &mut String, toxics: &Toxics, peer: IpAddr) {
    let mut netem = String::new();
    if !toxics.latency.is_zero() {
        netem.push_str(&format!(
            " delay {}ms {}ms",
            toxics.latency.as_millis(),
            toxics.jitter.as_millis()
        ));
    }
    if let Some(rate) = toxics.rate {
        netem.push_str(&format!(" rate {}kbit", (rate * 8 / 1000).max(1)));
    }
    if netem.is_empty() {
        return;
    }
    script.push_str(&format!(
        "tc qdisc add dev eth0 root handle 1: prio\n\
         tc qdisc add dev eth0 parent 1:3 handle 30: netem{netem}\n\
         tc filter add dev eth0 parent 1:0 protocol ip prio 1 u32 match ip dst {peer}/32 flowid 1:3\n"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const REDIS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(172, 18, 0, 2));

    #[test]
    fn a_partition_drops_both_ways_and_a_heal_clears_everything() {
        let cut = Toxics {
            blackhole: true,
            ..Toxics::default()
        };
        let state = LinkState {
            upstream: cut,
            downstream: cut,
            reset: false,
        };
        let script = replica_script(&state, REDIS);
        assert!(script.starts_with("iptables -F INPUT; iptables -F OUTPUT;"));
        assert!(script.contains("iptables -A OUTPUT -d 172.18.0.2 -j DROP"));
        assert!(script.contains("iptables -A INPUT -s 172.18.0.2 -j DROP"));
        assert!(!script.contains("netem"));
        let healed = replica_script(&LinkState::default(), REDIS);
        assert_eq!(healed, heal(), "a healed link is only the clearing");
    }

    #[test]
    fn a_reset_rejects_with_tcp_resets() {
        let state = LinkState {
            reset: true,
            ..LinkState::default()
        };
        let script = replica_script(&state, REDIS);
        assert!(script.contains("-p tcp -d 172.18.0.2 -j REJECT --reject-with tcp-reset"));
        assert!(script.contains("-p tcp -s 172.18.0.2 -j REJECT --reject-with tcp-reset"));
    }

    #[test]
    fn latency_and_rate_shape_only_traffic_to_the_peer() {
        let slow = Toxics {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(10),
            rate: Some(125_000),
            ..Toxics::default()
        };
        let script = shaping_script(&slow, REDIS);
        assert!(script.contains("netem delay 100ms 10ms rate 1000kbit"));
        assert!(script.contains("match ip dst 172.18.0.2/32 flowid 1:3"));
        assert_eq!(shaping_script(&Toxics::default(), REDIS), heal());
    }
}
