//! The demo's spoofed flood: `hping3 --flood --rand-source` from the
//! attacker namespace, met by the aggregate detector's signature rule.
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use phantomnet_lab::lab::{Lab, Role, addr};

use crate::cmd;
use crate::demo::ctl_json;

/// What the demo's spoofed flood met.
pub(crate) struct FloodOutcome {
    pub sent: u64,
    /// The signature rules in force as the flood ended: (id, rule, matched, dropped).
    pub rules: Vec<(u64, String, u64, u64)>,
    pub dropped: u64,
    /// From the flood's start to the first rule in the maps.
    pub mitigated_after: Option<Duration>,
}

impl std::fmt::Display for FloodOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "hping3 -S --flood --rand-source -p 80 for 5 s: {} packets sent; signature rule after {}",
            self.sent,
            self.mitigated_after.map_or("-".to_string(), |d| format!(
                "{:.1} ms",
                d.as_secs_f64() * 1e3
            ))
        )?;
        writeln!(f, "{:>4} {:>10} {:>10}  RULE", "ID", "MATCHED", "DROPPED")?;
        for (id, rule, matched, dropped) in &self.rules {
            writeln!(f, "{id:>4} {matched:>10} {dropped:>10}  {rule}")?;
        }
        Ok(())
    }
}

fn attacker_tx(lab: &Lab) -> u64 {
    cmd::output(
        "ip",
        &[
            "-n",
            &lab.ns(Role::Atk),
            "-s",
            "-j",
            "link",
            "show",
            "dev",
            "eth0",
        ],
    )
    .ok()
    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    .and_then(|v| v[0]["stats64"]["tx"]["packets"].as_u64())
    .unwrap_or(0)
}

/// 5 s of `hping3 -S --flood --rand-source` at the server: the aggregate
/// detector sees one attack, and a signature rule drops its packets in XDP
/// whatever their source, while the benign clients go on.
pub(crate) fn spoofed_flood(lab: &Lab, ctl: &Path, socket: &Path) -> Result<FloodOutcome> {
    println!("\n>>> attack: spoofed SYN flood (hping3 --flood --rand-source), 5 s");
    let tx0 = attacker_tx(lab);
    let start = std::time::Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.ns(Role::Atk)])
        .args(["timeout", "--kill-after=2", "5"])
        .args(["hping3", "-q", "-S", "--flood", "--rand-source", "-p", "80"])
        .arg(addr::SRV4)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting hping3")?;
    let mut mitigated_after = None;
    let mut rules = Vec::new();
    loop {
        let done = child.try_wait()?.is_some();
        if let Ok(v) = ctl_json(ctl, socket, &["signature", "list"]) {
            rules = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["id"].as_u64().unwrap_or(0),
                        r["rule"].as_str().unwrap_or_default().to_string(),
                        r["matched"].as_u64().unwrap_or(0),
                        r["dropped"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            if mitigated_after.is_none() && !rules.is_empty() {
                mitigated_after = Some(start.elapsed());
            }
        }
        if done {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let sent = attacker_tx(lab).saturating_sub(tx0);
    let dropped = rules.iter().map(|r| r.3).sum();
    println!(">>> done: {sent} packets sent");
    Ok(FloodOutcome {
        sent,
        rules,
        dropped,
        mitigated_after,
    })
}
