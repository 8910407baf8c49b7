//! Containment of what the agent runs, end to end with the real `airlock` binary and the real
//! `ssh`: commands on a `local` target run in a sandbox that keeps the gateway's own files
//! (data dir, config, authorized_keys, upstream keys) and processes out of reach; commands that
//! run without a human (low) run with a read-only filesystem; every command runs under one
//! dialect (bash) with a pinned environment; the gated shell forgets state that would change
//! how later lines run; commands die with the gateway; and without Landlock the local target
//! refuses to run anything unless it is explicitly unconfined.
//!
//! Every "attack" here worked before containment. Canaries only ever live in the test's own
//! temporary directories; the tests assert effects (a file that does not appear, a directory
//! that survives, a process still alive), not only exit codes.

mod harness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Options for a gateway nobody reviews on: a command that unexpectedly asks is denied soon.
/// Its classifier makes mistakes on purpose (`MISTAKES`): sed, awk, find, cp, … in writing
/// modes pass as low, so these tests show the kernel holds where the judgement fails.
fn unreviewed() -> Opts {
    Opts {
        timeout: "10s",
        mistaken_classifier: true,
        ..Opts::default()
    }
}

/// What one command did through the gateway.
struct Ran {
    code: i32,
    out: String,
    err: String,
    /// A reviewer was asked (so it did not run on the no-human path).
    asked: bool,
}

impl Ran {
    fn show(&self) -> String {
        format!(
            "exit {} (asked: {})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.asked, self.out, self.err
        )
    }
}

/// A kernel refusal as a program reports it (Landlock answers EACCES; a read-only mount
/// would answer EROFS; a signal across domains EPERM; removing or renaming over a file the
/// sandbox mounted over, EBUSY).
fn kernel_refused(s: &str) -> bool {
    s.contains("Permission denied")
        || s.contains("Read-only file system")
        || s.contains("Operation not permitted")
        || s.contains("Device or resource busy")
}

/// Approve `req` with as many distinct reviewers as it needs.
async fn approve(reviewers: &mut [Reviewer], req: &Value) {
    let id = req["id"].as_str().expect("request id").to_owned();
    let needed = req["approvals_needed"].as_u64().unwrap_or(1) as usize;
    assert!(
        reviewers.len() >= needed,
        "request needs {needed} reviewers, the test has {}: {req}",
        reviewers.len()
    );
    for r in reviewers.iter_mut().take(needed) {
        let ack = r.decide(&id, "approve").await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
}

/// Run `cmd` as the agent on `target`; approve whatever it asks for with `reviewers` (none:
/// nobody answers). With `pty`, the client asks for a terminal (`ssh -tt`) and keeps its stdin
/// open, so a program waiting for keys would wait.
async fn run_on(
    gw: &Gateway,
    target: &str,
    cmd: &str,
    pty: bool,
    reviewers: &mut [Reviewer],
) -> Ran {
    let mut c = gw.ssh_cmd(&gw.agent_key, target);
    if pty {
        c.arg("-tt").stdin(Stdio::piped());
    }
    c.arg("127.0.0.1").arg(cmd);
    let mut child = c.spawn().expect("ssh");
    let stdin = child.stdin.take();
    let done = finish(child);
    tokio::pin!(done);
    let mut asked = false;
    let (code, out, err) = loop {
        if reviewers.is_empty() {
            break (&mut done).await;
        }
        tokio::select! {
            r = &mut done => break r,
            req = reviewers[0].next_of("request") => {
                assert_eq!(req["command"], cmd, "an unexpected request: {req}");
                approve(reviewers, &req).await;
                asked = true;
            }
        }
    };
    drop(stdin);
    let asked =
        asked || err.contains("waiting for approval") || out.contains("waiting for approval");
    Ran {
        code,
        out,
        err,
        asked,
    }
}

/// Whether the gateway would run `cmd` for the agent on `target` at once, without a human.
fn runs_unasked(gw: &Gateway, target: &str, cmd: &str) -> bool {
    let out = gw.cli(&[
        "policy", "check", "--agent", "bot", "--target", target, "--", cmd,
    ]);
    String::from_utf8_lossy(&out.stdout).starts_with("allow")
}

fn whitelist(gw: &Gateway, target: &str, cmd: &str) {
    ok(&gw.cli(&[
        "whitelist",
        "add",
        "--agent",
        "bot",
        "--target",
        target,
        "--",
        cmd,
    ]));
}

fn ledger(gw: &Gateway) -> String {
    String::from_utf8_lossy(&gw.cli(&["ledger", "export"]).stdout).into_owned()
}

fn work(gw: &Gateway) -> PathBuf {
    let w = gw.path("work");
    std::fs::create_dir_all(&w).expect("work dir");
    w
}

/// A git repository with one commit whose subject is `subject`.
fn git_repo(dir: &Path, subject: &str) {
    let st = std::process::Command::new("git")
        .args(["init", "-q"])
        .arg(dir)
        .status()
        .expect("git init");
    assert!(st.success());
    let st = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=containment",
            "-c",
            "user.email=containment@example.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            subject,
        ])
        .status()
        .expect("git commit");
    assert!(st.success());
}

type Intact = Box<dyn Fn() -> bool>;

/// Writes a command might smuggle past "low": each attempt and a check that it changed
/// nothing. The fixture lives in `w` (created here).
fn write_attempts(w: &Path) -> Vec<(String, Intact)> {
    std::fs::create_dir_all(w.join("victim/sub")).expect("victim");
    std::fs::write(w.join("victim/sub/file"), "keep\n").expect("victim file");
    std::fs::create_dir_all(w.join("empty-dir")).expect("empty dir");
    for f in ["keep-sed", "keep-truncate", "keep-rm", "keep-mv"] {
        std::fs::write(w.join(f), "original\n").expect("fixture");
    }
    let d = w.display().to_string();
    let absent = |name: &str| -> Intact {
        let p = w.join(name);
        Box::new(move || p.symlink_metadata().is_err())
    };
    let present = |name: &str| -> Intact {
        let p = w.join(name);
        Box::new(move || p.exists())
    };
    let unchanged = |name: &str| -> Intact {
        let p = w.join(name);
        Box::new(move || std::fs::read_to_string(&p).is_ok_and(|s| s == "original\n"))
    };
    let no_prefix = |prefix: &'static str| -> Intact {
        let w = w.to_path_buf();
        Box::new(move || {
            !std::fs::read_dir(&w)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
        })
    };
    vec![
        (
            format!("sed -n '1e touch {d}/sed-e' /etc/hostname"),
            absent("sed-e"),
        ),
        (
            format!("awk 'BEGIN{{system(\"touch {d}/awk-system\")}}'"),
            absent("awk-system"),
        ),
        (
            format!("sed -n 'w {d}/sed-w' /etc/hostname"),
            absent("sed-w"),
        ),
        (
            format!("find {d}/victim -delete"),
            present("victim/sub/file"),
        ),
        (
            format!("env -S 'cp /etc/hostname {d}/env-s'"),
            absent("env-s"),
        ),
        (
            format!("sort -o {d}/sort-o /etc/hostname"),
            absent("sort-o"),
        ),
        (
            format!("find {d} -maxdepth 0 -fprint {d}/find-fprint"),
            absent("find-fprint"),
        ),
        (format!("mktemp {d}/mktemp.XXXXXX"), no_prefix("mktemp.")),
        (format!("git init -q {d}/git-init"), absent("git-init")),
        (format!("tee {d}/tee"), absent("tee")),
        (format!("cp /etc/hostname {d}/cp"), absent("cp")),
        (format!("ln -s /etc/hostname {d}/ln"), absent("ln")),
        (format!("mkdir {d}/mkdir"), absent("mkdir")),
        (format!("echo x > {d}/redirect"), absent("redirect")),
        (
            format!("perl -e 'open(F, \">{d}/perl\") or die \"$!\"'"),
            absent("perl"),
        ),
        (
            format!("python3 -c 'open(\"{d}/python\", \"w\")'"),
            absent("python"),
        ),
        (
            format!("dd if=/etc/hostname of={d}/dd status=none"),
            absent("dd"),
        ),
        (
            format!("split -l 1 /etc/hostname {d}/split-"),
            no_prefix("split-"),
        ),
        (
            format!("tar -cf {d}/tar.tar -C /etc hostname"),
            absent("tar.tar"),
        ),
        (
            format!("install -m 644 /etc/hostname {d}/install"),
            absent("install"),
        ),
        (
            format!("truncate -s 0 {d}/keep-truncate"),
            unchanged("keep-truncate"),
        ),
        (
            format!("sed -i s/original/changed/ {d}/keep-sed"),
            unchanged("keep-sed"),
        ),
        (format!("rm {d}/keep-rm"), unchanged("keep-rm")),
        (format!("mv {d}/keep-mv {d}/moved"), unchanged("keep-mv")),
        (format!("rmdir {d}/empty-dir"), present("empty-dir")),
    ]
}

/// Run every attempt the gateway would run without a human on `target`; each must leave
/// the filesystem as it was and say why (a kernel permission error). Returns the commands
/// that ran; fails if none did (the test would prove nothing).
async fn low_writes_are_refused(gw: &Gateway, target: &str, w: &Path) -> Vec<String> {
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    let mut problems = Vec::new();
    for (cmd, intact) in write_attempts(w) {
        if !runs_unasked(gw, target, &cmd) {
            skipped.push(cmd);
            continue;
        }
        let r = run_on(gw, target, &cmd, false, &mut []).await;
        if r.asked {
            problems.push(format!(
                "{cmd}: `policy check` said allow, but it asked\n{}",
                r.show()
            ));
        } else if !intact() {
            problems.push(format!(
                "{cmd}: a low command CHANGED the filesystem\n{}",
                r.show()
            ));
        } else if !kernel_refused(&r.err) {
            problems.push(format!(
                "{cmd}: no kernel permission error reported\n{}",
                r.show()
            ));
        }
        ran.push(cmd);
    }
    assert!(
        problems.is_empty(),
        "on {target}:\n{}\n(ran unasked: {ran:#?})",
        problems.join("\n\n")
    );
    assert!(
        !ran.is_empty(),
        "none of the write attempts is low on {target}, so nothing shows low is enforced; \
         all needed a human: {skipped:#?}"
    );
    eprintln!("on {target}, ran unasked and refused by the kernel: {ran:#?}");
    ran
}

/// `env` output as a map (multi-line values are cut at the first line; enough here).
fn env_map(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

const EDITORS: [&str; 4] = ["EDITOR", "VISUAL", "GIT_EDITOR", "SUDO_EDITOR"];

/// The pinned variables are there with their values; returns the editor variables.
fn assert_pinned(where_: &str, env_out: &str) -> HashMap<String, String> {
    let vars = env_map(env_out);
    for (k, want) in [
        ("LESSSECURE", "1"),
        ("SYSTEMD_PAGERSECURE", "1"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ] {
        assert_eq!(
            vars.get(k).map(String::as_str),
            Some(want),
            "{k} on {where_}; env:\n{env_out}"
        );
    }
    for k in ["PAGER", "GIT_PAGER", "MANPAGER"] {
        let v = vars.get(k).map(String::as_str).unwrap_or("");
        assert!(
            v == "cat" || v.ends_with("/cat"),
            "{k} on {where_} is {v:?}, not cat; env:\n{env_out}"
        );
    }
    let mut editors = HashMap::new();
    for k in EDITORS {
        let v = vars.get(k).cloned().unwrap_or_default();
        assert!(!v.is_empty(), "{k} is not set on {where_}; env:\n{env_out}");
        editors.insert(k.to_owned(), v);
    }
    editors
}

/// Each editor value refuses: run as an editor on a new file, it fails and creates nothing.
fn assert_editors_refuse(editors: &HashMap<String, String>, w: &Path) {
    for (k, v) in editors {
        let file = w.join(format!("edited-by-{k}"));
        let mut child = std::process::Command::new("bash")
            .args(["--noprofile", "--norc", "-c", &format!("{v} \"$1\""), "_"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the editor stub");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{k}={v:?} waited for input like a real editor");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success(), "{k}={v:?} succeeded as an editor");
        assert!(!file.exists(), "{k}={v:?} created the file it was given");
    }
}

/// Processes whose argv is exactly `sleep TOKEN`.
fn sleepers(token: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        if args.len() == 2 && args[0].ends_with(b"sleep") && args[1] == token.as_bytes() {
            found.push(pid);
        }
    }
    found
}

fn kill_pids(pids: &[i32]) {
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

// --- the gated shell ---

const PASTE_ON: &[u8] = b"\x1b[?2004h";
const PASTE_OFF: &[u8] = b"\x1b[?2004l";

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn prompt_showing(b: &[u8]) -> bool {
    let on = last(b, PASTE_ON);
    on.is_some() && on > last(b, PASTE_OFF)
}

/// Wait (bounded) for a prompt newer than the `before`-th, shown after byte `pos`.
async fn new_prompt(sh: &ShellClient, before: usize, pos: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let b = sh.bytes();
        if count(&b, PASTE_ON) > before
            && prompt_showing(&b)
            && b.len() > pos
            && last(&b[pos..], b"bot@").is_some()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no new prompt; transcript:\n{}",
            sh.transcript()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Type `text` at the prompt, approve whatever it asks for, and wait for the next prompt.
async fn shell_line(sh: &mut ShellClient, reviewers: &mut [Reviewer], text: &str) {
    let deadline = Instant::now() + WAIT;
    while !prompt_showing(&sh.bytes()) {
        assert!(
            Instant::now() < deadline,
            "no prompt; transcript:\n{}",
            sh.transcript()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = count(&sh.bytes(), PASTE_ON);
    sh.line(text).await;
    let pos = sh.bytes().len();
    loop {
        tokio::select! {
            _ = new_prompt(sh, before, pos) => return,
            req = reviewers[0].next_of("request") => {
                assert_eq!(req["command"], text, "an unexpected request: {req}");
                approve(reviewers, &req).await;
            }
        }
    }
}

/// What the shell printed since byte `from`.
fn since(sh: &ShellClient, from: usize) -> String {
    let b = sh.bytes();
    String::from_utf8_lossy(&b[from.min(b.len())..]).into_owned()
}

// ---------------------------------------------------------------------------------------------
// 2. "Low" is enforced: no human, no writes.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_low_command_cannot_write_even_when_it_smuggles_an_exec() {
    let gw = Gateway::start(unreviewed()).await;
    let w = work(&gw);
    low_writes_are_refused(&gw, "local", &w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_low_command_cannot_change_file_modes_or_times() {
    let gw = Gateway::start(unreviewed()).await;
    let w = work(&gw);
    let mode_file = w.join("modefile");
    let time_file = w.join("timefile");
    std::fs::write(&mode_file, "m\n").expect("mode file");
    std::fs::write(&time_file, "t\n").expect("time file");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::set_permissions(&mode_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let st = std::process::Command::new("touch")
        .args(["-d", "@1000000000"])
        .arg(&time_file)
        .status()
        .expect("touch -d");
    assert!(st.success());
    let (m, t) = (mode_file.display(), time_file.display());
    let attempts = [
        format!("chmod 600 {m}"),
        format!("sed -n '1e chmod 600 {m}' /etc/hostname"),
        format!("awk 'BEGIN{{system(\"chmod 600 {m}\")}}'"),
        format!("env -S 'chmod 600 {m}'"),
        format!("touch -d @0 {t}"),
        format!("touch {t}"),
        format!("sed -n '1e touch -d @0 {t}' /etc/hostname"),
        format!("awk 'BEGIN{{system(\"touch -d @0 {t}\")}}'"),
    ];
    let intact = || {
        let mode = std::fs::metadata(&mode_file).expect("mode file").mode() & 0o777;
        let mtime = std::fs::metadata(&time_file).expect("time file").mtime();
        (mode, mtime)
    };
    let mut ran = Vec::new();
    let mut problems = Vec::new();
    for cmd in attempts {
        if !runs_unasked(&gw, "local", &cmd) {
            continue;
        }
        let before = intact();
        let r = run_on(&gw, "local", &cmd, false, &mut []).await;
        assert!(!r.asked, "{cmd}: {}", r.show());
        let after = intact();
        if after != before || after != (0o644, 1_000_000_000) {
            problems.push(format!(
                "{cmd}: mode {:o} -> {:o}, mtime {} -> {}\n{}",
                before.0,
                after.0,
                before.1,
                after.1,
                r.show()
            ));
            // Put things back for the next attempt.
            std::fs::set_permissions(&mode_file, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            let _ = std::process::Command::new("touch")
                .args(["-d", "@1000000000"])
                .arg(&time_file)
                .status();
        }
        ran.push(cmd);
    }
    assert!(
        problems.is_empty(),
        "low commands changed file metadata (the filesystem is not read-only):\n{}",
        problems.join("\n\n")
    );
    if ran.is_empty() {
        eprintln!("skipped: no mode/time change attempt is low here");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_low_command_writes_only_to_dev_null_and_its_own_scratch_tmpdir() {
    let gw = Gateway::start(unreviewed()).await;
    let w = work(&gw);

    // /dev/null takes writes.
    let r = run_on(
        &gw,
        "local",
        "echo gone >/dev/null && echo devnull-ok",
        false,
        &mut [],
    )
    .await;
    assert!(!r.asked, "{}", r.show());
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "devnull-ok\n"),
        "{}",
        r.show()
    );

    // $TMPDIR is a scratch directory of the session, removed when it ends; a new one each time.
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let r = run_on(&gw, "local", "printenv TMPDIR", false, &mut []).await;
        assert!(!r.asked, "{}", r.show());
        let t = r.out.trim().to_owned();
        assert!(
            r.code == 0 && t.starts_with('/'),
            "no scratch TMPDIR: {}",
            r.show()
        );
        assert!(
            !Path::new(&t).starts_with(&w) && !Path::new(&t).starts_with(gw.path("data")),
            "{t}"
        );
        eventually("the scratch dir is removed after the command", || {
            !Path::new(&t).exists()
        })
        .await;
        dirs.push(t);
    }
    assert_ne!(dirs[0], dirs[1], "each session gets its own scratch dir");

    // A low command can write there (and only there).
    let mut wrote = false;
    for cmd in [
        "printenv TMPDIR; mktemp",
        "printenv TMPDIR; mktemp -d",
        "printenv TMPDIR && sort -o \"$TMPDIR/sorted\" /etc/hostname && echo \"$TMPDIR/sorted\"",
    ] {
        if !runs_unasked(&gw, "local", cmd) {
            continue;
        }
        let r = run_on(&gw, "local", cmd, false, &mut []).await;
        assert!(!r.asked, "{}", r.show());
        assert_eq!(r.code, 0, "{cmd}: writing to $TMPDIR failed: {}", r.show());
        let lines: Vec<&str> = r.out.lines().collect();
        assert_eq!(lines.len(), 2, "{}", r.show());
        let (t, made) = (lines[0].to_owned(), lines[1].to_owned());
        assert!(
            made.starts_with(&format!("{t}/")),
            "{cmd} wrote outside the scratch dir: {}",
            r.show()
        );
        eventually("what it made is gone with the scratch dir", || {
            !Path::new(&made).exists() && !Path::new(&t).exists()
        })
        .await;
        wrote = true;
        break;
    }
    if !wrote {
        eprintln!("skipped the $TMPDIR write: no candidate command is low here");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_commands_can_write_and_a_whitelisted_medium_runs_as_medium() {
    let gw = Gateway::start(Opts::default()).await;
    let w = work(&gw);
    let alice = gw.reviewer("alice").await;
    let bob = gw.reviewer("bob").await;
    let mut reviewers = [alice, bob];

    // Medium, one approval: it writes.
    let approved = w.join("approved");
    let r = run_on(
        &gw,
        "local",
        &format!("touch {}", approved.display()),
        false,
        &mut reviewers,
    )
    .await;
    assert!(r.asked, "touch is medium: {}", r.show());
    assert_eq!(r.code, 0, "{}", r.show());
    assert!(approved.exists(), "an approved medium command can write");

    // High, two approvals: it deletes.
    std::fs::create_dir_all(w.join("victim/sub")).expect("victim");
    let r = run_on(
        &gw,
        "local",
        &format!("rm -rf {}/victim", w.display()),
        false,
        &mut reviewers,
    )
    .await;
    assert!(r.asked, "{}", r.show());
    assert_eq!(r.code, 0, "{}", r.show());
    assert!(
        !w.join("victim").exists(),
        "an approved high command can delete"
    );

    // A medium command whitelisted: no human, but it still runs as medium (it can write).
    let cmd = format!("touch {}/whitelisted-medium", w.display());
    assert!(
        !runs_unasked(&gw, "local", &cmd),
        "the case needs a medium command"
    );
    whitelist(&gw, "local", &cmd);
    let r = run_on(&gw, "local", &cmd, false, &mut []).await;
    assert!(!r.asked, "{}", r.show());
    assert_eq!(r.code, 0, "{}", r.show());
    assert!(
        w.join("whitelisted-medium").exists(),
        "a whitelisted medium command writes like an approved one"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. The gateway's own files and processes are out of reach.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateways_secrets_cannot_be_read_even_by_a_whitelisted_command() {
    // authorized_keys and an upstream key outside the data dir, where an operator may put them.
    let secrets = tempfile::tempdir().expect("tempdir");
    let spare = secrets.path().join("spare");
    keygen(&spare, "spare");
    let spare_pub = std::fs::read_to_string(secrets.path().join("spare.pub")).expect("pub");
    let spare_b64 = spare_pub.split_whitespace().nth(1).expect("b64").to_owned();
    let authorized = secrets.path().join("authorized_keys");
    std::fs::write(&authorized, format!("ssh-ed25519 {spare_b64} spare\n")).expect("keys");
    let upstream_key = secrets.path().join("upstream_key");
    keygen(&upstream_key, "airlock-upstream");
    let host_key = spare_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let gw = Gateway::start(Opts {
        ssh_extra: format!("authorized_keys = \"{}\"", authorized.display()),
        extra: format!(
            "[[target]]\nname = \"vault\"\nkind = \"ssh\"\naddress = \"127.0.0.1:9\"\n\
             user = \"root\"\nkey = \"{}\"\nhost_key = \"{host_key}\"\nconnect_timeout = \"1s\"\n",
            upstream_key.display()
        ),
        ..Opts::default()
    })
    .await;
    let alice = gw.reviewer("alice").await;
    let bob = gw.reviewer("bob").await;
    let mut reviewers = [alice, bob];

    // A recording to steal.
    let (code, _, _) = gw.exec("echo recorded-secret-output").await;
    assert_eq!(code, 0);
    eventually("the recording holds the output", || {
        gw.recordings()
            .iter()
            .any(|p| std::fs::read_to_string(p).is_ok_and(|s| s.contains("recorded-secret-output")))
    })
    .await;
    let recording = gw.recordings()[0].clone();

    let data = gw.path("data");
    let ledger_key = data.join("ledger_ed25519_key");
    let host_key_file = data.join("host_ed25519_key");
    let db = data.join("airlock.db");
    for f in [&ledger_key, &host_key_file, &db] {
        assert!(
            f.exists(),
            "{} is missing; data dir: {:?}",
            f.display(),
            std::fs::read_dir(&data)
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
    }
    let ledger_secret = std::fs::read_to_string(&ledger_key)
        .expect("ledger key")
        .trim()
        .to_owned();
    assert!(ledger_secret.len() >= 16, "{ledger_secret:?}");

    // Whitelisting does not help: the refusal is the kernel's, not the classifier's.
    let cmd = format!("cat {}", ledger_key.display());
    whitelist(&gw, "local", &cmd);
    let r = run_on(&gw, "local", &cmd, false, &mut []).await;
    assert!(!r.asked, "{}", r.show());
    assert!(
        !r.out.contains(&ledger_secret),
        "a whitelisted command read the ledger key: {}",
        r.show()
    );
    assert!(r.err.contains("Permission denied"), "{}", r.show());

    // Approved (so run with write access) reads of everything else the gateway keeps.
    let cases: Vec<(String, String)> = vec![
        (
            format!("cat {}", host_key_file.display()),
            "PRIVATE KEY".into(),
        ),
        (
            format!("head -c 64 {}", db.display()),
            "SQLite format".into(),
        ),
        (format!("cat {}", gw.config.display()), "[[agent]]".into()),
        (format!("ls {}", data.display()), "airlock.db".into()),
        (format!("cat {}", authorized.display()), spare_b64.clone()),
        (
            format!("cat {}", upstream_key.display()),
            "PRIVATE KEY".into(),
        ),
        (
            format!("cat {}", recording.display()),
            "recorded-secret-output".into(),
        ),
    ];
    for (cmd, secret) in cases {
        let r = run_on(&gw, "local", &cmd, false, &mut reviewers).await;
        assert!(
            !r.out.contains(&secret),
            "{cmd} read a secret of the gateway: {}",
            r.show()
        );
        assert!(r.err.contains("Permission denied"), "{cmd}: {}", r.show());
    }
}

/// Covers go by path. An approved command that renames a directory above one of the
/// gateway's files (here the host key's) would leave later commands nothing to cover at the
/// old path, or a decoy, and the file open at the new one: every later command is refused
/// instead (a red team read the keys and the database this way).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_the_gateways_files_refuses_later_commands_instead_of_uncovering_them() {
    let root = tempfile::tempdir().expect("tempdir");
    let keys = root.path().join("keys");
    std::fs::create_dir_all(&keys).expect("keys dir");
    let gw = Gateway::start(Opts {
        ssh_extra: format!(
            "host_key = {:?}",
            keys.join("host_ed25519_key").display().to_string()
        ),
        ..Opts::default()
    })
    .await;
    assert!(
        keys.join("host_ed25519_key").exists(),
        "the host key is made"
    );
    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];
    // A gated shell opened before the move starts its lines through the guard, which checks
    // the same anchors.
    let mut sh = ShellClient::open(&gw, "local").await;
    shell_line(&mut sh, &mut reviewers, "echo shell-ready").await;
    let moved = root.path().join("keys-moved");
    // Moved away, and something else put at the old path (which a check by path alone
    // would take for the key).
    let mv = format!(
        "mv {k} {m} && mkdir {k} && echo decoy > {k}/host_ed25519_key",
        k = keys.display(),
        m = moved.display()
    );
    let r = run_on(&gw, "local", &mv, false, &mut reviewers).await;
    assert!(r.asked, "{}", r.show());
    assert!(
        moved.join("host_ed25519_key").exists(),
        "the approved move ran: {}",
        r.show()
    );
    let cat = format!("cat {}/host_ed25519_key", moved.display());
    for _ in 0..2 {
        let r = run_on(&gw, "local", &cat, false, &mut reviewers).await;
        assert!(
            !r.out.contains("PRIVATE KEY"),
            "the moved key was read: {}",
            r.show()
        );
        assert_ne!(r.code, 0, "{}", r.show());
    }
    let r = run_on(&gw, "local", "echo still-running", false, &mut []).await;
    assert!(
        r.err
            .contains("the gateway's own files were moved or removed"),
        "{}",
        r.show()
    );
    let from = sh.bytes().len();
    shell_line(&mut sh, &mut reviewers, &cat).await;
    let shown = since(&sh, from);
    // (The shell's own covers moved with the directory in its namespace.)
    assert!(
        !shown.contains("PRIVATE KEY"),
        "the shell read the moved key: {shown}"
    );
}

/// Run a command on `local`, approved if it asks.
async fn attempt(gw: &Gateway, reviewers: &mut [Reviewer], cmd: String) -> Ran {
    run_on(gw, "local", &cmd, false, reviewers).await
}

/// The command said why it failed: the kernel refused it.
fn assert_refused(r: &Ran) {
    assert!(kernel_refused(&r.err), "no permission error: {}", r.show());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_commands_cannot_modify_remove_or_replace_the_gateways_files() {
    let gw = Gateway::start(Opts::default()).await;
    let w = work(&gw);
    let alice = gw.reviewer("alice").await;
    let bob = gw.reviewer("bob").await;
    let mut reviewers = [alice, bob];
    let data = gw.path("data");
    let ledger_key = data.join("ledger_ed25519_key");
    let db = data.join("airlock.db");
    let key_before = std::fs::read(&ledger_key).expect("ledger key");
    let config_before = std::fs::read(&gw.config).expect("config");
    std::fs::write(w.join("fake.toml"), "data_dir = \"elsewhere\"\n").expect("fake");

    let r = attempt(
        &gw,
        &mut reviewers,
        format!("touch {}/planted", data.display()),
    )
    .await;
    assert!(!data.join("planted").exists(), "{}", r.show());
    assert_refused(&r);

    let r = attempt(
        &gw,
        &mut reviewers,
        format!("cp /etc/hostname {}", ledger_key.display()),
    )
    .await;
    assert_eq!(
        std::fs::read(&ledger_key).ok(),
        Some(key_before.clone()),
        "{}",
        r.show()
    );
    assert_refused(&r);

    // Metadata is data too: a world-readable key or config is a leaked one.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o7777)
            .ok()
    };
    let (key_mode, config_mode) = (mode(&ledger_key), mode(&gw.config));
    let r = attempt(
        &gw,
        &mut reviewers,
        format!("chmod 666 {} {}", ledger_key.display(), gw.config.display()),
    )
    .await;
    assert_eq!(
        (mode(&ledger_key), mode(&gw.config)),
        (key_mode, config_mode),
        "an approved command changed the modes of the gateway's files: {}",
        r.show()
    );
    assert_refused(&r);

    let r = attempt(
        &gw,
        &mut reviewers,
        format!("rm -f {}", gw.config.display()),
    )
    .await;
    assert_eq!(
        std::fs::read(&gw.config).ok(),
        Some(config_before.clone()),
        "{}",
        r.show()
    );
    assert_refused(&r);

    let r = attempt(
        &gw,
        &mut reviewers,
        format!("mv -f {}/fake.toml {}", w.display(), gw.config.display()),
    )
    .await;
    assert_eq!(
        std::fs::read(&gw.config).ok(),
        Some(config_before.clone()),
        "the config was replaced: {}",
        r.show()
    );
    assert_refused(&r);

    let r = attempt(
        &gw,
        &mut reviewers,
        format!("mv {} {}/stolen-data", data.display(), w.display()),
    )
    .await;
    assert!(db.exists() && ledger_key.exists(), "{}", r.show());
    assert!(
        !w.join("stolen-data/ledger_ed25519_key").exists(),
        "{}",
        r.show()
    );
    assert_refused(&r);

    let r = attempt(&gw, &mut reviewers, format!("rm -rf {}", data.display())).await;
    assert!(
        db.exists() && ledger_key.exists() && data.join("host_ed25519_key").exists(),
        "an approved high command removed the gateway's data: {}",
        r.show()
    );
    assert_eq!(std::fs::read(&ledger_key).ok(), Some(key_before));
    assert_refused(&r);

    // And the gateway is none the worse.
    let (code, out, err) = gw.exec("echo still-serving").await;
    assert_eq!((code, out.as_str()), (0, "still-serving\n"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_cannot_mint_a_reviewer_token() {
    let gw = Gateway::start(Opts::default()).await;
    let alice = gw.reviewer("alice").await;
    let bob = gw.reviewer("bob").await;
    let mut reviewers = [alice, bob];
    let cmd = format!(
        "{} --config {} reviewer add mallory",
        BIN,
        gw.config.display()
    );
    let r = run_on(&gw, "local", &cmd, false, &mut reviewers).await;
    assert!(
        !r.out.contains("alr_") && !r.err.contains("alr_"),
        "a token was minted: {}",
        r.show()
    );
    assert_ne!(r.code, 0, "{}", r.show());
    assert!(r.err.contains("ermission denied"), "{}", r.show());
    let list = ok(&gw.cli(&["reviewer", "list"]));
    assert!(list.contains("alice"), "{list}");
    assert!(
        !list.contains("mallory"),
        "a command made itself a reviewer: {list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_cannot_signal_the_gateway_or_processes_outside_its_session() {
    let gw = Gateway::start(Opts::default()).await;
    let alice = gw.reviewer("alice").await;
    let bob = gw.reviewer("bob").await;
    let mut reviewers = [alice, bob];

    // `top`-style: kill a process the test started itself, outside the gateway.
    let mut outsider = std::process::Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep");
    let pid = outsider.id();
    let r = run_on(
        &gw,
        "local",
        &format!("kill -9 {pid}"),
        false,
        &mut reviewers,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alive = outsider.try_wait().expect("try_wait").is_none();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(
        alive,
        "a command killed a process outside its session: {}",
        r.show()
    );
    assert!(
        kernel_refused(&r.err) || r.err.contains("No such process"),
        "{}",
        r.show()
    );

    // The gateway itself.
    let gw_pid = gw.pid().expect("gateway pid");
    let r = run_on(
        &gw,
        "local",
        &format!("kill -9 {gw_pid}"),
        false,
        &mut reviewers,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, out, err) = gw.exec("echo still-serving").await;
    assert_eq!(
        (code, out.as_str()),
        (0, "still-serving\n"),
        "the gateway died: {err}\nthe kill: {}",
        r.show()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_cannot_read_the_gateways_environment_through_proc() {
    let secret = format!("gateway-only-{}", std::process::id());
    let gw = Gateway::start(Opts {
        env: vec![("AIRLOCK_TEST_SECRET".into(), secret.clone())],
        ..Opts::default()
    })
    .await;
    let alice = gw.reviewer("alice").await;
    let bob = gw.reviewer("bob").await;
    let mut reviewers = [alice, bob];
    let gw_pid = gw.pid().expect("pid");
    let environ = format!("/proc/{gw_pid}/environ");
    assert!(
        std::fs::read(&environ).is_ok_and(|e| String::from_utf8_lossy(&e).contains(&secret)),
        "the test's premise: the gateway's environment holds the secret"
    );
    let r = run_on(
        &gw,
        "local",
        &format!("tr '\\0' '\\n' < {environ}"),
        false,
        &mut reviewers,
    )
    .await;
    assert!(
        !r.out.contains(&secret),
        "a command read the gateway's environment: {}",
        r.show()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_run_with_no_new_privileges() {
    let gw = Gateway::start(Opts::default()).await;
    let w = work(&gw);
    let mut reviewers = [gw.reviewer("alice").await];
    let r = run_on(
        &gw,
        "local",
        "grep NoNewPrivs /proc/self/status",
        false,
        &mut [],
    )
    .await;
    assert!(r.out.contains("NoNewPrivs:\t1"), "low: {}", r.show());
    let r = run_on(
        &gw,
        "local",
        &format!(
            "grep NoNewPrivs /proc/self/status && touch {}/nnp",
            w.display()
        ),
        false,
        &mut reviewers,
    )
    .await;
    assert!(r.asked, "{}", r.show());
    assert!(r.out.contains("NoNewPrivs:\t1"), "approved: {}", r.show());
}

// ---------------------------------------------------------------------------------------------
// 3–4. One dialect, a pinned environment.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_exec_runs_under_bash_not_sh() {
    let gw = Gateway::start(unreviewed()).await;
    let w = work(&gw);

    let r = run_on(
        &gw,
        "local",
        "echo $[6*7] $'\\x41' $((2**10))",
        false,
        &mut [],
    )
    .await;
    assert_eq!(r.out, "42 A 1024\n", "{}", r.show());
    let r = run_on(
        &gw,
        "local",
        "((1)) && [[ -n x ]] && echo bash-syntax",
        false,
        &mut [],
    )
    .await;
    assert_eq!(r.out, "bash-syntax\n", "{}", r.show());
    // `&>` is bash's "both streams": under sh it is `&` (background) and a redirection.
    let r = run_on(
        &gw,
        "local",
        "echo visible-only-under-sh &>/dev/null",
        false,
        &mut [],
    )
    .await;
    assert!(!r.out.contains("visible-only-under-sh"), "{}", r.show());
    std::fs::create_dir_all(w.join("d/sub")).expect("dir");
    let r = run_on(
        &gw,
        "local",
        &format!("echo &>/dev/null rm -rf {}/d", w.display()),
        false,
        &mut [],
    )
    .await;
    assert!(!r.asked, "echo is low: {}", r.show());
    assert!(
        w.join("d/sub").exists(),
        "what bash parses as an echo ran as rm under sh: {}",
        r.show()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_get_the_pinned_environment_and_nothing_of_the_gateways() {
    let scripts = tempfile::tempdir().expect("tempdir");
    let bash_env = scripts.path().join("bash_env.sh");
    std::fs::write(&bash_env, "echo bash-env-was-sourced\n").expect("BASH_ENV file");
    let secret = format!("gateway-only-{}", std::process::id());
    let gw = Gateway::start(Opts {
        env: vec![
            ("AIRLOCK_TEST_SECRET".into(), secret.clone()),
            ("BASH_ENV".into(), bash_env.display().to_string()),
            ("LESSSECURE".into(), "0".into()),
            ("PAGER".into(), "less".into()),
            ("EDITOR".into(), "vi".into()),
        ],
        ..unreviewed()
    })
    .await;
    let w = work(&gw);
    // (`env` alone is medium: approve it; what it prints is the same at every tier.)
    let mut reviewers = [gw.reviewer("alice").await];
    let r = run_on(&gw, "local", "env", false, &mut reviewers).await;
    assert_eq!(r.code, 0, "{}", r.show());
    assert!(
        !r.out.contains(&secret),
        "the gateway's environment leaked: {}",
        r.show()
    );
    assert!(
        !r.out.contains("bash-env-was-sourced"),
        "BASH_ENV was sourced: {}",
        r.show()
    );
    let vars = env_map(&r.out);
    for k in ["BASH_ENV", "RUST_LOG", "AIRLOCK_TEST_SECRET", "ENV"] {
        assert!(
            !vars.contains_key(k),
            "{k} reached the command: {}",
            r.show()
        );
    }
    let editors = assert_pinned("local", &r.out);
    assert_editors_refuse(&editors, &w);
}

/// `git log` on a terminal with the client's stdin open finishes: a pager like less would wait
/// for keys (and offer `!cmd`); the pinned pager is cat.
async fn git_log_never_waits(gw: &Gateway, target: &str, w: &Path, reviewers: &mut [Reviewer]) {
    let subject = format!("{target}-log-subject");
    let repo = w.join(format!("repo-{target}"));
    git_repo(&repo, &subject);
    let r = run_on(
        gw,
        target,
        &format!("git -C {} log", repo.display()),
        true,
        reviewers,
    )
    .await;
    assert!(r.out.contains(&subject), "{}", r.show());
    assert_eq!(r.code, 0, "{}", r.show());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pagers_never_wait_for_keys_on_a_terminal() {
    let gw = Gateway::start(Opts::default()).await;
    let w = work(&gw);
    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];
    git_log_never_waits(&gw, "local", &w, &mut reviewers).await;
    if Path::new("/usr/share/man/man1/ls.1.gz").exists() {
        let r = run_on(&gw, "local", "man ls", true, &mut reviewers).await;
        assert!(r.out.contains("list directory contents"), "{}", r.show());
    } else {
        eprintln!("skipped the man check: no ls(1) page here");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The gated shell: pinned variables, state reset, low lines read-only.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gated_shell_forgets_hashes_aliases_functions_traps_and_history() {
    let gw = Gateway::start(Opts::default()).await;
    let w = work(&gw);
    let d = w.display().to_string();
    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];
    let mut sh = ShellClient::open(&gw, "local").await;
    shell_line(&mut sh, &mut reviewers, &format!("cd {d}")).await;

    // Each pair: a line that plants something, then an approved (so writable) line that would
    // trigger it; the trigger line's own `touch …-after` proves it ran.
    let pairs = [
        (
            "hash-canary",
            "hash -p /usr/bin/touch ls".to_owned(),
            format!("ls {d}/hash-canary; touch {d}/hash-after"),
            "hash-after",
        ),
        (
            "alias-canary",
            format!("shopt -s expand_aliases; alias ls='touch {d}/alias-canary'"),
            format!("ls {d}; touch {d}/alias-after"),
            "alias-after",
        ),
        (
            "fn-canary",
            format!("ls() {{ touch {d}/fn-canary; }}"),
            format!("ls {d}/fn-canary; touch {d}/fn-after"),
            "fn-after",
        ),
        (
            "fn-kill-canary",
            format!("kill() {{ touch {d}/fn-kill-canary; }}"),
            format!("kill -0 $$; touch {d}/kill-after"),
            "kill-after",
        ),
        (
            "hist-canary",
            format!("history -s 'touch {d}/hist-canary'"),
            format!("fc -s; touch {d}/hist-after"),
            "hist-after",
        ),
    ];
    for (canary, plant, trigger, after) in &pairs {
        // `; touch …` makes the planting line medium: approved, it runs with write access in
        // the session's shell (a low line would run in a throw-away read-only child).
        let plant = format!("{plant}; touch {d}/planted-{canary}");
        shell_line(&mut sh, &mut reviewers, &plant).await;
        assert!(
            w.join(format!("planted-{canary}")).exists(),
            "`{plant}` did not run with write access; transcript:\n{}",
            sh.transcript()
        );
        shell_line(&mut sh, &mut reviewers, trigger).await;
        assert!(
            !w.join(canary).exists(),
            "`{plant}` changed how `{trigger}` ran; transcript:\n{}",
            sh.transcript()
        );
        assert!(
            w.join(after).exists(),
            "`{trigger}` did not run with write access; transcript:\n{}",
            sh.transcript()
        );
    }

    // A trap set by one line does not fire later (here: when the shell exits).
    shell_line(
        &mut sh,
        &mut reviewers,
        &format!("trap 'touch {d}/trap-canary' EXIT; touch {d}/planted-trap"),
    )
    .await;
    assert!(w.join("planted-trap").exists(), "{}", sh.transcript());
    shell_line(&mut sh, &mut reviewers, &format!("touch {d}/trap-after")).await;
    assert!(w.join("trap-after").exists(), "{}", sh.transcript());
    let (_, transcript) = sh.quit().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !w.join("trap-canary").exists(),
        "an EXIT trap from an earlier line fired; transcript:\n{transcript}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pinned_variables_are_readonly_in_the_gated_shell() {
    let gw = Gateway::start(Opts::default()).await;
    let w = work(&gw);
    let d = w.display().to_string();
    let repo = w.join("repo");
    git_repo(&repo, "shell-log-subject");
    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];
    let mut sh = ShellClient::open(&gw, "local").await;

    shell_line(
        &mut sh,
        &mut reviewers,
        &format!(
            "export GIT_PAGER='touch {d}/git-pager-canary' PAGER='touch {d}/pager-canary'; \
             touch {d}/planted-pager"
        ),
    )
    .await;
    let from = sh.bytes().len();
    shell_line(
        &mut sh,
        &mut reviewers,
        &format!("git -C {} log -1; touch {d}/log-after", repo.display()),
    )
    .await;
    let out = since(&sh, from);
    assert!(w.join("log-after").exists(), "the approved line ran: {out}");
    assert!(
        !w.join("git-pager-canary").exists() && !w.join("pager-canary").exists(),
        "a pager set by an earlier line ran: {}",
        sh.transcript()
    );
    assert!(
        out.contains("shell-log-subject"),
        "git log printed through cat: {out}"
    );

    let from = sh.bytes().len();
    shell_line(
        &mut sh,
        &mut reviewers,
        "echo \"pg=<$GIT_PAGER> ls=<$LESSSECURE>\"",
    )
    .await;
    let out = since(&sh, from);
    assert!(
        out.contains("pg=<cat>") || out.contains("/cat> ls"),
        "GIT_PAGER is cat: {out}"
    );
    assert!(out.contains("ls=<1>"), "LESSSECURE is 1: {out}");
    let _ = sh.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_low_line_in_the_gated_shell_is_read_only_and_only_cd_carries_over() {
    let gw = Gateway::start(Opts {
        mistaken_classifier: true,
        ..Opts::default()
    })
    .await;
    let w = work(&gw);
    let d = w.display().to_string();
    std::fs::write(w.join("listed-by-real-ls"), "").expect("marker");
    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];
    let mut sh = ShellClient::open(&gw, "local").await;

    // cd in a low line still moves the shell.
    shell_line(&mut sh, &mut reviewers, &format!("cd {d}")).await;
    sh.wait_for(&format!("bot@local:{d}$")).await;
    let from = sh.bytes().len();
    shell_line(&mut sh, &mut reviewers, "ls").await;
    assert!(
        since(&sh, from).contains("listed-by-real-ls"),
        "{}",
        sh.transcript()
    );

    // A variable set by a low line does not (the line ran in a read-only child).
    shell_line(&mut sh, &mut reviewers, "PROBE=set-by-a-low-line").await;
    let from = sh.bytes().len();
    shell_line(&mut sh, &mut reviewers, "echo \"probe=<$PROBE>\"").await;
    let out = since(&sh, from);
    assert!(
        out.contains("probe=<>"),
        "a low line changed shell state: {out}"
    );

    // A low line that smuggles a write is refused by the kernel.
    let mut tried = false;
    for (cmd, canary) in [
        (
            format!("sed -n '1e touch {d}/shell-sed-e' /etc/hostname"),
            "shell-sed-e",
        ),
        (
            format!("awk 'BEGIN{{system(\"touch {d}/shell-awk\")}}'"),
            "shell-awk",
        ),
        (
            format!("sed -n 'w {d}/shell-sed-w' /etc/hostname"),
            "shell-sed-w",
        ),
        (
            format!("sort -o {d}/shell-sort /etc/hostname"),
            "shell-sort",
        ),
    ] {
        if !runs_unasked(&gw, "local", &cmd) {
            continue;
        }
        let from = sh.bytes().len();
        shell_line(&mut sh, &mut reviewers, &cmd).await;
        let out = since(&sh, from);
        assert!(!w.join(canary).exists(), "a low line wrote: {out}");
        assert!(kernel_refused(&out), "{out}");
        tried = true;
    }
    assert!(
        tried,
        "no smuggled write is low here; nothing shows low lines are read-only"
    );
    let _ = sh.quit().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Commands die with the gateway.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_command_dies_with_a_crashed_gateway() {
    let mut gw = Gateway::start(Opts::default()).await;
    let w = work(&gw);
    let mut alice = gw.reviewer("alice").await;
    let marker = w.join("after-the-crash");
    let child = gw.spawn_exec(&format!("sleep 3; touch {}", marker.display()));
    let req = alice.next_of("request").await;
    let ack = alice
        .decide(req["id"].as_str().expect("id"), "approve")
        .await;
    assert_eq!(ack["result"], "approved", "{ack}");
    eventually("the command started", || {
        ledger(&gw).contains("\"kind\":\"exec.start\"")
    })
    .await;
    gw.crash();
    let (code, _, _) = finish(child).await;
    assert_eq!(code, 255, "the agent's connection went with the gateway");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(
        !marker.exists(),
        "the command outlived the gateway and finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daemon_started_by_a_command_does_not_outlive_a_crash_and_restart() {
    let mut gw = Gateway::start(Opts::default()).await;
    let token = std::process::id() % 1_000_000;
    let (t1, t2) = (format!("61.{token:06}"), format!("62.{token:06}"));
    let cmd = format!("setsid -f sleep {t1}; sleep {t2}");
    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];
    let child = gw.spawn_exec(&cmd);
    let both_running = async {
        let deadline = Instant::now() + WAIT;
        while sleepers(&t1).is_empty() || sleepers(&t2).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the command never started its sleeps"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::pin!(both_running);
    loop {
        tokio::select! {
            _ = &mut both_running => break,
            req = reviewers[0].next_of("request") => approve(&mut reviewers, &req).await,
        }
    }
    gw.crash();
    let _ = finish(child).await;
    gw.spawn();
    let deadline = Instant::now() + WAIT;
    loop {
        let left: Vec<i32> = sleepers(&t1).into_iter().chain(sleepers(&t2)).collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            kill_pids(&left);
            panic!(
                "processes started by a command survived a crash and a restart: {left:?}; log:\n{}",
                gw.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, _) = gw.exec("echo back").await;
    assert_eq!((code, out.as_str()), (0, "back\n"));
}

// ---------------------------------------------------------------------------------------------
// Target keys: user, env, bash; the old `shell` key.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_user_drops_root() {
    let gw = Gateway::start(Opts {
        extra: "[[target]]\nname = \"as-nobody\"\nkind = \"local\"\nuser = \"nobody\"\n".into(),
        more_targets: vec!["as-nobody".into()],
        ..Opts::default()
    })
    .await;
    let w = work(&gw);
    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];
    let r = run_on(&gw, "as-nobody", "id -u", false, &mut reviewers).await;
    assert_eq!((r.code, r.out.as_str()), (0, "65534\n"), "{}", r.show());
    // Approved, but nobody cannot write the test's (root-only) directory.
    let canary = w.join("written-by-nobody");
    let r = run_on(
        &gw,
        "as-nobody",
        &format!("touch {}", canary.display()),
        false,
        &mut reviewers,
    )
    .await;
    assert!(r.asked, "{}", r.show());
    assert!(!canary.exists(), "{}", r.show());
    assert!(r.err.contains("Permission denied"), "{}", r.show());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn target_env_and_bash_keys_apply_and_the_old_shell_key_is_rejected() {
    let gw = Gateway::start(Opts {
        extra: "[[target]]\nname = \"custom\"\nkind = \"local\"\nbash = \"/bin/bash\"\n\
                env = { AIRLOCK_TARGET_VAR = \"from-the-target\" }\n"
            .into(),
        more_targets: vec!["custom".into()],
        ..unreviewed()
    })
    .await;
    let r = run_on(
        &gw,
        "custom",
        "echo \"var=<$AIRLOCK_TARGET_VAR>\"",
        false,
        &mut [],
    )
    .await;
    assert_eq!(r.out, "var=<from-the-target>\n", "{}", r.show());

    let text = std::fs::read_to_string(&gw.config).expect("config");
    let with_shell = text.replacen(
        "kind = \"local\"\n",
        "kind = \"local\"\nshell = \"/bin/sh\"\n",
        1,
    );
    assert_ne!(text, with_shell);
    let file = gw.path("with-shell.toml");
    std::fs::write(&file, with_shell).expect("write");
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .args(["policy", "lint"])
        .current_dir(gw.dir.path())
        .output()
        .expect("lint");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the old shell key is accepted: {said}"
    );
    assert!(said.contains("shell"), "{said}");
}

// ---------------------------------------------------------------------------------------------
// 7. Without Landlock: refuse, unless unconfined.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_landlock_local_commands_are_refused_unless_unconfined() {
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the seccomp filter that hides Landlock is written for x86_64");
        return;
    }
    let gw = Gateway::start(Opts {
        deny_landlock: true,
        extra: "[[target]]\nname = \"loose\"\nkind = \"local\"\nunconfined = true\n".into(),
        more_targets: vec!["loose".into()],
        ..unreviewed()
    })
    .await;
    let w = work(&gw);
    eventually(
        "the gateway says the sandbox is unavailable at start-up",
        || {
            let log = gw.log().to_lowercase();
            (log.contains("sandbox") || log.contains("landlock"))
                && (log.contains("unavailable") || log.contains("not available"))
        },
    )
    .await;

    // A whitelisted medium command (no human needed) and a low one: neither runs.
    let canary = w.join("ran-without-sandbox");
    let cmd = format!("touch {}", canary.display());
    whitelist(&gw, "local", &cmd);
    for cmd in [cmd.as_str(), "echo should-not-run"] {
        let r = run_on(&gw, "local", cmd, false, &mut []).await;
        assert_eq!(r.code, 77, "{cmd}: {}", r.show());
        let lines: Vec<&str> = r.err.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {}", r.show());
        assert!(
            lines[0].starts_with("airlock: denied:") && lines[0].contains("sandbox"),
            "{}",
            r.show()
        );
        assert!(
            lines[0].contains("unavailable") || lines[0].contains("not available"),
            "{}",
            r.show()
        );
        assert!(!r.out.contains("should-not-run"), "{}", r.show());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!canary.exists(), "a command ran without its sandbox");

    // The unconfined target runs, and the log warns about it.
    let loose = w.join("ran-unconfined");
    let cmd = format!("touch {}", loose.display());
    whitelist(&gw, "loose", &cmd);
    let r = run_on(&gw, "loose", &cmd, false, &mut []).await;
    assert_eq!(r.code, 0, "{}", r.show());
    assert!(loose.exists(), "{}", r.show());
    let log = gw.log();
    assert!(
        log.lines()
            .any(|l| (l.contains("WARN") || l.contains("ERROR")) && l.contains("loose")),
        "no warning about the unconfined target; log:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Upstream targets.
// ---------------------------------------------------------------------------------------------

fn no_sshd() -> bool {
    if Sshd::binary().is_none() {
        eprintln!("skipped: no sshd (scripts/test.sh installs openssh-server)");
        return true;
    }
    false
}

/// An upstream target on the test's sshd, not labelled prod (so low stays low).
fn upstream(sshd: &Sshd, name: &str, runner: Option<&str>) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\nkind = \"ssh\"\naddress = \"127.0.0.1:{port}\"\n\
         user = \"{user}\"\nkey = \"{key}\"\nhost_key = \"{host_key}\"\nconnect_timeout = \"3s\"\n{runner}",
        port = sshd.port,
        user = sshd.user,
        key = sshd.client_key.display(),
        host_key = sshd.host_key,
        runner = runner
            .map(|r| format!("runner = \"{r}\"\n"))
            .unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_commands_get_bash_and_the_pinned_environment() {
    if no_sshd() {
        return;
    }
    let sshd = Sshd::start().await;
    let gw = Gateway::start(Opts {
        extra: upstream(&sshd, "web-1", None),
        more_targets: vec!["web-1".into()],
        ..Opts::default()
    })
    .await;
    let w = work(&gw);
    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];

    let r = run_on(&gw, "web-1", "env", false, &mut reviewers).await;
    assert_eq!(r.code, 0, "{}", r.show());
    let editors = assert_pinned("web-1", &r.out);
    assert_editors_refuse(&editors, &w);
    let r = run_on(&gw, "web-1", "echo $[6*7] $'\\x41'", false, &mut reviewers).await;
    assert_eq!(r.out, "42 A\n", "{}", r.show());

    git_log_never_waits(&gw, "web-1", &w, &mut reviewers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_enforces_read_only_low_commands_on_an_upstream() {
    if no_sshd() {
        return;
    }
    let sshd = Sshd::start().await;
    let gw = Gateway::start(Opts {
        extra: upstream(&sshd, "up", Some(BIN)),
        more_targets: vec!["up".into()],
        mistaken_classifier: true,
        ..Opts::default()
    })
    .await;
    let w = work(&gw);
    low_writes_are_refused(&gw, "up", &w.join("low")).await;

    let mut reviewers = [gw.reviewer("alice").await, gw.reviewer("bob").await];
    let approved = w.join("approved-upstream");
    let r = run_on(
        &gw,
        "up",
        &format!("touch {}", approved.display()),
        false,
        &mut reviewers,
    )
    .await;
    assert!(r.asked, "{}", r.show());
    assert_eq!(r.code, 0, "{}", r.show());
    assert!(
        approved.exists(),
        "an approved command writes through the runner"
    );
    let r = run_on(&gw, "up", "env", false, &mut reviewers).await;
    assert_pinned("up (runner)", &r.out);
}

#[tokio::test]
async fn policy_lint_says_low_is_not_enforced_on_an_upstream_without_a_runner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("upstream_key");
    keygen(&key, "airlock-upstream");
    let agent = dir.path().join("agent");
    keygen(&agent, "bot");
    let host_key = std::fs::read_to_string(dir.path().join("agent.pub"))
        .expect("pub")
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let ssh_target = |name: &str, runner: &str| {
        format!(
            "[[target]]\nname = \"{name}\"\nkind = \"ssh\"\naddress = \"127.0.0.1:9\"\nuser = \"root\"\n\
             key = \"{}\"\nhost_key = \"{host_key}\"\n{runner}",
            key.display()
        )
    };
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[[agent]]\nname = \"bot\"\nkeys = [\"{host_key} bot\"]\n\
             targets = [\"local\", \"web-1\", \"web-2\"]\n[[target]]\nname = \"local\"\nkind = \"local\"\n{}{}",
            ssh_target("web-1", ""),
            ssh_target("web-2", &format!("runner = \"{BIN}\"\n"))
        ),
    )
    .expect("config");
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["policy", "lint"])
        .env_remove("AIRLOCK_CONFIG")
        .output()
        .expect("lint");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let notes: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("not enforced"))
        .collect();
    assert!(
        notes.iter().any(|l| l.contains("web-1")),
        "lint does not say low is not enforced on web-1: {said}"
    );
    assert!(
        !notes.iter().any(|l| l.contains("web-2")),
        "web-2 has a runner: {said}"
    );
    assert!(
        !said.contains("unknown field"),
        "the runner key is accepted: {said}"
    );
}
