//! `phantomctl`: the operator's and scripts' client for a running agent's
//! control API. Human-readable output, or `--json` (one JSON document per
//! reply; one per line for `events --follow`).
//!
//! `cli` defines the verbs, `verbs/` runs each one, `render` prints replies.
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use phantomnet_agent::api::{
    client::{ClientTls, connect_tls, connect_unix},
    pb::{self, agent_client::AgentClient},
};
use tonic::transport::Channel;

mod cli;
mod render;
mod verbs;

use cli::{Cli, Command};
use phantomnet_common::RuleKind;
use render::Output;
use verbs::add::Add;

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
    let c = &mut c;
    let out = &Output { json: cli.json };
    match cli.command {
        // Answered above, before connecting.
        Command::GenerateDocs { .. } => Ok(()),
        Command::Status => verbs::status::run(c, out).await,
        Command::Block { cidr, ttl, reason } => {
            let r = pb::BlockRequest {
                cidr,
                ttl_seconds: ttl,
                reason,
            };
            verbs::add::run(c, out, Add::Block(r)).await
        }
        Command::Throttle {
            cidr,
            rate,
            burst,
            ttl,
            reason,
        } => {
            let r = pb::ThrottleRequest {
                cidr,
                ttl_seconds: ttl,
                rate_pps: rate,
                burst,
                reason,
            };
            verbs::add::run(c, out, Add::Throttle(r)).await
        }
        Command::Deceive { cidr, ttl, reason } => {
            let r = pb::DeceiveRequest {
                cidr,
                ttl_seconds: ttl,
                reason,
            };
            verbs::add::run(c, out, Add::Deceive(r)).await
        }
        Command::Allow { cidr } => {
            verbs::add::run(c, out, Add::Allow(pb::PrefixRequest { cidr })).await
        }
        Command::Unblock { cidr } => verbs::remove::run(c, out, RuleKind::Block, &cidr).await,
        Command::Unthrottle { cidr } => verbs::remove::run(c, out, RuleKind::Throttle, &cidr).await,
        Command::Disallow { cidr } => verbs::remove::run(c, out, RuleKind::Allow, &cidr).await,
        Command::Undeceive { cidr } => verbs::remove::run(c, out, RuleKind::Deceive, &cidr).await,
        Command::Rules { action } => verbs::rules::run(c, out, action).await,
        Command::Signature { action } => verbs::signature::run(c, out, action).await,
        Command::KnownGood { action } => verbs::known_good::run(c, out, action).await,
        Command::Events {
            source,
            action,
            limit,
            follow,
        } => verbs::events::run(c, out, source.as_deref(), action, limit, follow).await,
        Command::Model { load } => verbs::model::run(c, out, load.as_deref()).await,
        Command::Thresholds {
            low,
            medium_confidence,
            medium,
            high_confidence,
            high,
        } => {
            let ch = verbs::thresholds::Changes {
                low,
                medium_confidence,
                medium,
                high_confidence,
                high,
            };
            verbs::thresholds::run(c, out, ch).await
        }
        Command::Mode { mode } => verbs::mode::set_mode(c, out, mode).await,
        Command::Sampling { every } => verbs::mode::set_sampling(c, out, every).await,
    }
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
