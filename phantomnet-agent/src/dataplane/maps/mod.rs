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
}

// After the helpers and `by_family!`, which they use.
mod rules;
mod state;
#[cfg(test)]
mod tests;
