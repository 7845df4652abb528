//! The control API (gRPC, `proto/phantomnet/v1/agent.proto`): a thin layer
//! that validates each request, calls into [`crate::daemon::AgentCore`] and
//! maps errors to precise status codes. Served on a Unix socket, or on TCP
//! with mutual TLS only; both take a listener and a shutdown future.
mod authority;
pub mod client;
pub mod convert;
mod service;
pub mod tls;

use std::{future::Future, sync::Arc};

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::{
    StreamExt,
    wrappers::{TcpListenerStream, UnixListenerStream},
};
use tonic::transport::{Server, ServerTlsConfig};

pub use service::AgentService;

use crate::daemon::AgentCore;

/// The generated protobuf types and service.
pub mod pb {
    tonic::include_proto!("phantomnet.v1");
    /// For server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("phantomnet_descriptor");
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("TLS material {path}: {reason}")]
    Tls { path: String, reason: String },
}

/// The agent service with the standard health service and server reflection.
fn router(
    core: Arc<AgentCore>,
    builder: &mut Server,
) -> Result<tonic::transport::server::Router, ApiError> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let agent = pb::agent_server::AgentServer::new(AgentService::new(core));
    // Reflection in both versions: v1, and v1alpha for the clients (grpcurl
    // before 1.9, grpcio's reflection module, Postman) that still ask it.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;
    // The reporter sets the status synchronously through a watch channel.
    let reporter = health_reporter.clone();
    tokio::spawn(async move {
        reporter
            .set_serving::<pb::agent_server::AgentServer<AgentService>>()
            .await;
    });
    Ok(builder
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(agent))
}

/// Serves on a Unix socket until `shutdown`. Each connection goes through
/// [`authority::relay`], so that clients which send the socket's path as
/// the `:authority` (gRPC's C core, grpc-java) work on their defaults.
pub async fn serve_unix(
    core: Arc<AgentCore>,
    listener: UnixListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ApiError> {
    let incoming = UnixListenerStream::new(listener).map(|conn| {
        conn.map(|client| {
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                if let Err(e) = authority::relay(client, ours).await {
                    tracing::debug!(error = %e, "control API connection closed");
                }
            });
            theirs
        })
    });
    let mut builder = Server::builder();
    router(core, &mut builder)?
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// Serves on TCP with mutual TLS until `shutdown`. A client without a
/// certificate signed by the configured CA never reaches a handler.
pub async fn serve_tcp(
    core: Arc<AgentCore>,
    listener: TcpListener,
    tls: ServerTlsConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ApiError> {
    let mut builder = Server::builder().tls_config(tls)?;
    router(core, &mut builder)?
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
