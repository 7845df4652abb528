//! `[intel]`: the threat-intelligence feeds the correlator weighs, and which
//! of them also go into BLOCK.
//!
//! ```toml
//! [intel]
//! feed = "/etc/phantomnet/intel.txt"      # the plain file of old, read at start and reload
//!
//! [[intel.feeds]]
//! name = "firehol_level1"                 # label in reasons, metrics and block entries
//! source = "https://iplists.firehol.org/files/firehol_level1.netset"   # or an absolute path
//! format = "firehol"                      # firehol | spamhaus | plain
//! weight = 0.9                            # a listed source's feed score, (0, 1]
//! interval_secs = 3600
//! block = false                           # also BLOCK every entry
//! ```
use std::path::PathBuf;

use serde::Deserialize;

use crate::correlate::FeedFormat;

/// `[intel]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// A threat-intelligence file in the plain format; none by default.
    pub feed: Option<PathBuf>,
    /// `[[intel.feeds]]`: feeds fetched at an interval.
    pub feeds: Vec<FeedSpec>,
}

/// Where a feed comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedSource {
    /// A local file, re-read when its modification time changes.
    File(PathBuf),
    /// An `https://` URL, fetched with conditional requests.
    Https(String),
}

impl std::fmt::Display for FeedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedSource::File(p) => write!(f, "{}", p.display()),
            FeedSource::Https(u) => f.write_str(u),
        }
    }
}

impl<'de> Deserialize<'de> for FeedSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FeedSource::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl FeedSource {
    pub fn parse(s: &str) -> Result<FeedSource, String> {
        if let Some(rest) = s.strip_prefix("https://") {
            let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
            if rest.is_empty() || url.host_str().is_none() {
                return Err(format!("{s:?} has no host"));
            }
            return Ok(FeedSource::Https(s.to_string()));
        }
        if s.starts_with("http://") {
            return Err(format!(
                "{s:?}: plain HTTP can be altered on the way; use https:// or a file"
            ));
        }
        if s.contains("://") {
            return Err(format!("{s:?}: only https:// URLs and absolute paths"));
        }
        let p = PathBuf::from(s);
        if !p.is_absolute() {
            return Err(format!("{s:?} must be an https:// URL or an absolute path"));
        }
        Ok(FeedSource::File(p))
    }
}

/// One `[[intel.feeds]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSpec {
    /// 1–32 bytes of `[A-Za-z0-9_.-]`, unique: the label in the
    /// correlator's reasons, the metrics and the block entries' reason text.
    pub name: String,
    pub source: FeedSource,
    pub format: FeedFormat,
    /// The feed score a listed source gets, in (0, 1].
    #[serde(default = "one")]
    pub weight: f64,
    /// Seconds between checks; 10 s .. 7 days.
    #[serde(default = "hour")]
    pub interval_secs: u64,
    /// Also BLOCK every entry (refreshed at every check, removed when the
    /// feed drops it; entries set by anyone else are left alone).
    #[serde(default)]
    pub block: bool,
    /// How long a feed's BLOCK entry lasts without a successful check
    /// [default: 3 × interval, at least 1 h]. A feed that cannot be reached
    /// keeps its entries in force until then.
    #[serde(default)]
    pub block_ttl_secs: Option<u64>,
    /// A PEM CA bundle trusted for this feed's HTTPS server, on top of the
    /// system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The largest body accepted, in bytes [default 64 MiB].
    #[serde(default = "max_bytes")]
    pub max_bytes: u64,
}

fn one() -> f64 {
    1.0
}
fn hour() -> u64 {
    3600
}
fn max_bytes() -> u64 {
    64 << 20
}

impl FeedSpec {
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.interval_secs)
    }

    pub fn block_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.block_ttl_secs
                .unwrap_or_else(|| (3 * self.interval_secs).max(3600)),
        )
    }
}

/// The rules of `[intel]`; a failure is (key, reason).
pub(super) fn validate(c: &IntelConfig) -> Result<(), (String, String)> {
    let fail = |key: String, why: String| Err((key, why));
    if let Some(p) = &c.feed
        && p.as_os_str().is_empty()
    {
        return fail("intel.feed".into(), "must not be empty".into());
    }
    for (i, f) in c.feeds.iter().enumerate() {
        let key = |k: &str| format!("intel.feeds[{i}].{k}");
        let name_ok = (1..=32).contains(&f.name.len())
            && f.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            return fail(
                key("name"),
                format!("{:?} must be 1-32 bytes of A-Z a-z 0-9 _ . -", f.name),
            );
        }
        if c.feeds[..i].iter().any(|o| o.name == f.name) {
            return fail(key("name"), format!("{:?} is used twice", f.name));
        }
        if !(f.weight > 0.0 && f.weight <= 1.0) {
            return fail(key("weight"), format!("{} must be in (0, 1]", f.weight));
        }
        if !(10..=7 * 24 * 3600).contains(&f.interval_secs) {
            return fail(key("interval_secs"), "must be 10 .. 604800 (7 days)".into());
        }
        if let Some(t) = f.block_ttl_secs
            && !(60..=super::MAX_TTL_SECS).contains(&t)
        {
            return fail(
                key("block_ttl_secs"),
                format!("must be 60 .. {}", super::MAX_TTL_SECS),
            );
        }
        if !(1..=1 << 30).contains(&f.max_bytes) {
            return fail(key("max_bytes"), "must be 1 .. 1073741824 (1 GiB)".into());
        }
        if let Some(ca) = &f.ca_file
            && !ca.is_absolute()
        {
            return fail(
                key("ca_file"),
                format!("{} must be an absolute path", ca.display()),
            );
        }
        if f.ca_file.is_some() && matches!(f.source, FeedSource::File(_)) {
            return fail(key("ca_file"), "applies to https:// sources only".into());
        }
    }
    Ok(())
}
