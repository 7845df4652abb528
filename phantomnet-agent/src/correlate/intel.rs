//! The threat-intelligence feed: a text file of IPs and CIDR prefixes with
//! labels, loaded into per-prefix-length hash tables for longest-prefix
//! lookup, and a handle that reloads it without ever losing the old feed.
//!
//! Format, one entry per line (fields separated by whitespace or commas):
//!
//! ```text
//! # comment
//! 203.0.113.7                 botnet-c2
//! 198.51.100.0/24  scanner    0.6
//! 2001:db8:bad::/48, spam
//! ```
//!
//! `<ip or cidr> [label] [confidence]`. The label defaults to `listed`, the
//! confidence (the feed score the entry gives, in [0, 1]) to 1.0. A prefix
//! with host bits set (`10.0.0.1/8`) is an error, not silently masked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ipnet::IpNet;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("threat feed line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("threat feed truncated: its metadata says {expected} records, {found} arrived")]
    Truncated { expected: u64, found: u64 },
}

/// What the feed says about a listed address.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub prefix: IpNet,
    pub label: Arc<str>,
    pub confidence: f64,
}

#[derive(Debug, Default, Clone)]
pub struct ThreatFeed {
    /// (prefix length, masked address → entry), longest prefix first.
    v4: Vec<(u8, HashMap<u32, FeedEntry>)>,
    v6: Vec<(u8, HashMap<u128, FeedEntry>)>,
    len: usize,
}

impl ThreatFeed {
    pub fn empty() -> ThreatFeed {
        ThreatFeed::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn load(path: &Path) -> Result<ThreatFeed, FeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| FeedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<ThreatFeed, FeedError> {
        Self::parse_labeled(text, "listed")
    }

    /// The plain format, with `default_label` for lines that give none.
    pub fn parse_labeled(text: &str, default_label: &str) -> Result<ThreatFeed, FeedError> {
        let mut feed = ThreatFeed::default();
        let default_label: Arc<str> = Arc::from(default_label);
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| FeedError::Line { line, message };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut fields = content
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|f| !f.is_empty());
            let Some(addr) = fields.next() else {
                continue;
            };
            let label = match fields.next() {
                Some(l) => Arc::from(l),
                None => default_label.clone(),
            };
            let confidence = match fields.next() {
                None => 1.0,
                Some(c) => c
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| err(format!("confidence {c:?} is not a number in [0, 1]")))?,
            };
            if let Some(extra) = fields.next() {
                return Err(err(format!(
                    "unexpected field {extra:?} (expected: ip-or-cidr [label] [confidence])"
                )));
            }
            let prefix = super::feed_format::parse_prefix(addr).map_err(err)?;
            feed.insert(FeedEntry {
                prefix,
                label,
                confidence,
            });
        }
        Ok(feed)
    }

    /// Multiplies every entry's confidence by `weight` (a feed's weight).
    pub fn scale_confidence(&mut self, weight: f64) {
        for e in self.entries_mut() {
            e.confidence *= weight;
        }
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = &mut FeedEntry> {
        self.v4
            .iter_mut()
            .flat_map(|(_, t)| t.values_mut())
            .chain(self.v6.iter_mut().flat_map(|(_, t)| t.values_mut()))
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &FeedEntry> {
        self.v4
            .iter()
            .flat_map(|(_, t)| t.values())
            .chain(self.v6.iter().flat_map(|(_, t)| t.values()))
    }

    /// One feed of all of `feeds`' entries; where two list the same prefix,
    /// the higher confidence (and its label) is kept.
    pub fn merge<'a>(feeds: impl IntoIterator<Item = &'a ThreatFeed>) -> ThreatFeed {
        let mut out = ThreatFeed::default();
        for f in feeds {
            for e in f.entries() {
                out.insert(e.clone());
            }
        }
        out
    }

    /// Adds an entry; a prefix already listed keeps the higher confidence.
    pub(crate) fn insert(&mut self, e: FeedEntry) {
        let len = e.prefix.prefix_len();
        let fresh = match e.prefix {
            IpNet::V4(n) => keep_stronger(table(&mut self.v4, len), u32::from(n.network()), e),
            IpNet::V6(n) => keep_stronger(table(&mut self.v6, len), u128::from(n.network()), e),
        };
        if fresh {
            self.len += 1;
        }
    }

    /// The most specific entry covering `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&FeedEntry> {
        match ip {
            IpAddr::V4(v4) => {
                let a = u32::from(v4);
                self.v4.iter().find_map(|(len, t)| {
                    let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
                    t.get(&(a & mask))
                })
            }
            IpAddr::V6(v6) => {
                let a = u128::from(v6);
                self.v6.iter().find_map(|(len, t)| {
                    let mask = if *len == 0 {
                        0
                    } else {
                        u128::MAX << (128 - len)
                    };
                    t.get(&(a & mask))
                })
            }
        }
    }
}

/// Inserts `e` at `key` unless a stronger entry is there; true if `key` was new.
fn keep_stronger<K: std::hash::Hash + Eq>(
    t: &mut HashMap<K, FeedEntry>,
    key: K,
    e: FeedEntry,
) -> bool {
    use std::collections::hash_map::Entry;
    match t.entry(key) {
        Entry::Vacant(v) => {
            v.insert(e);
            true
        }
        Entry::Occupied(mut o) => {
            if e.confidence > o.get().confidence {
                o.insert(e);
            }
            false
        }
    }
}

fn table<K>(tables: &mut Vec<(u8, HashMap<K, FeedEntry>)>, len: u8) -> &mut HashMap<K, FeedEntry> {
    let pos = match tables.iter().position(|(l, _)| *l <= len) {
        Some(p) if tables[p].0 == len => p,
        Some(p) => {
            tables.insert(p, (len, HashMap::new()));
            p
        }
        None => {
            tables.push((len, HashMap::new()));
            tables.len() - 1
        }
    };
    &mut tables[pos].1
}

/// A feed loaded from a file that can be reloaded; a failed reload keeps
/// the feed in force.
#[derive(Debug)]
pub struct ThreatFeedHandle {
    path: PathBuf,
    current: RwLock<Arc<ThreatFeed>>,
}

impl ThreatFeedHandle {
    pub fn open(path: impl AsRef<Path>) -> Result<ThreatFeedHandle, FeedError> {
        let path = path.as_ref().to_path_buf();
        let feed = ThreatFeed::load(&path)?;
        Ok(ThreatFeedHandle {
            path,
            current: RwLock::new(Arc::new(feed)),
        })
    }

    pub fn current(&self) -> Arc<ThreatFeed> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the file; on success swaps the feed in and returns it.
    pub fn reload(&self) -> Result<Arc<ThreatFeed>, FeedError> {
        match ThreatFeed::load(&self.path) {
            Ok(feed) => {
                let feed = Arc::new(feed);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = feed.clone();
                tracing::info!(path = %self.path.display(), entries = feed.len(), "threat feed reloaded");
                Ok(feed)
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "threat feed reload failed; keeping the old feed");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_for_v4_and_v6() {
        let feed = ThreatFeed::parse(
            "# test feed\n\
             198.51.100.0/24 scanner 0.6\n\
             198.51.100.7    botnet\n\
             \n\
             10.0.0.0/8, internal-bad, 0.3  # trailing comment\n\
             2001:db8:bad::/48 spam\n",
        )
        .unwrap();
        assert_eq!(feed.len(), 4);
        let hit = |s: &str| {
            feed.lookup(s.parse().unwrap())
                .map(|e| (e.label.to_string(), e.confidence))
        };
        assert_eq!(hit("198.51.100.7"), Some(("botnet".into(), 1.0)));
        assert_eq!(hit("198.51.100.8"), Some(("scanner".into(), 0.6)));
        assert_eq!(hit("10.200.0.1"), Some(("internal-bad".into(), 0.3)));
        assert_eq!(hit("2001:db8:bad:1::9"), Some(("spam".into(), 1.0)));
        assert_eq!(hit("198.51.101.1"), None);
        assert_eq!(hit("2001:db8:bae::1"), None);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        for (text, line, needle) in [
            ("1.2.3.4\nnot-an-ip label\n", 2, "not an IP"),
            ("10.0.0.1/8 x\n", 1, "host bits"),
            ("# c\n\n1.2.3.4 x 1.5\n", 3, "confidence"),
            ("1.2.3.4 x 0.5 extra\n", 1, "unexpected field"),
            ("1.2.3.0/33\n", 1, "not an IP"),
        ] {
            match ThreatFeed::parse(text) {
                Err(FeedError::Line { line: l, message }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(message.contains(needle), "{message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_failed_reload_keeps_the_old_feed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed.txt");
        std::fs::write(&path, "192.0.2.1 c2\n").unwrap();
        let handle = ThreatFeedHandle::open(&path).unwrap();
        assert_eq!(handle.current().len(), 1);
        std::fs::write(&path, "192.0.2.1 c2\n192.0.2.300 oops\n").unwrap();
        assert!(handle.reload().is_err());
        let feed = handle.current();
        assert!(feed.lookup("192.0.2.1".parse().unwrap()).is_some());
        std::fs::write(&path, "192.0.2.2 c2\n192.0.2.3 c2\n").unwrap();
        handle.reload().unwrap();
        assert_eq!(handle.current().len(), 2);
        assert!(
            handle
                .current()
                .lookup("192.0.2.1".parse().unwrap())
                .is_none()
        );
        std::fs::remove_file(&path).unwrap();
        assert!(handle.reload().is_err());
        assert_eq!(handle.current().len(), 2);
    }

    #[test]
    fn merging_keeps_the_stronger_entry_for_a_prefix_listed_twice() {
        let a = ThreatFeed::parse_labeled("192.0.2.0/24 a 0.4\n198.51.100.1\n", "a").unwrap();
        let b = ThreatFeed::parse_labeled(
            "192.0.2.0/24 b 0.9\n198.51.100.1 b 0.2\n2001:db8::/32\n",
            "b",
        )
        .unwrap();
        let m = ThreatFeed::merge([&a, &b]);
        assert_eq!(m.len(), 3);
        let hit = |s: &str| {
            m.lookup(s.parse().unwrap())
                .map(|e| (e.label.to_string(), e.confidence))
        };
        assert_eq!(hit("192.0.2.9"), Some(("b".into(), 0.9)));
        assert_eq!(hit("198.51.100.1"), Some(("a".into(), 1.0)));
        assert_eq!(hit("2001:db8::1"), Some(("b".into(), 1.0)));
        assert_eq!(m.entries().count(), 3);
    }
}
