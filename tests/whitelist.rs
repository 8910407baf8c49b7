//! The whitelist end to end: globs over argv, scope, expiry, export/import through the real
//! CLI, and approve-and-remember from a WebSocket reviewer, all with real `ssh` execs.

mod harness;

use std::time::Duration;

use harness::{Gateway, Opts};
use serde_json::json;

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn quick() -> Opts {
    // Unwhitelisted commands are denied by timeout quickly (nobody reviews here).
    Opts {
        timeout: "2s",
        ..Opts::default()
    }
}

#[tokio::test]
async fn globs_scope_and_expiry_decide_what_runs_unasked() {
    let gw = Gateway::start(quick()).await;
    let d = gw.path("wl");
    std::fs::create_dir_all(&d).unwrap();
    let d = d.display().to_string();
    let glob = format!("touch {d}/ok-*");
    ok(&gw.cli(&["whitelist", "add", "--agent", "bot", "--glob", "--", &glob]));

    // Matching argv runs at once, however it is quoted or spaced.
    let (code, _, e) = gw.exec(&format!("touch   '{d}/ok-1'")).await;
    assert_eq!(code, 0, "{e}");
    assert!(gw.path("wl/ok-1").exists());
    // Not matching, or more than one plain command: asks, nobody answers, denied.
    for cmd in [
        format!("touch {d}/no-1"),
        format!("touch {d}/ok-2 {d}/no-2"),
        format!("touch {d}/ok-3 && touch {d}/no-3"),
        format!("touch {d}/ok-4 > {d}/no-4"),
        format!("X=1 touch {d}/ok-5"),
    ] {
        let (code, _, e) = gw.exec(&cmd).await;
        assert_ne!(code, 0, "{cmd} ran: {e}");
        assert!(e.contains("airlock: denied"), "{cmd}: {e}");
    }
    for f in ["no-1", "ok-2", "no-2", "ok-3", "no-3", "no-4", "ok-5"] {
        assert!(!gw.path(&format!("wl/{f}")).exists(), "{f} was created");
    }

    // Bad entries are refused with a reason: high risk, a glob choosing the program, a glob
    // over a list, unknown scope names.
    assert!(err(&gw.cli(&["whitelist", "add", "--", "rm", "-rf", "/srv"])).contains("high"));
    assert!(err(&gw.cli(&["whitelist", "add", "--glob", "--", "* /srv"])).contains("literal"));
    assert!(
        err(&gw.cli(&["whitelist", "add", "--glob", "--", "touch a; touch *"]))
            .contains("one program")
    );
    assert!(
        err(&gw.cli(&["whitelist", "add", "--target", "nope", "--", "touch a"]))
            .contains("unknown target")
    );
    assert!(
        err(&gw.cli(&["whitelist", "add", "--agent", "nope", "--", "touch a"]))
            .contains("unknown agent")
    );

    // An entry scoped to another target does not apply here.
    let elsewhere = format!("touch {d}/elsewhere");
    ok(&gw.cli(&[
        "whitelist",
        "add",
        "--agent",
        "bot",
        "--target",
        "prod",
        "--",
        &elsewhere,
    ]));
    let (code, _, e) = gw.exec(&elsewhere).await;
    assert_ne!(code, 0, "an entry for prod applied on local: {e}");

    // An entry that expires stops matching at once.
    let short = format!("touch {d}/short");
    ok(&gw.cli(&["whitelist", "add", "--ttl", "2s", "--", &short]));
    let (code, _, e) = gw.exec(&short).await;
    assert_eq!(code, 0, "{e}");
    std::fs::remove_file(gw.path("wl/short")).unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (code, _, e) = gw.exec(&short).await;
    assert_ne!(code, 0, "an expired entry still matched: {e}");
    assert!(!gw.path("wl/short").exists());
    let listed = ok(&gw.cli(&["whitelist", "list"]));
    assert!(listed.contains("expired"), "{listed}");
}

#[tokio::test]
async fn export_is_stable_and_import_checks_everything_first() {
    let a = Gateway::start(quick()).await;
    let cmd = format!("touch {}", a.path("exported").display());
    ok(&a.cli(&[
        "whitelist",
        "add",
        "--agent",
        "bot",
        "--target",
        "local",
        "--ttl",
        "1h",
        "--",
        &cmd,
    ]));
    ok(&a.cli(&[
        "whitelist",
        "add",
        "--any-agent",
        "--glob",
        "--",
        "systemctl status *",
    ]));
    ok(&a.cli(&[
        "whitelist",
        "add",
        "--ttl",
        "1s",
        "--",
        "touch /tmp/gone-soon",
    ]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let file = a.path("whitelist.toml");
    let f = file.display().to_string();
    ok(&a.cli(&["whitelist", "export", "--out", &f]));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        ok(&a.cli(&["whitelist", "export"])),
        text,
        "export is stable"
    );
    assert!(
        !text.contains("gone-soon"),
        "expired entries are not exported:\n{text}"
    );
    assert_eq!(text.matches("[[entry]]").count(), 2, "{text}");
    assert!(text.contains("glob = true"), "{text}");
    assert!(
        text.find("systemctl status *").unwrap() < text.find(&cmd).unwrap(),
        "entries are sorted by command:\n{text}"
    );

    let b = Gateway::start(quick()).await;
    let imported = b.cli(&["whitelist", "import", &f]);
    assert!(String::from_utf8_lossy(&imported.stderr).contains("imported 2 entries"));
    ok(&imported);
    let again = b.cli(&["whitelist", "import", &f]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("imported 0 entries (2 already present)")
    );
    let (code, _, e) = b.exec(&cmd).await;
    assert_eq!(code, 0, "imported entry applies: {e}");

    // One bad entry (or two) and nothing is imported; every problem is named.
    let bad = b.path("bad.toml");
    std::fs::write(
        &bad,
        "[[entry]]\ncommand = \"touch /tmp/fine\"\n\n[[entry]]\ncommand = \"rm -rf /srv\"\n\n\
         [[entry]]\ncommand = \"touch /tmp/x\"\ntarget = \"nope\"\n",
    )
    .unwrap();
    let e = err(&b.cli(&["whitelist", "import", &bad.display().to_string()]));
    assert!(
        e.contains("2 bad entries") && e.contains("entry 2") && e.contains("entry 3"),
        "{e}"
    );
    assert!(!ok(&b.cli(&["whitelist", "list"])).contains("/tmp/fine"));
    std::fs::write(&bad, "[[entry]]\ncommand = \"ls\"\ncolour = \"red\"\n").unwrap();
    assert!(err(&b.cli(&["whitelist", "import", &bad.display().to_string()])).contains("colour"));
}

#[tokio::test]
async fn a_reviewer_teaches_the_whitelist_with_remember() {
    let gw = Gateway::start(Opts::default()).await;
    let mut alice = gw.reviewer("alice").await;
    let cmd = format!("touch {}", gw.path("remembered").display());

    // A TTL the rules do not allow is refused before any vote is cast.
    let child = gw.spawn_exec(&cmd);
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().unwrap().to_owned();
    alice
        .send(json!({"type": "decide", "id": id, "decision": "approve", "remember": {"ttl": "forever"}}))
        .await;
    let reply = alice.next_of("error").await;
    assert_eq!(reply["code"], "bad_ttl", "{reply}");
    // …so the request is still open, and a remember with defaults approves it.
    alice
        .send(json!({"type": "decide", "id": id, "decision": "approve", "remember": {}}))
        .await;
    let ack = alice.next_of("ack").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let entry = ack["whitelisted"].as_str().expect("an entry id").to_owned();
    let (code, _, e) = harness::finish(child).await;
    assert_eq!(code, 0, "{e}");

    // The same command now runs without asking anyone.
    std::fs::remove_file(gw.path("remembered")).unwrap();
    let (code, _, e) = gw.exec(&cmd).await;
    assert_eq!(code, 0, "{e}");
    assert!(gw.path("remembered").exists());
    let listed = ok(&gw.cli(&["whitelist", "list"]));
    let line = listed
        .lines()
        .find(|l| l.starts_with(&entry))
        .expect("listed");
    assert!(
        line.contains("\tbot\tlocal\t") && line.contains("\talice\t"),
        "{line}"
    );
    assert!(
        !line.contains("never"),
        "the default TTL (7d) applies: {line}"
    );

    // High-risk requests can never be remembered; the refusal casts no vote.
    let high = format!("rm -rf {}", gw.path("keep").display());
    let child = gw.spawn_exec(&high);
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().unwrap().to_owned();
    alice
        .send(json!({"type": "decide", "id": id, "decision": "approve", "remember": {"any_agent": true}}))
        .await;
    let reply = alice.next_of("error").await;
    assert_eq!(reply["code"], "not_rememberable", "{reply}");
    let ack = alice.decide(&id, "deny").await;
    assert_eq!(ack["result"], "denied", "alice had not voted yet: {ack}");
    let (code, _, _) = harness::finish(child).await;
    assert_ne!(code, 0);
}
