//! Time-boxed access grants end to end: a `requires_grant` target runs nothing without a live
//! grant (not even a low or whitelisted command); `airlock grant add` opens it until the grant
//! expires; an expiry or a revocation ends a running command and an open gated shell within
//! about a second, recorded; in a cluster, a grant made through one node holds on the other.

mod harness;

use std::time::{Duration, Instant};

use harness::*;

/// The payloads of every ledger entry of `kind`.
fn payloads(gw: &Gateway, kind: &str) -> Vec<serde_json::Value> {
    gw.ledger_entries(kind)
        .into_iter()
        .map(|e| e["payload"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_grant_no_command_then_a_grant_opens_the_target_until_it_expires() {
    let gw = Gateway::start(grant_opts(false, "")).await;
    let hint = no_grant_line(VAULT);

    // Low, and whitelisted: denied all the same, with the hint.
    let (code, out, err) = gw.exec_on(VAULT, "uptime").await;
    assert_eq!(code, 77, "{err}");
    assert_eq!(err.trim(), hint);
    assert!(out.is_empty());
    gw.whitelist_for_bot(VAULT, "hostname");
    let (code, _, err) = gw.exec_on(VAULT, "hostname").await;
    assert_eq!((code, err.trim()), (77, hint.as_str()));
    // A script (shell request without a terminal) is refused outright.
    let mut c = gw.ssh_cmd(&gw.agent_key, VAULT);
    c.arg("-T").arg("127.0.0.1");
    let (code, _, err) = finish(c.spawn().expect("ssh")).await;
    assert_eq!((code, err.trim()), (77, hint.as_str()));
    // Other targets and the control target need none.
    assert_eq!(gw.exec_on("local", "uptime").await.0, 0);
    let (code, out, err) = gw.exec_on("airlock", "whoami").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bot"), "{out}");
    // The agent is told which targets need a grant (MCP's list_targets reads this).
    let (code, out, err) = gw.exec_on("airlock", "targets --json").await;
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let vault = listed["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == VAULT))
        .cloned()
        .unwrap_or_default();
    assert_eq!(vault["grant_required"], true, "{listed}");

    // A 3-second grant opens the target…
    let added = Instant::now();
    let id = gw.grant_add(VAULT, "3s");
    let (code, out, err) = gw.exec_on(VAULT, "uptime").await;
    assert_eq!(code, 0, "{err}\n{}", gw.log());
    assert!(out.contains("load average"), "{out}");
    assert_eq!(gw.exec_on(VAULT, "hostname").await.0, 0);

    // …until it expires.
    tokio::time::sleep((added + Duration::from_secs(4)).saturating_duration_since(Instant::now()))
        .await;
    let (code, _, err) = gw.exec_on(VAULT, "uptime").await;
    assert_eq!((code, err.trim()), (77, hint.as_str()));

    let added = payloads(&gw, "grant.added");
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(added[0]["id"], id.as_str());
    assert_eq!(added[0]["agent"], "bot");
    assert_eq!(added[0]["target"], VAULT);
    assert_eq!(added[0]["reason"], "test");
    assert!(added[0]["request"].is_null());
    eventually("grant.expired is in the ledger", || {
        payloads(&gw, "grant.expired")
            .iter()
            .any(|p| p["id"] == id.as_str())
    })
    .await;
    // The refusals are audited as such.
    let refused = payloads(&gw, "command.submitted")
        .into_iter()
        .filter(|p| p["target"] == VAULT && p["decision"] == "deny")
        .count();
    assert!(refused >= 3, "denied commands are in the ledger");

    // `grant list` shows it, expired.
    let out = gw.grant_cli(&["list", "--json"]);
    assert!(out.status.success());
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_a_grant_ends_a_running_command_with_the_reason() {
    let gw = Gateway::start(grant_opts(false, "")).await;
    let id = gw.grant_add(VAULT, "1h");
    let marker = gw.path("still-running");
    let child = gw.spawn_on(VAULT, "sleep 30; echo late");
    eventually("the command started", || {
        !payloads(&gw, "exec.start").is_empty()
    })
    .await;
    let revoked = Instant::now();
    let out = gw.grant_cli(&["revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, out, err) = finish(child).await;
    let took = revoked.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "ended {took:?} after the revocation"
    );
    assert_ne!(code, 0);
    assert!(!out.contains("late"));
    assert!(
        err.contains("airlock: the access grant for vault was revoked by cli:"),
        "{err}"
    );
    assert!(err.contains("command killed"), "{err}");
    assert!(!marker.exists());

    let exits = payloads(&gw, "exec.exit");
    assert!(
        exits.iter().any(|p| p["killed"]
            .as_str()
            .is_some_and(|k| k.contains("was revoked"))),
        "{exits:?}"
    );
    eventually("the session closed as grant-ended", || {
        payloads(&gw, "session.close")
            .iter()
            .any(|p| p["outcome"] == "grant-ended")
    })
    .await;
    let rev = payloads(&gw, "grant.revoked");
    assert_eq!(rev.len(), 1);
    assert_eq!(rev[0]["id"], id.as_str());
    // New commands are refused at once; a second revoke says it is over already.
    let (code, _, err) = gw.exec_on(VAULT, "uptime").await;
    assert_eq!((code, err.trim()), (77, no_grant_line(VAULT).as_str()));
    let again = gw.grant_cli(&["revoke", &id]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already ended (revoked by cli:"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let unknown = gw.grant_cli(&["revoke", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no grant nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gated_shell_ends_when_its_grant_expires() {
    let gw = Gateway::start(grant_opts(false, "")).await;
    gw.grant_add(VAULT, "4s");
    let mut sh = ShellClient::open(&gw, VAULT).await;
    sh.line("echo inside-$((40+2))").await;
    sh.wait_for("inside-42").await;
    sh.line("sleep 30").await;
    let (code, transcript) = sh.exit().await;
    assert_eq!(code, 77, "{transcript}");
    assert!(
        transcript.contains("airlock: session ended: the access grant for vault expired"),
        "{transcript}"
    );
    let exits = payloads(&gw, "exec.exit");
    assert!(
        exits
            .iter()
            .any(|p| p["killed"] == "the access grant for vault expired"),
        "the running line was killed, recorded: {exits:?}"
    );
    eventually("the session closed as grant-ended", || {
        payloads(&gw, "session.close")
            .iter()
            .any(|p| p["outcome"] == "grant-ended")
    })
    .await;
    // The recording's last marker says why.
    let path = gw.recordings().into_iter().last().expect("a recording");
    let text = std::fs::read_to_string(path).expect("recording");
    assert!(text.contains("the access grant for vault expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_checks_durations_agents_and_targets() {
    let gw = Gateway::start(grant_opts(false, "[grants]\nmax_duration = \"1h\"\n")).await;
    let err = |args: &[&str]| {
        let out = gw.grant_cli(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let add = |agent: &'static str, target: &'static str, d: &'static str| {
        vec!["add", "--agent", agent, "--target", target, "--for", d]
    };
    let e = err(&add("bot", VAULT, "2h"));
    assert!(e.contains("longer than [grants] max_duration (1h)"), "{e}");
    assert!(e.contains("airlock.toml"), "names the file: {e}");
    let e = err(&add("ghost", VAULT, "1h"));
    assert!(e.contains("unknown agent \"ghost\""), "{e}");
    let e = err(&add("bot", "nowhere", "1h"));
    assert!(e.contains("unknown target \"nowhere\""), "{e}");
    for short in ["0s", "1ns", "500ms"] {
        let e = err(&add("bot", VAULT, short));
        assert!(e.contains("at least one second"), "{short}: {e}");
    }
    // A target that needs no grant: added, with a clear warning.
    let out = gw.grant_cli(&add("bot", "local", "1h"));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not set requires_grant = true"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = gw.grant_add(VAULT, "1h");
    let out = gw.grant_cli(&["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&id) && l.contains("active until")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_made_on_one_node_is_in_force_on_the_other_at_once() {
    if pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set (cluster mode needs PostgreSQL)");
        return;
    }
    let cluster = "[cluster]\nheartbeat = \"200ms\"\nstale_after = \"1500ms\"\n";
    let a = Gateway::start(Opts {
        node: Some("node-a"),
        ..grant_opts(true, cluster)
    })
    .await;
    let b = Gateway::start(Opts {
        shared_db: Some(a.db_url.clone()),
        node: Some("node-b"),
        ..grant_opts(false, cluster)
    })
    .await;
    let hint = no_grant_line(VAULT);
    let (code, _, err) = b.exec_on(VAULT, "uptime").await;
    assert_eq!((code, err.trim()), (77, hint.as_str()));

    let id = a.grant_add(VAULT, "1h");
    let (code, _, err) = b.exec_on(VAULT, "uptime").await;
    assert_eq!(code, 0, "node B honours node A's grant at once: {err}");

    // Revoked through node A: node B's running command ends.
    let child = b.spawn_on(VAULT, "sleep 30");
    eventually("the command started on node B", || {
        !payloads(&b, "exec.start").is_empty()
    })
    .await;
    let revoked = Instant::now();
    assert!(a.grant_cli(&["revoke", &id]).status.success());
    let (code, _, err) = finish(child).await;
    assert!(revoked.elapsed() < Duration::from_secs(3));
    assert_ne!(code, 0);
    assert!(err.contains("was revoked by cli:"), "{err}");
    let (code, _, err) = b.exec_on(VAULT, "uptime").await;
    assert_eq!((code, err.trim()), (77, hint.as_str()));
}
