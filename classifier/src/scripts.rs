//! The small languages some "read-only" tools take as operands: sed scripts and awk programs.
//!
//! `sed -n '1e id'` runs a command and `sed 'w /etc/x'` writes a file; `awk '{print | "sh"}'`
//! feeds a shell and `awk '{print > "f"}'` writes. These checks read just enough of each
//! language to find the commands that execute or write; everything else they say nothing about.

use crate::readers::NotProven;
use crate::{Tier, paths};

fn not_proven(tier: Tier, rule: &'static str, text: String) -> NotProven {
    NotProven { tier, rule, text }
}

/// `sed [-e SCRIPT]… [SCRIPT] FILE…`.
pub fn sed(program: &str, operands: &[&str], values: &[(&str, &str)]) -> Result<(), NotProven> {
    let mut scripts: Vec<&str> = values
        .iter()
        .filter(|(f, _)| *f == "-e" || *f == "--expression")
        .map(|(_, v)| *v)
        .collect();
    if scripts.is_empty()
        && let Some(first) = operands.first()
    {
        scripts.push(first);
    }
    for s in scripts {
        sed_script(program, s)?;
    }
    Ok(())
}

fn sed_script(program: &str, script: &str) -> Result<(), NotProven> {
    let b: Vec<char> = script.chars().collect();
    let mut i = 0;
    let rest_of_line = |i: usize| -> (String, usize) {
        let end = b[i..]
            .iter()
            .position(|&c| c == '\n')
            .map_or(b.len(), |p| i + p);
        (b[i..end].iter().collect::<String>().trim().to_owned(), end)
    };
    // The commands `e` runs are built from the data (`s/.*/rm -rf &/e`) or written in a
    // script the gate does not parse as shell: the reviewer cannot know what runs.
    let exec = |what: &str| {
        not_proven(
            Tier::High,
            "reader.sed-exec",
            format!("{program} script runs a shell command ({what})"),
        )
    };
    let write = |file: &str| {
        let tier = if paths::sensitive(file).is_some() {
            Tier::High
        } else {
            Tier::Medium
        };
        not_proven(
            tier,
            "reader.sed-write",
            format!("{program} script writes the file {file:?}"),
        )
    };
    let harmless = |f: &str| f == "/dev/stdout" || f == "/dev/stderr" || paths::is_harmless_sink(f);
    while i < b.len() {
        // Separators and addresses.
        while i < b.len() && (b[i].is_whitespace() || b[i] == ';') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        i = skip_address(&b, i);
        while i < b.len() && (b[i].is_whitespace() || b[i] == '!') {
            i += 1;
        }
        let Some(&c) = b.get(i) else { break };
        i += 1;
        match c {
            '{' | '}' | '=' | 'p' | 'P' | 'd' | 'D' | 'n' | 'N' | 'g' | 'G' | 'h' | 'H' | 'x'
            | 'z' | 'F' | 'l' | 'q' | 'Q' | 'L' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            '#' | ':' | 'b' | 't' | 'T' | 'a' | 'i' | 'c' | 'r' | 'R' | 'v' => {
                // To the end of the line (labels also end at `;` except after `:`).
                let (_, end) = rest_of_line(i);
                let semi = if matches!(c, 'b' | 't' | 'T' | ':' | 'v') {
                    b[i..end].iter().position(|&c| c == ';').map(|p| i + p)
                } else {
                    None
                };
                i = semi.unwrap_or(end);
            }
            'e' => {
                let (command, _) = rest_of_line(i);
                if command.is_empty() {
                    return Err(exec(
                        "the e command, on the pattern space: the input is run",
                    ));
                }
                // `e COMMAND`: the command is judged as shell by the unwrapper.
                return Err(not_proven(
                    Tier::Medium,
                    "reader.sed-exec",
                    format!("{program} script runs the command {command:?}"),
                ));
            }
            'w' | 'W' => {
                let (file, end) = rest_of_line(i);
                if !harmless(&file) {
                    return Err(write(&file));
                }
                i = end;
            }
            's' | 'y' => {
                let Some(&delim) = b.get(i) else {
                    return Ok(());
                };
                i += 1;
                for _ in 0..2 {
                    while i < b.len() && b[i] != delim {
                        i += if b[i] == '\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                if c == 's' {
                    while i < b.len() && !matches!(b[i], ';' | '}' | '\n') {
                        match b[i] {
                            'e' => return Err(exec("the s///e flag")),
                            'w' => {
                                let (file, end) = rest_of_line(i + 1);
                                if !harmless(&file) {
                                    return Err(write(&file));
                                }
                                i = end;
                                continue;
                            }
                            _ => i += 1,
                        }
                    }
                }
            }
            other => {
                return Err(not_proven(
                    Tier::Medium,
                    "reader.sed-unknown",
                    format!("{program} script command {other:?} is not one Airlock models"),
                ));
            }
        }
    }
    Ok(())
}

/// The commands `e COMMAND` lines of a sed script run (for judging them as shell).
pub fn sed_commands(operands: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for script in operands {
        for line in script.split(['\n', ';']) {
            let t = line.trim_start();
            // An address may precede `e`: digits, `$`, or a /regex/.
            let t = t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '$' || c == ',');
            if let Some(cmd) = t.strip_prefix('e')
                && cmd.starts_with(char::is_whitespace)
                && !cmd.trim().is_empty()
            {
                out.push(cmd.trim().to_owned());
            }
        }
    }
    out
}

/// Skip `N`, `$`, `/re/`, `\cREc`, `first~step`, `a,b`, and `I`/`M` modifiers.
fn skip_address(b: &[char], mut i: usize) -> usize {
    for part in 0..2 {
        if part == 1 {
            if b.get(i) != Some(&',') {
                break;
            }
            i += 1;
            if matches!(b.get(i), Some('+' | '~')) {
                i += 1;
            }
        }
        match b.get(i) {
            Some('$') => i += 1,
            Some(c) if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == '~') {
                    i += 1;
                }
            }
            Some(&d) if d == '/' || d == '\\' => {
                let delim = if d == '\\' {
                    i += 1;
                    b.get(i).copied().unwrap_or('/')
                } else {
                    '/'
                };
                i += 1;
                while i < b.len() && b[i] != delim {
                    i += if b[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                while matches!(b.get(i), Some('I' | 'M')) {
                    i += 1;
                }
            }
            _ => {}
        }
    }
    i
}

/// `awk [-v a=b]… PROGRAM FILE…`.
pub fn awk(program: &str, operands: &[&str]) -> Result<(), NotProven> {
    let Some(code) = operands.first() else {
        return Ok(());
    };
    let stripped = strip_strings(code);
    let t = stripped.as_str();
    // A command written as a string literal is read and judged as shell elsewhere (the
    // unwrapper extracts it); one built at run time from data or variables cannot be read.
    let exec = |what: &str, literal: bool| {
        not_proven(
            if literal { Tier::Medium } else { Tier::High },
            "reader.awk-exec",
            if literal {
                format!("{program} program runs a command ({what})")
            } else {
                format!(
                    "{program} program runs a command built at run time ({what}): the reviewer cannot read it"
                )
            },
        )
    };
    // In the stripped text a literal is `""`: is it the whole operand up to `end`?
    let literal_before = |rest: &str, ends: &[char]| {
        rest.trim_start().strip_prefix("\"\"").is_some_and(|r| {
            r.trim_start()
                .chars()
                .next()
                .is_none_or(|c| ends.contains(&c))
        })
    };
    let mut from = 0;
    while let Some(p) = find_word(&t[from..], "system").map(|p| p + from) {
        from = p + 6;
        if let Some(args) = t[from..].trim_start().strip_prefix('(') {
            return Err(exec("system()", literal_before(args, &[')'])));
        }
    }
    if t.contains("|&") {
        return Err(exec("a |& coprocess", false));
    }
    let gawk_directive = t.match_indices('@').any(|(p, _)| {
        let rest = &t[p + 1..];
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        !word.is_empty()
            && (matches!(
                word.as_str(),
                "include" | "load" | "namespace" | "nsinclude"
            ) || rest[word.len()..].trim_start().starts_with('('))
    });
    if gawk_directive {
        return Err(exec(
            "gawk @include, @load or an indirect @function call",
            false,
        ));
    }
    let bytes = t.as_bytes();
    for (p, _) in t.match_indices('|') {
        let double = bytes.get(p + 1) == Some(&b'|') || (p > 0 && bytes[p - 1] == b'|');
        if !double && t[p + 1..].trim_start().starts_with("getline") {
            let before = t[..p].trim_end();
            return Err(exec("command | getline", before.ends_with("\"\"")));
        }
    }
    let mut from = 0;
    while let Some(p) = find_print(&t[from..]).map(|p| p + from) {
        from = p + 5;
        let mut depth = 0i32;
        let rest = &t[from..];
        let mut prev = ' ';
        for c in rest.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ';' | '}' | '\n' => break,
                '|' if depth == 0 && prev != '|' => {
                    let after = rest.split_once('|').map_or("", |(_, a)| a);
                    return Err(exec(
                        "print | command",
                        literal_before(after, &[';', '}', '\n']),
                    ));
                }
                '>' if depth == 0 => {
                    return Err(not_proven(
                        Tier::Medium,
                        "reader.awk-write",
                        format!("{program} program writes to a file (print > file)"),
                    ));
                }
                _ => {}
            }
            prev = c;
        }
    }
    Ok(())
}

/// Awk text with the contents of string literals removed (`"a > b"` → `""`).
fn strip_strings(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut in_str = false;
    let mut escaped = false;
    for c in code.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
                out.push(c);
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        out.push(c);
    }
    out
}

/// Position of the next `print` or `printf` statement keyword.
fn find_print(t: &str) -> Option<usize> {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    t.match_indices("print").map(|(p, _)| p).find(|&p| {
        let after = t[p + 5..].strip_prefix('f').unwrap_or(&t[p + 5..]);
        !ident(t[..p].chars().next_back()) && !ident(after.chars().next())
    })
}

/// Position of `word` standing alone (not part of a longer identifier).
fn find_word(t: &str, word: &str) -> Option<usize> {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    t.match_indices(word)
        .map(|(p, _)| p)
        .find(|&p| !ident(t[..p].chars().next_back()) && !ident(t[p + word.len()..].chars().next()))
}
