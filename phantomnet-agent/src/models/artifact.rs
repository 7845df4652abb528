//! The model artifact: one file holding everything a detector needs.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | magic `b"PNMODEL\0"` |
//! | 8 | 4 | format version (u32 LE), 1 |
//! | 12 | 4 | metadata length M (u32 LE) |
//! | 16 | 8 | body length B (u64 LE) |
//! | 24 | 32 | SHA-256 of metadata ‖ body |
//! | 56 | M | metadata, JSON ([`ModelMeta`]: schema version, feature names, params, training-data sha256, metrics, created-at) |
//! | 56+M | B | body, postcard (scaler, compact forest, isolation forest) |
//!
//! The schema version decides which features the model reads: a schema-v1
//! model the first 15 of a (v2) feature vector, a v2 model all 22. Its
//! feature names must be exactly that schema's, or the model is refused
//! naming the first difference.
//!
//! The metadata is JSON so `head -c 4000 model.pnm | tail -c +57` shows it;
//! the body is postcard because it is large and must round-trip `f64`s
//! bit for bit.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    CompactForest, ForestParams, IsolationForest, IsolationParams, ModelError, ModelScores,
    StandardScaler,
};
use crate::features::{FeatureVector, Schema, check_schema};

pub const ARTIFACT_MAGIC: [u8; 8] = *b"PNMODEL\0";
pub const ARTIFACT_FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 56;
/// Refuse to read anything bigger (a 200-tree forest is a few MB).
const MAX_FILE_LEN: u64 = 1 << 30;

/// Everything the training run chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelParams {
    pub forest: ForestParams,
    pub isolation: IsolationParams,
    pub test_fraction: f64,
    pub folds: usize,
    pub seed: u64,
}

/// The artifact's metadata (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub schema_version: u32,
    pub feature_names: Vec<String>,
    pub params: ModelParams,
    /// SHA-256 (hex) of the training CSV file.
    pub training_data_sha256: String,
    pub training_rows: usize,
    /// Metrics of the training run (cross-validation, held-out test).
    pub metrics: serde_json::Value,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Trained on the rows the detector scores at the data plane's default
    /// sampling, priority samples included (`dataset --emulate-every`), so
    /// the detector scores priority samples with it. Absent (false) in
    /// older artifacts: a model trained on uniform rows only scores a
    /// priority sample only on a signature match.
    #[serde(default)]
    pub scores_priority: bool,
}

#[derive(Serialize, Deserialize)]
struct Body {
    scaler: StandardScaler,
    forest: CompactForest,
    isolation: IsolationForest,
}

/// A loaded, validated model: scaler → forest + isolation forest.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub meta: ModelMeta,
    pub scaler: StandardScaler,
    pub forest: CompactForest,
    pub isolation: IsolationForest,
}

impl Model {
    /// Assembles and validates a model.
    pub fn new(
        meta: ModelMeta,
        scaler: StandardScaler,
        forest: CompactForest,
        isolation: IsolationForest,
    ) -> Result<Model, ModelError> {
        let m = Model {
            meta,
            scaler,
            forest,
            isolation,
        };
        m.validate()?;
        Ok(m)
    }

    /// Metadata for `schema` with the given training facts.
    pub fn meta(
        schema: Schema,
        params: ModelParams,
        training_data_sha256: String,
        training_rows: usize,
        metrics: serde_json::Value,
        created_at: String,
    ) -> ModelMeta {
        ModelMeta {
            schema_version: schema.version(),
            feature_names: schema.names().iter().map(|s| s.to_string()).collect(),
            params,
            training_data_sha256,
            training_rows,
            metrics,
            created_at,
            scores_priority: false,
        }
    }

    /// Checks the schema, and that the scaler, the forest and the
    /// isolation forest read exactly the schema's features.
    pub fn validate(&self) -> Result<(), ModelError> {
        let width = self.schema()?.count();
        self.scaler.validate(width).map_err(ModelError::Invalid)?;
        self.forest.validate_for(width)?;
        self.isolation.validate_for(width)?;
        Ok(())
    }

    /// The feature schema the model was trained on (its metadata's).
    pub fn schema(&self) -> Result<Schema, ModelError> {
        Ok(check_schema(
            self.meta.schema_version,
            &self.meta.feature_names,
        )?)
    }

    /// Scores one feature vector: the model reads the features of its
    /// schema (a v1 model the first 15). No allocation.
    #[inline]
    pub fn score(&self, features: &FeatureVector) -> ModelScores {
        let x = self.scaler.transformed(features.as_array());
        let votes = self.forest.attack_votes(&x) as usize;
        let n = self.forest.n_trees();
        let p = votes as f64 / n as f64;
        let prediction = u8::from(votes * 2 > n);
        ModelScores {
            prediction,
            confidence: if prediction == 1 { p } else { 1.0 - p },
            attack_probability: p,
            anomaly: self.isolation.score(&x),
        }
    }

    /// Serialises to the artifact format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let meta =
            serde_json::to_vec_pretty(&self.meta).map_err(|e| ModelError::Meta(e.to_string()))?;
        let body = postcard::to_allocvec(&Body {
            scaler: self.scaler.clone(),
            forest: self.forest.clone(),
            isolation: self.isolation.clone(),
        })
        .map_err(|e| ModelError::Body(e.to_string()))?;
        let meta_len =
            u32::try_from(meta.len()).map_err(|_| ModelError::Meta("metadata too large".into()))?;
        let mut hash = Sha256::new();
        hash.update(&meta);
        hash.update(&body);
        let mut out = Vec::with_capacity(HEADER_LEN + meta.len() + body.len());
        out.extend_from_slice(&ARTIFACT_MAGIC);
        out.extend_from_slice(&ARTIFACT_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&meta_len.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&hash.finalize());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses and fully validates an artifact.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        if bytes.len() < ARTIFACT_MAGIC.len() || bytes[..8] != ARTIFACT_MAGIC {
            return Err(ModelError::NotAModel);
        }
        if bytes.len() < HEADER_LEN {
            return Err(ModelError::Truncated {
                expected: HEADER_LEN as u64,
                actual: bytes.len() as u64,
            });
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let version = u32_at(8);
        if version != ARTIFACT_FORMAT_VERSION {
            return Err(ModelError::UnsupportedFormat { found: version });
        }
        let meta_len = u32_at(12) as u64;
        let body_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        let expected = (HEADER_LEN as u64)
            .checked_add(meta_len)
            .and_then(|v| v.checked_add(body_len))
            .ok_or(ModelError::Invalid("section lengths overflow".into()))?;
        let actual = bytes.len() as u64;
        if actual < expected {
            return Err(ModelError::Truncated { expected, actual });
        }
        if actual > expected {
            return Err(ModelError::TrailingBytes {
                extra: actual - expected,
            });
        }
        let meta = &bytes[HEADER_LEN..HEADER_LEN + meta_len as usize];
        let body = &bytes[HEADER_LEN + meta_len as usize..];
        let mut hash = Sha256::new();
        hash.update(meta);
        hash.update(body);
        if hash.finalize()[..] != bytes[24..56] {
            return Err(ModelError::Checksum);
        }
        let meta: ModelMeta =
            serde_json::from_slice(meta).map_err(|e| ModelError::Meta(e.to_string()))?;
        // Refuse a foreign schema before even decoding the body.
        check_schema(meta.schema_version, &meta.feature_names)?;
        let body: Body = postcard::from_bytes(body).map_err(|e| ModelError::Body(e.to_string()))?;
        Model::new(meta, body.scaler, body.forest, body.isolation)
    }

    /// Writes the artifact to `path` atomically (a temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        let tmp = path.with_extension("pnm.tmp");
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(())
    }

    /// Reads and validates the artifact at `path`.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        Model::load_bounded(path, MAX_FILE_LEN)
    }

    /// Reads the artifact at `path` if it is a regular file of at most
    /// `max_bytes` (a device, a FIFO or an endless file is refused, never
    /// read into memory), and validates it.
    pub fn load_bounded(path: &Path, max_bytes: u64) -> Result<Model, ModelError> {
        use std::io::Read;
        let max_bytes = max_bytes.min(MAX_FILE_LEN);
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(ModelError::Invalid(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        if meta.len() > max_bytes {
            return Err(ModelError::Invalid(format!(
                "{} bytes is over the {max_bytes}-byte limit for a model",
                meta.len()
            )));
        }
        // The length may change under us: read at most one byte past the limit.
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > max_bytes {
            return Err(ModelError::Invalid(format!(
                "over the {max_bytes}-byte limit for a model"
            )));
        }
        Model::from_bytes(&bytes)
    }
}

#[cfg(test)]
impl ModelParams {
    /// Small forests (20 + 30 trees) for fast tests.
    pub(crate) fn small(seed: u64, test_fraction: f64) -> ModelParams {
        ModelParams {
            forest: ForestParams {
                n_trees: 20,
                trees_per_job: 10,
                seed,
                ..Default::default()
            },
            isolation: IsolationParams {
                n_trees: 30,
                seed,
                ..Default::default()
            },
            test_fraction,
            folds: 5,
            seed,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
