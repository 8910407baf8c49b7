//! What an agent is told about the humans behind the gate, end to end (real `ssh`, reviewers
//! over the real WebSocket): how many could decide right now, an immediate deny when nobody
//! can (`when_nobody_online = "deny"`), a timeout that says nobody was there, every approver
//! named (agent, recording, History), a deny's reason, and bounds on what people type.

mod harness;

use std::time::{Duration, Instant};

use harness::{Gateway, Opts, Reviewer, eventually, finish};
use serde_json::{Value, json};

/// Vote with an exact comment; returns the reply (`ack` or `error`).
async fn vote(r: &mut Reviewer, id: &str, decision: &str, comment: &str) -> Value {
    r.send(json!({"type": "decide", "id": id, "decision": decision, "comment": comment}))
        .await;
    for _ in 0..100 {
        let m = r.next().await;
        if m["type"] == "ack" || m["type"] == "error" {
            return m;
        }
    }
    panic!("no reply to decide");
}

#[tokio::test]
async fn with_nobody_online_deny_a_request_is_refused_at_once() {
    let gw = Gateway::start(Opts {
        approval_extra: r#"when_nobody_online = "deny""#.into(),
        ..Opts::default()
    })
    .await;
    let file = gw.path("nobody");
    let cmd = format!("touch {}", file.display());
    let t = Instant::now();
    let (code, _, err) = gw.exec(&cmd).await;
    assert_eq!(code, 77, "{err}");
    assert!(
        err.contains(
            "airlock: denied: no reviewer is connected to approve this (when_nobody_online = \"deny\")"
        ),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "not after the 60 s timeout"
    );
    assert!(!file.exists());

    // A reviewer named like the agent cannot decide its requests, so it does not count.
    let _same = gw.reviewer("bot").await;
    let (code, _, err) = gw.exec(&cmd).await;
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("no reviewer is connected"), "{err}");

    // Someone who can decide is there: the request waits and is approved.
    let mut alice = gw.reviewer("alice").await;
    let child = gw.spawn_exec(&cmd);
    let req = alice.next_of("request").await;
    let ack = alice
        .decide(req["id"].as_str().expect("id"), "approve")
        .await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("needs 1 reviewer, 1 connected,"), "{err}");
    assert!(file.exists());
}

#[tokio::test]
async fn a_timeout_says_whether_anyone_was_connected() {
    let gw = Gateway::start(Opts {
        timeout: "2s",
        ..Opts::default()
    })
    .await;
    let cmd = format!("touch {}", gw.path("late").display());
    let (code, _, err) = gw.exec(&cmd).await;
    assert_eq!(code, 77);
    assert!(err.contains("0 connected"), "{err}");
    assert!(
        err.contains("(request ") && err.contains("expired); no reviewer was connected"),
        "{err}"
    );

    let _alice = gw.reviewer("alice").await;
    let (code, _, err) = gw.exec(&cmd).await;
    assert_eq!(code, 77);
    assert!(err.contains("1 connected"), "{err}");
    assert!(err.contains("expired)"), "{err}");
    assert!(!err.contains("no reviewer was connected"), "{err}");
}

#[tokio::test]
async fn every_approver_is_named_to_the_agent_in_the_recording_and_in_history() {
    let gw = Gateway::start(Opts::default()).await;
    let mut alice = gw.reviewer("alice").await;
    let mut bob = gw.reviewer("bob").await;
    let dir = gw.path("canary");
    std::fs::create_dir_all(&dir).expect("canary");
    std::fs::write(dir.join("v"), "x").expect("canary file");
    let cmd = format!("rm -rf {}/v", dir.display());
    let child = gw.spawn_exec(&cmd);
    let req = alice.next_of("request").await;
    assert_eq!(req["tier"], "high", "{req}");
    let id = req["id"].as_str().expect("id").to_owned();
    let ack = vote(&mut alice, &id, "approve", "canary first").await;
    assert_eq!(ack["result"], "counted", "{ack}");
    let ack = vote(&mut bob, &id, "approve", "").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let resolved = alice.next_of("resolved").await;
    assert_eq!(resolved["approvers"], json!(["alice", "bob"]), "{resolved}");
    assert_eq!(resolved["by"], "bob");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("airlock: approved by alice and bob (alice: canary first)"),
        "{err}"
    );
    assert!(!dir.join("v").exists());

    // The recording is closed a moment after the agent's exit status.
    let marker = "decision: approved (approved by alice and bob (alice: canary first))";
    eventually("the recording's marker names both approvers", || {
        gw.recordings().iter().any(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| t.contains(&cmd) && t.contains(marker))
        })
    })
    .await;

    let token = gw.add_reviewer("carol");
    let history = http_get(&gw, "/api/history", &token).await;
    let row = history["requests"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id.as_str()))
        .cloned()
        .expect("the request in History");
    assert_eq!(row["approvers"], json!(["alice", "bob"]), "{row}");
    assert_eq!(
        row["outcome_text"], "approved by alice and bob (alice: canary first)",
        "{row}"
    );
    assert_eq!(row["shown"]["command"]["chars"], cmd.chars().count());
}

#[tokio::test]
async fn a_deny_carries_its_reason_and_comments_are_one_line_of_visible_text() {
    let gw = Gateway::start(Opts::default()).await;
    let mut alice = gw.reviewer("alice").await;
    let file = gw.path("denied");
    let cmd = format!("touch {}", file.display());
    let child = gw.spawn_exec(&cmd);
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().expect("id").to_owned();
    for bad in [
        "ok\x1b[2Kapproved".to_owned(),
        "a\nb".to_owned(),
        "x".repeat(501),
    ] {
        let reply = vote(&mut alice, &id, "deny", &bad).await;
        assert_eq!(reply["code"], "bad_comment", "{reply}");
    }
    let reply = vote(&mut alice, &id, "deny", "not during the freeze, OPS-12").await;
    assert_eq!(
        reply["result"], "denied",
        "the bad comments cast no vote: {reply}"
    );
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 77);
    assert!(
        err.contains("airlock: denied by alice: not during the freeze, OPS-12"),
        "{err}"
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn an_overlong_stated_reason_is_refused_with_its_length() {
    let gw = Gateway::start(Opts::default()).await;
    let mut ssh = gw.ssh_cmd(&gw.agent_key, "local");
    ssh.args([
        "-o",
        &format!("SetEnv=AIRLOCK_REASON={}", "r".repeat(600)),
        "127.0.0.1",
        "echo never",
    ]);
    let out = ssh.output().await.expect("ssh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains(
            "airlock: denied: the stated reason (AIRLOCK_REASON) is 600 characters; the limit is 500"
        ),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));
}

/// GET `path` from the reviewer listener with a token; the JSON answer.
async fn http_get(gw: &Gateway, path: &str, token: &str) -> Value {
    let text = gw.http_get(path, Some(token)).await;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text}"))
}
