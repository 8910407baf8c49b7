//! The control target `airlock`, with the real OpenSSH client: an agent learns who it is, which
//! targets it may use, what the gateway would do with a command (and that is what a real exec
//! then does, for 20 mixed commands), and how its requests stand.

mod harness;

use std::time::Duration;

use harness::{Gateway, Opts};
use serde_json::Value;

/// `ssh airlock@gateway COMMAND` as the agent: (exit status, stdout, stderr).
async fn control(gw: &Gateway, command: &str) -> (i32, String, String) {
    let mut c = gw.ssh_cmd(&gw.agent_key, "airlock");
    c.arg("127.0.0.1").arg(command);
    let out = tokio::time::timeout(Duration::from_secs(30), c.output())
        .await
        .expect("answer within 30 s")
        .expect("ssh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn control_json(gw: &Gateway, command: &str) -> Value {
    let (code, out, err) = control(gw, command).await;
    assert_eq!(code, 0, "{command}: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{command}: {e}: {out}"))
}

#[tokio::test]
async fn the_control_target_answers_about_the_agents_own_world() {
    let gw = Gateway::start(Opts {
        more_targets: vec!["prod".into()],
        ..Opts::default()
    })
    .await;
    let me = control_json(&gw, "whoami --json").await;
    assert_eq!(me["agent"], "bot");
    assert_eq!(me["node"], "airlock-1");
    let fingerprint = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(gw.agent_key.with_extension("pub"))
        .output()
        .expect("ssh-keygen");
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout).into_owned();
    assert!(
        fingerprint.contains(me["key"].as_str().unwrap_or("?")),
        "{fingerprint} vs {me}"
    );
    let targets = control_json(&gw, "targets --json").await;
    let names: Vec<&str> = targets["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["local", "prod"]);
    assert_eq!(targets["targets"][1]["labels"]["env"], "prod");
    let (code, text, _) = control(&gw, "targets").await;
    assert_eq!(code, 0);
    assert!(text.contains("prod\tlocal\tenv=prod"), "{text}");

    // Explain suggests a safer form where the classifier knows one.
    let e = control_json(&gw, "explain --json --target local -- rm -rf /srv/old").await;
    assert_eq!(e["tier"], "high");
    assert_eq!(e["decision"]["kind"], "ask");
    assert_eq!(e["decision"]["quorum"], 2);
    assert!(e["safer"].as_str().unwrap_or("").contains("ls -R"), "{e}");
    let (_, text, _) = control(&gw, "explain --target local -- rm -rf /srv/old").await;
    assert!(text.contains("safer first:"), "{text}");

    // Bad usage: exit 2 and the usage; a shell is refused; unknown requests are exit 1.
    let (code, _, err) = control(&gw, "frobnicate").await;
    assert_eq!(code, 2);
    assert!(err.contains("usage: ssh airlock@GATEWAY"), "{err}");
    let (code, _, err) = control(&gw, "explain --target local").await;
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = control(&gw, "status --json 0123456789abcdef").await;
    assert_eq!(code, 1);
    assert!(out.contains("no such request"), "{out}");

    // A request of its own: pending, then denied with who and why.
    let mut alice = gw.reviewer("alice").await;
    let file = gw.path("status-canary");
    let child = gw.spawn_exec(&format!("touch {}", file.display()));
    let req = alice.next_of("request").await;
    let id = req["id"].as_str().expect("id").to_owned();
    let pending = control_json(&gw, &format!("status --json {id}")).await;
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["approvals_needed"], 1);
    alice.decide(&id, "deny").await;
    let (code, _, err) = harness::finish(child).await;
    assert_eq!(code, 77);
    assert!(
        err.contains("airlock: denied by alice: deny from test — medium risk, rule fs.write, needed 1 reviewer"),
        "the denial names who, why, the tier, the rule and the quorum: {err}"
    );
    let done = control_json(&gw, &format!("status --json {id}")).await;
    assert_eq!(done["status"], "denied");
    assert_eq!(done["why"], "denied by alice: deny from test");
    assert_eq!(done["denied_by"][0], "alice");
    assert!(!file.exists());
}

#[tokio::test]
async fn explain_agrees_with_what_a_real_exec_then_does() {
    let gw = Gateway::start(Opts {
        timeout: "2s",
        ..Opts::default()
    })
    .await;
    let c = gw.path("canary");
    std::fs::create_dir_all(c.join("b")).expect("canary dir");
    let c = c.display().to_string();
    let whitelisted = format!("touch {c}/wl");
    let out = gw.cli(&["whitelist", "add", "--agent", "bot", "--", &whitelisted]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<(String, String)> = [
        "echo hi",
        "ls /",
        "cat /etc/hostname",
        "uname -a",
        "date +%s",
        "pwd",
        "id -u",
        "printf '%s\\n' a b",
        &format!("touch {c}/a"),
        &format!("mkdir {c}/d"),
        &format!("cp /etc/hostname {c}/h"),
        &format!("rm -rf {c}/b"),
        &format!("echo x > {c}/redirected"),
        "curl -s http://127.0.0.1:9/x | sh",
        &format!("dd if=/dev/zero of={c}/z bs=1 count=1"),
        &format!("chmod 600 {c}/a"),
        &format!("ls {c}; rm {c}/a"),
        &whitelisted,
        "git --version",
        "echo \u{202E}hidden",
    ]
    .iter()
    .map(|cmd| ("local".to_owned(), (*cmd).to_owned()))
    .chain(std::iter::once(("nope".to_owned(), "echo x".to_owned())))
    .collect();
    assert!(cases.len() >= 20);
    let mut kinds = std::collections::BTreeMap::new();
    for (target, cmd) in &cases {
        let e = control_json(&gw, &format!("explain --json --target {target} -- {cmd}")).await;
        let kind = e["decision"]["kind"].as_str().unwrap_or("?").to_owned();
        *kinds.entry(kind.clone()).or_insert(0) += 1;
        let mut ssh = gw.ssh_cmd(&gw.agent_key, target);
        ssh.arg("127.0.0.1").arg(cmd);
        let out = tokio::time::timeout(Duration::from_secs(30), ssh.output())
            .await
            .expect("exec within 30 s")
            .expect("ssh");
        let code = out.status.code().unwrap_or(-1);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let asked = err.contains("airlock: waiting for approval");
        let denied = err.contains("airlock: denied");
        match kind.as_str() {
            "run" | "whitelisted" => assert!(
                !asked && !denied,
                "{cmd}: explain said {kind}, the exec: {code} {err}"
            ),
            "ask" => {
                assert!(
                    asked && denied && code == 77,
                    "{cmd}: explain said ask, the exec: {code} {err}"
                );
                let tier = e["tier"].as_str().unwrap_or("?");
                assert!(
                    err.contains(&format!(
                        "waiting for approval ({tier}, score {}",
                        e["score"]
                    )),
                    "{cmd}: same tier and score: {e} vs {err}"
                );
                let quorum = e["decision"]["quorum"].as_u64().unwrap_or(0);
                assert!(
                    err.contains(&format!("needs {quorum} reviewer")),
                    "{cmd}: same quorum: {err}"
                );
            }
            "deny" => assert!(
                denied && !asked && code == 77,
                "{cmd}: explain said deny, the exec: {code} {err}"
            ),
            other => panic!("{cmd}: unknown decision {other}: {e}"),
        }
    }
    for kind in ["run", "whitelisted", "ask", "deny"] {
        assert!(kinds.contains_key(kind), "no {kind} among {kinds:?}");
    }
    // Nothing explained ran: the canary's `b` is still there, `a` was never made.
    assert!(std::path::Path::new(&c).join("b").exists());
    // Explanations are audited.
    let ledger = String::from_utf8_lossy(&gw.cli(&["ledger", "export"]).stdout).into_owned();
    assert!(
        ledger.matches("command.explained").count() >= cases.len(),
        "every explain is in the ledger"
    );
}

#[tokio::test]
async fn an_over_long_command_does_not_fill_the_ledger() {
    let gw = Gateway::start(Opts::default()).await;
    let long = format!("echo {}", "a".repeat(60_000));
    let e = control_json(&gw, &format!("explain --json --target local -- {long}")).await;
    assert_eq!(e["decision"]["kind"], "deny", "{e}");
    let (code, _, err) = gw.exec(&long).await;
    assert_eq!(code, 77);
    assert!(err.contains("the limit is 16384 bytes"), "{err}");
    let ledger = String::from_utf8_lossy(&gw.cli(&["ledger", "export"]).stdout).into_owned();
    let longest = ledger.lines().map(str::len).max().unwrap_or(0);
    assert!(
        longest < 20_000,
        "no ledger entry holds the whole 60,000 bytes (longest: {longest})"
    );
    assert!(ledger.contains("bytes in all; refused: longer than 16384"));
}
