//! Staging first (issue 21): whitelist entries promoted from staging, or copied to a new agent,
//! are proposals that allow nothing until enough people accept them — with real `ssh` execs,
//! the real CLI as it runs in CI (no terminal, `CI=true`) and the reviewers' HTTP API.
//! SQLite always; PostgreSQL too when AIRLOCK_TEST_POSTGRES_URL is set.

mod harness;

use harness::{
    Gateway, cli_as, finish, ledger_kinds, new_agent, pg_url, post, proposals, staging_opts,
};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `cmd` as agent `bot` on `target`.
async fn exec_on(gw: &Gateway, target: &str, cmd: &str) -> (i32, String, String) {
    let mut c = gw.ssh_cmd(&gw.agent_key, target);
    c.arg("127.0.0.1").arg(cmd);
    finish(c.spawn().expect("ssh")).await
}

async fn promoted_entries_wait_for_two_people_on(postgres: bool) {
    let gw = Gateway::start(staging_opts("3s", postgres, "")).await;
    let d = gw.path("wl");
    std::fs::create_dir_all(&d).unwrap();
    let cmd = format!("touch {}/promoted", d.display());
    let file = gw.path("wl/promoted");
    let alice = gw.add_reviewer("alice");
    let bob = gw.add_reviewer("bob");
    let quinn = gw.add_reviewer("quinn");

    // Live on staging (medium there and on prod), nothing on prod.
    ok(&gw.cli(&[
        "whitelist",
        "add",
        "--agent",
        "bot",
        "--target",
        "staging",
        "--",
        &cmd,
    ]));
    let (code, _, e) = exec_on(&gw, "staging", &cmd).await;
    assert_eq!(code, 0, "whitelisted on staging: {e}");
    std::fs::remove_file(&file).unwrap();

    // Promotion proposes it for prod; it is not in the live list and needs two people.
    let out = ok(&cli_as(
        &gw,
        "carol",
        &[
            "whitelist",
            "promote",
            "--from-target",
            "staging",
            "--to-target",
            "prod",
            "--agent",
            "bot",
        ],
    ));
    let id = out.trim().to_owned();
    assert_eq!(id.lines().count(), 1, "one proposal: {out}");
    let listed = proposals(&gw, "carol");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "proposed");
    assert_eq!(listed[0]["target"], "prod");
    assert_eq!(listed[0]["needed"], 2);
    assert_eq!(listed[0]["source"], "promoted from target staging");
    let live = ok(&gw.cli(&["whitelist", "list", "--json"]));
    assert!(!live.contains("\"prod\""), "a proposal is not live: {live}");
    // Promoting again proposes nothing twice.
    let again = ok(&cli_as(
        &gw,
        "carol",
        &[
            "whitelist",
            "promote",
            "--from-target",
            "staging",
            "--to-target",
            "prod",
        ],
    ));
    assert!(again.trim().is_empty(), "{again}");

    // On prod it does nothing: the command waits, nobody answers, it is denied, nothing ran.
    let (code, _, e) = exec_on(&gw, "prod", &cmd).await;
    assert_ne!(code, 0, "ran while only proposed: {e}");
    assert!(e.contains("airlock: denied"), "{e}");
    assert!(!file.exists());

    // A reviewer scoped to staging does not see it and cannot accept it.
    let (status, body) = harness::http(&gw, "GET", "/api/proposals", &quinn, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["proposals"].as_array().map(Vec::len),
        Some(0),
        "{body}"
    );
    let (status, body) = post(&gw, &format!("/api/proposals/{id}/accept"), &quinn).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("out_of_scope")));

    // One acceptance (the operator alice at the CLI) is not enough for medium.
    let out = ok(&cli_as(
        &gw,
        "alice",
        &["whitelist", "review", "--accept", &id, "--json"],
    ));
    assert!(out.contains("\"live\":false"), "{out}");
    let (code, _, e) = exec_on(&gw, "prod", &cmd).await;
    assert_ne!(code, 0, "ran with one acceptance of two: {e}");
    assert!(!file.exists());
    // alice again, now as the reviewer on the page: the same person, not a second one.
    let (status, body) = post(&gw, &format!("/api/proposals/{id}/accept"), &alice).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_accepted")),
        "{body}"
    );

    // The API refuses a cross-site or non-JSON POST before it looks at anything.
    let path = format!("/api/proposals/{id}/accept");
    let (status, _) = harness::http(
        &gw,
        "POST",
        &path,
        &bob,
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://evil.example"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = harness::http(
        &gw,
        "POST",
        &path,
        &bob,
        &[("Content-Type", "application/x-www-form-urlencoded")],
    )
    .await;
    assert_eq!(status, 415);

    // bob on the page is the second person: live, and the command runs at once.
    let (status, body) = harness::http(&gw, "GET", "/api/proposals", &bob, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["proposals"][0]["accepted_by"][0], "alice", "{body}");
    assert_eq!(body["proposals"][0]["may_decide"], true, "{body}");
    let (status, body) = post(&gw, &path, &bob).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live"], true, "{body}");
    let (code, _, e) = exec_on(&gw, "prod", &cmd).await;
    assert_eq!(code, 0, "accepted, so whitelisted: {e}");
    assert!(file.exists());
    assert!(proposals(&gw, "carol").is_empty());

    let kinds = ledger_kinds(&gw);
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("whitelist.proposed"), 1, "{kinds:?}");
    assert_eq!(count("whitelist.proposal_accepted"), 2, "{kinds:?}");
    assert_eq!(count("whitelist.add"), 2, "staging's and prod's: {kinds:?}");
    // The chain holds with the proposal's entries in it.
    let exported = gw.path("ledger.jsonl");
    std::fs::write(&exported, gw.cli(&["ledger", "export"]).stdout).unwrap();
    ok(&gw.cli(&["ledger", "verify", &exported.display().to_string()]));
}

#[tokio::test]
async fn promoted_entries_do_nothing_on_prod_until_two_people_accept_them() {
    promoted_entries_wait_for_two_people_on(false).await;
}

#[tokio::test]
async fn promoted_entries_wait_for_two_people_on_postgres() {
    if pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set");
        return;
    }
    promoted_entries_wait_for_two_people_on(true).await;
}

#[tokio::test]
async fn a_copy_to_a_new_agent_is_proposed_not_live_and_a_rejection_is_final() {
    let agent = new_agent();
    let gw = Gateway::start(staging_opts("2s", false, &agent.extra)).await;
    let d = gw.path("wl");
    std::fs::create_dir_all(&d).unwrap();
    let cmd = format!("touch {}/copied", d.display());
    let file = gw.path("wl/copied");
    let bob = gw.add_reviewer("bob");
    ok(&gw.cli(&[
        "whitelist",
        "add",
        "--agent",
        "bot",
        "--target",
        "local",
        "--",
        &cmd,
    ]));

    let out = ok(&cli_as(
        &gw,
        "carol",
        &[
            "whitelist",
            "copy",
            "--from-agent",
            "bot",
            "--to-agent",
            "newbot",
            "--json",
        ],
    ));
    let made: serde_json::Value = serde_json::from_str(out.trim()).expect("one json line");
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["agent"], "newbot");
    assert_eq!(made["source"], "copied from agent bot");

    // Not live for newbot: its command waits and is denied.
    let mut c = gw.ssh_cmd(&agent.key, "local");
    c.arg("127.0.0.1").arg(&cmd);
    let (code, _, e) = finish(c.spawn().expect("ssh")).await;
    assert_ne!(code, 0, "a copy ran before anyone accepted it: {e}");
    assert!(!file.exists());

    // The agent itself may not decide on its own entry; a reviewer rejects it.
    let newbot = gw.add_reviewer("newbot");
    let (status, body) = post(&gw, &format!("/api/proposals/{id}/reject"), &newbot).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("own_agent")),
        "{body}"
    );
    let (status, body) = post(&gw, &format!("/api/proposals/{id}/reject"), &bob).await;
    assert_eq!(status, 200, "{body}");
    // Rejected is final: no acceptance, from the CLI or the page, brings it back.
    let out = cli_as(
        &gw,
        "alice",
        &["whitelist", "review", "--accept", &id, "--json"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not_proposed"));
    assert!(proposals(&gw, "carol").is_empty());
    let mut c = gw.ssh_cmd(&agent.key, "local");
    c.arg("127.0.0.1").arg(&cmd);
    let (code, _, _) = finish(c.spawn().expect("ssh")).await;
    assert_ne!(code, 0);
    assert!(!file.exists());
    let kinds = ledger_kinds(&gw);
    assert!(
        kinds.iter().any(|k| k == "whitelist.proposal_rejected"),
        "{kinds:?}"
    );
    drop(agent);
}

#[tokio::test]
async fn diff_compares_the_live_whitelist_with_an_export() {
    let gw = Gateway::start(staging_opts("2s", false, "")).await;
    ok(&gw.cli(&[
        "whitelist",
        "add",
        "--agent",
        "bot",
        "--target",
        "staging",
        "--",
        "touch /srv/a",
    ]));
    let export = gw.path("wl.toml");
    ok(&gw.cli(&[
        "whitelist",
        "export",
        "--out",
        &export.display().to_string(),
    ]));
    let file = export.display().to_string();
    ok(&gw.cli(&["whitelist", "diff", "--exit-code", &file]));

    // A proposal is not live: the diff does not change.
    ok(&cli_as(
        &gw,
        "carol",
        &[
            "whitelist",
            "promote",
            "--from-target",
            "staging",
            "--to-target",
            "prod",
        ],
    ));
    ok(&gw.cli(&["whitelist", "diff", "--exit-code", &file]));

    // A live entry the file lacks, and one the file has that is gone.
    ok(&gw.cli(&[
        "whitelist",
        "add",
        "--target",
        "local",
        "--",
        "touch /srv/b",
    ]));
    let out = gw.cli(&["whitelist", "diff", "--exit-code", &file]);
    assert!(!out.status.success(), "differs, so exit status 1");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+ command \"touch /srv/b\""), "{text}");
    let json = ok(&gw.cli(&["whitelist", "diff", "--json", &file]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["same"], false);
    assert_eq!(v["only_live"][0]["command"], "touch /srv/b");
    assert_eq!(v["only_file"].as_array().map(Vec::len), Some(0));
}

#[path = "web/driver.rs"]
#[allow(dead_code)]
mod driver;

/// The web page's Proposed tab in Chromium: it lists the proposal with its progress, and
/// Accept counts one person (a medium entry stays proposed until a second one accepts).
#[tokio::test]
async fn the_web_page_lists_proposals_and_accepts_one() {
    let gw = Gateway::start(staging_opts("2s", false, "")).await;
    let cmd = "touch /srv/web-promoted";
    ok(&gw.cli(&[
        "whitelist",
        "add",
        "--agent",
        "bot",
        "--target",
        "staging",
        "--",
        cmd,
    ]));
    let id = ok(&cli_as(
        &gw,
        "carol",
        &[
            "whitelist",
            "promote",
            "--from-target",
            "staging",
            "--to-target",
            "prod",
        ],
    ))
    .trim()
    .to_owned();
    let alice = gw.add_reviewer("alice");
    let steps = serde_json::json!([
        {"tap": "#tab-proposed"},
        {"text": "#proposed .card", "as": "card"},
        {"tap": "#proposed .card button.approve"},
        {"latest": "accepted .*1/2", "as": "accepted"},
        {"text": "#proposed .card .progress", "as": "progress"},
    ]);
    let seen = driver::drive(&gw, &alice, "proposed", steps).await;
    let card = driver::text(&seen, "card");
    assert!(card.contains(cmd), "{card}");
    assert!(card.contains("promoted from target staging"), "{card}");
    assert!(card.contains("agent bot on target prod"), "{card}");
    assert!(
        driver::text(&seen, "progress").contains("1/2 accepted (alice)"),
        "{seen}"
    );
    let listed = proposals(&gw, "carol");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["accepted_by"], serde_json::json!(["alice"]));
    assert_eq!(listed[0]["status"], "proposed");
}
