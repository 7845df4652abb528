//! Signature rules and known-good sources in the maps.
//!
//! A signature rule drops (or rate-limits) the packets to a destination
//! that share an attack's traits, whatever their source. Rules sit in a
//! fixed array of [`capacity::SIG_SLOTS`]; XDP walks the slots below
//! `Config::sig_slots`. A new rule takes the lowest free slot, and a rule
//! with the same match fields as a live one replaces it in place (a
//! refresh keeps its id and counts).
use phantomnet_common::{IPPROTO_TCP, sig_flags};

use super::*;

/// A signature rule as operators see it, with its counts summed over CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureView {
    pub slot: u32,
    pub rule: SigRule,
    pub expires: Expiry,
    /// Time left: `None` = never expires; `Some(ZERO)` = expired.
    pub remaining: Option<Duration>,
    pub matched: u64,
    pub dropped: u64,
    /// Matched but passed: the source is known-good.
    pub exempted: u64,
}

/// A known-good source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownGoodView {
    pub addr: IpAddr,
    pub entry: KnownGood,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> DataplaneError {
    DataplaneError::InvalidArgument {
        field,
        reason: reason.into(),
    }
}

/// Refuses a rule XDP would misread or that could never match, and clears
/// destination bits past the prefix (so equal rules compare equal).
fn normalize(mut r: SigRule) -> Result<SigRule, DataplaneError> {
    let max_len = match r.family {
        4 => 32,
        6 => 128,
        f => return Err(invalid("family", format!("{f}: must be 4 or 6"))),
    };
    if r.dst_prefix_len > max_len {
        return Err(invalid(
            "dst",
            format!("prefix length {} > {max_len}", r.dst_prefix_len),
        ));
    }
    let addr = if r.family == 4 {
        if r.dst_addr[4..].iter().any(|&b| b != 0) {
            return Err(invalid(
                "dst",
                "an IPv4 rule's address has bytes past the fourth",
            ));
        }
        IpAddr::from([r.dst_addr[0], r.dst_addr[1], r.dst_addr[2], r.dst_addr[3]])
    } else {
        IpAddr::from(r.dst_addr)
    };
    let net = ipnet::IpNet::new(addr, r.dst_prefix_len)
        .map_err(|e| invalid("dst", e.to_string()))?
        .trunc();
    r.dst_addr = match net.addr() {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    };
    if r.len_min > r.len_max {
        return Err(invalid("len", format!("{} > {}", r.len_min, r.len_max)));
    }
    if r.dport_min > r.dport_max {
        return Err(invalid(
            "dport",
            format!("{} > {}", r.dport_min, r.dport_max),
        ));
    }
    if r.ttl_min > r.ttl_max {
        return Err(invalid("ttl", format!("{} > {}", r.ttl_min, r.ttl_max)));
    }
    if r.tcp_flags_value & !r.tcp_flags_mask != 0 {
        return Err(invalid(
            "flags",
            "a flag is required set but is outside the mask: the rule could never match",
        ));
    }
    if r.tcp_flags_mask != 0 && r.protocol != IPPROTO_TCP {
        return Err(invalid("flags", "TCP flags need protocol tcp"));
    }
    if r.payload_len > 8 {
        return Err(invalid(
            "payload",
            format!("{} bytes; at most 8", r.payload_len),
        ));
    }
    r.payload[usize::from(r.payload_len)..].fill(0);
    if r.flags & !sig_flags::EXEMPT_KNOWN_GOOD != 0 {
        return Err(invalid(
            "flags",
            format!("unknown rule flag bits {:#x}", r.flags),
        ));
    }
    if r.rate_pps > 1_000_000_000 {
        return Err(invalid("rate", "must be at most 1e9 packets/s"));
    }
    Ok(r)
}

/// The fields that say which packets a rule matches (not what it does).
fn same_match(a: &SigRule, b: &SigRule) -> bool {
    let key = |r: &SigRule| {
        (
            r.family,
            r.dst_addr,
            r.dst_prefix_len,
            r.protocol,
            (r.tcp_flags_mask, r.tcp_flags_value),
            (r.ttl_min, r.ttl_max),
            (r.len_min, r.len_max),
            (r.dport_min, r.dport_max),
            (r.payload_len, r.payload),
        )
    };
    key(a) == key(b)
}

impl Maps {
    fn sig_slot(&self, slot: u32) -> Result<SigRule, DataplaneError> {
        self.sig_rules
            .get(&slot, 0)
            .map_err(|e| DataplaneError::map("reading PN_SIG_RULES", e))
    }

    fn write_sig_slot(&mut self, slot: u32, rule: SigRule) -> Result<(), DataplaneError> {
        self.sig_rules
            .set(slot, rule, 0)
            .map_err(|e| DataplaneError::map("writing PN_SIG_RULES", e))
    }

    /// Every slot, in order.
    fn sig_slots_all(&self) -> Result<Vec<SigRule>, DataplaneError> {
        (0..capacity::SIG_SLOTS).map(|i| self.sig_slot(i)).collect()
    }

    /// Sets `Config::sig_slots` to just past the highest slot in use.
    fn sync_sig_slots(&mut self, slots: &[SigRule]) -> Result<u32, DataplaneError> {
        let n = slots.iter().rposition(|r| r.id != 0).map_or(0, |i| i + 1) as u32;
        if self.config()?.sig_slots != n {
            self.update_config(|c| c.sig_slots = n)?;
        }
        Ok(n)
    }

    /// Installs a signature rule for `ttl` (`None`: until removed). `rule`
    /// carries the match fields, `rate_pps` (0 = drop every match), the
    /// reason and the flags; the id, times and rate-limit parameters are
    /// filled in here. A live rule with the same match fields is replaced
    /// in place and keeps its id.
    pub fn add_signature(
        &mut self,
        rule: SigRule,
        ttl: Option<Duration>,
    ) -> Result<SignatureView, DataplaneError> {
        let mut rule = normalize(rule)?;
        let now = monotonic_now_ns();
        let expires = Expiry::after(ttl, now)?;
        rule.expires_ns = expires.0;
        rule.created_ns = now;
        (rule.interval_ns, rule.tolerance_ns) = if rule.rate_pps == 0 {
            (0, 0)
        } else {
            let interval = 1_000_000_000 / u64::from(rule.rate_pps);
            (interval, interval * u64::from((rule.rate_pps / 10).max(1)))
        };
        let mut slots = self.sig_slots_all()?;
        let live = |r: &SigRule| r.id != 0 && Expiry(r.expires_ns).is_live(now);
        let slot = if let Some(i) = slots.iter().position(|r| live(r) && same_match(r, &rule)) {
            rule.id = slots[i].id;
            // Same rule refreshed: keep its counts and bucket going.
            rule.created_ns = slots[i].created_ns;
            i
        } else {
            let Some(i) = slots.iter().position(|r| !live(r)) else {
                return Err(DataplaneError::MapFull {
                    map: maps::SIG_RULES,
                    capacity: capacity::SIG_SLOTS,
                });
            };
            rule.id = slots.iter().map(|r| r.id).max().unwrap_or(0) + 1;
            i
        };
        let slot = slot as u32;
        self.write_sig_slot(slot, rule)?;
        slots[slot as usize] = rule;
        self.sync_sig_slots(&slots)?;
        self.signature_view(slot, rule, now)
    }

    /// Removes the rule with this id.
    pub fn remove_signature(&mut self, id: u32) -> Result<(), DataplaneError> {
        let mut slots = self.sig_slots_all()?;
        let Some(i) = slots.iter().position(|r| id != 0 && r.id == id) else {
            return Err(DataplaneError::NotFound {
                kind: "signature",
                prefix: format!("id {id}"),
            });
        };
        self.write_sig_slot(i as u32, SigRule::default())?;
        slots[i] = SigRule::default();
        self.sync_sig_slots(&slots)?;
        Ok(())
    }

    fn signature_view(
        &self,
        slot: u32,
        rule: SigRule,
        now: u64,
    ) -> Result<SignatureView, DataplaneError> {
        let per_cpu: PerCpuValues<SigStats> = self
            .sig_stats
            .get(&slot, 0)
            .map_err(|e| DataplaneError::map("reading PN_SIG_STATS", e))?;
        let (mut matched, mut dropped, mut exempted) = (0, 0, 0);
        // A CPU's counts belong to this rule only if it counted under it.
        for s in per_cpu
            .iter()
            .filter(|s| s.rule_created_ns == rule.created_ns)
        {
            matched += s.matched;
            dropped += s.dropped;
            exempted += s.exempted;
        }
        let expires = Expiry(rule.expires_ns);
        Ok(SignatureView {
            slot,
            rule,
            expires,
            remaining: expires.remaining(now),
            matched,
            dropped,
            exempted,
        })
    }

    /// Every installed signature rule, by slot.
    pub fn signatures(&self) -> Result<Vec<SignatureView>, DataplaneError> {
        let now = monotonic_now_ns();
        let mut out = Vec::new();
        for (i, rule) in self.sig_slots_all()?.into_iter().enumerate() {
            if rule.id != 0 {
                out.push(self.signature_view(i as u32, rule, now)?);
            }
        }
        Ok(out)
    }

    /// Frees the slots of expired rules (XDP already ignores them).
    pub fn prune_expired_signatures(&mut self) -> Result<usize, DataplaneError> {
        let now = monotonic_now_ns();
        let mut slots = self.sig_slots_all()?;
        let mut pruned = 0;
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.id != 0 && !Expiry(slot.expires_ns).is_live(now) {
                self.write_sig_slot(i as u32, SigRule::default())?;
                *slot = SigRule::default();
                pruned += 1;
            }
        }
        self.sync_sig_slots(&slots)?;
        Ok(pruned)
    }

    /// Marks `addr` known-good: signature rules that exempt known-good
    /// sources let it through. Refreshing keeps its count; the LRU map
    /// drops the least recently refreshed when full.
    pub fn vouch(&mut self, addr: IpAddr) -> Result<(), DataplaneError> {
        let now = monotonic_now_ns();
        match addr {
            IpAddr::V4(a) => refresh(&mut self.good_v4, a.octets(), now),
            IpAddr::V6(a) => refresh(&mut self.good_v6, a.octets(), now),
        }
    }

    /// Withdraws `addr`'s known-good mark.
    pub fn unvouch(&mut self, addr: IpAddr) -> Result<(), DataplaneError> {
        let prefix = Prefix::host(addr);
        match addr {
            IpAddr::V4(a) => remove(&mut self.good_v4, "known-good", &prefix, &a.octets()),
            IpAddr::V6(a) => remove(&mut self.good_v6, "known-good", &prefix, &a.octets()),
        }
    }

    /// Every known-good source.
    pub fn known_good(&self) -> Result<Vec<KnownGoodView>, DataplaneError> {
        let v4 = host_entries(&self.good_v4, v4_addr)?;
        let v6 = host_entries(&self.good_v6, v6_addr)?;
        Ok(v4
            .into_iter()
            .chain(v6)
            .map(|(p, entry)| KnownGoodView {
                addr: p.addr(),
                entry,
            })
            .collect())
    }
}

fn refresh<const N: usize>(
    map: &mut Host<N, KnownGood>,
    key: [u8; N],
    now: u64,
) -> Result<(), DataplaneError> {
    let exempted = lookup(map, &key).map_or(0, |g: KnownGood| g.exempted);
    let name = if N == 4 {
        maps::KNOWN_GOOD_V4
    } else {
        maps::KNOWN_GOOD_V6
    };
    insert(
        map,
        name,
        capacity::KNOWN_GOOD,
        &key,
        KnownGood {
            refreshed_ns: now,
            exempted,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_rule() -> SigRule {
        SigRule {
            family: 4,
            dst_addr: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            dst_prefix_len: 32,
            protocol: IPPROTO_TCP,
            tcp_flags_mask: 0x17,
            tcp_flags_value: 0x02,
            len_min: 54,
            len_max: 60,
            dport_min: 80,
            dport_max: 80,
            ttl_min: 0,
            ttl_max: 255,
            ..SigRule::default()
        }
    }

    #[test]
    fn a_valid_rule_is_normalized() {
        let mut r = tcp_rule();
        r.dst_addr[3] = 77;
        r.dst_prefix_len = 24;
        r.payload = [1, 2, 3, 4, 5, 6, 7, 8];
        r.payload_len = 2;
        let n = normalize(r).unwrap();
        assert_eq!(&n.dst_addr[..4], &[10, 0, 0, 0], "host bits cleared");
        assert_eq!(
            n.payload,
            [1, 2, 0, 0, 0, 0, 0, 0],
            "unused payload bytes cleared"
        );
        assert!(same_match(&n, &normalize(n).unwrap()));
    }

    #[test]
    fn rules_that_could_never_match_or_that_xdp_would_misread_are_refused() {
        type Case = (fn(&mut SigRule), &'static str);
        let cases: [Case; 10] = [
            (|r| r.family = 5, "family"),
            (|r| r.dst_prefix_len = 33, "dst"),
            (|r| r.dst_addr[9] = 1, "dst"),
            (|r| (r.len_min, r.len_max) = (61, 60), "len"),
            (|r| (r.dport_min, r.dport_max) = (81, 80), "dport"),
            (|r| (r.ttl_min, r.ttl_max) = (9, 8), "ttl"),
            (|r| r.tcp_flags_value = 0x20, "flags"),
            (|r| r.protocol = 17, "flags"),
            (|r| r.payload_len = 9, "payload"),
            (|r| r.rate_pps = 2_000_000_000, "rate"),
        ];
        for (f, field) in cases {
            let mut r = tcp_rule();
            f(&mut r);
            match normalize(r) {
                Err(DataplaneError::InvalidArgument { field: got, .. }) => {
                    assert_eq!(got, field, "{r:?}")
                }
                other => panic!("{r:?} gave {other:?}"),
            }
        }
        let mut r = tcp_rule();
        r.flags = 0x80;
        assert!(normalize(r).is_err());
    }

    #[test]
    fn the_match_key_ignores_what_the_rule_does() {
        let a = tcp_rule();
        let mut b = a;
        b.rate_pps = 100;
        b.expires_ns = 7;
        b.reason = 3;
        assert!(same_match(&a, &b));
        b.ttl_min = 1;
        assert!(!same_match(&a, &b));
    }
}
