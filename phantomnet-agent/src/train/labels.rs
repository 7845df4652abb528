//! Labeling by source prefix: every sample from a listed prefix is an
//! attack of the listed type, everything else benign.
//!
//! Rules come from `--attack CIDR=TYPE` (repeatable) and/or a labels file
//! with one `CIDR TYPE` per line (`#` comments). The most specific prefix wins.
//! A TYPE that starts with `benign_` names a benign scenario (`benign_http`):
//! its rows are labeled benign, and `replay` reports its sources by that
//! name.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use super::TrainError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelRules {
    /// Sorted most specific first.
    rules: Vec<(IpNet, String)>,
}

/// A scenario name for benign traffic.
pub fn is_benign_kind(kind: &str) -> bool {
    kind.starts_with("benign_")
}

fn parse_rule(prefix: &str, kind: &str) -> Result<(IpNet, String), String> {
    let net: IpNet = if prefix.contains('/') {
        prefix
            .parse()
            .map_err(|_| format!("{prefix:?} is not a CIDR prefix"))?
    } else {
        IpNet::from(
            prefix
                .parse::<IpAddr>()
                .map_err(|_| format!("{prefix:?} is not an IP address"))?,
        )
    };
    if net.trunc() != net {
        return Err(format!(
            "{prefix} has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    if kind.is_empty() || kind.contains(|c: char| c == ',' || c == '"' || c.is_whitespace()) {
        return Err(format!(
            "attack type {kind:?} must be a non-empty word without commas or quotes"
        ));
    }
    if kind == "benign" {
        return Err("attack type cannot be \"benign\"".into());
    }
    Ok((net, kind.to_string()))
}

impl LabelRules {
    /// From `CIDR=TYPE` arguments.
    pub fn from_args(args: &[String]) -> Result<LabelRules, TrainError> {
        let mut rules = Vec::new();
        for a in args {
            let (p, k) = a
                .split_once('=')
                .ok_or_else(|| TrainError::Usage(format!("--attack {a:?}: expected CIDR=TYPE")))?;
            rules.push(
                parse_rule(p, k).map_err(|m| TrainError::Usage(format!("--attack {a:?}: {m}")))?,
            );
        }
        Ok(Self::sorted(rules))
    }

    /// Adds the rules of a labels file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let mut rules = std::mem::take(&mut self.rules);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |message: String| TrainError::Csv {
                path: path.to_path_buf(),
                line: i as u64 + 1,
                message,
            };
            let mut f = line.split_whitespace();
            let (p, k) = match (f.next(), f.next(), f.next()) {
                (Some(p), Some(k), None) => (p, k),
                _ => return Err(err("expected `CIDR TYPE`".into())),
            };
            rules.push(parse_rule(p, k).map_err(err)?);
        }
        *self = Self::sorted(rules);
        Ok(())
    }

    fn sorted(mut rules: Vec<(IpNet, String)>) -> LabelRules {
        rules.sort_by(|a, b| b.0.prefix_len().cmp(&a.0.prefix_len()).then(a.0.cmp(&b.0)));
        LabelRules { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `(label, attack_type)` for a source.
    pub fn label(&self, ip: IpAddr) -> (u32, &str) {
        match self.scenario(ip) {
            Some((kind, attack)) => (u32::from(attack), kind),
            None => (0, "benign"),
        }
    }

    /// The scenario a source belongs to and whether it is an attack; `None`
    /// when no rule covers it.
    pub fn scenario(&self, ip: IpAddr) -> Option<(&str, bool)> {
        self.rules
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, kind)| (kind.as_str(), !is_benign_kind(kind)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_prefix_wins_and_the_rest_is_benign() {
        let mut r =
            LabelRules::from_args(&["192.0.2.0/24=scan".into(), "192.0.2.11=syn_flood".into()])
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("labels.txt");
        std::fs::write(&f, "# lab\n2001:db8::/32 udp_flood\n").unwrap();
        r.add_file(&f).unwrap();
        assert_eq!(r.label("192.0.2.11".parse().unwrap()), (1, "syn_flood"));
        assert_eq!(r.label("192.0.2.12".parse().unwrap()), (1, "scan"));
        assert_eq!(r.label("2001:db8::5".parse().unwrap()), (1, "udp_flood"));
        assert_eq!(r.label("198.51.100.1".parse().unwrap()), (0, "benign"));
        assert_eq!(r.scenario("198.51.100.1".parse().unwrap()), None);
    }

    #[test]
    fn benign_scenarios_are_named_and_labeled_benign() {
        let r = LabelRules::from_args(&[
            "198.51.100.10=benign_http".into(),
            "192.0.2.11=syn_flood".into(),
        ])
        .unwrap();
        let http = "198.51.100.10".parse().unwrap();
        assert_eq!(r.label(http), (0, "benign_http"));
        assert_eq!(r.scenario(http), Some(("benign_http", false)));
        assert_eq!(
            r.scenario("192.0.2.11".parse().unwrap()),
            Some(("syn_flood", true))
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        for a in [
            "192.0.2.1",
            "192.0.2.1/24=x",
            "nope=x",
            "10.0.0.1=",
            "10.0.0.1=a,b",
            "10.0.0.1=benign",
        ] {
            assert!(LabelRules::from_args(&[a.to_string()]).is_err(), "{a}");
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("labels.txt");
        std::fs::write(&f, "10.0.0.1 x\n10.0.0.2\n").unwrap();
        let err = LabelRules::default().add_file(&f).unwrap_err();
        assert!(matches!(err, TrainError::Csv { line: 2, .. }), "{err}");
    }
}
