//! The gRPC handlers: validate every field first (a rejected request changes
//! nothing), call the core, convert the reply.
use std::{net::SocketAddr, path::PathBuf, pin::Pin, sync::Arc};

use phantomnet_common::{PacketSample, SAMPLE_PAYLOAD_LEN};
use tokio_stream::{Stream, StreamExt, wrappers::BroadcastStream};
use tonic::{Request, Response, Status};

use super::{
    convert::{self, invalid, status},
    pb,
};
use crate::{
    daemon::AgentCore,
    features::{FeatureVector, extract},
    flow::{FlowConfig, FlowTable},
    journal::EventQuery,
};

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
        f: impl FnOnce(&AgentCore) -> Result<T, crate::daemon::CoreError> + Send + 'static,
    ) -> Result<T, Status> {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || f(&core))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

fn sample_of(s: &pb::Sample) -> Result<PacketSample, Status> {
    let src = convert::ip("sample.src", &s.src)?;
    let dst = convert::ip("sample.dst", &s.dst)?;
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
        ifindex: 0,
        packet_len: s.packet_length,
        src_addr: addr16(src),
        dst_addr: addr16(dst),
        src_port: convert::u16_field("sample.src_port", s.src_port)?,
        dst_port: convert::u16_field("sample.dst_port", s.dst_port)?,
        payload_len: s.payload.len() as u16,
        vlan_id: 0,
        family: if src.is_ipv4() { 4 } else { 6 },
        protocol: convert::u8_field("sample.protocol", s.protocol)?,
        tcp_flags: convert::u8_field("sample.tcp_flags", s.tcp_flags)?,
        ttl: convert::u8_field("sample.ttl", s.ttl)?,
        action: 0,
        payload_valid: valid as u8,
        flags: 0,
        icmp_type: 0,
        payload,
    })
}

#[tonic::async_trait]
impl pb::agent_server::Agent for AgentService {
    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let s = self.blocking(|c| c.status()).await?;
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

    async fn block(
        &self,
        req: Request<pb::BlockRequest>,
    ) -> Result<Response<pb::RuleReply>, Status> {
        let r = req.into_inner();
        let p = convert::prefix("cidr", &r.cidr)?;
        let ttl = convert::ttl(r.ttl_seconds)?;
        let reason = convert::reason(&r.reason)?.to_string();
        let rule = self.blocking(move |c| c.block(&p, ttl, &reason)).await?;
        Ok(Response::new(pb::RuleReply {
            rule: Some(convert::rule(&rule)),
        }))
    }

    async fn unblock(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RemoveReply>, Status> {
        let p = convert::prefix("cidr", &req.into_inner().cidr)?;
        self.blocking(move |c| c.unblock(&p)).await?;
        Ok(Response::new(pb::RemoveReply {
            cidr: p.to_string(),
        }))
    }

    async fn throttle(
        &self,
        req: Request<pb::ThrottleRequest>,
    ) -> Result<Response<pb::RuleReply>, Status> {
        let r = req.into_inner();
        let p = convert::prefix("cidr", &r.cidr)?;
        let ttl = convert::ttl(r.ttl_seconds)?;
        let rate = convert::positive("rate_pps", r.rate_pps, 1_000_000_000)?;
        let burst = convert::positive("burst", r.burst, u32::MAX)?;
        let reason = convert::reason(&r.reason)?.to_string();
        let rule = self
            .blocking(move |c| c.throttle(&p, ttl, rate, burst, &reason))
            .await?;
        Ok(Response::new(pb::RuleReply {
            rule: Some(convert::rule(&rule)),
        }))
    }

    async fn unthrottle(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RemoveReply>, Status> {
        let p = convert::prefix("cidr", &req.into_inner().cidr)?;
        self.blocking(move |c| c.unthrottle(&p)).await?;
        Ok(Response::new(pb::RemoveReply {
            cidr: p.to_string(),
        }))
    }

    async fn allow(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RuleReply>, Status> {
        let p = convert::prefix("cidr", &req.into_inner().cidr)?;
        let rule = self.blocking(move |c| c.allow(&p)).await?;
        Ok(Response::new(pb::RuleReply {
            rule: Some(convert::rule(&rule)),
        }))
    }

    async fn disallow(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RemoveReply>, Status> {
        let p = convert::prefix("cidr", &req.into_inner().cidr)?;
        self.blocking(move |c| c.disallow(&p)).await?;
        Ok(Response::new(pb::RemoveReply {
            cidr: p.to_string(),
        }))
    }

    async fn deceive(
        &self,
        req: Request<pb::DeceiveRequest>,
    ) -> Result<Response<pb::RuleReply>, Status> {
        let r = req.into_inner();
        let p = convert::prefix("cidr", &r.cidr)?;
        let ttl = convert::ttl(r.ttl_seconds)?;
        let reason = convert::reason(&r.reason)?.to_string();
        if !r.honeypot.is_empty() {
            let target: SocketAddr = r
                .honeypot
                .parse()
                .map_err(|_| invalid("honeypot", format!("{:?} is not ip:port", r.honeypot)))?;
            let known = self
                .core
                .executor()
                .honeypots()
                .iter()
                .any(|h| h.target == target);
            if !known {
                return Err(invalid(
                    "honeypot",
                    format!("{target} is not a configured honeypot target"),
                ));
            }
        }
        let ttl = self.blocking(move |c| c.deceive(&p, ttl, &reason)).await?;
        Ok(Response::new(pb::RuleReply {
            rule: Some(pb::Rule {
                action: pb::Action::Deceive as i32,
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

    async fn undeceive(
        &self,
        req: Request<pb::PrefixRequest>,
    ) -> Result<Response<pb::RemoveReply>, Status> {
        let p = convert::prefix("cidr", &req.into_inner().cidr)?;
        self.blocking(move |c| c.undeceive(&p)).await?;
        Ok(Response::new(pb::RemoveReply {
            cidr: p.to_string(),
        }))
    }

    async fn list_rules(
        &self,
        req: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesReply>, Status> {
        let r = req.into_inner();
        let filter = convert::rule_kind_filter(r.action)?;
        let size = convert::page_size(r.page_size)?;
        let start = convert::page_token(&r.page_token)?.unwrap_or(0) as usize;
        let rules = self.blocking(|c| c.rules()).await?;
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

    async fn list_events(
        &self,
        req: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsReply>, Status> {
        let r = req.into_inner();
        let source = if r.source_prefix.is_empty() {
            None
        } else {
            let p = convert::prefix("source_prefix", &r.source_prefix)?;
            Some(
                ipnet::IpNet::new(p.addr(), p.prefix_len())
                    .map_err(|e| invalid("source_prefix", e))?,
            )
        };
        if r.until_unix_ns != 0 && r.since_unix_ns > r.until_unix_ns {
            return Err(invalid("since_unix_ns", "after until_unix_ns"));
        }
        let q = EventQuery {
            since: (r.since_unix_ns != 0).then_some(r.since_unix_ns),
            until: (r.until_unix_ns != 0).then_some(r.until_unix_ns),
            source,
            action: convert::action_filter(r.action)?,
            verdict: convert::verdict_filter(r.verdict)?
                .map(|v| convert::verdict_name(v).to_string()),
            page_size: convert::page_size(r.page_size)?,
            page_token: convert::page_token(&r.page_token)?,
        };
        let (events, next) = self.blocking(move |c| c.events(&q)).await?;
        Ok(Response::new(pb::ListEventsReply {
            events: events.iter().map(convert::event).collect(),
            next_page_token: next.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let r = req.into_inner();
        let source = if r.source_prefix.is_empty() {
            None
        } else {
            Some(convert::prefix("source_prefix", &r.source_prefix)?)
        };
        let action = convert::action_filter(r.action)?;
        let stream = BroadcastStream::new(self.core.subscribe()).filter_map(move |item| {
            // A watcher too slow to keep up skips what it missed.
            let e = item.ok()?;
            if source.is_some_and(|p| !p.contains(e.source)) {
                return None;
            }
            if action.is_some_and(|a| a != e.action) {
                return None;
            }
            Some(Ok(convert::event(&e)))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn analyze(
        &self,
        req: Request<pb::AnalyzeRequest>,
    ) -> Result<Response<pb::AnalyzeReply>, Status> {
        let r = req.into_inner();
        let source = if r.source.is_empty() {
            None
        } else {
            Some(convert::ip("source", &r.source)?)
        };
        let (features, payload, source) = match r.input {
            None => return Err(invalid("input", "one of features or sample is required")),
            Some(pb::analyze_request::Input::Features(f)) => {
                let fv =
                    FeatureVector::from_slice(&f.values).map_err(|e| invalid("features", e))?;
                (fv, Vec::new(), source)
            }
            Some(pb::analyze_request::Input::Sample(s)) => {
                let sample = sample_of(&s)?;
                let mut flows = FlowTable::new(FlowConfig::default());
                let (_, stats) = flows.observe(&sample);
                let fv = extract(&sample, &stats).map_err(|e| invalid("sample", e))?;
                let src = source.or_else(|| s.src.parse().ok());
                (fv, s.payload, src)
            }
        };
        let a = self
            .blocking(move |c| c.analyze(source, features, &payload))
            .await?;
        Ok(Response::new(pb::AnalyzeReply {
            action: convert::pb_action(a.action) as i32,
            rule: a.rule.to_string(),
            prediction: u32::from(a.scores.prediction),
            confidence: a.scores.confidence,
            anomaly: a.scores.anomaly,
            threat: a.threat.score,
            verdict: convert::pb_verdict(a.threat.verdict) as i32,
            signatures: a
                .threat
                .signatures
                .iter()
                .map(|s| format!("{s:?}"))
                .collect(),
            feed_label: a
                .threat
                .feed_label
                .as_deref()
                .unwrap_or_default()
                .to_string(),
            features: a.features.as_array().to_vec(),
            explanation: format!(
                "{} by {}: prediction {}, confidence {:.3}, anomaly {:.3}, threat {:.3} ({})",
                a.action,
                a.rule,
                a.scores.prediction,
                a.scores.confidence,
                a.scores.anomaly,
                a.threat.score,
                a.threat.verdict
            ),
        }))
    }

    async fn get_model(
        &self,
        _: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        let m = self.blocking(|c| c.model_info()).await?;
        Ok(Response::new(model_info(m)))
    }

    async fn load_model(
        &self,
        req: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        let path = req.into_inner().path;
        if path.is_empty() {
            return Err(invalid("path", "required"));
        }
        let path = PathBuf::from(path);
        let m = self.blocking(move |c| c.load_model(&path)).await?;
        Ok(Response::new(model_info(m)))
    }

    async fn get_thresholds(
        &self,
        _: Request<pb::GetThresholdsRequest>,
    ) -> Result<Response<pb::Thresholds>, Status> {
        let t = self.blocking(|c| c.thresholds()).await?;
        Ok(Response::new(convert::pb_thresholds(&t)))
    }

    async fn set_thresholds(
        &self,
        req: Request<pb::Thresholds>,
    ) -> Result<Response<pb::Thresholds>, Status> {
        let t = convert::thresholds(&req.into_inner())?;
        let t = self.blocking(move |c| c.set_thresholds(t)).await?;
        Ok(Response::new(convert::pb_thresholds(&t)))
    }

    async fn set_mode(
        &self,
        req: Request<pb::SetModeRequest>,
    ) -> Result<Response<pb::SetModeReply>, Status> {
        let mode = match pb::Mode::try_from(req.into_inner().mode) {
            Ok(pb::Mode::Enforce) => pb::Mode::Enforce,
            Ok(pb::Mode::DryRun) => pb::Mode::DryRun,
            _ => return Err(invalid("mode", "must be MODE_ENFORCE or MODE_DRY_RUN")),
        };
        self.blocking(move |c| c.set_dry_run(mode == pb::Mode::DryRun))
            .await?;
        Ok(Response::new(pb::SetModeReply { mode: mode as i32 }))
    }

    async fn set_sampling(
        &self,
        req: Request<pb::SetSamplingRequest>,
    ) -> Result<Response<pb::SetSamplingReply>, Status> {
        let every = req.into_inner().every;
        let every = self.blocking(move |c| c.set_sampling(every)).await?;
        Ok(Response::new(pb::SetSamplingReply { every }))
    }
}

fn model_info(m: crate::daemon::ModelInfo) -> pb::ModelInfo {
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
