//! `[[target]]`: each kind checked here, so `serve` refuses a bad one at start.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use serde::Deserialize;

use super::{Target, TargetKind, valid_name};
use crate::environment::is_pinned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TargetFile {
    pub(super) name: String,
    kind: String,
    /// Refused with a message: every command runs under bash now.
    #[serde(default)]
    shell: Option<PathBuf>,
    #[serde(default)]
    bash: Option<PathBuf>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    /// kind = "ssh": `host:port` of the upstream.
    #[serde(default)]
    address: Option<String>,
    /// kind = "ssh": the login on the upstream. kind = "local": the user commands run as
    /// (the gateway must run as root).
    #[serde(default)]
    user: Option<String>,
    /// kind = "local": run without the Landlock sandbox (loudly logged).
    #[serde(default)]
    unconfined: Option<bool>,
    /// kind = "ssh": path of `airlock` on the upstream; commands run through its
    /// `sandbox-exec` there.
    #[serde(default)]
    runner: Option<String>,
    /// Extra variables for commands (never a pinned name).
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// The gateway's private key for the upstream (mode 0600 or stricter).
    #[serde(default)]
    key: Option<PathBuf>,
    /// Pinned host key(s): one OpenSSH public key line, or a list of them.
    #[serde(default)]
    host_key: Option<OneOrMany>,
    /// Or a known_hosts-style file with the upstream's keys.
    #[serde(default)]
    known_hosts: Option<PathBuf>,
    #[serde(default)]
    connect_timeout: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Nothing runs for an agent without a live access grant (docs/grants.md).
    #[serde(default)]
    requires_grant: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl TargetFile {
    /// The built-in default's one target.
    pub(super) fn local_default() -> Self {
        Self {
            name: "local".into(),
            kind: "local".into(),
            shell: None,
            bash: None,
            cwd: None,
            address: None,
            user: None,
            unconfined: None,
            runner: None,
            env: BTreeMap::new(),
            key: None,
            host_key: None,
            known_hosts: None,
            connect_timeout: None,
            labels: BTreeMap::new(),
            requires_grant: false,
        }
    }
}

/// This host as a target (from `[[target]] kind = "local"`).
#[derive(Debug, Clone)]
pub struct LocalTarget {
    /// bash: every command runs as `bash --noprofile --norc -c`, the gated shell on it too.
    pub bash: PathBuf,
    pub cwd: Option<PathBuf>,
    /// Run commands as this user (the gateway must be root).
    pub user: Option<String>,
    /// The operator chose to run without the Landlock sandbox.
    pub unconfined: bool,
}

/// How to reach one upstream host (from `[[target]] kind = "ssh"`).
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub address: String,
    pub user: String,
    pub key: Arc<PrivateKey>,
    /// Host keys the upstream may present; nothing else is accepted.
    pub host_keys: Vec<PublicKey>,
    pub connect_timeout: Duration,
    /// Where `key` came from (commands may never read it).
    pub key_path: PathBuf,
    /// `airlock` on the upstream: commands run through its `sandbox-exec`.
    pub runner: Option<String>,
}

/// Validate an `ssh` target: address, user, a private key nobody else can read, and at least
/// one pinned host key.
/// One `[[target]]` table; `Err` is the message for `ConfigError::Invalid`.
pub(super) fn parse(t: TargetFile, rel: &dyn Fn(PathBuf) -> PathBuf) -> Result<Target, String> {
    if !valid_name(&t.name) {
        return Err(format!(
            "target name {:?}: use letters, digits, '.', '_' or '-'",
            t.name
        ));
    }
    let named = |m: String| format!("target {:?}: {m}", t.name);
    if t.name == crate::session::control::CONTROL_TARGET {
        return Err(named(
            "the name is reserved for the control target (ssh airlock@GATEWAY 'whoami'); choose another".into(),
        ));
    }
    if t.shell.is_some() {
        return Err(named(
            "`shell` is no longer supported: every command runs under `bash --noprofile --norc -c`, the dialect the classifier reads (set `bash = \"/path/to/bash\"` to choose the binary)".into(),
        ));
    }
    if let Some(k) = t.env.keys().find(|k| is_pinned(k)) {
        return Err(named(format!(
            "env sets {k:?}, which Airlock pins for every command (pagers, editors, git, the loader, the shell's start-up)"
        )));
    }
    let kind = match t.kind.as_str() {
        "local" => {
            if t.runner.is_some() {
                return Err(named("`runner` is for kind = \"ssh\" targets".into()));
            }
            TargetKind::Local(LocalTarget {
                bash: t.bash.clone().unwrap_or_else(|| PathBuf::from("/bin/bash")),
                cwd: t.cwd.clone(),
                user: t.user.clone(),
                unconfined: t.unconfined.unwrap_or(false),
            })
        }
        "ssh" => {
            if t.unconfined.is_some() {
                return Err(named(
                    "`unconfined` is for kind = \"local\" targets (an upstream is sandboxed by its `runner`)".into(),
                ));
            }
            TargetKind::Ssh(Box::new(upstream_target(&t, rel).map_err(named)?))
        }
        other => {
            return Err(format!(
                "target {:?}: unknown kind {other:?} (supported: \"local\", \"ssh\")",
                t.name
            ));
        }
    };
    super::sections::check_labels(&format!("target {:?}", t.name), &t.labels)?;
    Ok(Target {
        name: t.name,
        kind,
        labels: t.labels,
        env: t.env,
        requires_grant: t.requires_grant,
    })
}

fn upstream_target(
    t: &TargetFile,
    rel: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<UpstreamTarget, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut address = t
        .address
        .clone()
        .ok_or("kind = \"ssh\" needs address = \"host:port\"")?;
    if !address.contains(':') {
        address.push_str(":22");
    }
    let user = t.user.clone().ok_or("kind = \"ssh\" needs user")?;
    let key_path = rel(t
        .key
        .clone()
        .ok_or("kind = \"ssh\" needs key = \"path/to/private_key\"")?);
    let meta =
        std::fs::metadata(&key_path).map_err(|e| format!("key {}: {e}", key_path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "key {} is readable by others (mode {mode:o}); chmod 600 it",
            key_path.display()
        ));
    }
    let key = russh::keys::load_secret_key(&key_path, None)
        .map_err(|e| format!("key {}: {e}", key_path.display()))?;
    let mut lines: Vec<String> = match &t.host_key {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s.clone()],
        Some(OneOrMany::Many(v)) => v.clone(),
    };
    if let Some(kh) = &t.known_hosts {
        let kh = rel(kh.clone());
        let text = std::fs::read_to_string(&kh)
            .map_err(|e| format!("known_hosts {}: {e}", kh.display()))?;
        for l in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            // `host[,host] keytype base64 [comment]`: keep `keytype base64`.
            let parts: Vec<&str> = l.split_whitespace().collect();
            if let Some(i) = parts
                .iter()
                .position(|p| p.starts_with("ssh-") || p.starts_with("ecdsa-"))
                && let Some(b64) = parts.get(i + 1)
            {
                lines.push(format!("{} {b64}", parts[i]));
            }
        }
    }
    let host_keys = lines
        .iter()
        .map(|l| PublicKey::from_openssh(l.trim()).map_err(|e| format!("host key {l:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if host_keys.is_empty() {
        return Err("kind = \"ssh\" needs host_key = \"ssh-ed25519 …\" or known_hosts: the upstream's key is always checked".into());
    }
    let connect_timeout = match &t.connect_timeout {
        Some(s) => {
            humantime::parse_duration(s).map_err(|e| format!("connect_timeout = {s:?}: {e}"))?
        }
        None => Duration::from_secs(10),
    };
    if let Some(r) = &t.runner
        && !r.starts_with('/')
    {
        return Err(format!(
            "runner = {r:?}: give the absolute path of airlock on the upstream"
        ));
    }
    Ok(UpstreamTarget {
        runner: t.runner.clone(),
        key_path,
        address,
        user,
        key: Arc::new(key),
        host_keys,
        connect_timeout,
    })
}
