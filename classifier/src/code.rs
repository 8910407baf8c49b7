//! Inline interpreter code: `python -c`, `perl -e`, `ruby -e`, `node -e`, `php -r`, awk programs.
//!
//! The code itself is matched by the rule packs (keywords such as `shutil.rmtree`); this module
//! finds the code in the argv and pulls out the shell commands it hands to a shell —
//! `os.system("…")`, `subprocess.run([…])`, backticks, `system("…")` in awk — so that those are
//! classified as shell, one level deeper, like `sh -c`.

use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Perl,
    Ruby,
    Node,
    Php,
    Lua,
    Awk,
}

/// Interpreter program names as the rules see them (`python3.11` is `python3`).
pub fn canonical(program: &str) -> Option<&'static str> {
    let base = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match base {
        "python" if program.starts_with("python3") => "python3",
        "python" => "python",
        "pypy" => "python3",
        "perl" => "perl",
        "ruby" => "ruby",
        "node" | "nodejs" => "node",
        "php" => "php",
        "lua" | "luajit" => "lua",
        "awk" | "gawk" | "mawk" | "nawk" => "awk",
        _ => return None,
    })
}

fn lang_of(program: &str) -> Option<Lang> {
    Some(match canonical(program)? {
        "python" | "python3" => Lang::Python,
        "perl" => Lang::Perl,
        "ruby" => Lang::Ruby,
        "node" => Lang::Node,
        "php" => Lang::Php,
        "lua" => Lang::Lua,
        _ => Lang::Awk,
    })
}

/// The program text given on the command line, if any.
pub fn inline_code(argv: &[String]) -> Option<(Lang, String)> {
    let lang = lang_of(argv.first()?)?;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        let takes_code = match lang {
            Lang::Python => a == "-c",
            // Perl option clusters such as `-ne`, `-lane`, `-i.bak -pe` end in the code flag.
            Lang::Perl => {
                a.starts_with('-') && !a.starts_with("--") && (a.ends_with('e') || a.ends_with('E'))
            }
            Lang::Ruby => {
                a == "-e" || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('e'))
            }
            Lang::Node => matches!(a, "-e" | "--eval" | "-p" | "--print"),
            Lang::Php => a == "-r",
            Lang::Lua => a == "-e",
            Lang::Awk => false,
        };
        if takes_code {
            return argv.get(i + 1).map(|c| (lang, c.clone()));
        }
        if lang == Lang::Awk {
            match a {
                "-f" | "--file" => return None,
                "-F" | "-v" | "--assign" | "--field-separator" => i += 2,
                _ if a.starts_with('-') && a.len() > 1 => i += 1,
                _ => return Some((lang, a.to_owned())),
            }
            continue;
        }
        if !a.starts_with('-') {
            // A script file: its code is not on the command line.
            return None;
        }
        i += 1;
    }
    None
}

const CALLS: &str = r#"\b(?:system|popen|exec|execSync|execFileSync|spawnSync|spawn|execFile|check_output|check_call|getoutput|getstatusoutput|run|call|Popen|shell_exec|passthru|proc_open|execute|open3|capture2|capture3|pty\.spawn)\s*\(\s*(?:[rbfu]?("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'))(\s*,\s*\[[^\]]*\])?"#;
const LIST_CALLS: &str = r#"\b(?:system|run|call|check_output|check_call|Popen|spawn|spawnSync|execFileSync|execFile|execv|execvp|exec)\s*\(\s*\[([^\]]*)\]"#;
const BACKTICKS: &str = r#"`([^`]*)`|\bqx\s*[({\[/|!]([^)}\]/|!]*)|%x[({\[]([^)}\]]*)"#;
const AWK_PIPES: &str = r#"\|\s*"((?:[^"\\]|\\.)*)"|"((?:[^"\\]|\\.)*)"\s*\|\s*getline"#;
const STRING: &str = r#""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'"#;

struct Patterns {
    calls: Regex,
    list_calls: Regex,
    backticks: Regex,
    awk_pipes: Regex,
    string: Regex,
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    Some(Patterns {
        calls: Regex::new(CALLS).ok()?,
        list_calls: Regex::new(LIST_CALLS).ok()?,
        backticks: Regex::new(BACKTICKS).ok()?,
        awk_pipes: Regex::new(AWK_PIPES).ok()?,
        string: Regex::new(STRING).ok()?,
    })
});

fn unquote(s: &str) -> String {
    let inner = s.get(1..s.len().saturating_sub(1)).unwrap_or_default();
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// String elements of a list literal, as an argv.
fn list_elements(p: &Patterns, list: &str) -> Vec<String> {
    p.string
        .find_iter(list)
        .map(|m| unquote(m.as_str()))
        .collect()
}

/// Shell command texts that `code` hands to a shell or executes as an argv.
/// `None` means the patterns could not be compiled, which callers must treat as unknown.
pub fn shell_strings(lang: Lang, code: &str) -> Option<Vec<String>> {
    let p = PATTERNS.as_ref()?;
    let mut out = Vec::new();
    for c in p.calls.captures_iter(code) {
        let mut argv = vec![unquote(c.get(1).map(|m| m.as_str()).unwrap_or_default())];
        if let Some(list) = c.get(2) {
            argv.extend(list_elements(p, list.as_str()));
            out.push(crate::unwrap::shell_join(&argv));
        } else {
            out.extend(argv);
        }
    }
    for c in p.list_calls.captures_iter(code) {
        let argv = list_elements(p, c.get(1).map(|m| m.as_str()).unwrap_or_default());
        if !argv.is_empty() {
            out.push(crate::unwrap::shell_join(&argv));
        }
    }
    if matches!(lang, Lang::Perl | Lang::Ruby | Lang::Php) {
        for c in p.backticks.captures_iter(code) {
            if let Some(m) = c.iter().skip(1).flatten().next() {
                out.push(m.as_str().to_owned());
            }
        }
    }
    if lang == Lang::Awk {
        for c in p.awk_pipes.captures_iter(code) {
            if let Some(m) = c.iter().skip(1).flatten().next() {
                out.push(m.as_str().replace("\\\"", "\""));
            }
        }
    }
    out.retain(|s| !s.trim().is_empty());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn finds_the_code() {
        assert_eq!(
            inline_code(&argv(&["python3", "-c", "print(1)"])).map(|x| x.1),
            Some("print(1)".into())
        );
        assert_eq!(
            inline_code(&argv(&["perl", "-i", "-pe", "s/a/b/", "f"])).map(|x| x.1),
            Some("s/a/b/".into())
        );
        assert_eq!(
            inline_code(&argv(&["awk", "-F", ":", "{print $1}", "/etc/passwd"])).map(|x| x.1),
            Some("{print $1}".into())
        );
        assert!(inline_code(&argv(&["python3", "script.py", "-c", "x"])).is_none());
        assert_eq!(canonical("python3.11"), Some("python3"));
    }

    #[test]
    fn extracts_shell_commands() {
        let got = |lang, code| shell_strings(lang, code).unwrap_or_default();
        assert_eq!(
            got(Lang::Python, r#"import os; os.system("rm -rf /srv")"#),
            vec!["rm -rf /srv"]
        );
        assert_eq!(
            got(
                Lang::Python,
                r#"import subprocess; subprocess.run(["rm", "-rf", "/srv"])"#
            ),
            vec!["rm -rf /srv"]
        );
        assert_eq!(got(Lang::Perl, "print `rm -rf /srv`"), vec!["rm -rf /srv"]);
        assert_eq!(
            got(Lang::Awk, r#"BEGIN { system("rm -rf /srv") }"#),
            vec!["rm -rf /srv"]
        );
        assert_eq!(
            got(
                Lang::Node,
                r#"require('child_process').spawnSync('rm', ['-rf', '/srv'])"#
            ),
            vec!["rm -rf /srv"]
        );
        assert!(got(Lang::Python, "print(sum(range(10)))").is_empty());
    }
}
