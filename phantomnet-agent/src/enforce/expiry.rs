//! The expiry index of the rules the agent writes, so that pruning touches
//! only what has expired (O(expired · log n)) instead of walking every
//! entry of the maps every 30 s.
//!
//! Rules written by others (the offline `phantomnet-agent block …` while
//! the agent runs, or an earlier agent) are not in it: the slow full sweep
//! (`Maps::prune_expired`, every `SWEEP_EVERY`) prunes those.
use std::collections::{BTreeSet, HashMap};

use phantomnet_common::RuleKind;

use crate::dataplane::{Expiry, Prefix};

/// One rule: BLOCK or THROTTLE on a prefix.
pub type RuleKey = (RuleKind, Prefix);

/// Bound on the index; a rule written past it is left to the full sweep.
/// The maps hold at most 2 × (65,536 BLOCK + 16,384 THROTTLE) entries, so
/// this is reached only when many indexed rules were removed by others.
pub const MAX_INDEXED: usize = 2 * (65_536 + 16_384);

/// Expiry time → rule, and rule → its indexed expiry (to move it when the
/// rule is rewritten).
#[derive(Debug, Default)]
pub struct ExpiryIndex {
    by_time: BTreeSet<(u64, RuleKey)>,
    by_rule: HashMap<RuleKey, u64>,
}

impl ExpiryIndex {
    /// Approximate heap bytes per indexed rule: a B-tree element (expiry
    /// and key, at about 2/3 node fill) plus a hash entry (key and expiry at
    /// 7/8 load).
    pub const BYTES_PER_ENTRY: usize = std::mem::size_of::<(u64, RuleKey)>() * 3 / 2
        + (std::mem::size_of::<(RuleKey, u64)>() + 1) * 8 / 7;

    pub fn len(&self) -> usize {
        self.by_rule.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_rule.is_empty()
    }

    /// `key` was written with `expires` (a never-expiring rule leaves the
    /// index). O(log n).
    pub fn record(&mut self, key: RuleKey, expires: Expiry) {
        self.forget(&key);
        if expires == Expiry::NEVER || self.by_rule.len() >= MAX_INDEXED {
            return;
        }
        self.by_time.insert((expires.0, key));
        self.by_rule.insert(key, expires.0);
    }

    /// `key` was removed. O(log n).
    pub fn forget(&mut self, key: &RuleKey) {
        if let Some(at) = self.by_rule.remove(key) {
            self.by_time.remove(&(at, *key));
        }
    }

    /// Takes every rule whose indexed expiry is at or before `now_ns`, in
    /// expiry order. O(due · log n).
    pub fn take_due(&mut self, now_ns: u64) -> Vec<RuleKey> {
        let mut due = Vec::new();
        while let Some(&(at, key)) = self.by_time.first() {
            if at > now_ns {
                break;
            }
            self.by_time.pop_first();
            self.by_rule.remove(&key);
            due.push(key);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> RuleKey {
        let a = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        (RuleKind::Block, Prefix::host(a))
    }

    #[test]
    fn only_what_has_expired_is_taken_in_expiry_order() {
        let mut x = ExpiryIndex::default();
        for i in 0..1000 {
            x.record(key(i), Expiry(1_000 + u64::from(999 - i)));
        }
        x.record(key(5000), Expiry::NEVER);
        assert_eq!(x.len(), 1000, "a never-expiring rule is not indexed");
        assert!(x.take_due(999).is_empty());
        let due = x.take_due(1_009);
        assert_eq!(due, (990..1000).rev().map(key).collect::<Vec<_>>());
        assert_eq!(x.len(), 990);
    }

    #[test]
    fn a_rewritten_rule_moves_and_a_removed_one_leaves() {
        let mut x = ExpiryIndex::default();
        x.record(key(1), Expiry(100));
        x.record(key(1), Expiry(500));
        x.record(key(2), Expiry(100));
        x.forget(&key(2));
        assert!(x.take_due(200).is_empty());
        assert_eq!(x.take_due(500), vec![key(1)]);
        assert!(x.is_empty());
        // Made permanent: leaves the index.
        x.record(key(3), Expiry(100));
        x.record(key(3), Expiry::NEVER);
        assert!(x.take_due(u64::MAX).is_empty());
    }

    #[test]
    fn bytes_per_entry() {
        // docs/CONTROL.md quotes this figure.
        let b = std::hint::black_box(ExpiryIndex::BYTES_PER_ENTRY);
        println!("expiry index bytes per entry: {b}");
        assert!((64..=128).contains(&b), "{b}");
    }
}
