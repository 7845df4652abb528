use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use phantomnet_common::{Action, EventAction, RuleKind};

use super::*;

mod durability;
mod retention;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A deterministic event for index `i`, at time `time`.
fn ev_at(i: u64, time: u64) -> NewEvent {
    let source: IpAddr = if i % 5 == 4 {
        format!("2001:db8::{:x}", i % 7).parse().unwrap()
    } else {
        format!("10.0.{}.{}", i % 3, i % 250).parse().unwrap()
    };
    NewEvent {
        time_unix_ns: time,
        source,
        action: EventAction::ALL[(i % 4) as usize],
        verdict: VERDICTS[((i / 4) % 4) as usize].to_string(),
        confidence: (i % 100) as f64 / 100.0,
        anomaly: ((i * 7) % 100) as f64 / 100.0,
        threat: ((i * 13) % 100) as f64 / 100.0,
        rule: format!("rule {}", i % 5 + 1),
        reason: format!("event number {i}"),
        features: (0..20).map(|k| (i * 31 + k) as f64 * 0.5).collect(),
    }
}

/// One hour ago, fixed for the whole test run, so the default 7-day
/// retention keeps events stamped near it.
fn base() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| now_ns() - 3_600 * 1_000_000_000)
}

/// Event `i`, one microsecond after event `i - 1`.
fn ev_recent(i: u64) -> NewEvent {
    ev_at(i, base() + i * 1_000)
}

fn assert_is(e: &JournalEvent, id: u64, expected: &NewEvent) {
    assert_eq!(e.id, id);
    assert_eq!(*e, JournalEvent::from_new(id, expected.clone()));
}

fn open(dir: &tempfile::TempDir) -> Journal {
    Journal::open(dir.path().join("journal"), Retention::default()).unwrap()
}

fn all_newest_first(j: &Journal, q: &EventQuery) -> Vec<JournalEvent> {
    let mut q = q.clone();
    let mut out = Vec::new();
    loop {
        let (page, next) = j.query(&q).unwrap();
        assert!(page.len() <= q.page_size);
        out.extend(page);
        match next {
            Some(t) => q.page_token = Some(t),
            None => return out,
        }
    }
}

#[test]
fn append_assigns_contiguous_ids_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/journal");
    {
        let j = Journal::open(&path, Retention::default()).unwrap();
        assert!(j.is_empty().unwrap());
        for i in 0..10 {
            assert_eq!(j.append(ev_recent(i)).unwrap(), i);
        }
        assert_eq!(
            j.append_batch((10..15).map(ev_recent).collect()).unwrap(),
            10..15
        );
        assert_eq!(j.len().unwrap(), 15);
        assert_is(&j.get(3).unwrap().unwrap(), 3, &ev_recent(3));
        assert_eq!(j.get(15).unwrap(), None);
    }
    let j = Journal::open(&path, Retention::default()).unwrap();
    assert_eq!(j.len().unwrap(), 15);
    for i in 0..15 {
        assert_is(&j.get(i).unwrap().unwrap(), i, &ev_recent(i));
    }
    assert_eq!(j.append(ev_recent(15)).unwrap(), 15);
}

#[test]
fn ids_are_not_reused_after_everything_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(
        dir.path().join("j"),
        Retention {
            max_age: Duration::from_secs(60),
            max_bytes: 1 << 20,
        },
    )
    .unwrap();
    let old = now_ns() - 3_600 * 1_000_000_000;
    for i in 0..5 {
        j.append(ev_at(i, old)).unwrap();
    }
    assert_eq!(j.enforce_retention().unwrap(), 5);
    assert!(j.is_empty().unwrap());
    assert_eq!(j.stored_bytes().unwrap(), 0);
    assert_eq!(j.append(ev_recent(5)).unwrap(), 5);
}

#[test]
fn pagination_is_newest_first_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    j.append_batch((0..25).map(ev_recent).collect()).unwrap();
    let q = EventQuery {
        page_size: 10,
        ..EventQuery::default()
    };
    let (p1, t1) = j.query(&q).unwrap();
    let ids: Vec<u64> = p1.iter().map(|e| e.id).collect();
    assert_eq!(ids, (15..25).rev().collect::<Vec<_>>());
    assert_eq!(t1, Some(15));

    // New events arriving between pages do not shift the next page.
    j.append_batch((25..30).map(ev_recent).collect()).unwrap();
    let (p2, t2) = j
        .query(&EventQuery {
            page_token: t1,
            ..q.clone()
        })
        .unwrap();
    assert_eq!(
        p2.iter().map(|e| e.id).collect::<Vec<_>>(),
        (5..15).rev().collect::<Vec<_>>()
    );
    let (p3, t3) = j
        .query(&EventQuery {
            page_token: t2,
            ..q.clone()
        })
        .unwrap();
    assert_eq!(
        p3.iter().map(|e| e.id).collect::<Vec<_>>(),
        (0..5).rev().collect::<Vec<_>>()
    );
    assert_eq!(t3, None);
    for e in p1.iter().chain(&p2).chain(&p3) {
        assert_is(e, e.id, &ev_recent(e.id));
    }

    // A page that ends exactly at the last event has no next token.
    let (p, t) = j
        .query(&EventQuery {
            page_size: 30,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!((p.len(), t), (30, None));
    let (p, t) = j
        .query(&EventQuery {
            page_size: 29,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!((p.len(), t), (29, Some(1)));
}

#[test]
fn filters_select_exactly_the_matching_events() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let n = 200;
    j.append_batch((0..n).map(ev_recent).collect()).unwrap();
    let expected = |pred: &dyn Fn(&NewEvent) -> bool| -> Vec<u64> {
        (0..n).rev().filter(|&i| pred(&ev_recent(i))).collect()
    };
    let ids =
        |q: EventQuery| -> Vec<u64> { all_newest_first(&j, &q).iter().map(|e| e.id).collect() };
    let page = |q: EventQuery| EventQuery { page_size: 7, ..q };

    let got = ids(page(EventQuery {
        action: EventAction::from_name("block"),
        ..Default::default()
    }));
    assert_eq!(
        got,
        expected(&|e| e.action == EventAction::Apply(Action::Block))
    );
    assert_eq!(got.len(), 50);

    let got = ids(page(EventQuery {
        verdict: Some("CRITICAL".into()),
        action: Some(EventAction::Apply(Action::Log)),
        ..Default::default()
    }));
    assert_eq!(
        got,
        expected(&|e| e.verdict == "CRITICAL" && e.action == EventAction::Apply(Action::Log))
    );
    assert!(!got.is_empty());

    let net: IpNet = "10.0.1.0/24".parse().unwrap();
    let got = ids(page(EventQuery {
        source: Some(net),
        ..Default::default()
    }));
    assert_eq!(got, expected(&|e| net.contains(&e.source)));
    assert!(!got.is_empty() && got.len() < n as usize);

    let net6: IpNet = "2001:db8::/64".parse().unwrap();
    let got = ids(page(EventQuery {
        source: Some(net6),
        ..Default::default()
    }));
    assert_eq!(got, expected(&|e| e.source.is_ipv6()));
    assert_eq!(got.len(), 40);

    let since = base() + 50 * 1_000;
    let until = base() + 120 * 1_000;
    let got = ids(page(EventQuery {
        since: Some(since),
        until: Some(until),
        ..Default::default()
    }));
    assert_eq!(got, (50..120).rev().collect::<Vec<_>>());

    let got = ids(page(EventQuery {
        since: Some(since),
        until: Some(until),
        action: Some(EventAction::Apply(Action::Throttle)),
        source: Some("10.0.0.0/16".parse().unwrap()),
        ..Default::default()
    }));
    assert_eq!(
        got,
        expected(&|e| {
            e.time_unix_ns >= since
                && e.time_unix_ns < until
                && e.action == EventAction::Apply(Action::Throttle)
                && e.source.is_ipv4()
        })
    );
    assert!(!got.is_empty());

    // Nothing matches: an empty page and no token.
    let (p, t) = j
        .query(&EventQuery {
            source: Some("192.0.2.0/24".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
    assert!(p.is_empty() && t.is_none());
}

#[test]
fn bad_queries_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    for q in [
        EventQuery {
            page_size: 0,
            ..Default::default()
        },
        EventQuery {
            page_size: MAX_PAGE_SIZE + 1,
            ..Default::default()
        },
        EventQuery {
            since: Some(10),
            until: Some(5),
            ..Default::default()
        },
        EventQuery {
            verdict: Some("MEH".into()),
            ..Default::default()
        },
    ] {
        let e = j.query(&q).unwrap_err();
        assert!(matches!(e, JournalError::InvalidQuery(_)), "{q:?}: {e:?}");
    }
    j.query(&EventQuery {
        page_size: MAX_PAGE_SIZE,
        ..Default::default()
    })
    .unwrap();
}

#[test]
fn bad_events_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    j.append(ev_recent(0)).unwrap();
    let mut bad_verdict = ev_recent(1);
    bad_verdict.verdict = "safe".into();
    let e = j
        .append_batch(vec![ev_recent(1), ev_recent(2), bad_verdict])
        .unwrap_err();
    assert!(
        matches!(
            e,
            JournalError::InvalidEvent {
                index: 2,
                field: "verdict",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(j.len().unwrap(), 1);
    assert_eq!(j.append(ev_recent(1)).unwrap(), 1);
}

#[test]
fn actions_are_stored_by_name_and_an_unknown_name_is_corrupt() {
    let mut e = ev_recent(3);
    e.action = EventAction::Remove(RuleKind::Block);
    let bytes = encode(&e);
    let at = bytes
        .windows(7)
        .position(|w| w == b"UNBLOCK")
        .expect("the action is stored as its name");
    assert_eq!(decode(7, &bytes).unwrap(), JournalEvent::from_new(7, e));
    let mut bad = bytes.clone();
    bad[at..at + 7].copy_from_slice(b"UNBLOCX");
    let err = decode(7, &bad).unwrap_err();
    // postcard keeps no custom message; the id and the kind say enough.
    assert!(
        matches!(err, JournalError::Corrupt { id: 7, .. }),
        "{err:?}"
    );
}
