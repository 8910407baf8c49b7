//! Judging the text of a file a command runs (see [`crate::files`]): a shell script as a whole
//! program, SQL through the SQL judge, Python/Perl/Ruby/Node code through the same checks
//! `python3 -c CODE` gets, a Makefile's recipes and a crontab's commands as shell.
//!
//! Each file is judged twice: as a whole (what crosses units — a file written then run, a
//! function defined then called) and unit by unit (what bash would run at once: a line, or an
//! `if … fi`), so every reason can point at a line (`deploy.sh:14: rm -rf /srv/app`).

use crate::files::{FileRun, Role};
use crate::{Classifier, Context, MAX_COMMAND_BYTES, Reason, Tier};

/// What a file's bytes turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Shell,
    Python,
    Perl,
    Ruby,
    Node,
    Sql,
    Make,
    Crontab,
    /// ELF, NUL bytes, not UTF-8, or an interpreter Airlock does not read.
    Binary,
}

/// One line's contribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineReason {
    /// 1-based.
    pub line: u32,
    pub tier: Tier,
    pub rule: String,
    pub text: String,
}

/// The verdict on one file's text.
#[derive(Debug, Clone)]
pub struct FileJudgement {
    pub kind: Kind,
    pub tier: Tier,
    /// For the command's assessment: texts read `PATH:LINE: the line — why`.
    pub reasons: Vec<Reason>,
    /// Lines at medium or above, riskiest first.
    pub lines: Vec<LineReason>,
    /// Files this one runs in turn (`. ./lib.sh`), to be read too.
    pub files: Vec<FileRun>,
    /// It changes what a later name may mean — the directory (`cd`), `PATH`, or any file (a
    /// symlink re-pointed, a file copied into place) — so the files it runs after that may
    /// not be the ones the gateway would read.
    pub changes_dir: bool,
}

/// Longest quote of a line in a reason.
const QUOTE_CHARS: usize = 120;
/// Most lines one shell unit may gather before it is judged as it is: an unclosed quote on
/// line 1 must not make every later line re-parse everything before it.
const MAX_UNIT_LINES: usize = 200;

fn quote(line: &str) -> String {
    let t = line.trim();
    if t.chars().count() <= QUOTE_CHARS {
        t.to_owned()
    } else {
        format!("{}...", t.chars().take(QUOTE_CHARS).collect::<String>())
    }
}

/// What an `#!` line asks for: `#!/bin/bash`, `#!/usr/bin/env python3`, `#!/usr/bin/env -S
/// perl -w`.
fn shebang(text: &str) -> Option<(Role, String)> {
    let first = text.lines().next()?.strip_prefix("#!")?;
    let mut words = first.split_whitespace();
    let mut prog = crate::unwrap::program_name(words.next()?).to_owned();
    if prog == "env" {
        prog = words
            .find(|w| !w.starts_with('-') && !w.contains('='))
            .map(|w| crate::unwrap::program_name(w).to_owned())?;
    }
    let canon = crate::code::canonical(&prog).unwrap_or(&prog).to_owned();
    let role = match canon.as_str() {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" => Role::Shell,
        "python" | "python3" => Role::Python,
        "perl" => Role::Perl,
        "ruby" => Role::Ruby,
        "node" => Role::Node,
        "make" => Role::Make,
        _ => return None,
    };
    Some((role, canon))
}

impl Classifier {
    /// Judge the bytes of `run`, shown to reviewers as `shown` (the path as the command wrote
    /// it).
    pub fn judge_file(
        &self,
        run: &FileRun,
        shown: &str,
        bytes: &[u8],
        ctx: &Context,
    ) -> FileJudgement {
        let binary = |why: String| {
            let tier = Tier::Medium;
            FileJudgement {
                kind: Kind::Binary,
                tier,
                reasons: vec![Reason {
                    rule: "script.binary".into(),
                    span: None,
                    text: format!("{shown}: {why}: its content cannot be reviewed"),
                    tier,
                }],
                lines: Vec::new(),
                files: Vec::new(),
                changes_dir: false,
            }
        };
        if bytes.starts_with(b"\x7fELF") {
            return binary("a binary (compiled program)".into());
        }
        // Not text: a shell still runs what it can of it, line by line. Judge what it can see
        // (NULs dropped, invalid bytes replaced) and call the whole file high: nobody can say
        // what the interpreter will make of the rest.
        let mut garbled = None;
        let owned;
        let text = match std::str::from_utf8(bytes) {
            Ok(t) if !t.contains('\0') => t,
            _ => {
                owned = String::from_utf8_lossy(bytes).replace('\0', "");
                garbled = Some(Reason {
                    rule: "script.not-text".into(),
                    span: None,
                    text: format!(
                        "{shown}: holds NUL bytes or bytes that are not UTF-8: what its interpreter makes of them cannot be reviewed"
                    ),
                    tier: Tier::High,
                });
                &owned
            }
        };
        let (role, program) = match run.role {
            Role::Program => match shebang(text) {
                Some(found) => found,
                None if text.starts_with("#!") => {
                    let line = text.lines().next().unwrap_or_default();
                    let mut j = binary(format!(
                        "runs under {}, which Airlock does not read",
                        quote(line)
                    ));
                    // The `#!` line is itself a command the kernel runs.
                    j.reasons
                        .extend(self.shebang_command(line, shown, ctx, Tier::Low));
                    j.tier = j
                        .reasons
                        .iter()
                        .map(|r| r.tier)
                        .max()
                        .unwrap_or(Tier::Medium);
                    return j;
                }
                // No `#!`: exec fails and bash runs the file as a script.
                None => (Role::Shell, "bash".to_owned()),
            },
            r => (r, run.program.clone()),
        };
        let mut first = Vec::new();
        if run.role == Role::Program && text.starts_with("#!") {
            let line = text.lines().next().unwrap_or_default();
            first = self.shebang_command(line, shown, ctx, Tier::High);
        }
        let mut j = Judge {
            classifier: self,
            ctx,
            shown,
            lines: Vec::new(),
            reasons: garbled.into_iter().chain(first).collect(),
            files: Vec::new(),
            changes_dir: false,
        };
        let kind = match role {
            Role::Shell | Role::Program => {
                j.shell(text);
                Kind::Shell
            }
            Role::Python | Role::Perl | Role::Ruby | Role::Node => {
                let interp = match role {
                    Role::Python => "python3",
                    Role::Perl => "perl",
                    Role::Ruby => "ruby",
                    _ => "node",
                };
                j.code(interp, text);
                match role {
                    Role::Python => Kind::Python,
                    Role::Perl => Kind::Perl,
                    Role::Ruby => Kind::Ruby,
                    _ => Kind::Node,
                }
            }
            Role::Sql => {
                j.sql(&program, text);
                Kind::Sql
            }
            Role::Make => {
                j.make(text);
                Kind::Make
            }
            Role::Crontab => {
                j.crontab(text);
                Kind::Crontab
            }
        };
        j.finish(kind)
    }
}

impl Classifier {
    /// What the kernel runs for a `#!` line (`INTERPRETER [ARG] FILE`), judged as a command;
    /// reasons from `at_least` up, as line 1 of the file.
    fn shebang_command(
        &self,
        line: &str,
        shown: &str,
        ctx: &Context,
        at_least: Tier,
    ) -> Vec<Reason> {
        // The kernel passes everything after the interpreter as one argument; `env -S` splits
        // it again.
        let rest = line.trim_start_matches("#!").trim();
        let (interp, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let (interp, arg) = (interp.trim(), arg.trim());
        let file = crate::unwrap::shell_join(&[shown.to_owned()]);
        let command = match arg.strip_prefix("-S") {
            Some(split) if crate::unwrap::program_name(interp) == "env" => {
                format!("{} {file}", split.trim())
            }
            _ if arg.is_empty() => {
                format!("{} {file}", crate::unwrap::shell_join(&[interp.into()]))
            }
            _ => format!(
                "{} {file}",
                crate::unwrap::shell_join(&[interp.into(), arg.into()])
            ),
        };
        self.classify(&command, ctx)
            .reasons
            .into_iter()
            .filter(|r| r.tier >= at_least && r.rule != "context.production")
            .map(|r| Reason {
                text: format!("{shown}:1: {} -- {}", quote(line), r.text),
                span: None,
                ..r
            })
            .collect()
    }
}

struct Judge<'a> {
    classifier: &'a Classifier,
    ctx: &'a Context,
    shown: &'a str,
    lines: Vec<LineReason>,
    reasons: Vec<Reason>,
    files: Vec<FileRun>,
    changes_dir: bool,
}

impl Judge<'_> {
    /// Judge `command` (shell text) as the unit starting at `line` of the file, whose text is
    /// `unit` (to find a reason's line from its span).
    fn unit(&mut self, command: &str, line: u32, unit: &str, spans_in_unit: bool) {
        let a = self.classifier.classify(command, self.ctx);
        for f in a.files {
            if !self.files.contains(&f) {
                self.files.push(f);
            }
        }
        // Anything that can change which file a later name means: a directory change, PATH,
        // or any write (a symlink re-pointed, a file copied into place).
        self.changes_dir |= unit.contains("PATH=")
            || a.commands.iter().any(|c| {
                matches!(
                    c.first().map(String::as_str),
                    Some(
                        "cd" | "pushd"
                            | "popd"
                            | "ln"
                            | "mv"
                            | "cp"
                            | "install"
                            | "rsync"
                            | "export"
                            | "declare"
                            | "typeset"
                            | "hash"
                            | "alias"
                            | "enable"
                    )
                )
            })
            || a.reasons.iter().any(|r| {
                r.tier >= Tier::Medium
                    && (r.rule.starts_with("fs.") || r.rule.starts_with("redirect."))
            });
        for r in a.reasons {
            if r.rule == "shell.no-command" || r.rule == "context.production" {
                continue;
            }
            let at = match r.span {
                Some((s, _)) if spans_in_unit => {
                    let s = s.min(unit.len());
                    line + unit.get(..s).map_or(0, |p| p.matches('\n').count() as u32)
                }
                _ => line,
            };
            let text_line = unit
                .lines()
                .nth((at - line) as usize)
                .unwrap_or_default()
                .to_owned();
            self.add(at, &text_line, r);
        }
    }

    fn add(&mut self, line: u32, text_line: &str, r: Reason) {
        if r.tier >= Tier::Medium {
            self.lines.push(LineReason {
                line,
                tier: r.tier,
                rule: r.rule.clone(),
                text: r.text.clone(),
            });
        }
        self.reasons.push(Reason {
            text: format!("{}:{line}: {} -- {}", self.shown, quote(text_line), r.text),
            span: None,
            ..r
        });
    }

    /// Whole-file reasons no unit gave (what crosses units), with no line of their own.
    fn whole(&mut self, command: &str) {
        if crate::compound_openers(command) > crate::MAX_NESTING {
            self.reasons.push(Reason {
                rule: "script.too-large-to-join".into(),
                span: None,
                text: format!(
                    "{}: too many compound commands to judge as one program, so it was judged unit by unit only",
                    self.shown
                ),
                tier: Tier::Medium,
            });
            return;
        }
        if command.len() > MAX_COMMAND_BYTES {
            self.reasons.push(Reason {
                rule: "script.too-long-to-join".into(),
                span: None,
                text: format!(
                    "{}: longer than {} KiB, so it was judged unit by unit only",
                    self.shown,
                    MAX_COMMAND_BYTES / 1024
                ),
                tier: Tier::Medium,
            });
            return;
        }
        let a = self.classifier.classify(command, self.ctx);
        for r in a.reasons {
            if r.rule == "shell.no-command"
                || r.rule == "context.production"
                || self.reasons.iter().any(|k| k.rule == r.rule)
            {
                continue;
            }
            self.reasons.push(Reason {
                text: format!("{}: {}", self.shown, r.text),
                span: None,
                ..r
            });
        }
    }

    fn shell(&mut self, text: &str) {
        for (line, unit) in shell_units(text) {
            self.unit(&unit, line, &unit, true);
        }
        self.whole(text);
    }

    fn code(&mut self, interp: &str, text: &str) {
        // Each interpreter's own flag for code on the command line.
        let flag = if interp == "python3" { "-c" } else { "-e" };
        let join =
            |code: &str| crate::unwrap::shell_join(&[interp.into(), flag.into(), code.into()]);
        for (i, l) in text.lines().enumerate() {
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') || t.starts_with("//") {
                continue;
            }
            self.unit(&join(l), i as u32 + 1, l, false);
        }
        self.whole(&join(text));
    }

    fn sql(&mut self, program: &str, text: &str) {
        let join = |sql: &str| match program {
            "mysql" | "mariadb" => {
                crate::unwrap::shell_join(&[program.into(), "-e".into(), sql.into()])
            }
            "sqlite3" => {
                crate::unwrap::shell_join(&[program.into(), ":memory:".into(), sql.into()])
            }
            _ => crate::unwrap::shell_join(&["psql".into(), "-c".into(), sql.into()]),
        };
        let mut start = 1u32;
        let mut acc = String::new();
        for (i, l) in text.lines().enumerate() {
            if acc.trim().is_empty() {
                start = i as u32 + 1;
                acc.clear();
            }
            acc.push_str(l);
            acc.push('\n');
            if l.trim_end().ends_with(';') {
                let unit = std::mem::take(&mut acc);
                self.unit(&join(&unit), start, &unit, false);
            }
        }
        if !acc.trim().is_empty() {
            self.unit(&join(&acc), start, &acc, false);
        }
        self.whole(&join(text));
    }

    fn make(&mut self, text: &str) {
        let mut all = String::new();
        let mut pending: Option<(u32, String)> = None;
        for (i, l) in text.lines().enumerate() {
            let n = i as u32 + 1;
            let (start, mut joined) = pending.take().unwrap_or((n, String::new()));
            joined.push_str(l);
            if l.ends_with('\\') {
                joined.pop();
                pending = Some((start, joined));
                continue;
            }
            let trimmed = joined.trim_start();
            let first = trimmed.split_whitespace().next().unwrap_or_default();
            if matches!(first, "include" | "-include" | "sinclude") {
                self.add(
                    start,
                    &joined,
                    Reason {
                        rule: "script.make-include".into(),
                        span: None,
                        text: "includes further makefiles, which Airlock does not read".into(),
                        tier: Tier::Medium,
                    },
                );
            }
            let mut shell_texts: Vec<String> = Vec::new();
            if let Some(recipe) = joined.strip_prefix('\t') {
                let r = recipe.trim_start_matches(['@', '-', '+', ' ']);
                shell_texts.push(r.replace("$$", "$"));
            }
            let mut rest = joined.as_str();
            while let Some(at) = rest.find("$(shell ") {
                let body = &rest[at + 8..];
                let end = body.find(')').unwrap_or(body.len());
                shell_texts.push(body[..end].to_owned());
                rest = &body[end..];
            }
            for s in shell_texts {
                self.unit(&s, start, &joined, false);
                all.push_str(&s);
                all.push('\n');
            }
        }
        self.whole(&all);
    }

    fn crontab(&mut self, text: &str) {
        for (i, l) in text.lines().enumerate() {
            let t = l.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let first = t.split_whitespace().next().unwrap_or_default();
            if !first.starts_with('@') && first.contains('=') {
                continue;
            }
            let fields = if first.starts_with('@') { 1 } else { 5 };
            let mut rest = t;
            for _ in 0..fields {
                rest = rest.trim_start();
                rest = rest.find(char::is_whitespace).map_or("", |p| &rest[p..]);
            }
            let command = rest.trim();
            if !command.is_empty() {
                self.unit(command, i as u32 + 1, l, false);
            }
        }
    }

    fn finish(mut self, kind: Kind) -> FileJudgement {
        self.lines
            .sort_by(|a, b| b.tier.cmp(&a.tier).then(a.line.cmp(&b.line)));
        self.lines
            .dedup_by(|a, b| a.line == b.line && a.rule == b.rule);
        self.reasons.sort_by_key(|r| std::cmp::Reverse(r.tier));
        self.reasons
            .dedup_by(|a, b| a.rule == b.rule && a.text == b.text);
        let tier = self
            .reasons
            .iter()
            .map(|r| r.tier)
            .max()
            .unwrap_or(Tier::Low);
        FileJudgement {
            kind,
            tier,
            reasons: self.reasons,
            lines: self.lines,
            files: self.files,
            changes_dir: self.changes_dir,
        }
    }
}

/// A shell script cut where bash would run it: (first line, text) per unit.
fn shell_units(text: &str) -> Vec<(u32, String)> {
    use crate::complete::{Completeness, completeness};
    let mut out = Vec::new();
    let mut acc = String::new();
    let mut start = 1u32;
    for (i, l) in text.lines().enumerate() {
        if acc.is_empty() {
            start = i as u32 + 1;
        }
        acc.push_str(l);
        acc.push('\n');
        let gathered = i as u32 + 2 - start;
        if gathered as usize >= MAX_UNIT_LINES || completeness(&acc) != Completeness::Incomplete {
            out.push((start, std::mem::take(&mut acc)));
        }
    }
    if !acc.trim().is_empty() {
        out.push((start, acc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Classifier;

    fn judge(role: Role, program: &str, text: &str) -> FileJudgement {
        let run = FileRun {
            path: "x".into(),
            candidates: Vec::new(),
            role,
            program: program.into(),
            unknowable: None,
        };
        Classifier::builtin().judge_file(&run, "x.sh", text.as_bytes(), &Context::default())
    }

    #[test]
    fn a_shell_script_is_as_risky_as_its_worst_line_and_says_which() {
        let j = judge(
            Role::Shell,
            "bash",
            "echo start\nls /srv\nrm -rf /srv/app\n",
        );
        assert_eq!(j.tier, Tier::High);
        assert_eq!(j.lines[0].line, 3);
        assert!(
            j.reasons[0].text.starts_with("x.sh:3: rm -rf /srv/app -- "),
            "{:?}",
            j.reasons
        );
        let ok = judge(Role::Shell, "bash", "echo hi\nls -la\n");
        assert_eq!(ok.tier, Tier::Low, "{:?}", ok.reasons);
        assert!(ok.lines.is_empty());
    }

    #[test]
    fn units_span_lines_and_reasons_point_inside_them() {
        let j = judge(
            Role::Shell,
            "bash",
            "if true; then\n  echo a\n  rm -rf /srv/x\nfi\n",
        );
        assert_eq!(j.tier, Tier::High);
        assert_eq!(j.lines[0].line, 3, "{:?}", j.lines);
    }

    #[test]
    fn the_shebang_decides_how_a_program_is_read() {
        let py = judge(
            Role::Program,
            "./x",
            "#!/usr/bin/env python3\nimport shutil\nshutil.rmtree('/srv')\n",
        );
        assert_eq!(py.kind, Kind::Python);
        assert_eq!(py.tier, Tier::High, "{:?}", py.reasons);
        assert_eq!(py.lines[0].line, 3);
        let sh = judge(Role::Program, "./x", "#!/bin/sh\nrm -rf /srv\n");
        assert_eq!((sh.kind, sh.tier), (Kind::Shell, Tier::High));
        let none = judge(Role::Program, "./x", "rm -rf /srv\n");
        assert_eq!((none.kind, none.tier), (Kind::Shell, Tier::High));
        let nul = judge(Role::Shell, "bash", "echo hi\n\0\nrm -rf /srv\n");
        assert_eq!(nul.tier, Tier::High, "{:?}", nul.reasons);
        assert!(nul.reasons.iter().any(|r| r.rule == "script.not-text"));
        let node = judge(Role::Node, "node", "console.log(1)\n");
        assert!(
            node.reasons.iter().all(|r| !r.text.contains("cannot read")),
            "{:?}",
            node.reasons
        );
        let elf = judge(Role::Program, "./x", "\x7fELF\x02\x01");
        assert_eq!((elf.kind, elf.tier), (Kind::Binary, Tier::Medium));
        let odd = judge(Role::Program, "./x", "#!/usr/bin/tclsh\nexec rm -rf /\n");
        assert_eq!((odd.kind, odd.tier), (Kind::Binary, Tier::Medium));
        let rm = judge(Role::Program, "./x", "#!/usr/bin/env -S rm -rf /srv/app\n");
        assert_eq!(rm.tier, Tier::High, "{:?}", rm.reasons);
    }

    #[test]
    fn an_unclosed_quote_does_not_make_judging_quadratic() {
        let mut text = String::from("echo 'never closed\n");
        for i in 0..6000 {
            text.push_str(&format!("echo line {i}\n"));
        }
        text.push_str("rm -rf /srv/app\n");
        let units = shell_units(&text);
        assert!(units.len() >= 6000 / MAX_UNIT_LINES, "{}", units.len());
        assert!(
            units
                .iter()
                .all(|(_, u)| u.lines().count() <= MAX_UNIT_LINES)
        );
    }

    #[test]
    fn nested_files_and_directory_changes_are_reported() {
        let j = judge(Role::Shell, "bash", "cd /srv\n. ./lib.sh\n");
        assert!(j.changes_dir);
        assert_eq!(j.files[0].path, "./lib.sh");
    }

    #[test]
    fn sql_makefiles_and_crontabs_are_judged_by_what_they_run() {
        let sql = judge(Role::Sql, "psql", "SELECT 1;\nDROP TABLE users;\n");
        assert_eq!(sql.tier, Tier::High, "{:?}", sql.reasons);
        assert_eq!(sql.lines[0].line, 2);
        let make = judge(
            Role::Make,
            "make",
            "all:\n\techo building\n\n clean:\nclean:\n\t@rm -rf /srv/build\n",
        );
        assert_eq!(make.tier, Tier::High, "{:?}", make.reasons);
        assert_eq!(make.lines[0].line, 6);
        let cron = judge(
            Role::Crontab,
            "crontab",
            "# m h dom mon dow command\nMAILTO=x\n*/5 * * * * rm -rf /srv/cache\n",
        );
        assert_eq!(cron.tier, Tier::High, "{:?}", cron.reasons);
        assert_eq!(cron.lines[0].line, 3);
    }
}
