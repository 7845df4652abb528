//! The data plane seen from userspace: load and attach the XDP program, the
//! pins that keep enforcement alive across agent restarts, the typed map
//! API, and the ring-buffer sample reader.
mod clock;
mod error;
mod link_info;
mod loader;
mod maps;
mod pins;
mod prefix;
mod sampler;

pub use clock::{Expiry, monotonic_now_ns};
pub use error::DataplaneError;
pub use loader::{AttachedInterface, Dataplane, LoadOptions, ModeRequest};
pub use maps::{
    Counters, Covering, KnownGoodView, Maps, Rule, RuleKind, SignatureView, ThrottleParams,
};
pub use pins::{PinDir, mount_bpffs_if_needed};
pub use prefix::Prefix;
pub use sampler::{SampleReader, SampleStats, decode_sample};

/// The XDP object, built by `build.rs` (aya-build) and embedded in the binary.
pub(crate) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/phantomnet"));
