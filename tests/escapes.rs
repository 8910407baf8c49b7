//! Regressions for what a red-team session found against the first sandbox (it had not read
//! the code): each test is one of its escapes, and asserts the effect never happens — a canary
//! under the test's temp dir stays absent, a listener the test owns is never connected to.
//! Reviewers approve everything they are asked (two of them, so high commands run too): the
//! point is what even an approved command cannot do to later ones.

mod harness;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::*;

/// Approve every request (alice and bob) until the test ends.
async fn approve_everything(gw: &Gateway) -> tokio::task::JoinHandle<()> {
    let mut alice = gw.reviewer("alice").await;
    let mut bob = gw.reviewer("bob").await;
    tokio::spawn(async move {
        loop {
            let req = alice.next_of("request").await;
            let id = req["id"].as_str().unwrap_or_default().to_owned();
            alice.decide(&id, "approve").await;
            if req["tier"] == "high" {
                bob.decide(&id, "approve").await;
            }
        }
    })
}

/// Run `cmd` as the agent (approved if asked): exit status, stdout, stderr.
async fn run(gw: &Gateway, cmd: &str) -> (i32, String, String) {
    finish(gw.spawn_exec(cmd)).await
}

/// Whether the gateway would run `cmd` at once, without a human (so read-only).
/// A gateway whose classifier wrongly calls writing tools read-only (`MISTAKES`): these
/// regressions show the kernel holds where the judgement fails.
fn mistaken() -> Opts {
    Opts {
        mistaken_classifier: true,
        ..Opts::default()
    }
}

fn unreviewed(gw: &Gateway, cmd: &str) -> bool {
    let out = gw.cli(&[
        "policy", "check", "--agent", "bot", "--target", "local", "--", cmd,
    ]);
    String::from_utf8_lossy(&out.stdout).starts_with("allow")
}

fn work(gw: &Gateway) -> std::path::PathBuf {
    let w = gw.path("work");
    std::fs::create_dir_all(&w).expect("work dir");
    w
}

/// The small sandbox helper built with the binary.
const HELPER: &str = env!("CARGO_BIN_EXE_airlock-sandbox");

/// A gateway running from a copy of the binary that an approved command can overwrite (the
/// copy, and the temp dir that holds it); `helper`: what to put next to it as `airlock-sandbox`.
async fn gateway_from_a_copy_with(
    helper: Option<(&[u8], u32)>,
) -> (Gateway, std::path::PathBuf, tempfile::TempDir) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("airlock");
    std::fs::copy(BIN, &copy).expect("copy the binary");
    if let Some((bytes, mode)) = helper {
        let h = dir.path().join("airlock-sandbox");
        std::fs::write(&h, bytes).expect("write the helper");
        std::fs::set_permissions(&h, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let gw = Gateway::start(Opts {
        binary: Some(copy.clone()),
        mistaken_classifier: true,
        ..Opts::default()
    })
    .await;
    (gw, copy, dir)
}

/// The gateway alone (no helper next to it): commands start through `airlock sandbox-exec`.
async fn gateway_from_a_copy() -> (Gateway, std::path::PathBuf, tempfile::TempDir) {
    gateway_from_a_copy_with(None).await
}

/// Where the gateway's open descriptors point.
fn open_files(gw: &Gateway) -> Vec<std::path::PathBuf> {
    let pid = gw.pid().expect("gateway pid");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_start_through_the_small_helper_from_the_same_build_and_never_a_stale_one() {
    // The helper from this build, next to the binary: it is opened once and every command
    // starts through it (the sandbox still holds: a low command cannot write).
    let real = std::fs::read(HELPER).expect("read the helper");
    let (gw, copy, dir) = gateway_from_a_copy_with(Some((&real, 0o755))).await;
    let helper = dir.path().join("airlock-sandbox");
    assert!(
        gw.log()
            .contains("commands start through the sandbox helper"),
        "{}",
        gw.log()
    );
    assert!(open_files(&gw).contains(&helper), "{:?}", open_files(&gw));
    assert!(!open_files(&gw).contains(&copy), "{:?}", open_files(&gw));
    let w = work(&gw);
    let (code, out, err) = run(&gw, "id -u").await;
    assert_eq!((code, out.as_str()), (0, "0\n"), "{err}");
    // `cp` is "read-only" to this gateway's mistaken classifier: the kernel must refuse.
    let (code, _, _) = run(&gw, &format!("cp /etc/hostname {}/x", w.display())).await;
    assert_ne!(
        code, 0,
        "a read-only command wrote through the small helper"
    );
    assert!(!w.join("x").exists());
    drop(gw);

    // A helper from another build (here: a script that says so, and would leave a canary if
    // it were ever started for a command) is not used: the gateway says why and starts
    // commands through its own `airlock sandbox-exec`.
    drop(dir);
    let marks = tempfile::tempdir().expect("tempdir");
    let canary = marks.path().join("stale-helper-ran");
    let asked = marks.path().join("stale-helper-asked");
    let stale = format!(
        "#!/bin/sh\ntouch {}\nif [ \"$1\" = --build-id ]; then echo 0.0.0-0000000000000000; exit 0; fi\ntouch {}\nexec /bin/false\n",
        asked.display(),
        canary.display()
    );
    falls_back(stale.as_bytes(), 0o755, "comes from another build").await;
    assert!(
        asked.exists(),
        "the gateway never asked the helper its build"
    );
    assert!(!canary.exists(), "the stale helper ran a command");
    std::fs::remove_file(&asked).expect("reset the mark");

    // A helper anyone may write (as if placed in a world-writable directory) is never run,
    // not even to ask its build: the same canary script, world-writable, leaves no trace.
    falls_back(stale.as_bytes(), 0o777, "writable by others; it is not run").await;
    assert!(
        !asked.exists() && !canary.exists(),
        "a world-writable helper was run"
    );
}

/// A gateway with `helper` (mode `mode`) beside it says `why` in its log, holds its own binary
/// open as the helper, and still runs commands (through `airlock sandbox-exec`).
async fn falls_back(helper: &[u8], mode: u32, why: &str) {
    let (gw, copy, _dir) = gateway_from_a_copy_with(Some((helper, mode))).await;
    assert!(gw.log().contains(why), "{}", gw.log());
    assert!(open_files(&gw).contains(&copy), "{:?}", open_files(&gw));
    let (code, out, err) = run(&gw, "id -u").await;
    assert_eq!((code, out.as_str()), (0, "0\n"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replacing_the_sandbox_helper_does_not_change_what_the_gateway_runs() {
    let real = std::fs::read(HELPER).expect("read the helper");
    let (gw, _copy, dir) = gateway_from_a_copy_with(Some((&real, 0o755))).await;
    replace_and_run_again(&gw, &dir.path().join("airlock-sandbox")).await;
}

/// An approved command replaces `binary` with a script that would leave a canary; the next
/// command still starts through the file the gateway opened at start-up.
async fn replace_and_run_again(gw: &Gateway, binary: &std::path::Path) {
    let _reviewers = approve_everything(gw).await;
    let canary = work(gw).join("ran-as-the-helper");
    let evil = format!(
        "printf '#!/bin/sh\\ntouch {}\\nexec /bin/false\\n' > {p}.new && chmod 755 {p}.new && mv {p}.new {p}",
        canary.display(),
        p = binary.display()
    );
    let (code, _, err) = run(gw, &evil).await;
    assert_eq!(code, 0, "the approved replacement itself runs: {err}");
    let (code, out, err) = run(gw, "id -u").await;
    assert_eq!((code, out.as_str()), (0, "0\n"), "{err}");
    assert!(
        !canary.exists(),
        "the replaced {} ran outside the sandbox",
        binary.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replacing_the_airlock_binary_does_not_change_what_the_gateway_runs() {
    let (gw, copy, _dir) = gateway_from_a_copy().await;
    replace_and_run_again(&gw, &copy).await;
}

/// A TCP listener the test owns; counts connections for `window`.
fn tcp_listener() -> (u16, std::thread::JoinHandle<usize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    l.set_nonblocking(true).expect("nonblocking");
    let counter = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(12);
        let mut n = 0;
        while Instant::now() < until {
            if let Ok((mut s, _)) = l.accept() {
                n += 1;
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = s.read(&mut [0u8; 64]);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    });
    (port, counter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreviewed_command_reaches_no_socket_but_an_approved_one_does() {
    let gw = Gateway::start(mistaken()).await;
    let _reviewers = approve_everything(&gw).await;
    let (port, connections) = tcp_listener();
    let low = format!("curl -s -m 3 http://127.0.0.1:{port}/");
    assert!(
        unreviewed(&gw, &low),
        "this test needs a network reader that runs without a human; pick another"
    );
    let (code, _, _) = run(&gw, &low).await;
    assert_ne!(code, 0, "the unreviewed curl reached the listener");
    // A UNIX socket (a local database's, Docker's) is refused the same way.
    let sock = gw.path("work-socket");
    let unix = std::os::unix::net::UnixListener::bind(&sock).expect("unix bind");
    unix.set_nonblocking(true).expect("nonblocking");
    let low_unix = format!("curl -s -m 3 --unix-socket {} http://x/", sock.display());
    if unreviewed(&gw, &low_unix) {
        let (code, _, _) = run(&gw, &low_unix).await;
        assert_ne!(code, 0);
        assert!(
            unix.accept().is_err(),
            "the unreviewed curl reached the UNIX socket"
        );
    }
    // The control: approved, the same kind of connection goes through.
    let (code, _, err) = run(&gw, &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        connections.join().expect("counter"),
        1,
        "exactly the approved connection arrived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_line_cannot_make_later_unreviewed_lines_writable() {
    let gw = Gateway::start(mistaken()).await;
    let _reviewers = approve_everything(&gw).await;
    let w = work(&gw);
    let shim_ran = w.join("rm-shim-ran");
    let bin = w.join("bin");
    let mut sh = ShellClient::open(&gw, "local").await;
    // 1. Attributes on the loop's own variable (capitalises the mode letter).
    sh.line(&format!(
        "declare -c __airlock_line; touch {}",
        w.join("a").display()
    ))
    .await;
    eventually("the approved line ran", || w.join("a").exists()).await;
    // 2. A PATH entry in front with an `rm` that runs a payload.
    sh.line(&format!(
        "mkdir -p {b} && printf '#!/bin/sh\\ntouch {c}\\nexec /bin/rm \"$@\"\\n' > {b}/rm && chmod 755 {b}/rm && export PATH={b}:$PATH",
        b = bin.display(),
        c = shim_ran.display()
    ))
    .await;
    eventually("the shim is in place", || bin.join("rm").exists()).await;
    // 3. Functions named like the builtins the loop uses.
    sh.line(&format!(
        "builtin() {{ touch {c}; }}; printf() {{ touch {c}; }}; touch {d}",
        c = shim_ran.display(),
        d = w.join("b").display()
    ))
    .await;
    eventually("the approved line ran", || w.join("b").exists()).await;
    // 4. A trap on a signal the shell gets while an unreviewed line runs (its child's exit),
    //    that would run the line's text in the shell itself.
    sh.line(&format!(
        "trap 'case $__airlock_line in r*) touch {c}; eval \"${{__airlock_line#r}}\";; esac' CHLD WINCH; touch {d}",
        c = shim_ran.display(),
        d = w.join("c").display()
    ))
    .await;
    eventually("the approved line ran", || w.join("c").exists()).await;
    // Then unreviewed lines: still read-only, and nothing above ran on their behalf.
    let written = w.join("written-by-a-low-line");
    let low = format!("sort -o {} /etc/hostname", written.display());
    assert!(unreviewed(&gw, &low));
    sh.line(&low).await;
    sh.wait_for("sort: open failed").await;
    sh.line("echo after-$((6*7))").await;
    sh.wait_for_after("after-42\r\n", "bot@local:~$").await;
    assert!(!written.exists(), "an unreviewed line wrote");
    assert!(
        !shim_ran.exists(),
        "the shell's own machinery ran a planted program"
    );
    let (_, transcript) = sh.quit().await;
    assert!(
        transcript.contains("session ended (ctrl-d)"),
        "{transcript}"
    );
    assert!(
        !shim_ran.exists(),
        "the session's end ran a planted program"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn descriptors_the_gateway_inherited_never_reach_a_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim");
    let gw = Gateway::start(Opts {
        leak_fd: Some(victim.clone()),
        ..Opts::default()
    })
    .await;
    let cmd = "echo leaked >&7";
    let (code, _, err) = run(&gw, cmd).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("Bad file descriptor"), "{err}");
    let content = std::fs::read_to_string(&victim).unwrap_or_default();
    assert!(!content.contains("leaked"), "{content}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_root_command_cannot_rewrite_the_kernels_knobs() {
    if !Path::new("/proc/sys/kernel/core_pattern").exists() {
        eprintln!("skipped: no /proc/sys/kernel/core_pattern");
        return;
    }
    let gw = Gateway::start(mistaken()).await;
    let _reviewers = approve_everything(&gw).await;
    // Writes back the value it reads: even if it got through, nothing would change.
    for knob in [
        "/proc/sys/kernel/core_pattern",
        "/sys/fs/cgroup/memory/notify_on_release",
        "/sys/fs/cgroup/unified/cgroup.subtree_control",
    ] {
        if !Path::new(knob).exists() {
            continue;
        }
        let (code, _, err) = run(
            &gw,
            &format!("v=$(cat {knob}) && printf '%s\\n' \"$v\" > {knob}"),
        )
        .await;
        assert_ne!(code, 0, "{knob}: {err}");
        assert!(err.contains("Read-only file system"), "{knob}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replacing_the_binary_does_not_free_later_shells_unreviewed_lines() {
    let (gw, copy, _dir) = gateway_from_a_copy().await;
    let _reviewers = approve_everything(&gw).await;
    let w = work(&gw);
    // The replacement runs whatever follows `--`, with no sandbox at all.
    let (code, _, err) = run(
        &gw,
        &format!(
            "printf '#!/bin/bash\\nwhile [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\\n' > {p}.new && chmod 755 {p}.new && mv {p}.new {p}",
            p = copy.display()
        ),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let written = w.join("written-by-a-later-shell");
    let low = format!("sort -o {} /etc/hostname", written.display());
    assert!(unreviewed(&gw, &low));
    let mut sh = ShellClient::open(&gw, "local").await;
    sh.line(&low).await;
    sh.wait_for_after("sort: open failed", "bot@local:~$").await;
    let _ = sh.quit().await;
    assert!(
        !written.exists(),
        "a later shell's unreviewed line ran unconfined"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreviewed_command_leaves_no_ipc_objects_or_keys_behind() {
    let gw = Gateway::start(mistaken()).await;
    let w = work(&gw);
    // An awk program from a file: its text (and the `system` in it) is not on the line.
    let script = w.join("x.awk");
    std::fs::write(&script, "BEGIN { exit system(\"ipcmk -Q\") }\n").expect("script");
    let cmd = format!("awk -f {}", script.display());
    assert!(
        unreviewed(&gw, &cmd),
        "this test needs awk -f to run without a human"
    );
    let before = std::process::Command::new("ipcs")
        .arg("-q")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0);
    let (code, _, err) = run(&gw, &cmd).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    let after = std::process::Command::new("ipcs")
        .arg("-q")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0);
    assert_eq!(before, after, "a message queue was created");
}
