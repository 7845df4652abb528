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

mod codec;
mod event;
mod query;
mod retention;
#[cfg(test)]
mod tests;

use codec::{decode, encode, record_bytes, validate_event};
pub use event::{EventQuery, JournalEvent, NewEvent, Retention};
use query::Filter;

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

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
}
