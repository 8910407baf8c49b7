//! Backup and restore (real binary, real `ssh`): `airlock backup` copies a live gateway's
//! SQLite database while agents run commands, prints the ledger head of the copy; `airlock
//! restore` refuses while the gateway runs and over an existing database without `--force`,
//! then puts the copy back so that `ledger verify --head` passes on exactly that head and
//! `serve` starts on it. PostgreSQL is refused with pg_dump guidance.

mod harness;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{BIN, Gateway, Opts};

fn out_text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `airlock ledger export` then `ledger verify` with the gateway's key (and `--head`).
fn verify_ledger(gw: &Gateway, head: Option<&str>) -> std::process::Output {
    let export = gw.cli(&["ledger", "export"]);
    assert!(export.status.success(), "{}", out_text(&export));
    let file = gw.path("ledger-export.jsonl");
    std::fs::write(&file, &export.stdout).expect("write export");
    let pubkey = gw.cli(&["ledger", "pubkey"]);
    assert!(pubkey.status.success(), "{}", out_text(&pubkey));
    let pubkey = String::from_utf8_lossy(&pubkey.stdout).trim().to_owned();
    let mut args = vec![
        "ledger",
        "verify",
        file.to_str().expect("utf-8"),
        "--pubkey",
    ];
    args.push(&pubkey);
    if let Some(h) = head {
        args.extend(["--head", h]);
    }
    gw.cli(&args)
}

/// The entries of an export (checkpoint lines left out): (seq, hash) in order.
fn entries(export: &[u8]) -> Vec<(i64, String)> {
    String::from_utf8_lossy(export)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .filter(|v| v["type"] == "entry")
        .map(|v| {
            (
                v["seq"].as_i64().expect("seq"),
                v["hash"].as_str().expect("hash").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_backup_of_a_live_gateway_under_load_restores_into_one_that_verifies_and_starts() {
    let gw = Gateway::start(Opts::default()).await;
    assert_eq!(gw.exec("echo before").await.0, 0);

    // Load: four agents' connections running commands back to back until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(AtomicUsize::new(0));
    let gw = Arc::new(gw);
    let mut load = Vec::new();
    for n in 0..4 {
        let (gw, stop, ran) = (gw.clone(), stop.clone(), ran.clone());
        load.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let (code, out, err) = gw.exec(&format!("echo load-{n}")).await;
                if code == 0 && out.trim() == format!("load-{n}") {
                    ran.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.push(format!("{code} {out} {err}"));
                }
            }
            failures
        }));
    }
    harness::eventually("the load is running", || ran.load(Ordering::SeqCst) >= 8).await;

    let backup = gw.path("backup.db");
    let before = ran.load(Ordering::SeqCst);
    let started = Instant::now();
    let out = {
        let gw = gw.clone();
        let backup = backup.clone();
        tokio::task::spawn_blocking(move || gw.cli(&["backup", backup.to_str().expect("utf-8")]))
            .await
            .expect("backup task")
    };
    assert!(out.status.success(), "{}", out_text(&out));
    eprintln!(
        "backup took {:?} (CLI process included); {} commands had run before it, {} by its end",
        started.elapsed(),
        before,
        ran.load(Ordering::SeqCst)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let head_line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ledger head at backup: entry "))
        .unwrap_or_else(|| panic!("no head line:\n{stdout}"));
    let (seq, hash) = head_line.split_once(" hash ").expect("entry N hash H");
    let seq: i64 = seq.parse().expect("seq");
    let hash = hash.trim().to_owned();
    // Commands went on after the copy, so the live ledger moves past the backup's head.
    harness::eventually("commands ran after the backup", || {
        ran.load(Ordering::SeqCst) >= before + 8
    })
    .await;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup)
            .expect("backup")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Outside the data dir the copy is readable by commands that run as the gateway's user
    // (the harness's local target has no `user`): the operator is told. Inside it, the
    // sandbox hides it from every command.
    let warned = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        warned.contains("is outside the data dir") && warned.contains("\"local\""),
        "{warned}"
    );
    let kept = gw.path("data").join("backups");
    std::fs::create_dir_all(&kept).expect("backups dir");
    let inside = kept.join("inside.db");
    let quiet = gw.cli(&["backup", inside.to_str().expect("utf-8")]);
    assert!(quiet.status.success(), "{}", out_text(&quiet));
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("outside the data dir"),
        "{}",
        out_text(&quiet)
    );
    let (code, read, err) = gw.exec(&format!("cat {}/*", kept.display())).await;
    assert!(
        code != 0 && !read.contains("SQLite format") && err.contains("Permission denied"),
        "a command read the backup in the data dir: {code} {err}"
    );

    // Not over an existing file, and not while the gateway runs.
    let again = gw.cli(&["backup", backup.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(1), "{}", out_text(&again));
    let running = gw.cli(&["restore", "--force", backup.to_str().expect("utf-8")]);
    assert_eq!(running.status.code(), Some(1), "{}", out_text(&running));
    assert!(
        String::from_utf8_lossy(&running.stderr).contains("a gateway is running"),
        "{}",
        out_text(&running)
    );

    stop.store(true, Ordering::SeqCst);
    for l in load {
        let failures = l.await.expect("load task");
        assert!(
            failures.is_empty(),
            "commands failed during the backup: {failures:?}"
        );
    }
    let mut gw = Arc::try_unwrap(gw).unwrap_or_else(|_| panic!("load tasks hold no gateway"));
    assert_eq!(gw.terminate(), Some(0));
    let live = gw.cli(&["ledger", "export"]);
    let live_seq = entries(&live.stdout).last().expect("entries").0;
    assert!(
        live_seq > seq,
        "the live ledger ({live_seq}) went past the backup ({seq})"
    );

    // An existing database is only replaced on purpose.
    let refused = gw.cli(&["restore", backup.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(1), "{}", out_text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--force"),
        "{}",
        out_text(&refused)
    );

    let restored = gw.cli(&["restore", "--force", backup.to_str().expect("utf-8")]);
    assert!(restored.status.success(), "{}", out_text(&restored));
    let text = String::from_utf8_lossy(&restored.stdout);
    assert!(
        text.contains(&format!("ledger head restored: entry {seq} hash {hash}")),
        "{text}"
    );
    // The replaced database and head file are kept, not deleted.
    let kept: Vec<String> = std::fs::read_dir(gw.path("data"))
        .expect("data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".before-restore-"))
        .collect();
    assert!(
        kept.iter()
            .any(|n| n.starts_with("airlock.db.before-restore-"))
            && kept
                .iter()
                .any(|n| n.starts_with("ledger.head.before-restore-")),
        "{kept:?}"
    );

    // The restored ledger verifies, signed by the gateway's key, ending exactly at the head
    // the backup printed.
    let v = verify_ledger(&gw, Some(&hash));
    assert_eq!(v.status.code(), Some(0), "{}", out_text(&v));
    let export = gw.cli(&["ledger", "export"]);
    let restored = entries(&export.stdout);
    assert_eq!(restored.len() as i64, seq);
    assert_eq!(restored.last(), Some(&(seq, hash.clone())));

    // And the gateway starts on it (the head file names the restored chain) and works.
    gw.spawn();
    assert_eq!(gw.exec("echo after-restore").await.0, 0);
    assert_eq!(gw.terminate(), Some(0));
    let v = verify_ledger(&gw, None);
    assert_eq!(v.status.code(), Some(0), "{}", out_text(&v));
}

#[test]
fn postgres_is_refused_with_pg_dump_guidance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        "data_dir = \"data\"\n[database]\nurl = \"postgres://airlock:secret@127.0.0.1:1/airlock\"\n",
    )
    .expect("config");
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("airlock")
    };
    let out = run(&["backup", "x.db"]);
    assert_eq!(out.status.code(), Some(1), "{}", out_text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump --format=custom"), "{err}");
    assert!(
        !err.contains("secret"),
        "the password is never printed: {err}"
    );
    assert!(!Path::new(&dir.path().join("x.db")).exists());
    let out = run(&["restore", "x.dump"]);
    assert_eq!(out.status.code(), Some(1), "{}", out_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pg_restore"),
        "{}",
        out_text(&out)
    );
}
