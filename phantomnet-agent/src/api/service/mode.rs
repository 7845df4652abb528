//! Status, enforce / dry-run mode and sampling.
use tonic::{Request, Response, Status};

use super::AgentService;
use crate::api::{convert::invalid, pb};

pub(super) async fn status(
    svc: &AgentService,
    _: Request<pb::StatusRequest>,
) -> Result<Response<pb::StatusReply>, Status> {
    let s = svc.blocking(|c| c.status()).await?;
    Ok(Response::new(pb::StatusReply {
        version: s.version.to_string(),
        interfaces: s
            .interfaces
            .iter()
            .map(|i| pb::Interface {
                name: i.name.clone(),
                ifindex: i.ifindex,
                xdp_mode: i.mode.to_string(),
            })
            .collect(),
        uptime_seconds: s.uptime.as_secs(),
        counters: phantomnet_common::Outcome::ALL
            .iter()
            .map(|o| pb::OutcomeCounter {
                outcome: o.name().to_string(),
                packets: s.counters.get(*o).packets,
                bytes: s.counters.get(*o).bytes,
            })
            .collect(),
        model_version: s.model_version,
        mode: if s.dry_run {
            pb::Mode::DryRun
        } else {
            pb::Mode::Enforce
        } as i32,
        sample_every: s.sample_every,
        samples_read: s.samples_read,
        decisions: s.decisions,
    }))
}

pub(super) async fn set_mode(
    svc: &AgentService,
    req: Request<pb::SetModeRequest>,
) -> Result<Response<pb::SetModeReply>, Status> {
    let mode = match pb::Mode::try_from(req.into_inner().mode) {
        Ok(pb::Mode::Enforce) => pb::Mode::Enforce,
        Ok(pb::Mode::DryRun) => pb::Mode::DryRun,
        _ => return Err(invalid("mode", "must be MODE_ENFORCE or MODE_DRY_RUN")),
    };
    svc.blocking(move |c| c.set_dry_run(mode == pb::Mode::DryRun))
        .await?;
    Ok(Response::new(pb::SetModeReply { mode: mode as i32 }))
}

pub(super) async fn set_sampling(
    svc: &AgentService,
    req: Request<pb::SetSamplingRequest>,
) -> Result<Response<pb::SetSamplingReply>, Status> {
    let every = req.into_inner().every;
    let every = svc.blocking(move |c| c.set_sampling(every)).await?;
    Ok(Response::new(pb::SetSamplingReply { every }))
}
