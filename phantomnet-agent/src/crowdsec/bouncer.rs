//! The bouncer: polls `GET /v1/decisions/stream` (`X-Api-Key`), first with
//! `startup=true` (the whole active set), then `startup=false` (what was
//! added and deleted since), every `interval_secs`.
//!
//! - A `ban` on an `Ip` or `Range` becomes a BLOCK for the decision's
//!   duration, reason `crowdsec`, text `crowdsec:<origin>`. A prefix
//!   already blocked by anyone else (an operator, a feed) is left alone.
//! - A deleted decision removes the BLOCK only if CrowdSec set it.
//! - After the startup poll, CrowdSec entries that the LAPI no longer has
//!   (deleted while the agent was down) are removed.
//! - LAPI unreachable: nothing changes. What is in force stays until it
//!   expires; the poll is retried at the interval, and the failure is
//!   logged when it starts, every 60th time, and when it ends.
//! - Dry-run: nothing is written; the journal says what would be.
//! - The journal gets at most `JOURNAL_PER_POLL` records per poll, and a
//!   log line with the counts.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use phantomnet_common::{Action, EventAction, ReasonCode};
use tracing::{info, warn};

use super::decision::{Op, Plan, plan_stream};
use super::{CrowdSecSink, endpoint, read_secret};
use crate::config::CrowdSecConfig;
use crate::dataplane::{Prefix, RuleKind};
use crate::enforce::Executor;
use crate::journal::NewEvent;

/// Largest stream body accepted (a community blocklist is ~15 k decisions,
/// about 4 MiB).
pub const MAX_STREAM_BYTES: u64 = 64 << 20;
/// The journal's `rule` for what the bouncer does.
const RULE: &str = ReasonCode::CrowdSec.name();
/// Journal records per poll, at most.
pub const JOURNAL_PER_POLL: usize = 100;

/// What applying one plan did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub blocked: Vec<(Prefix, Duration, String)>,
    pub unblocked: Vec<Prefix>,
    /// Prefixes someone else already blocks, left alone.
    pub foreign: usize,
    pub failed: usize,
    pub first_error: Option<String>,
}

fn is_ours(ex: &Executor, p: &Prefix) -> Option<bool> {
    ex.maps()
        .block_at(p)
        .map(|(code, _)| code == ReasonCode::CrowdSec)
}

/// Applies a plan to the maps (nothing in dry-run: the result then lists
/// what would have been done).
pub fn apply(ex: &mut Executor, plan: &Plan) -> Applied {
    let dry = ex.dry_run();
    let mut out = Applied::default();
    for op in &plan.ops {
        match op {
            Op::Block {
                prefix,
                ttl,
                reason,
            } => {
                if is_ours(ex, prefix) == Some(false) {
                    out.foreign += 1;
                    continue;
                }
                let r = if dry {
                    Ok(())
                } else {
                    ex.block(prefix, Some(*ttl), ReasonCode::CrowdSec, reason)
                        .map(|_| ())
                };
                match r {
                    Ok(()) => out.blocked.push((*prefix, *ttl, reason.clone())),
                    Err(e) => {
                        out.failed += 1;
                        out.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            Op::Unblock { prefix } => {
                if is_ours(ex, prefix) != Some(true) {
                    continue;
                }
                if dry || ex.unblock(prefix).is_ok() {
                    out.unblocked.push(*prefix);
                }
            }
        }
    }
    out
}

/// Removes CrowdSec's BLOCK entries that `keep` does not hold (after a
/// startup poll: the LAPI's whole active set).
pub fn reconcile(ex: &mut Executor, keep: &HashSet<Prefix>) -> Vec<Prefix> {
    if ex.dry_run() {
        return Vec::new();
    }
    let Ok(rules) = ex.maps().rules() else {
        return Vec::new();
    };
    let stale: Vec<Prefix> = rules
        .iter()
        .filter(|r| r.kind == RuleKind::Block)
        .filter(|r| matches!(r.reason, Some((ReasonCode::CrowdSec, _))))
        .map(|r| r.prefix)
        .filter(|p| !keep.contains(p))
        .collect();
    stale
        .into_iter()
        .filter(|p| ex.unblock(p).is_ok())
        .collect()
}

fn journal_events(a: &Applied, dry: bool) -> Vec<NewEvent> {
    let now = super::unix_now_ns();
    let verb = |v: &str| {
        if dry {
            format!("dry-run: would {v}")
        } else {
            v.to_string()
        }
    };
    let blocks = a.blocked.iter().map(|(p, ttl, reason)| {
        NewEvent::unassessed(
            now,
            p.addr(),
            EventAction::Apply(Action::Block),
            RULE,
            format!("{p}: {} for {}s ({reason})", verb("block"), ttl.as_secs()),
        )
    });
    let unblocks = a.unblocked.iter().map(|p| {
        NewEvent::unassessed(
            now,
            p.addr(),
            EventAction::Remove(RuleKind::Block),
            RULE,
            format!("{p}: {} (decision deleted)", verb("unblock")),
        )
    });
    blocks.chain(unblocks).take(JOURNAL_PER_POLL).collect()
}

async fn poll(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    startup: bool,
) -> Result<Plan, String> {
    let resp = client
        .get(url)
        .query(&[("startup", if startup { "true" } else { "false" })])
        .header("X-Api-Key", key)
        .send()
        .await
        .map_err(|e| crate::http::HttpError::from(e).to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP status {}", resp.status().as_u16()));
    }
    let body = crate::http::body_limited(resp, MAX_STREAM_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    plan_stream(&body).map_err(|e| e.to_string())
}

/// Runs the bouncer until `shutdown`. A bad key file or CA bundle is
/// reported once and the bouncer stays off.
pub async fn run<S: CrowdSecSink>(
    sink: Arc<S>,
    cfg: CrowdSecConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let Some(b) = cfg.bouncer.clone() else {
        return;
    };
    let setup = read_secret(&b.api_key_file).and_then(|key| {
        crate::http::client(cfg.ca_file.as_deref())
            .map(|c| (key, c))
            .map_err(|e| e.to_string())
    });
    let (key, client) = match setup {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, "CrowdSec bouncer off");
            return;
        }
    };
    let url = endpoint(&cfg.lapi_url, "v1/decisions/stream");
    info!(lapi = %cfg.lapi_url, interval_s = b.interval_secs, "CrowdSec bouncer on");
    let mut startup = true;
    let mut failures = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(b.interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let m = sink.metrics();
        match poll(&client, &url, &key, startup).await {
            Ok(plan) => {
                m.crowdsec_poll(true);
                if failures > 0 {
                    info!(after_failures = failures, "CrowdSec LAPI reachable again");
                    failures = 0;
                }
                let mut ex = sink.executor();
                let dry = ex.dry_run();
                let applied = apply(&mut ex, &plan);
                let stale = if startup {
                    let keep: HashSet<Prefix> =
                        applied.blocked.iter().map(|(p, _, _)| *p).collect();
                    reconcile(&mut ex, &keep)
                } else {
                    Vec::new()
                };
                drop(ex);
                m.crowdsec_decisions("block", applied.blocked.len() as u64);
                m.crowdsec_decisions("unblock", (applied.unblocked.len() + stale.len()) as u64);
                m.crowdsec_decisions(
                    "skipped",
                    plan.skipped_type
                        + plan.skipped_invalid
                        + (applied.foreign + applied.failed) as u64,
                );
                if !plan.ops.is_empty() || !stale.is_empty() {
                    info!(
                        startup,
                        blocked = applied.blocked.len(),
                        unblocked = applied.unblocked.len(),
                        stale_removed = stale.len(),
                        foreign = applied.foreign,
                        failed = applied.failed,
                        skipped_type = plan.skipped_type,
                        skipped_invalid = plan.skipped_invalid,
                        first_error = applied.first_error.as_deref().unwrap_or(""),
                        dry_run = dry,
                        "CrowdSec decisions applied"
                    );
                    sink.journal(journal_events(&applied, dry));
                }
                startup = false;
            }
            Err(e) => {
                m.crowdsec_poll(false);
                failures += 1;
                if failures == 1 || failures.is_multiple_of(60) {
                    warn!(error = %e, failures, "CrowdSec LAPI poll failed; what is in force stays until it expires");
                }
            }
        }
    }
}
