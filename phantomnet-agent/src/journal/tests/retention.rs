//! Retention by age and by size.
use super::*;

#[test]
fn retention_by_age_removes_only_old_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let day = 24 * 3_600 * 1_000_000_000u64;
    let now = now_ns();
    {
        let j = Journal::open(&path, Retention::default()).unwrap();
        for i in 0..5 {
            j.append(ev_at(i, now - 10 * day + i)).unwrap();
        }
        for i in 5..8 {
            j.append(ev_at(i, now - 2 * day)).unwrap();
        }
        for i in 8..12 {
            j.append(ev_at(i, now - 3_600_000_000_000)).unwrap();
        }
        // Within the 7-day default nothing but the 10-day-old events go.
        assert_eq!(j.enforce_retention().unwrap(), 5);
        assert_eq!(j.len().unwrap(), 7);
        assert_eq!(j.enforce_retention().unwrap(), 0);
        // Retention measured from a later "now".
        let later = SystemTime::now() + Duration::from_secs(6 * 24 * 3_600);
        assert_eq!(j.enforce_retention_at(later).unwrap(), 3);
    }
    // Reopening with a shorter max_age applies it at once.
    let j = Journal::open(
        &path,
        Retention {
            max_age: Duration::from_secs(60),
            max_bytes: 1 << 20,
        },
    )
    .unwrap();
    assert!(j.is_empty().unwrap());
}

#[test]
fn append_runs_retention_every_n_events() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(
        dir.path().join("j"),
        Retention {
            max_age: Duration::from_secs(3_600),
            max_bytes: 1 << 20,
        },
    )
    .unwrap();
    let old = now_ns() - 2 * 3_600 * 1_000_000_000;
    let batch: Vec<NewEvent> = (0..RETENTION_EVERY - 1).map(|i| ev_at(i, old)).collect();
    j.append_batch(batch).unwrap();
    assert_eq!(j.len().unwrap(), RETENTION_EVERY - 1);
    // The RETENTION_EVERY-th append triggers retention: all old events go.
    j.append(ev_at(RETENTION_EVERY - 1, old)).unwrap();
    assert_eq!(j.len().unwrap(), 0);
    j.append(ev_recent(RETENTION_EVERY)).unwrap();
    assert_eq!(j.len().unwrap(), 1);
}

#[test]
fn retention_by_size_keeps_the_file_under_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let max_bytes = 1u64 << 20;
    let retention = Retention {
        max_age: Duration::from_secs(7 * 24 * 3_600),
        max_bytes,
    };
    let j = Journal::open(&path, retention).unwrap();
    let per_event = record_bytes(encode(&ev_recent(0)).len());
    // Four times the budget, in batches (retention runs between them).
    let total = 4 * max_bytes / per_event;
    let mut next = 0;
    while next < total {
        let end = (next + 200).min(total);
        j.append_batch((next..end).map(ev_recent).collect())
            .unwrap();
        next = end;
        // Between retention runs the file may be one growth step (redb
        // doubles it) above the budget, never more.
        assert!(
            j.file_bytes().unwrap() <= 2 * max_bytes,
            "file grew to {} during appends",
            j.file_bytes().unwrap()
        );
    }
    j.enforce_retention().unwrap();
    let stored = j.stored_bytes().unwrap();
    let file = j.file_bytes().unwrap();
    let len = j.len().unwrap();
    assert!(stored <= max_bytes / 2, "stored {stored}");
    assert!(file <= max_bytes, "file {file} > {max_bytes}");
    assert!(len < total && len > 0, "{len} of {total}");
    // What remains is exactly the newest events, intact.
    let all = all_newest_first(
        &j,
        &EventQuery {
            page_size: MAX_PAGE_SIZE,
            ..Default::default()
        },
    );
    assert_eq!(all.len() as u64, len);
    for (k, e) in all.iter().enumerate() {
        let id = total - 1 - k as u64;
        assert_is(e, id, &ev_recent(id));
    }
    let expected_stored: u64 = all
        .iter()
        .map(|e| record_bytes(encode(&ev_recent(e.id)).len()))
        .sum();
    assert_eq!(stored, expected_stored);
    eprintln!("size retention: {len} of {total} events kept, stored {stored}, file {file}");
    drop(j);

    // The bound holds after reopening, and the counter is persistent.
    let j = Journal::open(&path, retention).unwrap();
    assert_eq!(j.len().unwrap(), len);
    assert_eq!(j.stored_bytes().unwrap(), stored);
    assert!(j.file_bytes().unwrap() <= max_bytes);
}

#[test]
fn retention_deletes_more_when_compaction_is_not_enough() {
    // So small a budget that redb's page overhead outweighs the stored
    // share: retention must delete below the stored budget to fit the file.
    let dir = tempfile::tempdir().unwrap();
    let max_bytes: u64 = 32 * 1024;
    let j = Journal::open(
        dir.path().join("j"),
        Retention {
            max_age: Duration::from_secs(3_600 * 24),
            max_bytes,
        },
    )
    .unwrap();
    let n = 1_000;
    j.append_batch((0..n).map(ev_recent).collect()).unwrap();
    j.enforce_retention().unwrap();
    let len = j.len().unwrap();
    let file = j.file_bytes().unwrap();
    let stored = j.stored_bytes().unwrap();
    assert!(file <= max_bytes, "file {file}");
    let stored_budget = max_bytes * STORED_SHARE_NUM / STORED_SHARE_DEN;
    assert!(
        stored < stored_budget / 100 * LOW_WATER_PERCENT,
        "stored {stored}: the stored budget alone would have sufficed"
    );
    // What is left is the newest events, contiguous.
    assert!(len > 0);
    assert_eq!(j.get(n - 1).unwrap().unwrap().id, n - 1);
    assert_eq!(j.get(n - len).unwrap().unwrap().id, n - len);
    assert_eq!(j.get(n - len - 1).unwrap(), None);
}
