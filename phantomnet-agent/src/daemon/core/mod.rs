//! The agent's shared state: what the sample pipeline and the control API
//! both work on. Every method is a short critical section; nothing here
//! blocks on the network.
mod error;
mod signatures;
mod views;

pub use error::CoreError;
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
pub use views::{ModelInfo, RuleView, StatusInfo, model_version};

use phantomnet_common::{EventAction, ReasonCode};
use tokio::sync::broadcast;

use crate::{
    dataplane::{AttachedInterface, Prefix, Rule, RuleKind, ThrottleParams},
    decide::{Action, Thresholds},
    detect::{Analysis, Detector},
    enforce::{Deceived, EnforcePolicy, Executor},
    features::FeatureVector,
    journal::{EventQuery, Journal, JournalEvent, NewEvent},
    metrics::Metrics,
    models::ModelHandle,
};

/// The shared state.
pub struct AgentCore {
    started: Instant,
    interfaces: Vec<AttachedInterface>,
    executor: Mutex<Executor>,
    detector: Mutex<Option<Detector>>,
    model: Option<ModelHandle>,
    model_path: Mutex<Option<PathBuf>>,
    model_dir: Option<PathBuf>,
    model_max_bytes: u64,
    journal: Journal,
    events: broadcast::Sender<JournalEvent>,
    enforced: broadcast::Sender<crate::enforce::Enforced>,
    metrics: Arc<Metrics>,
    samples_read: AtomicU64,
    decisions: AtomicU64,
}

pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The inputs `AgentCore::new` takes.
pub struct CoreParts {
    pub interfaces: Vec<AttachedInterface>,
    pub executor: Executor,
    pub detector: Option<Detector>,
    pub model: Option<ModelHandle>,
    pub model_path: Option<PathBuf>,
    /// Where LoadModel may read from, and how much.
    pub model_dir: Option<PathBuf>,
    pub model_max_bytes: u64,
    pub journal: Journal,
    pub metrics: Arc<Metrics>,
}

impl AgentCore {
    pub fn new(parts: CoreParts) -> AgentCore {
        let (events, _) = broadcast::channel(4096);
        let (enforced, _) = broadcast::channel(1024);
        AgentCore {
            started: Instant::now(),
            interfaces: parts.interfaces,
            executor: Mutex::new(parts.executor),
            detector: Mutex::new(parts.detector),
            model: parts.model,
            model_path: Mutex::new(parts.model_path),
            model_dir: parts.model_dir,
            model_max_bytes: parts.model_max_bytes,
            journal: parts.journal,
            events,
            enforced,
            metrics: parts.metrics,
            samples_read: AtomicU64::new(0),
            decisions: AtomicU64::new(0),
        }
    }

    pub fn executor(&self) -> MutexGuard<'_, Executor> {
        lock(&self.executor)
    }

    pub fn detector(&self) -> MutexGuard<'_, Option<Detector>> {
        lock(&self.detector)
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn count_samples(&self, n: u64) {
        self.samples_read.fetch_add(n, Ordering::Relaxed);
    }

    pub fn samples_read(&self) -> u64 {
        self.samples_read.load(Ordering::Relaxed)
    }

    pub fn count_decisions(&self, n: u64) {
        self.decisions.fetch_add(n, Ordering::Relaxed);
    }

    /// Journals events and sends them to watchers.
    pub fn record(&self, events: Vec<NewEvent>) -> Result<(), CoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let copies = events.clone();
        let ids = self.journal.append_batch(events)?;
        for (id, e) in ids.zip(copies) {
            let _ = self.events.send(JournalEvent::from_new(id, e));
        }
        Ok(())
    }

    /// An operator's action, journaled like a decision (rule "api").
    fn record_api(&self, source: &Prefix, action: EventAction, reason: &str) {
        let event = NewEvent::unassessed(
            unix_now_ns(),
            source.addr(),
            action,
            ReasonCode::Api.name(),
            format!("{source}: {reason}"),
        );
        if let Err(e) = self.record(vec![event]) {
            tracing::warn!(error = %e, "journaling an API action");
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JournalEvent> {
        self.events.subscribe()
    }

    /// The detector's new enforcements (bounded: a slow reader loses the
    /// oldest and is told how many).
    pub fn subscribe_enforced(&self) -> broadcast::Receiver<crate::enforce::Enforced> {
        self.enforced.subscribe()
    }

    /// Swaps the correlator's threat feed (no-op without detection).
    pub fn set_feed(&self, feed: Arc<crate::correlate::ThreatFeed>) {
        if let Some(det) = self.detector().as_mut() {
            det.set_feed(feed);
        }
    }

    /// Announces a new enforcement; nobody listening is fine.
    pub fn announce(&self, e: crate::enforce::Enforced) {
        let _ = self.enforced.send(e);
    }

    pub fn status(&self) -> Result<StatusInfo, CoreError> {
        let ex = self.executor();
        let counters = ex.maps().counters()?;
        let cfg = ex.maps().config()?;
        Ok(StatusInfo {
            version: env!("CARGO_PKG_VERSION"),
            interfaces: self.interfaces.clone(),
            uptime: self.started.elapsed(),
            counters,
            model_version: self
                .model
                .as_ref()
                .map(|m| model_version(&m.current(), lock(&self.model_path).as_deref()))
                .unwrap_or_default(),
            dry_run: ex.dry_run(),
            sample_every: cfg.sample_every,
            samples_read: self.samples_read.load(Ordering::Relaxed),
            decisions: self.decisions.load(Ordering::Relaxed),
        })
    }

    fn ttl_or(&self, ttl: Option<Duration>, action: Action) -> Duration {
        ttl.unwrap_or_else(|| self.executor().policy().ttl(action))
    }

    pub fn block(
        &self,
        p: &Prefix,
        ttl: Option<Duration>,
        reason: &str,
    ) -> Result<Rule, CoreError> {
        let ttl = self.ttl_or(ttl, Action::Block);
        let rule = self
            .executor()
            .block(p, Some(ttl), ReasonCode::Api, reason)?;
        self.record_api(p, EventAction::set(RuleKind::Block), reason);
        Ok(rule)
    }

    pub fn unblock(&self, p: &Prefix) -> Result<(), CoreError> {
        self.executor().unblock(p)?;
        self.record_api(p, EventAction::Remove(RuleKind::Block), "");
        Ok(())
    }

    pub fn throttle(
        &self,
        p: &Prefix,
        ttl: Option<Duration>,
        rate: Option<u32>,
        burst: Option<u32>,
        reason: &str,
    ) -> Result<Rule, CoreError> {
        let ttl = self.ttl_or(ttl, Action::Throttle);
        let mut ex = self.executor();
        let policy = *ex.policy();
        let rule = ex.throttle(
            p,
            ThrottleParams {
                rate_pps: rate.unwrap_or(policy.throttle_rate_pps),
                burst: Some(burst.unwrap_or(policy.throttle_burst)),
                ttl: Some(ttl),
            },
            ReasonCode::Api,
        )?;
        drop(ex);
        self.record_api(p, EventAction::set(RuleKind::Throttle), reason);
        Ok(rule)
    }

    pub fn unthrottle(&self, p: &Prefix) -> Result<(), CoreError> {
        self.executor().unthrottle(p)?;
        self.record_api(p, EventAction::Remove(RuleKind::Throttle), "");
        Ok(())
    }

    pub fn allow(&self, p: &Prefix) -> Result<Rule, CoreError> {
        let rule = self.executor().allow(p, ReasonCode::Api)?;
        self.record_api(p, EventAction::set(RuleKind::Allow), "");
        Ok(rule)
    }

    pub fn disallow(&self, p: &Prefix) -> Result<(), CoreError> {
        self.executor().disallow(p)?;
        self.record_api(p, EventAction::Remove(RuleKind::Allow), "");
        Ok(())
    }

    pub fn deceive(
        &self,
        p: &Prefix,
        ttl: Option<Duration>,
        reason: &str,
    ) -> Result<Duration, CoreError> {
        let ttl = self.executor().deceive(p, ttl)?;
        self.record_api(p, EventAction::set(RuleKind::Deceive), reason);
        Ok(ttl)
    }

    pub fn undeceive(&self, p: &Prefix) -> Result<(), CoreError> {
        self.executor().undeceive(p)?;
        self.record_api(p, EventAction::Remove(RuleKind::Deceive), "");
        Ok(())
    }

    /// Every rule: allowlist, block and throttle entries from the maps, and
    /// the sources nftables deceives. An unavailable nft only hides the latter.
    pub fn rules(&self) -> Result<Vec<RuleView>, CoreError> {
        let mut ex = self.executor();
        let mut out: Vec<RuleView> = ex
            .maps()
            .rules()?
            .into_iter()
            .map(|r| RuleView {
                kind: r.kind,
                prefix: r.prefix.to_string(),
                remaining: r.remaining,
                reason: r.reason_text(),
                hits: r.hits,
                rate_pps: r.rate_pps,
                burst: r.burst,
            })
            .collect();
        let deceived: Vec<Deceived> = ex.deceived().unwrap_or_default();
        for d in deceived {
            out.push(RuleView {
                kind: RuleKind::Deceive,
                prefix: if d.source.contains('/') {
                    d.source
                } else if d.source.contains(':') {
                    format!("{}/128", d.source)
                } else {
                    format!("{}/32", d.source)
                },
                remaining: d.remaining,
                reason: String::new(),
                hits: 0,
                rate_pps: 0,
                burst: 0,
            });
        }
        Ok(out)
    }

    pub fn events(&self, q: &EventQuery) -> Result<(Vec<JournalEvent>, Option<u64>), CoreError> {
        Ok(self.journal.query(q)?)
    }

    pub fn analyze(
        &self,
        source: Option<IpAddr>,
        features: FeatureVector,
        payload: &[u8],
    ) -> Result<Analysis, CoreError> {
        let det = self.detector();
        let det = det.as_ref().ok_or_else(|| CoreError::NoModel)?;
        Ok(det.analyze(source, features, payload))
    }

    pub fn model_info(&self) -> Result<ModelInfo, CoreError> {
        let handle = self.model.as_ref().ok_or_else(|| CoreError::NoModel)?;
        Ok(ModelInfo::of(
            &handle.current(),
            lock(&self.model_path).clone(),
        ))
    }

    /// Validates the file and swaps it in; on any error the running model stays.
    /// Loads a model file (or registry directory) from inside the model
    /// directory only: the path is resolved (symlinks too) and must stay in
    /// it, and the file must be regular and at most `[model] max_bytes`.
    pub fn load_model(&self, path: &Path) -> Result<ModelInfo, CoreError> {
        let handle = self.model.as_ref().ok_or(CoreError::NoDetection)?;
        let dir = self.model_dir.as_ref().ok_or(CoreError::NoModelDir)?;
        let dir = dir.canonicalize().map_err(|source| CoreError::ModelDir {
            dir: dir.clone(),
            source,
        })?;
        let inside = |p: &Path| -> Result<PathBuf, CoreError> {
            let real = p.canonicalize().map_err(|source| CoreError::ModelMissing {
                path: p.to_path_buf(),
                source,
            })?;
            if !real.starts_with(&dir) {
                return Err(CoreError::OutsideModelDir {
                    path: p.to_path_buf(),
                    dir: dir.clone(),
                });
            }
            Ok(real)
        };
        let requested = inside(path)?;
        let path = inside(&crate::models::resolve_model_path(&requested)?)?;
        let path = path.as_path();
        let model = handle.load_validated_bounded(path, self.model_max_bytes)?;
        if let Some(det) = self.detector().as_mut() {
            det.set_model(model.clone());
        }
        *lock(&self.model_path) = Some(path.to_path_buf());
        Ok(ModelInfo::of(&model, Some(path.to_path_buf())))
    }

    pub fn thresholds(&self) -> Result<Thresholds, CoreError> {
        self.detector()
            .as_ref()
            .map(|d| d.thresholds())
            .ok_or_else(|| CoreError::NoModel)
    }

    pub fn set_thresholds(&self, t: Thresholds) -> Result<Thresholds, CoreError> {
        let mut det = self.detector();
        let det = det.as_mut().ok_or_else(|| CoreError::NoModel)?;
        det.set_thresholds(t)?;
        Ok(det.thresholds())
    }

    /// Dry-run for both the XDP program and the executor, or neither.
    pub fn set_dry_run(&self, on: bool) -> Result<(), CoreError> {
        let mut ex = self.executor();
        ex.maps_mut().set_dry_run(on)?;
        ex.set_dry_run(on);
        Ok(())
    }

    /// Priority sampling in the XDP program (`dataplane.priority_sampling`).
    /// The flow state needs no change: each sample says how it was taken.
    pub fn set_priority_sampling(&self, on: bool) -> Result<(), CoreError> {
        self.executor().maps_mut().set_priority_sampling(on)?;
        Ok(())
    }

    pub fn set_sampling(&self, every: u32) -> Result<u32, CoreError> {
        let cfg = self.executor().maps_mut().set_sampling(every)?;
        if let Some(det) = self.detector().as_mut() {
            det.set_sample_every(every);
        }
        Ok(cfg.sample_every)
    }

    /// The enforcement policy, and the IPv6 source prefix it carries to
    /// the detector's flow state (the next samples group by it).
    pub fn set_policy(&self, policy: EnforcePolicy) {
        if let Some(d) = self.detector().as_mut() {
            d.set_ipv6_source_prefix(policy.ipv6_source_prefix);
        }
        self.executor().set_policy(policy);
    }
}
