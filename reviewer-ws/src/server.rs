//! The reviewer listener: `GET /ws` (WebSocket) and `GET /healthz`.
//!
//! Authentication (see `identity`) is a reviewer token, as `Authorization: Bearer …` on the
//! upgrade or, for browsers, as the first frame `{"type":"auth","token":…}`, or a single
//! sign-on session cookie on the upgrade. The proof is re-checked on every vote so a removed
//! reviewer or an ended session cannot keep voting on an open socket. Tokens are never logged.
//! Each socket subscribes to broker events before it reads the snapshot, so nothing falls in
//! between; a reviewer that lags behind the event stream gets a fresh snapshot.
//!
//! Scopes: a socket is sent only the requests its reviewer's groups may see (the snapshot and
//! every push), and votes and outcomes only for those; votes outside scope are refused by the
//! broker.
//!
//! Connections are accepted and timed out by `accept` within [`Limits`]; a browser socket
//! that still owes its auth frame holds one of [`Limits::max_unauthenticated`] seats.
//!
//! With [`Options::tls`] the listener speaks only TLS, sends HSTS, and reloads its
//! certificate on SIGHUP (see `tls`); without it, a listener bound beyond loopback is warned
//! about at start. Browser origins are checked by `origin` (`[reviewer] public_url`).

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlock_approvals::broker::DecideAck;
use airlock_approvals::{Broker, BrokerEvent, Remember, Reviewer, Store, WhitelistRules};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use crate::agents::AgentDirectory;
use crate::identity::{AuthFailure, Identity};
use crate::limits::{Limits, Unauthenticated};
use crate::protocol::{ClientMsg, RequestMsg, ServerMsg};

/// Largest frame a reviewer may send; decisions are tiny.
const MAX_FRAME: usize = 64 * 1024;
/// Time a browser has to send its auth frame.
const AUTH_WAIT: Duration = Duration::from_secs(10);
/// How often an open socket's proof (token or session) is checked again.
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) broker: Broker,
    /// Reviewer tokens and history are read here; votes go through the broker.
    pub(crate) store: Store,
    /// What an approve-and-remember may choose.
    rules: Arc<WhitelistRules>,
    /// Where session recordings are (`<session id>.cast`), for playback and screens.
    pub(crate) recordings: Arc<PathBuf>,
    /// Seats for sockets that have not sent their auth frame yet.
    unauthenticated: Unauthenticated,
    /// Single sign-on for the page, when `[reviewer.oidc]` is configured.
    pub(crate) sso: Option<Arc<crate::sso::Sso>>,
    /// Agent reports for the Agents tab (`None`: the tab's API answers 404).
    pub(crate) agents: Option<Arc<dyn AgentDirectory>>,
    /// `scheme://host[:port]` of `[reviewer] public_url`: a browser origin accepted besides
    /// the request's own `Host` (behind a reverse proxy).
    public_origin: Option<Arc<str>>,
    /// Readiness checks for `/readyz` (`None`: it answers 404).
    pub(crate) probes: Option<Arc<dyn crate::ops::Probes>>,
}

impl AppState {
    /// Cross-site guard for browser requests (see `origin`).
    pub(crate) fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        crate::origin::allowed(headers, self.public_origin.as_deref())
    }
}

/// What the listener needs besides the broker.
pub struct Options {
    /// Reviewer tokens, history and sessions (read only; every change goes through the broker).
    pub store: Store,
    pub whitelist: WhitelistRules,
    pub recordings: PathBuf,
    /// Connection caps and timeouts; [`Limits::default`] unless configured.
    pub limits: Limits,
    /// OpenID Connect sign-in for the page (`None`: tokens only).
    pub oidc: Option<crate::sso::OidcSettings>,
    /// Agent reports for the Agents tab, built by the gateway (this crate cannot see its
    /// config); `None`: `/api/agents` answers 404.
    pub agents: Option<Arc<dyn AgentDirectory>>,
    /// Serve over TLS with this certificate (`None`: plain HTTP).
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// The page's address as browsers reach it (`[reviewer] public_url`); its origin is
    /// accepted by the cross-site checks.
    pub public_url: Option<String>,
    /// Readiness checks for `/readyz` (docs/metrics.md); `None`: it answers 404.
    pub probes: Option<Arc<dyn crate::ops::Probes>>,
}

impl Options {
    /// Options with the default [`Limits`].
    pub fn new(store: Store, whitelist: WhitelistRules, recordings: PathBuf) -> Self {
        Self {
            store,
            whitelist,
            recordings,
            limits: Limits::default(),
            oidc: None,
            agents: None,
            tls: None,
            public_url: None,
            probes: None,
        }
    }
}

/// Serve reviewers (socket, web page, read API) on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    broker: Broker,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sso = match options.oidc {
        Some(s) => Some(Arc::new(crate::sso::Sso::new(s).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("[reviewer.oidc]: {e}"),
            )
        })?)),
        None => None,
    };
    let public_origin = match options.public_url.as_deref() {
        None => None,
        Some(url) => Some(Arc::from(crate::origin::of(url).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("[reviewer] public_url {url:?}: not an http(s) URL"),
            )
        })?)),
    };
    let local = listener.local_addr()?;
    if options.tls.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            listen = %local,
            "reviewer listener reachable beyond this host without TLS: tokens, sign-on \
             cookies and votes cross the network in clear text; set [reviewer] tls_cert and \
             tls_key (or tls_self_signed = true), or bind to 127.0.0.1 behind a TLS reverse \
             proxy (docs/tls.md)"
        );
    }
    let app = Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(st): State<AppState>| async move {
                crate::ops::readyz(st.probes.as_ref()).await
            }),
        )
        .merge(crate::web::routes())
        .merge(crate::proposals::routes())
        .merge(crate::agents::routes())
        .merge(crate::insights::routes())
        .merge(crate::sso::routes())
        .with_state(AppState {
            broker,
            store: options.store,
            rules: Arc::new(options.whitelist),
            recordings: Arc::new(options.recordings),
            unauthenticated: Unauthenticated::new(options.limits.sane().max_unauthenticated),
            sso,
            agents: options.agents,
            public_origin,
            probes: options.probes,
        });
    let Some(tls) = options.tls else {
        return crate::accept::serve(listener, app, options.limits, None, shutdown).await;
    };
    let app = app.layer(axum::middleware::map_response(crate::tls::hsts));
    let reload = tokio::spawn(crate::tls::reload_on_hangup(tls.clone()));
    let served = crate::accept::serve(
        listener,
        app,
        options.limits,
        Some(tls.acceptor()),
        shutdown,
    )
    .await;
    reload.abort();
    served
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn ws_upgrade(
    State(st): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Cross-site WebSocket hijacking guard: a browser page may only connect from our origin.
    if !st.origin_allowed(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "airlock: cross-origin WebSocket refused\n",
        )
            .into_response();
    }
    let reviewer = match st.identify(&headers).await {
        Ok(id) => Some(id),
        Err(AuthFailure::Missing) => None,
        Err(AuthFailure::Bad(why)) => {
            return (StatusCode::UNAUTHORIZED, format!("airlock: {why}\n")).into_response();
        }
        Err(AuthFailure::Store(e)) => {
            tracing::error!(error = %e, "token check failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "airlock: store unavailable\n",
            )
                .into_response();
        }
    };
    // Without a token the socket waits up to AUTH_WAIT for one: that wait needs a seat.
    let seat = match reviewer {
        Some(_) => None,
        None => match st.unauthenticated.seat() {
            Some(seat) => Some(seat),
            None => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "airlock: too many WebSockets waiting to authenticate; retry, or send \
                     Authorization: Bearer on the upgrade\n",
                )
                    .into_response();
            }
        },
    };
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            let span = tracing::info_span!("reviewer", name = tracing::field::Empty);
            serve_socket(socket, st, reviewer, seat)
                .instrument(span)
                .await;
        })
}

async fn send(socket: &mut WebSocket, m: &ServerMsg) -> bool {
    socket.send(Message::Text(m.to_json().into())).await.is_ok()
}

/// Wait for `{"type":"auth"}` as the first frame.
async fn first_frame_auth(socket: &mut WebSocket, st: &AppState) -> Option<Identity> {
    let frame = tokio::time::timeout(AUTH_WAIT, socket.recv())
        .await
        .ok()??
        .ok()?;
    let token = match &frame {
        Message::Text(text) => match serde_json::from_str::<ClientMsg>(text) {
            Ok(ClientMsg::Auth { token }) => Some(token),
            _ => None,
        },
        _ => None,
    };
    let refusal = match token {
        None => ServerMsg::error(
            "unauthorized",
            "send {\"type\":\"auth\",\"token\":…} first",
            None,
        ),
        Some(token) => match st.by_token(&token).await {
            Ok(id) => return Some(id),
            Err(AuthFailure::Bad(why)) => ServerMsg::error("bad_token", why, None),
            Err(AuthFailure::Missing) => ServerMsg::error("bad_token", "empty token", None),
            Err(AuthFailure::Store(e)) => {
                ServerMsg::error("internal", format!("cannot check token: {e}"), None)
            }
        },
    };
    send(socket, &refusal).await;
    None
}

/// The pending requests `who` may see; `visible` becomes their ids (later votes and outcomes
/// are sent only for those).
async fn snapshot(broker: &Broker, who: &Reviewer, visible: &mut HashSet<String>) -> ServerMsg {
    match broker.pending_for(who).await {
        Ok(reqs) => {
            *visible = reqs.iter().map(|r| r.id.clone()).collect();
            ServerMsg::Snapshot {
                requests: reqs.iter().map(RequestMsg::from).collect(),
            }
        }
        Err(e) => ServerMsg::error(
            "internal",
            format!("cannot read pending requests: {e}"),
            None,
        ),
    }
}

/// `seat` is the unauthenticated seat of a socket that must still send its auth frame; it is
/// given back as soon as that is settled either way.
async fn serve_socket(
    mut socket: WebSocket,
    st: AppState,
    reviewer: Option<Identity>,
    seat: Option<OwnedSemaphorePermit>,
) {
    let broker = st.broker.clone();
    let reviewer = match reviewer {
        Some(r) => Some(r),
        None => first_frame_auth(&mut socket, &st).await,
    };
    drop(seat);
    let Some(me) = reviewer else {
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let name = me.reviewer.name.clone();
    tracing::Span::current().record("name", name.as_str());
    tracing::info!(groups = ?me.reviewer.groups, "reviewer connected");
    // Counted as present (agents are told) until this socket closes.
    let _seat = broker
        .presence()
        .join_with(&name, me.reviewer.groups.clone());
    let mut events = broker.subscribe();
    // Requests this reviewer was shown (their scope): only their votes and outcomes are sent.
    let mut visible: HashSet<String> = HashSet::new();
    if !send(
        &mut socket,
        &ServerMsg::Hello {
            reviewer: name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            groups: me.reviewer.groups.iter().cloned().collect(),
        },
    )
    .await
        || !send(
            &mut socket,
            &snapshot(&broker, &me.reviewer, &mut visible).await,
        )
        .await
    {
        return;
    }
    // The proof is re-checked on this beat too, not only at a vote: a removed reviewer or an
    // ended or expired session stops *reading* within RECHECK as well.
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.tick().await;
    loop {
        tokio::select! {
            _ = recheck.tick() => {
                let why = match st.still_valid(&me).await {
                    Ok(true) => continue,
                    Ok(false) => "your token was removed or your session ended; sign in again".to_owned(),
                    Err(e) => format!("cannot check your sign-in: {e}"),
                };
                tracing::info!(%why, "reviewer socket closed");
                let _ = send(&mut socket, &ServerMsg::error("bad_token", why, None)).await;
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            frame = socket.recv() => {
                let Some(Ok(frame)) = frame else { break };
                let reply = match frame {
                    Message::Text(text) => handle(&st, &me, &text).await,
                    Message::Binary(_) => Some(ServerMsg::error("bad_message", "binary frames are not part of the protocol", None)),
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply {
                    let fatal = matches!(&reply, ServerMsg::Error { code, .. } if code == "bad_token");
                    if !send(&mut socket, &reply).await || fatal {
                        break;
                    }
                }
            }
            ev = events.recv() => {
                let msg = match ev {
                    Ok(BrokerEvent::Requested(r)) => {
                        if !broker.may_see(&me.reviewer, &r) {
                            continue;
                        }
                        visible.insert(r.id.clone());
                        ServerMsg::Request(Box::new(RequestMsg::from(&*r)))
                    }
                    Ok(BrokerEvent::Voted { id, reviewer, decision, approvals, progress }) => {
                        if !visible.contains(&id) {
                            continue;
                        }
                        let progress_text = progress.to_string();
                        ServerMsg::Vote { id, reviewer, decision, approvals, progress, progress_text }
                    }
                    Ok(BrokerEvent::Resolved { id, outcome, by, approvers, comment, why }) => {
                        if !visible.remove(&id) {
                            continue;
                        }
                        ServerMsg::Resolved { id, outcome, by, approvers, comment, why }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "reviewer lagged; sending a fresh snapshot");
                        snapshot(&broker, &me.reviewer, &mut visible).await
                    }
                    Err(RecvError::Closed) => break,
                };
                if !send(&mut socket, &msg).await {
                    break;
                }
            }
        }
    }
    tracing::info!("reviewer disconnected");
}

async fn handle(st: &AppState, me: &Identity, text: &str) -> Option<ServerMsg> {
    let name = me.reviewer.name.as_str();
    let broker = &st.broker;
    let msg = match serde_json::from_str::<ClientMsg>(text) {
        Ok(m) => m,
        Err(e) => {
            return Some(ServerMsg::error(
                "bad_message",
                format!("not a valid message: {e}"),
                None,
            ));
        }
    };
    match msg {
        ClientMsg::Ping => Some(ServerMsg::Pong),
        ClientMsg::Auth { .. } => Some(ServerMsg::error(
            "bad_message",
            "already authenticated",
            None,
        )),
        ClientMsg::Decide {
            id,
            decision,
            comment,
            remember,
        } => {
            // Removed reviewers lose their vote at once, even on an open socket.
            match st.still_valid(me).await {
                Ok(true) => {}
                Ok(false) => {
                    return Some(ServerMsg::error(
                        "bad_token",
                        "token no longer valid",
                        Some(&id),
                    ));
                }
                Err(e) => {
                    return Some(ServerMsg::error(
                        "internal",
                        format!("store error: {e}"),
                        Some(&id),
                    ));
                }
            }
            let span = tracing::info_span!("decide", request = %id, decision = decision.as_str());
            async {
                // Check a remember before voting, so a refused one leaves no vote behind.
                let remember = match remember {
                    Some(r) => match rememberable(st, me, &id, decision, r).await {
                        Ok(v) => Some(v),
                        Err(refusal) => return Some(refusal),
                    },
                    None => None,
                };
                let res = broker
                    .decide(&me.reviewer, &id, decision, comment.as_deref())
                    .await;
                let mut ack = match res {
                    Ok(DecideAck::Counted {
                        approvals,
                        needed,
                        progress,
                    }) => ServerMsg::Ack {
                        id: id.clone(),
                        result: "counted".into(),
                        approvals,
                        approvals_needed: needed,
                        progress_text: progress.to_string(),
                        progress,
                        whitelisted: None,
                    },
                    Ok(DecideAck::Resolved {
                        outcome,
                        approvals,
                        needed,
                        progress,
                    }) => ServerMsg::Ack {
                        id: id.clone(),
                        result: outcome.as_str().into(),
                        approvals,
                        approvals_needed: needed,
                        progress_text: progress.to_string(),
                        progress,
                        whitelisted: None,
                    },
                    Err(e) => return Some(ServerMsg::error(e.code(), e.to_string(), Some(&id))),
                };
                if let (Some((request, choice, expires_at)), ServerMsg::Ack { whitelisted, .. }) =
                    (remember, &mut ack)
                {
                    match broker.remember(name, &request, &choice, expires_at).await {
                        Ok(entry) => *whitelisted = Some(entry.id),
                        // The vote stands; say plainly that nothing was remembered.
                        Err(e) => {
                            return Some(ServerMsg::error(
                                e.code(),
                                format!("vote counted, but not remembered: {e}"),
                                Some(&id),
                            ));
                        }
                    }
                }
                Some(ack)
            }
            .instrument(span)
            .await
        }
    }
}

/// An approve-and-remember is only for approvals of requests that may be whitelisted, with
/// a TTL the rules allow; `Ok` carries the entry's expiry, `Err` the refusal to send (and no
/// vote is cast).
async fn rememberable(
    st: &AppState,
    me: &Identity,
    id: &str,
    decision: airlock_approvals::VoteDecision,
    choice: Remember,
) -> Result<(airlock_approvals::RequestView, Remember, Option<i64>), ServerMsg> {
    if decision != airlock_approvals::VoteDecision::Approve {
        return Err(ServerMsg::error(
            "bad_message",
            "remember goes with approve only",
            Some(id),
        ));
    }
    let request = match st.store.get_request(id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(ServerMsg::error(
                "unknown_request",
                format!("unknown request {id}"),
                Some(id),
            ));
        }
        Err(e) => return Err(ServerMsg::error("internal", e.to_string(), Some(id))),
    };
    if choice.any_target && !st.broker.authority().unscoped(&me.reviewer) {
        return Err(ServerMsg::error(
            "out_of_scope",
            "your reviewer groups are scoped: remember for this target only",
            Some(id),
        ));
    }
    if !st.broker.may_see(&me.reviewer, &request) {
        // Said before anything about the request itself (its tier, its rules) is.
        return Err(ServerMsg::error(
            "out_of_scope",
            format!("request {id} is outside the scope of your reviewer groups"),
            Some(id),
        ));
    }
    match st
        .rules
        .check_remember(&request, &choice, airlock_approvals::now_ms())
    {
        Ok(expires_at) => Ok((request, choice, expires_at)),
        Err(e) => Err(ServerMsg::error(e.code(), e.to_string(), Some(id))),
    }
}
