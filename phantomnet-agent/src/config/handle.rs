//! The running configuration, swapped atomically on reload (SIGHUP).

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{Config, ConfigError};

/// Holds the running [`Config`]. Readers take cheap snapshots with
/// [`current`](Self::current); [`reload`](Self::reload) replaces the snapshot
/// only when the new file parses and validates, so a bad edit never takes
/// effect and the agent keeps running on the last good configuration.
#[derive(Debug)]
pub struct ConfigHandle {
    current: ArcSwap<Config>,
}

impl ConfigHandle {
    pub fn new(config: Config) -> ConfigHandle {
        ConfigHandle {
            current: ArcSwap::from_pointee(config),
        }
    }

    /// Loads `path` into a new handle.
    pub fn load(path: impl AsRef<Path>) -> Result<ConfigHandle, ConfigError> {
        Config::load(path).map(ConfigHandle::new)
    }

    /// The configuration in force. Snapshots taken before a reload keep
    /// their values.
    pub fn current(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// Replaces the running configuration with one already validated.
    pub fn replace(&self, config: Config) -> Arc<Config> {
        let config = Arc::new(config);
        self.current.store(Arc::clone(&config));
        config
    }

    /// Re-reads `path`. On success the new configuration replaces the old
    /// one and is returned; on any error the running configuration stays and
    /// the error is returned (and logged).
    pub fn reload(&self, path: impl AsRef<Path>) -> Result<Arc<Config>, ConfigError> {
        let path = path.as_ref();
        match Config::load(path) {
            Ok(config) => {
                let config = Arc::new(config);
                self.current.store(Arc::clone(&config));
                tracing::info!(file = %path.display(), "configuration reloaded");
                Ok(config)
            }
            Err(e) => {
                tracing::warn!(error = %e, "configuration reload rejected; keeping the running configuration");
                Err(e)
            }
        }
    }
}
