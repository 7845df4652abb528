//! Threat feeds at run time: each `[[intel.feeds]]` entry is checked at its
//! interval ([`fetch`]), parsed in its format, and merged with the others
//! (and the plain `[intel] feed` file) into the one [`ThreatFeed`] the
//! correlator reads. A feed with `block = true` also holds BLOCK entries
//! ([`block`]).
//!
//! A check that fails (unreachable, HTTP error, too large, a malformed
//! line, a truncated Spamhaus file) keeps the feed's last good list and
//! says why, once per check; it is retried after `RETRY` (or its interval,
//! if shorter). Checks of different feeds are independent.
pub mod block;
pub mod fetch;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::FeedSpec;
use crate::correlate::{ThreatFeed, feed_format};
use crate::dataplane::Prefix;
use crate::enforce::Executor;
use crate::metrics::Metrics;
use fetch::{Fetched, Validators};

/// What feeds act on: the running agent (implemented by the daemon's core,
/// so this module does not depend on the daemon).
pub trait FeedSink: Send + Sync + 'static {
    fn executor(&self) -> std::sync::MutexGuard<'_, Executor>;
    fn metrics(&self) -> &Metrics;
    /// Swaps the correlator's feed.
    fn set_feed(&self, feed: Arc<ThreatFeed>);
}

/// How soon a failed check is retried (at most; never later than the interval).
pub const RETRY: Duration = Duration::from_secs(60);

/// What the runner follows: the plain file's list and the feed specs.
#[derive(Debug, Clone, Default)]
pub struct FeedPlan {
    pub legacy: Option<Arc<ThreatFeed>>,
    pub specs: Vec<FeedSpec>,
}

pub use crate::metrics::FeedCheck;

struct FeedState {
    spec: FeedSpec,
    client: Result<reqwest::Client, String>,
    list: Option<Arc<ThreatFeed>>,
    validators: Validators,
    blocked: HashSet<Prefix>,
    due: Instant,
}

impl FeedState {
    fn new(spec: FeedSpec) -> FeedState {
        let client = crate::http::client(spec.ca_file.as_deref()).map_err(|e| e.to_string());
        FeedState {
            spec,
            client,
            list: None,
            validators: Validators::default(),
            blocked: HashSet::new(),
            due: Instant::now(),
        }
    }
}

/// Parses a fetched body in the feed's format (on the blocking pool: a
/// large feed takes a while).
async fn parse(spec: &FeedSpec, bytes: bytes::Bytes) -> Result<ThreatFeed, String> {
    let (format, name, weight) = (spec.format, spec.name.clone(), spec.weight);
    tokio::task::spawn_blocking(move || {
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
        feed_format::parse(text, format, &name, weight).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("parser task failed: {e}"))?
}

/// One check of one feed; returns whether its list changed.
async fn check(core: &impl FeedSink, f: &mut FeedState) -> bool {
    let name = f.spec.name.clone();
    let started = std::time::Instant::now();
    let outcome: Result<Option<ThreatFeed>, String> = match &f.client {
        Err(e) => Err(e.clone()),
        Ok(client) => {
            match fetch::fetch(client, &f.spec.source, &f.validators, f.spec.max_bytes).await {
                Ok(Fetched::NotModified) => Ok(None),
                Ok(Fetched::Body { bytes, validators }) => match parse(&f.spec, bytes).await {
                    Ok(list) => {
                        f.validators = validators;
                        Ok(Some(list))
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let m = core.metrics();
    let (result, changed) = match outcome {
        Ok(Some(list)) => {
            info!(feed = %name, source = %f.spec.source, entries = list.len(),
                  took_ms = started.elapsed().as_millis() as u64, "threat feed updated");
            f.list = Some(Arc::new(list));
            (FeedCheck::Updated, true)
        }
        Ok(None) => (FeedCheck::NotModified, false),
        Err(why) => {
            let kept = f.list.as_ref().map_or(0, |l| l.len());
            warn!(feed = %name, source = %f.spec.source, error = %why, kept_entries = kept,
                  "threat feed check failed; keeping the last good list");
            (FeedCheck::Failed, false)
        }
    };
    m.feed_checked(&name, result);
    if result != FeedCheck::Failed {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        m.set_feed_last_success(&name, now.as_secs_f64());
        if f.spec.block
            && let Some(list) = f.list.clone()
        {
            let ttl = f.spec.block_ttl();
            let mut ex = core.executor();
            let s = block::sync(&mut ex, &name, &list, ttl, &mut f.blocked);
            drop(ex);
            m.set_feed_blocked(&name, s.in_force as u64);
            if s.failed > 0 || s.removed > 0 || result == FeedCheck::Updated {
                info!(feed = %name, in_force = s.in_force, removed = s.removed, foreign = s.foreign,
                      failed = s.failed, first_error = s.first_error.as_deref().unwrap_or(""),
                      "threat feed BLOCK entries synced");
            }
        }
    }
    m.set_feed_entries(&name, f.list.as_ref().map_or(0, |l| l.len()) as u64);
    let wait = if result == FeedCheck::Failed {
        RETRY.min(f.spec.interval())
    } else {
        f.spec.interval()
    };
    f.due = Instant::now() + wait;
    changed
}

/// Swaps the merged list into the detector.
fn publish(
    core: &impl FeedSink,
    legacy: Option<&Arc<ThreatFeed>>,
    feeds: &HashMap<String, FeedState>,
) {
    let lists: Vec<&ThreatFeed> = legacy
        .map(|l| l.as_ref())
        .into_iter()
        .chain(feeds.values().filter_map(|f| f.list.as_deref()))
        .collect();
    // One list is used as it is: no second copy of a large feed.
    let merged = match (legacy, lists.as_slice()) {
        (Some(l), [_]) => l.clone(),
        (None, [_]) => feeds
            .values()
            .find_map(|f| f.list.clone())
            .unwrap_or_default(),
        _ => Arc::new(ThreatFeed::merge(lists)),
    };
    let n = merged.len();
    core.set_feed(merged);
    core.metrics().set_feed_entries("all", n as u64);
}

/// Applies a new plan: feeds whose spec is unchanged keep their state (and
/// their last good list); removed feeds give up their BLOCK entries.
fn replan(core: &impl FeedSink, feeds: &mut HashMap<String, FeedState>, specs: &[FeedSpec]) {
    let mut next = HashMap::new();
    for spec in specs {
        let state = match feeds.remove(&spec.name) {
            Some(old) if old.spec == *spec => old,
            Some(mut old) => {
                // Changed: keep the list until the new source answers, and
                // re-check now. Blocks go if the policy went.
                if old.spec.block && !spec.block {
                    block::clear(&mut core.executor(), &spec.name, &mut old.blocked);
                }
                let mut s = FeedState::new(spec.clone());
                s.list = old.list;
                s.blocked = old.blocked;
                s
            }
            None => FeedState::new(spec.clone()),
        };
        next.insert(spec.name.clone(), state);
    }
    for (name, mut gone) in feeds.drain() {
        let n = block::clear(&mut core.executor(), &name, &mut gone.blocked);
        core.metrics().remove_feed(&name);
        info!(feed = %name, unblocked = n, "threat feed removed from the config");
    }
    *feeds = next;
}

/// Follows `plan` until `shutdown`.
pub async fn run<S: FeedSink>(
    core: Arc<S>,
    mut plan: watch::Receiver<FeedPlan>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut feeds: HashMap<String, FeedState> = HashMap::new();
    let mut current = plan.borrow_and_update().clone();
    replan(core.as_ref(), &mut feeds, &current.specs);
    publish(core.as_ref(), current.legacy.as_ref(), &feeds);
    loop {
        let due = feeds.values().map(|f| f.due).min();
        let sleep = async {
            match due {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            changed = plan.changed() => {
                if changed.is_err() {
                    return;
                }
                current = plan.borrow_and_update().clone();
                replan(core.as_ref(), &mut feeds, &current.specs);
                publish(core.as_ref(), current.legacy.as_ref(), &feeds);
            }
            () = sleep => {
                let now = Instant::now();
                let mut changed = false;
                for f in feeds.values_mut().filter(|f| f.due <= now) {
                    changed |= check(core.as_ref(), f).await;
                }
                if changed {
                    publish(core.as_ref(), current.legacy.as_ref(), &feeds);
                }
            }
        }
    }
}
