//! Walking the bash AST to find every simple command that would execute.
//!
//! Control flow does not hide commands: both branches of an `if`, every loop body, function
//! bodies, subshells, process substitutions and command substitutions (re-parsed) are visited.
//! Each simple command is then unwrapped (see [`crate::unwrap`]) so that `sudo env X=1 rm -rf /`
//! is judged as `rm -rf /`.

use std::io::Cursor;

use brush_parser::ast::{self, SourceLocation};
use brush_parser::{Parser, ParserOptions};

use crate::feeds::{endless_source, literal_output, writes_file};
use crate::words::{self, Expanded};
use crate::{MAX_DEPTH, Reason, Tier, unwrap};

pub use crate::command::{PROC_SUBST_PATH, Redirect, SimpleCmd};

/// Everything found in one command text.
#[derive(Debug, Default)]
pub struct Found {
    pub commands: Vec<SimpleCmd>,
    /// Reasons that do not come from rules: parse errors, depth exhaustion.
    pub problems: Vec<Reason>,
    /// The top-level text's plain argv (see [`crate::plain_argv`]), from the same parse, when
    /// `want_plain` asked for it.
    pub plain: Option<Vec<String>>,
    pub want_plain: bool,
}

/// Parse `src` and collect its commands. `depth` counts nested re-parses (`sh -c`, `$(…)`).
pub fn collect(src: &str, depth: usize) -> Found {
    let mut found = Found::default();
    collect_into(src, depth, None, &mut found);
    found
}

/// As [`collect`] at the top level, with the line's plain argv from the same parse.
pub fn collect_with_plain(src: &str) -> Found {
    let mut found = Found {
        want_plain: true,
        ..Found::default()
    };
    collect_into(src, 0, None, &mut found);
    found
}

/// As [`collect`], but every span is replaced by `span_override` (nested text has its own
/// offsets, which mean nothing to a reviewer looking at the outer command).
pub fn collect_into(
    src: &str,
    depth: usize,
    span_override: Option<(usize, usize)>,
    found: &mut Found,
) {
    if depth > MAX_DEPTH {
        found.problems.push(Reason {
            rule: "shell.too-deep".into(),
            span: span_override,
            text: format!("command nests wrappers or substitutions deeper than {MAX_DEPTH} levels"),
            tier: Tier::High,
        });
        return;
    }
    let mut parser = Parser::new(Cursor::new(src.as_bytes()), &ParserOptions::default());
    match parser.parse_program() {
        Ok(program) => {
            if found.want_plain && depth == 0 && span_override.is_none() {
                found.plain = crate::argv::plain_from(src, &program);
            }
            let mut w = Walker {
                src,
                depth,
                span_override,
                found,
                functions: Vec::new(),
                loops: 0,
            };
            for list in &program.complete_commands {
                w.compound_list(list);
            }
        }
        Err(e) => found.problems.push(Reason {
            rule: "parse.error".into(),
            span: span_override,
            text: format!("command could not be parsed as shell ({e}); treated as high"),
            tier: Tier::High,
        }),
    }
}

/// The byte offset of character `index` of `src` (its end when past it).
fn byte_at(src: &str, index: usize) -> usize {
    if src.is_ascii() {
        return index.min(src.len());
    }
    src.char_indices().nth(index).map_or(src.len(), |(b, _)| b)
}

struct Walker<'a> {
    /// The text being walked (spans index into it).
    src: &'a str,
    depth: usize,
    span_override: Option<(usize, usize)>,
    found: &'a mut Found,
    /// Names of the functions whose bodies are being walked (a call to one is recursion).
    functions: Vec<String>,
    /// How many loops enclose the list being walked.
    loops: usize,
}

impl Walker<'_> {
    /// A node's location as a byte range of the source (brush-parser counts characters;
    /// [`crate::Reason::span`] is bytes, like every other span).
    fn span(&self, loc: Option<brush_parser::SourceSpan>) -> Option<(usize, usize)> {
        self.span_override.or_else(|| {
            loc.map(|l| {
                (
                    byte_at(self.src, l.start.index),
                    byte_at(self.src, l.end.index),
                )
            })
        })
    }

    fn nested(&mut self, src: &str, span: Option<(usize, usize)>) {
        collect_into(src, self.depth + 1, span.or(self.span_override), self.found);
    }

    fn compound_list(&mut self, list: &ast::CompoundList) {
        for item in &list.0 {
            if self.loops > 0 && matches!(item.1, ast::SeparatorOperator::Async) {
                let span = self.span(item.0.first.location());
                self.found.problems.push(Reason {
                    rule: "resource.loop-spawn".into(),
                    span,
                    text: "starts a background job on every pass of a loop: processes pile up \
                           until the host runs out (a fork bomb in all but name)"
                        .into(),
                    tier: Tier::High,
                });
            }
            self.and_or(&item.0);
        }
    }

    fn and_or(&mut self, list: &ast::AndOrList) {
        self.pipeline(&list.first);
        for next in &list.additional {
            match next {
                ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline) {
        let mut feed: Option<String> = None;
        let mut endless = false;
        for (i, cmd) in p.seq.iter().enumerate() {
            let before = self.found.commands.len();
            self.command(cmd, i > 0, feed.take());
            // Only a stage with a successor feeds anything.
            if i + 1 < p.seq.len() {
                feed = literal_output(cmd);
            }
            let added = &self.found.commands[before.min(self.found.commands.len())..];
            endless |= added.iter().any(endless_source);
            if endless && added.iter().any(writes_file) {
                self.found.problems.push(Reason {
                    rule: "resource.fill-disk".into(),
                    span: self.span(p.location()),
                    text: "writes an endless stream (yes, /dev/zero, /dev/urandom) to a file: \
                           fills the disk"
                        .into(),
                    tier: Tier::High,
                });
                endless = false;
            }
        }
    }

    fn command(&mut self, cmd: &ast::Command, piped: bool, feed: Option<String>) {
        match cmd {
            ast::Command::Simple(s) => self.simple(s, piped, feed),
            ast::Command::Compound(c, redirects) => {
                self.compound(c, piped);
                if let Some(r) = redirects {
                    // Redirections of a compound command apply to everything inside; record
                    // them as a pseudo-command so the rules still see the written files.
                    let mut pseudo = SimpleCmd {
                        span: self.span(None),
                        ..SimpleCmd::default()
                    };
                    for io in &r.0 {
                        self.redirect(io, &mut pseudo);
                    }
                    if !pseudo.redirects.is_empty() || pseudo.stdin_path.is_some() {
                        pseudo.argv = vec![":".into()];
                        pseudo.dynamic_words = vec![false];
                        pseudo.opaque_words = vec![false];
                        self.found.commands.push(pseudo);
                    }
                }
            }
            ast::Command::Function(f) => {
                self.functions.push(words::expand(&f.fname.value).text);
                self.compound(&f.body.0, piped);
                self.functions.pop();
            }
            ast::Command::ExtendedTest(t, _) => self.extended_test(&t.expr),
        }
    }

    fn compound(&mut self, c: &ast::CompoundCommand, piped: bool) {
        use ast::CompoundCommand as C;
        match c {
            C::Arithmetic(a) => {
                self.arithmetic(&a.expr.value);
                // bash reads `((…))` as arithmetic only when the parentheses touch; `( ( cmd ) )`
                // is two subshells, which brush-parser also reports as arithmetic. Classify the
                // inside as commands unless the source really says `((`.
                let tight = self
                    .src
                    .chars()
                    .skip(a.loc.start.index)
                    .take(2)
                    .eq("((".chars());
                if !tight {
                    let span = self.span(Some(a.loc.clone()));
                    self.nested(&a.expr.value, span);
                }
            }
            C::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater]
                    .into_iter()
                    .flatten()
                {
                    self.arithmetic(&e.value);
                }
                self.in_loop(&f.body.list);
            }
            C::BraceGroup(b) => self.compound_list(&b.list),
            C::Subshell(s) => self.compound_list(&s.list),
            C::ForClause(f) => {
                for w in f.values.iter().flatten() {
                    self.word_substitutions(&words::expand(&w.value), w.loc.clone());
                }
                self.in_loop(&f.body.list);
            }
            C::CaseClause(c) => {
                self.word_substitutions(&words::expand(&c.value.value), c.value.loc.clone());
                for item in &c.cases {
                    if let Some(l) = &item.cmd {
                        self.compound_list(l);
                    }
                }
            }
            C::IfClause(i) => {
                self.compound_list(&i.condition);
                self.compound_list(&i.then);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.compound_list(c);
                    }
                    self.compound_list(&e.body);
                }
            }
            C::WhileClause(w) | C::UntilClause(w) => {
                self.in_loop(&w.0);
                self.in_loop(&w.1.list);
            }
            C::Coprocess(c) => self.command(&c.body, piped, None),
        }
    }

    fn in_loop(&mut self, list: &ast::CompoundList) {
        self.loops += 1;
        self.compound_list(list);
        self.loops -= 1;
    }

    /// Variables whose value is code the shell runs later, or that change what every later
    /// program loads or records.
    fn assignment(&mut self, a: &ast::Assignment) {
        let span = self.span(Some(a.loc.clone()));
        let name = match &a.name {
            ast::AssignmentName::VariableName(n) => n.as_str(),
            ast::AssignmentName::ArrayElementName(n, index) => {
                // `a[$(cmd)]=1` runs the substitution in the subscript.
                self.arithmetic(index);
                n.as_str()
            }
        };
        let ast::AssignmentValue::Scalar(v) = &a.value else {
            return;
        };
        let value = words::expand(&v.value).text;
        if stored_code(&value) {
            self.found.problems.push(Reason {
                rule: "shell.stored-substitution".into(),
                span,
                text: format!(
                    "{name} holds text with a command substitution ({value}): arithmetic, \
                     ${{x@P}}, prompts or eval would run it later"
                ),
                tier: Tier::High,
            });
        }
        if let Some(file) = crate::paths::secret_glob(&value) {
            self.found.problems.push(Reason {
                rule: "secrets.variable".into(),
                span,
                text: format!(
                    "{name} names {file}, a credential file, for a later command to read"
                ),
                tier: Tier::High,
            });
        }
        let problem = |tier: Tier, rule: &str, text: String| Reason {
            rule: rule.into(),
            span,
            text,
            tier,
        };
        match name {
            // Run before every prompt of an interactive shell: the value is a command.
            "PROMPT_COMMAND" => self.nested(&value, span),
            // Prompts expand `$(…)` each time they are shown (PS4 on every traced line).
            "PS0" | "PS1" | "PS2" | "PS3" | "PS4" => {
                for sub in words::arithmetic_substitutions(&value) {
                    self.nested(&sub, span);
                }
                if value.contains('`') || value.contains("$(") {
                    self.found.problems.push(Reason {
                        rule: "exec.prompt-code".into(),
                        span,
                        text: format!("{name} runs the code in it each time the prompt is shown"),
                        tier: Tier::High,
                    });
                }
            }
            "BASH_ENV" | "ENV" => self.found.problems.push(problem(
                Tier::High,
                "exec.startup-file",
                format!("{name}={value} makes every new shell run that file first"),
            )),
            "LD_PRELOAD" | "LD_AUDIT" | "LD_LIBRARY_PATH" | "DYLD_INSERT_LIBRARIES" => {
                self.found.problems.push(problem(
                    Tier::High,
                    "exec.library-injection",
                    format!("{name} loads other code into every program started"),
                ))
            }
            "HISTFILE" | "HISTSIZE" | "HISTFILESIZE" | "HISTCONTROL" | "HISTIGNORE" => {
                self.found.problems.push(problem(
                    Tier::High,
                    "forensics.histfile",
                    format!("{name}={value} changes what shell history records"),
                ))
            }
            _ => {
                let (reasons, scripts) = crate::envvars::judge(name, &value, span);
                self.found.problems.extend(reasons);
                for text in scripts {
                    self.nested(&text, span);
                }
            }
        }
    }

    fn arithmetic(&mut self, text: &str) {
        let span = self.span(None);
        for sub in words::arithmetic_substitutions(text) {
            self.nested(&sub, span);
        }
    }

    fn extended_test(&mut self, e: &ast::ExtendedTestExpr) {
        use ast::ExtendedTestExpr as E;
        match e {
            E::And(a, b) | E::Or(a, b) => {
                self.extended_test(a);
                self.extended_test(b);
            }
            E::Not(a) | E::Parenthesized(a) => self.extended_test(a),
            E::UnaryTest(_, w) => self.word_substitutions(&words::expand(&w.value), w.loc.clone()),
            E::BinaryTest(_, a, b) => {
                self.word_substitutions(&words::expand(&a.value), a.loc.clone());
                self.word_substitutions(&words::expand(&b.value), b.loc.clone());
            }
        }
    }

    fn word_substitutions(&mut self, e: &Expanded, loc: Option<brush_parser::SourceSpan>) {
        if e.substitutions.is_empty() && !e.prompt_expansion {
            return;
        }
        let span = self.span(loc);
        if e.prompt_expansion {
            self.found.problems.push(Reason {
                rule: "exec.prompt-code".into(),
                span,
                text: "${x@P} expands a variable like a prompt, running any $(…) in its value"
                    .into(),
                tier: Tier::High,
            });
        }
        for s in &e.substitutions {
            self.nested(s, span);
        }
    }

    fn simple(&mut self, s: &ast::SimpleCommand, piped: bool, feed: Option<String>) {
        // Nested text reports the outer span; only the top level needs the (computed) location.
        let span = match self.span_override {
            Some(o) => Some(o),
            None => self.span(s.location()),
        };
        let mut cmd = SimpleCmd {
            span,
            stdin_piped: piped,
            stdin_text: feed,
            ..SimpleCmd::default()
        };
        let mut items: Vec<&ast::CommandPrefixOrSuffixItem> = Vec::new();
        if let Some(p) = &s.prefix {
            items.extend(p.0.iter());
        }
        let mut name_seen = false;
        for item in items {
            self.item(item, &mut cmd, &mut name_seen);
        }
        if let Some(w) = &s.word_or_name {
            let e = words::expand(&w.value);
            if self.functions.contains(&e.text) {
                self.found.problems.push(Reason {
                    rule: "resource.recursive-function".into(),
                    span,
                    text: format!(
                        "function {} calls itself: unbounded recursion, or a fork bomb when \
                         the calls are piped or backgrounded",
                        e.text
                    ),
                    tier: Tier::High,
                });
            }
            self.word_substitutions(&e, w.loc.clone());
            cmd.dynamic_name = e.dynamic || words::has_brace_expansion(&w.value);
            cmd.dynamic_words.push(cmd.dynamic_name);
            cmd.opaque_words.push(cmd.dynamic_name);
            cmd.argv.push(e.text);
            name_seen = true;
        }
        if let Some(sfx) = &s.suffix {
            for item in &sfx.0 {
                self.item(item, &mut cmd, &mut name_seen);
            }
        }
        if cmd.argv.is_empty() {
            // Only assignments/redirections (`X=$(rm -rf /)`, `: > f` without a name, or
            // `$(< FILE)`, which reads the file).
            if !cmd.redirects.is_empty() || cmd.stdin_path.is_some() {
                cmd.argv.push(":".into());
                cmd.dynamic_words.push(false);
                cmd.opaque_words.push(false);
                self.found.commands.push(cmd);
            }
            return;
        }
        for c in unwrap::unwrap(cmd, self.depth) {
            match c {
                unwrap::Unwrapped::Command(c) => self.found.commands.push(c),
                unwrap::Unwrapped::Script { text, span } => self.nested(&text, span),
                unwrap::Unwrapped::Problem(r) => self.found.problems.push(r),
            }
        }
    }

    fn item(
        &mut self,
        item: &ast::CommandPrefixOrSuffixItem,
        cmd: &mut SimpleCmd,
        name_seen: &mut bool,
    ) {
        use ast::CommandPrefixOrSuffixItem as I;
        match item {
            I::IoRedirect(io) => self.redirect(io, cmd),
            I::Word(w) => {
                let e = words::expand(&w.value);
                self.word_substitutions(&e, w.loc.clone());
                if cmd.argv.is_empty() && !*name_seen {
                    cmd.dynamic_name = e.dynamic || words::has_brace_expansion(&w.value);
                    *name_seen = true;
                } else if e.dynamic {
                    cmd.dynamic_args = true;
                    cmd.substituted_args |= !e.substitutions.is_empty();
                }
                cmd.dynamic_words
                    .push(e.dynamic || words::has_brace_expansion(&w.value));
                cmd.opaque_words
                    .push(e.dynamic && words::starts_dynamic(&w.value, &e.text));
                // Only a path that needed it gets a new string.
                let normalized = match crate::paths::normalize(&e.text) {
                    std::borrow::Cow::Owned(o) => Some(o),
                    std::borrow::Cow::Borrowed(_) => None,
                };
                cmd.argv.push(normalized.unwrap_or(e.text));
            }
            I::AssignmentWord(a, w) => {
                self.assignment(a);
                if !*name_seen
                    && let (ast::AssignmentName::VariableName(n), ast::AssignmentValue::Scalar(v)) =
                        (&a.name, &a.value)
                {
                    cmd.env.push((n.clone(), words::expand(&v.value).text));
                }
                if let ast::AssignmentValue::Scalar(v) = &a.value {
                    self.word_substitutions(&words::expand(&v.value), v.loc.clone());
                } else if let ast::AssignmentValue::Array(vals) = &a.value {
                    for (_, v) in vals {
                        self.word_substitutions(&words::expand(&v.value), v.loc.clone());
                    }
                }
                // After the command name, `X=1` is an ordinary argument.
                if *name_seen {
                    let e = words::expand(&w.value);
                    cmd.dynamic_words.push(e.dynamic);
                    cmd.opaque_words.push(false);
                    cmd.argv.push(e.text);
                }
            }
            I::ProcessSubstitution(_, sub) => {
                self.compound_list(&sub.list);
                // The program sees a path to a pipe carrying another command's output.
                cmd.dynamic_words.push(true);
                cmd.opaque_words.push(false);
                cmd.argv.push(PROC_SUBST_PATH.into());
                cmd.substituted_args = true;
            }
        }
    }

    fn redirect(&mut self, io: &ast::IoRedirect, cmd: &mut SimpleCmd) {
        use ast::{IoFileRedirectKind as K, IoFileRedirectTarget as T, IoRedirect as R};
        match io {
            R::File(_, kind, target) => match target {
                T::Filename(w) => {
                    let e = words::expand(&w.value);
                    self.word_substitutions(&e, w.loc.clone());
                    if matches!(kind, K::Read | K::ReadAndWrite) {
                        cmd.stdin_file = true;
                        cmd.stdin_path = Some(e.text.clone());
                    }
                    if matches!(kind, K::Write | K::Append | K::Clobber | K::ReadAndWrite) {
                        cmd.redirects.push(Redirect {
                            target: e.text,
                            dynamic: e.dynamic,
                            append: matches!(kind, K::Append),
                        });
                    }
                }
                T::ProcessSubstitution(_, sub) => self.compound_list(&sub.list),
                // `>& FILE` (a word, not a descriptor) sends stdout and stderr to the file.
                T::Duplicate(w) => {
                    let e = words::expand(&w.value);
                    let fd = e.text == "-" || e.text.bytes().all(|b| b.is_ascii_digit());
                    if !fd || e.dynamic {
                        self.word_substitutions(&e, w.loc.clone());
                        if matches!(kind, K::DuplicateOutput | K::Write | K::Append | K::Clobber) {
                            cmd.redirects.push(Redirect {
                                target: e.text,
                                dynamic: e.dynamic,
                                append: false,
                            });
                        }
                    }
                }
                T::Fd(_) => {}
            },
            R::HereDocument(_, doc) => {
                cmd.stdin_text = Some(doc.doc.value.clone());
                if doc.requires_expansion {
                    let e = words::expand(&doc.doc.value);
                    self.word_substitutions(&e, doc.doc.loc.clone());
                    if !e.substitutions.is_empty() {
                        cmd.runtime_stdin();
                    }
                }
            }
            R::HereString(_, w) => {
                let e = words::expand(&w.value);
                self.word_substitutions(&e, w.loc.clone());
                if e.dynamic {
                    cmd.runtime_stdin();
                } else {
                    cmd.stdin_text = Some(e.text);
                }
            }
            R::OutputAndError(w, append) => {
                let e = words::expand(&w.value);
                cmd.redirects.push(Redirect {
                    target: e.text,
                    dynamic: e.dynamic,
                    append: *append,
                });
            }
        }
    }
}

/// Text that holds a command substitution or arithmetic expansion to be evaluated later
/// (`y='a[$(rm -rf ~)]'; echo $((y))`).
fn stored_code(value: &str) -> bool {
    value.contains("$(") || value.contains('`') || value.contains("$[")
}
