//! What one pipeline stage feeds the next, when it is known without running anything.
//!
//! `echo 'DROP TABLE t' | psql` is judged as SQL because the text `echo` prints is literal (also
//! behind wrappers: `sudo echo … | psql`); `yes | tee FILE` and `cat /dev/urandom > FILE` are an
//! endless stream written to a file.

use brush_parser::ast;

use crate::walk::SimpleCmd;
use crate::{unwrap, words};

/// A command whose output never ends: `yes`, `cat /dev/zero`, `cat /dev/urandom`.
pub fn endless_source(c: &SimpleCmd) -> bool {
    let endless_dev =
        |a: &String| matches!(a.as_str(), "/dev/zero" | "/dev/urandom" | "/dev/random");
    match c.argv.first().map(String::as_str) {
        Some("yes") => true,
        Some("cat" | "head" | "tail" | "od" | "base64" | "tr" | "xxd") => {
            c.argv.iter().skip(1).any(endless_dev)
                && !c
                    .argv
                    .iter()
                    .any(|a| a.starts_with("-c") || a.starts_with("-n") || a == "--bytes")
                || c.stdin_path.as_ref().is_some_and(endless_dev)
        }
        _ => false,
    }
}

/// A command that writes to a file (not a harmless sink): a redirect or `tee FILE`.
pub fn writes_file(c: &SimpleCmd) -> bool {
    c.redirects
        .iter()
        .any(|r| !crate::paths::is_harmless_sink(&r.target))
        || (c.argv.first().is_some_and(|p| p == "tee")
            && c.argv
                .iter()
                .skip(1)
                .any(|a| !a.starts_with('-') && !crate::paths::is_harmless_sink(a)))
}

/// What a pipeline stage writes when that is known without running anything: the arguments of
/// `echo` or `printf` made only of literal words. `echo 'DROP TABLE t' | psql` is judged as SQL.
pub fn literal_output(cmd: &ast::Command) -> Option<String> {
    let ast::Command::Simple(s) = cmd else {
        return None;
    };
    if s.prefix.is_some() {
        return None;
    }
    let mut argv = vec![s.word_or_name.as_ref()?.value.clone()];
    for item in s.suffix.iter().flat_map(|x| x.0.iter()) {
        match item {
            ast::CommandPrefixOrSuffixItem::Word(w)
            | ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => argv.push(w.value.clone()),
            _ => return None,
        }
    }
    let mut words_seen = Vec::with_capacity(argv.len());
    for raw in &argv {
        let e = words::expand(raw);
        if e.dynamic || words::has_brace_expansion(raw) {
            return None;
        }
        words_seen.push(e.text);
    }
    // `sudo echo …`, `nice printf …`: what prints is the wrapped command.
    let plain = SimpleCmd {
        dynamic_words: vec![false; words_seen.len()],
        opaque_words: vec![false; words_seen.len()],
        argv: words_seen,
        ..SimpleCmd::default()
    };
    let mut found = unwrap::unwrap(plain, 0).into_iter();
    let (Some(unwrap::Unwrapped::Command(inner)), None) = (found.next(), found.next()) else {
        return None;
    };
    let name = inner.argv.first()?.clone();
    if inner.dynamic_name || !matches!(name.as_str(), "echo" | "printf") {
        return None;
    }
    let mut parts: Vec<String> = inner.argv[1..].to_vec();
    if name == "printf" {
        return printf_output(&parts);
    }
    // echo: dash's echo (the `sh` of Debian) expands backslash escapes even without -e, so
    // any backslash makes the output unknown; `-n` only drops the newline.
    while parts.first().is_some_and(|p| p == "-n" || p == "-E") {
        parts.remove(0);
    }
    if parts.iter().any(|p| p.contains('\\') || p.starts_with('-')) {
        return None;
    }
    Some(parts.join(" "))
}

/// What `printf FORMAT ARGS…` prints, when the format uses only `%s`, `%%`, `\n` and `\t`;
/// anything else (`\x72`, `%b`, `%c`) could spell any command, so the output is unknown.
pub fn printf_output(parts: &[String]) -> Option<String> {
    let (format, args) = parts.split_first()?;
    let mut args = args.iter();
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                _ => return None,
            },
            '%' => match chars.next()? {
                's' => out.push_str(args.next().map(String::as_str).unwrap_or_default()),
                '%' => out.push('%'),
                _ => return None,
            },
            _ => out.push(c),
        }
    }
    // bash reuses the format for leftover arguments; keep it simple and refuse to guess.
    if args.next().is_some() {
        return None;
    }
    Some(out)
}
