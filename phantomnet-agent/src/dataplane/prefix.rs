use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use aya::maps::lpm_trie::Key;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use phantomnet_common::{V4_KEY_LEN, V6_KEY_LEN};

use super::DataplaneError;

/// An IPv4 or IPv6 network prefix, as the maps key it.
///
/// Parsing is strict, because a typo here blocks the wrong network: a bare
/// address is a /32 or /128, a prefix longer than its family allows is an
/// error, and so is an address with host bits set (`192.0.2.7/24`), with
/// the network it probably meant in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix(IpNet);

impl Prefix {
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, DataplaneError> {
        // The input's text is built only for an error: this runs per sample
        // in the flood detector, where formatting cost a third of its time.
        let invalid = |reason: String| DataplaneError::InvalidPrefix {
            input: format!("{addr}/{len}"),
            reason,
        };
        let net = match addr {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, len).map_err(|_| {
                invalid(format!(
                    "prefix length {len} is longer than IPv4 allows (32)"
                ))
            })?),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, len).map_err(|_| {
                invalid(format!(
                    "prefix length {len} is longer than IPv6 allows (128)"
                ))
            })?),
        };
        if net.network() != addr {
            return Err(invalid(format!(
                "host bits are set; the network is {}",
                net.trunc()
            )));
        }
        // The XDP program sees an IPv4 packet as IPv4: an entry in the IPv6
        // maps for ::ffff:a.b.c.d would never match anything.
        if let IpAddr::V6(a) = addr
            && len >= 96
            && let Some(v4) = a.to_ipv4_mapped()
        {
            return Err(invalid(format!(
                "an IPv4-mapped IPv6 prefix never matches (the data plane sees IPv4 packets as IPv4); use {v4}/{}",
                len - 96
            )));
        }
        Ok(Prefix(net))
    }

    pub fn host(addr: IpAddr) -> Prefix {
        Prefix(IpNet::from(addr))
    }

    /// The network of length `len` (capped at the family's maximum) that
    /// holds `addr`: host bits are cleared, not refused. Like
    /// [`host`](Self::host), it takes an address the data plane saw, so it
    /// does not refuse what [`new`](Self::new) refuses for an operator's typo.
    pub fn masked(addr: IpAddr, len: u8) -> Prefix {
        let net = match addr {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, len.min(32)).expect("len <= 32")),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, len.min(128)).expect("len <= 128")),
        };
        Prefix(net.trunc())
    }

    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// A single address: /32 or /128. Host entries live in the data
    /// plane's exact-match hashes, the rest in its LPM tries.
    pub fn is_host(&self) -> bool {
        self.0.prefix_len() == self.0.max_prefix_len()
    }

    pub fn is_ipv4(&self) -> bool {
        matches!(self.0, IpNet::V4(_))
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(&addr)
    }

    pub(crate) fn v4_key(addr: Ipv4Addr, len: u8) -> Key<[u8; V4_KEY_LEN]> {
        let mut data = [0u8; V4_KEY_LEN];
        data[..4].copy_from_slice(&addr.octets());
        Key::new(u32::from(len), data)
    }

    pub(crate) fn v6_key(addr: Ipv6Addr, len: u8) -> Key<[u8; V6_KEY_LEN]> {
        Key::new(u32::from(len), addr.octets())
    }

    pub(crate) fn from_v4_key(key: &Key<[u8; V4_KEY_LEN]>) -> Option<Prefix> {
        let data = key.data();
        let addr = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
        Prefix::new(IpAddr::V4(addr), u8::try_from(key.prefix_len()).ok()?).ok()
    }

    pub(crate) fn from_v6_key(key: &Key<[u8; V6_KEY_LEN]>) -> Option<Prefix> {
        let addr = Ipv6Addr::from(key.data());
        Prefix::new(IpAddr::V6(addr), u8::try_from(key.prefix_len()).ok()?).ok()
    }
}

impl FromStr for Prefix {
    type Err = DataplaneError;

    fn from_str(s: &str) -> Result<Prefix, DataplaneError> {
        let input = s.trim();
        let invalid = |reason: &str| DataplaneError::InvalidPrefix {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (addr, len) = match input.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (input, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| invalid("not an IPv4 or IPv6 address"))?;
        match len {
            None => Prefix::new(addr, if addr.is_ipv4() { 32 } else { 128 }),
            Some(l) => {
                let len: u8 = l
                    .parse()
                    .map_err(|_| invalid("the prefix length is not a number from 0 to 128"))?;
                Prefix::new(addr, len).map_err(|e| match e {
                    DataplaneError::InvalidPrefix { reason, .. } => invalid(&reason),
                    other => other,
                })
            }
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_ipv6_prefixes_are_refused_with_the_ipv4_form() {
        for (input, hint) in [
            ("::ffff:192.0.2.7", "use 192.0.2.7/32"),
            ("::ffff:192.0.2.0/120", "use 192.0.2.0/24"),
            ("::ffff:0.0.0.0/96", "use 0.0.0.0/0"),
        ] {
            let err = input.parse::<Prefix>().unwrap_err().to_string();
            assert!(
                err.contains("IPv4-mapped") && err.contains(hint),
                "{input}: {err}"
            );
        }
        // Neighbours of the mapped range are ordinary IPv6.
        assert!("::fffe:c000:207/128".parse::<Prefix>().is_ok());
        assert!("::/64".parse::<Prefix>().is_ok());
    }

    #[test]
    fn parses_addresses_and_prefixes() {
        let p: Prefix = "192.0.2.7".parse().unwrap();
        assert_eq!(
            (p.to_string().as_str(), p.prefix_len()),
            ("192.0.2.7/32", 32)
        );
        let p: Prefix = "2001:db8::1".parse().unwrap();
        assert_eq!(p.prefix_len(), 128);
        let p: Prefix = " 198.51.100.0/24 ".parse().unwrap();
        assert!(p.contains("198.51.100.9".parse().unwrap()));
        assert!(!p.contains("198.51.101.9".parse().unwrap()));
        assert_eq!("0.0.0.0/0".parse::<Prefix>().unwrap().prefix_len(), 0);
        assert_eq!("2001:db8::/32".parse::<Prefix>().unwrap().prefix_len(), 32);
    }

    #[test]
    fn rejects_bad_prefixes_with_a_reason() {
        for (input, reason) in [
            ("192.0.2.0/33", "longer than IPv4 allows (32)"),
            ("2001:db8::/129", "longer than IPv6 allows (128)"),
            (
                "192.0.2.7/24",
                "host bits are set; the network is 192.0.2.0/24",
            ),
            ("192.0.2.300", "not an IPv4 or IPv6 address"),
            ("", "not an IPv4 or IPv6 address"),
            ("10.0.0.0/abc", "not a number"),
            ("10.0.0.0/-1", "not a number"),
        ] {
            let err = input.parse::<Prefix>().unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn masked_clears_host_bits_and_caps_the_length() {
        let a: IpAddr = "2001:db8:bad:0:1:2:3:4".parse().unwrap();
        assert_eq!(Prefix::masked(a, 64).to_string(), "2001:db8:bad::/64");
        assert_eq!(Prefix::masked(a, 200), Prefix::host(a));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(Prefix::masked(v4, 64), Prefix::host(v4));
        assert_eq!(Prefix::masked(v4, 24).to_string(), "192.0.2.0/24");
        // An address the data plane saw is taken as it is.
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(Prefix::masked(mapped, 128).is_host());
    }

    #[test]
    fn keys_round_trip() {
        let p: Prefix = "203.0.113.0/25".parse().unwrap();
        let IpAddr::V4(a) = p.addr() else { panic!() };
        let key = Prefix::v4_key(a, p.prefix_len());
        assert_eq!(key.data(), [203, 0, 113, 0, 0, 0, 0, 0]);
        assert_eq!(Prefix::from_v4_key(&key), Some(p));
        let p: Prefix = "2001:db8:bad::/48".parse().unwrap();
        let IpAddr::V6(a) = p.addr() else { panic!() };
        assert_eq!(Prefix::from_v6_key(&Prefix::v6_key(a, 48)), Some(p));
    }
}
