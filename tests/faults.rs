//! Faults that used to be silent or misleading, each made loud and honest (real binary, real
//! `ssh`; SQLite triggers stand in for a ledger the database refuses to extend):
//! a database deleted at run time, an unwritable ledger at login and at approval, a full
//! recordings disk, an unreachable PostgreSQL, two nodes with one name, a host key path in a
//! directory that does not exist, and X11 forwarding.

mod harness;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::{BIN, Gateway, Opts, finish, pg_url};

/// `airlock --config FILE serve` expected to refuse to start: (exit code, stderr, time taken).
async fn serve_refuses(config_text: &str, dir: &Path) -> (Option<i32>, String, Duration) {
    let config = dir.join("refuse.toml");
    std::fs::write(&config, config_text).expect("config");
    let t = Instant::now();
    let run = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("serve gave up within 30 s instead of starting")
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

/// A SQL statement on the gateway's SQLite database, beside the running gateway (WAL).
async fn sql(gw: &Gateway, statement: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&gw.db_url)
        .await
        .expect("open the database");
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&pool)
        .await
        .expect("statement");
    pool.close().await;
}

#[tokio::test]
async fn a_database_deleted_while_running_refuses_new_commands_and_the_restart() {
    let mut gw = Gateway::start(Opts::default()).await;
    assert_eq!(gw.exec("echo before").await.0, 0);
    let db = gw.path("data/airlock.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    // Checked every 2 s.
    let t = Instant::now();
    let err = loop {
        // The first commands may already fail on the ledger; the check names the cause.
        let (_, _, err) = gw.exec("echo after").await;
        if err.contains("airlock: denied: the gateway's database was")
            || t.elapsed() > Duration::from_secs(30)
        {
            break err;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        err.contains("airlock: denied: the gateway's database was deleted while it ran")
            || err.contains("airlock: denied: the gateway's database was replaced while it ran"),
        "{err}"
    );
    assert!(
        !err.contains("airlock.db"),
        "the agent is not told where the database is: {err}"
    );
    assert!(
        gw.log().contains("airlock.db"),
        "the operator is: {}",
        gw.log()
    );
    // An operator command does not quietly create a fresh database where the old one was.
    let out = gw.cli(&["reviewer", "add", "mallory"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("ledger.head") && said.contains("missing"),
        "{said}"
    );
    assert!(!db.exists(), "no new database file");
    // Nor does a restart.
    gw.crash();
    let text = std::fs::read_to_string(&gw.config).expect("config");
    let (code, err, _) = serve_refuses(&text, gw.dir.path()).await;
    assert_ne!(code, Some(0));
    assert!(
        err.contains("ledger.head") && err.contains("Restore the database from a backup"),
        "{err}"
    );
}

#[tokio::test]
async fn a_replaced_database_with_another_ledger_is_refused_at_start() {
    let mut gw = Gateway::start(Opts::default()).await;
    assert_eq!(gw.exec("echo one").await.0, 0);
    gw.crash();
    // Another gateway's database (a fresh chain) put in its place.
    let other = Gateway::start(Opts::default()).await;
    assert_eq!(other.exec("echo two").await.0, 0);
    let db = gw.path("data/airlock.db");
    let theirs = other.path("data/airlock.db");
    // Copy a consistent snapshot of the other database.
    let snapshot = gw.path("other.db");
    sql(&other, &format!("VACUUM INTO '{}'", snapshot.display())).await;
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    std::fs::copy(&snapshot, &db).expect("replace the database");
    assert!(theirs.exists());
    let text = std::fs::read_to_string(&gw.config).expect("config");
    let (code, err, _) = serve_refuses(&text, gw.dir.path()).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("another chain"), "{err}");
}

#[tokio::test]
async fn an_unwritable_ledger_refuses_logins_in_words() {
    let gw = Gateway::start(Opts::default()).await;
    sql(
        &gw,
        "CREATE TRIGGER no_ledger BEFORE INSERT ON ledger BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END",
    )
    .await;
    let (code, _, err) = gw.exec("echo never").await;
    assert_ne!(code, 0);
    assert!(
        err.contains("airlock: denied: login refused: the audit ledger cannot be written"),
        "the agent is told why, not just 'Permission denied': {err}"
    );
}

#[tokio::test]
async fn an_approval_whose_outcome_cannot_be_audited_is_a_deny() {
    let gw = Gateway::start(Opts::default()).await;
    let mut alice = gw.reviewer("alice").await;
    sql(
        &gw,
        "CREATE TRIGGER no_outcome BEFORE INSERT ON ledger WHEN NEW.kind = 'request.outcome' BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END",
    )
    .await;
    let file = gw.path("unaudited");
    let child = gw.spawn_exec(&format!("touch {}", file.display()));
    let req = alice.next_of("request").await;
    let reply = alice
        .decide(req["id"].as_str().expect("id"), "approve")
        .await;
    assert_eq!(reply["type"], "error", "never acked approved: {reply}");
    assert_eq!(reply["code"], "internal");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or_default()
            .contains("could not be written to the audit ledger"),
        "{reply}"
    );
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 77, "{err}");
    assert!(
        err.contains("airlock: denied: the approval could not be written to the audit ledger"),
        "{err}"
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn a_full_recordings_disk_denies_before_any_reviewer_is_asked() {
    if !harness::can_mount_tmpfs() {
        eprintln!("skipped: cannot mount a tmpfs in a user namespace here");
        return;
    }
    let gw = Gateway::start(Opts {
        tiny_recordings: Some("256k"),
        ..Opts::default()
    })
    .await;
    // A low command fills the recordings disk (its own recording fails and ends it).
    let (code, _, _) = gw.exec("head -c 600000 /dev/zero | od -v").await;
    assert_ne!(code, 0, "the filling session ended on the full disk");
    let mut alice = gw.reviewer("alice").await;
    let file = gw.path("unrecorded");
    let cmd = format!("touch {}", file.display());
    let (code, _, err) = gw.exec(&cmd).await;
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("airlock: denied: recording"), "{err}");
    assert!(!file.exists());
    // Nobody was asked: no request reached the reviewer, none is in History.
    let token = gw.add_reviewer("carol");
    let history = gw.http_get("/api/history", Some(&token)).await;
    assert!(!history.contains(&cmd), "{history}");
    let late = harness::Reviewer::connect(&gw.ws_url, &token).await;
    assert!(late.snapshot.is_empty());
    alice.send(serde_json::json!({"type": "ping"})).await;
    let pong = alice.next().await;
    assert_eq!(
        pong["type"], "pong",
        "the first thing alice hears is her pong: {pong}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_fails_start_in_one_clear_error_within_its_connect_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = harness::free_port();
    // A short `connect_timeout`, and room for a debug binary starting on a loaded machine:
    // what matters is that the configured bound holds, not a wall-clock race (without it the
    // default of 5s applies; a driver's own retries would take far longer).
    let (code, err, took) = serve_refuses(
        &format!(
            "data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:0\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"postgres://postgres@127.0.0.1:{closed}/test\"\nconnect_timeout = \"2s\"\n"
        ),
        dir.path(),
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(took <= Duration::from_secs(7), "took {took:?}: {err}");
    assert!(
        err.contains("within 2s"),
        "the configured timeout is the one named: {err}"
    );
    assert_eq!(
        err.matches("cannot reach the database").count(),
        1,
        "one clear error, once: {err}"
    );
}

#[tokio::test]
async fn a_second_live_node_with_the_same_name_refuses_to_start() {
    if pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set");
        return;
    }
    let first = Gateway::start(Opts {
        postgres: true,
        node: Some("node-a"),
        ..Opts::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, err, _) = serve_refuses(
        &format!(
            "data_dir = \"data\"\nnode = \"node-a\"\n[ssh]\nlisten = \"127.0.0.1:0\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{}\"\n",
            first.db_url
        ),
        dir.path(),
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("node name \"node-a\" is in use"), "{err}");
    // The first node's agents were not disturbed.
    assert_eq!(first.exec("echo still-here").await.0, 0);
}

#[tokio::test]
async fn a_host_key_in_a_missing_directory_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("kyes"); // the typo
    let (code, err, _) = serve_refuses(
        &format!(
            "data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:0\"\nhost_key = \"{}/host_ed25519_key\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\n",
            missing.display()
        ),
        dir.path(),
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists(), "no directory was created");
    assert!(
        !dir.path().join("data").exists(),
        "nothing else was created either (data dir, database, keys)"
    );
}

#[tokio::test]
async fn x11_forwarding_ends_the_session_with_its_reason() {
    let gw = Gateway::start(Opts::default()).await;
    let file = gw.path("x11-ran");
    let mut ssh = gw.ssh_cmd(&gw.agent_key, "local");
    ssh.env("DISPLAY", ":99")
        .args(["-o", "ForwardX11=yes", "127.0.0.1"])
        .arg(format!("touch {}", file.display()));
    let out = ssh.output().await.expect("ssh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains("airlock: denied: X11 forwarding is not allowed through Airlock"),
        "{err}"
    );
    assert!(!file.exists(), "the session did not go on");
}
