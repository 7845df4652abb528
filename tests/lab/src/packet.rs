//! Byte-exact packets for BPF_PROG_TEST_RUN, including malformed ones.
//! Checksums are left zero: XDP never checks them.

pub const ETH_IP: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86DD;
pub const ETH_8021Q: u16 = 0x8100;
pub const ETH_8021AD: u16 = 0x88A8;

/// An Ethernet frame under construction. `offsets` records where each
/// header starts, for truncation tests.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    pub bytes: Vec<u8>,
    /// (header name, offset where it starts)
    pub offsets: Vec<(&'static str, usize)>,
}

impl Frame {
    /// Ethernet with up to two VLAN tags (`(tpid, vid)`, outer first).
    pub fn eth(tags: &[(u16, u16)], ether_type: u16) -> Frame {
        let mut f = Frame::default();
        f.mark("eth");
        f.bytes.extend([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]);
        for &(tpid, vid) in tags {
            f.bytes.extend(tpid.to_be_bytes());
            f.mark("vlan");
            f.bytes.extend(vid.to_be_bytes());
        }
        f.bytes.extend(ether_type.to_be_bytes());
        f
    }

    fn mark(&mut self, name: &'static str) {
        self.offsets.push((name, self.bytes.len()));
    }

    /// IPv4 with `options` (a multiple of 4 bytes), fragment field
    /// (`flags_frag`: MF = 0x2000, offset in 8-byte units), protocol and the
    /// L4 bytes that follow.
    pub fn ipv4(
        mut self,
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        options: &[u8],
        flags_frag: u16,
        l4: &[u8],
    ) -> Frame {
        assert_eq!(options.len() % 4, 0);
        self.mark("ipv4");
        let ihl = (20 + options.len()) / 4;
        let total = (ihl * 4 + l4.len()) as u16;
        self.bytes.push(0x40 | ihl as u8);
        self.bytes.push(0);
        self.bytes.extend(total.to_be_bytes());
        self.bytes.extend([0x12, 0x34]);
        self.bytes.extend(flags_frag.to_be_bytes());
        self.bytes.push(64);
        self.bytes.push(proto);
        self.bytes.extend([0, 0]);
        self.bytes.extend(src);
        self.bytes.extend(dst);
        self.bytes.extend(options);
        self.mark("l4");
        self.bytes.extend(l4);
        self
    }

    /// IPv6 with a chain of extension headers `(next-header value of the
    /// header itself, its bytes)` before the upper layer `proto`.
    pub fn ipv6(
        mut self,
        src: [u8; 16],
        dst: [u8; 16],
        ext: &[(u8, Vec<u8>)],
        proto: u8,
        l4: &[u8],
    ) -> Frame {
        self.mark("ipv6");
        let payload: usize = ext.iter().map(|(_, b)| b.len()).sum::<usize>() + l4.len();
        self.bytes.extend([0x60, 0, 0, 0]);
        self.bytes.extend((payload as u16).to_be_bytes());
        self.bytes
            .push(ext.first().map(|(t, _)| *t).unwrap_or(proto));
        self.bytes.push(57);
        self.bytes.extend(src);
        self.bytes.extend(dst);
        for (i, (_, body)) in ext.iter().enumerate() {
            self.mark("ext");
            let next = ext.get(i + 1).map(|(t, _)| *t).unwrap_or(proto);
            let mut body = body.clone();
            body[0] = next;
            self.bytes.extend(body);
        }
        self.mark("l4");
        self.bytes.extend(l4);
        self
    }
}

/// A TCP header (20 bytes, no options) and payload.
pub fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(sport.to_be_bytes());
    v.extend(dport.to_be_bytes());
    v.extend([0, 0, 0, 1, 0, 0, 0, 0]);
    v.push(5 << 4);
    v.push(flags);
    v.extend([0xFF, 0xFF, 0, 0, 0, 0]);
    v.extend(payload);
    v
}

/// A UDP header and payload.
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(sport.to_be_bytes());
    v.extend(dport.to_be_bytes());
    v.extend(((8 + payload.len()) as u16).to_be_bytes());
    v.extend([0, 0]);
    v.extend(payload);
    v
}

/// An ICMP/ICMPv6 echo request (type 8 / 128) with payload.
pub fn icmp_echo(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, 0, 0, 0, 0, 1, 0, 1];
    v.extend(payload);
    v
}

/// An IPv6 extension header of `len8` 8-octet units (hop-by-hop, routing,
/// destination options). The first byte is filled in by [`Frame::ipv6`].
pub fn ext_header(len8: u8) -> Vec<u8> {
    let mut v = vec![0u8; (usize::from(len8) + 1) * 8];
    v[1] = len8;
    v
}

/// An IPv6 fragment header with `offset` in 8-byte units and the M flag.
pub fn frag_header(offset: u16, more: bool) -> Vec<u8> {
    let mut v = vec![0u8; 8];
    let field = (offset << 3) | u16::from(more);
    v[2..4].copy_from_slice(&field.to_be_bytes());
    v[4..8].copy_from_slice(&0xABCD_u32.to_be_bytes());
    v
}

/// An IPv6 Authentication Header with an `icv_len`-byte ICV (a multiple
/// of 4). Its length field counts 4-byte units minus 2 (RFC 4302), unlike
/// the other extension headers. The first byte is filled in by [`Frame::ipv6`].
pub fn ah_header(icv_len: usize) -> Vec<u8> {
    let total = 12 + icv_len;
    let mut v = vec![0u8; total];
    v[1] = (total / 4 - 2) as u8;
    v[4..8].copy_from_slice(&0x1234_u32.to_be_bytes());
    v
}

pub const NH_AUTH: u8 = 51;
pub const NH_HOP: u8 = 0;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_DEST: u8 = 60;
pub const NH_NONE: u8 = 59;
