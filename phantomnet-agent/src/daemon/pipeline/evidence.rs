//! Evidence before enforcement: per source, over a window, how many of its
//! samples the tree called an attack.
use std::{
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use lru::LruCache;

use crate::{correlate::SignatureMatches, enforce::lru_bytes_per_entry, flow::Source};

/// Most sources whose evidence is kept. An attacker chooses how many
/// sources we see, so the map has a hard cap and evicts the least recently
/// seen source in O(1). A real attacker keeps its entry warm (every sample
/// touches it); a spoofed source seen once is the first to go. About
/// `EVIDENCE_CAP * Evidence::BYTES_PER_ENTRY` ≈ 13 MiB when full.
pub const EVIDENCE_CAP: usize = 131_072;

/// Per source, over a window: how many of its samples the tree called an
/// attack, how many it saw, and every signature category that matched.
/// The sample that completes the evidence is often one without a payload
/// (an ACK after the request), so the enforcement record names the
/// signatures seen from the source in the window, not only its own.
///
/// A window that has passed is restarted when its source is next seen; an
/// entry is never scanned for, so `observe` is O(1) whatever the map holds.
#[derive(Debug)]
pub struct Evidence {
    seen: LruCache<Source, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    attacks: u32,
    total: u32,
    signatures: SignatureMatches,
}

/// What a source's evidence window holds after one more decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub attacks: u32,
    pub total: u32,
    pub signatures: SignatureMatches,
}

impl Default for Evidence {
    fn default() -> Self {
        Self::with_cap(EVIDENCE_CAP)
    }
}

impl Evidence {
    /// Heap bytes per tracked source (see [`lru_bytes_per_entry`]); 99 on
    /// x86-64.
    pub const BYTES_PER_ENTRY: usize = lru_bytes_per_entry::<Source, Window>();

    /// At most `cap` sources (at least 1).
    pub fn with_cap(cap: usize) -> Self {
        Evidence {
            seen: LruCache::new(NonZeroUsize::new(cap.max(1)).expect("at least 1")),
        }
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records one decision about `src` (a host, or an IPv6 source's
    /// prefix) at `now`. O(1): a full map evicts its least recently seen
    /// source.
    pub fn observe(
        &mut self,
        src: impl Into<Source>,
        attack: bool,
        signatures: SignatureMatches,
        now: Instant,
        window: Duration,
    ) -> Observed {
        let fresh = Window {
            start: now,
            attacks: 0,
            total: 0,
            signatures: SignatureMatches::default(),
        };
        let w = self.seen.get_or_insert_mut(src.into(), || fresh);
        if now.duration_since(w.start) >= window {
            *w = fresh;
        }
        w.total = w.total.saturating_add(1);
        w.attacks = w.attacks.saturating_add(u32::from(attack));
        w.signatures = w.signatures.union(signatures);
        Observed {
            attacks: w.attacks,
            total: w.total,
            signatures: w.signatures,
        }
    }

    /// Enough to act: `need` attack decisions, and more than half of the
    /// source's decisions in the window.
    pub fn sufficient(o: &Observed, need: u32) -> bool {
        o.attacks >= need && u64::from(o.attacks) * 2 > u64::from(o.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn evidence_needs_a_count_and_a_majority_within_the_window() {
        let mut e = Evidence::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let atk: IpAddr = "192.0.2.1".parse().unwrap();
        // An attacker: every sample an attack; the third one is enough.
        let none = SignatureMatches::default();
        let o = e.observe(atk, true, none, at(0), w);
        assert_eq!((o.attacks, o.total), (1, 1));
        assert!(!Evidence::sufficient(
            &e.observe(atk, true, none, at(1), w),
            3
        ));
        assert!(Evidence::sufficient(
            &e.observe(atk, true, none, at(2), w),
            3
        ));
        // A busy benign client with a few stray attack calls: never enough.
        let cli: IpAddr = "198.51.100.10".parse().unwrap();
        for i in 0..100u32 {
            let o = e.observe(cli, i % 25 == 0, none, at(0), w);
            assert!(!Evidence::sufficient(&o, 3), "{o:?}");
            assert_eq!(o.attacks, i / 25 + 1);
        }
        // Signatures accumulate over the window, and the window restarts
        // once it has passed.
        let mut sqli = SignatureMatches::default();
        sqli.insert(crate::correlate::SignatureCategory::SqlInjection);
        assert_eq!(e.observe(atk, false, sqli, at(3), w).signatures, sqli);
        assert_eq!(
            e.observe(atk, true, none, at(4), w).signatures,
            sqli,
            "kept"
        );
        let o = e.observe(atk, false, none, at(10), w);
        assert_eq!((o.attacks, o.total, o.signatures), (0, 1, none));
        let o = e.observe(atk, true, none, at(11), w);
        assert_eq!((o.attacks, o.total), (1, 2));
    }

    #[test]
    fn a_flood_of_new_sources_stays_at_the_cap_and_a_busy_attacker_keeps_its_evidence() {
        let cap = 1000;
        let mut e = Evidence::with_cap(cap);
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let none = SignatureMatches::default();
        let atk: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..50_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 10);
            let spoofed = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            e.observe(spoofed, true, none, now, w);
            assert!(e.len() <= cap);
            if i % 100 == 0 {
                e.observe(atk, true, none, now, w);
            }
        }
        assert_eq!(e.len(), cap);
        // The attacker was seen every 100 new sources: never evicted, so its
        // count kept growing (500 samples, all attacks).
        let o = e.observe(atk, true, none, t0 + Duration::from_millis(500), w);
        assert_eq!((o.attacks, o.total), (501, 501));
        // The first spoofed source is long gone: it starts afresh.
        let first = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000));
        let o = e.observe(first, true, none, t0 + Duration::from_millis(500), w);
        assert_eq!(o.total, 1);
    }

    #[test]
    fn bytes_per_entry_is_about_a_hundred() {
        // docs/DETECTION.md quotes this figure.
        let b = std::hint::black_box(Evidence::BYTES_PER_ENTRY);
        assert!((64..=128).contains(&b), "{b}");
    }
}
