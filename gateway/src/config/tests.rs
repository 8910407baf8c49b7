use super::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHj1o0d5P2rJk8s1yQ2qk4j4mA5l2Wb3kO3Xw2nX8C9b bot";

#[test]
fn defaults() {
    let c = Config::parse("", Path::new("/etc/airlock/airlock.toml")).unwrap();
    assert_eq!(c.ssh_listen.to_string(), "127.0.0.1:2222");
    assert_eq!(c.reviewer_listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.approval_timeout, Duration::from_secs(300));
    assert_eq!(c.high_quorum, 2);
    assert_eq!(c.data_dir, PathBuf::from("/etc/airlock/airlock-data"));
    assert!(c.database_url.starts_with("sqlite://"));
    assert_eq!(c.targets.len(), 1);
}

#[test]
fn unknown_keys_name_the_line() {
    let err = Config::parse(
        "[ssh]\nlisten = \"127.0.0.1:1\"\nlisten_typo = 1\n",
        Path::new("a.toml"),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("a.toml:3:"), "{msg}");
    assert!(msg.contains("listen_typo"), "{msg}");
}

#[test]
fn agents_and_targets_are_validated() {
    let ok = format!(
        "[[target]]\nname = \"local\"\nkind = \"local\"\n[[agent]]\nname = \"bot\"\nkeys = [\"{KEY}\"]\ntargets = [\"local\"]\n"
    );
    let c = Config::parse(&ok, Path::new("a.toml")).unwrap();
    assert!(c.agents[0].may_use("local"));
    assert!(!c.agents[0].may_use("prod"));
    let bad_target = ok.replace("targets = [\"local\"]", "targets = [\"nope\"]");
    assert!(
        Config::parse(&bad_target, Path::new("a.toml"))
            .unwrap_err()
            .to_string()
            .contains("unknown target")
    );
    let bad_key = ok.replace(KEY, "ssh-ed25519 garbage");
    assert!(
        Config::parse(&bad_key, Path::new("a.toml"))
            .unwrap_err()
            .to_string()
            .contains("key #1")
    );
    let bad_q = "[approval]\nhigh_quorum = 1\n";
    assert!(
        Config::parse(bad_q, Path::new("a.toml"))
            .unwrap_err()
            .to_string()
            .contains("at least 2")
    );
    let bad_t = "[approval]\ntimeout = \"soon\"\n";
    assert!(
        Config::parse(bad_t, Path::new("a.toml"))
            .unwrap_err()
            .to_string()
            .contains("timeout")
    );
}

#[test]
fn webhooks_and_whitelist_sections_are_checked() {
    let err = |text: &str| {
        Config::parse(text, Path::new("a.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let hook = |body: &str| format!("[[webhook]]\nname = \"ops\"\n{body}\n");
    assert!(err(&hook("url = \"ftp://x\"")).contains("https://"));
    assert!(err(&hook("url = \"https://x\"\nformat = \"xml\"")).contains("format"));
    assert!(err(&hook("url = \"https://x\"\nevents = [\"vote\"]")).contains("vote"));
    assert!(err(&hook("url = \"https://x\"\nattempts = 0")).contains("attempts"));
    assert!(err(&hook("url = \"https://x\"\ncolour = 1")).contains("colour"));
    let ok = Config::parse(&hook("url = \"https://x\""), Path::new("a.toml")).unwrap();
    assert_eq!(ok.webhooks.len(), 1);
    assert_eq!(ok.webhooks[0].attempts, 5);
    assert!(err("[whitelist]\ndefault_ttl = \"soon\"\n").contains("default_ttl"));
    assert!(err("[whitelist]\ndefault_ttl = \"never\"\nmax_ttl = \"30d\"\n").contains("longer"));
    let w = Config::parse(
        "[whitelist]\ndefault_ttl = \"1d\"\nmax_ttl = \"30d\"\n",
        Path::new("a.toml"),
    )
    .unwrap()
    .whitelist;
    assert_eq!(w.default_ttl, Some(Duration::from_secs(86400)));
}

#[test]
fn the_example_config_parses() {
    let text = include_str!("../../../config/airlock.example.toml");
    let c = Config::parse(text, Path::new("/etc/airlock/airlock.toml")).expect("example parses");
    assert_eq!(
        c.path.as_deref(),
        Some(Path::new("/etc/airlock/airlock.toml"))
    );
}

#[test]
fn the_metrics_listener_is_off_unless_configured() {
    let c = Config::parse("", Path::new("a.toml")).expect("empty config");
    assert_eq!(c.metrics_listen, None);
    let c = Config::parse(
        "[metrics]\nlisten = \"127.0.0.1:9464\"\n",
        Path::new("a.toml"),
    )
    .expect("metrics listen");
    assert_eq!(c.metrics_listen.map(|a| a.port()), Some(9464));
    let err = Config::parse("[metrics]\nlisten = \"nowhere\"\n", Path::new("a.toml"))
        .expect_err("a bad address");
    assert!(err.to_string().contains("[metrics] listen"), "{err}");
}

#[test]
fn target_containment_keys_are_checked() {
    let err = |body: &str| {
        Config::parse(
            &format!("[[target]]\nname = \"t\"\n{body}\n"),
            Path::new("a.toml"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    // One dialect: the old `shell` key says why it went.
    assert!(err("kind = \"local\"\nshell = \"/bin/sh\"").contains("bash --noprofile --norc"));
    // Pinned names cannot be overridden by the operator either.
    for pinned in [
        "PAGER",
        "GIT_SSH_COMMAND",
        "LD_PRELOAD",
        "BASH_ENV",
        "TMPDIR",
    ] {
        let e = err(&format!("kind = \"local\"\nenv = {{ {pinned} = \"x\" }}"));
        assert!(e.contains(pinned) && e.contains("pins"), "{pinned}: {e}");
    }
    assert!(err("kind = \"local\"\nrunner = \"/usr/bin/airlock\"").contains("runner"));
    let ok = Config::parse(
        "[[target]]\nname = \"t\"\nkind = \"local\"\nuser = \"nobody\"\nunconfined = true\nenv = { KUBECONFIG = \"/k\" }\n",
        Path::new("a.toml"),
    )
    .expect("valid");
    match &ok.targets[0].kind {
        TargetKind::Local(l) => {
            assert_eq!(l.user.as_deref(), Some("nobody"));
            assert!(l.unconfined);
        }
        TargetKind::Ssh(_) => panic!("local expected"),
    }
    assert_eq!(
        ok.targets[0].env.get("KUBECONFIG").map(String::as_str),
        Some("/k")
    );
}

#[test]
fn reviewer_and_approval_keys_and_labels_are_checked() {
    let p = Path::new("a.toml");
    let c = Config::parse(
        "[reviewer]\npublic_url = \"https://airlock.example.com/\"\n[approval]\nwhen_nobody_online = \"deny\"\n",
        p,
    )
    .unwrap();
    assert_eq!(
        c.reviewer_public_url.as_deref(),
        Some("https://airlock.example.com")
    );
    assert_eq!(c.when_nobody_online, NobodyOnline::Deny);
    assert_eq!(
        Config::parse("", p).unwrap().when_nobody_online,
        NobodyOnline::Wait
    );
    for (bad, says) in [
        (
            "[approval]\nwhen_nobody_online = \"maybe\"\n",
            "when_nobody_online",
        ),
        (
            "[reviewer]\npublic_url = \"airlock.example.com\"\n",
            "public_url",
        ),
        ("[reviewer]\npublic_url = \"https://a b\"\n", "public_url"),
        (
            "[[target]]\nname = \"t\"\nkind = \"local\"\nlabels = { env = \"pro\u{0434}\" }\n",
            "labels must be",
        ),
        (
            "[[target]]\nname = \"t\"\nkind = \"local\"\nlabels = { env = \"prod\u{202E}\" }\n",
            "⟨U+202E⟩",
        ),
        (
            "[[target]]\nname = \"t\"\nkind = \"local\"\nlabels = { env = \"x\\u001b[2K\" }\n",
            "⟨ESC⟩",
        ),
    ] {
        let err = Config::parse(bad, p).unwrap_err().to_string();
        assert!(err.contains(says), "{bad:?}: {err}");
    }
    let long = format!(
        "[[target]]\nname = \"t\"\nkind = \"local\"\nlabels = {{ env = \"{}\" }}\n",
        "x".repeat(65)
    );
    assert!(Config::parse(&long, p).is_err());
}

#[test]
fn groups_rules_and_owners_parse_and_unsafe_rules_are_refused() {
    let base = format!(
        r#"[[target]]
name = "db-main"
kind = "local"
labels = {{ env = "prod" }}
[[reviewer_group]]
name = "sre"
members = ["alice", "bob"]
[[reviewer_group]]
name = "dba"
members = ["carol"]
oidc_groups = ["db-admins"]
scope = {{ targets = ["db-*"], labels = {{ env = "prod" }} }}
[[agent]]
name = "bot"
keys = ["{KEY}"]
targets = ["db-main"]
owner = "alice"
"#
    );
    let rule = |m: &str, require: &str| {
        format!(
            "{base}[[approval_rule]]\nname = \"r\"\nmatch = {m}\nrequire = {require}\ntimeout = \"10m\"\n"
        )
    };
    let ok = rule(
        r#"{ tier = "high", targets = ["db-*"], labels = { env = "prod" } }"#,
        r#"[{ group = "dba", count = 1 }, { group = "sre", count = 1 }]"#,
    );
    let c = Config::parse(&ok, Path::new("a.toml")).unwrap();
    assert_eq!(c.authority.groups().len(), 2);
    assert_eq!(
        c.authority.rules()[0].timeout,
        Some(Duration::from_secs(600))
    );
    assert_eq!(c.authority.owner_of("bot"), Some("alice"));
    let medium = rule(
        r#"{ tier = ["low", "medium"] }"#,
        r#"[{ any = true, count = 1 }]"#,
    );
    assert!(Config::parse(&medium, Path::new("a.toml")).is_ok());
    for (m, require, says) in [
        (
            "{}",
            r#"[{ any = true, count = 1 }]"#,
            "high needs at least 2",
        ),
        (
            r#"{ tier = "high" }"#,
            r#"[{ group = "sre", count = 1 }]"#,
            "high needs at least 2",
        ),
        (
            r#"{ tier = "medium" }"#,
            r#"[{ group = "ops", count = 1 }]"#,
            "\"ops\"",
        ),
        (
            r#"{ tier = "medium" }"#,
            r#"[{ group = "sre", any = true, count = 1 }]"#,
            "pick one",
        ),
        (
            r#"{ tier = "medium" }"#,
            r#"[{ count = 1 }]"#,
            "`any = true`",
        ),
        (r#"{ tier = "medium" }"#, "[]", "empty"),
        (
            r#"{ tier = "urgent" }"#,
            r#"[{ any = true, count = 1 }]"#,
            "urgent",
        ),
        (
            r#"{ tier = [] }"#,
            r#"[{ any = true, count = 2 }]"#,
            "matches nothing",
        ),
    ] {
        let err = Config::parse(&rule(m, require), Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{m} {require}: {err}");
        assert!(err.starts_with("a.toml"), "{err}");
    }
    let bad_owner = ok.replace("owner = \"alice\"", "owner = \"al ice\"");
    assert!(Config::parse(&bad_owner, Path::new("a.toml")).is_err());
}
