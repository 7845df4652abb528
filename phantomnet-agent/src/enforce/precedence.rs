//! The precedence rule between what is in force on a source and what a
//! detection proposes. Pure, so every case is unit-tested; the executor
//! reads what is in force from the pinned maps and its DECEIVE index and
//! carries out the verdict.
//!
//! The rule (docs/CONTROL.md, "Precedence"):
//! - An operator's or orchestrator's rule is never weakened, shortened or
//!   rewritten by a detection. A detection may add its own, more specific
//!   host entry when that makes the source's treatment stricter or longer.
//! - Between detections, the stronger action or the longer expiry wins.
//! - Only an explicit operator command shortens or removes a rule.
//! - Strength: BLOCK > DECEIVE > THROTTLE > LOG; a THROTTLE is stronger
//!   than another THROTTLE when its rate is lower.
use std::time::Duration;

use phantomnet_common::ReasonCode;

use crate::{dataplane::Covering, decide::Action};

/// What covers the source now.
#[derive(Clone, Copy, Debug, Default)]
pub struct InForce {
    pub block: Option<Covering>,
    pub throttle: Option<Covering>,
    /// Deceived (host or covering prefix), with time left (`None`: no timeout).
    pub deceive: Option<Option<Duration>>,
}

/// What the executor does with a detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write (or refresh) the detector's own host entry for `action`.
    Write,
    /// Something at least as strong and long is in force: change nothing.
    Keep { in_force: Action },
}

fn detector_host(c: &Covering, host: bool) -> bool {
    host && c.reason == ReasonCode::Detection
}

/// Whether an own entry with `remaining` left is due for a refresh to `ttl`:
/// only past half its life, and never to a shorter expiry.
fn stale(remaining: Option<Duration>, ttl: Duration) -> bool {
    remaining.is_some_and(|r| r < ttl / 2)
}

/// `host_len_of(c)` tells whether a covering entry is the source's own host entry.
pub fn verdict(
    proposed: Action,
    ttl: Duration,
    rate_pps: u32,
    now: &InForce,
    is_host: impl Fn(&Covering) -> bool,
) -> Verdict {
    if let Some(b) = &now.block {
        if proposed < Action::Block {
            return Verdict::Keep {
                in_force: Action::Block,
            };
        }
        // BLOCK over BLOCK: a permanent or longer block stays; an operator's
        // host entry is never rewritten; the detector's own is refreshed
        // past half its life; a shorter covering block gets a host entry.
        let longer = b.remaining.is_none_or(|r| r >= ttl);
        let own = detector_host(b, is_host(b));
        if (own && !stale(b.remaining, ttl)) || (!own && (longer || is_host(b))) {
            return Verdict::Keep {
                in_force: Action::Block,
            };
        }
        return Verdict::Write;
    }
    match proposed {
        Action::Log => Verdict::Keep {
            in_force: Action::Log,
        },
        Action::Block => Verdict::Write,
        Action::Deceive => match now.deceive {
            Some(rem) if !stale(rem, ttl) => Verdict::Keep {
                in_force: Action::Deceive,
            },
            _ => Verdict::Write,
        },
        Action::Throttle => {
            if now.deceive.is_some() {
                return Verdict::Keep {
                    in_force: Action::Deceive,
                };
            }
            let Some(t) = &now.throttle else {
                return Verdict::Write;
            };
            let own = detector_host(t, is_host(t));
            if own {
                // Ours: refresh past half its life, or apply a stricter rate.
                return if stale(t.remaining, ttl) || rate_pps < t.rate_pps {
                    Verdict::Write
                } else {
                    Verdict::Keep {
                        in_force: Action::Throttle,
                    }
                };
            }
            // An operator's rule: add a host entry only where it is stricter
            // (a lower rate) and not on the operator's own host key.
            if rate_pps < t.rate_pps && !is_host(t) {
                Verdict::Write
            } else {
                Verdict::Keep {
                    in_force: Action::Throttle,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::Prefix;

    fn cov(p: &str, reason: ReasonCode, secs: Option<u64>, rate: u32) -> Covering {
        let net: ipnet::IpNet = p.parse().unwrap();
        Covering {
            prefix: Prefix::new(net.addr(), net.prefix_len()).unwrap(),
            reason,
            remaining: secs.map(Duration::from_secs),
            rate_pps: rate,
        }
    }
    fn host(c: &Covering) -> bool {
        c.prefix.prefix_len() == 32
    }
    const H: Duration = Duration::from_secs(3600);
    use ReasonCode::{Detection, Manual};

    #[test]
    fn a_detection_never_shortens_or_rewrites_an_operators_block() {
        let perm = InForce {
            block: Some(cov("192.0.2.1/32", Manual, None, 0)),
            ..InForce::default()
        };
        assert_eq!(
            verdict(Action::Block, H, 0, &perm, host),
            Verdict::Keep {
                in_force: Action::Block
            }
        );
        // An operator's short host block is not rewritten either.
        let short = InForce {
            block: Some(cov("192.0.2.1/32", Manual, Some(10), 0)),
            ..InForce::default()
        };
        assert!(matches!(
            verdict(Action::Block, H, 0, &short, host),
            Verdict::Keep { .. }
        ));
        // A short covering /24 gets the detector's own, longer host entry.
        let net = InForce {
            block: Some(cov("192.0.2.0/24", Manual, Some(10), 0)),
            ..InForce::default()
        };
        assert_eq!(verdict(Action::Block, H, 0, &net, host), Verdict::Write);
        // Weaker proposals under any block change nothing.
        for a in [Action::Log, Action::Throttle, Action::Deceive] {
            assert_eq!(
                verdict(a, H, 100, &perm, host),
                Verdict::Keep {
                    in_force: Action::Block
                }
            );
        }
    }

    #[test]
    fn between_detections_the_longer_expiry_wins() {
        let fresh = InForce {
            block: Some(cov("192.0.2.1/32", Detection, Some(3000), 0)),
            ..InForce::default()
        };
        assert!(matches!(
            verdict(Action::Block, H, 0, &fresh, host),
            Verdict::Keep { .. }
        ));
        let old = InForce {
            block: Some(cov("192.0.2.1/32", Detection, Some(60), 0)),
            ..InForce::default()
        };
        assert_eq!(verdict(Action::Block, H, 0, &old, host), Verdict::Write);
    }

    #[test]
    fn a_detection_throttle_never_raises_an_operators_rate() {
        let strict = InForce {
            throttle: Some(cov("10.0.0.0/8", Manual, None, 10)),
            ..InForce::default()
        };
        assert_eq!(
            verdict(Action::Throttle, H, 100, &strict, host),
            Verdict::Keep {
                in_force: Action::Throttle
            }
        );
        let loose = InForce {
            throttle: Some(cov("10.0.0.0/8", Manual, None, 1000)),
            ..InForce::default()
        };
        assert_eq!(
            verdict(Action::Throttle, H, 100, &loose, host),
            Verdict::Write
        );
        // The operator's own host key is never rewritten.
        let own_key = InForce {
            throttle: Some(cov("10.0.0.1/32", Manual, None, 1000)),
            ..InForce::default()
        };
        assert!(matches!(
            verdict(Action::Throttle, H, 100, &own_key, host),
            Verdict::Keep { .. }
        ));
    }

    /// An IPv6 source grouped to its /64: the executor's `is_own` is
    /// "the entry is exactly the source's prefix", as it is for a /32.
    const OWN: &str = "2001:db8:bad::/64";
    fn own64(c: &Covering) -> bool {
        c.prefix.to_string() == OWN
    }

    #[test]
    fn a_detectors_own_ipv6_prefix_is_refreshed_like_its_host_entry() {
        let keep = Verdict::Keep {
            in_force: Action::Block,
        };
        let fresh = InForce {
            block: Some(cov(OWN, Detection, Some(3000), 0)),
            ..InForce::default()
        };
        assert_eq!(verdict(Action::Block, H, 0, &fresh, own64), keep);
        let old = InForce {
            block: Some(cov(OWN, Detection, Some(60), 0)),
            ..InForce::default()
        };
        assert_eq!(verdict(Action::Block, H, 0, &old, own64), Verdict::Write);
        // Its own throttle: refreshed past half its life, else kept.
        let thr = |secs| InForce {
            throttle: Some(cov(OWN, Detection, Some(secs), 100)),
            ..InForce::default()
        };
        assert!(matches!(
            verdict(Action::Throttle, H, 100, &thr(3000), own64),
            Verdict::Keep { .. }
        ));
        assert_eq!(
            verdict(Action::Throttle, H, 100, &thr(60), own64),
            Verdict::Write
        );
        // A detection's wider entry (a /48 from a wider setting) is not its
        // own: a longer own /64 is added under a short one, as for a /32.
        let wider = InForce {
            block: Some(cov("2001:db8::/48", Detection, Some(60), 0)),
            ..InForce::default()
        };
        assert_eq!(verdict(Action::Block, H, 0, &wider, own64), Verdict::Write);
    }

    #[test]
    fn an_operators_rules_are_never_weakened_by_a_detectors_ipv6_prefix() {
        // The operator's entry at the very /64: never rewritten, even short.
        for secs in [None, Some(10)] {
            let op = InForce {
                block: Some(cov(OWN, Manual, secs, 0)),
                ..InForce::default()
            };
            assert!(matches!(
                verdict(Action::Block, H, 0, &op, own64),
                Verdict::Keep { .. }
            ));
        }
        // A permanent covering /48 stays; a short one gets the own /64.
        let perm = InForce {
            block: Some(cov("2001:db8::/48", Manual, None, 0)),
            ..InForce::default()
        };
        assert!(matches!(
            verdict(Action::Block, H, 0, &perm, own64),
            Verdict::Keep { .. }
        ));
        let short = InForce {
            block: Some(cov("2001:db8::/48", Manual, Some(10), 0)),
            ..InForce::default()
        };
        assert_eq!(verdict(Action::Block, H, 0, &short, own64), Verdict::Write);
        // Throttles: a stricter covering rate stays; a looser one gets the
        // own, stricter /64; the operator's own /64 rule is never rewritten.
        let thr = |p, rate| InForce {
            throttle: Some(cov(p, Manual, None, rate)),
            ..InForce::default()
        };
        assert!(matches!(
            verdict(Action::Throttle, H, 100, &thr("2001:db8::/32", 10), own64),
            Verdict::Keep { .. }
        ));
        assert_eq!(
            verdict(Action::Throttle, H, 100, &thr("2001:db8::/32", 1000), own64),
            Verdict::Write
        );
        assert!(matches!(
            verdict(Action::Throttle, H, 100, &thr(OWN, 1000), own64),
            Verdict::Keep { .. }
        ));
    }

    #[test]
    fn deceive_outranks_throttle_and_upgrades_apply() {
        let deceived = InForce {
            deceive: Some(Some(Duration::from_secs(800))),
            ..InForce::default()
        };
        assert_eq!(
            verdict(Action::Throttle, H, 100, &deceived, host),
            Verdict::Keep {
                in_force: Action::Deceive
            }
        );
        assert_eq!(
            verdict(Action::Block, H, 0, &deceived, host),
            Verdict::Write
        );
        let throttled = InForce {
            throttle: Some(cov("10.0.0.1/32", Detection, Some(500), 100)),
            ..InForce::default()
        };
        assert_eq!(
            verdict(Action::Deceive, H, 0, &throttled, host),
            Verdict::Write
        );
        assert_eq!(
            verdict(Action::Log, H, 0, &InForce::default(), host),
            Verdict::Keep {
                in_force: Action::Log
            }
        );
    }
}
