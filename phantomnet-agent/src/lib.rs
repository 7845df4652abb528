//! PhantomNet's agent library. The modules follow the data path, in the
//! order below; none imports one after it (CONTRIBUTING.md):
//! sample → flow state → features → models → decision → executor.
//!
//! - [`dataplane`]: load and attach the XDP program, pins, the typed map API,
//!   the ring-buffer sample reader; [`capture`]: sample files.
//! - [`flow`] → [`features`] → [`models`] → [`correlate`] → [`decide`]:
//!   detection, composed per sample by [`detect`]; [`train`] builds models.
//!   [`plot`]: the font every PNG (training's, replay's) is drawn in.
//!   [`aggregate`] recognises attacks spread over many sources and derives
//!   their packet signatures; the live pipeline installs them as rules.
//! - [`enforce`]: the response executor (maps for BLOCK/THROTTLE, nftables
//!   for DECEIVE).
//! - [`daemon`]: the running agent's core state and live pipeline, with
//!   [`config`], [`journal`] and [`metrics`]; [`feeds`] and [`crowdsec`]
//!   act on it through traits of their own.
//! - [`api`]: the gRPC control API, which calls into the daemon's core.
//! - [`replay`]: a recorded capture through the same path, offline, judged
//!   per source (`phantomnet-agent replay`).
//! - [`agent`]: the composition root (start-up, reload, housekeeping), on
//!   top of everything; only the binary imports it.
//! - [`docgen`]: man pages and completions from the binaries' clap definitions.
// One module per group: rustfmt keeps the order, which is the layering.
pub mod dataplane;

pub mod capture;

pub mod sampler;

pub mod flow;

pub mod features;

pub mod aggregate;

pub mod models;

pub mod correlate;

pub mod decide;

pub mod detect;

pub mod plot;

pub mod train;

pub mod enforce;

pub mod journal;

pub mod metrics;

pub mod config;

pub mod http;

pub mod feeds;

pub mod crowdsec;

pub mod daemon;

pub mod api;

pub mod replay;

pub mod agent;

pub mod docgen;
