//! Training and evaluation: the `dataset`, `train` and `evaluate`
//! subcommands (their clap argument structs and entry points are in
//! [`cli`]), and the pieces they use.

pub mod cli;
pub mod csvdata;
pub mod dataset;
pub mod fit;
pub mod labels;
pub mod metrics;
pub mod pcap;
pub mod plots;
pub mod progress;
pub mod split;

pub use cli::{DatasetArgs, EvaluateArgs, TrainArgs, run_dataset, run_evaluate, run_train};

use std::path::{Path, PathBuf};

use crate::capture::CaptureError;
use crate::models::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Csv {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Usage(String),
    #[error("dataset: {0}")]
    Data(String),
    #[error("{0}")]
    Other(String),
}

impl TrainError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> TrainError {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
