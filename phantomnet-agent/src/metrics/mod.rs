//! Prometheus metrics ([`prometheus_client`]) and the `/metrics` HTTP
//! endpoint (hyper 1, HTTP/1.1 only).
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `phantomnet_xdp_packets_total` | counter, set from the data plane's absolute totals | `outcome`, `interface` |
//! | `phantomnet_xdp_bytes_total` | counter, set from the data plane's absolute totals | `outcome`, `interface` |
//! | `phantomnet_samples_read_total` | counter | |
//! | `phantomnet_samples_lost_total` | counter | |
//! | `phantomnet_decisions_total` | counter | `action` |
//! | `phantomnet_active_rules` | gauge | `action` |
//! | `phantomnet_inference_seconds` | histogram, 1 µs … 10 ms | |
//! | `phantomnet_flow_table_sources` | gauge | |
//! | `phantomnet_enforcements_total` | counter: the detector's new enforcements | `action`, `rule` (`rule-1` … the decision tree's rule) |
//! | `phantomnet_feed_entries` | gauge: entries in each feed's last good list (`feed="all"`: merged) | `feed` |
//! | `phantomnet_feed_checks_total` | counter | `feed`, `result` (`updated`, `not_modified`, `failed`) |
//! | `phantomnet_feed_last_success_timestamp_seconds` | gauge | `feed` |
//! | `phantomnet_feed_blocked` | gauge: BLOCK entries a `block = true` feed holds | `feed` |
//! | `phantomnet_crowdsec_decisions_total` | counter: LAPI decisions applied | `op` (`block`, `unblock`, `skipped`) |
//! | `phantomnet_crowdsec_polls_total` | counter: decision-stream polls | `result` (`ok`, `failed`) |
//! | `phantomnet_crowdsec_alerts_total` | counter: alerts pushed to the LAPI | `result` (`pushed`, `failed`, `dropped`) |
//! | `phantomnet_top_blocked_hits` | gauge: packets dropped by the 10 busiest BLOCK entries | `prefix`, `reason` |
//! | `phantomnet_journal_suppressed_total` | counter: journal records the pipeline's global budget dropped | `record` (`routine`, `enforcement`) |
//! | `phantomnet_journal_queue_dropped_total` | counter: journal records dropped because the journal writer was behind (its queue full) | |
//! | `phantomnet_refusals_total` | counter: the inside observer's refusal samples the detector read (counted against the outside source they refuse) | |
//! | `phantomnet_answers_total` | counter: the inside observer's answer samples the detector read (counted against the outside source they answer) | |
//! | `phantomnet_deceive_queue` | gauge: detections' DECEIVEs queued for nftables, not yet applied (set before each batch) | |
//! | `phantomnet_map_full_total` | counter: rule writes refused because the map was full | `map` (`PN_BLOCK_V4`, …) |
//! | `phantomnet_signature_rules` | gauge: signature rules in force (unexpired) | |
//! | `phantomnet_signature_matched_total` | counter, set from the data plane's absolute counts: packets a signature rule matched | `id`, `rule` (its text form; at most 64 series) |
//! | `phantomnet_signature_dropped_total` | counter, likewise: matched and dropped | `id`, `rule` |
//! | `phantomnet_signature_exempted_total` | counter, likewise: matched but let through as known-good | `id`, `rule` |
//!
//! The exposition is OpenMetrics text (`application/openmetrics-text;
//! version=1.0.0`), which Prometheus scrapes natively. Every update on the
//! hot path (decisions, inference, samples) is a single atomic operation on
//! a pre-created series: no lock, no allocation.

mod server;

#[cfg(test)]
mod tests;

use std::sync::{Mutex, atomic::Ordering};
use std::time::Duration;

use phantomnet_common::{Action, Outcome, RuleKind};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use server::{OPENMETRICS_CONTENT_TYPE, bind, serve};

/// Inference-time histogram buckets, in seconds: 1-2-5 steps from 1 µs to
/// 10 ms.
pub const INFERENCE_BUCKETS: [f64; 13] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2,
];

/// The outcome of one threat-feed check (the feed runner's), also the `result` label of
/// `phantomnet_feed_checks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedCheck {
    Updated,
    NotModified,
    Failed,
}

impl FeedCheck {
    pub const ALL: [FeedCheck; 3] = [
        FeedCheck::Updated,
        FeedCheck::NotModified,
        FeedCheck::Failed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            FeedCheck::Updated => "updated",
            FeedCheck::NotModified => "not_modified",
            FeedCheck::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct XdpLabels {
    outcome: &'static str,
    interface: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnforceLabels {
    action: &'static str,
    rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabels {
    feed: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedCheckLabels {
    feed: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    record: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MapLabels {
    map: &'static str,
}

/// The maps a rule write can find full: the `map` label's values (four
/// series, created up front).
const RULE_MAPS: [&str; 4] = [
    phantomnet_common::maps::BLOCK_V4,
    phantomnet_common::maps::BLOCK_V6,
    phantomnet_common::maps::THROTTLE_RULE_V4,
    phantomnet_common::maps::THROTTLE_RULE_V6,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopLabels {
    prefix: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SigLabels {
    id: String,
    rule: String,
}

/// One signature rule's counts, as the data plane reports them (absolute,
/// summed over CPUs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCounts {
    pub id: u32,
    /// The rule's text form.
    pub rule: String,
    pub matched: u64,
    pub dropped: u64,
    pub exempted: u64,
}

/// The most signature rules with series: the data plane's slots.
pub const SIGNATURE_SERIES: usize = phantomnet_common::capacity::SIG_SLOTS as usize;

/// How many BLOCK entries `phantomnet_top_blocked_hits` shows (its series
/// are bounded by this, whatever an attacker does).
pub const TOP_BLOCKED: usize = 10;

/// Errors from the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics endpoint: cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics endpoint: {0}")]
    Io(#[from] std::io::Error),
}

/// Every PhantomNet metric. Share it in an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    xdp_packets: Family<XdpLabels, Counter>,
    xdp_bytes: Family<XdpLabels, Counter>,
    samples_read: Counter,
    samples_lost: Counter,
    /// Handles into the `decisions` family, one per action.
    decisions: [Counter; Action::ALL.len()],
    /// Handles into the `active_rules` family, one per action.
    active_rules: [Gauge; RuleKind::ALL.len()],
    inference: Histogram,
    flow_table_sources: Gauge,
    refusals: Counter,
    answers: Counter,
    deceive_queue: Gauge,
    enforcements: Family<EnforceLabels, Counter>,
    feed_entries: Family<FeedLabels, Gauge>,
    feed_checks: Family<FeedCheckLabels, Counter>,
    feed_last_success: Family<FeedLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    feed_blocked: Family<FeedLabels, Gauge>,
    crowdsec_decisions: Family<OpLabels, Counter>,
    crowdsec_polls: Family<ResultLabels, Counter>,
    crowdsec_alerts: Family<ResultLabels, Counter>,
    top_blocked: Family<TopLabels, Gauge>,
    /// `routine`, then `enforcement`.
    journal_suppressed: [Counter; 2],
    journal_queue_dropped: Counter,
    map_full: Family<MapLabels, Counter>,
    signature_rules: Gauge,
    /// matched, dropped, exempted.
    signature_packets: [Family<SigLabels, Counter>; 3],
    /// The signature series now exported (removed when their rule goes).
    signature_series: Mutex<Vec<SigLabels>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();

        let xdp_packets = Family::<XdpLabels, Counter>::default();
        registry.register(
            "phantomnet_xdp_packets",
            "Packets the XDP program handled, by outcome and interface (absolute totals read from the data plane's per-CPU counters)",
            xdp_packets.clone(),
        );
        let xdp_bytes = Family::<XdpLabels, Counter>::default();
        registry.register(
            "phantomnet_xdp_bytes",
            "Bytes the XDP program handled, by outcome and interface (absolute totals read from the data plane's per-CPU counters)",
            xdp_bytes.clone(),
        );

        let samples_read = Counter::default();
        registry.register(
            "phantomnet_samples_read",
            "Packet samples read from the ring buffer",
            samples_read.clone(),
        );
        let samples_lost = Counter::default();
        registry.register(
            "phantomnet_samples_lost",
            "Packet samples lost because the ring buffer was full",
            samples_lost.clone(),
        );

        let decisions_family = Family::<ActionLabels, Counter>::default();
        registry.register(
            "phantomnet_decisions",
            "Decisions taken, by action",
            decisions_family.clone(),
        );
        let decisions = Action::ALL.map(|a| {
            decisions_family
                .get_or_create(&ActionLabels { action: a.name() })
                .clone()
        });

        let rules_family = Family::<ActionLabels, Gauge>::default();
        registry.register(
            "phantomnet_active_rules",
            "Rules in force (allow, block and throttle map entries, deceptions), by kind",
            rules_family.clone(),
        );
        let active_rules = RuleKind::ALL.map(|a| {
            rules_family
                .get_or_create(&ActionLabels { action: a.name() })
                .clone()
        });

        let inference = Histogram::new(INFERENCE_BUCKETS);
        registry.register(
            "phantomnet_inference_seconds",
            "Time to score one flow (features to decision)",
            inference.clone(),
        );

        let flow_table_sources = Gauge::default();
        registry.register(
            "phantomnet_flow_table_sources",
            "Sources tracked in the flow table",
            flow_table_sources.clone(),
        );

        let refusals = Counter::default();
        registry.register(
            "phantomnet_refusals",
            "Refusal samples read from the inside observer (TCP resets and ICMP unreachables the protected side sent outside hosts)",
            refusals.clone(),
        );
        let answers = Counter::default();
        registry.register(
            "phantomnet_answers",
            "Answer samples read from the inside observer (segments of established TCP connections and UDP datagrams the protected side sent outside hosts)",
            answers.clone(),
        );

        let deceive_queue = Gauge::default();
        registry.register(
            "phantomnet_deceive_queue",
            "Detections' DECEIVEs queued for nftables, not yet applied",
            deceive_queue.clone(),
        );

        let enforcements = Family::<EnforceLabels, Counter>::default();
        registry.register(
            "phantomnet_enforcements",
            "New enforcements by the detector (not refreshes), by action and decision-tree rule",
            enforcements.clone(),
        );
        let feed_entries = Family::<FeedLabels, Gauge>::default();
        registry.register(
            "phantomnet_feed_entries",
            "Entries in each threat feed's last good list (feed=\"all\": the merged list the correlator reads)",
            feed_entries.clone(),
        );
        let feed_checks = Family::<FeedCheckLabels, Counter>::default();
        registry.register(
            "phantomnet_feed_checks",
            "Threat feed checks, by feed and result",
            feed_checks.clone(),
        );
        let feed_last_success =
            Family::<FeedLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "phantomnet_feed_last_success_timestamp_seconds",
            "Unix time of each threat feed's last successful check",
            feed_last_success.clone(),
        );
        let feed_blocked = Family::<FeedLabels, Gauge>::default();
        registry.register(
            "phantomnet_feed_blocked",
            "BLOCK entries held by each block = true threat feed",
            feed_blocked.clone(),
        );
        let crowdsec_decisions = Family::<OpLabels, Counter>::default();
        registry.register(
            "phantomnet_crowdsec_decisions",
            "CrowdSec LAPI decisions applied, by operation",
            crowdsec_decisions.clone(),
        );
        let crowdsec_polls = Family::<ResultLabels, Counter>::default();
        registry.register(
            "phantomnet_crowdsec_polls",
            "CrowdSec decision-stream polls, by result",
            crowdsec_polls.clone(),
        );
        let crowdsec_alerts = Family::<ResultLabels, Counter>::default();
        registry.register(
            "phantomnet_crowdsec_alerts",
            "Alerts pushed to the CrowdSec LAPI, by result",
            crowdsec_alerts.clone(),
        );
        for r in ["ok", "failed"] {
            let _ = crowdsec_polls.get_or_create(&ResultLabels { result: r });
        }
        for r in ["pushed", "failed", "dropped"] {
            let _ = crowdsec_alerts.get_or_create(&ResultLabels { result: r });
        }
        for o in ["block", "unblock", "skipped"] {
            let _ = crowdsec_decisions.get_or_create(&OpLabels { op: o });
        }
        let top_blocked = Family::<TopLabels, Gauge>::default();
        registry.register(
            "phantomnet_top_blocked_hits",
            "Packets dropped by the busiest BLOCK entries (at most 10 series)",
            top_blocked.clone(),
        );

        let suppressed_family = Family::<RecordLabels, Counter>::default();
        registry.register(
            "phantomnet_journal_suppressed",
            "Journal records not written because the pipeline's global journal budget was spent (one summary record per interval counts them)",
            suppressed_family.clone(),
        );
        let journal_suppressed = ["routine", "enforcement"].map(|record| {
            suppressed_family
                .get_or_create(&RecordLabels { record })
                .clone()
        });
        let journal_queue_dropped = Counter::default();
        registry.register(
            "phantomnet_journal_queue_dropped",
            "Journal records dropped because the journal writer was behind and its queue was full (what they recorded was enforced)",
            journal_queue_dropped.clone(),
        );
        let map_full = Family::<MapLabels, Counter>::default();
        registry.register(
            "phantomnet_map_full",
            "Rule writes refused because the map was full (the rules already in it stay in force)",
            map_full.clone(),
        );
        for map in RULE_MAPS {
            let _ = map_full.get_or_create(&MapLabels { map });
        }

        let signature_rules = Gauge::default();
        registry.register(
            "phantomnet_signature_rules",
            "Signature rules in force (unexpired), whatever set them",
            signature_rules.clone(),
        );
        let signature_packets = [
            (
                "phantomnet_signature_matched",
                "Packets each signature rule matched (absolute totals read from the data plane; at most 64 rules)",
            ),
            (
                "phantomnet_signature_dropped",
                "Packets each signature rule matched and dropped (in dry-run: would have dropped)",
            ),
            (
                "phantomnet_signature_exempted",
                "Packets each signature rule matched but let through because the source is known-good",
            ),
        ]
        .map(|(name, help)| {
            let family = Family::<SigLabels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        });

        Metrics {
            registry,
            signature_rules,
            signature_packets,
            signature_series: Mutex::new(Vec::new()),
            journal_suppressed,
            journal_queue_dropped,
            map_full,
            enforcements,
            feed_entries,
            feed_checks,
            feed_last_success,
            feed_blocked,
            crowdsec_decisions,
            crowdsec_polls,
            crowdsec_alerts,
            top_blocked,
            xdp_packets,
            xdp_bytes,
            samples_read,
            samples_lost,
            decisions,
            active_rules,
            inference,
            flow_table_sources,
            refusals,
            answers,
            deceive_queue,
        }
    }

    /// Sets the absolute packet and byte totals the data plane reports for
    /// `outcome` on `interface` (summed over CPUs). The series are counters:
    /// the totals only grow while the pinned maps live; if the maps are
    /// recreated the values drop, which Prometheus treats as a counter reset.
    pub fn set_xdp_totals(&self, interface: &str, outcome: Outcome, packets: u64, bytes: u64) {
        let labels = XdpLabels {
            outcome: outcome.name(),
            interface: interface.to_string(),
        };
        self.xdp_packets
            .get_or_create(&labels)
            .inner()
            .store(packets, Ordering::Relaxed);
        self.xdp_bytes
            .get_or_create(&labels)
            .inner()
            .store(bytes, Ordering::Relaxed);
    }

    /// Drops the XDP series of an interface that is no longer attached.
    pub fn remove_interface(&self, interface: &str) {
        for outcome in Outcome::ALL {
            let labels = XdpLabels {
                outcome: outcome.name(),
                interface: interface.to_string(),
            };
            self.xdp_packets.remove(&labels);
            self.xdp_bytes.remove(&labels);
        }
    }

    /// `n` more samples were read from the ring buffer.
    pub fn samples_read(&self, n: u64) {
        self.samples_read.inc_by(n);
    }

    /// `n` more samples were lost.
    pub fn samples_lost(&self, n: u64) {
        self.samples_lost.inc_by(n);
    }

    /// Sets the lost-sample total from an absolute count (e.g. the data
    /// plane's `sample_lost` counter summed over interfaces).
    pub fn set_samples_lost_total(&self, total: u64) {
        self.samples_lost.inner().store(total, Ordering::Relaxed);
    }

    /// One decision with `action` was taken.
    pub fn decision(&self, action: Action) {
        self.decisions[usize::from(action.priority())].inc();
    }

    /// `n` rules of `kind` are in force.
    pub fn set_active_rules(&self, kind: RuleKind, n: u64) {
        self.active_rules[kind as usize].set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One inference took `d`.
    pub fn inference(&self, d: Duration) {
        self.inference.observe(d.as_secs_f64());
    }

    /// The flow table tracks `n` sources.
    pub fn set_flow_table_sources(&self, n: u64) {
        self.flow_table_sources
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// `n` refusal samples (`sampling::Reply::Refusal`) were read.
    pub fn refusals(&self, n: u64) {
        self.refusals.inc_by(n);
    }

    /// `n` answer samples (`sampling::Reply::Answer`) were read.
    pub fn answers(&self, n: u64) {
        self.answers.inc_by(n);
    }

    /// `n` DECEIVEs wait for nftables.
    pub fn set_deceive_queue(&self, n: usize) {
        self.deceive_queue.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The detector newly enforced `action` on a source, by tree rule
    /// `rule` (a handful of values: the series stay bounded).
    pub fn enforced(&self, action: Action, rule: u8) {
        self.enforcements
            .get_or_create(&EnforceLabels {
                action: action.name(),
                rule: format!("rule-{rule}"),
            })
            .inc();
    }

    pub fn set_feed_entries(&self, feed: &str, n: u64) {
        self.feed_entries
            .get_or_create(&FeedLabels {
                feed: feed.to_string(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn feed_checked(&self, feed: &str, result: FeedCheck) {
        self.feed_checks
            .get_or_create(&FeedCheckLabels {
                feed: feed.to_string(),
                result: result.name(),
            })
            .inc();
    }

    pub fn set_feed_last_success(&self, feed: &str, unix_secs: f64) {
        self.feed_last_success
            .get_or_create(&FeedLabels {
                feed: feed.to_string(),
            })
            .set(unix_secs);
    }

    pub fn set_feed_blocked(&self, feed: &str, n: u64) {
        self.feed_blocked
            .get_or_create(&FeedLabels {
                feed: feed.to_string(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Drops the series of a feed no longer configured.
    pub fn remove_feed(&self, feed: &str) {
        let l = FeedLabels {
            feed: feed.to_string(),
        };
        self.feed_entries.remove(&l);
        self.feed_last_success.remove(&l);
        self.feed_blocked.remove(&l);
        for r in FeedCheck::ALL {
            self.feed_checks.remove(&FeedCheckLabels {
                feed: feed.to_string(),
                result: r.name(),
            });
        }
    }

    /// `op` is `block`, `unblock` or `skipped`.
    pub fn crowdsec_decisions(&self, op: &'static str, n: u64) {
        self.crowdsec_decisions
            .get_or_create(&OpLabels { op })
            .inc_by(n);
    }

    pub fn crowdsec_poll(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.crowdsec_polls
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// `result` is `pushed`, `failed` or `dropped`.
    pub fn crowdsec_alerts(&self, result: &'static str, n: u64) {
        self.crowdsec_alerts
            .get_or_create(&ResultLabels { result })
            .inc_by(n);
    }

    /// Replaces the top-BLOCK series with `top` (prefix, reason, hits),
    /// keeping at most [`TOP_BLOCKED`].
    pub fn set_top_blocked(&self, top: &[(String, String, u64)]) {
        self.top_blocked.clear();
        for (prefix, reason, hits) in top.iter().take(TOP_BLOCKED) {
            self.top_blocked
                .get_or_create(&TopLabels {
                    prefix: prefix.clone(),
                    reason: reason.clone(),
                })
                .set(i64::try_from(*hits).unwrap_or(i64::MAX));
        }
    }

    /// `n` journal records were dropped by the global budget; `enforcement`
    /// says which of its two buckets was spent.
    pub fn journal_suppressed(&self, enforcement: bool, n: u64) {
        self.journal_suppressed[usize::from(enforcement)].inc_by(n);
    }

    /// `n` journal records were dropped because the writer's queue was full.
    pub fn journal_queue_dropped(&self, n: u64) {
        self.journal_queue_dropped.inc_by(n);
    }

    /// A rule write was refused because `map` (a pinned map's name) is full.
    /// A name outside the rule maps gets its own series: only the agent's
    /// map constants are passed, so the series stay bounded.
    pub fn map_full(&self, map: &'static str) {
        self.map_full.get_or_create(&MapLabels { map }).inc();
    }

    /// Sets the signature-rule series: `live` rules in force, and each
    /// installed rule's counts (at most [`SIGNATURE_SERIES`]; the series of
    /// a rule no longer listed are removed, so they stay bounded).
    pub fn set_signatures(&self, live: u64, rules: &[SignatureCounts]) {
        self.signature_rules
            .set(i64::try_from(live).unwrap_or(i64::MAX));
        let mut series = self
            .signature_series
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now: Vec<SigLabels> = rules
            .iter()
            .take(SIGNATURE_SERIES)
            .map(|r| SigLabels {
                id: r.id.to_string(),
                rule: r.rule.clone(),
            })
            .collect();
        for gone in series.iter().filter(|l| !now.contains(l)) {
            for family in &self.signature_packets {
                family.remove(gone);
            }
        }
        for (labels, r) in now.iter().zip(rules) {
            for (family, v) in self
                .signature_packets
                .iter()
                .zip([r.matched, r.dropped, r.exempted])
            {
                family
                    .get_or_create(labels)
                    .inner()
                    .store(v, Ordering::Relaxed);
            }
        }
        *series = now;
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding metrics into a String");
        out
    }
}
