//! Hiding the gateway's files by covering them, in the command's own mount namespace.
//!
//! Landlock can only grant, never carve a path out of a grant, so hiding `/var/lib/airlock`
//! with Landlock alone would also take away writing anywhere in `/var/lib` (and listing `/`).
//! Instead the command gets a private mount namespace in which every hidden directory is
//! covered by an empty read-only tmpfs and every hidden file by `/dev/null`; the scratch dir,
//! when it lies under a covered directory, is bound back in place. Landlock then forbids the
//! command to change mounts, so it cannot uncover them.
//!
//! Root makes the namespace directly; another user makes it inside a user namespace of its
//! own (its uid mapped to itself). If neither is possible, [`mask`] fails and the caller falls
//! back to hiding with Landlock alone ([`super::rules`]).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::Policy;

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct MaskError {
    what: &'static str,
    path: String,
    source: std::io::Error,
}

/// How masking went.
#[derive(Debug)]
pub enum Masked {
    /// Every hidden path is covered.
    Covered,
    /// No mount namespace could be made here; nothing was changed.
    Unavailable(MaskError),
}

fn err(what: &'static str, path: &Path) -> MaskError {
    MaskError {
        what,
        path: path.display().to_string(),
        source: std::io::Error::last_os_error(),
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// What to cover: the hidden paths that exist, and the entries matching a hidden prefix.
pub fn targets(policy: &Policy) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = policy
        .hide
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .cloned()
        .collect();
    for prefix in &policy.hide_prefix {
        let Some(parent) = prefix.parent() else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.as_os_str()
                .as_bytes()
                .starts_with(prefix.as_os_str().as_bytes())
            {
                out.push(p);
            }
        }
    }
    // A path under another covered one needs no cover of its own (and could not get one
    // once its parent is covered).
    out.sort();
    let mut kept: Vec<PathBuf> = Vec::new();
    for p in out {
        if !kept.iter().any(|k| p.starts_with(k)) {
            kept.push(p);
        }
    }
    kept
}

fn write_file(path: &str, text: &str) -> Result<(), MaskError> {
    std::fs::write(path, text).map_err(|source| MaskError {
        what: "cannot write",
        path: path.to_owned(),
        source,
    })
}

/// Enter a private mount namespace: directly when this process may (root with
/// CAP_SYS_ADMIN), else through a user namespace of its own with its ids mapped to themselves
/// (which needs no capability: a non-root gateway, or a root shell that already dropped it).
fn unshare() -> Result<(), MaskError> {
    // SAFETY: plain syscalls; this process is single-threaded.
    unsafe {
        let (uid, gid) = (libc::geteuid(), libc::getegid());
        if libc::unshare(libc::CLONE_NEWNS) < 0 {
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) < 0 {
                return Err(err("unshare(CLONE_NEWUSER|CLONE_NEWNS)", Path::new("/")));
            }
            write_file("/proc/self/setgroups", "deny")?;
            write_file("/proc/self/uid_map", &format!("{uid} {uid} 1"))?;
            write_file("/proc/self/gid_map", &format!("{gid} {gid} 1"))?;
        }
        let root = cstr(Path::new("/"));
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) < 0
        {
            return Err(err("cannot make mounts private under", Path::new("/")));
        }
    }
    Ok(())
}

fn mount_tmpfs(at: &Path, mode: &str) -> Result<(), MaskError> {
    let (src, fstype) = (cstr(Path::new("tmpfs")), cstr(Path::new("tmpfs")));
    let data = CString::new(format!("size=64k,mode={mode}")).unwrap_or_default();
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            cstr(at).as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data.as_ptr().cast(),
        )
    };
    if rc < 0 {
        return Err(err("cannot cover", at));
    }
    Ok(())
}

fn bind(from: &Path, to: &Path) -> Result<(), MaskError> {
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            cstr(from).as_ptr(),
            cstr(to).as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(err("cannot bind over", to));
    }
    Ok(())
}

fn read_only(at: &Path, bind: bool) -> Result<(), MaskError> {
    let flags = libc::MS_RDONLY
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC
        | if bind { libc::MS_BIND } else { 0 };
    remount(at, flags, "cannot make read-only")
}

/// Remount the mount at `at` with `flags` (MS_REMOUNT added).
fn remount(at: &Path, flags: libc::c_ulong, what: &'static str) -> Result<(), MaskError> {
    // SAFETY: NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            cstr(at).as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT | flags,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(err(what, at));
    }
    Ok(())
}

/// Show `copy` (the gateway's copy of approved bytes) at `at`, read-only, for this namespace:
/// whatever is written to the file at `at` meanwhile, this command reads the approved bytes.
/// Not `noexec`: `./deploy.sh` must still run.
fn pin(copy: &Path, at: &Path) -> Result<(), MaskError> {
    bind(copy, at)?;
    let options = mount_options(at).unwrap_or_default();
    remount(
        at,
        libc::MS_BIND | libc::MS_RDONLY | kept_flags(&options),
        "cannot make the approved copy read-only at",
    )
}

/// The options of the mount at exactly `at` (the last one: the pin just made).
fn mount_options(at: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 5 && unescape(f[4]).as_path() == at).then(|| f[5].to_owned())
    })
}

/// Mount flags a remount must keep (in a user namespace they are locked: dropping one fails).
fn kept_flags(options: &str) -> libc::c_ulong {
    options.split(',').fold(0, |f, o| {
        f | match o {
            "nosuid" => libc::MS_NOSUID,
            "nodev" => libc::MS_NODEV,
            "noexec" => libc::MS_NOEXEC,
            "noatime" => libc::MS_NOATIME,
            "nodiratime" => libc::MS_NODIRATIME,
            "relatime" => libc::MS_RELATIME,
            "strictatime" => libc::MS_STRICTATIME,
            _ => 0,
        }
    })
}

/// Undo the octal escapes of a mountinfo path (`\040` for a space).
fn unescape(p: &str) -> PathBuf {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&p[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Make every mount in this namespace for which `keep_writable` says no read-only.
fn remount_read_only(keep_writable: impl Fn(&Path) -> bool) -> Result<(), MaskError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| MaskError {
        what: "cannot read",
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    for line in info.lines() {
        // id parent major:minor root mount-point options …
        let f: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(options)) = (f.get(4), f.get(5)) else {
            continue;
        };
        let point = unescape(point);
        if keep_writable(&point) {
            continue;
        }
        let flags = libc::MS_BIND | libc::MS_RDONLY | kept_flags(options);
        if let Err(e) = remount(&point, flags, "cannot make read-only") {
            // A mount point the command cannot reach anyway (covered, gone) is no way out.
            if matches!(
                e.source.raw_os_error(),
                Some(libc::ENOENT) | Some(libc::EACCES)
            ) {
                continue;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// The kernel's knobs, read-only for every command: `core_pattern` (a `|program` there runs as
/// root outside every namespace), `sysrq-trigger`, modprobe's path, `/sys`.
const KERNEL_RO: &[&str] = &[
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/fs",
    "/sys",
];

/// Is this process in the first user namespace (where root can write the kernel's knobs)?
fn initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(false)
}

fn protect_kernel() -> Result<(), MaskError> {
    for k in KERNEL_RO {
        let p = Path::new(k);
        if p.symlink_metadata().is_err() {
            continue;
        }
        // In a user namespace of its own the kernel refuses to re-bind these (they hold
        // mounts locked by the parent namespace) — and nothing there can write them anyway.
        // The mounts beneath (cgroup hierarchies under /sys/fs/cgroup) go read-only too.
        let done = bind(p, p)
            .and_then(|()| read_only(p, true))
            .and_then(|()| remount_read_only(|m| !m.starts_with(p)));
        if let Err(e) = done
            && initial_user_namespace()
        {
            return Err(e);
        }
    }
    Ok(())
}

/// Read-only mode: make every mount in this namespace read-only except `scratch` (and
/// what is under it). Landlock stops writes to files; this also stops what Landlock does not
/// cover — changing modes, owners and times (`chmod`, `chown`, `touch -d`) of files the
/// command's user owns. Device nodes stay usable (`/dev/null`, the terminal).
fn all_read_only(scratch: Option<&Path>) -> Result<(), MaskError> {
    remount_read_only(|p| scratch.is_some_and(|s| p.starts_with(s)))
}

/// Cover every hidden path for this process and what it execs; keep `scratch` reachable; make
/// the kernel's knobs read-only; in read-only mode make every other mount read-only.
/// `Err` means the namespace was made but a step failed: the command must not run.
pub fn mask(policy: &Policy, scratch: Option<&Path>) -> Result<Masked, MaskError> {
    // A cover goes by path: if the gateway's own files moved, there is nothing to cover at
    // the old path and the new one is open. Refuse rather than run uncovered. (Inside a gated
    // shell's namespace, where a covered directory is already an empty one, a file under it
    // is not there either: that is the cover, not a move.)
    let present = |p: &Path| p.symlink_metadata().is_ok();
    let anchored = |p: &&PathBuf| {
        present(p)
            || p.ancestors()
                .skip(1)
                .any(|a| policy.hide.iter().any(|h| h == a) && present(a))
    };
    if let Some(gone) = policy.anchors.iter().find(|p| !anchored(p)) {
        return Err(MaskError {
            what: "the gateway's own files moved or were removed; refusing to run without their cover:",
            path: gone.display().to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let covers = targets(policy);
    let whole_ro = policy.mode == super::Mode::ReadOnly;
    if let Err(e) = unshare() {
        return Ok(Masked::Unavailable(e));
    }
    // The approved scripts first: their paths may lie anywhere, even under a cover.
    for (copy, at) in &policy.pins {
        pin(copy, at)?;
    }
    // Opened in the new namespace (a bind's source must be in it), before its parent is
    // covered, so it can be bound back.
    let kept: Option<OwnedFd> = match scratch {
        Some(s) => Some(
            std::fs::File::open(s)
                .map(OwnedFd::from)
                .map_err(|source| MaskError {
                    what: "cannot open the scratch dir",
                    path: s.display().to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    for c in &covers {
        let is_dir = c.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false);
        if !is_dir {
            bind(Path::new("/dev/null"), c)?;
            read_only(c, true)?;
            continue;
        }
        match (scratch, &kept) {
            (Some(s), Some(fd)) if s.starts_with(c) => {
                mount_tmpfs(c, "0711")?;
                let inside = s.strip_prefix(c).unwrap_or(Path::new(""));
                let target = c.join(inside);
                std::fs::create_dir_all(&target).map_err(|source| MaskError {
                    what: "cannot make",
                    path: target.display().to_string(),
                    source,
                })?;
                bind(
                    Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())),
                    &target,
                )?;
                read_only(c, false)?;
            }
            _ => {
                mount_tmpfs(c, "0000")?;
                read_only(c, false)?;
            }
        }
    }
    if whole_ro {
        all_read_only(scratch)?;
    } else {
        protect_kernel()?;
    }
    Ok(Masked::Covered)
}
