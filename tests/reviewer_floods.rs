//! The reviewer listener under junk load: silent and half-sent connections, and WebSockets
//! that never authenticate, must neither lock a reviewer out nor stay open for long.
//!
//! Runs against the real binary with the default limits (256 connections, 64 unauthenticated
//! sockets, 10 s to send headers). Every wait is bounded; everything is on loopback.

mod harness;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use harness::{Gateway, Opts};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 256;
const MAX_UNAUTHENTICATED: usize = 64;

fn addr(gw: &Gateway) -> String {
    gw.ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned()
}

/// The next text frame as JSON, within `within`.
async fn next_json(ws: &mut Ws, within: Duration) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("no message in time".into()),
            Ok(Some(Ok(Message::Text(t)))) => {
                return serde_json::from_str(&t).map_err(|e| e.to_string());
            }
            Ok(Some(Ok(_))) => continue,
            Ok(other) => return Err(format!("socket ended: {other:?}")),
        }
    }
}

/// Open the reviewer socket with a bearer token and read `hello`.
async fn hello_with_bearer(url: &str, token: &str) -> Result<Ws, String> {
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    let auth = format!("Bearer {token}").parse().map_err(|_| "header")?;
    req.headers_mut().insert("Authorization", auth);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .map_err(|_| "no upgrade in time".to_owned())?
    .map_err(|e| e.to_string())?;
    let hello = next_json(&mut ws, Duration::from_secs(3)).await?;
    if hello["type"] != "hello" {
        return Err(format!("not hello: {hello}"));
    }
    Ok(ws)
}

/// The socket still answers: `ping` gets `pong` (after whatever was queued before it).
async fn ping_pong(ws: &mut Ws) {
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .expect("ping");
    for _ in 0..10 {
        let m = next_json(ws, Duration::from_secs(5)).await.expect("reply");
        if m["type"] == "pong" {
            return;
        }
    }
    panic!("no pong");
}

/// Read until the server closes the socket (EOF or reset); when that happened, measured from
/// `opened`, or `None` if it was still open after `within`.
async fn closed_at(mut s: TcpStream, opened: Instant, within: Duration) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::from_std(opened + within);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(opened.elapsed()),
            Ok(Ok(_)) => continue, // e.g. a 408 before the close
        }
    }
}

/// Connections that never complete a request: `half_sent` that stop in the middle of their
/// headers, then `silent` that send nothing. Each is watched until the server closes it
/// (at most [`HEADER_READ_TIMEOUT`] + 10 s): the join sets yield when, after its opening.
async fn flood(
    addr: &str,
    half_sent: usize,
    silent: usize,
) -> (
    tokio::task::JoinSet<Option<Duration>>,
    tokio::task::JoinSet<Option<Duration>>,
) {
    let within = HEADER_READ_TIMEOUT + Duration::from_secs(10);
    let (mut h, mut q) = (tokio::task::JoinSet::new(), tokio::task::JoinSet::new());
    for _ in 0..half_sent {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let opened = Instant::now();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a request");
        h.spawn(closed_at(s, opened, within));
    }
    for _ in 0..silent {
        let s = TcpStream::connect(addr).await.expect("connect");
        q.spawn(closed_at(s, Instant::now(), within));
    }
    (h, q)
}

/// When each connection of `set` was closed, after its opening; panics on one still open.
async fn all_closed(mut set: tokio::task::JoinSet<Option<Duration>>) -> Vec<Duration> {
    let mut at = Vec::new();
    while let Some(r) = set.join_next().await {
        at.push(
            r.expect("reader")
                .expect("the server closed every junk connection within the header timeout + 10 s"),
        );
    }
    at
}

/// A reviewer with a token gets `hello` within 5 s of `since` (retrying a refused attempt).
async fn reviewer_within_5s(gw: &Gateway, token: &str, since: Instant) -> Ws {
    let mut last_err = String::new();
    while since.elapsed() < Duration::from_secs(5) {
        match hello_with_bearer(&gw.ws_url, token).await {
            Ok(ws) => {
                eprintln!("reviewer hello {:?} after the flood", since.elapsed());
                return ws;
            }
            Err(e) => last_err = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no hello within 5 s of the flood: {last_err}");
}

#[tokio::test]
async fn half_sent_requests_are_closed_at_the_header_timeout_and_reviewers_get_in() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    // Fewer than the 256 seats: nothing is closed to make room, so only the timeout acts.
    let (half_sent, silent) = flood(&addr(&gw), 100, 100).await;
    let mut alice = reviewer_within_5s(&gw, &token, Instant::now()).await;
    let health = gw.http_get("/healthz", None).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    for (what, at) in [
        ("half-sent", all_closed(half_sent).await),
        ("silent", all_closed(silent).await),
    ] {
        let (min, max) = (at.iter().min(), at.iter().max());
        eprintln!("{what}: closed between {min:?} and {max:?} after opening");
        assert!(
            at.iter()
                .all(|t| *t >= HEADER_READ_TIMEOUT - Duration::from_millis(500)),
            "{what} closed before the header timeout: {min:?}"
        );
    }
    ping_pong(&mut alice).await;
}

#[tokio::test]
async fn a_flood_over_the_cap_does_not_lock_reviewers_out() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    // 400 junk connections for 256 seats.
    let (half_sent, silent) = flood(&addr(&gw), 100, 300).await;
    let flooded = Instant::now();
    // Once the junk has been silent a second, a newcomer takes the seat of the one silent
    // longest; before that it would be closed at once.
    let mut alice = reviewer_within_5s(&gw, &token, flooded).await;
    let health = gw.http_get("/healthz", None).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let mut at = all_closed(half_sent).await;
    at.extend(all_closed(silent).await);
    // Those held until the header timeout all had seats at once: no more than the cap.
    let held = at
        .iter()
        .filter(|t| **t >= HEADER_READ_TIMEOUT - Duration::from_millis(500))
        .count();
    eprintln!(
        "of 400: {} closed to keep within the cap, {held} at the header timeout",
        400 - held
    );
    assert!(held <= MAX_CONNECTIONS, "{held} held at once");
    // The reviewer's socket outlived all of it (a WebSocket is never closed for room).
    ping_pong(&mut alice).await;
    // A flood is logged, not every connection of it.
    let log = gw.log();
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    let refused = count("new connections closed at once");
    let evicted = count("closed the longest-silent HTTP connection");
    assert!(
        refused <= 1 && evicted <= 1 && refused + evicted >= 1,
        "{log}"
    );
}

#[tokio::test]
async fn sockets_that_never_authenticate_are_capped_and_tokens_still_get_in() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");

    // Browsers' flow: upgrade, then the token in the first frame. Nobody sends it here.
    let mut mute = Vec::new();
    for i in 0..MAX_UNAUTHENTICATED {
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(gw.ws_url.as_str()),
        )
        .await
        .expect("upgrade in time")
        .unwrap_or_else(|e| panic!("upgrade {i} refused: {e}"));
        mute.push(ws);
    }
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(gw.ws_url.as_str()),
    )
    .await
    .expect("answer in time");
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert_eq!(resp.status().as_u16(), 503, "{body}");
            assert!(body.contains("waiting to authenticate"), "{body}");
            assert_eq!(body.trim_end().lines().count(), 1, "{body}");
        }
        Err(e) => panic!("expected HTTP 503, got {e}"),
        Ok(_) => panic!("upgrade {} accepted over the cap", MAX_UNAUTHENTICATED + 1),
    }

    // A token on the upgrade is checked at once and needs no seat.
    let t = Instant::now();
    let mut alice = hello_with_bearer(&gw.ws_url, &token)
        .await
        .expect("bearer reviewer connects");
    eprintln!("bearer hello {:?} with the seats full", t.elapsed());

    // A seat comes back when its socket goes, and the browser flow works again.
    drop(mute.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut browser = loop {
        match tokio_tungstenite::connect_async(gw.ws_url.as_str()).await {
            Ok((ws, _)) => break ws,
            Err(e) => {
                assert!(Instant::now() < deadline, "no seat came back: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    browser
        .send(Message::Text(
            json!({"type": "auth", "token": token}).to_string().into(),
        ))
        .await
        .expect("auth frame");
    let hello = next_json(&mut browser, Duration::from_secs(5))
        .await
        .expect("hello");
    assert_eq!(hello["type"], "hello", "{hello}");

    // The mute ones are closed after AUTH_WAIT (10 s) and give their seats back.
    let closed = Instant::now();
    for ws in &mut mute {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
                Err(_) => panic!("a mute socket was still open 20 s on"),
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
    eprintln!("mute sockets closed {:?} on", closed.elapsed());
    let (mut again, _) = tokio_tungstenite::connect_async(gw.ws_url.as_str())
        .await
        .expect("seats are free again");
    again
        .send(Message::Text(
            json!({"type": "auth", "token": token}).to_string().into(),
        ))
        .await
        .expect("auth frame");
    assert_eq!(
        next_json(&mut again, Duration::from_secs(5))
            .await
            .expect("hello")["type"],
        "hello"
    );
    ping_pong(&mut alice).await;
}

/// 256 clients that each drip one header byte every half second (never silent, never done)
/// and reconnect when closed: a reviewer still gets in, because the oldest HTTP connection gives
/// its seat whatever it is dripping.
#[tokio::test]
async fn dripping_clients_cannot_hold_the_house() {
    use tokio::io::AsyncWriteExt;
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let target = addr(&gw);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut drips = tokio::task::JoinSet::new();
    for _ in 0..256 {
        let (target, stop) = (target.clone(), stop.clone());
        drips.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let Ok(mut s) = TcpStream::connect(&target).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: ").await;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    if s.write_all(b"a").await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
    }
    // Let the house fill up and the drips age past the eviction threshold.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut alice = reviewer_within_5s(&gw, &token, Instant::now()).await;
    ping_pong(&mut alice).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while drips.join_next().await.is_some() {}
}
