//! Reader models: the proof that a command only reads.
//!
//! A command is low only when its program has a model here and every flag and operand it was
//! given fits that model. A model lists the flags the program has in its read-only modes
//! (short ones, long ones, and those that take a value), options that may only point at a
//! harmless sink (`-o /dev/null`), flags one of which must be present for the read-only mode
//! (`gzip -c`, `tar -t`), and for the programs whose operands are themselves a language (sed
//! scripts, awk programs, find expressions, URLs) a check in code. An unknown program, an
//! unknown flag, a missing mode flag or a script command that executes or writes is at least
//! medium, with a reason that says which flag or command was not understood. Models are data
//! (`[[reader]]` in a rule pack), so operators can add their own tools.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::{Tier, paths};

/// A `[[reader]]` entry as written in a pack.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReaderFile {
    pub programs: Vec<String>,
    /// Short flags without a value, as one string of letters (`"alhR1"`).
    #[serde(default)]
    short: String,
    /// Short flags that take a value (attached or as the next argument).
    #[serde(default)]
    short_values: String,
    /// Long flags (without `--`), space separated; `--flag=value` is accepted for these too.
    #[serde(default)]
    long: String,
    /// Long flags that take the next argument as their value when no `=` is given.
    #[serde(default)]
    long_values: String,
    /// Options that write to the file they name: allowed only with a harmless sink
    /// (`-`, `/dev/null`, `/dev/stdout`), space separated with their dashes (`"-o --output"`).
    #[serde(default)]
    sinks: String,
    /// `-NUM` is a flag (`head -20`, `tail -5`).
    #[serde(default)]
    numeric: bool,
    /// Every flag is read-only (the program has no mode that writes or runs anything).
    #[serde(default)]
    any_flags: bool,
    /// Flags (with dashes) of which one must be present for the read-only mode, unless the
    /// program has no operands and so filters standard input to standard output.
    #[serde(default)]
    needs: String,
    /// With no operands the program filters standard input to standard output, which is
    /// read-only whatever `needs` says.
    #[serde(default)]
    filter: bool,
    /// At most this many operands (`tee` with none only copies to the terminal).
    #[serde(default)]
    max_operands: Option<usize>,
    /// The first argument may be a bundle of short flags without a dash (`tar tzf`, `ps aux`).
    #[serde(default)]
    bundle_first: bool,
    /// Flags and operands only known at run time (`cat "$f"`, `xargs grep x`) are harmless:
    /// no flag of the program writes or runs anything, and no rule needs to see them.
    #[serde(default)]
    runtime_args: bool,
    /// Operands are checked by code as well: `sed`, `awk`, `url`.
    #[serde(default)]
    language: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Reader {
    short: HashSet<char>,
    short_values: HashSet<char>,
    long: HashSet<String>,
    long_values: HashSet<String>,
    sinks: HashSet<String>,
    numeric: bool,
    any_flags: bool,
    needs: Vec<String>,
    filter: bool,
    runtime_args: bool,
    max_operands: Option<usize>,
    bundle_first: bool,
    language: Option<Language>,
}

#[derive(Debug, Clone, Copy)]
enum Language {
    Sed,
    Awk,
    Url,
}

/// Why a command is not proven read-only.
pub struct NotProven {
    pub tier: Tier,
    pub rule: &'static str,
    pub text: String,
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split_whitespace()
}

impl ReaderFile {
    pub fn compile(self) -> Result<(Vec<String>, Reader), String> {
        let language = match self.language.as_deref() {
            None => None,
            Some("sed") => Some(Language::Sed),
            Some("awk") => Some(Language::Awk),
            Some("url") => Some(Language::Url),
            Some(other) => {
                return Err(format!(
                    "unknown reader language {other:?} (expected sed, awk or url)"
                ));
            }
        };
        let reader = Reader {
            short: self.short.chars().collect(),
            short_values: self.short_values.chars().collect(),
            long: words(&self.long).map(str::to_owned).collect(),
            long_values: words(&self.long_values).map(str::to_owned).collect(),
            sinks: words(&self.sinks).map(str::to_owned).collect(),
            numeric: self.numeric,
            any_flags: self.any_flags,
            needs: words(&self.needs).map(str::to_owned).collect(),
            filter: self.filter,
            runtime_args: self.runtime_args,
            max_operands: self.max_operands,
            bundle_first: self.bundle_first,
            language,
        };
        Ok((self.programs, reader))
    }
}

/// Readers by program name.
pub(crate) type Readers = HashMap<String, std::sync::Arc<Reader>>;

/// A plain `[programs] low` entry from an operator pack: every flag accepted.
pub(crate) fn any_flags() -> Reader {
    Reader {
        short: HashSet::new(),
        short_values: HashSet::new(),
        long: HashSet::new(),
        long_values: HashSet::new(),
        sinks: HashSet::new(),
        numeric: true,
        any_flags: true,
        needs: Vec::new(),
        filter: false,
        runtime_args: false,
        max_operands: None,
        bundle_first: false,
        language: None,
    }
}

fn medium(rule: &'static str, text: String) -> NotProven {
    NotProven {
        tier: Tier::Medium,
        rule,
        text,
    }
}

impl Reader {
    /// Whether words only known at run time (which could be any flag) keep it read-only.
    pub fn runtime_args(&self) -> bool {
        self.runtime_args
    }

    /// The model checks its operands as a language (sed, awk), which matters even when rules
    /// have already judged the command.
    pub fn has_language(&self) -> bool {
        self.language.is_some()
    }

    /// Indices in `argv` of the words that hold the script or program (sed `-e` values or the
    /// first operand; awk's first operand).
    pub fn script_positions(&self, argv: &[String]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut first_operand = None;
        let mut i = 1;
        while i < argv.len() {
            let a = argv[i].as_str();
            if a == "--" {
                if i + 1 < argv.len() {
                    first_operand.get_or_insert(i + 1);
                }
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, attached) = match long.split_once('=') {
                    Some((n, _)) => (n, true),
                    None => (long, false),
                };
                if name == "expression" {
                    out.push(if attached { i } else { i + 1 });
                }
                if !attached && self.long_values.contains(name) {
                    i += 1;
                }
            } else if a.len() > 1 && a.starts_with('-') {
                let bundle = &a[1..];
                if let Some((p, c)) = bundle
                    .char_indices()
                    .find(|(_, c)| self.short_values.contains(c))
                {
                    let attached = p + c.len_utf8() < bundle.len();
                    if c == 'e' && matches!(self.language, Some(Language::Sed)) {
                        out.push(if attached { i } else { i + 1 });
                    }
                    if !attached {
                        i += 1;
                    }
                }
            } else {
                first_operand.get_or_insert(i);
            }
            i += 1;
        }
        if out.is_empty() {
            out.extend(first_operand);
        }
        out
    }

    /// `Ok` when `argv` is proven read-only under this model. Allocates only to explain a
    /// failure: flags and values are borrowed from `argv` or static.
    pub fn check(&self, argv: &[String]) -> Result<(), NotProven> {
        let program = argv.first().map(String::as_str).unwrap_or_default();
        let mut operands: Vec<&str> = Vec::new();
        let mut present: Vec<&str> = Vec::new();
        // Values of `-e`/`-f`-style options, for the languages that care (`sed -e SCRIPT`).
        let mut values: Vec<(&str, &str)> = Vec::new();
        let mut i = 1;
        let mut options_end = false;
        while i < argv.len() {
            let a = argv[i].as_str();
            i += 1;
            if options_end || a == "-" || !a.starts_with('-') {
                if i == 2 && self.bundle_first && !a.is_empty() && !a.starts_with('-') {
                    // `tar tzf file`, `ps aux`: the first word is short flags.
                    i = self.short_bundle(program, None, a, argv, i, &mut present, &mut values)?;
                    continue;
                }
                operands.push(a);
                continue;
            }
            if a == "--" {
                options_end = true;
                continue;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, attached) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                let flag = &a[..2 + name.len()];
                let takes = self.long_values.contains(name);
                let sink = self.sinks.contains(flag);
                if !(self.any_flags || self.long.contains(name) || takes || sink) {
                    return Err(unknown_flag(program, flag));
                }
                let value = match attached {
                    Some(v) => Some(v),
                    None if takes || sink => {
                        i += 1;
                        argv.get(i - 1).map(String::as_str)
                    }
                    None => None,
                };
                self.sink_ok(program, flag, value)?;
                if let Some(v) = value {
                    values.push((flag, v));
                }
                present.push(flag);
                continue;
            }
            if self.numeric && a[1..].bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            i = self.short_bundle(
                program,
                Some(a),
                &a[1..],
                argv,
                i,
                &mut present,
                &mut values,
            )?;
        }
        if let Some(max) = self.max_operands
            && operands
                .iter()
                .filter(|o| !paths::is_harmless_sink(o))
                .count()
                > max
        {
            return Err(medium(
                "reader.operands",
                format!("{program} with operands {operands:?} writes or acts on them"),
            ));
        }
        let mode_given = self.needs.is_empty()
            || (self.filter && operands.is_empty())
            || present.iter().any(|p| self.needs.iter().any(|n| n == p));
        if !mode_given {
            return Err(medium(
                "reader.mode",
                format!(
                    "{program} writes, changes or acts unless run with one of {}",
                    self.needs.join(" ")
                ),
            ));
        }
        match self.language {
            None => Ok(()),
            Some(Language::Sed) => crate::scripts::sed(program, &operands, &values),
            Some(Language::Awk) => crate::scripts::awk(program, &operands),
            Some(Language::Url) => urls(program, &operands),
        }
    }

    /// Read `-abc`, `-ofile`, `-o file` (`arg` is the whole word when it has its dash);
    /// returns the index of the next argument.
    #[allow(clippy::too_many_arguments)]
    fn short_bundle<'a>(
        &self,
        program: &str,
        arg: Option<&'a str>,
        bundle: &'a str,
        argv: &'a [String],
        mut i: usize,
        present: &mut Vec<&'a str>,
        values: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<usize, NotProven> {
        if let Some(whole) = arg.filter(|_| bundle.len() > 1) {
            // `-out FILE`: a single-dash long option that writes.
            if self.sinks.contains(whole) {
                self.sink_ok(program, whole, argv.get(i).map(String::as_str))?;
                present.push(whole);
                return Ok(i + 1);
            }
        }
        for (pos, c) in bundle.char_indices() {
            let flag = short_flag(c);
            if self.short_values.contains(&c) || self.sinks.contains(flag) {
                let rest = &bundle[pos + c.len_utf8()..];
                let value = if rest.is_empty() {
                    i += 1;
                    argv.get(i - 1).map(String::as_str)
                } else {
                    Some(rest)
                };
                self.sink_ok(program, flag, value)?;
                if let Some(v) = value {
                    values.push((flag, v));
                }
                present.push(flag);
                return Ok(i);
            }
            if !(self.any_flags || self.short.contains(&c)) {
                // `-maxdepth 2`, `-name X`: single-dash long options (find, java-style tools).
                if let Some(whole) = arg.filter(|_| bundle.len() > 1) {
                    if self.long.contains(bundle) {
                        present.push(whole);
                        return Ok(i);
                    }
                    if self.long_values.contains(bundle) {
                        present.push(whole);
                        return Ok(i + 1);
                    }
                }
                return Err(unknown_flag(program, &format!("-{c}")));
            }
            present.push(flag);
        }
        Ok(i)
    }

    fn sink_ok(&self, program: &str, flag: &str, value: Option<&str>) -> Result<(), NotProven> {
        if !self.sinks.contains(flag) {
            return Ok(());
        }
        match value {
            Some(v) if v == "-" || paths::is_harmless_sink(v) => Ok(()),
            Some(v) => Err(NotProven {
                tier: if paths::sensitive(v).is_some() {
                    Tier::High
                } else {
                    Tier::Medium
                },
                rule: "reader.writes-file",
                text: format!("{program} {flag} {v} writes that file"),
            }),
            None => Err(medium(
                "reader.writes-file",
                format!("{program} {flag} without a file"),
            )),
        }
    }
}

/// `-c` as a static string, for ASCII flag letters (anything else is never a known flag).
fn short_flag(c: char) -> &'static str {
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789#";
    const FLAGS: &str = "-a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z-A-B-C-D-E-F-G-H-I-J-K-L-M-N-O-P-Q-R-S-T-U-V-W-X-Y-Z-0-1-2-3-4-5-6-7-8-9-#";
    match LETTERS.find(c) {
        Some(i) if c.is_ascii() => &FLAGS[2 * i..2 * i + 2],
        _ => "-?",
    }
}

fn unknown_flag(program: &str, flag: &str) -> NotProven {
    medium(
        "reader.unknown-flag",
        format!(
            "{program} {flag}: not a flag of {program}'s read-only modes (it may write or run something)"
        ),
    )
}

/// URLs a network reader fetches: plain web schemes only (`dict://`, `gopher://`, `file://`,
/// `ldap://`, `smtp://`, … talk other protocols or read local files).
fn urls(program: &str, operands: &[&str]) -> Result<(), NotProven> {
    for op in operands {
        if let Some((scheme, _)) = op.split_once("://") {
            let s = scheme.to_ascii_lowercase();
            if !matches!(s.as_str(), "http" | "https") {
                return Err(medium(
                    "reader.url-scheme",
                    format!("{program} {op}: the {s}:// scheme is not a plain web fetch"),
                ));
            }
        }
    }
    Ok(())
}
