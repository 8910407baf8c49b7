//! `airlock review`: the terminal client for reviewers.
//!
//! Full screen (ratatui): the queue on the left, the selected request and what its agent's
//! terminal shows on the right, countdowns, a bell on each new request. The rules that keep a
//! reviewer from approving the wrong thing live in [`state`] (selection only by the reviewer,
//! the whole request seen before approval, high confirmed by typing the target, deny with a
//! reason); [`ui`] draws agent text only from its display form. When the gateway goes away it
//! reconnects with backoff and shows that it is doing so; a refused token ends it. It speaks
//! only the documented protocol and API, so it doubles as a reference client.

mod detail;
mod scripts;
mod state;
mod trust;
mod ui;

pub use trust::Trust;

use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::protocol::ServerMsg;
use state::{Action, Link, State};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {url}: {msg}")]
    Connect { url: String, msg: String },
    #[error("the gateway refused the token: {0}")]
    Token(String),
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// `--ca`: the certificates to trust cannot be used.
    #[error("--ca {0}")]
    Trust(String),
}

/// Reconnect delays grow to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait for the gateway to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the selected request's terminal context is fetched.
const SCREEN_EVERY: Duration = Duration::from_secs(2);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, token: &str, trust: &Trust) -> Result<Ws, ClientError> {
    let conn_err = |e: String| ClientError::Connect {
        url: url.to_owned(),
        msg: e,
    };
    let mut req = url
        .into_client_request()
        .map_err(|e| conn_err(e.to_string()))?;
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| conn_err("token has invalid characters".into()))?;
    req.headers_mut().insert("Authorization", value);
    // Bounded: the client reconnects from its own loop and must stay responsive.
    let attempt = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(req, None, false, trust.ws.clone()),
    )
    .await
    .map_err(|_| conn_err(format!("no answer within {CONNECT_TIMEOUT:?}")))?;
    match attempt {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == 401 => {
            Err(ClientError::Token("401 Unauthorized".into()))
        }
        Err(e) => Err(conn_err(e.to_string())),
    }
}

/// `ws://host/ws` → `http://host`, for the read API.
fn http_base(url: &str) -> String {
    let base = url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1);
    base.strip_suffix("/ws").unwrap_or(&base).to_owned()
}

async fn fetch_screen(http: &reqwest::Client, base: &str, token: &str, session: &str) -> String {
    let url = format!("{base}/api/sessions/{session}/screen");
    let res = http
        .get(url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    let text = match res {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => return format!("({e})"),
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) if v["text"].is_string() => v["text"].as_str().unwrap_or_default().to_owned(),
        Ok(v) => format!("({})", v["error"].as_str().unwrap_or("no screen")),
        Err(_) => "(no screen)".into(),
    }
}

/// Review on `url` (`ws://` or `wss://`, verified with `trust`) until the reviewer quits.
pub async fn run(url: &str, token: &str, trust: Trust) -> Result<(), ClientError> {
    // Fail before taking over the terminal if the gateway is not there or the token is bad.
    let first = connect(url, token, &trust).await?;
    let mut terminal = ratatui::try_init()?;
    let result = session(&mut terminal, url, token, first, &trust).await;
    ratatui::restore();
    result
}

async fn session(
    terminal: &mut ratatui::DefaultTerminal,
    url: &str,
    token: &str,
    first: Ws,
    trust: &Trust,
) -> Result<(), ClientError> {
    let http = trust.http.clone();
    let base = http_base(url);
    let mut keys = EventStream::new();
    let mut st = State::new();
    let mut ws: Option<Ws> = Some(first);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_screen = Instant::now() - SCREEN_EVERY;
    // Screens are fetched off the loop, so a slow gateway never freezes the keys.
    let (screens_tx, mut screens) = tokio::sync::mpsc::channel::<(String, String)>(4);
    loop {
        let mut shown = None;
        terminal.draw(|f| shown = ui::draw(f, &st))?;
        st.after_draw(shown);
        tokio::select! {
            _ = tick.tick() => {
                if let Link::Down { retry_at, attempt, .. } = &st.link
                    && Instant::now() >= *retry_at
                {
                    let attempt = *attempt;
                    match connect(url, token, trust).await {
                        Ok(w) => {
                            ws = Some(w);
                            st.link = Link::Up;
                            st.status = "reconnected".into();
                        }
                        Err(ClientError::Token(why)) => return Err(ClientError::Token(why)),
                        Err(e) => st.link = down(attempt + 1, e.to_string()),
                    }
                }
                if last_screen.elapsed() >= SCREEN_EVERY
                    && let Some(r) = st.current()
                {
                    last_screen = Instant::now();
                    let (http, base, token, tx) = (http.clone(), base.clone(), token.to_owned(), screens_tx.clone());
                    let (id, session) = (r.id.clone(), r.session_id.clone());
                    tokio::spawn(async move {
                        let text = fetch_screen(&http, &base, &token, &session).await;
                        let _ = tx.try_send((id, text));
                    });
                }
            }
            Some(screen) = screens.recv() => st.screen = Some(screen),
            frame = next_frame(&mut ws) => match frame {
                Ok(Some(m)) => {
                    if let ServerMsg::Error { code, message, .. } = &m
                        && code == "bad_token"
                    {
                        return Err(ClientError::Token(message.clone()));
                    }
                    st.apply(m);
                }
                Ok(None) => {}
                Err(why) => {
                    ws = None;
                    st.queue.clear();
                    st.link = down(0, why);
                }
            },
            key = keys.next() => {
                let Some(Ok(Event::Key(key))) = key else { continue };
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                match st.on_key(key) {
                    Action::Quit => return Ok(()),
                    Action::None => {}
                    Action::Send(msg) => match ws.as_mut() {
                        Some(w) => {
                            let json = serde_json::to_string(&msg).unwrap_or_default();
                            if w.send(Message::Text(json.into())).await.is_err() {
                                ws = None;
                                st.link = down(0, "send failed".into());
                            }
                        }
                        None => st.status = "not connected; the decision was not sent".into(),
                    },
                }
            }
        }
    }
}

fn down(attempt: u32, why: String) -> Link {
    let wait = Duration::from_secs(1u64 << attempt.min(5)).min(MAX_BACKOFF);
    Link::Down {
        retry_at: Instant::now() + wait,
        attempt,
        why,
    }
}

/// The next server message; `Ok(None)` for frames that carry none, `Err` when the link is gone.
/// Pends forever while disconnected, so `select!` waits on the other branches.
async fn next_frame(ws: &mut Option<Ws>) -> Result<Option<ServerMsg>, String> {
    let Some(w) = ws.as_mut() else {
        return std::future::pending().await;
    };
    match w.next().await {
        Some(Ok(Message::Text(t))) => Ok(serde_json::from_str(&t).ok()),
        Some(Ok(Message::Close(_))) | None => Err("the gateway closed the connection".into()),
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_from_socket_url() {
        assert_eq!(http_base("ws://127.0.0.1:8022/ws"), "http://127.0.0.1:8022");
        assert_eq!(http_base("wss://gw.example/ws"), "https://gw.example");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let wait = |a| match down(a, String::new()) {
            Link::Down { retry_at, .. } => retry_at.saturating_duration_since(Instant::now()),
            Link::Up => Duration::ZERO,
        };
        assert!(wait(0) <= Duration::from_secs(1));
        assert!(wait(3) > Duration::from_secs(7));
        assert!(wait(20) <= MAX_BACKOFF);
    }
}
