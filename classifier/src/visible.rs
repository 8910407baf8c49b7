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
mod tests {
    use super::*;

    fn line(s: &str) -> String {
        Shown::of(s).one_line()
    }

    /// The parts cover every original code point once, in order.
    fn covers(s: &str) {
        let shown = Shown::of(s);
        let mut next = 0;
        for p in &shown.parts {
            let (at, text) = match p {
                Part::Text { text, at } => (*at, Some(text)),
                Part::Mark { at, .. } => (*at, None),
            };
            assert_eq!(at.0, next, "{s:?}: {shown:?}");
            assert!(at.1 > at.0);
            if let Some(t) = text {
                let orig: String = s.chars().skip(at.0).take(at.1 - at.0).collect();
                assert_eq!(&orig, t);
            }
            next = at.1;
        }
        assert_eq!(next, shown.chars);
        assert_eq!(shown.chars, s.chars().count());
    }

    #[test]
    fn plain_commands_show_as_themselves() {
        for s in [
            "ls -la /tmp",
            "echo 'a  b'",
            "naïve café",
            "for i in 1 2; do\n    echo $i\ndone",
        ] {
            let shown = Shown::of(s);
            assert!(shown.is_plain(), "{s:?}: {shown:?}");
            assert_eq!(shown.one_line(), s.replace('\n', "⟨LF⟩"));
            covers(s);
        }
    }

    #[test]
    fn space_runs_are_counted_but_indentation_is_kept() {
        let s = format!("ls /tmp/x{}; rm -rf /tmp/x/v", " ".repeat(300));
        assert_eq!(line(&s), "ls /tmp/x⟨300 spaces⟩; rm -rf /tmp/x/v");
        let shown = Shown::of(&s);
        assert_eq!(shown.flags[0].code, FlagCode::WhitespaceRun);
        assert!(shown.flags[0].text.contains("300 spaces"));
        covers(&s);
        assert_eq!(
            line("if x; then\n        y\nfi"),
            "if x; then⟨LF⟩        y⟨LF⟩fi"
        );
        let deep = format!("x\n{}y", " ".repeat(40));
        assert_eq!(line(&deep), "x⟨LF⟩⟨40 spaces⟩y");
        assert_eq!(line(&format!("a{}b", " ".repeat(2000))), "a⟨2,000 spaces⟩b");
    }

    #[test]
    fn bidi_zero_width_and_controls_are_marked_and_flagged() {
        let s = "echo hi \u{202E}; rm -rf x";
        assert_eq!(line(s), "echo hi ⟨U+202E⟩; rm -rf x");
        let shown = Shown::of(s);
        assert_eq!(shown.flags.len(), 1);
        assert_eq!(shown.flags[0].code, FlagCode::HiddenCharacter);
        assert!(shown.flags[0].text.contains("RIGHT-TO-LEFT OVERRIDE"));
        assert_eq!(line("ec\u{200B}ho"), "ec⟨U+200B⟩ho");
        assert_eq!(line("a\u{200B}\u{200B}\u{200B}b"), "a⟨U+200B ×3⟩b");
        assert_eq!(
            line("echo ok\rrm -rf /\x1b[2K\x08\t"),
            "echo ok⟨CR⟩rm -rf /⟨ESC⟩[2K⟨BS⟩⟨TAB⟩"
        );
        let flags = Shown::of("a\x1bb").flags;
        assert_eq!(flags[0].code, FlagCode::ControlCharacter);
        assert_eq!(line("\u{7}"), "⟨U+0007⟩");
        for s in [
            "echo hi \u{202E}; rm",
            "a\u{200B}\u{200B}b",
            "x\r\x1b",
            "\u{FEFF}\u{E0041}",
        ] {
            covers(s);
        }
    }

    #[test]
    fn look_alike_letters_in_latin_words_are_marked() {
        assert_eq!(line("\u{0441}at /etc/hostname"), "⟨U+0441⟩at /etc/hostname");
        let shown = Shown::of("\u{0441}at x");
        assert_eq!(shown.flags[0].code, FlagCode::MixedScript);
        assert!(shown.flags[0].text.contains("Cyrillic U+0441"), "{shown:?}");
        // A word entirely in another script is not a look-alike of a Latin one.
        assert!(Shown::of("echo привет").is_plain());
        assert_eq!(line("ｃat"), "⟨U+FF43⟩at");
        // Format and space characters the named table does not list are marked too.
        for c in ['\u{1680}', '\u{0890}', '\u{110CD}', '\u{E000}', '\u{0378}'] {
            let s = format!("a{c}b");
            assert_eq!(line(&s), format!("a⟨U+{:04X}⟩b", c as u32), "{c:?}");
            assert_eq!(Shown::of(&s).flags[0].code, FlagCode::HiddenCharacter);
        }
        covers("\u{0441}\u{0430}t");
    }

    #[test]
    fn right_to_left_letters_and_shell_look_alikes_are_marked() {
        // A Hebrew letter makes a bidi-aware screen reorder `#;>` around it.
        assert_eq!(
            line("true \u{05D0}#;>\u{05D1} rm -rf v"),
            "true ⟨U+05D0⟩#;>⟨U+05D1⟩ rm -rf v"
        );
        for (c, name) in [
            ('\u{FE5F}', "﹟"),
            ('\u{266F}', "♯"),
            ('\u{2019}', "’"),
            ('\u{037E}', "Greek question mark"),
            ('\u{2212}', "minus"),
            ('\u{01C0}', "dental click"),
            ('\u{0336}', "combining long stroke"),
            ('\u{1FA75}', "emoji"),
            ('\u{1D42B}', "math bold r"),
            ('\u{13AA}', "Cherokee A"),
        ] {
            let s = format!("ls x {c} y");
            let shown = Shown::of(&s);
            assert_eq!(
                shown.one_line(),
                format!("ls x ⟨U+{:04X}⟩ y", c as u32),
                "{name}"
            );
            assert_eq!(shown.flags[0].code, FlagCode::HiddenCharacter, "{name}");
        }
        // Ordinary non-ASCII letters and CJK text are not look-alikes.
        assert!(Shown::of("echo naïve 日本語 привет").is_plain());
    }

    #[test]
    fn line_break_runs_are_counted_and_a_one_line_text_marks_every_line_feed() {
        assert_eq!(line("a\n\nb"), "a⟨LF⟩⟨LF⟩b");
        let s = format!("true{}rm -rf v", "\n".repeat(60));
        let shown = Shown::of(&s);
        assert_eq!(shown.one_line(), "true⟨60 line breaks⟩rm -rf v");
        assert!(
            shown
                .flags
                .iter()
                .any(|f| f.text.contains("60 line breaks"))
        );
        covers(&s);
        let reason = Shown::of_line("rotate logs\n[low] rm: harmless\napprovals 1/1");
        assert_eq!(
            reason.one_line(),
            "rotate logs⟨LF⟩[low] rm: harmless⟨LF⟩approvals 1/1"
        );
        assert!(
            reason
                .parts
                .iter()
                .all(|p| !matches!(p, Part::Text { text, .. } if text.contains('\n')))
        );
        assert_eq!(reason.flags[0].code, FlagCode::LineBreak);
    }

    #[test]
    fn one_line_within_says_what_it_leaves_out() {
        let s = format!("echo {}; rm -rf d", "a".repeat(2995));
        let (text, more) = Shown::of(&s).one_line_within(300);
        assert_eq!(text.chars().count(), 300);
        assert_eq!(more, s.chars().count() - 300);
        assert!(!text.contains("rm -rf"));
        let (whole, none) = Shown::of("ls").one_line_within(300);
        assert_eq!((whole.as_str(), none), ("ls", 0));
        // A mark is never cut in half.
        let s = format!("ab{}", "\u{202E}");
        let (text, more) = Shown::of(&s).one_line_within(5);
        assert_eq!((text.as_str(), more), ("ab", 1));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2714), "2,714");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn any_text_is_covered() {
        let mut seed = 0x2545_f491_u64;
        let alphabet: Vec<char> = "ab \n\t\r\x1b\u{202E}\u{200B}\u{0441}ｃ;é"
            .chars()
            .collect();
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let s: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            covers(&s);
        }
    }
}
