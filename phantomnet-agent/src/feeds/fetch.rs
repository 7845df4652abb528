//! Getting one feed's bytes: a file (re-read when its size or modification
//! time changes) or an HTTPS URL with conditional requests (`If-None-Match`
//! with the last ETag, `If-Modified-Since` with the last `Last-Modified`),
//! so an unchanged list costs a 304 and no parsing.
use std::path::Path;
use std::time::SystemTime;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

use crate::config::FeedSource;
use crate::http::{HttpError, body_limited};

/// What identifies the version last fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Files: (length, modification time).
    pub file: Option<(u64, SystemTime)>,
}

#[derive(Debug)]
pub enum Fetched {
    NotModified,
    Body {
        bytes: Bytes,
        validators: Validators,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is {size} bytes, over max_bytes {limit}")]
    FileTooLarge { path: String, size: u64, limit: u64 },
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Fetches `source` unless it is unchanged since `last`.
pub async fn fetch(
    client: &reqwest::Client,
    source: &FeedSource,
    last: &Validators,
    limit: u64,
) -> Result<Fetched, FetchError> {
    match source {
        FeedSource::File(path) => fetch_file(path, last, limit).await,
        FeedSource::Https(url) => fetch_https(client, url, last, limit).await,
    }
}

async fn fetch_file(path: &Path, last: &Validators, limit: u64) -> Result<Fetched, FetchError> {
    let shown = path.display().to_string();
    let io = |source| FetchError::File {
        path: shown.clone(),
        source,
    };
    let meta = tokio::fs::metadata(path).await.map_err(io)?;
    if !meta.is_file() {
        return Err(FetchError::NotAFile { path: shown });
    }
    if meta.len() > limit {
        return Err(FetchError::FileTooLarge {
            path: shown,
            size: meta.len(),
            limit,
        });
    }
    let stamp = (meta.len(), meta.modified().map_err(io)?);
    if last.file == Some(stamp) {
        return Ok(Fetched::NotModified);
    }
    let bytes = tokio::fs::read(path).await.map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(FetchError::FileTooLarge {
            path: shown,
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(Fetched::Body {
        bytes: Bytes::from(bytes),
        validators: Validators {
            file: Some(stamp),
            ..Validators::default()
        },
    })
}

async fn fetch_https(
    client: &reqwest::Client,
    url: &str,
    last: &Validators,
    limit: u64,
) -> Result<Fetched, FetchError> {
    let mut req = client.get(url);
    if let Some(e) = &last.etag {
        req = req.header(IF_NONE_MATCH, e);
    }
    if let Some(m) = &last.last_modified {
        req = req.header(IF_MODIFIED_SINCE, m);
    }
    let resp = req.send().await.map_err(HttpError::from)?;
    if resp.status() == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !resp.status().is_success() {
        return Err(HttpError::Status {
            status: resp.status().as_u16(),
        }
        .into());
    }
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(ETAG),
        last_modified: header(LAST_MODIFIED),
        file: None,
    };
    let bytes = body_limited(resp, limit).await?;
    Ok(Fetched::Body { bytes, validators })
}
