//! `airlock review`: the terminal client for reviewers.
//!
//! Full screen (ratatui): the queue on the left, the selected request and what its agent's
//! terminal shows on the right, countdowns, a bell on each new request. J/K or arrows move,
//! A approves, D denies, R approves and remembers (scope and TTL in a small dialog), Q quits.
//! When the gateway goes away it reconnects with backoff and shows that it is doing so; a
//! refused token ends it. It speaks only the documented protocol and API, so it doubles as a
//! reference client.

mod ui;

use std::io::Write;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::protocol::{ClientMsg, RequestMsg, ServerMsg};
use airlock_approvals::{Remember, VoteDecision};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {url}: {msg}")]
    Connect { url: String, msg: String },
    #[error("the gateway refused the token: {0}")]
    Token(String),
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Reconnect delays grow to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait for the gateway to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the selected request's terminal context is fetched.
const SCREEN_EVERY: Duration = Duration::from_secs(2);

/// The approve-and-remember dialog.
pub(crate) struct RememberDialog {
    pub id: String,
    pub any_agent: bool,
    pub any_target: bool,
    pub ttl: usize,
}

pub(crate) const TTLS: [&str; 4] = ["1h", "1d", "7d", "never"];

pub(crate) enum Link {
    Up,
    /// Waiting to reconnect at this instant (attempt number).
    Down {
        retry_at: Instant,
        attempt: u32,
        why: String,
    },
}

pub(crate) struct State {
    pub me: String,
    pub queue: Vec<RequestMsg>,
    pub selected: usize,
    pub status: String,
    pub link: Link,
    pub screen: Option<(String, String)>,
    pub dialog: Option<RememberDialog>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, token: &str) -> Result<Ws, ClientError> {
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
    let attempt = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(req))
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

pub async fn run(url: &str, token: &str) -> Result<(), ClientError> {
    // Fail before taking over the terminal if the gateway is not there or the token is bad.
    let first = connect(url, token).await?;
    let mut terminal = ratatui::try_init()?;
    let result = session(&mut terminal, url, token, first).await;
    ratatui::restore();
    result
}

async fn session(
    terminal: &mut ratatui::DefaultTerminal,
    url: &str,
    token: &str,
    first: Ws,
) -> Result<(), ClientError> {
    let http = reqwest::Client::new();
    let base = http_base(url);
    let mut keys = EventStream::new();
    let mut st = State {
        me: String::new(),
        queue: Vec::new(),
        selected: 0,
        status: "connected".into(),
        link: Link::Up,
        screen: None,
        dialog: None,
    };
    let mut ws: Option<Ws> = Some(first);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_screen = Instant::now() - SCREEN_EVERY;
    // Screens are fetched off the loop, so a slow gateway never freezes the keys.
    let (screens_tx, mut screens) = tokio::sync::mpsc::channel::<(String, String)>(4);
    loop {
        terminal.draw(|f| ui::draw(f, &st))?;
        tokio::select! {
            _ = tick.tick() => {
                if let Link::Down { retry_at, attempt, .. } = &st.link
                    && Instant::now() >= *retry_at
                {
                    let attempt = *attempt;
                    match connect(url, token).await {
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
                    && let Some(r) = st.queue.get(st.selected)
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
                    apply(&mut st, m);
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
                match on_key(&mut st, key) {
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

enum Action {
    None,
    Quit,
    Send(ClientMsg),
}

fn on_key(st: &mut State, key: KeyEvent) -> Action {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Action::Quit;
    }
    if let Some(d) = st.dialog.as_mut() {
        match key.code {
            KeyCode::Esc => st.dialog = None,
            KeyCode::Char('g') => d.any_agent = !d.any_agent,
            KeyCode::Char('t') => d.any_target = !d.any_target,
            KeyCode::Char(c @ '1'..='4') => d.ttl = usize::from(c as u8 - b'1'),
            KeyCode::Enter => {
                let Some(d) = st.dialog.take() else {
                    return Action::None;
                };
                st.status = format!("sent approve + remember for {}", d.id);
                return Action::Send(ClientMsg::Decide {
                    id: d.id,
                    decision: VoteDecision::Approve,
                    comment: None,
                    remember: Some(Remember {
                        any_agent: d.any_agent,
                        any_target: d.any_target,
                        ttl: Some(TTLS[d.ttl].to_owned()),
                    }),
                });
            }
            _ => {}
        }
        return Action::None;
    }
    let selected = st.queue.get(st.selected);
    let decide = |r: &RequestMsg, decision| {
        Action::Send(ClientMsg::Decide {
            id: r.id.clone(),
            decision,
            comment: None,
            remember: None,
        })
    };
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Char('j') | KeyCode::Down => {
            st.selected = (st.selected + 1).min(st.queue.len().saturating_sub(1));
            Action::None
        }
        KeyCode::Char('k') | KeyCode::Up => {
            st.selected = st.selected.saturating_sub(1);
            Action::None
        }
        KeyCode::Char('a' | 'A') => match selected {
            Some(r) => {
                st.status = format!("sent approve for {}", r.id);
                decide(r, VoteDecision::Approve)
            }
            None => Action::None,
        },
        KeyCode::Char('d' | 'D') => match selected {
            Some(r) => {
                st.status = format!("sent deny for {}", r.id);
                decide(r, VoteDecision::Deny)
            }
            None => Action::None,
        },
        KeyCode::Char('r' | 'R') => {
            match selected {
                Some(r) if r.tier == airlock_classifier::Tier::High => {
                    st.status = "high-risk commands can never be remembered".into();
                }
                Some(r) => {
                    st.dialog = Some(RememberDialog {
                        id: r.id.clone(),
                        any_agent: false,
                        any_target: false,
                        ttl: 2,
                    });
                }
                None => {}
            }
            Action::None
        }
        _ => Action::None,
    }
}

fn apply(st: &mut State, m: ServerMsg) {
    match m {
        ServerMsg::Hello { reviewer, .. } => st.me = reviewer,
        ServerMsg::Snapshot { mut requests } => {
            requests.reverse();
            st.queue = requests;
            st.selected = st.selected.min(st.queue.len().saturating_sub(1));
        }
        ServerMsg::Request(r) => {
            st.status = format!("new request from {} on {}", r.agent, r.target);
            st.queue.insert(0, *r);
            st.selected = 0;
            // The bell: something new to decide, even if this window is not in front.
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x07");
            let _ = out.flush();
        }
        ServerMsg::Vote { id, approvals, .. } => {
            if let Some(r) = st.queue.iter_mut().find(|r| r.id == id) {
                r.approvals = approvals;
            }
        }
        ServerMsg::Resolved { id, outcome, by } => {
            st.queue.retain(|r| r.id != id);
            st.selected = st.selected.min(st.queue.len().saturating_sub(1));
            st.status = format!("{id} {} by {by}", outcome.as_str());
            if st.dialog.as_ref().is_some_and(|d| d.id == id) {
                st.dialog = None;
            }
        }
        ServerMsg::Ack {
            id,
            result,
            whitelisted,
            ..
        } => {
            st.status = match whitelisted {
                Some(w) => format!("{id}: {result}, remembered as whitelist entry {w}"),
                None => format!("{id}: {result}"),
            }
        }
        ServerMsg::Error { message, .. } => st.status = format!("error: {message}"),
        ServerMsg::Pong => {}
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
