//! The event journal: every enforcement decision, persisted in an embedded
//! [redb] database so operators can page through what the agent did and why.
//!
//! - **Storage.** One redb file. Table `events` maps the event id (`u64`,
//!   assigned here, strictly increasing, never reused) to the record: a format
//!   byte ([`FORMAT_VERSION`]) followed by the event in [postcard] (compact,
//!   serde-based, with a stable specified wire format — the same encoding the
//!   detection models use). Table `meta` holds the next id and the total
//!   stored bytes, updated in the same transaction as the events.
//! - **Crash safety.** Each [`Journal::append`] is one redb write transaction
//!   committed with `Durability::Immediate` (fsync) before it returns: after
//!   a crash or SIGKILL the journal reopens with every acknowledged event
//!   intact and the ids contiguous; an interrupted append leaves no trace.
//!   redb checksums its pages and repairs its allocator state on the next
//!   open.
//! - **Retention.** [`Journal::enforce_retention`] deletes events older than
//!   `max_age` (oldest first), then the oldest events until the stored bytes
//!   fit the budget, and compacts the file when it is above `max_bytes`. It
//!   runs on open and every [`RETENTION_EVERY`] appends.
//! - **Queries** return newest first, paged by id (see [`EventQuery`]).

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use phantomnet_common::EventAction;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

/// The first byte of every stored record.
pub const FORMAT_VERSION: u8 = 1;
/// Retention runs after this many appends.
pub const RETENTION_EVERY: u64 = 256;
/// The largest page a query returns.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The verdicts an event may record; `NONE` for an operator's action,
/// which no threat assessment preceded.
pub const VERDICTS: [&str; 5] = ["SAFE", "WARNING", "HIGH", "CRITICAL", "NONE"];

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_NEXT_ID: &str = "next_id";
const META_STORED_BYTES: &str = "stored_bytes";

/// Stored events are kept within this share of `max_bytes`: redb's B-tree
/// pages, copy-on-write commits and free-page reuse need the rest, so the
/// file stays under `max_bytes` (measured: see the size-retention test).
const STORED_SHARE_NUM: u64 = 1;
const STORED_SHARE_DEN: u64 = 2;
/// Size retention deletes down to this share of the stored budget, so it
/// does not run again on the very next append.
const LOW_WATER_PERCENT: u64 = 90;

/// How long events are kept and how large the journal file may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub max_bytes: u64,
}

impl Default for Retention {
    /// 7 days, 256 MiB (the configuration defaults).
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 256 << 20,
        }
    }
}

/// An event to append: everything but the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub time_unix_ns: u64,
    pub source: IpAddr,
    #[serde(with = "action_by_name")]
    pub action: EventAction,
    /// One of [`VERDICTS`].
    pub verdict: String,
    pub confidence: f64,
    pub anomaly: f64,
    pub threat: f64,
    /// The decision rule that fired.
    pub rule: String,
    pub reason: String,
    pub features: Vec<f64>,
}

impl NewEvent {
    /// An action no threat assessment preceded (verdict `NONE`, zero scores,
    /// no features): an operator's, or an integration's, named by `rule`
    /// ("api", "crowdsec", a feed's label).
    pub fn unassessed(
        time_unix_ns: u64,
        source: IpAddr,
        action: EventAction,
        rule: &str,
        reason: String,
    ) -> NewEvent {
        NewEvent {
            time_unix_ns,
            source,
            action,
            verdict: "NONE".to_string(),
            confidence: 0.0,
            anomaly: 0.0,
            threat: 0.0,
            rule: rule.to_string(),
            reason,
            features: Vec::new(),
        }
    }
}

/// A journaled event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// Assigned by the journal: strictly increasing, never reused.
    pub id: u64,
    pub time_unix_ns: u64,
    pub source: IpAddr,
    #[serde(with = "action_by_name")]
    pub action: EventAction,
    pub verdict: String,
    pub confidence: f64,
    pub anomaly: f64,
    pub threat: f64,
    pub rule: String,
    pub reason: String,
    pub features: Vec<f64>,
}

impl JournalEvent {
    /// The event `e` as stored under `id`.
    pub fn from_new(id: u64, e: NewEvent) -> JournalEvent {
        JournalEvent {
            id,
            time_unix_ns: e.time_unix_ns,
            source: e.source,
            action: e.action,
            verdict: e.verdict,
            confidence: e.confidence,
            anomaly: e.anomaly,
            threat: e.threat,
            rule: e.rule,
            reason: e.reason,
            features: e.features,
        }
    }
}

/// A page of events, newest first (highest id first).
///
/// Pass the returned token as `page_token` for the next page: it is the id of
/// the last event returned, and the next page holds only smaller ids, so
/// pages never repeat or skip an event even while new ones are appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events with `time_unix_ns >= since`.
    pub since: Option<u64>,
    /// Only events with `time_unix_ns < until`.
    pub until: Option<u64>,
    /// Only sources inside this prefix.
    pub source: Option<IpNet>,
    /// Only this action.
    pub action: Option<EventAction>,
    /// Only this verdict (case-insensitive).
    pub verdict: Option<String>,
    /// 1..=[`MAX_PAGE_SIZE`].
    pub page_size: usize,
    /// Continue after this id (exclusive); `None` starts at the newest.
    pub page_token: Option<u64>,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            since: None,
            until: None,
            source: None,
            action: None,
            verdict: None,
            page_size: 100,
            page_token: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: cannot open: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("journal {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal storage error: {0}")]
    Storage(#[from] Box<redb::Error>),
    #[error("journal event {id} is corrupt: {reason}")]
    Corrupt { id: u64, reason: String },
    #[error("invalid event (#{index} of the batch): {field}: {reason}")]
    InvalidEvent {
        index: usize,
        field: &'static str,
        reason: String,
    },
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("invalid retention: {0}")]
    InvalidRetention(String),
}

/// `?` on any redb error type.
macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for JournalError {
            fn from(e: $t) -> Self {
                JournalError::Storage(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}
storage_from!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::CompactionError
);

pub type Result<T, E = JournalError> = std::result::Result<T, E>;

/// The event journal. All methods take `&self`; share it in an `Arc`.
pub struct Journal {
    /// Write-locked only to compact (which needs no open transaction).
    db: RwLock<Database>,
    path: PathBuf,
    retention: Retention,
    appends_since_retention: AtomicU64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens (creating if needed, with its parent directory) the journal at
    /// `path`, and applies retention once.
    pub fn open(path: impl AsRef<Path>, retention: Retention) -> Result<Journal> {
        let path = path.as_ref().to_path_buf();
        if retention.max_bytes == 0 {
            return Err(JournalError::InvalidRetention(
                "max_bytes must be greater than 0".into(),
            ));
        }
        if retention.max_age.is_zero() {
            return Err(JournalError::InvalidRetention(
                "max_age must be greater than 0".into(),
            ));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| JournalError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let db = Database::create(&path).map_err(|e| JournalError::Open {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        // Make sure both tables exist so readers never see "no table".
        let txn = db.begin_write()?;
        txn.open_table(EVENTS)?;
        txn.open_table(META)?;
        txn.commit()?;
        let journal = Journal {
            db: RwLock::new(db),
            path,
            retention,
            appends_since_retention: AtomicU64::new(0),
        };
        let removed = journal.enforce_retention()?;
        tracing::info!(
            path = %journal.path.display(),
            events = journal.len()?,
            removed,
            "journal opened"
        );
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    fn db(&self) -> std::sync::RwLockReadGuard<'_, Database> {
        // A panic while holding the lock cannot leave redb inconsistent (its
        // transactions are atomic), so a poisoned lock is still usable.
        self.db.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one event durably and returns its id.
    pub fn append(&self, event: NewEvent) -> Result<u64> {
        let ids = self.append_batch(vec![event])?;
        Ok(ids.start)
    }

    /// Appends events in one transaction (all or none) and returns their ids.
    /// Any invalid event rejects the whole batch.
    pub fn append_batch(&self, events: Vec<NewEvent>) -> Result<std::ops::Range<u64>> {
        let mut records = Vec::with_capacity(events.len());
        for (index, e) in events.iter().enumerate() {
            validate_event(index, e)?;
            records.push(encode(e));
        }
        let ids = {
            let db = self.db();
            let txn = db.begin_write()?;
            let ids;
            {
                let mut meta = txn.open_table(META)?;
                let mut table = txn.open_table(EVENTS)?;
                let first = meta.get(META_NEXT_ID)?.map_or(0, |v| v.value());
                let mut stored = meta.get(META_STORED_BYTES)?.map_or(0, |v| v.value());
                let mut id = first;
                for r in &records {
                    table.insert(id, r.as_slice())?;
                    stored += record_bytes(r.len());
                    id += 1;
                }
                meta.insert(META_NEXT_ID, id)?;
                meta.insert(META_STORED_BYTES, stored)?;
                ids = first..id;
            }
            txn.commit()?;
            ids
        };
        let n = ids.end - ids.start;
        let before = self.appends_since_retention.fetch_add(n, Ordering::Relaxed);
        if before / RETENTION_EVERY != (before + n) / RETENTION_EVERY {
            // The events are committed; a retention failure is reported but
            // does not fail the append.
            if let Err(e) = self.enforce_retention() {
                tracing::warn!(error = %e, "journal retention failed");
            }
        }
        Ok(ids)
    }

    /// How many events the journal holds.
    pub fn len(&self) -> Result<u64> {
        let db = self.db();
        let txn = db.begin_read()?;
        Ok(txn.open_table(EVENTS)?.len()?)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The bytes the stored events take (keys plus records), which size
    /// retention keeps within half of `max_bytes`.
    pub fn stored_bytes(&self) -> Result<u64> {
        let db = self.db();
        let txn = db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(META_STORED_BYTES)?.map_or(0, |v| v.value()))
    }

    /// The size of the journal file on disk.
    pub fn file_bytes(&self) -> Result<u64> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// One event by id.
    pub fn get(&self, id: u64) -> Result<Option<JournalEvent>> {
        let db = self.db();
        let txn = db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let Some(v) = table.get(id)? else {
            return Ok(None);
        };
        decode(id, v.value()).map(Some)
    }

    /// A page of events matching `q`, newest first, and the token for the
    /// next page (`None` when no further event matches).
    pub fn query(&self, q: &EventQuery) -> Result<(Vec<JournalEvent>, Option<u64>)> {
        let filter = Filter::new(q)?;
        let db = self.db();
        let txn = db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let range = match q.page_token {
            Some(token) => table.range(..token)?,
            None => table.range::<u64>(..)?,
        };
        let mut page = Vec::with_capacity(q.page_size.min(64));
        for entry in range.rev() {
            let (k, v) = entry?;
            let event = decode(k.value(), v.value())?;
            if !filter.matches(&event) {
                continue;
            }
            if page.len() == q.page_size {
                // One more match exists: there is a next page.
                let token = page.last().map(|e: &JournalEvent| e.id);
                return Ok((page, token));
            }
            page.push(event);
        }
        Ok((page, None))
    }

    /// Deletes events older than `max_age`, then the oldest events until the
    /// stored bytes fit the budget (half of `max_bytes`); if the file is
    /// still above `max_bytes`, compacts it, deleting more of the oldest
    /// events if compaction alone is not enough. Returns how many events
    /// were deleted.
    pub fn enforce_retention(&self) -> Result<usize> {
        self.enforce_retention_at(SystemTime::now())
    }

    /// [`enforce_retention`](Self::enforce_retention) with `now` as the
    /// current time.
    pub fn enforce_retention_at(&self, now: SystemTime) -> Result<usize> {
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let max_age_ns = u64::try_from(self.retention.max_age.as_nanos()).unwrap_or(u64::MAX);
        let cutoff = now_ns.saturating_sub(max_age_ns);
        let max_bytes = self.retention.max_bytes;
        let budget = max_bytes / STORED_SHARE_DEN * STORED_SHARE_NUM;

        let by_age = self.delete_older_than(cutoff)?;
        let mut by_size = 0;
        if self.stored_bytes()? > budget {
            by_size += self.delete_oldest_until(budget / 100 * LOW_WATER_PERCENT)?;
        }
        self.appends_since_retention.store(0, Ordering::Relaxed);

        // The file only shrinks by compaction. If it is above the budget
        // even after compacting, the events take more room than the stored
        // share predicts: delete in proportion and compact again.
        for _ in 0..4 {
            if self.file_bytes()? <= max_bytes {
                break;
            }
            self.compact()?;
            let file = self.file_bytes()?;
            if file <= max_bytes {
                break;
            }
            let stored = self.stored_bytes()?;
            let target = u64::try_from(
                u128::from(stored) * u128::from(max_bytes) / u128::from(file) * 9 / 10,
            )
            .unwrap_or(0);
            by_size += self.delete_oldest_until(target)?;
        }
        if by_age + by_size > 0 {
            tracing::debug!(by_age, by_size, "journal retention deleted events");
        }
        Ok(by_age + by_size)
    }

    /// Deletes, from the oldest id, every event stamped before `cutoff` up to
    /// the first one that is not (events arrive in time order; a stray old
    /// timestamp behind a newer one goes when it reaches the front).
    fn delete_older_than(&self, cutoff: u64) -> Result<usize> {
        self.delete_from_front(
            |id, record| match decode(id, record) {
                Ok(e) => e.time_unix_ns < cutoff,
                Err(e) => {
                    // Its age is unknown: leave it to size retention.
                    tracing::warn!(error = %e, "journal age retention stopped at a corrupt event");
                    false
                }
            },
            None,
        )
    }

    /// Deletes the oldest events until the stored bytes are at most `target`.
    fn delete_oldest_until(&self, target: u64) -> Result<usize> {
        self.delete_from_front(|_, _| true, Some(target))
    }

    /// Deletes events from the front (lowest id) while `doomed` says so and,
    /// with `until_stored`, while the stored bytes are above it. One
    /// transaction; the stored-bytes counter is updated with it.
    fn delete_from_front(
        &self,
        mut doomed: impl FnMut(u64, &[u8]) -> bool,
        until_stored: Option<u64>,
    ) -> Result<usize> {
        let db = self.db();
        let txn = db.begin_write()?;
        let mut deleted = 0usize;
        {
            let mut meta = txn.open_table(META)?;
            let mut table = txn.open_table(EVENTS)?;
            let mut stored = meta.get(META_STORED_BYTES)?.map_or(0, |v| v.value());
            loop {
                if until_stored.is_some_and(|t| stored <= t) {
                    break;
                }
                let front = match table.first()? {
                    Some((k, v)) => {
                        let id = k.value();
                        doomed(id, v.value()).then_some((id, v.value().len()))
                    }
                    None => None,
                };
                let Some((id, len)) = front else { break };
                table.remove(id)?;
                stored = stored.saturating_sub(record_bytes(len));
                deleted += 1;
            }
            if table.is_empty()? {
                stored = 0;
            }
            meta.insert(META_STORED_BYTES, stored)?;
        }
        if deleted == 0 {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok(deleted)
    }

    /// Rewrites the file to release free pages. Waits for running queries
    /// and appends.
    fn compact(&self) -> Result<()> {
        let before = self.file_bytes()?;
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        // Each call moves pages towards the front; repeat while it helps.
        while db.compact()? {}
        drop(db);
        let after = self.file_bytes()?;
        tracing::debug!(before, after, "journal compacted");
        Ok(())
    }
}

/// Key (8 bytes) plus record: what the `stored_bytes` meta counts.
fn record_bytes(record_len: usize) -> u64 {
    8 + record_len as u64
}

fn encode(e: &NewEvent) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serialising owned strings, floats and an address into a Vec cannot fail.
    postcard::to_io(e, &mut out).expect("postcard encoding into a Vec");
    out
}

fn decode(id: u64, bytes: &[u8]) -> Result<JournalEvent> {
    let corrupt = |reason: String| JournalError::Corrupt { id, reason };
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty record".into()))?;
    if version != FORMAT_VERSION {
        return Err(corrupt(format!("unknown format version {version}")));
    }
    let (event, rest): (NewEvent, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(e.to_string()))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} trailing bytes", rest.len())));
    }
    Ok(JournalEvent::from_new(id, event))
}

/// An [`EventAction`] is stored as its name (the journal's format since
/// version 1, when actions were strings).
mod action_by_name {
    use phantomnet_common::EventAction;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(a: &EventAction, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EventAction, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        EventAction::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown action {name:?}")))
    }
}

fn validate_event(index: usize, e: &NewEvent) -> Result<()> {
    let bad = |field, reason: String| JournalError::InvalidEvent {
        index,
        field,
        reason,
    };
    if !VERDICTS.contains(&e.verdict.as_str()) {
        return Err(bad(
            "verdict",
            format!("{:?} is not one of {VERDICTS:?}", e.verdict),
        ));
    }
    Ok(())
}

struct Filter {
    since: u64,
    until: Option<u64>,
    source: Option<IpNet>,
    action: Option<EventAction>,
    verdict: Option<String>,
}

impl Filter {
    fn new(q: &EventQuery) -> Result<Filter> {
        if !(1..=MAX_PAGE_SIZE).contains(&q.page_size) {
            return Err(JournalError::InvalidQuery(format!(
                "page_size {} is outside 1..={MAX_PAGE_SIZE}",
                q.page_size
            )));
        }
        let since = q.since.unwrap_or(0);
        let until = q.until;
        if let Some(until) = until.filter(|&u| since > u) {
            return Err(JournalError::InvalidQuery(format!(
                "since {since} is after until {until}"
            )));
        }
        let known = |what: &str, v: &Option<String>, all: &[&str]| -> Result<Option<String>> {
            match v {
                None => Ok(None),
                Some(s) => {
                    let up = s.to_ascii_uppercase();
                    if all.contains(&up.as_str()) {
                        Ok(Some(up))
                    } else {
                        Err(JournalError::InvalidQuery(format!(
                            "{what} {s:?} is not one of {all:?}"
                        )))
                    }
                }
            }
        };
        Ok(Filter {
            since,
            until,
            source: q.source,
            action: q.action,
            verdict: known("verdict", &q.verdict, &VERDICTS)?,
        })
    }

    fn matches(&self, e: &JournalEvent) -> bool {
        e.time_unix_ns >= self.since
            && self.until.is_none_or(|u| e.time_unix_ns < u)
            && self.source.is_none_or(|n| n.contains(&e.source))
            && self.action.is_none_or(|a| a == e.action)
            && self.verdict.as_ref().is_none_or(|v| *v == e.verdict)
    }
}
