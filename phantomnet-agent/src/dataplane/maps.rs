//! Typed access to the pinned maps. Works with or without a running agent:
//! everything is opened from the pins.
use std::{net::IpAddr, time::Duration};

use aya::{
    Pod,
    maps::{
        Array, HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray, PerCpuValues, lpm_trie::Key,
    },
};
use phantomnet_common::{
    AllowEntry, BlockEntry, Config, Counter, Outcome, REASON_TEXT_LEN, ReasonCode, ThrottleRule,
    ThrottleState, V4_KEY_LEN, V6_KEY_LEN, capacity, config_flags, maps,
};

use super::{DataplaneError, Expiry, PinDir, Prefix, clock::monotonic_now_ns};

mod in_force;
pub use in_force::Covering;

type Trie<const N: usize, V> = LpmTrie<MapData, [u8; N], V>;

/// What a map entry does: `Allow`, `Block` or `Throttle` (a `Deceive` is
/// an nftables rule, never a map entry).
pub use phantomnet_common::RuleKind;

/// One entry of the allow, block or throttle maps, as operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub kind: RuleKind,
    pub prefix: Prefix,
    pub expires: Expiry,
    /// Time left: `None` = never expires; `Some(ZERO)` = expired (the kernel
    /// already ignores it).
    pub remaining: Option<Duration>,
    /// Block only: reason code and operator text.
    pub reason: Option<(ReasonCode, String)>,
    /// Block only: packets dropped by it (approximate under contention).
    pub hits: u64,
    /// Throttle only.
    pub rate_pps: u32,
    pub burst: u32,
}

impl Rule {
    /// The reason as operators read it: `code: text`, or the code alone;
    /// empty for entries that carry none.
    pub fn reason_text(&self) -> String {
        match &self.reason {
            Some((code, text)) if text.is_empty() => code.name().to_string(),
            Some((code, text)) => format!("{}: {text}", code.name()),
            None => String::new(),
        }
    }
}

/// A throttle request: `rate_pps` packets/s per source with a bucket of
/// `burst` packets (default: a tenth of a second of traffic, at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleParams {
    pub rate_pps: u32,
    pub burst: Option<u32>,
    pub ttl: Option<Duration>,
}

impl ThrottleParams {
    /// The rule the kernel runs, or a clear error for a zero rate or burst.
    fn to_rule(
        self,
        prefix_len: u8,
        now: u64,
        reason: ReasonCode,
    ) -> Result<ThrottleRule, DataplaneError> {
        let invalid = |field: &'static str, reason: &str| DataplaneError::InvalidArgument {
            field,
            reason: reason.to_string(),
        };
        if self.rate_pps == 0 {
            return Err(invalid("rate", "must be at least 1 packet/s"));
        }
        if self.rate_pps > 1_000_000_000 {
            return Err(invalid("rate", "must be at most 1e9 packets/s"));
        }
        let burst = match self.burst {
            Some(0) => return Err(invalid("burst", "must be at least 1 packet")),
            Some(b) => b,
            None => (self.rate_pps / 10).max(1),
        };
        let interval_ns = 1_000_000_000 / u64::from(self.rate_pps);
        // At most 1e9 * u32::MAX < 2^63: no overflow.
        let tolerance_ns = interval_ns * u64::from(burst);
        Ok(ThrottleRule {
            expires_ns: Expiry::after(self.ttl, now)?.0,
            created_ns: now,
            interval_ns,
            tolerance_ns,
            rate_pps: self.rate_pps,
            burst,
            prefix_len: u32::from(prefix_len),
            reason: reason as u32,
        })
    }
}

/// Packets and bytes per outcome, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub [Counter; Outcome::COUNT as usize]);

impl Counters {
    pub fn get(&self, outcome: Outcome) -> Counter {
        self.0[outcome as usize]
    }
}

/// The pinned maps, typed.
pub struct Maps {
    allow_v4: Trie<V4_KEY_LEN, AllowEntry>,
    allow_v6: Trie<V6_KEY_LEN, AllowEntry>,
    block_v4: Trie<V4_KEY_LEN, BlockEntry>,
    block_v6: Trie<V6_KEY_LEN, BlockEntry>,
    rule_v4: Trie<V4_KEY_LEN, ThrottleRule>,
    rule_v6: Trie<V6_KEY_LEN, ThrottleRule>,
    state_v4: HashMap<MapData, [u8; 4], ThrottleState>,
    state_v6: HashMap<MapData, [u8; 16], ThrottleState>,
    config: Array<MapData, Config>,
    counters: PerCpuArray<MapData, Counter>,
}

fn open<T: TryFrom<Map, Error = MapError>>(
    pins: &PinDir,
    name: &'static str,
) -> Result<T, DataplaneError> {
    let path = pins.map(name);
    if !path.exists() {
        return Err(DataplaneError::NotLoaded { path });
    }
    let data = MapData::from_pin(&path)
        .map_err(|e| DataplaneError::map(format!("opening {}", path.display()), e))?;
    let map = Map::from_map_data(data).map_err(|e| DataplaneError::map(name, e))?;
    T::try_from(map).map_err(|e| DataplaneError::map(name, e))
}

fn errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    }
}

fn insert<const N: usize, V: Pod>(
    trie: &mut Trie<N, V>,
    name: &'static str,
    cap: u32,
    key: &Key<[u8; N]>,
    value: V,
) -> Result<(), DataplaneError> {
    trie.insert(key, value, 0).map_err(|e| match errno(&e) {
        Some(libc::ENOSPC) | Some(libc::E2BIG) => DataplaneError::MapFull {
            map: name,
            capacity: cap,
        },
        _ => DataplaneError::map(format!("inserting into {name}"), e),
    })
}

fn remove<const N: usize, V: Pod>(
    trie: &mut Trie<N, V>,
    kind: &'static str,
    prefix: &Prefix,
    key: &Key<[u8; N]>,
) -> Result<(), DataplaneError> {
    trie.remove(key).map_err(|e| match e {
        MapError::KeyNotFound => DataplaneError::NotFound {
            kind,
            prefix: prefix.to_string(),
        },
        ref e2 if errno(e2) == Some(libc::ENOENT) => DataplaneError::NotFound {
            kind,
            prefix: prefix.to_string(),
        },
        e => DataplaneError::map(format!("removing {prefix} from the {kind} map"), e),
    })
}

/// The longest entry covering `key`, if any.
fn lookup<const N: usize, V: Pod>(trie: &Trie<N, V>, key: &Key<[u8; N]>) -> Option<V> {
    trie.get(key, 0).ok()
}

fn entries<const N: usize, V: Pod>(
    trie: &Trie<N, V>,
    from_key: fn(&Key<[u8; N]>) -> Option<Prefix>,
) -> Result<Vec<(Prefix, V)>, DataplaneError> {
    let mut out = Vec::new();
    for item in trie.iter() {
        let (key, value) = item.map_err(|e| DataplaneError::map("iterating a map", e))?;
        if let Some(prefix) = from_key(&key) {
            out.push((prefix, value));
        }
    }
    Ok(out)
}

/// Dispatches on the prefix's family: `$v4`/`$v6` are the field names,
/// `$key` is bound to the family's LPM key.
macro_rules! by_family {
    ($self:ident, $prefix:expr, $v4:ident, $v6:ident, |$trie:ident, $key:ident| $body:expr) => {
        match $prefix.addr() {
            IpAddr::V4(a) => {
                let $key = Prefix::v4_key(a, $prefix.prefix_len());
                let $trie = &mut $self.$v4;
                $body
            }
            IpAddr::V6(a) => {
                let $key = Prefix::v6_key(a, $prefix.prefix_len());
                let $trie = &mut $self.$v6;
                $body
            }
        }
    };
}

fn reason_bytes(text: &str) -> Result<[u8; REASON_TEXT_LEN], DataplaneError> {
    let bytes = text.as_bytes();
    if bytes.len() > REASON_TEXT_LEN {
        return Err(DataplaneError::InvalidArgument {
            field: "reason",
            reason: format!(
                "{} bytes; at most {REASON_TEXT_LEN} are kept with a block",
                bytes.len()
            ),
        });
    }
    if bytes.contains(&0) {
        return Err(DataplaneError::InvalidArgument {
            field: "reason",
            reason: "contains a NUL byte".to_string(),
        });
    }
    let mut out = [0u8; REASON_TEXT_LEN];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

fn reason_text(bytes: &[u8; REASON_TEXT_LEN]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Maps {
    /// Opens every pinned map under `pins`.
    pub fn open(pins: &PinDir) -> Result<Maps, DataplaneError> {
        Ok(Maps {
            allow_v4: open(pins, maps::ALLOW_V4)?,
            allow_v6: open(pins, maps::ALLOW_V6)?,
            block_v4: open(pins, maps::BLOCK_V4)?,
            block_v6: open(pins, maps::BLOCK_V6)?,
            rule_v4: open(pins, maps::THROTTLE_RULE_V4)?,
            rule_v6: open(pins, maps::THROTTLE_RULE_V6)?,
            state_v4: open(pins, maps::THROTTLE_STATE_V4)?,
            state_v6: open(pins, maps::THROTTLE_STATE_V6)?,
            config: open(pins, maps::CONFIG)?,
            counters: open(pins, maps::COUNTERS)?,
        })
    }

    /// The allowlist entry that covers all of `prefix`, if any.
    pub fn allowlisted_by(&self, prefix: &Prefix) -> Option<Prefix> {
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
        let hits = by_family!(self, prefix, block_v4, block_v6, |trie, key| {
            let old = lookup(trie, &key).filter(|o| o.prefix_len == entry.prefix_len);
            if let Some(old) = old {
                entry.created_ns = old.created_ns;
                entry.hits = old.hits;
            }
            let name = if prefix.is_ipv4() {
                maps::BLOCK_V4
            } else {
                maps::BLOCK_V6
            };
            insert(trie, name, capacity::BLOCK, &key, entry)?;
            entry.hits
        });
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
        by_family!(self, prefix, block_v4, block_v6, |trie, key| remove(
            trie, "block", prefix, &key
        ))
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
        ))
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
        by_family!(self, prefix, allow_v4, allow_v6, |trie, key| {
            let name = if prefix.is_ipv4() {
                maps::ALLOW_V4
            } else {
                maps::ALLOW_V6
            };
            insert(trie, name, capacity::ALLOW, &key, entry)
        })?;
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
        by_family!(self, prefix, allow_v4, allow_v6, |trie, key| remove(
            trie, "allow", prefix, &key
        ))
    }

    /// Every rule, allow first, then block, then throttle, each sorted by prefix.
    pub fn rules(&self) -> Result<Vec<Rule>, DataplaneError> {
        let now = monotonic_now_ns();
        let mut out = Vec::new();
        let allow = entries(&self.allow_v4, Prefix::from_v4_key)?
            .into_iter()
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
        let block = entries(&self.block_v4, Prefix::from_v4_key)?
            .into_iter()
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

    /// Per-outcome totals over all CPUs.
    pub fn counters(&self) -> Result<Counters, DataplaneError> {
        let mut out = Counters::default();
        for outcome in Outcome::ALL {
            let per_cpu: PerCpuValues<Counter> = self
                .counters
                .get(&(outcome as u32), 0)
                .map_err(|e| DataplaneError::map("reading PN_COUNTERS", e))?;
            let c = &mut out.0[outcome as usize];
            for v in per_cpu.iter() {
                c.packets += v.packets;
                c.bytes += v.bytes;
            }
        }
        Ok(out)
    }

    pub fn config(&self) -> Result<Config, DataplaneError> {
        self.config
            .get(&0, 0)
            .map_err(|e| DataplaneError::map("reading PN_CONFIG", e))
    }

    fn update_config(&mut self, f: impl FnOnce(&mut Config)) -> Result<Config, DataplaneError> {
        let mut cfg = self.config()?;
        f(&mut cfg);
        self.config
            .set(0, cfg, 0)
            .map_err(|e| DataplaneError::map("writing PN_CONFIG", e))?;
        Ok(cfg)
    }

    /// Samples 1 packet in `every` (0 turns sampling off).
    pub fn set_sampling(&mut self, every: u32) -> Result<Config, DataplaneError> {
        self.update_config(|c| c.sample_every = every)
    }

    /// Dry-run: outcomes are counted as if enforced, every packet passes.
    pub fn set_dry_run(&mut self, on: bool) -> Result<Config, DataplaneError> {
        self.update_config(|c| {
            if on {
                c.flags |= config_flags::DRY_RUN;
            } else {
                c.flags &= !config_flags::DRY_RUN;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(rate: u32, burst: Option<u32>) -> ThrottleParams {
        ThrottleParams {
            rate_pps: rate,
            burst,
            ttl: None,
        }
    }

    #[test]
    fn throttle_rule_is_precomputed_for_the_kernel() {
        let r = params(200, Some(10))
            .to_rule(24, 1_000, ReasonCode::Manual)
            .unwrap();
        assert_eq!(r.interval_ns, 5_000_000);
        assert_eq!(r.tolerance_ns, 50_000_000);
        assert_eq!(
            (r.rate_pps, r.burst, r.prefix_len, r.expires_ns),
            (200, 10, 24, 0)
        );
        // Default burst: a tenth of a second, at least one packet.
        assert_eq!(
            params(1000, None)
                .to_rule(32, 0, ReasonCode::Manual)
                .unwrap()
                .burst,
            100
        );
        assert_eq!(
            params(5, None)
                .to_rule(32, 0, ReasonCode::Manual)
                .unwrap()
                .burst,
            1
        );
    }

    #[test]
    fn throttle_rule_rejects_bad_input() {
        for (p, msg) in [
            (params(0, None), "rate: must be at least 1"),
            (params(2_000_000_000, None), "rate: must be at most"),
            (params(10, Some(0)), "burst: must be at least 1"),
        ] {
            let e = p.to_rule(32, 0, ReasonCode::Manual).unwrap_err();
            assert!(e.to_string().contains(msg), "{e}");
        }
        // The deepest bucket at the slowest rate still fits the clock.
        let r = params(1, Some(u32::MAX))
            .to_rule(32, 0, ReasonCode::Manual)
            .unwrap();
        assert_eq!(r.tolerance_ns, 1_000_000_000 * u64::from(u32::MAX));
        let p = ThrottleParams {
            rate_pps: 10,
            burst: None,
            ttl: Some(Duration::ZERO),
        };
        assert!(
            p.to_rule(32, 0, ReasonCode::Manual)
                .unwrap_err()
                .to_string()
                .contains("ttl")
        );
    }

    #[test]
    fn reason_text_is_bounded() {
        assert_eq!(
            reason_text(&reason_bytes("ssh brute force").unwrap()),
            "ssh brute force"
        );
        let long = "x".repeat(REASON_TEXT_LEN + 1);
        assert!(
            reason_bytes(&long)
                .unwrap_err()
                .to_string()
                .contains("at most 32")
        );
        assert!(reason_bytes("a\0b").is_err());
        assert_eq!(
            reason_text(&reason_bytes(&"y".repeat(32)).unwrap()).len(),
            32
        );
    }
}
