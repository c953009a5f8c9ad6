//! MergeScheduler under random announce / completion sequences: bounded
//! fan-out, no re-pull of a version already taken, no pulls from peers whose
//! updates keep being rejected, only fresh digests of our model kind.
//!
//! `PROPTEST_CASES=5000 cargo test -p shoal-protocol --test merge_props` for more.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use shoal_protocol::*;

#[derive(Debug, Clone)]
enum Ev {
    Announce {
        peer: u64,
        version: u64,
        other_kind: bool,
    },
    Done {
        pick: usize,
        outcome: u8,
    },
    Local {
        version: u64,
    },
    Wait {
        ms: u64,
    },
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (1u64..6, 0u64..8, prop::bool::weighted(0.1)).prop_map(|(peer, version, other_kind)| {
            Ev::Announce {
                peer,
                version,
                other_kind,
            }
        }),
        (0usize..4, 0u8..3).prop_map(|(pick, outcome)| Ev::Done { pick, outcome }),
        (0u64..5).prop_map(|version| Ev::Local { version }),
        (1u64..100_000).prop_map(|ms| Ev::Wait { ms }),
    ]
}

fn digest(kind: &str, peer: u64, version: u64) -> ModelDigest {
    let mut h = [0u8; 32];
    h[0] = peer as u8;
    h[1] = version as u8;
    ModelDigest {
        kind: kind.try_into().unwrap(),
        version,
        hash: Hash(h),
        size: 10,
        samples: version,
        accuracy_bp: 0,
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), .. ProptestConfig::default() })]

    #[test]
    fn scheduler_invariants(events in prop::collection::vec(ev(), 1..80)) {
        let cfg = MergeConfig::default();
        let me = NodeId::from_u64(0);
        let mut s = MergeScheduler::new(me, "nb".try_into().unwrap(), cfg.clone());
        let mut now = Millis(0);
        // What is in flight, what was taken, what was heard (for staleness).
        let mut flight: Vec<(NodeId, ModelDigest, Millis)> = Vec::new();
        let mut taken: BTreeSet<(NodeId, u64)> = BTreeSet::new();
        let mut heard: BTreeMap<(NodeId, u64), Millis> = BTreeMap::new();
        for e in events {
            let acts = match e {
                Ev::Announce { peer, version, other_kind } => {
                    let kind = if other_kind { "tree" } else { "nb" };
                    let d = digest(kind, peer, version);
                    if !other_kind {
                        heard.insert((NodeId::from_u64(peer), version), now);
                    }
                    s.on_announce(NodeId::from_u64(peer), &d, now)
                }
                Ev::Done { pick, outcome } => {
                    if flight.is_empty() {
                        s.on_tick(now)
                    } else {
                        let (p, d, _) = flight.remove(pick % flight.len());
                        let o = [PullOutcome::Merged, PullOutcome::Rejected, PullOutcome::Failed][outcome as usize];
                        match o {
                            PullOutcome::Merged | PullOutcome::Rejected => {
                                taken.insert((p, d.version));
                            }
                            PullOutcome::Failed => {}
                        }
                        s.on_pull_done(p, d.hash, o, now)
                    }
                }
                Ev::Local { version } => s.set_local(digest("nb", 0, version), now),
                Ev::Wait { ms } => {
                    now = now.plus(ms);
                    // Pulls that timed out are no longer in flight.
                    flight.retain(|(_, _, t)| now.since(*t) < cfg.pull_timeout_ms);
                    s.on_tick(now)
                }
            };
            for a in acts {
                match a {
                    Action::FetchModel { from, digest } => {
                        prop_assert!(from != me);
                        prop_assert_eq!(digest.kind.as_str(), "nb");
                        prop_assert!(!taken.contains(&(from, digest.version)), "re-pull of a taken version");
                        let h = heard.get(&(from, digest.version)).copied();
                        prop_assert!(h.is_some_and(|t| now.since(t) <= cfg.max_digest_age_ms), "stale digest pulled");
                        prop_assert!(!flight.iter().any(|(p, _, _)| *p == from), "two pulls from one peer");
                        // Peers whose updates keep being rejected are left alone.
                        prop_assert!(s.score(&from) >= cfg.min_score);
                        flight.push((from, digest, now));
                    }
                    Action::Broadcast { msg } => {
                        let is_announce = matches!(msg, GossipMessage::ModelAnnounce { .. });
                        prop_assert!(is_announce);
                    }
                    Action::SetTimer { at } => prop_assert!(at >= now || at == Millis(0)),
                    _ => prop_assert!(false, "unexpected action"),
                }
            }
            prop_assert!(flight.len() <= cfg.fanout, "fan-out exceeded");
            prop_assert_eq!(s.in_flight(), flight.len());
        }
    }
}
