//! The gateway's persistent SSH host key: generated once (ed25519, mode 0600), then reused so
//! agents' known_hosts entries stay valid across restarts.

use std::io::Write;
use std::path::Path;

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error("{path}: not an OpenSSH private key: {msg}")]
    Parse { path: String, msg: String },
}

/// Load the host key at `path`, generating it first if the file does not exist.
/// Returns the key and whether it was just created.
pub fn load_or_create(path: &Path) -> Result<(PrivateKey, bool), HostKeyError> {
    let p = path.display().to_string();
    let io = |e: std::io::Error| HostKeyError::Io {
        path: p.clone(),
        msg: e.to_string(),
    };
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(io)?;
        let key = PrivateKey::from_openssh(&text).map_err(|e| HostKeyError::Parse {
            path: p.clone(),
            msg: e.to_string(),
        })?;
        return Ok((key, false));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| HostKeyError::Io {
        path: p.clone(),
        msg: format!("random source: {e}"),
    })?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment("airlock host key");
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| HostKeyError::Parse {
            path: p.clone(),
            msg: e.to_string(),
        })?;
    // A missing directory is a typo in the path far more often than an intent: creating it
    // would silently give the gateway a new identity somewhere nobody looks.
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        return Err(HostKeyError::Io {
            path: p.clone(),
            msg: format!(
                "directory {} does not exist (a typo in [ssh] host_key?); create it, or fix the path",
                dir.display()
            ),
        });
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok((key, true))
}

pub fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

/// The `known_hosts` line an agent can pin.
pub fn public_line(key: &PrivateKey) -> String {
    key.public_key().to_openssh().unwrap_or_default()
}
