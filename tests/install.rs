//! Installing Airlock: `scripts/package.sh` makes a signed tarball that `airlock
//! verify-release` accepts, and rejects once one byte changes or the key is not the signer's;
//! the systemd unit passes `systemd-analyze verify` and keeps the hardening the README promises;
//! the banner names the binary as the operator can run it; SIGHUP reloads nothing but says so.
//!
//! The package is built from the test build of the binary (`--binary`), not a `dist` build:
//! the script and the checks are the same, CI is minutes shorter.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::{BIN, Gateway, Opts};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn package_sh(args: &[&str]) -> Output {
    Command::new(repo().join("scripts/package.sh"))
        .args(args)
        .output()
        .expect("scripts/package.sh runs")
}

/// `--generate-key FILE`: a new signing key; returns its `ed25519:…` public key.
fn new_key(path: &Path) -> String {
    let o = package_sh(&["--generate-key", path.to_str().expect("utf-8 path")]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .expect("the public key is printed")
        .to_owned()
}

fn verify(tarball: &Path, pubkey: &str) -> Output {
    Command::new(BIN)
        .arg("verify-release")
        .arg(tarball)
        .args(["--pubkey", pubkey])
        .output()
        .expect("verify-release runs")
}

/// Copy the three release files into `dir` (same names), for tampering with one of them.
fn copy_release(tarball: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let name = tarball
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    for ext in ["", ".sha256", ".sha256.sig"] {
        let from = PathBuf::from(format!("{}{ext}", tarball.display()));
        std::fs::copy(&from, dir.join(format!("{name}{ext}"))).expect("copy release file");
    }
    dir.join(name)
}

/// The test build without its debug info (hundreds of MB that gzip would spend a minute on),
/// with its sandbox helper beside it as `scripts/package.sh` expects; the test build itself
/// when `strip` is missing.
fn small_binary(dir: &Path) -> PathBuf {
    let strip = |from: &str, to: &Path| {
        Command::new("strip")
            .args(["--strip-debug", "-o"])
            .arg(to)
            .arg(from)
            .status()
            .is_ok_and(|s| s.success())
    };
    let copy = dir.join("airlock");
    let helper = env!("CARGO_BIN_EXE_airlock-sandbox");
    if strip(BIN, &copy) && strip(helper, &dir.join("airlock-sandbox")) {
        copy
    } else {
        PathBuf::from(BIN)
    }
}

#[test]
fn a_signed_package_verifies_and_one_flipped_byte_or_a_foreign_key_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("signing.pem");
    let pubkey = new_key(&key);
    assert!(pubkey.starts_with("ed25519:"), "{pubkey}");
    let out = dir.path().join("dist");
    let binary = small_binary(dir.path());
    let o = package_sh(&[
        "--key",
        key.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--binary",
        binary.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let tarball = std::fs::read_dir(&out)
        .expect("dist dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a tarball");

    // What a user gets: the binary and its sandbox helper, both configs, the unit and the docs.
    let list = Command::new("tar")
        .arg("tzf")
        .arg(&tarball)
        .output()
        .expect("tar");
    let list = String::from_utf8_lossy(&list.stdout);
    for f in [
        "/airlock",
        "/airlock-sandbox",
        "/airlock.example.toml",
        "/airlock.toml",
        "/airlock.service",
        "/README.md",
        "/docs/operations.md",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(f)),
            "{f} missing from the tarball:\n{list}"
        );
    }

    let ok = verify(&tarball, &pubkey);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout).starts_with("OK: "),
        "{}",
        text(&ok)
    );
    // The public key also works from a PEM file, as openssl writes it.
    let pem = dir.path().join("signing.pub.pem");
    let st = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&pem)
        .status()
        .expect("openssl");
    assert!(st.success());
    let ok = verify(&tarball, pem.to_str().expect("utf-8"));
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));

    // The checksum file is also plain `sha256sum -c` input.
    let st = Command::new("sha256sum")
        .args(["-c", "--quiet"])
        .arg(format!("{}.sha256", tarball.display()))
        .current_dir(&out)
        .status()
        .expect("sha256sum");
    assert!(st.success());

    // One flipped byte in the middle of the tarball.
    let flipped = copy_release(&tarball, &dir.path().join("flipped"));
    let mut bytes = std::fs::read(&flipped).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&flipped, &bytes).expect("write");
    let bad = verify(&flipped, &pubkey);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("SHA-256 is"),
        "{}",
        text(&bad)
    );

    // A checksum file rewritten to match an altered tarball: the signature no longer holds.
    let resummed = copy_release(&tarball, &dir.path().join("resummed"));
    std::fs::write(&resummed, &bytes).expect("write");
    let sums = Command::new("sha256sum")
        .arg(resummed.file_name().expect("name"))
        .current_dir(resummed.parent().expect("dir"))
        .output()
        .expect("sha256sum");
    std::fs::write(format!("{}.sha256", resummed.display()), &sums.stdout).expect("write");
    let bad = verify(&resummed, &pubkey);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("was not made by"),
        "{}",
        text(&bad)
    );

    // Someone else's key.
    let other = new_key(&dir.path().join("other.pem"));
    assert_ne!(other, pubkey);
    let bad = verify(&tarball, &other);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("was not made by"),
        "{}",
        text(&bad)
    );

    // A missing signature is an error about the file, not a pass.
    std::fs::remove_file(format!("{}.sha256.sig", flipped.display())).expect("rm");
    let bad = verify(&flipped, &pubkey);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn the_package_script_refuses_a_signing_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("signing.pem");
    new_key(&key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = package_sh(&[
        "--key",
        key.to_str().expect("utf-8"),
        "--out",
        dir.path().join("dist").to_str().expect("utf-8"),
        "--binary",
        BIN,
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("readable by others"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("dist").exists());
}

fn unit() -> String {
    std::fs::read_to_string(repo().join("packaging/airlock.service")).expect("the unit file")
}

#[test]
fn the_service_unit_passes_systemd_analyze_verify() {
    let Ok(which) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(which.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    // `verify` checks that ExecStart's program exists: point it at this build's binary.
    let text_unit = unit().replace("/usr/local/bin/airlock", BIN);
    let path = dir.path().join("airlock.service");
    std::fs::write(&path, text_unit).expect("write unit");
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze verify");
    // Unknown or misspelt keys are only warnings (exit 0): any word about the unit fails.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("airlock.service"))
        .collect();
    assert!(o.status.success() && about_unit.is_empty(), "{}", text(&o));
}

#[test]
fn the_service_unit_keeps_the_hardening_the_sandbox_allows() {
    let unit = unit();
    let keys: Vec<(&str, &str)> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| keys.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    for (k, v) in [
        ("User", "airlock"),
        ("StateDirectory", "airlock"),
        ("StateDirectoryMode", "0700"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("Restart", "on-failure"),
        // The sandbox makes a user and a mount namespace per command: both must stay allowed.
        ("RestrictNamespaces", "user mnt"),
        // Reload is the TLS certificate's only (the gateway logs that config is not reloaded).
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ] {
        assert_eq!(get(k), Some(v), "{k} in packaging/airlock.service");
    }
    // The sandbox needs mount/unshare/landlock/seccomp and writes its own uid_map.
    for k in ["SystemCallFilter", "PrivateUsers", "DynamicUser"] {
        assert_eq!(
            get(k),
            None,
            "{k} must not be set in packaging/airlock.service"
        );
    }
    assert!(
        get("ExecStart").is_some_and(|v| v.ends_with(" serve")),
        "ExecStart runs serve"
    );
}

/// Start `serve` with `PATH` as given and return its "Next steps" lines.
fn banner_steps(dir: &Path, path_env: &str) -> Vec<String> {
    use std::io::BufRead as _;
    let config = dir.join("airlock.toml");
    std::fs::write(
        &config,
        "data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:0\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("config");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .current_dir(dir)
        .env("PATH", path_env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut steps = Vec::new();
    let mut in_steps = false;
    while let Ok(line) =
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        if line.starts_with("Next steps") {
            in_steps = true;
        }
        if in_steps {
            let last = line.contains("pin the host key");
            steps.push(line);
            if last {
                // The install hint, when there is one, comes right after.
                if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
                    steps.push(l);
                }
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    steps
}

#[test]
fn the_banner_names_the_binary_the_way_the_operator_can_run_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not installed (`cargo run`): the full path, and how to install.
    let steps = banner_steps(dir.path(), "/usr/bin:/bin").join("\n");
    let me = std::fs::canonicalize(BIN).expect("binary path");
    assert!(
        steps.contains(&format!("{} --config ", me.display()))
            && steps.contains("reviewer add alice"),
        "{steps}"
    );
    assert!(
        steps.contains("cargo install --path gateway --locked"),
        "{steps}"
    );

    // Installed: `airlock` on PATH is this binary.
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).expect("bin dir");
    std::os::unix::fs::symlink(&me, bin_dir.join("airlock")).expect("symlink");
    let steps =
        banner_steps(dir.path(), &format!("{}:/usr/bin:/bin", bin_dir.display())).join("\n");
    assert!(steps.contains("  airlock --config "), "{steps}");
    assert!(!steps.contains("cargo install"), "{steps}");
}

#[tokio::test]
async fn a_hangup_reloads_nothing_says_so_and_keeps_serving() {
    let gw = Gateway::start(Opts::default()).await;
    let pid = gw.pid().expect("running").to_string();
    let st = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(st.success());
    harness::eventually("the gateway logs what SIGHUP does", || {
        gw.log()
            .contains("SIGHUP: the configuration, rule packs, agents and targets are NOT reloaded")
    })
    .await;
    // Still the same process, still serving (SIGHUP's default action would have killed it).
    assert_eq!(gw.pid().map(|p| p.to_string()), Some(pid));
    assert_eq!(
        gw.exec("echo still-serving").await.1.trim(),
        "still-serving"
    );
}
