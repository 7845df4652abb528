//! The interface a pinned XDP link is attached to.
//!
//! Hand-written because aya 0.14's `LinkInfo` does not expose the XDP
//! member of `bpf_link_info`, and adoption must tell a live link from one
//! whose interface was deleted (the kernel then reports ifindex 0).
use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path};

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

#[repr(C)]
#[derive(Default)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoByFdAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_link_info`: type, id, prog_id, then an 8-aligned union whose
/// XDP member starts with `__u32 ifindex`.
#[repr(C, align(8))]
struct LinkInfoRaw {
    type_: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
    union_: [u8; 112],
}

/// What the kernel says about a pinned link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedLinkInfo {
    pub link_id: u32,
    pub prog_id: u32,
    /// 0 when the interface is gone.
    pub ifindex: u32,
}

pub fn pinned_link_info(path: &Path) -> std::io::Result<PinnedLinkInfo> {
    let cpath = CString::new(path.as_os_str().as_bytes())?;
    let mut get = ObjGetAttr {
        pathname: cpath.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: BPF_OBJ_GET reads the attr (a valid NUL-terminated path).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            &mut get as *mut ObjGetAttr,
            size_of::<ObjGetAttr>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = fd as libc::c_int;
    let mut info = LinkInfoRaw {
        type_: 0,
        id: 0,
        prog_id: 0,
        _pad: 0,
        union_: [0; 112],
    };
    let mut attr = InfoByFdAttr {
        bpf_fd: fd as u32,
        info_len: size_of::<LinkInfoRaw>() as u32,
        info: &mut info as *mut LinkInfoRaw as u64,
    };
    // SAFETY: the kernel writes at most info_len bytes into `info`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut attr as *mut InfoByFdAttr,
            size_of::<InfoByFdAttr>(),
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd came from BPF_OBJ_GET above and is closed exactly once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    Ok(PinnedLinkInfo {
        link_id: info.id,
        prog_id: info.prog_id,
        ifindex: u32::from_ne_bytes([
            info.union_[0],
            info.union_[1],
            info.union_[2],
            info.union_[3],
        ]),
    })
}
