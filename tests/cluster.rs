//! Cluster mode: two real gateway processes on one PostgreSQL database. An agent's request on
//! node A is approved by a reviewer connected to node B; votes from both nodes at once are
//! counted once; a node killed with an agent waiting has its request expired by its peer; a
//! whitelist entry made through one node is honoured by the other.

mod harness;

use std::time::Duration;

use harness::*;

const CLUSTER: &str = "[cluster]\nheartbeat = \"200ms\"\nstale_after = \"1500ms\"\n";

async fn two_nodes() -> Option<(Gateway, Gateway)> {
    if pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set (cluster mode needs PostgreSQL)");
        return None;
    }
    let a = Gateway::start(Opts {
        postgres: true,
        node: Some("node-a"),
        extra: CLUSTER.into(),
        ..Opts::default()
    })
    .await;
    let b = Gateway::start(Opts {
        shared_db: Some(a.db_url.clone()),
        node: Some("node-b"),
        extra: CLUSTER.into(),
        ..Opts::default()
    })
    .await;
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reviewer_on_one_node_releases_an_agent_on_the_other() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let mut alice_on_b = b.reviewer("alice").await;
    let marker = a.path("cross-node-marker");
    let child = a.spawn_exec(&format!("touch {}", marker.display()));
    let req = alice_on_b.next_of("request").await;
    assert_eq!(req["node"], "node-a", "{req}");
    assert!(!marker.exists());
    let ack = alice_on_b
        .decide(req["id"].as_str().expect("id"), "approve")
        .await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}\n{}", a.log());
    assert!(
        marker.exists(),
        "node B's approval released node A's command"
    );

    // A whitelist entry added through node B is in force on node A.
    let cmd = format!("touch {}", a.path("wl-marker").display());
    let wl = b.cli(&[
        "whitelist",
        "add",
        "--any-agent",
        "--any-target",
        "--",
        &cmd,
    ]);
    assert!(
        wl.status.success(),
        "{}",
        String::from_utf8_lossy(&wl.stderr)
    );
    let (code, _, err) = a.exec(&cmd).await;
    assert_eq!(code, 0, "{err}");
    assert!(a.path("wl-marker").exists());

    // Votes from both nodes at once on two-person requests: one outcome each, counted once.
    let mut bob_on_a = a.reviewer("bob").await;
    let mut carol_on_b = b.reviewer("carol").await;
    let mut children = Vec::new();
    for i in 0..10 {
        let dir = a.path(&format!("victim-{i}"));
        std::fs::create_dir_all(&dir).expect("dir");
        children.push(a.spawn_exec(&format!("rm -rf {}", dir.display())));
    }
    let mut ids = Vec::new();
    while ids.len() < 10 {
        let r = bob_on_a.next_of("request").await;
        if r["tier"] == "high" {
            ids.push(r["id"].as_str().expect("id").to_owned());
        }
    }
    for id in &ids {
        let (x, y) = tokio::join!(
            bob_on_a.decide(id, "approve"),
            carol_on_b.decide(id, "approve")
        );
        let resolved = [&x, &y]
            .iter()
            .filter(|v| v["result"] == "approved")
            .count();
        let counted = [&x, &y].iter().filter(|v| v["type"] == "ack").count();
        assert_eq!(counted, 2, "both votes counted: {x} {y}");
        assert_eq!(resolved, 1, "exactly one vote resolved it: {x} {y}");
    }
    for c in children {
        assert_eq!(finish(c).await.0, 0);
    }
    for i in 0..10 {
        assert!(!a.path(&format!("victim-{i}")).exists());
    }
    alice_on_b.next_of("resolved").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_node_s_requests_expire_and_never_run() {
    let Some((mut a, b)) = two_nodes().await else {
        return;
    };
    let mut alice_on_b = b.reviewer("alice").await;
    let marker = a.path("orphan-marker");
    let child = a.spawn_exec(&format!("touch {}", marker.display()));
    let req = alice_on_b.next_of("request").await;
    let id = req["id"].as_str().expect("id").to_owned();
    a.crash();
    drop(child);
    // Node B notices the silent heartbeat and expires the request.
    let resolved = alice_on_b.next_of("resolved").await;
    assert_eq!(resolved["id"], id.as_str());
    assert_eq!(resolved["outcome"], "expired", "{resolved}");
    let late = alice_on_b.decide(&id, "approve").await;
    assert_eq!(late["code"], "already_resolved", "{late}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists(), "nothing the dead node held runs");
    // Node B keeps serving.
    let (code, out, _) = b.exec("echo node-b-alive").await;
    assert_eq!((code, out.as_str()), (0, "node-b-alive\n"));
}
