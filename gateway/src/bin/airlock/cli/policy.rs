//! `airlock policy check` (exit 0 allow or gated, 1 deny, 2 usage or config error) and
//! `airlock policy lint` (exit 0 valid, 1 invalid).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use airlock_approvals::Decision;
use airlock_gateway::config::Config;
use airlock_gateway::policy::{self, Check};
use serde_json::json;

pub const EXIT_USAGE: u8 = 2;

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("airlock: error: {msg}");
    ExitCode::from(EXIT_USAGE)
}

pub fn check(
    config: Option<&Path>,
    agent: &str,
    target: &str,
    command: &str,
    json: bool,
) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let c = match policy::check(&config, agent, target, command) {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let printed = if json {
        print_json(&c)
    } else {
        print_human(&c)
    };
    if let Err(e) = printed {
        return usage_error(format!("writing output: {e}"));
    }
    ExitCode::from(c.exit_code())
}

fn print_human(c: &Check) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match &c.decision {
        Decision::Allow { why } => writeln!(out, "allow: {why}")?,
        Decision::Ask { quorum, .. } => match &c.needs {
            Some((needs, timeout)) => writeln!(
                out,
                "needs approval: {}{} (denied after {} without a decision)",
                needs.describe(),
                needs
                    .rule
                    .as_deref()
                    .map(|r| format!(", approval_rule {r}"))
                    .unwrap_or_default(),
                humantime::format_duration(*timeout)
            )?,
            None => writeln!(
                out,
                "needs approval: {quorum} reviewer{}",
                if *quorum == 1 { "" } else { "s" }
            )?,
        },
        Decision::Deny { reason } => writeln!(out, "deny: {reason}")?,
    }
    if let Some(a) = &c.assessment {
        super::classify::print_human(&mut out, a)?;
    }
    Ok(())
}

fn print_json(c: &Check) -> std::io::Result<()> {
    let (decision, extra) = match &c.decision {
        Decision::Allow { why } => ("allow", json!({ "why": why })),
        Decision::Ask { quorum, .. } => (
            "ask",
            match &c.needs {
                Some((needs, timeout)) => json!({
                    "quorum": needs.total(),
                    "rule": needs.rule,
                    "needs": needs.describe(),
                    "require": needs.needs,
                    "excluded": needs.excluded,
                    "timeout_s": timeout.as_secs(),
                }),
                None => json!({ "quorum": quorum }),
            },
        ),
        Decision::Deny { reason } => ("deny", json!({ "reason": reason })),
    };
    let mut v = json!({ "decision": decision });
    if let (Some(obj), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        obj.extend(e.clone());
        if let Some(a) = &c.assessment {
            obj.insert("tier".into(), json!(a.tier));
            obj.insert("score".into(), json!(a.score));
            obj.insert("reasons".into(), json!(a.reasons));
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")
}

pub fn lint(config: Option<&Path>) -> ExitCode {
    // The same default as every command (./airlock.toml); the built-in default has no file
    // to lint.
    let default = Path::new("airlock.toml");
    let path = match config {
        Some(p) => p,
        None if default.exists() => default,
        None => return usage_error("policy lint needs --config FILE (there is no ./airlock.toml)"),
    };
    let (loaded, findings) = policy::lint(path);
    let mut errors = 0;
    for f in &findings {
        if f.error {
            errors += 1;
            eprintln!("error: {}", f.message);
        } else {
            eprintln!("warning: {}", f.message);
        }
    }
    match loaded {
        Some(c) if errors == 0 => {
            // Compiled (and its error reported) by the lint above; asked again for the counts.
            let pack = match c.classifier() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            println!(
                "{}: ok — {} agents, {} targets, {} rules from {} builtin and {} extra packs, {} examples hold",
                path.display(),
                c.agents.len(),
                c.targets.len(),
                pack.pack().len(),
                airlock_classifier::RulePack::builtin_sources().len(),
                c.rule_packs.len(),
                pack.pack().examples().len()
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "{}: {errors} error{}",
                path.display(),
                if errors == 1 { "" } else { "s" }
            );
            ExitCode::from(1)
        }
    }
}
