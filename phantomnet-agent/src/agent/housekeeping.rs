//! Periodic work of the main loop: counters and rule gauges to metrics, and
//! pruning of expired entries and old journal events.
use std::time::Duration;

use phantomnet_common::{Outcome, RuleKind};
use tracing::{info, warn};

use crate::daemon::AgentCore;

pub(super) fn publish_counters(core: &AgentCore, ifnames: &[String]) {
    let ex = core.executor();
    let Ok(c) = ex.maps().counters() else {
        return;
    };
    // The counters are per outcome for the whole program; with one
    // interface they are that interface's, otherwise labeled "all".
    let iface = match ifnames {
        [one] => one.as_str(),
        _ => "all",
    };
    for o in Outcome::ALL {
        let v = c.get(o);
        core.metrics().set_xdp_totals(iface, o, v.packets, v.bytes);
    }
    core.metrics()
        .set_samples_lost_total(c.get(Outcome::SampleLost).packets);
    if let Ok(rules) = ex.maps().rules() {
        let count = |k| {
            rules
                .iter()
                .filter(|r| r.kind == k && r.remaining != Some(Duration::ZERO))
                .count() as u64
        };
        for kind in [RuleKind::Allow, RuleKind::Block, RuleKind::Throttle] {
            core.metrics().set_active_rules(kind, count(kind));
        }
        let mut top: Vec<(String, String, u64)> = rules
            .iter()
            .filter(|r| r.kind == RuleKind::Block && r.hits > 0)
            .map(|r| (r.prefix.to_string(), r.reason_text(), r.hits))
            .collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.2));
        top.truncate(crate::metrics::TOP_BLOCKED);
        core.metrics().set_top_blocked(&top);
    }
    if let Ok(d) = ex.deceived() {
        core.metrics()
            .set_active_rules(RuleKind::Deceive, d.len() as u64);
    }
    info!(
        passed = c.get(Outcome::Passed).packets,
        block_dropped = c.get(Outcome::BlockDropped).packets,
        throttle_dropped = c.get(Outcome::ThrottleDropped).packets,
        sampled = c.get(Outcome::Sampled).packets,
        sample_lost = c.get(Outcome::SampleLost).packets,
        samples_read = core.samples_read(),
        "counters"
    );
}

/// Frees the slots of expired map entries and deceptions, and applies the
/// journal's retention.
pub(super) fn prune(core: &AgentCore) {
    let mut ex = core.executor();
    ex.prune();
    match ex.maps_mut().prune_expired() {
        Ok(0) => {}
        Ok(n) => info!(pruned = n, "removed expired entries"),
        Err(e) => warn!(error = %e, "pruning expired entries"),
    }
    sync_dataplane(ex.maps_mut());
    drop(ex);
    if let Err(e) = core.journal().enforce_retention() {
        warn!(error = %e, "journal retention");
    }
}

/// Frees expired signature slots and makes the list bits XDP tests say
/// exactly which maps hold entries (entries another tool wrote get
/// theirs; emptied maps stop costing a lookup).
fn sync_dataplane(maps: &mut crate::dataplane::Maps) {
    match maps.prune_expired_signatures() {
        Ok(0) => {}
        Ok(n) => info!(pruned = n, "removed expired signature rules"),
        Err(e) => warn!(error = %e, "pruning signature rules"),
    }
    if let Err(e) = maps.sync_lists() {
        warn!(error = %e, "syncing the data plane's list bits");
    }
}
