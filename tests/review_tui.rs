//! `airlock review` in a real terminal (tmux) against real `ssh` execs: the keys do what they
//! say, on the card the reviewer chose, and nothing hides what will run.
//!
//! - 140×40: a request appears, J selects it, A runs it; after the gateway restarts the client
//!   reconnects by itself; D asks for a reason and the agent reads it.
//! - 80×24: a high `ls DIR` + 300 spaces + `; rm -rf DIR/v` shows the run as a count and the
//!   `rm -rf` in full; a 3,000-character command cannot be approved until scrolled to its end;
//!   high needs the target's name typed; both approvers are named to the agent.
//! - 80×24: after approving one card nothing is selected, and a second A does not approve the
//!   HIGH request queued under it.
//! - 140×40: `bash x.sh` shows x.sh as the gateway read it — hash, numbered lines, the risky
//!   ones marked with their rule, escapes as marks — and a denial keeps its target directory.

mod harness;

use std::os::unix::fs::PermissionsExt;

use harness::{BIN, Gateway, Opts, Reviewer, Tmux, finish, free_port};
use serde_json::Value;

/// `airlock review` in tmux at `cols`×`rows`, its token in a 0600 file (never on the command line).
fn review(gw: &Gateway, token: &str, cols: u16, rows: u16) -> Tmux {
    assert!(
        Tmux::available(),
        "tmux missing: run scripts/test.sh, which installs it"
    );
    let file = gw.path("alice.token");
    std::fs::write(&file, format!("{token}\n")).expect("token file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cmd = format!(
        "{BIN} --config {} review --url {} --token-file {}",
        gw.config.display(),
        gw.ws_url,
        file.display()
    );
    Tmux::run(
        &format!("{cmd}; echo '[review exited]'; sleep 600"),
        cols,
        rows,
    )
}

/// Type `text` into the client as keystrokes (literally).
fn type_text(tui: &Tmux, text: &str) {
    tui.keys(&["-l", text]);
}

/// The detail pane's text at this moment: its inner columns, rows joined without breaks (the
/// client hard-wraps at the pane's width, so a wrapped command joins back whole).
fn detail(tui: &Tmux) -> String {
    let screen = tui.screen();
    let rows: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    // The right pane starts where the second box's top-left corner is on the second row.
    let Some(start) = rows
        .get(1)
        .and_then(|r| r.iter().enumerate().skip(1).find(|(_, c)| **c == '┌'))
        .map(|(i, _)| i + 1)
    else {
        return String::new();
    };
    rows.iter()
        .skip(2)
        .filter_map(|r| {
            let inner: String = r.iter().skip(start).collect();
            inner.strip_suffix('│').map(str::to_owned)
        })
        .collect()
}

/// Wait until the detail pane (joined) contains `needle`.
async fn wait_detail(tui: &Tmux, needle: &str) {
    for _ in 0..200 {
        if detail(tui).contains(needle) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {needle:?} in the detail pane:\n{}", tui.screen());
}

/// A canary directory with a file `v` a dangerous command would delete.
fn canary(gw: &Gateway, name: &str) -> std::path::PathBuf {
    let dir = gw.path(name);
    std::fs::create_dir_all(&dir).expect("canary dir");
    std::fs::write(dir.join("v"), "canary").expect("canary file");
    dir
}

/// The next request whose command is `cmd`, from a reviewer's socket.
async fn request_for(r: &mut Reviewer, cmd: &str) -> Value {
    for _ in 0..20 {
        let m = r.next_of("request").await;
        if m["command"] == cmd {
            return m;
        }
    }
    panic!("no request for {cmd:?}");
}

#[tokio::test]
async fn review_in_a_terminal_approves_denies_with_a_reason_and_reconnects() {
    let mut gw = Gateway::start(Opts {
        reviewer_port: Some(free_port()),
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let tui = review(&gw, &token, 140, 40);
    tui.wait_for("Airlock review — alice").await;
    tui.wait_for("Nothing waiting").await;

    let file = gw.path("tui-approved");
    let approve_me = format!("touch {}", file.display());
    let child = gw.spawn_exec(&approve_me);
    tui.wait_for(&approve_me).await;
    tui.wait_for("nothing selected").await;
    tui.keys(&["j"]);
    tui.wait_for("denies in").await;
    tui.wait_for("touch: creates or modifies files").await;
    // The agent's screen, from its recording so far: it is being told it waits, and that one
    // reviewer is connected (this client).
    tui.wait_for("airlock: waiting for approval (medium").await;
    tui.wait_for("1 connected").await;
    tui.keys(&["a"]);
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(file.exists(), "the command approved with A ran");
    assert!(err.contains("airlock: approved by alice"), "{err}");
    tui.wait_for("approved by alice").await;

    // The gateway goes away and comes back on the same port: the client reconnects alone.
    gw.crash();
    tui.wait_for("reconnecting in").await;
    gw.spawn();
    tui.wait_for("reconnected").await;

    let file = gw.path("tui-denied");
    let deny_me = format!("touch {}", file.display());
    let child = gw.spawn_exec(&deny_me);
    tui.wait_for(&deny_me).await;
    tui.keys(&["j"]);
    tui.keys(&["d"]);
    tui.wait_for("Reason the agent will read").await;
    type_text(&tui, "not during the freeze, OPS-12");
    tui.keys(&["Enter"]);
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 77);
    assert!(
        err.contains("airlock: denied by alice: not during the freeze, OPS-12"),
        "{err}"
    );
    assert!(!file.exists());
    tui.keys(&["q"]);
    tui.wait_for("[review exited]").await;
}

#[tokio::test]
async fn at_80_by_24_nothing_hides_the_tail_and_high_needs_the_target_typed() {
    let gw = Gateway::start(Opts {
        timeout: "2m",
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let mut bob = gw.reviewer("bob").await;
    let tui = review(&gw, &token, 80, 24);
    tui.wait_for("Airlock review — alice").await;

    // 300 spaces between a harmless `ls` and the `rm -rf`.
    let dir = canary(&gw, "spaces");
    let spaced = format!(
        "ls {}{}; rm -rf {}/v",
        dir.display(),
        " ".repeat(300),
        dir.display()
    );
    let child = gw.spawn_exec(&spaced);
    let req = request_for(&mut bob, &spaced).await;
    assert_eq!(req["tier"], "high", "{req}");
    // Bob's socket may hear of it before the client does: J on an empty queue selects nothing.
    tui.wait_for("new HIGH request from bot").await;
    tui.keys(&["j"]);
    wait_detail(&tui, &format!("⟨300 spaces⟩; rm -rf {}/v", dir.display())).await;
    wait_detail(&tui, "a run of 300 spaces").await;
    tui.keys(&["End"]);
    // High: A asks for the target's name; a wrong one sends nothing.
    tui.keys(&["a"]);
    tui.wait_for("Type the target name (local)").await;
    type_text(&tui, "prod");
    tui.keys(&["Enter"]);
    tui.wait_for("is not the target's name; nothing was sent")
        .await;
    for _ in 0.."prod".len() {
        tui.keys(&["BSpace"]);
    }
    type_text(&tui, "local");
    tui.keys(&["Enter"]);
    tui.wait_for("counted, still waiting (any 1/2 (alice))")
        .await;
    assert!(dir.join("v").exists(), "one approval is not two");
    let ack = bob.decide(req["id"].as_str().expect("id"), "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("airlock: approved by alice and bob"),
        "both approvers named: {err}"
    );
    assert!(!dir.join("v").exists(), "the approved rm ran");

    // 3,000 characters: the tail and every reason are reachable, and approval waits for them.
    let dir = canary(&gw, "long");
    let long = format!("echo {}; rm -rf {}/v", "a".repeat(2950), dir.display());
    let child = gw.spawn_exec(&long);
    let req = request_for(&mut bob, &long).await;
    tui.wait_for("echo aa").await;
    tui.keys(&["j"]);
    tui.wait_for("more lines — Space/PgDn").await;
    tui.keys(&["a"]);
    tui.wait_for("scroll to the end first").await;
    for _ in 0..80 {
        tui.keys(&["Space"]);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if detail(&tui).contains("end of request") {
            break;
        }
    }
    let pane = detail(&tui);
    assert!(
        pane.contains("end of request"),
        "scrolled to the end:\n{}",
        tui.screen()
    );
    assert!(
        pane.contains(&format!("rm -rf {}/v", dir.display())) && pane.contains("[high]"),
        "the tail and the reasons are on screen before approval:\n{}",
        tui.screen()
    );
    tui.keys(&["a"]);
    tui.wait_for("Type the target name (local)").await;
    type_text(&tui, "local");
    tui.keys(&["Enter"]);
    tui.wait_for("counted, still waiting (any 1/2 (alice))")
        .await;
    bob.decide(req["id"].as_str().expect("id"), "approve").await;
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(!dir.join("v").exists());
}

#[tokio::test]
async fn after_a_decision_the_next_high_card_is_not_under_the_key() {
    let gw = Gateway::start(Opts {
        timeout: "2m",
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let mut watcher = gw.reviewer("bob").await;
    let tui = review(&gw, &token, 80, 24);
    tui.wait_for("Airlock review — alice").await;

    let dir = canary(&gw, "high");
    let high = format!("rm -rf {}/v", dir.display());
    let high_child = gw.spawn_exec(&high);
    request_for(&mut watcher, &high).await;
    let file = gw.path("medium-ran");
    let medium = format!("touch {}", file.display());
    let child = gw.spawn_exec(&medium);
    request_for(&mut watcher, &medium).await;
    tui.wait_for("2 pending").await;
    // Newest first: J selects the medium request; A approves it.
    tui.keys(&["j"]);
    wait_detail(&tui, "touch: creates or modifies files").await;
    tui.keys(&["a"]);
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(file.exists());
    tui.wait_for("nothing selected").await;
    // A second A (a double press) lands on nothing.
    tui.keys(&["a"]);
    tui.wait_for("select a request first").await;
    assert!(dir.join("v").exists(), "the high request was not approved");
    assert!(
        !tui.screen().contains("Type the target name"),
        "no confirmation opened"
    );
    // Deny it with a reason.
    tui.keys(&["j", "d"]);
    tui.wait_for("Reason the agent will read").await;
    type_text(&tui, "wrong box");
    tui.keys(&["Enter"]);
    let (code, _, err) = finish(high_child).await;
    assert_eq!(code, 77);
    assert!(err.contains("airlock: denied by alice: wrong box"), "{err}");
    assert!(dir.join("v").exists());
}

/// `prod-db` needs a DBA and an SRE on `db-*` targets; dave is in `ops`, which no rule requires.
const GROUPS: &str = r#"[[target]]
name = "db-main"
kind = "local"
[[reviewer_group]]
name = "sre"
members = ["bob"]
[[reviewer_group]]
name = "dba"
members = ["carol"]
[[reviewer_group]]
name = "ops"
members = ["dave"]
[[approval_rule]]
name = "prod-db"
match = { targets = ["db-*"] }
require = [{ group = "dba", count = 1 }, { group = "sre", count = 1 }]
"#;

/// Reviewer groups (issue 20): the header names the reviewer's groups; a request needing
/// groups they are not in is marked and A sends nothing; the detail follows others' votes.
#[tokio::test]
async fn a_request_needing_other_groups_is_marked_and_follows_the_votes() {
    let gw = Gateway::start(Opts {
        timeout: "2m",
        extra: GROUPS.into(),
        more_targets: vec!["db-main".into()],
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("dave");
    let mut carol = gw.reviewer("carol").await;
    let mut bob = gw.reviewer("bob").await;
    let tui = review(&gw, &token, 140, 40);
    tui.wait_for("Airlock review — dave (ops) — 0 pending")
        .await;
    let file = gw.path("needs-dba-and-sre");
    let cmd = format!("touch {}", file.display());
    let child = gw.spawn_on("db-main", &cmd);
    let id = request_for(&mut carol, &cmd).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    tui.wait_for("⊘ touch").await;
    tui.keys(&["j"]);
    wait_detail(&tui, "approvals dba 0/1 · sre 0/1").await;
    wait_detail(&tui, "needs 1 from dba and 1 from sre · rule prod-db").await;
    wait_detail(
        &tui,
        "⊘ your vote does not count here: it needs 1 from dba and 1 from sre",
    )
    .await;
    tui.keys(&["a"]);
    tui.wait_for("your vote does not count here, nothing was sent")
        .await;
    let ack = carol.decide(&id, "approve").await;
    assert_eq!(ack["result"], "counted", "{ack}");
    wait_detail(&tui, "approvals dba 1/1 (carol) · sre 0/1").await;
    assert!(
        !file.exists(),
        "dave's A cast nothing; carol alone is not enough"
    );
    let ack = bob.decide(&id, "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(file.exists());
    tui.keys(&["q"]);
    tui.wait_for("[review exited]").await;
}

/// Issue 22: `bash x.sh` shows x.sh in the detail pane as the gateway read it from the target —
/// path, hash, every line numbered, its `rm -rf` line marked as high with the rule under it,
/// an escape sequence in it as a mark — and a denial leaves the directory in place.
#[tokio::test]
async fn the_detail_shows_the_script_a_command_runs_with_its_risky_line() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let tui = review(&gw, &token, 140, 40);
    tui.wait_for("Airlock review — alice").await;
    let dir = canary(&gw, "script-canary");
    let script = gw.path("x.sh");
    let body = format!("echo start \x1b[2K\nrm -rf {}\n", dir.display());
    std::fs::write(&script, &body).expect("script");
    let cmd = format!("bash {}", script.display());
    let child = gw.spawn_exec(&cmd);
    tui.wait_for(&cmd).await;
    tui.keys(&["j"]);
    wait_detail(&tui, &format!("script {} — shell", script.display())).await;
    let sha = airlock_approvals::scripts::sha256_hex(body.as_bytes());
    wait_detail(&tui, &format!("sha256 {sha}")).await;
    wait_detail(&tui, "2 lines, 2 risky (▶):").await;
    // The escape is a mark (and itself makes the line risky); the `rm -rf` line is high.
    wait_detail(&tui, "▶1 │ echo start ⟨ESC⟩[2K").await;
    wait_detail(&tui, &format!("▶2 │ rm -rf {}", dir.display())).await;
    wait_detail(&tui, "↳ [high] fs.rm-recursive: ").await;
    assert!(!tui.screen().contains('\x1b'), "no raw escape on screen");
    tui.keys(&["d"]);
    tui.wait_for("Reason the agent will read").await;
    tui.keys(&["Enter"]);
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 77, "{err}");
    assert!(dir.join("v").exists(), "the denied script never ran");
}
