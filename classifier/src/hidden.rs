//! Characters that make the command a reviewer reads differ from the command that runs.
//!
//! Bidi controls reorder what is displayed, zero-width and other invisible characters hide
//! inside words, control bytes move the cursor or erase text on a terminal, unusual spaces look
//! like word breaks the shell does not make, and a word that mixes Latin with Cyrillic or Greek
//! letters (`сat` with a Cyrillic `с`) looks like a program it is not. None of that is ever
//! low: each occurrence is a high reason naming the code point and its byte offset, so the
//! reviewer UIs can point at it.

use crate::{Reason, Tier};

/// At most this many reasons; a command full of them says enough after that.
const MAX_REPORTED: usize = 8;

/// Why `c` is hidden or misleading, if it is.
pub(crate) fn describe(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING (bidi control)",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING (bidi control)",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING (bidi control)",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE (bidi control)",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE (bidi control)",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE (bidi control)",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE (bidi control)",
        '\u{2068}' => "FIRST STRONG ISOLATE (bidi control)",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE (bidi control)",
        '\u{200E}' => "LEFT-TO-RIGHT MARK (bidi control)",
        '\u{200F}' => "RIGHT-TO-LEFT MARK (bidi control)",
        '\u{061C}' => "ARABIC LETTER MARK (bidi control)",
        '\u{200B}' => "ZERO WIDTH SPACE (invisible)",
        '\u{200C}' => "ZERO WIDTH NON-JOINER (invisible)",
        '\u{200D}' => "ZERO WIDTH JOINER (invisible)",
        '\u{2060}' => "WORD JOINER (invisible)",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE / BOM (invisible)",
        '\u{180E}' => "MONGOLIAN VOWEL SEPARATOR (invisible)",
        '\u{00AD}' => "SOFT HYPHEN (invisible)",
        '\u{034F}' => "COMBINING GRAPHEME JOINER (invisible)",
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' => "HANGUL FILLER (renders blank)",
        '\u{2800}' => "BRAILLE PATTERN BLANK (renders blank)",
        '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => {
            "non-ASCII space (looks like a word break the shell does not make)"
        }
        '\u{2061}'..='\u{2064}' | '\u{206A}'..='\u{206F}' | '\u{FFF9}'..='\u{FFFB}' => {
            "invisible format character"
        }
        '\u{E0000}'..='\u{E007F}' => "TAG character (invisible)",
        '\u{FF01}'..='\u{FF5E}' => "FULLWIDTH form (looks like an ASCII character)",
        '\u{2028}' => "LINE SEPARATOR (invisible line break)",
        '\u{2029}' => "PARAGRAPH SEPARATOR (invisible line break)",
        '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' => {
            "VARIATION SELECTOR (invisible; can smuggle data)"
        }
        '\u{1D173}'..='\u{1D17A}' => "MUSICAL SYMBOL format character (invisible)",
        '\u{17B4}' | '\u{17B5}' => "KHMER inherent vowel (invisible)",
        '\u{1BCA0}'..='\u{1BCA3}' => "SHORTHAND FORMAT control (invisible)",
        '\u{13430}'..='\u{1343F}' => "EGYPTIAN HIEROGLYPH format control (invisible)",
        '\u{16FE4}' => "KHITAN FILLER (invisible)",
        '\u{1D159}' => "MUSICAL SYMBOL NULL NOTEHEAD (renders blank)",
        '\u{FFFC}' | '\u{FFFD}' => "replacement/object character (hides what was there)",
        '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{08E2}' | '\u{110BD}' => {
            "invisible format character"
        }
        '\u{1B}' => "ESC (terminal control: can redraw or hide text)",
        '\u{08}' => "BACKSPACE (terminal control: can erase displayed text)",
        '\r' => "CARRIAGE RETURN (terminal control: can overwrite displayed text)",
        '\u{7F}' => "DELETE (control character)",
        c if c.is_control() && c != '\n' && c != '\t' => "control character",
        c if right_to_left(c) => "right-to-left letter (screens may reorder the text around it)",
        c if !c.is_ascii() && unusual(c) => {
            "invisible, blank or unassigned character (Unicode format, space, private-use or unassigned)"
        }
        _ => return None,
    })
}

/// Letters of right-to-left scripts (Hebrew, Arabic, Syriac, Thaana, N'Ko, …): a screen that
/// applies the bidi algorithm reorders the text around them, so `a #;> b` can display as if the
/// `;` were inside a comment.
fn right_to_left(c: char) -> bool {
    matches!(c,
        '\u{0590}'..='\u{08FF}'
            | '\u{FB1D}'..='\u{FDFF}'
            | '\u{FE70}'..='\u{FEFF}'
            | '\u{10800}'..='\u{10FFF}'
            | '\u{1E800}'..='\u{1EFFF}')
}

/// Why a non-ASCII character that is not hidden may still mislead a reader of shell text:
/// punctuation and symbols that look like shell syntax (`;` U+037E, `﹟`, `’`, `−`, emoji), combining
/// marks that change the character before them, and letters that imitate Latin ones (Cherokee,
/// mathematical alphanumerics, letterlike and enclosed forms). Not a classifier concern (the
/// shell treats them as plain word characters); the display marks them.
pub(crate) fn misleading(c: char) -> Option<&'static str> {
    static CLASSES: std::sync::LazyLock<Option<(regex::Regex, regex::Regex)>> =
        std::sync::LazyLock::new(|| {
            Some((
                regex::Regex::new(r"^[\p{P}\p{S}]$").ok()?,
                regex::Regex::new(r"^\p{M}$").ok()?,
            ))
        });
    if c.is_ascii() {
        return None;
    }
    if matches!(c,
        '\u{13A0}'..='\u{13FF}'
            | '\u{AB70}'..='\u{ABBF}'
            | '\u{1D400}'..='\u{1D7FF}'
            | '\u{2100}'..='\u{214F}'
            | '\u{2460}'..='\u{24FF}'
            | '\u{1F100}'..='\u{1F1FF}')
    {
        return Some("letter or number that imitates a Latin one");
    }
    if matches!(c, '\u{01C0}'..='\u{01C3}' | '\u{02B0}'..='\u{02FF}' | '\u{A789}'..='\u{A78A}') {
        return Some("letter that looks like punctuation (| ! ' : …)");
    }
    let mut buf = [0; 4];
    let text = c.encode_utf8(&mut buf);
    match CLASSES.as_ref() {
        Some((symbols, _)) if symbols.is_match(text) => {
            Some("non-ASCII punctuation or symbol (can look like shell syntax)")
        }
        Some((_, marks)) if marks.is_match(text) => {
            Some("combining mark (changes how the character before it looks)")
        }
        Some(_) => None,
        // The patterns are constants; were they ever refused, every such character is suspect.
        None => Some("non-ASCII character"),
    }
}

/// Every other code point a screen may not show as what it is: format controls (Cf), spaces
/// other than the ASCII one (Zs), line and paragraph separators, private use and unassigned
/// code points. The table above names the common ones; this catches the rest.
fn unusual(c: char) -> bool {
    static UNUSUAL: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[\p{Cf}\p{Zs}\p{Zl}\p{Zp}\p{Co}\p{Cn}]$").ok()
    });
    let mut buf = [0; 4];
    match UNUSUAL.as_ref() {
        Some(re) => re.is_match(c.encode_utf8(&mut buf)),
        // The pattern is a constant; were it ever refused, every non-ASCII character is suspect.
        None => true,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Latin,
    Cyrillic,
    Greek,
    Other,
}

pub(crate) fn script(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    Some(match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' => Script::Latin,
        '\u{0400}'..='\u{052F}' => Script::Cyrillic,
        '\u{0370}'..='\u{03FF}' => Script::Greek,
        _ => Script::Other,
    })
}

/// Every hidden or misleading character in `text`, as high reasons.
pub fn scan(text: &str) -> Vec<Reason> {
    let mut out = Vec::new();
    if text.is_ascii() {
        // Fast path: only control bytes can hide in ASCII.
        if !text
            .bytes()
            .any(|b| b.is_ascii_control() && b != b'\n' && b != b'\t')
        {
            return out;
        }
    }
    for (at, c) in text.char_indices() {
        if let Some(what) = describe(c) {
            out.push(reason(
                "input.hidden-character",
                at,
                c,
                format!("U+{:04X} {what} at byte {at}", c as u32),
            ));
        }
    }
    // Mixed-script words: split where the shell would split words or commands.
    let mut start = 0;
    for piece in text.split(word_break) {
        let at = start;
        start += piece.len() + 1;
        let mut seen: Option<Script> = None;
        for (off, c) in piece.char_indices() {
            let Some(s) = script(c) else { continue };
            match seen {
                None => seen = Some(s),
                Some(prev) if prev != s && (prev == Script::Latin || s == Script::Latin) => {
                    let foreign = if s == Script::Latin { prev } else { s };
                    let (pos, ch) = piece
                        .char_indices()
                        .find(|(_, c)| script(*c) == Some(foreign))
                        .unwrap_or((off, c));
                    let name = match foreign {
                        Script::Cyrillic => "Cyrillic",
                        Script::Greek => "Greek",
                        _ => "non-Latin",
                    };
                    out.push(reason(
                        "input.mixed-script",
                        at + pos,
                        ch,
                        format!(
                            "U+{:04X} ({name} letter {ch:?}) at byte {} inside the Latin word {piece:?}: \
                             a look-alike of another name",
                            ch as u32,
                            at + pos
                        ),
                    ));
                    break;
                }
                Some(_) => {}
            }
        }
    }
    if out.len() > MAX_REPORTED {
        let more = out.len() - MAX_REPORTED;
        out.truncate(MAX_REPORTED);
        out.push(Reason {
            rule: "input.hidden-character".into(),
            span: None,
            text: format!("… and {more} more hidden or look-alike characters"),
            tier: Tier::High,
        });
    }
    out
}

/// Where a word ends for the mixed-script check: where the shell would split words or
/// commands.
pub(crate) fn word_break(c: char) -> bool {
    c.is_ascii_whitespace() || ";|&()<>'\"$`=/,.:".contains(c)
}

fn reason(rule: &str, at: usize, c: char, text: String) -> Reason {
    Reason {
        rule: rule.into(),
        span: Some((at, at + c.len_utf8())),
        text,
        tier: Tier::High,
    }
}
