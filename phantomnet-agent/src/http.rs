//! The agent's outbound HTTP(S) client (threat feeds, CrowdSec), on
//! reqwest with rustls: the system's roots plus an optional CA bundle,
//! bounded time per request and a bounded body.
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("reading CA bundle {path}: {source}")]
    Ca {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA bundle {path}: {why}")]
    CaInvalid { path: PathBuf, why: String },
    #[error("building the HTTP client: {0}")]
    Build(String),
    #[error("{0}")]
    Request(String),
    #[error("HTTP status {status}")]
    Status { status: u16 },
    #[error("the body is over {limit} bytes")]
    TooLarge { limit: u64 },
}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        // reqwest's Display hides the cause chain ("error sending request").
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        HttpError::Request(msg)
    }
}

/// How long one request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client trusting the system's roots and `ca_file`'s certificates.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("phantomnet-agent/", env!("CARGO_PKG_VERSION")))
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(3))
        .https_only(false);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| HttpError::Ca {
            path: path.to_path_buf(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| HttpError::CaInvalid {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(HttpError::CaInvalid {
                path: path.to_path_buf(),
                why: "no certificate in it".into(),
            });
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| HttpError::Build(e.to_string()))
}

/// The response's body, refused past `limit` bytes (checked on the
/// announced length and while reading).
pub async fn body_limited(mut resp: reqwest::Response, limit: u64) -> Result<Bytes, HttpError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(HttpError::TooLarge { limit });
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(HttpError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
