//! Operator, API and integration commands: explicit, always written (the
//! precedence rule binds detections, not these).
use std::time::Duration;

use phantomnet_common::ReasonCode;
use tracing::warn;

use super::{EnforceError, Executor};
use crate::{
    dataplane::{Prefix, Rule, RuleKind, ThrottleParams},
    decide::Action,
    enforce::nft::Deceived,
};

impl Executor {
    pub fn block(
        &mut self,
        prefix: &Prefix,
        ttl: Option<Duration>,
        code: ReasonCode,
        reason: &str,
    ) -> Result<Rule, EnforceError> {
        Ok(self.write_block(prefix, ttl, code, reason)?)
    }

    pub fn unblock(&mut self, prefix: &Prefix) -> Result<(), EnforceError> {
        self.maps.unblock(prefix)?;
        self.expiry.forget(&(RuleKind::Block, *prefix));
        Ok(())
    }

    pub fn throttle(
        &mut self,
        prefix: &Prefix,
        params: ThrottleParams,
        code: ReasonCode,
    ) -> Result<Rule, EnforceError> {
        if let Some(by) = self.maps.allowlisted_by(prefix) {
            return Err(EnforceError::Allowlisted {
                prefix: prefix.to_string(),
                by: by.to_string(),
            });
        }
        Ok(self.write_throttle(prefix, params, code)?)
    }

    pub fn unthrottle(&mut self, prefix: &Prefix) -> Result<(), EnforceError> {
        Ok(self.remove_throttle(prefix)?)
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
        self.flush_deceives();
        self.deceivable(prefix)?;
        self.enforce(prefix, Action::Deceive, ttl, ReasonCode::Api, "")?;
        Ok(ttl)
    }

    pub fn undeceive(&mut self, prefix: &Prefix) -> Result<(), EnforceError> {
        self.flush_deceives();
        self.deceiver()?.undeceive(prefix)?;
        self.deceived.remove(prefix);
        Ok(())
    }

    pub fn deceived(&mut self) -> Result<Vec<Deceived>, EnforceError> {
        self.flush_deceives();
        Ok(self.deceiver()?.list()?)
    }

    /// Exempts `prefix`. A deception of a source inside it ends: an
    /// allowlisted source is never acted on.
    pub fn allow(&mut self, prefix: &Prefix, code: ReasonCode) -> Result<Rule, EnforceError> {
        let rule = self.maps.allow_as(prefix, code)?;
        self.flush_deceives();
        let inside = self.deceived.inside(prefix);
        for p in inside {
            if let Ok(d) = self.deceiver()
                && let Err(e) = d.undeceive(&p)
            {
                warn!(prefix = %p, error = %e, "ending the deception of an allowlisted source");
            }
            self.deceived.remove(&p);
        }
        self.mirror_allowlist();
        Ok(rule)
    }

    pub fn disallow(&mut self, prefix: &Prefix) -> Result<(), EnforceError> {
        self.maps.disallow(prefix)?;
        self.mirror_allowlist();
        Ok(())
    }
}
