//! `phantomnet-agent`: runs the data plane, and lets operators work on the
//! pinned maps directly, with or without a running agent.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use phantomnet_agent::{
    agent::{self, RunOptions},
    config::{Config, XdpMode},
    dataplane::{Maps, PinDir, Prefix, Rule, RuleKind, ThrottleParams},
};
use phantomnet_common::{DEFAULT_PIN_DIR, Outcome, ReasonCode};

#[derive(Parser)]
#[command(name = "phantomnet-agent", version, about = "PhantomNet gateway agent")]
struct Cli {
    /// Directory of PhantomNet's pins on bpffs [default: the config's
    /// dataplane.pin_dir for `run`, else /sys/fs/bpf/phantomnet].
    #[arg(long, global = true, env = "PHANTOMNET_PIN_DIR")]
    pin_dir: Option<PathBuf>,
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

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Subcommand)]
enum Command {
    /// Write man pages and shell completions under --out (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the agent: attach the data plane, detect, enforce, and serve the
    /// control API and metrics until SIGINT/SIGTERM (SIGHUP reloads the
    /// config). Exiting leaves enforcement in force.
    Run {
        /// The config file [default: /etc/phantomnet/agent.toml if it exists,
        /// else built-in defaults]. The options below override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Interface to attach to (repeat for several).
        #[arg(long = "iface")]
        ifaces: Vec<String>,
        /// Inside (protected-side) interface to observe, never enforce on
        /// (repeat for several): the protected side's refusals of and
        /// answers to outside hosts feed `server_refusals` and
        /// `server_answers`.
        #[arg(long = "inside-iface")]
        inside_ifaces: Vec<String>,
        #[arg(long, value_enum)]
        xdp_mode: Option<XdpModeArg>,
        /// Sample 1 packet in N (0 = off).
        #[arg(long)]
        sample_rate: Option<u32>,
        /// Count outcomes as if enforced, but pass every packet.
        #[arg(long)]
        dry_run: bool,
        /// A model artifact or registry directory (enables detection).
        #[arg(long)]
        model: Option<PathBuf>,
        /// The control API's Unix socket.
        #[arg(long)]
        api_socket: Option<PathBuf>,
        /// The event journal's file.
        #[arg(long)]
        journal: Option<PathBuf>,
        /// The Prometheus endpoint's address.
        #[arg(long)]
        metrics_listen: Option<std::net::SocketAddr>,
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
    /// Turn capture files and pcaps into a labeled CSV of the newest schema's features.
    Dataset(phantomnet_agent::train::DatasetArgs),
    /// Train the forest, scaler and isolation forest; write a versioned artifact.
    Train(phantomnet_agent::train::TrainArgs),
    /// Evaluate a model on a CSV: metrics, confusion matrix and ROC PNGs.
    Evaluate(phantomnet_agent::train::EvaluateArgs),
    /// Replay a capture through the decision path offline (no root) and
    /// report per source: attackers enforced and how fast, benign sources
    /// acted on by name.
    Replay(phantomnet_agent::replay::ReplayArgs),
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
    /// Signature rules: drop or rate-limit the packets to a destination
    /// that match, whatever their source (docs/DATAPLANE.md).
    Signature {
        #[command(subcommand)]
        action: SignatureCmd,
    },
    /// Sources that signature rules with `--exempt-known-good` let through.
    KnownGood {
        #[command(subcommand)]
        action: KnownGoodCmd,
    },
    /// Print the per-outcome counters, the data-plane config and the links.
    Stats,
    /// Sample 1 packet in N into the ring buffer (0 = off).
    Sampling {
        every: u32,
    },
    /// Priority sampling on (connection openers, probes and each flow's
    /// first payload packets sampled with probability 1, within bounds)
    /// or off (plain 1-in-N sampling).
    PrioritySampling {
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Enforce, or only count what would be enforced (dry-run).
    Mode {
        #[arg(value_enum)]
        mode: ModeArg,
    },
    /// Remove every pin PhantomNet created: detaches XDP, drops all entries.
    Detach,
}

#[derive(Subcommand)]
enum SignatureCmd {
    /// Install a rule, e.g. "tcp dst 203.0.113.10/32 dport 80 flags SYN/SYN+ACK+RST+FIN len 54-60".
    Add {
        rule: String,
        /// Seconds until the rule expires (default: never).
        #[arg(long)]
        ttl: Option<u64>,
        /// Matching packets per second let through, all sources together
        /// (default: drop every match).
        #[arg(long)]
        rate: Option<u32>,
        /// Let known-good sources through.
        #[arg(long)]
        exempt_known_good: bool,
    },
    /// Remove the rule with this id.
    Remove { id: u32 },
    /// Every rule with its counts.
    List,
}

#[derive(Subcommand)]
enum KnownGoodCmd {
    Add { addr: std::net::IpAddr },
    Remove { addr: std::net::IpAddr },
    List,
}

fn signature_cmd(pins: &PinDir, cmd: SignatureCmd) -> Result<()> {
    let mut maps = Maps::open(pins)?;
    match cmd {
        SignatureCmd::Add {
            rule,
            ttl: t,
            rate,
            exempt_known_good,
        } => {
            let sig: phantomnet_agent::aggregate::Signature = rule.parse().context("the rule")?;
            let mut r = sig.to_rule();
            r.rate_pps = rate.unwrap_or(0);
            r.reason = ReasonCode::Manual as u32;
            if exempt_known_good {
                r.flags |= phantomnet_common::sig_flags::EXEMPT_KNOWN_GOOD;
            }
            let v = maps.add_signature(r, ttl(t))?;
            println!("signature {} in slot {}: {sig}", v.rule.id, v.slot);
        }
        SignatureCmd::Remove { id } => {
            maps.remove_signature(id)?;
            println!("removed signature {id}");
        }
        SignatureCmd::List => {
            println!(
                "{:>4} {:>10} {:>12} {:>12} {:>10}  RULE",
                "ID", "RATE", "MATCHED", "DROPPED", "EXEMPTED"
            );
            for v in maps.signatures()? {
                let rate = match v.rule.rate_pps {
                    0 => "drop".to_string(),
                    r => format!("{r}/s"),
                };
                let sig = phantomnet_agent::aggregate::Signature::from_rule(&v.rule);
                let left = match v.remaining {
                    None => String::new(),
                    Some(d) => format!(" (expires in {}s)", d.as_secs()),
                };
                println!(
                    "{:>4} {rate:>10} {:>12} {:>12} {:>10}  {sig}{left}",
                    v.rule.id, v.matched, v.dropped, v.exempted
                );
            }
        }
    }
    Ok(())
}

fn known_good_cmd(pins: &PinDir, cmd: KnownGoodCmd) -> Result<()> {
    let mut maps = Maps::open(pins)?;
    match cmd {
        KnownGoodCmd::Add { addr } => {
            maps.vouch(addr)?;
            println!("known-good {addr}");
        }
        KnownGoodCmd::Remove { addr } => {
            maps.unvouch(addr)?;
            println!("no longer known-good: {addr}");
        }
        KnownGoodCmd::List => {
            for g in maps.known_good()? {
                println!("{} exempted {}", g.addr, g.entry.exempted);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A replay runs the live path, whose per-enforcement log lines would
    // bury its report: warnings only, unless RUST_LOG says otherwise.
    let default = match cli.command {
        Command::Replay(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
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
    let pins = PinDir::new(
        cli.pin_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_DIR)),
    );
    match cli.command {
        Command::GenerateDocs { out } => {
            use clap::CommandFactory;
            phantomnet_agent::docgen::write_all(Cli::command(), &out)?;
            Ok(())
        }
        Command::Run {
            config,
            ifaces,
            inside_ifaces,
            xdp_mode,
            sample_rate,
            dry_run,
            model,
            api_socket,
            journal,
            metrics_listen,
            stats_interval,
            ebpf_log_level,
            capture,
        } => {
            // Until the agent's own SIGHUP handler is in place (the first
            // thing agent::run does), a reload request must not kill it.
            // SAFETY: SIG_IGN installs no handler code; no other thread runs yet.
            unsafe {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGHUP,
                    nix::sys::signal::SigHandler::SigIgn,
                )
            }
            .context("ignoring SIGHUP during start-up")?;
            tracing::info!(
                pid = std::process::id(),
                "agent starting; SIGHUP is safe from here on"
            );
            let default_path = PathBuf::from(phantomnet_agent::config::DEFAULT_PATH);
            let config_path = config.or_else(|| default_path.exists().then_some(default_path));
            let mut cfg = match &config_path {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            let pin_dir = cli.pin_dir.clone();
            // Every command-line value, applied now and again at each reload.
            let overrides = move |cfg: &mut Config| {
                if !ifaces.is_empty() {
                    cfg.dataplane.interfaces = ifaces.clone();
                }
                if !inside_ifaces.is_empty() {
                    cfg.dataplane.inside_interfaces = inside_ifaces.clone();
                }
                if let Some(m) = xdp_mode {
                    cfg.dataplane.xdp_mode = match m {
                        XdpModeArg::Auto => XdpMode::Auto,
                        XdpModeArg::Native => XdpMode::Native,
                        XdpModeArg::Generic => XdpMode::Generic,
                    };
                }
                if let Some(n) = sample_rate {
                    cfg.dataplane.sample_every = n;
                }
                if dry_run {
                    cfg.dataplane.dry_run = true;
                }
                if let Some(p) = &pin_dir {
                    cfg.dataplane.pin_dir = p.clone();
                }
                if let Some(p) = &model {
                    cfg.model.path = Some(p.clone());
                }
                if let Some(p) = &api_socket {
                    cfg.api.socket = p.clone();
                }
                if let Some(p) = &journal {
                    cfg.journal.path = p.clone();
                }
                if let Some(a) = metrics_listen {
                    cfg.metrics.listen = a;
                }
            };
            overrides(&mut cfg);
            cfg.validate()?;
            let opts = RunOptions {
                config: cfg,
                config_path,
                ebpf_log_level,
                capture,
                stats_every: Duration::from_secs(stats_interval.max(1)),
                overrides: std::sync::Arc::new(overrides),
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                let shutdown = async move {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                };
                agent::run(opts, shutdown)
                    .await
                    .context("running the agent")
            })
        }
        Command::Dataset(args) => Ok(phantomnet_agent::train::run_dataset(&args)?),
        Command::Train(args) => Ok(phantomnet_agent::train::run_train(&args)?),
        Command::Evaluate(args) => Ok(phantomnet_agent::train::run_evaluate(&args)?),
        Command::Replay(args) => {
            phantomnet_agent::replay::run_replay(&args)?;
            Ok(())
        }
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
        Command::Signature { action } => signature_cmd(&pins, action),
        Command::KnownGood { action } => known_good_cmd(&pins, action),
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
        Command::PrioritySampling { state } => {
            let on = matches!(state, OnOff::On);
            Maps::open(&pins)?.set_priority_sampling(on)?;
            println!("priority sampling: {}", if on { "on" } else { "off" });
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
            // DECEIVE's table is ours too: without the agent nothing keeps
            // its DNAT rules meaningful. Only `inet phantomnet` is touched.
            match phantomnet_agent::enforce::Deceiver::new(Vec::new()).remove() {
                Ok(()) => println!(
                    "removed nft table inet {}",
                    phantomnet_agent::enforce::nft::TABLE
                ),
                Err(e) if e.to_string().contains("No such file") => {}
                Err(e) => eprintln!("warning: removing the nft table: {e}"),
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
        let reason = r.reason_text();
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
        "sampling: {}\npriority sampling: {}\nmode: {}",
        match cfg.sample_every {
            0 => "off".to_string(),
            n => format!("1 in {n}"),
        },
        if cfg.flags & phantomnet_common::config_flags::PRIORITY_SAMPLING != 0 {
            "on"
        } else {
            "off"
        },
        if cfg.flags & phantomnet_common::config_flags::DRY_RUN != 0 {
            "dry-run"
        } else {
            "enforce"
        }
    );
    Ok(())
}
