//! The worker against a stand-in backend that records each transaction and
//! can stall (as a slow `nft` does) or refuse one source.
use std::{
    net::IpAddr,
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use super::*;

const TTL: Duration = Duration::from_secs(900);

fn p(last: u8) -> Prefix {
    Prefix::host(IpAddr::from([192, 0, 2, last]))
}

/// Records every transaction. The first one stalls until the test opens
/// the gate (telling the test it has started), so the jobs queued meanwhile
/// are what the worker finds next.
struct Recording {
    calls: Mutex<Vec<Vec<Prefix>>>,
    refuse: Option<Prefix>,
    started: Mutex<Option<mpsc::SyncSender<()>>>,
    gate: Mutex<Option<mpsc::Receiver<()>>>,
}

impl DeceiveBackend for Recording {
    fn deceive_all(&self, items: &[(Prefix, Duration)]) -> Result<(), NftError> {
        if let Some(started) = self.started.lock().unwrap().take() {
            started.send(()).unwrap();
            if let Some(gate) = self.gate.lock().unwrap().take() {
                gate.recv().unwrap();
            }
        }
        self.calls
            .lock()
            .unwrap()
            .push(items.iter().map(|(p, _)| *p).collect());
        match self.refuse {
            Some(bad) if items.iter().any(|(p, _)| *p == bad) => {
                Err(NftError::Nft("Error: Could not process rule".into()))
            }
            _ => Ok(()),
        }
    }
}

/// A worker inside a stalled first transaction (source 1's), its
/// backend, and the gate that lets that transaction finish: what is
/// submitted now queues behind it.
fn stalled(refuse: Option<Prefix>) -> (Arc<Recording>, DeceiveWorker, mpsc::SyncSender<()>) {
    let (started_tx, started) = mpsc::sync_channel(1);
    let (open, gate) = mpsc::sync_channel(1);
    let backend = Arc::new(Recording {
        calls: Mutex::new(Vec::new()),
        refuse,
        started: Mutex::new(Some(started_tx)),
        gate: Mutex::new(Some(gate)),
    });
    let w = DeceiveWorker::start().unwrap();
    assert!(w.submit(job(&backend, p(1))));
    started.recv().unwrap();
    (backend, w, open)
}

fn job(backend: &Arc<Recording>, source: Prefix) -> Job {
    Job {
        backend: backend.clone(),
        source,
        ttl: TTL,
        reason: "rule 4".into(),
    }
}

fn calls(b: &Recording) -> Vec<Vec<Prefix>> {
    b.calls.lock().unwrap().clone()
}

#[test]
fn what_queues_behind_a_slow_nft_goes_in_one_transaction_in_order() {
    let (b, w, open) = stalled(None);
    // Submitting never waits for the stalled nft.
    for i in 2..=6 {
        assert!(w.submit(job(&b, p(i))));
    }
    assert_eq!(w.pending(), 6, "the one in nft and the five behind it");
    open.send(()).unwrap();
    w.barrier();
    assert_eq!(w.pending(), 0);
    assert_eq!(
        calls(&b),
        vec![vec![p(1)], (2..=6).map(p).collect::<Vec<_>>()]
    );
    let done = w.take_done();
    let order: Vec<Prefix> = done.iter().map(|d| d.source).collect();
    assert_eq!(order, (1..=6).map(p).collect::<Vec<_>>());
    assert!(done.iter().all(|d| d.result.is_ok() && d.ttl == TTL));
    assert!(w.take_done().is_empty(), "each outcome is handed out once");
}

#[test]
fn a_refused_transaction_is_retried_per_source_and_fails_only_the_bad_one() {
    let (b, w, open) = stalled(Some(p(7)));
    for i in [2, 7, 3] {
        assert!(w.submit(job(&b, p(i))));
    }
    open.send(()).unwrap();
    w.barrier();
    assert_eq!(
        calls(&b),
        vec![
            vec![p(1)],
            vec![p(2), p(7), p(3)],
            vec![p(2)],
            vec![p(7)],
            vec![p(3)]
        ]
    );
    let done = w.take_done();
    let failed: Vec<(Prefix, String)> = done
        .iter()
        .filter_map(|d| d.result.as_ref().err().map(|e| (d.source, e.to_string())))
        .collect();
    assert_eq!(
        failed,
        vec![(
            p(7),
            "nft failed: Error: Could not process rule".to_string()
        )]
    );
    assert_eq!(done.len(), 4);
    assert_eq!(done[2].reason, "rule 4");
}

#[test]
fn a_full_queue_refuses_the_job_instead_of_waiting() {
    let (b, w, open) = stalled(None);
    for _ in 0..QUEUE_JOBS {
        assert!(w.submit(job(&b, p(2))));
    }
    assert!(!w.submit(job(&b, p(3))), "the queue is full");
    assert_eq!(w.pending(), 1 + QUEUE_JOBS, "a refused job is not counted");
    open.send(()).unwrap();
    w.barrier();
    let done = w.take_done();
    assert_eq!(done.len(), 1 + QUEUE_JOBS);
    assert!(done.iter().all(|d| d.source != p(3)));
    // At most MAX_BATCH sources per transaction.
    let sizes: Vec<usize> = calls(&b).iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 1 + QUEUE_JOBS);
    assert!(sizes.iter().all(|n| *n <= MAX_BATCH), "{sizes:?}");
}

#[test]
fn dropping_the_worker_applies_what_is_still_queued() {
    let (b, w, open) = stalled(None);
    for i in 2..=4 {
        assert!(w.submit(job(&b, p(i))));
    }
    open.send(()).unwrap();
    drop(w);
    let applied: Vec<Prefix> = calls(&b).into_iter().flatten().collect();
    assert_eq!(applied, (1..=4).map(p).collect::<Vec<_>>());
}
