//! File modes, like sshd's StrictModes (real binary, real `ssh`): the data dir is 0700 and the
//! SQLite files 0600 (tightened when an older run left them open); a host key, ledger key or
//! upstream key others can read, and an authorized_keys others can write, refuse start-up
//! with the file named — and an authorized_keys loosened while the gateway runs enrols nobody.

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use harness::{BIN, Gateway, Opts, keygen};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

/// `airlock --config FILE serve` that must refuse to start: (exit code, stderr).
async fn serve_refuses(config: &Path, cwd: &Path) -> (Option<i32>, String) {
    let run = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("serve did not give up within 30 s: it started despite the file's mode")
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_data_dir_and_the_database_are_private_and_loosened_ones_are_tightened() {
    let mut gw = Gateway::start(Opts::default()).await;
    assert_eq!(gw.exec("echo hi").await.0, 0);
    let data = gw.path("data");
    let db = gw.path("data/airlock.db");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    // SQLite made the WAL and SHM while the gateway ran: same mode as the database.
    for f in ["data/airlock.db-wal", "data/airlock.db-shm"] {
        assert_eq!(mode(&gw.path(f)), 0o600, "{f}");
    }
    assert_eq!(gw.terminate(), Some(0));

    // What an older version (or a mkdir with umask 022) left behind.
    chmod(&data, 0o755);
    chmod(&db, 0o644);
    gw.spawn();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert!(
        gw.log().contains("the data dir was open to other users"),
        "{}",
        gw.log()
    );
    assert_eq!(gw.exec("echo again").await.0, 0);
}

#[tokio::test]
async fn a_group_readable_host_key_or_a_readable_ledger_key_refuses_start_naming_the_file() {
    let mut gw = Gateway::start(Opts::default()).await;
    assert_eq!(gw.terminate(), Some(0));
    let host_key = gw.path("data/host_ed25519_key");
    assert_eq!(mode(&host_key), 0o600, "made private");
    chmod(&host_key, 0o640);
    let (code, err) = serve_refuses(&gw.config, gw.dir.path()).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "host key ([ssh] host_key) {} is accessible by group or others (mode 640)",
            host_key.display()
        )),
        "{err}"
    );
    chmod(&host_key, 0o600);

    let ledger_key = gw.path("data/ledger_ed25519_key");
    assert_eq!(mode(&ledger_key), 0o600, "made private");
    chmod(&ledger_key, 0o604);
    let (code, err) = serve_refuses(&gw.config, gw.dir.path()).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "ledger key ([ledger] key) {}",
            ledger_key.display()
        )),
        "{err}"
    );
    chmod(&ledger_key, 0o600);

    // Fixed, it starts again with the same identity.
    gw.spawn();
    assert_eq!(gw.exec("echo back").await.0, 0);
}

#[tokio::test]
async fn a_world_writable_authorized_keys_refuses_start_and_a_loosened_one_enrols_nobody() {
    let mut gw = Gateway::start(Opts::default()).await;
    let enrolled = gw.path("enrolled");
    keygen(&enrolled, "other");
    let public = std::fs::read_to_string(gw.path("enrolled.pub")).expect("pub");
    let authorized = gw.path("data/authorized_keys");
    std::fs::write(&authorized, public.replace(" other", " helper")).expect("enrol");
    chmod(&authorized, 0o600);
    let run = |gw: &Gateway| {
        let mut c = gw.ssh_cmd(&enrolled, "local");
        c.arg("127.0.0.1").arg("echo enrolled-ran");
        c.output()
    };
    let out = run(&gw).await.expect("ssh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "enrolled-ran",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Loosened while the gateway runs: whoever could write it could add a key, so it counts
    // for nobody until it is fixed.
    chmod(&authorized, 0o666);
    let out = run(&gw).await.expect("ssh");
    assert_eq!(out.status.code(), Some(255), "login refused");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("enrolled-ran"));
    assert!(
        gw.log()
            .contains("is writable by group or others (mode 666)"),
        "{}",
        gw.log()
    );
    // Config-listed agents are not affected.
    assert_eq!(gw.exec("echo bot-ok").await.0, 0);

    assert_eq!(gw.terminate(), Some(0));
    let (code, err) = serve_refuses(&gw.config, gw.dir.path()).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "authorized_keys {} is writable by group or others (mode 666)",
            authorized.display()
        )),
        "{err}"
    );

    // Its directory counts too (anyone could replace the file).
    chmod(&authorized, 0o644);
    chmod(&gw.path("data"), 0o777);
    let (code, err) = serve_refuses(&gw.config, gw.dir.path()).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "its directory {} is writable by group or others (mode 777)",
            gw.path("data").display()
        )),
        "{err}"
    );
    chmod(&gw.path("data"), 0o700);
    gw.spawn();
    let out = run(&gw).await.expect("ssh");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "enrolled-ran");
}

#[tokio::test]
async fn an_upstream_key_others_can_read_refuses_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("upstream_key");
    keygen(&key, "gateway");
    chmod(&key, 0o640);
    let host = std::fs::read_to_string(dir.path().join("upstream_key.pub")).expect("pub");
    let host: Vec<&str> = host.split_whitespace().take(2).collect();
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:0\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\n\
             [[target]]\nname = \"web-1\"\nkind = \"ssh\"\naddress = \"127.0.0.1:1\"\nuser = \"deploy\"\n\
             key = \"{}\"\nhost_key = \"{}\"\n",
            key.display(),
            host.join(" ")
        ),
    )
    .expect("config");
    let (code, err) = serve_refuses(&config, dir.path()).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "key {} is readable by others (mode 640)",
            key.display()
        )),
        "{err}"
    );
}
