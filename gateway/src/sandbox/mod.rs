//! Containment: what a command run by the gateway can reach, enforced by the kernel.
//!
//! The classifier only *judges* a command. This module makes its mistakes survivable: every
//! command on a `local` target (and, with a runner, on an upstream host) starts through
//! `airlock sandbox-exec`, which
//! - keeps a **guard** process between the gateway and the command: it ends every process the
//!   command started when the command ends, when the gateway asks, or when the gateway dies
//!   ([`guard`]);
//! - covers the gateway's own files (data dir, config, keys, database, the other sessions'
//!   private dirs) in a mount namespace of the command's own ([`mask`]);
//! - applies a **Landlock** domain to the command ([`rules`]): mounts cannot change (the
//!   covers stay), raw devices are out of reach, signals and abstract UNIX sockets are scoped
//!   to the command's own domain; where no mount namespace can be made, Landlock hides the
//!   gateway's files itself;
//! - in [`Mode::ReadOnly`] (what runs without a human) makes the whole filesystem read-only
//!   except `/dev/null`, the command's terminal and its scratch dir, and drops every
//!   capability, and it can make no socket but netlink ([`seccomp`]); in [`Mode::ReadWrite`]
//!   root keeps only the capabilities that cannot undo the sandbox;
//! - sets `no_new_privs`, and drops to the target's `user` when one is configured ([`privs`]).
//!
//! The gateway side ([`Sandbox`]) only builds the helper's argument list; the helper itself
//! runs before any runtime starts, so it can fork safely.
//!
//! Owns: the helper's command line, the probe that says whether the kernel can do this, and the
//! orphan sweep at start-up ([`orphans`]).

pub mod guard;
pub mod mask;
pub mod orphans;
pub mod pinwatch;
pub mod privs;
pub mod rules;
pub mod seccomp;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The helper's sub-command word.
pub const SUBCOMMAND: &str = "sandbox-exec";

/// The small helper binary's file name, looked for next to `airlock`.
pub const HELPER_BIN: &str = "airlock-sandbox";

/// Identity of the helper's code in this build (gateway/build.rs): `airlock` uses the
/// `airlock-sandbox` next to it only when that binary prints the same.
pub const HELPER_BUILD: &str = env!("AIRLOCK_SANDBOX_BUILD");

/// Lowest Landlock ABI the sandbox accepts: 6 is the first with signal and abstract-socket
/// scoping, without which a command could signal the gateway's other sessions.
pub const MIN_ABI: i32 = 6;

/// Exit status of a command whose sandbox could not be applied (it never ran): the same
/// EX_NOPERM an agent gets for every other deny.
pub const SANDBOX_FAILED_EXIT: i32 = 77;

/// What a command may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ran without a human (low, or whitelisted at low): read anything not hidden, write only
    /// `/dev/null`, its terminal and its scratch dir; no capabilities.
    ReadOnly,
    /// Approved by reviewers (or whitelisted above low): write where the user may, still
    /// inside the domain.
    ReadWrite,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read-only",
            Mode::ReadWrite => "read-write",
        }
    }
}

/// Everything the helper is told: the command line of `airlock sandbox-exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Paths nobody inside may read or write (exact paths and everything beneath).
    pub hide: Vec<PathBuf>,
    /// Path prefixes hidden the same way (`/tmp/airlock-run-` hides every gateway's run dir).
    pub hide_prefix: Vec<PathBuf>,
    /// Paths that must still exist (the data dir, config and keys where they were at start):
    /// covers go by path, so one that moved would go uncovered — the command does not run.
    pub anchors: Vec<PathBuf>,
    /// The scratch dir: writable in both modes, `$TMPDIR` for the command.
    pub scratch: Option<Scratch>,
    /// Drop to this user (and its groups) before exec; needs root.
    pub user: Option<String>,
    /// No Landlock (the operator's explicit `unconfined = true`); the guard, the user drop
    /// and `no_new_privs` still apply.
    pub unconfined: bool,
    /// Hand the command this binary open on this descriptor (the gated shell starts its
    /// read-only lines from it: `/proc/self/fd/N` cannot be replaced on disk).
    pub exe_fd: Option<i32>,
    /// Files shown read-only at a path for the command's whole run: (the gateway's copy of
    /// the approved bytes, the path the command runs). A script reviewers approved cannot be
    /// rewritten under the command (see `crate::scripts`).
    pub pins: Vec<(PathBuf, PathBuf)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "usage: airlock sandbox-exec [--read-only] [--hide PATH]… [--hide-prefix PATH]… [--anchor PATH]… [--scratch DIR | --scratch-in DIR] [--user NAME] [--unconfined] [--exe-fd N] [--pin COPY PATH]… -- PROGRAM [ARG…] ({0})"
    )]
    Usage(String),
}

impl Policy {
    /// The helper's arguments, up to and including `--`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![SUBCOMMAND.into()];
        if self.mode == Mode::ReadOnly {
            a.push("--read-only".into());
        }
        for h in &self.hide {
            a.push("--hide".into());
            a.push(h.into());
        }
        for h in &self.hide_prefix {
            a.push("--hide-prefix".into());
            a.push(h.into());
        }
        for h in &self.anchors {
            a.push("--anchor".into());
            a.push(h.into());
        }
        match &self.scratch {
            Some(Scratch::Use(s)) => {
                a.push("--scratch".into());
                a.push(s.into());
            }
            Some(Scratch::MakeIn(s)) => {
                a.push("--scratch-in".into());
                a.push(s.into());
            }
            None => {}
        }
        if let Some(u) = &self.user {
            a.push("--user".into());
            a.push(u.into());
        }
        if self.unconfined {
            a.push("--unconfined".into());
        }
        if let Some(fd) = self.exe_fd {
            a.push("--exe-fd".into());
            a.push(fd.to_string().into());
        }
        for (copy, at) in &self.pins {
            a.push("--pin".into());
            a.push(copy.into());
            a.push(at.into());
        }
        a.push("--".into());
        a
    }

    /// Parse what follows the sub-command word: the policy and the program's argv.
    pub fn parse(args: &[OsString]) -> Result<(Policy, Vec<OsString>), PolicyError> {
        let mut p = Policy {
            mode: Mode::ReadWrite,
            hide: Vec::new(),
            hide_prefix: Vec::new(),
            anchors: Vec::new(),
            scratch: None,
            user: None,
            unconfined: false,
            exe_fd: None,
            pins: Vec::new(),
        };
        let mut it = args.iter();
        let value = |it: &mut std::slice::Iter<'_, OsString>, flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| PolicyError::Usage(format!("{flag} needs a value")))
        };
        while let Some(a) = it.next() {
            match a.to_str() {
                Some("--") => {
                    let rest: Vec<OsString> = it.cloned().collect();
                    if rest.is_empty() {
                        return Err(PolicyError::Usage("no program given".into()));
                    }
                    return Ok((p, rest));
                }
                Some("--read-only") => p.mode = Mode::ReadOnly,
                Some("--unconfined") => p.unconfined = true,
                Some("--exe-fd") => {
                    let v = value(&mut it, "--exe-fd")?;
                    p.exe_fd = Some(
                        v.to_str()
                            .and_then(|s| s.parse().ok())
                            .filter(|n| (3..1024).contains(n))
                            .ok_or_else(|| {
                                PolicyError::Usage(
                                    "--exe-fd needs a descriptor number from 3 to 1023".into(),
                                )
                            })?,
                    );
                }
                Some("--pin") => {
                    let copy = absolute(value(&mut it, "--pin")?)?;
                    let at = absolute(value(&mut it, "--pin")?)?;
                    p.pins.push((copy, at));
                }
                Some("--hide") => p.hide.push(absolute(value(&mut it, "--hide")?)?),
                Some("--hide-prefix") => p
                    .hide_prefix
                    .push(absolute(value(&mut it, "--hide-prefix")?)?),
                Some("--anchor") => p.anchors.push(absolute(value(&mut it, "--anchor")?)?),
                Some("--scratch") => {
                    p.scratch = Some(Scratch::Use(absolute(value(&mut it, "--scratch")?)?))
                }
                Some("--scratch-in") => {
                    p.scratch = Some(Scratch::MakeIn(absolute(value(&mut it, "--scratch-in")?)?))
                }
                Some("--user") => {
                    p.user = Some(
                        value(&mut it, "--user")?
                            .into_string()
                            .map_err(|_| PolicyError::Usage("--user is not UTF-8".into()))?,
                    )
                }
                _ => {
                    return Err(PolicyError::Usage(format!(
                        "unknown argument {}",
                        a.to_string_lossy()
                    )));
                }
            }
        }
        Err(PolicyError::Usage("missing `--` before the program".into()))
    }
}

fn absolute(v: OsString) -> Result<PathBuf, PolicyError> {
    let p = PathBuf::from(v);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(PolicyError::Usage(format!(
            "{} is not an absolute path",
            p.display()
        )))
    }
}

/// Where a command's scratch dir comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scratch {
    /// An existing dir (a gated shell's, shared by its lines).
    Use(PathBuf),
    /// A fresh private dir the guard makes inside this one and removes when the command ends.
    MakeIn(PathBuf),
}

/// Why the kernel cannot sandbox commands here.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    #[error("Landlock is not available ({0}): the kernel lacks it or it is not enabled (lsm=)")]
    NoLandlock(String),
    #[error(
        "Landlock ABI {found} is too old: Airlock needs ABI {MIN_ABI} (Linux 6.12) for signal and socket scoping"
    )]
    TooOld { found: i32 },
}

/// Ask the kernel which Landlock ABI it offers; `Err` says why commands cannot be sandboxed.
pub fn probe() -> Result<i32, Unavailable> {
    // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // SAFETY: the version query reads no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if v < 0 {
        return Err(Unavailable::NoLandlock(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    let abi = v as i32;
    if abi < MIN_ABI {
        return Err(Unavailable::TooOld { found: abi });
    }
    Ok(abi)
}

/// The gateway's side: where the helper is, what it hides, where sessions' scratch dirs go.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The `airlock` binary's path: what commands inside a sandbox run (`no-editor`, the
    /// gated shell's read-only lines).
    pub exe: PathBuf,
    /// What the gateway itself starts: `/proc/<gateway>/fd/<n>`, the helper binary opened at
    /// start-up (`airlock-sandbox` when it is next to `airlock` and from the same build, else
    /// `airlock` itself). An approved command that replaces either file on disk cannot make the
    /// gateway run its program outside the sandbox.
    pub launch: PathBuf,
    /// Keeps [`Sandbox::launch`] valid.
    pub exe_file: std::sync::Arc<std::fs::File>,
    /// The gateway's own files (data dir, config, keys, database files).
    pub hide: Vec<PathBuf>,
    /// Secret files the config names as given (the reviewer listener's TLS files, the sign-on
    /// client secret): where they really are is worked out for every command
    /// ([`secret_covers`]), since a rotation can re-point them while the gateway runs.
    pub secrets: Vec<PathBuf>,
    /// The data dir, config file and keys as they were at start. Covers are placed by path, so
    /// if an approved command moved one (renamed a parent directory), later commands would
    /// find nothing to cover there: [`Sandbox::moved`] says so, and nothing runs.
    pub anchors: Vec<Anchor>,
    /// Every gateway's run dir on this host: `<tmp>/airlock-run-` (one per uid).
    pub run_prefix: PathBuf,
    /// This gateway's run dir, holding one scratch dir per session.
    pub run_dir: PathBuf,
}

/// One of the gateway's own files as it was at start: its real path and, when it must stay
/// the very same file, its device and inode — so one moved away with something else put at
/// its path is caught too. (The config file has none: editors replace it.)
#[derive(Debug, Clone)]
pub struct Anchor {
    pub path: PathBuf,
    pub identity: Option<(u64, u64)>,
}

impl Anchor {
    /// `path` as it is now, if it exists; with its identity when `same_file`.
    pub fn now(path: PathBuf, same_file: bool) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let m = path.symlink_metadata().ok()?;
        let identity = same_file.then(|| (m.dev(), m.ino()));
        Some(Self { path, identity })
    }

    fn in_place(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        self.path.symlink_metadata().is_ok_and(|m| {
            self.identity
                .is_none_or(|(dev, ino)| m.dev() == dev && m.ino() == ino)
        })
    }
}

impl Sandbox {
    /// The first of [`Sandbox::anchors`] that is no longer the file it was at start.
    pub fn moved(&self) -> Option<&Path> {
        self.anchors
            .iter()
            .find(|a| !a.in_place())
            .map(|a| a.path.as_path())
    }

    /// The helper's argv prefix for `mode`, with `scratch` writable.
    pub fn policy(
        &self,
        mode: Mode,
        scratch: Option<Scratch>,
        user: Option<&str>,
        unconfined: bool,
    ) -> Policy {
        let mut hide = self.hide.clone();
        hide.extend(secret_covers(&self.secrets));
        Policy {
            mode,
            hide,
            hide_prefix: vec![self.run_prefix.clone()],
            anchors: self.anchors.iter().map(|a| a.path.clone()).collect(),
            scratch,
            user: user.map(str::to_owned),
            unconfined,
            exe_fd: None,
            pins: Vec::new(),
        }
    }
}

/// Where `secrets` really are now: each file a link resolves to, and, for a link, the
/// directory it points into when that holds nothing but files — certbot's `archive/NAME/`,
/// where a renewal writes `privkeyN+1.pem`, or Kubernetes' `..TIMESTAMP/` behind `..data`.
pub fn secret_covers(secrets: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in secrets {
        let real = canonical(f);
        let linked = std::fs::symlink_metadata(f).is_ok_and(|m| m.file_type().is_symlink());
        if linked
            && let Some(dir) = real.parent()
            && files_only(dir)
        {
            out.push(dir.to_path_buf());
        }
        out.push(real);
    }
    out
}

/// A directory of key files, not one with anything else under it (nor `/`): hiding it hides
/// nothing commands need.
fn files_only(dir: &Path) -> bool {
    dir.parent().is_some()
        && std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|e| e.file_type().is_ok_and(|t| t.is_file()))
        })
}

/// Canonical form of a path that may not exist yet: its nearest existing ancestor resolved,
/// the rest appended. Hiding works on real locations, so a symlinked data dir is still hidden.
pub fn canonical(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) if parent != p => canonical(parent).join(name),
        _ => p.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips_through_its_command_line() {
        let p = Policy {
            mode: Mode::ReadOnly,
            hide: vec!["/srv/airlock".into(), "/etc/airlock.toml".into()],
            hide_prefix: vec!["/tmp/airlock-run-".into()],
            anchors: vec!["/srv/airlock".into()],
            scratch: Some(Scratch::MakeIn("/tmp/airlock-run-0".into())),
            user: Some("deploy".into()),
            unconfined: false,
            exe_fd: Some(9),
            pins: vec![("/tmp/airlock-run-0/pin-1".into(), "/srv/x.sh".into())],
        };
        let mut args = p.to_args();
        args.remove(0);
        args.push("bash".into());
        args.push("-c".into());
        let (q, rest) = Policy::parse(&args).expect("parses");
        assert_eq!(q, p);
        assert_eq!(rest, vec![OsString::from("bash"), OsString::from("-c")]);
    }

    #[test]
    fn bad_command_lines_are_refused() {
        for bad in [
            vec!["--hide", "relative", "--", "x"],
            vec!["--read-only", "x"],
            vec!["--bogus", "--", "x"],
            vec!["--"],
            vec!["--scratch"],
        ] {
            let args: Vec<OsString> = bad.iter().map(OsString::from).collect();
            assert!(Policy::parse(&args).is_err(), "{bad:?}");
        }
    }
}
