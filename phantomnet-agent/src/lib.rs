//! PhantomNet's agent library. The modules follow the data path:
//! sample → flow state → features → models → decision → executor.
//!
//! - [`dataplane`]: load and attach the XDP program, pins, the typed map API,
//!   the ring-buffer sample reader.
//! - [`enforce`]: the response executor (maps for BLOCK/THROTTLE, nftables
//!   for DECEIVE).
pub mod dataplane;
pub mod enforce;

// Detection engine (issue 3).
pub mod capture;
pub mod correlate;
pub mod decide;
pub mod detect;
pub mod features;
pub mod flow;
pub mod models;
pub mod train;
