//! Who may approve what (issue 20), end to end through the real binary: reviewer groups,
//! scopes over targets and labels, approval rules that name groups, the agent's owner. Real
//! `ssh` agents, reviewers over the real WebSocket, the read API over real HTTP; every effect
//! is a canary file in the test's temp dir that must (or must not) appear.
//!
//! The cast (see [`AUTHORITY`]): alice and bob are SREs; carol is a DBA whose group may act
//! only on `db-*` targets labelled `env=prod`; frank is in both groups; dave is in `ops`
//! (never required by a rule); erin is in no group at all; olivia is an SRE and the owner of
//! the agent, so her votes on its requests never count.

mod harness;

use std::time::{Duration, Instant};

use harness::*;
use serde_json::Value;

async fn two_group_rule(gw: Gateway) {
    let mut alice = gw.reviewer("alice").await;
    let mut bob = gw.reviewer("bob").await;
    let mut carol = gw.reviewer("carol").await;
    let (cmd, victim, canary) = destructive(&gw, "two-groups");
    let mut child = gw.spawn_on("db-main", &cmd);

    let req = alice.request_on("db-main").await;
    let id = id_of(&req);
    assert_eq!(req["tier"], "high", "{req}");
    assert_eq!(req["rule"], "prod-db-destructive", "{req}");
    assert_eq!(req["needs"], "1 from dba and 1 from sre", "{req}");
    assert_eq!(req["progress_text"], "dba 0/1 · sre 0/1", "{req}");
    assert_eq!(
        req["excluded"],
        serde_json::json!(["olivia"]),
        "the owner: {req}"
    );
    // The rule's timeout (10m) replaces the gateway's (60s).
    let ttl =
        req["expires_at_ms"].as_i64().unwrap_or(0) - req["created_at_ms"].as_i64().unwrap_or(0);
    assert!((599_000..=601_000).contains(&ttl), "{ttl} ms: {req}");
    // carol (dba) is in scope: db-main, env=prod.
    let carol_req = carol.request_on("db-main").await;
    assert_eq!(id_of(&carol_req), id);

    let ack = alice.decide(&id, "approve").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["result"], "counted", "{ack}");
    assert_eq!(ack["progress_text"], "dba 0/1 · sre 1/1 (alice)", "{ack}");
    let vote = carol.next_of("vote").await;
    assert_eq!(vote["id"], id.as_str());
    assert_eq!(vote["progress_text"], "dba 0/1 · sre 1/1 (alice)", "{vote}");
    still_waiting(&mut child, &canary, "one SRE approval").await;

    // A second SRE fills no place that is still open.
    let reply = bob.decide(&id, "approve").await;
    assert_ne!(
        reply["result"], "approved",
        "a second sre is not a dba: {reply}"
    );
    if reply["type"] == "ack" {
        let p = reply["progress_text"].as_str().unwrap_or_default();
        assert!(p.contains("dba 0/1"), "{reply}");
    }
    still_waiting(&mut child, &canary, "two SRE approvals").await;
    assert!(victim.exists());

    let ack = carol.decide(&id, "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(canary.exists(), "approved by a dba and an sre: it ran");
    assert!(!victim.exists());
    assert!(
        err.lines()
            .any(|l| l.starts_with("airlock:") && l.contains("dba") && l.contains("sre")),
        "the agent's waiting line names the groups it needs: {err}"
    );

    // The ledger: the rule and its needs when opened, the group each vote counted for.
    let opened: Vec<Value> = gw
        .ledger_entries("request.opened")
        .into_iter()
        .map(|e| e["payload"].clone())
        .filter(|p| p["request"] == id.as_str())
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["rule"], "prod-db-destructive", "{}", opened[0]);
    let needs = opened[0]["needs"].to_string();
    assert!(needs.contains("dba") && needs.contains("sre"), "{needs}");
    let votes: Vec<Value> = gw
        .ledger_entries("request.vote")
        .into_iter()
        .map(|e| e["payload"].clone())
        .filter(|p| p["request"] == id.as_str())
        .collect();
    let groups_of = |who: &str| {
        votes
            .iter()
            .find(|p| p["reviewer"] == who)
            .map(|p| p["groups"].clone())
            .unwrap_or_else(|| panic!("no counted vote by {who}: {votes:?}"))
    };
    assert_eq!(groups_of("alice"), serde_json::json!(["sre"]));
    assert_eq!(groups_of("carol"), serde_json::json!(["dba"]));

    // Any deny from an eligible reviewer denies, even after the other group approved.
    let (cmd, victim, canary) = destructive(&gw, "two-groups-denied");
    let child = gw.spawn_on("db-main", &cmd);
    let id = id_of(&alice.request_on("db-main").await);
    assert_eq!(alice.decide(&id, "approve").await["result"], "counted");
    let reply = carol.decide(&id, "deny").await;
    assert_eq!(reply["result"], "denied", "{reply}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 77, "{err}");
    assert!(!canary.exists() && victim.exists(), "denied: nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_group_rule_waits_for_one_approver_from_each_group() {
    two_group_rule(gateway(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_group_rule_waits_for_one_approver_from_each_group_on_postgres() {
    if pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set (this variant needs PostgreSQL)");
        return;
    }
    two_group_rule(gateway(true).await).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Scopes.

/// carol's group may act on `db-*` with `env=prod` only: on `target` she is not shown the
/// request (neither pushed nor in a fresh snapshot), her approve and her deny are refused
/// `out_of_scope` and count for nothing; alice's approval then runs it. Returns the request as
/// alice saw it.
async fn out_of_scope_on(
    gw: &Gateway,
    target: &str,
    alice: &mut Reviewer,
    carol: &mut Reviewer,
    carol_token: &str,
) -> Value {
    let (cmd, canary) = medium(gw, &format!("scope-{target}"));
    let mut child = gw.spawn_on(target, &cmd);
    let req = alice.request_on(target).await;
    let id = id_of(&req);
    let fresh = Reviewer::connect(&gw.ws_url, carol_token).await;
    assert!(
        fresh.snapshot.iter().all(|r| r["id"] != id.as_str()),
        "an out-of-scope request is not in carol's snapshot: {:?}",
        fresh.snapshot
    );
    drop(fresh);
    refused(carol, &id, "approve", "out_of_scope").await;
    still_waiting(&mut child, &canary, "an out-of-scope approval").await;
    refused(carol, &id, "deny", "out_of_scope").await;
    still_waiting(&mut child, &canary, "an out-of-scope deny").await;
    let ack = alice.decide(&id, "approve").await;
    assert_eq!(
        ack["result"], "approved",
        "carol's deny did not deny: {ack}"
    );
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(canary.exists());
    // Nothing about it reached carol's socket: not the request, its votes or its outcome.
    let frames = carol.frames_for(Duration::from_millis(800)).await;
    assert!(
        !frames.iter().any(|f| f["id"] == id.as_str()),
        "carol was pushed an out-of-scope request on {target}: {frames:?}"
    );
    // Written once per reviewer, request and code (a refused voter cannot flood the ledger).
    assert_eq!(
        refused_in_ledger(gw, &id),
        vec![("carol".to_owned(), "out_of_scope".to_owned())]
    );
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_out_of_scope_reviewer_is_not_shown_cannot_vote_and_cannot_read() {
    let gw = gateway(false).await;
    let alice_token = gw.add_reviewer("alice");
    let carol_token = gw.add_reviewer("carol");
    let mut alice = Reviewer::connect(&gw.ws_url, &alice_token).await;
    let mut carol = Reviewer::connect(&gw.ws_url, &carol_token).await;

    // web-1 is labelled env=prod but is not a db-* target.
    let req = out_of_scope_on(&gw, "web-1", &mut alice, &mut carol, &carol_token).await;
    let id = id_of(&req);
    let session = req["session_id"].as_str().expect("session id").to_owned();
    let canary = gw.path("scope-web-1-canary").display().to_string();

    // In scope (db-main, env=prod), carol decides a medium request alone (tier default).
    let (cmd, db_canary) = medium(&gw, "in-scope");
    let child = gw.spawn_on("db-main", &cmd);
    let db_req = carol.request_on("db-main").await;
    let ack = carol.decide(&id_of(&db_req), "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    assert_eq!(finish(child).await.0, 0);
    assert!(db_canary.exists());
    let db_session = db_req["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();

    // The read API: alice (a group without scope) reads everything; carol reads her scope.
    for (what, path) in [
        ("recording", format!("/api/sessions/{session}/recording")),
        ("screen", format!("/api/sessions/{session}/screen")),
    ] {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, body) = gw.http_status_body(&path, &alice_token).await;
            if status == 200 && body.contains("scope-web-1-output") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "alice cannot read the {what}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, body) = gw.http_status_body(&path, &carol_token).await;
        assert_eq!(status, 403, "carol's {what} read: {body}");
        assert!(body.contains("out_of_scope"), "{body}");
        assert!(!body.contains("scope-web-1-output"), "{body}");
    }
    let (status, body) = gw
        .http_status_body(
            &format!("/api/sessions/{db_session}/recording"),
            &carol_token,
        )
        .await;
    assert_eq!(status, 200, "carol reads an in-scope recording: {body}");

    let (_, sessions) = gw.http_status_body("/api/sessions", &alice_token).await;
    assert!(sessions.contains(&session), "{sessions}");
    let (status, sessions) = gw.http_status_body("/api/sessions", &carol_token).await;
    assert_eq!(status, 200);
    assert!(
        !sessions.contains(&session) && !sessions.contains(&canary),
        "carol's session list omits web-1: {sessions}"
    );
    assert!(sessions.contains(&db_session), "{sessions}");
    let (_, history) = gw.http_status_body("/api/history", &alice_token).await;
    assert!(history.contains(&id), "{history}");
    let (status, history) = gw.http_status_body("/api/history", &carol_token).await;
    assert_eq!(status, 200);
    assert!(
        !history.contains(&id) && !history.contains(&canary),
        "carol's history omits web-1: {history}"
    );
    assert!(history.contains(&id_of(&db_req)), "{history}");

    let refusals: Vec<Value> = gw
        .ledger_entries("reviewer.read_refused")
        .into_iter()
        .map(|e| e["payload"].clone())
        .collect();
    assert!(
        refusals.len() >= 2
            && refusals
                .iter()
                .all(|p| p["reviewer"] == "carol" && p["code"] == "out_of_scope"),
        "{refusals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_label_mismatch_or_a_near_miss_name_is_out_of_scope() {
    let gw = gateway(false).await;
    let alice_token = gw.add_reviewer("alice");
    let carol_token = gw.add_reviewer("carol");
    let mut alice = Reviewer::connect(&gw.ws_url, &alice_token).await;
    let mut carol = Reviewer::connect(&gw.ws_url, &carol_token).await;
    // db-stage matches db-* but is labelled env=staging: the staging rule applies, and carol's
    // scope does not.
    let req = out_of_scope_on(&gw, "db-stage", &mut alice, &mut carol, &carol_token).await;
    assert_eq!(req["rule"], "staging-anything", "{req}");
    // `db-*` does not cover xdb-1 (same labels) nor `db` (no dash); nor `local`, which has no
    // labels at all.
    for target in ["xdb-1", "db", "local"] {
        out_of_scope_on(&gw, target, &mut alice, &mut carol, &carol_token).await;
    }
    // A target with more labels than the scope names is in it.
    let (cmd, canary) = medium(&gw, "db-pay");
    let child = gw.spawn_on("db-pay", &cmd);
    let req = carol.request_on("db-pay").await;
    assert_eq!(
        carol.decide(&id_of(&req), "approve").await["result"],
        "approved"
    );
    assert_eq!(finish(child).await.0, 0);
    assert!(canary.exists());

    // A high command on xdb-1 is under the tier default (2 from anyone): carol's deny counts
    // for nothing, and neither does her approval.
    let mut bob = gw.reviewer("bob").await;
    let (cmd, victim, canary) = destructive(&gw, "xdb-high");
    let mut child = gw.spawn_on("xdb-1", &cmd);
    let req = alice.request_on("xdb-1").await;
    let id = id_of(&req);
    assert_eq!(req["tier"], "high");
    assert!(req["rule"].is_null(), "no rule matches xdb-1: {req}");
    refused(&mut carol, &id, "deny", "out_of_scope").await;
    assert_eq!(alice.decide(&id, "approve").await["result"], "counted");
    refused(&mut carol, &id, "approve", "out_of_scope").await;
    still_waiting(&mut child, &canary, "alice and an out-of-scope carol").await;
    assert_eq!(bob.decide(&id, "approve").await["result"], "approved");
    assert_eq!(finish(child).await.0, 0);
    assert!(canary.exists() && !victim.exists());
}

// ---------------------------------------------------------------------------------------------
// 3. The agent's owner.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agent_s_owner_never_counts_toward_its_requests() {
    let gw = gateway(false).await;
    let mut olivia = gw.reviewer("olivia").await;
    let mut alice = gw.reviewer("alice").await;
    let mut carol = gw.reviewer("carol").await;

    // Under the two-group rule: olivia is an sre, but owns the agent.
    let (cmd, victim, canary) = destructive(&gw, "owner-rule");
    let mut child = gw.spawn_on("db-main", &cmd);
    let id = id_of(&alice.request_on("db-main").await);
    refused(&mut olivia, &id, "approve", "agent_owner").await;
    still_waiting(&mut child, &canary, "the owner's approval").await;
    let ack = carol.decide(&id, "approve").await;
    assert_eq!(
        ack["result"], "counted",
        "the owner filled no sre place: {ack}"
    );
    assert_eq!(ack["progress_text"], "dba 1/1 (carol) · sre 0/1", "{ack}");
    refused(&mut olivia, &id, "deny", "agent_owner").await;
    still_waiting(&mut child, &canary, "the owner's deny").await;
    assert_eq!(alice.decide(&id, "approve").await["result"], "approved");
    assert_eq!(finish(child).await.0, 0);
    assert!(canary.exists() && !victim.exists());
    assert_eq!(
        refused_in_ledger(&gw, &id),
        vec![("olivia".to_owned(), "agent_owner".to_owned())]
    );

    // Under the tier default (1 from anyone): the owner is not anyone.
    let (cmd, canary) = medium(&gw, "owner-default");
    let mut child = gw.spawn_on("web-1", &cmd);
    let id = id_of(&alice.request_on("web-1").await);
    refused(&mut olivia, &id, "approve", "agent_owner").await;
    still_waiting(&mut child, &canary, "the owner alone").await;
    refused(&mut olivia, &id, "deny", "agent_owner").await;
    still_waiting(&mut child, &canary, "the owner's deny").await;
    assert_eq!(alice.decide(&id, "approve").await["result"], "approved");
    assert_eq!(finish(child).await.0, 0);
    assert!(canary.exists());
}

// ---------------------------------------------------------------------------------------------
// Attackers' variants.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reviewer_in_both_groups_fills_one_place_only() {
    let gw = gateway(false).await;
    let mut frank = gw.reviewer("frank").await;
    let mut alice = gw.reviewer("alice").await;
    let mut carol = gw.reviewer("carol").await;
    for (i, second) in ["carol", "alice"].into_iter().enumerate() {
        let (cmd, victim, canary) = destructive(&gw, &format!("both-{i}"));
        let mut child = gw.spawn_on("db-main", &cmd);
        let id = id_of(&frank.request_on("db-main").await);
        let ack = frank.decide(&id, "approve").await;
        assert_eq!(ack["result"], "counted", "{ack}");
        still_waiting(&mut child, &canary, "frank alone (in dba and sre)").await;
        // Voting again is no second person.
        refused(&mut frank, &id, "approve", "already_voted").await;
        still_waiting(&mut child, &canary, "frank twice").await;
        // Either group's member completes it: frank takes the other place.
        let r = if second == "carol" {
            &mut carol
        } else {
            &mut alice
        };
        let ack = r.decide(&id, "approve").await;
        assert_eq!(ack["result"], "approved", "frank and {second}: {ack}");
        assert_eq!(finish(child).await.0, 0);
        assert!(canary.exists() && !victim.exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviewers_outside_the_required_groups_and_in_no_group() {
    let gw = gateway(false).await;
    let mut dave = gw.reviewer("dave").await; // ops: in scope everywhere, never required
    let mut erin = gw.reviewer("erin").await; // in no group: sees everything
    let mut alice = gw.reviewer("alice").await;
    let mut carol = gw.reviewer("carol").await;

    let (cmd, victim, canary) = destructive(&gw, "not-required");
    let mut child = gw.spawn_on("db-main", &cmd);
    let id = id_of(&erin.request_on("db-main").await);
    assert_eq!(id_of(&dave.request_on("db-main").await), id);
    refused(&mut dave, &id, "approve", "not_required").await;
    refused(&mut erin, &id, "approve", "not_required").await;
    refused(&mut dave, &id, "deny", "not_required").await;
    refused(&mut erin, &id, "deny", "not_required").await;
    still_waiting(&mut child, &canary, "votes from no required group").await;
    assert_eq!(alice.decide(&id, "approve").await["result"], "counted");
    assert_eq!(carol.decide(&id, "approve").await["result"], "approved");
    assert_eq!(finish(child).await.0, 0);
    assert!(canary.exists() && !victim.exists());
    let mut refusals = refused_in_ledger(&gw, &id);
    refusals.sort();
    assert_eq!(
        refusals,
        vec![
            ("dave".to_owned(), "not_required".to_owned()),
            ("erin".to_owned(), "not_required".to_owned())
        ]
    );

    // Under the tier default, a reviewer in no group is anyone: erin alone approves web-1.
    let (cmd, canary) = medium(&gw, "no-group");
    let child = gw.spawn_on("web-1", &cmd);
    let id = id_of(&erin.request_on("web-1").await);
    assert_eq!(erin.decide(&id, "approve").await["result"], "approved");
    assert_eq!(finish(child).await.0, 0);
    assert!(canary.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scoped_group_does_not_count_outside_its_scope_through_a_member_s_other_group() {
    // frank is an sre (no scope) and a dba (db-* env=prod only). On web-1 the rule wants a dba
    // and an sre: frank sees the request as an sre, but may not act there as a dba.
    let gw = gateway(false).await;
    let mut frank = gw.reviewer("frank").await;
    let mut alice = gw.reviewer("alice").await;
    let mut carol = gw.reviewer("carol").await;
    let (cmd, victim, canary) = destructive(&gw, "web-dba");
    let mut child = gw.spawn_on("web-1", &cmd);
    let req = frank.request_on("web-1").await;
    let id = id_of(&req);
    assert_eq!(req["rule"], "web-needs-dba", "{req}");
    let ack = frank.decide(&id, "approve").await;
    assert_eq!(ack["result"], "counted", "{ack}");
    refused(&mut carol, &id, "approve", "out_of_scope").await;
    let reply = alice.decide(&id, "approve").await;
    assert_ne!(
        reply["result"], "approved",
        "frank's dba membership does not reach web-1: {reply}"
    );
    still_waiting(&mut child, &canary, "two sres, no dba in scope").await;
    // Finish it: an eligible deny (a vote already cast leaves it to another sre).
    let mut bob = gw.reviewer("bob").await;
    let reply = bob.decide(&id, "deny").await;
    assert_eq!(reply["result"], "denied", "{reply}");
    assert_eq!(finish(child).await.0, 77);
    assert!(!canary.exists() && victim.exists());
}
