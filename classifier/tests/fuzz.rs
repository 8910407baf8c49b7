//! Property tests: arbitrary bytes and grammar-shaped random shell never make the classifier
//! panic, hang or contradict itself, and wrapping a command never makes it look safer.
//!
//! Each property runs a fixed number of cases under a wall-clock watchdog, so CI time is
//! bounded; set `AIRLOCK_FUZZ_CASES` to run longer locally.

use std::sync::mpsc;
use std::time::Duration;

use airlock_classifier::{Assessment, Classifier, Context, MAX_COMMAND_BYTES, Tier};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A run that has not finished by then is a hang, whatever the machine.
const WATCHDOG: Duration = Duration::from_secs(300);

fn cases(default: u32) -> u32 {
    std::env::var("AIRLOCK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run `body` on a worker thread and fail if it has not finished within the watchdog.
fn bounded(name: &str, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.into())
        // Deeply nested input recurses in the parser; give it the stack a gateway task has.
        .stack_size(16 * 1024 * 1024)
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .expect("spawn worker");
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: surface its message.
            if let Err(p) = worker.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: no result within {WATCHDOG:?}: hang")
        }
    }
}

/// What must hold for every assessment, whatever the input.
fn consistent(a: &Assessment) -> Result<(), TestCaseError> {
    // (Used outside proptest too, where the error is simply unwrapped.)
    let (lo, hi) = match a.tier {
        Tier::Low => (0, 29),
        Tier::Medium => (30, 69),
        Tier::High => (70, 100),
    };
    prop_assert!(
        (lo..=hi).contains(&a.score),
        "score {} outside the {} band",
        a.score,
        a.tier
    );
    prop_assert!(!a.reasons.is_empty(), "an assessment always says why");
    let top = a.reasons.iter().map(|r| r.tier).max();
    prop_assert_eq!(top, Some(a.tier), "tier is the highest reason's tier");
    Ok(())
}

#[test]
fn arbitrary_bytes_never_panic() {
    bounded("arbitrary-bytes", || {
        let c = Classifier::builtin();
        let ctx = Context::default();
        let mut runner = TestRunner::new(Config {
            cases: cases(2000),
            failure_persistence: None,
            ..Config::default()
        });
        let bytes = proptest::collection::vec(any::<u8>(), 0..2048);
        runner
            .run(&bytes, |b| consistent(&c.classify_bytes(&b, &ctx)))
            .expect("arbitrary bytes");
        // Shell-ish bytes hit the parser much harder than uniform noise does.
        let shellish = proptest::collection::vec(
            prop::sample::select(b"$()`'\"\\{}[]<>|&;!#*?~=-_ \t\nabcrmfsh0123/.:%^@+,".to_vec()),
            0..512,
        );
        runner
            .run(&shellish, |b| consistent(&c.classify_bytes(&b, &ctx)))
            .expect("shell-ish bytes");
    });
}

/// Words an agent might send, dangerous and not.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "ls",
            "rm",
            "-rf",
            "/",
            "/srv",
            "cat",
            "/etc/shadow",
            "echo",
            "git",
            "push",
            "--force",
            "kubectl",
            "delete",
            "psql",
            "-c",
            "'DROP TABLE t'",
            "sudo",
            "env",
            "X=1",
            "timeout",
            "10",
            "xargs",
            "find",
            ".",
            "-exec",
            "{}",
            "\\;",
            "bash",
            "sh",
            "python3",
            "'import os'",
            "$X",
            "${Y:-z}",
            "\"$HOME/.ssh\"",
            "$'\\x72\\x6d'",
            "r''m",
            "\\rm",
            "2>&1",
            ">/dev/null",
            ">",
            "out.txt",
            "<<<",
            "'x'",
            "*",
            "~",
            "dd",
            "of=/dev/sda",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,8}",
        "-{1,2}[a-z]{1,6}",
    ]
}

fn simple() -> impl Strategy<Value = String> {
    proptest::collection::vec(word(), 1..6).prop_map(|w| w.join(" "))
}

/// Shell programs built from the grammar: lists, pipelines, subshells, substitutions, wrappers.
fn program() -> impl Strategy<Value = String> {
    simple().prop_recursive(5, 64, 4, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} | {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}; {b}")),
            inner.clone().prop_map(|a| format!("( {a} )")),
            inner.clone().prop_map(|a| format!("{{ {a}; }}")),
            inner.clone().prop_map(|a| format!("echo $( {a} )")),
            inner.clone().prop_map(|a| format!("sudo {a}")),
            inner.clone().prop_map(|a| format!("bash -c {}", quote(&a))),
            inner.clone().prop_map(|a| format!("if {a}; then {a}; fi")),
            inner
                .clone()
                .prop_map(|a| format!("for i in 1 2; do {a}; done")),
            inner.clone().prop_map(|a| format!("f() {{ {a}; }}; f")),
        ]
    })
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn grammar_shaped_commands_are_consistent_and_wrapping_never_lowers_the_tier() {
    bounded("grammar", || {
        let c = Classifier::builtin();
        let ctx = Context::default();
        let mut runner = TestRunner::new(Config {
            cases: cases(1500),
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&program(), |cmd| {
                prop_assume!(cmd.len() < MAX_COMMAND_BYTES / 4);
                let base = c.classify(&cmd, &ctx);
                consistent(&base)?;
                // Hiding a command behind a wrapper, a substitution or a list never helps.
                for wrapped in [
                    format!("bash -c {}", quote(&cmd)),
                    format!("sh -c {}", quote(&cmd)),
                    format!("echo $( {cmd} )"),
                    format!("true && {{ {cmd}; }}"),
                    format!("ls; {cmd}"),
                    format!("( {cmd} ) | cat"),
                    format!("eval {}", quote(&cmd)),
                ] {
                    let w = c.classify(&wrapped, &ctx);
                    consistent(&w)?;
                    prop_assert!(
                        w.tier >= base.tier,
                        "{wrapped:?} is {} but {cmd:?} alone is {}",
                        w.tier,
                        base.tier
                    );
                }
                Ok(())
            })
            .expect("grammar-shaped commands");
    });
}

#[test]
fn pathological_nesting_is_bounded() {
    bounded("nesting", || {
        let c = Classifier::builtin();
        let ctx = Context::default();
        for depth in [7usize, 50, 65, 500, 5000] {
            for (open, close) in [("$(", ")"), ("(", ")"), ("{ ", "; }"), ("`", "`")] {
                let cmd = format!("{}ls{}", open.repeat(depth), close.repeat(depth));
                let a = c.classify(&cmd, &ctx);
                // Past the nesting limit nothing is parsed and the answer is high; below it,
                // `( ( ls ) )` is just `ls`, but `$( $( ls ) )` nests re-parses and is bounded.
                // (Backticks do not nest without escaping: a run of them is a row of empty
                // substitutions, so they only have to come out consistent.)
                consistent(&a).expect("consistent");
                if depth > airlock_classifier::MAX_NESTING && open != "`" {
                    assert_eq!(a.tier, Tier::High, "{open}…{close} ×{depth}");
                }
            }
        }
        let long = "a".repeat(MAX_COMMAND_BYTES + 1);
        assert_eq!(c.classify(&long, &ctx).tier, Tier::High);
        let wide = vec!["ls"; 5000].join(" | ");
        assert_eq!(c.classify(&wide, &ctx).tier, Tier::Low);
    });
}
