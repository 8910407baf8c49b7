//! The files a command runs, on the reviewer web page in a real browser (issue 22): a pending
//! `bash x.sh` whose script the gateway read — path, kind, size, SHA-256, the content numbered
//! with the risky line highlighted, the diff against the approved version, and a file it could
//! not read — and agent-written HTML, terminal escapes and bidi controls in that script that
//! stay inert text. The request is put in the gateway's own database (as the gate does) before
//! the page connects, so the page gets it in its snapshot; tests/web.rs has the driver.

mod harness;

#[path = "web/driver.rs"]
#[allow(dead_code)]
mod driver;

use airlock_approvals::scripts::{
    Previous, RiskyLine, ScriptFile, ScriptKind, sha256_hex, unified_diff,
};
use airlock_approvals::{NewRequest, Quorum, Store, now_ms};
use airlock_classifier::{Reason, Tier};
use driver::{artefact, drive, fits_the_window, text};
use harness::{Gateway, Opts};
use serde_json::{Value, json};

const OLD: &str = "#!/bin/sh\necho start\necho old-step\necho done\n";
const NOW: &str = "#!/bin/sh\necho start\nrm -rf /tmp/airlock-d\n\
    echo <img src=x onerror=\"window.__pwned=1\"> \u{1b}[31mred\u{1b}[0m \u{202E}gnp.exe\necho done\n";

/// `bash x.sh` on `local`: x.sh (changed since an approved version) removes a tree on line 3
/// and writes HTML, ANSI and a bidi override on line 4; big.sh could not be read.
async fn seed(gw: &Gateway) -> String {
    let store = Store::connect(&gw.db_url).await.expect("store");
    let x = ScriptFile {
        unbound: None,
        path: "x.sh".into(),
        resolved: "/home/bot/x.sh".into(),
        kind: ScriptKind::Shell,
        size: NOW.len() as u64,
        sha256: Some(sha256_hex(NOW.as_bytes())),
        content: Some(NOW.into()),
        problem: None,
        lines: vec![RiskyLine {
            line: 3,
            tier: Tier::High,
            rule: "fs.rm-recursive".into(),
            text: "rm: deletes recursively".into(),
        }],
        previous: Some(Previous {
            sha256: sha256_hex(OLD.as_bytes()),
            diff: unified_diff(OLD, NOW),
        }),
    };
    let big = ScriptFile {
        unbound: None,
        path: "big.sh".into(),
        resolved: "/home/bot/big.sh".into(),
        kind: ScriptKind::Unread,
        size: 0,
        sha256: None,
        content: None,
        problem: Some("larger than 256 KiB".into()),
        lines: vec![],
        previous: None,
    };
    let r = store
        .insert_request(
            &NewRequest {
                session_id: "s-scripts".into(),
                agent: "bot".into(),
                target: "local".into(),
                command: "bash x.sh; bash big.sh".into(),
                tier: Tier::High,
                score: 90,
                reasons: vec![Reason {
                    rule: "fs.rm-recursive".into(),
                    span: None,
                    text: "x.sh:3: rm -rf /tmp/airlock-d".into(),
                    tier: Tier::High,
                }],
                needs: Quorum::anyone(2),
                expires_at: now_ms() + 120_000,
                node: "elsewhere".into(),
                reason: None,
                labels: Default::default(),
                kind: Default::default(),
                scripts: vec![x, big],
            },
            now_ms(),
        )
        .await
        .expect("request stored");
    r.id
}

fn file<'a>(seen: &'a Value, path: &str) -> &'a Value {
    seen["s"]["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["path"] == path))
        .unwrap_or_else(|| panic!("no script {path} on the page: {seen:#}"))
}

#[tokio::test]
async fn the_page_shows_the_script_its_risky_line_and_the_diff_and_agent_html_stays_text() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    seed(&gw).await;
    let seen = drive(
        &gw,
        &token,
        "web-scripts",
        json!([
            {"card": "bash x.sh", "as": "c"},
            {"scripts": "c", "as": "s"},
            {"inspect": "c"},
            {"shot": artefact("web-scripts.png")},
        ]),
    )
    .await;

    let x = file(&seen, "x.sh");
    let sha = sha256_hex(NOW.as_bytes());
    assert_eq!(text(x, "kind"), "shell", "{seen:#}");
    assert_eq!(text(x, "size"), format!("{} bytes", NOW.len()), "{seen:#}");
    // The hash: short on the card, whole on hover and for copying.
    assert_eq!(
        text(x, "sha"),
        format!("sha256 {}…", &sha[..12]),
        "{seen:#}"
    );
    assert!(text(x, "sha_title").contains(&sha), "{seen:#}");
    assert_eq!(text(x, "sha_full"), sha, "{seen:#}");
    // Every line numbered; line 3 highlighted as high, with the classifier's words under it.
    let lines = x["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 5, "{seen:#}");
    assert_eq!(lines[2], json!(["3", "rm -rf /tmp/airlock-d"]), "{seen:#}");
    assert_eq!(x["risky"].as_array().map(Vec::len), Some(1), "{seen:#}");
    assert_eq!(x["risky"][0]["line"], "3", "{seen:#}");
    assert!(
        text(&x["risky"][0], "class").contains("risk-high"),
        "{seen:#}"
    );
    assert_ne!(
        text(&x["risky"][0], "background"),
        "rgba(0, 0, 0, 0)",
        "the risky line is coloured: {seen:#}"
    );
    assert!(text(x, "summary").contains("risky: line 3"), "{seen:#}");
    assert_eq!(
        x["why"],
        json!(["↳ [high] fs.rm-recursive: rm: deletes recursively"]),
        "{seen:#}"
    );
    // The diff against the approved version.
    assert!(
        text(x, "changed").contains("changed since the approved version"),
        "{seen:#}"
    );
    let old = sha256_hex(OLD.as_bytes());
    assert!(text(x, "changed").contains(&old[..12]), "{seen:#}");
    assert!(
        x["added"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("+rm -rf /tmp/airlock-d"))),
        "{seen:#}"
    );
    assert_eq!(x["removed"], json!(["-echo old-step"]), "{seen:#}");
    // Agent HTML is text; escapes and bidi controls are marks, flagged with their line.
    assert_eq!(
        lines[3][1],
        "echo <img src=x onerror=\"window.__pwned=1\"> ⟨ESC⟩[31mred⟨ESC⟩[0m ⟨U+202E⟩gnp.exe",
        "{seen:#}"
    );
    assert!(
        x["marks"].as_array().is_some_and(|m| m.len() >= 3),
        "{seen:#}"
    );
    let flags = x["flags"].to_string();
    assert!(flags.contains("line 4: hidden"), "{seen:#}");
    assert!(flags.contains("terminal control characters"), "{seen:#}");
    assert_eq!(seen["s"]["images"], 0, "no element injected: {seen:#}");
    assert_eq!(seen["s"]["elements_in_code"], 0, "{seen:#}");
    assert_eq!(seen["s"]["pwned"], Value::Null, "{seen:#}");
    let card = text(&seen["c"], "text");
    assert!(
        !card.contains('\u{1b}') && !card.contains('\u{202E}'),
        "nothing raw on the card: {card:?}"
    );
    // A file the gateway could not read says so, loudly.
    let big = file(&seen, "big.sh");
    assert_eq!(
        text(big, "problem"),
        "⚠ big.sh: larger than 256 KiB",
        "{seen:#}"
    );
    assert_eq!(text(big, "sha"), "sha256 (none)", "{seen:#}");
    assert!(
        text(&seen["s"], "title").contains("these 2 files"),
        "{seen:#}"
    );
    fits_the_window(&seen["c"]);
}

/// The same through the real gate: the agent runs `bash x.sh`, the gateway reads x.sh from the
/// target, and the page shows its `rm -rf` line as line 1; the reviewer denies and the
/// directory survives.
#[tokio::test]
async fn a_script_the_gateway_read_is_on_the_page_and_a_denial_keeps_the_directory() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let dir = gw.path("keep-me");
    std::fs::create_dir_all(&dir).expect("dir");
    let script = gw.path("x.sh");
    std::fs::write(&script, format!("rm -rf {}\n", dir.display())).expect("script");
    let cmd = format!("bash {}", script.display());
    let child = gw.spawn_exec(&cmd);
    let seen = drive(
        &gw,
        &token,
        "web-scripts-real",
        json!([
            {"card": cmd, "as": "c"},
            {"scripts": "c", "as": "s"},
            {"click": "c"},
            {"key": "d"},
            {"open": "deny-dialog"},
            {"press": "#deny-reason", "key": "Enter"},
            {"gone": "c"},
        ]),
    )
    .await;
    let (code, _, err) = harness::finish(child).await;
    assert_ne!(code, 0, "{err}");
    assert!(dir.exists(), "the denied script never ran");
    let path = script.display().to_string();
    let x = file(&seen, &path);
    assert_eq!(text(x, "kind"), "shell", "{seen:#}");
    let body = std::fs::read(&script).expect("script");
    assert_eq!(text(x, "sha_full"), sha256_hex(&body), "{seen:#}");
    assert_eq!(x["risky"][0]["line"], "1", "{seen:#}");
    assert_eq!(
        x["lines"][0],
        json!(["1", format!("rm -rf {}", dir.display())]),
        "{seen:#}"
    );
}
