//! Access requests end to end (issue 21): an agent asks `ssh airlock@gw request-access TARGET
//! DURATION REASON`, a scripted reviewer decides over the real WebSocket, and the answer,
//! the grant, the commands that follow and the ledger are checked. A real gateway, real
//! OpenSSH; the core test runs on PostgreSQL too when AIRLOCK_TEST_POSTGRES_URL is set.

mod harness;

use std::time::Duration;

use harness::{Gateway, VAULT, finish, grant_opts, no_grant_line, pg_url};
use serde_json::{Value, json};

/// The request id an agent's waiting line names.
fn request_id(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| l.contains("waiting for approval"))
        .and_then(|l| l.rsplit_once("request "))
        .map(|(_, id)| id.trim().to_owned())
}

async fn approved_access_runs_commands_until_expiry(postgres: bool) {
    let gw = Gateway::start(grant_opts(postgres, "")).await;
    let mut alice = gw.reviewer("alice").await;
    let canary = gw.path("made-under-grant");

    // Without a grant, nothing runs on the target.
    let (code, _, err) = gw.exec_on(VAULT, "echo before").await;
    assert_eq!(code, 77, "{err}");
    assert!(err.contains(&no_grant_line(VAULT)), "{err}");

    let asked = gw.spawn_access(&format!("{VAULT} 1h \"deploy the hotfix, OPS-42\""));
    let r = alice.access_request().await;
    assert_eq!(r["kind"], "access", "{r:#}");
    assert_eq!(r["access_target"], VAULT, "{r:#}");
    assert_eq!(r["target"], VAULT, "{r:#}");
    assert_eq!(r["access_duration_s"], 3600, "{r:#}");
    assert_eq!(r["reason"], "deploy the hotfix, OPS-42", "{r:#}");
    assert_eq!(r["command"], format!("request-access {VAULT} 1h"), "{r:#}");
    assert_eq!(r["tier"], "medium", "{r:#}");
    assert_eq!(r["approvals_needed"], 1, "{r:#}");
    let id = r["id"].as_str().expect("id").to_owned();

    // Remembering an access request is refused, and no vote is cast by trying.
    alice
        .send(json!({"type": "decide", "id": id, "decision": "approve",
            "remember": {"any_agent": false, "any_target": false, "ttl": "1h"}}))
        .await;
    let refused = alice.next_of("error").await;
    assert_eq!(refused["code"], "not_rememberable", "{refused:#}");

    let ack = alice.decide(&id, "approve").await;
    assert_eq!(ack["result"], "approved", "{ack:#}");
    let (code, out, err) = finish(asked).await;
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(
        err.contains(&format!(
            "waiting for approval (access to {VAULT} for 1h, needs 1 reviewer"
        )),
        "{err}"
    );
    assert_eq!(request_id(&err).as_deref(), Some(id.as_str()), "{err}");
    assert!(
        out.starts_with(&format!("airlock: access to {VAULT} granted until ")),
        "{out}"
    );
    assert!(out.contains(", by alice)"), "{out}");

    // Now a command on the target runs (and a medium one still asks reviewers).
    let (code, out, err) = gw.exec_on(VAULT, "echo under-grant").await;
    assert_eq!((code, out.trim()), (0, "under-grant"), "{err}");
    let medium = gw.spawn_on(VAULT, &format!("touch {}", canary.display()));
    let m = alice.next_of("request").await;
    assert_eq!(m["kind"], "command", "{m:#}");
    let ack = alice.decide(m["id"].as_str().expect("id"), "approve").await;
    assert_eq!(ack["result"], "approved", "{ack:#}");
    let (code, _, err) = finish(medium).await;
    assert_eq!(code, 0, "{err}");
    assert!(canary.exists());

    // The ledger: asked, decided, granted — the grant names the request.
    let requested = gw.ledger_entries("grant.requested");
    assert_eq!(requested.len(), 1, "{requested:#?}");
    let p = &requested[0]["payload"];
    assert_eq!(p["request"], id.as_str(), "{p:#}");
    assert_eq!(p["target"], VAULT, "{p:#}");
    assert_eq!(p["duration_s"], 3600, "{p:#}");
    assert_eq!(p["reason"], "deploy the hotfix, OPS-42", "{p:#}");
    let added = gw.ledger_entries("grant.added");
    assert_eq!(added.len(), 1, "{added:#?}");
    assert_eq!(added[0]["payload"]["request"], id.as_str(), "{added:#?}");
    assert_eq!(added[0]["payload"]["by"], "alice", "{added:#?}");
    let outcomes = gw.ledger_entries("request.outcome");
    assert!(
        outcomes.iter().any(
            |e| e["payload"]["request"] == id.as_str() && e["payload"]["outcome"] == "approved"
        ),
        "{outcomes:#?}"
    );
}

#[tokio::test]
async fn an_approved_access_request_grants_access_and_commands_then_run() {
    approved_access_runs_commands_until_expiry(false).await;
}

#[tokio::test]
async fn an_approved_access_request_grants_access_on_postgres_too() {
    if pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set");
        return;
    }
    approved_access_runs_commands_until_expiry(true).await;
}

#[tokio::test]
async fn the_json_answer_carries_the_grant_and_its_expiry() {
    let gw = Gateway::start(grant_opts(false, "")).await;
    let mut alice = gw.reviewer("alice").await;
    let asked = gw.spawn_access(&format!("--json {VAULT} 30m rotate keys"));
    let r = alice.access_request().await;
    let before = airlock_now_ms();
    alice.decide(r["id"].as_str().expect("id"), "approve").await;
    let (code, out, err) = finish(asked).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["granted"], true, "{v:#}");
    assert_eq!(v["target"], VAULT, "{v:#}");
    assert_eq!(v["request_id"], r["id"], "{v:#}");
    assert_eq!(v["grant"]["by"], "alice", "{v:#}");
    let expires = v["grant"]["expires_at_ms"].as_i64().expect("expiry");
    let half_hour = 30 * 60 * 1000;
    assert!(
        (before + half_hour - 5_000..=airlock_now_ms() + half_hour).contains(&expires),
        "{v:#}"
    );
    assert!(
        v["grant"]["expires_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{v:#}"
    );
}

fn airlock_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_denied_access_request_grants_nothing() {
    let gw = Gateway::start(grant_opts(false, "")).await;
    let mut alice = gw.reviewer("alice").await;
    let asked = gw.spawn_access(&format!("{VAULT} 1h just because"));
    let r = alice.access_request().await;
    let ack = alice.decide(r["id"].as_str().expect("id"), "deny").await;
    assert_eq!(ack["result"], "denied", "{ack:#}");
    let (code, out, err) = finish(asked).await;
    assert_eq!(code, 77, "stdout {out}\nstderr {err}");
    assert!(
        err.contains("airlock: denied by alice: deny from test"),
        "{err}"
    );
    assert!(!out.contains("granted"), "{out}");
    let (code, _, err) = gw.exec_on(VAULT, "echo nope").await;
    assert_eq!(code, 77, "{err}");
    assert!(err.contains(&no_grant_line(VAULT)), "{err}");
    assert!(gw.ledger_entries("grant.added").is_empty());
    assert_eq!(gw.ledger_entries("grant.requested").len(), 1);
}

#[tokio::test]
async fn bad_asks_are_refused_before_any_reviewer_sees_them() {
    let gw = Gateway::start(grant_opts(false, "[grants]\nmax_duration = \"2h\"\n")).await;
    let mut alice = gw.reviewer("alice").await;

    let (code, _, err) = gw.request_access(&format!("{VAULT} 3h a long job")).await;
    assert_eq!(code, 77, "{err}");
    assert!(
        err.contains("airlock: denied: 3h is longer than [grants] max_duration (2h)"),
        "{err}"
    );
    let (code, _, err) = gw.request_access(&format!("{VAULT} 1h")).await;
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("needs a REASON"), "{err}");
    let long = "x".repeat(501);
    let (code, _, err) = gw.request_access(&format!("{VAULT} 1h {long}")).await;
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("501 characters; the limit is 500"), "{err}");
    let (code, _, err) = gw.request_access(&format!("{VAULT} soon why")).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a duration"), "{err}");
    let (code, _, err) = gw.request_access("nosuchtarget 1h why").await;
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("unknown target"), "{err}");
    let (code, _, err) = gw.request_access("local 1h why").await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("local does not need an access grant"), "{err}");

    let frames = alice.frames_for(Duration::from_millis(800)).await;
    assert!(
        frames.iter().all(|f| f["type"] != "request"),
        "a reviewer was asked: {frames:#?}"
    );
    assert!(gw.ledger_entries("grant.requested").is_empty());
}

#[tokio::test]
async fn an_agent_that_leaves_withdraws_its_access_request() {
    let gw = Gateway::start(grant_opts(false, "")).await;
    let mut alice = gw.reviewer("alice").await;
    let asked = gw.spawn_access(&format!("{VAULT} 1h deploy"));
    let r = alice.access_request().await;
    drop(asked); // kill_on_drop: the agent's ssh goes away
    let resolved = alice.next_of("resolved").await;
    assert_eq!(resolved["id"], r["id"], "{resolved:#}");
    assert_eq!(resolved["outcome"], "withdrawn", "{resolved:#}");
    let late = alice.decide(r["id"].as_str().expect("id"), "approve").await;
    assert_eq!(late["code"], "already_resolved", "{late:#}");
    assert!(gw.ledger_entries("grant.added").is_empty());
}
