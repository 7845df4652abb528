//! Signature rules and known-good sources, for the control API: thin
//! calls into the executor (their one owner), with who set a rule recorded
//! as `api`.
use std::{net::IpAddr, time::Duration};

use phantomnet_common::ReasonCode;

use super::{AgentCore, CoreError};
use crate::{
    aggregate::Signature,
    dataplane::{DataplaneError, KnownGoodView, SignatureView},
    enforce::{EnforceError, SignatureRequest},
};

/// The match fields the data plane may refuse in a rule (its
/// `InvalidArgument` field names): a fault in the rule, not in the TTL or
/// the rate. (`ttl` here is the packets' TTL range.)
const RULE_FIELDS: [&str; 7] = ["family", "dst", "len", "dport", "ttl", "flags", "payload"];

fn rule_error(e: EnforceError) -> CoreError {
    match e {
        EnforceError::Dataplane(DataplaneError::InvalidArgument { field, reason })
            if RULE_FIELDS.contains(&field) =>
        {
            CoreError::BadSignature { field, reason }
        }
        e => e.into(),
    }
}

impl AgentCore {
    /// Installs a signature rule for `ttl` (`None`: until removed), or
    /// refreshes the live rule with the same match fields. `rate_pps` 0
    /// drops every match. A refused rule changes nothing.
    pub fn add_signature(
        &self,
        signature: Signature,
        ttl: Option<Duration>,
        rate_pps: u32,
        exempt_known_good: bool,
    ) -> Result<SignatureView, CoreError> {
        if ttl.is_some_and(|t| t.is_zero()) {
            return Err(DataplaneError::InvalidArgument {
                field: "ttl",
                reason: "must be positive (none: until removed)".into(),
            }
            .into());
        }
        let req = SignatureRequest {
            signature,
            ttl,
            rate_pps,
            exempt_known_good,
            reason: ReasonCode::Api,
        };
        let view = self.executor().add_signature(&req).map_err(rule_error)?;
        tracing::info!(
            id = view.rule.id,
            slot = view.slot,
            rule = %req.signature,
            rate_pps,
            exempt_known_good,
            ttl_secs = ttl.map(|t| t.as_secs()),
            "signature rule set over the API"
        );
        Ok(view)
    }

    pub fn remove_signature(&self, id: u32) -> Result<(), CoreError> {
        self.executor().remove_signature(id)?;
        tracing::info!(id, "signature rule removed over the API");
        Ok(())
    }

    /// Every installed signature rule (expired ones until housekeeping
    /// frees their slots), by slot.
    pub fn signatures(&self) -> Result<Vec<SignatureView>, CoreError> {
        Ok(self.executor().signatures()?)
    }

    pub fn vouch(&self, source: IpAddr) -> Result<(), CoreError> {
        self.executor().vouch(&[source])?;
        tracing::info!(%source, "known-good over the API");
        Ok(())
    }

    pub fn unvouch(&self, source: IpAddr) -> Result<(), CoreError> {
        self.executor().unvouch(source)?;
        tracing::info!(%source, "no longer known-good, over the API");
        Ok(())
    }

    pub fn known_good(&self) -> Result<Vec<KnownGoodView>, CoreError> {
        Ok(self.executor().known_good()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_match_field_is_the_rules_fault_and_the_rate_is_not() {
        let e = |field| {
            rule_error(EnforceError::Dataplane(DataplaneError::InvalidArgument {
                field,
                reason: "r".into(),
            }))
        };
        for field in RULE_FIELDS {
            assert!(
                matches!(e(field), CoreError::BadSignature { field: f, .. } if f == field),
                "{field}"
            );
        }
        assert!(matches!(
            e("rate"),
            CoreError::Enforce(EnforceError::Dataplane(DataplaneError::InvalidArgument {
                field: "rate",
                ..
            }))
        ));
    }
}
