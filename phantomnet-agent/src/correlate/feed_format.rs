//! The threat-feed formats operators subscribe to, parsed strictly: a line
//! that is not what the format says fails the whole update with its line
//! number, so a truncated or substituted download (an HTML error page, a
//! cut-off transfer) never replaces a good list.
//!
//! - `plain`: `<ip or cidr> [label] [confidence]` (see [`super::intel`]).
//! - `firehol`: a FireHOL netset: `#` comment header, then one IP or CIDR
//!   per line.
//! - `spamhaus`: Spamhaus DROP / DROPv6 JSON lines:
//!   `{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}`, ending
//!   with a `{"type":"metadata",...,"records":N}` line; when the metadata
//!   gives a record count, it must match.
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;

use super::intel::{FeedEntry, FeedError, ThreatFeed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedFormat {
    Plain,
    Firehol,
    Spamhaus,
}

impl FeedFormat {
    pub const fn name(self) -> &'static str {
        match self {
            FeedFormat::Plain => "plain",
            FeedFormat::Firehol => "firehol",
            FeedFormat::Spamhaus => "spamhaus",
        }
    }
}

impl std::fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An IP (a host prefix) or a CIDR prefix without host bits.
pub(crate) fn parse_prefix(s: &str) -> Result<IpNet, String> {
    if s.contains('/') {
        let net: IpNet = s
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR prefix"))?;
        if net.trunc() != net {
            return Err(format!(
                "{s} has host bits set; did you mean {}?",
                net.trunc()
            ));
        }
        Ok(net)
    } else {
        let ip: IpAddr = s
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR prefix"))?;
        Ok(IpNet::from(ip))
    }
}

/// Parses `text` in `format`. Every entry gets `label`; its confidence is
/// `weight` (for `plain`, the line's own confidence times `weight`).
pub fn parse(
    text: &str,
    format: FeedFormat,
    label: &str,
    weight: f64,
) -> Result<ThreatFeed, FeedError> {
    let label: Arc<str> = Arc::from(label);
    match format {
        FeedFormat::Plain => {
            let mut feed = ThreatFeed::parse_labeled(text, &label)?;
            feed.scale_confidence(weight);
            Ok(feed)
        }
        FeedFormat::Firehol => firehol(text, label, weight),
        FeedFormat::Spamhaus => spamhaus(text, label, weight),
    }
}

fn firehol(text: &str, label: Arc<str>, weight: f64) -> Result<ThreatFeed, FeedError> {
    let mut feed = ThreatFeed::empty();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let err = |message: String| FeedError::Line {
            line: i + 1,
            message,
        };
        if content.split_whitespace().nth(1).is_some() {
            return Err(err(format!(
                "{content:?}: a netset line holds one IP or CIDR prefix"
            )));
        }
        let prefix = parse_prefix(content).map_err(err)?;
        feed.insert(FeedEntry {
            prefix,
            label: label.clone(),
            confidence: weight,
        });
    }
    Ok(feed)
}

#[derive(Deserialize)]
struct SpamhausLine {
    #[serde(default)]
    cidr: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    records: Option<u64>,
}

fn spamhaus(text: &str, label: Arc<str>, weight: f64) -> Result<ThreatFeed, FeedError> {
    let mut feed = ThreatFeed::empty();
    let mut records = 0u64;
    let mut expected = None;
    for (i, raw) in text.lines().enumerate() {
        let content = raw.trim();
        if content.is_empty() {
            continue;
        }
        let err = |message: String| FeedError::Line {
            line: i + 1,
            message,
        };
        let v: SpamhausLine = serde_json::from_str(content)
            .map_err(|e| err(format!("not a Spamhaus JSON line: {e}")))?;
        if v.kind.as_deref() == Some("metadata") {
            expected = v.records;
            continue;
        }
        let Some(cidr) = v.cidr else {
            return Err(err("a record without \"cidr\"".to_string()));
        };
        let prefix = parse_prefix(&cidr).map_err(err)?;
        records += 1;
        feed.insert(FeedEntry {
            prefix,
            label: label.clone(),
            confidence: weight,
        });
    }
    if let Some(n) = expected
        && n != records
    {
        return Err(FeedError::Truncated {
            expected: n,
            found: records,
        });
    }
    Ok(feed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(feed: &ThreatFeed, ip: &str) -> Option<(String, f64)> {
        feed.lookup(ip.parse().unwrap())
            .map(|e| (e.label.to_string(), e.confidence))
    }

    #[test]
    fn firehol_netset() {
        let text =
            "#\n# firehol_level1\n#\n# Entries : 3\n#\n1.10.16.0/20\n\n2.56.192.0/22\n192.0.2.7\n";
        let feed = parse(text, FeedFormat::Firehol, "firehol_level1", 0.9).unwrap();
        assert_eq!(feed.len(), 3);
        assert_eq!(
            hit(&feed, "1.10.20.1"),
            Some(("firehol_level1".into(), 0.9))
        );
        assert_eq!(
            hit(&feed, "192.0.2.7"),
            Some(("firehol_level1".into(), 0.9))
        );
        assert_eq!(hit(&feed, "192.0.2.8"), None);
        for (bad, line, needle) in [
            ("# h\n1.2.3.4 extra\n", 2, "one IP"),
            ("1.2.3.0/24\n<html>\n", 2, "not an IP"),
            ("10.0.0.1/8\n", 1, "host bits"),
        ] {
            match parse(bad, FeedFormat::Firehol, "f", 1.0) {
                Err(FeedError::Line { line: l, message }) => {
                    assert_eq!(l, line, "{bad:?}");
                    assert!(message.contains(needle), "{message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn spamhaus_json_lines_skip_metadata_and_check_the_count() {
        let text = concat!(
            r#"{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}"#,
            "\n",
            r#"{"cidr":"2001:db8:bad::/48","sblid":"SBL1","rir":"ripencc"}"#,
            "\n",
            r#"{"type":"metadata","timestamp":1733000000,"size":123,"records":2,"copyright":"(c) Spamhaus"}"#,
            "\n"
        );
        let feed = parse(text, FeedFormat::Spamhaus, "spamhaus_drop", 1.0).unwrap();
        assert_eq!(feed.len(), 2);
        assert_eq!(
            hit(&feed, "2001:db8:bad:1::1"),
            Some(("spamhaus_drop".into(), 1.0))
        );
        let cut = text.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert!(matches!(
            parse(&cut, FeedFormat::Spamhaus, "s", 1.0),
            Err(FeedError::Truncated {
                expected: 2,
                found: 1
            })
        ));
        match parse(
            "{\"cidr\":\"1.2.3.0/24\"}\nnot json\n",
            FeedFormat::Spamhaus,
            "s",
            1.0,
        ) {
            Err(FeedError::Line { line: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        match parse("{\"sblid\":\"x\"}\n", FeedFormat::Spamhaus, "s", 1.0) {
            Err(FeedError::Line { line: 1, message }) => assert!(message.contains("cidr")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_lines_keep_their_confidence_scaled_by_the_weight() {
        let feed = parse(
            "192.0.2.1\n198.51.100.0/24 scanner 0.5\n",
            FeedFormat::Plain,
            "mine",
            0.8,
        )
        .unwrap();
        assert_eq!(hit(&feed, "192.0.2.1"), Some(("mine".into(), 0.8)));
        assert_eq!(hit(&feed, "198.51.100.9"), Some(("scanner".into(), 0.4)));
    }
}
