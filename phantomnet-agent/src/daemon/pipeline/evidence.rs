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
/// `EVIDENCE_CAP * Evidence::BYTES_PER_ENTRY` ≈ 14.4 MiB when full.
pub const EVIDENCE_CAP: usize = 131_072;

/// Per source, over a sliding window: how many of its samples the tree
/// called an attack, how many it saw, and every signature category that
/// matched. The sample that completes the evidence is often one without a
/// payload (an ACK after the request), so the enforcement record names the
/// signatures seen from the source in the window, not only its own.
///
/// The window slides: the counts of the source's previous window period
/// still weigh in, in proportion to how much of that period the window
/// ending now still covers (the sliding-window-counter estimate rate
/// limiters use). A tumbling window forgot a long-lived source's history
/// at every boundary, so a few misclassified samples right after it were a
/// fresh majority: a monitoring poller, benign for ten seconds, was
/// throttled 0.7 s into its second window. A new source has no previous
/// period, so it needs exactly the evidence it needed before.
///
/// Each entry is brought up to date when its source is next seen; an entry
/// is never scanned for, so `observe` is O(1) whatever the map holds.
#[derive(Debug)]
pub struct Evidence {
    seen: LruCache<Source, Window>,
}

/// One period's counts.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    attacks: u32,
    total: u32,
    signatures: SignatureMatches,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    /// Start of the current period; periods are one window long.
    start: Instant,
    current: Counts,
    /// The period before the current one (zero if the source was not seen
    /// in it).
    previous: Counts,
}

impl Window {
    /// A source with no decisions yet, its first period starting `now`.
    fn starting(now: Instant) -> Window {
        Window {
            start: now,
            current: Counts::default(),
            previous: Counts::default(),
        }
    }
}

/// What a source's evidence window holds after one more decision: the
/// current period's counts plus the previous period's, weighted by the
/// share of it the sliding window still covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    pub attacks: f64,
    pub total: f64,
    pub signatures: SignatureMatches,
}

impl Default for Evidence {
    fn default() -> Self {
        Self::with_cap(EVIDENCE_CAP)
    }
}

impl Evidence {
    /// Heap bytes per tracked source (see [`lru_bytes_per_entry`]); 115 on
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
        let window = window.max(Duration::from_millis(1));
        let w = self
            .seen
            .get_or_insert_mut(src.into(), || Window::starting(now));
        // Decisions arrive in time order per source; one stamped before
        // the period (a clock step) counts in the current period.
        let since = now.saturating_duration_since(w.start);
        if since >= window * 2 {
            // Not seen for a whole period: nothing of it is left.
            *w = Window::starting(now);
        } else if since >= window {
            w.previous = w.current;
            w.current = Counts::default();
            w.start += window;
        }
        let c = &mut w.current;
        c.total = c.total.saturating_add(1);
        c.attacks = c.attacks.saturating_add(u32::from(attack));
        c.signatures = c.signatures.union(signatures);
        // The share of the previous period the window ending now covers.
        let into = now.saturating_duration_since(w.start).as_secs_f64();
        let weight = (1.0 - into / window.as_secs_f64()).clamp(0.0, 1.0);
        let p = w.previous;
        Observed {
            attacks: f64::from(c.attacks) + weight * f64::from(p.attacks),
            total: f64::from(c.total) + weight * f64::from(p.total),
            signatures: if weight > 0.0 {
                c.signatures.union(p.signatures)
            } else {
                c.signatures
            },
        }
    }

    /// Enough to act: `need` attack decisions, and more than half of the
    /// source's decisions in the window.
    pub fn sufficient(o: &Observed, need: u32) -> bool {
        o.attacks >= f64::from(need) && o.attacks * 2.0 > o.total
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
        assert_eq!((o.attacks, o.total), (1.0, 1.0));
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
            assert_eq!(o.attacks, f64::from(i / 25 + 1));
        }
        // Signatures accumulate over the window.
        let mut sqli = SignatureMatches::default();
        sqli.insert(crate::correlate::SignatureCategory::SqlInjection);
        assert_eq!(e.observe(atk, false, sqli, at(3), w).signatures, sqli);
        assert_eq!(
            e.observe(atk, true, none, at(4), w).signatures,
            sqli,
            "kept"
        );
        // Two periods without the source: nothing of them is left.
        let o = e.observe(atk, false, none, at(24), w);
        assert_eq!((o.attacks, o.total, o.signatures), (0.0, 1.0, none));
        let o = e.observe(atk, true, none, at(25), w);
        assert_eq!((o.attacks, o.total), (1.0, 2.0));
    }

    #[test]
    fn at_the_default_a_fourth_call_is_needed_so_three_odd_calls_of_five_are_not_enough() {
        let need = crate::enforce::DEFAULT_MIN_EVIDENCE;
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let ms = |m: f64| t0 + Duration::from_secs_f64(m / 1000.0);
        let none = SignatureMatches::default();
        // A fresh benign session of a validation recording (r3a, seed 1,
        // `198.51.100.46`): its first twelve scorings, (ms after its first
        // packet, called an attack). Three of its first five were attack
        // calls, so three calls and a majority THROTTLEd it at 1.57 s.
        let calls = [
            (0.0, true),
            (0.159, false),
            (431.741, true),
            (432.902, false),
            (1570.653, true),
            (1570.741, false),
            (1573.011, false),
            (1577.301, false),
            (1620.972, false),
            (1950.776, false),
            (1953.109, false),
            (1953.736, false),
        ];
        let src: IpAddr = "198.51.100.46".parse().unwrap();
        let first_enforced = |need: u32| {
            let mut e = Evidence::default();
            calls.iter().position(|&(m, attack)| {
                attack && Evidence::sufficient(&e.observe(src, attack, none, ms(m), w), need)
            })
        };
        assert_eq!(first_enforced(3), Some(4), "three calls of five");
        assert_eq!(first_enforced(need), None, "at the default: {need}");
        // A flood is still enforced at its `need`th call.
        let mut e = Evidence::default();
        let flood: IpAddr = "192.0.2.1".parse().unwrap();
        let at = (0..10u32)
            .position(|i| {
                let now = ms(f64::from(i) * 0.1);
                Evidence::sufficient(&e.observe(flood, true, none, now, w), need)
            })
            .map(|i| i + 1);
        assert_eq!(at, Some(need as usize));
    }

    #[test]
    fn the_window_slides_so_a_long_benign_history_outweighs_a_few_stray_calls_after_a_boundary() {
        let mut e = Evidence::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let ms = |m: u64| t0 + Duration::from_millis(m);
        let none = SignatureMatches::default();
        // A poller scored twice a second for 10 s, benign but for one call.
        let poller: IpAddr = "198.51.100.104".parse().unwrap();
        for i in 0..20u64 {
            let o = e.observe(poller, i == 7, none, ms(i * 500), w);
            assert!(!Evidence::sufficient(&o, 3));
        }
        // Just past the boundary, three attack calls in a row: a fresh
        // majority of a tumbling window, not of the sliding one (the 20
        // calls of the period before still weigh in at 0.93).
        for (k, m) in [10_100u64, 10_400, 10_700].into_iter().enumerate() {
            let o = e.observe(poller, true, none, ms(m), w);
            assert_eq!(o.attacks.round() as usize, 1 + k + 1, "{o:?}");
            assert!(o.total > 20.0, "{o:?}");
            assert!(!Evidence::sufficient(&o, 3), "{o:?}");
        }
        // Its history fades as the window slides: if the source keeps
        // being called an attack, the majority comes within the period.
        let mut enforced_at = None;
        for m in (11_000..20_000).step_by(500) {
            if Evidence::sufficient(&e.observe(poller, true, none, ms(m), w), 3) {
                enforced_at = Some(m);
                break;
            }
        }
        let at = enforced_at.expect("a persistent attacker is enforced within the period");
        assert!((11_000..16_000).contains(&at), "{at}");
        // The previous period's signatures are named while it weighs in.
        let mut sqli = SignatureMatches::default();
        sqli.insert(crate::correlate::SignatureCategory::SqlInjection);
        let web: IpAddr = "192.0.2.9".parse().unwrap();
        e.observe(web, true, sqli, ms(9_000), w);
        assert_eq!(e.observe(web, true, none, ms(19_500), w).signatures, sqli);
        // ... and no longer once it has slid out.
        assert_eq!(e.observe(web, true, none, ms(29_500), w).signatures, none);
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
        assert_eq!((o.attacks, o.total), (501.0, 501.0));
        // The first spoofed source is long gone: it starts afresh.
        let first = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000));
        let o = e.observe(first, true, none, t0 + Duration::from_millis(500), w);
        assert_eq!(o.total, 1.0);
    }

    #[test]
    fn bytes_per_entry_is_about_a_hundred() {
        // docs/DETECTION.md quotes this figure.
        let b = std::hint::black_box(Evidence::BYTES_PER_ENTRY);
        assert!((64..=128).contains(&b), "{b}");
    }
}
