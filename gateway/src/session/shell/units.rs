//! Cutting input into the units bash would run one at a time: a line, or as many lines as it
//! takes to close an `if`, a loop, a function body, a quote or a heredoc. Each unit is judged
//! as a whole, so a reviewer sees the whole `if` block, and nothing of it runs before.
//!
//! Lines come from the terminal's line editor (gated shell) or straight from the channel's
//! bytes (a script on stdin without a terminal).

use std::collections::VecDeque;

use airlock_classifier::{Completeness, completeness};

use crate::deny::Deny;

/// Longest unit kept while it is still open; past it, the unit is refused.
const MAX_UNIT_BYTES: usize = 256 * 1024;

/// One command (possibly many lines) to judge, or input refused as it stands.
pub type Unit = Result<String, Deny>;

#[derive(Default)]
pub struct Units {
    /// Lines of a unit not closed yet.
    open: String,
    /// Bytes after the last newline (script input).
    partial: Vec<u8>,
    /// The current line overflowed and was refused: drop the rest of it, up to its newline
    /// (its tail must not become a unit of its own).
    discarding: bool,
    ready: VecDeque<Unit>,
}

impl Units {
    /// Whether a unit is open (the terminal shows the continuation prompt).
    pub fn continuing(&self) -> bool {
        !self.open.is_empty()
    }

    /// One whole line (without its newline).
    pub fn push_line(&mut self, line: &str) {
        self.open.push_str(line);
        self.open.push('\n');
        if self.open.len() > MAX_UNIT_BYTES {
            self.open.clear();
            self.ready.push_back(Err(Deny::TooLong {
                len: MAX_UNIT_BYTES + 1,
                limit: MAX_UNIT_BYTES,
            }));
            return;
        }
        match completeness(&self.open) {
            Completeness::Incomplete => {}
            // A syntax error is bash's to report: it runs (and fails) as the unit it is.
            Completeness::Complete | Completeness::Invalid => self.close(),
        }
    }

    /// Bytes of a script; whole lines become units as they complete.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=nl).collect();
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            match String::from_utf8(raw[..raw.len() - 1].to_vec()) {
                Ok(line) => self.push_line(line.trim_end_matches('\r')),
                Err(_) => {
                    self.open.clear();
                    self.ready.push_back(Err(Deny::NotUtf8));
                }
            }
        }
        if self.partial.len() > MAX_UNIT_BYTES {
            self.partial.clear();
            if !self.discarding {
                // The whole unit it belonged to goes with it.
                self.open.clear();
                self.discarding = true;
                self.ready.push_back(Err(Deny::TooLong {
                    len: MAX_UNIT_BYTES + 1,
                    limit: MAX_UNIT_BYTES,
                }));
            }
        }
    }

    /// The input ended: what is left (an unterminated last line, an unclosed block) is one
    /// last unit, as bash would try it.
    pub fn finish(&mut self) {
        if std::mem::take(&mut self.discarding) {
            self.partial.clear();
        }
        if !self.partial.is_empty() {
            let raw = std::mem::take(&mut self.partial);
            match String::from_utf8(raw) {
                Ok(line) => self.push_line(&line),
                Err(_) => self.ready.push_back(Err(Deny::NotUtf8)),
            }
        }
        if !self.open.is_empty() {
            self.close();
        }
    }

    /// Drop the open unit (ctrl-c at a continuation prompt).
    pub fn discard_open(&mut self) {
        self.open.clear();
    }

    pub fn pop(&mut self) -> Option<Unit> {
        self.ready.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    fn close(&mut self) {
        let unit = std::mem::take(&mut self.open);
        let unit = unit.trim_end_matches('\n');
        // Blank lines and comments alone run nothing: no unit.
        if unit.lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        }) {
            self.ready.push_back(Ok(unit.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(u: &mut Units) -> Vec<String> {
        std::iter::from_fn(|| u.pop()).map(|x| x.unwrap()).collect()
    }

    #[test]
    fn a_script_becomes_the_units_bash_runs() {
        let mut u = Units::default();
        u.feed(b"cd /tmp\n# note\n\nif true; then\n  echo y\nfi\ncat <<EOF\nhi\nEOF\necho la");
        assert_eq!(
            all(&mut u),
            [
                "cd /tmp",
                "if true; then\n  echo y\nfi",
                "cat <<EOF\nhi\nEOF"
            ]
        );
        u.finish();
        assert_eq!(all(&mut u), ["echo la"]);
    }

    #[test]
    fn an_overlong_line_is_refused_whole_and_its_tail_never_runs() {
        let mut u = Units::default();
        u.feed(b"echo x #");
        u.feed(&vec![b' '; MAX_UNIT_BYTES + 10]);
        u.feed(b"echo TAIL-RAN\necho next\n");
        assert!(matches!(u.pop(), Some(Err(Deny::TooLong { .. }))));
        assert_eq!(u.pop(), Some(Ok("echo next".into())));
        assert_eq!(u.pop(), None);
    }

    #[test]
    fn split_bytes_and_bad_input() {
        let mut u = Units::default();
        u.feed(b"ec");
        assert!(u.is_empty());
        u.feed(b"ho a\n\xff\nfor i in 1; do\n");
        assert_eq!(u.pop(), Some(Ok("echo a".into())));
        assert_eq!(u.pop(), Some(Err(Deny::NotUtf8)));
        assert!(u.continuing());
        u.finish();
        assert_eq!(u.pop(), Some(Ok("for i in 1; do".into())));
    }
}
