//! The SSH side of `airlock mcp`: connections to the gateway, made as the agent, with the
//! gateway's host key pinned.
//!
//! Why it exists: every tool call must reach the gateway through the same door an `ssh` exec
//! uses, with the agent's own key, so one policy, one queue and one ledger hold for both. What
//! it owns: reading the pinned host key (`--known-hosts`, OpenSSH format, hashed names and
//! `[host]:port` included) and refusing any other key — there is no "accept any key" —, the
//! agent's identity, and one live connection per target. The SSH user name *is* the target,
//! so a connection serves one target; it is made on first use, kept, shared by concurrent
//! calls (each call is a channel on it) and replaced when it has dropped. At most
//! [`MAX_CONNECTIONS`] are kept; the least recently used goes first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle, Msg};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg};

/// Connections kept at once (one per target name in use).
pub const MAX_CONNECTIONS: usize = 16;
/// How long a TCP connect, key exchange or authentication may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("--gateway {0:?} is not HOST:PORT")]
    Address(String),
    #[error("cannot read the identity file {path}: {why}")]
    Identity { path: PathBuf, why: String },
    #[error(
        "the known-hosts file {path} does not exist; pin the gateway's host key there first (see docs/agents.md)"
    )]
    NoKnownHosts { path: PathBuf },
    #[error("cannot read the known-hosts file {path}: {why}")]
    KnownHosts { path: PathBuf, why: String },
    #[error(
        "no host key for {host} in {path}: pin the gateway's key first (check its fingerprint with the operator, then add `{host} <key>`); airlock mcp never accepts an unknown key"
    )]
    NotPinned { host: String, path: PathBuf },
    #[error(
        "the gateway at {host} presented host key {fingerprint}, which is not the key pinned for it in {path}; refusing to connect (the key changed or someone is in between — ask the operator)"
    )]
    HostKey {
        host: String,
        fingerprint: String,
        path: PathBuf,
    },
    #[error("cannot reach the gateway at {host}: {why}")]
    Unreachable { host: String, why: String },
    #[error(
        "the gateway refused the key {fingerprint} for target {target:?} (is this agent's public key enrolled in the gateway's authorized_keys?)"
    )]
    Auth { fingerprint: String, target: String },
    #[error("the gateway connection failed: {0}")]
    Channel(String),
}

/// Where the gateway is and how to prove who we are and who it is.
pub struct LinkConfig {
    pub host: String,
    pub port: u16,
    pub known_hosts: PathBuf,
}

/// `HOST:PORT`, `[v6]:PORT`, or `HOST` (port 22).
pub fn parse_gateway(s: &str) -> Result<(String, u16), LinkError> {
    let bad = || LinkError::Address(s.to_owned());
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or_else(bad)?;
        match p.strip_prefix(':') {
            Some(p) => (h, p.parse().map_err(|_| bad())?),
            None if p.is_empty() => (h, 22),
            None => return Err(bad()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p.parse().map_err(|_| bad())?),
            Some(_) => return Err(bad()),
            None => (s, 22),
        }
    };
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// The name OpenSSH writes for this host in known_hosts (`host`, or `[host]:port`).
fn host_label(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The keys pinned for the gateway; an error when there are none.
pub fn pinned_keys(cfg: &LinkConfig) -> Result<Vec<PublicKey>, LinkError> {
    if !cfg.known_hosts.exists() {
        return Err(LinkError::NoKnownHosts {
            path: cfg.known_hosts.clone(),
        });
    }
    // A file that exists but cannot be opened would read as empty below: say why instead.
    std::fs::File::open(&cfg.known_hosts).map_err(|e| LinkError::KnownHosts {
        path: cfg.known_hosts.clone(),
        why: e.to_string(),
    })?;
    let keys =
        russh::keys::known_hosts::known_host_keys_path(&cfg.host, cfg.port, &cfg.known_hosts)
            .map_err(|e| LinkError::KnownHosts {
                path: cfg.known_hosts.clone(),
                why: e.to_string(),
            })?;
    // `@revoked KEY` lines (any host pattern) revoke a key everywhere, as in OpenSSH; a line
    // whose patterns negate this host (`!host`) does not match it, which russh's reader does
    // not know: a key pinned only on such lines is not pinned.
    let text = std::fs::read_to_string(&cfg.known_hosts).unwrap_or_default();
    let revoked = revoked_keys(&text);
    let (negated, plain) = negated_keys(&text, &host_label(&cfg.host, cfg.port));
    let keys: Vec<PublicKey> = keys
        .into_iter()
        .map(|(_, k)| k)
        .filter(|k| !revoked.iter().any(|r| r.key_data() == k.key_data()))
        .filter(|k| {
            !negated.iter().any(|n| n.key_data() == k.key_data())
                || plain.iter().any(|p| p.key_data() == k.key_data())
        })
        .collect();
    if keys.is_empty() {
        return Err(LinkError::NotPinned {
            host: host_label(&cfg.host, cfg.port),
            path: cfg.known_hosts.clone(),
        });
    }
    Ok(keys)
}

/// A known_hosts line's key (`TYPE BASE64` after the patterns field).
fn line_key(mut fields: std::str::SplitWhitespace<'_>) -> Option<PublicKey> {
    let line = format!("{} {}", fields.next()?, fields.next()?);
    PublicKey::from_openssh(&line).ok()
}

/// OpenSSH pattern matching: `*` any run, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Keys on lines whose patterns negate `host` (`!pattern`), and keys on plain lines that
/// name `host` literally without a negation.
fn negated_keys(text: &str, host: &str) -> (Vec<PublicKey>, Vec<PublicKey>) {
    let (mut negated, mut plain) = (Vec::new(), Vec::new());
    for l in text.lines().map(str::trim_start) {
        if l.starts_with('#') || l.starts_with('@') {
            continue;
        }
        let mut fields = l.split_whitespace();
        let Some(patterns) = fields.next() else {
            continue;
        };
        let pats: Vec<&str> = patterns.split(',').collect();
        let negates = pats.iter().any(|p| {
            p.strip_prefix('!')
                .is_some_and(|n| glob(n.as_bytes(), host.as_bytes()))
        });
        let Some(key) = line_key(fields) else {
            continue;
        };
        if negates {
            negated.push(key);
        } else if pats
            .iter()
            .any(|p| p.starts_with("|1|") || glob(p.as_bytes(), host.as_bytes()))
        {
            plain.push(key);
        }
    }
    (negated, plain)
}

/// The keys a known_hosts file marks `@revoked`.
fn revoked_keys(text: &str) -> Vec<PublicKey> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("@revoked"))
        .filter_map(|rest| {
            // `@revoked PATTERNS TYPE BASE64 [comment]`
            let mut f = rest.split_whitespace();
            let _patterns = f.next()?;
            line_key(f)
        })
        .collect()
}

pub fn load_identity(path: &Path) -> Result<PrivateKey, LinkError> {
    russh::keys::load_secret_key(path, None).map_err(|e| LinkError::Identity {
        path: path.to_owned(),
        why: format!("{e} (a passphrase-protected key is not supported)"),
    })
}

/// The russh handler: accepts the pinned keys and nothing else.
pub struct Pinned {
    keys: Vec<PublicKey>,
    /// The key the server showed when it was not pinned, for the error message.
    rejected: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let shown = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                if self.keys.iter().any(|p| p.key_data() == key.key_data()) {
                    return Ok(true);
                }
                key.fingerprint(Default::default()).to_string()
            }
            PublicKeyOrCertificate::Certificate(_) => "a certificate, not a pinned key".into(),
        };
        if let Ok(mut r) = self.rejected.lock() {
            *r = Some(shown);
        }
        Ok(false)
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Handle<Pinned>>>>>;

/// The agent's connections to the gateway, one per target.
pub struct Link {
    cfg: LinkConfig,
    key: Arc<PrivateKey>,
    conns: Mutex<HashMap<String, (Slot, Instant)>>,
}

impl Link {
    pub fn new(cfg: LinkConfig, key: PrivateKey) -> Self {
        Self {
            cfg,
            key: Arc::new(key),
            conns: Mutex::new(HashMap::new()),
        }
    }

    fn host(&self) -> String {
        host_label(&self.cfg.host, self.cfg.port)
    }

    /// A new, authenticated connection as `target`.
    async fn connect(&self, target: &str) -> Result<Handle<Pinned>, LinkError> {
        // Read on every connect: an operator who re-pins the key needs no restart.
        let keys = pinned_keys(&self.cfg)?;
        let rejected = Arc::new(Mutex::new(None));
        let handler = Pinned {
            keys,
            rejected: rejected.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let unreachable = |why: String| LinkError::Unreachable {
            host: self.host(),
            why,
        };
        let addr = (self.cfg.host.as_str(), self.cfg.port);
        let connected =
            tokio::time::timeout(CONNECT_TIMEOUT, client::connect(config, addr, handler))
                .await
                .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?;
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                if let Some(fingerprint) = rejected.lock().ok().and_then(|r| r.clone()) {
                    return Err(LinkError::HostKey {
                        host: self.host(),
                        fingerprint,
                        path: self.cfg.known_hosts.clone(),
                    });
                }
                return Err(unreachable(e.to_string()));
            }
        };
        let hash = if self.key.algorithm().is_rsa() {
            handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten()
        } else {
            None
        };
        let key = PrivateKeyWithHashAlg::new(self.key.clone(), hash);
        let auth =
            tokio::time::timeout(CONNECT_TIMEOUT, handle.authenticate_publickey(target, key))
                .await
                .map_err(|_| unreachable("authentication timed out".into()))?
                .map_err(|e| unreachable(e.to_string()))?;
        if !auth.success() {
            return Err(LinkError::Auth {
                fingerprint: self
                    .key
                    .public_key()
                    .fingerprint(Default::default())
                    .to_string(),
                target: target.to_owned(),
            });
        }
        tracing::info!(target, gateway = %self.host(), "connected to the gateway");
        Ok(handle)
    }

    /// The slot for `target`, made if new (evicting the least recently used when full).
    fn slot(&self, target: &str) -> Slot {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some((slot, used)) = conns.get_mut(target) {
            *used = now;
            return slot.clone();
        }
        if conns.len() >= MAX_CONNECTIONS
            && let Some(oldest) = conns
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(name, _)| name.clone())
        {
            // Calls still using it keep their handle; the connection ends after them.
            conns.remove(&oldest);
        }
        let slot = Slot::default();
        conns.insert(target.to_owned(), (slot.clone(), now));
        slot
    }

    /// A live connection as `target`: the kept one, or a new one when `fresh` or it dropped.
    async fn handle(&self, target: &str, fresh: bool) -> Result<Arc<Handle<Pinned>>, LinkError> {
        let slot = self.slot(target);
        let mut slot = slot.lock().await;
        if !fresh
            && let Some(h) = slot.as_ref()
            && !h.is_closed()
        {
            return Ok(h.clone());
        }
        let h = Arc::new(self.connect(target).await?);
        *slot = Some(h.clone());
        Ok(h)
    }

    /// Check that the gateway can be reached, shows the pinned key and takes our key.
    pub async fn probe(&self, target: &str) -> Result<(), LinkError> {
        self.handle(target, false).await.map(|_| ())
    }

    /// Start `command` on `target` (with `reason` as `AIRLOCK_REASON`, and `mark` as
    /// `AIRLOCK_MARK`: the gateway's own lines then start `airlock[MARK]:`); the open channel.
    pub async fn exec(
        &self,
        target: &str,
        command: &str,
        reason: Option<&str>,
        mark: Option<&str>,
    ) -> Result<Channel<Msg>, LinkError> {
        // A connection that died since the last call fails here; replace it once. A live
        // gateway that refuses the channel (its per-connection limit) is not a lost connection:
        // reconnecting would only pile up logins.
        let live = self.handle(target, false).await?;
        let channel = match live.channel_open_session().await {
            Ok(c) => c,
            Err(first) if !live.is_closed() => {
                return Err(LinkError::Channel(format!(
                    "the gateway refused a new channel ({first}): too many calls at once on one target; retry when one ends"
                )));
            }
            Err(first) => {
                tracing::info!(target, error = %first, "gateway connection lost; reconnecting");
                self.handle(target, true)
                    .await?
                    .channel_open_session()
                    .await
                    .map_err(|e| LinkError::Channel(format!("cannot open a channel: {e}")))?
            }
        };
        if let Some(mark) = mark {
            channel
                .set_env(false, "AIRLOCK_MARK", mark)
                .await
                .map_err(|e| LinkError::Channel(format!("cannot send the call's mark: {e}")))?;
        }
        if let Some(r) = reason {
            // The gateway takes this one variable (shown to reviewers, never to the command).
            channel
                .set_env(false, "AIRLOCK_REASON", r)
                .await
                .map_err(|e| LinkError::Channel(format!("cannot send the reason: {e}")))?;
        }
        channel
            .exec(true, command)
            .await
            .map_err(|e| LinkError::Channel(format!("exec failed: {e}")))?;
        Ok(channel)
    }
}

/// What a short control command printed and how it ended.
pub struct Collected {
    pub status: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Run a control verb to its end, keeping at most `limit` bytes of each stream.
pub async fn collect(
    mut channel: Channel<Msg>,
    limit: usize,
    within: Duration,
) -> Result<Collected, LinkError> {
    let mut out = Collected {
        status: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    let read = async {
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => push(&mut out.stdout, &data, limit),
                ChannelMsg::ExtendedData { data, ext: 1 } => push(&mut out.stderr, &data, limit),
                ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                ChannelMsg::Failure => {
                    push(&mut out.stderr, b"the gateway refused the request\n", limit);
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    };
    if tokio::time::timeout(within, read).await.is_err() {
        let _ = channel.close().await;
        return Err(LinkError::Channel(format!(
            "the gateway did not answer within {within:?}"
        )));
    }
    Ok(out)
}

fn push(buf: &mut Vec<u8>, data: &[u8], limit: usize) {
    let room = limit.saturating_sub(buf.len());
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_addresses_parse() {
        assert_eq!(
            parse_gateway("127.0.0.1:2222").ok(),
            Some(("127.0.0.1".into(), 2222))
        );
        assert_eq!(
            parse_gateway("gw.example").ok(),
            Some(("gw.example".into(), 22))
        );
        assert_eq!(parse_gateway("[::1]:2200").ok(), Some(("::1".into(), 2200)));
        assert!(parse_gateway("::1:22").is_err());
        assert!(parse_gateway("host:notaport").is_err());
        assert!(parse_gateway(":22").is_err());
        assert_eq!(host_label("127.0.0.1", 2222), "[127.0.0.1]:2222");
        assert_eq!(host_label("gw", 22), "gw");
    }

    const K: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHj1o0d5P2rJk8s1yQ2qk4j4mA5l2Wb3kO3Xw2nX8C9b";

    #[test]
    fn revoked_and_negated_entries_do_not_pin() {
        let host = "[127.0.0.1]:2222";
        let revoked = revoked_keys(&format!("@revoked * {K}\n[127.0.0.1]:2222 {K}\n"));
        assert_eq!(revoked.len(), 1);
        let (neg, plain) = negated_keys(&format!("[127.0.0.1]:2222,![127.0.0.1]:2222 {K}\n"), host);
        assert_eq!(
            (neg.len(), plain.len()),
            (1, 0),
            "a negated line does not pin"
        );
        let (neg, plain) = negated_keys(&format!("*,!10.* {K}\n"), host);
        assert_eq!(
            (neg.len(), plain.len()),
            (0, 1),
            "another host's negation does not matter"
        );
        let (neg, _) = negated_keys(&format!("# {K}\n@cert-authority * {K}\n"), host);
        assert!(neg.is_empty());
        assert!(glob(b"[127.0.0.*]:2222", host.as_bytes()));
        assert!(!glob(b"[127.0.0.?]:2222", b"[127.0.0.10]:2222"));
    }
}
