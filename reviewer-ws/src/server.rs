//! The reviewer listener: `GET /ws` (WebSocket) and `GET /healthz`.
//!
//! Authentication is a reviewer token, as `Authorization: Bearer …` on the upgrade or, for
//! browsers, as the first frame `{"type":"auth","token":…}`. The token is re-checked on every
//! vote so a removed reviewer cannot keep voting on an open socket. Tokens are never logged.
//! Each socket subscribes to broker events before it reads the snapshot, so nothing falls in
//! between; a reviewer that lags behind the event stream gets a fresh snapshot.
//!
//! Connections are accepted and timed out by `accept` within [`Limits`]; a browser socket
//! that still owes its auth frame holds one of [`Limits::max_unauthenticated`] seats.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlock_approvals::broker::DecideAck;
use airlock_approvals::{Broker, BrokerEvent, Remember, Store, WhitelistRules};
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

use crate::limits::{Limits, Unauthenticated};
use crate::protocol::{ClientMsg, RequestMsg, ServerMsg};

/// Largest frame a reviewer may send; decisions are tiny.
const MAX_FRAME: usize = 64 * 1024;
/// Time a browser has to send its auth frame.
const AUTH_WAIT: Duration = Duration::from_secs(10);

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
}

/// What the listener needs besides the broker.
pub struct Options {
    /// Reviewer tokens, history and sessions (read only; every change goes through the broker).
    pub store: Store,
    pub whitelist: WhitelistRules,
    pub recordings: PathBuf,
    /// Connection caps and timeouts; [`Limits::default`] unless configured.
    pub limits: Limits,
}

impl Options {
    /// Options with the default [`Limits`].
    pub fn new(store: Store, whitelist: WhitelistRules, recordings: PathBuf) -> Self {
        Self {
            store,
            whitelist,
            recordings,
            limits: Limits::default(),
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
    let app = Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(crate::web::routes())
        .with_state(AppState {
            broker,
            store: options.store,
            rules: Arc::new(options.whitelist),
            recordings: Arc::new(options.recordings),
            unauthenticated: Unauthenticated::new(options.limits.sane().max_unauthenticated),
        });
    crate::accept::serve(listener, app, options.limits, shutdown).await
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Cross-site WebSocket hijacking guard: a browser page may only connect to its own origin.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true; // not a browser
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
    });
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

async fn ws_upgrade(
    State(st): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "airlock: cross-origin WebSocket refused\n",
        )
            .into_response();
    }
    let reviewer = match bearer(&headers) {
        Some(token) => match st.store.reviewer_for_token(token).await {
            Ok(Some(name)) => Some((name, token.to_owned())),
            Ok(None) => return (StatusCode::UNAUTHORIZED, "airlock: bad token\n").into_response(),
            Err(e) => {
                tracing::error!(error = %e, "token check failed");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "airlock: store unavailable\n",
                )
                    .into_response();
            }
        },
        None => None,
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
async fn first_frame_auth(socket: &mut WebSocket, store: &Store) -> Option<(String, String)> {
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
        Some(token) => match store.reviewer_for_token(&token).await {
            Ok(Some(name)) => return Some((name, token)),
            Ok(None) => ServerMsg::error("bad_token", "bad token", None),
            Err(e) => ServerMsg::error("internal", format!("cannot check token: {e}"), None),
        },
    };
    send(socket, &refusal).await;
    None
}

async fn snapshot(broker: &Broker) -> ServerMsg {
    match broker.pending().await {
        Ok(reqs) => ServerMsg::Snapshot {
            requests: reqs.iter().map(RequestMsg::from).collect(),
        },
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
    reviewer: Option<(String, String)>,
    seat: Option<OwnedSemaphorePermit>,
) {
    let broker = st.broker.clone();
    let reviewer = match reviewer {
        Some(r) => Some(r),
        None => first_frame_auth(&mut socket, &st.store).await,
    };
    drop(seat);
    let Some((name, token)) = reviewer else {
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    tracing::Span::current().record("name", name.as_str());
    tracing::info!("reviewer connected");
    // Counted as present (agents are told) until this socket closes.
    let _seat = broker.presence().join(&name);
    let mut events = broker.subscribe();
    if !send(
        &mut socket,
        &ServerMsg::Hello {
            reviewer: name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    )
    .await
        || !send(&mut socket, &snapshot(&broker).await).await
    {
        return;
    }
    loop {
        tokio::select! {
            frame = socket.recv() => {
                let Some(Ok(frame)) = frame else { break };
                let reply = match frame {
                    Message::Text(text) => handle(&st, &name, &token, &text).await,
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
                    Ok(BrokerEvent::Requested(r)) => ServerMsg::Request(Box::new(RequestMsg::from(&*r))),
                    Ok(BrokerEvent::Voted { id, reviewer, decision, approvals }) => ServerMsg::Vote { id, reviewer, decision, approvals },
                    Ok(BrokerEvent::Resolved { id, outcome, by, approvers, comment, why }) => ServerMsg::Resolved { id, outcome, by, approvers, comment, why },
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "reviewer lagged; sending a fresh snapshot");
                        snapshot(&broker).await
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

async fn handle(st: &AppState, name: &str, token: &str, text: &str) -> Option<ServerMsg> {
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
            match st.store.reviewer_for_token(token).await {
                Ok(Some(n)) if n == name => {}
                Ok(_) => {
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
                    Some(r) => match rememberable(st, &id, decision, r).await {
                        Ok(v) => Some(v),
                        Err(refusal) => return Some(refusal),
                    },
                    None => None,
                };
                let res = broker.decide(name, &id, decision, comment.as_deref()).await;
                let mut ack = match res {
                    Ok(DecideAck::Counted { approvals, needed }) => ServerMsg::Ack {
                        id: id.clone(),
                        result: "counted".into(),
                        approvals,
                        approvals_needed: needed,
                        whitelisted: None,
                    },
                    Ok(DecideAck::Resolved {
                        outcome,
                        approvals,
                        needed,
                    }) => ServerMsg::Ack {
                        id: id.clone(),
                        result: outcome.as_str().into(),
                        approvals,
                        approvals_needed: needed,
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
    match st
        .rules
        .check_remember(&request, &choice, airlock_approvals::now_ms())
    {
        Ok(expires_at) => Ok((request, choice, expires_at)),
        Err(e) => Err(ServerMsg::error(e.code(), e.to_string(), Some(id))),
    }
}
