//! The Landlock domain a command runs in.
//!
//! Landlock only grants: there is no "everything but the data dir". So the rules are built by
//! walking from `/` towards each hidden path: every entry beside the way down is granted
//! whole, the hidden path itself is not, and the directories on the way are not granted
//! themselves (only their other entries), so nothing can list or open what is hidden. Entries
//! created after the command starts are not granted either (fail closed).
//!
//! `/dev` is never granted whole: only the harmless nodes and the command's own terminal, so a
//! root command cannot read the disk under the data dir through `/dev/sda`.
//! Symbolic links are never granted (the path they point to is judged where it really is).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use super::{Mode, Policy};

/// The ABI the rules are written for; a newer kernel enforces the same.
const ABI_USED: ABI = ABI::V6;

/// Device nodes a command may use. Everything else under `/dev` (disks, memory, consoles) is
/// out of reach.
const DEVICES_RW: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
];

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("cannot open {path} for a rule: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the kernel did not enforce the sandbox ({0:?})")]
    NotEnforced(RulesetStatus),
}

/// What is granted where.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant {
    pub path: PathBuf,
    pub access: Right,
}

/// Which rights a grant carries (before they are narrowed for files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Listing only: a directory on the way to a hidden path (names below it can be listed,
    /// nothing opened).
    List,
    /// Read and execute.
    Read,
    /// Everything the handled rights cover.
    Write,
}

fn rights(a: Right) -> BitFlags<AccessFs> {
    match a {
        Right::List => AccessFs::ReadDir.into(),
        Right::Read => AccessFs::from_read(ABI_USED),
        // Never device nodes: a root command could make one for the raw disk.
        Right::Write => AccessFs::from_all(ABI_USED) & !(AccessFs::MakeBlock | AccessFs::MakeChar),
    }
}

/// Is `p` hidden by the policy?
fn hidden(p: &Path, policy: &Policy) -> bool {
    policy.hide.iter().any(|h| p.starts_with(h))
        || policy.hide_prefix.iter().any(|h| {
            p.as_os_str()
                .as_bytes()
                .starts_with(h.as_os_str().as_bytes())
        })
}

/// Does a hidden path lie strictly below `dir`?
fn hides_below(dir: &Path, policy: &Policy) -> bool {
    policy.hide.iter().any(|h| h != dir && h.starts_with(dir))
        || policy
            .hide_prefix
            .iter()
            .any(|h| h.parent().is_some_and(|parent| parent.starts_with(dir)))
}

/// The grants for `policy`, walking the real filesystem. `tty` is the command's terminal.
pub fn grants(policy: &Policy, tty: Option<&Path>, scratch: Option<&Path>) -> Vec<Grant> {
    let base = match policy.mode {
        Mode::ReadOnly => Right::Read,
        Mode::ReadWrite => Right::Write,
    };
    let mut out = Vec::new();
    walk(Path::new("/"), policy, base, &mut out);
    for d in DEVICES_RW {
        out.push(Grant {
            path: PathBuf::from(d),
            access: Right::Write,
        });
    }
    // New terminals (`script`, `tmux`) and shared memory only where writing is allowed.
    for (d, access) in [
        ("/dev/pts", base),
        ("/dev/shm", base),
        ("/dev/fd", Right::Read),
    ] {
        out.push(Grant {
            path: PathBuf::from(d),
            access,
        });
    }
    if let Some(t) = tty {
        out.push(Grant {
            path: t.to_owned(),
            access: Right::Write,
        });
    }
    if let Some(s) = scratch {
        out.push(Grant {
            path: s.to_owned(),
            access: Right::Write,
        });
    }
    out
}

fn walk(dir: &Path, policy: &Policy, base: Right, out: &mut Vec<Grant>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return; // unreadable: nothing granted beneath it
    };
    out.push(Grant {
        path: dir.to_owned(),
        access: Right::List,
    });
    for e in entries.flatten() {
        let path = e.path();
        if path == Path::new("/dev") || hidden(&path, policy) {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        if ft.is_dir() && hides_below(&path, policy) {
            walk(&path, policy, base, out);
        } else {
            out.push(Grant { path, access: base });
        }
    }
}

/// Build the domain for `policy` and enforce it on this process (and what it will exec).
/// Sets `no_new_privs`. Fails unless the kernel enforces every rule.
pub fn restrict(
    policy: &Policy,
    tty: Option<&Path>,
    scratch: Option<&Path>,
) -> Result<(), RulesError> {
    let all = AccessFs::from_all(ABI_USED);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)?
        .scope(Scope::from_all(ABI_USED))?
        .create()?;
    for g in grants(policy, tty, scratch) {
        let fd = match PathFd::new(&g.path) {
            Ok(fd) => fd,
            // Gone since the walk (a temp file): nothing to grant.
            Err(_) if !g.path.exists() => continue,
            Err(e) => {
                return Err(RulesError::Open {
                    path: g.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                });
            }
        };
        let mut access = rights(g.access);
        if !g.path.is_dir() {
            access &= AccessFs::from_file(ABI_USED);
        }
        ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
    }
    let status = ruleset.restrict_self()?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(RulesError::NotEnforced(status.ruleset));
    }
    Ok(())
}

/// The terminal on stdin, stdout or stderr, if any.
pub fn own_tty() -> Option<PathBuf> {
    for fd in 0..3 {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(fd) } == 1 {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            if link.as_os_str().as_bytes().starts_with(b"/dev/") {
                return Some(link);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dir: &Path) -> Policy {
        Policy {
            mode: Mode::ReadOnly,
            hide: vec![dir.join("data")],
            hide_prefix: vec![dir.join("run-")],
            anchors: Vec::new(),
            scratch: None,
            user: None,
            unconfined: false,
            exe_fd: None,
            pins: Vec::new(),
        }
    }

    #[test]
    fn grants_skip_hidden_paths_and_their_ancestors() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().canonicalize().expect("canonical");
        for d in ["data/keys", "work", "run-1/s", "run-2"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("airlock.toml"), "x").expect("write");
        std::os::unix::fs::symlink(root.join("data"), root.join("link")).expect("symlink");
        let g = grants(&policy(&root), None, Some(&root.join("run-1/s")));
        let paths: Vec<&Path> = g.iter().map(|g| g.path.as_path()).collect();
        assert!(paths.contains(&root.join("work").as_path()));
        assert!(paths.contains(&root.join("airlock.toml").as_path()));
        for never in ["data", "data/keys", "run-2", "link", "run-1"] {
            assert!(
                !paths.contains(&root.join(never).as_path()),
                "{never} granted"
            );
        }
        // Ancestors of hidden paths are walked and may only be listed.
        for x in &g {
            if root.starts_with(&x.path) {
                assert_eq!(x.access, Right::List, "{}", x.path.display());
            }
        }
        // The scratch dir is the one thing under a hidden prefix that is granted, writable.
        assert!(
            g.iter()
                .any(|x| x.path == root.join("run-1/s") && x.access == Right::Write)
        );
        assert!(!paths.iter().any(|p| p.starts_with("/dev/sda")));
        assert!(!paths.contains(&Path::new("/dev")));
    }
}
