//! The Agents tab's read API (issue 21): `GET /api/agents` and `GET /api/agents/{name}` over
//! a real gateway. The report is the one `airlock agents show` prints; a reviewer whose
//! groups are scoped never learns anything about a target outside the scope — not in the
//! targets, not in the weekly counts, not in the summary — and is told that some were left
//! out.

mod harness;

use harness::*;
use serde_json::Value;

/// `db-main` is in the DBAs' scope; the vault (a grant target, env=prod) is not. carol is a
/// scoped DBA, alice an unscoped SRE.
const SCOPED: &str = r#"[[target]]
name = "db-main"
kind = "local"
labels = { env = "staging" }
[[target]]
name = "vault"
kind = "local"
requires_grant = true
labels = { env = "prod" }
[[reviewer_group]]
name = "sre"
members = ["alice"]
[[reviewer_group]]
name = "dba"
members = ["carol"]
scope = { targets = ["db-*"] }
"#;

/// The status line and the JSON body of a GET.
async fn get(gw: &Gateway, path: &str, token: Option<&str>) -> (String, Value) {
    let raw = gw.http_get(path, token).await;
    let status = raw.lines().next().unwrap_or_default().to_owned();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn target_names(r: &Value) -> Vec<String> {
    r["targets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scoped_reviewer_never_sees_targets_outside_the_scope() {
    let gw = Gateway::start(Opts {
        more_targets: vec!["db-main".into(), VAULT.into()],
        extra: SCOPED.into(),
        ..Opts::default()
    })
    .await;
    let (alice, carol) = (gw.add_reviewer("alice"), gw.add_reviewer("carol"));
    // Unattended on the vault: a whitelist entry and a live grant; and a command run there.
    gw.whitelist_for_bot(VAULT, "hostname");
    gw.grant_add(VAULT, "1h");
    assert_eq!(gw.exec_on(VAULT, "hostname").await.0, 0);

    for path in ["/api/agents", "/api/agents/bot"] {
        let (status, _) = get(&gw, path, None).await;
        assert!(status.starts_with("HTTP/1.1 401"), "{path}: {status}");
    }
    let (status, list) = get(&gw, "/api/agents", Some(&carol)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(list["agents"], serde_json::json!(["bot"]), "{list}");
    let (status, _) = get(&gw, "/api/agents/nobody", Some(&alice)).await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");

    // alice sees everything, as the operator does.
    let (status, full) = get(&gw, "/api/agents/bot", Some(&alice)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}: {full}");
    assert_eq!(target_names(&full), ["local", "db-main", VAULT], "{full}");
    assert_eq!(full["targets_withheld"], false, "{full}");
    let summary = full["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("1 whitelisted command") && summary.contains(VAULT),
        "{summary}"
    );
    let vault = &full["targets"][2];
    assert_eq!(vault["usable_now"], true, "{full}");
    assert_eq!(vault["whitelist"][0]["command"], "hostname", "{full}");
    assert!(vault["whitelist"][0]["shown"]["parts"].is_array(), "{full}");
    assert!(
        full["last_7_days"]["low"]["allow"].as_u64().unwrap_or(0) >= 1,
        "{full}"
    );

    // carol (scoped to db-*) gets db-main only, and not a word about the vault.
    let (status, scoped) = get(&gw, "/api/agents/bot", Some(&carol)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}: {scoped}");
    assert_eq!(target_names(&scoped), ["db-main"], "{scoped}");
    assert_eq!(scoped["targets_withheld"], true, "{scoped}");
    assert!(
        !scoped.to_string().contains(VAULT) && !scoped.to_string().contains("hostname"),
        "the vault leaked: {scoped}"
    );
    let summary = scoped["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("only low-risk") && summary.contains("in your scope"),
        "{summary}"
    );
    assert!(
        scoped["last_7_days"]["low"].is_null(),
        "nothing ran on db-main: {scoped}"
    );
}
