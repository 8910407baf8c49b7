//! `airlock review`: a terminal client for reviewers.
//!
//! Shows the pending queue (newest first) with the selected request's details and live
//! countdowns; j/k or arrows move, A approves, D denies, Q quits. It speaks exactly the
//! documented protocol, so it doubles as a reference client.

use std::io::Write;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::protocol::{ClientMsg, RequestMsg, ServerMsg};
use airlock_approvals::{Remember, VoteDecision};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {url}: {msg}")]
    Connect { url: String, msg: String },
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("connection lost: {0}")]
    Lost(String),
}

struct State {
    me: String,
    queue: Vec<RequestMsg>,
    selected: usize,
    status: String,
}

/// Restores the terminal however the client exits.
struct RawGuard;
impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
    }
}

pub async fn run(url: &str, token: &str) -> Result<(), ClientError> {
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
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| conn_err(e.to_string()))?;
    let (mut sink, mut stream) = ws.split();

    terminal::enable_raw_mode()?;
    let _guard = RawGuard;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide
    )?;
    let mut keys = EventStream::new();
    let mut st = State {
        me: String::new(),
        queue: Vec::new(),
        selected: 0,
        status: "connected".into(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        draw(&st)?;
        tokio::select! {
            _ = tick.tick() => {}
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | None => return Err(ClientError::Lost("server closed the connection".into())),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ClientError::Lost(e.to_string())),
                };
                match serde_json::from_str::<ServerMsg>(&text) {
                    Ok(m) => apply(&mut st, m),
                    Err(e) => st.status = format!("unreadable server message: {e}"),
                }
            }
            key = keys.next() => {
                let Some(Ok(Event::Key(KeyEvent { code, modifiers, .. }))) = key else { continue };
                let decision = match code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
                    KeyCode::Char('j') | KeyCode::Down => { st.selected = (st.selected + 1).min(st.queue.len().saturating_sub(1)); None }
                    KeyCode::Char('k') | KeyCode::Up => { st.selected = st.selected.saturating_sub(1); None }
                    KeyCode::Char('a') | KeyCode::Char('A') => Some((VoteDecision::Approve, None)),
                    // Approve and remember for this agent on this target, default TTL.
                    KeyCode::Char('r') | KeyCode::Char('R') => Some((VoteDecision::Approve, Some(Remember::default()))),
                    KeyCode::Char('d') | KeyCode::Char('D') => Some((VoteDecision::Deny, None)),
                    _ => None,
                };
                if let (Some((decision, remember)), Some(r)) = (decision, st.queue.get(st.selected)) {
                    let msg = ClientMsg::Decide { id: r.id.clone(), decision, comment: None, remember };
                    let json = serde_json::to_string(&msg).map_err(|e| ClientError::Lost(e.to_string()))?;
                    sink.send(Message::Text(json.into())).await.map_err(|e| ClientError::Lost(e.to_string()))?;
                    st.status = format!("sent {} for {}", decision.as_str(), r.id);
                }
            }
        }
    }
}

fn apply(st: &mut State, m: ServerMsg) {
    match m {
        ServerMsg::Hello { reviewer, .. } => st.me = reviewer,
        ServerMsg::Snapshot { mut requests } => {
            requests.reverse();
            st.queue = requests;
        }
        ServerMsg::Request(r) => {
            st.queue.insert(0, r);
            st.selected = 0;
            print!("\x07"); // bell: something new to decide
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
        }
        ServerMsg::Ack { id, result, .. } => st.status = format!("{id}: {result}"),
        ServerMsg::Error { message, .. } => st.status = format!("error: {message}"),
        ServerMsg::Pong => {}
    }
}

fn draw(st: &State) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    let now = airlock_approvals::now_ms();
    let mut s = String::new();
    s.push_str("\x1b[H\x1b[2J");
    s.push_str(&format!(
        "Airlock review — {} — {} pending   [j/k] move  [A]pprove  [R]emember  [D]eny  [q]uit\r\n\r\n",
        st.me,
        st.queue.len()
    ));
    for (i, r) in st.queue.iter().enumerate() {
        let left = ((r.expires_at_ms - now) / 1000).max(0);
        let mark = if i == st.selected { ">" } else { " " };
        s.push_str(&format!(
            "{mark} {:<6} {:>3}  {}@{}  {}/{}  {:>4}s  {}\r\n",
            r.tier.as_str(),
            r.score,
            r.agent,
            r.target,
            r.approvals.len(),
            r.approvals_needed,
            left,
            r.command.replace(['\r', '\n'], " ")
        ));
    }
    if let Some(r) = st.queue.get(st.selected) {
        s.push_str(&format!(
            "\r\nrequest {}\r\n  command: {}\r\n",
            r.id, r.command
        ));
        for reason in &r.reasons {
            s.push_str(&format!(
                "  - [{}] {}\r\n",
                reason.tier.as_str(),
                reason.text
            ));
        }
        if !r.approvals.is_empty() {
            s.push_str(&format!(
                "  approved so far by: {}\r\n",
                r.approvals.join(", ")
            ));
        }
    }
    s.push_str(&format!("\r\n{}\r\n", st.status));
    out.write_all(s.as_bytes())?;
    out.flush()
}
