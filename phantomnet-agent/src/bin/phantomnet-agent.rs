//! `phantomnet-agent`: runs the data plane, and lets operators work on the
//! pinned maps directly, with or without a running agent.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use phantomnet_agent::dataplane::{
    Dataplane, LoadOptions, Maps, ModeRequest, PinDir, Prefix, Rule, RuleKind, ThrottleParams,
};
use phantomnet_common::{DEFAULT_PIN_DIR, Outcome, PacketSample, ReasonCode};
use tracing::{debug, info, warn};

#[derive(Parser)]
#[command(name = "phantomnet-agent", version, about = "PhantomNet gateway agent")]
struct Cli {
    /// Directory of PhantomNet's pins on bpffs.
    #[arg(long, global = true, env = "PHANTOMNET_PIN_DIR", default_value = DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum XdpModeArg {
    /// Driver mode, falling back to generic with a log line.
    Auto,
    Native,
    Generic,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Enforce,
    DryRun,
}

#[derive(Subcommand)]
enum Command {
    /// Load and attach the data plane, then log samples and counters until
    /// SIGINT/SIGTERM. Exiting leaves enforcement in force.
    Run {
        /// Interface to attach to (repeat for several).
        #[arg(long = "iface", required = true)]
        ifaces: Vec<String>,
        #[arg(long, value_enum, default_value = "auto")]
        xdp_mode: XdpModeArg,
        /// Sample 1 packet in N (0 = off). Default: keep the pinned setting,
        /// or 16 on first start.
        #[arg(long)]
        sample_rate: Option<u32>,
        /// Count outcomes as if enforced, but pass every packet.
        #[arg(long)]
        dry_run: bool,
        /// Seconds between counter log lines.
        #[arg(long, default_value_t = 10)]
        stats_interval: u64,
        /// Most verbose level of the XDP program's own log messages.
        #[arg(long, default_value = "info")]
        ebpf_log_level: log::LevelFilter,
        /// Also write every sample to this capture file (for `dataset`).
        #[arg(long)]
        capture: Option<PathBuf>,
    },
    /// Turn capture files and pcaps into a labeled CSV of schema-v1 features.
    Dataset(phantomnet_agent::train::DatasetArgs),
    /// Train the forest, scaler and isolation forest; write a versioned artifact.
    Train(phantomnet_agent::train::TrainArgs),
    /// Evaluate a model on a CSV: metrics, confusion matrix and ROC PNGs.
    Evaluate(phantomnet_agent::train::EvaluateArgs),
    /// Drop all traffic from a prefix.
    Block {
        cidr: String,
        /// Seconds until the block expires (default: never).
        #[arg(long)]
        ttl: Option<u64>,
        /// Operator note kept with the entry (at most 32 bytes).
        #[arg(long, default_value = "")]
        reason: String,
    },
    Unblock {
        cidr: String,
    },
    /// Rate-limit every source address in a prefix.
    Throttle {
        cidr: String,
        /// Packets per second per source.
        #[arg(long)]
        rate: u32,
        /// Bucket depth in packets (default: rate/10, at least 1).
        #[arg(long)]
        burst: Option<u32>,
        #[arg(long)]
        ttl: Option<u64>,
    },
    Unthrottle {
        cidr: String,
    },
    /// Never drop or throttle a prefix.
    Allow {
        cidr: String,
    },
    Disallow {
        cidr: String,
    },
    /// List allow, block and throttle entries with their remaining TTL.
    List,
    /// Print the per-outcome counters, the data-plane config and the links.
    Stats,
    /// Sample 1 packet in N into the ring buffer (0 = off).
    Sampling {
        every: u32,
    },
    /// Enforce, or only count what would be enforced (dry-run).
    Mode {
        #[arg(value_enum)]
        mode: ModeArg,
    },
    /// Remove every pin PhantomNet created: detaches XDP, drops all entries.
    Detach,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn prefix(cidr: &str) -> Result<Prefix> {
    Ok(cidr.parse::<Prefix>()?)
}

fn ttl(secs: Option<u64>) -> Option<Duration> {
    secs.map(Duration::from_secs)
}

fn run(cli: Cli) -> Result<()> {
    let pins = PinDir::new(&cli.pin_dir);
    match cli.command {
        Command::Run {
            ifaces,
            xdp_mode,
            sample_rate,
            dry_run,
            stats_interval,
            ebpf_log_level,
            capture,
        } => {
            let mode = match xdp_mode {
                XdpModeArg::Auto => ModeRequest::Auto,
                XdpModeArg::Native => ModeRequest::Native,
                XdpModeArg::Generic => ModeRequest::Generic,
            };
            let opts = LoadOptions {
                pins,
                interfaces: ifaces,
                mode,
                ebpf_log_level,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(daemon(
                opts,
                sample_rate,
                dry_run,
                Duration::from_secs(stats_interval.max(1)),
                capture,
            ))
        }
        Command::Dataset(args) => Ok(phantomnet_agent::train::run_dataset(&args)?),
        Command::Train(args) => Ok(phantomnet_agent::train::run_train(&args)?),
        Command::Evaluate(args) => Ok(phantomnet_agent::train::run_evaluate(&args)?),
        Command::Block {
            cidr,
            ttl: t,
            reason,
        } => {
            let p = prefix(&cidr)?;
            let rule = Maps::open(&pins)?.block(&p, ttl(t), ReasonCode::Manual, &reason)?;
            println!("blocked {} ({})", rule.prefix, expiry_text(&rule));
            Ok(())
        }
        Command::Unblock { cidr } => {
            let p = prefix(&cidr)?;
            Maps::open(&pins)?.unblock(&p)?;
            println!("unblocked {p}");
            Ok(())
        }
        Command::Throttle {
            cidr,
            rate,
            burst,
            ttl: t,
        } => {
            let p = prefix(&cidr)?;
            let rule = Maps::open(&pins)?.throttle(
                &p,
                ThrottleParams {
                    rate_pps: rate,
                    burst,
                    ttl: ttl(t),
                },
            )?;
            println!(
                "throttled {} to {} pps, burst {} ({})",
                rule.prefix,
                rule.rate_pps,
                rule.burst,
                expiry_text(&rule)
            );
            Ok(())
        }
        Command::Unthrottle { cidr } => {
            let p = prefix(&cidr)?;
            Maps::open(&pins)?.unthrottle(&p)?;
            println!("unthrottled {p}");
            Ok(())
        }
        Command::Allow { cidr } => {
            let p = prefix(&cidr)?;
            Maps::open(&pins)?.allow(&p)?;
            println!("allowed {p}");
            Ok(())
        }
        Command::Disallow { cidr } => {
            let p = prefix(&cidr)?;
            Maps::open(&pins)?.disallow(&p)?;
            println!("disallowed {p}");
            Ok(())
        }
        Command::List => {
            print_rules(&Maps::open(&pins)?.rules()?);
            Ok(())
        }
        Command::Stats => {
            let maps = Maps::open(&pins)?;
            print_stats(&maps)?;
            for (mode, iface) in pins.pinned_links() {
                println!("link: {iface} ({mode})");
            }
            Ok(())
        }
        Command::Sampling { every } => {
            Maps::open(&pins)?.set_sampling(every)?;
            println!(
                "sampling: {}",
                if every == 0 {
                    "off".to_string()
                } else {
                    format!("1 in {every}")
                }
            );
            Ok(())
        }
        Command::Mode { mode } => {
            let dry = matches!(mode, ModeArg::DryRun);
            Maps::open(&pins)?.set_dry_run(dry)?;
            println!("mode: {}", if dry { "dry-run" } else { "enforce" });
            Ok(())
        }
        Command::Detach => {
            let removed = pins.remove_ours()?;
            if removed.is_empty() {
                println!("nothing to remove under {}", pins.path().display());
            }
            for p in removed {
                println!("removed {}", p.display());
            }
            Ok(())
        }
    }
}

fn expiry_text(rule: &Rule) -> String {
    match rule.remaining {
        None => "no expiry".to_string(),
        Some(d) if d.is_zero() => "expired".to_string(),
        Some(d) => format!("expires in {}s", d.as_secs()),
    }
}

fn print_rules(rules: &[Rule]) {
    println!(
        "{:<9} {:<43} {:>12} {:>10} {:>8} {:>6}  REASON",
        "KIND", "PREFIX", "TTL_LEFT", "HITS", "RATE", "BURST"
    );
    for r in rules {
        let ttl = match r.remaining {
            None => "never".to_string(),
            Some(d) if d.is_zero() => "expired".to_string(),
            Some(d) => format!("{}s", d.as_secs()),
        };
        let (rate, burst) = if r.kind == RuleKind::Throttle {
            (r.rate_pps.to_string(), r.burst.to_string())
        } else {
            ("-".into(), "-".into())
        };
        let hits = if r.kind == RuleKind::Block {
            r.hits.to_string()
        } else {
            "-".into()
        };
        let reason = r
            .reason
            .as_ref()
            .map(|(code, text)| {
                if text.is_empty() {
                    code.name().to_string()
                } else {
                    format!("{}: {text}", code.name())
                }
            })
            .unwrap_or_default();
        println!(
            "{:<9} {:<43} {:>12} {:>10} {:>8} {:>6}  {}",
            r.kind.name(),
            r.prefix.to_string(),
            ttl,
            hits,
            rate,
            burst,
            reason
        );
    }
}

fn print_stats(maps: &Maps) -> Result<()> {
    let c = maps.counters()?;
    println!("{:<17} {:>14} {:>16}", "OUTCOME", "PACKETS", "BYTES");
    for o in Outcome::ALL {
        let v = c.get(o);
        println!("{:<17} {:>14} {:>16}", o.name(), v.packets, v.bytes);
    }
    let cfg = maps.config()?;
    println!(
        "sampling: {}\nmode: {}",
        match cfg.sample_every {
            0 => "off".to_string(),
            n => format!("1 in {n}"),
        },
        if cfg.flags & phantomnet_common::config_flags::DRY_RUN != 0 {
            "dry-run"
        } else {
            "enforce"
        }
    );
    Ok(())
}

/// First-start sampling rate when none is given.
const DEFAULT_SAMPLE_EVERY: u32 = 16;

async fn daemon(
    opts: LoadOptions,
    sample_rate: Option<u32>,
    dry_run: bool,
    stats_every: Duration,
    capture: Option<PathBuf>,
) -> Result<()> {
    let mut capture = match capture {
        Some(path) => Some(
            phantomnet_agent::capture::CaptureWriter::create(&path)
                .with_context(|| format!("creating capture file {}", path.display()))?,
        ),
        None => None,
    };
    let first_start = !opts.pins.map(phantomnet_common::maps::CONFIG).exists();
    let mut dp = Dataplane::load(&opts).context("starting the data plane")?;
    let mut maps = Maps::open(dp.pins())?;
    let every = match (sample_rate, first_start) {
        (Some(n), _) => Some(n),
        (None, true) => Some(DEFAULT_SAMPLE_EVERY),
        (None, false) => None,
    };
    if let Some(n) = every {
        maps.set_sampling(n)?;
    }
    maps.set_dry_run(dry_run)?;
    let cfg = maps.config()?;
    for i in dp.interfaces() {
        info!(
            iface = %i.name,
            ifindex = i.ifindex,
            mode = i.mode,
            adopted = i.adopted,
            "data plane ready"
        );
    }
    info!(
        sample_every = cfg.sample_every,
        dry_run, "data plane config"
    );

    let mut samples = dp.take_samples()?;
    let mut batch: Vec<PacketSample> = Vec::with_capacity(1024);
    let mut stats_tick = tokio::time::interval(stats_every);
    let mut log_tick = tokio::time::interval(Duration::from_millis(250));
    let mut prune_tick = tokio::time::interval(Duration::from_secs(30));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            r = samples.next_batch(&mut batch) => {
                r?;
                for s in batch.drain(..) {
                    debug!(sample = %describe(&s), "sample");
                    if let Some(w) = capture.as_mut() {
                        w.write(&s)?;
                    }
                }
            }
            _ = stats_tick.tick() => {
                let c = maps.counters()?;
                let st = samples.stats();
                info!(
                    passed = c.get(Outcome::Passed).packets,
                    allowlisted = c.get(Outcome::Allowlisted).packets,
                    block_dropped = c.get(Outcome::BlockDropped).packets,
                    throttle_dropped = c.get(Outcome::ThrottleDropped).packets,
                    unparsed = c.get(Outcome::Unparsed).packets,
                    sampled = c.get(Outcome::Sampled).packets,
                    sample_lost = c.get(Outcome::SampleLost).packets,
                    samples_read = st.read,
                    "counters"
                );
            }
            _ = log_tick.tick() => dp.drain_logs(),
            _ = prune_tick.tick() => match maps.prune_expired() {
                Ok(0) => {}
                Ok(n) => info!(pruned = n, "removed expired entries"),
                Err(e) => warn!(error = %e, "pruning expired entries"),
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    if let Some(w) = capture.as_mut() {
        w.flush()?;
    }
    info!("exiting; XDP stays attached and every entry stays in force");
    Ok(())
}

fn describe(s: &PacketSample) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let addr = |b: [u8; 16]| -> IpAddr {
        if s.family == 4 {
            Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()
        } else {
            Ipv6Addr::from(b).into()
        }
    };
    format!(
        "if{} {}:{} -> {}:{} proto {} len {} flags {:#04x} ttl {} action {} payload {}/{}",
        s.ifindex,
        addr(s.src_addr),
        s.src_port,
        addr(s.dst_addr),
        s.dst_port,
        s.protocol,
        s.packet_len,
        s.tcp_flags,
        s.ttl,
        s.action,
        s.payload_valid,
        s.payload_len
    )
}
