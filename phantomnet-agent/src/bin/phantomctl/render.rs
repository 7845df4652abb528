//! Output: JSON documents (`--json`) or human-readable lines.
use phantomnet_agent::api::{convert, pb};
use serde_json::{Value, json};

/// Where a verb's result goes: one JSON document, or the human form.
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    pub(crate) fn emit(&self, v: Value, human: impl FnOnce()) {
        if self.json {
            println!("{v}");
        } else {
            human();
        }
    }
}

/// A wire action's name ("-" if unspecified or unknown to this build).
pub(crate) fn action_name(v: i32) -> &'static str {
    match convert::action_name(v) {
        "" => "-",
        name => name,
    }
}

/// A wire verdict's name ("-" if unspecified or unknown to this build).
pub(crate) fn verdict_name(v: i32) -> &'static str {
    match pb::Verdict::try_from(v).map(convert::verdict_name) {
        Ok("") | Err(_) => "-",
        Ok(name) => name,
    }
}

pub(crate) fn rule_json(r: &pb::Rule) -> Value {
    json!({
        "action": action_name(r.action),
        "cidr": r.cidr,
        "expires_in_seconds": r.expires_in_seconds,
        "expired": r.expired,
        "reason": r.reason,
        "hits": r.hits,
        "rate_pps": r.rate_pps,
        "burst": r.burst,
    })
}

pub(crate) fn event_json(e: &pb::Event) -> Value {
    json!({
        "id": e.id,
        "time_unix_ns": e.time_unix_ns,
        "source": e.source,
        "action": action_name(e.action),
        "verdict": verdict_name(e.verdict),
        "confidence": e.confidence,
        "anomaly": e.anomaly,
        "threat": e.threat,
        "rule": e.rule,
        "reason": e.reason,
        "features": e.features,
    })
}

pub(crate) fn print_rule(r: &pb::Rule) {
    let ttl = match (r.expired, r.expires_in_seconds) {
        (true, _) => "expired".to_string(),
        (false, 0) => "never".to_string(),
        (false, s) => format!("{s}s"),
    };
    let extra = if r.rate_pps > 0 {
        format!("{} pps burst {}", r.rate_pps, r.burst)
    } else if r.hits > 0 {
        format!("{} hits", r.hits)
    } else {
        String::new()
    };
    println!(
        "{:<9} {:<43} {:>9}  {:<20} {}",
        action_name(r.action),
        r.cidr,
        ttl,
        extra,
        r.reason
    );
}

pub(crate) fn print_event(e: &pb::Event) {
    let secs = e.time_unix_ns / 1_000_000_000;
    println!(
        "#{:<6} {} {:<39} {:<9} {:<8} conf {:.2} anom {:.2} threat {:.2}  {}",
        e.id,
        secs,
        e.source,
        action_name(e.action),
        verdict_name(e.verdict),
        e.confidence,
        e.anomaly,
        e.threat,
        e.reason
    );
}

pub(crate) fn signature_json(r: &pb::SignatureRule) -> Value {
    json!({
        "id": r.id,
        "slot": r.slot,
        "rule": r.rule,
        "rate_pps": r.rate_pps,
        "expires_in_seconds": r.expires_in_seconds,
        "expired": r.expired,
        "exempt_known_good": r.exempt_known_good,
        "matched": r.matched,
        "dropped": r.dropped,
        "exempted": r.exempted,
        "reason": r.reason,
    })
}

pub(crate) fn print_signature_header() {
    println!(
        "{:>4} {:>4} {:>10} {:>9} {:>12} {:>12} {:>10} {:<12} RULE",
        "ID", "SLOT", "RATE", "EXPIRES", "MATCHED", "DROPPED", "EXEMPTED", "BY"
    );
}

pub(crate) fn print_signature(r: &pb::SignatureRule) {
    let rate = match r.rate_pps {
        0 => "drop".to_string(),
        n => format!("{n}/s"),
    };
    let ttl = match (r.expired, r.expires_in_seconds) {
        (true, _) => "expired".to_string(),
        (false, 0) => "never".to_string(),
        (false, s) => format!("{s}s"),
    };
    let exempt = if r.exempt_known_good {
        "  (known-good exempt)"
    } else {
        ""
    };
    println!(
        "{:>4} {:>4} {rate:>10} {ttl:>9} {:>12} {:>12} {:>10} {:<12} {}{exempt}",
        r.id, r.slot, r.matched, r.dropped, r.exempted, r.reason, r.rule
    );
}

pub(crate) fn known_good_json(s: &pb::KnownGoodSource) -> Value {
    json!({
        "address": s.address,
        "exempted": s.exempted,
        "refreshed_seconds_ago": s.refreshed_seconds_ago,
    })
}

pub(crate) fn print_known_good(s: &pb::KnownGoodSource) {
    println!(
        "{:<39} exempted {:>10}  refreshed {}s ago",
        s.address, s.exempted, s.refreshed_seconds_ago
    );
}
