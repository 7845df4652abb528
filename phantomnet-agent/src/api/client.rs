//! Connecting to an agent: over its Unix socket, or over TCP with mutual
//! TLS. Used by `phantomctl` and by the tests.
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use super::{ApiError, pb::agent_client::AgentClient};

/// A client over the agent's Unix socket.
pub async fn connect_unix(path: impl AsRef<Path>) -> Result<AgentClient<Channel>, ApiError> {
    Ok(AgentClient::new(unix_channel(path).await?))
}

/// A channel over the agent's Unix socket, for any of its services
/// (the agent, health, reflection).
pub async fn unix_channel(path: impl AsRef<Path>) -> Result<Channel, ApiError> {
    let path: PathBuf = path.as_ref().to_path_buf();
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://[::]:0")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await?;
    Ok(channel)
}

/// TLS material for a TCP client.
pub struct ClientTls<'a> {
    pub ca: &'a Path,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    /// The name in the server's certificate (default: the URL's host).
    pub domain: Option<&'a str>,
}

fn read(path: &Path) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path).map_err(|e| ApiError::Tls {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// A client over TCP with TLS (`https://host:port`); the agent requires a
/// client certificate, so `cert` and `key` must be given to be served.
pub async fn connect_tls(url: &str, tls: &ClientTls<'_>) -> Result<AgentClient<Channel>, ApiError> {
    let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(tls.ca)?));
    if let (Some(cert), Some(key)) = (tls.cert, tls.key) {
        cfg = cfg.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(d) = tls.domain {
        cfg = cfg.domain_name(d);
    }
    let channel = Endpoint::from_shared(url.to_string())?
        .tls_config(cfg)?
        .connect()
        .await?;
    Ok(AgentClient::new(channel))
}
