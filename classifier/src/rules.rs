//! Rule packs: data that says which commands are risky, and the matcher that applies them.
//!
//! Rules are indexed by program name, so the cost of classifying a command grows with the rules
//! for *its* program, not with the size of the pack. SQL inside database clients is found with
//! one Aho-Corasick automaton over statement keywords and then judged statement by statement.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::Deserialize;

use crate::walk::SimpleCmd;
use crate::{Reason, Tier};

const BUILTIN: &str = include_str!("../rules/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum RulePackError {
    #[error("rule pack is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("rule {id}: invalid args regex: {source}")]
    Regex {
        id: String,
        #[source]
        source: regex::Error,
    },
    #[error("rule {id}: invalid tier: {tier}")]
    Tier { id: String, tier: String },
    #[error("rule {id}: `programs` is empty")]
    NoPrograms { id: String },
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PackFile {
    #[serde(default)]
    programs: ProgramLists,
    #[serde(default)]
    rule: Vec<RuleFile>,
    #[serde(default)]
    sql: Option<SqlFile>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProgramLists {
    #[serde(default)]
    low: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    programs: Vec<String>,
    #[serde(default)]
    args: Option<String>,
    tier: String,
    why: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlFile {
    programs: Vec<String>,
}

#[derive(Debug)]
struct Rule {
    id: String,
    args: Option<Regex>,
    tier: Tier,
    why: String,
}

/// A compiled rule pack. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct RulePack {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    rules: Vec<Rule>,
    by_program: HashMap<String, Vec<usize>>,
    low_programs: HashSet<String>,
    sql_programs: HashSet<String>,
    sql_keywords: AhoCorasick,
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish"];
/// Programs that hand the user an interpreter with no gate in between.
const INTERACTIVE: &[&str] = &[
    "python", "python3", "perl", "ruby", "node", "irb", "php", "lua", "vim", "vi", "nvim", "emacs",
    "nano", "less", "more", "ssh", "telnet", "nc", "ncat", "socat", "screen", "tmux", "gdb",
];
const SQL_KEYWORDS: &[&str] = &[
    "drop",
    "truncate",
    "delete",
    "update",
    "insert",
    "alter",
    "create",
    "grant",
    "revoke",
    "flushall",
    "flushdb",
    "dropdatabase",
    "deletemany",
    "where",
    "select",
    "explain",
    "show",
];

impl RulePack {
    /// The pack compiled into the binary. It is tested, so failing here is a build defect.
    pub fn builtin() -> Self {
        match Self::from_toml(&[BUILTIN]) {
            Ok(p) => p,
            // The builtin pack is covered by unit tests; reaching this is a packaging bug.
            Err(e) => panic!("builtin rule pack is invalid: {e}"),
        }
    }

    /// The builtin pack extended by `extra` packs; a later rule with the same id replaces an
    /// earlier one, so operators can override builtin rules.
    pub fn builtin_with(extra: &[&str]) -> Result<Self, RulePackError> {
        let mut all = vec![BUILTIN];
        all.extend_from_slice(extra);
        Self::from_toml(&all)
    }

    /// Compile packs given as TOML texts, in order.
    pub fn from_toml(texts: &[&str]) -> Result<Self, RulePackError> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut programs_of: Vec<Vec<String>> = Vec::new();
        let mut low_programs = HashSet::new();
        let mut sql_programs = HashSet::new();
        for text in texts {
            let file: PackFile = toml::from_str(text)?;
            low_programs.extend(file.programs.low);
            if let Some(sql) = file.sql {
                sql_programs.extend(sql.programs);
            }
            for r in file.rule {
                if r.programs.is_empty() {
                    return Err(RulePackError::NoPrograms { id: r.id });
                }
                let tier = r.tier.parse().map_err(|_| RulePackError::Tier {
                    id: r.id.clone(),
                    tier: r.tier.clone(),
                })?;
                let args = r
                    .args
                    .as_deref()
                    .map(Regex::new)
                    .transpose()
                    .map_err(|source| RulePackError::Regex {
                        id: r.id.clone(),
                        source,
                    })?;
                let rule = Rule {
                    id: r.id,
                    args,
                    tier,
                    why: r.why,
                };
                if let Some(i) = rules.iter().position(|x| x.id == rule.id) {
                    rules[i] = rule;
                    programs_of[i] = r.programs;
                } else {
                    rules.push(rule);
                    programs_of.push(r.programs);
                }
            }
        }
        let mut by_program: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, progs) in programs_of.into_iter().enumerate() {
            for p in progs {
                by_program.entry(p).or_default().push(i);
            }
        }
        let sql_keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(SQL_KEYWORDS)
            .map_err(|e| RulePackError::Regex {
                id: "sql.keywords".into(),
                source: regex::Error::Syntax(e.to_string()),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                rules,
                by_program,
                low_programs,
                sql_programs,
                sql_keywords,
            }),
        })
    }

    /// Number of rules (for `policy lint` output).
    pub fn len(&self) -> usize {
        self.inner.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.rules.is_empty()
    }

    /// All reasons one simple command earns.
    pub(crate) fn evaluate(&self, cmd: &SimpleCmd) -> Vec<Reason> {
        let inner = &*self.inner;
        let mut out = Vec::new();
        let span = cmd.span;
        let reason = |rule: &str, tier: Tier, text: String| Reason {
            rule: rule.to_owned(),
            span,
            text,
            tier,
        };
        let program = cmd.argv.first().map(String::as_str).unwrap_or_default();
        let args = cmd.argv.get(1..).map(|a| a.join(" ")).unwrap_or_default();

        if cmd.dynamic_name {
            let destructive = looks_destructive(&args);
            out.push(reason(
                "shell.dynamic-command",
                if destructive {
                    Tier::High
                } else {
                    Tier::Medium
                },
                if destructive {
                    "command name is only known at run time and the arguments look destructive"
                        .into()
                } else {
                    "command name is only known at run time".into()
                },
            ));
        }
        for w in &cmd.wrappers {
            if w == "sudo" || w == "doas" {
                out.push(reason(
                    "priv.sudo",
                    Tier::Medium,
                    format!("runs with elevated privileges ({w})"),
                ));
            }
        }
        for r in &cmd.redirects {
            out.push(redirect_reason(r, span));
        }

        let mut matched = false;
        if !cmd.dynamic_name {
            for &i in inner.by_program.get(program).into_iter().flatten() {
                let rule = &inner.rules[i];
                if rule.args.as_ref().is_none_or(|re| re.is_match(&args)) {
                    matched = true;
                    out.push(reason(
                        &rule.id,
                        rule.tier,
                        format!("{program}: {}", rule.why),
                    ));
                }
            }
            if inner.sql_programs.contains(program) {
                matched = true;
                out.push(self.sql_reason(cmd, &args, span));
            }
            if SHELLS.contains(&program) {
                matched = true;
                out.push(shell_reason(cmd, program, span));
            } else if INTERACTIVE.contains(&program) && interactive_use(program, &cmd.argv) {
                matched = true;
                out.push(reason(
                    "exec.interactive",
                    Tier::High,
                    format!("{program} opens an interactive session that Airlock cannot gate"),
                ));
            }
            if cmd.stdin_piped && is_interpreter(program) && !has_inline_code(&cmd.argv) {
                matched = true;
                out.push(reason(
                    "exec.piped-into-interpreter",
                    Tier::High,
                    format!("pipes data into {program}, which runs it as code"),
                ));
            }
        }
        if !matched && !cmd.dynamic_name {
            if inner.low_programs.contains(program) {
                out.push(reason(
                    "program.read-only",
                    Tier::Low,
                    format!("{program} only reads or prints"),
                ));
            } else if program == ":" && !cmd.redirects.is_empty() {
                // Already explained by the redirect reason.
            } else {
                out.push(reason(
                    "program.unknown",
                    Tier::Medium,
                    format!("{program}: not a known read-only program"),
                ));
            }
        }
        out
    }

    fn sql_reason(&self, cmd: &SimpleCmd, args: &str, span: Option<(usize, usize)>) -> Reason {
        let program = cmd.argv.first().map(String::as_str).unwrap_or_default();
        let mut text = args.to_owned();
        if let Some(s) = &cmd.stdin_text {
            text.push(' ');
            text.push_str(s);
        }
        let (tier, why) = sql_tier(&self.inner.sql_keywords, &text, cmd.stdin_piped, program);
        Reason {
            rule: format!("sql.{}", tier.as_str()),
            span,
            text: format!("{program}: {why}"),
            tier,
        }
    }
}

fn is_interpreter(p: &str) -> bool {
    SHELLS.contains(&p)
        || matches!(
            p,
            "python" | "python3" | "perl" | "ruby" | "node" | "php" | "lua"
        )
}

fn has_inline_code(argv: &[String]) -> bool {
    argv.iter()
        .skip(1)
        .any(|a| matches!(a.as_str(), "-c" | "-e" | "-E" | "-r" | "--eval"))
}

/// Whether `program argv…` would drop the caller into an interactive session.
fn interactive_use(program: &str, argv: &[String]) -> bool {
    let operands = argv.iter().skip(1).filter(|a| !a.starts_with('-')).count();
    match program {
        "python" | "python3" | "perl" | "ruby" | "node" | "php" | "lua" | "irb" => {
            operands == 0
                && !has_inline_code(argv)
                && !argv.iter().any(|a| a == "--version" || a == "-V")
        }
        // A pager or editor on a file still offers `!cmd` shell escapes.
        "vim" | "vi" | "nvim" | "emacs" | "nano" | "less" | "more" => true,
        "ssh" => operands <= 1,
        _ => true,
    }
}

fn shell_reason(cmd: &SimpleCmd, program: &str, span: Option<(usize, usize)>) -> Reason {
    let script = cmd
        .argv
        .iter()
        .skip(1)
        .find(|a| !a.starts_with('-') && !a.starts_with('+'));
    let (tier, rule, text) = if cmd.stdin_piped {
        (
            Tier::High,
            "exec.piped-into-shell",
            format!("pipes data into {program}, which runs it as commands"),
        )
    } else if let Some(s) = script {
        (
            Tier::Medium,
            "exec.shell-script",
            format!("runs the script {s}, whose contents Airlock cannot see"),
        )
    } else {
        (
            Tier::High,
            "exec.interactive-shell",
            format!("{program} opens a shell that Airlock cannot gate"),
        )
    };
    Reason {
        rule: rule.into(),
        span,
        text,
        tier,
    }
}

/// Arguments that make an unknown command look like a wrecking ball.
fn looks_destructive(args: &str) -> bool {
    args.split_whitespace().any(|a| {
        matches!(
            a,
            "/" | "/*" | "~" | "*" | "--force" | "--recursive" | "--no-preserve-root"
        ) || (a.starts_with('-')
            && !a.starts_with("--")
            && (a.contains('r') || a.contains('R'))
            && a.contains('f'))
            || a.starts_with("of=/dev/")
    })
}

const SENSITIVE_PREFIXES: &[&str] = &[
    "/etc/",
    "/boot/",
    "/dev/sd",
    "/dev/nvme",
    "/dev/vd",
    "/dev/xvd",
    "/dev/mapper/",
    "/dev/disk/",
    "/var/lib/",
    "/usr/",
    "/bin/",
    "/sbin/",
    "/lib/",
    "/root/",
    "/proc/",
    "/sys/",
    "/var/spool/cron",
    "~/.ssh/",
    "~/.bashrc",
    "~/.profile",
    "~/.bash_profile",
    "~/.zshrc",
];

fn redirect_reason(r: &crate::walk::Redirect, span: Option<(usize, usize)>) -> Reason {
    let t = r.target.as_str();
    let (tier, rule, text) =
        if matches!(t, "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty") {
            (Tier::Low, "redirect.null", format!("output goes to {t}"))
        } else if r.dynamic {
            (
                Tier::Medium,
                "redirect.dynamic",
                "writes to a file named only at run time".into(),
            )
        } else if SENSITIVE_PREFIXES.iter().any(|p| t.starts_with(p)) || t.contains("/.ssh/") {
            (
                Tier::High,
                "redirect.sensitive",
                format!("writes to the sensitive path {t}"),
            )
        } else {
            (Tier::Medium, "redirect.write", format!("writes to {t}"))
        };
    Reason {
        rule: rule.into(),
        span,
        text,
        tier,
    }
}

/// Judge the SQL found in a client's arguments or stdin.
fn sql_tier(ac: &AhoCorasick, text: &str, piped: bool, program: &str) -> (Tier, String) {
    let lower = text.to_ascii_lowercase();
    let mut found: HashSet<&str> = HashSet::new();
    for m in ac.find_iter(&lower) {
        // Whole words only: `updated_at` is not UPDATE.
        let before = lower[..m.start()].chars().next_back();
        let after = lower[m.end()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
        if boundary(before) && boundary(after) {
            found.insert(SQL_KEYWORDS[m.pattern().as_usize()]);
        }
    }
    let has = |k: &str| found.contains(k);
    if has("drop") || has("truncate") || has("flushall") || has("flushdb") || has("dropdatabase") {
        return (Tier::High, "drops, truncates or flushes data".into());
    }
    if has("alter") && lower.contains(" drop ") {
        return (
            Tier::High,
            "ALTER … DROP removes a column or constraint".into(),
        );
    }
    if (has("delete") || has("update") || has("deletemany")) && !has("where") {
        return (
            Tier::High,
            "DELETE or UPDATE without WHERE touches every row".into(),
        );
    }
    if has("delete")
        || has("update")
        || has("insert")
        || has("alter")
        || has("create")
        || has("grant")
        || has("revoke")
    {
        return (Tier::Medium, "writes to the database".into());
    }
    if has("select") || has("explain") || has("show") {
        return (Tier::Low, "read-only query".into());
    }
    if piped {
        return (
            Tier::Medium,
            "statements arrive on stdin and cannot be checked".into(),
        );
    }
    (
        Tier::Medium,
        format!("{program} session; statements are not visible"),
    )
}
