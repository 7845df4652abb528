//! Starting the agent from its configuration, running its tasks and the
//! main loop, and stopping.
use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinSet};
use tracing::{error, info, warn};

use super::{
    StartError, housekeeping, io, reload,
    setup::{deceiver_of, load_feed, load_model, policy_of, sync_allowlist},
    socket::bind_api_socket,
};
use crate::{
    api,
    capture::CaptureWriter,
    config::{Config, ConfigHandle},
    correlate::{Correlator, SignatureSet, ThreatFeed},
    daemon::{AgentCore, CoreParts, pipeline},
    dataplane::{Dataplane, LoadOptions, Maps, PinDir},
    detect::{Detector, DetectorConfig},
    enforce::Executor,
    feeds::FeedPlan,
    flow::FlowConfig,
    journal::Journal,
    metrics::Metrics,
};

/// How a task ended: its error, whatever module it came from.
type TaskResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn boxed<E: std::error::Error + Send + Sync + 'static>(
    task: impl Future<Output = Result<(), E>>,
) -> TaskResult {
    task.await.map_err(Into::into)
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
            inside_interfaces: cfg.dataplane.inside_interfaces.clone(),
            mode: cfg.dataplane.xdp_mode.into(),
            ebpf_log_level: opts.ebpf_log_level,
        })?
    };
    for i in dp.interfaces() {
        info!(iface = %i.name, ifindex = i.ifindex, mode = i.mode, adopted = i.adopted, "data plane ready");
    }
    for i in dp.inside_interfaces() {
        info!(iface = %i.name, ifindex = i.ifindex, mode = i.mode, "inside interface observed");
    }
    let mut maps = Maps::open(&pins)?;
    maps.set_sampling(cfg.dataplane.sample_every)?;
    maps.set_priority_sampling(cfg.dataplane.priority_sampling)?;
    maps.set_dry_run(cfg.dataplane.dry_run)?;

    let deceiver = deceiver_of(&cfg);
    if let Err(why) = &deceiver {
        warn!(reason = %why, "DECEIVE is unavailable; BLOCK and THROTTLE work");
    }
    let policy = policy_of(&cfg);
    let mut executor = Executor::new(maps, deceiver, policy);
    // Detections' DECEIVEs (an `nft` run each) leave the decision loop.
    executor
        .defer_deceives()
        .map_err(io("starting the DECEIVE worker thread"))?;
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
                        ipv6_source_prefix: cfg.enforcement.ipv6_source_prefix,
                        ..FlowConfig::default()
                    },
                    thresholds: cfg.thresholds,
                    scoring: cfg.detection.scoring,
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
    // Every long-running task: a server, a feed runner, a CrowdSec client.
    let mut tasks: JoinSet<TaskResult> = JoinSet::new();

    let uds = bind_api_socket(&cfg.api.socket)?;
    info!(socket = %cfg.api.socket.display(), "control API on the Unix socket");
    tasks.spawn(boxed(api::serve_unix(
        core.clone(),
        uds,
        stopped(stop_rx.clone()),
    )));
    if let Some(tcp) = &cfg.api.tcp {
        let tls = api::tls::server_config(&tcp.cert, &tcp.key, &tcp.client_ca)?;
        let listener = tokio::net::TcpListener::bind(tcp.listen)
            .await
            .map_err(io(format!("binding {}", tcp.listen)))?;
        info!(listen = %tcp.listen, "control API on TCP with mutual TLS");
        tasks.spawn(boxed(api::serve_tcp(
            core.clone(),
            listener,
            tls,
            stopped(stop_rx.clone()),
        )));
    }
    let metrics_listener = tokio::net::TcpListener::bind(cfg.metrics.listen)
        .await
        .map_err(io(format!("binding metrics {}", cfg.metrics.listen)))?;
    info!(listen = %cfg.metrics.listen, "metrics on /metrics");
    {
        let m = metrics.clone();
        let s = stopped(stop_rx.clone());
        tasks.spawn(boxed(crate::metrics::serve(metrics_listener, m, s)));
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
    let mut prune = tokio::time::interval(Duration::from_secs(30));
    let mut sweep = tokio::time::interval(housekeeping::SWEEP_EVERY);
    let ifnames: Vec<String> = dp.interfaces().iter().map(|i| i.name.clone()).collect();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = hup.recv() => match &opts.config_path {
                Some(path) => reload::reload(&core, &config_handle, path, &opts.overrides, &feed_plan),
                None => warn!("SIGHUP: no config file to reload"),
            },
            _ = stats.tick() => housekeeping::publish_counters(&core, &ifnames),
            _ = logs.tick() => dp.drain_logs(),
            _ = prune.tick() => housekeeping::prune(&core),
            _ = sweep.tick() => housekeeping::sweep(&core),
            Some(done) = tasks.join_next() => match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error!(error = %e, "a server stopped"),
                Err(e) => error!(error = %e, "a server task failed"),
            },
        }
    }
    let _ = stop_tx.send(true);
    pipe.abort();
    // Until the pipeline is dropped, which drains the journal's queue.
    let _ = pipe.await;
    while tasks.join_next().await.is_some() {}
    let _ = std::fs::remove_file(&cfg.api.socket);
    info!("exiting; XDP stays attached and every entry stays in force");
    Ok(())
}
