//! Accepting connections, the gateway's background duties, and the shutdown drain.
//!
//! `run(ssh, reviewers, gateway, shutdown)` is the one entry point: the binary passes listeners
//! bound from config and SIGTERM/ctrl-c; tests bind port 0 and pass their own future.
//!
//! Shutdown drains, in this order: stop accepting; tell every session (waiting requests are
//! withdrawn and their agents told why; running commands get `[ssh] shutdown_grace`, then are
//! killed and that is recorded); wait until every session has closed its recording and
//! written `exec.exit`/`session.close`; disconnect the remaining connections; sign the final
//! checkpoint; stop the reviewer listener.

use std::future::Future;
use std::time::Duration;

use airlock_approvals::ledger::Event;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::handler::{AgentConnection, Edge};
use crate::login::Login;
use crate::preauth::{PreAuth, Refusal};
use crate::startup::Gateway;

/// How long the drain waits beyond the grace period for sessions to write their last records.
const DRAIN_MARGIN: Duration = Duration::from_secs(10);

/// Connections dropped at accept, logged as a summary at most every [`REFUSALS_EVERY`] (a
/// flood must not become a flood of log lines).
#[derive(Default)]
struct Refusals {
    since: Option<tokio::time::Instant>,
    counts: std::collections::BTreeMap<&'static str, u64>,
}

const REFUSALS_EVERY: Duration = Duration::from_secs(10);

impl Refusals {
    fn note(&mut self, why: Refusal) {
        *self.counts.entry(why.as_str()).or_default() += 1;
        let now = tokio::time::Instant::now();
        // The first refusal is logged at once, then a summary at most every REFUSALS_EVERY.
        let due = match self.since {
            None => true,
            Some(last) => now - last >= REFUSALS_EVERY,
        };
        if due {
            let summary: Vec<String> = self
                .counts
                .iter()
                .map(|(why, n)| format!("{n} × {why}"))
                .collect();
            tracing::warn!(refused = %summary.join("; "), "connections dropped before login");
            self.counts.clear();
            self.since = Some(now);
        }
    }
}

/// Serve agents on `ssh` and reviewers on `reviewers` until `shutdown` resolves, then drain.
pub async fn run(
    ssh: TcpListener,
    reviewers: TcpListener,
    gw: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Gateway {
        config,
        store,
        broker,
        audit,
        ssh: ssh_config,
        continuity,
        shared,
        stop,
        alive,
        mut drained,
        metrics,
        metrics_listener,
        reviewer_tls,
        ..
    } = gw;
    // The reviewer listener and the connections stop only after the drain.
    let (disconnect_tx, disconnect_rx) = watch::channel(false);
    let reviewer_stop = {
        let mut rx = disconnect_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut duties: Vec<JoinHandle<()>> = Vec::new();
    // SQLite's WAL is checkpointed here, off the request path (autocheckpoint is off).
    if !store.is_postgres() {
        let store = store.clone();
        duties.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = store.checkpoint_wal().await {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        }));
    }
    // Webhooks read the broker's events on their own; they never hold up a decision.
    duties.push(airlock_approvals::notify::spawn(
        broker.clone(),
        config.webhooks.clone(),
        config.reviewer_public_url.clone(),
    ));
    // `/metrics` and `/readyz` (docs/metrics.md): the listener crate asks the gateway.
    let ops: std::sync::Arc<dyn airlock_reviewer_ws::ops::Probes> =
        std::sync::Arc::new(crate::ops::Ops {
            config: config.clone(),
            store: store.clone(),
            continuity: continuity.clone(),
            shared: shared.clone(),
            metrics,
            recordings: config.recordings_dir(),
            probing: tokio::sync::Mutex::new(()),
        });
    let metrics_task = metrics_listener.map(|listener| {
        let mut rx = disconnect_rx.clone();
        tokio::spawn(airlock_reviewer_ws::ops::serve(
            listener,
            ops.clone(),
            config.reviewer_limits.clone(),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ))
    });
    let reviewer_task = tokio::spawn(airlock_reviewer_ws::run(
        reviewers,
        broker.clone(),
        airlock_reviewer_ws::Options {
            store: store.clone(),
            whitelist: config.whitelist.clone(),
            recordings: config.recordings_dir(),
            limits: config.reviewer_limits.clone(),
            oidc: config.reviewer_oidc.clone(),
            tls: reviewer_tls,
            public_url: config.reviewer_public_url.clone(),
            probes: Some(ops),
            agents: Some(std::sync::Arc::new(crate::agents_report::Directory {
                config: config.clone(),
                store: store.clone(),
            })),
        },
        reviewer_stop,
    ));
    // Sign the ledger head regularly, not only every N entries, so a quiet gateway's last
    // events are covered too; and remember the head beside the keys (see `continuity`).
    {
        let audit = audit.clone();
        let every = config.checkpoint_interval;
        let (continuity, store) = (continuity.clone(), store.clone());
        duties.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                audit.checkpoint().await;
                if let Err(e) = continuity.record_head(&store).await {
                    tracing::error!(error = %e, "cannot record the ledger head");
                }
            }
        }));
    }
    // The database file must stay the one opened: a deleted or replaced file refuses new
    // commands (checked every couple of seconds; logged once).
    {
        let continuity = continuity.clone();
        duties.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                continuity.check_file();
            }
        }));
    }
    // Cluster duties on PostgreSQL: heartbeat, expiring dead peers' requests, the safety
    // poll, and listening for peers' events. A single node on SQLite has no peers.
    if store.is_postgres() {
        duties.push(tokio::spawn(airlock_approvals::cluster::heartbeat(
            broker.clone(),
            config.cluster_heartbeat,
            config.cluster_stale_after,
        )));
        duties.push(tokio::spawn(airlock_approvals::cluster::listen(
            broker.clone(),
            config.database_url.clone(),
        )));
    }
    // Access grants: end what runs under a grant that expired or was revoked (on any node).
    duties.push(tokio::spawn(
        shared.grants.clone().run(store.clone(), audit.clone()),
    ));
    let edge = Edge {
        config: config.clone(),
        audit: audit.clone(),
        shared: shared.clone(),
    };
    let preauth = PreAuth::new(config.preauth.clone());
    let mut refusals = Refusals::default();
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
        // Before any byte is read: a source or a flood over its limits is dropped here.
        let startup = match preauth.admit(peer.ip()) {
            Ok(s) => s,
            Err(why) => {
                refusals.note(why);
                drop(stream);
                continue;
            }
        };
        // russh only applies `nodelay` on sockets it accepts itself; without it, small
        // packets wait on Nagle and the client's delayed ACK (40 ms per exchange).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        // russh runs the session in a task of its own, so dropping our future does not close
        // the socket: a duplicate of its descriptor lets the grace time shut it down for real
        // (the duplicate is ours, so it can never name another connection's socket).
        let killer = match std::os::fd::AsFd::as_fd(&stream).try_clone_to_owned() {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch a new connection; dropping it");
                continue;
            }
        };
        let login = Login::new(preauth.clone(), startup);
        let handler = AgentConnection::new(edge.clone(), peer, login.clone());
        let ssh_config = ssh_config.clone();
        let mut disconnect = disconnect_rx.clone();
        let preauth = preauth.clone();
        let span = tracing::info_span!("conn", %peer, agent = tracing::field::Empty);
        tokio::spawn(
            async move {
                let grace = preauth.config().login_grace;
                let conn = async {
                    // Acknowledge the client's packets at once (see `quickack` for why).
                    let stream = crate::quickack::QuickAck::new(stream);
                    match russh::server::run_stream(ssh_config, stream, handler).await {
                        Ok(session) => {
                            let handle = session.handle();
                            tokio::select! {
                                res = session => if let Err(e) = res {
                                    tracing::debug!(error = %e, "connection ended with error");
                                },
                                () = async { let _ = disconnect.wait_for(|s| *s).await; } => {
                                    let _ = handle
                                        .disconnect(russh::Disconnect::ByApplication, "airlock gateway shutting down".into(), "en".into())
                                        .await;
                                }
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "handshake failed"),
                    }
                };
                tokio::select! {
                    () = conn => {}
                    () = login.grace_over(grace) => {
                        tracing::info!(grace = ?grace, "no login within the grace time; closing");
                        // Whatever stage the session is in (version line, key exchange, auth),
                        // its reads fail now and russh's task ends.
                        let _ = nix::sys::socket::shutdown(
                            std::os::fd::AsRawFd::as_raw_fd(&killer),
                            nix::sys::socket::Shutdown::Both,
                        );
                    }
                }
                drop(killer);
                // A known agent that was refused (no slot, ledger down) proved its key: no penalty.
                if !login.logged_in() && !login.key_proven() {
                    preauth.penalize(peer.ip());
                }
            }
            .instrument(span),
        );
    }
    drop(ssh);
    let grace = config.shutdown_grace;
    let open = alive.strong_count().saturating_sub(1);
    tracing::info!(sessions = open, grace = ?grace, "shutting down: draining sessions");
    let _ = audit
        .write(Event::GatewayStop {
            sessions: open as u64,
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        })
        .await;
    let _ = stop.send(true);
    drop(alive);
    drop(edge);
    drop(shared);
    match tokio::time::timeout(grace + DRAIN_MARGIN, drained.recv()).await {
        Ok(_) => tracing::info!("every session closed"),
        Err(_) => tracing::error!("sessions still open after the drain deadline; stopping anyway"),
    }
    let _ = disconnect_tx.send(true);
    for d in duties {
        d.abort();
    }
    audit.checkpoint().await;
    if let Err(e) = continuity.record_head(&store).await {
        tracing::error!(error = %e, "cannot record the ledger head");
    }
    if let Some(Ok(Err(e))) = match metrics_task {
        Some(t) => Some(t.await),
        None => None,
    } {
        tracing::error!(error = %e, "metrics listener failed");
    }
    match reviewer_task.await {
        Ok(res) => res,
        Err(e) => Err(std::io::Error::other(e)),
    }
}
