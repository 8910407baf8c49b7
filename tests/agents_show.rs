//! `airlock agents show` (issue 21): one agent's blast radius from a real gateway — its
//! targets and which need a grant, the live grant, its whitelist by target, what it ran in
//! the last 7 days (from the ledger), and the one-line summary of what it can do unattended.

mod harness;

use harness::*;
use serde_json::Value;

fn show(gw: &Gateway) -> Value {
    let out = gw.cli(&["agents", "show", "bot", "--json"]);
    assert!(
        out.status.success(),
        "agents show: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn target<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("target {name} missing in {r}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_show_lists_targets_grants_whitelist_and_recent_commands() {
    let gw = Gateway::start(grant_opts(false, "")).await;
    // Before anything: the grant target is closed, nothing is whitelisted.
    let r = show(&gw);
    assert_eq!(target(&r, VAULT)["requires_grant"], true);
    assert!(target(&r, VAULT)["grant"].is_null());
    assert_eq!(target(&r, VAULT)["usable_now"], false);
    assert!(
        r["summary"]
            .as_str()
            .is_some_and(|s| s.contains("only low-risk")),
        "{r}"
    );

    // A whitelist entry on the vault, a grant, and some commands.
    gw.whitelist_for_bot(VAULT, "hostname");
    let id = gw.grant_add(VAULT, "1h");
    assert_eq!(gw.exec_on("local", "uptime").await.0, 0);
    assert_eq!(gw.exec_on("local", "whoami").await.0, 0);
    assert_eq!(gw.exec_on(VAULT, "hostname").await.0, 0);

    let r = show(&gw);
    let vault = target(&r, VAULT);
    assert_eq!(vault["grant"]["id"], id.as_str(), "{vault}");
    assert_eq!(vault["usable_now"], true);
    assert_eq!(vault["labels"]["env"], "prod");
    let wl = vault["whitelist"].as_array().expect("whitelist");
    assert_eq!(wl.len(), 1, "{vault}");
    assert_eq!(wl[0]["command"], "hostname");
    assert!(
        target(&r, "local")["whitelist"]
            .as_array()
            .is_some_and(|w| w.is_empty())
    );
    // Low commands ran: two on local, one (whitelisted, low) on the vault.
    assert!(
        r["last_7_days"]["low"]["allow"].as_u64().unwrap_or(0) >= 3,
        "{}",
        r["last_7_days"]
    );
    let summary = r["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("1 whitelisted command") && summary.contains(VAULT),
        "{summary}"
    );

    // Revoked: the vault is closed again, and the summary says so.
    let out = gw.grant_cli(&["revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = show(&gw);
    assert_eq!(target(&r, VAULT)["usable_now"], false);
    assert!(
        r["summary"]
            .as_str()
            .is_some_and(|s| s.contains("only low-risk")),
        "{r}"
    );

    // Text form, and an unknown agent.
    let out = gw.cli(&["agents", "show", "bot"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("target {VAULT}")) && text.contains("needs a grant"),
        "{text}"
    );
    let out = gw.cli(&["agents", "show", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown agent \"nobody\""));
}
