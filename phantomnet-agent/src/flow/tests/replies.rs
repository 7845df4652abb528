//! What the refusal and answer tests share: a client's pure ACK to the
//! server, from `192.0.2.<src>`, and the server's address.
use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_ACK};

pub(super) const NS: u64 = 1_000_000_000;
pub(super) const SERVER: [u8; 4] = [203, 0, 113, 10];

pub(super) fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&a);
    out
}

/// A pure ACK from `src` to the server.
pub(super) fn ack(src: u8, ts: u64) -> PacketSample {
    PacketSample {
        timestamp_ns: ts,
        packet_len: 54,
        src_addr: v4([192, 0, 2, src]),
        dst_addr: v4(SERVER),
        src_port: 40000,
        dst_port: 80,
        family: 4,
        protocol: IPPROTO_TCP,
        tcp_flags: TCP_ACK,
        ttl: 64,
        ..PacketSample::ZERO
    }
}
