//! Enforcement: the response executor and its DECEIVE backend (nftables).
//! BLOCK and THROTTLE go through the data plane's map API.
mod executor;
pub mod nft;
mod precedence;

pub use executor::{Applied, EnforceError, EnforcePolicy, Executor};
pub use nft::{Deceived, Deceiver, Honeypot, NftError};
pub use precedence::{InForce, Verdict};

/// Why DECEIVE is off when the config names no honeypot (a precondition
/// an operator can fix, not an outage).
pub const NO_HONEYPOT: &str = "no honeypot is configured";
