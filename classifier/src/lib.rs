//! Pure shell-command risk classifier.
//!
//! Every decision Airlock makes rests on this crate, so it is kept free of I/O, clocks and async:
//! text plus context in, an [`Assessment`] out. The command is parsed as bash (brush-parser), every
//! simple command that would execute is collected — through pipelines, lists, subshells, command
//! substitutions and wrappers such as `sudo` or `sh -c` — and each is matched against rule packs
//! that are data (TOML), not code. Anything the classifier cannot see through is never low.

pub mod alternatives;
mod argv;
mod code;
mod command;
mod complete;
pub mod content;
mod dataflow;
mod envvars;
mod feeds;
pub mod files;
mod hidden;
mod judge;
mod nosql;
mod paths;
mod progopts;
mod readers;
mod ruleargs;
mod rules;
mod scripts;
mod shells;
mod sql;
mod sqlclient;
mod unwrap;
pub mod visible;
mod walk;
mod words;
mod wrappers;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use argv::{glob_matches, glob_pattern, plain_argv};
pub use complete::{Completeness, completeness};
pub use rules::{Example, RulePack, RulePackError};

/// Largest command text the classifier will look at. Longer input is classified high without
/// parsing, which bounds the work done for any single request.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Deepest bracket nesting (`((((…))))`, `{ { …; }; }`) parsed at all. The parser recurses per
/// level, so deeper input is classified high without parsing: it is never legitimate, and a
/// stack overflow would take the whole gateway down.
pub const MAX_NESTING: usize = 64;

/// How deep wrappers and substitutions (`sh -c "$(sudo bash -c …)"`) are followed before the
/// classifier gives up and calls the command high.
pub const MAX_DEPTH: usize = 8;

/// Risk tier; ordered so that `max` picks the most dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Low,
    Medium,
    High,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
        }
    }

    /// The score band of each tier; scores are kept inside the band of their tier so that
    /// tier and score never contradict each other.
    fn band(self) -> (u8, u8) {
        match self {
            Tier::Low => (0, 29),
            Tier::Medium => (30, 69),
            Tier::High => (70, 100),
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(Tier::Low),
            "medium" => Ok(Tier::Medium),
            "high" => Ok(Tier::High),
            other => Err(format!(
                "unknown tier {other:?} (expected low, medium or high)"
            )),
        }
    }
}

/// One explained contribution to the assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable rule id (`fs.rm-recursive`, `parse.error`, …) so reviewers and tests can rely on it.
    pub rule: String,
    /// Byte range in the original command text that triggered the rule, where known.
    pub span: Option<(usize, usize)>,
    /// Human sentence shown to reviewers.
    pub text: String,
    /// Tier this reason alone would give.
    pub tier: Tier,
}

/// The classifier's verdict on one command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub tier: Tier,
    /// 0–100, always inside the band of `tier`.
    pub score: u8,
    /// Why, most severe first.
    pub reasons: Vec<Reason>,
    /// Every simple command found after unwrapping, as the argv the shell would build.
    pub commands: Vec<Vec<String>>,
    /// Files the command runs as a program or script, for the gateway to read and judge
    /// ([`Classifier::judge_file`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<files::FileRun>,
}

impl Assessment {
    /// Add reasons found beyond the command text (what the files it runs hold) and derive the
    /// tier and score again: the tier is never below any reason's.
    pub fn add_reasons(&mut self, more: Vec<Reason>, ctx: &Context) {
        let mut reasons: Vec<Reason> = std::mem::take(&mut self.reasons)
            .into_iter()
            .filter(|r| r.rule != "context.production")
            .collect();
        reasons.extend(more);
        let files = std::mem::take(&mut self.files);
        *self = finish(reasons, std::mem::take(&mut self.commands), ctx);
        self.files = files;
    }
}

/// What the classifier knows about where the command will run.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub agent: String,
    pub target: String,
    /// Target labels from config, e.g. `env = "prod"`.
    pub labels: BTreeMap<String, String>,
}

impl Context {
    /// `env=prod` (or `environment=production`, …) when the target is labelled production.
    fn production_label(&self) -> Option<String> {
        ["env", "environment", "stage", "tier"]
            .iter()
            .find_map(|k| {
                self.labels
                    .get(*k)
                    .filter(|v| {
                        matches!(
                            v.to_ascii_lowercase().as_str(),
                            "prod" | "production" | "live"
                        )
                    })
                    .map(|v| format!("{k}={v}"))
            })
    }
}

/// A compiled classifier. Build once (rule packs are compiled into matchers) and share.
#[derive(Debug, Clone)]
pub struct Classifier {
    pack: RulePack,
}

impl Classifier {
    /// The classifier with the rule pack shipped inside the binary.
    pub fn builtin() -> Self {
        Self {
            pack: RulePack::builtin(),
        }
    }

    /// A classifier over a caller-supplied rule pack (for config overrides and tests).
    pub fn with_pack(pack: RulePack) -> Self {
        Self { pack }
    }

    /// The rule packs this classifier uses.
    pub fn pack(&self) -> &RulePack {
        &self.pack
    }

    /// Pack examples whose command does not get the tier the pack promises, with the tier it got.
    pub fn failing_examples(&self) -> Vec<(Example, Tier)> {
        let ctx = Context::default();
        self.pack
            .examples()
            .iter()
            .filter_map(|e| {
                let got = self.classify(&e.command, &ctx).tier;
                (got != e.tier).then(|| (e.clone(), got))
            })
            .collect()
    }

    /// Classify raw bytes as received from an SSH client: text that is not UTF-8 is high,
    /// because what the shell would make of it cannot be known.
    pub fn classify_bytes(&self, command: &[u8], ctx: &Context) -> Assessment {
        match std::str::from_utf8(command) {
            Ok(s) => self.classify(s, ctx),
            Err(e) => finish(
                vec![Reason {
                    rule: "input.not-utf8".into(),
                    span: Some((e.valid_up_to(), e.valid_up_to() + 1)),
                    text: format!("command is not valid UTF-8 (at byte {})", e.valid_up_to()),
                    tier: Tier::High,
                }],
                Vec::new(),
                ctx,
            ),
        }
    }

    /// Classify one command line. Never fails: anything unreadable is classified high.
    pub fn classify(&self, command: &str, ctx: &Context) -> Assessment {
        self.run(command, ctx, false).assessment
    }

    /// Classify one command line and give its plain argv (for whitelist globs) from the same
    /// parse: the gate needs both, and parsing is most of the cost.
    pub fn judge(&self, command: &str, ctx: &Context) -> Judgement {
        self.run(command, ctx, true)
    }

    fn run(&self, command: &str, ctx: &Context, want_plain: bool) -> Judgement {
        let mut reasons = Vec::new();
        let mut commands = Vec::new();
        let mut plain = None;
        let mut runs = Vec::new();
        if command.len() > MAX_COMMAND_BYTES {
            reasons.push(Reason {
                rule: "input.too-long".into(),
                span: None,
                text: format!("command is longer than {MAX_COMMAND_BYTES} bytes"),
                tier: Tier::High,
            });
        } else if command.contains('\0') {
            reasons.push(Reason {
                rule: "input.nul-byte".into(),
                span: None,
                text: "command contains a NUL byte".into(),
                tier: Tier::High,
            });
        } else if nesting(command) > MAX_NESTING || compound_openers(command) > MAX_NESTING {
            reasons.push(Reason {
                rule: "shell.too-deep".into(),
                span: None,
                text: format!(
                    "brackets or compound commands (if, while, for, case) nest deeper than {MAX_NESTING} levels"
                ),
                tier: Tier::High,
            });
        } else {
            reasons.extend(hidden::scan(command));
            let found = if want_plain {
                walk::collect_with_plain(command)
            } else {
                walk::collect(command, 0)
            };
            plain = found.plain;
            reasons.extend(found.problems);
            for cmd in &found.commands {
                reasons.extend(judge::evaluate(&self.pack, cmd));
            }
            reasons.extend(dataflow::written_then_run(&found.commands));
            runs = files::runs(&found.commands, command);
            let nothing_runs = found.commands.is_empty();
            commands.extend(found.commands.into_iter().map(|c| c.argv));
            if nothing_runs && reasons.is_empty() {
                // Assignments only, comments, empty input: nothing executes.
                reasons.push(Reason {
                    rule: "shell.no-command".into(),
                    span: None,
                    text: "no command would execute".into(),
                    tier: Tier::Low,
                });
            }
        }
        let mut assessment = finish(reasons, commands, ctx);
        assessment.files = runs;
        Judgement {
            assessment,
            plain_argv: plain,
        }
    }
}

/// An assessment together with the command's plain argv ([`plain_argv`]), from one parse.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub assessment: Assessment,
    /// `Some` only when the command is one program with literal arguments.
    pub plain_argv: Option<Vec<String>>,
}

/// Deepest nesting of brackets, counted on the raw text (quotes ignored, so this over-counts,
/// which only errs towards refusing to parse). Backticks nest only through re-parsing, which
/// [`MAX_DEPTH`] bounds.
fn nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' | b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// How many compound commands (`if`, `while`, `until`, `for`, `select`, `case`) the text opens,
/// counted where a command may start and never taken back by a closing word: the parser
/// recurses per nested compound, and closers can hide in strings (`echo "; fi;"`), so only an
/// upper bound is safe. Quotes and comments are not skipped (they only over-count).
pub fn compound_openers(text: &str) -> usize {
    let mut n = 0usize;
    let mut command_position = true;
    let mut word = String::new();
    let mut flush = |word: &mut String, pos: &mut bool| {
        if word.is_empty() {
            return;
        }
        if *pos {
            match word.as_str() {
                "if" | "while" | "until" => n += 1,
                "for" | "select" | "case" => {
                    n += 1;
                    *pos = false;
                }
                "then" | "do" | "else" | "elif" | "!" | "time" => {}
                _ => *pos = false,
            }
        }
        word.clear();
    };
    for c in text.chars() {
        match c {
            '(' | ')' | '{' | '}' | ';' | '&' | '|' | '\n' | '`' => {
                flush(&mut word, &mut command_position);
                command_position = true;
            }
            c if c.is_whitespace() => flush(&mut word, &mut command_position),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut command_position);
    n
}

/// Fold reasons into a tier and a score inside that tier's band.
fn finish(mut reasons: Vec<Reason>, commands: Vec<Vec<String>>, ctx: &Context) -> Assessment {
    let tier = reasons.iter().map(|r| r.tier).max().unwrap_or(Tier::Low);
    let (lo, hi) = tier.band();
    // Start in the middle of the band; every further reason of the same tier adds weight.
    let same_tier = reasons.iter().filter(|r| r.tier == tier).count() as u32;
    let mut score = u32::from(lo) + (u32::from(hi - lo) / 2) + same_tier.saturating_sub(1) * 5;
    if let Some(label) = ctx.production_label() {
        // The same command is riskier where real users are; the reason says why the score moved.
        score += 15;
        let target = if ctx.target.is_empty() {
            "the target".to_owned()
        } else {
            format!("target {}", ctx.target)
        };
        reasons.push(Reason {
            rule: "context.production".into(),
            span: None,
            text: format!("{target} is labelled {label}: score raised"),
            tier,
        });
    }
    let score = score.clamp(u32::from(lo), u32::from(hi)) as u8;
    reasons.sort_by_key(|r| std::cmp::Reverse(r.tier));
    reasons.dedup_by(|a, b| a.rule == b.rule && a.span == b.span);
    Assessment {
        tier,
        score,
        reasons,
        commands,
        files: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
