//! Starting the agent from its configuration, running its tasks, applying
//! a SIGHUP reload, and stopping. Exiting never detaches XDP or clears a
//! rule: enforcement lives in the pins and in nftables.
use std::{
    collections::BTreeSet,
    future::Future,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use phantomnet_common::{ReasonCode, RuleKind};
use tokio::{net::UnixListener, sync::watch, task::JoinSet};
use tracing::{error, info, warn};

use super::{
    core::{AgentCore, CoreParts},
    pipeline,
};
use crate::{
    api,
    capture::CaptureWriter,
    config::{Config, ConfigError, ConfigHandle},
    correlate::{Correlator, SignatureSet, ThreatFeed, ThreatFeedHandle},
    dataplane::{Dataplane, DataplaneError, LoadOptions, Maps, PinDir, Prefix},
    detect::{Detector, DetectorConfig},
    enforce::{Deceiver, EnforcePolicy, Executor, Honeypot},
    feeds::FeedPlan,
    flow::FlowConfig,
    journal::Journal,
    metrics::Metrics,
    models::{ModelHandle, resolve_model_path},
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data plane: {0}")]
    Dataplane(#[from] DataplaneError),
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    #[error("model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("threat-intel feed {path}: {reason}")]
    Feed { path: PathBuf, reason: String },
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("thresholds: {0}")]
    Thresholds(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("control API: {0}")]
    Api(#[from] api::ApiError),
    #[error("metrics: {0}")]
    Metrics(#[from] crate::metrics::MetricsError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let context = context.into();
    move |source| StartError::Io { context, source }
}

/// What `run` needs besides the config.
pub struct RunOptions {
    pub config: Config,
    /// Where SIGHUP reloads the config from (none: SIGHUP is ignored).
    pub config_path: Option<PathBuf>,
    pub ebpf_log_level: log::LevelFilter,
    pub capture: Option<PathBuf>,
    pub stats_every: Duration,
    /// Command-line overrides: applied on top of the file at start and
    /// again at every reload, so a reload never loses them.
    pub overrides: Overrides,
}

/// Rewrites a config loaded from the file with the command line's values.
pub type Overrides = Arc<dyn Fn(&mut Config) + Send + Sync>;

pub fn policy_of(c: &Config) -> EnforcePolicy {
    let e = &c.enforcement;
    EnforcePolicy {
        block_ttl: Duration::from_secs(e.block_ttl_secs),
        throttle_ttl: Duration::from_secs(e.throttle_ttl_secs),
        deceive_ttl: Duration::from_secs(e.deceive_ttl_secs),
        throttle_rate_pps: e.throttle_rate_pps,
        throttle_burst: e.throttle_burst,
        min_evidence: e.min_evidence,
        evidence_window: Duration::from_secs(e.evidence_window_secs),
    }
}

fn honeypots_of(c: &Config) -> Vec<Honeypot> {
    c.honeypots
        .iter()
        .map(|h| Honeypot {
            port: h.port,
            target: h.target,
        })
        .collect()
}

fn prefix_of(net: &IpNet) -> Option<Prefix> {
    Prefix::new(net.network(), net.prefix_len()).ok()
}

/// Makes the pinned allowlist's config entries (reason `Config`) exactly
/// the config's `allowlist`, at start and at every reload: an entry removed
/// from the file is removed from the kernel even across restarts. Entries
/// that operators added with `allow` are theirs and stay.
fn sync_allowlist(ex: &mut Executor, new: &[IpNet]) {
    let wanted: BTreeSet<Prefix> = new.iter().filter_map(prefix_of).collect();
    let pinned: Vec<Prefix> = match ex.maps().rules() {
        Ok(rules) => rules
            .into_iter()
            .filter(|r| {
                r.kind == RuleKind::Allow
                    && r.reason
                        .as_ref()
                        .is_some_and(|(c, _)| *c == ReasonCode::Config)
            })
            .map(|r| r.prefix)
            .collect(),
        Err(e) => {
            error!(error = %e, "reading the pinned allowlist");
            return;
        }
    };
    for p in pinned.iter().filter(|p| !wanted.contains(p)) {
        match ex.disallow(p) {
            Ok(()) => info!(prefix = %p, "removed an allowlist entry the config no longer has"),
            Err(e) => warn!(prefix = %p, error = %e, "removing a config allowlist entry"),
        }
    }
    for p in &wanted {
        if let Err(e) = ex.allow(p, ReasonCode::Config) {
            error!(prefix = %p, error = %e, "adding a config allowlist entry");
        }
    }
}

fn deceiver_of(c: &Config) -> Result<Deceiver, String> {
    let d = Deceiver::new(honeypots_of(c));
    if d.honeypots().is_empty() {
        return Err(crate::enforce::NO_HONEYPOT.into());
    }
    d.install().map(|()| d).map_err(|e| e.to_string())
}

fn load_model(c: &Config) -> Result<Option<(ModelHandle, PathBuf)>, StartError> {
    let Some(path) = &c.model.path else {
        return Ok(None);
    };
    let bad = |reason: String| StartError::Model {
        path: path.clone(),
        reason,
    };
    let file = resolve_model_path(path).map_err(|e| bad(e.to_string()))?;
    let handle = ModelHandle::open(&file).map_err(|e| bad(e.to_string()))?;
    Ok(Some((handle, file)))
}

fn load_feed(c: &Config) -> Result<Option<ThreatFeedHandle>, StartError> {
    c.intel
        .feed
        .as_ref()
        .map(|path| {
            ThreatFeedHandle::open(path).map_err(|e| StartError::Feed {
                path: path.clone(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// Binds the control API's Unix socket: mode 0600 from the start (the umask
/// is tightened around `bind`), in a directory made if missing. A stale
/// socket file of an earlier run is replaced; any other file is an error.
pub fn bind_api_socket(path: &Path) -> Result<UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(io(format!("removing stale {}", path.display())))?
        }
        Ok(_) => {
            return Err(StartError::Io {
                context: format!("{} exists and is not a socket", path.display()),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            });
        }
        Err(_) => {}
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io(format!("binding {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod 0600 {}", path.display())))?;
    Ok(listener)
}

/// SIGHUP blocked on the current thread while it lives.
struct SighupMasked(Option<nix::sys::signal::SigSet>);

impl SighupMasked {
    fn new() -> SighupMasked {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
        let mut set = SigSet::empty();
        set.add(Signal::SIGHUP);
        let mut old = SigSet::empty();
        match pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)) {
            Ok(()) => SighupMasked(Some(old)),
            Err(e) => {
                warn!(error = %e, "blocking SIGHUP during the program load");
                SighupMasked(None)
            }
        }
    }
}

impl Drop for SighupMasked {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            let _ = nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&old),
                None,
            );
        }
    }
}

/// Starts everything and runs until `shutdown` resolves.
pub async fn run(opts: RunOptions, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    // First, before the slow start-up: a SIGHUP that arrives early is
    // queued and handled once running, never the default (exit).
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(io("SIGHUP handler"))?;
    let cfg = opts.config;
    let pins = PinDir::new(&cfg.dataplane.pin_dir);
    let mut dp = {
        // The verifier aborts a program load with EAGAIN when a signal is
        // pending on the loading thread. Blocked here, a SIGHUP goes to a
        // runtime worker (tokio's handler queues it) and the load completes.
        let _masked = SighupMasked::new();
        Dataplane::load(&LoadOptions {
            pins: pins.clone(),
            interfaces: cfg.dataplane.interfaces.clone(),
            mode: cfg.dataplane.xdp_mode.into(),
            ebpf_log_level: opts.ebpf_log_level,
        })?
    };
    for i in dp.interfaces() {
        info!(iface = %i.name, ifindex = i.ifindex, mode = i.mode, adopted = i.adopted, "data plane ready");
    }
    let mut maps = Maps::open(&pins)?;
    maps.set_sampling(cfg.dataplane.sample_every)?;
    maps.set_dry_run(cfg.dataplane.dry_run)?;

    let deceiver = deceiver_of(&cfg);
    if let Err(why) = &deceiver {
        warn!(reason = %why, "DECEIVE is unavailable; BLOCK and THROTTLE work");
    }
    let policy = policy_of(&cfg);
    let mut executor = Executor::new(maps, deceiver, policy);
    executor.set_dry_run(cfg.dataplane.dry_run);
    sync_allowlist(&mut executor, &cfg.allowlist);

    let model = load_model(&cfg)?;
    // The plain `[intel] feed` file must load at start (as before); the
    // `[[intel.feeds]]` are fetched by the feed runner in the background.
    let feed = load_feed(&cfg)?;
    let detector = match &model {
        Some((handle, path)) => {
            let feed_now = feed
                .as_ref()
                .map(|f| f.current())
                .unwrap_or_else(|| Arc::new(ThreatFeed::empty()));
            let det = Detector::new(
                DetectorConfig {
                    flow: FlowConfig {
                        sample_every: cfg.dataplane.sample_every.max(1),
                        ..FlowConfig::default()
                    },
                    thresholds: cfg.thresholds,
                },
                handle.current(),
                Correlator::new(SignatureSet::builtin(), feed_now),
            )
            .map_err(|e| StartError::Thresholds(e.to_string()))?;
            info!(model = %path.display(), "detection on");
            Some(det)
        }
        None => {
            warn!(
                "no model configured ([model] path): detection is off, the control API and the maps work"
            );
            None
        }
    };

    let journal = Journal::open(&cfg.journal.path, cfg.journal.retention())?;
    let metrics = Arc::new(Metrics::new());
    let core = Arc::new(AgentCore::new(CoreParts {
        interfaces: dp.interfaces().to_vec(),
        executor,
        detector,
        model_path: model.as_ref().map(|(_, p)| p.clone()),
        model_dir: cfg.model.load_dir(),
        model_max_bytes: cfg.model.max_bytes,
        model: model.map(|(h, _)| h),
        journal,
        metrics: metrics.clone(),
    }));

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = JoinSet::new();

    let uds = bind_api_socket(&cfg.api.socket)?;
    info!(socket = %cfg.api.socket.display(), "control API on the Unix socket");
    tasks.spawn(api::serve_unix(core.clone(), uds, stopped(stop_rx.clone())));
    if let Some(tcp) = &cfg.api.tcp {
        let tls = api::tls::server_config(&tcp.cert, &tcp.key, &tcp.client_ca)?;
        let listener = tokio::net::TcpListener::bind(tcp.listen)
            .await
            .map_err(io(format!("binding {}", tcp.listen)))?;
        info!(listen = %tcp.listen, "control API on TCP with mutual TLS");
        tasks.spawn(api::serve_tcp(
            core.clone(),
            listener,
            tls,
            stopped(stop_rx.clone()),
        ));
    }
    let metrics_listener = tokio::net::TcpListener::bind(cfg.metrics.listen)
        .await
        .map_err(io(format!("binding metrics {}", cfg.metrics.listen)))?;
    info!(listen = %cfg.metrics.listen, "metrics on /metrics");
    {
        let m = metrics.clone();
        let s = stopped(stop_rx.clone());
        tasks.spawn(async move {
            crate::metrics::serve(metrics_listener, m, s)
                .await
                .map_err(api::ApiError::from)
        });
    }

    let reader = dp.take_samples()?;
    let capture = match &opts.capture {
        Some(path) => Some(CaptureWriter::create(path).map_err(|e| StartError::Io {
            context: format!("creating capture {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })?),
        None => None,
    };
    let pipe = tokio::spawn(pipeline::run(core.clone(), reader, capture));

    let (feed_plan, feed_plan_rx) = watch::channel(FeedPlan {
        legacy: feed.as_ref().map(|f| f.current()),
        specs: cfg.intel.feeds.clone(),
    });
    tasks.spawn({
        let core = core.clone();
        let s = stopped(stop_rx.clone());
        async move {
            crate::feeds::run(core, feed_plan_rx, s).await;
            Ok(())
        }
    });

    if let Some(cs) = &cfg.crowdsec {
        for bouncer in [true, false] {
            let (core, cs, s) = (core.clone(), cs.clone(), stopped(stop_rx.clone()));
            tasks.spawn(async move {
                if bouncer {
                    crate::crowdsec::bouncer::run(core, cs, s).await;
                } else {
                    crate::crowdsec::watcher::run(core, cs, s).await;
                }
                Ok(())
            });
        }
    }

    let config_handle = ConfigHandle::new(cfg.clone());
    let mut stats = tokio::time::interval(opts.stats_every);
    let mut logs = tokio::time::interval(Duration::from_millis(250));
    let mut housekeeping = tokio::time::interval(Duration::from_secs(30));
    let ifnames: Vec<String> = dp.interfaces().iter().map(|i| i.name.clone()).collect();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = hup.recv() => match &opts.config_path {
                Some(path) => reload(&core, &config_handle, path, &opts.overrides, &feed_plan),
                None => warn!("SIGHUP: no config file to reload"),
            },
            _ = stats.tick() => publish_counters(&core, &ifnames),
            _ = logs.tick() => dp.drain_logs(),
            _ = housekeeping.tick() => {
                let mut ex = core.executor();
                ex.prune();
                match ex.maps_mut().prune_expired() {
                    Ok(0) => {}
                    Ok(n) => info!(pruned = n, "removed expired entries"),
                    Err(e) => warn!(error = %e, "pruning expired entries"),
                }
                drop(ex);
                if let Err(e) = core.journal().enforce_retention() {
                    warn!(error = %e, "journal retention");
                }
            }
            Some(done) = tasks.join_next() => match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error!(error = %e, "a server stopped"),
                Err(e) => error!(error = %e, "a server task failed"),
            },
        }
    }
    let _ = stop_tx.send(true);
    pipe.abort();
    while tasks.join_next().await.is_some() {}
    let _ = std::fs::remove_file(&cfg.api.socket);
    info!("exiting; XDP stays attached and every entry stays in force");
    Ok(())
}

fn publish_counters(core: &AgentCore, ifnames: &[String]) {
    let ex = core.executor();
    let Ok(c) = ex.maps().counters() else {
        return;
    };
    // The counters are per outcome for the whole program; with one
    // interface they are that interface's, otherwise labeled "all".
    let iface = match ifnames {
        [one] => one.as_str(),
        _ => "all",
    };
    for o in phantomnet_common::Outcome::ALL {
        let v = c.get(o);
        core.metrics().set_xdp_totals(iface, o, v.packets, v.bytes);
    }
    core.metrics()
        .set_samples_lost_total(c.get(phantomnet_common::Outcome::SampleLost).packets);
    if let Ok(rules) = ex.maps().rules() {
        let count = |k| {
            rules
                .iter()
                .filter(|r| r.kind == k && r.remaining != Some(Duration::ZERO))
                .count() as u64
        };
        for kind in [RuleKind::Allow, RuleKind::Block, RuleKind::Throttle] {
            core.metrics().set_active_rules(kind, count(kind));
        }
        let mut top: Vec<(String, String, u64)> = rules
            .iter()
            .filter(|r| r.kind == RuleKind::Block && r.hits > 0)
            .map(|r| (r.prefix.to_string(), r.reason_text(), r.hits))
            .collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.2));
        top.truncate(crate::metrics::TOP_BLOCKED);
        core.metrics().set_top_blocked(&top);
    }
    if let Ok(d) = ex.deceived() {
        core.metrics()
            .set_active_rules(RuleKind::Deceive, d.len() as u64);
    }
    info!(
        passed = c.get(phantomnet_common::Outcome::Passed).packets,
        block_dropped = c.get(phantomnet_common::Outcome::BlockDropped).packets,
        throttle_dropped = c.get(phantomnet_common::Outcome::ThrottleDropped).packets,
        sampled = c.get(phantomnet_common::Outcome::Sampled).packets,
        sample_lost = c.get(phantomnet_common::Outcome::SampleLost).packets,
        samples_read = core.samples_read(),
        "counters"
    );
}

/// SIGHUP: a config that fails to parse or validate changes nothing.
///
/// Precedence (docs/CONTROL.md, "Reload"): command-line overrides are
/// re-applied on top of the file. For the keys the API can also change at
/// run time (dry-run, sampling, thresholds), the last writer wins: a reload
/// applies the file's value only where the file changed it since it was
/// last applied; otherwise the run-time value stays, and the log says so.
fn reload(
    core: &AgentCore,
    handle: &ConfigHandle,
    path: &Path,
    overrides: &Overrides,
    feed_plan: &watch::Sender<FeedPlan>,
) {
    let old = handle.current();
    let new = match Config::load(path).and_then(|mut c| {
        overrides(&mut c);
        c.validate().map(|()| c)
    }) {
        Ok(c) => handle.replace(c),
        Err(e) => {
            error!(error = %e, "config reload refused; the running config stays");
            return;
        }
    };
    if new.dataplane.interfaces != old.dataplane.interfaces
        || new.dataplane.pin_dir != old.dataplane.pin_dir
        || new.api != old.api
        || new.journal != old.journal
        || new.metrics != old.metrics
        || new.crowdsec != old.crowdsec
    {
        warn!(
            "interfaces, pin_dir, [api], [journal], [metrics] and [crowdsec] apply at the next start"
        );
    }
    let kept = |key: &str| {
        info!(
            key,
            "the file did not change it: keeping the run-time value"
        )
    };
    if new.thresholds != old.thresholds {
        if let Err(e) = core.set_thresholds(new.thresholds) {
            warn!(error = %e, "thresholds not applied");
        }
    } else if core.thresholds().is_ok_and(|t| t != new.thresholds) {
        kept("thresholds");
    }
    core.set_policy(policy_of(&new));
    let running = core.executor().maps().config().ok();
    if new.dataplane.sample_every != old.dataplane.sample_every {
        if let Err(e) = core.set_sampling(new.dataplane.sample_every) {
            warn!(error = %e, "sampling not applied");
        }
    } else if running.is_some_and(|c| c.sample_every != new.dataplane.sample_every) {
        kept("dataplane.sample_every");
    }
    if new.dataplane.dry_run != old.dataplane.dry_run {
        if let Err(e) = core.set_dry_run(new.dataplane.dry_run) {
            warn!(error = %e, "mode not applied");
        }
    } else if running.is_some_and(|c| {
        (c.flags & phantomnet_common::config_flags::DRY_RUN != 0) != new.dataplane.dry_run
    }) {
        kept("dataplane.dry_run");
    }
    if new.honeypots != old.honeypots {
        core.executor().set_deceiver(deceiver_of(&new));
    }
    sync_allowlist(&mut core.executor(), &new.allowlist);
    let legacy = match load_feed(&new) {
        Ok(feed) => feed.map(|f| f.current()),
        Err(e) => {
            warn!(error = %e, "intel feed not reloaded; the old one stays");
            feed_plan.borrow().legacy.clone()
        }
    };
    if new.intel != old.intel || legacy.is_some() {
        feed_plan.send_replace(FeedPlan {
            legacy,
            specs: new.intel.feeds.clone(),
        });
    }
    info!(path = %path.display(), "config reloaded");
}
