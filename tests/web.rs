//! The reviewer web page in a real browser: Debian's chromium driven by playwright-core
//! (`tests/web/review.mjs`), against a real gateway and real `ssh` execs. scripts/test.sh
//! installs both; screenshots are kept in target/test-artifacts/. Each test is a list of
//! steps for the driver (what to click and type, what to record) and assertions on what the
//! page showed, what it sent and what the agent got.

mod harness;

#[path = "web/agents.rs"]
mod agents;
#[path = "web/driver.rs"]
mod driver;
#[path = "web/groups.rs"]
mod groups;

use driver::{artefact, decisions, drive, fits_the_window, reached, sent, text, texts, thousands};
use harness::{Gateway, Opts, finish};
use serde_json::{Value, json};

#[tokio::test]
async fn approve_from_the_page_runs_the_command() {
    let gw = Gateway::start(Opts {
        more_targets: vec!["prod".into()],
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let file = gw.path("approved-in-browser");
    let cmd = format!("echo waiting-for-alice; touch {}", file.display());
    // On the prod target, with a stated reason (an env request the gateway accepts).
    let mut ssh = gw.ssh_cmd(&gw.agent_key, "prod");
    ssh.args([
        "-o",
        "SetEnv=AIRLOCK_REASON=\"rotating the nginx logs, ticket OPS-42\"",
    ])
    .arg("127.0.0.1")
    .arg(&cmd);
    let child = ssh.spawn().expect("ssh");

    let seen = drive(
        &gw,
        &token,
        "web-approve",
        json!([
            {"card": cmd, "as": "c"},
            {"selected": "selected_at_first"},
            {"inspect": "c"},
            {"click": "c"},
            {"screen": "c"},
            {"shot": artefact("web-queue.png")},
            {"key": "a"},
            {"gone": "c"},
            {"status": "approved by alice", "as": "status"},
            {"sent": "sent"},
            {"history": cmd, "as": "history"},
        ]),
    )
    .await;

    let (code, out, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("waiting-for-alice"));
    assert!(file.exists(), "the approved command ran");
    let c = &seen["c"];
    assert_eq!(seen["signed_in_as"], "signed in as alice", "{seen:#}");
    assert_eq!(seen["token_in_url"], false);
    assert_eq!(
        seen["selected_at_first"],
        json!([]),
        "nothing is selected for the reviewer: {seen:#}"
    );
    assert_eq!(c["tier"], "medium", "{seen:#}");
    assert_eq!(c["command"], cmd.as_str(), "shown exactly: {seen:#}");
    assert!(
        text(&seen, "c_screen").contains("airlock: waiting for approval (medium"),
        "terminal context shows what the agent sees: {seen:#}"
    );
    assert_eq!(c["labels"], "env=prod", "{seen:#}");
    assert_eq!(
        c["stated"], "agent says: rotating the nginx logs, ticket OPS-42",
        "{seen:#}"
    );
    assert!(
        c["marks"].as_u64().unwrap_or(0) >= 1,
        "risky span highlighted: {seen:#}"
    );
    assert!(text(c, "countdown").starts_with("denies in"), "{seen:#}");
    assert!(text(c, "approvals").contains("0/1"), "{seen:#}");
    assert!(
        texts(&c["buttons"]).iter().any(|b| b.contains("remember")),
        "a medium request can be remembered: {seen:#}"
    );
    fits_the_window(c);
    assert_eq!(decisions(&seen["sent"]), [sent("c", "approve", None)]);
    assert!(
        text(&seen, "status").contains("approved by alice: \"echo waiting-for-alice; touch"),
        "{seen:#}"
    );
    assert!(
        text(&seen["history"], "row").contains("alice approve"),
        "{seen:#}"
    );
    assert!(
        seen["history"]["markers"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "recording played with its markers: {seen:#}"
    );
    assert!(
        artefact("web-queue.png")
            .metadata()
            .map(|m| m.len() > 1000)
            .unwrap_or(false)
    );
}

/// A deny's reason is typed in a dialog and reaches the agent.
#[tokio::test]
async fn deny_from_the_page_stops_the_command_and_tells_the_agent_why() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let file = gw.path("denied-in-browser");
    let cmd = format!("touch {}", file.display());
    let child = gw.spawn_exec(&cmd);
    let why = "not during the freeze, OPS-12";
    let seen = drive(
        &gw,
        &token,
        "web-deny",
        json!([
            {"card": cmd, "as": "c"},
            {"click": "c"},
            {"key": "d"},
            {"open": "deny-dialog"},
            {"shot": artefact("web-deny-dialog.png")},
            {"fill": "#deny-reason", "text": why},
            {"press": "#deny-reason", "key": "Enter"},
            {"closed": "deny-dialog"},
            {"gone": "c"},
            {"status": "denied by alice", "as": "status"},
            {"sent": "sent"},
        ]),
    )
    .await;
    let (code, _, err) = finish(child).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("airlock: denied by alice: not during the freeze, OPS-12"),
        "{err}"
    );
    assert!(!file.exists(), "the denied command never ran");
    assert_eq!(decisions(&seen["sent"]), [sent("c", "deny", Some(why))]);
    assert!(
        text(&seen, "status").contains("denied by alice: not during the freeze, OPS-12"),
        "{seen:#}"
    );
}

#[tokio::test]
async fn remember_from_the_page_whitelists_the_command() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let file = gw.path("remembered-in-browser");
    let cmd = format!("touch {}", file.display());
    let child = gw.spawn_exec(&cmd);
    let seen = drive(
        &gw,
        &token,
        "web-remember",
        json!([
            {"card": cmd, "as": "c"},
            // The button, not R (clicks right after the queue changed are ignored: wait).
            {"sleep": 700},
            {"button": "c", "class": "remember"},
            {"open": "remember"},
            {"text": "#remember-cmd", "as": "dialog_command"},
            {"check": "#remember-form input[name=target][value=any]"},
            {"check": "#remember-form input[name=ttl][value=\"1d\"]"},
            {"press": "#remember-ok", "key": "Enter"},
            {"gone": "c"},
            {"status": "remembered", "as": "status"},
        ]),
    )
    .await;
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(seen["dialog_command"], cmd.as_str(), "{seen:#}");
    assert!(
        text(&seen, "status").contains("remembered it for bot on any target, for 1d"),
        "{seen:#}"
    );
    // Whitelisted for this agent on any target, for a day: runs again without anyone.
    std::fs::remove_file(&file).expect("created");
    let (code, _, err) = gw.exec(&cmd).await;
    assert_eq!(code, 0, "{err}");
    let listed = String::from_utf8_lossy(&gw.cli(&["whitelist", "list"]).stdout).into_owned();
    assert!(listed.contains("\tbot\t*\tmedium\texact\t"), "{listed}");
}

/// A run of 300 spaces hides the tail of a line on most screens, and a 3,000-character
/// command scrolls it away: the page shows the run as one mark, collapses the long command,
/// and refuses to approve it until the reviewer expanded it.
#[tokio::test]
async fn padded_and_long_commands_show_every_character_before_approval() {
    let gw = Gateway::start(Opts {
        timeout: "180s",
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let (spaces, long) = (gw.path("spaces"), gw.path("long"));
    for dir in [&spaces, &long] {
        std::fs::create_dir_all(dir.join("v")).expect("canary");
    }
    let padded = format!(
        "ls {}{}; rm -rf {}/v",
        spaces.display(),
        " ".repeat(300),
        spaces.display()
    );
    let lengthy = format!("echo {}; rm -rf {}/v", "x".repeat(2900), long.display());
    // Both are high (recursive delete): bob's approval first, over the socket.
    let mut bob = gw.reviewer("bob").await;
    let first = gw.spawn_exec(&padded);
    let p = bob.next_of("request").await;
    let second = gw.spawn_exec(&lengthy);
    let l = bob.next_of("request").await;
    for r in [&p, &l] {
        assert_eq!(r["tier"], "high", "{r}");
        let id = r["id"].as_str().expect("id");
        assert_eq!(bob.decide(id, "approve").await["result"], "counted");
    }
    let hidden = lengthy.chars().count() - 1000;
    let seen = drive(
        &gw,
        &token,
        "web-long",
        json!([
            {"card": format!("{}/v", spaces.display()), "as": "padded"},
            {"card": "echo xxxxxxxxxx", "as": "long"},
            {"inspect": "padded"},
            {"inspect": "long"},
            {"shot": artefact("web-long.png")},
            {"click": "padded"},
            {"key": "a"},
            {"open": "confirm-high"},
            {"fill": "#confirm-target", "text": "local"},
            {"press": "#confirm-target", "key": "Enter"},
            {"gone": "padded"},
            {"status": "approved by bob and alice: \"ls ", "as": "padded_status"},
            {"click": "long"},
            {"key": "a"},
            {"latest": "expand the whole command first", "as": "refused"},
            {"sleep": 500},
            {"sent": "sent_refused"},
            {"key": "e"},
            {"inspect": "long", "as": "long_expanded"},
            {"shot": artefact("web-long-expanded.png")},
            {"key": "a"},
            {"open": "confirm-high"},
            {"fill": "#confirm-target", "text": "local"},
            {"press": "#confirm-target", "key": "Enter"},
            {"gone": "long"},
            {"status": "approved by bob and alice: \"echo x", "as": "long_status"},
            {"sent": "sent"},
        ]),
    )
    .await;
    let (code, _, err) = finish(first).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = finish(second).await;
    assert_eq!(code, 0, "{err}");
    assert!(!spaces.join("v").exists() && !long.join("v").exists());

    let padded_card = &seen["padded"];
    let shown = text(padded_card, "command");
    assert!(
        shown.contains("⟨300 spaces⟩") && shown.contains("rm -rf") && !shown.contains("     "),
        "{seen:#}"
    );
    assert!(
        texts(&padded_card["flags"])
            .iter()
            .any(|f| f.contains("300 spaces")),
        "{seen:#}"
    );
    assert!(
        !texts(&padded_card["buttons"])
            .iter()
            .any(|b| b.contains("remember")),
        "a high request cannot be remembered: {seen:#}"
    );
    fits_the_window(padded_card);

    let collapsed = &seen["long"];
    assert!(
        !text(collapsed, "command").contains("rm -rf"),
        "the tail is not shown yet: {seen:#}"
    );
    assert_eq!(
        collapsed["more"],
        format!(
            "… {} more characters — press E or click to expand",
            thousands(hidden)
        ),
        "{seen:#}"
    );
    fits_the_window(collapsed);
    assert!(
        text(&seen, "refused").contains(&format!(
            "expand the whole command first (E): {} characters not shown",
            thousands(hidden)
        )),
        "{seen:#}"
    );
    assert_eq!(
        decisions(&seen["sent_refused"]),
        [sent("padded", "approve", None)],
        "nothing sent for the collapsed command: {seen:#}"
    );
    let expanded = &seen["long_expanded"];
    assert_eq!(expanded["command"], lengthy.as_str(), "{seen:#}");
    assert_eq!(expanded["more"], Value::Null, "{seen:#}");
    let reasons: Vec<String> = l["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["text"].as_str().unwrap_or("").to_owned())
        .collect();
    let listed = texts(&expanded["reasons"]);
    assert_eq!(listed.len(), reasons.len(), "{seen:#}");
    assert!(
        reasons
            .iter()
            .all(|r| listed.iter().any(|li| li.ends_with(r.as_str()))),
        "every reason shown: {seen:#}"
    );
    fits_the_window(expanded);
    assert_eq!(
        decisions(&seen["sent"]),
        [
            sent("padded", "approve", None),
            sent("long", "approve", None)
        ]
    );
    assert!(
        text(&seen, "padded_status").contains("⟨300 spaces⟩"),
        "the status quotes the command as shown: {seen:#}"
    );
}

/// Bidi controls, zero-width characters and look-alike letters are shown as marks, with the
/// card's warnings; none of them reaches the screen as itself.
#[tokio::test]
async fn hidden_characters_are_marked_on_the_card() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let canary = gw.path("hidden");
    let cmd = format!(
        "echo hi \u{202E}; ec\u{200B}ho x; \u{0441}at /etc/hostname; touch {}",
        canary.display()
    );
    let child = gw.spawn_exec(&cmd);
    let seen = drive(
        &gw,
        &token,
        "web-hidden",
        json!([
            {"card": "/etc/hostname", "as": "c"},
            {"inspect": "c"},
            {"shot": artefact("web-hidden-characters.png")},
            {"click": "c"},
            {"key": "d"},
            {"open": "deny-dialog"},
            {"press": "#deny-reason", "key": "Enter"},
            {"gone": "c"},
            {"status": "denied by alice", "as": "status"},
            {"sent": "sent"},
        ]),
    )
    .await;
    let (code, _, err) = finish(child).await;
    assert_ne!(code, 0);
    assert!(err.contains("airlock: denied by alice"), "{err}");
    assert!(!canary.exists());
    let c = &seen["c"];
    let shown = text(c, "command");
    for mark in ["⟨U+202E⟩", "⟨U+200B⟩", "⟨U+0441⟩"] {
        assert!(shown.contains(mark), "{mark} in {seen:#}");
    }
    assert!(!shown.contains('\u{0441}'), "{seen:#}");
    // Nowhere on the card (the classifier's reasons quote the command too): no invisible
    // character, and the look-alike only ever named on its own, never inside a word.
    let card = text(c, "text");
    for raw in ["\u{202E}", "\u{200B}", "\u{0441}at"] {
        assert!(!card.contains(raw), "{raw:?} reached the page: {seen:#}");
    }
    assert!(
        !texts(&c["flags"]).is_empty(),
        "the card warns about them: {seen:#}"
    );
    assert!(
        texts(&c["chip_titles"]).iter().all(|t| !t.is_empty()),
        "each mark says what it stands for: {seen:#}"
    );
    // Enter on an empty reason denies without a comment.
    assert_eq!(decisions(&seen["sent"]), [sent("c", "deny", None)]);
}

/// The selection belongs to the reviewer: a request arriving on an empty queue is not
/// selected, a new one does not move the selection, and once the selected request is
/// decided nothing is selected — so a second A cannot approve the card that moved up.
#[tokio::test]
async fn the_gateway_never_moves_the_selection() {
    let gw = Gateway::start(Opts {
        timeout: "180s",
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let (a, b) = (gw.path("canary-a"), gw.path("canary-b"));
    let medium = format!("touch {}", a.display());
    let high = format!("touch {}; rm -rf {}.d", b.display(), b.display());
    let (ready, second) = (gw.path("page-ready"), gw.path("high-selected"));
    let steps = json!([
        {"touch": ready},
        {"card": high, "as": "high"},
        {"selected": "selected_after_first"},
        {"key": "a"},
        {"latest": "select a request first \\(J/K\\)", "as": "nothing_selected"},
        {"click": "high"},
        {"touch": second},
        {"card": medium, "as": "medium"},
        {"selected": "selected_after_second"},
        {"notes": "notes"},
        {"click": "medium"},
        {"key": "a"},
        {"gone": "medium"},
        {"status": "approved by alice", "as": "approved"},
        {"status": "you approved"},
        {"selected": "selected_after_decision"},
        {"key": "a"},
        {"latest": "select a request first \\(J/K\\)", "as": "after"},
        {"sleep": 1500},
        {"present": "high", "as": "high_pending"},
        {"sent": "sent"},
        {"click": "high"},
        {"key": "d"},
        {"open": "deny-dialog"},
        {"fill": "#deny-reason", "text": "wrong box"},
        {"press": "#deny-reason", "key": "Enter"},
        {"gone": "high"},
    ]);
    let agents = async {
        reached(&ready).await;
        let h = gw.spawn_exec(&high);
        reached(&second).await;
        (h, gw.spawn_exec(&medium))
    };
    let (seen, (h, m)) = tokio::join!(drive(&gw, &token, "web-selection", steps), agents);
    let (code, _, err) = finish(m).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = finish(h).await;
    assert_ne!(code, 0);
    assert!(err.contains("airlock: denied by alice: wrong box"), "{err}");
    assert!(a.exists(), "the medium request was approved");
    assert!(!b.exists(), "the high request never ran");
    assert_eq!(seen["selected_after_first"], json!([]), "{seen:#}");
    assert_eq!(seen["selected_after_second"], json!(["high"]), "{seen:#}");
    assert_eq!(seen["selected_after_decision"], json!([]), "{seen:#}");
    assert_eq!(seen["high_pending"], true, "{seen:#}");
    assert_eq!(
        decisions(&seen["sent"]),
        [sent("medium", "approve", None)],
        "the second A sent nothing: {seen:#}"
    );
    let notes = seen["notes"].as_array().cloned().unwrap_or_default();
    assert!(
        notes.iter().any(|n| n["title"] == "Airlock: HIGH request"
            && text(n, "body").starts_with("bot → local: touch ")),
        "a desktop notification for the new request: {seen:#}"
    );
}

/// Approving a high request from the page means typing its target's name: Esc and a wrong
/// name send nothing; the right one sends the approval with the note.
#[tokio::test]
async fn a_high_approval_needs_the_target_name() {
    let gw = Gateway::start(Opts {
        timeout: "180s",
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let file = gw.path("high-approved");
    let cmd = format!("touch {}; rm -rf {}.d", file.display(), file.display());
    let mut bob = gw.reviewer("bob").await;
    let child = gw.spawn_exec(&cmd);
    let req = bob.next_of("request").await;
    assert_eq!(req["tier"], "high", "{req}");
    let id = req["id"].as_str().expect("id").to_owned();
    let ack = bob.decide(&id, "approve").await;
    assert_eq!(ack["result"], "counted", "{ack}");
    // The default high quorum, 2 from anyone, in `Progress`'s words.
    assert_eq!(ack["progress_text"], "any 1/2 (bob)", "{ack}");
    let seen = drive(
        &gw,
        &token,
        "web-high",
        json!([
            {"card": cmd, "as": "h"},
            {"inspect": "h"},
            {"click": "h"},
            {"key": "r"},
            {"latest": "high-risk commands can never be remembered", "as": "no_remember"},
            {"key": "a"},
            {"open": "confirm-high"},
            {"press": "#confirm-target", "key": "Escape"},
            {"closed": "confirm-high"},
            {"key": "a"},
            {"open": "confirm-high"},
            {"text": "#confirm-high-target", "as": "dialog_target"},
            {"text": "#confirm-high-cmd", "as": "dialog_command"},
            {"text": "#confirm-high-progress", "as": "dialog_progress"},
            {"fill": "#confirm-target", "text": "prod"},
            {"press": "#confirm-target", "key": "Enter"},
            {"text": "#confirm-error", "as": "dialog_error"},
            {"shot": artefact("web-high-confirm.png")},
            {"sleep": 1000},
            {"sent": "sent_wrong"},
            {"present": "h", "as": "still_pending"},
            {"fill": "#confirm-target", "text": "local"},
            {"fill": "#approve-note", "text": "canary first"},
            {"press": "#approve-note", "key": "Enter"},
            {"gone": "h"},
            {"status": "approved by bob and alice", "as": "status"},
            {"sent": "sent"},
        ]),
    )
    .await;
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(file.exists(), "approved by two reviewers, it ran");
    assert!(
        err.contains("canary first"),
        "the agent reads the note: {err}"
    );
    assert!(text(&seen["h"], "approvals").contains("1/2"), "{seen:#}");
    let h = &seen["h"];
    assert_eq!(
        h["progress"], "approvals any 1/2 (bob)",
        "who approved so far: {seen:#}"
    );
    assert_eq!(h["needs"], Value::Null, "no rule and no group: {seen:#}");
    assert_eq!(
        h["not_counted"],
        Value::Null,
        "alice's vote counts: {seen:#}"
    );
    assert_eq!(
        seen["dialog_progress"], "approvals any 1/2 (bob) — needs 2 reviewers",
        "{seen:#}"
    );
    assert_eq!(seen["dialog_target"], "local", "{seen:#}");
    assert_eq!(seen["dialog_command"], cmd.as_str(), "{seen:#}");
    assert!(!text(&seen, "dialog_error").is_empty(), "{seen:#}");
    assert_eq!(seen["sent_wrong"], json!([]), "{seen:#}");
    assert_eq!(seen["still_pending"], true, "{seen:#}");
    assert_eq!(
        decisions(&seen["sent"]),
        [sent("h", "approve", Some("canary first"))]
    );
    assert!(
        text(&seen, "status").contains("alice: canary first"),
        "{seen:#}"
    );
}
