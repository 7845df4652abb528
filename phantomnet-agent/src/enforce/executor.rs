//! The response executor: turns decisions (and operator commands) into
//! enforcement. BLOCK and THROTTLE go to the pinned maps, DECEIVE to
//! nftables, LOG nowhere.
//!
//! It is idempotent and cheap to call once per sample: a source whose action
//! is already in force with more than half its TTL left costs a hash lookup
//! and no syscall; with less left, the action is refreshed (its expiry
//! extended). A weaker action never replaces a stronger unexpired one, and an
//! allowlisted source is never acted on. Each backend fails on its own: with
//! no usable `nft`, DECEIVE is a clear error and BLOCK/THROTTLE still work.
use std::{collections::HashMap, net::IpAddr, time::Duration};

use phantomnet_common::{REASON_TEXT_LEN, ReasonCode};
use tracing::{debug, warn};

use super::nft::{Deceived, Deceiver, NftError};
use crate::{
    dataplane::{DataplaneError, Maps, Prefix, Rule, ThrottleParams, monotonic_now_ns},
    decide::Action,
};

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
}

impl Default for EnforcePolicy {
    fn default() -> Self {
        EnforcePolicy {
            block_ttl: Duration::from_secs(3600),
            throttle_ttl: Duration::from_secs(600),
            deceive_ttl: Duration::from_secs(900),
            throttle_rate_pps: 100,
            throttle_burst: 20,
            min_evidence: 3,
            evidence_window: Duration::from_secs(10),
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
    /// `in_force` stays (the same action with ample time left, or a stronger one).
    Unchanged {
        in_force: Action,
        remaining: Duration,
    },
    /// Dry-run: this is what would have been enforced.
    DryRun { action: Action },
    /// The source is allowlisted.
    Allowlisted { by: Prefix },
}

#[derive(Clone, Copy, Debug)]
struct Active {
    action: Action,
    until_ns: u64,
}

/// The executor. One per agent; not shared across threads (wrap it in a
/// mutex where the API and the pipeline both use it).
pub struct Executor {
    maps: Maps,
    deceiver: Result<Deceiver, String>,
    policy: EnforcePolicy,
    dry_run: bool,
    active: HashMap<IpAddr, Active>,
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
    pub fn new(maps: Maps, deceiver: Result<Deceiver, String>, policy: EnforcePolicy) -> Executor {
        Executor {
            maps,
            deceiver,
            policy,
            dry_run: false,
            active: HashMap::new(),
        }
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
    pub fn set_deceiver(&mut self, deceiver: Result<Deceiver, String>) {
        self.deceiver = deceiver;
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

    fn deceiver(&self) -> Result<&Deceiver, EnforceError> {
        self.deceiver
            .as_ref()
            .map_err(|why| EnforceError::DeceiveUnavailable(why.clone()))
    }

    /// Enforces a detector's decision on one source.
    pub fn apply(
        &mut self,
        source: IpAddr,
        action: Action,
        reason: &str,
    ) -> Result<Applied, EnforceError> {
        if action == Action::Log {
            return Ok(Applied::Logged);
        }
        if self.dry_run {
            return Ok(Applied::DryRun { action });
        }
        let prefix = Prefix::host(source);
        if let Some(by) = self.maps.allowlisted_by(&prefix) {
            return Ok(Applied::Allowlisted { by });
        }
        let now = monotonic_now_ns();
        let ttl = self.policy.ttl(action);
        let mut refresh = false;
        if let Some(a) = self.active.get(&source).filter(|a| a.until_ns > now) {
            let remaining = Duration::from_nanos(a.until_ns - now);
            if a.action > action || (a.action == action && remaining > ttl / 2) {
                return Ok(Applied::Unchanged {
                    in_force: a.action,
                    remaining,
                });
            }
            refresh = a.action == action;
        }
        self.enforce(&prefix, action, ttl, ReasonCode::Detection, reason)?;
        self.active.insert(
            source,
            Active {
                action,
                until_ns: now.saturating_add(ttl.as_nanos() as u64),
            },
        );
        debug!(%source, %action, refresh, "enforced");
        Ok(if refresh {
            Applied::Refreshed { action, ttl }
        } else {
            Applied::Enforced { action, ttl }
        })
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
                .maps
                .block(prefix, Some(ttl), code, reason_text(reason))
                .map(drop)
                .map_err(Into::into),
            Action::Throttle => self
                .maps
                .throttle(
                    prefix,
                    ThrottleParams {
                        rate_pps: self.policy.throttle_rate_pps,
                        burst: Some(self.policy.throttle_burst),
                        ttl: Some(ttl),
                    },
                )
                .map(drop)
                .map_err(Into::into),
            Action::Deceive => {
                self.deceiver()?.deceive(prefix, ttl)?;
                // The XDP program must let a deceived source through.
                match self.maps.unthrottle(prefix) {
                    Ok(()) | Err(DataplaneError::NotFound { .. }) => Ok(()),
                    Err(e) => {
                        warn!(%prefix, error = %e, "deceived, but its throttle entry stays");
                        Ok(())
                    }
                }
            }
        }
    }

    /// Forgets expired entries of the in-force cache (the kernel and nft
    /// expire the rules themselves).
    pub fn prune(&mut self) -> usize {
        let now = monotonic_now_ns();
        let before = self.active.len();
        self.active.retain(|_, a| a.until_ns > now);
        before - self.active.len()
    }

    fn note(&mut self, prefix: &Prefix, action: Action, ttl: Option<Duration>) {
        let host = if prefix.is_ipv4() { 32 } else { 128 };
        if prefix.prefix_len() == host {
            let until_ns = match ttl {
                Some(t) => monotonic_now_ns().saturating_add(t.as_nanos() as u64),
                None => u64::MAX,
            };
            self.active
                .insert(prefix.addr(), Active { action, until_ns });
        }
    }

    fn forget(&mut self, prefix: &Prefix, action: Action) {
        if self
            .active
            .get(&prefix.addr())
            .is_some_and(|a| a.action == action)
        {
            self.active.remove(&prefix.addr());
        }
    }

    // ---- operator / API commands: explicit, always written ----------------

    pub fn block(
        &mut self,
        prefix: &Prefix,
        ttl: Option<Duration>,
        code: ReasonCode,
        reason: &str,
    ) -> Result<Rule, EnforceError> {
        let rule = self.maps.block(prefix, ttl, code, reason)?;
        self.note(prefix, Action::Block, ttl);
        Ok(rule)
    }

    pub fn unblock(&mut self, prefix: &Prefix) -> Result<(), EnforceError> {
        self.maps.unblock(prefix)?;
        self.forget(prefix, Action::Block);
        Ok(())
    }

    pub fn throttle(
        &mut self,
        prefix: &Prefix,
        params: ThrottleParams,
    ) -> Result<Rule, EnforceError> {
        if let Some(by) = self.maps.allowlisted_by(prefix) {
            return Err(EnforceError::Allowlisted {
                prefix: prefix.to_string(),
                by: by.to_string(),
            });
        }
        let rule = self.maps.throttle(prefix, params)?;
        self.note(prefix, Action::Throttle, params.ttl);
        Ok(rule)
    }

    pub fn unthrottle(&mut self, prefix: &Prefix) -> Result<(), EnforceError> {
        self.maps.unthrottle(prefix)?;
        self.forget(prefix, Action::Throttle);
        Ok(())
    }

    pub fn deceive(
        &mut self,
        prefix: &Prefix,
        ttl: Option<Duration>,
    ) -> Result<Duration, EnforceError> {
        if let Some(by) = self.maps.allowlisted_by(prefix) {
            return Err(EnforceError::Allowlisted {
                prefix: prefix.to_string(),
                by: by.to_string(),
            });
        }
        let ttl = ttl.unwrap_or(self.policy.deceive_ttl);
        self.enforce(prefix, Action::Deceive, ttl, ReasonCode::Api, "")?;
        self.note(prefix, Action::Deceive, Some(ttl));
        Ok(ttl)
    }

    pub fn undeceive(&mut self, prefix: &Prefix) -> Result<(), EnforceError> {
        self.deceiver()?.undeceive(prefix)?;
        self.forget(prefix, Action::Deceive);
        Ok(())
    }

    pub fn deceived(&self) -> Result<Vec<Deceived>, EnforceError> {
        Ok(self.deceiver()?.list()?)
    }

    pub fn allow(&mut self, prefix: &Prefix) -> Result<Rule, EnforceError> {
        Ok(self.maps.allow(prefix)?)
    }

    pub fn disallow(&mut self, prefix: &Prefix) -> Result<(), EnforceError> {
        Ok(self.maps.disallow(prefix)?)
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
