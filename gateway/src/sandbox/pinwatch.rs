//! Watching the approved scripts' paths while the command runs.
//!
//! A pinned script is a read-only bind mount at its path in the command's namespace
//! ([`super::mask`]): writes to the file cannot reach the command. But the kernel detaches a
//! mount whose mount point is renamed over or deleted from *another* namespace, so replacing
//! the file (or a directory above it) by rename from outside would show the command the new
//! file. The guard therefore watches, with inotify, the directory entry of the file and of
//! every directory above it; any rename, delete or create of one of those names stops the
//! command at once, before it can read what replaced them.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, PathBuf};

/// An inotify descriptor and the (watch, name) pairs that matter.
pub struct PinWatch {
    pub fd: libc::c_int,
    names: Vec<(libc::c_int, OsString)>,
    paths: Vec<PathBuf>,
}

const EVENTS: u32 = libc::IN_MOVED_FROM | libc::IN_MOVED_TO | libc::IN_DELETE | libc::IN_CREATE;

/// Watch every pinned path; `None` when there are none. `Err` says which directory could not
/// be watched (the command must not run then).
pub fn watch(pins: &[(PathBuf, PathBuf)]) -> Result<Option<PinWatch>, String> {
    if pins.is_empty() {
        return Ok(None);
    }
    // SAFETY: plain syscall.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return Err(format!(
            "cannot watch the approved scripts: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut w = PinWatch {
        fd,
        names: Vec::new(),
        paths: Vec::new(),
    };
    for (_, at) in pins {
        w.paths.push(at.clone());
        let mut dir = PathBuf::from("/");
        for c in at.components() {
            let Component::Normal(name) = c else { continue };
            let cdir = CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
            // SAFETY: NUL-terminated path that outlives the call.
            let wd = unsafe { libc::inotify_add_watch(fd, cdir.as_ptr(), EVENTS) };
            if wd < 0 {
                return Err(format!(
                    "cannot watch {} for the approved script {}: {}",
                    dir.display(),
                    at.display(),
                    std::io::Error::last_os_error()
                ));
            }
            w.names.push((wd, name.to_owned()));
            dir.push(name);
        }
    }
    Ok(Some(w))
}

impl PinWatch {
    /// Read what happened; `Some(path)` when a pinned path's identity changed.
    pub fn changed(&self) -> Option<&PathBuf> {
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: read into a buffer we own, of its length.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return None;
            }
            let mut off = 0usize;
            let head = std::mem::size_of::<libc::inotify_event>();
            while off + head <= n as usize {
                // SAFETY: the kernel wrote whole events; read_unaligned copes with alignment.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off).cast()) };
                let len = ev.len as usize;
                let raw = &buf[off + head..(off + head + len).min(n as usize)];
                let name = raw.split(|&b| b == 0).next().unwrap_or_default();
                if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                    return self.paths.first();
                }
                if let Some(i) = self
                    .names
                    .iter()
                    .position(|(wd, n)| *wd == ev.wd && n.as_bytes() == name)
                {
                    // Which pinned path this name belongs to: the first whose components it is.
                    let hit = &self.names[i].1;
                    return self
                        .paths
                        .iter()
                        .find(|p| p.components().any(|c| c.as_os_str() == hit.as_os_str()))
                        .or(self.paths.first());
                }
                off += head + len;
            }
        }
    }
}
