//! The agent's TOML configuration (`/etc/phantomnet/agent.toml` by default).
//!
//! Every table rejects unknown keys (`deny_unknown_fields`), and every error
//! names the file, the dotted key path (`api.tcp.cert`, `honeypot[1].port`,
//! `allowlist[3]`) and the reason; parse errors also carry TOML's line and
//! column. [`Config::default`] holds every default; its
//! `dataplane.interfaces` is empty, so a caller that runs without a file fills
//! the interfaces (e.g. from the command line) and calls [`Config::validate`].
//!
//! [`ConfigHandle`] holds the running configuration for SIGHUP reloads: a
//! reload swaps in a new configuration only when it parses and validates.
//!
//! The keys, defaults and rules are listed in `docs/CONTROL.md`; a commented
//! example is `config/agent.example.toml`.

mod crowdsec;
mod handle;
mod intel;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_integrations;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

pub use crowdsec::{BouncerConfig, CrowdSecConfig, WatcherConfig};
pub use handle::ConfigHandle;
pub use intel::{FeedSource, FeedSpec, IntelConfig};

/// Where the agent looks for its configuration when none is given.
pub const DEFAULT_PATH: &str = "/etc/phantomnet/agent.toml";

pub use crate::enforce::MAX_TTL_SECS;
/// The smallest journal size budget: 1 MiB.
pub const MIN_JOURNAL_BYTES: u64 = 1 << 20;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub dataplane: DataplaneConfig,
    pub thresholds: crate::decide::Thresholds,
    pub detection: DetectionConfig,
    pub enforcement: EnforcementConfig,
    /// `[[honeypot]]` entries: where DECEIVE redirects each destination port.
    #[serde(rename = "honeypot")]
    pub honeypots: Vec<Honeypot>,
    /// Sources never dropped or throttled: CIDRs or bare addresses (a bare
    /// address is a /32 or /128).
    #[serde(deserialize_with = "deserialize_allowlist")]
    pub allowlist: Vec<IpNet>,
    pub intel: IntelConfig,
    /// `[crowdsec]`: none by default.
    pub crowdsec: Option<CrowdSecConfig>,
    pub model: ModelConfig,
    pub api: ApiConfig,
    pub metrics: MetricsConfig,
    pub journal: JournalConfig,
}

/// `[detection]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// `"on-change"` (default) or `"every-sample"` (docs/DETECTION.md,
    /// "Scoring a source").
    pub scoring: crate::detect::Scoring,
}

/// `[dataplane]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneConfig {
    /// Interfaces to attach XDP to; required, non-empty, each a valid Linux
    /// interface name (1–15 bytes, no `/`, `:` or whitespace).
    pub interfaces: Vec<String>,
    /// Inside (protected-side) interfaces to observe, never enforce on:
    /// the protected side's refusals of outside hosts (TCP resets, ICMP
    /// destination unreachables) become schema v4's `server_refusals`, its
    /// answers (established TCP segments, UDP datagrams) schema v5's
    /// `server_answers` (docs/FEATURES.md). Optional (empty: both stay 0);
    /// each a valid interface name, none of them in `interfaces`.
    pub inside_interfaces: Vec<String>,
    pub xdp_mode: XdpMode,
    pub pin_dir: PathBuf,
    /// Sample 1 packet in N into the ring buffer; 0 turns sampling off.
    pub sample_every: u32,
    /// Also sample with probability 1 the packets that open connections,
    /// probe ports or start a flow's payload, within per-source bounds
    /// (docs/DATAPLANE.md, "Sampling"); false: plain 1-in-N sampling.
    pub priority_sampling: bool,
    /// Count what would be enforced but pass every packet.
    pub dry_run: bool,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            interfaces: Vec::new(),
            inside_interfaces: Vec::new(),
            xdp_mode: XdpMode::Auto,
            pin_dir: PathBuf::from("/sys/fs/bpf/phantomnet"),
            sample_every: 16,
            priority_sampling: true,
            dry_run: false,
        }
    }
}

/// `dataplane.xdp_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic.
    #[default]
    Auto,
    Native,
    Generic,
}

impl From<XdpMode> for crate::dataplane::ModeRequest {
    fn from(m: XdpMode) -> Self {
        match m {
            XdpMode::Auto => crate::dataplane::ModeRequest::Auto,
            XdpMode::Native => crate::dataplane::ModeRequest::Native,
            XdpMode::Generic => crate::dataplane::ModeRequest::Generic,
        }
    }
}

/// `[enforcement]`: how long each action lasts, and the throttle bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnforcementConfig {
    pub block_ttl_secs: u64,
    pub throttle_ttl_secs: u64,
    pub deceive_ttl_secs: u64,
    pub throttle_rate_pps: u32,
    pub throttle_burst: u32,
    pub min_evidence: u32,
    pub evidence_window_secs: u64,
    /// Answer floods from many sources with signature rules (the aggregate
    /// detector; docs/DETECTION.md).
    pub floods: bool,
    /// How long a flood's signature rule lives without an update.
    pub flood_rule_ttl_secs: u64,
    /// IPv6 sources are grouped to this prefix length for flow state,
    /// evidence and enforcement (32..=128; 128 = per address). IPv4
    /// sources are per address.
    pub ipv6_source_prefix: u8,
}

impl EnforcementConfig {
    /// The executor's policy these settings make.
    pub fn policy(&self) -> crate::enforce::EnforcePolicy {
        use std::time::Duration;
        crate::enforce::EnforcePolicy {
            block_ttl: Duration::from_secs(self.block_ttl_secs),
            throttle_ttl: Duration::from_secs(self.throttle_ttl_secs),
            deceive_ttl: Duration::from_secs(self.deceive_ttl_secs),
            throttle_rate_pps: self.throttle_rate_pps,
            throttle_burst: self.throttle_burst,
            min_evidence: self.min_evidence,
            evidence_window: Duration::from_secs(self.evidence_window_secs),
            floods: self.floods,
            flood_rule_ttl: Duration::from_secs(self.flood_rule_ttl_secs),
            ipv6_source_prefix: self.ipv6_source_prefix,
        }
    }
}

impl Default for EnforcementConfig {
    fn default() -> Self {
        EnforcementConfig {
            block_ttl_secs: 3600,
            throttle_ttl_secs: 600,
            deceive_ttl_secs: 900,
            throttle_rate_pps: 100,
            throttle_burst: 20,
            min_evidence: crate::enforce::DEFAULT_MIN_EVIDENCE,
            evidence_window_secs: 10,
            floods: true,
            flood_rule_ttl_secs: 60,
            ipv6_source_prefix: crate::flow::DEFAULT_IPV6_SOURCE_PREFIX,
        }
    }
}

/// One `[[honeypot]]`: traffic DECEIVE'd to destination `port` goes to
/// `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Honeypot {
    /// The original destination port (> 0).
    pub port: u16,
    /// The honeypot's `ip:port` (`[v6]:port` for IPv6).
    pub target: SocketAddr,
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A trained model file; none means the built-in model.
    pub path: Option<PathBuf>,
    /// The only directory the control API's LoadModel reads from (default:
    /// `path` if it is a registry directory, else the directory holding it).
    pub dir: Option<PathBuf>,
    /// The largest model file LoadModel reads, in bytes.
    pub max_bytes: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            path: None,
            dir: None,
            max_bytes: DEFAULT_MODEL_MAX_BYTES,
        }
    }
}

/// 64 MiB: the shipped model is 0.25 MiB.
pub const DEFAULT_MODEL_MAX_BYTES: u64 = 64 << 20;

impl ModelConfig {
    /// The directory LoadModel is confined to, if any.
    pub fn load_dir(&self) -> Option<PathBuf> {
        self.dir.clone().or_else(|| {
            let p = self.path.as_ref()?;
            if p.is_dir() {
                Some(p.clone())
            } else {
                p.parent().map(Path::to_path_buf)
            }
        })
    }
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The local (Unix socket) API.
    pub socket: PathBuf,
    /// The optional remote API over mutual TLS.
    pub tcp: Option<ApiTcpConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            socket: PathBuf::from("/run/phantomnet/agent.sock"),
            tcp: None,
        }
    }
}

/// `[api.tcp]`: every key is required when the table is present.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTcpConfig {
    pub listen: SocketAddr,
    /// PEM server certificate chain.
    pub cert: PathBuf,
    /// PEM server private key.
    pub key: PathBuf,
    /// PEM CA bundle that client certificates must chain to.
    pub client_ca: PathBuf,
}

/// `[metrics]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` address.
    pub allow_remote: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9477),
            allow_remote: false,
        }
    }
}

/// `[journal]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    pub path: PathBuf,
    pub max_age_secs: u64,
    pub max_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            path: PathBuf::from("/var/lib/phantomnet/journal"),
            max_age_secs: 7 * 24 * 3600,
            max_bytes: 256 << 20,
        }
    }
}

impl JournalConfig {
    /// The journal's retention, as [`crate::journal::Journal::open`] takes it.
    pub fn retention(&self) -> crate::journal::Retention {
        crate::journal::Retention {
            max_age: std::time::Duration::from_secs(self.max_age_secs),
            max_bytes: self.max_bytes,
        }
    }
}

/// A configuration that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, a key is unknown, or a value has the wrong type.
    #[error("{}: {}{}{message}", file.display(), position(*line, *column), key_prefix(key))]
    Parse {
        file: PathBuf,
        /// The dotted path of the offending key, when known.
        key: Option<String>,
        /// 1-based line and column, when TOML reported a span.
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// The TOML is well-formed but a value breaks a rule.
    #[error("{}: {key}: {reason}", file.display())]
    Invalid {
        file: PathBuf,
        key: String,
        reason: String,
    },
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

fn key_prefix(key: &Option<String>) -> String {
    match key.as_deref() {
        Some(k) if !k.is_empty() => format!("{k}: "),
        _ => String::new(),
    }
}

impl ConfigError {
    /// The dotted key path the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { key, .. } => key.as_deref(),
            ConfigError::Invalid { key, .. } => Some(key),
        }
    }

    /// The file the error is about (`<string>` for [`Config::from_toml_str`]).
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Read { file, .. }
            | ConfigError::Parse { file, .. }
            | ConfigError::Invalid { file, .. } => file,
        }
    }

    fn with_file(mut self, path: &Path) -> Self {
        match &mut self {
            ConfigError::Read { file, .. }
            | ConfigError::Parse { file, .. }
            | ConfigError::Invalid { file, .. } => *file = path.to_path_buf(),
        }
        self
    }
}

/// The file name used in errors from [`Config::from_toml_str`].
const STRING_SOURCE: &str = "<string>";

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let config = Self::from_toml_str(&text).map_err(|e| e.with_file(path))?;
        tracing::debug!(file = %path.display(), "configuration loaded");
        Ok(config)
    }

    /// Parses and validates TOML text; errors name the file `<string>`.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config = parse(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule (see `docs/CONTROL.md`); the error names the first
    /// offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self).map_err(|(key, reason)| ConfigError::Invalid {
            file: PathBuf::from(STRING_SOURCE),
            key,
            reason,
        })
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    let parse_error = |key: Option<String>, e: toml::de::Error| {
        let (line, column) = match e.span() {
            Some(span) => {
                let (l, c) = line_column(text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError::Parse {
            file: PathBuf::from(STRING_SOURCE),
            key,
            line,
            column,
            message: e.message().trim_end().to_string(),
        }
    };
    let de = toml::Deserializer::parse(text).map_err(|e| parse_error(None, e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = (key != ".").then_some(key);
        parse_error(key, e.into_inner())
    })
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Parses the allowlist; a bad entry's error path is `allowlist[i]`.
fn deserialize_allowlist<'de, D>(de: D) -> Result<Vec<IpNet>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let entries = Vec::<AllowNet>::deserialize(de)?;
    Ok(entries.into_iter().map(|a| a.0).collect())
}

/// One allowlist entry as written: a CIDR or a bare address.
struct AllowNet(IpNet);

impl<'de> Deserialize<'de> for AllowNet {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        parse_allow_entry(&s)
            .map(AllowNet)
            .map_err(|reason| serde::de::Error::custom(format!("{s:?}: {reason}")))
    }
}

/// Parses one allowlist entry: a CIDR with no host bits set (`10.0.0.0/8`,
/// `2001:db8::/32`), or a bare address (a /32 or /128).
pub fn parse_allow_entry(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if s.contains('/') {
        let net: IpNet = s.parse().map_err(|e| format!("not a CIDR: {e}"))?;
        if net.trunc() != net {
            return Err(format!("host bits are set (did you mean {}?)", net.trunc()));
        }
        Ok(net)
    } else {
        let addr: IpAddr = s
            .parse()
            .map_err(|e| format!("not an address or CIDR: {e}"))?;
        Ok(IpNet::from(addr))
    }
}
