//! Why a core operation failed, in the domain's terms. The control API
//! (`api::convert::status`) alone turns these into status codes and names
//! the request fields they concern.
use std::path::PathBuf;

use crate::{
    dataplane::DataplaneError, decide::ThresholdError, enforce::EnforceError,
    journal::JournalError, models::ModelError,
};

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Enforce(#[from] EnforceError),
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The agent runs without a model: no analysis, no thresholds.
    #[error("no model is loaded")]
    NoModel,
    /// A model cannot be loaded at run time: the agent started without one.
    #[error("the agent runs without detection")]
    NoDetection,
    #[error("no model directory is configured ([model] dir)")]
    NoModelDir,
    #[error("model directory {}: {source}", dir.display())]
    ModelDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    ModelMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is outside the model directory {}", path.display(), dir.display())]
    OutsideModelDir { path: PathBuf, dir: PathBuf },
    /// The model file could not be read (I/O) or was refused (its content).
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Thresholds(#[from] ThresholdError),
    /// A signature rule the data plane refuses (a match field it would
    /// misread, or that could never match); nothing was written.
    #[error("signature {field}: {reason}")]
    BadSignature { field: &'static str, reason: String },
}
