//! The `block = true` policy: a feed's entries as BLOCK entries, each with
//! the feed's name as reason text (`threat-intel: NAME`), refreshed at every
//! successful check and removed when the feed drops them. An entry at the
//! same prefix set by anyone else (an operator, CrowdSec, another feed) is
//! left alone, and never removed by the feed.
use std::collections::HashSet;
use std::time::Duration;

use phantomnet_common::ReasonCode;

use crate::correlate::ThreatFeed;
use crate::dataplane::Prefix;
use crate::enforce::Executor;

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlockSync {
    /// Entries of this feed in BLOCK after the sync.
    pub in_force: usize,
    pub removed: usize,
    /// Prefixes already blocked by someone else.
    pub foreign: usize,
    /// Entries that could not be written (map full, allowlisted, IPv4-mapped).
    pub failed: usize,
    pub first_error: Option<String>,
}

fn ours(ex: &Executor, p: &Prefix, name: &str) -> Option<bool> {
    ex.maps()
        .block_at(p)
        .map(|(code, text)| code == ReasonCode::ThreatIntel && text == name)
}

/// Makes BLOCK hold exactly `list`'s entries for feed `name` (`blocked`:
/// the prefixes this feed holds, updated). In dry-run nothing is written.
pub fn sync(
    ex: &mut Executor,
    name: &str,
    list: &ThreatFeed,
    ttl: Duration,
    blocked: &mut HashSet<Prefix>,
) -> BlockSync {
    let mut out = BlockSync::default();
    if ex.dry_run() {
        return out;
    }
    let mut now = HashSet::with_capacity(list.len());
    for e in list.entries() {
        let p = match Prefix::new(e.prefix.network(), e.prefix.prefix_len()) {
            Ok(p) => p,
            Err(err) => {
                out.failed += 1;
                out.first_error.get_or_insert_with(|| err.to_string());
                continue;
            }
        };
        if ours(ex, &p, name) == Some(false) {
            out.foreign += 1;
            continue;
        }
        match ex.block(&p, Some(ttl), ReasonCode::ThreatIntel, name) {
            Ok(_) => {
                now.insert(p);
            }
            Err(err) => {
                out.failed += 1;
                out.first_error.get_or_insert_with(|| err.to_string());
            }
        }
    }
    for p in blocked.difference(&now) {
        if ours(ex, p, name) == Some(true) && ex.unblock(p).is_ok() {
            out.removed += 1;
        }
    }
    out.in_force = now.len();
    *blocked = now;
    out
}

/// Removes every BLOCK entry feed `name` holds (the feed left the config).
pub fn clear(ex: &mut Executor, name: &str, blocked: &mut HashSet<Prefix>) -> usize {
    let n = blocked
        .iter()
        .filter(|p| ours(ex, p, name) == Some(true) && ex.unblock(p).is_ok())
        .count();
    blocked.clear();
    n
}
