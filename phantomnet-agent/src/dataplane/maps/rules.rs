//! Rules in the maps: block, throttle and allow entries, listed and pruned.
use super::*;

/// One of the busiest BLOCK entries: prefix, reason as operators read it,
/// packets dropped.
pub type TopBlocked = (String, String, u64);

impl Maps {
    /// The allowlist entry that covers all of `prefix`, if any: the host
    /// entry for a host prefix, else the longest covering trie entry.
    pub fn allowlisted_by(&self, prefix: &Prefix) -> Option<Prefix> {
        let host = match prefix.addr() {
            IpAddr::V4(a) if prefix.is_host() => lookup(&self.allow_h4, &a.octets()),
            IpAddr::V6(a) if prefix.is_host() => lookup(&self.allow_h6, &a.octets()),
            _ => None,
        };
        if host.is_some() {
            return Some(*prefix);
        }
        let (addr, len) = match prefix.addr() {
            IpAddr::V4(a) => (
                IpAddr::V4(a),
                lookup(&self.allow_v4, &Prefix::v4_key(a, prefix.prefix_len()))?.prefix_len,
            ),
            IpAddr::V6(a) => (
                IpAddr::V6(a),
                lookup(&self.allow_v6, &Prefix::v6_key(a, prefix.prefix_len()))?.prefix_len,
            ),
        };
        let len = u8::try_from(len).ok()?;
        let covering = match addr {
            IpAddr::V4(a) => ipnet::Ipv4Net::new(a, len).ok()?.trunc().network().into(),
            IpAddr::V6(a) => ipnet::Ipv6Net::new(a, len).ok()?.trunc().network().into(),
        };
        Prefix::new(covering, len).ok()
    }

    /// Drops every packet from `prefix` until the TTL runs out (`None`:
    /// never). Blocking an existing prefix again replaces its expiry and
    /// reason and keeps its hit count. A prefix the allowlist covers whole
    /// is refused: the block could never apply.
    pub fn block(
        &mut self,
        prefix: &Prefix,
        ttl: Option<Duration>,
        reason: ReasonCode,
        text: &str,
    ) -> Result<Rule, DataplaneError> {
        let reason_text = reason_bytes(text)?;
        let now = monotonic_now_ns();
        let expires = Expiry::after(ttl, now)?;
        if let Some(by) = self.allowlisted_by(prefix) {
            return Err(DataplaneError::Allowlisted {
                prefix: prefix.to_string(),
                by: by.to_string(),
            });
        }
        let mut entry = BlockEntry {
            expires_ns: expires.0,
            created_ns: now,
            hits: 0,
            reason: reason as u32,
            prefix_len: u32::from(prefix.prefix_len()),
            reason_text,
        };
        let (name, cap, list) = block_list(prefix);
        let hits = by_list!(
            self,
            prefix,
            block_h4,
            block_h6,
            block_v4,
            block_v6,
            |map, key, _host| {
                let old =
                    lookup(map, &key).filter(|o: &BlockEntry| o.prefix_len == entry.prefix_len);
                if let Some(old) = old {
                    entry.created_ns = old.created_ns;
                    entry.hits = old.hits;
                }
                insert(map, name, cap, &key, entry)?;
                entry.hits
            }
        );
        self.mark_lists(list)?;
        Ok(Rule {
            kind: RuleKind::Block,
            prefix: *prefix,
            expires,
            remaining: expires.remaining(now),
            reason: Some((reason, text.to_string())),
            hits,
            rate_pps: 0,
            burst: 0,
        })
    }

    pub fn unblock(&mut self, prefix: &Prefix) -> Result<(), DataplaneError> {
        by_list!(
            self,
            prefix,
            block_h4,
            block_h6,
            block_v4,
            block_v6,
            |map, key, _host| remove(map, "block", prefix, &key)
        )?;
        self.unmark_if_empty(block_list(prefix).2)
    }

    /// Rate-limits every source address inside `prefix` to its own bucket
    /// (an operator's rule).
    pub fn throttle(
        &mut self,
        prefix: &Prefix,
        params: ThrottleParams,
    ) -> Result<Rule, DataplaneError> {
        self.throttle_as(prefix, params, ReasonCode::Manual)
    }

    /// [`throttle`](Self::throttle), recording who set it.
    pub fn throttle_as(
        &mut self,
        prefix: &Prefix,
        params: ThrottleParams,
        reason: ReasonCode,
    ) -> Result<Rule, DataplaneError> {
        let now = monotonic_now_ns();
        let rule = params.to_rule(prefix.prefix_len(), now, reason)?;
        by_family!(self, prefix, rule_v4, rule_v6, |trie, key| {
            let name = if prefix.is_ipv4() {
                maps::THROTTLE_RULE_V4
            } else {
                maps::THROTTLE_RULE_V6
            };
            insert(trie, name, capacity::THROTTLE_RULE, &key, rule)
        })?;
        self.mark_lists(list_flags::THROTTLE)?;
        let expires = Expiry(rule.expires_ns);
        Ok(Rule {
            kind: RuleKind::Throttle,
            prefix: *prefix,
            expires,
            remaining: expires.remaining(now),
            reason: Some((reason, String::new())),
            hits: 0,
            rate_pps: rule.rate_pps,
            burst: rule.burst,
        })
    }

    /// Removes the rule. The buckets of the sources inside it are not
    /// scanned for: each records the rule it was charged under, so a new
    /// rule starts them fresh, and the LRU map ages them out.
    pub fn unthrottle(&mut self, prefix: &Prefix) -> Result<(), DataplaneError> {
        by_family!(self, prefix, rule_v4, rule_v6, |trie, key| remove(
            trie, "throttle", prefix, &key
        ))?;
        self.unmark_if_empty(list_flags::THROTTLE)
    }

    /// The bucket state of one source address, if it has one.
    pub fn throttle_state(&self, addr: IpAddr) -> Option<ThrottleState> {
        match addr {
            IpAddr::V4(a) => self.state_v4.get(&a.octets(), 0).ok(),
            IpAddr::V6(a) => self.state_v6.get(&a.octets(), 0).ok(),
        }
    }

    /// Exempts `prefix` from blocks and throttles (an operator's entry).
    pub fn allow(&mut self, prefix: &Prefix) -> Result<Rule, DataplaneError> {
        self.allow_as(prefix, ReasonCode::Manual)
    }

    /// [`allow`](Self::allow), recording who added it (`Config` for the
    /// config file's allowlist, which a restart re-syncs).
    pub fn allow_as(
        &mut self,
        prefix: &Prefix,
        reason: ReasonCode,
    ) -> Result<Rule, DataplaneError> {
        let now = monotonic_now_ns();
        let entry = AllowEntry {
            created_ns: now,
            prefix_len: u32::from(prefix.prefix_len()),
            reason: reason as u32,
        };
        let (name, cap, list) = allow_list(prefix);
        by_list!(
            self,
            prefix,
            allow_h4,
            allow_h6,
            allow_v4,
            allow_v6,
            |map, key, _host| insert(map, name, cap, &key, entry)
        )?;
        self.mark_lists(list)?;
        Ok(Rule {
            kind: RuleKind::Allow,
            prefix: *prefix,
            expires: Expiry::NEVER,
            remaining: None,
            reason: Some((reason, String::new())),
            hits: 0,
            rate_pps: 0,
            burst: 0,
        })
    }

    pub fn disallow(&mut self, prefix: &Prefix) -> Result<(), DataplaneError> {
        by_list!(
            self,
            prefix,
            allow_h4,
            allow_h6,
            allow_v4,
            allow_v6,
            |map, key, _host| remove(map, "allow", prefix, &key)
        )?;
        self.unmark_if_empty(allow_list(prefix).2)
    }

    /// Every rule, allow first, then block, then throttle, each sorted by prefix.
    pub fn rules(&self) -> Result<Vec<Rule>, DataplaneError> {
        let now = monotonic_now_ns();
        let mut out = Vec::new();
        let allow = host_entries(&self.allow_h4, v4_addr)?
            .into_iter()
            .chain(host_entries(&self.allow_h6, v6_addr)?)
            .chain(entries(&self.allow_v4, Prefix::from_v4_key)?)
            .chain(entries(&self.allow_v6, Prefix::from_v6_key)?);
        for (prefix, e) in allow {
            out.push(Rule {
                kind: RuleKind::Allow,
                prefix,
                expires: Expiry::NEVER,
                remaining: None,
                reason: Some((ReasonCode::from_u32(e.reason), String::new())),
                hits: 0,
                rate_pps: 0,
                burst: 0,
            });
        }
        let block = host_entries(&self.block_h4, v4_addr)?
            .into_iter()
            .chain(host_entries(&self.block_h6, v6_addr)?)
            .chain(entries(&self.block_v4, Prefix::from_v4_key)?)
            .chain(entries(&self.block_v6, Prefix::from_v6_key)?);
        for (prefix, e) in block {
            let expires = Expiry(e.expires_ns);
            out.push(Rule {
                kind: RuleKind::Block,
                prefix,
                expires,
                remaining: expires.remaining(now),
                reason: Some((ReasonCode::from_u32(e.reason), reason_text(&e.reason_text))),
                hits: e.hits,
                rate_pps: 0,
                burst: 0,
            });
        }
        let throttle = entries(&self.rule_v4, Prefix::from_v4_key)?
            .into_iter()
            .chain(entries(&self.rule_v6, Prefix::from_v6_key)?);
        for (prefix, r) in throttle {
            let expires = Expiry(r.expires_ns);
            out.push(Rule {
                kind: RuleKind::Throttle,
                prefix,
                expires,
                remaining: expires.remaining(now),
                reason: Some((ReasonCode::from_u32(r.reason), String::new())),
                hits: 0,
                rate_pps: r.rate_pps,
                burst: r.burst,
            });
        }
        out.sort_by_key(|r| (r.kind, r.prefix));
        Ok(out)
    }

    /// One pass over the BLOCK maps for the stats interval: how many
    /// entries are live, and the `top` that dropped most as (prefix, reason
    /// as operators read it, hits), busiest first. O(BLOCK entries, at most
    /// 2 × 65,536 prefixes plus the host entries) with no allocation per
    /// entry; the other rule maps are not read.
    pub fn block_census(&self, top: usize) -> Result<(u64, Vec<TopBlocked>), DataplaneError> {
        let now = monotonic_now_ns();
        let mut live = 0u64;
        let mut best: Vec<(u64, Prefix, BlockEntry)> = Vec::with_capacity(top + 1);
        let mut visit = |prefix: Prefix, e: BlockEntry| {
            if Expiry(e.expires_ns).is_live(now) {
                live += 1;
            }
            if e.hits > 0 && (best.len() < top || best.last().is_some_and(|b| b.0 < e.hits)) {
                let at = best.partition_point(|b| b.0 >= e.hits);
                best.insert(at, (e.hits, prefix, e));
                best.truncate(top);
            }
        };
        for item in self.block_h4.iter() {
            let (key, e) = item.map_err(|err| DataplaneError::map("iterating a map", err))?;
            visit(Prefix::host(v4_addr(key)), e);
        }
        for item in self.block_h6.iter() {
            let (key, e) = item.map_err(|err| DataplaneError::map("iterating a map", err))?;
            visit(Prefix::host(v6_addr(key)), e);
        }
        for item in self.block_v4.iter() {
            let (key, e) = item.map_err(|err| DataplaneError::map("iterating a map", err))?;
            if let Some(p) = Prefix::from_v4_key(&key) {
                visit(p, e);
            }
        }
        for item in self.block_v6.iter() {
            let (key, e) = item.map_err(|err| DataplaneError::map("iterating a map", err))?;
            if let Some(p) = Prefix::from_v6_key(&key) {
                visit(p, e);
            }
        }
        let top = best
            .into_iter()
            .map(|(hits, prefix, e)| {
                let rule = Rule {
                    kind: RuleKind::Block,
                    prefix,
                    expires: Expiry(e.expires_ns),
                    remaining: None,
                    reason: Some((ReasonCode::from_u32(e.reason), reason_text(&e.reason_text))),
                    hits,
                    rate_pps: 0,
                    burst: 0,
                };
                (prefix.to_string(), rule.reason_text(), hits)
            })
            .collect();
        Ok((live, top))
    }

    /// The expiry of the entry `kind` holds for exactly `prefix` (not a
    /// covering one), if there is one. One map lookup.
    pub fn expiry_of(&self, kind: RuleKind, prefix: &Prefix) -> Option<Expiry> {
        let len = u32::from(prefix.prefix_len());
        let (at, entry_len) = match (kind, prefix.addr()) {
            (RuleKind::Block, IpAddr::V4(a)) if prefix.is_host() => {
                lookup(&self.block_h4, &a.octets()).map(|e| (e.expires_ns, e.prefix_len))
            }
            (RuleKind::Block, IpAddr::V6(a)) if prefix.is_host() => {
                lookup(&self.block_h6, &a.octets()).map(|e| (e.expires_ns, e.prefix_len))
            }
            (RuleKind::Block, IpAddr::V4(a)) => {
                lookup(&self.block_v4, &Prefix::v4_key(a, prefix.prefix_len()))
                    .map(|e| (e.expires_ns, e.prefix_len))
            }
            (RuleKind::Block, IpAddr::V6(a)) => {
                lookup(&self.block_v6, &Prefix::v6_key(a, prefix.prefix_len()))
                    .map(|e| (e.expires_ns, e.prefix_len))
            }
            (RuleKind::Throttle, IpAddr::V4(a)) => {
                lookup(&self.rule_v4, &Prefix::v4_key(a, prefix.prefix_len()))
                    .map(|e| (e.expires_ns, e.prefix_len))
            }
            (RuleKind::Throttle, IpAddr::V6(a)) => {
                lookup(&self.rule_v6, &Prefix::v6_key(a, prefix.prefix_len()))
                    .map(|e| (e.expires_ns, e.prefix_len))
            }
            (RuleKind::Allow | RuleKind::Deceive, _) => None,
        }?;
        (entry_len == len).then_some(Expiry(at))
    }

    /// Deletes block and throttle entries whose expiry has passed. The
    /// kernel already ignores them; this only frees their slots.
    pub fn prune_expired(&mut self) -> Result<usize, DataplaneError> {
        let now = monotonic_now_ns();
        let mut pruned = 0;
        for rule in self.rules()? {
            if !rule.expires.is_live(now) {
                let removed = match rule.kind {
                    RuleKind::Block => self.unblock(&rule.prefix),
                    RuleKind::Throttle => self.unthrottle(&rule.prefix),
                    // Allow entries never expire; deceptions are not map entries.
                    RuleKind::Allow | RuleKind::Deceive => continue,
                };
                if removed.is_ok() {
                    pruned += 1;
                }
            }
        }
        Ok(pruned)
    }
}

/// A rule list's two homes: the host hashes (/32, /128) and the tries.
struct ListMaps {
    host: [&'static str; 2],
    host_cap: u32,
    host_bit: u32,
    trie: [&'static str; 2],
    trie_cap: u32,
    trie_bit: u32,
}

const BLOCK_MAPS: ListMaps = ListMaps {
    host: [maps::BLOCK_HOST_V4, maps::BLOCK_HOST_V6],
    host_cap: capacity::BLOCK_HOST,
    host_bit: list_flags::BLOCK_HOST,
    trie: [maps::BLOCK_V4, maps::BLOCK_V6],
    trie_cap: capacity::BLOCK,
    trie_bit: list_flags::BLOCK_PREFIX,
};

const ALLOW_MAPS: ListMaps = ListMaps {
    host: [maps::ALLOW_HOST_V4, maps::ALLOW_HOST_V6],
    host_cap: capacity::ALLOW_HOST,
    host_bit: list_flags::ALLOW_HOST,
    trie: [maps::ALLOW_V4, maps::ALLOW_V6],
    trie_cap: capacity::ALLOW,
    trie_bit: list_flags::ALLOW_PREFIX,
};

/// The map an entry at `prefix` lives in: its name, capacity and list bit.
fn list_of(prefix: &Prefix, l: &ListMaps) -> (&'static str, u32, u32) {
    let family = usize::from(!prefix.is_ipv4());
    if prefix.is_host() {
        (l.host[family], l.host_cap, l.host_bit)
    } else {
        (l.trie[family], l.trie_cap, l.trie_bit)
    }
}

fn block_list(prefix: &Prefix) -> (&'static str, u32, u32) {
    list_of(prefix, &BLOCK_MAPS)
}

fn allow_list(prefix: &Prefix) -> (&'static str, u32, u32) {
    list_of(prefix, &ALLOW_MAPS)
}
