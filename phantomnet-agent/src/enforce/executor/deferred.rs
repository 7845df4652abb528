//! The executor's side of DECEIVE off the decision loop
//! ([`crate::enforce::deferred`]): queueing a detection's DECEIVE, and
//! settling the outcomes.
use std::{
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::warn;

use super::{Applied, EnforceError, Executor};
use crate::{
    dataplane::Prefix,
    decide::Action,
    enforce::deferred::{DeceiveBackend, DeceiveWorker, Done, Job, QUEUE_JOBS},
    flow::Source,
};

/// At most one warning this often about refusals beyond the cap.
const UNRECORDED_WARN_EVERY: Duration = Duration::from_secs(10);

/// A detection's DECEIVE that `apply` had answered as enforced and that
/// nftables then refused: what stands in for it now.
#[derive(Debug)]
pub struct DeceiveRefused {
    pub source: Source,
    /// The decision's reason, as given to `apply` (`rule 4`).
    pub reason: String,
    /// nft's answer.
    pub why: String,
    /// `apply(source, THROTTLE)` under the precedence rule: usually
    /// `Enforced`, `Unchanged` if something at least as strong is in force.
    pub fallback: Result<Applied, EnforceError>,
}

impl Executor {
    /// From now on a detection's DECEIVE runs on a worker thread: `apply`
    /// answers without waiting for nft, and [`settle`](Self::settle)
    /// collects the outcomes. Operator commands stay inline (they report
    /// nft's error), and wait for the queue first.
    pub fn defer_deceives(&mut self) -> io::Result<()> {
        if self.worker.is_none() {
            self.worker = Some(DeceiveWorker::start()?);
        }
        Ok(())
    }

    /// Queues a detection's DECEIVE of `prefix`. A full queue is
    /// `DeceiveUnavailable`, which `apply` answers with THROTTLE.
    pub(super) fn defer_deceive(
        &mut self,
        prefix: &Prefix,
        ttl: Duration,
        reason: &str,
    ) -> Result<(), EnforceError> {
        let backend: Arc<dyn DeceiveBackend> = self.deceiver()?.clone();
        let Some(worker) = &self.worker else {
            return Err(EnforceError::DeceiveUnavailable(
                "no DECEIVE worker".to_string(),
            ));
        };
        let queued = worker.submit(Job {
            backend,
            source: *prefix,
            ttl,
            reason: reason.to_string(),
        });
        if queued {
            Ok(())
        } else {
            Err(EnforceError::DeceiveUnavailable(format!(
                "{QUEUE_JOBS} DECEIVEs are already waiting for nftables"
            )))
        }
    }

    /// Finishes the deferred DECEIVEs done since the last call, and hands
    /// out the refused ones (each already fallen back to THROTTLE). The
    /// pipeline calls it before each batch.
    pub fn settle(&mut self) -> Vec<DeceiveRefused> {
        self.collect_deferred();
        let now = Instant::now();
        if let (n @ 1.., last) = self.unrecorded
            && last.is_none_or(|t| now.duration_since(t) >= UNRECORDED_WARN_EVERY)
        {
            warn!(
                refused = n,
                "DECEIVEs refused by nftables fell back to THROTTLE unrecorded (too many unsettled)"
            );
            self.unrecorded = (0, Some(now));
        }
        std::mem::take(&mut self.refused)
    }

    /// DECEIVEs queued for nftables and not yet applied (0 without a worker).
    pub fn deceive_queue(&self) -> usize {
        self.worker.as_ref().map_or(0, DeceiveWorker::pending)
    }

    /// Waits until nftables has every queued DECEIVE, and finishes them
    /// (refusals are kept for `settle`). Operator commands that touch
    /// DECEIVE call it first, so they act on what nftables holds.
    pub(super) fn flush_deceives(&mut self) {
        if let Some(w) = &self.worker {
            w.barrier();
            self.collect_deferred();
        }
    }

    fn collect_deferred(&mut self) {
        let done = match &self.worker {
            Some(w) => w.take_done(),
            None => return,
        };
        for d in done {
            self.finish_deferred(d);
        }
    }

    fn finish_deferred(&mut self, d: Done) {
        let Done {
            source,
            reason,
            result,
            ..
        } = d;
        match result {
            Ok(()) => self.deceived_in_nft(&source),
            Err(e) => {
                // Not deceived after all: THROTTLE stands in, and the
                // source's later DECEIVEs are not retried until it ends.
                self.deceived.remove(&source);
                self.remember_deceive_failure(source, Instant::now());
                let fallback = self.apply(Source::from_prefix(source), Action::Throttle, &reason);
                if self.refused.len() < QUEUE_JOBS {
                    self.refused.push(DeceiveRefused {
                        source: Source::from_prefix(source),
                        reason,
                        why: e.to_string(),
                        fallback,
                    });
                } else {
                    self.unrecorded.0 += 1;
                }
            }
        }
    }
}
