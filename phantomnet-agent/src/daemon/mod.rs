//! The running agent: the shared core, the live sample pipeline, and
//! start-up / reload / shutdown. The control API calls into the core; the
//! stages never call the API.
mod core;
pub mod pipeline;
mod sinks;
mod start;

pub use core::{AgentCore, CoreError, CoreParts, ModelInfo, RuleView, StatusInfo, unix_now_ns};
pub use start::{RunOptions, StartError, bind_api_socket, policy_of, run};
