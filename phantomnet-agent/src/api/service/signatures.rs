//! Signature rules and known-good sources: add, remove, list.
use tonic::{Request, Response, Status};

use super::AgentService;
use crate::{
    api::{
        convert::{self, invalid},
        pb,
    },
    dataplane::monotonic_now_ns,
};

pub(super) async fn add_signature(
    svc: &AgentService,
    req: Request<pb::AddSignatureRequest>,
) -> Result<Response<pb::SignatureReply>, Status> {
    let r = req.into_inner();
    let sig = convert::signature(&r.rule)?;
    let ttl = convert::signature_ttl(r.ttl_seconds)?;
    let rate = convert::signature_rate(r.rate_pps)?;
    let exempt = r.exempt_known_good;
    let view = svc
        .blocking(move |c| c.add_signature(sig, ttl, rate, exempt))
        .await?;
    Ok(Response::new(pb::SignatureReply {
        rule: Some(convert::signature_rule(&view)),
    }))
}

pub(super) async fn remove_signature(
    svc: &AgentService,
    req: Request<pb::RemoveSignatureRequest>,
) -> Result<Response<pb::RemoveSignatureReply>, Status> {
    let id = convert::signature_id(req.into_inner().id)?;
    svc.blocking(move |c| c.remove_signature(id)).await?;
    Ok(Response::new(pb::RemoveSignatureReply { id }))
}

pub(super) async fn list_signatures(
    svc: &AgentService,
    _req: Request<pb::ListSignaturesRequest>,
) -> Result<Response<pb::ListSignaturesReply>, Status> {
    let views = svc.blocking(|c| c.signatures()).await?;
    Ok(Response::new(pb::ListSignaturesReply {
        rules: views.iter().map(convert::signature_rule).collect(),
    }))
}

pub(super) async fn add_known_good(
    svc: &AgentService,
    req: Request<pb::KnownGoodRequest>,
) -> Result<Response<pb::KnownGoodReply>, Status> {
    let a = convert::ip("address", &req.into_inner().address)?;
    svc.blocking(move |c| c.vouch(a)).await?;
    Ok(Response::new(pb::KnownGoodReply {
        address: a.to_string(),
    }))
}

pub(super) async fn remove_known_good(
    svc: &AgentService,
    req: Request<pb::KnownGoodRequest>,
) -> Result<Response<pb::KnownGoodReply>, Status> {
    let a = convert::ip("address", &req.into_inner().address)?;
    svc.blocking(move |c| c.unvouch(a)).await?;
    Ok(Response::new(pb::KnownGoodReply {
        address: a.to_string(),
    }))
}

/// Paginated like ListRules (an offset into the list sorted by address).
pub(super) async fn list_known_good(
    svc: &AgentService,
    req: Request<pb::ListKnownGoodRequest>,
) -> Result<Response<pb::ListKnownGoodReply>, Status> {
    let r = req.into_inner();
    let size = convert::page_size(r.page_size)?;
    let start = convert::page_token(&r.page_token)?.unwrap_or(0) as usize;
    let mut all = svc.blocking(|c| c.known_good()).await?;
    if start > all.len() {
        return Err(invalid("page_token", "past the end of the list"));
    }
    all.sort_by_key(|g| g.addr);
    let now = monotonic_now_ns();
    let end = (start + size).min(all.len());
    Ok(Response::new(pb::ListKnownGoodReply {
        sources: all[start..end]
            .iter()
            .map(|g| convert::known_good_source(g, now))
            .collect(),
        next_page_token: if end < all.len() {
            end.to_string()
        } else {
            String::new()
        },
    }))
}
