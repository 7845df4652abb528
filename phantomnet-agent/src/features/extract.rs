use phantomnet_common::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, PacketSample};

use super::{FEATURE_COUNT, FeatureError, FeatureVector, index, shannon_entropy};
use crate::flow::WindowStats;

/// TCP 1, UDP 2, ICMP and ICMPv6 3, anything else 0.
pub fn protocol_encoding(protocol: u8) -> f64 {
    match protocol {
        IPPROTO_TCP => 1.0,
        IPPROTO_UDP => 2.0,
        IPPROTO_ICMP | IPPROTO_ICMPV6 => 3.0,
        _ => 0.0,
    }
}

/// Well-known (≤ 1023) 1, registered (≤ 49151) 2, dynamic 3. A sample
/// without ports (ICMP, non-first fragments) has port 0 and so class 1.
pub fn dst_port_class(port: u16) -> f64 {
    match port {
        0..=1023 => 1.0,
        1024..=49151 => 2.0,
        _ => 3.0,
    }
}

/// Schema-v7 features of `sample` (the first 15 are schema v1's, the
/// first 22 schema v2's, the first 23 schema v3's, the first 24 schema
/// v4's, the first 25 schema v5's, the first 26 schema v6's), given its source's window statistics
/// *after* the sample was added to them. No allocation.
pub fn extract(sample: &PacketSample, stats: &WindowStats) -> Result<FeatureVector, FeatureError> {
    let mut v = [0.0; FEATURE_COUNT];
    let valid = (sample.payload_valid as usize).min(sample.payload.len());
    v[index::PACKET_LENGTH] = sample.packet_len as f64;
    v[index::PROTOCOL_ENCODING] = protocol_encoding(sample.protocol);
    v[index::DST_PORT_CLASS] = dst_port_class(sample.dst_port);
    v[index::SRC_PORT_EPHEMERAL] = if sample.src_port >= 1024 { 1.0 } else { 0.0 };
    v[index::EVENT_RATE_1M] = stats.event_rate_1m;
    v[index::BURST_RATE_10S] = stats.burst_rate_10s;
    v[index::INTER_ARRIVAL_MEAN] = stats.inter_arrival_mean;
    v[index::INTER_ARRIVAL_STD] = stats.inter_arrival_std;
    v[index::PACKET_SIZE_VARIANCE] = stats.packet_size_variance;
    v[index::PAYLOAD_ENTROPY] = shannon_entropy(&sample.payload[..valid]);
    v[index::UNIQUE_DST_IPS] = stats.unique_dst_ips;
    v[index::UNIQUE_DST_PORTS] = stats.unique_dst_ports;
    v[index::PAYLOAD_LENGTH] = sample.payload_len as f64;
    v[index::SYN_RATIO] = stats.syn_ratio;
    v[index::TTL] = sample.ttl as f64;
    v[index::NEW_CONN_RATE] = stats.new_conn_rate;
    v[index::PACKETS_PER_CONN] = stats.packets_per_conn;
    v[index::BYTES_PER_CONN] = stats.bytes_per_conn;
    v[index::PAYLOAD_SHARE] = stats.payload_share;
    v[index::ACK_ONLY_SHARE] = stats.ack_only_share;
    v[index::RST_SHARE] = stats.rst_share;
    v[index::FIN_SHARE] = stats.fin_share;
    v[index::SIGNATURE_HITS] = stats.signature_hits;
    v[index::SERVER_REFUSALS] = stats.server_refusals;
    v[index::SERVER_ANSWERS] = stats.server_answers;
    v[index::SERVER_ERRORS] = stats.server_errors;
    v[index::EST_PACKET_RATE] = stats.est_packet_rate;
    v[index::EST_CONN_RATE] = stats.est_conn_rate;
    v[index::EST_PACKETS_PER_CONN] = stats.est_packets_per_conn;
    FeatureVector::new(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantomnet_common::{TCP_ACK, TCP_SYN};

    #[test]
    fn encodings_follow_the_schema() {
        assert_eq!(protocol_encoding(6), 1.0);
        assert_eq!(protocol_encoding(17), 2.0);
        assert_eq!(protocol_encoding(1), 3.0);
        assert_eq!(protocol_encoding(58), 3.0);
        assert_eq!(protocol_encoding(47), 0.0);
        assert_eq!(dst_port_class(22), 1.0);
        assert_eq!(dst_port_class(1023), 1.0);
        assert_eq!(dst_port_class(1024), 2.0);
        assert_eq!(dst_port_class(49151), 2.0);
        assert_eq!(dst_port_class(49152), 3.0);
    }

    #[test]
    fn per_packet_fields_come_from_the_sample_and_window_fields_from_stats() {
        let mut payload = [0u8; 64];
        payload[..4].copy_from_slice(b"abab");
        let s = PacketSample {
            ifindex: 1,
            packet_len: 74,
            src_port: 1024,
            dst_port: 8080,
            payload_len: 20,
            family: 4,
            protocol: 6,
            tcp_flags: TCP_SYN | TCP_ACK,
            ttl: 57,
            payload_valid: 4,
            payload,
            ..PacketSample::ZERO
        };
        let stats = WindowStats {
            event_rate_1m: 1.5,
            burst_rate_10s: 2.5,
            inter_arrival_mean: 0.25,
            inter_arrival_std: 0.125,
            packet_size_variance: 9.0,
            unique_dst_ips: 3.0,
            unique_dst_ports: 4.0,
            syn_ratio: 0.5,
            new_conn_rate: 0.75,
            packets_per_conn: 6.0,
            bytes_per_conn: 600.0,
            payload_share: 0.25,
            ack_only_share: 0.5,
            rst_share: 0.0625,
            fin_share: 0.125,
            signature_hits: 2.0,
            server_refusals: 7.0,
            server_answers: 11.0,
            server_errors: 5.0,
            est_packet_rate: 21.5,
            est_conn_rate: 0.5,
            est_packets_per_conn: 43.0,
        };
        let f = extract(&s, &stats).unwrap();
        assert_eq!(
            f.as_array(),
            &[
                74.0, 1.0, 2.0, 1.0, 1.5, 2.5, 0.25, 0.125, 9.0, 1.0, 3.0, 4.0, 20.0, 0.5, 57.0,
                0.75, 6.0, 600.0, 0.25, 0.5, 0.0625, 0.125, 2.0, 7.0, 11.0, 5.0, 21.5, 0.5, 43.0,
            ]
        );
        let bad = WindowStats {
            inter_arrival_mean: f64::NAN,
            ..stats
        };
        assert!(extract(&s, &bad).is_err());
    }
}
