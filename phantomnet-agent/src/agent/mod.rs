//! The composition root: builds the agent from its configuration and runs
//! it. It wires the data plane, the daemon's core and pipeline, the control
//! API, metrics, feeds and CrowdSec together; nothing imports it but the
//! binary.
//!
//! - [`start`]: start-up, the servers and tasks, the main loop, shutdown;
//! - [`setup`]: what the config makes (policy, deceiver, allowlist, model, feed);
//! - [`reload`] applies a SIGHUP;
//! - [`housekeeping`]: periodic counters, pruning and retention;
//! - [`socket`]: the control API's Unix socket;
//! - `sinks`: the core seen by the feed and CrowdSec modules.
//!
//! Exiting never detaches XDP or clears a rule: enforcement lives in the
//! pins and in nftables.
mod housekeeping;
mod reload;
mod setup;
mod sinks;
mod socket;
mod start;

use std::path::PathBuf;

use crate::{
    config::ConfigError, dataplane::DataplaneError, journal::JournalError, metrics::MetricsError,
};

pub use setup::policy_of;
pub use socket::bind_api_socket;
pub use start::{Overrides, RunOptions, run};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data plane: {0}")]
    Dataplane(#[from] DataplaneError),
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    #[error("model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("threat-intel feed {path}: {reason}")]
    Feed { path: PathBuf, reason: String },
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error("thresholds: {0}")]
    Thresholds(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("control API: {0}")]
    Api(#[from] crate::api::ApiError),
    #[error("metrics: {0}")]
    Metrics(#[from] MetricsError),
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let context = context.into();
    move |source| StartError::Io { context, source }
}
