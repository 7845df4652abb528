//! Enforcement: the response executor and its DECEIVE backend (nftables).
//! BLOCK and THROTTLE go through the data plane's map API.
mod executor;
pub mod nft;

pub use executor::{Applied, EnforceError, EnforcePolicy, Executor};
pub use nft::{Deceived, Deceiver, Honeypot, NftError};
