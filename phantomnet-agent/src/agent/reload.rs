//! SIGHUP: re-reading the config file and applying what may change at run time.
use std::path::Path;

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{
    Overrides,
    setup::{deceiver_of, load_feed, policy_of, sync_allowlist},
};
use crate::{
    config::{Config, ConfigHandle},
    daemon::AgentCore,
    feeds::FeedPlan,
};

/// SIGHUP: a config that fails to parse or validate changes nothing.
///
/// Precedence (docs/CONTROL.md, "Reload"): command-line overrides are
/// re-applied on top of the file. For the keys the API can also change at
/// run time (dry-run, sampling, thresholds), the last writer wins: a reload
/// applies the file's value only where the file changed it since it was
/// last applied; otherwise the run-time value stays, and the log says so.
pub(super) fn reload(
    core: &AgentCore,
    handle: &ConfigHandle,
    path: &Path,
    overrides: &Overrides,
    feed_plan: &watch::Sender<FeedPlan>,
) {
    let old = handle.current();
    let new = match Config::load(path).and_then(|mut c| {
        overrides(&mut c);
        c.validate().map(|()| c)
    }) {
        Ok(c) => handle.replace(c),
        Err(e) => {
            error!(error = %e, "config reload refused; the running config stays");
            return;
        }
    };
    if new.dataplane.interfaces != old.dataplane.interfaces
        || new.dataplane.inside_interfaces != old.dataplane.inside_interfaces
        || new.dataplane.pin_dir != old.dataplane.pin_dir
        || new.api != old.api
        || new.journal != old.journal
        || new.metrics != old.metrics
        || new.crowdsec != old.crowdsec
    {
        warn!(
            "interfaces, inside_interfaces, pin_dir, [api], [journal], [metrics] and [crowdsec] apply at the next start"
        );
    }
    let kept = |key: &str| {
        info!(
            key,
            "the file did not change it: keeping the run-time value"
        )
    };
    if new.thresholds != old.thresholds {
        if let Err(e) = core.set_thresholds(new.thresholds) {
            warn!(error = %e, "thresholds not applied");
        }
    } else if core.thresholds().is_ok_and(|t| t != new.thresholds) {
        kept("thresholds");
    }
    if new.detection.scoring != old.detection.scoring
        && let Some(det) = core.detector().as_mut()
    {
        det.set_scoring(new.detection.scoring);
        info!(scoring = %new.detection.scoring, "scoring changed");
    }
    core.set_policy(policy_of(&new));
    let running = core.executor().maps().config().ok();
    if new.dataplane.sample_every != old.dataplane.sample_every {
        if let Err(e) = core.set_sampling(new.dataplane.sample_every) {
            warn!(error = %e, "sampling not applied");
        }
    } else if running.is_some_and(|c| c.sample_every != new.dataplane.sample_every) {
        kept("dataplane.sample_every");
    }
    if new.dataplane.priority_sampling != old.dataplane.priority_sampling {
        if let Err(e) = core.set_priority_sampling(new.dataplane.priority_sampling) {
            warn!(error = %e, "priority sampling not applied");
        }
    } else if running.is_some_and(|c| {
        (c.flags & phantomnet_common::config_flags::PRIORITY_SAMPLING != 0)
            != new.dataplane.priority_sampling
    }) {
        kept("dataplane.priority_sampling");
    }
    if new.dataplane.dry_run != old.dataplane.dry_run {
        if let Err(e) = core.set_dry_run(new.dataplane.dry_run) {
            warn!(error = %e, "mode not applied");
        }
    } else if running.is_some_and(|c| {
        (c.flags & phantomnet_common::config_flags::DRY_RUN != 0) != new.dataplane.dry_run
    }) {
        kept("dataplane.dry_run");
    }
    if new.honeypots != old.honeypots {
        core.executor().set_deceiver(deceiver_of(&new));
    }
    sync_allowlist(&mut core.executor(), &new.allowlist);
    let legacy = match load_feed(&new) {
        Ok(feed) => feed.map(|f| f.current()),
        Err(e) => {
            warn!(error = %e, "intel feed not reloaded; the old one stays");
            feed_plan.borrow().legacy.clone()
        }
    };
    if new.intel != old.intel || legacy.is_some() {
        feed_plan.send_replace(FeedPlan {
            legacy,
            specs: new.intel.feeds.clone(),
        });
    }
    info!(path = %path.display(), "config reloaded");
}
