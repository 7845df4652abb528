//! DECEIVE off the decision loop.
//!
//! A DECEIVE is an nftables element, and nftables is changed by running
//! `nft` (about 17 ms a transaction here: docs/BENCHMARKS.md, "What a
//! DECEIVE costs"). Made inline, every new deceived source held the
//! pipeline's next sample for that long, and a scan from many sources at
//! once held it for the sum. So the live
//! agent hands a detection's DECEIVE to one worker thread instead
//! ([`DeceiveWorker`]): `apply` answers at once, the source counts as
//! deceived from then on (later samples leave it unchanged), and the worker
//! applies whatever has queued as **one** nft transaction, in order.
//! The executor picks up the outcomes at the next batch
//! ([`Executor::settle`](super::Executor::settle)): a refused DECEIVE falls
//! back to THROTTLE there, as an inline one did.
//!
//! The queue is bounded: when it is full, `submit` refuses the job and the
//! executor falls back to THROTTLE at once (in the kernel, no process).
//! Operator commands wait for the queue first ([`DeceiveWorker::barrier`]),
//! so they act on what nftables really holds. Dropping the worker applies
//! what is still queued before the thread ends: a stopping agent leaves its
//! last deceptions in force, as it leaves its map entries.
//!
//! Hand-written over a std channel and thread: the job is a blocking
//! process call, which is what a plain thread is for; an async runtime or a
//! pool would add nothing but a dependency of the executor on it.
use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use tracing::warn;

use super::nft::{Deceiver, NftError};
use crate::dataplane::Prefix;

/// Jobs queued at most; beyond that a DECEIVE falls back to THROTTLE.
pub const QUEUE_JOBS: usize = 4096;
/// Sources per nft transaction at most.
pub const MAX_BATCH: usize = 256;

/// What puts sources under deception: nftables (`Deceiver`), or a test's
/// stand-in.
pub trait DeceiveBackend: Send + Sync {
    /// Deceives every `(source, ttl)` in one transaction: all or none.
    fn deceive_all(&self, items: &[(Prefix, Duration)]) -> Result<(), NftError>;
}

impl DeceiveBackend for Deceiver {
    fn deceive_all(&self, items: &[(Prefix, Duration)]) -> Result<(), NftError> {
        self.deceive_many(items)
    }
}

/// One detection's DECEIVE.
pub struct Job {
    pub backend: Arc<dyn DeceiveBackend>,
    pub source: Prefix,
    pub ttl: Duration,
    /// The decision's reason (`rule 4`), for the record of a failure.
    pub reason: String,
}

/// A job's outcome.
#[derive(Debug)]
pub struct Done {
    pub source: Prefix,
    pub ttl: Duration,
    pub reason: String,
    pub result: Result<(), NftError>,
}

enum Msg {
    Job(Job),
    /// Acknowledged once every job queued before it is done.
    Barrier(mpsc::SyncSender<()>),
}

/// The worker thread and its two channels.
pub struct DeceiveWorker {
    tx: Option<mpsc::SyncSender<Msg>>,
    done: mpsc::Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// Jobs queued and not yet done.
    pending: Arc<AtomicUsize>,
}

impl DeceiveWorker {
    pub fn start() -> io::Result<DeceiveWorker> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_JOBS);
        let (done_tx, done) = mpsc::channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let left = pending.clone();
        let thread = thread::Builder::new()
            .name("pn-deceive".into())
            .spawn(move || work(&rx, &done_tx, &left))?;
        Ok(DeceiveWorker {
            tx: Some(tx),
            done,
            thread: Some(thread),
            pending,
        })
    }

    /// Queues `job` without waiting: false when the queue is full (or the
    /// worker is gone), and the job is dropped.
    #[must_use]
    pub fn submit(&self, job: Job) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        // Counted before the worker can see it, so the count never dips
        // below zero.
        self.pending.fetch_add(1, Ordering::Relaxed);
        let queued = tx.try_send(Msg::Job(job)).is_ok();
        if !queued {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
        queued
    }

    /// Jobs queued and not yet done (`phantomnet_deceive_queue`).
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Waits until every job queued so far is done.
    pub fn barrier(&self) {
        let Some(tx) = &self.tx else {
            return;
        };
        let (ack_tx, ack) = mpsc::sync_channel(1);
        if tx.send(Msg::Barrier(ack_tx)).is_ok() {
            // An error: the worker is gone, so nothing is pending either.
            let _ = ack.recv();
        }
    }

    /// The outcomes so far, in the order the jobs were queued.
    pub fn take_done(&self) -> Vec<Done> {
        self.done.try_iter().collect()
    }
}

impl Drop for DeceiveWorker {
    /// Closes the queue; the worker applies what is still queued, then ends.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            warn!("the DECEIVE worker panicked");
        }
        let failed = self.done.try_iter().filter(|d| d.result.is_err()).count();
        if failed > 0 {
            warn!(
                failed,
                "DECEIVEs refused by nftables while stopping (not retried)"
            );
        }
    }
}

fn work(rx: &mpsc::Receiver<Msg>, done: &mpsc::Sender<Done>, pending: &AtomicUsize) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut barrier = None;
        while let Some(m) = next.take() {
            match m {
                Msg::Job(j) => jobs.push(j),
                Msg::Barrier(ack) => {
                    barrier = Some(ack);
                    break;
                }
            }
            if jobs.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let n = jobs.len();
        run(&mut jobs, done);
        pending.fetch_sub(n, Ordering::Relaxed);
        if let Some(ack) = barrier {
            let _ = ack.send(());
        }
    }
}

/// Applies `jobs` (draining it): each run of jobs for the same backend in
/// one transaction. When a transaction is refused, its jobs are retried one
/// by one, so one bad element fails only itself.
fn run(jobs: &mut Vec<Job>, done: &mpsc::Sender<Done>) {
    while let Some(first) = jobs.first() {
        let backend = first.backend.clone();
        let n = jobs
            .iter()
            .take_while(|j| Arc::ptr_eq(&j.backend, &backend))
            .count();
        let group: Vec<Job> = jobs.drain(..n).collect();
        let items: Vec<(Prefix, Duration)> = group.iter().map(|j| (j.source, j.ttl)).collect();
        match backend.deceive_all(&items) {
            Ok(()) => group.into_iter().for_each(|j| finish(done, j, Ok(()))),
            Err(e) if items.len() == 1 => {
                if let Some(j) = group.into_iter().next() {
                    finish(done, j, Err(e));
                }
            }
            Err(_) => group.into_iter().for_each(|j| {
                let result = backend.deceive_all(&[(j.source, j.ttl)]);
                finish(done, j, result)
            }),
        }
    }
}

fn finish(done: &mpsc::Sender<Done>, j: Job, result: Result<(), NftError>) {
    // The executor owns the receiver; if it is gone, so is the agent.
    let _ = done.send(Done {
        source: j.source,
        ttl: j.ttl,
        reason: j.reason,
        result,
    });
}

#[cfg(test)]
mod tests;
