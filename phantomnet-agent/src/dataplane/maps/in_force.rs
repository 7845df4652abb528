//! What is in force on one source address, read from the pinned maps: the
//! live block and throttle entries that cover it. The executor's
//! precedence rule reads these on every detection, so the pins (which the
//! offline CLI and restarts share) are the one record of what is in force.
//!
//! An LPM lookup returns the longest covering entry even when it has
//! expired. Expiry must never mask a covering rule, so an expired match is
//! deleted (the kernel already ignores it) and the lookup repeated, a
//! bounded number of times — the same thing the XDP program does.
use std::{net::IpAddr, time::Duration};

use aya::{Pod, maps::lpm_trie::Key};
use phantomnet_common::{BlockEntry, ReasonCode, ThrottleRule, V4_KEY_LEN, V6_KEY_LEN};

use super::{Host, Maps, Trie, lookup, reason_text};
use crate::dataplane::{Expiry, Prefix, clock::monotonic_now_ns};

/// Most expired entries one lookup deletes before giving up (a chain of
/// nested expired prefixes longer than this is left to housekeeping).
const MAX_EXPIRED_PER_LOOKUP: usize = 8;

/// A live entry covering a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Covering {
    /// The entry's own prefix (the source's host prefix for a host entry).
    pub prefix: Prefix,
    /// Who set it.
    pub reason: ReasonCode,
    /// Time left; `None` = never expires.
    pub remaining: Option<Duration>,
    /// Throttle only: the rule's rate.
    pub rate_pps: u32,
}

trait Entry: Pod {
    fn expires_ns(&self) -> u64;
    fn prefix_len(&self) -> u32;
    fn reason(&self) -> u32;
    fn rate_pps(&self) -> u32 {
        0
    }
}

impl Entry for BlockEntry {
    fn expires_ns(&self) -> u64 {
        self.expires_ns
    }
    fn prefix_len(&self) -> u32 {
        self.prefix_len
    }
    fn reason(&self) -> u32 {
        self.reason
    }
}

impl Entry for ThrottleRule {
    fn expires_ns(&self) -> u64 {
        self.expires_ns
    }
    fn prefix_len(&self) -> u32 {
        self.prefix_len
    }
    fn reason(&self) -> u32 {
        self.reason
    }
    fn rate_pps(&self) -> u32 {
        self.rate_pps
    }
}

/// The longest live trie entry covering all of `of` (the lookup key has
/// `of`'s length, so an entry narrower than `of` is not returned).
fn live_covering<const N: usize, V: Entry>(
    trie: &mut Trie<N, V>,
    of: &Prefix,
    key_of: impl Fn(IpAddr, u8) -> Option<Key<[u8; N]>>,
) -> Option<Covering> {
    let (addr, of_len) = (of.addr(), of.prefix_len());
    let now = monotonic_now_ns();
    for _ in 0..MAX_EXPIRED_PER_LOOKUP {
        let e = lookup(trie, &key_of(addr, of_len)?)?;
        let len = u8::try_from(e.prefix_len()).ok()?;
        let prefix = Prefix::new(ipnet_network(addr, len)?, len).ok()?;
        let expiry = Expiry(e.expires_ns());
        if expiry.is_live(now) {
            return Some(Covering {
                prefix,
                reason: ReasonCode::from_u32(e.reason()),
                remaining: expiry.remaining(now),
                rate_pps: e.rate_pps(),
            });
        }
        // Expired: the kernel ignores it; remove it so the covering entry shows.
        if trie.remove(&key_of(prefix.addr(), len)?).is_err() {
            return None;
        }
    }
    None
}

/// The live host entry for `key`; an expired one is deleted (the kernel
/// already ignores it) so it stops costing lookups.
fn live_host<const N: usize>(
    map: &mut Host<N, BlockEntry>,
    key: [u8; N],
    now: u64,
) -> Option<BlockEntry> {
    let e = lookup(map, &key)?;
    if Expiry(e.expires_ns).is_live(now) {
        return Some(e);
    }
    let _ = map.remove(&key);
    None
}

fn ipnet_network(addr: IpAddr, len: u8) -> Option<IpAddr> {
    ipnet::IpNet::new(addr, len).ok().map(|n| n.trunc().addr())
}

fn v4_key(addr: IpAddr, len: u8) -> Option<Key<[u8; V4_KEY_LEN]>> {
    match addr {
        IpAddr::V4(a) => Some(Prefix::v4_key(a, len)),
        IpAddr::V6(_) => None,
    }
}

fn v6_key(addr: IpAddr, len: u8) -> Option<Key<[u8; V6_KEY_LEN]>> {
    match addr {
        IpAddr::V6(a) => Some(Prefix::v6_key(a, len)),
        IpAddr::V4(_) => None,
    }
}

impl Maps {
    /// The live block entry that applies to `addr` (its longest live
    /// covering entry), deleting expired entries that would hide it.
    pub fn block_in_force(&mut self, addr: IpAddr) -> Option<Covering> {
        self.block_covering(&Prefix::host(addr))
    }

    /// The longest live block entry that covers all of `prefix`: for a
    /// host, as [`block_in_force`](Self::block_in_force); for a network
    /// (an IPv6 source's /64), the trie entry at that length or shorter.
    /// Entries inside the network (hosts, longer prefixes) do not cover it
    /// and are not returned; in the data plane they still decide for their
    /// own addresses, being longer matches.
    pub fn block_covering(&mut self, prefix: &Prefix) -> Option<Covering> {
        let addr = prefix.addr();
        if prefix.is_host() {
            // A host entry is the longest match: it answers first.
            let now = monotonic_now_ns();
            let host = match addr {
                IpAddr::V4(a) => live_host(&mut self.block_h4, a.octets(), now),
                IpAddr::V6(a) => live_host(&mut self.block_h6, a.octets(), now),
            };
            if let Some(e) = host {
                let expiry = Expiry(e.expires_ns);
                return Some(Covering {
                    prefix: *prefix,
                    reason: ReasonCode::from_u32(e.reason),
                    remaining: expiry.remaining(now),
                    rate_pps: 0,
                });
            }
        }
        match addr {
            IpAddr::V4(_) => live_covering(&mut self.block_v4, prefix, v4_key),
            IpAddr::V6(_) => live_covering(&mut self.block_v6, prefix, v6_key),
        }
    }

    /// Who set the block entry at exactly `prefix` (not a covering one),
    /// live or expired: its reason code and text. Sources that manage their
    /// own entries (feeds, CrowdSec) touch only the ones they set.
    pub fn block_at(&self, prefix: &Prefix) -> Option<(ReasonCode, String)> {
        let len = u32::from(prefix.prefix_len());
        let e = match prefix.addr() {
            IpAddr::V4(a) if prefix.is_host() => lookup(&self.block_h4, &a.octets()),
            IpAddr::V6(a) if prefix.is_host() => lookup(&self.block_h6, &a.octets()),
            IpAddr::V4(a) => lookup(&self.block_v4, &Prefix::v4_key(a, prefix.prefix_len())),
            IpAddr::V6(a) => lookup(&self.block_v6, &Prefix::v6_key(a, prefix.prefix_len())),
        }
        .filter(|e: &BlockEntry| e.prefix_len == len)?;
        Some((ReasonCode::from_u32(e.reason), reason_text(&e.reason_text)))
    }

    /// The live throttle rule that applies to `addr`, likewise.
    pub fn throttle_in_force(&mut self, addr: IpAddr) -> Option<Covering> {
        self.throttle_covering(&Prefix::host(addr))
    }

    /// The longest live throttle rule that covers all of `prefix`
    /// (see [`block_covering`](Self::block_covering)).
    pub fn throttle_covering(&mut self, prefix: &Prefix) -> Option<Covering> {
        match prefix.addr() {
            IpAddr::V4(_) => live_covering(&mut self.rule_v4, prefix, v4_key),
            IpAddr::V6(_) => live_covering(&mut self.rule_v6, prefix, v6_key),
        }
    }
}
