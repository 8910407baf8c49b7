//! The russh handler: authentication and routing only.
//!
//! Each session channel is accepted and handed, with its message stream, to its own
//! [`crate::session`] task; channel requests are answered here (success for pty/exec/shell so
//! the client proceeds, failure for everything Airlock refuses) and the task sees the same
//! requests in order and acts on them. Forwarding of any kind is refused outright.
//!
//! Touches: the config (who owns a key), the audit handle (`auth`), and [`Shared`] only to
//! hand it to sessions. Once the gateway drains, new channels are refused.

use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tracing::Instrument;

use airlock_approvals::ledger::{AuthOutcome, Event};

use crate::audit::Audit;
use crate::config::{Agent, Config};
use crate::deny::Deny;
use crate::login::Login;
use crate::session::{self, SessionCtx};
use crate::state::Shared;

/// What a connection needs.
#[derive(Clone)]
pub struct Edge {
    pub config: Arc<Config>,
    pub audit: Audit,
    pub shared: Arc<Shared>,
}

/// Session channels one connection may have open at once.
pub const MAX_SESSIONS: usize = 16;

/// One open session channel, counted until its task ends.
struct SessionSlot(Arc<std::sync::atomic::AtomicUsize>);

impl SessionSlot {
    fn take(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

pub struct AgentConnection {
    edge: Edge,
    peer: SocketAddr,
    /// Startup slot, grace time, the authenticated slot.
    login: Login,
    /// A known agent whose login was refused (unauditable, no slot): every channel gets this.
    refused: Option<Deny>,
    /// The fingerprint of the key it logged in with.
    key: String,
    /// Session channels open on this connection (bounded by [`MAX_SESSIONS`]).
    sessions: Arc<std::sync::atomic::AtomicUsize>,
    /// Set once publickey auth succeeds; channels are only opened after that.
    agent: Option<Agent>,
    /// The SSH user name, which names the target.
    target: String,
}

impl AgentConnection {
    pub fn new(edge: Edge, peer: SocketAddr, login: Login) -> Self {
        Self {
            edge,
            peer,
            login,
            refused: None,
            key: String::new(),
            sessions: Arc::default(),
            agent: None,
            target: String::new(),
        }
    }

    fn agent_for(&self, key: &PublicKey) -> Option<Agent> {
        self.edge.config.agent_by_key(key)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Ssh(#[from] russh::Error),
}

impl russh::server::Handler for AgentConnection {
    type Error = HandlerError;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.agent_for(offer.public_key).is_some() {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let fingerprint = key.public_key.fingerprint(Default::default()).to_string();
        let found = self.agent_for(key.public_key);
        // The database is not the one the gateway had: say so (writing the login to it would
        // fail, or land in the wrong place).
        if let (Some(_), Some(deny)) = (&found, self.edge.shared.gate.refusal()) {
            self.login.prove_key();
            self.refused = Some(deny);
            return Ok(Auth::Accept);
        }
        let logged = self
            .edge
            .audit
            .write(Event::Auth {
                agent: found.as_ref().map(|a| a.name.clone()),
                target: user.to_owned(),
                key: fingerprint.clone(),
                peer: self.peer.to_string(),
                outcome: if found.is_some() {
                    AuthOutcome::Accepted
                } else {
                    AuthOutcome::Refused
                },
            })
            .await;
        // A known agent whose login cannot be audited, or finds no free slot, is refused in
        // words: the login completes, and every channel it opens gets the one-line reason and
        // exit status 77 (a bare `Permission denied (publickey)` would send the operator
        // looking at keys). Nothing can run on such a connection.
        if found.is_some() {
            self.login.prove_key();
        }
        let refusal = match (&found, logged) {
            (Some(_), Err(why)) => {
                tracing::error!(reason = %why, "login refused: the audit ledger cannot be written");
                Some(Deny::LoginRefused(format!(
                    "the audit ledger cannot be written ({why}); nothing runs until the operator fixes it"
                )))
            }
            (None, Err(why)) => {
                tracing::error!(reason = %why, "unknown key refused; the refusal is not audited");
                None
            }
            (Some(_), Ok(_)) if self.login.admit().is_err() => {
                tracing::warn!(
                    max_connections = self.login.max_connections(),
                    "login refused: every authenticated slot is taken"
                );
                Some(Deny::LoginRefused(format!(
                    "too many agent connections (max_connections = {})",
                    self.login.max_connections()
                )))
            }
            _ => None,
        };
        if let Some(deny) = refusal {
            self.refused = Some(deny);
            return Ok(Auth::Accept);
        }
        match found {
            Some(agent) => {
                tracing::Span::current().record("agent", agent.name.as_str());
                tracing::info!(target = user_as_logged(user), "agent authenticated");
                self.agent = Some(agent);
                self.target = user.to_owned();
                self.key = fingerprint;
                Ok(Auth::Accept)
            }
            None => {
                tracing::info!(target = user_as_logged(user), fingerprint = %key.public_key.fingerprint(Default::default()), "unknown key refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Like sshd's MaxSessions: one connection cannot hold unbounded channels (each costs
        // memory before it asks for anything).
        let open = self.sessions.load(std::sync::atomic::Ordering::SeqCst);
        if open >= MAX_SESSIONS {
            tracing::warn!(open, "session channel refused: too many on this connection");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let slot = SessionSlot::take(&self.sessions);
        if let Some(deny) = self.refused.clone() {
            reply.accept().await;
            let (_rx, tx) = channel.split();
            tokio::spawn(async move {
                let _slot = slot;
                session::refuse(&tx, false, &deny).await;
            });
            return Ok(());
        }
        let shared = &self.edge.shared;
        // No new session once the gateway drains.
        let alive = (!shared.shutdown.is_requested())
            .then(|| shared.sessions.enter())
            .flatten();
        let (Some(agent), Some(alive)) = (self.agent.clone(), alive) else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        let ctx = SessionCtx {
            shared: shared.clone(),
            agent,
            target: self.target.clone(),
            peer: self.peer,
            key: self.key.clone(),
            handle: session.handle(),
            reason: None,
            alive,
        };
        // The agent is named here (russh runs these callbacks outside the `conn` span);
        // `session` and `request` are filled in as they become known (record.rs,
        // conversation.rs), so each log line of a command names all three (docs/operations.md).
        let span = tracing::info_span!(
            "session",
            agent = %ctx.agent.name,
            channel = %channel.id(),
            target = user_as_logged(&self.target),
            session = tracing::field::Empty,
            request = tracing::field::Empty,
        );
        tokio::spawn(
            async move {
                let _slot = slot;
                session::run(ctx, channel).await;
            }
            .instrument(span),
        );
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::warn!(subsystem = name, "subsystem refused");
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Commands get a clean environment; client variables (LANG, LC_*) are not passed.
        // The one variable taken is the agent's stated reason, which goes to reviewers only.
        if name == session::REASON_VAR || name == session::MARK_VAR {
            session.channel_success(channel)?;
        } else {
            tracing::debug!(variable = name, "env request refused");
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single: bool,
        _proto: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Refused, and the session ends with the reason (as for agent forwarding): a client
        // that asked for X11 does not quietly get a session without it.
        tracing::warn!("X11 forwarding refused; ending the session");
        session.channel_failure(channel)?;
        let line =
            crate::deny::Deny::NotOffered("X11 forwarding is not allowed through Airlock".into())
                .line();
        session.extended_data(channel, 1, format!("{line}\r\n").into_bytes())?;
        session.exit_status_request(channel, crate::session::DENIED_EXIT)?;
        session.eof(channel)?;
        session.close(channel)?;
        Ok(())
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::warn!("agent forwarding refused");
        Ok(false)
    }

    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        host: &str,
        port: u32,
        _orig: &str,
        _orig_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::warn!(host, port, "local port forwarding refused");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::warn!(path, "unix socket forwarding refused");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::warn!(address, port = *port, "remote port forwarding refused");
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::warn!(path, "remote unix socket forwarding refused");
        Ok(false)
    }
}

/// The SSH user name as logged. It is the agent's to choose (it names a target only once
/// checked), so it is recorded as a string value — which the text log writes quoted and
/// escaped, so newlines and escape codes cannot forge lines — and cut to 64 characters.
fn user_as_logged(user: &str) -> &str {
    match user.char_indices().nth(64) {
        Some((i, _)) => &user[..i],
        None => user,
    }
}
