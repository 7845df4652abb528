use std::path::PathBuf;

/// Everything that can go wrong between the agent and the kernel.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("invalid prefix {input:?}: {reason}")]
    InvalidPrefix { input: String, reason: String },
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error(
        "the data plane is not loaded: no pinned map at {path} \
         (start it with `phantomnet-agent run --iface IF`, or pass the right --pin-dir)"
    )]
    NotLoaded { path: PathBuf },
    #[error(
        "pinned map {name} at {path} does not match this build \
         (kernel: type {found_type}, key {found_key} B, value {found_value} B, {found_max} entries; \
         expected: type {want_type}, key {want_key} B, value {want_value} B, {want_max} entries). \
         It was created by another PhantomNet version; `phantomnet-agent detach` removes it \
         (and the enforcement it holds)"
    )]
    IncompatiblePin {
        name: &'static str,
        path: PathBuf,
        found_type: u32,
        found_key: u32,
        found_value: u32,
        found_max: u32,
        want_type: u32,
        want_key: u32,
        want_value: u32,
        want_max: u32,
    },
    #[error("map {map} is full ({capacity} entries); existing entries are unchanged")]
    MapFull { map: &'static str, capacity: u32 },
    #[error("{prefix} is allowlisted by {by}; a block there could never apply")]
    Allowlisted { prefix: String, by: String },
    #[error("no {kind} entry for {prefix}")]
    NotFound { kind: &'static str, prefix: String },
    #[error("interface {0:?} does not exist")]
    UnknownInterface(String),
    #[error("the embedded XDP object is empty: this binary was built with AYA_BUILD_SKIP")]
    ObjectMissing,
    #[error("bpffs: {0}")]
    Bpffs(String),
    #[error("attaching XDP to {iface} in {mode} mode: {source}")]
    Attach {
        iface: String,
        mode: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("{context}: {source}")]
    Map {
        context: String,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP link: {0}")]
    Link(#[from] aya::programs::links::LinkError),
    #[error("XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl DataplaneError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DataplaneError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn map(context: impl Into<String>, source: aya::maps::MapError) -> Self {
        DataplaneError::Map {
            context: context.into(),
            source,
        }
    }
}
