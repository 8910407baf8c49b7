//! Scripted reviewers over the real WebSocket protocol (docs/reviewer-protocol.md).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(url: &str, token: &str) -> anyhow::Result<Ws> {
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .context("reviewer socket")?;
    // hello, then the snapshot: after these the reviewer is live.
    for want in ["hello", "snapshot"] {
        let v = next(&mut ws).await?;
        if v["type"] != want {
            bail!("expected {want}, got {v}");
        }
    }
    Ok(ws)
}

async fn next(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t)?),
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("reviewer socket: {e}"),
            None => bail!("reviewer socket closed"),
        }
    }
}

/// A reviewer that approves every request the moment it arrives.
pub fn spawn_approver(mut ws: Ws) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(v) = next(&mut ws).await {
            if v["type"] == "request" {
                let m = json!({"type": "decide", "id": v["id"], "decision": "approve"});
                if ws.send(Message::Text(m.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// When one reviewer saw a request: the monotonic instant, and wall-clock milliseconds to
/// compare with the gateway's `created_at_ms` (same machine, same clock).
#[derive(Debug, Clone)]
pub struct Receipt {
    pub id: String,
    pub created_at_ms: i64,
    pub at: Instant,
    pub wall_ms: f64,
}

/// A reviewer that only reports what it receives.
pub fn spawn_watcher(
    mut ws: Ws,
    tx: mpsc::UnboundedSender<Receipt>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(v) = next(&mut ws).await {
            if v["type"] == "request" {
                let at = Instant::now();
                let wall_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs_f64() * 1000.0)
                    .unwrap_or(0.0);
                let r = Receipt {
                    id: v["id"].as_str().unwrap_or_default().to_owned(),
                    created_at_ms: v["created_at_ms"].as_i64().unwrap_or(0),
                    at,
                    wall_ms,
                };
                if tx.send(r).is_err() {
                    return;
                }
            }
        }
    })
}

/// A reviewer that is not measured: it decides what it is told to, and drains everything
/// else so the gateway never sees it lag.
pub fn spawn_decider(
    mut ws: Ws,
    mut orders: mpsc::UnboundedReceiver<(String, &'static str)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = next(&mut ws) => if frame.is_err() { return },
                order = orders.recv() => {
                    let Some((id, decision)) = order else { return };
                    let m = json!({"type": "decide", "id": id, "decision": decision});
                    if ws.send(Message::Text(m.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
}
