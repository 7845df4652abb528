//! Per-source flow state: sliding 60 s and 10 s windows for every tracked
//! source address, in a table with a fixed cap and LRU eviction.
//!
//! Memory is bounded: each tracked source costs a fixed
//! [`FlowTable::BYTES_PER_SOURCE`] (531 bytes on x86-64, see
//! `docs/DETECTION.md`), and the table never holds more than
//! [`FlowConfig::max_sources`] of them (1,000,000 by default: under 512 MiB).

mod census;
mod coarse;
mod distinct;
mod run;
mod shares;
mod source;
mod status;
mod table;
#[cfg(test)]
pub(crate) mod tests;
mod window;

pub use distinct::DistinctCounter;
pub use source::{DEFAULT_IPV6_SOURCE_PREFIX, IPV6_SOURCE_PREFIXES, Source};
pub use table::{FlowEntry, FlowTable, MAX_ANSWERED};
pub use window::SourceWindows;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use phantomnet_common::PacketSample;

/// Flow-table settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// Most sources tracked at once; the least recently seen is evicted.
    pub max_sources: usize,
    /// The data plane samples 1 packet in `sample_every`; rates and
    /// inter-arrival times are scaled by it to estimate the real traffic.
    pub sample_every: u32,
    /// IPv6 sources are grouped to this prefix (/64 by default; 128 = per
    /// address). IPv4 sources are per address.
    pub ipv6_source_prefix: u8,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            // 1M sources fit in 512 MiB (`FlowTable::BYTES_PER_SOURCE`,
            // docs/DETECTION.md); the table grows to it, it does not start there.
            max_sources: 1_000_000,
            sample_every: 1,
            ipv6_source_prefix: DEFAULT_IPV6_SOURCE_PREFIX,
        }
    }
}

/// A source address as the flow table keys it. IPv4 keeps only its 4 bytes
/// (the rest zeroed), so a sample's trailing bytes never split a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    pub family: u8,
    pub addr: [u8; 16],
}

impl SourceKey {
    pub fn of_sample(s: &PacketSample) -> SourceKey {
        Self::from_raw(s.family, &s.src_addr)
    }

    pub fn from_raw(family: u8, raw: &[u8; 16]) -> SourceKey {
        let mut addr = *raw;
        if family != 6 {
            addr[4..].fill(0);
            return SourceKey { family: 4, addr };
        }
        SourceKey { family: 6, addr }
    }

    /// The key with an IPv6 address masked to `ipv6_prefix` bits (capped
    /// at 128): the key of the [`Source`] it belongs to. IPv4 is unchanged.
    pub fn masked(mut self, ipv6_prefix: u8) -> SourceKey {
        if self.family != 6 {
            return self;
        }
        let bits = usize::from(ipv6_prefix.min(128));
        let (whole, rest) = (bits / 8, bits % 8);
        if whole < 16 {
            self.addr[whole] &= !(0xFFu8 >> rest);
            self.addr[whole + 1..].fill(0);
        }
        self
    }

    /// The source this key belongs to (IPv6 masked to `ipv6_prefix`).
    pub fn source(&self, ipv6_prefix: u8) -> Source {
        Source::new(self.ip(), ipv6_prefix)
    }

    pub fn ip(&self) -> IpAddr {
        if self.family == 6 {
            IpAddr::V6(Ipv6Addr::from(self.addr))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                self.addr[0],
                self.addr[1],
                self.addr[2],
                self.addr[3],
            ))
        }
    }
}

impl From<IpAddr> for SourceKey {
    fn from(ip: IpAddr) -> Self {
        let mut addr = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => {
                addr[..4].copy_from_slice(&v4.octets());
                SourceKey { family: 4, addr }
            }
            IpAddr::V6(v6) => SourceKey {
                family: 6,
                addr: v6.octets(),
            },
        }
    }
}

/// The window statistics of one source at the time of its latest sample;
/// the window-derived features of schemas v1 and v2.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowStats {
    /// Packets per second from this source over the last 60 s, scaled by the
    /// sampling rate.
    pub event_rate_1m: f64,
    /// Packets per second over the last 10 s, scaled by the sampling rate.
    pub burst_rate_10s: f64,
    /// Mean seconds between packets (60 s window), sampling-corrected.
    pub inter_arrival_mean: f64,
    /// Standard deviation of the seconds between packets, sampling-corrected.
    pub inter_arrival_std: f64,
    /// Population variance of `packet_len` over the 60 s window (bytes²).
    pub packet_size_variance: f64,
    /// Estimated distinct destination addresses over the last 60 s.
    pub unique_dst_ips: f64,
    /// Estimated distinct destination ports over the last 60 s.
    pub unique_dst_ports: f64,
    /// Share of TCP packets with SYN set and ACK clear (60 s window).
    pub syn_ratio: f64,
    /// Schema v2: connections opened per second (SYN set, ACK clear) over
    /// the 60 s window, scaled by the sampling rate.
    pub new_conn_rate: f64,
    /// Packets in the 60 s window per connection opened in it
    /// (`packets / max(SYNs, 1)`).
    pub packets_per_conn: f64,
    /// Bytes (`packet_len`) in the 60 s window per connection opened in it.
    pub bytes_per_conn: f64,
    /// Share of the source's recent packets that carry L4 payload
    /// (a running mean, see [`SourceWindows`]).
    pub payload_share: f64,
    /// Share of pure ACKs: TCP, ACK set, no SYN, FIN or RST, no payload.
    pub ack_only_share: f64,
    /// Share of TCP packets with RST set (of all the source's packets).
    pub rst_share: f64,
    /// Share of TCP packets with FIN set (of all the source's packets).
    pub fin_share: f64,
    /// Schema v3: samples whose payload matched a signature over the 60 s
    /// window's six 10 s generations (uniform and priority samples,
    /// unscaled).
    pub signature_hits: f64,
    /// Schema v4: refusals the protected side sent this source (TCP
    /// resets, ICMP destination unreachables, seen on an inside interface)
    /// in the current run, which ends 60 s after the latest one
    /// (unscaled: every refusal is sampled). 0 without an inside interface.
    pub server_refusals: f64,
    /// Schema v5: answers the protected side sent this source (segments
    /// of established TCP connections, UDP datagrams, seen on an inside
    /// interface, sampled up to a per-destination bound) in the current
    /// run, which ends 60 s after the latest one (unscaled). 0 without an
    /// inside interface.
    pub server_answers: f64,
    /// Schema v6: of those answers, the HTTP responses with an error
    /// status (4xx or 5xx, read from the sampled payload's status line),
    /// in a run of their own that ends 60 s after the latest one
    /// (unscaled). 0 without an inside interface, and for a service that
    /// does not speak plain HTTP/1.x.
    pub server_errors: f64,
    /// Schema v7: packets per second over the 60 s window, every sample
    /// weighted by the inverse of its sampling probability (1 for priority
    /// samples and uniform ones priority sampling admitted too, N for the
    /// rest: [`census`]).
    pub est_packet_rate: f64,
    /// Schema v7: connection openers (TCP SYN without ACK) per second, so
    /// weighted.
    pub est_conn_rate: f64,
    /// Schema v7: packets per connection opened, so weighted
    /// (`packets / max(openers, 1)`).
    pub est_packets_per_conn: f64,
}
