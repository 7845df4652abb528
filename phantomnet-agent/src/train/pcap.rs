//! pcap and pcapng files → [`PacketSample`]s, built the way the XDP program
//! builds them (addresses, ports, flags, TTL, the first 64 payload bytes),
//! so a dataset made from a pcap has the same features as live samples.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use phantomnet_common::{PacketSample, SAMPLE_PAYLOAD_LEN, sample_flags};

use super::TrainError;

/// Packets read from a pcap/pcapng file, and how many were skipped (not IP,
/// unparseable, or an unsupported link type).
pub struct PcapSamples {
    pub samples: Vec<PacketSample>,
    pub skipped: u64,
}

/// Reads every packet of `path` (pcap or pcapng, detected by magic).
/// `on_packet` is called after each packet (for progress).
pub fn read_pcap(path: &Path, on_packet: &mut dyn FnMut(u64)) -> Result<PcapSamples, TrainError> {
    let err = |m: String| TrainError::Input {
        path: path.to_path_buf(),
        message: m,
    };
    let mut file = BufReader::new(File::open(path).map_err(|e| TrainError::io(path, e))?);
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|_| err("too short to be a pcap file".into()))?;
    let file = BufReader::new(File::open(path).map_err(|e| TrainError::io(path, e))?);
    let mut out = PcapSamples {
        samples: Vec::new(),
        skipped: 0,
    };
    let mut seen = 0u64;
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let mut r = PcapNgReader::new(file).map_err(|e| err(format!("pcapng: {e}")))?;
            // Interface link types, in the order the current section declares them.
            let mut links: Vec<DataLink> = Vec::new();
            while let Some(block) = r.next_block() {
                let block =
                    block.map_err(|e| err(format!("pcapng block after {seen} packets: {e}")))?;
                match block {
                    Block::SectionHeader(_) => links.clear(),
                    Block::InterfaceDescription(i) => links.push(i.linktype),
                    Block::EnhancedPacket(p) => {
                        let link = links
                            .get(p.interface_id as usize)
                            .copied()
                            .unwrap_or(DataLink::ETHERNET);
                        push(
                            &mut out,
                            sample_from_frame(link, p.timestamp, p.original_len, &p.data),
                        );
                        seen += 1;
                        on_packet(seen);
                    }
                    _ => {}
                }
            }
        }
        _ => {
            let mut r = PcapReader::new(file)
                .map_err(|e| err(format!("not a pcap or pcapng file: {e}")))?;
            let link = r.header().datalink;
            while let Some(p) = r.next_packet() {
                let p = p.map_err(|e| err(format!("pcap packet {}: {e}", seen + 1)))?;
                push(
                    &mut out,
                    sample_from_frame(link, p.timestamp, p.orig_len, &p.data),
                );
                seen += 1;
                on_packet(seen);
            }
        }
    }
    Ok(out)
}

fn push(out: &mut PcapSamples, s: Option<PacketSample>) {
    match s {
        Some(s) => out.samples.push(s),
        None => out.skipped += 1,
    }
}

/// One captured frame → a sample, or `None` if it is not IPv4/IPv6.
pub fn sample_from_frame(
    link: DataLink,
    ts: Duration,
    orig_len: u32,
    data: &[u8],
) -> Option<PacketSample> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data),
        _ => return None,
    }
    .ok()?;
    let mut s = PacketSample {
        timestamp_ns: ts.as_nanos().min(u64::MAX as u128) as u64,
        packet_len: orig_len,
        ..PacketSample::ZERO
    };
    let ip_payload = match sliced.net? {
        NetSlice::Ipv4(v4) => {
            let h = v4.header();
            s.family = 4;
            s.src_addr[..4].copy_from_slice(&h.source_addr().octets());
            s.dst_addr[..4].copy_from_slice(&h.destination_addr().octets());
            s.ttl = h.ttl();
            if h.ihl() > 5 {
                s.flags |= sample_flags::IP_OPTIONS;
            }
            v4.payload().clone()
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header();
            s.family = 6;
            s.src_addr = h.source_addr().octets();
            s.dst_addr = h.destination_addr().octets();
            s.ttl = h.hop_limit();
            v6.payload().clone()
        }
        NetSlice::Arp(_) => return None,
    };
    s.protocol = ip_payload.ip_number.0;
    if ip_payload.fragmented {
        s.flags |= sample_flags::FRAGMENT;
    }
    let payload: &[u8] = match sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            s.src_port = t.source_port();
            s.dst_port = t.destination_port();
            s.tcp_flags = u8::from(t.fin())
                | u8::from(t.syn()) << 1
                | u8::from(t.rst()) << 2
                | u8::from(t.psh()) << 3
                | u8::from(t.ack()) << 4
                | u8::from(t.urg()) << 5
                | u8::from(t.ece()) << 6
                | u8::from(t.cwr()) << 7;
            t.payload()
        }
        Some(TransportSlice::Udp(u)) => {
            s.src_port = u.source_port();
            s.dst_port = u.destination_port();
            u.payload()
        }
        Some(TransportSlice::Icmpv4(i)) => {
            s.icmp_type = i.type_u8();
            i.payload()
        }
        Some(TransportSlice::Icmpv6(i)) => {
            s.icmp_type = i.type_u8();
            i.payload()
        }
        _ => {
            if ip_payload.fragmented {
                s.flags |= sample_flags::NON_FIRST_FRAGMENT;
            } else {
                s.flags |= sample_flags::L4_INCOMPLETE;
            }
            &[]
        }
    };
    s.payload_len = payload.len().min(u16::MAX as usize) as u16;
    let n = payload.len().min(SAMPLE_PAYLOAD_LEN);
    s.payload[..n].copy_from_slice(&payload[..n]);
    s.payload_valid = n as u8;
    Some(s)
}

/// Whether `path` looks like a pcap/pcapng file (by extension).
pub fn is_pcap_path(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pcap" | "pcapng" | "cap")
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    use phantomnet_common::{IPPROTO_TCP, IPPROTO_UDP, TCP_SYN};

    pub(crate) fn tcp_frame(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        syn: bool,
        payload: &[u8],
    ) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
            .ipv4(src, dst, 61)
            .tcp(sport, dport, 1000, 65535);
        let b = if syn { b.syn() } else { b.ack(1).psh() };
        let mut out = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut out, payload).unwrap();
        out
    }

    /// Writes `frames` (timestamp ns, bytes) as a classic pcap file.
    pub(crate) fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
        let mut w = PcapWriter::new(File::create(path).unwrap()).unwrap();
        for (ts, f) in frames {
            w.write_packet(&PcapPacket::new(
                Duration::from_nanos(*ts),
                f.len() as u32,
                f,
            ))
            .unwrap();
        }
    }

    #[test]
    fn frames_become_samples_like_the_data_plane_makes() {
        let long: Vec<u8> = (0..100u8).collect();
        let f = tcp_frame([192, 0, 2, 1], [198, 51, 100, 2], 40000, 80, false, &long);
        let s = sample_from_frame(
            DataLink::ETHERNET,
            Duration::from_millis(1500),
            f.len() as u32,
            &f,
        )
        .unwrap();
        assert_eq!(s.family, 4);
        assert_eq!(&s.src_addr[..4], &[192, 0, 2, 1]);
        assert_eq!(&s.dst_addr[..4], &[198, 51, 100, 2]);
        assert_eq!(
            (s.src_port, s.dst_port, s.protocol, s.ttl),
            (40000, 80, IPPROTO_TCP, 61)
        );
        assert_eq!(s.payload_len, 100);
        assert_eq!(s.payload_valid, 64);
        assert_eq!(&s.payload[..], &long[..64]);
        assert_eq!(s.packet_len, f.len() as u32);
        assert_eq!(s.timestamp_ns, 1_500_000_000);
        assert_eq!(s.tcp_flags & TCP_SYN, 0);

        let syn = tcp_frame([192, 0, 2, 1], [198, 51, 100, 2], 40000, 22, true, &[]);
        let s = sample_from_frame(DataLink::ETHERNET, Duration::ZERO, 54, &syn).unwrap();
        assert_eq!(s.tcp_flags, TCP_SYN);

        let b = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                33,
            )
            .udp(5353, 53);
        let mut f6 = Vec::new();
        b.write(&mut f6, b"query").unwrap();
        let s =
            sample_from_frame(DataLink::ETHERNET, Duration::ZERO, f6.len() as u32, &f6).unwrap();
        assert_eq!(
            (s.family, s.protocol, s.ttl, s.dst_port, s.payload_len),
            (6, IPPROTO_UDP, 33, 53, 5)
        );

        assert!(sample_from_frame(DataLink::ETHERNET, Duration::ZERO, 4, &[1, 2, 3, 4]).is_none());
    }

    #[test]
    fn pcap_files_are_read_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        let frames: Vec<(u64, Vec<u8>)> = (0..5u64)
            .map(|i| {
                (
                    i * 1_000_000,
                    tcp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, true, &[]),
                )
            })
            .collect();
        write_pcap(&path, &frames);
        let mut count = 0;
        let got = read_pcap(&path, &mut |n| count = n).unwrap();
        assert_eq!(got.samples.len(), 5);
        assert_eq!(got.skipped, 0);
        assert_eq!(count, 5);
        assert_eq!(got.samples[3].timestamp_ns, 3_000_000);

        let bad = dir.path().join("bad.pcap");
        std::fs::write(&bad, b"this is not a capture").unwrap();
        assert!(read_pcap(&bad, &mut |_| {}).is_err());
    }
}
