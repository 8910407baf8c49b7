//! Upstream SSH targets: approved commands run on another host, over an SSH connection the
//! gateway makes with its own credential. The agent never sees the key, the user or the
//! address — messages name the target only.
//!
//! The host key is checked against the pinned keys from the config; anything else is refused
//! (there is no "accept any key"). One connection per target is kept and multiplexed: each
//! command is a channel on it, and a dead connection is replaced on the next command, so a
//! whitelisted command does not pay a handshake each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use tokio::sync::{mpsc, oneshot};

use super::{Control, Exit, Output, Process, PtyParams, signals};
pub use crate::config::UpstreamTarget;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {target} is unreachable ({why})")]
    Unreachable { target: String, why: String },
    #[error(
        "upstream {target} presented an unexpected host key ({fingerprint}); refusing to connect"
    )]
    HostKey { target: String, fingerprint: String },
    #[error("upstream {target} refused the gateway's credentials")]
    Auth { target: String },
    #[error("upstream {target}: {why}")]
    Channel { target: String, why: String },
}

struct Client {
    pinned: Vec<PublicKey>,
    /// The key the server showed when it was not one of ours, for the error message.
    rejected: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                if self.pinned.iter().any(|p| p.key_data() == key.key_data()) {
                    return Ok(true);
                }
                if let Ok(mut r) = self.rejected.lock() {
                    *r = Some(key.fingerprint(Default::default()).to_string());
                }
                Ok(false)
            }
            PublicKeyOrCertificate::Certificate(_) => {
                if let Ok(mut r) = self.rejected.lock() {
                    *r = Some("a certificate, not a pinned key".into());
                }
                Ok(false)
            }
        }
    }
}

/// One target's connection: locked while it is (re)made, so concurrent commands share one.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Handle<Client>>>>>;

/// Live connections, one per target, and how many were made (for tests and metrics).
#[derive(Default)]
pub struct Upstream {
    conns: Mutex<HashMap<String, Slot>>,
    connects: std::sync::atomic::AtomicU64,
}

impl Upstream {
    /// Connections opened so far (a reused connection is not counted again).
    pub fn connects(&self) -> u64 {
        self.connects.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether target `name`'s connection is open now (one being made counts as not).
    pub fn connected(&self, name: &str) -> bool {
        let slot = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        slot.and_then(|s| {
            s.try_lock()
                .ok()
                .map(|h| h.as_ref().is_some_and(|h| !h.is_closed()))
        })
        .unwrap_or(false)
    }

    async fn connect(
        &self,
        name: &str,
        t: &UpstreamTarget,
    ) -> Result<Handle<Client>, UpstreamError> {
        let rejected = Arc::new(Mutex::new(None));
        let handler = Client {
            pinned: t.host_keys.clone(),
            rejected: rejected.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let unreachable = |why: String| UpstreamError::Unreachable {
            target: name.to_owned(),
            why,
        };
        let connected = tokio::time::timeout(
            t.connect_timeout,
            client::connect(config, t.address.as_str(), handler),
        )
        .await
        .map_err(|_| unreachable(format!("no answer within {:?}", t.connect_timeout)))?;
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                if let Some(fp) = rejected.lock().ok().and_then(|r| r.clone()) {
                    return Err(UpstreamError::HostKey {
                        target: name.to_owned(),
                        fingerprint: fp,
                    });
                }
                // The address is not the agent's business: keep only the kind of failure.
                let why = match e {
                    russh::Error::IO(io) => io.kind().to_string(),
                    other => other.to_string(),
                };
                return Err(unreachable(why));
            }
        };
        let key = PrivateKeyWithHashAlg::new(t.key.clone(), None);
        let auth = tokio::time::timeout(
            t.connect_timeout,
            handle.authenticate_publickey(&t.user, key),
        )
        .await
        .map_err(|_| unreachable("authentication timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        if !auth.success() {
            return Err(UpstreamError::Auth {
                target: name.to_owned(),
            });
        }
        self.connects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(target = name, "upstream connection established");
        Ok(handle)
    }

    /// A connection to `name`: the live one, or a new one.
    async fn handle(
        &self,
        name: &str,
        t: &UpstreamTarget,
        fresh: bool,
    ) -> Result<Arc<Handle<Client>>, UpstreamError> {
        let slot = {
            let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            conns.entry(name.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if !fresh
            && let Some(h) = slot.as_ref()
            && !h.is_closed()
        {
            return Ok(h.clone());
        }
        let h = Arc::new(self.connect(name, t).await?);
        *slot = Some(h.clone());
        Ok(h)
    }

    /// Run `command` on the upstream (with a PTY when `pty` is given).
    pub async fn spawn(
        &self,
        name: &str,
        t: &UpstreamTarget,
        command: &str,
        pty: Option<&PtyParams>,
    ) -> Result<Process, UpstreamError> {
        let chan_err = |why: String| UpstreamError::Channel {
            target: name.to_owned(),
            why,
        };
        // A connection that died since the last command fails here; replace it once.
        let channel = match self
            .handle(name, t, false)
            .await?
            .channel_open_session()
            .await
        {
            Ok(c) => c,
            Err(_) => self
                .handle(name, t, true)
                .await?
                .channel_open_session()
                .await
                .map_err(|e| chan_err(format!("cannot open a channel: {e}")))?,
        };
        if let Some(p) = pty {
            channel
                .request_pty(
                    false,
                    &p.term,
                    u32::from(p.cols),
                    u32::from(p.rows),
                    0,
                    0,
                    &[],
                )
                .await
                .map_err(|e| chan_err(format!("pty request failed: {e}")))?;
        }
        channel
            .exec(true, command)
            .await
            .map_err(|e| chan_err(format!("exec failed: {e}")))?;

        let (out_tx, output) = mpsc::channel(64);
        let (control, mut ctl_rx) = mpsc::channel::<Control>(64);
        let (exit_tx, exit) = oneshot::channel();
        let (mut rx, tx) = channel.split();
        tokio::spawn(async move {
            let mut status: Option<Exit> = None;
            let mut ctl_open = true;
            loop {
                tokio::select! {
                    msg = rx.wait() => match msg {
                        Some(ChannelMsg::Data { data }) => {
                            let _ = out_tx.send(Output::Stdout(data.to_vec())).await;
                        }
                        Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                            let _ = out_tx.send(Output::Stderr(data.to_vec())).await;
                        }
                        Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(Exit::Code(exit_status)),
                        Some(ChannelMsg::ExitSignal { signal_name, core_dumped, .. }) => {
                            let name = format!("{signal_name:?}");
                            status = Some(Exit::Signal {
                                name: signals::from_russh(&signal_name)
                                    .map(|s| s.as_str().trim_start_matches("SIG").to_owned())
                                    .unwrap_or(name),
                                core_dumped,
                            });
                        }
                        Some(ChannelMsg::Failure) if status.is_none() => {
                            let _ = out_tx.send(Output::Stderr(b"airlock: the upstream refused the command\n".to_vec())).await;
                        }
                        None | Some(ChannelMsg::Close) => break,
                        Some(_) => {}
                    },
                    ctl = ctl_rx.recv(), if ctl_open => match ctl {
                        Some(Control::Stdin(d)) => { let _ = tx.data_bytes(d).await; }
                        Some(Control::CloseStdin) => { let _ = tx.eof().await; }
                        Some(Control::Resize { cols, rows }) => {
                            let _ = tx.window_change(u32::from(cols), u32::from(rows), 0, 0).await;
                        }
                        Some(Control::Signal(n)) => {
                            let _ = tx.signal(signals::to_russh(&signals::ssh_name(n))).await;
                        }
                        Some(Control::Kill) | None => {
                            ctl_open = false;
                            let _ = tx.signal(russh::Sig::KILL).await;
                            let _ = tx.close().await;
                        }
                    },
                }
            }
            drop(out_tx);
            let _ = exit_tx.send(status.unwrap_or(Exit::Code(255)));
        });
        Ok(Process {
            output,
            control,
            exit,
        })
    }
}
