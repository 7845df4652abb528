//! Block, throttle, allow and deceive: add, remove, list.
use tonic::{Request, Response, Status};

use super::AgentService;
use crate::api::{
    convert::{self, invalid},
    pb,
};

pub(super) async fn block(
    svc: &AgentService,
    req: Request<pb::BlockRequest>,
) -> Result<Response<pb::RuleReply>, Status> {
    let r = req.into_inner();
    let p = convert::prefix("cidr", &r.cidr)?;
    let ttl = convert::ttl(r.ttl_seconds)?;
    let reason = convert::reason(&r.reason)?.to_string();
    let rule = svc.blocking(move |c| c.block(&p, ttl, &reason)).await?;
    Ok(Response::new(pb::RuleReply {
        rule: Some(convert::rule(&rule)),
    }))
}

pub(super) async fn unblock(
    svc: &AgentService,
    req: Request<pb::PrefixRequest>,
) -> Result<Response<pb::RemoveReply>, Status> {
    let p = convert::prefix("cidr", &req.into_inner().cidr)?;
    svc.blocking(move |c| c.unblock(&p)).await?;
    Ok(Response::new(pb::RemoveReply {
        cidr: p.to_string(),
    }))
}

pub(super) async fn throttle(
    svc: &AgentService,
    req: Request<pb::ThrottleRequest>,
) -> Result<Response<pb::RuleReply>, Status> {
    let r = req.into_inner();
    let p = convert::prefix("cidr", &r.cidr)?;
    let ttl = convert::ttl(r.ttl_seconds)?;
    let rate = convert::positive("rate_pps", r.rate_pps, convert::MAX_RATE_PPS)?;
    let burst = convert::positive("burst", r.burst, u32::MAX)?;
    let reason = convert::reason(&r.reason)?.to_string();
    let rule = svc
        .blocking(move |c| c.throttle(&p, ttl, rate, burst, &reason))
        .await?;
    Ok(Response::new(pb::RuleReply {
        rule: Some(convert::rule(&rule)),
    }))
}

pub(super) async fn unthrottle(
    svc: &AgentService,
    req: Request<pb::PrefixRequest>,
) -> Result<Response<pb::RemoveReply>, Status> {
    let p = convert::prefix("cidr", &req.into_inner().cidr)?;
    svc.blocking(move |c| c.unthrottle(&p)).await?;
    Ok(Response::new(pb::RemoveReply {
        cidr: p.to_string(),
    }))
}

pub(super) async fn allow(
    svc: &AgentService,
    req: Request<pb::PrefixRequest>,
) -> Result<Response<pb::RuleReply>, Status> {
    let p = convert::prefix("cidr", &req.into_inner().cidr)?;
    let rule = svc.blocking(move |c| c.allow(&p)).await?;
    Ok(Response::new(pb::RuleReply {
        rule: Some(convert::rule(&rule)),
    }))
}

pub(super) async fn disallow(
    svc: &AgentService,
    req: Request<pb::PrefixRequest>,
) -> Result<Response<pb::RemoveReply>, Status> {
    let p = convert::prefix("cidr", &req.into_inner().cidr)?;
    svc.blocking(move |c| c.disallow(&p)).await?;
    Ok(Response::new(pb::RemoveReply {
        cidr: p.to_string(),
    }))
}

pub(super) async fn deceive(
    svc: &AgentService,
    req: Request<pb::DeceiveRequest>,
) -> Result<Response<pb::RuleReply>, Status> {
    let r = req.into_inner();
    let p = convert::prefix("cidr", &r.cidr)?;
    let ttl = convert::ttl(r.ttl_seconds)?;
    let reason = convert::reason(&r.reason)?.to_string();
    let ttl = svc.blocking(move |c| c.deceive(&p, ttl, &reason)).await?;
    Ok(Response::new(pb::RuleReply {
        rule: Some(pb::Rule {
            action: convert::pb_rule_kind(phantomnet_common::RuleKind::Deceive) as i32,
            cidr: p.to_string(),
            expires_in_seconds: ttl.as_secs(),
            expired: false,
            reason: r.reason,
            hits: 0,
            rate_pps: 0,
            burst: 0,
        }),
    }))
}

pub(super) async fn undeceive(
    svc: &AgentService,
    req: Request<pb::PrefixRequest>,
) -> Result<Response<pb::RemoveReply>, Status> {
    let p = convert::prefix("cidr", &req.into_inner().cidr)?;
    svc.blocking(move |c| c.undeceive(&p)).await?;
    Ok(Response::new(pb::RemoveReply {
        cidr: p.to_string(),
    }))
}

pub(super) async fn list_rules(
    svc: &AgentService,
    req: Request<pb::ListRulesRequest>,
) -> Result<Response<pb::ListRulesReply>, Status> {
    let r = req.into_inner();
    let filter = convert::rule_kind_filter(r.action)?;
    let size = convert::page_size(r.page_size)?;
    let start = convert::page_token(&r.page_token)?.unwrap_or(0) as usize;
    let rules = svc.blocking(|c| c.rules()).await?;
    let matching: Vec<pb::Rule> = rules
        .iter()
        .filter(|r| filter.is_none_or(|k| r.kind == k))
        .map(convert::rule_view)
        .collect();
    if start > matching.len() {
        return Err(invalid("page_token", "past the end of the list"));
    }
    let end = (start + size).min(matching.len());
    Ok(Response::new(pb::ListRulesReply {
        rules: matching[start..end].to_vec(),
        next_page_token: if end < matching.len() {
            end.to_string()
        } else {
            String::new()
        },
    }))
}
