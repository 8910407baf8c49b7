//! Webhooks against a local HTTP receiver: a pending request and a timeout deny are
//! announced, transient failures are retried with backoff, refusals are not, and a dead
//! webhook never delays the agent's answer.

mod harness;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{Gateway, Opts, eventually};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A tiny HTTP/1.1 server: records (path, JSON body); `/flaky` fails its first request with
/// 500, `/reject` always answers 400, anything else 200.
async fn receiver() -> (u16, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let mut conn = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if conn.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if conn.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let n = {
                        let mut v = s.lock().unwrap();
                        v.push((path.clone(), json));
                        v.iter().filter(|(p, _)| *p == path).count()
                    };
                    let status = match path.as_str() {
                        "/flaky" if n == 1 => "500 Internal Server Error",
                        "/reject" => "400 Bad Request",
                        _ => "200 OK",
                    };
                    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                    if conn.get_mut().write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

fn bodies(seen: &Seen, path: &str) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, b)| b.clone())
        .collect()
}

#[tokio::test]
async fn pending_and_timeout_are_announced_with_retries() {
    let (port, seen) = receiver().await;
    // A port nothing listens on: the webhook that is down.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = format!(
        r#"
[[webhook]]
name = "chat"
url = "http://127.0.0.1:{port}/flaky"
format = "slack"
events = ["pending"]
attempts = 3
[[webhook]]
name = "pager"
url = "http://127.0.0.1:{port}/json"
format = "json"
events = ["timeout"]
[[webhook]]
name = "refuses"
url = "http://127.0.0.1:{port}/reject"
attempts = 4
[[webhook]]
name = "down"
url = "http://127.0.0.1:{dead}/nothing"
attempts = 3
"#
    );
    let gw = Gateway::start(Opts {
        timeout: "2s",
        extra,
        ..Opts::default()
    })
    .await;
    let file = gw.path("never");
    let cmd = format!("touch {}", file.display());
    let t = Instant::now();
    let (code, _, err) = gw.exec(&cmd).await;
    let took = t.elapsed();
    assert_ne!(code, 0);
    assert!(err.contains("airlock: denied"), "{err}");
    assert!(!file.exists());
    // Denied at the deadline: a dead webhook and retries are not on the decision path.
    assert!(took < Duration::from_secs(6), "agent waited {took:?}");

    eventually(
        "the chat webhook got the pending request after one retry",
        || bodies(&seen, "/flaky").len() == 2,
    )
    .await;
    let chat = bodies(&seen, "/flaky");
    assert_eq!(chat[0], chat[1], "the retry resends the same notification");
    let text = chat[1]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("bot wants to run") && text.contains(&cmd) && text.contains("medium"),
        "{text}"
    );
    assert_eq!(
        chat[1].as_object().map(|o| o.len()),
        Some(1),
        "Slack body is just text"
    );

    eventually("the pager webhook got the timeout", || {
        !bodies(&seen, "/json").is_empty()
    })
    .await;
    let pager = bodies(&seen, "/json");
    assert_eq!(pager.len(), 1, "pending is not one of the pager's events");
    assert_eq!(pager[0]["event"], "request.timeout");
    assert_eq!(pager[0]["request"]["command"], cmd.as_str());
    assert_eq!(pager[0]["request"]["status"], "expired");
    assert!(
        pager[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("DENIED by timeout")
    );

    eventually("the refusing webhook heard both events once each", || {
        bodies(&seen, "/reject").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bodies(&seen, "/reject").len(), 2, "a 400 is not retried");
    assert!(
        gw.log().contains("webhook unreachable"),
        "the dead webhook is logged"
    );
}

#[tokio::test]
async fn a_long_command_is_never_cut_silently_and_controls_never_reach_the_chat() {
    let (port, seen) = receiver().await;
    let extra = format!(
        r#"
[[webhook]]
name = "chat"
url = "http://127.0.0.1:{port}/chat"
format = "slack"
events = ["pending"]
"#
    );
    let gw = Gateway::start(Opts {
        timeout: "2s",
        extra,
        more_targets: vec!["prod".into()],
        reviewer_extra: r#"public_url = "https://airlock.example.com/""#.into(),
        ..Opts::default()
    })
    .await;
    let dir = gw.path("x");
    // 300 spaces hide an `rm` on a narrow screen; an ESC sequence would erase a line.
    let cmd = format!(
        "ls {d}{}; rm -rf {d}/v; printf 'ok\x1b[2K'; echo {}",
        " ".repeat(300),
        "a".repeat(400),
        d = dir.display()
    );
    let mut ssh = gw.ssh_cmd(&gw.agent_key, "prod");
    ssh.args(["-o", "SetEnv=AIRLOCK_REASON=\"cleanup, OPS-7\""])
        .arg("127.0.0.1")
        .arg(&cmd);
    let out = ssh.output().await.expect("ssh");
    assert_ne!(out.status.code(), Some(0), "nobody approved it");
    eventually("the chat webhook heard the request", || {
        !bodies(&seen, "/chat").is_empty()
    })
    .await;
    let text = bodies(&seen, "/chat")[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains(&format!("⟨300 spaces⟩; rm -rf {}/v", dir.display())),
        "the rm is in the message: {text}"
    );
    assert!(
        text.contains("chars, open the page)"),
        "the cut is said: {text}"
    );
    assert!(!text.contains('\x1b'), "no raw ESC: {text:?}");
    assert!(
        text.contains("printf 'ok⟨ESC⟩[2K'"),
        "the ESC is shown: {text}"
    );
    assert!(text.contains("Target labels: env=prod"), "{text}");
    assert!(text.contains("Agent says: ```cleanup, OPS-7```"), "{text}");
    assert!(
        text.contains("Review: https://airlock.example.com/#request="),
        "{text}"
    );
}
