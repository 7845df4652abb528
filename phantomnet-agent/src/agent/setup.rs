//! What the configuration makes: the enforcement policy, the deceiver, the
//! allowlist in the maps, the model and the plain threat feed.
use std::{collections::BTreeSet, path::PathBuf};

use ipnet::IpNet;
use phantomnet_common::{ReasonCode, RuleKind};
use tracing::{error, info, warn};

use super::StartError;
use crate::{
    config::Config,
    correlate::ThreatFeedHandle,
    dataplane::Prefix,
    enforce::{Deceiver, EnforcePolicy, Executor, Honeypot},
    models::{ModelHandle, resolve_model_path},
};

pub fn policy_of(c: &Config) -> EnforcePolicy {
    c.enforcement.policy()
}

fn honeypots_of(c: &Config) -> Vec<Honeypot> {
    c.honeypots
        .iter()
        .map(|h| Honeypot {
            port: h.port,
            target: h.target,
        })
        .collect()
}

fn prefix_of(net: &IpNet) -> Option<Prefix> {
    Prefix::new(net.network(), net.prefix_len()).ok()
}

/// Makes the pinned allowlist's config entries (reason `Config`) exactly
/// the config's `allowlist`, at start and at every reload: an entry removed
/// from the file is removed from the kernel even across restarts. Entries
/// that operators added with `allow` are theirs and stay.
pub(super) fn sync_allowlist(ex: &mut Executor, new: &[IpNet]) {
    let wanted: BTreeSet<Prefix> = new.iter().filter_map(prefix_of).collect();
    let pinned: Vec<Prefix> = match ex.maps().rules() {
        Ok(rules) => rules
            .into_iter()
            .filter(|r| {
                r.kind == RuleKind::Allow
                    && r.reason
                        .as_ref()
                        .is_some_and(|(c, _)| *c == ReasonCode::Config)
            })
            .map(|r| r.prefix)
            .collect(),
        Err(e) => {
            error!(error = %e, "reading the pinned allowlist");
            return;
        }
    };
    for p in pinned.iter().filter(|p| !wanted.contains(p)) {
        match ex.disallow(p) {
            Ok(()) => info!(prefix = %p, "removed an allowlist entry the config no longer has"),
            Err(e) => warn!(prefix = %p, error = %e, "removing a config allowlist entry"),
        }
    }
    for p in &wanted {
        if let Err(e) = ex.allow(p, ReasonCode::Config) {
            error!(prefix = %p, error = %e, "adding a config allowlist entry");
        }
    }
}

pub(super) fn deceiver_of(c: &Config) -> Result<Deceiver, String> {
    let d = Deceiver::new(honeypots_of(c));
    if d.honeypots().is_empty() {
        return Err(crate::enforce::NO_HONEYPOT.into());
    }
    d.install().map(|()| d).map_err(|e| e.to_string())
}

pub(super) fn load_model(c: &Config) -> Result<Option<(ModelHandle, PathBuf)>, StartError> {
    let Some(path) = &c.model.path else {
        return Ok(None);
    };
    let bad = |reason: String| StartError::Model {
        path: path.clone(),
        reason,
    };
    let file = resolve_model_path(path).map_err(|e| bad(e.to_string()))?;
    let handle = ModelHandle::open(&file).map_err(|e| bad(e.to_string()))?;
    Ok(Some((handle, file)))
}

pub(super) fn load_feed(c: &Config) -> Result<Option<ThreatFeedHandle>, StartError> {
    c.intel
        .feed
        .as_ref()
        .map(|path| {
            ThreatFeedHandle::open(path).map_err(|e| StartError::Feed {
                path: path.clone(),
                reason: e.to_string(),
            })
        })
        .transpose()
}
