//! Rule packs: data that says which commands are risky, compiled into matchers.
//!
//! A pack is TOML. Rules are indexed by program name, and rules that carry `keywords` are only
//! tried when one Aho-Corasick pass over the arguments has found one of their keywords; the
//! regex then checks the detail. So the cost of classifying a command grows with the rules that
//! could match *it*, not with the size of the pack, and operators can add packs freely.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::Tier;
use crate::readers::{ReaderFile, Readers};

/// The packs compiled into the binary, by category. Order matters only for overrides.
const BUILTIN: &[(&str, &str)] = &[
    ("builtin:readers", include_str!("../rules/readers.toml")),
    ("builtin:core", include_str!("../rules/core.toml")),
    (
        "builtin:filesystem",
        include_str!("../rules/filesystem.toml"),
    ),
    ("builtin:disks", include_str!("../rules/disks.toml")),
    ("builtin:git", include_str!("../rules/git.toml")),
    (
        "builtin:containers",
        include_str!("../rules/containers.toml"),
    ),
    (
        "builtin:kubernetes",
        include_str!("../rules/kubernetes.toml"),
    ),
    ("builtin:systemd", include_str!("../rules/systemd.toml")),
    ("builtin:packages", include_str!("../rules/packages.toml")),
    ("builtin:databases", include_str!("../rules/databases.toml")),
    ("builtin:cloud", include_str!("../rules/cloud.toml")),
    ("builtin:terraform", include_str!("../rules/terraform.toml")),
    ("builtin:network", include_str!("../rules/network.toml")),
    ("builtin:users", include_str!("../rules/users.toml")),
    (
        "builtin:persistence",
        include_str!("../rules/persistence.toml"),
    ),
    ("builtin:forensics", include_str!("../rules/forensics.toml")),
    ("builtin:secrets", include_str!("../rules/secrets.toml")),
    ("builtin:posture", include_str!("../rules/posture.toml")),
    (
        "builtin:interpreters",
        include_str!("../rules/interpreters.toml"),
    ),
];

/// A rule pack that could not be compiled, with the pack and line it came from.
#[derive(Debug, thiserror::Error)]
pub struct RulePackError {
    /// File path, or `builtin:<category>` for the packs shipped in the binary.
    pub pack: String,
    /// 1-based line of the offending rule or value, where known.
    pub line: Option<usize>,
    pub msg: String,
}

impl fmt::Display for RulePackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.pack, l, self.msg),
            None => write!(f, "{}: {}", self.pack, self.msg),
        }
    }
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
    /// Models of read-only programs: the only way a command becomes low.
    #[serde(default)]
    reader: Vec<ReaderFile>,
    /// Commands with their expected tier; `policy lint` and the tests check them, so a pack
    /// documents and tests itself.
    #[serde(default)]
    example: Vec<ExampleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleFile {
    command: Spanned<String>,
    tier: String,
}

/// A command a pack says must get a given tier.
#[derive(Debug, Clone)]
pub struct Example {
    pub pack: String,
    pub line: usize,
    pub command: String,
    pub tier: Tier,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProgramLists {
    /// Programs every one of whose flags only reads or prints (a reader model that accepts any
    /// flag); prefer a `[[reader]]` that lists the flags.
    #[serde(default)]
    low: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: Spanned<String>,
    #[serde(default)]
    programs: Vec<String>,
    #[serde(default)]
    args: Option<Spanned<String>>,
    #[serde(default)]
    unless: Option<Spanned<String>>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    tier: Option<Spanned<String>>,
    #[serde(default)]
    why: String,
    /// Removes a rule of the same id from an earlier pack (operators turning a builtin off).
    #[serde(default)]
    disabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlFile {
    programs: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub id: String,
    args: Option<Regex>,
    unless: Option<Regex>,
    /// The rule is only tried when one of its keywords occurs in the arguments.
    gated: bool,
    /// Programs the rule does not apply to.
    except: Vec<String>,
    pub tier: Tier,
    pub why: String,
}

/// A compiled rule pack. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct RulePack {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub rules: Vec<Rule>,
    by_program: HashMap<String, Vec<usize>>,
    /// Rules with `programs = ["*"]`: they must carry keywords.
    any_program: Vec<usize>,
    keywords: Option<AhoCorasick>,
    /// Pattern index in `keywords` → rule index.
    keyword_rule: Vec<usize>,
    pub readers: Readers,
    pub sql_programs: HashSet<String>,
    examples: Vec<Example>,
    /// Rules a later pack replaced: (id, replaced in pack, by pack).
    overrides: Vec<(String, String, String)>,
}

/// A rule as read, before compilation, remembering where it came from.
struct Pending {
    file: RuleFile,
    pack: String,
    text_idx: usize,
}

impl RulePack {
    /// The packs compiled into the binary. They are tested, so failing here is a build defect.
    pub fn builtin() -> Self {
        match Self::builtin_with(&[]) {
            Ok(p) => p,
            // The builtin packs are covered by unit tests; reaching this is a packaging bug.
            Err(e) => panic!("builtin rule pack is invalid: {e}"),
        }
    }

    /// The builtin packs extended by `extra` packs given as (name, TOML text); a later rule with
    /// the same id replaces an earlier one, so operators can override or disable builtin rules.
    pub fn builtin_with(extra: &[(&str, &str)]) -> Result<Self, RulePackError> {
        let mut all: Vec<(&str, &str)> = BUILTIN.to_vec();
        all.extend_from_slice(extra);
        Self::from_sources(&all)
    }

    /// Names and texts of the builtin packs (for `policy lint` and documentation).
    pub fn builtin_sources() -> &'static [(&'static str, &'static str)] {
        BUILTIN
    }

    /// Compile packs given as (name, TOML text), in order.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Self, RulePackError> {
        let mut pending: Vec<Pending> = Vec::new();
        let mut low_programs: Vec<String> = Vec::new();
        let mut readers = Readers::new();
        let mut sql_programs = HashSet::new();
        let mut examples = Vec::new();
        let mut overrides = Vec::new();
        for (idx, (name, text)) in sources.iter().enumerate() {
            let file: PackFile = toml::from_str(text).map_err(|e| RulePackError {
                pack: (*name).to_owned(),
                line: e.span().map(|s| line_of(text, &s)),
                msg: e.message().to_owned(),
            })?;
            low_programs.extend(file.programs.low);
            for r in file.reader {
                let (programs, reader) = r.compile().map_err(|msg| RulePackError {
                    pack: (*name).to_owned(),
                    line: None,
                    msg: format!("reader: {msg}"),
                })?;
                let reader = Arc::new(reader);
                for p in programs {
                    readers.insert(p, reader.clone());
                }
            }
            if let Some(sql) = file.sql {
                sql_programs.extend(sql.programs);
            }
            for e in file.example {
                let line = line_of(text, &e.command.span());
                let tier = e.tier.parse().map_err(|msg: String| RulePackError {
                    pack: (*name).to_owned(),
                    line: Some(line),
                    msg: format!("example: {msg}"),
                })?;
                examples.push(Example {
                    pack: (*name).to_owned(),
                    line,
                    command: e.command.into_inner(),
                    tier,
                });
            }
            for r in file.rule {
                let existing = pending
                    .iter()
                    .position(|p| p.file.id.get_ref() == r.id.get_ref());
                let p = Pending {
                    file: r,
                    pack: (*name).to_owned(),
                    text_idx: idx,
                };
                match (existing, p.file.disabled) {
                    (Some(i), true) => {
                        pending.remove(i);
                    }
                    (Some(i), false) => {
                        overrides.push((
                            p.file.id.get_ref().clone(),
                            pending[i].pack.clone(),
                            p.pack.clone(),
                        ));
                        pending[i] = p;
                    }
                    (None, true) => {
                        return Err(p.error(
                            sources,
                            &p.file.id.span(),
                            "disables a rule that no earlier pack defines",
                        ));
                    }
                    (None, false) => pending.push(p),
                }
            }
        }
        let mut rules = Vec::with_capacity(pending.len());
        let mut by_program: HashMap<String, Vec<usize>> = HashMap::new();
        let mut any_program = Vec::new();
        let mut keyword_texts: Vec<String> = Vec::new();
        let mut keyword_rule = Vec::new();
        for (i, p) in pending.into_iter().enumerate() {
            let r = &p.file;
            let at_id = r.id.span();
            if r.programs.is_empty() {
                return Err(p.error(sources, &at_id, "`programs` is empty"));
            }
            let Some(tier_s) = &r.tier else {
                return Err(p.error(sources, &at_id, "`tier` is missing"));
            };
            let tier: Tier = tier_s
                .get_ref()
                .parse()
                .map_err(|m: String| p.error(sources, &tier_s.span(), &m))?;
            if r.why.trim().is_empty() {
                return Err(p.error(sources, &at_id, "`why` is empty: reviewers need a reason"));
            }
            let compile = |re: &Option<Spanned<String>>, what: &str| {
                re.as_ref()
                    .map(|s| {
                        Regex::new(s.get_ref()).map_err(|e| {
                            p.error(sources, &s.span(), &format!("invalid {what} regex: {e}"))
                        })
                    })
                    .transpose()
            };
            let args = compile(&r.args, "args")?;
            let unless = compile(&r.unless, "unless")?;
            let wildcard = r.programs.iter().any(|p| p == "*");
            if wildcard && r.keywords.is_empty() {
                return Err(p.error(
                    sources,
                    &at_id,
                    "a rule for every program (`*`) needs `keywords`, or it would run on every command",
                ));
            }
            if r.keywords.iter().any(|k| k.is_empty()) {
                return Err(p.error(sources, &at_id, "empty keyword"));
            }
            for k in &r.keywords {
                keyword_texts.push(k.clone());
                keyword_rule.push(i);
            }
            if wildcard {
                any_program.push(i);
            }
            for prog in r.programs.iter().filter(|p| *p != "*") {
                by_program.entry(prog.clone()).or_default().push(i);
            }
            rules.push(Rule {
                id: r.id.get_ref().clone(),
                args,
                unless,
                gated: !r.keywords.is_empty(),
                except: r.except.clone(),
                tier,
                why: r.why.clone(),
            });
        }
        let keywords = if keyword_texts.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&keyword_texts)
                    .map_err(|e| RulePackError {
                        pack: "keywords".into(),
                        line: None,
                        msg: e.to_string(),
                    })?,
            )
        };
        Ok(Self {
            inner: Arc::new(Inner {
                rules,
                by_program,
                any_program,
                keywords,
                keyword_rule,
                readers: {
                    for p in low_programs {
                        readers
                            .entry(p)
                            .or_insert_with(|| Arc::new(crate::readers::any_flags()));
                    }
                    readers
                },
                sql_programs,
                examples,
                overrides,
            }),
        })
    }

    /// The `[[example]]` entries of every pack, in order.
    pub fn examples(&self) -> &[Example] {
        &self.inner.examples
    }

    /// Rules replaced by a later pack, as (rule id, earlier pack, later pack).
    pub fn overrides(&self) -> &[(String, String, String)] {
        &self.inner.overrides
    }

    /// Number of rules after overrides (for `policy lint` output).
    pub fn len(&self) -> usize {
        self.inner.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.rules.is_empty()
    }

    /// Indices of the rules that match `program` with arguments `args`.
    pub(crate) fn matching(&self, program: &str, args: &str) -> Vec<usize> {
        let inner = &*self.inner;
        let specific = inner
            .by_program
            .get(program)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if specific.is_empty() && inner.any_program.is_empty() {
            return Vec::new();
        }
        // One pass over the arguments finds every keyword-gated rule that could match.
        let mut keyword_hits: Vec<usize> = Vec::new();
        if let Some(ac) = &inner.keywords {
            for m in ac.find_overlapping_iter(args) {
                keyword_hits.push(inner.keyword_rule[m.pattern().as_usize()]);
            }
        }
        let mut out = Vec::new();
        let candidates = specific.iter().chain(
            inner
                .any_program
                .iter()
                .filter(|i| keyword_hits.contains(i)),
        );
        for &i in candidates {
            let rule = &inner.rules[i];
            if out.contains(&i)
                || (rule.gated && !keyword_hits.contains(&i))
                || rule.except.iter().any(|e| e == program)
            {
                continue;
            }
            if rule.args.as_ref().is_some_and(|re| !re.is_match(args)) {
                continue;
            }
            if rule.unless.as_ref().is_some_and(|re| re.is_match(args)) {
                continue;
            }
            out.push(i);
        }
        out
    }
}

impl Pending {
    fn error(&self, sources: &[(&str, &str)], span: &Range<usize>, msg: &str) -> RulePackError {
        let text = sources.get(self.text_idx).map(|s| s.1).unwrap_or_default();
        RulePackError {
            pack: self.pack.clone(),
            line: Some(line_of(text, span)),
            msg: format!("rule {}: {msg}", self.file.id.get_ref()),
        }
    }
}

/// 1-based line number of the start of `span` in `text`.
fn line_of(text: &str, span: &Range<usize>) -> usize {
    let end = span.start.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
