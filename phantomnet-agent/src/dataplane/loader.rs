//! Loading the XDP object against the pinned maps, and attaching it.
//!
//! Restart safety: every map is pinned by name, so a new agent reopens the
//! maps the old one filled (aya reuses a pin that exists). Every XDP link is
//! pinned too; a new agent swaps its freshly loaded program into the pinned
//! link atomically (`bpf_link_update`), so there is no instant without
//! enforcement, and an agent that dies leaves the link and maps in place.
use std::{fs, path::PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::MapInfo,
    programs::{
        Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::{XdpLink, XdpLinkId},
    },
};
use aya_log::EbpfLogger;
use phantomnet_common::{
    AllowEntry, BlockEntry, Config, Counter, INSIDE_PROGRAM_NAME, KnownGood, Outcome, PROGRAM_NAME,
    SigRule, SigState, SigStats, ThrottleRule, ThrottleState, V4_KEY_LEN, V6_KEY_LEN, capacity,
    maps,
};
use tracing::{info, warn};

use super::{DataplaneError, EBPF_OBJECT, PinDir, SampleReader, link_info::pinned_link_info};

/// Which XDP attach mode to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModeRequest {
    /// Driver (native) mode, falling back to generic with a log line.
    #[default]
    Auto,
    Native,
    Generic,
}

/// What `Dataplane::load` needs.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub pins: PinDir,
    pub interfaces: Vec<String>,
    /// Inside interfaces: the observe-only program
    /// ([`INSIDE_PROGRAM_NAME`]) is attached to them, unpinned.
    pub inside_interfaces: Vec<String>,
    pub mode: ModeRequest,
    /// The most verbose aya-log level the XDP program emits.
    pub ebpf_log_level: log::LevelFilter,
}

/// An interface the program runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachedInterface {
    pub name: String,
    pub ifindex: u32,
    /// "native" or "generic".
    pub mode: &'static str,
    /// True if an existing pinned link was re-adopted (enforcement never lapsed).
    pub adopted: bool,
}

/// The loaded program, its maps (pinned) and its links (pinned).
pub struct Dataplane {
    ebpf: Ebpf,
    logger: Option<EbpfLogger<&'static dyn log::Log>>,
    pins: PinDir,
    interfaces: Vec<AttachedInterface>,
    inside: Vec<AttachedInterface>,
}

const MODES: [(&str, XdpMode); 2] = [("native", XdpMode::Driver), ("generic", XdpMode::Skb)];

/// (name, map type, key size, value size, max entries) of every pinned map,
/// as this build creates it. `BPF_MAP_TYPE_*`: hash 1, array 2, percpu
/// array 6, LRU hash 9, LPM trie 11, ring buffer 27.
fn expected_layouts() -> [(&'static str, u32, u32, u32, u32); 20] {
    let sz = |n: usize| n as u32;
    let lpm4 = sz(4 + V4_KEY_LEN);
    let lpm6 = sz(4 + V6_KEY_LEN);
    [
        (
            maps::ALLOW_V4,
            11,
            lpm4,
            sz(size_of::<AllowEntry>()),
            capacity::ALLOW,
        ),
        (
            maps::ALLOW_V6,
            11,
            lpm6,
            sz(size_of::<AllowEntry>()),
            capacity::ALLOW,
        ),
        (
            maps::BLOCK_V4,
            11,
            lpm4,
            sz(size_of::<BlockEntry>()),
            capacity::BLOCK,
        ),
        (
            maps::BLOCK_V6,
            11,
            lpm6,
            sz(size_of::<BlockEntry>()),
            capacity::BLOCK,
        ),
        (
            maps::THROTTLE_RULE_V4,
            11,
            lpm4,
            sz(size_of::<ThrottleRule>()),
            capacity::THROTTLE_RULE,
        ),
        (
            maps::THROTTLE_RULE_V6,
            11,
            lpm6,
            sz(size_of::<ThrottleRule>()),
            capacity::THROTTLE_RULE,
        ),
        (
            maps::THROTTLE_STATE_V4,
            9,
            4,
            sz(size_of::<ThrottleState>()),
            capacity::THROTTLE_STATE,
        ),
        (
            maps::THROTTLE_STATE_V6,
            9,
            16,
            sz(size_of::<ThrottleState>()),
            capacity::THROTTLE_STATE,
        ),
        (maps::CONFIG, 2, 4, sz(size_of::<Config>()), 1),
        (
            maps::COUNTERS,
            6,
            4,
            sz(size_of::<Counter>()),
            Outcome::COUNT,
        ),
        (maps::SAMPLES, 27, 0, 0, capacity::SAMPLES_BYTES),
        (
            maps::ALLOW_HOST_V4,
            1,
            4,
            sz(size_of::<AllowEntry>()),
            capacity::ALLOW_HOST,
        ),
        (
            maps::ALLOW_HOST_V6,
            1,
            16,
            sz(size_of::<AllowEntry>()),
            capacity::ALLOW_HOST,
        ),
        (
            maps::BLOCK_HOST_V4,
            1,
            4,
            sz(size_of::<BlockEntry>()),
            capacity::BLOCK_HOST,
        ),
        (
            maps::BLOCK_HOST_V6,
            1,
            16,
            sz(size_of::<BlockEntry>()),
            capacity::BLOCK_HOST,
        ),
        (
            maps::SIG_RULES,
            2,
            4,
            sz(size_of::<SigRule>()),
            capacity::SIG_SLOTS,
        ),
        (
            maps::SIG_STATE,
            2,
            4,
            sz(size_of::<SigState>()),
            capacity::SIG_SLOTS,
        ),
        (
            maps::SIG_STATS,
            6,
            4,
            sz(size_of::<SigStats>()),
            capacity::SIG_SLOTS,
        ),
        (
            maps::KNOWN_GOOD_V4,
            9,
            4,
            sz(size_of::<KnownGood>()),
            capacity::KNOWN_GOOD,
        ),
        (
            maps::KNOWN_GOOD_V6,
            9,
            16,
            sz(size_of::<KnownGood>()),
            capacity::KNOWN_GOOD,
        ),
    ]
}

/// Refuses to load against pins an incompatible build left behind: reusing
/// them would make the kernel and the agent disagree on every entry.
fn check_pinned_layouts(pins: &PinDir) -> Result<(), DataplaneError> {
    for (name, want_type, want_key, want_value, want_max) in expected_layouts() {
        let path = pins.map(name);
        if !path.exists() {
            continue;
        }
        let info = MapInfo::from_pin(&path)
            .map_err(|e| DataplaneError::map(format!("inspecting {}", path.display()), e))?;
        let found = (
            info.map_type().map(|t| t as u32).unwrap_or(u32::MAX),
            info.key_size(),
            info.value_size(),
            info.max_entries(),
        );
        if found != (want_type, want_key, want_value, want_max) {
            return Err(DataplaneError::IncompatiblePin {
                name,
                path,
                found_type: found.0,
                found_key: found.1,
                found_value: found.2,
                found_max: found.3,
                want_type,
                want_key,
                want_value,
                want_max,
            });
        }
    }
    Ok(())
}

fn ifindex(name: &str) -> Result<u32, DataplaneError> {
    nix::net::if_::if_nametoindex(name).map_err(|_| DataplaneError::UnknownInterface(name.into()))
}

impl Dataplane {
    /// Loads the program against the pinned maps (creating and pinning any
    /// that do not exist yet) and attaches it to every interface.
    pub fn load(opts: &LoadOptions) -> Result<Dataplane, DataplaneError> {
        if EBPF_OBJECT.is_empty() {
            return Err(DataplaneError::ObjectMissing);
        }
        opts.pins.prepare()?;
        check_pinned_layouts(&opts.pins)?;

        let pin_paths: Vec<(&'static str, PathBuf)> = maps::PINNED
            .iter()
            .map(|&name| (name, opts.pins.map(name)))
            .collect();
        let level: u8 = match opts.ebpf_log_level {
            log::LevelFilter::Off => 0,
            l => l as u8,
        };
        let mut loader = EbpfLoader::new();
        for (name, path) in &pin_paths {
            loader.map_pin_path(name, path.as_path());
        }
        loader.override_global(aya_log::LEVEL, &level, false);
        let mut ebpf = loader.load(EBPF_OBJECT)?;

        let logger = match EbpfLogger::init(&mut ebpf) {
            Ok(l) => Some(l),
            Err(e) => {
                warn!(error = %e, "XDP log messages are unavailable");
                None
            }
        };
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(aya::programs::ProgramError::UnexpectedProgramType)?
            .try_into()?;
        program.load()?;

        let mut interfaces = Vec::new();
        for iface in &opts.interfaces {
            interfaces.push(attach(program, &opts.pins, iface, opts.mode)?);
        }
        let mut inside = Vec::new();
        if !opts.inside_interfaces.is_empty() {
            let observer: &mut Xdp = ebpf
                .program_mut(INSIDE_PROGRAM_NAME)
                .ok_or(aya::programs::ProgramError::UnexpectedProgramType)?
                .try_into()?;
            observer.load()?;
            for iface in &opts.inside_interfaces {
                inside.push(observe(observer, iface, opts.mode)?);
            }
        }
        Ok(Dataplane {
            ebpf,
            logger,
            pins: opts.pins.clone(),
            interfaces,
            inside,
        })
    }

    pub fn interfaces(&self) -> &[AttachedInterface] {
        &self.interfaces
    }

    /// The inside interfaces observed (`adopted` is always false: their
    /// links are the agent's own and end with it).
    pub fn inside_interfaces(&self) -> &[AttachedInterface] {
        &self.inside
    }

    pub fn pins(&self) -> &PinDir {
        &self.pins
    }

    /// The kernel's id of the loaded program (for `bpftool prog ... id N`).
    pub fn program_id(&self) -> Result<u32, DataplaneError> {
        let program: &Xdp = self
            .ebpf
            .program(PROGRAM_NAME)
            .ok_or(aya::programs::ProgramError::UnexpectedProgramType)?
            .try_into()?;
        Ok(program.info()?.id())
    }

    /// The sample reader over the ring buffer. It can be taken once.
    pub fn take_samples(&mut self) -> Result<SampleReader, DataplaneError> {
        let map = self
            .ebpf
            .take_map(maps::SAMPLES)
            .ok_or_else(|| DataplaneError::Map {
                context: "the sample ring buffer".into(),
                source: aya::maps::MapError::InvalidName {
                    name: maps::SAMPLES.into(),
                },
            })?;
        SampleReader::new(map)
    }

    /// Forwards the XDP program's log messages to `log`/`tracing`.
    pub fn drain_logs(&mut self) {
        if let Some(l) = self.logger.as_mut() {
            l.flush();
        }
    }
}

/// Attaches to one interface: re-adopts a live pinned link, else makes and
/// pins a new one.
fn attach(
    program: &mut Xdp,
    pins: &PinDir,
    iface: &str,
    request: ModeRequest,
) -> Result<AttachedInterface, DataplaneError> {
    let index = ifindex(iface)?;
    for (mode_name, _) in MODES {
        let path = pins.link(mode_name, iface);
        if !path.exists() {
            continue;
        }
        match pinned_link_info(&path) {
            Ok(info) if info.ifindex == index => {
                let link: FdLink = PinnedLink::from_pin(&path)
                    .map_err(|e| {
                        DataplaneError::io(format!("opening {}", path.display()), io_err(e))
                    })?
                    .into();
                let link = XdpLink::try_from(link)?;
                program.attach_to_link(link)?;
                if mode_name_for(request).is_some_and(|m| m != mode_name) {
                    warn!(
                        iface,
                        mode = mode_name,
                        "kept the existing {mode_name} link; `detach` first to change mode"
                    );
                }
                info!(
                    iface,
                    mode = mode_name,
                    "re-adopted pinned XDP link; enforcement never lapsed"
                );
                return Ok(AttachedInterface {
                    name: iface.into(),
                    ifindex: index,
                    mode: mode_name,
                    adopted: true,
                });
            }
            other => {
                warn!(
                    iface,
                    path = %path.display(),
                    link = ?other,
                    "removing a pinned link whose interface is gone"
                );
                fs::remove_file(&path)
                    .map_err(|e| DataplaneError::io(format!("removing {}", path.display()), e))?;
            }
        }
    }

    let (mode_name, id) = attach_new(program, index, iface, request)?;
    let link = FdLink::try_from(program.take_link(id)?)?;
    let path = pins.link(mode_name, iface);
    fs::create_dir_all(path.parent().unwrap_or(pins.path()))
        .map_err(|e| DataplaneError::io("creating the links directory", e))?;
    link.pin(&path)
        .map_err(|e| DataplaneError::io(format!("pinning {}", path.display()), io_err(e)))?;
    info!(iface, ifindex = index, mode = mode_name, "attached XDP");
    Ok(AttachedInterface {
        name: iface.into(),
        ifindex: index,
        mode: mode_name,
        adopted: false,
    })
}

/// Attaches `program` to interface `index` in the requested mode (auto:
/// native, falling back to generic with a log line); returns the mode
/// used and the link, still owned by the program.
fn attach_new(
    program: &mut Xdp,
    index: u32,
    iface: &str,
    request: ModeRequest,
) -> Result<(&'static str, XdpLinkId), DataplaneError> {
    let candidates: &[(&'static str, XdpMode)] = match request {
        ModeRequest::Auto => &MODES,
        ModeRequest::Native => &MODES[..1],
        ModeRequest::Generic => &MODES[1..],
    };
    let mut last_err = None;
    for &(mode_name, mode) in candidates {
        match program.attach_to_if_index(index, mode) {
            Ok(id) => return Ok((mode_name, id)),
            Err(e) => {
                if request == ModeRequest::Auto && mode_name == "native" {
                    warn!(iface, error = %e, "native XDP failed; falling back to generic mode");
                }
                last_err = Some((mode_name, e));
            }
        }
    }
    let (mode, source) = last_err.expect("at least one mode was tried");
    Err(DataplaneError::Attach {
        iface: iface.into(),
        mode,
        source,
    })
}

/// Attaches the observe-only program to an inside interface. The link is
/// not pinned: the observer enforces nothing, so nothing must outlive the
/// agent (the link goes with the loaded object when the agent exits), and
/// no later agent has anything to adopt.
fn observe(
    program: &mut Xdp,
    iface: &str,
    request: ModeRequest,
) -> Result<AttachedInterface, DataplaneError> {
    let index = ifindex(iface)?;
    // The link stays owned by the program, so it ends with the agent.
    let (mode_name, _) = attach_new(program, index, iface, request)?;
    info!(
        iface,
        ifindex = index,
        mode = mode_name,
        "observing inside interface"
    );
    Ok(AttachedInterface {
        name: iface.into(),
        ifindex: index,
        mode: mode_name,
        adopted: false,
    })
}

fn mode_name_for(request: ModeRequest) -> Option<&'static str> {
    match request {
        ModeRequest::Auto => None,
        ModeRequest::Native => Some("native"),
        ModeRequest::Generic => Some("generic"),
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
