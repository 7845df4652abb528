//! Retention: by age, by size, and compaction.
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableTable, ReadableTableMetadata};

use super::{
    EVENTS, Journal, LOW_WATER_PERCENT, META, META_STORED_BYTES, Result, STORED_SHARE_DEN,
    STORED_SHARE_NUM, decode, record_bytes,
};

impl Journal {
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
