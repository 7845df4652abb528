//! What of the decisions reaches the journal: a per-(source, action) repeat
//! filter, then a global budget. An attacker chooses how many sources we
//! see; the repeat filter alone bounds records per source, not in total
//! (a spoofed flood of 100k new sources a second journaled 72 MB in 20 s).
use std::{
    net::{IpAddr, Ipv4Addr},
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use lru::LruCache;
use phantomnet_common::EventAction;

use crate::{decide::Action, enforce::lru_bytes_per_entry, flow::Source, journal::NewEvent};

/// At most one repeated (non-enforcing) record per source and action this often.
pub const JOURNAL_REPEAT: Duration = Duration::from_secs(60);
/// Most (source, action) pairs the repeat filter remembers; the least
/// recently journaled is forgotten first (O(1)), so a flood forgets only
/// its own oldest sources, never the whole filter. ≈ 11 MiB when full.
pub const GATE_CAP: usize = 131_072;
/// Routine records (LOG, awaiting evidence, dry-run, allowlisted,
/// unchanged, fallback, failures): sustained rate and burst, all sources
/// together.
pub const ROUTINE_PER_SEC: f64 = 20.0;
pub const ROUTINE_BURST: f64 = 200.0;
/// Enforcement records (new, upgraded or refreshed rules): a larger bound,
/// since each one changed what is in force.
pub const ENFORCEMENT_PER_SEC: f64 = 200.0;
pub const ENFORCEMENT_BURST: f64 = 2000.0;
/// At most one summary record of what the budget dropped this often.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// The `rule` of a summary record.
pub const SUMMARY_RULE: &str = "journal-budget";

/// Which budget a record draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    Routine,
    Enforcement,
}

/// What [`JournalSieve::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Write it.
    Write,
    /// Journaled for this (source, action) within `JOURNAL_REPEAT`: not a record.
    Repeat,
    /// A record, but the budget is spent: counted for the next summary.
    Suppressed,
}

/// A token bucket over a monotonic clock: `rate` tokens a second, at most
/// `burst` saved up.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: None,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            let earned = now.saturating_duration_since(at).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The repeat filter and the global budget, with the count of what the
/// budget dropped since the last summary.
#[derive(Debug)]
pub struct JournalSieve {
    /// When each (source, action) was last journaled (or would have been).
    gate: LruCache<(Source, Action), Instant>,
    routine: Bucket,
    enforcement: Bucket,
    /// Dropped since the last summary: routine, enforcement.
    suppressed: [u64; 2],
    since: Option<Instant>,
}

impl Default for JournalSieve {
    fn default() -> Self {
        Self::new(GATE_CAP)
    }
}

impl JournalSieve {
    /// Heap bytes per remembered (source, action); 83 on x86-64.
    pub const BYTES_PER_ENTRY: usize = lru_bytes_per_entry::<(Source, Action), Instant>();

    pub fn new(gate_cap: usize) -> JournalSieve {
        JournalSieve {
            gate: LruCache::new(NonZeroUsize::new(gate_cap.max(1)).expect("at least 1")),
            routine: Bucket::new(ROUTINE_PER_SEC, ROUTINE_BURST),
            enforcement: Bucket::new(ENFORCEMENT_PER_SEC, ENFORCEMENT_BURST),
            suppressed: [0; 2],
            since: None,
        }
    }

    /// (source, action) pairs remembered.
    pub fn remembered(&self) -> usize {
        self.gate.len()
    }

    /// Whether a record about `source` and `action` is written at `now`.
    /// A routine record passes the repeat filter first; an enforcement
    /// record always does. Either then needs a token from its bucket. The
    /// filter is updated even when the budget drops the record, so the
    /// count in the summary is of records, not of samples. O(1).
    pub fn admit(
        &mut self,
        source: impl Into<Source>,
        action: Action,
        kind: Record,
        now: Instant,
    ) -> Admit {
        self.since.get_or_insert(now);
        let key = (source.into(), action);
        if kind == Record::Routine
            && self
                .gate
                .peek(&key)
                .is_some_and(|t| now.saturating_duration_since(*t) < JOURNAL_REPEAT)
        {
            return Admit::Repeat;
        }
        self.gate.put(key, now);
        let (bucket, i) = match kind {
            Record::Routine => (&mut self.routine, 0),
            Record::Enforcement => (&mut self.enforcement, 1),
        };
        if bucket.take(now) {
            Admit::Write
        } else {
            self.suppressed[i] += 1;
            Admit::Suppressed
        }
    }

    /// Records dropped since the last summary: (routine, enforcement).
    pub fn pending(&self) -> (u64, u64) {
        (self.suppressed[0], self.suppressed[1])
    }

    /// The summary record, once `SUMMARY_EVERY` has passed since the last
    /// one (or since counting began) and something was dropped. It is an
    /// ordinary unassessed event (verdict `NONE`, rule `journal-budget`,
    /// action LOG, source 0.0.0.0): no new stored format.
    pub fn summary(&mut self, now: Instant, time_unix_ns: u64) -> Option<NewEvent> {
        let since = *self.since.get_or_insert(now);
        let span = now.saturating_duration_since(since);
        if span < SUMMARY_EVERY {
            return None;
        }
        self.since = Some(now);
        let [routine, enforcement] = std::mem::take(&mut self.suppressed);
        if routine + enforcement == 0 {
            return None;
        }
        Some(NewEvent::unassessed(
            time_unix_ns,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            EventAction::Apply(Action::Log),
            SUMMARY_RULE,
            format!(
                "journal budget spent: {} records not written in the last {}s \
                 ({routine} routine, budget {ROUTINE_PER_SEC}/s; {enforcement} enforcement, \
                 budget {ENFORCEMENT_PER_SEC}/s); every enforcement is still in force and counted \
                 in phantomnet_enforcements_total",
                routine + enforcement,
                span.as_secs()
            ),
        ))
    }
}

/// A warning that may fire on every sample (a full map under a flood)
/// becomes at most one log line per `every`, carrying how many times it
/// happened since the last line.
#[derive(Debug)]
pub struct LogLimiter {
    every: Duration,
    last: Option<Instant>,
    pending: u64,
}

impl LogLimiter {
    pub const fn new(every: Duration) -> LogLimiter {
        LogLimiter {
            every,
            last: None,
            pending: 0,
        }
    }

    /// Counts one occurrence; `Some(n)` when a line is due now, `n` being
    /// the occurrences it reports (this one included).
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.pending += 1;
        self.flush(now)
    }

    /// `Some(n)` when occurrences are pending and a line is due.
    pub fn flush(&mut self, now: Instant) -> Option<u64> {
        if self.pending == 0
            || self
                .last
                .is_some_and(|t| now.saturating_duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn repeats_are_filtered_per_source_and_action() {
        let mut s = JournalSieve::default();
        let t0 = Instant::now();
        assert_eq!(
            s.admit(src(1), Action::Log, Record::Routine, t0),
            Admit::Write
        );
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(
            s.admit(src(1), Action::Log, Record::Routine, t1),
            Admit::Repeat
        );
        assert_eq!(
            s.admit(src(1), Action::Throttle, Record::Routine, t1),
            Admit::Write
        );
        assert_eq!(
            s.admit(src(1), Action::Log, Record::Enforcement, t1),
            Admit::Write
        );
        let t2 = t1 + JOURNAL_REPEAT;
        assert_eq!(
            s.admit(src(1), Action::Log, Record::Routine, t2),
            Admit::Write
        );
    }

    #[test]
    fn the_repeat_filter_stays_at_its_cap_and_forgets_only_the_oldest() {
        let mut s = JournalSieve::new(100);
        let t0 = Instant::now();
        for i in 0..10_000 {
            s.admit(src(i), Action::Log, Record::Routine, t0);
            assert!(s.remembered() <= 100);
        }
        assert_eq!(s.remembered(), 100);
        // The newest 100 are still filtered; the oldest were forgotten.
        assert_eq!(
            s.admit(src(9_999), Action::Log, Record::Routine, t0),
            Admit::Repeat
        );
        assert_eq!(
            s.admit(src(9_900), Action::Log, Record::Routine, t0),
            Admit::Repeat
        );
        assert_ne!(
            s.admit(src(0), Action::Log, Record::Routine, t0),
            Admit::Repeat
        );
    }

    #[test]
    fn the_budget_bounds_records_in_total_and_a_summary_counts_the_rest() {
        let mut s = JournalSieve::default();
        let t0 = Instant::now();
        // 100,000 new sources over 20 s.
        let (mut written, mut dropped) = (0u64, 0u64);
        let mut summaries = Vec::new();
        for i in 0..100_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 200);
            match s.admit(src(i), Action::Log, Record::Routine, now) {
                Admit::Write => written += 1,
                Admit::Suppressed => dropped += 1,
                Admit::Repeat => panic!("every source is new"),
            }
            if i % 1024 == 1023 {
                summaries.extend(s.summary(now, 0));
            }
        }
        let bound = ROUTINE_BURST + ROUTINE_PER_SEC * 20.0 + 1.0;
        assert!(written as f64 <= bound, "{written} > {bound}");
        assert!(
            written as f64 >= bound - 2.0,
            "{written}: the budget is used"
        );
        assert_eq!(written + dropped, 100_000);
        // One summary per 10 s: the first at 10 s, none at 20 s yet.
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        let counted: u64 = summaries
            .iter()
            .map(|e| {
                let n = e.reason.split_whitespace().nth(3).unwrap();
                n.parse::<u64>().unwrap()
            })
            .sum();
        let (r, e) = s.pending();
        assert_eq!(counted + r + e, dropped);
        assert_eq!(summaries[0].rule, SUMMARY_RULE);
        assert_eq!(summaries[0].verdict, "NONE");
        // Enforcement records have their own, larger bucket.
        let now = t0 + Duration::from_secs(20);
        assert_eq!(
            s.admit(src(1), Action::Block, Record::Enforcement, now),
            Admit::Write
        );
    }

    #[test]
    fn a_summary_is_an_ordinary_journal_event() {
        let dir = tempfile::tempdir().unwrap();
        let j = crate::journal::Journal::open(dir.path().join("j"), Default::default()).unwrap();
        let mut s = JournalSieve::new(10);
        let t0 = Instant::now();
        for i in 0..3000 {
            s.admit(src(i), Action::Block, Record::Enforcement, t0);
        }
        assert_eq!(s.pending(), (0, 3000 - ENFORCEMENT_BURST as u64));
        assert!(
            s.summary(t0 + Duration::from_secs(1), 1).is_none(),
            "not yet due"
        );
        let e = s.summary(t0 + SUMMARY_EVERY, 7).unwrap();
        assert_eq!(s.pending(), (0, 0));
        let id = j.append(e.clone()).unwrap();
        let got = j.get(id).unwrap().unwrap();
        assert_eq!(crate::journal::JournalEvent::from_new(id, e), got);
        // Nothing dropped since: no summary.
        assert!(s.summary(t0 + 2 * SUMMARY_EVERY, 8).is_none());
    }

    #[test]
    fn the_log_limiter_reports_once_per_interval_with_a_count() {
        let mut l = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.note(t0), Some(1), "the first one at once");
        let mut lines = Vec::new();
        for i in 1..=100_000u64 {
            let now = t0 + Duration::from_micros(i * 250); // 25 s
            lines.extend(l.note(now));
        }
        assert_eq!(lines.len(), 2, "{lines:?}");
        let now = t0 + Duration::from_secs(40);
        lines.extend(l.flush(now));
        assert_eq!(lines.iter().sum::<u64>(), 100_000);
        assert_eq!(l.flush(now + Duration::from_secs(60)), None);
    }
}
