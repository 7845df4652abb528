//! What the core returns to its callers: rules, status and model metadata,
//! in domain types (the API converts them to proto messages).
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use phantomnet_common::RuleKind;

use crate::{
    dataplane::{AttachedInterface, Counters},
    models::Model,
};

/// A rule as the API lists it: map entries and nft deceptions alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleView {
    pub kind: RuleKind,
    pub prefix: String,
    pub remaining: Option<Duration>,
    pub reason: String,
    pub hits: u64,
    pub rate_pps: u32,
    pub burst: u32,
}

/// Status numbers.
#[derive(Clone, Debug)]
pub struct StatusInfo {
    pub version: &'static str,
    pub interfaces: Vec<AttachedInterface>,
    pub uptime: Duration,
    pub counters: Counters,
    pub model_version: String,
    pub dry_run: bool,
    pub sample_every: u32,
    pub samples_read: u64,
    pub decisions: u64,
}

/// Model metadata for GetModel / LoadModel.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub version: String,
    pub schema_version: u32,
    pub feature_names: Vec<String>,
    pub created_at: String,
    pub training_data_sha256: String,
    pub metrics: Vec<(String, f64)>,
    pub path: Option<PathBuf>,
}

/// A model's version as operators see it: the artifact's file stem (the
/// registry names them by version) and the training data it came from.
pub fn model_version(model: &Model, path: Option<&Path>) -> String {
    let sha = &model.meta.training_data_sha256;
    // The hash is the artifact's own text: cut on a char, never a byte.
    let short: String = sha.chars().take(12).collect();
    match path.and_then(|p| p.file_stem()).and_then(|s| s.to_str()) {
        Some(stem) => format!("{stem} (data {short})"),
        None => format!("data {short}"),
    }
}

/// Numeric leaves of the training metrics, as dotted names.
fn flatten_metrics(v: &serde_json::Value) -> Vec<(String, f64)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, f64)>) {
        match v {
            serde_json::Value::Number(n) => {
                if let Some(f) = n.as_f64() {
                    out.push((prefix.to_string(), f));
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

impl ModelInfo {
    pub fn of(model: &Model, path: Option<PathBuf>) -> ModelInfo {
        let m = &model.meta;
        ModelInfo {
            version: model_version(model, path.as_deref()),
            schema_version: m.schema_version,
            feature_names: m.feature_names.clone(),
            created_at: m.created_at.clone(),
            training_data_sha256: m.training_data_sha256.clone(),
            metrics: flatten_metrics(&m.metrics),
            path,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_model_version_never_cuts_inside_a_character() {
        let mut m = crate::models::artifact::tests::small_model(5);
        // A hostile or odd artifact: its recorded hash is not ASCII.
        m.meta.training_data_sha256 = "é".repeat(20);
        let v = super::model_version(&m, None);
        assert_eq!(v, format!("data {}", "é".repeat(12)));
    }
}
