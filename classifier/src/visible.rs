//! What a reviewer must see of a text an agent sent: the display form every view uses.
//!
//! The classifier judges the bytes that will run; a reviewer judges what a screen shows. Those
//! differ when the text holds characters a screen hides or reorders (bidi controls, zero-width
//! and other invisible code points, terminal controls), letters that look like other letters
//! (a Cyrillic `с` inside `cat`), or runs of spaces that push the rest of a line out of view.
//! [`Shown::of`] turns a text into parts: verbatim text, and *marks* — visible stand-ins such as
//! `⟨U+202E⟩` or `⟨300 spaces⟩` — each tied to the original's code points, plus flags that say
//! why the text deserves a second look. The web page, `airlock review`, webhooks and History
//! all render this one value, so no view can show a command that differs from what runs.
//!
//! Pure and total: any text gives a display form, and joining the parts' original ranges
//! gives back every code point of the input exactly once.

use serde::{Deserialize, Serialize};

use crate::hidden::{Script, describe, misleading, script, word_break};

/// Runs of this many spaces or more are shown as a count.
pub const SPACE_RUN: usize = 5;
/// At the start of a line, indentation up to this many spaces is shown as it is.
pub const INDENT_KEPT: usize = 16;

/// A text as reviewers must see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    /// The original's length in code points.
    pub chars: usize,
    /// Why this text deserves a second look (empty for plain text).
    pub flags: Vec<Flag>,
    pub parts: Vec<Part>,
}

/// One piece of the display form; `at` is the range of the original's code points it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Part {
    /// Verbatim: its characters are the original's `at.0..at.1`, one for one.
    Text { text: String, at: (usize, usize) },
    /// A visible stand-in (`⟨U+202E⟩`, `⟨ESC⟩`, `⟨300 spaces⟩`) and what it stands for.
    Mark {
        mark: String,
        why: String,
        at: (usize, usize),
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagCode {
    /// Bidi controls, zero-width and other invisible or look-alike code points.
    HiddenCharacter,
    /// Terminal control characters (ESC, CR, backspace, …).
    ControlCharacter,
    /// A word mixing Latin with other letters.
    MixedScript,
    /// A long run of spaces or of line breaks.
    WhitespaceRun,
    /// A line feed in a text meant to be one line (a stated reason).
    LineBreak,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub code: FlagCode,
    pub text: String,
}

/// `2714` → `2,714`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// The short name a control character is shown by.
fn control_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\t' => "TAB",
        '\u{1B}' => "ESC",
        '\r' => "CR",
        '\u{08}' => "BS",
        '\u{7F}' => "DEL",
        '\0' => "NUL",
        _ => return None,
    })
}

/// Positions (code point indexes) of the non-Latin letters of words that mix them with Latin.
fn foreign_letters(chars: &[char]) -> Vec<bool> {
    let mut out = vec![false; chars.len()];
    let mut start = 0;
    while start < chars.len() {
        let end = chars[start..]
            .iter()
            .position(|c| word_break(*c))
            .map_or(chars.len(), |p| start + p);
        let word = &chars[start..end];
        let scripts = word.iter().filter_map(|c| script(*c));
        let (mut latin, mut other) = (false, false);
        for s in scripts {
            if s == Script::Latin {
                latin = true;
            } else {
                other = true;
            }
        }
        if latin && other {
            for (i, c) in word.iter().enumerate() {
                if script(*c).is_some_and(|s| s != Script::Latin) {
                    out[start + i] = true;
                }
            }
        }
        start = end + 1;
    }
    out
}

/// Append `chars` (starting at original index `at`) to the verbatim run being built.
fn plain_text(
    plain: &mut String,
    plain_from: &mut usize,
    at: usize,
    chars: impl Iterator<Item = char>,
) {
    if plain.is_empty() {
        *plain_from = at;
    }
    plain.extend(chars);
}

/// Collects flags, each kind once, with what it found.
#[derive(Default)]
struct Flags {
    hidden: Vec<String>,
    control: Vec<String>,
    mixed: Vec<String>,
    longest_run: usize,
    longest_line_run: usize,
    /// Line feeds in a one-line text.
    line_breaks: usize,
}

/// At most this many examples per flag sentence.
const EXAMPLES: usize = 4;

impl Flags {
    fn note(list: &mut Vec<String>, what: String) {
        if !list.contains(&what) {
            list.push(what);
        }
    }

    fn sentence(kind: &str, list: &[String]) -> String {
        let shown: Vec<&str> = list.iter().take(EXAMPLES).map(String::as_str).collect();
        let more = list.len().saturating_sub(EXAMPLES);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{kind}: {}{tail}", shown.join("; "))
    }

    fn into_flags(self) -> Vec<Flag> {
        let mut out = Vec::new();
        if !self.hidden.is_empty() {
            out.push(Flag {
                code: FlagCode::HiddenCharacter,
                text: Self::sentence("hidden or look-alike characters", &self.hidden),
            });
        }
        if !self.control.is_empty() {
            out.push(Flag {
                code: FlagCode::ControlCharacter,
                text: Self::sentence("terminal control characters", &self.control),
            });
        }
        if !self.mixed.is_empty() {
            out.push(Flag {
                code: FlagCode::MixedScript,
                text: Self::sentence(
                    "words that mix Latin with other letters (look-alikes of other names)",
                    &self.mixed,
                ),
            });
        }
        if self.line_breaks > 0 {
            out.push(Flag {
                code: FlagCode::LineBreak,
                text: format!(
                    "{} line feed{} in a text meant to be one line",
                    thousands(self.line_breaks),
                    if self.line_breaks == 1 { "" } else { "s" }
                ),
            });
        }
        if self.longest_line_run > 0 {
            out.push(Flag {
                code: FlagCode::WhitespaceRun,
                text: format!(
                    "a run of {} line breaks (shown as a count)",
                    thousands(self.longest_line_run)
                ),
            });
        }
        if self.longest_run > 0 {
            out.push(Flag {
                code: FlagCode::WhitespaceRun,
                text: format!(
                    "a run of {} spaces (shown as a count)",
                    thousands(self.longest_run)
                ),
            });
        }
        out
    }
}

/// Runs of this many line feeds or more are shown as a count (they push text out of view).
pub const LINE_RUN: usize = 3;

impl Shown {
    /// The display form of `text` (a command: line feeds are line breaks).
    pub fn of(text: &str) -> Shown {
        Self::build(text, false)
    }

    /// The display form of a text meant to be one line (a stated reason): a line feed is a mark
    /// too, so it cannot start a line that imitates the rest of a card.
    pub fn of_line(text: &str) -> Shown {
        Self::build(text, true)
    }

    fn build(text: &str, one_line: bool) -> Shown {
        let chars: Vec<char> = text.chars().collect();
        let foreign = if text.is_ascii() {
            vec![false; chars.len()]
        } else {
            foreign_letters(&chars)
        };
        let mut parts = Vec::new();
        let mut flags = Flags::default();
        let mut plain = String::new();
        let mut plain_from = 0;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let mark = if c == '\n' {
                let n = chars[i..].iter().take_while(|c| **c == '\n').count();
                if one_line {
                    flags.line_breaks += n;
                    Some((
                        n,
                        Self::counted("LF", n),
                        "line feed in a one-line text".to_owned(),
                    ))
                } else if n >= LINE_RUN {
                    flags.longest_line_run = flags.longest_line_run.max(n);
                    Some((
                        n,
                        format!("⟨{} line breaks⟩", thousands(n)),
                        format!("{} line feeds in a row", thousands(n)),
                    ))
                } else {
                    plain_text(&mut plain, &mut plain_from, i, "\n".repeat(n).chars());
                    i += n;
                    continue;
                }
            } else if c == ' ' {
                let n = chars[i..].iter().take_while(|c| **c == ' ').count();
                let line_start = i == 0 || chars[i - 1] == '\n';
                if n >= SPACE_RUN && !(line_start && n <= INDENT_KEPT) {
                    flags.longest_run = flags.longest_run.max(n);
                    let count = thousands(n);
                    Some((
                        n,
                        format!("⟨{count} spaces⟩"),
                        format!("{count} spaces in a row"),
                    ))
                } else {
                    // Shown as they are, the whole run at once (its tail is not a new run).
                    plain_text(&mut plain, &mut plain_from, i, std::iter::repeat_n(' ', n));
                    i += n;
                    continue;
                }
            } else {
                Self::odd(&chars, &foreign, i, &mut flags)
            };
            match mark {
                None => {
                    if plain.is_empty() {
                        plain_from = i;
                    }
                    plain.push(c);
                    i += 1;
                }
                Some((n, mark, why)) => {
                    if !plain.is_empty() {
                        parts.push(Part::Text {
                            text: std::mem::take(&mut plain),
                            at: (plain_from, i),
                        });
                    }
                    parts.push(Part::Mark {
                        mark,
                        why,
                        at: (i, i + n),
                    });
                    i += n;
                }
            }
        }
        if !plain.is_empty() {
            parts.push(Part::Text {
                text: plain,
                at: (plain_from, chars.len()),
            });
        }
        Shown {
            chars: chars.len(),
            flags: flags.into_flags(),
            parts,
        }
    }

    /// A mark for the character at `i` if it must not be shown as itself: how many
    /// identical characters it covers, the mark and why.
    fn odd(
        chars: &[char],
        foreign: &[bool],
        i: usize,
        flags: &mut Flags,
    ) -> Option<(usize, String, String)> {
        let c = chars[i];
        let code = format!("U+{:04X}", c as u32);
        let (name, why) = if let Some(name) = control_name(c) {
            if c != '\t' {
                Flags::note(&mut flags.control, name.to_owned());
            }
            (
                name.to_owned(),
                format!("{code} {name} (control character)"),
            )
        } else if let Some(what) = describe(c) {
            let list = if c.is_control() {
                &mut flags.control
            } else {
                &mut flags.hidden
            };
            Flags::note(list, format!("{code} {what}"));
            (code.clone(), format!("{code} {what}"))
        } else if let Some(what) = misleading(c) {
            Flags::note(&mut flags.hidden, format!("{code} {what}"));
            (code.clone(), format!("{code} {what}"))
        } else if foreign[i] {
            let word: String = {
                let start = chars[..i]
                    .iter()
                    .rposition(|c| word_break(*c))
                    .map_or(0, |p| p + 1);
                let end = chars[i..]
                    .iter()
                    .position(|c| word_break(*c))
                    .map_or(chars.len(), |p| i + p);
                chars[start..end].iter().take(40).collect()
            };
            let letters = match script(c) {
                Some(Script::Cyrillic) => "Cyrillic",
                Some(Script::Greek) => "Greek",
                _ => "non-Latin",
            };
            Flags::note(
                &mut flags.mixed,
                format!("{:?} ({letters} {code})", Shown::of_plain(&word)),
            );
            (
                code.clone(),
                format!("{code} {letters} letter {c:?} inside a Latin word: a look-alike"),
            )
        } else {
            return None;
        };
        let n = chars[i..]
            .iter()
            .zip(&foreign[i..])
            .take_while(|(d, f)| **d == c && **f == foreign[i])
            .count();
        Some((n, Self::counted(&name, n), why))
    }

    /// `⟨NAME⟩`, or `⟨NAME ×n⟩` for a run of them.
    fn counted(name: &str, n: usize) -> String {
        if n > 1 {
            format!("⟨{name} ×{}⟩", thousands(n))
        } else {
            format!("⟨{name}⟩")
        }
    }

    /// A word for a flag sentence: its odd characters as code points, never raw.
    fn of_plain(word: &str) -> String {
        word.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c.to_string()
                } else {
                    format!("⟨U+{:04X}⟩", c as u32)
                }
            })
            .collect()
    }

    /// Every part as one line: marks as they are, line feeds as `⟨LF⟩`.
    pub fn one_line(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text { text, .. } => {
                    for c in text.chars() {
                        if c == '\n' {
                            out.push_str("⟨LF⟩");
                        } else {
                            out.push(c);
                        }
                    }
                }
                Part::Mark { mark, .. } => out.push_str(mark),
            }
        }
        out
    }

    /// [`Shown::one_line`] in at most about `max` characters: the line, and how many of the
    /// original's characters it leaves out (0 when it is whole). A mark is never cut.
    pub fn one_line_within(&self, max: usize) -> (String, usize) {
        let mut out = String::new();
        let mut used = 0;
        for p in &self.parts {
            match p {
                Part::Text { text, at } => {
                    for (k, c) in text.chars().enumerate() {
                        let piece = if c == '\n' { 4 } else { 1 };
                        if used + piece > max {
                            return (out, self.chars - (at.0 + k));
                        }
                        used += piece;
                        if c == '\n' {
                            out.push_str("⟨LF⟩");
                        } else {
                            out.push(c);
                        }
                    }
                }
                Part::Mark { mark, at, .. } => {
                    let len = mark.chars().count();
                    if used + len > max {
                        return (out, self.chars - at.0);
                    }
                    used += len;
                    out.push_str(mark);
                }
            }
        }
        (out, 0)
    }

    /// Nothing was marked or flagged: the text shows as itself.
    pub fn is_plain(&self) -> bool {
        self.flags.is_empty() && self.parts.iter().all(|p| matches!(p, Part::Text { .. }))
    }
}

#[cfg(test)]
#[path = "visible_tests.rs"]
mod tests;
