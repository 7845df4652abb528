//! The running agent's state and its packet path: the shared core (which the
//! control API, the feeds and CrowdSec act on) and the live sample pipeline.
//! Start-up, reload and housekeeping are the composition root's
//! ([`crate::agent`]).
mod core;
pub mod pipeline;

pub use core::{AgentCore, CoreError, CoreParts, ModelInfo, RuleView, StatusInfo, unix_now_ns};
