//! Corrupt records, bad retention settings, and a SIGKILL mid-append.
use super::*;

#[test]
fn corrupt_records_are_reported_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    {
        let j = Journal::open(&path, Retention::default()).unwrap();
        j.append_batch((0..3).map(ev_recent).collect()).unwrap();
    }
    {
        // Damage record 1 behind the journal's back.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(EVENTS)
            .unwrap()
            .insert(1u64, [FORMAT_VERSION, 0xff, 0xff].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let j = Journal::open(&path, Retention::default()).unwrap();
    assert!(matches!(
        j.get(1).unwrap_err(),
        JournalError::Corrupt { id: 1, .. }
    ));
    assert_is(&j.get(2).unwrap().unwrap(), 2, &ev_recent(2));
    let e = j.query(&EventQuery::default()).unwrap_err();
    assert!(matches!(e, JournalError::Corrupt { id: 1, .. }), "{e:?}");
}

#[test]
fn open_rejects_zero_retention() {
    let dir = tempfile::tempdir().unwrap();
    for r in [
        Retention {
            max_age: Duration::ZERO,
            max_bytes: 1 << 20,
        },
        Retention {
            max_age: Duration::from_secs(1),
            max_bytes: 0,
        },
    ] {
        assert!(matches!(
            Journal::open(dir.path().join("j"), r),
            Err(JournalError::InvalidRetention(_))
        ));
    }
}

const CRASH_CHILD_ENV: &str = "PHANTOMNET_JOURNAL_CRASH_CHILD";
const CRASH_BASE_ENV: &str = "PHANTOMNET_JOURNAL_CRASH_BASE";
const CRASH_CHILD_TEST: &str = "journal::tests::durability::crash_child_appends_until_killed";

/// Not a test on its own: the child process of
/// `sigkill_mid_append_loses_nothing`, which re-runs this test binary with
/// only this (ignored) test and the journal path in the environment.
#[test]
#[ignore = "child process of sigkill_mid_append_loses_nothing"]
fn crash_child_appends_until_killed() {
    // Run on its own (e.g. `--include-ignored`), it has nothing to do.
    let Some(path) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let base: u64 = std::env::var(CRASH_BASE_ENV).unwrap().parse().unwrap();
    let j = Journal::open(path, Retention::default()).unwrap();
    let mut next = j.len().unwrap();
    let stdout = std::io::stdout();
    loop {
        let id = j.append(ev_at(next, base + next)).unwrap();
        assert_eq!(id, next);
        let mut out = stdout.lock();
        writeln!(out, "committed {id}").unwrap();
        out.flush().unwrap();
        next += 1;
    }
}

#[test]
fn sigkill_mid_append_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let exe = std::env::current_exe().unwrap();
    let base = base();
    let mut acknowledged: Option<u64> = None;
    for round in 0..4u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                CRASH_CHILD_TEST,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_ENV, &path)
            .env(CRASH_BASE_ENV, base.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Kill after a different number of commits each round, while the
        // child is in the middle of its next append.
        let want = 40 + round * 23;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // libtest may print "test name ... " on the same line first.
            let Some((_, id)) = line.split_once("committed ") else {
                continue;
            };
            acknowledged = Some(id.parse().unwrap());
            seen += 1;
            if seen == want {
                break;
            }
        }
        assert_eq!(seen, want, "child stopped early in round {round}");
        std::thread::sleep(Duration::from_micros(round * 300));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let j = Journal::open(&path, Retention::default()).unwrap();
        let len = j.len().unwrap();
        let last_ack = acknowledged.unwrap();
        // Every acknowledged append is there; at most the appends after it
        // that committed before the kill are extra.
        assert!(
            len > last_ack,
            "round {round}: {len} events, acked id {last_ack}"
        );
        let all = all_newest_first(
            &j,
            &EventQuery {
                page_size: MAX_PAGE_SIZE,
                ..Default::default()
            },
        );
        assert_eq!(all.len() as u64, len);
        for (k, e) in all.iter().rev().enumerate() {
            // Contiguous from 0 and each record intact.
            assert_is(e, k as u64, &ev_at(k as u64, base + k as u64));
        }
        // The journal keeps working after recovery (the next child goes on
        // from here).
        assert_eq!(j.append(ev_at(len, base + len)).unwrap(), len);
        eprintln!("crash round {round}: acked {last_ack}, found {len}");
    }
}
