//! A packet signature: the fields that set an attack's packets apart from
//! the destination's normal traffic (the approach of Cloudflare's
//! L4Drop/Gatebot). The data plane turns it into a drop or rate-limit rule,
//! so the semantics are exact and small: ranges, a masked flags byte, a
//! payload prefix.
//!
//! The text form is what operators type (`phantomctl signature add "<form>"`)
//! and what the journal writes:
//!
//! ```text
//! tcp dst 10.0.0.2/32 dport 80 flags SYN/FIN+SYN+RST+ACK ttl 40-70 len 54-60
//! udp dst 2001:db8::/64 dport 53 len 554 payload 5858585858585858
//! any dst 10.0.0.0/24 ttl 64
//! ```
//!
//! `<proto>` (`tcp`, `udp`, `icmp`, `icmpv6`, `any` or a number 0-255) and
//! `dst <prefix>` come first; then, in any order, each at most once:
//! `dport`, `flags VALUE/MASK` (TCP only), `ttl`, `len`, `payload <hex>`.
//! A range is `N` or `LO-HI`, inclusive. Flag sets are `+`-joined names
//! (FIN SYN RST PSH ACK URG ECE CWR), `none`, or a `0x` number.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use phantomnet_common::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, PacketSample};

use crate::dataplane::Prefix;

/// Longest payload prefix a signature carries (the XDP side compares this many bytes at most).
pub const MAX_PAYLOAD_PREFIX: usize = 8;

/// A packet signature (see the module docs). `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    /// 4 or 6.
    pub family: u8,
    /// Destination the rule applies to (host or prefix).
    pub dst: IpAddr,
    pub dst_prefix_len: u8,
    /// `None` = any protocol.
    pub protocol: Option<u8>,
    /// `(mask, value)`: matches when `flags & mask == value`.
    pub tcp_flags: Option<(u8, u8)>,
    /// Inclusive range of IPv4 TTL / IPv6 hop limit.
    pub ttl: Option<(u8, u8)>,
    /// Inclusive range of frame length (`PacketSample::packet_len`).
    pub packet_len: Option<(u16, u16)>,
    /// Inclusive range of destination port.
    pub dst_port: Option<(u16, u16)>,
    /// 1..=8 leading L4 payload bytes that all attack packets share.
    pub payload_prefix: Option<Vec<u8>>,
}

/// The fields of a sample a signature reads, a tag of its source and the
/// tick it was kept in, in 44 bytes: what the detector keeps in its baseline and attack reservoirs
/// instead of whole 128-byte samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SigSample {
    pub dst: [u8; 16],
    pub packet_len: u16,
    pub dst_port: u16,
    pub family: u8,
    pub protocol: u8,
    pub tcp_flags: u8,
    pub ttl: u8,
    pub payload_valid: u8,
    pub payload: [u8; MAX_PAYLOAD_PREFIX],
    /// The low 32 bits of the source's hash: lets the baseline forget a
    /// source the data plane later enforced on.
    pub src_tag: [u8; 4],
    /// The tick it entered a baseline (0 elsewhere).
    pub tick: u32,
}

impl SigSample {
    pub fn of(s: &PacketSample) -> SigSample {
        let mut payload = [0u8; MAX_PAYLOAD_PREFIX];
        payload.copy_from_slice(&s.payload[..MAX_PAYLOAD_PREFIX]);
        let mut dst = s.dst_addr;
        if s.family != 6 {
            dst[4..].fill(0);
        }
        SigSample {
            dst,
            packet_len: u16::try_from(s.packet_len).unwrap_or(u16::MAX),
            dst_port: s.dst_port,
            family: if s.family == 6 { 6 } else { 4 },
            protocol: s.protocol,
            tcp_flags: s.tcp_flags,
            ttl: s.ttl,
            payload_valid: s.payload_valid.min(MAX_PAYLOAD_PREFIX as u8),
            payload,
            src_tag: [0; 4],
            tick: 0,
        }
    }

    /// With its source's tag (the detector's source hash).
    pub fn tagged(mut self, src_hash: u64) -> SigSample {
        self.src_tag = (src_hash as u32).to_le_bytes();
        self
    }

    fn dst_ip(&self) -> IpAddr {
        if self.family == 6 {
            IpAddr::from(self.dst)
        } else {
            IpAddr::from([self.dst[0], self.dst[1], self.dst[2], self.dst[3]])
        }
    }
}

fn in_range<T: PartialOrd>(r: Option<(T, T)>, v: T) -> bool {
    r.is_none_or(|(lo, hi)| lo <= v && v <= hi)
}

fn prefix_contains(net: IpAddr, len: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let len = u32::from(len.min(32));
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let len = u32::from(len.min(128));
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

impl Signature {
    /// Whether the sampled packet matches every field.
    pub fn matches(&self, s: &PacketSample) -> bool {
        let len_ok = match self.packet_len {
            Some((lo, hi)) => u32::from(lo) <= s.packet_len && s.packet_len <= u32::from(hi),
            None => true,
        };
        len_ok && self.matches_sig(&SigSample::of(s))
    }

    /// [`Signature::matches`] on the reservoir form (`packet_len` saturated to `u16`).
    pub(crate) fn matches_sig(&self, s: &SigSample) -> bool {
        s.family == self.family
            && prefix_contains(self.dst, self.dst_prefix_len, s.dst_ip())
            && self.matches_fields(s)
    }

    /// Every field but the destination (the reservoirs the synthesiser
    /// compares are already those of the destination).
    pub(crate) fn matches_fields(&self, s: &SigSample) -> bool {
        self.protocol.is_none_or(|p| p == s.protocol)
            && self
                .tcp_flags
                .is_none_or(|(mask, value)| s.tcp_flags & mask == value)
            && in_range(self.ttl, s.ttl)
            && in_range(self.packet_len, s.packet_len)
            && in_range(self.dst_port, s.dst_port)
            && self.payload_prefix.as_ref().is_none_or(|p| {
                usize::from(s.payload_valid) >= p.len() && s.payload.get(..p.len()) == Some(p)
            })
    }
}

const FLAG_NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

fn flags_text(v: u8) -> String {
    if v == 0 {
        return "none".to_string();
    }
    let names: Vec<&str> = (0..8)
        .filter(|b| v & (1 << b) != 0)
        .map(|b| FLAG_NAMES[b])
        .collect();
    names.join("+")
}

fn range_text<T: fmt::Display + PartialEq>((lo, hi): (T, T)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

fn protocol_name(p: Option<u8>) -> String {
    match p {
        None => "any".into(),
        Some(IPPROTO_TCP) => "tcp".into(),
        Some(IPPROTO_UDP) => "udp".into(),
        Some(IPPROTO_ICMP) => "icmp".into(),
        Some(IPPROTO_ICMPV6) => "icmpv6".into(),
        Some(n) => n.to_string(),
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} dst {}/{}",
            protocol_name(self.protocol),
            self.dst,
            self.dst_prefix_len
        )?;
        if let Some(r) = self.dst_port {
            write!(f, " dport {}", range_text(r))?;
        }
        if let Some((mask, value)) = self.tcp_flags {
            write!(f, " flags {}/{}", flags_text(value), flags_text(mask))?;
        }
        if let Some(r) = self.ttl {
            write!(f, " ttl {}", range_text(r))?;
        }
        if let Some(r) = self.packet_len {
            write!(f, " len {}", range_text(r))?;
        }
        if let Some(p) = &self.payload_prefix {
            f.write_str(" payload ")?;
            for b in p {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Why a signature's text form was refused: the token and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad signature token `{token}`: {reason}")]
pub struct SignatureParseError {
    pub token: String,
    pub reason: String,
}

fn bad(token: &str, reason: impl Into<String>) -> SignatureParseError {
    SignatureParseError {
        token: token.to_string(),
        reason: reason.into(),
    }
}

fn parse_range<T: FromStr + PartialOrd + Copy>(
    token: &str,
    what: &str,
) -> Result<(T, T), SignatureParseError> {
    let num = |t: &str| {
        t.parse::<T>().map_err(|_| {
            bad(
                token,
                format!("{what} must be a number or LO-HI within its type's range"),
            )
        })
    };
    let (lo, hi) = match token.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let v = num(token)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(bad(token, format!("{what} range is backwards (LO > HI)")));
    }
    Ok((lo, hi))
}

fn parse_flag_set(token: &str, part: &str) -> Result<u8, SignatureParseError> {
    if part.eq_ignore_ascii_case("none") {
        return Ok(0);
    }
    if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        return u8::from_str_radix(hex, 16)
            .map_err(|_| bad(token, format!("`{part}` is not a byte in hex")));
    }
    let mut v = 0u8;
    for name in part.split('+') {
        let bit = FLAG_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                bad(
                    token,
                    format!(
                        "unknown TCP flag `{name}` (FIN SYN RST PSH ACK URG ECE CWR, none, or 0x..)"
                    ),
                )
            })?;
        v |= 1 << bit;
    }
    Ok(v)
}

fn parse_protocol(token: &str) -> Result<Option<u8>, SignatureParseError> {
    Ok(Some(match token.to_ascii_lowercase().as_str() {
        "any" => return Ok(None),
        "tcp" => IPPROTO_TCP,
        "udp" => IPPROTO_UDP,
        "icmp" => IPPROTO_ICMP,
        "icmpv6" => IPPROTO_ICMPV6,
        other => other.parse::<u8>().map_err(|_| {
            bad(
                token,
                "expected a protocol: tcp, udp, icmp, icmpv6, any or 0-255",
            )
        })?,
    }))
}

impl FromStr for Signature {
    type Err = SignatureParseError;

    fn from_str(s: &str) -> Result<Signature, SignatureParseError> {
        let mut tokens = s.split_whitespace();
        let proto_tok = tokens.next().ok_or_else(|| bad("", "empty signature"))?;
        let protocol = parse_protocol(proto_tok)?;
        match tokens.next() {
            Some(t) if t.eq_ignore_ascii_case("dst") => {}
            Some(t) => return Err(bad(t, "expected `dst` after the protocol")),
            None => return Err(bad(proto_tok, "missing `dst <prefix>` after the protocol")),
        }
        let dst_tok = tokens
            .next()
            .ok_or_else(|| bad("dst", "missing the destination prefix"))?;
        let prefix: Prefix = dst_tok
            .parse()
            .map_err(|e| bad(dst_tok, format!("not a destination prefix ({e})")))?;
        let mut sig = Signature {
            family: if prefix.is_ipv4() { 4 } else { 6 },
            dst: prefix.addr(),
            dst_prefix_len: prefix.prefix_len(),
            protocol,
            tcp_flags: None,
            ttl: None,
            packet_len: None,
            dst_port: None,
            payload_prefix: None,
        };
        while let Some(word) = tokens.next() {
            let value = tokens
                .next()
                .ok_or_else(|| bad(word, "missing its value"))?;
            let twice = |set: bool| {
                if set {
                    Err(bad(word, "given twice"))
                } else {
                    Ok(())
                }
            };
            match word.to_ascii_lowercase().as_str() {
                "dport" => {
                    twice(sig.dst_port.is_some())?;
                    sig.dst_port = Some(parse_range(value, "dport")?);
                }
                "ttl" => {
                    twice(sig.ttl.is_some())?;
                    sig.ttl = Some(parse_range(value, "ttl")?);
                }
                "len" => {
                    twice(sig.packet_len.is_some())?;
                    sig.packet_len = Some(parse_range(value, "len")?);
                }
                "flags" => {
                    twice(sig.tcp_flags.is_some())?;
                    if sig.protocol != Some(IPPROTO_TCP) {
                        return Err(bad(word, "TCP flags need protocol tcp"));
                    }
                    let (v, m) = value
                        .split_once('/')
                        .ok_or_else(|| bad(value, "flags are VALUE/MASK, e.g. SYN/SYN+ACK"))?;
                    let (value_bits, mask) = (parse_flag_set(value, v)?, parse_flag_set(value, m)?);
                    if value_bits & !mask != 0 {
                        return Err(bad(
                            value,
                            "VALUE has a flag MASK does not (it could never match)",
                        ));
                    }
                    sig.tcp_flags = Some((mask, value_bits));
                }
                "payload" => {
                    twice(sig.payload_prefix.is_some())?;
                    sig.payload_prefix = Some(parse_hex(value)?);
                }
                _ => {
                    return Err(bad(
                        word,
                        "unknown field (expected dport, flags, ttl, len or payload)",
                    ));
                }
            }
        }
        Ok(sig)
    }
}

fn parse_hex(token: &str) -> Result<Vec<u8>, SignatureParseError> {
    let digits = token.strip_prefix("0x").unwrap_or(token);
    if digits.is_empty() || !digits.len().is_multiple_of(2) || digits.len() > 2 * MAX_PAYLOAD_PREFIX
    {
        return Err(bad(
            token,
            format!("payload is 1 to {MAX_PAYLOAD_PREFIX} bytes as an even number of hex digits"),
        ));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| bad(token, "payload is not hex"))
        })
        .collect()
}
