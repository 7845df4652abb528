//! The response executor: turns decisions (and operator commands) into
//! enforcement. BLOCK and THROTTLE go to the pinned maps, DECEIVE to
//! nftables, LOG nowhere.
//!
//! The executor is the one owner of what is in force. BLOCK and THROTTLE
//! live in the pinned maps, which it reads on every detection (so entries
//! written by the offline CLI, or by an earlier agent, count); DECEIVE lives
//! in nftables, whose elements it indexes at start and keeps up to date.
//! The detector only proposes; [`precedence::verdict`](super::precedence)
//! decides what a detection may change. An allowlisted source is never
//! acted on. Each backend fails on its own: a DECEIVE that cannot be
//! applied falls back to THROTTLE, and the executor remembers that for the
//! source, so it is not retried (and journaled) on every sample.
//!
//! Its per-source memory (`tracked`) is capped with O(1) lookup and
//! eviction, and the rules it writes are in an expiry index (`expiry`), so
//! neither a detection nor the 30 s prune walks a map.
use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use phantomnet_common::{REASON_TEXT_LEN, ReasonCode};
use tracing::{debug, warn};

mod commands;
mod deferred;
mod signatures;
pub use deferred::DeceiveRefused;
pub use signatures::SignatureRequest;

use super::{
    deferred::DeceiveWorker,
    expiry::ExpiryIndex,
    nft::{Deceiver, NftError},
    precedence::{InForce, Verdict, verdict},
    tracked::{DeceiveIndex, FailedDeceive, MAX_TRACKED},
};
use crate::{
    dataplane::{DataplaneError, Maps, Prefix, Rule, RuleKind, ThrottleParams, monotonic_now_ns},
    decide::Action,
    flow::Source,
};

/// Attack calls about a source, within the evidence window, before it is
/// enforced (they must also be more than half of its calls there). Four,
/// not the three of the first version: on two validation recordings of
/// the training plan (seeds 1–20 each, 1-in-16) a fourth call took the
/// benign runs acted on from 19 to 12 of 1,440 and enforced the same
/// 1,075 of 1,120 attack runs (docs/DETECTION.md, "Evidence before
/// enforcement").
pub const DEFAULT_MIN_EVIDENCE: u32 = 4;

/// TTLs and throttle parameters for decisions the detector makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnforcePolicy {
    pub block_ttl: Duration,
    pub throttle_ttl: Duration,
    pub deceive_ttl: Duration,
    pub throttle_rate_pps: u32,
    pub throttle_burst: u32,
    /// Attack decisions about a source, within `evidence_window`, before
    /// the pipeline enforces (1 = every decision acts).
    pub min_evidence: u32,
    pub evidence_window: Duration,
    /// Answer floods from many sources with signature rules.
    pub floods: bool,
    /// A flood's signature rule lives this long without an update.
    pub flood_rule_ttl: Duration,
    /// IPv6 sources are grouped to this prefix (the detector's flow state,
    /// hence the evidence and the entry the executor writes).
    pub ipv6_source_prefix: u8,
}

impl Default for EnforcePolicy {
    fn default() -> Self {
        EnforcePolicy {
            block_ttl: Duration::from_secs(3600),
            throttle_ttl: Duration::from_secs(600),
            deceive_ttl: Duration::from_secs(900),
            throttle_rate_pps: 100,
            throttle_burst: 20,
            min_evidence: DEFAULT_MIN_EVIDENCE,
            evidence_window: Duration::from_secs(10),
            floods: true,
            flood_rule_ttl: Duration::from_secs(60),
            ipv6_source_prefix: crate::flow::DEFAULT_IPV6_SOURCE_PREFIX,
        }
    }
}

impl EnforcePolicy {
    pub fn ttl(&self, action: Action) -> Duration {
        match action {
            Action::Log => Duration::ZERO,
            Action::Throttle => self.throttle_ttl,
            Action::Deceive => self.deceive_ttl,
            Action::Block => self.block_ttl,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error("{prefix} is allowlisted by {by}")]
    Allowlisted { prefix: String, by: String },
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    /// No honeypot is configured (for this family): an operator's
    /// precondition, not an outage.
    #[error("DECEIVE is not configured: {0}")]
    DeceiveNotConfigured(String),
    #[error("DECEIVE is unavailable: {0}")]
    DeceiveUnavailable(String),
    #[error(transparent)]
    Nft(#[from] NftError),
}

/// What `apply` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// LOG: nothing to enforce.
    Logged,
    /// Newly enforced, or upgraded from a weaker action.
    Enforced { action: Action, ttl: Duration },
    /// The same action was in force with little time left; expiry extended.
    Refreshed { action: Action, ttl: Duration },
    /// DECEIVE could not be applied; THROTTLE was enforced instead.
    Fallback {
        wanted: Action,
        enforced: Action,
        ttl: Duration,
        why: String,
    },
    /// `in_force` stays (at least as strong and as long, or an operator's).
    Unchanged { in_force: Action },
    /// Dry-run: this is what would have been enforced.
    DryRun { action: Action },
    /// The source is allowlisted.
    Allowlisted { by: Prefix },
}

/// The executor. One per agent; not shared across threads (wrap it in a
/// mutex where the API and the pipeline both use it).
pub struct Executor {
    maps: Maps,
    deceiver: Result<Arc<Deceiver>, String>,
    policy: EnforcePolicy,
    dry_run: bool,
    /// Sources under deception → when their element expires (`None`: never).
    deceived: DeceiveIndex,
    /// Sources whose DECEIVE failed → until when THROTTLE stands in for it.
    deceive_failed: FailedDeceive,
    /// When each BLOCK and THROTTLE entry this agent wrote expires.
    expiry: ExpiryIndex,
    /// Detections' DECEIVEs run here, off the caller's thread
    /// ([`defer_deceives`](Self::defer_deceives)); `None`: inline.
    worker: Option<DeceiveWorker>,
    /// Deferred DECEIVEs nftables refused, already fallen back, for
    /// [`settle`](Self::settle) to hand out. Capped at `deferred::QUEUE_JOBS`.
    refused: Vec<DeceiveRefused>,
    /// Refusals beyond that cap (fallen back, not recorded) since the last
    /// warning, and when that warning was.
    unrecorded: (u64, Option<Instant>),
}

/// Cuts operator/detector text to what a block entry keeps, on a char boundary.
fn reason_text(reason: &str) -> &str {
    let mut end = reason.len().min(REASON_TEXT_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

impl Executor {
    /// `deceiver` is the DECEIVE backend, already installed, or why it is
    /// unavailable.
    /// Rebuilds the DECEIVE index from nftables (BLOCK and THROTTLE are
    /// read from the maps whenever needed).
    pub fn new(maps: Maps, deceiver: Result<Deceiver, String>, policy: EnforcePolicy) -> Executor {
        let mut ex = Executor {
            maps,
            deceiver: deceiver.map(Arc::new),
            policy,
            dry_run: false,
            deceived: DeceiveIndex::default(),
            deceive_failed: FailedDeceive::default(),
            expiry: ExpiryIndex::default(),
            worker: None,
            refused: Vec::new(),
            unrecorded: (0, None),
        };
        ex.adopt_deceived();
        ex.mirror_allowlist();
        ex
    }

    /// Copies the allowlist into DECEIVE's table, so an allowlisted source
    /// inside a deceived prefix is never redirected.
    fn mirror_allowlist(&self) {
        let Ok(d) = self.deceiver.as_ref() else {
            return;
        };
        let allowed: Vec<Prefix> = match self.maps.rules() {
            Ok(r) => r
                .into_iter()
                .filter(|r| r.kind == RuleKind::Allow)
                .map(|r| r.prefix)
                .collect(),
            Err(e) => {
                warn!(error = %e, "reading the allowlist for DECEIVE");
                return;
            }
        };
        if let Err(e) = d.set_allowed(&allowed) {
            warn!(error = %e, "mirroring the allowlist into DECEIVE's table");
        }
    }

    /// Indexes the deceptions nftables holds (an earlier agent's, or ours).
    fn adopt_deceived(&mut self) {
        self.deceived.clear();
        let Ok(d) = self.deceiver.as_ref() else {
            return;
        };
        match d.list() {
            Ok(list) => {
                let now = Instant::now();
                for e in list.into_iter().take(MAX_TRACKED) {
                    if let Ok(net) = e
                        .source
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| e.source.parse::<IpAddr>().map(ipnet::IpNet::from))
                        && let Ok(p) = Prefix::new(net.addr(), net.prefix_len())
                    {
                        self.deceived.insert(p, e.remaining.map(|r| now + r));
                    }
                }
            }
            Err(e) => warn!(error = %e, "listing deceptions in force"),
        }
    }

    /// Deceived, by the source's own element or a covering one: the time
    /// left (`None`: no timeout). O(1) plus one probe per prefix length in use.
    fn deceived_left(&mut self, source: &Prefix) -> Option<Option<Duration>> {
        self.deceived.left(source, Instant::now())
    }

    /// Whether a covering entry is the source's own key (its host entry,
    /// or its IPv6 prefix): the precedence rule's "host entry".
    fn is_own(source: Prefix) -> impl Fn(&crate::dataplane::Covering) -> bool {
        move |c| c.prefix == source
    }

    pub fn policy(&self) -> &EnforcePolicy {
        &self.policy
    }

    pub fn set_policy(&mut self, policy: EnforcePolicy) {
        self.policy = policy;
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Dry-run for decisions: `apply` records what it would do and enforces
    /// nothing. (The XDP program's own dry-run flag is set through the maps.)
    pub fn set_dry_run(&mut self, on: bool) {
        self.dry_run = on;
    }

    /// Swaps the DECEIVE backend (a config reload changed the honeypots).
    /// With no honeypot left, the old table and its DNAT rules are removed:
    /// nothing may redirect to a honeypot the config no longer names.
    pub fn set_deceiver(&mut self, deceiver: Result<Deceiver, String>) {
        self.flush_deceives();
        if deceiver.is_err()
            && let Ok(old) = &self.deceiver
            && let Err(e) = old.remove()
        {
            warn!(error = %e, "removing the DECEIVE table");
        }
        self.deceiver = deceiver.map(Arc::new);
        self.deceive_failed.clear();
        self.adopt_deceived();
        self.mirror_allowlist();
    }

    /// The configured honeypots (none while DECEIVE is unavailable).
    pub fn honeypots(&self) -> Vec<super::Honeypot> {
        self.deceiver
            .as_ref()
            .map(|d| d.honeypots().to_vec())
            .unwrap_or_default()
    }

    pub fn maps(&self) -> &Maps {
        &self.maps
    }

    pub fn maps_mut(&mut self) -> &mut Maps {
        &mut self.maps
    }

    fn deceiver(&self) -> Result<&Arc<Deceiver>, EnforceError> {
        self.deceiver.as_ref().map_err(|why| {
            if why.starts_with(super::NO_HONEYPOT) {
                EnforceError::DeceiveNotConfigured(why.clone())
            } else {
                EnforceError::DeceiveUnavailable(why.clone())
            }
        })
    }

    /// Enforces a detector's proposal on one source, under the precedence
    /// rule: it may add or extend, never weaken, shorten or rewrite an
    /// operator's rule. The source's own entry is its prefix: a host
    /// (/32, or /128 per address), or an IPv6 source's network (/64 by
    /// default), written to the maps' tries like any wider prefix. That
    /// entry is the detector's own exactly as a host entry is.
    pub fn apply(
        &mut self,
        source: impl Into<Source>,
        action: Action,
        reason: &str,
    ) -> Result<Applied, EnforceError> {
        let source = source.into();
        if action == Action::Log {
            return Ok(Applied::Logged);
        }
        if self.dry_run {
            return Ok(Applied::DryRun { action });
        }
        let prefix = source.prefix();
        if let Some(by) = self.maps.allowlisted_by(&prefix) {
            return Ok(Applied::Allowlisted { by });
        }
        let now = Instant::now();
        // A DECEIVE that failed for this source stands as THROTTLE until then.
        let (action, fallback_why) = match action {
            Action::Deceive if self.deceive_failed.failed(&prefix, now) => (
                Action::Throttle,
                Some("DECEIVE failed earlier for this source".to_string()),
            ),
            Action::Deceive => match self.deceivable(&prefix) {
                Ok(()) => (Action::Deceive, None),
                Err(e) => (Action::Throttle, Some(e.to_string())),
            },
            a => (a, None),
        };
        let in_force = InForce {
            block: self.maps.block_covering(&prefix),
            throttle: self.maps.throttle_covering(&prefix),
            deceive: self.deceived_left(&prefix),
        };
        let ttl = self.policy.ttl(action);
        let refresh = match action {
            Action::Block => in_force.block.is_some_and(|b| b.prefix == prefix),
            Action::Throttle => in_force.throttle.is_some_and(|t| t.prefix == prefix),
            _ => in_force.deceive.is_some(),
        };
        let rate = self.policy.throttle_rate_pps;
        if let Verdict::Keep { in_force } =
            verdict(action, ttl, rate, &in_force, Self::is_own(prefix))
        {
            return Ok(Applied::Unchanged { in_force });
        }
        let result = self.enforce(&prefix, action, ttl, ReasonCode::Detection, reason);
        let result = match (result, action) {
            (
                Err(
                    e @ (EnforceError::Nft(_)
                    | EnforceError::DeceiveUnavailable(_)
                    | EnforceError::DeceiveNotConfigured(_)),
                ),
                Action::Deceive,
            ) => {
                self.remember_deceive_failure(prefix, now);
                self.enforce(
                    &prefix,
                    Action::Throttle,
                    self.policy.throttle_ttl,
                    ReasonCode::Detection,
                    reason,
                )
                .map(|()| Some(e.to_string()))
            }
            (r, _) => r.map(|()| None),
        }?;
        let why = result.or(fallback_why);
        debug!(%source, %action, refresh, "enforced");
        Ok(match why {
            Some(why) => {
                self.remember_deceive_failure(prefix, now);
                Applied::Fallback {
                    wanted: Action::Deceive,
                    enforced: Action::Throttle,
                    ttl: self.policy.throttle_ttl,
                    why,
                }
            }
            None if refresh => Applied::Refreshed { action, ttl },
            None => Applied::Enforced { action, ttl },
        })
    }

    /// Whether DECEIVE can be applied to `prefix` at all, without nft calls.
    fn deceivable(&self, prefix: &Prefix) -> Result<(), EnforceError> {
        let d = self.deceiver()?;
        if !d
            .honeypots()
            .iter()
            .any(|h| h.target.is_ipv4() == prefix.is_ipv4())
        {
            return Err(EnforceError::DeceiveNotConfigured(format!(
                "no {} honeypot is configured",
                if prefix.is_ipv4() { "IPv4" } else { "IPv6" }
            )));
        }
        Ok(())
    }

    fn remember_deceive_failure(&mut self, source: Prefix, now: Instant) {
        self.deceive_failed
            .remember(source, now + self.policy.throttle_ttl);
    }

    /// Writes a BLOCK and indexes its expiry.
    fn write_block(
        &mut self,
        prefix: &Prefix,
        ttl: Option<Duration>,
        code: ReasonCode,
        reason: &str,
    ) -> Result<Rule, DataplaneError> {
        let rule = self.maps.block(prefix, ttl, code, reason)?;
        self.expiry.record((RuleKind::Block, *prefix), rule.expires);
        Ok(rule)
    }

    /// Writes a THROTTLE and indexes its expiry.
    fn write_throttle(
        &mut self,
        prefix: &Prefix,
        params: ThrottleParams,
        code: ReasonCode,
    ) -> Result<Rule, DataplaneError> {
        let rule = self.maps.throttle_as(prefix, params, code)?;
        self.expiry
            .record((RuleKind::Throttle, *prefix), rule.expires);
        Ok(rule)
    }

    fn remove_throttle(&mut self, prefix: &Prefix) -> Result<(), DataplaneError> {
        self.maps.unthrottle(prefix)?;
        self.expiry.forget(&(RuleKind::Throttle, *prefix));
        Ok(())
    }

    fn enforce(
        &mut self,
        prefix: &Prefix,
        action: Action,
        ttl: Duration,
        code: ReasonCode,
        reason: &str,
    ) -> Result<(), EnforceError> {
        match action {
            Action::Log => Ok(()),
            Action::Block => self
                .write_block(prefix, Some(ttl), code, reason_text(reason))
                .map(drop)
                .map_err(Into::into),
            Action::Throttle => self
                .write_throttle(
                    prefix,
                    ThrottleParams {
                        rate_pps: self.policy.throttle_rate_pps,
                        burst: Some(self.policy.throttle_burst),
                        ttl: Some(ttl),
                    },
                    code,
                )
                .map(drop)
                .map_err(Into::into),
            // A detection's DECEIVE, with a worker: queued, in force for
            // the executor from now on; `settle` finishes it.
            Action::Deceive if code == ReasonCode::Detection && self.worker.is_some() => {
                self.defer_deceive(prefix, ttl, reason)?;
                self.deceived.insert(*prefix, Some(Instant::now() + ttl));
                Ok(())
            }
            Action::Deceive => {
                self.deceiver()?.deceive(prefix, ttl)?;
                self.deceived.insert(*prefix, Some(Instant::now() + ttl));
                self.deceived_in_nft(prefix);
                Ok(())
            }
        }
    }

    /// `prefix` is in DECEIVE's set. The XDP program must let a deceived
    /// source through: the detector's own throttle on it goes; an
    /// operator's stays.
    fn deceived_in_nft(&mut self, prefix: &Prefix) {
        if let Some(t) = self.maps.throttle_covering(prefix)
            && t.prefix == *prefix
            && t.reason == ReasonCode::Detection
            && let Err(e) = self.remove_throttle(prefix)
        {
            warn!(%prefix, error = %e, "deceived, but its throttle entry stays");
        }
    }

    /// Deletes the expired BLOCK and THROTTLE entries this agent wrote
    /// (the kernel already ignores them; this frees their slots) and
    /// forgets expired entries at the cold end of its DECEIVE index and
    /// failure memory (nft expires the rules themselves). Returns the map
    /// entries deleted.
    ///
    /// O(expired · log n): it walks the expiry index, not the maps. An
    /// indexed rule rewritten by someone else with a later expiry is
    /// re-indexed, not deleted; one removed by someone else is skipped.
    /// Rules only others wrote are left to [`sweep`](Self::sweep).
    pub fn prune(&mut self) -> usize {
        let now = Instant::now();
        self.deceived.prune(now);
        self.deceive_failed.prune(now);
        let now_ns = monotonic_now_ns();
        let mut pruned = 0;
        for key in self.expiry.take_due(now_ns) {
            let (kind, prefix) = key;
            match self.maps.expiry_of(kind, &prefix) {
                Some(e) if !e.is_live(now_ns) => {
                    let removed = match kind {
                        RuleKind::Block => self.maps.unblock(&prefix),
                        RuleKind::Throttle => self.maps.unthrottle(&prefix),
                        RuleKind::Allow | RuleKind::Deceive => continue,
                    };
                    pruned += usize::from(removed.is_ok());
                }
                Some(e) => self.expiry.record(key, e),
                None => {}
            }
        }
        pruned
    }

    /// The slow full sweep: deletes every expired BLOCK and THROTTLE entry,
    /// whoever wrote it (the offline CLI writes the pins directly). O(map):
    /// run it rarely (the agent does every `SWEEP_EVERY`, 10 min).
    pub fn sweep(&mut self) -> Result<usize, EnforceError> {
        Ok(self.maps.prune_expired()?)
    }

    /// Entries in the executor's per-source memory: (DECEIVE index, DECEIVE
    /// failures, expiry index).
    pub fn tracked(&self) -> (usize, usize, usize) {
        (
            self.deceived.len(),
            self.deceive_failed.len(),
            self.expiry.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_text_cuts_on_a_char_boundary() {
        assert_eq!(reason_text("short"), "short");
        let long = "é".repeat(20); // 40 bytes
        let cut = reason_text(&long);
        assert!(cut.len() <= REASON_TEXT_LEN && cut.chars().all(|c| c == 'é'));
        assert_eq!(cut.len(), 32);
    }

    #[test]
    fn ttl_per_action() {
        let p = EnforcePolicy::default();
        assert_eq!(p.ttl(Action::Log), Duration::ZERO);
        assert_eq!(p.ttl(Action::Block), Duration::from_secs(3600));
        assert_eq!(p.ttl(Action::Throttle), Duration::from_secs(600));
        assert_eq!(p.ttl(Action::Deceive), Duration::from_secs(900));
    }
}
