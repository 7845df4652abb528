//! The control API's Unix socket.
use std::path::Path;

use tokio::net::UnixListener;

use super::{StartError, io};

/// Binds the control API's Unix socket: mode 0600 from the start (the umask
/// is tightened around `bind`), in a directory made if missing. A stale
/// socket file of an earlier run is replaced; any other file is an error.
pub fn bind_api_socket(path: &Path) -> Result<UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(io(format!("removing stale {}", path.display())))?
        }
        Ok(_) => {
            return Err(StartError::Io {
                context: format!("{} exists and is not a socket", path.display()),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            });
        }
        Err(_) => {}
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io(format!("binding {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod 0600 {}", path.display())))?;
    Ok(listener)
}
