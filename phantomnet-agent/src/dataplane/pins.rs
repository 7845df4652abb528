use std::{
    fs, io,
    path::{Path, PathBuf},
};

use phantomnet_common::{LINKS_SUBDIR, maps};
use tracing::{debug, info};

use super::DataplaneError;

/// The sub-directories of `links/`, one per attach mode.
pub(crate) const LINK_MODES: [&str; 2] = ["native", "generic"];

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xCAFE_4A11;

/// Where PhantomNet keeps its pins: `<dir>/<MAP_NAME>` for every map and
/// `<dir>/links/<mode>/<ifname>` for every XDP link (mode: native|generic). PhantomNet only ever creates
/// and removes those names.
#[derive(Clone, Debug)]
pub struct PinDir(PathBuf);

impl PinDir {
    pub fn new(dir: impl Into<PathBuf>) -> PinDir {
        PinDir(dir.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn links(&self) -> PathBuf {
        self.0.join(LINKS_SUBDIR)
    }

    pub fn link(&self, mode: &str, iface: &str) -> PathBuf {
        self.links().join(mode).join(iface)
    }

    /// Makes sure the pin directory is on a bpffs, and creates the
    /// directories. Below `/sys/fs/bpf` (the kernel's mount point for
    /// bpffs) that one is mounted if needed. Elsewhere, a directory already
    /// on a bpffs is used as it is; otherwise a bpffs is mounted on the pin
    /// directory itself, and only if it is new or empty: never over an
    /// existing directory, which would hide its files.
    pub fn prepare(&self) -> Result<(), DataplaneError> {
        let standard = Path::new("/sys/fs/bpf");
        if self.0.starts_with(standard) {
            mount_bpffs_if_needed(standard)?;
        } else if !is_bpffs(nearest_existing(&self.0))? {
            let not_empty = fs::read_dir(&self.0)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if not_empty {
                return Err(DataplaneError::Bpffs(format!(
                    "{} is not on a bpffs and is not empty: refusing to mount a bpffs over it \
                     (use a directory under /sys/fs/bpf, or a new one)",
                    self.0.display()
                )));
            }
            mount_bpffs_if_needed(&self.0)?;
        }
        fs::create_dir_all(self.links())
            .map_err(|e| DataplaneError::io(format!("creating {}", self.links().display()), e))
    }

    /// `(mode, interface)` of every pinned link.
    pub fn pinned_links(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for mode in LINK_MODES {
            let Ok(entries) = fs::read_dir(self.links().join(mode)) else {
                continue;
            };
            for name in entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
            {
                out.push((mode, name));
            }
        }
        out.sort();
        out
    }

    /// Removes every pin PhantomNet creates (the links first, which detaches
    /// XDP, then the maps) and the directories if they are then empty.
    /// Anything else in the directory is left alone. Returns what it removed.
    pub fn remove_ours(&self) -> Result<Vec<PathBuf>, DataplaneError> {
        let mut removed = Vec::new();
        for (mode, iface) in self.pinned_links() {
            remove_file_if_exists(&self.link(mode, &iface), &mut removed)?;
        }
        for name in maps::PINNED {
            remove_file_if_exists(&self.map(name), &mut removed)?;
        }
        let dirs = LINK_MODES
            .iter()
            .map(|m| self.links().join(m))
            .chain([self.links(), self.0.clone()]);
        for dir in dirs {
            match fs::remove_dir(&dir) {
                Ok(()) => removed.push(dir),
                Err(e) => debug!(dir = %dir.display(), error = %e, "left directory in place"),
            }
        }
        Ok(removed)
    }
}

fn remove_file_if_exists(path: &Path, removed: &mut Vec<PathBuf>) -> Result<(), DataplaneError> {
    match fs::remove_file(path) {
        Ok(()) => {
            removed.push(path.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DataplaneError::io(
            format!("removing {}", path.display()),
            e,
        )),
    }
}

/// `dir`, or its nearest ancestor that exists.
fn nearest_existing(dir: &Path) -> &Path {
    let mut p = dir;
    while !p.exists() {
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    p
}

fn is_bpffs(path: &Path) -> Result<bool, DataplaneError> {
    let stat = nix::sys::statfs::statfs(path)
        .map_err(|e| DataplaneError::Bpffs(format!("statfs {}: {e}", path.display())))?;
    Ok(stat.filesystem_type().0 as i64 == BPF_FS_MAGIC)
}

/// Mounts bpffs at `root` unless it already is one.
pub fn mount_bpffs_if_needed(root: &Path) -> Result<(), DataplaneError> {
    fs::create_dir_all(root)
        .map_err(|e| DataplaneError::io(format!("creating {}", root.display()), e))?;
    if is_bpffs(root)? {
        return Ok(());
    }
    fs::create_dir_all(root)
        .map_err(|e| DataplaneError::io(format!("creating {}", root.display()), e))?;
    nix::mount::mount(
        Some("bpf"),
        root,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| DataplaneError::Bpffs(format!("mount -t bpf bpf {}: {e}", root.display())))?;
    info!(path = %root.display(), "mounted bpffs");
    Ok(())
}
