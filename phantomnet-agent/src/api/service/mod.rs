//! The gRPC handlers, grouped by RPC family: [`rules`], [`signatures`],
//! [`events`], [`detection`] and [`mode`]. Each validates every field first (a rejected
//! request changes nothing), calls the core, and converts the reply; the
//! trait impl here only dispatches.
mod detection;
mod events;
mod mode;
mod rules;
mod signatures;

use std::{pin::Pin, sync::Arc};

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{convert::status, pb};
use crate::daemon::{AgentCore, CoreError};

pub struct AgentService {
    core: Arc<AgentCore>,
}

impl AgentService {
    pub fn new(core: Arc<AgentCore>) -> AgentService {
        AgentService { core }
    }

    /// Runs a core call on the blocking pool (it may take locks and make
    /// syscalls or run `nft`).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&AgentCore) -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, Status> {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || f(&core))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl pb::agent_server::Agent for AgentService {
    type WatchEventsStream = EventStream;

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        mode::status(self, req).await
    }

    async fn block(
        &self,
        req: Request<pb::BlockRequest>,
    ) -> Result<Response<pb::RuleReply>, Status> {
        rules::block(self, req).await
    }

    async fn unblock(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RemoveReply>, Status> {
        rules::unblock(self, req).await
    }

    async fn throttle(
        &self,
        req: Request<pb::ThrottleRequest>,
    ) -> Result<Response<pb::RuleReply>, Status> {
        rules::throttle(self, req).await
    }

    async fn unthrottle(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RemoveReply>, Status> {
        rules::unthrottle(self, req).await
    }

    async fn allow(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RuleReply>, Status> {
        rules::allow(self, req).await
    }

    async fn disallow(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RemoveReply>, Status> {
        rules::disallow(self, req).await
    }

    async fn deceive(
        &self,
        req: Request<pb::DeceiveRequest>,
    ) -> Result<Response<pb::RuleReply>, Status> {
        rules::deceive(self, req).await
    }

    async fn undeceive(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RemoveReply>, Status> {
        rules::undeceive(self, req).await
    }

    async fn add_signature(
        &self,
        req: Request<pb::AddSignatureRequest>,
    ) -> Result<Response<pb::SignatureReply>, Status> {
        signatures::add_signature(self, req).await
    }

    async fn remove_signature(
        &self,
        req: Request<pb::RemoveSignatureRequest>,
    ) -> Result<Response<pb::RemoveSignatureReply>, Status> {
        signatures::remove_signature(self, req).await
    }

    async fn list_signatures(
        &self,
        req: Request<pb::ListSignaturesRequest>,
    ) -> Result<Response<pb::ListSignaturesReply>, Status> {
        signatures::list_signatures(self, req).await
    }

    async fn add_known_good(
        &self,
        req: Request<pb::KnownGoodRequest>,
    ) -> Result<Response<pb::KnownGoodReply>, Status> {
        signatures::add_known_good(self, req).await
    }

    async fn remove_known_good(
        &self,
        req: Request<pb::KnownGoodRequest>,
    ) -> Result<Response<pb::KnownGoodReply>, Status> {
        signatures::remove_known_good(self, req).await
    }

    async fn list_known_good(
        &self,
        req: Request<pb::ListKnownGoodRequest>,
    ) -> Result<Response<pb::ListKnownGoodReply>, Status> {
        signatures::list_known_good(self, req).await
    }

    async fn list_rules(
        &self,
        req: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesReply>, Status> {
        rules::list_rules(self, req).await
    }

    async fn list_events(
        &self,
        req: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsReply>, Status> {
        events::list_events(self, req).await
    }

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        events::watch_events(self, req).await
    }

    async fn analyze(
        &self,
        req: Request<pb::AnalyzeRequest>,
    ) -> Result<Response<pb::AnalyzeReply>, Status> {
        detection::analyze(self, req).await
    }

    async fn get_model(
        &self,
        req: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        detection::get_model(self, req).await
    }

    async fn load_model(
        &self,
        req: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        detection::load_model(self, req).await
    }

    async fn get_thresholds(
        &self,
        req: Request<pb::GetThresholdsRequest>,
    ) -> Result<Response<pb::Thresholds>, Status> {
        detection::get_thresholds(self, req).await
    }

    async fn set_thresholds(
        &self,
        req: Request<pb::Thresholds>,
    ) -> Result<Response<pb::Thresholds>, Status> {
        detection::set_thresholds(self, req).await
    }

    async fn set_mode(
        &self,
        req: Request<pb::SetModeRequest>,
    ) -> Result<Response<pb::SetModeReply>, Status> {
        mode::set_mode(self, req).await
    }

    async fn set_sampling(
        &self,
        req: Request<pb::SetSamplingRequest>,
    ) -> Result<Response<pb::SetSamplingReply>, Status> {
        mode::set_sampling(self, req).await
    }
}
