//! Evasion generator: every `high` line of the golden corpus (`classifier/corpus/*.txt`) must
//! stay `high` when it is hidden behind the obfuscations an agent (or an attacker steering one)
//! can reach for without changing what the shell finally runs.
//!
//! The corpus lists a handful of evasions by hand; this test derives them mechanically instead,
//! so each new high-risk line is automatically checked against every technique: base64, hex and
//! printf encodings piped to a shell, `rev`, here-strings, variable and `${IFS}` splicing, brace
//! expansion, `eval`, wrappers (`sudo`, `env`, `nice`, …), `bash -c`, command and process
//! substitution, and nested combinations of them. A technique is skipped for a command only when
//! the shell cannot express it (e.g. `${IFS}` with quotes, brace expansion with non-plain words,
//! an external wrapper around a shell builtin); skips are counted and printed.
//!
//! The test prints the per-technique counts and every variant that is not classified `high`
//! (technique, corpus line, original, variant, tier and rule ids), then fails if there is any.
//! It also requires at least 1,000 variants, so it cannot pass vacuously. Set `EVASIONS_DUMP` to
//! a file path to also write every variant there (`technique<TAB>original<TAB>variant` lines),
//! e.g. to check the quoting with a real shell (`bash -n`).

mod lines;

use std::collections::{BTreeMap, BTreeSet};

use airlock_classifier::{Classifier, Context, Tier};

/// Minimum number of variants; a smaller number means the loader or generators broke.
const MIN_VARIANTS: usize = 1_000;

/// A corpus line expected `high`.
struct Source {
    at: String,
    command: String,
}

/// The `high` lines of the golden corpus, de-duplicated, and how many there were before.
fn load_high() -> (Vec<Source>, usize) {
    let (mut out, mut seen, mut total) = (Vec::new(), BTreeSet::new(), 0);
    for line in lines::load("corpus") {
        if line.want != Tier::High {
            continue;
        }
        total += 1;
        if seen.insert(line.command.clone()) {
            out.push(Source {
                at: line.at,
                command: line.command,
            });
        }
    }
    (out, total)
}

// ----- encoders and quoting ------------------------------------------------------------------

/// Quotes `s` as one shell word: `'…'`, with each `'` written as `'\''`.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Standard base64 with padding (what `base64 -d` reads).
fn b64(s: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Lower-case hex of every byte (what `xxd -r -p` reads).
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Every byte as `\xNN`, for a `printf` format (`%` is escaped too, so no directive survives).
fn printf_escapes(s: &str) -> String {
    s.bytes().map(|b| format!("\\x{b:02x}")).collect()
}

/// The characters of `s` in reverse order (what `rev` undoes).
fn reversed(s: &str) -> String {
    s.chars().rev().collect()
}

/// Escapes the characters that keep a special meaning inside `` `…` `` even within single quotes.
fn backtick_escape(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('`', r"\`")
        .replace('$', r"\$")
}

// ----- a little shell lexing -----------------------------------------------------------------

/// Shell reserved words (and `[[`, `((`): a command starting with one is compound.
const RESERVED: &[&str] = &[
    "!", "[[", "]]", "{", "}", "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for",
    "function", "if", "in", "select", "then", "until", "while",
];

/// Builtins with no external binary of the same name: `sudo`, `env`, `nice`, … cannot run them.
const BUILTINS: &[&str] = &[
    ".",
    ":",
    "alias",
    "bg",
    "builtin",
    "cd",
    "command",
    "declare",
    "disown",
    "enable",
    "eval",
    "exec",
    "export",
    "fg",
    "hash",
    "history",
    "jobs",
    "let",
    "local",
    "mapfile",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "trap",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
];

/// Byte spans of the words of `s`, split on unquoted blanks; quotes, backslashes, backticks and
/// `$(…)`/`${…}` keep their contents in one word. Rough, but enough to find the command word.
fn words(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let (mut out, mut start, mut depth, mut i) = (Vec::new(), None, 0usize, 0);
    let skip_to = |mut i: usize, close: u8| {
        while i < b.len() && b[i] != close {
            i += if b[i] == b'\\' && close != b'\'' {
                2
            } else {
                1
            };
        }
        i
    };
    while i < b.len() {
        let c = b[i];
        if depth == 0 && c.is_ascii_whitespace() {
            if let Some(st) = start.take() {
                out.push((st, i));
            }
            i += 1;
            continue;
        }
        start.get_or_insert(i);
        match c {
            b'\\' => i += 1,
            b'\'' | b'"' | b'`' => i = skip_to(i + 1, c),
            b'(' | b'{' if depth > 0 || (i > 0 && b[i - 1] == b'$') => depth += 1,
            b')' | b'}' if depth > 0 => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    if let Some(st) = start {
        out.push((st, b.len()));
    }
    out
}

/// `NAME=…`, `NAME+=…` or `NAME[…]=…`: an assignment when in command position.
fn is_assignment(w: &str) -> bool {
    let Some(eq) = w.find('=') else { return false };
    let name = w[..eq].trim_end_matches('+');
    let name = name
        .split_once('[')
        .map_or(name, |(n, rest)| if rest.ends_with(']') { n } else { "" });
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Operators and redirections written as a separate blank-delimited word (`|`, `&&`, `2>`, `0>&1`).
fn is_operator(w: &str) -> bool {
    w.contains(|c| "|&;()<>".contains(c))
        && w.chars()
            .all(|c| "|&;()<>".contains(c) || c.is_ascii_digit())
}

/// Whether a blank-separated word ends such that the next word is in command position.
fn ends_command(w: &str) -> bool {
    is_operator(w) || w.ends_with([';', '&', '|', '('])
}

/// Where a prefix command (`sudo`, `env`, …) can go: after any leading assignments, before the
/// command word. `Err` when the first command is compound, a builtin or only assignments.
fn command_word(cmd: &str) -> Result<usize, &'static str> {
    let ws = words(cmd);
    let &(start, end) = ws
        .iter()
        .find(|&&(s, e)| !is_assignment(&cmd[s..e]))
        .ok_or("only assignments")?;
    let w = &cmd[start..end];
    let name = w.trim_end_matches([';', '&', '|']);
    if RESERVED.contains(&w)
        || w.starts_with(['(', '{', '<', '>'])
        || w.contains("()")
        || is_operator(w)
    {
        Err("compound command")
    } else if BUILTINS.contains(&name) {
        Err("shell builtin")
    } else {
        Ok(start)
    }
}

// ----- techniques ----------------------------------------------------------------------------

/// A transform, or the reason it cannot be expressed for this command.
type Transform = fn(&str) -> Result<String, &'static str>;

/// Puts `prefix` before the command word, keeping leading assignments in front of it.
fn wrap(cmd: &str, prefix: &str) -> Result<String, &'static str> {
    let at = command_word(cmd)?;
    Ok(format!("{}{prefix} {}", &cmd[..at], &cmd[at..]))
}

/// Joins the words of a quote-free command with `${IFS}` instead of blanks. A blank is kept where
/// `${IFS}` would change the meaning: around operators and redirections (`2>` would stop being a
/// redirection), around assignments in command position (they would stop being assignments), and
/// before `~` (tilde expansion only happens at the start of a word).
fn ifs(cmd: &str) -> Result<String, &'static str> {
    if cmd.contains(['\'', '"']) {
        return Err("contains quotes");
    }
    let ws: Vec<&str> = cmd.split_whitespace().collect();
    if ws
        .iter()
        .any(|w| RESERVED.contains(w) || w.starts_with('#'))
    {
        return Err("compound command or comment");
    }
    let mut command_position = true;
    let kept: Vec<bool> = ws
        .iter()
        .map(|w| {
            // `X=$(a b)` splits into `X=$(a` and `b)`; the blank is inside `$(…)`, so splice it.
            let balanced = w.matches('(').count() == w.matches(')').count();
            let assignment = command_position && balanced && is_assignment(w);
            // After an assignment in command position, the next word is still in command position.
            command_position = ends_command(w) || assignment;
            is_operator(w) || assignment
        })
        .collect();
    let (mut out, mut replaced) = (ws[0].to_owned(), 0);
    for i in 1..ws.len() {
        if kept[i - 1] || kept[i] || ws[i].starts_with('~') {
            out.push(' ');
        } else {
            out.push_str("${IFS}");
            replaced += 1;
        }
        out.push_str(ws[i]);
    }
    if replaced == 0 {
        return Err("no blank between plain words");
    }
    Ok(out)
}

/// `{w1,w2,…}` for one simple command of plain words (`{w,}` for a single word: the empty
/// alternative vanishes).
fn braces(cmd: &str) -> Result<String, &'static str> {
    let plain = |w: &str| {
        w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-~^*".contains(c))
    };
    let ws: Vec<&str> = cmd.split_whitespace().collect();
    if !ws.iter().all(|w| plain(w)) {
        return Err("not all plain words");
    }
    if RESERVED.contains(&ws[0]) || is_assignment(ws[0]) {
        return Err("reserved word or assignment first");
    }
    let mut parts = ws.join(",");
    if ws.len() == 1 {
        parts.push(',');
    }
    Ok(format!("{{{parts}}}"))
}

/// Every technique: name and transform.
const TECHNIQUES: &[(&str, Transform)] = &[
    ("base64 | sh", |c| {
        Ok(format!("echo {} | base64 -d | sh", b64(c)))
    }),
    ("base64 | bash", |c| {
        Ok(format!("echo {} | base64 -d | bash", b64(c)))
    }),
    ("base64 <<< | bash", |c| {
        Ok(format!("base64 -d <<< {} | bash", b64(c)))
    }),
    ("xxd | sh", |c| {
        Ok(format!("echo {} | xxd -r -p | sh", hex(c)))
    }),
    ("printf | sh", |c| {
        Ok(format!("printf '{}' | sh", printf_escapes(c)))
    }),
    ("sh -c $(printf)", |c| {
        Ok(format!("sh -c \"$(printf '{}')\"", printf_escapes(c)))
    }),
    ("rev | sh", |c| {
        Ok(format!("echo {} | rev | sh", sq(&reversed(c))))
    }),
    ("bash <<<", |c| Ok(format!("bash <<< {}", sq(c)))),
    ("var $X", |c| Ok(format!("X={}; $X", sq(c)))),
    ("var eval", |c| Ok(format!("X={}; eval \"$X\"", sq(c)))),
    ("${IFS}", ifs),
    ("braces", braces),
    ("eval", |c| Ok(format!("eval {}", sq(c)))),
    ("env", |c| wrap(c, "env")),
    ("sudo", |c| wrap(c, "sudo")),
    ("nice -n 5", |c| wrap(c, "nice -n 5")),
    ("timeout 30", |c| wrap(c, "timeout 30")),
    ("nohup", |c| wrap(c, "nohup")),
    ("wrapper chain", |c| {
        wrap(c, "sudo -u root env FOO=1 nice timeout 5")
    }),
    ("bash -c", |c| Ok(format!("bash -c {}", sq(c)))),
    ("sh -c", |c| Ok(format!("sh -c {}", sq(c)))),
    ("bash -lc", |c| Ok(format!("bash -lc {}", sq(c)))),
    ("$(echo)", |c| Ok(format!("$(echo {})", sq(c)))),
    ("`echo`", |c| {
        Ok(format!("`{}`", backtick_escape(&format!("echo {}", sq(c)))))
    }),
    ("bash <(echo)", |c| Ok(format!("bash <(echo {})", sq(c)))),
    ("source <(echo)", |c| {
        Ok(format!("source <(echo {})", sq(c)))
    }),
    ("sudo bash -c $(base64)", |c| {
        Ok(format!("sudo bash -c \"$(echo {} | base64 -d)\"", b64(c)))
    }),
    ("env sh -c $(printf)", |c| {
        Ok(format!("env sh -c \"$(printf '{}')\"", printf_escapes(c)))
    }),
    ("nohup bash -c $(xxd)", |c| {
        Ok(format!("nohup bash -c \"$(echo {} | xxd -r -p)\"", hex(c)))
    }),
    ("timeout bash <<< $(rev)", |c| {
        Ok(format!(
            "timeout 30 bash <<< \"$(echo {} | rev)\"",
            sq(&reversed(c))
        ))
    }),
    ("chain sh -c $(base64 <<<)", |c| {
        Ok(format!(
            "sudo -u root env FOO=1 nice timeout 5 sh -c \"$(base64 -d <<< {})\"",
            b64(c)
        ))
    }),
    ("eval $(base64)", |c| {
        Ok(format!("eval \"$(echo {} | base64 -d)\"", b64(c)))
    }),
    ("sudo + ${IFS}", |c| ifs(c).and_then(|v| wrap(&v, "sudo"))),
    ("nice + braces", |c| {
        braces(c).map(|v| format!("nice -n 5 {v}"))
    }),
];

#[derive(Default)]
struct Count {
    generated: usize,
    skipped: usize,
    failed: usize,
}

#[test]
fn evasions_of_high_lines_stay_high() {
    let (sources, total_lines) = load_high();
    let classifier = Classifier::builtin();
    let ctx = Context::default();
    let mut counts: BTreeMap<&str, Count> = BTreeMap::new();
    let mut skip_reasons: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut dump = String::new();
    let mut originals_not_high = Vec::new();

    for src in &sources {
        let original = classifier.classify(&src.command, &ctx).tier;
        if original != Tier::High {
            originals_not_high.push(format!("{}: {original}  {}", src.at, src.command));
        }
        for &(name, transform) in TECHNIQUES {
            let count = counts.entry(name).or_default();
            let variant = match transform(&src.command) {
                Ok(v) => v,
                Err(why) => {
                    count.skipped += 1;
                    *skip_reasons.entry((name, why)).or_default() += 1;
                    continue;
                }
            };
            count.generated += 1;
            dump.push_str(&format!("{name}\t{}\t{variant}\n", src.command));
            let a = classifier.classify(&variant, &ctx);
            if a.tier != Tier::High {
                count.failed += 1;
                let rules: Vec<&str> = a.reasons.iter().map(|r| r.rule.as_str()).collect();
                failures.push(format!(
                    "[{name}] {}: got {} [{}]{}\n    original: {}\n    variant:  {}",
                    src.at,
                    a.tier,
                    rules.join(", "),
                    if original == Tier::High {
                        String::new()
                    } else {
                        format!(" (original itself is {original})")
                    },
                    src.command,
                    variant
                ));
            }
        }
    }
    if let Ok(path) = std::env::var("EVASIONS_DUMP") {
        std::fs::write(&path, &dump).unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    for f in &failures {
        println!("{f}");
    }
    if !originals_not_high.is_empty() {
        println!(
            "\n{} corpus high lines are not high themselves (see tests/corpus.rs):",
            originals_not_high.len()
        );
        for o in &originals_not_high {
            println!("  {o}");
        }
    }
    println!("\nskips (technique: reason × commands):");
    for ((name, why), n) in &skip_reasons {
        println!("  {name:>26}: {why} × {n}");
    }
    let generated: usize = counts.values().map(|c| c.generated).sum();
    println!(
        "\nsource lines: {total_lines} high corpus lines, {} distinct commands",
        sources.len()
    );
    println!(
        "{:>26} {:>9} {:>8} {:>7}",
        "technique", "generated", "skipped", "failed"
    );
    for &(name, _) in TECHNIQUES {
        let c = &counts[name];
        println!(
            "{name:>26} {:>9} {:>8} {:>7}",
            c.generated, c.skipped, c.failed
        );
    }
    println!(
        "{:>26} {generated:>9} {:>8} {:>7}",
        "total",
        counts.values().map(|c| c.skipped).sum::<usize>(),
        failures.len()
    );

    assert!(
        generated >= MIN_VARIANTS,
        "only {generated} variants generated (want at least {MIN_VARIANTS})"
    );
    let failing: Vec<String> = counts
        .iter()
        .filter(|(_, c)| c.failed > 0)
        .map(|(name, c)| format!("{name} ({}/{})", c.failed, c.generated))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {generated} evasion variants are not high; failing techniques: {}",
        failures.len(),
        failing.join(", ")
    );
}
