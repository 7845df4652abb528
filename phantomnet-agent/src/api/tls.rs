//! Mutual TLS for the TCP listener: the server's certificate and key, and
//! the CA that client certificates must chain to (required, not optional).
use std::path::Path;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::ApiError;

fn read(path: &Path) -> Result<Vec<u8>, ApiError> {
    let bytes = std::fs::read(path).map_err(|e| ApiError::Tls {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ApiError::Tls {
            path: path.display().to_string(),
            reason: "not a PEM file".into(),
        });
    }
    Ok(bytes)
}

pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<ServerTlsConfig, ApiError> {
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(read(cert)?, read(key)?))
        .client_ca_root(Certificate::from_pem(read(client_ca)?))
        .client_auth_optional(false))
}
