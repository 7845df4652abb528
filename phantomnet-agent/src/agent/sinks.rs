//! What the daemon's core offers the modules that act on the agent from
//! outside the packet path (threat feeds, CrowdSec): the traits they define
//! are implemented here, in the composition root, so neither they nor the
//! daemon import each other.
use std::sync::{Arc, MutexGuard};

use crate::daemon::AgentCore;
use crate::enforce::Executor;
use crate::metrics::Metrics;

impl crate::feeds::FeedSink for AgentCore {
    fn executor(&self) -> MutexGuard<'_, Executor> {
        AgentCore::executor(self)
    }
    fn metrics(&self) -> &Metrics {
        AgentCore::metrics(self)
    }
    fn set_feed(&self, feed: Arc<crate::correlate::ThreatFeed>) {
        AgentCore::set_feed(self, feed)
    }
}

impl crate::crowdsec::CrowdSecSink for AgentCore {
    fn executor(&self) -> MutexGuard<'_, Executor> {
        AgentCore::executor(self)
    }
    fn metrics(&self) -> &Metrics {
        AgentCore::metrics(self)
    }
    fn journal(&self, events: Vec<crate::journal::NewEvent>) {
        if let Err(e) = self.record(events) {
            tracing::warn!(error = %e, "journaling CrowdSec decisions");
        }
    }
    fn subscribe_enforced(&self) -> tokio::sync::broadcast::Receiver<crate::enforce::Enforced> {
        AgentCore::subscribe_enforced(self)
    }
}
