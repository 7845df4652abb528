//! The executor's per-source memory, each part capped with O(1) lookup and
//! eviction: which sources are deceived (nftables is the truth; this is
//! its index), and which sources' DECEIVE failed.
//!
//! Before, `apply` ran a `retain` over both maps and a scan of every
//! deception on every sample that reached the executor, and the failure map
//! was cleared wholesale when full.
use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use ipnet::IpNet;
use lru::LruCache;

use crate::dataplane::Prefix;

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

/// Most deceived hosts indexed, and most remembered DECEIVE failures.
/// Past it the least recently touched is forgotten: a forgotten deception
/// is still in nftables (which expires it); the executor may only write it
/// again, which refreshes it.
pub const MAX_TRACKED: usize = 65_536;
/// Most deceived prefixes wider than a host (only an operator sets those:
/// the detector deceives hosts). Past it, new ones are not indexed.
pub const MAX_NETS: usize = 4096;

/// Deceptions in force: hosts in an LRU map, wider prefixes in a small map
/// looked up per prefix length, so a lookup costs O(1) plus one probe per
/// distinct prefix length in use, never a scan.
#[derive(Debug)]
pub struct DeceiveIndex {
    /// Host → when its element expires (`None`: never).
    hosts: LruCache<IpAddr, Option<Instant>>,
    /// (network, length) → when it expires.
    nets: HashMap<(IpAddr, u8), Option<Instant>>,
    /// How many of `nets` have each prefix length: [IPv4 0..=32, IPv6 0..=128].
    lens: [Vec<u32>; 2],
}

impl Default for DeceiveIndex {
    fn default() -> Self {
        Self::with_cap(MAX_TRACKED)
    }
}

fn family(a: IpAddr) -> usize {
    usize::from(a.is_ipv6())
}

fn is_host(p: &Prefix) -> bool {
    p.prefix_len() == if p.is_ipv4() { 32 } else { 128 }
}

fn live(until: Option<Instant>, now: Instant) -> bool {
    until.is_none_or(|u| u > now)
}

impl DeceiveIndex {
    /// Heap bytes per indexed host; 83 on x86-64.
    pub const BYTES_PER_ENTRY: usize = lru_bytes_per_entry::<IpAddr, Option<Instant>>();

    pub fn with_cap(cap: usize) -> DeceiveIndex {
        DeceiveIndex {
            hosts: LruCache::new(NonZeroUsize::new(cap.max(1)).expect("at least 1")),
            nets: HashMap::new(),
            lens: [vec![0; 33], vec![0; 129]],
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len() + self.nets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.hosts.clear();
        self.nets.clear();
        self.lens.iter_mut().for_each(|l| l.fill(0));
    }

    pub fn insert(&mut self, p: Prefix, until: Option<Instant>) {
        if is_host(&p) {
            self.hosts.put(p.addr(), until);
            return;
        }
        let key = (p.addr(), p.prefix_len());
        if let Some(u) = self.nets.get_mut(&key) {
            *u = until;
        } else if self.nets.len() < MAX_NETS {
            self.nets.insert(key, until);
            self.lens[family(p.addr())][usize::from(p.prefix_len())] += 1;
        }
    }

    pub fn remove(&mut self, p: &Prefix) {
        if is_host(p) {
            self.hosts.pop(&p.addr());
        } else if self.nets.remove(&(p.addr(), p.prefix_len())).is_some() {
            self.lens[family(p.addr())][usize::from(p.prefix_len())] -= 1;
        }
    }

    /// Deceived, by a host or covering element: the time left (`None`: no
    /// timeout). A covering prefix cannot be extended by a host element
    /// (nft's interval sets refuse the overlap): it counts as never stale.
    /// An expired host entry found here is dropped.
    pub fn left(&mut self, source: IpAddr, now: Instant) -> Option<Option<Duration>> {
        let f = family(source);
        for (len, n) in self.lens[f].iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let net = IpNet::new(source, len as u8)
                .expect("a length the index holds is valid")
                .trunc();
            if self
                .nets
                .get(&(net.network(), len as u8))
                .is_some_and(|u| live(*u, now))
            {
                return Some(None);
            }
        }
        match self.hosts.peek(&source).copied() {
            Some(u) if live(u, now) => Some(u.map(|u| u - now)),
            Some(_) => {
                self.hosts.pop(&source);
                None
            }
            None => None,
        }
    }

    /// Prefixes inside `outer` (an operator's allow: O(index)).
    pub fn inside(&self, outer: &Prefix) -> Vec<Prefix> {
        let hosts = self.hosts.iter().map(|(a, _)| Prefix::host(*a));
        let nets = self
            .nets
            .keys()
            .filter_map(|(a, l)| Prefix::new(*a, *l).ok());
        hosts
            .chain(nets)
            .filter(|p| outer.contains(p.addr()) && p.prefix_len() >= outer.prefix_len())
            .collect()
    }

    /// Drops expired entries from the cold end of the host map until the
    /// least recently touched one is live, and expired wide prefixes (at
    /// most `MAX_NETS`). Entries that expire elsewhere in the host map are
    /// dropped when looked up or evicted. O(expired at the cold end).
    pub fn prune(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some((_, u)) = self.hosts.peek_lru() {
            if live(*u, now) {
                break;
            }
            self.hosts.pop_lru();
            n += 1;
        }
        let dead: Vec<(IpAddr, u8)> = self
            .nets
            .iter()
            .filter(|(_, u)| !live(**u, now))
            .map(|(k, _)| *k)
            .collect();
        for (a, l) in dead {
            self.nets.remove(&(a, l));
            self.lens[family(a)][usize::from(l)] -= 1;
            n += 1;
        }
        n
    }
}

/// Sources whose DECEIVE failed → until when THROTTLE stands in for it.
/// Capped; an expired entry is dropped when looked up.
#[derive(Debug)]
pub struct FailedDeceive {
    until: LruCache<IpAddr, Instant>,
}

impl Default for FailedDeceive {
    fn default() -> Self {
        Self::with_cap(MAX_TRACKED)
    }
}

impl FailedDeceive {
    /// Heap bytes per remembered source; 83 on x86-64.
    pub const BYTES_PER_ENTRY: usize = lru_bytes_per_entry::<IpAddr, Instant>();

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

    pub fn remember(&mut self, source: IpAddr, until: Instant) {
        self.until.put(source, until);
    }

    /// Whether DECEIVE failed for `source` and THROTTLE still stands in.
    pub fn failed(&mut self, source: IpAddr, now: Instant) -> bool {
        match self.until.peek(&source) {
            Some(u) if *u > now => true,
            Some(_) => {
                self.until.pop(&source);
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
        Prefix::host(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
    }

    #[test]
    fn hosts_and_covering_prefixes_are_found_without_a_scan() {
        let mut d = DeceiveIndex::default();
        let now = Instant::now();
        let min = Duration::from_secs(60);
        d.insert(host(5), Some(now + min));
        assert_eq!(d.left(host(5).addr(), now), Some(Some(min)));
        assert_eq!(d.left(host(6).addr(), now), None);
        let net = Prefix::new("10.0.0.0".parse().unwrap(), 24).unwrap();
        d.insert(net, Some(now + min));
        assert_eq!(d.left(host(6).addr(), now), Some(None), "covered");
        assert_eq!(d.left(host(5).addr(), now), Some(None), "covered wins");
        assert_eq!(d.left(host(300).addr(), now), None, "10.0.1.44 is outside");
        assert_eq!(d.inside(&net).len(), 2);
        d.remove(&net);
        assert_eq!(d.left(host(6).addr(), now), None);
        // Expired: gone at lookup.
        let later = now + 2 * min;
        assert_eq!(d.left(host(5).addr(), later), None);
        assert!(d.is_empty());
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
        assert_eq!(
            d.left(host(9999).addr(), at),
            Some(Some(Duration::from_secs(49)))
        );
    }

    #[test]
    fn failures_expire_and_are_capped() {
        let mut f = FailedDeceive::with_cap(10);
        let now = Instant::now();
        let a = host(1).addr();
        f.remember(a, now + Duration::from_secs(5));
        assert!(f.failed(a, now));
        assert!(!f.failed(a, now + Duration::from_secs(5)));
        assert!(f.is_empty(), "dropped at lookup");
        for i in 0..1000 {
            f.remember(host(i).addr(), now + Duration::from_secs(1));
        }
        assert_eq!(f.len(), 10);
        assert!(f.failed(host(999).addr(), now));
        assert!(!f.failed(host(0).addr(), now), "evicted");
        assert_eq!(f.prune(now + Duration::from_secs(1)), 10);
    }

    #[test]
    fn bytes_per_entry() {
        // docs/DETECTION.md quotes these figures.
        assert_eq!(std::hint::black_box(DeceiveIndex::BYTES_PER_ENTRY), 83);
        assert_eq!(std::hint::black_box(FailedDeceive::BYTES_PER_ENTRY), 83);
    }
}
