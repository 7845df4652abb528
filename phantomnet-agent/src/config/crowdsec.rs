//! `[crowdsec]`: the agent and a CrowdSec Local API (LAPI), both ways.
//!
//! ```toml
//! [crowdsec]
//! lapi_url = "http://127.0.0.1:8080/"
//! # ca_file = "/etc/crowdsec/ssl/ca.pem"     # for an https:// LAPI
//!
//! [crowdsec.bouncer]                          # enforce the LAPI's bans as BLOCK
//! api_key_file = "/etc/phantomnet/crowdsec-bouncer.key"   # cscli bouncers add NAME -o raw
//! interval_secs = 10
//!
//! [crowdsec.watcher]                          # push our enforcements as alerts
//! machine_id = "gw1"
//! password_file = "/etc/phantomnet/crowdsec-machine.password"
//! push = ["BLOCK", "THROTTLE", "DECEIVE"]    # detections of these actions
//! ```
//!
//! Secrets are read from files (mode 0600 is up to the operator), never
//! from the config itself, so the config can be shared and logged.
use std::path::PathBuf;

use serde::Deserialize;

use crate::decide::Action;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrowdSecConfig {
    /// The LAPI's base URL, `http://` or `https://`.
    pub lapi_url: String,
    /// A PEM CA bundle for an `https://` LAPI, on top of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub bouncer: Option<BouncerConfig>,
    #[serde(default)]
    pub watcher: Option<WatcherConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncerConfig {
    /// A file holding the bouncer API key.
    pub api_key_file: PathBuf,
    /// Seconds between polls of the decision stream; 1 .. 3600.
    #[serde(default = "ten")]
    pub interval_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatcherConfig {
    pub machine_id: String,
    /// A file holding the machine's password.
    pub password_file: PathBuf,
    /// Which of the detector's enforcements are pushed (action names).
    #[serde(default = "all_enforcing")]
    pub push: Vec<String>,
}

fn ten() -> u64 {
    10
}

fn all_enforcing() -> Vec<String> {
    Action::ALL
        .into_iter()
        .filter(|a| a.rule_kind().is_some())
        .map(|a| a.name().to_string())
        .collect()
}

impl WatcherConfig {
    /// The actions pushed (validated: every name is an enforcing action).
    pub fn push_actions(&self) -> Vec<Action> {
        self.push
            .iter()
            .filter_map(|s| Action::from_name(s))
            .collect()
    }
}

pub(super) fn validate(c: &CrowdSecConfig) -> Result<(), (String, String)> {
    let fail = |key: &str, why: String| {
        let key = if key.is_empty() {
            "crowdsec".to_string()
        } else {
            format!("crowdsec.{key}")
        };
        Err((key, why))
    };
    match reqwest::Url::parse(&c.lapi_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => {
            return fail(
                "lapi_url",
                format!("{:?} must be an http:// or https:// URL", c.lapi_url),
            );
        }
    }
    for (key, p) in [
        ("ca_file", c.ca_file.as_ref()),
        (
            "bouncer.api_key_file",
            c.bouncer.as_ref().map(|b| &b.api_key_file),
        ),
        (
            "watcher.password_file",
            c.watcher.as_ref().map(|w| &w.password_file),
        ),
    ] {
        if let Some(p) = p
            && !p.is_absolute()
        {
            return fail(key, format!("{} must be an absolute path", p.display()));
        }
    }
    if let Some(b) = &c.bouncer
        && !(1..=3600).contains(&b.interval_secs)
    {
        return fail("bouncer.interval_secs", "must be 1 .. 3600".into());
    }
    if let Some(w) = &c.watcher {
        if w.machine_id.is_empty() {
            return fail("watcher.machine_id", "must not be empty".into());
        }
        for (i, name) in w.push.iter().enumerate() {
            match Action::from_name(name) {
                Some(Action::Log) | None => {
                    return fail(
                        &format!("watcher.push[{i}]"),
                        format!("{name:?} is not one of BLOCK, THROTTLE, DECEIVE"),
                    );
                }
                Some(_) => {}
            }
        }
    }
    if c.bouncer.is_none() && c.watcher.is_none() {
        return fail(
            "",
            "needs [crowdsec.bouncer], [crowdsec.watcher] or both".into(),
        );
    }
    Ok(())
}
