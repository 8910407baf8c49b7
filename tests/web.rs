//! The reviewer web page in a real browser: Debian's chromium driven by playwright-core
//! (`tests/web/review.mjs`), against a real gateway and real `ssh` execs. scripts/test.sh
//! installs both; a screenshot of the queue is kept in target/test-artifacts/.

mod harness;

use std::path::PathBuf;
use std::time::Duration;

use harness::{Gateway, Opts, finish};
use serde_json::Value;

fn chromium() -> String {
    std::env::var("AIRLOCK_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/web")
}

fn artefact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir.join(name)
}

/// Run the page driver; returns what it saw.
async fn drive(gw: &Gateway, token: &str, action: &str, command: &str, shot: &str) -> Value {
    assert!(
        std::path::Path::new(&chromium()).exists()
            && web_dir().join("node_modules/playwright-core").exists(),
        "chromium or playwright-core missing: run scripts/test.sh, which installs both"
    );
    let page = gw
        .ws_url
        .replace("ws://", "http://")
        .trim_end_matches("/ws")
        .to_owned()
        + "/";
    let run = tokio::process::Command::new("node")
        .arg(web_dir().join("review.mjs"))
        .env("AIRLOCK_URL", &page)
        .env("AIRLOCK_TOKEN", token)
        .env("AIRLOCK_ACTION", action)
        .env("AIRLOCK_COMMAND", command)
        .env("AIRLOCK_SHOT", artefact(shot))
        .env("AIRLOCK_CHROMIUM", chromium())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("browser run within 120 s")
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "driver printed no JSON:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "browser run failed: {seen:#}");
    seen
}

#[tokio::test]
async fn approve_from_the_page_runs_the_command() {
    let gw = Gateway::start(Opts {
        more_targets: vec!["prod".into()],
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let file = gw.path("approved-in-browser");
    let cmd = format!("echo waiting-for-alice; touch {}", file.display());
    // On the prod target, with a stated reason (an env request the gateway accepts).
    let mut ssh = gw.ssh_cmd(&gw.agent_key, "prod");
    ssh.args([
        "-o",
        "SetEnv=AIRLOCK_REASON=\"rotating the nginx logs, ticket OPS-42\"",
    ])
    .arg("127.0.0.1")
    .arg(&cmd);
    let child = ssh.spawn().expect("ssh");

    let seen = drive(&gw, &token, "approve", &cmd, "web-queue.png").await;

    let (code, out, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("waiting-for-alice"));
    assert!(file.exists(), "the approved command ran");
    assert_eq!(seen["signed_in_as"], "signed in as alice", "{seen:#}");
    assert_eq!(seen["token_in_url"], false);
    assert_eq!(seen["tier"], "medium", "{seen:#}");
    assert!(
        seen["screen"]
            .as_str()
            .unwrap_or("")
            .contains("airlock: waiting for approval (medium"),
        "terminal context shows what the agent sees: {seen:#}"
    );
    assert_eq!(seen["labels"], "env=prod", "{seen:#}");
    assert_eq!(
        seen["stated"], "agent says: rotating the nginx logs, ticket OPS-42",
        "{seen:#}"
    );
    assert!(
        seen["marks"].as_u64().unwrap_or(0) >= 1,
        "risky span highlighted: {seen:#}"
    );
    assert!(
        seen["countdown"]
            .as_str()
            .unwrap_or("")
            .starts_with("denies in"),
        "{seen:#}"
    );
    assert!(
        seen["approvals"].as_str().unwrap_or("").contains("0/1"),
        "{seen:#}"
    );
    assert!(
        seen["status"].as_str().unwrap_or("").contains("approved"),
        "{seen:#}"
    );
    assert!(
        seen["history"]
            .as_str()
            .unwrap_or("")
            .contains("alice approve"),
        "{seen:#}"
    );
    assert!(
        seen["markers"].as_array().is_some_and(|m| !m.is_empty()),
        "recording played with its markers: {seen:#}"
    );
    assert!(
        artefact("web-queue.png")
            .metadata()
            .map(|m| m.len() > 1000)
            .unwrap_or(false)
    );
}

#[tokio::test]
async fn deny_from_the_page_stops_the_command() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let file = gw.path("denied-in-browser");
    let cmd = format!("touch {}", file.display());
    let child = gw.spawn_exec(&cmd);
    let seen = drive(&gw, &token, "deny", &cmd, "web-queue-deny.png").await;
    let (code, _, err) = finish(child).await;
    assert_ne!(code, 0);
    assert!(err.contains("airlock: denied"), "{err}");
    assert!(!file.exists(), "the denied command never ran");
    assert!(
        seen["status"].as_str().unwrap_or("").contains("denied"),
        "{seen:#}"
    );
}

#[tokio::test]
async fn remember_from_the_page_whitelists_the_command() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let file = gw.path("remembered-in-browser");
    let cmd = format!("touch {}", file.display());
    let child = gw.spawn_exec(&cmd);
    let seen = drive(&gw, &token, "remember", &cmd, "web-queue-remember.png").await;
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        seen["status"].as_str().unwrap_or("").contains("remembered"),
        "{seen:#}"
    );
    // Whitelisted for this agent on any target, for a day: runs again without anyone.
    std::fs::remove_file(&file).expect("created");
    let (code, _, err) = gw.exec(&cmd).await;
    assert_eq!(code, 0, "{err}");
    let listed = String::from_utf8_lossy(&gw.cli(&["whitelist", "list"]).stdout).into_owned();
    assert!(listed.contains("\tbot\t*\tmedium\texact\t"), "{listed}");
}

/// One raw HTTP/1.1 GET; returns the whole response text.
async fn get(gw: &Gateway, path: &str, token: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gw
        .ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_api_wants_a_token_and_serves_only_recordings() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let page = get(&gw, "/", None).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    assert!(page.to_ascii_lowercase().contains("x-frame-options: deny"));
    for path in [
        "/api/history",
        "/api/sessions",
        "/api/sessions/ab/recording",
    ] {
        assert!(
            get(&gw, path, None).await.starts_with("HTTP/1.1 401"),
            "{path}"
        );
        assert!(
            get(&gw, path, Some("wrong"))
                .await
                .starts_with("HTTP/1.1 401"),
            "{path}"
        );
    }
    let (code, _, _) = gw.exec("echo hello-api").await;
    assert_eq!(code, 0);
    let sessions = get(&gw, "/api/sessions", Some(&token)).await;
    assert!(
        sessions.starts_with("HTTP/1.1 200") && sessions.contains("echo hello-api"),
        "{sessions}"
    );
    let id = sessions
        .split("\"id\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a session id")
        .to_owned();
    let cast = get(&gw, &format!("/api/sessions/{id}/recording"), Some(&token)).await;
    assert!(
        cast.starts_with("HTTP/1.1 200") && cast.contains("hello-api"),
        "{cast}"
    );
    let screen = get(&gw, &format!("/api/sessions/{id}/screen"), Some(&token)).await;
    assert!(screen.contains("hello-api"), "{screen}");
    // Only hex session ids name files: no way out of the recordings directory.
    for bad in ["..%2F..%2Fetc%2Fpasswd", "a.b", "zz"] {
        let r = get(&gw, &format!("/api/sessions/{bad}/recording"), Some(&token)).await;
        assert!(r.starts_with("HTTP/1.1 400"), "{bad}: {r}");
    }
    let missing = get(&gw, "/api/sessions/abcdef/recording", Some(&token)).await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}
