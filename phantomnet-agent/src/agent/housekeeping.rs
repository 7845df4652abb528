//! Periodic work of the main loop: counters to metrics (every stats
//! interval), pruning of what the agent wrote and old journal events (every
//! 30 s, O(expired)), and the slow full sweep (every `SWEEP_EVERY`): expired
//! entries whoever wrote them, and the rule gauges.
use std::time::Duration;

use phantomnet_common::{Outcome, RuleKind};
use tracing::{info, warn};

use crate::{
    aggregate::Signature, daemon::AgentCore, dataplane::SignatureView, metrics::SignatureCounts,
};

/// How often the full sweep runs: it walks every entry of the rule maps
/// (up to 2 × (65,536 BLOCK + 16,384 THROTTLE + 4,096 ALLOW) lookups) and
/// lists nftables' deceptions.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// The data plane's counters (one per-CPU array read: O(outcomes × CPUs)),
/// the BLOCK gauges: one pass over the BLOCK maps for the live count
/// and the 10 busiest entries (O(BLOCK entries), at most 2 × 65,536, no
/// allocation per entry; the dashboard's top-blocked panel needs each
/// entry's hits), and the signature rules' counts (64 slot reads plus one
/// per-CPU read per installed rule). The ALLOW, THROTTLE and DECEIVE gauges
/// are set by the sweep.
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
    match ex.maps().block_census(crate::metrics::TOP_BLOCKED) {
        Ok((live, top)) => {
            core.metrics().set_active_rules(RuleKind::Block, live);
            core.metrics().set_top_blocked(&top);
        }
        Err(e) => warn!(error = %e, "reading the BLOCK maps"),
    }
    match ex.signatures() {
        Ok(rules) => publish_signatures(core, &rules),
        Err(e) => warn!(error = %e, "reading the signature rules"),
    }
    info!(
        passed = c.get(Outcome::Passed).packets,
        block_dropped = c.get(Outcome::BlockDropped).packets,
        throttle_dropped = c.get(Outcome::ThrottleDropped).packets,
        signature_dropped = c.get(Outcome::SignatureDropped).packets,
        sampled = c.get(Outcome::Sampled).packets,
        sample_lost = c.get(Outcome::SampleLost).packets,
        priority_sampled = c.get(Outcome::PrioritySampled).packets,
        priority_bounded = c.get(Outcome::PriorityBounded).packets,
        samples_read = core.samples_read(),
        "counters"
    );
}

/// Each installed signature rule's counts, and how many are in force.
fn publish_signatures(core: &AgentCore, rules: &[SignatureView]) {
    let live = rules
        .iter()
        .filter(|v| v.remaining != Some(Duration::ZERO))
        .count() as u64;
    let counts: Vec<SignatureCounts> = rules
        .iter()
        .map(|v| SignatureCounts {
            id: v.rule.id,
            rule: Signature::from_rule(&v.rule).to_string(),
            matched: v.matched,
            dropped: v.dropped,
            exempted: v.exempted,
        })
        .collect();
    core.metrics().set_signatures(live, &counts);
}

/// Frees the slots of expired entries the agent wrote (through the
/// executor's expiry index: O(expired), not O(map)), and applies the
/// journal's retention.
pub(super) fn prune(core: &AgentCore) {
    let n = core.executor().prune();
    if n > 0 {
        info!(pruned = n, "removed expired entries");
    }
    sync_dataplane(core.executor().maps_mut());
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

/// The slow full sweep: deletes expired entries whoever wrote them (the
/// offline CLI writes pins directly while the agent runs), then sets the
/// ALLOW, THROTTLE and DECEIVE gauges of `phantomnet_active_rules` from one
/// listing of the maps and one of nftables. O(map); runs every
/// [`SWEEP_EVERY`] and once at start, so the gauges are up to that old.
pub(super) fn sweep(core: &AgentCore) {
    let mut ex = core.executor();
    match ex.sweep() {
        Ok(0) => {}
        Ok(n) => info!(pruned = n, "sweep: removed expired entries others wrote"),
        Err(e) => warn!(error = %e, "sweep: pruning expired entries"),
    }
    if let Ok(rules) = ex.maps().rules() {
        let count = |k| {
            rules
                .iter()
                .filter(|r| r.kind == k && r.remaining != Some(Duration::ZERO))
                .count() as u64
        };
        for kind in [RuleKind::Allow, RuleKind::Throttle] {
            core.metrics().set_active_rules(kind, count(kind));
        }
    }
    if let Ok(d) = ex.deceived() {
        core.metrics()
            .set_active_rules(RuleKind::Deceive, d.len() as u64);
    }
    let (deceived, failed, indexed) = ex.tracked();
    info!(deceived, failed, indexed, "sweep: executor state");
}
