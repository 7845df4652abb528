//! The rules a parsed [`Config`] must follow. Each failure is the dotted key
//! path and the reason.

use std::collections::HashMap;
use std::path::Path;

use super::{Config, MAX_TTL_SECS, MIN_JOURNAL_BYTES};

type Failure = (String, String);

fn fail<T>(key: impl Into<String>, reason: impl Into<String>) -> Result<T, Failure> {
    Err((key.into(), reason.into()))
}

pub(super) fn validate(c: &Config) -> Result<(), Failure> {
    dataplane(c)?;
    thresholds(c)?;
    enforcement(c)?;
    honeypots(c)?;
    super::intel::validate(&c.intel)?;
    if let Some(cs) = &c.crowdsec {
        super::crowdsec::validate(cs)?;
    }
    optional_path("model.path", c.model.path.as_deref())?;
    optional_path("model.dir", c.model.dir.as_deref())?;
    if !(1..=1 << 30).contains(&c.model.max_bytes) {
        return fail("model.max_bytes", "must be 1 .. 1073741824 (1 GiB)");
    }
    api(c)?;
    metrics(c)?;
    journal(c)?;
    Ok(())
}

/// Linux's `dev_valid_name`: 1..=15 bytes, not `.` or `..`, no `/`, `:` or
/// whitespace.
pub(super) fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 15 {
        Some("is longer than 15 bytes (IFNAMSIZ - 1)")
    } else if name == "." || name == ".." {
        Some("is `.` or `..`")
    } else if name
        .chars()
        .any(|ch| ch == '/' || ch == ':' || ch.is_whitespace() || ch == '\0')
    {
        Some("contains `/`, `:`, NUL or whitespace")
    } else {
        None
    }
}

fn dataplane(c: &Config) -> Result<(), Failure> {
    let d = &c.dataplane;
    if d.interfaces.is_empty() {
        return fail(
            "dataplane.interfaces",
            "must list at least one interface to attach to",
        );
    }
    for (i, name) in d.interfaces.iter().enumerate() {
        if let Some(problem) = ifname_problem(name) {
            return fail(
                format!("dataplane.interfaces[{i}]"),
                format!("{name:?} is not a valid interface name: it {problem}"),
            );
        }
        if d.interfaces[..i].contains(name) {
            return fail(
                format!("dataplane.interfaces[{i}]"),
                format!("{name:?} is listed twice"),
            );
        }
    }
    for (i, name) in d.inside_interfaces.iter().enumerate() {
        let key = format!("dataplane.inside_interfaces[{i}]");
        if let Some(problem) = ifname_problem(name) {
            return fail(
                key,
                format!("{name:?} is not a valid interface name: it {problem}"),
            );
        }
        if d.inside_interfaces[..i].contains(name) {
            return fail(key, format!("{name:?} is listed twice"));
        }
        if d.interfaces.contains(name) {
            return fail(
                key,
                format!(
                    "{name:?} is also in dataplane.interfaces: an interface is enforced on or observed, not both"
                ),
            );
        }
    }
    absolute_path("dataplane.pin_dir", &d.pin_dir)?;
    Ok(())
}

/// The decision tree's own check, reported under the config's key names.
fn thresholds(c: &Config) -> Result<(), Failure> {
    use crate::decide::ThresholdError;
    let key = |name: &str| format!("thresholds.{}", name.to_ascii_lowercase());
    match c.thresholds.validate() {
        Ok(()) => Ok(()),
        Err(ThresholdError::OutOfRange { name, value }) => {
            fail(key(name), format!("{value} is outside [0, 1]"))
        }
        Err(ThresholdError::Inconsistent {
            lower,
            lower_value,
            higher,
            higher_value,
        }) => fail(
            key(lower),
            format!(
                "{} = {lower_value} is above {} = {higher_value}",
                key(lower),
                key(higher)
            ),
        ),
    }
}

fn enforcement(c: &Config) -> Result<(), Failure> {
    let e = &c.enforcement;
    for (name, ttl) in [
        ("block_ttl_secs", e.block_ttl_secs),
        ("throttle_ttl_secs", e.throttle_ttl_secs),
        ("deceive_ttl_secs", e.deceive_ttl_secs),
    ] {
        if ttl == 0 || ttl > MAX_TTL_SECS {
            return fail(
                format!("enforcement.{name}"),
                format!("{ttl} is outside 1..={MAX_TTL_SECS} (30 days)"),
            );
        }
    }
    if e.throttle_rate_pps == 0 {
        return fail("enforcement.throttle_rate_pps", "must be greater than 0");
    }
    if e.throttle_burst == 0 {
        return fail("enforcement.throttle_burst", "must be greater than 0");
    }
    if e.min_evidence == 0 || e.min_evidence > 1000 {
        return fail(
            "enforcement.min_evidence",
            format!("{} is outside 1..=1000", e.min_evidence),
        );
    }
    if e.evidence_window_secs == 0 || e.evidence_window_secs > 3600 {
        return fail(
            "enforcement.evidence_window_secs",
            format!("{} is outside 1..=3600", e.evidence_window_secs),
        );
    }
    // At least two of the detector's 5 s updates, so a lasting flood's rule
    // is refreshed before it runs out.
    if e.flood_rule_ttl_secs < 15 || e.flood_rule_ttl_secs > 3600 {
        return fail(
            "enforcement.flood_rule_ttl_secs",
            format!("{} is outside 15..=3600", e.flood_rule_ttl_secs),
        );
    }
    let v6 = crate::flow::IPV6_SOURCE_PREFIXES;
    if !v6.contains(&e.ipv6_source_prefix) {
        return fail(
            "enforcement.ipv6_source_prefix",
            format!(
                "{} is outside {}..={} (a prefix length: 64 groups each /64, 128 keeps one source per address)",
                e.ipv6_source_prefix,
                v6.start(),
                v6.end()
            ),
        );
    }
    Ok(())
}

fn honeypots(c: &Config) -> Result<(), Failure> {
    // (port, is_ipv6) → index of the first entry with it.
    let mut seen: HashMap<(u16, bool), usize> = HashMap::new();
    for (i, h) in c.honeypots.iter().enumerate() {
        if h.port == 0 {
            return fail(format!("honeypot[{i}].port"), "must be 1..=65535");
        }
        if h.target.port() == 0 {
            return fail(
                format!("honeypot[{i}].target"),
                format!("{} has port 0", h.target),
            );
        }
        let family = if h.target.is_ipv6() { "IPv6" } else { "IPv4" };
        if let Some(first) = seen.insert((h.port, h.target.is_ipv6()), i) {
            return fail(
                format!("honeypot[{i}].port"),
                format!(
                    "port {} already has an {family} honeypot (honeypot[{first}])",
                    h.port
                ),
            );
        }
    }
    Ok(())
}

fn api(c: &Config) -> Result<(), Failure> {
    absolute_path("api.socket", &c.api.socket)?;
    if let Some(tcp) = &c.api.tcp {
        for (name, p) in [
            ("cert", &tcp.cert),
            ("key", &tcp.key),
            ("client_ca", &tcp.client_ca),
        ] {
            if p.as_os_str().is_empty() {
                return fail(format!("api.tcp.{name}"), "must not be empty");
            }
        }
        if tcp.listen.port() == 0 {
            return fail("api.tcp.listen", "needs a port other than 0");
        }
    }
    Ok(())
}

fn metrics(c: &Config) -> Result<(), Failure> {
    let m = &c.metrics;
    if !m.allow_remote && !m.listen.ip().is_loopback() {
        return fail(
            "metrics.listen",
            format!(
                "{} is not a loopback address; set metrics.allow_remote = true to expose metrics",
                m.listen
            ),
        );
    }
    Ok(())
}

fn journal(c: &Config) -> Result<(), Failure> {
    let j = &c.journal;
    absolute_path("journal.path", &j.path)?;
    if j.max_age_secs == 0 {
        return fail("journal.max_age_secs", "must be greater than 0");
    }
    if j.max_bytes < MIN_JOURNAL_BYTES {
        return fail(
            "journal.max_bytes",
            format!(
                "{} is below the minimum of {MIN_JOURNAL_BYTES} (1 MiB)",
                j.max_bytes
            ),
        );
    }
    Ok(())
}

fn absolute_path(key: &str, p: &Path) -> Result<(), Failure> {
    if !p.is_absolute() {
        return fail(key, format!("{} must be an absolute path", p.display()));
    }
    Ok(())
}

fn optional_path(key: &str, p: Option<&Path>) -> Result<(), Failure> {
    match p {
        Some(p) if p.as_os_str().is_empty() => fail(key, "must not be empty"),
        _ => Ok(()),
    }
}
