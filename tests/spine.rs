//! The gated exec spine, end to end: the real `airlock` binary, the real OpenSSH client, and
//! reviewers scripted over the real WebSocket protocol. Each test reads as a story and checks
//! effects (a file created or not), not logs.

mod harness;

use std::time::Duration;

use airlock_recorder::{EventKind, Recording};
use harness::{Gateway, Opts, eventually, finish, keygen, pg_url};
use tokio::net::TcpStream;

#[tokio::test]
async fn low_commands_run_at_once_with_streams_and_exit_status() {
    let gw = Gateway::start(Opts::default()).await;
    let (code, out, err) = gw.exec("echo out; echo err >&2; exit 3").await;
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n", "stdout and stderr are kept apart");

    // stdin is forwarded and EOF closes it.
    let mut c = gw.ssh_cmd(&gw.agent_key, "local");
    c.arg("127.0.0.1")
        .arg("cat")
        .stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello through airlock\n").await.unwrap();
    }
    let (code, out, _) = finish(child).await;
    assert_eq!((code, out.as_str()), (0, "hello through airlock\n"));

    // Killed by a signal: the client learns it (OpenSSH exits 255 and names the signal).
    // `kill` is medium, so it is whitelisted first.
    let suicide = "kill -TERM $$";
    let out = gw.cli(&["whitelist", "add", "--agent", "bot", "--", suicide]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, _, err) = gw.exec(suicide).await;
    assert_eq!(code, 255, "{err}");
    let last_marker = || {
        gw.recordings().into_iter().find_map(|p| {
            let rec =
                Recording::read(std::io::BufReader::new(std::fs::File::open(p).ok()?)).ok()?;
            (rec.header.command.as_deref() == Some(suicide))
                .then(|| rec.markers().last().map(|m| m.data.clone()))?
        })
    };
    eventually("signal recorded", || {
        last_marker().as_deref() == Some("signal TERM")
    })
    .await;
}

#[tokio::test]
async fn pty_exec_runs_on_a_terminal() {
    let gw = Gateway::start(Opts::default()).await;
    let mut c = gw.ssh_cmd(&gw.agent_key, "local");
    c.arg("-tt").arg("127.0.0.1").arg("tty; exit 4");
    let (code, out, _) = finish(c.spawn().unwrap()).await;
    assert_eq!(code, 4);
    assert!(out.contains("/dev/pts/"), "{out:?}");
}

#[tokio::test]
async fn every_exec_is_recorded_with_its_exit_marker() {
    let gw = Gateway::start(Opts::default()).await;
    let (code, _, _) = gw.exec("echo recorded-output; exit 5").await;
    assert_eq!(code, 5);
    let recs = gw.recordings();
    assert_eq!(recs.len(), 1, "{recs:?}");
    // The client hears the exit status first; the gateway then closes (fsyncs) the file.
    let read =
        || Recording::read(std::io::BufReader::new(std::fs::File::open(&recs[0]).ok()?)).ok();
    eventually("recording closed", || {
        read().is_some_and(|r| r.markers().any(|m| m.data == "exit 5"))
    })
    .await;
    let rec = read().unwrap();
    assert_eq!(
        rec.header.command.as_deref(),
        Some("echo recorded-output; exit 5")
    );
    assert_eq!(rec.output(), "recorded-output\n");
    let markers: Vec<&str> = rec.markers().map(|m| m.data.as_str()).collect();
    assert_eq!(
        markers.first().copied(),
        Some("command: echo recorded-output; exit 5")
    );
    assert_eq!(markers.last().copied(), Some("exit 5"), "{markers:?}");
    assert!(rec.events.iter().all(|e| e.kind != EventKind::Input));
}

async fn medium_flow(gw: &Gateway) {
    let mut alice = gw.reviewer("alice").await;
    let marker = gw.path("approved-file");
    let child = gw.spawn_exec(&format!("touch {}", marker.display()));
    let req = alice.next_of("request").await;
    assert_eq!(req["tier"], "medium");
    assert_eq!(req["approvals_needed"], 1);
    assert_eq!(req["agent"], "bot");
    assert!(!marker.exists(), "nothing runs before approval");
    let ack = alice.decide(req["id"].as_str().unwrap(), "approve").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["result"], "approved");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("airlock: waiting for approval (medium, score"),
        "{err}"
    );
    assert!(
        err.contains("needs 1 reviewer, 1 connected, times out in 1m"),
        "{err}"
    );
    assert!(marker.exists(), "approved command ran");
}

#[tokio::test]
async fn medium_command_runs_after_approval() {
    let gw = Gateway::start(Opts::default()).await;
    medium_flow(&gw).await;
}

#[tokio::test]
async fn medium_command_runs_after_approval_on_postgres() {
    if pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set");
        return;
    }
    let gw = Gateway::start(Opts {
        postgres: true,
        ..Opts::default()
    })
    .await;
    medium_flow(&gw).await;
}

#[tokio::test]
async fn denied_command_never_runs() {
    let gw = Gateway::start(Opts::default()).await;
    let mut alice = gw.reviewer("alice").await;
    let marker = gw.path("denied-file");
    let child = gw.spawn_exec(&format!("touch {}", marker.display()));
    let req = alice.next_of("request").await;
    let ack = alice.decide(req["id"].as_str().unwrap(), "deny").await;
    assert_eq!(ack["result"], "denied", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 77);
    assert!(
        err.contains("airlock: denied by alice: deny from test"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists(), "denied command must not run");
}

#[tokio::test]
async fn no_answer_in_time_is_a_deny_and_late_votes_fail() {
    let gw = Gateway::start(Opts {
        timeout: "1s",
        ..Opts::default()
    })
    .await;
    let mut alice = gw.reviewer("alice").await;
    let marker = gw.path("late-file");
    let child = gw.spawn_exec(&format!("touch {}", marker.display()));
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().unwrap().to_owned();
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 77);
    assert!(err.contains("no reviewer decided within 1s"), "{err}");
    let resolved = alice.next_of("resolved").await;
    assert_eq!(resolved["outcome"], "expired");
    let late = alice.decide(&id, "approve").await;
    assert_eq!(late["code"], "already_resolved", "{late}");
    assert!(!marker.exists());
}

#[tokio::test]
async fn high_needs_two_distinct_reviewers() {
    let gw = Gateway::start(Opts::default()).await;
    let victim = gw.path("victim");
    std::fs::create_dir_all(victim.join("sub")).unwrap();
    let mut alice = gw.reviewer("alice").await;
    let mut bob = gw.reviewer("bob").await;
    let child = gw.spawn_exec(&format!("rm -rf {}", victim.display()));
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().unwrap().to_owned();
    assert_eq!(req["tier"], "high");
    assert_eq!(req["approvals_needed"], 2);

    let first = alice.decide(&id, "approve").await;
    assert_eq!(
        (first["type"].as_str(), first["result"].as_str()),
        (Some("ack"), Some("counted")),
        "{first}"
    );
    let again = alice.decide(&id, "approve").await;
    assert_eq!(
        again["code"], "already_voted",
        "the same reviewer twice is not two: {again}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(victim.exists(), "one approval is not enough");

    let second = bob.decide(&id, "approve").await;
    assert_eq!(second["result"], "approved", "{second}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("needs 2 reviewers"), "{err}");
    assert!(!victim.exists(), "approved high command ran");
}

#[tokio::test]
async fn whitelisted_command_runs_without_a_request() {
    let gw = Gateway::start(Opts::default()).await;
    let marker = gw.path("wl-file");
    let cmd = format!("touch {}", marker.display());
    let out = gw.cli(&[
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
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut alice = gw.reviewer("alice").await;
    let (code, _, err) = gw.exec(&cmd).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("waiting for approval"), "{err}");
    assert!(marker.exists());
    // No request was raised: a fresh reviewer sees an empty queue and no request arrived.
    let quiet = tokio::time::timeout(Duration::from_millis(500), alice.next()).await;
    assert!(quiet.is_err(), "unexpected message: {quiet:?}");

    // A high command can never be whitelisted.
    let out = gw.cli(&[
        "whitelist",
        "add",
        "--any-agent",
        "--any-target",
        "--",
        "rm",
        "-rf",
        "/srv",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("high"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn restart_with_a_pending_request_expires_it() {
    let mut gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let mut alice = harness::Reviewer::connect(&gw.ws_url, &token).await;
    let marker = gw.path("restart-file");
    let child = gw.spawn_exec(&format!("touch {}", marker.display()));
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().unwrap().to_owned();

    gw.crash();
    let (code, _, _) = finish(child).await;
    assert_eq!(code, 255, "the agent's connection dropped with the gateway");
    gw.spawn();

    let mut alice = harness::Reviewer::connect(&gw.ws_url, &token).await;
    assert!(
        alice.snapshot.is_empty(),
        "nothing is pending after a restart: {:?}",
        alice.snapshot
    );
    let late = alice.decide(&id, "approve").await;
    assert_eq!(late["code"], "already_resolved", "{late}");
    assert!(
        late["message"].as_str().unwrap().contains("expired"),
        "{late}"
    );
    assert!(!marker.exists());
}

#[tokio::test]
async fn unknown_keys_and_foreign_targets_are_refused() {
    let gw = Gateway::start(Opts::default()).await;
    let stranger = gw.path("stranger");
    keygen(&stranger, "stranger");
    let mut c = gw.ssh_cmd(&stranger, "local");
    c.arg("127.0.0.1").arg("true");
    let (code, _, err) = finish(c.spawn().unwrap()).await;
    assert_eq!(code, 255);
    assert!(err.contains("Permission denied (publickey)"), "{err}");

    let mut c = gw.ssh_cmd(&gw.agent_key, "prod");
    c.arg("127.0.0.1").arg("true");
    let (code, _, err) = finish(c.spawn().unwrap()).await;
    assert_eq!(code, 77);
    assert!(
        err.contains("airlock: denied: agent bot may not use target prod"),
        "{err}"
    );

    let (code, _, err) = gw.exec(&format!("echo {}", "x".repeat(20_000))).await;
    assert_eq!(code, 77);
    assert!(err.contains("the limit is 16384 bytes"), "{err}");
}

#[tokio::test]
async fn forwarding_agent_x11_and_sftp_are_refused() {
    let gw = Gateway::start(Opts::default()).await;

    // -R: the server refuses the forward; with ExitOnForwardFailure the client gives up.
    let mut c = gw.ssh_cmd(&gw.agent_key, "local");
    c.args([
        "-o",
        "ExitOnForwardFailure=yes",
        "-R",
        "0:127.0.0.1:9",
        "127.0.0.1",
        "true",
    ]);
    let (code, _, err) = finish(c.spawn().unwrap()).await;
    assert_eq!(code, 255, "{err}");
    assert!(err.contains("remote port forwarding failed"), "{err}");

    // -L: the tunnel opens locally, but every channel through it is refused.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = free.local_addr().unwrap().port();
    drop(free);
    let mut c = gw.ssh_cmd_logging(&gw.agent_key, "local", "INFO");
    c.args(["-N", "-L", &format!("{lport}:127.0.0.1:9"), "127.0.0.1"]);
    let mut tunnel = c.spawn().unwrap();
    let mut connected = None;
    for _ in 0..100 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", lport)).await {
            connected = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut s = connected.expect("ssh -L listens locally");
    let mut buf = [0u8; 16];
    use tokio::io::AsyncReadExt;
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "the forwarded connection is closed without data");
    let _ = tunnel.start_kill();
    let (_, _, err) = finish(tunnel).await;
    assert!(err.contains("administratively prohibited"), "{err}");

    // -A: with an agent to forward, the session is refused outright.
    let sock = gw.path("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("ssh-agent socket", || sock.exists()).await;
    let mut c = gw.ssh_cmd(&gw.agent_key, "local");
    c.env("SSH_AUTH_SOCK", &sock)
        .args(["-A", "127.0.0.1", "echo should-not-run"]);
    let (code, out, err) = finish(c.spawn().unwrap()).await;
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(code, 77, "{err}");
    assert!(
        err.contains("airlock: denied: agent forwarding is not allowed"),
        "{err}"
    );
    assert!(!out.contains("should-not-run"));

    // sftp: the subsystem is refused.
    let out = tokio::process::Command::new("sftp")
        .args(harness::CLIENT_OPTS)
        .arg("-i")
        .arg(&gw.agent_key)
        .args([
            "-P",
            &gw.ssh_port.to_string(),
            "-b",
            "/dev/null",
            "local@127.0.0.1",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("subsystem") || err.contains("not available"),
        "{err}"
    );
}

#[tokio::test]
async fn reviewer_protocol_rejects_bad_tokens_and_bad_frames() {
    let gw = Gateway::start(Opts::default()).await;
    // Bad token in the header: the upgrade is refused.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        gw.ws_url.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer alr_nope".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("bad token refused");
    assert!(err.to_string().contains("401"), "{err}");

    let mut alice = gw.reviewer("alice").await;
    alice
        .send(serde_json::json!({"type": "decide", "id": "x", "decision": "maybe"}))
        .await;
    let e = alice.next_of("error").await;
    assert_eq!(e["code"], "bad_message");
    let e = alice.decide("0000000000000000", "approve").await;
    assert_eq!(e["code"], "unknown_request");

    // A removed reviewer loses its vote on the open socket.
    let out = gw.cli(&["reviewer", "remove", "alice"]);
    assert!(out.status.success());
    let e = alice.decide("0000000000000000", "approve").await;
    assert_eq!(e["code"], "bad_token");

    // …and stops reading too: without sending anything, its socket is told and closed within
    // the proof re-check beat (5 s).
    let mut bob = gw.reviewer("bob").await;
    let out = gw.cli(&["reviewer", "remove", "bob"]);
    assert!(out.status.success());
    let told = tokio::time::timeout(Duration::from_secs(8), bob.next_of("error"))
        .await
        .expect("a removed reviewer's open socket is closed within 8 s");
    assert_eq!(told["code"], "bad_token", "{told}");
}

#[tokio::test]
async fn gateway_keeps_serving_when_its_stdout_goes_away() {
    // Whoever reads the start-up banner may vanish (`airlock serve | head`, a restarted log
    // shipper). The gateway must keep serving instead of dying on a broken pipe.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("agent");
    keygen(&key, "bot");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    std::fs::write(dir.path().join("authorized_keys"), {
        let pubkey = std::fs::read_to_string(dir.path().join("agent.pub")).unwrap();
        format!(
            "{} bot\n",
            pubkey
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        )
    })
    .unwrap();
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:{port}\"\nauthorized_keys = \"authorized_keys\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let mut child = std::process::Command::new(harness::BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before the banner is written
    eventually("gateway accepts connections", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alive = child.try_wait().unwrap().is_none();
    let out = tokio::process::Command::new("ssh")
        .args(harness::CLIENT_OPTS)
        .args(["-o", "LogLevel=ERROR", "-i"])
        .arg(&key)
        .args([
            "-p",
            &port.to_string(),
            "local@127.0.0.1",
            "echo still-serving",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "gateway exited after its stdout closed");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "still-serving\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
