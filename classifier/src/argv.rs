//! A command's plain argv, for whitelist globs.
//!
//! A glob such as `docker restart *` is only safe against a command that is exactly one
//! program with literal arguments: no lists, pipes, background jobs, redirections, variable
//! assignments, substitutions, parameters, or words the shell would expand (globs, braces,
//! tildes). Anything else has no plain argv and can only be whitelisted by its exact text.

use std::io::Cursor;

use brush_parser::ast::{self, CommandPrefixOrSuffixItem as Item};
use brush_parser::{Parser, ParserOptions};

use crate::{MAX_COMMAND_BYTES, words};

/// Characters that make the shell rewrite a word (pathname, brace and tilde expansion). A
/// word holding one, quoted or not, is refused rather than second-guessing the quoting.
const EXPANDING: &[char] = &['*', '?', '[', ']', '{', '}', '~'];

/// The argv `command` runs with, if it is one plain program invocation.
pub fn plain_argv(command: &str) -> Option<Vec<String>> {
    if command.len() > MAX_COMMAND_BYTES || command.contains('\n') {
        return None;
    }
    let mut parser = Parser::new(Cursor::new(command.as_bytes()), &ParserOptions::default());
    let program = parser.parse_program().ok()?;
    plain_from(command, &program)
}

/// As [`plain_argv`], from a program already parsed (the classifier parses each command once).
pub(crate) fn plain_from(command: &str, program: &ast::Program) -> Option<Vec<String>> {
    if command.len() > MAX_COMMAND_BYTES || command.contains('\n') {
        return None;
    }
    let [list] = program.complete_commands.as_slice() else {
        return None;
    };
    let [ast::CompoundListItem(and_or, ast::SeparatorOperator::Sequence)] = list.0.as_slice()
    else {
        return None;
    };
    if !and_or.additional.is_empty() || and_or.first.bang || and_or.first.timed.is_some() {
        return None;
    }
    let [ast::Command::Simple(simple)] = and_or.first.seq.as_slice() else {
        return None;
    };
    if simple.prefix.is_some() {
        return None; // assignments or redirections before the name
    }
    let mut raw = vec![simple.word_or_name.as_ref()?.value.as_str()];
    for item in simple.suffix.iter().flat_map(|s| s.0.iter()) {
        match item {
            Item::Word(w) => raw.push(w.value.as_str()),
            // After the name `X=1` is an ordinary argument.
            Item::AssignmentWord(_, w) => raw.push(w.value.as_str()),
            Item::IoRedirect(_) | Item::ProcessSubstitution(..) => return None,
        }
    }
    raw.into_iter()
        .map(|w| {
            if w.contains(EXPANDING) {
                return None;
            }
            let e = words::expand(w);
            (!e.dynamic).then_some(e.text)
        })
        .collect()
}

/// Whether `pattern` (words, each a glob: `*` any run of characters, `?` one character; a
/// lone `**` any number of words, including none) matches `argv`. The program word of a
/// pattern is matched literally, so no glob can choose the program.
pub fn glob_matches(pattern: &[String], argv: &[String]) -> bool {
    match (pattern.first(), argv.first()) {
        (Some(p), Some(a)) if p == a => words_match(&pattern[1..], &argv[1..]),
        _ => false,
    }
}

fn words_match(pattern: &[String], argv: &[String]) -> bool {
    match pattern.split_first() {
        None => argv.is_empty(),
        Some((p, rest)) if p == "**" => (0..=argv.len()).any(|k| words_match(rest, &argv[k..])),
        Some((p, rest)) => match argv.split_first() {
            Some((a, more)) => word_matches(p.as_bytes(), a.as_bytes()) && words_match(rest, more),
            None => false,
        },
    }
}

/// Byte-wise glob over one word, iterative with one backtrack point (linear in practice).
fn word_matches(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                si += 1;
            }
            Some(&c) if c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Split a glob pattern into words the way the shell would split a plain command; the same
/// rules as [`plain_argv`], except that `*`, `?` and `**` are allowed (they are the glob).
pub fn glob_pattern(pattern: &str) -> Result<Vec<String>, String> {
    // Replace glob characters by placeholders the parser takes as plain word characters, parse,
    // then restore them.
    const STAR: &str = "\u{E000}";
    const QMARK: &str = "\u{E001}";
    if pattern.contains(STAR) || pattern.contains(QMARK) {
        return Err("pattern contains reserved characters".into());
    }
    let masked = pattern.replace('*', STAR).replace('?', QMARK);
    let argv = plain_argv(&masked).ok_or_else(|| {
        "a glob must be one program with literal arguments (no pipes, lists, redirections, \
         variables, substitutions, quotes around globs or brace/tilde expansion)"
            .to_owned()
    })?;
    let words: Vec<String> = argv
        .into_iter()
        .map(|w| w.replace(STAR, "*").replace(QMARK, "?"))
        .collect();
    match words.first() {
        Some(program) if program.contains(['*', '?']) => {
            Err("the program (first word) of a glob must be literal".into())
        }
        Some(_) => Ok(words),
        None => Err("empty pattern".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn plain_commands_have_an_argv() {
        assert_eq!(
            plain_argv("docker  restart 'web 1'"),
            Some(v(&["docker", "restart", "web 1"]))
        );
        assert_eq!(
            plain_argv("systemctl status nginx"),
            Some(v(&["systemctl", "status", "nginx"]))
        );
        assert_eq!(plain_argv("env FOO=1"), Some(v(&["env", "FOO=1"])));
    }

    #[test]
    fn anything_more_has_none() {
        for c in [
            "docker restart web; rm -rf /",
            "docker restart web && rm -rf /",
            "docker restart web | sh",
            "docker restart web &",
            "docker restart web > /etc/passwd",
            "LD_PRELOAD=/tmp/x.so docker restart web",
            "docker restart $(cat names)",
            "docker restart $NAME",
            "docker restart `id`",
            "docker restart web*",
            "docker restart {a,b}",
            "docker restart ~root",
            "! docker restart web",
            "docker restart web\nrm -rf /",
            "docker restart <(echo)",
            "(docker restart web)",
            "",
        ] {
            assert_eq!(plain_argv(c), None, "{c:?}");
        }
    }

    #[test]
    fn globs() {
        let p = glob_pattern("docker restart *").unwrap();
        assert!(glob_matches(&p, &v(&["docker", "restart", "web"])));
        assert!(!glob_matches(&p, &v(&["docker", "restart"])));
        assert!(!glob_matches(&p, &v(&["docker", "restart", "a", "b"])));
        assert!(!glob_matches(&p, &v(&["docker", "rm", "web"])));
        let p = glob_pattern("docker restart web-* **").unwrap();
        assert!(glob_matches(&p, &v(&["docker", "restart", "web-1"])));
        assert!(glob_matches(
            &p,
            &v(&["docker", "restart", "web-1", "-t", "5"])
        ));
        assert!(!glob_matches(&p, &v(&["docker", "restart", "db-1"])));
        assert!(word_matches(b"a*b?c", b"axxbyc"));
        assert!(!word_matches(b"a*b?c", b"axxbc"));
        assert!(word_matches(b"**", b""));
        assert!(glob_pattern("* restart web").is_err());
        assert!(glob_pattern("docker restart * ; rm -rf /").is_err());
        assert!(glob_pattern("docker restart $X").is_err());
        assert!(glob_pattern("").is_err());
    }
}
