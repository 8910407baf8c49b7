//! Approve-and-remember and simultaneous votes under approval rules (issue 20), end to end:
//! a remembered approval never carries a vote beyond who cast it (scope, owner, a rule's
//! quorum), and one person voting twice at once counts once. The cast is in
//! `harness/authority.rs` ([`AUTHORITY`]).

mod harness;

use std::time::{Duration, Instant};

use harness::*;
use serde_json::Value;

/// Approve with `remember` (whitelist the exact command): the reply.
async fn approve_and_remember(r: &mut Reviewer, id: &str, any_target: bool) -> Value {
    r.send(
        serde_json::json!({"type": "decide", "id": id, "decision": "approve",
        "remember": {"any_agent": false, "any_target": any_target, "ttl": "1h"}}),
    )
    .await;
    for _ in 0..100 {
        let m = r.next().await;
        if m["type"] == "ack" || m["type"] == "error" {
            return m;
        }
    }
    panic!("no reply to decide");
}

/// `cmd` on `target` must wait for a human (not run off a whitelist entry): alice sees it and
/// denies it; nothing ran.
async fn must_ask(
    gw: &Gateway,
    alice: &mut Reviewer,
    target: &str,
    cmd: &str,
    canary: &std::path::Path,
) {
    let _ = std::fs::remove_file(canary);
    let mut child = gw.spawn_on(target, cmd);
    let deadline = Instant::now() + WAIT;
    loop {
        let frames = alice.frames_for(Duration::from_millis(200)).await;
        if let Some(req) = frames
            .iter()
            .find(|f| f["type"] == "request" && f["target"] == target && f["command"] == cmd)
        {
            let reply = alice.decide(&id_of(req), "deny").await;
            assert_eq!(reply["result"], "denied", "{reply}");
            break;
        }
        if let Some(st) = child.try_wait().expect("ssh status") {
            panic!(
                "{cmd:?} on {target} ran without asking anyone (exit {st:?}; canary {})",
                canary.exists()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no request for {cmd:?} on {target}"
        );
    }
    assert_eq!(finish(child).await.0, 77);
    assert!(!canary.exists(), "{cmd:?} on {target} ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_and_remember_cannot_carry_a_vote_beyond_who_cast_it() {
    let gw = gateway(false).await;
    let mut alice = gw.reviewer("alice").await;
    let mut carol = gw.reviewer("carol").await;
    let mut olivia = gw.reviewer("olivia").await;

    // The owner's remember is refused like her vote: no whitelist entry either.
    let (cmd, canary) = medium(&gw, "owner-remember");
    let mut child = gw.spawn_on("web-1", &cmd);
    let id = id_of(&alice.request_on("web-1").await);
    let reply = approve_and_remember(&mut olivia, &id, false).await;
    assert_eq!(reply["code"], "agent_owner", "{reply}");
    still_waiting(&mut child, &canary, "the owner's remember").await;
    assert_eq!(alice.decide(&id, "deny").await["result"], "denied");
    assert_eq!(finish(child).await.0, 77);
    must_ask(&gw, &mut alice, "web-1", &cmd, &canary).await;

    // An out-of-scope remember: refused, nothing whitelisted.
    let (cmd, canary) = medium(&gw, "scope-remember");
    let mut child = gw.spawn_on("web-1", &cmd);
    let id = id_of(&alice.request_on("web-1").await);
    let reply = approve_and_remember(&mut carol, &id, false).await;
    assert_eq!(reply["code"], "out_of_scope", "{reply}");
    still_waiting(&mut child, &canary, "an out-of-scope remember").await;
    assert_eq!(alice.decide(&id, "deny").await["result"], "denied");
    assert_eq!(finish(child).await.0, 77);
    must_ask(&gw, &mut alice, "web-1", &cmd, &canary).await;

    // carol may decide a medium command on db-main, and remember it there; "on any target"
    // must not let the same command run on web-1, where her group may not act.
    let (cmd, canary) = medium(&gw, "any-target");
    let child = gw.spawn_on("db-main", &cmd);
    let id = id_of(&carol.request_on("db-main").await);
    let reply = approve_and_remember(&mut carol, &id, true).await;
    if reply["type"] == "error" {
        // Refusing an any-target remember outright is one right answer; then a plain vote.
        assert_eq!(carol.decide(&id, "approve").await["result"], "approved");
    } else {
        assert_eq!(reply["result"], "approved", "{reply}");
    }
    assert_eq!(finish(child).await.0, 0);
    assert!(canary.exists());
    must_ask(&gw, &mut alice, "web-1", &cmd, &canary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_person_voting_twice_at_once_on_two_sockets_counts_once() {
    // frank (in both required groups) races himself from two connections: he must fill one
    // place, never both.
    let gw = gateway(false).await;
    let token = gw.add_reviewer("frank");
    let mut one = Reviewer::connect(&gw.ws_url, &token).await;
    let mut two = Reviewer::connect(&gw.ws_url, &token).await;
    let mut alice = gw.reviewer("alice").await;
    for i in 0..5 {
        let (cmd, victim, canary) = destructive(&gw, &format!("race-{i}"));
        let mut child = gw.spawn_on("db-main", &cmd);
        let id = id_of(&one.request_on("db-main").await);
        assert_eq!(id_of(&two.request_on("db-main").await), id);
        let (x, y) = tokio::join!(one.decide(&id, "approve"), two.decide(&id, "approve"));
        let counted = [&x, &y].iter().filter(|v| v["type"] == "ack").count();
        assert_eq!(counted, 1, "one person, one vote: {x} {y}");
        assert!(
            [&x, &y].iter().all(|v| v["result"] != "approved"),
            "{x} {y}"
        );
        let refused = if x["type"] == "error" { &x } else { &y };
        assert_eq!(refused["code"], "already_voted", "{refused}");
        still_waiting(&mut child, &canary, "frank twice at once").await;
        assert_eq!(alice.decide(&id, "approve").await["result"], "approved");
        assert_eq!(finish(child).await.0, 0);
        assert!(canary.exists() && !victim.exists());
    }
}
