//! Issue 22, held out: what a script will do. When a command runs a file (`bash x.sh`,
//! `./x.sh`, `. x.sh`, `python3 x.py`, `make`, behind wrappers too) the gateway reads that file
//! from the target itself, judges its content, shows it to reviewers, binds the approval to
//! those bytes and records them in the ledger — on a local target and on an upstream target
//! behind a real OpenSSH server.
//!
//! Written from the issue and its externally visible contract only (not from the
//! implementation). Every destructive command is a canary: it deletes a directory the test made
//! in its own temporary directory.

mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where the test's commands run: a gateway, the target name, and the directory the files live
/// in.
struct Site {
    gw: Gateway,
    target: &'static str,
    /// The files' directory (absolute, canonical).
    base: PathBuf,
    /// Local: the target's `cwd` is `base`, so commands name files relative to it, as an agent
    /// would. Upstream: the login's home is the working directory, so commands name files by
    /// absolute path.
    relative: bool,
    upstream: bool,
    _base: tempfile::TempDir,
    _sshd: Option<Sshd>,
}

impl Site {
    /// A local target whose working directory is a fresh temporary directory.
    async fn local() -> Self {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().canonicalize().expect("canonical tempdir");
        let gw = Gateway::start(Opts {
            extra: format!(
                "[[target]]\nname = \"work\"\nkind = \"local\"\ncwd = {:?}\n",
                dir.display().to_string()
            ),
            more_targets: vec!["work".into()],
            ..Opts::default()
        })
        .await;
        Self {
            gw,
            target: "work",
            base: dir,
            relative: true,
            upstream: false,
            _base: base,
            _sshd: None,
        }
    }

    /// An upstream target (a real sshd on 127.0.0.1); `None` (skipped, said so) without sshd.
    async fn upstream() -> Option<Self> {
        if Sshd::binary().is_none() {
            eprintln!("skipped: no sshd (scripts/test.sh installs openssh-server)");
            return None;
        }
        let sshd = Sshd::start().await;
        // The same labels as the local target's (none that raise scores), so tiers compare.
        let block = sshd
            .target("web", &sshd.host_key)
            .replace("env = \"prod\"", "env = \"dev\"");
        let gw = Gateway::start(Opts {
            extra: block,
            more_targets: vec!["web".into()],
            ..Opts::default()
        })
        .await;
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().canonicalize().expect("canonical tempdir");
        Some(Self {
            gw,
            target: "web",
            base: dir,
            relative: false,
            upstream: true,
            _base: base,
            _sshd: Some(sshd),
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// `name` as the agent's command writes it.
    fn arg(&self, name: &str) -> String {
        if self.relative {
            name.to_owned()
        } else {
            self.file(name).display().to_string()
        }
    }

    /// `name` run directly as a program (`./x.sh` locally).
    fn program(&self, name: &str) -> String {
        if self.relative {
            format!("./{name}")
        } else {
            self.file(name).display().to_string()
        }
    }

    fn spawn(&self, cmd: &str) -> tokio::process::Child {
        let mut c = self.gw.ssh_cmd(&self.gw.agent_key, self.target);
        c.arg("127.0.0.1").arg(cmd);
        c.spawn().expect("ssh")
    }

    async fn reviewers(&self) -> (Reviewer, Reviewer) {
        (
            self.gw.reviewer("alice").await,
            self.gw.reviewer("bob").await,
        )
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A canary directory with a file in it; the "dangerous" commands delete it.
fn victim(site: &Site, name: &str) -> PathBuf {
    let v = site.file(name);
    std::fs::create_dir_all(&v).expect("victim dir");
    write(&v.join("canary"), "keep me\n");
    v
}

fn id(req: &Value) -> String {
    req["id"].as_str().expect("request id").to_owned()
}

/// The next request for exactly `cmd` (others are skipped), bounded.
async fn request_for(r: &mut Reviewer, cmd: &str) -> Value {
    for _ in 0..20 {
        let req = r.next_of("request").await;
        if req["command"] == cmd {
            return req;
        }
    }
    panic!("no request for {cmd:?}");
}

/// The reply (`ack` or `error`) to the last frame sent.
async fn reply(r: &mut Reviewer) -> Value {
    for _ in 0..100 {
        let m = r.next().await;
        if m["type"] == "ack" || m["type"] == "error" {
            return m;
        }
    }
    panic!("no reply");
}

async fn approve_remember(r: &mut Reviewer, id: &str) -> Value {
    r.send(json!({"type": "decide", "id": id, "decision": "approve", "remember": {}}))
        .await;
    reply(r).await
}

fn reason_texts(req: &Value) -> Vec<String> {
    req["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The request's `scripts` entry whose `path` ends with `name`.
fn script<'a>(req: &'a Value, name: &str) -> &'a Value {
    req["scripts"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|s| s["path"].as_str().is_some_and(|p| p.ends_with(name)))
        })
        .unwrap_or_else(|| panic!("no script {name:?} in the request: {req}"))
}

/// Some reason's text starts with `prefix` (`x.sh:1: `) and holds `holds`.
fn assert_reason(req: &Value, prefix: &str, holds: &str) {
    let texts = reason_texts(req);
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with(prefix) && t.contains(holds)),
        "no reason starting {prefix:?} and holding {holds:?}: {texts:?}\n{req}"
    );
}

/// `cmd` runs without any request reaching the reviewer.
async fn runs_unasked(site: &Site, r: &mut Reviewer, cmd: &str) -> (i32, String, String) {
    let child = site.spawn(cmd);
    tokio::select! {
        out = finish(child) => out,
        req = request_for(r, cmd) => panic!("{cmd:?} asked again: {req}"),
    }
}

/// After one approval of a high request the command is still waiting (bounded look).
async fn still_waiting(child: &mut tokio::process::Child) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the command finished after a single approval of a high request"
    );
}

// ---------------------------------------------------------------------------------------------
// Scenarios, each run on a local and an upstream site.
// ---------------------------------------------------------------------------------------------

/// `printf 'rm -rf %s\n' DIR > x.sh` (medium, approved) then `bash x.sh`: high, the request shows
/// the file and `x.sh:1`, one approval is not enough, DIR survives a single approval and a
/// denial, and two approvals run it. Then the ledger and the recording name the script.
async fn write_then_run(site: &Site) {
    let (mut alice, mut bob) = site.reviewers().await;
    let victim = victim(site, "victim");
    let v = victim.display().to_string();
    let x = site.arg("x.sh");

    let write_cmd = format!("printf 'rm -rf %s\\n' {v} > {x}");
    let child = site.spawn(&write_cmd);
    let req = request_for(&mut alice, &write_cmd).await;
    assert_eq!(req["tier"], "medium", "writing the script: {req}");
    let ack = alice.decide(&id(&req), "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, e) = finish(child).await;
    assert_eq!(code, 0, "{e}");
    let body = std::fs::read_to_string(site.file("x.sh")).expect("x.sh written");
    assert_eq!(body, format!("rm -rf {v}\n"));
    let sha = sha256(body.as_bytes());

    let run = format!("bash {x}");
    let mut child = site.spawn(&run);
    let req = request_for(&mut alice, &run).await;
    assert_eq!(
        req["tier"], "high",
        "the script's rm -rf makes it high: {req}"
    );
    assert_eq!(req["approvals_needed"], 2, "{req}");
    let s = script(&req, "x.sh");
    assert_eq!(s["path"], x.as_str(), "{s}");
    assert_eq!(
        s["resolved"],
        site.file("x.sh").display().to_string().as_str(),
        "{s}"
    );
    assert_eq!(s["kind"], "shell", "{s}");
    assert_eq!(s["size"], body.len(), "{s}");
    assert_eq!(s["sha256"], sha.as_str(), "{s}");
    assert_eq!(s["content"], body.as_str(), "{s}");
    assert!(s["problem"].is_null(), "{s}");
    assert_eq!(s["lines"][0]["line"], 1, "{s}");
    assert_eq!(s["lines"][0]["tier"], "high", "{s}");
    assert_reason(&req, &format!("{x}:1: "), "rm -rf");

    // A reviewer who connects now sees the same file in the snapshot.
    let rid = id(&req);
    let carol = site.gw.reviewer("carol").await;
    let snap = carol
        .snapshot
        .iter()
        .find(|r| r["id"] == rid.as_str())
        .unwrap_or_else(|| panic!("request not in the snapshot: {:?}", carol.snapshot));
    let ss = script(snap, "x.sh");
    assert_eq!(ss["sha256"], sha.as_str(), "{ss}");
    assert_eq!(ss["content"], body.as_str(), "{ss}");
    drop(carol);

    // One approval is not enough; a denial then ends it. DIR survives both.
    let ack = alice.decide(&rid, "approve").await;
    assert_eq!(ack["result"], "counted", "{ack}");
    still_waiting(&mut child).await;
    assert!(victim.join("canary").exists(), "ran on one approval");
    let ack = bob.decide(&rid, "deny").await;
    assert_eq!(ack["result"], "denied", "{ack}");
    let (code, _, e) = finish(child).await;
    assert_eq!(code, 77, "{e}");
    assert!(victim.join("canary").exists(), "a denied script ran");

    // The same alice approving twice is still one reviewer.
    let mut child = site.spawn(&run);
    let req = request_for(&mut alice, &run).await;
    let rid = id(&req);
    let ack = alice.decide(&rid, "approve").await;
    assert_eq!(ack["result"], "counted", "{ack}");
    let again = alice.decide(&rid, "approve").await;
    assert_ne!(
        again["result"], "approved",
        "one reviewer approved twice: {again}"
    );
    still_waiting(&mut child).await;
    assert!(victim.join("canary").exists());
    // Two distinct reviewers: it runs.
    let ack = bob.decide(&rid, "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, e) = finish(child).await;
    assert_eq!(code, 0, "{e}");
    assert!(!victim.exists(), "the approved script did not run");

    // The ledger's command.submitted names the script by resolved path and SHA-256.
    let resolved = site.file("x.sh").display().to_string();
    let export = site.gw.cli(&["ledger", "export"]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = String::from_utf8(export.stdout).expect("utf8");
    let submitted: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "command.submitted" && e["payload"]["command"] == run.as_str())
        .collect();
    assert_eq!(submitted.len(), 2, "two submissions of {run:?}:\n{text}");
    for e in &submitted {
        let scripts = e["payload"]["scripts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            scripts
                .iter()
                .any(|s| s["path"] == resolved.as_str() && s["sha256"] == sha.as_str()),
            "command.submitted without {{path: {resolved}, sha256: {sha}}}: {e}"
        );
    }
    // The recording's marker names the script and its hash.
    eventually("a recording names the script and its SHA-256", || {
        site.gw.recordings().iter().any(|p| {
            std::fs::read_to_string(p).is_ok_and(|c| c.contains(&sha) && c.contains("x.sh"))
        })
    })
    .await;
}

/// An approved-and-remembered `sh ok.sh` runs unasked next time; after the file changes it asks
/// again and the request carries the diff; the approved bytes again run unasked.
async fn remember_binds_the_hash(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    let canary = site.file("ok-ran");
    let c = canary.display().to_string();
    let v1 = format!("touch {c}\n");
    write(&site.file("ok.sh"), &v1);
    let cmd = format!("sh {}", site.arg("ok.sh"));

    let child = site.spawn(&cmd);
    let req = request_for(&mut alice, &cmd).await;
    assert_eq!(req["tier"], "medium", "{req}");
    let s = script(&req, "ok.sh");
    assert_eq!(s["sha256"], sha256(v1.as_bytes()).as_str(), "{s}");
    assert_eq!(s["content"], v1.as_str(), "{s}");
    assert!(s["previous"].is_null(), "nothing approved before: {s}");
    let ack = approve_remember(&mut alice, &id(&req)).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["result"], "approved", "{ack}");
    assert!(ack["whitelisted"].is_string(), "{ack}");
    let (code, _, e) = finish(child).await;
    assert_eq!(code, 0, "{e}");
    assert!(canary.exists());
    std::fs::remove_file(&canary).expect("rm canary");

    // Same command, same bytes: runs unasked.
    let (code, _, e) = runs_unasked(site, &mut alice, &cmd).await;
    assert_eq!(code, 0, "{e}");
    assert!(canary.exists(), "the remembered command did not run");
    std::fs::remove_file(&canary).expect("rm canary");

    // The file changes: asked again, with the diff against the approved version.
    let v2 = format!("touch {c}\necho changed-after-approval\n");
    write(&site.file("ok.sh"), &v2);
    let child = site.spawn(&cmd);
    let req = request_for(&mut alice, &cmd).await;
    let s = script(&req, "ok.sh");
    assert_eq!(s["sha256"], sha256(v2.as_bytes()).as_str(), "{s}");
    assert_eq!(
        s["previous"]["sha256"],
        sha256(v1.as_bytes()).as_str(),
        "{s}"
    );
    let diff = s["previous"]["diff"].as_str().unwrap_or_default();
    for needle in ["--- approved", "+++ now", "+echo changed-after-approval"] {
        assert!(diff.contains(needle), "no {needle:?} in the diff:\n{diff}");
    }
    assert!(
        !diff.contains(&format!("-touch {c}")),
        "an unchanged line shown as removed:\n{diff}"
    );
    let ack = alice.decide(&id(&req), "deny").await;
    assert_eq!(ack["result"], "denied", "{ack}");
    let (code, _, e) = finish(child).await;
    assert_eq!(code, 77, "{e}");
    assert!(!canary.exists(), "the changed, denied script ran");

    // Back to the approved bytes: unasked again.
    write(&site.file("ok.sh"), &v1);
    let (code, _, e) = runs_unasked(site, &mut alice, &cmd).await;
    assert_eq!(code, 0, "{e}");
    assert!(canary.exists());
}

/// The file is swapped after reviewers saw it and before the approval: nothing of it runs, and
/// the agent is told it changed. Both an in-place rewrite and a rename over it.
async fn swap_before_approval_never_runs(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    for (i, rename) in [false, true].into_iter().enumerate() {
        let name = format!("sw{i}.sh");
        let seen = site.file(&format!("swap-{i}-approved-ran"));
        let swapped = site.file(&format!("swap-{i}-swapped-ran"));
        let v1 = format!("touch {}\n", seen.display());
        write(&site.file(&name), &v1);
        let cmd = format!("bash {}", site.arg(&name));
        let child = site.spawn(&cmd);
        let req = request_for(&mut alice, &cmd).await;
        assert_eq!(
            script(&req, &name)["sha256"],
            sha256(v1.as_bytes()).as_str()
        );
        let v2 = format!("touch {}\n", swapped.display());
        if rename {
            let tmp = site.file(&format!("{name}.new"));
            write(&tmp, &v2);
            std::fs::rename(&tmp, site.file(&name)).expect("rename");
        } else {
            write(&site.file(&name), &v2);
        }
        let ack = alice.decide(&id(&req), "approve").await;
        assert_eq!(ack["result"], "approved", "{ack}");
        let (code, _, e) = finish(child).await;
        assert_eq!(code, 77, "a changed script must be refused: {e}");
        assert!(
            e.contains("changed after it was approved") && e.contains(&name),
            "the agent is told which file changed: {e}"
        );
        assert!(
            !swapped.exists(),
            "the swapped content ran (rename={rename})"
        );
        assert!(
            !seen.exists(),
            "something ran after the swap (rename={rename})"
        );
    }
}

/// Files that cannot be judged make the command medium, with the reason; such a request cannot
/// be remembered.
async fn unreadable_is_medium(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    // (path as the command writes it, name to find, the problem's words)
    let mut cases: Vec<(String, String, &str)> = Vec::new();
    cases.push((site.arg("missing.sh"), "missing.sh".into(), "cannot read"));
    // A directory where the script should be (root can read any mode, so no chmod 000).
    std::fs::create_dir_all(site.file("adir.sh")).expect("dir");
    cases.push((site.arg("adir.sh"), "adir.sh".into(), "cannot read"));
    if !site.upstream {
        // In the gateway's data dir: the sandbox hides it from commands, so the gateway, reading
        // as the command would, cannot read it either.
        let hidden = site.gw.path("data/hidden.sh");
        write(&hidden, "echo hidden\n");
        cases.push((
            hidden.display().to_string(),
            "hidden.sh".into(),
            "cannot read",
        ));
    }
    // Over 256 KiB of harmless lines.
    let big: String = "# padding, nothing to see here, just a long harmless comment line\n"
        .repeat(300 * 1024 / 66 + 1);
    assert!(big.len() > 256 * 1024);
    write(&site.file("big.sh"), &big);
    cases.push((site.arg("big.sh"), "big.sh".into(), "larger than 256 KiB"));

    for (path, name, words) in cases {
        let cmd = format!("bash {path}");
        unjudgeable(site, &mut alice, &cmd, &name, words, true).await;
    }
    // A harmless script that sources a file the gateway cannot see (its name is only known at
    // run time) is asked about, never run as harmless.
    let dyn_main = format!(
        "echo harmless\n. \"$HOME/{}\"\n",
        "airlock-heldout22-nowhere.sh"
    );
    write(&site.file("dyn.sh"), &dyn_main);
    let cmd = format!("bash {}", site.arg("dyn.sh"));
    let mut child = site.spawn(&cmd);
    let req = tokio::select! {
        st = child.wait() => panic!("{cmd:?} ran unasked: {st:?}"),
        req = request_for(&mut alice, &cmd) => req,
    };
    assert!(
        req["tier"] == "medium" || req["tier"] == "high",
        "at least medium: {req}"
    );
    let s = script(&req, "dyn.sh");
    assert_eq!(s["content"], dyn_main.as_str(), "{s}");
    let ack = alice.decide(&id(&req), "deny").await;
    assert_eq!(ack["result"], "denied", "{ack}");
    assert_eq!(finish(child).await.0, 77);
}

/// A compiled program run directly: nothing to read, so medium, saying it is binary.
async fn binary_is_medium(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    let prog = site.file("prog");
    std::fs::copy("/bin/true", &prog).expect("copy /bin/true");
    make_executable(&prog);
    unjudgeable(
        site,
        &mut alice,
        &site.program("prog"),
        "prog",
        "binary",
        false,
    )
    .await;
}

/// The reasons the gateway writes about a plain-ASCII script reach reviewers without marks: the
/// display form marks suspicious characters of the agent's text, not the gateway's own
/// punctuation (`⟨U+2026⟩`, `⟨U+2014⟩`).
async fn reasons_are_unmarked(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    let victim = victim(site, "victim-plain");
    write(
        &site.file("plain.sh"),
        &format!("rm -rf {}\n", victim.display()),
    );
    let cmd = format!("bash {}", site.arg("plain.sh"));
    let child = site.spawn(&cmd);
    let req = request_for(&mut alice, &cmd).await;
    let texts = reason_texts(&req);
    let ack = alice.decide(&id(&req), "deny").await;
    assert_eq!(ack["result"], "denied", "{ack}");
    assert_eq!(finish(child).await.0, 77);
    assert!(
        texts.iter().all(|t| !t.contains("⟨U+")),
        "the gateway's own reason text is shown with marked characters: {texts:?}"
    );
}

/// `cmd` runs a file the gateway cannot judge: medium, the problem and a reason say `words`;
/// when the file was not read (`unread`), no content, no hash, and it cannot be remembered.
async fn unjudgeable(
    site: &Site,
    alice: &mut Reviewer,
    cmd: &str,
    name: &str,
    words: &str,
    unread: bool,
) {
    let child = site.spawn(cmd);
    let req = request_for(alice, cmd).await;
    assert_eq!(req["tier"], "medium", "{cmd}: {req}");
    let s = script(&req, name);
    assert!(
        s["problem"].as_str().is_some_and(|p| p.contains(words)),
        "{cmd}: the problem should say {words:?}: {s}"
    );
    assert!(s["content"].is_null(), "{cmd}: {s}");
    if !unread {
        assert_eq!(s["kind"], "binary", "{cmd}: {s}");
    }
    if unread {
        assert_eq!(s["kind"], "unread", "{cmd}: {s}");
        assert!(s["sha256"].is_null(), "{cmd}: not read whole: {s}");
    }
    assert!(
        reason_texts(&req)
            .iter()
            .any(|t| t.contains(name) && t.contains(words)),
        "{cmd}: no reason naming {name} and saying {words:?}: {:?}",
        reason_texts(&req)
    );
    if unread {
        let refused = approve_remember(alice, &id(&req)).await;
        assert_eq!(refused["type"], "error", "{cmd}: {refused}");
        assert_eq!(refused["code"], "not_rememberable", "{cmd}: {refused}");
    }
    let ack = alice.decide(&id(&req), "deny").await;
    assert_eq!(ack["result"], "denied", "{cmd}: {ack}");
    let (code, _, e) = finish(child).await;
    assert_eq!(code, 77, "{cmd}: {e}");
}

/// The ways to run a file: `./x.sh` with a shebang, `. x.sh`, `source x.sh`, `python3 x.py`,
/// `make`, wrappers, a nested `. ./lib.sh`. Each is high from the file's content, names the
/// line, and runs on two approvals.
async fn every_form_is_judged_by_content(site: &Site) {
    let (mut alice, mut bob) = site.reviewers().await;
    struct Form {
        /// (name, content, executable); `{V}` is the victim directory.
        files: Vec<(&'static str, String, bool)>,
        cmd: String,
        script: &'static str,
        kind: &'static str,
        /// Expected reason prefix after the path: `:LINE: `.
        line: u32,
    }
    let lib = if site.relative {
        "./lib.sh".to_owned()
    } else {
        site.arg("lib.sh")
    };
    let make = if site.relative {
        "make".to_owned()
    } else {
        format!("make -C {}", site.base.display())
    };
    let forms = vec![
        Form {
            files: vec![("sb.sh", "#!/bin/sh\nrm -rf {V}\n".into(), true)],
            cmd: site.program("sb.sh"),
            script: "sb.sh",
            kind: "shell",
            line: 2,
        },
        Form {
            files: vec![("dot.sh", "rm -rf {V}\n".into(), false)],
            cmd: format!(". {}", site.arg("dot.sh")),
            script: "dot.sh",
            kind: "shell",
            line: 1,
        },
        Form {
            files: vec![("src.sh", "rm -rf {V}\n".into(), false)],
            cmd: format!("source {}", site.arg("src.sh")),
            script: "src.sh",
            kind: "shell",
            line: 1,
        },
        Form {
            files: vec![(
                "x.py",
                "import shutil\nshutil.rmtree(\"{V}\")\n".into(),
                false,
            )],
            cmd: format!("python3 {}", site.arg("x.py")),
            script: "x.py",
            kind: "python",
            line: 2,
        },
        Form {
            files: vec![("Makefile", "all:\n\trm -rf {V}\n".into(), false)],
            cmd: make,
            script: "Makefile",
            kind: "make",
            line: 2,
        },
        Form {
            files: vec![("w1.sh", "echo w\nrm -rf {V}\n".into(), false)],
            cmd: format!("env bash {}", site.arg("w1.sh")),
            script: "w1.sh",
            kind: "shell",
            line: 2,
        },
        Form {
            files: vec![("w2.sh", "rm -rf {V}\n".into(), false)],
            cmd: format!("timeout 30 bash -e {}", site.arg("w2.sh")),
            script: "w2.sh",
            kind: "shell",
            line: 1,
        },
        Form {
            files: vec![("w3.sh", "#!/bin/bash\nrm -rf {V}\n".into(), true)],
            cmd: format!("sh -c {}", site.program("w3.sh")),
            script: "w3.sh",
            kind: "shell",
            line: 2,
        },
        Form {
            files: vec![
                ("main.sh", format!("echo main\n. {lib}\n"), false),
                ("lib.sh", "rm -rf {V}\n".into(), false),
            ],
            cmd: format!("bash {}", site.arg("main.sh")),
            script: "lib.sh",
            kind: "shell",
            line: 1,
        },
    ];
    let mut failures = Vec::new();
    for (i, f) in forms.into_iter().enumerate() {
        let victim = victim(site, &format!("victim-{i}"));
        for (name, content, exec) in &f.files {
            let p = site.file(name);
            write(&p, &content.replace("{V}", &victim.display().to_string()));
            if *exec {
                make_executable(&p);
            }
        }
        let mut child = site.spawn(&f.cmd);
        let req = request_for(&mut alice, &f.cmd).await;
        let s = script(&req, f.script);
        let mut wrong = Vec::new();
        if req["tier"] != "high" {
            wrong.push(format!("tier {} (want high)", req["tier"]));
        }
        if s["kind"] != f.kind {
            wrong.push(format!("kind {} (want {})", s["kind"], f.kind));
        }
        let at = format!("{}:{}: ", f.script, f.line);
        if !reason_texts(&req)
            .iter()
            .any(|t| t.contains(&at) && t.contains("rm"))
        {
            wrong.push(format!("no reason with {at:?}: {:?}", reason_texts(&req)));
        }
        let rid = id(&req);
        if wrong.is_empty() {
            // High: one approval is not enough; two run it.
            let ack = alice.decide(&rid, "approve").await;
            assert_eq!(ack["result"], "counted", "{}: {ack}", f.cmd);
            still_waiting(&mut child).await;
            assert!(victim.join("canary").exists(), "{}: ran early", f.cmd);
            let ack = bob.decide(&rid, "approve").await;
            assert_eq!(ack["result"], "approved", "{}: {ack}", f.cmd);
            let (code, _, e) = finish(child).await;
            if code != 0 || victim.exists() {
                wrong.push(format!(
                    "approved run: exit {code}, victim still there: {}: {e}",
                    victim.exists()
                ));
            }
        } else {
            let ack = alice.decide(&rid, "deny").await;
            assert_eq!(ack["result"], "denied", "{ack}");
            let (code, _, _) = finish(child).await;
            assert_eq!(code, 77);
            assert!(
                victim.join("canary").exists(),
                "{}: a denied command ran",
                f.cmd
            );
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{:?}: {}\n  request: {req}",
                f.cmd,
                wrong.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} form(s) wrong on {}:\n{}",
        failures.len(),
        site.target,
        failures.join("\n")
    );
}

/// The file that runs is not the one the gateway read: the command changes directory, `PATH`
/// or the file itself before running it. Whatever the gateway shows, a reviewer who approves a
/// request that showed harmless content (and was not high) must not get the other file run.
async fn what_runs_is_what_was_shown(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    let sub = site.file("sub");
    let sub_abs = sub.display().to_string();
    let sub_arg = site.arg("sub");
    // In the files' directory (local: the working directory; upstream: by absolute path).
    let x = site.arg("x.sh");
    let at = |rel: &str| {
        if site.relative {
            rel.to_owned()
        } else {
            format!("cd {} && {rel}", site.base.display())
        }
    };
    let cases: Vec<(&str, String)> = vec![
        ("cd, then run", at(&format!("cd {sub_arg} && bash x.sh"))),
        ("env -C", at(&format!("env -C {sub_abs} bash x.sh"))),
        (
            "bash -c with cd",
            at(&format!("bash -c 'cd {sub_abs}; bash x.sh'")),
        ),
        ("PATH, then source", format!("PATH={sub_abs}:$PATH; . x.sh")),
        (
            "cp over, then run",
            format!("cp {sub_abs}/x.sh {x}; bash {x}"),
        ),
        (
            "cat over, then run",
            format!("cat {sub_abs}/x.sh > {x}; bash {x}"),
        ),
        (
            "mv over, then run",
            format!("mv -f {sub_abs}/x.sh {x}; bash {x}"),
        ),
    ];
    // Upstream, a relative name resolves against the login's home: put a harmless x.sh there
    // too (removed at the end), so the gateway has something harmless to show.
    let home_copy = site.upstream.then(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join("x.sh")
    });
    let _cleanup = HomeFile(home_copy.clone().filter(|p| !p.exists()));
    let mut failures = Vec::new();
    for (i, (label, cmd)) in cases.into_iter().enumerate() {
        if let Some(h) = &_cleanup.0 {
            write(h, "echo harmless\n");
        }
        let victim = victim(site, &format!("victim-mis-{i}"));
        std::fs::create_dir_all(&sub).expect("sub");
        write(&site.file("x.sh"), "echo harmless\n");
        write(&sub.join("x.sh"), &format!("rm -rf {}\n", victim.display()));
        let mut child = site.spawn(&cmd);
        let req = tokio::select! {
            st = child.wait() => {
                if !victim.exists() {
                    failures.push(format!("{label}: {cmd:?} ran UNASKED and ran the hidden file ({st:?})"));
                }
                continue;
            }
            req = request_for(&mut alice, &cmd) => req,
        };
        let shown = req["scripts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["content"] == "echo harmless\n"));
        eprintln!(
            "{label}: tier {}, harmless content shown: {shown}, reasons {:?}",
            req["tier"],
            reason_texts(&req)
        );
        if req["tier"] == "high" || !shown {
            // The gateway saw the danger, or showed no harmless content: a reviewer is not misled.
            let ack = alice.decide(&id(&req), "deny").await;
            assert_eq!(ack["result"], "denied", "{ack}");
            finish(child).await;
            assert!(victim.exists(), "{label}: a denied command ran");
            continue;
        }
        let ack = alice.decide(&id(&req), "approve").await;
        assert_eq!(ack["result"], "approved", "{ack}");
        let (code, _, e) = finish(child).await;
        if !victim.exists() {
            failures.push(format!(
                "{label}: {cmd:?}: reviewers were shown x.sh = \"echo harmless\" (tier {}), approved, \
                 and the other file's rm -rf RAN (exit {code}: {})\n  request: {req}",
                req["tier"],
                e.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) on {} ran something other than what reviewers saw:\n{}",
        failures.len(),
        site.target,
        failures.join("\n")
    );
}

/// Code the gateway must not wave through as what reviewers saw: a shebang whose interpreter is
/// itself the dangerous command, a python file that imports a local module, a Makefile that
/// includes another. Each must be high, or say which further file it cannot see.
async fn further_code_is_named_or_high(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    let make = if site.relative {
        "make -f Makefile2".to_owned()
    } else {
        format!("make -C {} -f Makefile2", site.base.display())
    };
    /// (label, files (name, content with {V}, executable), command, a further file's name)
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str, bool)>,
        String,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "shebang interpreter is rm",
            vec![("she", "#!/usr/bin/env -S rm -rf {V}\necho harmless\n", true)],
            site.program("she"),
            None,
        ),
        (
            "python imports a local module",
            vec![
                ("imp.py", "import evilmod\nprint(\"harmless\")\n", false),
                (
                    "evilmod.py",
                    "import shutil\nshutil.rmtree(\"{V}\")\n",
                    false,
                ),
            ],
            format!("python3 {}", site.arg("imp.py")),
            Some("evilmod"),
        ),
        (
            "Makefile includes another",
            vec![
                ("Makefile2", "include other.mk\n", false),
                ("other.mk", "all:\n\trm -rf {V}\n", false),
            ],
            make,
            Some("other.mk"),
        ),
    ];
    let mut failures = Vec::new();
    for (i, (label, files, cmd, further)) in cases.into_iter().enumerate() {
        let victim = victim(site, &format!("victim-further-{i}"));
        for (name, content, exec) in files {
            let p = site.file(name);
            write(&p, &content.replace("{V}", &victim.display().to_string()));
            if exec {
                make_executable(&p);
            }
        }
        let mut child = site.spawn(&cmd);
        let req = tokio::select! {
            st = child.wait() => {
                if !victim.exists() {
                    failures.push(format!("{label}: {cmd:?} ran UNASKED and deleted the canary ({st:?})"));
                }
                continue;
            }
            req = request_for(&mut alice, &cmd) => req,
        };
        let texts = reason_texts(&req);
        let named = further.is_some_and(|f| texts.iter().any(|t| t.contains(f)));
        eprintln!(
            "{label}: tier {}, named: {named}, reasons {texts:?}",
            req["tier"]
        );
        if req["tier"] == "high" || named {
            let ack = alice.decide(&id(&req), "deny").await;
            assert_eq!(ack["result"], "denied", "{ack}");
            finish(child).await;
            assert!(victim.exists(), "{label}: a denied command ran");
            continue;
        }
        // Not high and silent about the further file: see what one approval does.
        let ack = alice.decide(&id(&req), "approve").await;
        assert_eq!(ack["result"], "approved", "{ack}");
        let (code, _, _) = finish(child).await;
        failures.push(format!(
            "{label}: {cmd:?} was tier {} without naming {further:?}; one approval ran it (exit \
             {code}) and the canary was {}\n  reasons: {texts:?}",
            req["tier"],
            if victim.exists() { "kept" } else { "DELETED" }
        ));
    }
    assert!(
        failures.is_empty(),
        "{} case(s) on {}:\n{}",
        failures.len(),
        site.target,
        failures.join("\n")
    );
}

/// A script that is a symlink to `/dev/stdin`: what the gateway reads there is not what the
/// command will read (the agent's stdin). It must not be shown as harmless content that an
/// approval then binds.
async fn stdin_symlink_is_not_shown_as_content(site: &Site) {
    use tokio::io::AsyncWriteExt;
    let (mut alice, _bob) = site.reviewers().await;
    let victim = victim(site, "victim-stdin");
    std::os::unix::fs::symlink("/dev/stdin", site.file("in.sh")).expect("symlink");
    let cmd = format!("bash {}", site.arg("in.sh"));
    let mut c = site.gw.ssh_cmd(&site.gw.agent_key, site.target);
    c.arg("127.0.0.1")
        .arg(&cmd)
        .stdin(std::process::Stdio::piped());
    let mut child = c.spawn().expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("rm -rf {}\n", victim.display()).as_bytes())
        .await
        .expect("stdin");
    drop(stdin);
    let req = request_for(&mut alice, &cmd).await;
    let s = script(&req, "in.sh");
    eprintln!("stdin symlink: tier {}, script {s}", req["tier"]);
    if req["tier"] == "high" || s["content"].is_null() {
        let ack = alice.decide(&id(&req), "deny").await;
        assert_eq!(ack["result"], "denied", "{ack}");
        finish(child).await;
        assert!(victim.exists(), "a denied command ran");
        return;
    }
    let ack = alice.decide(&id(&req), "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, e) = finish(child).await;
    assert!(
        victim.exists(),
        "reviewers were shown in.sh -> /dev/stdin as content {:?} (tier {}), approved, and the \
         agent's stdin (rm -rf) RAN (exit {code}: {})\n  script: {s}",
        s["content"],
        req["tier"],
        e.trim()
    );
}

/// The other runners the issue names, judged by content: perl, node, ruby, crontab, psql -f,
/// mysql < FILE. Each file destroys something; each request must be high and carry the file with
/// its kind. Denied, never run (crontab would install for real).
async fn other_runners_are_judged(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    let v = site.file("victim-other").display().to_string();
    let cases = [
        (
            "x.pl",
            format!("use File::Path qw(rmtree);\nrmtree(\"{v}\");\n"),
            "perl",
            "perl",
        ),
        (
            "x.js",
            format!(
                "const fs = require('fs');\nfs.rmSync('{v}', {{ recursive: true, force: true }});\n"
            ),
            "node",
            "node",
        ),
        (
            "x.rb",
            format!("require 'fileutils'\nFileUtils.rm_rf('{v}')\n"),
            "ruby",
            "ruby",
        ),
        (
            "cron.txt",
            format!("* * * * * rm -rf {v}\n"),
            "crontab",
            "crontab",
        ),
        (
            "drop.sql",
            "DROP TABLE customers;\n".to_owned(),
            "psql -f",
            "sql",
        ),
        (
            "drop2.sql",
            "DROP DATABASE production;\n".to_owned(),
            "mysql <",
            "sql",
        ),
    ];
    let mut failures = Vec::new();
    for (name, content, runner, kind) in cases {
        write(&site.file(name), &content);
        let cmd = format!("{runner} {}", site.arg(name));
        let child = site.spawn(&cmd);
        let req = request_for(&mut alice, &cmd).await;
        let found = req["scripts"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| s["path"].as_str().is_some_and(|p| p.ends_with(name)))
            })
            .cloned();
        match &found {
            None => failures.push(format!(
                "{cmd:?}: no scripts entry; tier {}; reasons {:?}",
                req["tier"],
                reason_texts(&req)
            )),
            Some(s) => {
                if req["tier"] != "high" || s["kind"] != kind {
                    failures.push(format!(
                        "{cmd:?}: tier {} kind {} (want high, {kind}); reasons {:?}",
                        req["tier"],
                        s["kind"],
                        reason_texts(&req)
                    ));
                }
            }
        }
        let ack = alice.decide(&id(&req), "deny").await;
        assert_eq!(ack["result"], "denied", "{cmd}: {ack}");
        assert_eq!(finish(child).await.0, 77, "{cmd}");
    }
    assert!(
        failures.is_empty(),
        "{} runner(s) on {}:\n{}",
        failures.len(),
        site.target,
        failures.join("\n")
    );
}

/// A file the test put in the home directory, removed when dropped.
struct HomeFile(Option<PathBuf>);

impl Drop for HomeFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Files that are not plain files, or that never end, or source themselves: the gateway still
/// answers in bounded time with at least medium.
async fn odd_files_are_answered_in_bounded_time(site: &Site) {
    let (mut alice, _bob) = site.reviewers().await;
    let fifo = site.file("fifo.sh");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    write(
        &site.file("self.sh"),
        &format!(". {}\necho again\n", site.file("self.sh").display()),
    );
    write(
        &site.file("ping.sh"),
        &format!(". {}\n", site.file("pong.sh").display()),
    );
    write(
        &site.file("pong.sh"),
        &format!(". {}\n", site.file("ping.sh").display()),
    );
    let cases = [
        format!("bash {}", site.arg("fifo.sh")),
        "bash /dev/zero".to_owned(),
        format!("bash {}", site.arg("self.sh")),
        format!("bash {}", site.arg("ping.sh")),
    ];
    for cmd in cases {
        let t0 = Instant::now();
        let mut child = site.spawn(&cmd);
        let req = tokio::select! {
            st = child.wait() => panic!("{cmd:?} ended without a request: {st:?}"),
            req = request_for(&mut alice, &cmd) => req,
        };
        assert!(
            req["tier"] == "medium" || req["tier"] == "high",
            "{cmd}: at least medium: {req}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{cmd}: took {:?}",
            t0.elapsed()
        );
        let ack = alice.decide(&id(&req), "deny").await;
        assert_eq!(ack["result"], "denied", "{cmd}: {ack}");
        assert_eq!(finish(child).await.0, 77, "{cmd}");
    }
    // The gateway still serves.
    let (code, out, e) = {
        let mut c = site.gw.ssh_cmd(&site.gw.agent_key, site.target);
        c.arg("127.0.0.1").arg("echo still-here");
        finish(c.spawn().expect("ssh")).await
    };
    assert_eq!((code, out.as_str()), (0, "still-here\n"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Local target
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_write_then_run_is_high_needs_two_and_is_recorded() {
    write_then_run(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_remembered_script_runs_unasked_until_it_changes() {
    remember_binds_the_hash(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_script_swapped_before_approval_never_runs() {
    swap_before_approval_never_runs(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_unreadable_hidden_or_oversized_file_is_medium() {
    unreadable_is_medium(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_every_way_to_run_a_file_is_judged_by_its_content() {
    every_form_is_judged_by_content(&Site::local().await).await;
}

/// Approved `echo started; sleep 2; bash race.sh`: once it has started (its `started` line
/// reached the agent, so it is past any pre-exec check), the test rewrites race.sh from outside
/// — in place, by a rename over it, and by swapping the directory it is in. The command runs the
/// approved bytes, never the rewrite.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_script_rewritten_while_the_approved_command_runs_never_runs_the_rewrite() {
    use tokio::io::AsyncReadExt;
    let site = Site::local().await;
    let (mut alice, _bob) = site.reviewers().await;
    let mut failures = Vec::new();
    for (i, mode) in ["in-place", "rename", "directory-swap"]
        .into_iter()
        .enumerate()
    {
        let dir = format!("race{i}");
        std::fs::create_dir_all(site.file(&dir)).expect("dir");
        let name = format!("{dir}/race.sh");
        let approved = site.file(&format!("race-{i}-approved-ran"));
        let swapped = site.file(&format!("race-{i}-swapped-ran"));
        let v1 = format!("touch {}\n", approved.display());
        let v2 = format!("touch {}\n", swapped.display());
        write(&site.file(&name), &v1);
        let cmd = format!("echo started; sleep 2; bash {name}");
        let mut child = site.spawn(&cmd);
        let mut out = child.stdout.take().expect("stdout");
        let req = request_for(&mut alice, &cmd).await;
        assert_eq!(
            script(&req, "race.sh")["sha256"],
            sha256(v1.as_bytes()).as_str(),
            "{req}"
        );
        let ack = alice.decide(&id(&req), "approve").await;
        assert_eq!(ack["result"], "approved", "{ack}");
        // Wait (bounded) until the approved command has started: past the pre-exec check.
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        while !String::from_utf8_lossy(&seen).contains("started") {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut buf = [0u8; 256];
            let n = tokio::time::timeout(left, out.read(&mut buf))
                .await
                .expect("the approved command started in time")
                .expect("read");
            assert!(n > 0, "the command ended before it started: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
        match mode {
            "in-place" => write(&site.file(&name), &v2),
            "rename" => {
                let tmp = site.file(&format!("{name}.new"));
                write(&tmp, &v2);
                std::fs::rename(&tmp, site.file(&name)).expect("rename");
            }
            _ => {
                std::fs::rename(site.file(&dir), site.file(&format!("{dir}.old")))
                    .expect("rename dir");
                std::fs::create_dir_all(site.file(&dir)).expect("new dir");
                write(&site.file(&name), &v2);
            }
        }
        assert_eq!(
            std::fs::read_to_string(site.file(&name)).expect("read back"),
            v2,
            "the rewrite took effect outside the command"
        );
        let (code, _, e) = finish(child).await;
        if swapped.exists() {
            failures.push(format!(
                "{mode}: the content written during the run RAN (exit {code}; approved bytes ran: {})",
                approved.exists()
            ));
        } else if mode != "in-place" && code != 0 {
            // Replacing the file (or a directory above it) detaches the pin (the kernel's
            // rule for mount points), so the guard stops the command instead: the new
            // content never runs, and the agent is told why.
            if !e.contains("was replaced while the approved command ran") {
                failures.push(format!(
                    "{mode}: stopped without saying the file was replaced (exit {code}): {e}"
                ));
            }
        } else if code != 0 || !approved.exists() {
            failures.push(format!(
                "{mode}: the approved bytes did not run (exit {code}): {e}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// In the gated shell, a relative script path resolves against the shell's current directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_gated_shell_reads_the_script_from_its_current_directory() {
    let site = Site::local().await;
    let (mut alice, _bob) = site.reviewers().await;
    let victim = victim(&site, "victim-shell");
    std::fs::create_dir_all(site.file("sub")).expect("sub");
    let body = format!("rm -rf {}\n", victim.display());
    write(&site.file("sub/sx.sh"), &body);
    let mut shell = ShellClient::open(&site.gw, site.target).await;
    shell.line("cd sub").await;
    shell.line("bash sx.sh").await;
    let req = request_for(&mut alice, "bash sx.sh").await;
    assert_eq!(req["tier"], "high", "{req}");
    let s = script(&req, "sx.sh");
    assert_eq!(
        s["resolved"],
        site.file("sub/sx.sh").display().to_string().as_str(),
        "{s}"
    );
    assert_eq!(s["sha256"], sha256(body.as_bytes()).as_str(), "{s}");
    assert_reason(&req, "sx.sh:1: ", "rm -rf");
    let ack = alice.decide(&id(&req), "deny").await;
    assert_eq!(ack["result"], "denied", "{ack}");
    let (_, transcript) = shell.quit().await;
    assert!(victim.join("canary").exists(), "{transcript}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_what_runs_is_what_reviewers_saw() {
    what_runs_is_what_was_shown(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_binary_program_is_medium_saying_binary() {
    binary_is_medium(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_reason_texts_reach_reviewers_unmarked() {
    reasons_are_unmarked(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_stdin_symlink_is_not_shown_as_content() {
    stdin_symlink_is_not_shown_as_content(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_other_runners_are_judged_by_content() {
    other_runners_are_judged(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_further_code_is_named_or_high() {
    further_code_is_named_or_high(&Site::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_fifos_devices_and_loops_are_answered() {
    odd_files_are_answered_in_bounded_time(&Site::local().await).await;
}

// ---------------------------------------------------------------------------------------------
// Upstream target behind a real sshd

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_what_runs_is_what_reviewers_saw() {
    if let Some(site) = Site::upstream().await {
        what_runs_is_what_was_shown(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_binary_program_is_medium_saying_binary() {
    if let Some(site) = Site::upstream().await {
        binary_is_medium(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_stdin_symlink_is_not_shown_as_content() {
    if let Some(site) = Site::upstream().await {
        stdin_symlink_is_not_shown_as_content(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_other_runners_are_judged_by_content() {
    if let Some(site) = Site::upstream().await {
        other_runners_are_judged(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_further_code_is_named_or_high() {
    if let Some(site) = Site::upstream().await {
        further_code_is_named_or_high(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_fifos_devices_and_loops_are_answered() {
    if let Some(site) = Site::upstream().await {
        odd_files_are_answered_in_bounded_time(&site).await;
    }
}
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_write_then_run_is_high_needs_two_and_is_recorded() {
    if let Some(site) = Site::upstream().await {
        write_then_run(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_remembered_script_runs_unasked_until_it_changes() {
    if let Some(site) = Site::upstream().await {
        remember_binds_the_hash(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_script_swapped_before_approval_never_runs() {
    if let Some(site) = Site::upstream().await {
        swap_before_approval_never_runs(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_unreadable_or_oversized_file_is_medium() {
    if let Some(site) = Site::upstream().await {
        unreadable_is_medium(&site).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_every_way_to_run_a_file_is_judged_by_its_content() {
    if let Some(site) = Site::upstream().await {
        every_form_is_judged_by_content(&site).await;
    }
}
