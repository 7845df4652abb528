//! `phantomctl`'s command line: every verb, its arguments and their help,
//! which are also the man pages and completions (`generate-docs`).
use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand, ValueEnum};
use phantomnet_common::{EventAction, RuleKind};

#[derive(Parser)]
#[command(name = "phantomctl", version, about = "Control a PhantomNet agent")]
pub(crate) struct Cli {
    /// The agent's Unix socket.
    #[arg(
        long,
        global = true,
        default_value = "/run/phantomnet/agent.sock",
        env = "PHANTOMCTL_SOCKET"
    )]
    pub(crate) socket: PathBuf,
    /// A TCP endpoint (https://host:port) instead of the socket; needs --ca,
    /// --cert and --key (the agent requires a client certificate).
    #[arg(long, global = true)]
    pub(crate) endpoint: Option<String>,
    #[arg(long, global = true)]
    pub(crate) ca: Option<PathBuf>,
    #[arg(long, global = true)]
    pub(crate) cert: Option<PathBuf>,
    #[arg(long, global = true)]
    pub(crate) key: Option<PathBuf>,
    /// The server name in the agent's certificate (default: the endpoint's host).
    #[arg(long, global = true)]
    pub(crate) domain: Option<String>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Parses a name from the agent's vocabulary (any case); the accepted
/// names are the help's, the man page's and the completions' values.
fn vocabulary<T: Copy + Send + Sync + 'static, const N: usize>(
    all: [T; N],
    name: fn(T) -> &'static str,
    parse: fn(&str) -> Option<T>,
) -> impl clap::builder::TypedValueParser<Value = T> {
    clap::builder::PossibleValuesParser::new(all.map(name))
        .try_map(move |s: String| parse(&s).ok_or_else(|| format!("{s:?} is not a known name")))
}

fn rule_kind() -> impl clap::builder::TypedValueParser<Value = RuleKind> {
    vocabulary(RuleKind::ALL, RuleKind::name, RuleKind::from_name)
}

fn event_action() -> impl clap::builder::TypedValueParser<Value = EventAction> {
    vocabulary(EventAction::ALL, EventAction::name, EventAction::from_name)
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    Enforce,
    DryRun,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Write man pages and shell completions under --out (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        #[arg(long)]
        out: PathBuf,
    },
    /// Version, interfaces, uptime, counters, model, mode.
    Status,
    /// Drop every packet from a prefix (IPv4 or IPv6 CIDR, or an address).
    Block {
        /// The source prefix, e.g. 203.0.113.0/24 or 2001:db8::/48.
        cidr: String,
        /// Seconds until the block expires; 0 uses the agent's default.
        #[arg(long, default_value_t = 0)]
        ttl: u64,
        /// Free text (at most 32 bytes) kept with the rule and journaled.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Remove a block.
    Unblock {
        /// The prefix as it was blocked.
        cidr: String,
    },
    /// Rate-limit a prefix per source (token bucket in XDP).
    Throttle {
        /// The source prefix.
        cidr: String,
        /// Packets per second per source; 0 uses the agent's default.
        #[arg(long, default_value_t = 0)]
        rate: u32,
        /// Bucket depth in packets; 0 uses the agent's default.
        #[arg(long, default_value_t = 0)]
        burst: u32,
        /// Seconds until the throttle expires; 0 uses the agent's default.
        #[arg(long, default_value_t = 0)]
        ttl: u64,
        /// Free text (at most 32 bytes) kept with the rule and journaled.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Remove a throttle.
    Unthrottle {
        /// The prefix as it was throttled.
        cidr: String,
    },
    /// Exempt a prefix from every action (XDP and DECEIVE).
    Allow {
        /// The source prefix.
        cidr: String,
    },
    /// Remove an allowlist entry.
    Disallow {
        /// The prefix as it was allowed.
        cidr: String,
    },
    /// Redirect a prefix's connections to a honeypot (nftables DNAT).
    Deceive {
        /// The source prefix.
        cidr: String,
        /// Seconds until the deception ends; 0 uses the agent's default.
        #[arg(long, default_value_t = 0)]
        ttl: u64,
        /// Free text (at most 32 bytes) kept with the rule and journaled.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End a deception.
    Undeceive {
        /// The prefix as it was deceived.
        cidr: String,
    },
    /// Rules in force (all pages).
    Rules {
        /// Only rules of this kind.
        #[arg(long, ignore_case = true, value_parser = rule_kind())]
        action: Option<RuleKind>,
    },
    /// Signature rules: drop or rate-limit the packets to a destination that
    /// match an attack's traits, whatever their source.
    Signature {
        #[command(subcommand)]
        action: SignatureCmd,
    },
    /// Sources that signature rules with --exempt-known-good let through.
    KnownGood {
        #[command(subcommand)]
        action: KnownGoodCmd,
    },
    /// Journaled decisions, newest first; --follow streams new ones.
    Events {
        /// Only events about this source address.
        #[arg(long)]
        source: Option<String>,
        /// Only events with this action.
        #[arg(long, ignore_case = true, value_parser = event_action())]
        action: Option<EventAction>,
        /// How many past events to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Keep streaming new events (one JSON line each with --json).
        #[arg(long)]
        follow: bool,
    },
    /// The running model; `--load PATH` validates and swaps in another.
    Model {
        /// A model file inside the agent's [model] dir to validate and load.
        #[arg(long)]
        load: Option<String>,
    },
    /// The decision thresholds; any option given sets them (others unchanged).
    Thresholds {
        #[arg(long)]
        low: Option<f64>,
        #[arg(long)]
        medium_confidence: Option<f64>,
        #[arg(long)]
        medium: Option<f64>,
        #[arg(long)]
        high_confidence: Option<f64>,
        #[arg(long)]
        high: Option<f64>,
    },
    /// Enforce, or only record what would be enforced.
    Mode {
        #[arg(value_enum)]
        mode: ModeArg,
    },
    /// Sample 1 packet in N (0 = off).
    Sampling { every: u32 },
}

#[derive(Subcommand)]
pub(crate) enum SignatureCmd {
    /// Install a rule, or refresh the live rule with the same match fields.
    Add {
        /// The rule: PROTO dst ADDR/LEN [dport P|P-Q] [flags SET/MASK]
        /// [ttl T|T-U] [len L|L-M] [payload HEX], e.g.
        /// "tcp dst 203.0.113.10/32 dport 80 flags SYN/SYN+ACK+RST+FIN len 54-60".
        rule: String,
        /// Seconds until the rule expires; 0 keeps it until removed.
        #[arg(long, default_value_t = 0)]
        ttl: u64,
        /// Matching packets per second let through, all sources together;
        /// 0 drops every match.
        #[arg(long, default_value_t = 0)]
        rate: u32,
        /// Let known-good sources through (see `phantomctl known-good`).
        #[arg(long)]
        exempt_known_good: bool,
    },
    /// Remove the rule with this id.
    Remove {
        /// The id `signature list` shows.
        id: u32,
    },
    /// Every rule, with its counts and time left.
    List,
}

#[derive(Subcommand)]
pub(crate) enum KnownGoodCmd {
    /// Mark a source known-good.
    Add {
        /// An IPv4 or IPv6 address.
        address: String,
    },
    /// Withdraw a source's known-good mark.
    Remove {
        /// The address as it was added.
        address: String,
    },
    /// Every known-good source (all pages).
    List,
}
