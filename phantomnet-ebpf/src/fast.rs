//! The exact-match fast path: a packet from a blocked host (/32, /128) is
//! judged from its EtherType, IP version and source address alone, before
//! the frame's length, the full L3 parse or the clocks are read.
//!
//! A blocked host is what a detection, CrowdSec or a feed writes, and
//! during an attack it is most of the traffic, so its drop is the path to
//! make cheap. Untagged frames only: a VLAN-tagged one takes the full
//! parse, which gives the same answer. The allowlist still comes first
//! (an allowlisted source goes to the full path, which allows it).
use aya_ebpf::programs::XdpContext;
use phantomnet_common::list_flags;

use crate::{
    PN_BLOCK_H4, PN_BLOCK_H6,
    parse::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPV4_HLEN, IPV6_HLEN},
    source,
};

/// Ethernet + the fixed IPv6 header: the longest prefix read here.
const IPV6_END: usize = ETH_HLEN + IPV6_HLEN;
const IPV4_END: usize = ETH_HLEN + IPV4_HLEN;
const IP: [u8; 2] = ETH_P_IP.to_be_bytes();
const IPV6: [u8; 2] = ETH_P_IPV6.to_be_bytes();

/// What the fast path learned about the source's host block entry, so the
/// full path does not look it up again. (A packet due for a sample skips
/// the fast path: the full path looks it up once, and samples it.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// Not looked up (no host entries, a tagged frame, an allowlisted or
    /// unparsable source): the full path decides.
    Unchecked,
    /// Looked up: no live host entry (a prefix may still block it).
    NotBlocked,
    /// A live host entry blocks the source (its hit count is bumped).
    Blocked,
}

/// Looks the source up in the host block hash, if the list is not empty.
#[inline(always)]
pub(crate) fn host(ctx: &XdpContext, lists: u32) -> Host {
    if lists & list_flags::BLOCK_HOST == 0 {
        return Host::Unchecked;
    }
    let start = ctx.data();
    let end = ctx.data_end();
    if start + IPV4_END > end {
        return Host::Unchecked;
    }
    // SAFETY: bytes 0..34 are inside the packet (checked just above).
    let (ether_type, version) = unsafe {
        (
            ((start + 12) as *const [u8; 2]).read(),
            ((start + ETH_HLEN) as *const u8).read(),
        )
    };
    // Matched as bytes: comparing a u16 built from them instead changes the
    // code enough that the verifier's budget for the whole program runs out.
    match ether_type {
        // IPv4 with a header of at least 20 bytes (as the parser requires;
        // anything else passes as unparsed there).
        IP if version >> 4 == 4 && version & 0x0F >= 5 => {
            // SAFETY: the source address is bytes 26..30, inside 0..34.
            let addr = unsafe { ((start + 26) as *const [u8; 4]).read() };
            if lists & (list_flags::ALLOW_HOST | list_flags::ALLOW_PREFIX) != 0
                && source::allowed_v4(&addr, lists)
            {
                return Host::Unchecked;
            }
            verdict(source::host_blocked(&PN_BLOCK_H4, &addr))
        }
        IPV6 if version >> 4 == 6 => {
            if start + IPV6_END > end {
                return Host::Unchecked;
            }
            // SAFETY: the source address is bytes 22..38, inside 0..54
            // (checked just above).
            let addr = unsafe { ((start + 22) as *const [u8; 16]).read() };
            if lists & (list_flags::ALLOW_HOST | list_flags::ALLOW_PREFIX) != 0
                && source::allowed_v6(&addr, lists)
            {
                return Host::Unchecked;
            }
            verdict(source::host_blocked(&PN_BLOCK_H6, &addr))
        }
        _ => Host::Unchecked,
    }
}

#[inline(always)]
fn verdict(blocked: bool) -> Host {
    if blocked {
        Host::Blocked
    } else {
        Host::NotBlocked
    }
}
