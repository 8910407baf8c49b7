//! Start-up: open the data directory, database, keys and ledger; expire what a previous run
//! left pending; build the narrow handles every layer gets. The result, [`Gateway`], is what
//! the server serves and what the binary's banner describes.

use std::sync::Arc;
use std::time::Duration;

use airlock_approvals::ledger::Event;
use airlock_approvals::{Broker, Ledger, Store, now_ms};
use russh::keys::PrivateKey;
use russh::{MethodKind, cipher, compression, kex, mac};
use tokio::sync::{mpsc, watch};

use crate::audit::Audit;
use crate::config::Config;
use crate::continuity::Continuity;
use crate::gate::Gate;
use crate::hostkey;
use crate::record::Records;
use crate::state::{Limits, Sessions, Shared, Shutdown};
use crate::targets::Targets;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {msg}")]
    DataDir { path: String, msg: String },
    #[error(transparent)]
    HostKey(#[from] hostkey::HostKeyError),
    /// Its own message names the database (printed once: not repeated as a cause).
    #[error(transparent)]
    Store(#[from] airlock_approvals::StoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("ledger key {path}: {msg}")]
    LedgerKey { path: String, msg: String },
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// A secret others can read, or an agent list others can write (names the file).
    #[error("{0}")]
    Permissions(String),
    #[error(transparent)]
    Continuity(#[from] crate::continuity::ContinuityError),
    /// `[reviewer] tls_*`: names the certificate or key file.
    #[error("[reviewer] TLS: {0}")]
    ReviewerTls(#[from] airlock_reviewer_ws::TlsError),
    #[error(
        "node name {node:?} is in use: another gateway with it is running on this database (its heartbeat moved {ago_ms} ms ago). Give this one its own `node = \"…\"`, or stop the other"
    )]
    NodeTaken { node: String, ago_ms: i64 },
}

mod containment;
pub mod files;

/// What start-up found, for the banner.
pub struct StartInfo {
    pub host_key_fingerprint: String,
    pub host_key_line: String,
    /// True when this start generated the host key (first run).
    pub host_key_created: bool,
    /// Requests that were pending at start-up and were expired (their waiters are gone).
    pub expired_at_start: usize,
    /// `ed25519:…` public key that verifies ledger checkpoints.
    pub ledger_pubkey: String,
    pub ledger_key_created: bool,
    /// Per target: how its commands are contained (or that they are refused).
    pub containment: Vec<String>,
}

/// A gateway ready to serve.
pub struct Gateway {
    pub config: Arc<Config>,
    pub info: StartInfo,
    /// The reviewer listener's certificate (`[reviewer] tls_*`), loaded at start so a bad one
    /// stops it; `None`: plain HTTP.
    pub reviewer_tls: Option<Arc<airlock_reviewer_ws::Tls>>,
    pub(crate) store: Store,
    pub(crate) broker: Broker,
    pub(crate) audit: Audit,
    /// russh server settings with our host key and publickey-only auth.
    pub(crate) ssh: Arc<russh::server::Config>,
    pub(crate) continuity: Arc<Continuity>,
    pub(crate) shared: Arc<Shared>,
    /// Tells sessions the gateway stops.
    pub(crate) stop: watch::Sender<bool>,
    /// The drain's strong handle on the sessions in flight (see [`Sessions`]).
    pub(crate) alive: mpsc::Sender<()>,
    pub(crate) drained: mpsc::Receiver<()>,
    /// What the layers count (docs/metrics.md).
    pub(crate) metrics: crate::metrics::Metrics,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (`[metrics] listen`), bound by
    /// the binary; `None`: nowhere but `/healthz` and `/readyz` on the reviewer listener.
    pub metrics_listener: Option<tokio::net::TcpListener>,
}

impl Gateway {
    /// Open the data directory, database and keys; expire requests left pending by a
    /// previous run (whoever waited for them is gone, so they must never be approved).
    pub async fn open(config: Config) -> Result<Self, StartError> {
        // Key paths first: a typo must stop start-up before anything is created.
        for (path, key) in [
            (&config.host_key, "[ssh] host_key"),
            (&config.ledger_key, "[ledger] key"),
        ] {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
                && dir != config.data_dir
                && !dir.is_dir()
            {
                let (path, msg) = (
                    path.display().to_string(),
                    format!(
                        "directory {} does not exist (a typo in {key}?); create it, or fix the path",
                        dir.display()
                    ),
                );
                return Err(if key == "[ssh] host_key" {
                    StartError::HostKey(hostkey::HostKeyError::Io { path, msg })
                } else {
                    StartError::LedgerKey { path, msg }
                });
            }
        }
        files::check_secrets(&config)?;
        files::private_data_dir(&config.data_dir)?;
        files::hold_serve_lock(&config.data_dir)?;
        std::fs::create_dir_all(config.recordings_dir()).map_err(|e| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            msg: e.to_string(),
        })?;
        Continuity::precheck(&config.data_dir, &config.database_url)?;
        let reviewer_tls = match config.reviewer_tls.clone() {
            Some(source) => Some(Arc::new(airlock_reviewer_ws::Tls::load(source)?)),
            None => None,
        };
        let store =
            Store::connect_within(&config.database_url, config.database_connect_timeout).await?;
        files::private_database(&config.database_url)?;
        if store.is_postgres() {
            node_is_free(&store, &config).await?;
        }
        // Before anything is written: is this the database (and ledger) we had?
        let continuity = Continuity::open(&store, &config.data_dir, &config.database_url).await?;
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
            .append(&Event::ConfigLoaded {
                source: config.source.clone(),
                config_sha256: config.config_sha256.clone(),
                expired_requests: expired.len() as u64,
                interrupted_sessions: interrupted,
            })
            .await?;
        continuity.record_head(&store).await?;
        let local = containment::open(&config)?;
        let containment = containment::status_lines(&config, &local);
        let config = Arc::new(config);
        let metrics = crate::metrics::Metrics::new(ledger.counts());
        let audit = Audit::new(ledger.clone());
        let broker = Broker::for_node(
            store.clone(),
            ledger,
            config.node.clone(),
            config.authority.clone(),
        );
        let (stop, stop_rx) = watch::channel(false);
        let (alive, drained) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            gate: Gate::new(config.clone(), store.clone(), continuity.clone())?
                .with_metrics(metrics.clone()),
            broker: broker.clone(),
            records: Records::new(
                store.clone(),
                audit.clone(),
                config.recordings_dir(),
                metrics.clone(),
            ),
            targets: Targets::new(audit.clone(), local),
            limits: Limits {
                node: config.node.clone(),
                approval_timeout: config.approval_timeout,
                idle_timeout: config.idle_timeout,
                max_session: config.max_session,
                shutdown_grace: config.shutdown_grace,
                when_nobody_online: config.when_nobody_online,
            },
            shutdown: Shutdown::new(stop_rx),
            sessions: Sessions::new(&alive),
            grants: crate::grants::Grants::default(),
        });
        Ok(Self {
            info: StartInfo {
                host_key_fingerprint: hostkey::fingerprint(&key),
                host_key_line: hostkey::public_line(&key),
                host_key_created: created,
                expired_at_start: expired.len(),
                ledger_pubkey,
                ledger_key_created,
                containment,
            },
            reviewer_tls,
            ssh: Arc::new(ssh_config(key)),
            continuity,
            store,
            broker,
            audit,
            shared,
            stop,
            alive,
            drained,
            metrics,
            metrics_listener: None,
            config,
        })
    }
}

/// The SSH profile agents get: post-quantum hybrid key exchange first and curve25519 for older
/// clients (no classical Diffie-Hellman groups: slow, weaker, and the lever of DHEat floods),
/// AEAD ciphers only, encrypt-then-MAC MACs (never used with AEAD, but offered in that form),
/// no compression (none before authentication either), and a banner without a version.
const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::EXTENSION_SUPPORT_AS_SERVER,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];
const CIPHERS: &[cipher::Name] = &[
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
];
const MACS: &[mac::Name] = &[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM];
const COMPRESSION: &[compression::Name] = &[compression::NONE];

/// In a cluster, a node name is one live gateway: a second one with the same name would expire
/// the first one's pending requests and take its agents' verdicts. A heartbeat that still
/// moves means that gateway is alive (one that crashed stops beating, and may be restarted).
async fn node_is_free(store: &Store, config: &Config) -> Result<(), StartError> {
    let Some(first) = store.node_heartbeat(&config.node).await? else {
        return Ok(());
    };
    let stale_ms = config.cluster_stale_after.as_millis() as i64;
    // Watch the heartbeat for as long as peers would still count that node alive: a node that
    // is merely slow (a long pause, a slow database) beats again within that window; one that
    // crashed does not (and a restart after a crash waits at most `stale_after`).
    while now_ms() - first <= stale_ms {
        tokio::time::sleep(config.cluster_heartbeat).await;
        if let Some(later) = store.node_heartbeat(&config.node).await?
            && later != first
        {
            return Err(StartError::NodeTaken {
                node: config.node.clone(),
                ago_ms: now_ms() - later,
            });
        }
    }
    Ok(())
}

fn ssh_config(key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-Airlock".into()),
        preferred: russh::Preferred {
            kex: KEX.into(),
            cipher: CIPHERS.into(),
            mac: MACS.into(),
            compression: COMPRESSION.into(),
            ..russh::Preferred::default()
        },
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
