//! A [`Signature`] in the data plane's form, [`SigRule`], and back: the one
//! place the two meet, so `phantomnet-agent signature add "<form>"`, the
//! listing and the detector's rules all read the same fields the same way.
use std::net::IpAddr;

use phantomnet_common::SigRule;

use super::Signature;

impl Signature {
    /// The match fields as XDP reads them; an absent field is the full
    /// range. The caller sets what the rule does (rate, flags, reason).
    pub fn to_rule(&self) -> SigRule {
        let mut dst_addr = [0u8; 16];
        match self.dst {
            IpAddr::V4(a) => dst_addr[..4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => dst_addr = a.octets(),
        }
        let (tcp_flags_mask, tcp_flags_value) = self.tcp_flags.unwrap_or((0, 0));
        let (ttl_min, ttl_max) = self.ttl.unwrap_or((0, u8::MAX));
        let (len_min, len_max) = self.packet_len.unwrap_or((0, u16::MAX));
        let (dport_min, dport_max) = self.dst_port.unwrap_or((0, u16::MAX));
        let mut payload = [0u8; 8];
        let prefix = self.payload_prefix.as_deref().unwrap_or(&[]);
        let n = prefix.len().min(payload.len());
        payload[..n].copy_from_slice(&prefix[..n]);
        SigRule {
            family: self.family,
            dst_addr,
            dst_prefix_len: self.dst_prefix_len,
            protocol: self.protocol.unwrap_or(0),
            tcp_flags_mask,
            tcp_flags_value,
            ttl_min,
            ttl_max,
            len_min,
            len_max,
            dport_min,
            dport_max,
            payload,
            payload_len: n as u8,
            ..SigRule::default()
        }
    }

    /// The signature a rule matches by (full ranges read as absent fields).
    pub fn from_rule(r: &SigRule) -> Signature {
        let dst = if r.family == 4 {
            IpAddr::from([r.dst_addr[0], r.dst_addr[1], r.dst_addr[2], r.dst_addr[3]])
        } else {
            IpAddr::from(r.dst_addr)
        };
        Signature {
            family: r.family,
            dst,
            dst_prefix_len: r.dst_prefix_len,
            protocol: (r.protocol != 0).then_some(r.protocol),
            tcp_flags: (r.tcp_flags_mask != 0).then_some((r.tcp_flags_mask, r.tcp_flags_value)),
            ttl: ((r.ttl_min, r.ttl_max) != (0, u8::MAX)).then_some((r.ttl_min, r.ttl_max)),
            packet_len: ((r.len_min, r.len_max) != (0, u16::MAX)).then_some((r.len_min, r.len_max)),
            dst_port: ((r.dport_min, r.dport_max) != (0, u16::MAX))
                .then_some((r.dport_min, r.dport_max)),
            payload_prefix: (r.payload_len != 0)
                .then(|| r.payload[..usize::from(r.payload_len.min(8))].to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_survives_the_data_plane_form() {
        for text in [
            "tcp dst 10.0.0.2/32 dport 80 flags SYN/SYN+PSH+ACK ttl 64 len 54-60",
            "udp dst 10.0.0.2/32 dport 53 ttl 64 len 554 payload 5858585858585858",
            "tcp dst 2001:db8::/64 dport 443",
        ] {
            let sig: Signature = text.parse().unwrap();
            let rule = sig.to_rule();
            assert_eq!(Signature::from_rule(&rule), sig, "{text}");
            assert_eq!(Signature::from_rule(&rule).to_string(), sig.to_string());
        }
        let sig: Signature = "tcp dst 10.0.0.2/32 dport 80 len 54-60".parse().unwrap();
        let r = sig.to_rule();
        assert_eq!((r.ttl_min, r.ttl_max), (0, 255), "no TTL field: any TTL");
        assert_eq!(
            (r.len_min, r.len_max, r.dport_min, r.dport_max),
            (54, 60, 80, 80)
        );
        assert_eq!(&r.dst_addr[..4], &[10, 0, 0, 2]);
    }
}
