//! The executor's per-source memory, each part capped with O(1) lookup and
//! eviction: which sources are deceived (nftables is the truth; this is
//! its index), and which sources' DECEIVE failed.
//!
//! Before, `apply` ran a `retain` over both maps and a scan of every
//! deception on every sample that reached the executor, and the failure map
//! was cleared wholesale when full.
use std::{
    collections::HashMap,
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use lru::LruCache;

use crate::{dataplane::Prefix, flow::IPV6_SOURCE_PREFIXES};

/// Heap bytes one entry of an `lru::LruCache<K, V>` costs: its boxed node
/// (key, value, two links) rounded up to a glibc malloc chunk (8 bytes of
/// header, 16-byte granules), plus its hash-table slot (two pointers and a
/// control byte) at hashbrown's 7/8 load factor. The per-source maps of
/// the executor and the pipeline document their cost with it.
pub const fn lru_bytes_per_entry<K, V>() -> usize {
    let node =
        std::mem::size_of::<K>() + std::mem::size_of::<V>() + 2 * std::mem::size_of::<usize>();
    let chunk = (node + 8).next_multiple_of(16);
    let slot = (2 * std::mem::size_of::<usize>() + 1) * 8 / 7;
    chunk + slot
}

/// Most deceived sources indexed, and most remembered DECEIVE failures.
/// Past it the least recently touched is forgotten: a forgotten deception
/// is still in nftables (which expires it); the executor may only write it
/// again, which refreshes it.
pub const MAX_TRACKED: usize = 65_536;
/// Most deceived prefixes wider than any source (IPv4 shorter than /32,
/// IPv6 shorter than /32: only an operator sets those; the detector
/// deceives sources). Past it, new ones are not indexed.
pub const MAX_NETS: usize = 4096;

/// Deceptions in force: sources' elements (hosts, and IPv6 prefixes of /32
/// or longer, such as the detector's /64s) in an LRU map, wider prefixes in
/// a small map, both looked up per prefix length in use, so a lookup costs
/// O(1) plus one probe per distinct prefix length, never a scan.
#[derive(Debug)]
pub struct DeceiveIndex {
    /// Source element → when it expires (`None`: never).
    sources: LruCache<Prefix, Option<Instant>>,
    /// Wider prefix → when it expires.
    nets: HashMap<Prefix, Option<Instant>>,
    /// How many entries of either map have each prefix length: [IPv4
    /// 0..=32, IPv6 0..=128].
    lens: [Vec<u32>; 2],
}

impl Default for DeceiveIndex {
    fn default() -> Self {
        Self::with_cap(MAX_TRACKED)
    }
}

fn family(p: &Prefix) -> usize {
    usize::from(!p.is_ipv4())
}

/// A source's own element (LRU) rather than an operator's wide prefix.
fn is_source(p: &Prefix) -> bool {
    p.is_host() || (!p.is_ipv4() && p.prefix_len() >= *IPV6_SOURCE_PREFIXES.start())
}

fn live(until: Option<Instant>, now: Instant) -> bool {
    until.is_none_or(|u| u > now)
}

impl DeceiveIndex {
    /// Heap bytes per indexed source; 83 on x86-64.
    pub const BYTES_PER_ENTRY: usize = lru_bytes_per_entry::<Prefix, Option<Instant>>();

    pub fn with_cap(cap: usize) -> DeceiveIndex {
        DeceiveIndex {
            sources: LruCache::new(NonZeroUsize::new(cap.max(1)).expect("at least 1")),
            nets: HashMap::new(),
            lens: [vec![0; 33], vec![0; 129]],
        }
    }

    pub fn len(&self) -> usize {
        self.sources.len() + self.nets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.sources.clear();
        self.nets.clear();
        self.lens.iter_mut().for_each(|l| l.fill(0));
    }

    fn count(&mut self, p: &Prefix, up: bool) {
        let n = &mut self.lens[family(p)][usize::from(p.prefix_len())];
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
    }

    pub fn insert(&mut self, p: Prefix, until: Option<Instant>) {
        if is_source(&p) {
            match self.sources.push(p, until) {
                None => self.count(&p, true),
                Some((old, _)) if old != p => {
                    // Evicted the least recently touched.
                    self.count(&old, false);
                    self.count(&p, true);
                }
                Some(_) => {}
            }
            return;
        }
        if let Some(u) = self.nets.get_mut(&p) {
            *u = until;
        } else if self.nets.len() < MAX_NETS {
            self.nets.insert(p, until);
            self.count(&p, true);
        }
    }

    pub fn remove(&mut self, p: &Prefix) {
        let removed = if is_source(p) {
            self.sources.pop(p).is_some()
        } else {
            self.nets.remove(p).is_some()
        };
        if removed {
            self.count(p, false);
        }
    }

    /// Whether `source` is deceived, by its own element or a covering one:
    /// the time left (`None`: no timeout). A covering prefix cannot be
    /// extended by a narrower element (nft's interval sets refuse the
    /// overlap): it counts as never stale. Elements narrower than `source`
    /// do not cover it. An expired own element found here is dropped.
    pub fn left(&mut self, source: &Prefix, now: Instant) -> Option<Option<Duration>> {
        let f = family(source);
        let own = usize::from(source.prefix_len());
        for len in 0..own {
            if self.lens[f][len] == 0 {
                continue;
            }
            let net = Prefix::masked(source.addr(), len as u8);
            let until = self
                .nets
                .get(&net)
                .or_else(|| self.sources.peek(&net))
                .copied();
            if until.is_some_and(|u| live(u, now)) {
                return Some(None);
            }
        }
        match self.sources.peek(source).copied() {
            Some(u) if live(u, now) => Some(u.map(|u| u - now)),
            Some(_) => {
                self.sources.pop(source);
                self.count(source, false);
                None
            }
            None => None,
        }
    }

    /// Prefixes inside `outer` (an operator's allow: O(index)).
    pub fn inside(&self, outer: &Prefix) -> Vec<Prefix> {
        self.sources
            .iter()
            .map(|(p, _)| *p)
            .chain(self.nets.keys().copied())
            .filter(|p| {
                p.is_ipv4() == outer.is_ipv4()
                    && outer.contains(p.addr())
                    && p.prefix_len() >= outer.prefix_len()
            })
            .collect()
    }

    /// Drops expired entries from the cold end of the source map until the
    /// least recently touched one is live, and expired wide prefixes (at
    /// most `MAX_NETS`). Entries that expire elsewhere in the source map are
    /// dropped when looked up or evicted. O(expired at the cold end).
    pub fn prune(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some((_, u)) = self.sources.peek_lru() {
            if live(*u, now) {
                break;
            }
            if let Some((p, _)) = self.sources.pop_lru() {
                self.count(&p, false);
            }
            n += 1;
        }
        let dead: Vec<Prefix> = self
            .nets
            .iter()
            .filter(|(_, u)| !live(**u, now))
            .map(|(k, _)| *k)
            .collect();
        for p in dead {
            self.nets.remove(&p);
            self.count(&p, false);
            n += 1;
        }
        n
    }
}

/// Sources whose DECEIVE failed → until when THROTTLE stands in for it.
/// Capped; an expired entry is dropped when looked up.
#[derive(Debug)]
pub struct FailedDeceive {
    until: LruCache<Prefix, Instant>,
}

impl Default for FailedDeceive {
    fn default() -> Self {
        Self::with_cap(MAX_TRACKED)
    }
}

impl FailedDeceive {
    /// Heap bytes per remembered source; 83 on x86-64.
    pub const BYTES_PER_ENTRY: usize = lru_bytes_per_entry::<Prefix, Instant>();

    pub fn with_cap(cap: usize) -> FailedDeceive {
        FailedDeceive {
            until: LruCache::new(NonZeroUsize::new(cap.max(1)).expect("at least 1")),
        }
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    pub fn clear(&mut self) {
        self.until.clear();
    }

    pub fn remember(&mut self, source: Prefix, until: Instant) {
        self.until.put(source, until);
    }

    /// Whether DECEIVE failed for `source` and THROTTLE still stands in.
    pub fn failed(&mut self, source: &Prefix, now: Instant) -> bool {
        match self.until.peek(source) {
            Some(u) if *u > now => true,
            Some(_) => {
                self.until.pop(source);
                false
            }
            None => false,
        }
    }

    /// Drops expired entries from the cold end (see [`DeceiveIndex::prune`]).
    pub fn prune(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while self.until.peek_lru().is_some_and(|(_, u)| *u <= now) {
            self.until.pop_lru();
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(i: u32) -> Prefix {
        Prefix::host(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 + i,
        )))
    }

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_and_covering_prefixes_are_found_without_a_scan() {
        let mut d = DeceiveIndex::default();
        let now = Instant::now();
        let min = Duration::from_secs(60);
        d.insert(host(5), Some(now + min));
        assert_eq!(d.left(&host(5), now), Some(Some(min)));
        assert_eq!(d.left(&host(6), now), None);
        let net = Prefix::new("10.0.0.0".parse().unwrap(), 24).unwrap();
        d.insert(net, Some(now + min));
        assert_eq!(d.left(&host(6), now), Some(None), "covered");
        assert_eq!(d.left(&host(5), now), Some(None), "covered wins");
        assert_eq!(d.left(&host(300), now), None, "10.0.1.44 is outside");
        assert_eq!(d.inside(&net).len(), 2);
        d.remove(&net);
        assert_eq!(d.left(&host(6), now), None);
        // Expired: gone at lookup.
        let later = now + 2 * min;
        assert_eq!(d.left(&host(5), later), None);
        assert!(d.is_empty());
    }

    #[test]
    fn an_ipv6_source_prefix_is_its_own_element_and_refreshes_like_a_host() {
        let mut d = DeceiveIndex::with_cap(4);
        let now = Instant::now();
        let min = Duration::from_secs(60);
        let own = p("2001:db8:bad::/64");
        d.insert(own, Some(now + min));
        // Its own element: time left, so the detector refreshes it.
        assert_eq!(d.left(&own, now), Some(Some(min)));
        assert_eq!(d.left(&p("2001:db8:bad:1::/64"), now), None);
        // An element inside it (a /128 of an earlier per-address setting,
        // an operator's /96) does not cover the whole /64.
        let mut inner = DeceiveIndex::default();
        inner.insert(p("2001:db8:bad::5/128"), None);
        inner.insert(p("2001:db8:bad::/96"), None);
        assert_eq!(inner.left(&own, now), None);
        // An operator's covering /48 (a source-sized element) or /16 (a
        // wide one) covers it and is never stale.
        d.insert(p("2001:db8:bad::/48"), Some(now + min));
        assert_eq!(d.left(&own, now), Some(None));
        d.remove(&p("2001:db8:bad::/48"));
        d.insert(p("2001::/16"), None);
        assert_eq!(d.left(&own, now), Some(None));
        d.remove(&p("2001::/16"));
        assert_eq!(d.left(&own, now), Some(Some(min)));
        assert_eq!(d.inside(&p("2001:db8::/32")), vec![own]);
        // Sources are evicted at the cap and their lengths uncounted.
        for i in 0..10u16 {
            d.insert(
                Prefix::masked(format!("2001:db8:{i}::1").parse().unwrap(), 64),
                None,
            );
        }
        assert_eq!(d.len(), 4);
        assert_eq!(d.lens[1][64], 4);
        assert_eq!(d.left(&own, now), None, "evicted");
        // Expired: dropped at lookup.
        d.clear();
        d.insert(own, Some(now + min));
        assert_eq!(d.left(&own, now + 2 * min), None);
        assert!(d.is_empty() && d.lens[1][64] == 0);
    }

    #[test]
    fn the_host_index_stays_at_its_cap_and_prune_pops_only_the_expired_cold_end() {
        let mut d = DeceiveIndex::with_cap(100);
        let now = Instant::now();
        for i in 0..10_000 {
            d.insert(host(i), Some(now + Duration::from_secs(u64::from(i))));
            assert!(d.len() <= 100);
        }
        assert_eq!(d.len(), 100);
        // Entries 9900..10000 remain; at 9950 s the first 51 have expired.
        let at = now + Duration::from_secs(9950);
        assert_eq!(d.prune(at), 51);
        assert_eq!(d.len(), 49);
        assert_eq!(d.left(&host(9999), at), Some(Some(Duration::from_secs(49))));
    }

    #[test]
    fn failures_expire_and_are_capped() {
        let mut f = FailedDeceive::with_cap(10);
        let now = Instant::now();
        let a = host(1);
        f.remember(a, now + Duration::from_secs(5));
        assert!(f.failed(&a, now));
        assert!(!f.failed(&a, now + Duration::from_secs(5)));
        assert!(f.is_empty(), "dropped at lookup");
        for i in 0..1000 {
            f.remember(host(i), now + Duration::from_secs(1));
        }
        assert_eq!(f.len(), 10);
        assert!(f.failed(&host(999), now));
        assert!(!f.failed(&host(0), now), "evicted");
        // An IPv6 source's /64 is remembered as one.
        let net = p("2001:db8:bad::/64");
        f.remember(net, now + Duration::from_secs(1));
        assert!(f.failed(&net, now));
        assert_eq!(f.prune(now + Duration::from_secs(1)), 10);
    }

    #[test]
    fn bytes_per_entry() {
        // docs/DETECTION.md quotes these figures.
        assert_eq!(std::hint::black_box(DeceiveIndex::BYTES_PER_ENTRY), 83);
        assert_eq!(std::hint::black_box(FailedDeceive::BYTES_PER_ENTRY), 83);
    }
}
