//! What the journal stores and how it is asked: events, queries, retention.
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use phantomnet_common::EventAction;
use serde::{Deserialize, Serialize};

/// How long events are kept and how large the journal file may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub max_bytes: u64,
}

impl Default for Retention {
    /// 7 days, 256 MiB (the configuration defaults).
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 256 << 20,
        }
    }
}

/// An event to append: everything but the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub time_unix_ns: u64,
    pub source: IpAddr,
    #[serde(with = "super::codec::action_by_name")]
    pub action: EventAction,
    /// One of [`VERDICTS`].
    pub verdict: String,
    pub confidence: f64,
    pub anomaly: f64,
    pub threat: f64,
    /// The decision rule that fired.
    pub rule: String,
    pub reason: String,
    pub features: Vec<f64>,
}

impl NewEvent {
    /// An action no threat assessment preceded (verdict `NONE`, zero scores,
    /// no features): an operator's, or an integration's, named by `rule`
    /// ("api", "crowdsec", a feed's label).
    pub fn unassessed(
        time_unix_ns: u64,
        source: IpAddr,
        action: EventAction,
        rule: &str,
        reason: String,
    ) -> NewEvent {
        NewEvent {
            time_unix_ns,
            source,
            action,
            verdict: "NONE".to_string(),
            confidence: 0.0,
            anomaly: 0.0,
            threat: 0.0,
            rule: rule.to_string(),
            reason,
            features: Vec::new(),
        }
    }
}

/// A journaled event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// Assigned by the journal: strictly increasing, never reused.
    pub id: u64,
    pub time_unix_ns: u64,
    pub source: IpAddr,
    #[serde(with = "super::codec::action_by_name")]
    pub action: EventAction,
    pub verdict: String,
    pub confidence: f64,
    pub anomaly: f64,
    pub threat: f64,
    pub rule: String,
    pub reason: String,
    pub features: Vec<f64>,
}

impl JournalEvent {
    /// The event `e` as stored under `id`.
    pub fn from_new(id: u64, e: NewEvent) -> JournalEvent {
        JournalEvent {
            id,
            time_unix_ns: e.time_unix_ns,
            source: e.source,
            action: e.action,
            verdict: e.verdict,
            confidence: e.confidence,
            anomaly: e.anomaly,
            threat: e.threat,
            rule: e.rule,
            reason: e.reason,
            features: e.features,
        }
    }
}

/// A page of events, newest first (highest id first).
///
/// Pass the returned token as `page_token` for the next page: it is the id of
/// the last event returned, and the next page holds only smaller ids, so
/// pages never repeat or skip an event even while new ones are appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events with `time_unix_ns >= since`.
    pub since: Option<u64>,
    /// Only events with `time_unix_ns < until`.
    pub until: Option<u64>,
    /// Only sources inside this prefix.
    pub source: Option<IpNet>,
    /// Only this action.
    pub action: Option<EventAction>,
    /// Only this verdict (case-insensitive).
    pub verdict: Option<String>,
    /// 1..=[`MAX_PAGE_SIZE`].
    pub page_size: usize,
    /// Continue after this id (exclusive); `None` starts at the newest.
    pub page_token: Option<u64>,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            since: None,
            until: None,
            source: None,
            action: None,
            verdict: None,
            page_size: 100,
            page_token: None,
        }
    }
}
