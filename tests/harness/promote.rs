//! Helpers for the staging-first tests (`tests/whitelist_promote.rs`): a gateway with a
//! staging and a prod target, reviewer groups (one scoped to staging), a second agent with its
//! own key, the CLI as a named operator, and raw HTTP calls to the proposals API.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{Gateway, Opts, keygen};

/// A second agent (`newbot`, local only) and its private key, kept in `dir`.
pub struct NewAgent {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub extra: String,
}

pub fn new_agent() -> NewAgent {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("newbot");
    keygen(&key, "newbot");
    let public = std::fs::read_to_string(dir.path().join("newbot.pub")).expect("pubkey");
    let extra = format!(
        "[[agent]]\nname = \"newbot\"\nkeys = [\"{}\"]\ntargets = [\"local\"]\n",
        public.trim()
    );
    NewAgent { dir, key, extra }
}

/// Options: targets local, staging and prod for `bot`; groups `sre` (alice, bob: unscoped) and
/// `qa` (quinn: staging only); unanswered requests denied after `timeout`.
pub fn staging_opts(timeout: &'static str, postgres: bool, more: &str) -> Opts {
    Opts {
        timeout,
        postgres,
        more_targets: vec!["staging".into(), "prod".into()],
        extra: format!(
            r#"[[target]]
name = "staging"
kind = "local"
labels = {{ env = "staging" }}
[[reviewer_group]]
name = "sre"
members = ["alice", "bob"]
[[reviewer_group]]
name = "qa"
members = ["quinn"]
scope = {{ targets = ["staging"] }}
{more}"#
        ),
        ..Opts::default()
    }
}

/// `airlock …` as operator `user` (the CLI names the operator `cli:$USER`), with no terminal
/// and `CI=true`, as a pipeline runs it.
pub fn cli_as(gw: &Gateway, user: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(super::BIN)
        .arg("--config")
        .arg(&gw.config)
        .args(args)
        .current_dir(gw.dir.path())
        .env("USER", user)
        .env("CI", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("airlock cli")
}

/// One raw HTTP/1.1 request to the reviewer listener: (status, JSON body or Null).
pub async fn http(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: &str,
    extra_headers: &[(&str, &str)],
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gw
        .ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n"
    );
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = if method == "POST" { "{}" } else { "" };
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(head.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// POST with the page's headers: JSON body, this origin.
pub async fn post(gw: &Gateway, path: &str, token: &str) -> (u16, Value) {
    let origin = gw
        .ws_url
        .replace("ws://", "http://")
        .trim_end_matches("/ws")
        .to_owned();
    http(
        gw,
        "POST",
        path,
        token,
        &[("Content-Type", "application/json"), ("Origin", &origin)],
    )
    .await
}

/// The proposals `whitelist review --json` lists (as operator `user`).
pub fn proposals(gw: &Gateway, user: &str) -> Vec<Value> {
    let out = cli_as(gw, user, &["whitelist", "review", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// The kinds of every ledger entry, in order.
pub fn ledger_kinds(gw: &Gateway) -> Vec<String> {
    String::from_utf8_lossy(&gw.cli(&["ledger", "export"]).stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["kind"].as_str().map(str::to_owned))
        .collect()
}
