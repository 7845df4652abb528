//! `phantomctl`: the operator's and scripts' client for a running agent's
//! control API. Human-readable output, or `--json` (one JSON document per
//! reply; one per line for `events --follow`).
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use phantomnet_agent::api::{
    client::{ClientTls, connect_tls, connect_unix},
    convert,
    pb::{self, agent_client::AgentClient},
};
use serde_json::{Value, json};
use tonic::transport::Channel;

mod cli;
use cli::{Cli, Command, ModeArg};

/// A wire action's name ("-" if unspecified or unknown to this build).
fn action_name(v: i32) -> &'static str {
    match convert::action_name(v) {
        "" => "-",
        name => name,
    }
}

/// A wire verdict's name ("-" if unspecified or unknown to this build).
fn verdict_name(v: i32) -> &'static str {
    match pb::Verdict::try_from(v).map(convert::verdict_name) {
        Ok("") | Err(_) => "-",
        Ok(name) => name,
    }
}

fn rule_json(r: &pb::Rule) -> Value {
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

fn event_json(e: &pb::Event) -> Value {
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

fn print_rule(r: &pb::Rule) {
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

fn print_event(e: &pb::Event) {
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

async fn connect(cli: &Cli) -> Result<AgentClient<Channel>> {
    match &cli.endpoint {
        None => connect_unix(&cli.socket)
            .await
            .with_context(|| format!("connecting to {}", cli.socket.display())),
        Some(url) => {
            let Some(ca) = &cli.ca else {
                bail!(
                    "--endpoint needs --ca (and --cert/--key: the agent requires a client certificate)"
                );
            };
            let tls = ClientTls {
                ca,
                cert: cli.cert.as_deref(),
                key: cli.key.as_deref(),
                domain: cli.domain.as_deref(),
            };
            connect_tls(url, &tls)
                .await
                .with_context(|| format!("connecting to {url}"))
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::GenerateDocs { out } = &cli.command {
        use clap::CommandFactory;
        phantomnet_agent::docgen::write_all(Cli::command(), out)?;
        return Ok(());
    }
    let mut c = connect(&cli).await?;
    let out = |v: Value, human: &dyn Fn()| {
        if cli.json {
            println!("{v}");
        } else {
            human();
        }
    };
    match &cli.command {
        // Answered above, before connecting.
        Command::GenerateDocs { .. } => {}
        Command::Status => {
            let s = c.status(pb::StatusRequest {}).await?.into_inner();
            let counters: serde_json::Map<String, Value> = s
                .counters
                .iter()
                .map(|o| {
                    (
                        o.outcome.clone(),
                        json!({"packets": o.packets, "bytes": o.bytes}),
                    )
                })
                .collect();
            let mode = if s.mode == pb::Mode::DryRun as i32 {
                "dry-run"
            } else {
                "enforce"
            };
            let ifaces: Vec<Value> = s
                .interfaces
                .iter()
                .map(|i| json!({"name": i.name, "ifindex": i.ifindex, "xdp_mode": i.xdp_mode}))
                .collect();
            out(
                json!({"version": s.version, "interfaces": ifaces, "uptime_seconds": s.uptime_seconds,
                       "counters": counters, "model_version": s.model_version, "mode": mode,
                       "sample_every": s.sample_every, "samples_read": s.samples_read, "decisions": s.decisions}),
                &|| {
                    println!(
                        "PhantomNet agent {} — up {}s, mode {mode}",
                        s.version, s.uptime_seconds
                    );
                    for i in &s.interfaces {
                        println!(
                            "  interface {} (ifindex {}, {} XDP)",
                            i.name, i.ifindex, i.xdp_mode
                        );
                    }
                    println!(
                        "  model: {}",
                        if s.model_version.is_empty() {
                            "none"
                        } else {
                            &s.model_version
                        }
                    );
                    println!(
                        "  sampling 1 in {}, {} samples read, {} decisions",
                        s.sample_every, s.samples_read, s.decisions
                    );
                    for o in &s.counters {
                        println!(
                            "  {:<17} {:>12} packets {:>14} bytes",
                            o.outcome, o.packets, o.bytes
                        );
                    }
                },
            );
        }
        Command::Block { cidr, ttl, reason } => {
            let r = c
                .block(pb::BlockRequest {
                    cidr: cidr.clone(),
                    ttl_seconds: *ttl,
                    reason: reason.clone(),
                })
                .await?
                .into_inner();
            let rule = r.rule.unwrap_or_default();
            out(rule_json(&rule), &|| print_rule(&rule));
        }
        Command::Throttle {
            cidr,
            rate,
            burst,
            ttl,
            reason,
        } => {
            let r = c
                .throttle(pb::ThrottleRequest {
                    cidr: cidr.clone(),
                    ttl_seconds: *ttl,
                    rate_pps: *rate,
                    burst: *burst,
                    reason: reason.clone(),
                })
                .await?
                .into_inner();
            let rule = r.rule.unwrap_or_default();
            out(rule_json(&rule), &|| print_rule(&rule));
        }
        Command::Deceive { cidr, ttl, reason } => {
            let r = c
                .deceive(pb::DeceiveRequest {
                    cidr: cidr.clone(),
                    ttl_seconds: *ttl,
                    reason: reason.clone(),
                })
                .await?
                .into_inner();
            let rule = r.rule.unwrap_or_default();
            out(rule_json(&rule), &|| print_rule(&rule));
        }
        Command::Allow { cidr } => {
            let r = c
                .allow(pb::PrefixRequest { cidr: cidr.clone() })
                .await?
                .into_inner();
            let rule = r.rule.unwrap_or_default();
            out(rule_json(&rule), &|| print_rule(&rule));
        }
        Command::Unblock { cidr }
        | Command::Unthrottle { cidr }
        | Command::Disallow { cidr }
        | Command::Undeceive { cidr } => {
            let req = pb::PrefixRequest { cidr: cidr.clone() };
            let (verb, r) = match &cli.command {
                Command::Unblock { .. } => ("unblocked", c.unblock(req).await?),
                Command::Unthrottle { .. } => ("unthrottled", c.unthrottle(req).await?),
                Command::Disallow { .. } => ("disallowed", c.disallow(req).await?),
                _ => ("undeceived", c.undeceive(req).await?),
            };
            let r = r.into_inner();
            out(json!({"removed": r.cidr}), &|| {
                println!("{verb} {}", r.cidr)
            });
        }
        Command::Rules { action: a } => {
            let mut rules = Vec::new();
            let mut token = String::new();
            loop {
                let r = c
                    .list_rules(pb::ListRulesRequest {
                        action: a.map_or(pb::Action::Unspecified, convert::pb_rule_kind) as i32,
                        page_size: 1000,
                        page_token: token,
                    })
                    .await?
                    .into_inner();
                rules.extend(r.rules);
                if r.next_page_token.is_empty() {
                    break;
                }
                token = r.next_page_token;
            }
            out(Value::Array(rules.iter().map(rule_json).collect()), &|| {
                for r in &rules {
                    print_rule(r);
                }
            });
        }
        Command::Events {
            source,
            action: a,
            limit,
            follow,
        } => {
            let source = source.clone().unwrap_or_default();
            let act = a.map_or(pb::Action::Unspecified, convert::pb_event_action) as i32;
            if *follow {
                let mut stream = c
                    .watch_events(pb::WatchEventsRequest {
                        source_prefix: source,
                        action: act,
                    })
                    .await?
                    .into_inner();
                while let Some(e) = stream.message().await? {
                    out(event_json(&e), &|| print_event(&e));
                }
            } else {
                let r = c
                    .list_events(pb::ListEventsRequest {
                        source_prefix: source,
                        action: act,
                        page_size: *limit,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                out(
                    Value::Array(r.events.iter().map(event_json).collect()),
                    &|| {
                        for e in &r.events {
                            print_event(e);
                        }
                    },
                );
            }
        }
        Command::Model { load } => {
            let m = match load {
                Some(path) => {
                    c.load_model(pb::LoadModelRequest { path: path.clone() })
                        .await?
                }
                None => c.get_model(pb::GetModelRequest {}).await?,
            }
            .into_inner();
            let metrics: serde_json::Map<String, Value> = m
                .metrics
                .iter()
                .map(|x| (x.name.clone(), json!(x.value)))
                .collect();
            out(
                json!({"version": m.version, "schema_version": m.schema_version, "feature_names": m.feature_names,
                       "created_at": m.created_at, "training_data_sha256": m.training_data_sha256,
                       "metrics": metrics, "path": m.path}),
                &|| {
                    println!(
                        "model {} (schema v{}, {} features), created {}",
                        m.version,
                        m.schema_version,
                        m.feature_names.len(),
                        m.created_at
                    );
                    println!("  path {}", m.path);
                    for x in m
                        .metrics
                        .iter()
                        .filter(|x| x.name.contains("f1") || x.name.contains("auc"))
                    {
                        println!("  {} = {:.4}", x.name, x.value);
                    }
                },
            );
        }
        Command::Thresholds {
            low,
            medium_confidence,
            medium,
            high_confidence,
            high,
        } => {
            let mut t = c
                .get_thresholds(pb::GetThresholdsRequest {})
                .await?
                .into_inner();
            let set = [low, medium_confidence, medium, high_confidence, high]
                .iter()
                .any(|v| v.is_some());
            if set {
                t.low = low.unwrap_or(t.low);
                t.medium_confidence = medium_confidence.unwrap_or(t.medium_confidence);
                t.medium = medium.unwrap_or(t.medium);
                t.high_confidence = high_confidence.unwrap_or(t.high_confidence);
                t.high = high.unwrap_or(t.high);
                t = c.set_thresholds(t).await?.into_inner();
            }
            out(
                json!({"low": t.low, "medium_confidence": t.medium_confidence, "medium": t.medium,
                       "high_confidence": t.high_confidence, "high": t.high}),
                &|| {
                    println!(
                        "low {} medium_confidence {} medium {} high_confidence {} high {}",
                        t.low, t.medium_confidence, t.medium, t.high_confidence, t.high
                    )
                },
            );
        }
        Command::Mode { mode } => {
            let m = match mode {
                ModeArg::Enforce => pb::Mode::Enforce,
                ModeArg::DryRun => pb::Mode::DryRun,
            };
            c.set_mode(pb::SetModeRequest { mode: m as i32 }).await?;
            let name = if matches!(mode, ModeArg::Enforce) {
                "enforce"
            } else {
                "dry-run"
            };
            out(json!({"mode": name}), &|| println!("mode: {name}"));
        }
        Command::Sampling { every } => {
            let r = c
                .set_sampling(pb::SetSamplingRequest { every: *every })
                .await?
                .into_inner();
            out(json!({"every": r.every}), &|| {
                println!("sampling: 1 in {}", r.every)
            });
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A gRPC status prints as its code and message.
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {:?}: {}", s.code(), s.message()),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
