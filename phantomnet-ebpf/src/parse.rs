//! Parsing: Ethernet, up to two VLAN tags, IPv4 / IPv6 with extension
//! headers, TCP / UDP / ICMP / ICMPv6. Header fields are read at fixed
//! offsets with one bounds check per read. (A header-struct crate such as
//! network-types would add a dependency for a dozen offsets, and its field
//! API has changed between every release.)
use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use aya_log_ebpf::debug;
use phantomnet_common::{
    IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, MAX_IPV6_EXT_HEADERS, sample_flags,
};

pub(crate) const ETH_HLEN: usize = 14;
pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
pub(crate) const IPV4_HLEN: usize = 20;
pub(crate) const IPV6_HLEN: usize = 40;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_NONE: u8 = 59;
const NEXTHDR_DEST: u8 = 60;
/// Headers past this offset are not walked; it keeps every packet offset
/// small and bounded for the verifier.
const MAX_L4_OFFSET: usize = 512;

/// What the parser learned. Lives on the BPF stack; copied into a sample
/// only when one is due.
// Aligned to 8 so the compiler zeroes and copies the address arrays with
// 8-byte stores: at alignment 1 it calls `memset`, a byte loop that cost
// more than the rest of the block-drop path.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct Meta {
    pub(crate) src: [u8; 16],
    pub(crate) dst: [u8; 16],
    /// Offset of the L4 payload in the packet; 0 = none.
    pub(crate) payload_off: usize,
    /// L4 payload bytes per the IP header.
    pub(crate) payload_len: u16,
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) vlan: u16,
    pub(crate) family: u8,
    pub(crate) proto: u8,
    pub(crate) tcp_flags: u8,
    pub(crate) ttl: u8,
    pub(crate) flags: u8,
    pub(crate) icmp_type: u8,
}

/// Reads a `T` at `off` bytes into the linear part of the packet, or `None`
/// if it does not fit.
#[inline(always)]
pub(crate) fn load<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if off > MAX_L4_OFFSET + 64 || start + off + size_of::<T>() > end {
        return None;
    }
    // SAFETY: bounds checked against data_end just above.
    Some(unsafe { ((start + off) as *const T).read_unaligned() })
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[inline(always)]
pub(crate) fn parse_l3(ctx: &XdpContext) -> Option<(Meta, L4)> {
    let eth: [u8; ETH_HLEN] = load(ctx, 0)?;
    let mut ether_type = be16([eth[12], eth[13]]);
    let mut off = ETH_HLEN;
    let mut vlan = 0u16;
    let mut flags = 0u8;
    // Up to two tags: 802.1ad (S-tag) then 802.1Q (C-tag), or 802.1Q twice.
    for depth in 0..2 {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        let tag: [u8; 4] = load(ctx, off)?;
        vlan = be16([tag[0], tag[1]]) & 0x0FFF;
        ether_type = be16([tag[2], tag[3]]);
        off += 4;
        if depth == 1 {
            flags |= sample_flags::QINQ;
        }
    }
    let mut meta = Meta {
        src: [0; 16],
        dst: [0; 16],
        payload_off: 0,
        payload_len: 0,
        sport: 0,
        dport: 0,
        vlan,
        family: 0,
        proto: 0,
        tcp_flags: 0,
        ttl: 0,
        flags,
        icmp_type: 0,
    };
    let (l4_off, l3_payload) = match ether_type {
        ETH_P_IP => parse_ipv4(ctx, off, &mut meta)?,
        ETH_P_IPV6 => parse_ipv6(ctx, off, &mut meta)?,
        _ => {
            debug!(ctx, "unparsed ethertype {:x}", ether_type);
            return None;
        }
    };
    Some((
        meta,
        L4 {
            off: l4_off,
            l3_payload,
        },
    ))
}

/// An IPv4 address in a 16-byte field, written whole as two words: the
/// compiler then drops the field's zero-initialisation instead of calling
/// `memset` (a byte loop in BPF) for the 12 bytes after a 4-byte copy.
#[inline(always)]
fn v4_addr(a: [u8; 4]) -> [u8; 16] {
    let words = [u64::from(u32::from_le_bytes(a)), 0u64];
    // SAFETY: two u64 are 16 plain bytes; BPF is little-endian here
    // (bpfel), so the address's bytes come first, in order.
    unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(words) }
}

/// Fills the IPv4 fields; returns the L4 offset (None for a non-first
/// fragment) and the L3 payload length. `None` only if the 20-byte header
/// itself is unreadable or not IPv4.
#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, off: usize, meta: &mut Meta) -> Option<(Option<usize>, u16)> {
    let h: [u8; IPV4_HLEN] = load(ctx, off)?;
    let ihl = (h[0] & 0x0F) as usize * 4;
    if h[0] >> 4 != 4 || ihl < IPV4_HLEN {
        return None;
    }
    meta.family = 4;
    meta.ttl = h[8];
    meta.proto = h[9];
    meta.src = v4_addr([h[12], h[13], h[14], h[15]]);
    meta.dst = v4_addr([h[16], h[17], h[18], h[19]]);
    if ihl > IPV4_HLEN {
        meta.flags |= sample_flags::IP_OPTIONS;
    }
    let frag = be16([h[6], h[7]]);
    let l3_payload = be16([h[2], h[3]]).saturating_sub(ihl as u16);
    if frag & 0x3FFF != 0 {
        meta.flags |= sample_flags::FRAGMENT;
    }
    if frag & 0x1FFF != 0 {
        meta.flags |= sample_flags::NON_FIRST_FRAGMENT;
        return Some((None, l3_payload));
    }
    Some((Some(off + ihl), l3_payload))
}

/// Fills the IPv6 fields and walks up to `MAX_IPV6_EXT_HEADERS` extension
/// headers; returns the L4 offset (None without one) and its length.
#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, off: usize, meta: &mut Meta) -> Option<(Option<usize>, u16)> {
    let h: [u8; IPV6_HLEN] = load(ctx, off)?;
    if h[0] >> 4 != 6 {
        return None;
    }
    meta.family = 6;
    meta.ttl = h[7];
    meta.src.copy_from_slice(&h[8..24]);
    meta.dst.copy_from_slice(&h[24..40]);
    let mut remaining = be16([h[4], h[5]]);
    let mut next = h[6];
    let mut off = off + IPV6_HLEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let len = match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH => {
                let Some(eh) = load::<[u8; 2]>(ctx, off) else {
                    meta.flags |= sample_flags::L4_INCOMPLETE;
                    return Some((None, 0));
                };
                // The length format is the CURRENT header's: AH counts
                // 4-byte units minus 2, the others 8-byte units minus 1.
                let len = if next == NEXTHDR_AUTH {
                    (eh[1] as usize + 2) * 4
                } else {
                    (eh[1] as usize + 1) * 8
                };
                next = eh[0];
                len
            }
            NEXTHDR_FRAGMENT => {
                let Some(fh) = load::<[u8; 8]>(ctx, off) else {
                    meta.flags |= sample_flags::L4_INCOMPLETE;
                    return Some((None, 0));
                };
                meta.flags |= sample_flags::FRAGMENT;
                if be16([fh[2], fh[3]]) >> 3 != 0 {
                    meta.flags |= sample_flags::NON_FIRST_FRAGMENT;
                    meta.proto = fh[0];
                    return Some((None, remaining.saturating_sub(8)));
                }
                next = fh[0];
                8
            }
            NEXTHDR_NONE => {
                meta.proto = next;
                return Some((None, 0));
            }
            _ => {
                meta.proto = next;
                return Some((Some(off), remaining));
            }
        };
        off += len;
        remaining = remaining.saturating_sub(len as u16);
        if off > MAX_L4_OFFSET {
            break;
        }
    }
    // Chain longer than we walk: the source is known, the L4 header is not.
    meta.proto = next;
    meta.flags |= sample_flags::L4_INCOMPLETE;
    Some((None, 0))
}

/// Where the L4 header is, for [`parse_l4`]: `off` is `None` without one
/// (a non-first fragment, a cut extension chain).
pub(crate) struct L4 {
    off: Option<usize>,
    l3_payload: u16,
}

/// Fills the L4 fields (ports, flags, ICMP type, payload offset) from the
/// header [`parse_l3`] located. Rules about the source need none of them,
/// so a packet a block drops skips this.
#[inline(always)]
pub(crate) fn parse_l4(ctx: &XdpContext, l4: &L4, meta: &mut Meta) {
    if let Some(off) = l4.off {
        parse_l4_at(ctx, off, l4.l3_payload, meta);
    }
}

#[inline(always)]
fn parse_l4_at(ctx: &XdpContext, off: usize, l3_payload: u16, meta: &mut Meta) {
    let hdr_len = match meta.proto {
        IPPROTO_TCP => {
            let Some(t) = load::<[u8; 20]>(ctx, off) else {
                meta.flags |= sample_flags::L4_INCOMPLETE;
                return;
            };
            let doff = (t[12] >> 4) as usize * 4;
            if doff < 20 {
                meta.flags |= sample_flags::L4_INCOMPLETE;
                return;
            }
            meta.sport = be16([t[0], t[1]]);
            meta.dport = be16([t[2], t[3]]);
            meta.tcp_flags = t[13];
            doff
        }
        IPPROTO_UDP => {
            let Some(u) = load::<[u8; 8]>(ctx, off) else {
                meta.flags |= sample_flags::L4_INCOMPLETE;
                return;
            };
            meta.sport = be16([u[0], u[1]]);
            meta.dport = be16([u[2], u[3]]);
            8
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            let Some(i) = load::<[u8; 4]>(ctx, off) else {
                meta.flags |= sample_flags::L4_INCOMPLETE;
                return;
            };
            meta.icmp_type = i[0];
            8
        }
        _ => 0,
    };
    meta.payload_off = off + hdr_len;
    meta.payload_len = l3_payload.saturating_sub(hdr_len as u16);
}
