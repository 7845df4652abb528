//! The executor's decisions without the kernel: what `Executor::apply`
//! would do with each proposal, from the same precedence rule
//! (`enforce::verdict`), the same TTLs, the config's allowlist and the
//! same DECEIVE fallback, over an in-memory record of what the detector
//! has put in force. Nothing is written anywhere.
//!
//! What it leaves out, because a replay has none of it: rules an operator,
//! a feed or CrowdSec put in force, and nft failures (a configured honeypot
//! is taken to work).
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use ipnet::IpNet;
use phantomnet_common::ReasonCode;

use crate::{
    dataplane::{Covering, Prefix},
    decide::Action,
    enforce::{Applied, EnforcePolicy, InForce, Verdict, verdict},
    flow::Source,
};

/// What the detector holds in force on one source, each until an instant.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    block: Option<Instant>,
    throttle: Option<Instant>,
    deceive: Option<Instant>,
    /// DECEIVE failed (no honeypot for the family): it stands as THROTTLE
    /// until then, as in the executor.
    deceive_failed: Option<Instant>,
}

/// The emulated executor.
#[derive(Debug)]
pub struct Enforcer {
    policy: EnforcePolicy,
    allowlist: Vec<IpNet>,
    /// Honeypots configured per family: [IPv4, IPv6].
    honeypot: [bool; 2],
    held: HashMap<Source, Held>,
}

fn live(until: Option<Instant>, now: Instant) -> Option<Duration> {
    until.filter(|u| *u > now).map(|u| u - now)
}

impl Enforcer {
    pub fn new(policy: EnforcePolicy, allowlist: Vec<IpNet>, honeypot: [bool; 2]) -> Enforcer {
        Enforcer {
            policy,
            allowlist,
            honeypot,
            held: HashMap::new(),
        }
    }

    /// `Executor::apply` for a detector's proposal at `now`.
    pub fn apply(&mut self, source: impl Into<Source>, action: Action, now: Instant) -> Applied {
        let source = source.into();
        if action == Action::Log {
            return Applied::Logged;
        }
        let prefix = source.prefix();
        // An allowlist entry counts when it covers the whole source (as
        // `Maps::allowlisted_by`'s longest-prefix lookup of the source's
        // prefix).
        if let Some(net) = self
            .allowlist
            .iter()
            .find(|n| n.prefix_len() <= source.prefix_len() && n.contains(&source.addr()))
        {
            let by = Prefix::new(net.network(), net.prefix_len()).unwrap_or(prefix);
            return Applied::Allowlisted { by };
        }
        let held = self.held.entry(source).or_default();
        let (action, fallback) = match action {
            Action::Deceive if live(held.deceive_failed, now).is_some() => (
                Action::Throttle,
                Some("DECEIVE failed earlier for this source"),
            ),
            Action::Deceive if !self.honeypot[usize::from(!source.is_ipv4())] => (
                Action::Throttle,
                Some(if source.is_ipv4() {
                    "no IPv4 honeypot is configured"
                } else {
                    "no IPv6 honeypot is configured"
                }),
            ),
            a => (a, None),
        };
        let covering = |until: Option<Instant>| {
            live(until, now).map(|left| Covering {
                prefix,
                reason: ReasonCode::Detection,
                remaining: Some(left),
                rate_pps: self.policy.throttle_rate_pps,
            })
        };
        let in_force = InForce {
            block: covering(held.block),
            throttle: covering(held.throttle),
            deceive: live(held.deceive, now).map(Some),
        };
        let ttl = self.policy.ttl(action);
        let refresh = match action {
            Action::Block => in_force.block.is_some(),
            Action::Throttle => in_force.throttle.is_some(),
            _ => in_force.deceive.is_some(),
        };
        let rate = self.policy.throttle_rate_pps;
        if let Verdict::Keep { in_force } = verdict(action, ttl, rate, &in_force, |_| true) {
            return Applied::Unchanged { in_force };
        }
        let until = Some(now + ttl);
        match action {
            Action::Block => held.block = until,
            Action::Throttle => held.throttle = until,
            Action::Deceive => held.deceive = until,
            Action::Log => {}
        }
        match fallback {
            Some(why) => {
                held.deceive_failed = Some(now + self.policy.throttle_ttl);
                Applied::Fallback {
                    wanted: Action::Deceive,
                    enforced: Action::Throttle,
                    ttl: self.policy.throttle_ttl,
                    why: why.to_string(),
                }
            }
            None if refresh => Applied::Refreshed { action, ttl },
            None => Applied::Enforced { action, ttl },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn policy() -> EnforcePolicy {
        EnforcePolicy {
            block_ttl: Duration::from_secs(300),
            throttle_ttl: Duration::from_secs(60),
            deceive_ttl: Duration::from_secs(120),
            throttle_rate_pps: 100,
            throttle_burst: 200,
            min_evidence: 3,
            evidence_window: Duration::from_secs(10),
            floods: true,
            flood_rule_ttl: Duration::from_secs(60),
            ipv6_source_prefix: 64,
        }
    }

    #[test]
    fn follows_the_precedence_rule_and_the_ttls() {
        let mut e = Enforcer::new(policy(), vec![], [true, true]);
        let t0 = Instant::now();
        let src: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(e.apply(src, Action::Log, t0), Applied::Logged);
        assert!(matches!(
            e.apply(src, Action::Throttle, t0),
            Applied::Enforced {
                action: Action::Throttle,
                ..
            }
        ));
        // Again, early in its life: unchanged.
        assert_eq!(
            e.apply(src, Action::Throttle, t0 + Duration::from_secs(1)),
            Applied::Unchanged {
                in_force: Action::Throttle
            }
        );
        // Past half its life: refreshed.
        assert!(matches!(
            e.apply(src, Action::Throttle, t0 + Duration::from_secs(40)),
            Applied::Refreshed { .. }
        ));
        // A stronger action upgrades; a weaker one then changes nothing.
        assert!(matches!(
            e.apply(src, Action::Block, t0 + Duration::from_secs(41)),
            Applied::Enforced {
                action: Action::Block,
                ..
            }
        ));
        assert_eq!(
            e.apply(src, Action::Deceive, t0 + Duration::from_secs(42)),
            Applied::Unchanged {
                in_force: Action::Block
            }
        );
        // Expired: enforced anew.
        assert!(matches!(
            e.apply(src, Action::Block, t0 + Duration::from_secs(400)),
            Applied::Enforced { .. }
        ));
    }

    #[test]
    fn allowlist_and_deceive_fallback_as_the_executor() {
        let allow: IpNet = "198.51.100.0/24".parse().unwrap();
        let mut e = Enforcer::new(policy(), vec![allow], [true, false]);
        let t0 = Instant::now();
        let ok: IpAddr = "198.51.100.9".parse().unwrap();
        assert!(matches!(
            e.apply(ok, Action::Block, t0),
            Applied::Allowlisted { .. }
        ));
        let v6 = Source::new("2001:db8::1".parse().unwrap(), 64);
        assert!(matches!(
            e.apply(v6, Action::Deceive, t0),
            Applied::Fallback {
                enforced: Action::Throttle,
                ..
            }
        ));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(matches!(
            e.apply(v4, Action::Deceive, t0),
            Applied::Enforced {
                action: Action::Deceive,
                ..
            }
        ));
    }
}
