//! Bounded traffic generators over a [`Lab`](crate::lab::Lab): real attack
//! and benign tools run inside the lab's namespaces, each from one source
//! address (so the traffic can be labeled by source), and each bounded in
//! packets (or requests) **and** in time (`timeout --kill-after`).
//!
//! [`Servers`] starts the protected server's listeners (HTTP on 80,
//! OpenSSH's `sshd` on 22, UDP 53 answering DNS-shaped queries, a UDP
//! sink on 5000, a TCP sink on 9000) and kills them on drop. [`Scenario`]
//! names one kind of traffic; its name is the `attack_type` label
//! (`benign_*` are benign). [`Scenario::run`] blocks until the tool is done
//! or its time bound is hit, and says what it sent.
//!
//! The tools' command lines live in `run.rs`.
//!
//! Nothing here leaves the lab: every destination is the server's
//! address, every source one of the lab's own.
pub mod heldout;
mod run;
mod servers;
mod sshd;

use std::time::Duration;

pub use servers::Servers;

use crate::lab::Role;
pub(crate) use run::in_ns;
use run::{INJECTIONS, PAGES};

/// How much one run may send, and for how long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Packets (floods), ports (scans), requests, guesses, connections or
    /// commands (HTTP, SSH, DNS), or bytes (bulk).
    pub count: u32,
    /// Hard time bound in seconds; the tool is killed when it is hit.
    pub secs: f64,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub scenario: Scenario,
    pub source: String,
    /// How many units were sent (see [`Scenario::unit`]), as far as the
    /// tool tells: the budget for tools that send exactly their count.
    pub sent: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<15} from {:<18} {:>8} {} in {:.1} s",
            self.scenario.name(),
            self.source,
            self.sent,
            self.scenario.unit(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// One kind of traffic; [`Scenario::name`] is its `attack_type` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// `nmap -sS` over a range of ports.
    NmapSyn,
    /// `nmap -sT` over a range of ports.
    NmapConnect,
    /// `hping3 -S -p 80`.
    SynFlood,
    /// `hping3 --udp -p 5000`.
    UdpFlood,
    /// `hping3 --icmp`.
    IcmpFlood,
    /// `curl` with SQLi / XSS / path-traversal / shell-injection payloads.
    HttpInjection,
    /// paramiko: password guesses against `sshd`, 1–3 per connection,
    /// several connections at a time.
    SshBruteforce,
    /// scapy: a port scan rotating FIN, NULL, XMAS, ACK and UDP probes.
    CraftedScan,
    /// scapy: a SYN scan of random ports, about one probe a second.
    SlowScan,
    /// A slow-headers HTTP DoS: many connections, each kept open with a
    /// header line now and then.
    SlowHttp,
    /// curl: an HTTP flood of distinct URLs on parallel keep-alive
    /// connections, or rate-limited on one.
    HttpFlood,
    /// HTTP basic-auth password guessing against `/admin/`.
    HttpAuthGuess,
    /// `hping3 -A`: a flood of pure ACKs that belong to no connection.
    AckFlood,
    /// scapy: an ACK scan (pure ACK probes) of consecutive ports.
    AckScan,
    /// `curl` of ordinary pages at human-ish pacing.
    BenignHttp,
    /// DNS-shaped UDP queries to :53.
    BenignDns,
    /// A few MB uploaded with `nc` and downloaded with `curl`.
    BenignBulk,
    /// A short browsing session: pages of different sizes, assets on the
    /// same or on new (parallel) connections, images, POSTed forms.
    BenignBrowse,
    /// A large file downloaded with `curl --limit-rate`: a long, steady
    /// ACK stream.
    BenignBigfile,
    /// fping: echo requests at a monitoring pace.
    BenignPing,
    /// paramiko: an administrator's key login running a few commands and
    /// an SFTP read on one connection.
    BenignSsh,
    /// curl: a monitoring poller, one GET of the front page every fraction
    /// of a second, a new connection each.
    BenignPoll,
    /// curl: a health check, one `GET /status` (a 16-byte JSON answer in
    /// one segment) every fraction of a second, a new connection each.
    BenignStatus,
    /// SNTP clock checks to :123, a new socket (source port) each.
    BenignSntp,
}

impl Scenario {
    /// The attacks the demo and the end-to-end tests run.
    pub const ATTACKS: [Scenario; 7] = [
        Scenario::NmapSyn,
        Scenario::NmapConnect,
        Scenario::SynFlood,
        Scenario::UdpFlood,
        Scenario::IcmpFlood,
        Scenario::HttpInjection,
        Scenario::SshBruteforce,
    ];
    /// The attacks the model's training recording runs: [`Scenario::ATTACKS`]
    /// and seven more families (crafted scans, a slow scan, a slow-headers
    /// DoS, an HTTP flood, HTTP password guessing, an ACK flood and an ACK
    /// scan).
    pub const TRAINING_ATTACKS: [Scenario; 14] = [
        Scenario::NmapSyn,
        Scenario::NmapConnect,
        Scenario::SynFlood,
        Scenario::UdpFlood,
        Scenario::IcmpFlood,
        Scenario::HttpInjection,
        Scenario::SshBruteforce,
        Scenario::CraftedScan,
        Scenario::SlowScan,
        Scenario::SlowHttp,
        Scenario::HttpFlood,
        Scenario::HttpAuthGuess,
        Scenario::AckFlood,
        Scenario::AckScan,
    ];
    pub const BENIGN: [Scenario; 3] = [
        Scenario::BenignHttp,
        Scenario::BenignDns,
        Scenario::BenignBulk,
    ];
    /// Every benign scenario, [`Scenario::BENIGN`] and the browsing sessions
    /// the model's training data runs from many fresh client sources.
    pub const ALL_BENIGN: [Scenario; 4] = [
        Scenario::BenignHttp,
        Scenario::BenignDns,
        Scenario::BenignBulk,
        Scenario::BenignBrowse,
    ];

    /// The `attack_type` label (`benign_*` for benign traffic).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::NmapSyn => "nmap_syn",
            Scenario::NmapConnect => "nmap_connect",
            Scenario::SynFlood => "syn_flood",
            Scenario::UdpFlood => "udp_flood",
            Scenario::IcmpFlood => "icmp_flood",
            Scenario::HttpInjection => "http_injection",
            Scenario::SshBruteforce => "ssh_bruteforce",
            Scenario::CraftedScan => "crafted_scan",
            Scenario::SlowScan => "slow_scan",
            Scenario::AckFlood => "ack_flood",
            Scenario::AckScan => "ack_scan",
            Scenario::SlowHttp => "slow_http",
            Scenario::HttpFlood => "http_flood",
            Scenario::HttpAuthGuess => "http_auth_guess",
            Scenario::BenignHttp => "benign_http",
            Scenario::BenignDns => "benign_dns",
            Scenario::BenignBulk => "benign_bulk",
            Scenario::BenignBrowse => "benign_browse",
            Scenario::BenignBigfile => "benign_bigfile",
            Scenario::BenignPing => "benign_ping",
            Scenario::BenignPoll => "benign_poll",
            Scenario::BenignStatus => "benign_status",
            Scenario::BenignSsh => "benign_ssh",
            Scenario::BenignSntp => "benign_sntp",
        }
    }

    pub fn is_attack(self) -> bool {
        Scenario::TRAINING_ATTACKS.contains(&self)
    }

    /// Whether the tool can send over IPv6 (hping3 cannot).
    pub fn supports_ipv6(self) -> bool {
        !matches!(
            self,
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood | Scenario::AckFlood
        )
    }

    /// The namespace the traffic comes from.
    pub fn role(self) -> Role {
        if self.is_attack() {
            Role::Atk
        } else {
            Role::Cli
        }
    }

    /// What [`Budget::count`] and [`Report::sent`] count.
    pub fn unit(self) -> &'static str {
        match self {
            Scenario::NmapSyn | Scenario::NmapConnect => "ports",
            Scenario::CraftedScan | Scenario::SlowScan | Scenario::AckScan => "probes",
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood | Scenario::AckFlood => {
                "packets"
            }
            Scenario::HttpInjection
            | Scenario::BenignHttp
            | Scenario::BenignBrowse
            | Scenario::BenignPoll
            | Scenario::BenignStatus
            | Scenario::HttpFlood => "requests",
            Scenario::HttpAuthGuess | Scenario::SshBruteforce => "guesses",
            Scenario::SlowHttp => "connections",
            Scenario::BenignDns | Scenario::BenignSntp => "queries",
            Scenario::BenignSsh => "commands",
            Scenario::BenignBulk | Scenario::BenignBigfile => "bytes",
            Scenario::BenignPing => "echo requests",
        }
    }

    /// A few seconds of traffic, a few thousand packets at most.
    pub fn default_budget(self) -> Budget {
        let (count, secs) = match self {
            Scenario::NmapSyn | Scenario::NmapConnect => (600, 8.0),
            Scenario::SynFlood | Scenario::UdpFlood | Scenario::IcmpFlood | Scenario::AckFlood => {
                (1500, 5.0)
            }
            Scenario::HttpInjection => (80, 8.0),
            Scenario::SshBruteforce => (120, 8.0),
            Scenario::CraftedScan | Scenario::AckScan => (250, 6.0),
            Scenario::SlowScan => (14, 12.0),
            Scenario::SlowHttp => (60, 9.0),
            Scenario::HttpFlood => (600, 6.0),
            Scenario::HttpAuthGuess => (90, 8.0),
            Scenario::BenignHttp => (12, 15.0),
            Scenario::BenignDns => (80, 12.0),
            Scenario::BenignBulk => (256 * 1024, 10.0),
            Scenario::BenignBrowse => (10, 12.0),
            Scenario::BenignBigfile => (8 << 20, 10.0),
            Scenario::BenignPing => (30, 10.0),
            Scenario::BenignPoll => (40, 15.0),
            Scenario::BenignStatus => (40, 12.0),
            Scenario::BenignSsh => (6, 15.0),
            Scenario::BenignSntp => (6, 10.0),
        };
        Budget { count, secs }
    }
}

/// The pages benign HTTP fetches (for documentation and tests).
pub fn benign_pages() -> &'static [&'static str] {
    PAGES
}

/// The injection payloads (for documentation and tests).
pub fn injection_payloads() -> &'static [&'static str] {
    INJECTIONS
}

#[cfg(test)]
mod tests {
    use super::Scenario;

    #[test]
    fn training_runs_every_demo_attack_first_and_each_scenario_once() {
        let n = Scenario::ATTACKS.len();
        assert_eq!(Scenario::TRAINING_ATTACKS[..n], Scenario::ATTACKS);
        let mut names: Vec<&str> = Scenario::TRAINING_ATTACKS
            .iter()
            .map(|s| s.name())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Scenario::TRAINING_ATTACKS.len());
        assert!(Scenario::TRAINING_ATTACKS.iter().all(|s| s.is_attack()));
        assert!(Scenario::ALL_BENIGN.iter().all(|s| !s.is_attack()));
    }
}
