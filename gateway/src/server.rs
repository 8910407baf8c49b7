//! Accepting connections and wiring the gateway's shared state.
//!
//! `run(ssh, reviewers, gateway, shutdown)` is the one entry point: the binary passes listeners
//! bound from config and ctrl-c; tests bind port 0 and pass their own shutdown future.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use airlock_approvals::{Broker, Ledger, Policy, Store, now_ms};
use airlock_classifier::Classifier;
use russh::MethodKind;
use russh::keys::PrivateKey;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use crate::config::Config;
use crate::handler::AgentConnection;
use crate::hostkey;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {msg}")]
    DataDir { path: String, msg: String },
    #[error(transparent)]
    HostKey(#[from] hostkey::HostKeyError),
    #[error("database: {0}")]
    Store(#[from] airlock_approvals::StoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("ledger key {path}: {msg}")]
    LedgerKey { path: String, msg: String },
}

/// Everything sessions share. Built once at start-up.
pub struct Gateway {
    pub config: Config,
    pub classifier: Classifier,
    pub policy: Policy,
    pub broker: Broker,
    /// Connections to upstream SSH targets, one per target, reused across commands.
    pub upstream: crate::target::upstream::Upstream,
    /// russh server settings with our host key and publickey-only auth.
    pub ssh: Arc<russh::server::Config>,
    pub host_key_fingerprint: String,
    pub host_key_line: String,
    /// True when this start generated the host key (first run).
    pub host_key_created: bool,
    /// Requests that were pending at start-up and were expired (their waiters are gone).
    pub expired_at_start: usize,
    /// `ed25519:…` public key that verifies ledger checkpoints.
    pub ledger_pubkey: String,
    pub ledger_key_created: bool,
}

impl Gateway {
    /// Open the data directory, database and host key; expire requests left pending by a
    /// previous run (whoever waited for them is gone, so they must never be approved).
    pub async fn open(config: Config) -> Result<Arc<Self>, StartError> {
        std::fs::create_dir_all(config.recordings_dir()).map_err(|e| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            msg: e.to_string(),
        })?;
        let store = Store::connect(&config.database_url).await?;
        // Only this node's requests: in a cluster, peers' waiting agents are alive.
        let expired = store
            .expire_pending_of(
                &config.node,
                "gateway restarted while the request was pending",
                now_ms(),
            )
            .await?;
        let interrupted = store.interrupt_open_sessions(now_ms()).await?;
        if interrupted > 0 {
            tracing::warn!(
                sessions = interrupted,
                "sessions left open by the previous run marked interrupted"
            );
        }
        let (key, created) = hostkey::load_or_create(&config.host_key)?;
        let (ledger_key, ledger_key_created) =
            airlock_approvals::ledger::load_or_create_key(&config.ledger_key).map_err(|e| {
                StartError::LedgerKey {
                    path: config.ledger_key.display().to_string(),
                    msg: e.to_string(),
                }
            })?;
        let ledger = Ledger::new(store.clone(), Some(ledger_key), config.checkpoint_every)
            .with_node(&config.node);
        let ledger_pubkey = ledger.pubkey().unwrap_or_default();
        ledger
            .append(
                "config.loaded",
                serde_json::json!({
                    "node": config.node, "source": config.source,
                    "config_sha256": config.config_sha256,
                    "expired_requests": expired.len(), "interrupted_sessions": interrupted,
                }),
            )
            .await?;
        let classifier = config.classifier();
        let policy = config.policy();
        Ok(Arc::new(Self {
            ssh: Arc::new(ssh_config(key.clone())),
            host_key_fingerprint: hostkey::fingerprint(&key),
            host_key_line: hostkey::public_line(&key),
            host_key_created: created,
            expired_at_start: expired.len(),
            ledger_pubkey,
            ledger_key_created,
            classifier,
            policy,
            broker: Broker::for_node(store, ledger, config.node.clone()),
            upstream: Default::default(),
            config,
        }))
    }
}

fn ssh_config(key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-Airlock_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: (&[MethodKind::PublicKey][..]).into(),
        keys: vec![key],
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::from_millis(0)),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 4,
        nodelay: true,
        ..Default::default()
    }
}

/// Serve agents on `ssh` and reviewers on `reviewers` until `shutdown` resolves.
pub async fn run(
    ssh: TcpListener,
    reviewers: TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let reviewer_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // Webhooks read the broker's events on their own; they never hold up a decision.
    // SQLite's WAL is checkpointed here, off the request path (autocheckpoint is off).
    let wal = (!gw.broker.store().is_postgres()).then(|| {
        let store = gw.broker.store().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = store.checkpoint_wal().await {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        })
    });
    let notifier = airlock_approvals::notify::spawn(gw.broker.clone(), gw.config.webhooks.clone());
    let reviewer_task = tokio::spawn(airlock_reviewer_ws::run(
        reviewers,
        gw.broker.clone(),
        airlock_reviewer_ws::Options {
            whitelist: gw.config.whitelist.clone(),
            recordings: gw.config.recordings_dir(),
        },
        reviewer_stop,
    ));
    // Sign the ledger head regularly, not only every N entries, so a quiet gateway's last
    // events are covered too.
    let checkpoints = {
        let ledger = gw.broker.ledger().clone();
        let every = gw.config.checkpoint_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = ledger.checkpoint().await {
                    tracing::error!(error = %e, "ledger checkpoint failed");
                }
            }
        })
    };
    // Cluster duties on PostgreSQL: heartbeat, expiring dead peers' requests, the safety
    // poll, and listening for peers' events.
    // A single node on SQLite has no peers: nothing to beat, listen for or poll.
    let cluster = gw.broker.store().is_postgres().then(|| {
        (
            tokio::spawn(airlock_approvals::cluster::heartbeat(
                gw.broker.clone(),
                gw.config.cluster_heartbeat,
                gw.config.cluster_stale_after,
            )),
            tokio::spawn(airlock_approvals::cluster::listen(
                gw.broker.clone(),
                gw.config.database_url.clone(),
            )),
        )
    });
    let limit = Arc::new(Semaphore::new(gw.config.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = ssh.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // russh only applies `nodelay` on sockets it accepts itself; without it, small
        // packets wait on Nagle and the client's delayed ACK (40 ms per exchange).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; refusing");
            drop(stream);
            continue;
        };
        let gw = gw.clone();
        let mut stop = stop_rx.clone();
        let span = tracing::info_span!("conn", %peer, agent = tracing::field::Empty);
        tokio::spawn(
            async move {
                let _permit = permit;
                let handler = AgentConnection::new(gw.clone(), peer);
                match russh::server::run_stream(gw.ssh.clone(), stream, handler).await {
                    Ok(session) => {
                        let handle = session.handle();
                        tokio::select! {
                            res = session => if let Err(e) = res {
                                tracing::debug!(error = %e, "connection ended with error");
                            },
                            () = async { let _ = stop.wait_for(|s| *s).await; } => {
                                let _ = handle
                                    .disconnect(russh::Disconnect::ByApplication, "airlock gateway shutting down".into(), "en".into())
                                    .await;
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "handshake failed"),
                }
            }
            .instrument(span),
        );
    }
    let _ = stop_tx.send(true);
    checkpoints.abort();
    notifier.abort();
    if let Some(wal) = wal {
        wal.abort();
    }
    if let Some((heartbeat, listener)) = cluster {
        heartbeat.abort();
        listener.abort();
    }
    if let Err(e) = gw.broker.ledger().checkpoint().await {
        tracing::error!(error = %e, "final ledger checkpoint failed");
    }
    match reviewer_task.await {
        Ok(res) => res,
        Err(e) => Err(std::io::Error::other(e)),
    }
}
