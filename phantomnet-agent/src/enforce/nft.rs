//! DECEIVE through nftables: PhantomNet owns one table, `inet phantomnet`.
//!
//! ```text
//! table inet phantomnet {
//!     set deceived_hosts_v4 { type ipv4_addr; flags timeout; }
//!     set deceived_v4 { type ipv4_addr; flags interval,timeout; }
//!     set deceived_hosts_v6 { type ipv6_addr; flags timeout; }
//!     set deceived_nets64_v6 { type ipv6_addr; flags timeout; }
//!     set deceived_v6 { type ipv6_addr; flags interval,timeout; }
//!     chain deceive {
//!         type nat hook prerouting priority dstnat; policy accept;
//!         tcp dport 22 ip  saddr @deceived_hosts_v4 dnat ip  to 203.0.113.130:2222
//!         tcp dport 22 ip  saddr @deceived_v4 dnat ip  to 203.0.113.130:2222
//!         tcp dport 80 ip6 saddr & ffff:ffff:ffff:ffff:: @deceived_nets64_v6 dnat ip6 to [2001:db8:204::130]:8080
//!         tcp dport 80 ip6 saddr @deceived_v6 dnat ip6 to [2001:db8:204::130]:8080
//!     }
//! }
//! ```
//!
//! A deceived host (/32, /128) is an element of its family's host set, an
//! IPv6 /64 (what an IPv6 source is by default) an element of the /64 set,
//! by its network address, both hash sets. Any other prefix (an operator's
//! CIDR, a source grouped to another length) goes in the interval set.
//! Detections deceive hosts and /64s, and an interval set makes `nft`
//! slower with every element it holds (a transaction of 256 hosts: 106 ms
//! into an empty interval set, 985 ms into one holding 4,096); a hash set
//! does not (docs/BENCHMARKS.md, "What a DECEIVE costs").
//!
//! One rule per configured honeypot (original port → target) and set of
//! its family; a source is deceived while it is an element of one. Elements carry a
//! timeout, so the kernel ends a deception on time even with no agent. The
//! return path needs nothing: conntrack undoes the DNAT on the replies,
//! which the honeypot sends back through the gateway (its default route).
//!
//! The ruleset is built with the `nftables` crate's JSON schema and applied
//! with `nft -j -f -` in one transaction per change. Every element carries a
//! counter: the connections from that source redirected to a honeypot.
use std::{
    borrow::Cow,
    collections::HashSet,
    io::Write,
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use nftables::{
    batch::Batch,
    expr::{BinaryOperation, Elem, Expression, NamedExpression, Payload, PayloadField, Prefix},
    schema::{
        Chain, Element, FlushObject, NfCmd, NfListObject, Nftables, Rule, Set, SetFlag, SetType,
        SetTypeValue, Table,
    },
    stmt::{Counter, Match, NAT, NATFamily, Operator, Statement},
    types::{NfChainPolicy, NfChainType, NfFamily, NfHook},
};

use crate::dataplane::Prefix as SourcePrefix;

pub const TABLE: &str = "phantomnet";
/// The allowlist's mirror in the table, per family.
const ALLOW_V4: &str = "allow4";
const ALLOW_V6: &str = "allow6";
pub const CHAIN: &str = "deceive";
/// Deceived prefixes (interval sets).
pub const SET_V4: &str = "deceived_v4";
pub const SET_V6: &str = "deceived_v6";
/// Deceived hosts (hash sets).
pub const SET_HOSTS_V4: &str = "deceived_hosts_v4";
pub const SET_HOSTS_V6: &str = "deceived_hosts_v6";
/// Deceived IPv6 /64s, by network address (a hash set, looked up with the
/// source masked to 64 bits).
pub const SET_NETS64_V6: &str = "deceived_nets64_v6";

/// What a set of deceived sources holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetKind {
    /// Addresses: a hash set.
    Hosts,
    /// IPv6 /64 network addresses: a hash set, matched on `saddr & /64`.
    Nets64,
    /// Any other prefix: an interval set.
    Prefixes,
}

/// Every set of deceived sources: (IPv4, what it holds, name).
const DECEIVED_SETS: [(bool, SetKind, &str); 5] = [
    (true, SetKind::Hosts, SET_HOSTS_V4),
    (true, SetKind::Prefixes, SET_V4),
    (false, SetKind::Hosts, SET_HOSTS_V6),
    (false, SetKind::Nets64, SET_NETS64_V6),
    (false, SetKind::Prefixes, SET_V6),
];
/// The /64 mask of [`SET_NETS64_V6`]'s lookups.
const MASK64: &str = "ffff:ffff:ffff:ffff::";
/// The priority of `dstnat`.
const DSTNAT: i32 = -100;

/// Traffic of a deceived source to `port` goes to `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Honeypot {
    pub port: u16,
    pub target: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft failed: {0}")]
    Nft(String),
    #[error("{0} is not deceived")]
    NotDeceived(String),
    #[error("invalid deceive TTL: {0}")]
    Ttl(String),
    #[error("no honeypot is configured for {0}")]
    NoHoneypot(&'static str),
}

/// A source under deception, as nftables reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deceived {
    /// An address or a prefix.
    pub source: String,
    /// Time left before the kernel removes it.
    pub remaining: Option<Duration>,
    /// Connections from it redirected to a honeypot.
    pub connections: u64,
}

/// The DECEIVE backend.
#[derive(Clone, Debug)]
pub struct Deceiver {
    honeypots: Vec<Honeypot>,
    /// Run `nft` in this network namespace (tests); `None` = our own.
    netns: Option<PathBuf>,
}

/// The payload protocol of a family.
fn proto(v4: bool) -> &'static str {
    if v4 { "ip" } else { "ip6" }
}

/// What kind of set a source is deceived in: its family's host set for a
/// host, the /64 set for an IPv6 /64 (the default IPv6 source), the
/// interval set for any other prefix.
fn kind_of(source: &SourcePrefix) -> SetKind {
    if source.is_host() {
        SetKind::Hosts
    } else if !source.is_ipv4() && source.prefix_len() == 64 {
        SetKind::Nets64
    } else {
        SetKind::Prefixes
    }
}

fn set_of(source: &SourcePrefix) -> &'static str {
    deceived_set(source.is_ipv4(), kind_of(source))
}

fn deceived_set(v4: bool, kind: SetKind) -> &'static str {
    DECEIVED_SETS
        .iter()
        .find(|(f, k, _)| *f == v4 && *k == kind)
        .map_or(if v4 { SET_V4 } else { SET_V6 }, |(_, _, name)| name)
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

/// The element for a source: an address for a host or a /64 in the /64
/// set, else `addr/len`.
fn element_value(source: &SourcePrefix) -> Expression<'static> {
    let addr = Expression::String(Cow::Owned(source.addr().to_string()));
    if kind_of(source) != SetKind::Prefixes {
        addr
    } else {
        Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(addr),
            len: u32::from(source.prefix_len()),
        }))
    }
}

impl Deceiver {
    pub fn new(honeypots: Vec<Honeypot>) -> Deceiver {
        Deceiver {
            honeypots,
            netns: None,
        }
    }

    /// The same backend, running `nft` inside the network namespace at `netns`.
    pub fn in_netns(mut self, netns: impl Into<PathBuf>) -> Deceiver {
        self.netns = Some(netns.into());
        self
    }

    pub fn honeypots(&self) -> &[Honeypot] {
        &self.honeypots
    }

    /// `nft` here, or inside the configured namespace.
    fn nft(&self) -> Command {
        match &self.netns {
            None => Command::new("nft"),
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg("nft");
                c
            }
        }
    }

    /// Applies a batch as one `nft -j -f -` transaction. (The crate's
    /// `apply_ruleset` lets nft's stderr through to ours and returns the
    /// error without it; here the reason nft gives ends up in the error.)
    fn apply(&self, batch: Batch<'_>) -> Result<(), NftError> {
        let mut doc = serde_json::to_value(batch.to_nftables())
            .map_err(|e| NftError::Nft(format!("encoding the ruleset: {e}")))?;
        with_element_counters(&mut doc);
        let json = serde_json::to_vec(&doc)
            .map_err(|e| NftError::Nft(format!("encoding the ruleset: {e}")))?;
        let mut child = self
            .nft()
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| NftError::Nft(format!("running nft: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&json)
                .map_err(|e| NftError::Nft(format!("writing to nft: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| NftError::Nft(format!("waiting for nft: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let reason = stderr
                .lines()
                .find(|l| l.contains("Error:"))
                .unwrap_or(stderr.trim());
            return Err(NftError::Nft(reason.trim().to_string()));
        }
        Ok(())
    }

    fn nft_json(&self, args: &[&str]) -> Result<Nftables<'static>, NftError> {
        let mut cmd = self.nft();
        let out = cmd
            .arg("-j")
            .args(args)
            .output()
            .map_err(|e| NftError::Nft(format!("running nft: {e}")))?;
        if !out.status.success() {
            return Err(NftError::Nft(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| NftError::Nft(format!("nft JSON: {e}")))
    }

    /// A set of deceived sources: elements time out; only prefixes need
    /// an interval set.
    fn set(v4: bool, kind: SetKind) -> Set<'static> {
        let mut flags = HashSet::from([SetFlag::Timeout]);
        if kind == SetKind::Prefixes {
            flags.insert(SetFlag::Interval);
        }
        Self::set_named(v4, deceived_set(v4, kind), flags)
    }

    /// The allowlist's mirror: sources inside a deceived prefix that are
    /// allowlisted are never redirected.
    fn allow_set(v4: bool) -> Set<'static> {
        Self::set_named(
            v4,
            if v4 { ALLOW_V4 } else { ALLOW_V6 },
            HashSet::from([SetFlag::Interval]),
        )
    }

    fn set_named(v4: bool, name: &'static str, flags: HashSet<SetFlag>) -> Set<'static> {
        Set {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.into(),
            handle: None,
            set_type: SetTypeValue::Single(if v4 {
                SetType::Ipv4Addr
            } else {
                SetType::Ipv6Addr
            }),
            policy: None,
            flags: Some(flags),
            elem: None,
            timeout: None,
            gc_interval: None,
            size: None,
            comment: None,
        }
    }

    fn chain() -> Chain<'static> {
        Chain {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: CHAIN.into(),
            _type: Some(NfChainType::NAT),
            hook: Some(NfHook::Prerouting),
            prio: Some(DSTNAT),
            policy: Some(NfChainPolicy::Accept),
            ..Default::default()
        }
    }

    fn allow_rule(v4: bool) -> Rule<'static> {
        let proto = proto(v4);
        let set = if v4 { ALLOW_V4 } else { ALLOW_V6 };
        Rule {
            family: NfFamily::INet,
            table: TABLE.into(),
            chain: CHAIN.into(),
            expr: Cow::Owned(vec![
                eq(
                    payload(proto, "saddr"),
                    Expression::String(format!("@{set}").into()),
                ),
                Statement::Return(None),
            ]),
            handle: None,
            index: None,
            comment: Some("phantomnet: allowlisted sources are never deceived".into()),
        }
    }

    /// Makes the allowlist mirror hold exactly `allowed`, in one transaction.
    pub fn set_allowed(&self, allowed: &[SourcePrefix]) -> Result<(), NftError> {
        let mut b = Batch::new();
        for v4 in [true, false] {
            b.add_cmd(NfCmd::Flush(FlushObject::Set(Box::new(Self::allow_set(
                v4,
            )))));
            let elems: Vec<Expression<'static>> = allowed
                .iter()
                .filter(|p| p.is_ipv4() == v4)
                .map(element_value)
                .collect();
            if !elems.is_empty() {
                b.add(NfListObject::Element(Element {
                    family: NfFamily::INet,
                    table: TABLE.into(),
                    name: (if v4 { ALLOW_V4 } else { ALLOW_V6 }).into(),
                    elem: Cow::Owned(elems),
                }));
            }
        }
        self.apply(b)
    }

    /// The DNAT rule for `hp`'s port, for the sources in one of its
    /// family's sets.
    fn rule(hp: &Honeypot, kind: SetKind) -> Rule<'static> {
        let v4 = hp.target.is_ipv4();
        let (proto, set) = (proto(v4), deceived_set(v4, kind));
        let saddr = match kind {
            SetKind::Nets64 => Expression::BinaryOperation(Box::new(BinaryOperation::AND(
                payload(proto, "saddr"),
                Expression::String(MASK64.into()),
            ))),
            SetKind::Hosts | SetKind::Prefixes => payload(proto, "saddr"),
        };
        Rule {
            family: NfFamily::INet,
            table: TABLE.into(),
            chain: CHAIN.into(),
            expr: Cow::Owned(vec![
                eq(saddr, Expression::String(format!("@{set}").into())),
                eq(
                    payload("tcp", "dport"),
                    Expression::Number(u32::from(hp.port)),
                ),
                Statement::DNAT(Some(NAT {
                    addr: Some(Expression::String(hp.target.ip().to_string().into())),
                    family: Some(if v4 { NATFamily::IP } else { NATFamily::IP6 }),
                    port: Some(Expression::Number(u32::from(hp.target.port()))),
                    flags: None,
                })),
            ]),
            handle: None,
            index: None,
            comment: Some(format!("phantomnet: deceived tcp/{} -> {}", hp.port, hp.target).into()),
        }
    }

    /// Creates the table, sets and chain if needed and (re)writes the rules
    /// from the configured honeypots, in one transaction. Set elements that
    /// are already there (sources under deception) are kept.
    pub fn install(&self) -> Result<(), NftError> {
        let mut b = Batch::new();
        b.add(NfListObject::Table(Table {
            family: NfFamily::INet,
            name: TABLE.into(),
            handle: None,
        }));
        for (v4, kind, _) in DECEIVED_SETS {
            b.add(NfListObject::Set(Box::new(Self::set(v4, kind))));
        }
        b.add(NfListObject::Set(Box::new(Self::allow_set(true))));
        b.add(NfListObject::Set(Box::new(Self::allow_set(false))));
        b.add(NfListObject::Chain(Self::chain()));
        b.add_cmd(NfCmd::Flush(FlushObject::Chain(Self::chain())));
        // Allowlisted sources first: never redirected, whatever is deceived.
        for v4 in [true, false] {
            b.add(NfListObject::Rule(Self::allow_rule(v4)));
        }
        for hp in &self.honeypots {
            let v4 = hp.target.is_ipv4();
            for (_, kind, _) in DECEIVED_SETS.iter().filter(|(f, _, _)| *f == v4) {
                b.add(NfListObject::Rule(Self::rule(hp, *kind)));
            }
        }
        self.apply(b)
    }

    fn element(source: &SourcePrefix, timeout: Option<u32>) -> NfListObject<'static> {
        Self::element_in(set_of(source), source, timeout)
    }

    fn element_in(
        set: &'static str,
        source: &SourcePrefix,
        timeout: Option<u32>,
    ) -> NfListObject<'static> {
        let val = element_value(source);
        let elem = match timeout {
            Some(t) => Expression::Named(NamedExpression::Elem(Elem {
                val: Box::new(val),
                timeout: Some(t),
                expires: None,
                comment: None,
                counter: None,
            })),
            None => val,
        };
        NfListObject::Element(Element {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: set.into(),
            elem: Cow::Owned(vec![elem]),
        })
    }

    /// Deceives `source` for `ttl`. Deceiving it again restarts the timeout.
    pub fn deceive(&self, source: &SourcePrefix, ttl: Duration) -> Result<(), NftError> {
        self.deceive_many(&[(*source, ttl)])
    }

    /// Deceives each `(source, ttl)`, all in one transaction: all or none.
    pub fn deceive_many(&self, items: &[(SourcePrefix, Duration)]) -> Result<(), NftError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut b = Batch::new();
        for (source, ttl) in items {
            let v4 = source.is_ipv4();
            if !self.honeypots.iter().any(|h| h.target.is_ipv4() == v4) {
                return Err(NftError::NoHoneypot(if v4 { "IPv4" } else { "IPv6" }));
            }
            let secs = u32::try_from(ttl.as_secs())
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| NftError::Ttl(format!("{ttl:?}: 1 s to {} s", u32::MAX)))?;
            // nft cannot update an element's timeout in place: add (a no-op
            // if it is there), delete, add with the new timeout.
            b.add(Self::element(source, None));
            b.delete(Self::element(source, None));
            b.add(Self::element(source, Some(secs)));
        }
        self.apply(b)
    }

    /// Ends the deception of `source`. A host or a /64 is looked for in its
    /// hash set, then in the interval set, where agents before 2026-12-06
    /// put every source.
    pub fn undeceive(&self, source: &SourcePrefix) -> Result<(), NftError> {
        let delete = |set| {
            let mut b = Batch::new();
            b.delete(Self::element_in(set, source, None));
            self.apply(b).map_err(|e| match e {
                NftError::Nft(why)
                    if why.contains("does not exist") || why.contains("No such file") =>
                {
                    NftError::NotDeceived(source.to_string())
                }
                other => other,
            })
        };
        match delete(set_of(source)) {
            Err(NftError::NotDeceived(_)) if kind_of(source) != SetKind::Prefixes => {
                delete(deceived_set(source.is_ipv4(), SetKind::Prefixes))
            }
            other => other,
        }
    }

    /// Every source under deception, both families, hosts and prefixes:
    /// one listing of the table.
    pub fn list(&self) -> Result<Vec<Deceived>, NftError> {
        let doc = self.nft_json(&["list", "table", "inet", TABLE])?;
        let mut out = Vec::new();
        for obj in doc.objects.iter() {
            let nftables::schema::NfObject::ListObject(NfListObject::Set(s)) = obj else {
                continue;
            };
            let Some((_, kind, _)) = DECEIVED_SETS.iter().find(|(_, _, name)| s.name == *name)
            else {
                continue;
            };
            for e in s.elem.iter().flat_map(|e| e.iter()) {
                if let Some(mut d) = deceived(e) {
                    // The /64 set holds network addresses.
                    if *kind == SetKind::Nets64 {
                        d.source.push_str("/64");
                    }
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Removes the table (and every deception with it). Only `inet phantomnet`.
    pub fn remove(&self) -> Result<(), NftError> {
        let mut b = Batch::new();
        b.delete(NfListObject::Table(Table {
            family: NfFamily::INet,
            name: TABLE.into(),
            handle: None,
        }));
        self.apply(b)
    }
}

/// Declares our sets with a `counter` statement, which gives every element
/// a counter of its own. Added to the JSON by hand: the nftables crate's
/// `Set` (0.6) has no field for set statements, and nft ignores a counter
/// given on an element of a set declared without one.
fn with_element_counters(doc: &mut serde_json::Value) {
    let Some(cmds) = doc.get_mut("nftables").and_then(|v| v.as_array_mut()) else {
        return;
    };
    for cmd in cmds {
        if let Some(set) = cmd.get_mut("add").and_then(|a| a.get_mut("set"))
            && let Some(obj) = set.as_object_mut()
        {
            obj.insert("stmt".into(), serde_json::json!([{ "counter": null }]));
        }
    }
}

fn source_text(e: &Expression<'_>) -> Option<String> {
    match e {
        Expression::String(s) => Some(s.to_string()),
        Expression::Named(NamedExpression::Prefix(p)) => {
            let Expression::String(a) = p.addr.as_ref() else {
                return None;
            };
            Some(format!("{a}/{}", p.len))
        }
        _ => None,
    }
}

fn deceived(e: &Expression<'_>) -> Option<Deceived> {
    match e {
        Expression::Named(NamedExpression::Elem(el)) => Some(Deceived {
            source: source_text(&el.val)?,
            remaining: el.expires.map(|s| Duration::from_secs(u64::from(s))),
            connections: match &el.counter {
                Some(Counter::Anonymous(Some(c))) => c.packets.unwrap_or(0) as u64,
                _ => 0,
            },
        }),
        other => Some(Deceived {
            source: source_text(other)?,
            remaining: None,
            connections: 0,
        }),
    }
}
