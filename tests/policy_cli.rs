//! `airlock classify` and `airlock policy check|lint` through the real binary: output formats
//! and exit codes are an interface CI pipelines depend on.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_airlock");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("AIRLOCK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn airlock");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin).expect("write stdin");
    }
    child.wait_with_output().expect("airlock output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const CONFIG: &str = r#"
data_dir = "data"
[approval]
high_quorum = 2
medium_quorum = 1
[[agent]]
name = "bot"
keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHj1o0d5P2rJk8s1yQ2qk4j4mA5l2Wb3kO3Xw2nX8C9b bot"]
targets = ["dev"]
max_tier = "medium"
[[agent]]
name = "ops"
keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHj1o0d5P2rJk8s1yQ2qk4j4mA5l2Wb3kO3Xw2nX8C9b ops"]
targets = ["dev", "prod"]
[[target]]
name = "dev"
kind = "local"
[[target]]
name = "prod"
kind = "local"
labels = { env = "prod" }
[rules]
packs = ["extra.toml"]
"#;

const EXTRA: &str = r#"
[[rule]]
id = "local.payments"
programs = ["*"]
keywords = ["/srv/payments"]
except = ["ls"]
tier = "high"
why = "touches the payments data"

[[example]]
command = "cat /srv/payments/ledger.csv"
tier = "high"
"#;

fn write_config(dir: &Path, config: &str, extra: &str) -> String {
    std::fs::write(dir.join("airlock.toml"), config).expect("write config");
    std::fs::write(dir.join("extra.toml"), extra).expect("write pack");
    dir.join("airlock.toml").display().to_string()
}

#[test]
fn classify_stdin_writes_one_json_object_per_line_in_order() {
    let out = run(
        &["classify", "--json", "--stdin"],
        b"ls -la\nrm -rf /srv\necho 'DROP TABLE t'\npsql -c 'DROP TABLE t'\n\xff\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let tiers: Vec<&str> = lines
        .iter()
        .map(|v| v["tier"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(tiers, ["low", "high", "low", "high", "high"]);
    assert_eq!(lines[3]["command"], "psql -c 'DROP TABLE t'");
    assert!(lines[1]["score"].as_u64().is_some_and(|s| s >= 70));
    assert!(lines[4]["reasons"][0]["rule"] == "input.not-utf8");
}

#[test]
fn classify_explains_and_production_scores_higher() {
    let dev = run(
        &["classify", "--json", "--", "systemctl restart nginx"],
        b"",
    );
    let prod = run(
        &[
            "classify",
            "--json",
            "--target-label",
            "env=prod",
            "--",
            "systemctl restart nginx",
        ],
        b"",
    );
    let dev: serde_json::Value = serde_json::from_slice(&dev.stdout).expect("json");
    let prod: serde_json::Value = serde_json::from_slice(&prod.stdout).expect("json");
    assert_eq!(dev["tier"], "medium");
    assert!(
        prod["score"].as_u64() > dev["score"].as_u64(),
        "{prod} vs {dev}"
    );
    assert!(text(prod["reasons"].to_string().as_bytes()).contains("labelled env=prod"));
    let human = run(&["classify", "--", "git push --force"], b"");
    let h = text(&human.stdout);
    assert!(h.starts_with("high (score "), "{h}");
    assert!(h.contains("git.force-push"), "{h}");
}

#[test]
fn policy_check_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), CONFIG, EXTRA);
    let check = |agent: &str, target: &str, cmd: &str| {
        run(
            &[
                "--config", &cfg, "policy", "check", "--agent", agent, "--target", target, "--",
                cmd,
            ],
            b"",
        )
    };
    let allow = check("bot", "dev", "ls -la");
    assert_eq!(allow.status.code(), Some(0));
    assert!(
        text(&allow.stdout).starts_with("allow: "),
        "{}",
        text(&allow.stdout)
    );

    let ask = check("bot", "dev", "systemctl restart nginx");
    assert_eq!(ask.status.code(), Some(0));
    assert!(
        text(&ask.stdout).starts_with("needs approval: 1 reviewer"),
        "{}",
        text(&ask.stdout)
    );

    let two = check("ops", "prod", "rm -rf /srv/app");
    assert_eq!(two.status.code(), Some(0));
    assert!(text(&two.stdout).starts_with("needs approval: 2 reviewers"));

    // bot's max_tier is medium: a high command is denied outright.
    let deny = check("bot", "dev", "rm -rf /srv/app");
    assert_eq!(deny.status.code(), Some(1));
    assert!(
        text(&deny.stdout).starts_with("deny: high commands are not allowed"),
        "{}",
        text(&deny.stdout)
    );

    // Not allowed on that target: a deny, like the gateway's.
    let deny = check("bot", "prod", "ls");
    assert_eq!(deny.status.code(), Some(1));
    assert!(text(&deny.stdout).contains("may not use target prod"));

    // The operator pack is loaded.
    let extra = check("ops", "dev", "cat /srv/payments/ledger.csv");
    assert!(
        text(&extra.stdout).contains("local.payments"),
        "{}",
        text(&extra.stdout)
    );

    let json = run(
        &[
            "--config",
            &cfg,
            "policy",
            "check",
            "--json",
            "--agent",
            "ops",
            "--target",
            "prod",
            "--",
            "kubectl delete ns prod",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["decision"], "ask");
    assert_eq!(v["quorum"], 2);
    assert_eq!(v["tier"], "high");

    // Usage and config errors: exit 2 with a one-line reason.
    let unknown = check("nobody", "dev", "ls");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("unknown agent \"nobody\""));
    let unknown = check("bot", "staging", "ls");
    assert_eq!(unknown.status.code(), Some(2));
    let missing = run(
        &[
            "--config",
            "/nonexistent/airlock.toml",
            "policy",
            "check",
            "--agent",
            "a",
            "--target",
            "b",
            "--",
            "ls",
        ],
        b"",
    );
    assert_eq!(missing.status.code(), Some(2));
    let usage = run(&["policy", "check", "--agent", "bot"], b"");
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn policy_lint_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), CONFIG, EXTRA);
    let ok = run(&["--config", &cfg, "policy", "lint"], b"");
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("ok — 2 agents, 2 targets"),
        "{}",
        text(&ok.stdout)
    );

    // A bad regex on line 5 of the operator pack.
    let bad = "\n[[rule]]\nid = \"x\"\nprograms = [\"a\"]\nargs = \"(unclosed\"\ntier = \"high\"\nwhy = \"y\"\n";
    write_config(dir.path(), CONFIG, bad);
    let out = run(&["--config", &cfg, "policy", "lint"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("extra.toml:5: rule x: invalid args regex"),
        "{err}"
    );

    // An example the pack's rules do not satisfy, on line 3.
    let wrong = "[[example]]\n# comment\ncommand = \"ls\"\ntier = \"high\"\n";
    write_config(dir.path(), CONFIG, wrong);
    let out = run(&["--config", &cfg, "policy", "lint"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("extra.toml:3: example \"ls\" should be high but is low"),
        "{err}"
    );

    // A typo in the config itself: file, line and column.
    write_config(
        dir.path(),
        &CONFIG.replace("medium_quorum", "medium_quorom"),
        EXTRA,
    );
    let out = run(&["--config", &cfg, "policy", "lint"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("airlock.toml:5:"), "{err}");
    assert!(err.contains("medium_quorom"), "{err}");
}

/// Without `--config`, lint takes ./airlock.toml like every other command, and says what it
/// needs when there is none.
#[test]
fn policy_lint_defaults_to_the_config_in_the_current_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), CONFIG, EXTRA);
    let lint_in = |cwd: &Path| {
        Command::new(BIN)
            .args(["policy", "lint"])
            .current_dir(cwd)
            .env_remove("AIRLOCK_CONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("airlock policy lint")
    };
    let ok = lint_in(dir.path());
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("ok — 2 agents, 2 targets"),
        "{}",
        text(&ok.stdout)
    );
    let empty = tempfile::tempdir().expect("tempdir");
    let none = lint_in(empty.path());
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none.stderr).contains("policy lint needs --config FILE (there is no ./airlock.toml)"),
        "{}",
        text(&none.stderr)
    );
}
