//! Signature rules and known-good sources: written by operators, the API
//! and the aggregate detector alike. A rule is the same whoever writes it;
//! `reason` records who did.
use std::{net::IpAddr, time::Duration};

use phantomnet_common::{ReasonCode, sig_flags};

use super::{EnforceError, Executor};
use crate::{
    aggregate::Signature,
    dataplane::{KnownGoodView, SignatureView},
};

/// What a signature rule does, and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct SignatureRequest {
    pub signature: Signature,
    /// `None`: until removed.
    pub ttl: Option<Duration>,
    /// Matching packets per second let through, all sources together;
    /// 0 = drop every match.
    pub rate_pps: u32,
    /// Known-good sources pass the rule.
    pub exempt_known_good: bool,
    pub reason: ReasonCode,
}

impl Executor {
    /// Installs (or refreshes, if a live rule has the same match fields) a
    /// signature rule. A bad rule is refused and nothing changes.
    pub fn add_signature(&mut self, req: &SignatureRequest) -> Result<SignatureView, EnforceError> {
        let mut rule = req.signature.to_rule();
        rule.rate_pps = req.rate_pps;
        rule.reason = req.reason as u32;
        if req.exempt_known_good {
            rule.flags |= sig_flags::EXEMPT_KNOWN_GOOD;
        }
        Ok(self.maps.add_signature(rule, req.ttl)?)
    }

    pub fn remove_signature(&mut self, id: u32) -> Result<(), EnforceError> {
        Ok(self.maps.remove_signature(id)?)
    }

    pub fn signatures(&self) -> Result<Vec<SignatureView>, EnforceError> {
        Ok(self.maps.signatures()?)
    }

    /// Marks sources known-good; returns how many were written (a full map
    /// drops its least recently refreshed entry, never refuses).
    pub fn vouch(&mut self, sources: &[IpAddr]) -> Result<usize, EnforceError> {
        for s in sources {
            self.maps.vouch(*s)?;
        }
        Ok(sources.len())
    }

    pub fn unvouch(&mut self, source: IpAddr) -> Result<(), EnforceError> {
        Ok(self.maps.unvouch(source)?)
    }

    pub fn known_good(&self) -> Result<Vec<KnownGoodView>, EnforceError> {
        Ok(self.maps.known_good()?)
    }
}
