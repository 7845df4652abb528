//! The model registry: a directory of versioned artifacts plus an index
//! (`registry.json`) naming the active version; and [`ModelHandle`], the
//! in-process slot the detector reads, which only ever swaps in a model
//! that loaded and validated.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::{Model, ModelError};

pub const INDEX_FILE: &str = "registry.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    pub version: u32,
    /// File name inside the registry directory.
    pub file: String,
    pub created_at: String,
    pub schema_version: u32,
    pub training_data_sha256: String,
    pub training_rows: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistryIndex {
    pub active: Option<u32>,
    pub models: Vec<RegistryEntry>,
}

/// A registry directory.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    /// Opens (creating if needed) the registry at `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Registry, ModelError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| ModelError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Registry { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, message: impl Into<String>) -> ModelError {
        ModelError::Registry {
            path: self.dir.clone(),
            message: message.into(),
        }
    }

    /// The index; an absent index is an empty registry.
    pub fn index(&self) -> Result<RegistryIndex, ModelError> {
        let path = self.dir.join(INDEX_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.err(format!("{INDEX_FILE} is unreadable: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryIndex::default()),
            Err(source) => Err(ModelError::Io { path, source }),
        }
    }

    fn write_index(&self, index: &RegistryIndex) -> Result<(), ModelError> {
        let path = self.dir.join(INDEX_FILE);
        let tmp = self.dir.join(format!("{INDEX_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(index).map_err(|e| self.err(e.to_string()))?;
        let io = |source| ModelError::Io {
            path: path.clone(),
            source,
        };
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Saves `model` as the next version and makes it active.
    pub fn register(&self, model: &Model) -> Result<(u32, PathBuf), ModelError> {
        let mut index = self.index()?;
        let version = index.models.iter().map(|m| m.version).max().unwrap_or(0) + 1;
        let file = format!("model-v{version}.pnm");
        let path = self.dir.join(&file);
        model.save(&path)?;
        index.models.push(RegistryEntry {
            version,
            file,
            created_at: model.meta.created_at.clone(),
            schema_version: model.meta.schema_version,
            training_data_sha256: model.meta.training_data_sha256.clone(),
            training_rows: model.meta.training_rows,
        });
        index.active = Some(version);
        self.write_index(&index)?;
        tracing::info!(version, path = %path.display(), "registered model version (active)");
        Ok((version, path))
    }

    /// Makes an already registered `version` active, after checking it loads.
    pub fn activate(&self, version: u32) -> Result<(), ModelError> {
        let mut index = self.index()?;
        let entry = index
            .models
            .iter()
            .find(|m| m.version == version)
            .ok_or_else(|| self.err(format!("no version {version}")))?;
        Model::load(&self.dir.join(&entry.file))?;
        index.active = Some(version);
        self.write_index(&index)
    }

    /// Path of the active model's artifact.
    pub fn active_path(&self) -> Result<PathBuf, ModelError> {
        let index = self.index()?;
        let v = index.active.ok_or_else(|| self.err("no active model"))?;
        let entry = index
            .models
            .iter()
            .find(|m| m.version == v)
            .ok_or_else(|| self.err(format!("active version {v} is not listed")))?;
        Ok(self.dir.join(&entry.file))
    }
}

/// A model path given on a command line: a registry directory means its
/// active model, anything else is an artifact file.
pub fn resolve_model_path(path: &Path) -> Result<PathBuf, ModelError> {
    if path.is_dir() {
        Registry::open(path)?.active_path()
    } else {
        Ok(path.to_path_buf())
    }
}

/// The model the detector uses now. Readers take a cheap `Arc` clone;
/// [`ModelHandle::load_validated`] swaps in a new model only after it has
/// loaded and validated, so a bad file never replaces a good model.
#[derive(Debug)]
pub struct ModelHandle {
    current: RwLock<Arc<Model>>,
}

impl ModelHandle {
    pub fn new(model: Model) -> ModelHandle {
        ModelHandle {
            current: RwLock::new(Arc::new(model)),
        }
    }

    /// Loads the initial model from a file or registry directory.
    pub fn open(path: &Path) -> Result<ModelHandle, ModelError> {
        Ok(Self::new(Model::load(&resolve_model_path(path)?)?))
    }

    pub fn current(&self) -> Arc<Model> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads `path` (file or registry directory) and, only if it is a
    /// valid model, makes it current. On error the old model stays.
    pub fn load_validated(&self, path: &Path) -> Result<Arc<Model>, ModelError> {
        self.load_validated_bounded(path, u64::MAX)
    }

    /// [`load_validated`](Self::load_validated) of a file of at most `max_bytes`.
    pub fn load_validated_bounded(
        &self,
        path: &Path,
        max_bytes: u64,
    ) -> Result<Arc<Model>, ModelError> {
        let model = match resolve_model_path(path).and_then(|p| Model::load_bounded(&p, max_bytes))
        {
            Ok(m) => Arc::new(m),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "model load refused; keeping the current model");
                return Err(e);
            }
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = model.clone();
        tracing::info!(path = %path.display(), created_at = %model.meta.created_at, "model loaded");
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::artifact::tests::small_model;

    #[test]
    fn register_versions_and_activate() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path().join("models")).unwrap();
        assert!(reg.active_path().is_err());
        let a = small_model(21);
        let b = small_model(22);
        let (va, pa) = reg.register(&a).unwrap();
        let (vb, pb) = reg.register(&b).unwrap();
        assert_eq!((va, vb), (1, 2));
        assert_eq!(reg.active_path().unwrap(), pb);
        assert_eq!(reg.index().unwrap().models.len(), 2);
        reg.activate(1).unwrap();
        assert_eq!(reg.active_path().unwrap(), pa);
        assert_eq!(resolve_model_path(reg.dir()).unwrap(), pa);
        assert!(reg.activate(7).is_err());
        assert_eq!(Model::load(&pa).unwrap(), a);
    }

    #[test]
    fn a_failed_load_keeps_the_old_model() {
        let dir = tempfile::tempdir().unwrap();
        let good = small_model(23);
        let other = small_model(24);
        let handle = ModelHandle::new(good.clone());
        let bad = dir.path().join("bad.pnm");
        std::fs::write(&bad, b"PNMODEL\0garbage").unwrap();
        assert!(handle.load_validated(&bad).is_err());
        assert!(
            handle
                .load_validated(&dir.path().join("missing.pnm"))
                .is_err()
        );
        assert_eq!(*handle.current(), good);
        let ok = dir.path().join("ok.pnm");
        other.save(&ok).unwrap();
        handle.load_validated(&ok).unwrap();
        assert_eq!(*handle.current(), other);
    }
}
