//! Virtual-IP decisions (DESIGN.md §6), pure: no clocks, no sockets. The leader's
//! [`plan`] turns the state, the members it hears from and its clock into the commands
//! that keep every configured VIP on exactly one healthy node; each node's [`held`] says
//! which addresses it may hold right now and for how long the kernel should keep them.
//!
//! Safety rests on leases: a holder keeps an address only while its lease runs (the kernel
//! removes it by itself when the lease is not renewed: `valid_lft`), and the leader gives a
//! VIP to another node only after the previous lease has ended plus [`MARGIN_MS`] (clock
//! skew between members and the holder's delay in seeing a renewal). `AssignVip` is
//! refused by the state machine while another node's lease runs, whatever a (stale) leader
//! proposes. Nodes need synchronised clocks (NTP) to within the margin.

pub mod agent;
pub mod kernel;

use std::collections::BTreeSet;

use crate::state::{Command, State};

/// How long one lease runs.
pub const LEASE_MS: u64 = 2_000;
/// The leader renews a lease when less than this is left (so about every 0.5 s). Above
/// one second: a holder sets the kernel lifetime in whole seconds, rounded down, and must
/// never see its lease fall under one second while the leader is alive.
pub const RENEW_BELOW_MS: u64 = 1_500;
/// After a lease ends, how long before the VIP may go to another node.
pub const MARGIN_MS: u64 = 300;

/// The leader's commands for this moment. `live` are the members it heard from recently
/// (itself included); `now_ms` is its clock.
pub fn plan(state: &State, live: &BTreeSet<u64>, now_ms: u64) -> Vec<Command> {
    let eligible: BTreeSet<u64> = live
        .iter()
        .copied()
        .filter(|n| state.members.contains_key(n) && !state.unhealthy.contains_key(n))
        .collect();
    // How many VIPs each node holds, to spread new assignments (active-active).
    let mut load: std::collections::BTreeMap<u64, usize> =
        eligible.iter().map(|n| (*n, 0)).collect();
    for a in state.vips.values() {
        if let Some(c) = load.get_mut(&a.node) {
            *c += 1;
        }
    }
    let assign = |vip: &str, node: u64| Command::AssignVip {
        vip: vip.to_owned(),
        node,
        lease_until_ms: now_ms + LEASE_MS,
        now_ms,
    };
    let mut out = Vec::new();
    for (vip, config) in &state.vip_config {
        let current = state.vips.get(vip);
        let moving_away = current.is_some_and(|a| {
            config
                .move_to
                .is_some_and(|to| to != a.node && eligible.contains(&to))
        });
        match current {
            // The holder is fine: renew when due (unless the admin moves the VIP away).
            Some(a) if eligible.contains(&a.node) && !moving_away => {
                if a.lease_until_ms.saturating_sub(now_ms) < RENEW_BELOW_MS {
                    out.push(assign(vip, a.node));
                }
            }
            // A lease of a node that is gone, sick or being moved away from must end
            // (and the margin pass) before anyone else may take the address.
            Some(a) if now_ms < a.lease_until_ms + MARGIN_MS => {}
            _ => {
                let target = config
                    .move_to
                    .filter(|n| eligible.contains(n))
                    .or_else(|| {
                        config
                            .preferred
                            .iter()
                            .copied()
                            .find(|n| eligible.contains(n))
                    })
                    .or_else(|| {
                        load.iter()
                            .min_by_key(|(node, count)| (**count, **node))
                            .map(|(node, _)| *node)
                    });
                if let Some(node) = target {
                    out.push(assign(vip, node));
                    if let Some(c) = load.get_mut(&node) {
                        *c += 1;
                    }
                    if config.move_to == Some(node) {
                        // The move is done; the admin's choice stays as the preference.
                        let mut done = config.clone();
                        done.move_to = None;
                        done.preferred.retain(|n| *n != node);
                        done.preferred.insert(0, node);
                        out.push(Command::PutVip {
                            address: vip.clone(),
                            config: done,
                        });
                    }
                }
            }
        }
    }
    out
}

/// The addresses node `me` may hold at `now_ms` (its clock), with the whole seconds the
/// kernel should keep each (`valid_lft`, rounded down so the kernel drops it no later than
/// the lease ends). An address not listed must not be on the node.
pub fn held(state: &State, me: u64, now_ms: u64) -> Vec<(String, String, u32)> {
    state
        .vips
        .iter()
        .filter(|(_, a)| a.node == me && a.lease_until_ms > now_ms)
        .filter_map(|(vip, a)| {
            let secs = u32::try_from((a.lease_until_ms - now_ms) / 1000).ok()?;
            let config = state.vip_config.get(vip)?;
            (secs > 0).then(|| (vip.clone(), config.interface.clone(), secs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Outcome, VipConfig, apply};

    const VIP: &str = "198.18.0.100/24";

    fn cluster(vips: &[(&str, &[u64])]) -> State {
        let mut s = State::default();
        for id in 1..=3 {
            apply(
                &mut s,
                &Command::PutMember {
                    id,
                    addr: format!("10.0.0.{id}:7946"),
                },
            );
        }
        for (vip, preferred) in vips {
            apply(
                &mut s,
                &Command::PutVip {
                    address: (*vip).into(),
                    config: VipConfig {
                        interface: "eth0".into(),
                        preferred: preferred.to_vec(),
                        move_to: None,
                    },
                },
            );
        }
        s
    }

    fn live(nodes: &[u64]) -> BTreeSet<u64> {
        nodes.iter().copied().collect()
    }

    /// Runs the leader's plan and applies it, as the cluster would.
    fn step(s: &mut State, alive: &[u64], now: u64) {
        for c in plan(s, &live(alive), now) {
            assert_eq!(apply(s, &c), Outcome::Done, "{c:?}");
        }
    }

    fn holder(s: &State, vip: &str) -> Option<u64> {
        s.vips.get(vip).map(|a| a.node)
    }

    #[test]
    fn preferred_node_gets_it_and_renews() {
        let mut s = cluster(&[(VIP, &[2])]);
        step(&mut s, &[1, 2, 3], 0);
        assert_eq!(holder(&s, VIP), Some(2));
        assert_eq!(held(&s, 2, 0), [(VIP.into(), "eth0".into(), 2)]);
        assert!(held(&s, 1, 0).is_empty());
        // Not yet due for renewal, then due.
        assert!(plan(&s, &live(&[1, 2, 3]), 500).is_empty());
        step(&mut s, &[1, 2, 3], 1_500);
        assert_eq!(s.vips[VIP].lease_until_ms, 3_500);
    }

    #[test]
    fn a_dead_holder_is_replaced_only_after_its_lease_and_the_margin() {
        let mut s = cluster(&[(VIP, &[2, 3])]);
        step(&mut s, &[1, 2, 3], 0);
        // Node 2 dies at 100 ms: no renewal, nobody else until 2,000 + margin.
        for now in [100, 1_000, 1_999, 2_000, 2_000 + MARGIN_MS - 1] {
            step(&mut s, &[1, 3], now);
            assert_eq!(holder(&s, VIP), Some(2), "at {now} ms");
        }
        // Its own view: it must drop the address when the lease ends.
        assert!(held(&s, 2, 2_000).is_empty());
        step(&mut s, &[1, 3], 2_000 + MARGIN_MS);
        assert_eq!(holder(&s, VIP), Some(3), "the next preferred node");
        // Node 2 comes back: the VIP stays where it is.
        step(&mut s, &[1, 2, 3], 3_000);
        assert_eq!(holder(&s, VIP), Some(3));
    }

    #[test]
    fn an_unhealthy_holder_loses_it_and_several_vips_spread() {
        let mut s = cluster(&[("a/24", &[]), ("b/24", &[]), ("c/24", &[])]);
        step(&mut s, &[1, 2, 3], 0);
        let holders: BTreeSet<u64> = ["a/24", "b/24", "c/24"]
            .iter()
            .filter_map(|v| holder(&s, v))
            .collect();
        assert_eq!(holders.len(), 3, "one VIP per node");
        let sick = holder(&s, "a/24").expect("holder");
        apply(
            &mut s,
            &Command::SetHealth {
                node: sick,
                reason: "downstream unreachable".into(),
            },
        );
        step(&mut s, &[1, 2, 3], 1_500);
        assert_eq!(holder(&s, "a/24"), Some(sick), "not renewed, not moved yet");
        step(&mut s, &[1, 2, 3], 2_000 + MARGIN_MS);
        assert_ne!(holder(&s, "a/24"), Some(sick));
    }

    #[test]
    fn the_admin_moves_a_vip_and_it_stays() {
        let mut s = cluster(&[(VIP, &[1])]);
        step(&mut s, &[1, 2, 3], 0);
        let mut c = s.vip_config[VIP].clone();
        c.move_to = Some(3);
        apply(
            &mut s,
            &Command::PutVip {
                address: VIP.into(),
                config: c,
            },
        );
        step(&mut s, &[1, 2, 3], 1_500);
        assert_eq!(holder(&s, VIP), Some(1), "the old lease runs out first");
        step(&mut s, &[1, 2, 3], 2_000 + MARGIN_MS);
        assert_eq!(holder(&s, VIP), Some(3));
        assert_eq!(s.vip_config[VIP].move_to, None);
        assert_eq!(s.vip_config[VIP].preferred, [3, 1]);
    }

    /// Leaders with clocks up to 200 ms ahead (less than the margin) and members coming
    /// and going: a VIP never moves before the previous lease has ended in true time.
    #[test]
    fn never_two_holders_under_random_leaders_and_failures() {
        let mut seed: u64 = 0x5eed;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut s = cluster(&[("a/24", &[1]), ("b/24", &[2])]);
        let mut now = 0;
        for _ in 0..2_000 {
            now += 50 + rand(400);
            let alive: Vec<u64> = (1..=3).filter(|_| rand(5) != 0).collect();
            // A stale leader with a clock up to 200 ms off.
            let skewed = now + rand(200);
            let before = s.vips.clone();
            for c in plan(&s, &live(&alive), skewed) {
                apply(&mut s, &c);
            }
            for (vip, a) in &s.vips {
                if let Some(b) = before.get(vip)
                    && b.node != a.node
                {
                    assert!(
                        b.lease_until_ms <= now,
                        "{vip} moved from {} to {} inside a lease",
                        b.node,
                        a.node
                    );
                }
            }
        }
    }
}
