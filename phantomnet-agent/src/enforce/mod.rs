//! Enforcement: the response executor and its DECEIVE backend (nftables).
//! BLOCK and THROTTLE go through the data plane's map API.
pub mod deferred;
mod executor;
mod expiry;
pub mod nft;
mod precedence;
mod tracked;

pub use executor::{
    Applied, DEFAULT_MIN_EVIDENCE, DeceiveRefused, EnforceError, EnforcePolicy, Executor,
    SignatureRequest,
};
pub use expiry::{ExpiryIndex, MAX_INDEXED, RuleKey};
pub use nft::{Deceived, Deceiver, Honeypot, NftError};
pub use precedence::{InForce, Verdict, verdict};
pub use tracked::{DeceiveIndex, FailedDeceive, MAX_NETS, MAX_TRACKED, lru_bytes_per_entry};

/// The longest TTL any rule may have, from the config, the API, a feed or
/// CrowdSec: 30 days (0 / none means "never expires" where allowed).
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// Why DECEIVE is off when the config names no honeypot (a precondition
/// an operator can fix, not an outage).
pub const NO_HONEYPOT: &str = "no honeypot is configured";

/// A new enforcement by the detector, for those who share it (the CrowdSec
/// watcher). Sent only for a source's new action, not for refreshes.
#[derive(Debug, Clone, PartialEq)]
pub struct Enforced {
    /// A host, or an IPv6 source's prefix (`2001:db8:bad::/64`).
    pub source: crate::flow::Source,
    pub action: crate::decide::Action,
    pub ttl: std::time::Duration,
    /// The decision tree's rule number.
    pub rule: u8,
    /// The signatures seen from the source in its evidence window ("" if none).
    pub signatures: String,
    pub time_unix_ns: u64,
}
