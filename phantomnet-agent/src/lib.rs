//! PhantomNet's agent library. The modules follow the data path:
//! sample → flow state → features → models → decision → executor.
//!
//! - [`dataplane`]: load and attach the XDP program, pins, the typed map API,
//!   the ring-buffer sample reader.
pub mod dataplane;
