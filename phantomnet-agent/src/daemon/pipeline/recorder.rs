//! Journaling off the decision path.
//!
//! The journal commits every append with an fsync (`journal`, "Crash
//! safety"). While the decision loop waited for it, no sample was read: a
//! new source's flood went unenforced until the commit was done (the
//! 10–150 ms tail of `cargo xtask bench-tte`, where replaying the same
//! capture decides every source within 1 ms; docs/BENCHMARKS.md). So the
//! loop hands its records to one writer thread and goes back to the ring
//! buffer. The writer coalesces whatever has queued into one commit, in
//! order.
//!
//! What this costs: an event is durable a commit later than the
//! enforcement it records (the enforcement itself is in the pinned maps
//! either way), and a SIGKILL loses the records still queued. On a normal
//! stop the queue is drained: dropping the [`Recorder`] queues a stop
//! behind what is there and waits for the writer. The queue is bounded
//! ([`QUEUE_BATCHES`]); when the writer is that far behind, new records
//! are dropped and counted (`phantomnet_journal_queue_dropped_total`),
//! never waited for.
use std::sync::{
    Arc,
    mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
};
use std::thread::JoinHandle;

use tracing::warn;

use super::super::core::AgentCore;
use crate::journal::NewEvent;

/// Where the writer puts records: the agent's journal (and watchers).
pub trait Sink: Send + Sync + 'static {
    /// Journals `events`, in order, in one commit.
    fn write(&self, events: Vec<NewEvent>);
    /// `n` events were dropped because the queue was full.
    fn dropped(&self, n: u64);
}

impl Sink for AgentCore {
    fn write(&self, events: Vec<NewEvent>) {
        if let Err(e) = self.record(events) {
            warn!(error = %e, "journal write failed");
        }
    }

    fn dropped(&self, n: u64) {
        self.metrics().journal_queue_dropped(n);
    }
}

/// Batches (one per decision-loop batch) the writer may be behind.
pub const QUEUE_BATCHES: usize = 4096;
/// The most events the writer commits at once.
const MAX_COMMIT: usize = 4096;

/// What the queue carries.
enum Msg {
    Events(Vec<NewEvent>),
    /// Journal what came before, then stop.
    Stop,
}

/// The writer thread and the queue to it.
pub struct Recorder {
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// A handle to submit records from the decision task.
#[derive(Clone)]
pub struct RecordQueue {
    tx: SyncSender<Msg>,
    sink: Arc<dyn Sink>,
}

impl Recorder {
    /// Starts the writer, with room for [`QUEUE_BATCHES`] batches; with the
    /// agent's core as the sink it journals through [`AgentCore::record`]
    /// (which also tells watchers).
    pub fn start(sink: Arc<dyn Sink>) -> std::io::Result<(Recorder, RecordQueue)> {
        Recorder::with_capacity(sink, QUEUE_BATCHES)
    }

    pub(crate) fn with_capacity(
        sink: Arc<dyn Sink>,
        batches: usize,
    ) -> std::io::Result<(Recorder, RecordQueue)> {
        let (tx, rx) = sync_channel(batches);
        let writer = sink.clone();
        let thread = std::thread::Builder::new()
            .name("pn-journal".into())
            .spawn(move || write_all(&*writer, &rx))?;
        let queue = RecordQueue {
            tx: tx.clone(),
            sink,
        };
        Ok((
            Recorder {
                tx,
                thread: Some(thread),
            },
            queue,
        ))
    }
}

impl Drop for Recorder {
    /// Waits until the writer has journaled what is queued, then stops it.
    /// (Records a decision still running submits after this are counted
    /// as dropped.)
    fn drop(&mut self) {
        // Blocks only while the queue is full, i.e. until the writer has
        // made room; fails only if the writer is gone.
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            warn!("the journal writer panicked");
        }
    }
}

impl RecordQueue {
    /// Queues `events` for the journal without waiting; drops and counts
    /// them if the writer is [`QUEUE_BATCHES`] behind.
    pub fn submit(&self, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        match self.tx.try_send(Msg::Events(events)) {
            Ok(()) => {}
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => {
                if let Msg::Events(ev) = m {
                    self.sink.dropped(ev.len() as u64);
                }
            }
        }
    }
}

fn write_all(sink: &dyn Sink, rx: &Receiver<Msg>) {
    let mut stop = false;
    while !stop {
        let Ok(Msg::Events(mut events)) = rx.recv() else {
            return;
        };
        // Whatever else has queued goes into the same commit.
        while events.len() < MAX_COMMIT {
            match rx.try_recv() {
                Ok(Msg::Events(more)) => events.extend(more),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        sink.write(events);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Mutex;
    use std::sync::mpsc::{Sender, channel};

    use phantomnet_common::{Action, EventAction};

    use super::*;

    /// A sink whose writes wait until the test lets each one through, as a
    /// slow disk's fsync would. It says when a write has begun, and keeps
    /// what it wrote (each commit's event times) and the dropped count.
    struct Gated {
        entered: Mutex<Sender<()>>,
        gate: Mutex<Receiver<()>>,
        written: Mutex<Vec<Vec<u64>>>,
        dropped: Mutex<u64>,
    }

    impl Sink for Gated {
        fn write(&self, events: Vec<NewEvent>) {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.gate.lock().unwrap().recv();
            let times = events.iter().map(|e| e.time_unix_ns).collect();
            self.written.lock().unwrap().push(times);
        }
        fn dropped(&self, n: u64) {
            *self.dropped.lock().unwrap() += n;
        }
    }

    /// A gated sink, the receiver of its "write begun" signals, and the
    /// sender that lets one write through per message.
    fn gated() -> (Arc<Gated>, Receiver<()>, Sender<()>) {
        let (entered_tx, entered) = channel();
        let (open, gate) = channel();
        let sink = Arc::new(Gated {
            entered: Mutex::new(entered_tx),
            gate: Mutex::new(gate),
            written: Mutex::new(Vec::new()),
            dropped: Mutex::new(0),
        });
        (sink, entered, open)
    }

    fn events(first: u64, n: u64) -> Vec<NewEvent> {
        (first..first + n)
            .map(|t| {
                NewEvent::unassessed(
                    t,
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    EventAction::Apply(Action::Throttle),
                    "test",
                    format!("event {t}"),
                )
            })
            .collect()
    }

    #[test]
    fn a_stalled_writer_holds_up_no_submit_drops_what_overflows_and_drains_on_stop() {
        let (sink, entered, open) = gated();
        let (recorder, queue) = Recorder::with_capacity(sink.clone(), 4).unwrap();
        // The writer takes the first batch and stalls inside its write.
        queue.submit(events(0, 1));
        entered.recv().unwrap();
        // Four batches fill the queue; the next two find it full and are
        // dropped and counted: submit returned every time without waiting.
        for b in 1..=4 {
            queue.submit(events(b * 10, 2));
        }
        queue.submit(events(100, 3));
        queue.submit(events(200, 5));
        queue.submit(Vec::new());
        assert_eq!(*sink.dropped.lock().unwrap(), 8);
        assert!(sink.written.lock().unwrap().is_empty());
        // Let the writes through, then stop: everything queued before the
        // stop is journaled, in order, the four waiting batches in one
        // commit.
        for _ in 0..8 {
            open.send(()).unwrap();
        }
        drop(queue);
        drop(recorder);
        assert_eq!(
            *sink.written.lock().unwrap(),
            vec![vec![0], vec![10, 11, 20, 21, 30, 31, 40, 41]]
        );
        assert_eq!(*sink.dropped.lock().unwrap(), 8);
    }

    #[test]
    fn records_submitted_after_the_writer_stopped_are_counted_as_dropped() {
        let (sink, _entered, open) = gated();
        let (recorder, queue) = Recorder::with_capacity(sink.clone(), 4).unwrap();
        open.send(()).unwrap();
        queue.submit(events(0, 2));
        drop(recorder);
        queue.submit(events(5, 3));
        assert_eq!(*sink.written.lock().unwrap(), vec![vec![0, 1]]);
        assert_eq!(*sink.dropped.lock().unwrap(), 3);
    }
}
