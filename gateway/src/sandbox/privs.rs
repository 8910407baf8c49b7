//! Privileges a command starts with: the target's `user` (with its groups) when the gateway
//! runs as root, no capabilities at all for what runs without a human, and `no_new_privs`
//! always (setuid binaries do not raise what the sandbox lowered).
//!
//! Root inside a Landlock domain is still root for everything Landlock does not cover (kernel
//! modules, raw I/O, BPF): hence capabilities are dropped in read-only mode, and a production
//! local target should name a `user`.

use std::ffi::CString;

#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("dropping to user {user:?} needs the gateway to run as root")]
    NotRoot { user: String },
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
}

fn sys(what: &'static str, rc: libc::c_int) -> Result<(), PrivError> {
    if rc < 0 {
        return Err(PrivError::Sys {
            what,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// A user as the password database has it.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Look `name` up in the password database.
pub fn lookup(name: &str) -> Result<User, PrivError> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(User {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir.to_string_lossy().into_owned(),
        }),
        _ => Err(PrivError::UnknownUser(name.to_owned())),
    }
}

/// Become `user`: its supplementary groups, its group, then its uid (in that order, or the
/// later steps would lack the right to do the earlier).
pub fn become_user(user: &User) -> Result<(), PrivError> {
    // SAFETY: plain syscalls on integers and a NUL-terminated name.
    unsafe {
        if libc::geteuid() != 0 {
            return Err(PrivError::NotRoot {
                user: user.name.clone(),
            });
        }
        let name = CString::new(user.name.clone())
            .map_err(|_| PrivError::UnknownUser(user.name.clone()))?;
        sys("initgroups", libc::initgroups(name.as_ptr(), user.gid))?;
        sys("setgid", libc::setgid(user.gid))?;
        sys("setuid", libc::setuid(user.uid))?;
        // Paranoia: root must not be recoverable.
        if user.uid != 0 && libc::setuid(0) == 0 {
            return Err(PrivError::Sys {
                what: "setuid(0) still works after dropping",
                source: std::io::Error::other("privileges not dropped"),
            });
        }
    }
    Ok(())
}

/// Set `no_new_privs`: nothing exec'd later gains privileges (setuid bits, file caps).
pub fn no_new_privs() -> Result<(), PrivError> {
    // SAFETY: prctl with integer arguments.
    sys("prctl(PR_SET_NO_NEW_PRIVS)", unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    })
}

/// Capabilities that could undo the sandbox for a root command: open files by handle past the
/// covers (`DAC_READ_SEARCH`), namespaces and mounts (`SYS_ADMIN`), device nodes for the raw
/// disk (`MKNOD`, `SYS_RAWIO`), kernel code (`SYS_MODULE`, `BPF`, `PERFMON`), other processes
/// (`SYS_PTRACE`), the security modules themselves (`MAC_ADMIN`, `MAC_OVERRIDE`), and the
/// machine (`SYS_BOOT`, `SYSLOG`).
const ESCAPE_CAPS: &[libc::c_int] = &[
    2,  // CAP_DAC_READ_SEARCH
    16, // CAP_SYS_MODULE
    17, // CAP_SYS_RAWIO
    19, // CAP_SYS_PTRACE
    21, // CAP_SYS_ADMIN
    22, // CAP_SYS_BOOT
    27, // CAP_MKNOD
    32, // CAP_MAC_OVERRIDE
    33, // CAP_MAC_ADMIN
    34, // CAP_SYSLOG
    38, // CAP_PERFMON
    39, // CAP_BPF
];

/// Drop `cap` from the bounding set; `Ok(false)` if this kernel does not know it.
fn drop_bounding(cap: libc::c_int) -> Result<bool, PrivError> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) {
        return Ok(false);
    }
    Err(PrivError::Sys {
        what: "prctl(PR_CAPBSET_DROP)",
        source: e,
    })
}

/// Drop [`ESCAPE_CAPS`] from the bounding set and from this process (an approved root command
/// keeps what administration needs: owners, modes, setuid, binding low ports).
pub fn drop_escape_capabilities() -> Result<(), PrivError> {
    for &cap in ESCAPE_CAPS {
        drop_bounding(cap)?;
    }
    // Execve recomputes the sets from the bounding set for root, so the command starts
    // without them; clear them here too for the moments before exec.
    let mut set = caps_get()?;
    for &cap in ESCAPE_CAPS {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        set[word].effective &= !bit;
        set[word].permitted &= !bit;
        set[word].inheritable &= !bit;
    }
    caps_set(&set)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

fn caps_get() -> Result<[CapData; 2], PrivError> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills the two structs we own.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    sys("capget", rc as libc::c_int)?;
    Ok(data)
}

fn caps_set(data: &[CapData; 2]) -> Result<(), PrivError> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    // SAFETY: capset reads the two structs we own.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    sys("capset", rc as libc::c_int)
}

/// Drop every capability: the bounding set (so exec cannot give them back, even to uid 0),
/// then the process's own sets.
pub fn drop_all_capabilities() -> Result<(), PrivError> {
    for cap in 0..64 {
        if !drop_bounding(cap)? {
            break; // past the last capability this kernel knows
        }
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        // Ambient capabilities would survive exec: clear them.
        let _ = libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    caps_set(&[CapData::default(); 2])
}
