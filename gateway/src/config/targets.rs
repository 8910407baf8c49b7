//! `[[target]]`: each kind checked here, so `serve` refuses a bad one at start.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;

use russh::keys::PublicKey;

use super::{OneOrMany, Target, TargetFile, TargetKind, valid_name};

/// How to reach one upstream host (from `[[target]] kind = "ssh"`).
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub address: String,
    pub user: String,
    pub key: Arc<PrivateKey>,
    /// Host keys the upstream may present; nothing else is accepted.
    pub host_keys: Vec<PublicKey>,
    pub connect_timeout: Duration,
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
    let kind = match t.kind.as_str() {
        "local" => TargetKind::Local {
            shell: t.shell.clone().unwrap_or_else(|| PathBuf::from("/bin/sh")),
            bash: t.bash.clone().unwrap_or_else(|| PathBuf::from("/bin/bash")),
            cwd: t.cwd.clone(),
        },
        "ssh" => TargetKind::Ssh(
            upstream_target(&t, rel).map_err(|m| format!("target {:?}: {m}", t.name))?,
        ),
        other => {
            return Err(format!(
                "target {:?}: unknown kind {other:?} (supported: \"local\", \"ssh\")",
                t.name
            ));
        }
    };
    Ok(Target {
        name: t.name,
        kind,
        labels: t.labels,
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
    Ok(UpstreamTarget {
        address,
        user,
        key: Arc::new(key),
        host_keys,
        connect_timeout,
    })
}
