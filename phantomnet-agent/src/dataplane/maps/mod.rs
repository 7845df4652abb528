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
    AllowEntry, BlockEntry, Config, Counter, KnownGood, Outcome, REASON_TEXT_LEN, ReasonCode,
    SigRule, SigStats, ThrottleRule, ThrottleState, V4_KEY_LEN, V6_KEY_LEN, capacity, config_flags,
    list_flags, maps,
};

use super::{DataplaneError, Expiry, PinDir, Prefix, clock::monotonic_now_ns};

mod in_force;
pub use in_force::Covering;
mod signatures;
pub use signatures::{KnownGoodView, SignatureView};

type Trie<const N: usize, V> = LpmTrie<MapData, [u8; N], V>;
type Host<const N: usize, V> = HashMap<MapData, [u8; N], V>;

/// A map of rule entries: an LPM trie (keyed by prefix) or a host hash
/// (keyed by address). One set of helpers (`insert`, `remove`, `lookup`)
/// serves both.
trait EntryMap<V: Pod> {
    type Key;
    fn get_entry(&self, key: &Self::Key) -> Result<V, MapError>;
    fn put(&mut self, key: &Self::Key, value: V) -> Result<(), MapError>;
    fn delete(&mut self, key: &Self::Key) -> Result<(), MapError>;
}

impl<const N: usize, V: Pod> EntryMap<V> for Trie<N, V> {
    type Key = Key<[u8; N]>;
    fn get_entry(&self, key: &Self::Key) -> Result<V, MapError> {
        self.get(key, 0)
    }
    fn put(&mut self, key: &Self::Key, value: V) -> Result<(), MapError> {
        self.insert(key, value, 0)
    }
    fn delete(&mut self, key: &Self::Key) -> Result<(), MapError> {
        self.remove(key)
    }
}

impl<const N: usize, V: Pod> EntryMap<V> for Host<N, V> {
    type Key = [u8; N];
    fn get_entry(&self, key: &Self::Key) -> Result<V, MapError> {
        self.get(key, 0)
    }
    fn put(&mut self, key: &Self::Key, value: V) -> Result<(), MapError> {
        self.insert(key, value, 0)
    }
    fn delete(&mut self, key: &Self::Key) -> Result<(), MapError> {
        self.remove(key)
    }
}

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
    allow_h4: Host<4, AllowEntry>,
    allow_h6: Host<16, AllowEntry>,
    block_h4: Host<4, BlockEntry>,
    block_h6: Host<16, BlockEntry>,
    sig_rules: Array<MapData, SigRule>,
    sig_stats: PerCpuArray<MapData, SigStats>,
    good_v4: Host<4, KnownGood>,
    good_v6: Host<16, KnownGood>,
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

fn insert<V: Pod, M: EntryMap<V>>(
    map: &mut M,
    name: &'static str,
    cap: u32,
    key: &M::Key,
    value: V,
) -> Result<(), DataplaneError> {
    map.put(key, value).map_err(|e| match errno(&e) {
        Some(libc::ENOSPC) | Some(libc::E2BIG) => DataplaneError::MapFull {
            map: name,
            capacity: cap,
        },
        _ => DataplaneError::map(format!("inserting into {name}"), e),
    })
}

fn remove<V: Pod, M: EntryMap<V>>(
    map: &mut M,
    kind: &'static str,
    prefix: &Prefix,
    key: &M::Key,
) -> Result<(), DataplaneError> {
    map.delete(key).map_err(|e| match e {
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

/// The trie's longest entry covering `key`, or the host hash's entry.
fn lookup<V: Pod, M: EntryMap<V>>(map: &M, key: &M::Key) -> Option<V> {
    map.get_entry(key).ok()
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

/// Every entry of a host hash, as host prefixes.
fn host_entries<const N: usize, V: Pod>(
    map: &Host<N, V>,
    from_key: fn([u8; N]) -> IpAddr,
) -> Result<Vec<(Prefix, V)>, DataplaneError> {
    let mut out = Vec::new();
    for item in map.iter() {
        let (key, value) = item.map_err(|e| DataplaneError::map("iterating a map", e))?;
        out.push((Prefix::host(from_key(key)), value));
    }
    Ok(out)
}

fn v4_addr(k: [u8; 4]) -> IpAddr {
    IpAddr::from(k)
}

fn v6_addr(k: [u8; 16]) -> IpAddr {
    IpAddr::from(k)
}

/// Dispatches on where the prefix's entry lives: a host prefix in the
/// family's host hash (`$h4`/`$h6`), any other in its trie (`$t4`/`$t6`).
/// `$map` and `$key` are bound to the map and its key, `$host` to whether
/// it is the hash.
macro_rules! by_list {
    ($self:ident, $prefix:expr, $h4:ident, $h6:ident, $t4:ident, $t6:ident,
     |$map:ident, $key:ident, $host:ident| $body:expr) => {
        match ($prefix.addr(), $prefix.is_host()) {
            (IpAddr::V4(a), true) => {
                let $key = a.octets();
                let $map = &mut $self.$h4;
                let $host = true;
                $body
            }
            (IpAddr::V6(a), true) => {
                let $key = a.octets();
                let $map = &mut $self.$h6;
                let $host = true;
                $body
            }
            (IpAddr::V4(a), false) => {
                let $key = Prefix::v4_key(a, $prefix.prefix_len());
                let $map = &mut $self.$t4;
                let $host = false;
                $body
            }
            (IpAddr::V6(a), false) => {
                let $key = Prefix::v6_key(a, $prefix.prefix_len());
                let $map = &mut $self.$t6;
                let $host = false;
                $body
            }
        }
    };
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
            allow_h4: open(pins, maps::ALLOW_HOST_V4)?,
            allow_h6: open(pins, maps::ALLOW_HOST_V6)?,
            block_h4: open(pins, maps::BLOCK_HOST_V4)?,
            block_h6: open(pins, maps::BLOCK_HOST_V6)?,
            sig_rules: open(pins, maps::SIG_RULES)?,
            sig_stats: open(pins, maps::SIG_STATS)?,
            good_v4: open(pins, maps::KNOWN_GOOD_V4)?,
            good_v6: open(pins, maps::KNOWN_GOOD_V6)?,
        })
    }
}

// After the helpers and `by_family!`, which they use.
mod rules;
mod state;
#[cfg(test)]
mod tests;
