//! "The source": the unit that flow state, evidence, the journal's repeat
//! filter and enforcement all key one attacker by. An IPv4 source is its
//! address (/32). An IPv6 source is its address masked to the configured
//! prefix (`enforcement.ipv6_source_prefix`, /64 by default): a host
//! usually gets a whole /64, so an attacker rotating through its /64 is one
//! source, not 2⁶⁴ fresh ones.
use std::{fmt, net::IpAddr, ops::RangeInclusive};

use crate::dataplane::Prefix;

/// The default IPv6 source prefix: one /64, what a host is usually given.
pub const DEFAULT_IPV6_SOURCE_PREFIX: u8 = 64;

/// The IPv6 source prefixes allowed: /128 keeps one source per address
/// (the behaviour before issue 10); /32 (an ISP's allocation) is the widest.
pub const IPV6_SOURCE_PREFIXES: RangeInclusive<u8> = 32..=128;

/// One source: a host prefix (/32, or /128 with `ipv6_source_prefix =
/// 128`), or an IPv6 network (the attacker's /64).
///
/// Its `Display` is the bare address for a host (`192.0.2.9`) and the
/// prefix otherwise (`2001:db8:bad::/64`), so decisions and journal
/// records name what is enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source(Prefix);

impl Source {
    /// The source `addr` belongs to: IPv4 per address, IPv6 masked to
    /// `ipv6_prefix` bits (capped at 128).
    pub fn new(addr: IpAddr, ipv6_prefix: u8) -> Source {
        match addr {
            IpAddr::V4(_) => Source(Prefix::host(addr)),
            IpAddr::V6(_) => Source(Prefix::masked(addr, ipv6_prefix)),
        }
    }

    /// One address as its own source (what `ipv6_source_prefix = 128` gives).
    pub fn host(addr: IpAddr) -> Source {
        Source(Prefix::host(addr))
    }

    /// The source whose [`prefix`](Self::prefix) is `p` (what the executor
    /// hands back about a source it enforced on).
    pub fn from_prefix(p: Prefix) -> Source {
        Source(p)
    }

    /// The network address: the address itself for a host.
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// The prefix the executor enforces on: a host entry (the data plane's
    /// exact-match hashes) or, for an IPv6 network, an LPM trie entry.
    pub fn prefix(&self) -> Prefix {
        self.0
    }

    pub fn is_host(&self) -> bool {
        self.0.is_host()
    }

    pub fn is_ipv4(&self) -> bool {
        self.0.is_ipv4()
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(addr)
    }
}

impl From<IpAddr> for Source {
    fn from(addr: IpAddr) -> Source {
        Source::host(addr)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_is_masked_to_the_prefix_and_ipv4_stays_per_address() {
        let a = Source::new(ip("2001:db8:bad:0:dead:beef:1:2"), 64);
        let b = Source::new(ip("2001:db8:bad::9"), 64);
        assert_eq!(a, b, "one /64, one source");
        assert_eq!(a.to_string(), "2001:db8:bad::/64");
        assert_eq!(a.addr(), ip("2001:db8:bad::"));
        assert!(!a.is_host() && a.contains(ip("2001:db8:bad::ffff")));
        assert!(!a.contains(ip("2001:db8:bad:1::9")));
        assert_ne!(a, Source::new(ip("2001:db8:bad:1::9"), 64));
        assert_eq!(a.prefix().to_string(), "2001:db8:bad::/64");

        let v4 = Source::new(ip("192.0.2.9"), 64);
        assert!(v4.is_host());
        assert_eq!(v4.to_string(), "192.0.2.9");
        assert_eq!(v4.prefix().to_string(), "192.0.2.9/32");

        // /128 is one source per address, as before; /48 groups wider.
        let h = Source::new(ip("2001:db8:bad::9"), 128);
        assert!(h.is_host());
        assert_eq!(h.to_string(), "2001:db8:bad::9");
        assert_eq!(h, Source::host(ip("2001:db8:bad::9")));
        assert_eq!(
            Source::new(ip("2001:db8:bad:7::9"), 48).to_string(),
            "2001:db8:bad::/48"
        );
        assert_eq!(Source::from(ip("2001:db8::1")).prefix_len(), 128);
    }
}
