//! The training plan `gen-model` records: which attack runs go from which
//! source at what pace, the benign sources and the fresh-client sessions
//! around them, and the labels files naming each source. What is planned
//! lives here; `dataset` runs it.
use std::fmt::Write as _;

use phantomnet_lab::lab::addr;
use phantomnet_lab::traffic::{Budget, Scenario};
/// One planned attack run: a scenario from one dedicated source.
#[derive(Clone, Debug)]
pub struct AttackRun {
    pub scenario: Scenario,
    pub source: String,
    pub budget: Budget,
    pub pace: f64,
}

/// Every training attack scenario twice: from `atk_src4(k)` at the default
/// pace, then from source `k + 12` (IPv6 where the tool allows) at a
/// slower pace with a smaller count.
pub fn attack_plan() -> Vec<AttackRun> {
    let mut plan = Vec::new();
    let slow = Scenario::TRAINING_ATTACKS.len() as u8;
    for (k, s) in Scenario::TRAINING_ATTACKS.into_iter().enumerate() {
        let k = k as u8;
        plan.push(AttackRun {
            scenario: s,
            source: addr::atk_src4(k),
            budget: s.default_budget(),
            pace: 1.0,
        });
        let b = s.default_budget();
        plan.push(AttackRun {
            scenario: s,
            source: if s.supports_ipv6() {
                addr::atk_src6(k + slow)
            } else {
                addr::atk_src4(k + slow)
            },
            budget: Budget {
                count: b.count / 2,
                secs: b.secs,
            },
            pace: 2.5,
        });
    }
    plan
}

/// Benign sources: each IPv4 client address runs one benign scenario; the
/// client's IPv6 address runs all three.
pub fn benign_sources(s: Scenario) -> [&'static str; 2] {
    let v4 = match s {
        Scenario::BenignHttp => addr::CLI_SRC4[0],
        Scenario::BenignDns => addr::CLI_SRC4[1],
        _ => addr::CLI_SRC4[2],
    };
    [v4, addr::CLI6]
}

/// One short benign session from a fresh client source.
#[derive(Clone, Debug)]
pub struct FreshSession {
    pub scenario: Scenario,
    pub source: String,
    pub budget: Budget,
    pub pace: f64,
    /// Pause after the session (seconds) before the lane starts its next one.
    pub pause: f64,
}

/// Parallel lanes of fresh-source sessions.
pub const FRESH_LANES: usize = 3;

/// Session `k` of the fresh-client plan: the extra client sources
/// (`cli_src4`/`cli_src6`) in turn, every fourth session over IPv6, each
/// source running one short session of a rotating kind and pace, so the
/// data holds many young benign sources (the window features of a source
/// seen for a few seconds differ from a long-lived one's).
pub fn fresh_session(k: usize) -> FreshSession {
    // (scenario, count, pace, time bound in s): page views, browsing
    // mixes, DNS bursts, small bulk, a 3 MiB transfer each way (a heavy ACK
    // stream from a young source), a health-check-like poller (40 page
    // fetches, think time × 0.25: every 0.05-0.4 s), an 8 MiB download at
    // 30 MB/s or 1.5 MB/s (pace 2: a slow link), and echo requests every
    // 75 ms, 150 ms, 1.5 s or 2.5 s (a young pinging source looks like a
    // young ICMP flood for its first samples; these teach the difference),
    // and SNTP clock checks every 1 s or 2.5 s. The DNS sessions (pace ≠ 1)
    // and the NTP ones use a new source port per query.
    //
    // Then the heavy clients a gateway sees for longer than a few seconds:
    // downloads of 48 and 96 MiB spread over 8–10 s (6–10 MB/s: a steady
    // ACK stream at 4,000–7,000 packets/s), a 64 MiB one in about 3 s
    // (≈ 200 Mbit/s, a throughput test's receiving side), and monitoring
    // pollers fetching a page every ≈ 0.25 s and ≈ 0.35 s for 25–30 s,
    // and monitoring pollers that open a new connection for each GET of
    // the front page, every 0.25 s for 15 s or every 0.4 s for 21 s (at
    // positions 7 and 19, so each one's first session is over IPv6; an odd
    // number of entries keeps every kind rotating between IPv4 and IPv6),
    // and an administrator's SSH key login running 5 or 8 commands on one
    // connection (position 23, IPv6 first, and 26), and health checks that
    // GET a tiny status answer on a new connection every 0.2 s for 10 s
    // or every 0.5 s for 17 s (position 27, IPv6 first, and 28: a young
    // poller whose server says little per connection, as a password
    // guesser's does; docs/HELDOUT.md, "Why the health checker"), and
    // browsing sessions bounded at 40 and 30 s (position 31, IPv6 first,
    // and 32; the script browses for 32 and 24 s of them):
    // a browser that stays, whose stale links and missing icon add up to
    // several 404s in one answer run, as a password guesser's 401s do
    // (docs/MODEL.md, "The eighth revision").
    const MIX: [(Scenario, u32, f64, f64); 33] = [
        (Scenario::BenignHttp, 12, 1.0, 12.0),
        (Scenario::BenignBrowse, 8, 1.0, 12.0),
        (Scenario::BenignHttp, 6, 0.6, 12.0),
        (Scenario::BenignDns, 25, 0.7, 6.0),
        (Scenario::BenignBrowse, 10, 1.4, 12.0),
        (Scenario::BenignBigfile, 48 << 20, 0.5, 12.0),
        (Scenario::BenignHttp, 9, 1.6, 12.0),
        (Scenario::BenignPoll, 60, 1.0, 18.0),
        (Scenario::BenignBulk, 48 * 1024, 1.0, 6.0),
        (Scenario::BenignBrowse, 6, 0.7, 12.0),
        (Scenario::BenignHttp, 90, 0.33, 30.0),
        (Scenario::BenignHttp, 12, 0.8, 12.0),
        (Scenario::BenignDns, 12, 2.0, 6.0),
        (Scenario::BenignBulk, 3 * 1024 * 1024, 1.0, 6.0),
        (Scenario::BenignBigfile, 96 << 20, 0.5, 14.0),
        (Scenario::BenignHttp, 40, 0.25, 12.0),
        (Scenario::BenignBigfile, 8 << 20, 1.0, 8.0),
        (Scenario::BenignPing, 30, 1.0, 12.0),
        (Scenario::BenignBigfile, 8 << 20, 2.0, 8.0),
        (Scenario::BenignPoll, 50, 1.6, 25.0),
        (Scenario::BenignHttp, 60, 0.45, 25.0),
        (Scenario::BenignPing, 6, 10.0, 12.0),
        (Scenario::BenignPing, 40, 0.5, 12.0),
        (Scenario::BenignSsh, 5, 1.0, 15.0),
        (Scenario::BenignBigfile, 64 << 20, 0.5, 4.5),
        (Scenario::BenignPing, 4, 16.7, 12.0),
        (Scenario::BenignSsh, 8, 1.6, 25.0),
        (Scenario::BenignStatus, 50, 1.0, 12.0),
        (Scenario::BenignStatus, 35, 2.5, 20.0),
        (Scenario::BenignSntp, 6, 1.0, 12.0),
        (Scenario::BenignSntp, 4, 2.5, 12.0),
        (Scenario::BenignBrowse, 60, 1.0, 40.0),
        (Scenario::BenignBrowse, 45, 0.7, 30.0),
    ];
    let n = usize::from(addr::CLI_SOURCES);
    let (scenario, count, pace, secs) = MIX[k % MIX.len()];
    let i = (k % n) as u8;
    let source = if k % 4 == 3 {
        addr::cli_src6(i)
    } else {
        addr::cli_src4(i)
    };
    FreshSession {
        scenario,
        source,
        budget: Budget { count, secs },
        pace,
        pause: [0.3, 1.2, 0.6, 2.0, 0.9][k % 5],
    }
}

fn host_prefix(src: &str) -> String {
    if src.contains(':') {
        format!("{src}/128")
    } else {
        format!("{src}/32")
    }
}

/// The labels file `dataset` reads: `CIDR TYPE` per attack source.
pub fn labels_text(plan: &[AttackRun]) -> String {
    let mut t = String::from("# cargo xtask gen-model: one source per attack run\n");
    for r in plan {
        let _ = writeln!(t, "{} {}", host_prefix(&r.source), r.scenario.name());
    }
    t
}

/// A labels file for counting only: attack sources as above, each benign
/// source under its own pseudo-type, and catch-alls that must stay empty.
pub(crate) fn counting_labels_text(plan: &[AttackRun]) -> String {
    let mut t = labels_text(plan);
    for s in Scenario::BENIGN {
        let _ = writeln!(t, "{} {}", host_prefix(benign_sources(s)[0]), s.name());
    }
    let _ = writeln!(t, "{} benign_ipv6_all", host_prefix(addr::CLI6));
    for i in 0..addr::CLI_SOURCES {
        let _ = writeln!(t, "{} benign_fresh_v4", host_prefix(&addr::cli_src4(i)));
        let _ = writeln!(t, "{} benign_fresh_v6", host_prefix(&addr::cli_src6(i)));
    }
    for net in [addr::ATK_NET4, addr::ATK_NET6] {
        let _ = writeln!(t, "{net} unattributed");
    }
    for a in [addr::ATK4, addr::ATK6] {
        let _ = writeln!(t, "{} unattributed", host_prefix(a));
    }
    // Kernel control traffic (MLD reports when interfaces come up): benign.
    t.push_str("fe80::/10 benign_link_local\n");
    t.push_str("0.0.0.0/0 unknown_source\n::/0 unknown_source\n");
    t
}
