//! The namespace lab: a gateway with PhantomNet's XDP on its outside veth,
//! a protected server and a honeypot behind it, and benign clients and
//! attackers in front of it, all on documentation / test-net addresses.
//!
//! ```text
//!   cli (198.51.100.10-12 and .20-51, 2001:db8:100::10 and ::20-51)  srv (203.0.113.10, 2001:db8:203::10)
//!        \                                          /
//!   wan: br0 ─── p-gw ══ out0 [XDP] gw in0 ═══════ eth0
//!        /                          hp0 ═══════════ hp (203.0.113.130, 2001:db8:204::130)
//!   atk (198.51.100.66; sources 192.0.2.10-33 and 2001:db8:bad::10-33, routed via atk)
//! ```
//!
//! Every namespace is named `<prefix>-<role>`, so several labs (one per
//! test) can exist at once, and `down` removes exactly the namespaces of its
//! own prefix (their veths go with them). Interface MACs are fixed and the
//! neighbours are permanent, so no ARP or ND traffic crosses the XDP hook
//! and packet counts are exact.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cmd;

/// The namespaces of a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The outside L2 segment (a bridge).
    Wan,
    /// The gateway: forwarding on, XDP on `out0`.
    Gw,
    /// The protected server.
    Srv,
    /// The honeypot.
    Hp,
    /// Benign clients.
    Cli,
    /// Attackers.
    Atk,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Wan,
        Role::Gw,
        Role::Srv,
        Role::Hp,
        Role::Cli,
        Role::Atk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Wan => "wan",
            Role::Gw => "gw",
            Role::Srv => "srv",
            Role::Hp => "hp",
            Role::Cli => "cli",
            Role::Atk => "atk",
        }
    }

    fn mac_index(self) -> u8 {
        self as u8 + 1
    }
}

/// The gateway interface PhantomNet attaches to.
pub const GW_XDP_IFACE: &str = "out0";
/// The gateway's interface towards the protected server: the agent
/// observes it (`--inside-iface`), never enforces on it.
pub const GW_INSIDE_IFACE: &str = "in0";

/// Addresses. Sources that tests and the demo send from are listed in
/// `CLI_SRC4`/`ATK_SRC4`/`ATK_SRC6`.
pub mod addr {
    pub const WAN4_PREFIX: u8 = 24;
    pub const GW_WAN4: &str = "198.51.100.1";
    pub const CLI4: &str = "198.51.100.10";
    pub const CLI_SRC4: [&str; 3] = ["198.51.100.10", "198.51.100.11", "198.51.100.12"];
    pub const ATK4: &str = "198.51.100.66";
    pub const ATK_NET4: &str = "192.0.2.0/24";
    pub const ATK_NET6: &str = "2001:db8:bad::/64";
    pub const GW_LAN4: &str = "203.0.113.1";
    pub const SRV4: &str = "203.0.113.10";
    pub const GW_HP4: &str = "203.0.113.129";
    pub const HP4: &str = "203.0.113.130";
    pub const GW_WAN6: &str = "2001:db8:100::1";
    pub const CLI6: &str = "2001:db8:100::10";
    pub const ATK6: &str = "2001:db8:100::66";
    pub const GW_LAN6: &str = "2001:db8:203::1";
    pub const SRV6: &str = "2001:db8:203::10";
    pub const GW_HP6: &str = "2001:db8:204::1";
    pub const HP6: &str = "2001:db8:204::130";

    /// Attacker source `i` (0..28): 192.0.2.(10+i).
    pub fn atk_src4(i: u8) -> String {
        format!("192.0.2.{}", 10 + u32::from(i))
    }

    /// Attacker source `i` (0..28): 2001:db8:bad::(10+i) (hex digits as decimal text).
    pub fn atk_src6(i: u8) -> String {
        format!("2001:db8:bad::{}", 10 + u32::from(i))
    }

    /// How many extra attacker source addresses the lab configures.
    pub const ATK_SOURCES: u8 = 28;

    /// Extra benign client source `i` (0..32): 198.51.100.(20+i), on-link.
    pub fn cli_src4(i: u8) -> String {
        format!("198.51.100.{}", 20 + u32::from(i))
    }

    /// Extra benign client source `i` (0..32): 2001:db8:100::(20+i) (hex
    /// digits as decimal text), on-link.
    pub fn cli_src6(i: u8) -> String {
        format!("2001:db8:100::{}", 20 + u32::from(i))
    }

    /// How many extra benign client source addresses the lab configures
    /// (besides `CLI_SRC4` and `CLI6`).
    pub const CLI_SOURCES: u8 = 32;
}

/// Lab options.
#[derive(Clone, Copy, Debug)]
pub struct LabOptions {
    /// IPv6 addresses and routes (otherwise IPv6 is disabled everywhere).
    pub ipv6: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions { ipv6: true }
    }
}

/// A lab, identified by its namespace prefix.
#[derive(Clone, Debug)]
pub struct Lab {
    prefix: String,
    opts: LabOptions,
}

/// One end of a veth pair: (role, interface name).
type End = (Role, &'static str);

/// The links: outside hosts to the bridge, inside hosts to the gateway.
const LINKS: [(End, End); 5] = [
    ((Role::Gw, GW_XDP_IFACE), (Role::Wan, "p-gw")),
    ((Role::Cli, "eth0"), (Role::Wan, "p-cli")),
    ((Role::Atk, "eth0"), (Role::Wan, "p-atk")),
    ((Role::Gw, GW_INSIDE_IFACE), (Role::Srv, "eth0")),
    ((Role::Gw, "hp0"), (Role::Hp, "eth0")),
];

/// A fixed, locally administered MAC per (role, interface).
fn mac(end: End) -> String {
    let port = match end.1 {
        "eth0" | "out0" => 0,
        "in0" => 1,
        "hp0" => 2,
        "p-gw" => 3,
        "p-cli" => 4,
        _ => 5,
    };
    format!("02:50:4e:00:{:02x}:{:02x}", end.0.mac_index(), port)
}

impl Lab {
    pub fn new(prefix: &str, opts: LabOptions) -> Lab {
        Lab {
            prefix: prefix.to_string(),
            opts,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace name of a role.
    pub fn ns(&self, role: Role) -> String {
        format!("{}-{}", self.prefix, role.name())
    }

    /// `/run/netns/<ns>`, for `nsenter --net=` and `setns`.
    pub fn netns_path(&self, role: Role) -> PathBuf {
        Path::new("/run/netns").join(self.ns(role))
    }

    fn exists(&self, role: Role) -> bool {
        self.netns_path(role).exists()
    }

    /// `ip -n <ns> ...`
    fn ip(&self, role: Role, args: &[&str]) -> Result<()> {
        let ns = self.ns(role);
        let mut full = vec!["-n", ns.as_str()];
        full.extend_from_slice(args);
        cmd::output("ip", &full).map(drop)
    }

    fn sysctl(&self, role: Role, key: &str, value: &str) -> Result<()> {
        let ns = self.ns(role);
        let kv = format!("{key}={value}");
        cmd::output("ip", &["netns", "exec", &ns, "sysctl", "-qw", &kv]).map(drop)
    }

    /// True if every namespace exists and the gateway's XDP interface is up.
    pub fn is_up(&self) -> bool {
        Role::ALL.iter().all(|r| self.exists(*r))
            && cmd::succeeds(
                "ip",
                &["-n", &self.ns(Role::Gw), "link", "show", GW_XDP_IFACE, "up"],
            )
    }

    /// Creates the lab. If it is already complete this does nothing; a
    /// partial one (an interrupted run) is removed and made again.
    pub fn up(&self) -> Result<()> {
        if self.is_up() {
            return Ok(());
        }
        self.down()?;
        self.create()
            .with_context(|| format!("creating lab {}", self.prefix))
            .inspect_err(|_| {
                let _ = self.down();
            })
    }

    fn create(&self) -> Result<()> {
        for role in Role::ALL {
            cmd::output("ip", &["netns", "add", &self.ns(role)])?;
            self.ip(role, &["link", "set", "lo", "up"])?;
            let v6_off = !self.opts.ipv6 || role == Role::Wan;
            for scope in ["all", "default"] {
                self.sysctl(
                    role,
                    &format!("net.ipv6.conf.{scope}.disable_ipv6"),
                    if v6_off { "1" } else { "0" },
                )?;
                self.sysctl(role, &format!("net.ipv6.conf.{scope}.accept_dad"), "0")?;
                self.sysctl(
                    role,
                    &format!("net.ipv6.conf.{scope}.router_solicitations"),
                    "0",
                )?;
            }
        }
        for (a, b) in LINKS {
            let (ns_a, ns_b) = (self.ns(a.0), self.ns(b.0));
            let (mac_a, mac_b) = (mac(a), mac(b));
            cmd::output(
                "ip",
                &[
                    "link", "add", a.1, "netns", &ns_a, "address", &mac_a, "type", "veth", "peer",
                    "name", b.1, "netns", &ns_b, "address", &mac_b,
                ],
            )?;
        }
        self.ip(
            Role::Wan,
            &[
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "stp_state",
                "0",
                "mcast_snooping",
                "0",
            ],
        )?;
        for port in ["p-gw", "p-cli", "p-atk"] {
            self.ip(Role::Wan, &["link", "set", port, "master", "br0", "up"])?;
        }
        self.ip(Role::Wan, &["link", "set", "br0", "up"])?;
        for (a, b) in LINKS {
            for end in [a, b] {
                if end.0 != Role::Wan {
                    self.ip(end.0, &["link", "set", end.1, "up"])?;
                }
            }
        }
        self.sysctl(Role::Gw, "net.ipv4.ip_forward", "1")?;
        self.addresses_and_routes()?;
        self.neighbours()
    }

    fn addresses_and_routes(&self) -> Result<()> {
        use addr::*;
        let a4 = |role, cidr: String, dev: &str| self.ip(role, &["addr", "add", &cidr, "dev", dev]);
        a4(Role::Gw, format!("{GW_WAN4}/24"), GW_XDP_IFACE)?;
        a4(Role::Gw, format!("{GW_LAN4}/25"), "in0")?;
        a4(Role::Gw, format!("{GW_HP4}/25"), "hp0")?;
        for src in CLI_SRC4 {
            a4(Role::Cli, format!("{src}/24"), "eth0")?;
        }
        for i in 0..CLI_SOURCES {
            a4(Role::Cli, format!("{}/32", cli_src4(i)), "eth0")?;
        }
        a4(Role::Atk, format!("{ATK4}/24"), "eth0")?;
        for i in 0..ATK_SOURCES {
            a4(Role::Atk, format!("{}/32", atk_src4(i)), "eth0")?;
        }
        a4(Role::Srv, format!("{SRV4}/25"), "eth0")?;
        a4(Role::Hp, format!("{HP4}/25"), "eth0")?;
        for (role, via) in [
            (Role::Cli, GW_WAN4),
            (Role::Atk, GW_WAN4),
            (Role::Srv, GW_LAN4),
            (Role::Hp, GW_HP4),
        ] {
            self.ip(role, &["route", "add", "default", "via", via])?;
        }
        self.ip(Role::Gw, &["route", "add", ATK_NET4, "via", ATK4])?;
        if !self.opts.ipv6 {
            return Ok(());
        }
        self.sysctl(Role::Gw, "net.ipv6.conf.all.forwarding", "1")?;
        let a6 = |role, cidr: String, dev: &str| {
            self.ip(role, &["-6", "addr", "add", &cidr, "dev", dev, "nodad"])
        };
        a6(Role::Gw, format!("{GW_WAN6}/64"), GW_XDP_IFACE)?;
        a6(Role::Gw, format!("{GW_LAN6}/64"), "in0")?;
        a6(Role::Gw, format!("{GW_HP6}/64"), "hp0")?;
        a6(Role::Cli, format!("{CLI6}/64"), "eth0")?;
        for i in 0..CLI_SOURCES {
            a6(Role::Cli, format!("{}/128", cli_src6(i)), "eth0")?;
        }
        a6(Role::Atk, format!("{ATK6}/64"), "eth0")?;
        for i in 0..ATK_SOURCES {
            a6(Role::Atk, format!("{}/128", atk_src6(i)), "eth0")?;
        }
        a6(Role::Srv, format!("{SRV6}/64"), "eth0")?;
        a6(Role::Hp, format!("{HP6}/64"), "eth0")?;
        for (role, via) in [
            (Role::Cli, GW_WAN6),
            (Role::Atk, GW_WAN6),
            (Role::Srv, GW_LAN6),
            (Role::Hp, GW_HP6),
        ] {
            self.ip(role, &["-6", "route", "add", "default", "via", via])?;
        }
        self.ip(Role::Gw, &["-6", "route", "add", ATK_NET6, "via", ATK6])
    }

    /// Permanent neighbour entries on both ends of every routed hop.
    fn neighbours(&self) -> Result<()> {
        use addr::*;
        let gw_out = mac((Role::Gw, GW_XDP_IFACE));
        let cli_extra4: Vec<String> = (0..CLI_SOURCES).map(cli_src4).collect();
        let cli_extra6: Vec<String> = (0..CLI_SOURCES).map(cli_src6).collect();
        let mut entries: Vec<(Role, &str, String, &str)> = vec![
            (Role::Cli, GW_WAN4, gw_out.clone(), "eth0"),
            (Role::Atk, GW_WAN4, gw_out.clone(), "eth0"),
            (Role::Srv, GW_LAN4, mac((Role::Gw, "in0")), "eth0"),
            (Role::Hp, GW_HP4, mac((Role::Gw, "hp0")), "eth0"),
            (Role::Gw, ATK4, mac((Role::Atk, "eth0")), GW_XDP_IFACE),
            (Role::Gw, SRV4, mac((Role::Srv, "eth0")), "in0"),
            (Role::Gw, HP4, mac((Role::Hp, "eth0")), "hp0"),
        ];
        for src in CLI_SRC4 {
            entries.push((Role::Gw, src, mac((Role::Cli, "eth0")), GW_XDP_IFACE));
        }
        for src in &cli_extra4 {
            entries.push((
                Role::Gw,
                src.as_str(),
                mac((Role::Cli, "eth0")),
                GW_XDP_IFACE,
            ));
        }
        if self.opts.ipv6 {
            entries.extend([
                (Role::Cli, GW_WAN6, gw_out.clone(), "eth0"),
                (Role::Atk, GW_WAN6, gw_out, "eth0"),
                (Role::Srv, GW_LAN6, mac((Role::Gw, "in0")), "eth0"),
                (Role::Hp, GW_HP6, mac((Role::Gw, "hp0")), "eth0"),
                (Role::Gw, ATK6, mac((Role::Atk, "eth0")), GW_XDP_IFACE),
                (Role::Gw, CLI6, mac((Role::Cli, "eth0")), GW_XDP_IFACE),
                (Role::Gw, SRV6, mac((Role::Srv, "eth0")), "in0"),
                (Role::Gw, HP6, mac((Role::Hp, "eth0")), "hp0"),
            ]);
            for src in &cli_extra6 {
                entries.push((
                    Role::Gw,
                    src.as_str(),
                    mac((Role::Cli, "eth0")),
                    GW_XDP_IFACE,
                ));
            }
        }
        for (role, ip, lladdr, dev) in entries {
            self.ip(
                role,
                &[
                    "neigh",
                    "replace",
                    ip,
                    "lladdr",
                    &lladdr,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ],
            )?;
        }
        Ok(())
    }

    /// Adds an extra host on the outside segment: its own namespace
    /// `<prefix>-<name>`, an `eth0` veth (MAC `mac`) into the `wan` bridge,
    /// the source `v4` (and `v6`) as host addresses, a default route via the
    /// gateway, and permanent neighbours both ways. The gateway gets a host
    /// route to each address on `out0`, so any address works, on-link
    /// (`198.51.100.0/24`, `2001:db8:100::/64`) or not (`192.0.2.0/24`,
    /// which otherwise routes to `atk`). Like the lab's own hosts, nothing
    /// resolves an address through ARP or ND across the XDP hook.
    /// [`Lab::down`] does not know these: remove them with
    /// [`Lab::remove_host`].
    pub fn add_outside_host(
        &self,
        name: &str,
        host_mac: &str,
        v4: &str,
        v6: Option<&str>,
    ) -> Result<()> {
        use addr::*;
        let ns = format!("{}-{name}", self.prefix);
        let peer = format!("p-{name}");
        let run = |args: &[&str]| cmd::output("ip", args).map(drop);
        let in_ns = |args: &[&str]| {
            let mut full = vec!["-n", ns.as_str()];
            full.extend_from_slice(args);
            run(&full)
        };
        let gw = self.ns(Role::Gw);
        let in_gw = |args: &[&str]| {
            let mut full = vec!["-n", gw.as_str()];
            full.extend_from_slice(args);
            run(&full)
        };
        let wan = self.ns(Role::Wan);
        run(&["netns", "add", &ns])?;
        let v6_on = v6.is_some() && self.opts.ipv6;
        for scope in ["all", "default"] {
            for (key, value) in [
                ("disable_ipv6", if v6_on { "0" } else { "1" }),
                ("accept_dad", "0"),
                ("router_solicitations", "0"),
            ] {
                let kv = format!("net.ipv6.conf.{scope}.{key}={value}");
                cmd::output("ip", &["netns", "exec", &ns, "sysctl", "-qw", &kv])?;
            }
        }
        in_ns(&["link", "set", "lo", "up"])?;
        run(&[
            "link", "add", "eth0", "netns", &ns, "address", host_mac, "type", "veth", "peer",
            "name", &peer, "netns", &wan,
        ])?;
        run(&["-n", &wan, "link", "set", &peer, "master", "br0", "up"])?;
        in_ns(&["link", "set", "eth0", "up"])?;
        let gw_out = mac((Role::Gw, GW_XDP_IFACE));
        fn neigh<'a>(ip: &'a str, lladdr: &'a str, dev: &'a str) -> [&'a str; 9] {
            [
                "neigh",
                "replace",
                ip,
                "lladdr",
                lladdr,
                "dev",
                dev,
                "nud",
                "permanent",
            ]
        }
        in_ns(&["addr", "add", &format!("{v4}/32"), "dev", "eth0"])?;
        in_ns(&["route", "add", GW_WAN4, "dev", "eth0"])?;
        in_ns(&["route", "add", "default", "via", GW_WAN4, "dev", "eth0"])?;
        in_ns(&neigh(GW_WAN4, &gw_out, "eth0"))?;
        in_gw(&["route", "replace", &format!("{v4}/32"), "dev", GW_XDP_IFACE])?;
        in_gw(&neigh(v4, host_mac, GW_XDP_IFACE))?;
        if let (Some(v6), true) = (v6, v6_on) {
            in_ns(&[
                "-6",
                "addr",
                "add",
                &format!("{v6}/128"),
                "dev",
                "eth0",
                "nodad",
            ])?;
            in_ns(&[
                "-6",
                "route",
                "add",
                &format!("{GW_WAN6}/128"),
                "dev",
                "eth0",
            ])?;
            in_ns(&[
                "-6", "route", "add", "default", "via", GW_WAN6, "dev", "eth0",
            ])?;
            in_ns(&neigh(GW_WAN6, &gw_out, "eth0"))?;
            in_gw(&[
                "-6",
                "route",
                "replace",
                &format!("{v6}/128"),
                "dev",
                GW_XDP_IFACE,
            ])?;
            in_gw(&neigh(v6, host_mac, GW_XDP_IFACE))?;
        }
        Ok(())
    }

    /// Deletes an extra namespace `<prefix>-<name>` (an outside host, or
    /// anything else made under this lab's prefix), if it exists. Its veths
    /// go with it; the gateway's routes to its addresses go with the
    /// gateway's namespace.
    pub fn remove_host(&self, name: &str) -> Result<()> {
        let ns = format!("{}-{name}", self.prefix);
        if Path::new("/run/netns").join(&ns).exists() {
            cmd::output("ip", &["netns", "del", &ns])?;
        }
        Ok(())
    }

    /// The gateway's outside (`out0`) MAC, for tools that write their own
    /// Ethernet frames (masscan's `--router-mac`).
    pub fn gw_out_mac() -> String {
        mac((Role::Gw, GW_XDP_IFACE))
    }

    /// Deletes this lab's namespaces (and with them their veths and
    /// bridge). Namespaces of other prefixes are never touched.
    pub fn down(&self) -> Result<()> {
        for role in Role::ALL {
            if self.exists(role) {
                cmd::output("ip", &["netns", "del", &self.ns(role)])?;
            }
        }
        Ok(())
    }
}
