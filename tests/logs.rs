//! The gateway's log as a service manager collects it (stderr to a file, not a terminal):
//! `[log] format = "json"` gives one JSON object per line whose command lines name the
//! session, the request and the agent; text has no colour codes; `RUST_LOG` wins over
//! `[log] level`.

mod harness;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{BIN, Gateway, Opts, WAIT, finish};
use serde_json::Value;

/// Wait (bounded) until the log holds `needle`.
async fn logged(gw: &Gateway, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = gw.log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn json_lines_parse_and_command_lines_name_session_request_and_agent() {
    let gw = Gateway::start(Opts {
        extra: "[log]\nformat = \"json\"\n".into(),
        ..Opts::default()
    })
    .await;
    let mut alice = gw.reviewer("alice").await;
    // A low command (no request) and a medium one that a reviewer approves.
    let (code, out, err) = gw.exec("echo hello").await;
    assert_eq!((code, out.as_str()), (0, "hello\n"), "{err}");
    let marker = gw.path("approved");
    let child = gw.spawn_exec(&format!("touch {}", marker.display()));
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().expect("id").to_owned();
    let ack = alice.decide(&id, "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    let text = logged(&gw, "command finished").await;
    // Both commands have finished (the second line is the approved one's).
    let text = if text.matches("command finished").count() < 2 {
        logged(&gw, &format!("\"request\":\"{id}\"")).await;
        let deadline = Instant::now() + WAIT;
        loop {
            let t = gw.log();
            if t.matches("command finished").count() >= 2 {
                break t;
            }
            assert!(Instant::now() < deadline, "{t}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else {
        text
    };

    assert!(!text.contains('\u{1b}'), "no escape codes in a file");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 5, "{text}");
    for l in &lines {
        for key in ["timestamp", "level", "module", "message"] {
            assert!(l[key].is_string(), "{key} missing: {l}");
        }
    }
    let about = |message: &str| -> Vec<&Value> {
        lines.iter().filter(|l| l["message"] == message).collect()
    };
    let classified = about("command classified");
    assert_eq!(classified.len(), 2, "{text}");
    for l in &classified {
        assert_eq!(l["agent"], "bot", "{l}");
        assert!(l["session"].as_str().is_some_and(|s| s.len() >= 16), "{l}");
        assert_eq!(l["module"], "airlock_gateway::session::conversation", "{l}");
        assert_eq!(l["target"], "local", "the SSH target: {l}");
        assert!(l["tier"].is_string(), "{l}");
    }
    // The approved command's lines carry its request id, from the request on.
    let finished = about("command finished");
    let approved: Vec<&&Value> = finished.iter().filter(|l| l["request"] == id).collect();
    assert_eq!(approved.len(), 1, "{text}");
    assert_eq!(approved[0]["agent"], "bot");
    let session = approved[0]["session"].as_str().expect("session");
    assert_eq!(req["session_id"].as_str().unwrap_or(session), session);
    let approval = about("approved");
    assert!(
        approval
            .iter()
            .any(|l| l["request"] == id && l["session"] == session && l["agent"] == "bot"),
        "{text}"
    );
    // The low command's lines name its own session, and no request (it asked nobody).
    let low = finished
        .iter()
        .find(|l| l["session"] != session)
        .expect("the low command's line");
    assert!(low["request"].is_null(), "{low}");
    assert_eq!(low["agent"], "bot");
}

#[tokio::test]
async fn text_logs_have_no_escape_codes_off_a_terminal_and_carry_the_fields() {
    let gw = Gateway::start(Opts::default()).await;
    let (code, _, err) = gw.exec("echo hi").await;
    assert_eq!(code, 0, "{err}");
    let log = logged(&gw, "command finished").await;
    assert!(!log.contains('\u{1b}'), "{log:?}");
    let line = log
        .lines()
        .find(|l| l.contains("command finished"))
        .expect("line");
    assert!(
        line.contains("agent=bot") && line.contains("session="),
        "{line}"
    );
}

/// The SSH user name is the agent's to choose (it names a target only once checked). In the
/// text log it is quoted and escaped and cut short, so a name holding a newline, a forged
/// line and escape codes writes no line of its own and colours nothing (a red team forged
/// `ERROR` lines this way through the session's prefix).
#[tokio::test]
async fn a_crafted_user_name_forges_no_log_line() {
    use russh::ChannelMsg;
    use russh::keys::PrivateKeyWithHashAlg;
    use std::sync::Arc;

    struct Client;
    impl russh::client::Handler for Client {
        type Error = russh::Error;
        async fn check_server_key(
            &mut self,
            _key: &russh::keys::PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(true)
        }
    }

    let gw = Gateway::start(Opts::default()).await;
    let key = russh::keys::load_secret_key(&gw.agent_key, None).expect("agent key");
    let forged = "ERROR airlock_gateway::handler: FORGED";
    let user = format!("x\n{forged}\u{1b}[31mred{}", "y".repeat(5000));
    let config = Arc::new(russh::client::Config::default());
    let mut h = russh::client::connect(config, ("127.0.0.1", gw.ssh_port), Client)
        .await
        .expect("connect");
    let auth = h
        .authenticate_publickey(&user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
        .await
        .expect("auth");
    assert!(
        auth.success(),
        "the key is enrolled; the name is checked later"
    );
    let mut ch = h.channel_open_session().await.expect("channel");
    ch.exec(true, "ls").await.expect("exec");
    let deadline = Instant::now() + WAIT;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline.into(), ch.wait()).await {
        if matches!(msg, ChannelMsg::Close) {
            break;
        }
    }
    let log = logged(&gw, "unknown_target").await;
    assert!(
        !log.contains('\u{1b}'),
        "an escape code reached the log: {log:?}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with(forged)),
        "a forged line: {log}"
    );
    assert!(log.contains("FORGED"), "the name is logged, escaped: {log}");
    // Every line of the session carries the name in its prefix: cut there.
    assert!(
        log.lines()
            .filter_map(|l| l.split_once("}: ").map(|(prefix, _)| prefix))
            .all(|prefix| !prefix.contains(&"y".repeat(100))),
        "a long name is cut in the session's prefix: {log}"
    );
}

/// `serve` with a config and environment of our own (the harness always sets RUST_LOG).
fn serve_briefly(level: &str, rust_log: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("airlock.toml"),
        format!(
            "data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:0\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\nlevel = \"{level}\"\n"
        ),
    )
    .expect("config");
    let log = dir.path().join("gateway.log");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config", "airlock.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"));
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    let mut child = cmd.spawn().expect("serve");
    // Wait for the banner (started) or the end of stdout (failed); then stop it.
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("airlock: reviewers listening") {
                let _ = tx.send(());
            }
        }
    });
    let started = rx.recv_timeout(WAIT).is_ok();
    if started {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let until = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[tokio::test]
async fn rust_log_wins_over_the_config_level() {
    // [log] level = "warn": the start-up and shutdown info lines are not written.
    let quiet = serve_briefly("warn", None);
    assert!(!quiet.contains("\"level\":\"INFO\""), "{quiet}");
    // RUST_LOG=info is stronger: they are.
    let loud = serve_briefly("warn", Some("info"));
    assert!(loud.contains("\"level\":\"INFO\""), "{loud}");
    // A bad RUST_LOG stops the start with its name.
    let bad = serve_briefly("warn", Some("info,airlock=loud"));
    assert!(bad.contains("RUST_LOG"), "{bad}");
}
