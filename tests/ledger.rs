//! The audit ledger end to end: real gateway activity (ssh exec, WebSocket approvals, operator
//! commands), `airlock ledger export`, then `airlock ledger verify` offline on the untouched
//! export and on every kind of tampering.

mod harness;

use std::path::Path;

use harness::*;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

/// `airlock ledger verify` run with no config and no database: (exit code, stdout+stderr).
fn verify(file: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(["ledger", "verify"])
        .arg(file)
        .args(args)
        .current_dir(file.parent().expect("dir"))
        .env_remove("AIRLOCK_CONFIG")
        .output()
        .expect("verify");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_activity_builds_a_ledger_that_verifies_and_tampering_is_named() {
    let gw = Gateway::start(Opts {
        extra: "[ledger]\ncheckpoint_every = 5\ncheckpoint_interval = \"1h\"\n".into(),
        ..Opts::default()
    })
    .await;
    let mut alice = gw.reviewer("alice").await;
    // Low runs; medium approved over the WebSocket; denied.
    assert_eq!(gw.exec("echo audited").await.0, 0);
    let child = gw.spawn_exec("touch ledger-approved");
    let req = alice.next_of("request").await;
    alice
        .decide(req["id"].as_str().expect("id"), "approve")
        .await;
    assert_eq!(finish(child).await.0, 0);
    let child = gw.spawn_exec("touch ledger-denied");
    let req = alice.next_of("request").await;
    alice.decide(req["id"].as_str().expect("id"), "deny").await;
    assert_eq!(finish(child).await.0, 77);
    // Many sessions at once still make one chain.
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(gw.spawn_exec(&format!("echo concurrent-{i}")));
    }
    for c in clients {
        assert_eq!(finish(c).await.0, 0);
    }
    let wl = gw.cli(&[
        "whitelist",
        "add",
        "--any-agent",
        "--any-target",
        "--",
        "uptime -p",
    ]);
    assert!(
        wl.status.success(),
        "{}",
        String::from_utf8_lossy(&wl.stderr)
    );

    let pubkey = String::from_utf8(gw.cli(&["ledger", "pubkey"]).stdout).expect("utf8");
    assert!(pubkey.starts_with("ed25519:"), "{pubkey}");
    eventually("last session closed", || {
        String::from_utf8_lossy(&gw.cli(&["ledger", "export"]).stdout)
            .matches("\"kind\":\"session.close\"")
            .count()
            >= 13
    })
    .await;
    let export = gw.cli(&["ledger", "export"]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = String::from_utf8(export.stdout).expect("utf8");
    for kind in [
        "config.loaded",
        "auth",
        "session.open",
        "command.submitted",
        "request.opened",
        "request.vote",
        "request.outcome",
        "exec.start",
        "exec.exit",
        "recording.closed",
        "session.close",
        "reviewer.add",
        "whitelist.add",
    ] {
        assert!(
            text.contains(&format!("\"kind\":\"{kind}\"")),
            "no {kind} entry in\n{text}"
        );
    }
    assert!(text.contains("\"type\":\"checkpoint\""));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ledger.jsonl");
    write(&file, &text);
    let recordings = gw.path("data/recordings");
    let recs = recordings.display().to_string();

    let (code, out) = verify(&file, &["--pubkey", pubkey.trim(), "--recordings", &recs]);
    assert_eq!(code, 0, "{out}");
    // A verifier written only from docs/ledger.md agrees.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ledger_verify.py");
    let py = std::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stdout)
    );
    assert!(out.starts_with("ok: "), "{out}");
    assert!(out.contains("recordings match"), "{out}");
    let head = out
        .split("head ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("head")
        .to_owned();

    let lines: Vec<&str> = text.lines().collect();
    let entry_at = |seq: i64| {
        lines
            .iter()
            .position(|l| {
                l.starts_with("{\"type\":\"entry\"") && l.contains(&format!("\"seq\":{seq},"))
            })
            .expect("entry")
    };
    let last_seq = lines
        .iter()
        .filter(|l| l.contains("\"type\":\"entry\""))
        .count() as i64;
    let tampered = |name: &str, body: String| {
        let p = dir.path().join(name);
        write(&p, &body);
        p
    };

    // An edited payload byte.
    let edited = tampered(
        "edited.jsonl",
        text.replacen("echo audited", "echo audite!", 1),
    );
    let (code, out) = verify(&edited, &["--pubkey", pubkey.trim()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("was modified"), "{out}");
    let py = std::process::Command::new("python3")
        .arg(&script)
        .arg(&edited)
        .output()
        .expect("python3");
    assert_eq!(
        py.status.code(),
        Some(1),
        "the independent verifier sees the edit too"
    );

    // A deleted entry.
    let mut v = lines.clone();
    v.remove(entry_at(7));
    let (code, out) = verify(&tampered("deleted.jsonl", v.join("\n")), &[]);
    assert_eq!(code, 1);
    assert!(out.contains("entry 7 is missing"), "{out}");

    // Two entries swapped.
    let mut v = lines.clone();
    let (a, b) = (entry_at(9), entry_at(10));
    v.swap(a, b);
    let (code, out) = verify(&tampered("swapped.jsonl", v.join("\n")), &[]);
    assert_eq!(code, 1);
    assert!(out.contains("out of order"), "{out}");

    // The tail dropped, keeping the signed checkpoint that covered it.
    let cut = entry_at(10);
    let v: Vec<&str> = lines[..cut]
        .iter()
        .chain(
            lines[cut..]
                .iter()
                .filter(|l| l.contains("\"type\":\"checkpoint\"")),
        )
        .copied()
        .collect();
    let (code, out) = verify(
        &tampered("truncated.jsonl", v.join("\n")),
        &["--pubkey", pubkey.trim()],
    );
    assert_eq!(code, 1);
    assert!(out.contains("truncated"), "{out}");
    // Only the very last entry dropped: caught by the head anchor.
    let v: Vec<&str> = lines.iter().take(entry_at(last_seq)).copied().collect();
    let (code, out) = verify(&tampered("short.jsonl", v.join("\n")), &["--head", &head]);
    assert_eq!(code, 1);
    assert!(out.contains("head mismatch"), "{out}");

    // Checkpoints checked against another key.
    let other = airlock_approvals::ledger::format::key_string(
        &ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]).verifying_key(),
    );
    let (code, out) = verify(&file, &["--pubkey", &other]);
    assert_eq!(code, 1);
    assert!(out.contains("not by the trusted key"), "{out}");

    // An altered recording.
    let altered = dir.path().join("recordings");
    std::fs::create_dir_all(&altered).expect("dir");
    for e in std::fs::read_dir(&recordings)
        .expect("recordings")
        .flatten()
    {
        std::fs::copy(e.path(), altered.join(e.file_name())).expect("copy");
    }
    let victim = std::fs::read_dir(&altered)
        .expect("dir")
        .flatten()
        .next()
        .expect("a recording")
        .path();
    let mut bytes = std::fs::read(&victim).expect("read");
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    std::fs::write(&victim, bytes).expect("write");
    let (code, out) = verify(&file, &["--recordings", &altered.display().to_string()]);
    assert_eq!(code, 1);
    assert!(out.contains("was altered"), "{out}");

    // Garbage and usage errors.
    let (code, _) = verify(&tampered("garbage.jsonl", "not json\n".into()), &[]);
    assert_eq!(code, 1);
    let (code, out) = verify(&file, &["--pubkey", "nonsense"]);
    assert_eq!(code, 2, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_cannot_be_audited_does_not_run() {
    let gw = Gateway::start(Opts::default()).await;
    assert_eq!(gw.exec("true").await.0, 0);
    // Make every exec.start append fail, as a full or broken database would.
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", gw.path("data/airlock.db").display());
    let pool = sqlx::any::AnyPoolOptions::new()
        .connect(&url)
        .await
        .expect("db");
    sqlx::query(
        "CREATE TRIGGER refuse_exec BEFORE INSERT ON ledger WHEN NEW.kind = 'exec.start' \
         BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    pool.close().await;
    // A low command: it would run at once, if it could be audited.
    let (code, out, err) = gw.exec("echo unaudited-output").await;
    assert_eq!(code, 77, "{err}");
    assert!(
        err.contains("airlock: denied: audit ledger unavailable"),
        "{err}"
    );
    assert!(
        !out.contains("unaudited-output"),
        "an unaudited command never runs"
    );
}
