//! Models: the feature scaler, the random-forest classifier (trained with
//! smartcore, run in a compact form of our own), the isolation forest, the
//! single-file model artifact and the registry of trained versions.

pub(crate) mod artifact;
pub mod forest;
pub mod iforest;
mod registry;
mod scaler;

pub use artifact::{ARTIFACT_FORMAT_VERSION, ARTIFACT_MAGIC, Model, ModelMeta, ModelParams};
pub use forest::{CompactForest, ForestParams};
pub use iforest::{IsolationForest, IsolationParams};
pub use registry::{ModelHandle, Registry, RegistryEntry, RegistryIndex, resolve_model_path};

/// File name of a registry's index.
pub fn registry_index_file() -> &'static str {
    registry::INDEX_FILE
}
pub use scaler::StandardScaler;

#[cfg(test)]
pub(crate) use artifact::tests as artifact_tests;

use std::path::PathBuf;

use crate::features::SchemaMismatch;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a PhantomNet model file (bad magic; expected {:?})", String::from_utf8_lossy(&ARTIFACT_MAGIC))]
    NotAModel,
    #[error(
        "model file format version {found} is not supported (this build reads {ARTIFACT_FORMAT_VERSION})"
    )]
    UnsupportedFormat { found: u32 },
    #[error("model file is truncated: {actual} bytes, the header promises {expected}")]
    Truncated { expected: u64, actual: u64 },
    #[error("model file has {extra} unexpected bytes after its declared end")]
    TrailingBytes { extra: u64 },
    #[error("model file checksum mismatch: the file is corrupt")]
    Checksum,
    #[error("model metadata is unreadable: {0}")]
    Meta(String),
    #[error("model body is unreadable: {0}")]
    Body(String),
    #[error("model was trained on a different feature schema: {0}")]
    Schema(#[from] SchemaMismatch),
    #[error("model is invalid: {0}")]
    Invalid(String),
    #[error("training failed: {0}")]
    Training(String),
    #[error("model registry {path}: {message}")]
    Registry { path: PathBuf, message: String },
}

/// What the models say about one feature vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelScores {
    /// 1 = attack, 0 = benign (the forest's majority vote).
    pub prediction: u8,
    /// Share of trees voting for the predicted class, in [0.5, 1].
    pub confidence: f64,
    /// Share of trees voting "attack", in [0, 1].
    pub attack_probability: f64,
    /// Isolation-forest score normalised to [0, 1] (≥ 0.5 = outlier).
    pub anomaly: f64,
}
