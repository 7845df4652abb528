//! Request validation and reply conversion. Every invalid field becomes
//! INVALID_ARGUMENT with a message that starts with the field's name.
use std::{net::IpAddr, time::Duration};

use tonic::Status;

use phantomnet_common::{
    Action, EventAction, PacketSample, ReasonCode, RuleKind, SAMPLE_PAYLOAD_LEN, sig_flags,
};

use super::pb;
use crate::{
    aggregate::Signature,
    correlate::Verdict,
    daemon::{CoreError, ModelInfo, RuleView},
    dataplane::DataplaneError,
    dataplane::{KnownGoodView, Prefix, Rule, SignatureView},
    decide::Thresholds,
    enforce::{EnforceError, NftError},
    journal::JournalEvent,
    models::ModelError,
};

use crate::enforce::MAX_TTL_SECS;
pub const DEFAULT_PAGE: u32 = 100;
/// The largest page of rules or events (the journal's own limit).
pub const MAX_PAGE: u32 = crate::journal::MAX_PAGE_SIZE as u32;

pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

/// The status for a core error: its code, and for a bad value the request
/// field it came from (the proto's name for it).
pub fn status(e: CoreError) -> Status {
    let msg = e.to_string();
    match e {
        CoreError::Enforce(e) => enforce_status(e),
        CoreError::Dataplane(e) => dataplane_status(e),
        CoreError::Journal(_) => Status::internal(msg),
        CoreError::NoModel
        | CoreError::NoDetection
        | CoreError::NoModelDir
        | CoreError::ModelDir { .. } => Status::failed_precondition(msg),
        CoreError::ModelMissing { .. } | CoreError::Model(ModelError::Io { .. }) => {
            Status::not_found(format!("path: {msg}"))
        }
        CoreError::OutsideModelDir { .. } | CoreError::Model(_) => invalid("path", msg),
        CoreError::Thresholds(_) => invalid("thresholds", msg),
        CoreError::BadSignature { .. } => invalid("rule", msg),
    }
}

fn enforce_status(e: EnforceError) -> Status {
    let msg = e.to_string();
    match e {
        EnforceError::Dataplane(d) => dataplane_status(d),
        EnforceError::Allowlisted { .. } | EnforceError::DeceiveNotConfigured(_) => {
            Status::failed_precondition(msg)
        }
        EnforceError::DeceiveUnavailable(_) => Status::unavailable(msg),
        EnforceError::Nft(NftError::NotDeceived(_)) => Status::not_found(msg),
        EnforceError::Nft(NftError::Ttl(reason)) => invalid("ttl_seconds", reason),
        EnforceError::Nft(NftError::NoHoneypot(family)) => {
            Status::failed_precondition(format!("no {family} honeypot is configured"))
        }
        EnforceError::Nft(NftError::Nft(_)) => Status::unavailable(msg),
    }
}

fn dataplane_status(e: DataplaneError) -> Status {
    let msg = e.to_string();
    match e {
        DataplaneError::InvalidPrefix { .. } => invalid("cidr", msg),
        DataplaneError::InvalidArgument { field, reason } => invalid(proto_field(field), reason),
        DataplaneError::Allowlisted { .. } => Status::failed_precondition(msg),
        DataplaneError::NotFound { .. } => Status::not_found(msg),
        DataplaneError::MapFull { .. } => Status::resource_exhausted(msg),
        _ => Status::internal(msg),
    }
}

/// The request field a domain argument comes from.
fn proto_field(domain: &'static str) -> &'static str {
    match domain {
        "ttl" => "ttl_seconds",
        "rate" => "rate_pps",
        other => other,
    }
}

pub fn prefix(field: &str, s: &str) -> Result<Prefix, Status> {
    if s.trim().is_empty() {
        return Err(invalid(field, "required"));
    }
    s.parse::<Prefix>().map_err(|e| invalid(field, e))
}

pub fn ttl(secs: u64) -> Result<Option<Duration>, Status> {
    match secs {
        0 => Ok(None),
        s if s > MAX_TTL_SECS => Err(invalid(
            "ttl_seconds",
            format!("{s} is more than {MAX_TTL_SECS} (30 days); 0 = the configured default"),
        )),
        s => Ok(Some(Duration::from_secs(s))),
    }
}

/// A signature rule's TTL: unlike a block's, 0 means until removed.
pub fn signature_ttl(secs: u64) -> Result<Option<Duration>, Status> {
    match secs {
        0 => Ok(None),
        s if s > MAX_TTL_SECS => Err(invalid(
            "ttl_seconds",
            format!("{s} is more than {MAX_TTL_SECS} (30 days); 0 = until removed"),
        )),
        s => Ok(Some(Duration::from_secs(s))),
    }
}

/// The most packets per second a rule (or a throttle) lets through.
pub const MAX_RATE_PPS: u32 = 1_000_000_000;

/// A signature rule's rate: 0 = drop every match.
pub fn signature_rate(v: u32) -> Result<u32, Status> {
    if v > MAX_RATE_PPS {
        return Err(invalid(
            "rate_pps",
            format!("{v} is more than {MAX_RATE_PPS}; 0 = drop every match"),
        ));
    }
    Ok(v)
}

/// A signature rule in its text form (`rule`).
pub fn signature(s: &str) -> Result<Signature, Status> {
    if s.trim().is_empty() {
        return Err(invalid("rule", "required"));
    }
    s.parse::<Signature>().map_err(|e| invalid("rule", e))
}

/// A signature rule's id: ids start at 1.
pub fn signature_id(id: u32) -> Result<u32, Status> {
    if id == 0 {
        return Err(invalid("id", "required (rule ids start at 1)"));
    }
    Ok(id)
}

pub fn reason(s: &str) -> Result<&str, Status> {
    if s.len() > phantomnet_common::REASON_TEXT_LEN {
        return Err(invalid(
            "reason",
            format!(
                "{} bytes; at most {} are kept",
                s.len(),
                phantomnet_common::REASON_TEXT_LEN
            ),
        ));
    }
    if s.contains('\0') {
        return Err(invalid("reason", "contains a NUL byte"));
    }
    Ok(s)
}

pub fn positive(field: &str, v: u32, max: u32) -> Result<Option<u32>, Status> {
    match v {
        0 => Ok(None),
        v if v > max => Err(invalid(field, format!("{v} is more than {max}"))),
        v => Ok(Some(v)),
    }
}

pub fn page_size(v: u32) -> Result<usize, Status> {
    match v {
        0 => Ok(DEFAULT_PAGE as usize),
        v if v > MAX_PAGE => Err(invalid("page_size", format!("{v} is more than {MAX_PAGE}"))),
        v => Ok(v as usize),
    }
}

pub fn page_token(s: &str) -> Result<Option<u64>, Status> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u64>()
        .map(Some)
        .map_err(|_| invalid("page_token", "not a token this server issued"))
}

/// An optional rule-kind filter (ListRules); `ACTION_UNSPECIFIED` = all.
pub fn rule_kind_filter(v: i32) -> Result<Option<RuleKind>, Status> {
    match action_filter(v)? {
        None => Ok(None),
        Some(EventAction::Apply(a)) => a
            .rule_kind()
            .map(Some)
            .ok_or_else(|| invalid("action", format!("{a} puts no rule in force"))),
        Some(EventAction::Allow) => Ok(Some(RuleKind::Allow)),
        Some(a @ EventAction::Remove(_)) => Err(invalid("action", format!("{a} is not a rule"))),
    }
}

/// An optional event-action filter (ListEvents, WatchEvents);
/// `ACTION_UNSPECIFIED` = all.
pub fn action_filter(v: i32) -> Result<Option<EventAction>, Status> {
    pb::Action::try_from(v)
        .map(event_action)
        .map_err(|_| invalid("action", format!("{v} is not an Action")))
}

pub fn verdict_filter(v: i32) -> Result<Option<pb::Verdict>, Status> {
    match pb::Verdict::try_from(v) {
        Ok(pb::Verdict::Unspecified) => Ok(None),
        Ok(a) => Ok(Some(a)),
        Err(_) => Err(invalid("verdict", format!("{v} is not a Verdict"))),
    }
}

pub fn pb_action(a: Action) -> pb::Action {
    match a {
        Action::Log => pb::Action::Log,
        Action::Throttle => pb::Action::Throttle,
        Action::Deceive => pb::Action::Deceive,
        Action::Block => pb::Action::Block,
    }
}

pub fn pb_rule_kind(k: RuleKind) -> pb::Action {
    match k {
        RuleKind::Allow => pb::Action::Allow,
        RuleKind::Throttle => pb::Action::Throttle,
        RuleKind::Deceive => pb::Action::Deceive,
        RuleKind::Block => pb::Action::Block,
    }
}

pub fn pb_event_action(a: EventAction) -> pb::Action {
    match a {
        EventAction::Apply(a) => pb_action(a),
        EventAction::Allow => pb::Action::Allow,
        EventAction::Remove(RuleKind::Block) => pb::Action::Unblock,
        EventAction::Remove(RuleKind::Throttle) => pb::Action::Unthrottle,
        EventAction::Remove(RuleKind::Allow) => pb::Action::Disallow,
        EventAction::Remove(RuleKind::Deceive) => pb::Action::Undeceive,
    }
}

/// The domain action a wire value names; `None` for `ACTION_UNSPECIFIED`.
/// The inverse of [`pb_event_action`], and the only reading of `pb::Action`
/// (phantomctl prints names through it too).
pub fn event_action(a: pb::Action) -> Option<EventAction> {
    Some(match a {
        pb::Action::Unspecified => return None,
        pb::Action::Log => EventAction::Apply(Action::Log),
        pb::Action::Throttle => EventAction::Apply(Action::Throttle),
        pb::Action::Deceive => EventAction::Apply(Action::Deceive),
        pb::Action::Block => EventAction::Apply(Action::Block),
        pb::Action::Allow => EventAction::Allow,
        pb::Action::Unblock => EventAction::Remove(RuleKind::Block),
        pb::Action::Unthrottle => EventAction::Remove(RuleKind::Throttle),
        pb::Action::Disallow => EventAction::Remove(RuleKind::Allow),
        pb::Action::Undeceive => EventAction::Remove(RuleKind::Deceive),
    })
}

/// The name of a wire action value ("" for unspecified or unknown).
pub fn action_name(v: i32) -> &'static str {
    pb::Action::try_from(v)
        .ok()
        .and_then(event_action)
        .map_or("", EventAction::name)
}

pub fn pb_verdict(v: Verdict) -> pb::Verdict {
    match v {
        Verdict::Safe => pb::Verdict::Safe,
        Verdict::Warning => pb::Verdict::Warning,
        Verdict::High => pb::Verdict::High,
        Verdict::Critical => pb::Verdict::Critical,
    }
}

pub fn verdict_name(v: pb::Verdict) -> &'static str {
    match v {
        pb::Verdict::Unspecified => "",
        pb::Verdict::Safe => "SAFE",
        pb::Verdict::Warning => "WARNING",
        pb::Verdict::High => "HIGH",
        pb::Verdict::Critical => "CRITICAL",
    }
}

fn verdict_from_name(s: &str) -> pb::Verdict {
    match s.to_ascii_uppercase().as_str() {
        "SAFE" => pb::Verdict::Safe,
        "WARNING" => pb::Verdict::Warning,
        "HIGH" => pb::Verdict::High,
        "CRITICAL" => pb::Verdict::Critical,
        _ => pb::Verdict::Unspecified,
    }
}

/// Whole seconds left, at least 1 while any time is left; 0 = never.
fn secs_left(remaining: Option<Duration>) -> u64 {
    remaining
        .map(|d| d.as_secs().max(u64::from(!d.is_zero())))
        .unwrap_or(0)
}

pub fn rule(r: &Rule) -> pb::Rule {
    pb::Rule {
        action: pb_rule_kind(r.kind) as i32,
        cidr: r.prefix.to_string(),
        expires_in_seconds: secs_left(r.remaining),
        expired: r.remaining == Some(Duration::ZERO),
        reason: r.reason_text(),
        hits: r.hits,
        rate_pps: r.rate_pps,
        burst: r.burst,
    }
}

pub fn rule_view(r: &RuleView) -> pb::Rule {
    pb::Rule {
        action: pb_rule_kind(r.kind) as i32,
        cidr: r.prefix.clone(),
        expires_in_seconds: secs_left(r.remaining),
        expired: r.remaining == Some(Duration::ZERO),
        reason: r.reason.clone(),
        hits: r.hits,
        rate_pps: r.rate_pps,
        burst: r.burst,
    }
}

pub fn signature_rule(v: &SignatureView) -> pb::SignatureRule {
    pb::SignatureRule {
        id: v.rule.id,
        slot: v.slot,
        rule: Signature::from_rule(&v.rule).to_string(),
        rate_pps: v.rule.rate_pps,
        expires_in_seconds: secs_left(v.remaining),
        expired: v.remaining == Some(Duration::ZERO),
        exempt_known_good: v.rule.flags & sig_flags::EXEMPT_KNOWN_GOOD != 0,
        matched: v.matched,
        dropped: v.dropped,
        exempted: v.exempted,
        reason: ReasonCode::from_u32(v.rule.reason).name().to_string(),
    }
}

/// A known-good source, `now_ns` being the data plane's clock
/// (`dataplane::monotonic_now_ns`).
pub fn known_good_source(g: &KnownGoodView, now_ns: u64) -> pb::KnownGoodSource {
    pb::KnownGoodSource {
        address: g.addr.to_string(),
        exempted: g.entry.exempted,
        refreshed_seconds_ago: now_ns.saturating_sub(g.entry.refreshed_ns) / 1_000_000_000,
    }
}

pub fn event(e: &JournalEvent) -> pb::Event {
    pb::Event {
        id: e.id,
        time_unix_ns: e.time_unix_ns,
        source: e.source.to_string(),
        action: pb_event_action(e.action) as i32,
        verdict: verdict_from_name(&e.verdict) as i32,
        confidence: e.confidence,
        anomaly: e.anomaly,
        threat: e.threat,
        rule: e.rule.clone(),
        reason: e.reason.clone(),
        features: e.features.clone(),
    }
}

pub fn thresholds(t: &pb::Thresholds) -> Result<Thresholds, Status> {
    for (name, v) in [
        ("low", t.low),
        ("medium_confidence", t.medium_confidence),
        ("medium", t.medium),
        ("high_confidence", t.high_confidence),
        ("high", t.high),
    ] {
        if !v.is_finite() || !(0.0..=1.0).contains(&v) {
            return Err(invalid(name, format!("{v} is outside [0, 1]")));
        }
    }
    if t.medium > t.high {
        return Err(invalid(
            "medium",
            format!("{} is above high ({})", t.medium, t.high),
        ));
    }
    if t.medium_confidence > t.high_confidence {
        return Err(invalid(
            "medium_confidence",
            format!(
                "{} is above high_confidence ({})",
                t.medium_confidence, t.high_confidence
            ),
        ));
    }
    Ok(Thresholds {
        low: t.low,
        medium_confidence: t.medium_confidence,
        medium: t.medium,
        high_confidence: t.high_confidence,
        high: t.high,
    })
}

pub fn pb_thresholds(t: &Thresholds) -> pb::Thresholds {
    pb::Thresholds {
        low: t.low,
        medium_confidence: t.medium_confidence,
        medium: t.medium,
        high_confidence: t.high_confidence,
        high: t.high,
    }
}

pub fn ip(field: &str, s: &str) -> Result<IpAddr, Status> {
    s.parse::<IpAddr>()
        .map_err(|_| invalid(field, format!("{s:?} is not an IP address")))
}

pub fn u16_field(field: &str, v: u32) -> Result<u16, Status> {
    u16::try_from(v).map_err(|_| invalid(field, format!("{v} is more than 65535")))
}

pub fn u8_field(field: &str, v: u32) -> Result<u8, Status> {
    u8::try_from(v).map_err(|_| invalid(field, format!("{v} is more than 255")))
}

/// One packet of an Analyze request, as the data plane would sample it.
pub fn sample(s: &pb::Sample) -> Result<PacketSample, Status> {
    let src = ip("sample.src", &s.src)?;
    let dst = ip("sample.dst", &s.dst)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(invalid(
            "sample.dst",
            "not the same address family as sample.src",
        ));
    }
    if s.payload.len() > u16::MAX as usize {
        return Err(invalid("sample.payload", "longer than 65535 bytes"));
    }
    let addr16 = |a: std::net::IpAddr| -> [u8; 16] {
        let mut out = [0u8; 16];
        match a {
            std::net::IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
            std::net::IpAddr::V6(v6) => out = v6.octets(),
        }
        out
    };
    let valid = s.payload.len().min(SAMPLE_PAYLOAD_LEN);
    let mut payload = [0u8; SAMPLE_PAYLOAD_LEN];
    payload[..valid].copy_from_slice(&s.payload[..valid]);
    Ok(PacketSample {
        timestamp_ns: crate::dataplane::monotonic_now_ns(),
        packet_len: s.packet_length,
        src_addr: addr16(src),
        dst_addr: addr16(dst),
        src_port: u16_field("sample.src_port", s.src_port)?,
        dst_port: u16_field("sample.dst_port", s.dst_port)?,
        payload_len: s.payload.len() as u16,
        family: if src.is_ipv4() { 4 } else { 6 },
        protocol: u8_field("sample.protocol", s.protocol)?,
        tcp_flags: u8_field("sample.tcp_flags", s.tcp_flags)?,
        ttl: u8_field("sample.ttl", s.ttl)?,
        payload_valid: valid as u8,
        payload,
        ..PacketSample::ZERO
    })
}

pub fn model_info(m: ModelInfo) -> pb::ModelInfo {
    pb::ModelInfo {
        version: m.version,
        schema_version: m.schema_version,
        feature_names: m.feature_names,
        created_at: m.created_at,
        training_data_sha256: m.training_data_sha256,
        metrics: m
            .metrics
            .into_iter()
            .map(|(name, value)| pb::Metric { name, value })
            .collect(),
        path: m.path.map(|p| p.display().to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
