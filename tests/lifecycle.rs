//! One session lifecycle, end to end with the real `ssh`: input that ends before its lines
//! have run (`ssh -tt` fed by a pipe), a script on stdin without a terminal, and SIGTERM at
//! every point of a session's life (just after a command, while one runs, while one waits).

mod harness;

use std::process::Stdio;
use std::time::Duration;

use harness::*;
use tokio::io::AsyncWriteExt;

/// Start the agent's `ssh` with `args`, write `input` to its stdin and close it.
async fn ssh_with_input(gw: &Gateway, args: &[&str], input: &str) -> tokio::process::Child {
    let mut c = gw.ssh_cmd(&gw.agent_key, "local");
    c.args(args)
        .arg("127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write");
    drop(stdin);
    child
}

fn export(gw: &Gateway) -> String {
    String::from_utf8_lossy(&gw.cli(&["ledger", "export"]).stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn piped_terminal_input_runs_every_line_after_eof() {
    let gw = Gateway::start(Opts::default()).await;
    let mut alice = gw.reviewer("alice").await;
    let work = gw.path("work");
    std::fs::create_dir_all(&work).expect("work");

    // Approved: every line runs in order, the medium one after its reviewer.
    let input = format!("cd {}\necho a-ran\ntouch x\nexit\n", work.display());
    let child = ssh_with_input(&gw, &["-tt"], &input).await;
    let req = alice.next_of("request").await;
    assert_eq!(req["command"], "touch x");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!work.join("x").exists(), "nothing runs before approval");
    alice
        .decide(req["id"].as_str().expect("id"), "approve")
        .await;
    let (code, out, _) = finish(child).await;
    assert_eq!(code, 0, "{out}");
    assert!(work.join("x").exists(), "the approved line ran: {out}");
    let (ran, asked) = (out.find("a-ran\r\n"), out.find("waiting for approval"));
    assert!(ran.is_some() && ran < asked, "lines run in order: {out}");

    // Denied: the file is absent, and the lines after it still run.
    let input = format!("cd {}\ntouch y\necho after-deny\n", work.display());
    let child = ssh_with_input(&gw, &["-tt"], &input).await;
    let req = alice.next_of("request").await;
    assert_eq!(req["command"], "touch y");
    alice.decide(req["id"].as_str().expect("id"), "deny").await;
    let (code, out, _) = finish(child).await;
    assert!(out.contains("airlock: denied by alice"), "{out}");
    assert!(out.contains("after-deny\r\n"), "{out}");
    assert_eq!(code, 0, "the last line's status: {out}");
    assert!(!work.join("y").exists(), "a denied line never runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_line_typed_while_a_command_runs_is_judged_as_the_next_line() {
    let gw = Gateway::start(Opts::default()).await;
    let mut c = gw.ssh_cmd(&gw.agent_key, "local");
    c.arg("-tt")
        .arg("127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"sleep 2\n").await.expect("write");
    eventually("sleep started", || {
        export(&gw).contains("\"kind\":\"exec.start\"")
    })
    .await;
    // Typed while `sleep` runs: it lands in the terminal, which `sleep` never reads.
    stdin
        .write_all(b"echo $((6*7))-typed-ahead\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stdin);
    let (code, out, _) = finish(child).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("42-typed-ahead"),
        "the typed line ran after sleep: {out}"
    );
    assert!(
        export(&gw).contains("\"command\":\"echo $((6*7))-typed-ahead\""),
        "and it was judged like any line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_script_on_stdin_runs_unit_by_unit_like_bash_s() {
    let gw = Gateway::start(Opts::default()).await;
    let mut alice = gw.reviewer("alice").await;
    let work = gw.path("work");
    std::fs::create_dir_all(&work).expect("work");
    let block = "if [ -d . ]; then\n  touch in-if\n  echo if-ran\nfi";
    let script = format!(
        "cd {}\ncat <<EOF\nhello from a heredoc\nEOF\n# a comment\n{block}\necho last-line\nexit 3\necho never\n",
        work.display()
    );
    let child = ssh_with_input(&gw, &["-T"], &script).await;
    // The whole `if` block is one request: the reviewer sees all of it.
    let req = alice.next_of("request").await;
    assert_eq!(req["command"], block);
    assert!(
        !work.join("in-if").exists(),
        "nothing of the block runs before approval"
    );
    alice
        .decide(req["id"].as_str().expect("id"), "approve")
        .await;
    let (code, out, err) = finish(child).await;
    assert_eq!(
        out, "hello from a heredoc\nif-ran\nlast-line\n",
        "stderr: {err}"
    );
    assert_eq!(code, 3, "exit status of `exit 3`: {err}");
    assert!(
        err.contains("airlock: waiting for approval (medium"),
        "{err}"
    );
    assert!(work.join("in-if").exists());

    // A denied unit: a line on stderr, the script goes on.
    let child = ssh_with_input(
        &gw,
        &["-T"],
        &format!("cd {}\ntouch nope\necho went-on\n", work.display()),
    )
    .await;
    let req = alice.next_of("request").await;
    alice.decide(req["id"].as_str().expect("id"), "deny").await;
    let (code, out, err) = finish(child).await;
    assert!(err.contains("airlock: denied by alice"), "{err}");
    assert_eq!(out, "went-on\n");
    assert_eq!(code, 0);
    assert!(!work.join("nope").exists());
    let sessions = String::from_utf8_lossy(&gw.cli(&["sessions", "list"]).stdout).into_owned();
    assert!(sessions.contains("\tscript\tended (0)"), "{sessions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_right_after_a_command_keeps_its_exit_status_and_recording() {
    let mut gw = Gateway::start(Opts::default()).await;
    let (code, out, _) = gw.exec("echo done-before-stop").await;
    assert_eq!((code, out.as_str()), (0, "done-before-stop\n"));
    let pubkey = String::from_utf8(gw.cli(&["ledger", "pubkey"]).stdout).expect("utf8");
    assert_eq!(gw.terminate(), Some(0), "log:\n{}", gw.log());
    let sessions = String::from_utf8_lossy(&gw.cli(&["sessions", "list"]).stdout).into_owned();
    assert!(
        sessions.contains("\tran (0)\techo done-before-stop"),
        "{sessions}"
    );
    let file = gw.path("ledger.jsonl");
    std::fs::write(&file, export(&gw)).expect("write export");
    let rec = gw.path("data/recordings");
    let v = std::process::Command::new(BIN)
        .args(["ledger", "verify"])
        .arg(&file)
        .args(["--pubkey", pubkey.trim(), "--recordings"])
        .arg(&rec)
        .output()
        .expect("verify");
    let said =
        String::from_utf8_lossy(&v.stdout).into_owned() + &String::from_utf8_lossy(&v.stderr);
    assert!(
        v.status.success(),
        "the recording is closed and verifies: {said}"
    );
    assert!(export(&gw).contains("\"kind\":\"gateway.stop\""));
}

fn graceful(grace: &str) -> Opts {
    Opts {
        ssh_extra: format!("shutdown_grace = \"{grace}\""),
        ..Opts::default()
    }
}

/// Approve `sleep 2; touch F`, wait until it started, then SIGTERM the gateway.
async fn stop_while_running(gw: &mut Gateway, marker: &std::path::Path) -> (i32, String) {
    let mut alice = gw.reviewer("alice").await;
    let child = gw.spawn_exec(&format!("sleep 2; touch {}", marker.display()));
    let req = alice.next_of("request").await;
    alice
        .decide(req["id"].as_str().expect("id"), "approve")
        .await;
    eventually("the command started", || {
        export(gw).contains("\"kind\":\"exec.start\"")
    })
    .await;
    assert_eq!(gw.terminate(), Some(0), "log:\n{}", gw.log());
    let (code, _, err) = finish(child).await;
    (code, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_a_running_command_finish_within_the_grace() {
    let mut gw = Gateway::start(graceful("5s")).await;
    let marker = gw.path("finished-in-grace");
    let (code, err) = stop_while_running(&mut gw, &marker).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        marker.exists(),
        "the command finished during the grace period"
    );
    let sessions = String::from_utf8_lossy(&gw.cli(&["sessions", "list"]).stdout).into_owned();
    assert!(sessions.contains("\tran (0)\tsleep 2"), "{sessions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_no_grace_kills_the_command_and_says_so() {
    let mut gw = Gateway::start(graceful("0s")).await;
    let marker = gw.path("never-touched");
    let (code, err) = stop_while_running(&mut gw, &marker).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("airlock: the gateway shut down"), "{err}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!marker.exists(), "the killed command never finished");
    let ledger = export(&gw);
    assert!(
        ledger.contains("\"killed\":\"the gateway shut down (no grace period)\""),
        "the kill is recorded: {ledger}"
    );
    let sessions = String::from_utf8_lossy(&gw.cli(&["sessions", "list"]).stdout).into_owned();
    assert!(sessions.contains("\tshutdown\tsleep 2"), "{sessions}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_withdraws_a_waiting_request_for_good() {
    let mut gw = Gateway::start(Opts::default()).await;
    let mut alice = gw.reviewer("alice").await;
    let marker = gw.path("never-approved");
    let child = gw.spawn_exec(&format!("touch {}", marker.display()));
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().expect("id").to_owned();
    assert_eq!(gw.terminate(), Some(0), "log:\n{}", gw.log());
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 77);
    assert_eq!(
        err.trim_end().lines().last(),
        Some(
            format!("airlock: denied: the gateway is shutting down (request {id} withdrawn)")
                .as_str()
        ),
        "{err}"
    );
    // Back up: the request stays withdrawn, and a vote cannot revive it.
    gw.spawn();
    let mut bob = gw.reviewer("bob").await;
    let late = bob.decide(&id, "approve").await;
    assert_eq!(late["code"], "already_resolved", "{late}");
    assert!(
        late["message"].as_str().unwrap_or("").contains("withdrawn"),
        "{late}"
    );
    assert!(!marker.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_leaves_after_eof_still_ends_its_session() {
    let gw = Gateway::start(Opts::default()).await;
    // `cat` waits on the terminal; the client's input is over, then the client goes.
    let mut child = ssh_with_input(&gw, &["-tt"], "cat\n").await;
    eventually("cat started", || {
        export(&gw).contains("\"kind\":\"exec.start\"")
    })
    .await;
    child.kill().await.expect("kill ssh");
    eventually("the session closed as disconnected", || {
        String::from_utf8_lossy(&gw.cli(&["sessions", "list"]).stdout)
            .contains("\tshell\tdisconnected")
    })
    .await;
}
