//! CrowdSec, both ways, against a Local API (LAPI):
//!
//! - [`bouncer`]: the agent as a remediation component. It follows the
//!   LAPI's decision stream and enforces its `ban` decisions on `Ip` and
//!   `Range` scopes as BLOCK, for their duration (reason `crowdsec`, text
//!   `crowdsec:<origin>`), and removes them when the LAPI deletes them.
//! - [`watcher`]: the agent as a machine. It pushes the detector's new
//!   enforcements to the LAPI as alerts carrying a `ban` decision, so every
//!   other bouncer (and every other PhantomNet) enforces them.
//!
//! Together they are how a fleet of gateways shares what one of them saw,
//! on an engine built for it. [`decision`] parses stream bodies.
pub mod bouncer;
pub mod decision;
pub mod watcher;

pub use decision::{DecisionError, Op, Plan, parse_go_duration, plan_stream};

use std::sync::MutexGuard;

use tokio::sync::broadcast;

use crate::enforce::Executor;
use crate::journal::NewEvent;
use crate::metrics::Metrics;

/// What CrowdSec acts on: the running agent (implemented by the daemon's
/// core, so this module does not depend on the daemon).
pub trait CrowdSecSink: Send + Sync + 'static {
    fn executor(&self) -> MutexGuard<'_, Executor>;
    fn metrics(&self) -> &Metrics;
    /// Journals events (and shows them to watchers of the API).
    fn journal(&self, events: Vec<NewEvent>);
    /// The detector's new enforcements.
    fn subscribe_enforced(&self) -> broadcast::Receiver<crate::enforce::Enforced>;
}

/// Reads a secret file: the first line, trimmed; empty is an error.
pub(crate) fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s = text.lines().next().unwrap_or("").trim().to_string();
    if s.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(s)
}

/// `base` + `path`, with exactly one slash between.
pub(crate) fn endpoint(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

pub(crate) fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
