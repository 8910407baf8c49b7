//! Turning a parsed shell word into the text the shell would pass to the program.
//!
//! Quoting tricks (`r''m`, `"rm"`, `\rm`, `$'\x72\x6d'`) must not hide a command name, so quotes
//! and escapes are evaluated here exactly as bash would. What cannot be known without running
//! anything (parameters, command substitutions, arithmetic) marks the word as dynamic, and the
//! text of every command substitution is handed back so the caller can classify it too.

use brush_parser::ParserOptions;
use brush_parser::word::{self, WordPiece, WordPieceWithSource};

/// A word after quote removal.
#[derive(Debug, Default, Clone)]
pub struct Expanded {
    /// The literal text; dynamic parts contribute nothing.
    pub text: String,
    /// True when part of the word is only known at run time.
    pub dynamic: bool,
    /// Source of each `$(…)` / backtick substitution inside the word.
    pub substitutions: Vec<String>,
    /// The word uses `${x@P}`: a variable's value is expanded like a prompt, running any
    /// substitution it holds.
    pub prompt_expansion: bool,
}

/// Whether an unquoted `{a,b}` or `{1..3}` brace expansion occurs in the raw word: the shell
/// turns it into several words, so as a command name it hides which program runs.
pub fn has_brace_expansion(raw: &str) -> bool {
    let b = raw.as_bytes();
    let (mut single, mut double, mut i) = (false, false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' if !single => i += 1,
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'{' if !single && !double && (i == 0 || b[i - 1] != b'$') => {
                let rest = &raw[i + 1..];
                if let Some(end) = rest.find('}') {
                    let inner = &rest[..end];
                    if inner.contains(',') || inner.contains("..") {
                        return true;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Whether a dynamic word begins with its run-time part (`$X…`, `"$(…)…"`, `` `…` ``), so its
/// value could start with anything, a dash included. `$HOME/…` is a path (expanded as `~`).
pub fn starts_dynamic(raw: &str, text: &str) -> bool {
    let r = raw.trim_start_matches('"');
    if r.starts_with("$HOME") || r.starts_with("${HOME}") {
        return false;
    }
    r.starts_with('$') || r.starts_with('`') || text.is_empty()
}

pub fn expand(raw: &str) -> Expanded {
    let mut out = Expanded::default();
    // Most words are plain text (`ls`, `-la`, `/var/log`): nothing to expand, so skip the word
    // parser (which also takes a global cache lock and copies its result).
    if !raw.contains(['$', '`', '\'', '"', '\\', '~']) {
        out.text = raw.to_owned();
        return out;
    }
    match word::parse(raw, &ParserOptions::default()) {
        Ok(pieces) => append(&pieces, raw, &mut out),
        Err(_) => {
            // The word parser refused something the program parser accepted: keep the raw text,
            // but never trust it to be literal.
            out.text = raw.to_owned();
            out.dynamic = true;
        }
    }
    out
}

fn append(pieces: &[WordPieceWithSource], raw: &str, out: &mut Expanded) {
    for p in pieces {
        match &p.piece {
            WordPiece::Text(t) | WordPiece::SingleQuotedText(t) => out.text.push_str(t),
            WordPiece::EscapeSequence(s) => out.text.push_str(s.strip_prefix('\\').unwrap_or(s)),
            WordPiece::AnsiCQuotedText(s) => out.text.push_str(&decode_ansi_c(s)),
            WordPiece::DoubleQuotedSequence(inner)
            | WordPiece::GettextDoubleQuotedSequence(inner) => append(inner, raw, out),
            WordPiece::TildeExpansion(_) => out.text.push('~'),
            WordPiece::ParameterExpansion(_) => {
                let src = raw.get(p.start_index..p.end_index).unwrap_or_default();
                // `$HOME/.ssh/…` must still be recognised as a path under the home directory.
                if matches!(src, "$HOME" | "${HOME}") {
                    out.text.push('~');
                }
                // `${x@P}` expands x as a prompt: any `$(…)` in its value runs.
                if src.contains("@P}") || src.contains("@P ") {
                    out.substitutions.push(":".into());
                    out.prompt_expansion = true;
                }
                // `rm${IFS}-rf${IFS}/x`: IFS splits words where it stands; rules must see the
                // words it would make, not one run-together word.
                if matches!(src, "$IFS" | "${IFS}") || src.starts_with("${IFS:") {
                    out.text.push(' ');
                }
                out.dynamic = true;
                // `${x:-$(rm -rf /)}` and `${a[$(…)]}` run their substitutions too.
                harvest(
                    src.strip_prefix("${").and_then(|s| s.strip_suffix('}')),
                    out,
                );
            }
            WordPiece::ArithmeticExpression(e) => {
                out.dynamic = true;
                // `$(( $(rm -rf /) + 1 ))` runs the substitution before doing the sum.
                harvest(Some(&e.value), out);
            }
            WordPiece::CommandSubstitution(src) | WordPiece::BackquotedCommandSubstitution(src) => {
                out.dynamic = true;
                out.substitutions.push(src.clone());
            }
        }
    }
}

/// Collect the command substitutions hidden inside an expansion's text.
fn harvest(inner: Option<&str>, out: &mut Expanded) {
    if let Some(inner) = inner
        && (inner.contains("$(") || inner.contains('`'))
    {
        scan_substitutions(inner, &mut out.substitutions);
    }
}

/// Find `$(…)` and backtick substitutions in text that is not a shell word (arithmetic,
/// parameter defaults, array subscripts), by bracket matching. Arithmetic `$((…))` inside is
/// searched in turn. Unbalanced text yields what was found so far: the caller already treats
/// the whole expansion as dynamic.
fn scan_substitutions(text: &str, out: &mut Vec<String>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && b.get(i + 1) == Some(&b'(') {
            let arithmetic = b.get(i + 2) == Some(&b'(');
            let start = i + if arithmetic { 3 } else { 2 };
            let mut depth = if arithmetic { 2 } else { 1 };
            let mut j = start;
            while j < b.len() && depth > 0 {
                match b[j] {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            let end = if arithmetic {
                j.saturating_sub(2)
            } else {
                j.saturating_sub(1)
            };
            let inner = text.get(start..end.max(start)).unwrap_or_default();
            if arithmetic {
                scan_substitutions(inner, out);
            } else {
                out.push(inner.to_owned());
            }
            i = j;
        } else if b[i] == b'`' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j] != b'`' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push(
                text.get(start..j.min(b.len()))
                    .unwrap_or_default()
                    .to_owned(),
            );
            i = j + 1;
        } else {
            i += 1;
        }
    }
}

/// Command substitutions inside arithmetic text (`(( x = $(cmd) ))`).
pub fn arithmetic_substitutions(text: &str) -> Vec<String> {
    let mut out = Expanded::default();
    harvest(Some(text), &mut out);
    out.substitutions
}

/// Evaluate the body of `$'…'` the way bash does.
pub fn decode_ansi_c(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut bytes: Vec<u8> = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let flush = |bytes: &mut Vec<u8>, out: &mut String| {
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(bytes));
            bytes.clear();
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 >= chars.len() {
            flush(&mut bytes, &mut out);
            out.push(c);
            i += 1;
            continue;
        }
        let e = chars[i + 1];
        i += 2;
        let simple = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            '?' => Some('?'),
            _ => None,
        };
        if let Some(ch) = simple {
            flush(&mut bytes, &mut out);
            out.push(ch);
            continue;
        }
        let take = |i: &mut usize, max: usize, radix: u32| -> Option<u32> {
            let start = *i;
            while *i < chars.len() && *i - start < max && chars[*i].is_digit(radix) {
                *i += 1;
            }
            (start != *i)
                .then(|| chars[start..*i].iter().collect::<String>())
                .and_then(|d| u32::from_str_radix(&d, radix).ok())
        };
        match e {
            'x' => match take(&mut i, 2, 16) {
                Some(v) => bytes.push(v as u8),
                None => {
                    flush(&mut bytes, &mut out);
                    out.push_str("\\x");
                }
            },
            'u' | 'U' => {
                flush(&mut bytes, &mut out);
                let max = if e == 'u' { 4 } else { 8 };
                match take(&mut i, max, 16).and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '0'..='7' => {
                i -= 1;
                if let Some(v) = take(&mut i, 3, 8) {
                    bytes.push((v & 0xff) as u8);
                }
            }
            'c' if i < chars.len() => {
                flush(&mut bytes, &mut out);
                let ctl = (chars[i] as u32) & 0x1f;
                out.push(char::from_u32(ctl).unwrap_or('?'));
                i += 1;
            }
            other => {
                flush(&mut bytes, &mut out);
                out.push('\\');
                out.push(other);
            }
        }
    }
    flush(&mut bytes, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes_collapse_to_the_real_word() {
        assert_eq!(expand("r''m").text, "rm");
        assert_eq!(expand("\"rm\"").text, "rm");
        assert_eq!(expand("\\rm").text, "rm");
        assert_eq!(expand("$'\\x72\\x6d'").text, "rm");
        assert_eq!(expand("$'\\162\\155'").text, "rm");
    }

    #[test]
    fn substitutions_are_dynamic_and_reported() {
        let e = expand("$(echo rm)");
        assert!(e.dynamic);
        assert_eq!(e.substitutions, vec!["echo rm".to_string()]);
        assert!(expand("$X").dynamic);
        assert!(!expand("plain").dynamic);
        assert_eq!(expand("\"$HOME/.ssh/x\"").text, "~/.ssh/x");
        assert_eq!(
            expand("$(( $(rm -rf /) + 1 ))").substitutions,
            vec!["rm -rf /".to_string()]
        );
        assert_eq!(expand("${X:-`id`}").substitutions, vec!["id".to_string()]);
        assert_eq!(
            expand("\"${a[$(ls)]}\"").substitutions,
            vec!["ls".to_string()]
        );
    }
}
