//! Who may approve what (issue 20) in cluster mode: two real gateway processes on one
//! PostgreSQL database, the same reviewer groups and approval rules on both. The two-group
//! rule is decided with the SRE voting on node A and the DBA on node B; scopes and the agent's
//! owner hold across nodes. Skipped (with a printed note) without AIRLOCK_TEST_POSTGRES_URL.

mod harness;

use std::time::Duration;

use harness::*;
use serde_json::Value;

/// Inside the harness agent's `[[agent]]` table first (its `owner`), then the rest.
const AUTHORITY: &str = r#"owner = "olivia"
[cluster]
heartbeat = "200ms"
stale_after = "1500ms"
[[target]]
name = "db-main"
kind = "local"
labels = { env = "prod" }
[[target]]
name = "web-1"
kind = "local"
labels = { env = "prod" }
[[reviewer_group]]
name = "sre"
members = ["alice", "bob", "frank", "olivia"]
[[reviewer_group]]
name = "dba"
members = ["carol", "frank"]
scope = { targets = ["db-*"], labels = { env = "prod" } }
[[approval_rule]]
name = "prod-db-destructive"
match = { tier = "high", targets = ["db-*"], labels = { env = "prod" } }
require = [{ group = "dba", count = 1 }, { group = "sre", count = 1 }]
timeout = "10m"
"#;

async fn two_nodes() -> Option<(Gateway, Gateway)> {
    if pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set (cluster mode needs PostgreSQL)");
        return None;
    }
    let targets = vec!["db-main".to_owned(), "web-1".to_owned()];
    let a = Gateway::start(Opts {
        postgres: true,
        node: Some("node-a"),
        extra: AUTHORITY.into(),
        more_targets: targets.clone(),
        ..Opts::default()
    })
    .await;
    let b = Gateway::start(Opts {
        shared_db: Some(a.db_url.clone()),
        node: Some("node-b"),
        extra: AUTHORITY.into(),
        more_targets: targets,
        ..Opts::default()
    })
    .await;
    Some((a, b))
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("request id").to_owned()
}

async fn still_waiting(child: &mut tokio::process::Child, canary: &std::path::Path, what: &str) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        child.try_wait().expect("ssh status").is_none(),
        "{what}: the agent must still be waiting"
    );
    assert!(!canary.exists(), "{what}: the command must not have run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_two_group_rule_is_decided_across_two_nodes() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let mut alice_on_a = a.reviewer("alice").await;
    let mut carol_on_b = b.reviewer("carol").await;
    let mut olivia_on_b = b.reviewer("olivia").await;
    let mut bob_on_b = b.reviewer("bob").await;

    let victim = a.path("victim");
    std::fs::create_dir_all(&victim).expect("victim");
    std::fs::write(victim.join("v"), "x").expect("victim file");
    let canary = a.path("cluster-canary");
    let cmd = format!("rm -rf {} && touch {}", victim.display(), canary.display());
    let mut child = a.spawn_on("db-main", &cmd);

    let req = carol_on_b.request_on("db-main").await;
    let id = id_of(&req);
    assert_eq!(req["node"], "node-a", "{req}");
    assert_eq!(req["rule"], "prod-db-destructive", "{req}");
    assert_eq!(req["needs"], "1 from dba and 1 from sre", "{req}");
    assert_eq!(req["progress_text"], "dba 0/1 · sre 0/1", "{req}");
    assert_eq!(id_of(&alice_on_a.request_on("db-main").await), id);

    // The owner's vote on node B counts for nothing.
    let reply = olivia_on_b.decide(&id, "approve").await;
    assert_eq!(reply["code"], "agent_owner", "{reply}");
    still_waiting(&mut child, &canary, "the owner's approval on node B").await;

    let ack = alice_on_a.decide(&id, "approve").await;
    assert_eq!(ack["result"], "counted", "{ack}");
    assert_eq!(ack["progress_text"], "dba 0/1 · sre 1/1 (alice)", "{ack}");
    still_waiting(&mut child, &canary, "alice on node A alone").await;
    // A second SRE on node B fills nothing.
    let reply = bob_on_b.decide(&id, "approve").await;
    assert_ne!(reply["result"], "approved", "{reply}");
    still_waiting(&mut child, &canary, "two SREs on two nodes").await;

    let ack = carol_on_b.decide(&id, "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}\n{}", a.log());
    assert!(
        canary.exists() && !victim.exists(),
        "node B's dba released it"
    );

    // Out of scope across nodes: a web-1 request on node A is not carol's on node B.
    let canary = a.path("cluster-web-canary");
    let mut child = a.spawn_on("web-1", &format!("touch {}", canary.display()));
    let id = id_of(&alice_on_a.request_on("web-1").await);
    let reply = carol_on_b.decide(&id, "deny").await;
    assert_eq!(reply["code"], "out_of_scope", "{reply}");
    let reply = carol_on_b.decide(&id, "approve").await;
    assert_eq!(reply["code"], "out_of_scope", "{reply}");
    still_waiting(&mut child, &canary, "carol out of scope on node B").await;
    assert_eq!(
        alice_on_a.decide(&id, "approve").await["result"],
        "approved"
    );
    assert_eq!(finish(child).await.0, 0);
    assert!(canary.exists());
    let frames = carol_on_b.frames_for(Duration::from_millis(800)).await;
    assert!(
        !frames
            .iter()
            .any(|f| (f["type"] == "request" || f["type"] == "vote") && f["id"] == id.as_str()),
        "node B pushed carol an out-of-scope request: {frames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn votes_racing_across_nodes_count_once_per_person() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let mut alice_on_a = a.reviewer("alice").await;
    let mut carol_on_b = b.reviewer("carol").await;
    let frank = a.add_reviewer("frank");
    let mut frank_on_a = Reviewer::connect(&a.ws_url, &frank).await;
    let mut frank_on_b = Reviewer::connect(&b.ws_url, &frank).await;
    for i in 0..5 {
        let victim = a.path(&format!("race-victim-{i}"));
        std::fs::create_dir_all(&victim).expect("victim");
        let canary = a.path(&format!("race-canary-{i}"));
        let cmd = format!("rm -rf {} && touch {}", victim.display(), canary.display());
        let canary2 = a.path(&format!("race-canary2-{i}"));
        let cmd2 = format!("rm -rf {} && touch {}", victim.display(), canary2.display());

        // frank (in both groups) votes on both nodes at once: one place filled, not two.
        let mut child = a.spawn_on("db-main", &cmd);
        let id = id_of(&request_for(&mut frank_on_a, &cmd).await);
        assert_eq!(id_of(&request_for(&mut frank_on_b, &cmd).await), id);
        let (x, y) = tokio::join!(
            frank_on_a.decide(&id, "approve"),
            frank_on_b.decide(&id, "approve")
        );
        assert_eq!(
            [&x, &y].iter().filter(|v| v["type"] == "ack").count(),
            1,
            "one person, one vote across nodes: {x} {y}"
        );
        assert!(
            [&x, &y].iter().all(|v| v["result"] != "approved"),
            "{x} {y}"
        );
        still_waiting(&mut child, &canary, "frank on both nodes").await;
        let ack = alice_on_a.decide(&id, "approve").await;
        assert_eq!(ack["result"], "approved", "frank and alice: {ack}");
        assert_eq!(finish(child).await.0, 0);
        assert!(canary.exists() && !victim.exists());

        // alice on A and carol on B at once: both counted, exactly one settles it.
        std::fs::create_dir_all(&victim).expect("victim");
        let child = a.spawn_on("db-main", &cmd2);
        let id = id_of(&request_for(&mut alice_on_a, &cmd2).await);
        let (x, y) = tokio::join!(
            alice_on_a.decide(&id, "approve"),
            carol_on_b.decide(&id, "approve")
        );
        assert_eq!(
            [&x, &y].iter().filter(|v| v["type"] == "ack").count(),
            2,
            "{x} {y}"
        );
        assert_eq!(
            [&x, &y]
                .iter()
                .filter(|v| v["result"] == "approved")
                .count(),
            1,
            "{x} {y}"
        );
        assert_eq!(finish(child).await.0, 0);
        assert!(canary2.exists() && !victim.exists());
    }
}

/// The next `request` frame for exactly `cmd`, skipping others (bounded).
async fn request_for(r: &mut Reviewer, cmd: &str) -> Value {
    for _ in 0..100 {
        let m = r.next_of("request").await;
        if m["command"] == cmd {
            return m;
        }
    }
    panic!("no request for {cmd:?}");
}
