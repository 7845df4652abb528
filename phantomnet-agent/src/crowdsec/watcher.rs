//! The watcher: logs in as a machine (`POST /v1/watchers/login`, a JWT)
//! and pushes the detector's new enforcements (`POST /v1/alerts`) as
//! alerts, each with one `ban` decision on the source for the
//! enforcement's TTL, scenario `phantomnet/rule-N`.
//!
//! Enforcements are batched (up to `BATCH` or `LINGER`). A push that fails
//! keeps its alerts in a bounded queue (`QUEUE`, oldest dropped and
//! counted) and is retried after `RETRY`; an expired token is renewed on
//! 401/403. The LAPI then hands the decisions to every bouncer, this
//! agent's own included.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use super::{CrowdSecSink, endpoint, read_secret};
use crate::config::CrowdSecConfig;
use crate::decide::Action;
use crate::enforce::Enforced;

pub const BATCH: usize = 100;
pub const LINGER: Duration = Duration::from_millis(200);
pub const QUEUE: usize = 1024;
pub const RETRY: Duration = Duration::from_secs(5);

fn rfc3339(unix_ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// The alert for one enforcement.
pub fn alert(e: &Enforced, machine: &str) -> Value {
    let at = rfc3339(e.time_unix_ns);
    let scenario = format!("phantomnet/rule-{}", e.rule);
    // A host is an `Ip` decision; an IPv6 source grouped to its prefix
    // (`2001:db8:bad::/64`) a `Range` one, which bouncers enforce as such.
    let value = e.source.to_string();
    let (scope, source) = if e.source.is_host() {
        ("Ip", json!({"scope": "Ip", "value": value, "ip": value}))
    } else {
        (
            "Range",
            json!({"scope": "Range", "value": value, "range": value}),
        )
    };
    let sigs = if e.signatures.is_empty() {
        String::new()
    } else {
        format!("; signatures {}", e.signatures)
    };
    json!({
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": env!("CARGO_PKG_VERSION"),
        "message": format!("PhantomNet {machine}: {} {value} (rule {}{sigs})", e.action, e.rule),
        "events_count": 1,
        "start_at": at,
        "stop_at": at,
        "capacity": 0,
        "leakspeed": "0s",
        "simulated": false,
        "remediation": true,
        "events": [{
            "timestamp": at,
            "meta": [
                {"key": "action", "value": e.action.name()},
                {"key": "source_ip", "value": value},
            ],
        }],
        "source": source,
        "decisions": [{
            "origin": "phantomnet",
            "type": "ban",
            "scope": scope,
            "value": value,
            "duration": format!("{}s", e.ttl.as_secs().max(1)),
            "scenario": scenario,
        }],
    })
}

struct Lapi {
    client: reqwest::Client,
    base: String,
    machine: String,
    password: String,
    token: Option<String>,
}

impl Lapi {
    async fn login(&mut self) -> Result<(), String> {
        let resp = self
            .client
            .post(endpoint(&self.base, "v1/watchers/login"))
            .json(&json!({"machine_id": self.machine, "password": self.password, "scenarios": []}))
            .send()
            .await
            .map_err(|e| crate::http::HttpError::from(e).to_string())?;
        if !resp.status().is_success() {
            return Err(format!("login: HTTP status {}", resp.status().as_u16()));
        }
        let body: Value = resp.json().await.map_err(|e| format!("login: {e}"))?;
        let token = body["token"]
            .as_str()
            .ok_or("login: no token in the answer")?;
        self.token = Some(token.to_string());
        Ok(())
    }

    async fn push(&mut self, alerts: &[Value]) -> Result<(), String> {
        for attempt in 0..2 {
            if self.token.is_none() {
                self.login().await?;
            }
            let resp = self
                .client
                .post(endpoint(&self.base, "v1/alerts"))
                .bearer_auth(self.token.as_deref().unwrap_or(""))
                .json(alerts)
                .send()
                .await
                .map_err(|e| crate::http::HttpError::from(e).to_string())?;
            let status = resp.status().as_u16();
            if (status == 401 || status == 403) && attempt == 0 {
                self.token = None;
                continue;
            }
            if !resp.status().is_success() {
                let text = resp.text().await.unwrap_or_default();
                return Err(format!("push: HTTP status {status}: {}", text.trim()));
            }
            return Ok(());
        }
        Err("push: refused after a fresh login".into())
    }
}

/// Runs the watcher until `shutdown`.
pub async fn run<S: CrowdSecSink>(
    sink: Arc<S>,
    cfg: CrowdSecConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let Some(w) = cfg.watcher.clone() else {
        return;
    };
    let push: Vec<Action> = w.push_actions();
    let mut rx = sink.subscribe_enforced();
    let setup = read_secret(&w.password_file).and_then(|password| {
        crate::http::client(cfg.ca_file.as_deref())
            .map(|client| (password, client))
            .map_err(|e| e.to_string())
    });
    let mut lapi = match setup {
        Ok((password, client)) => Lapi {
            client,
            base: cfg.lapi_url.clone(),
            machine: w.machine_id.clone(),
            password,
            token: None,
        },
        Err(e) => {
            warn!(error = %e, "CrowdSec watcher off");
            return;
        }
    };
    info!(lapi = %cfg.lapi_url, machine = %w.machine_id, "CrowdSec watcher on");
    let mut queue: VecDeque<Value> = VecDeque::new();
    let mut failing = false;
    loop {
        // Wait for an enforcement (or, with a backlog, for the retry).
        let first = tokio::select! {
            () = &mut shutdown => return,
            r = rx.recv() => Some(r),
            () = tokio::time::sleep(RETRY), if !queue.is_empty() => None,
        };
        let take = |r: Result<Enforced, RecvError>, queue: &mut VecDeque<Value>| -> bool {
            match r {
                Ok(e) if push.contains(&e.action) => {
                    if queue.len() == QUEUE {
                        queue.pop_front();
                        sink.metrics().crowdsec_alerts("dropped", 1);
                    }
                    queue.push_back(alert(&e, &w.machine_id));
                    true
                }
                Ok(_) => true,
                Err(RecvError::Lagged(n)) => {
                    sink.metrics().crowdsec_alerts("dropped", n);
                    true
                }
                Err(RecvError::Closed) => false,
            }
        };
        if let Some(r) = first {
            if !take(r, &mut queue) {
                return;
            }
            let deadline = tokio::time::Instant::now() + LINGER;
            while queue.len() < BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(r) => {
                        if !take(r, &mut queue) {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        if queue.is_empty() {
            continue;
        }
        let n = queue.len().min(BATCH);
        let batch: Vec<Value> = queue.iter().take(n).cloned().collect();
        match lapi.push(&batch).await {
            Ok(()) => {
                queue.drain(..n);
                sink.metrics().crowdsec_alerts("pushed", n as u64);
                if failing {
                    info!("CrowdSec LAPI accepts alerts again");
                    failing = false;
                }
            }
            Err(e) => {
                sink.metrics().crowdsec_alerts("failed", n as u64);
                if !failing {
                    warn!(error = %e, queued = queue.len(), "CrowdSec alert push failed; retrying");
                    failing = true;
                }
            }
        }
    }
}
