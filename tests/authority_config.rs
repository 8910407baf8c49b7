//! Approval authority in the config (issue 20), through the real binary: a config that could
//! let a high-risk command run on one approval stops the gateway at start, and `airlock policy
//! check` / `airlock policy lint` understand reviewer groups and approval rules.

mod harness;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{BIN, WAIT};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// 4. A config that would let a high command run on one approval is refused at start.

const AGENT_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHj1o0d5P2rJk8s1yQ2qk4j4mA5l2Wb3kO3Xw2nX8C9b bot";

fn standalone_config(dir: &std::path::Path, rules: &str) -> std::path::PathBuf {
    let text = format!(
        r#"data_dir = "data"
[ssh]
listen = "127.0.0.1:0"
[reviewer]
listen = "127.0.0.1:0"
[[target]]
name = "db-main"
kind = "local"
labels = {{ env = "prod" }}
[[target]]
name = "web-1"
kind = "local"
labels = {{ env = "prod" }}
[[agent]]
name = "bot"
keys = ["{AGENT_KEY}"]
targets = ["db-main", "web-1"]
[[reviewer_group]]
name = "sre"
members = ["alice", "bob"]
[[reviewer_group]]
name = "dba"
members = ["carol"]
scope = {{ targets = ["db-*"], labels = {{ env = "prod" }} }}
{rules}
"#
    );
    let path = dir.join("airlock.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `airlock serve` on `config`: `Err(output)` if it exited (within the bound), `Ok(())` once
/// it was listening (then it is stopped).
fn serve(config: &std::path::Path) -> Result<(), (Option<i32>, String)> {
    use std::io::{BufRead, BufReader};
    let dir = config.parent().expect("dir");
    let log = dir.join("serve.log");
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start airlock");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut out = String::new();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            while let Ok(l) = rx.try_recv() {
                out.push_str(&l);
                out.push('\n');
            }
            out.push_str(&std::fs::read_to_string(&log).unwrap_or_default());
            return Err((st.code(), out));
        }
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(50)) {
            let listening = l.starts_with("airlock: ssh listening on ");
            out.push_str(&l);
            out.push('\n');
            if listening {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("airlock serve neither started nor exited: {out}");
        }
    }
}

#[test]
fn a_config_that_lets_high_run_on_one_approval_is_refused_at_start() {
    let cases = [
        (
            "anyone-once",
            r#"match = { targets = ["db-*"] }
require = [{ any = true, count = 1 }]"#,
        ),
        (
            "high-one-sre",
            r#"match = { tier = "high", labels = { env = "prod" } }
require = [{ group = "sre", count = 1 }]"#,
        ),
        (
            "medium-and-high",
            r#"match = { tier = ["medium", "high"], targets = ["web-*"] }
require = [{ group = "dba", count = 1 }]"#,
        ),
        (
            "by-agent",
            r#"match = { agents = ["bot"] }
require = [{ any = true, count = 1 }]"#,
        ),
    ];
    for (name, body) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = format!("[[approval_rule]]\nname = \"{name}\"\n{body}\n");
        let config = standalone_config(dir.path(), &rules);
        let (code, out) = serve(&config).expect_err(&format!("{name}: the gateway must refuse"));
        assert_ne!(code, Some(0), "{name}: non-zero exit: {out}");
        assert!(
            out.contains(name),
            "{name}: the message names the rule: {out}"
        );
        let lower = out.to_lowercase();
        assert!(
            lower.contains("high") && lower.contains("at least 2"),
            "{name}: says high needs at least 2: {out}"
        );
    }
    // The same shapes that cannot let high through on one person start.
    let fine = [r#"[[approval_rule]]
name = "two-groups"
match = { tier = "high", targets = ["db-*"] }
require = [{ group = "dba", count = 1 }, { group = "sre", count = 1 }]
[[approval_rule]]
name = "medium-anyone"
match = { tier = "medium", targets = ["db-*"] }
require = [{ any = true, count = 1 }]
[[approval_rule]]
name = "high-two-sres"
match = { tier = "high" }
require = [{ group = "sre", count = 2 }]"#];
    for rules in fine {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = standalone_config(dir.path(), rules);
        if let Err((code, out)) = serve(&config) {
            panic!("a safe config must start (exit {code:?}): {out}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `airlock policy check` and `airlock policy lint`.

fn cli(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(config.parent().expect("dir"))
        .env_remove("AIRLOCK_CONFIG")
        .output()
        .expect("airlock");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const RULES: &str = r#"[[approval_rule]]
name = "prod-db-destructive"
match = { tier = "high", targets = ["db-*"], labels = { env = "prod" } }
require = [{ group = "dba", count = 1 }, { group = "sre", count = 1 }]
timeout = "10m"
"#;

#[test]
fn policy_check_shows_the_rule_and_who_must_approve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = standalone_config(dir.path(), RULES);
    let check = |target: &str, cmd: &str| {
        let (code, out, err) = cli(
            &config,
            &[
                "policy", "check", "--json", "--agent", "bot", "--target", target, "--", cmd,
            ],
        );
        assert_eq!(code, Some(0), "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap_or_else(|_| panic!("json: {out}{err}"))
    };
    let v = check("db-main", "rm -rf /srv/db");
    assert_eq!(v["decision"], "ask", "{v}");
    assert_eq!(v["rule"], "prod-db-destructive", "{v}");
    assert_eq!(v["needs"], "1 from dba and 1 from sre", "{v}");
    // No rule for web-1: the tier default.
    let v = check("web-1", "rm -rf /srv/web");
    assert!(v["rule"].is_null(), "{v}");
    assert_eq!(v["quorum"], 2, "{v}");
}

#[test]
fn policy_lint_flags_unreachable_rules_unknown_groups_and_empty_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = standalone_config(dir.path(), RULES);
    let (code, out, err) = cli(&config, &["policy", "lint"]);
    assert_eq!(code, Some(0), "a clean config lints clean: {out}{err}");

    // A rule after one that matches everything it could.
    let shadowed = r#"[[approval_rule]]
name = "all-db"
match = { targets = ["db-*"] }
require = [{ group = "dba", count = 1 }, { group = "sre", count = 1 }]
[[approval_rule]]
name = "db-main-high"
match = { tier = "high", targets = ["db-main"], labels = { env = "prod" } }
require = [{ group = "sre", count = 2 }]
"#;
    let config = standalone_config(dir.path(), shadowed);
    let (_, out, err) = cli(&config, &["policy", "lint"]);
    let all = format!("{out}{err}");
    assert!(
        all.lines()
            .any(|l| l.contains("db-main-high") && l.to_lowercase().contains("unreachable")),
        "the shadowed rule is named unreachable: {all}"
    );

    // A rule naming a group nobody defined: an error.
    let unknown = r#"[[approval_rule]]
name = "typo"
match = { tier = "high" }
require = [{ group = "dbas", count = 2 }]
"#;
    let config = standalone_config(dir.path(), unknown);
    let (code, out, err) = cli(&config, &["policy", "lint"]);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(format!("{out}{err}").contains("dbas"), "{out}{err}");
    assert!(
        serve(&config).is_err(),
        "the gateway does not start on an unknown group"
    );

    // A group with no members (and no oidc_groups).
    let empty = format!("{RULES}[[reviewer_group]]\nname = \"nobody-here\"\nmembers = []\n");
    let config = standalone_config(dir.path(), &empty);
    let (_, out, err) = cli(&config, &["policy", "lint"]);
    assert!(
        format!("{out}{err}").contains("nobody-here"),
        "the empty group is flagged: {out}{err}"
    );
}
