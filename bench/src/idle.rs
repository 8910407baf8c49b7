//! Idle agent sessions for the scale scenario: authenticated SSH connections, each with an
//! open session channel, held open by an in-process russh client. One process can hold
//! thousands of these, where thousands of `ssh` processes would measure the client instead.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, client::Msg};
use tokio::task::JoinSet;

pub struct Client;

impl client::Handler for Client {
    type Error = russh::Error;

    // The lab's gateway was started a moment ago with a fresh key on loopback; the
    // OpenSSH-client scenarios are where host keys matter.
    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub struct Idle {
    // Held only to keep the connection and its channel open.
    _sessions: Vec<(Handle<Client>, Channel<Msg>)>,
}

impl Idle {
    pub fn len(&self) -> usize {
        self._sessions.len()
    }
}

async fn one(port: u16, key: Arc<PrivateKey>) -> anyhow::Result<(Handle<Client>, Channel<Msg>)> {
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        ..Default::default()
    });
    let mut h = client::connect(config, ("127.0.0.1", port), Client).await?;
    let auth = h
        .authenticate_publickey("local", PrivateKeyWithHashAlg::new(key, None))
        .await?;
    anyhow::ensure!(auth.success(), "gateway refused the agent key");
    let ch = h.channel_open_session().await?;
    Ok((h, ch))
}

/// Open `n` idle sessions, `parallel` handshakes at a time, each within 30 s.
pub async fn open(
    port: u16,
    key_path: &std::path::Path,
    n: usize,
    parallel: usize,
) -> anyhow::Result<Idle> {
    let key = Arc::new(russh::keys::load_secret_key(key_path, None).context("agent key")?);
    let mut sessions = Vec::with_capacity(n);
    let mut set = JoinSet::new();
    let mut started = 0;
    while sessions.len() < n {
        while started < n && set.len() < parallel {
            let key = key.clone();
            set.spawn(async move {
                tokio::time::timeout(Duration::from_secs(30), one(port, key))
                    .await
                    .context("idle session handshake timed out")?
            });
            started += 1;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        sessions.push(done??);
    }
    Ok(Idle {
        _sessions: sessions,
    })
}
