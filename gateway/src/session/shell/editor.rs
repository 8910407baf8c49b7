//! The line editor of the gated shell: the agent's keystrokes become whole lines here, and
//! only whole lines are ever judged.
//!
//! It is a pure state machine — bytes in, [`Event`]s out — so it is tested without a terminal.
//! Rendering is deliberately simple: every change redraws the line (`\r`, prompt, text, erase
//! to end, cursor back), which is correct on any VT100-like terminal for lines narrower than
//! the screen.

/// What the editor asks the session to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes to show the agent.
    Output(Vec<u8>),
    /// A finished line (Enter, or each line of a pasted block, in order).
    Submit(String),
    /// ctrl-c on the prompt: the line was cleared.
    Interrupt,
    /// ctrl-d on an empty line: end the session.
    Eof,
}

/// Bracketed paste on/off, sent while the prompt is shown and before a command runs.
pub const PASTE_ON: &[u8] = b"\x1b[?2004h";
pub const PASTE_OFF: &[u8] = b"\x1b[?2004l";
/// Longest line the editor keeps; longer input is cut (the gate refuses long shell lines).
pub const MAX_LINE: usize = 16 * 1024;
const MAX_HISTORY: usize = 500;
const MAX_PENDING_ESCAPE: usize = 16;

#[derive(Debug, Default)]
pub struct Editor {
    prompt: String,
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Index into `history` while browsing with up/down; `None` on the line being edited.
    browsing: Option<usize>,
    /// The line being edited before browsing started.
    stash: Vec<char>,
    /// An escape sequence being read.
    escape: Vec<u8>,
    /// Bytes of an incomplete UTF-8 character.
    utf8: Vec<u8>,
    pasting: bool,
    /// The previous byte was `\r`, so a following `\n` is the same newline.
    after_cr: bool,
}

impl Editor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Show a fresh prompt (after a command finished or was refused).
    pub fn prompt(&mut self, prompt: &str) -> Vec<u8> {
        self.prompt = prompt.to_owned();
        self.line.clear();
        self.cursor = 0;
        self.browsing = None;
        let mut out = PASTE_ON.to_vec();
        out.extend_from_slice(prompt.as_bytes());
        out
    }

    /// The current line, for tests and status redraws.
    pub fn line(&self) -> String {
        self.line.iter().collect()
    }

    /// Redraw the prompt and the line as they are (after a status message).
    pub fn redraw(&self) -> Vec<u8> {
        let mut out = b"\r".to_vec();
        out.extend_from_slice(self.prompt.as_bytes());
        out.extend(self.line().into_bytes());
        out.extend_from_slice(b"\x1b[K");
        let back = self.line.len() - self.cursor;
        if back > 0 {
            out.extend(format!("\x1b[{back}D").into_bytes());
        }
        out
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &b in bytes {
            self.byte(b, &mut events);
        }
        // Coalesce output so a paste is one write.
        let mut merged: Vec<Event> = Vec::with_capacity(events.len());
        for e in events {
            match (merged.last_mut(), e) {
                (Some(Event::Output(a)), Event::Output(b)) => a.extend(b),
                (_, e) => merged.push(e),
            }
        }
        merged
    }

    fn byte(&mut self, b: u8, ev: &mut Vec<Event>) {
        if !self.escape.is_empty() {
            self.escape.push(b);
            return self.escape_byte(ev);
        }
        let after_cr = std::mem::replace(&mut self.after_cr, false);
        match b {
            0x1b => self.escape.push(b),
            b'\r' => {
                self.after_cr = true;
                self.enter(ev);
            }
            b'\n' if after_cr => {}
            b'\n' => self.enter(ev),
            _ if self.pasting => self.insert_byte(b, ev),
            0x03 => {
                self.line.clear();
                self.cursor = 0;
                ev.push(Event::Output(b"^C\r\n".to_vec()));
                ev.push(Event::Interrupt);
            }
            0x04 if self.line.is_empty() => ev.push(Event::Eof),
            0x04 => self.delete_at_cursor(ev),
            0x7f | 0x08 => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.line.remove(self.cursor);
                    ev.push(Event::Output(self.redraw()));
                }
            }
            0x15 => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
                ev.push(Event::Output(self.redraw()));
            }
            0x17 => {
                let mut start = self.cursor;
                while start > 0 && self.line[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.line[start - 1] != ' ' {
                    start -= 1;
                }
                self.line.drain(start..self.cursor);
                self.cursor = start;
                ev.push(Event::Output(self.redraw()));
            }
            0x01 => self.move_to(0, ev),
            0x05 => self.move_to(self.line.len(), ev),
            0x0c => {
                let mut out = b"\x1b[H\x1b[2J".to_vec();
                out.extend(self.redraw());
                ev.push(Event::Output(out));
            }
            b'\t' => self.insert_char(' ', ev),
            // Other control characters have no meaning on the prompt.
            0x00..=0x1f => {}
            _ => self.insert_byte(b, ev),
        }
    }

    fn escape_byte(&mut self, ev: &mut Vec<Event>) {
        let seq = self.escape.clone();
        let done = |s: &[u8]| match s {
            [0x1b] => false,
            [0x1b, b'[' | b'O'] => false,
            [0x1b, b'[', rest @ ..] => rest.last().is_some_and(|c| (0x40..=0x7e).contains(c)),
            [0x1b, b'O', _] => true,
            _ => true,
        };
        if !done(&seq) {
            if seq.len() > MAX_PENDING_ESCAPE {
                self.escape.clear();
            }
            return;
        }
        self.escape.clear();
        match seq.as_slice() {
            b"\x1b[200~" => self.pasting = true,
            b"\x1b[201~" => self.pasting = false,
            b"\x1b[D" | b"\x1bOD" => self.move_to(self.cursor.saturating_sub(1), ev),
            b"\x1b[C" | b"\x1bOC" => self.move_to((self.cursor + 1).min(self.line.len()), ev),
            b"\x1b[H" | b"\x1bOH" | b"\x1b[1~" | b"\x1b[7~" => self.move_to(0, ev),
            b"\x1b[F" | b"\x1bOF" | b"\x1b[4~" | b"\x1b[8~" => self.move_to(self.line.len(), ev),
            b"\x1b[3~" => self.delete_at_cursor(ev),
            b"\x1b[A" | b"\x1bOA" => self.history_step(true, ev),
            b"\x1b[B" | b"\x1bOB" => self.history_step(false, ev),
            // Anything else (function keys, alt-x) is ignored rather than inserted.
            _ => {}
        }
    }

    fn insert_byte(&mut self, b: u8, ev: &mut Vec<Event>) {
        if b < 0x20 && b != b'\t' {
            return; // control bytes inside a paste are dropped
        }
        self.utf8.push(b);
        match std::str::from_utf8(&self.utf8) {
            Ok(s) => {
                let chars: Vec<char> = s.chars().collect();
                self.utf8.clear();
                for c in chars {
                    self.insert_char(if c == '\t' { ' ' } else { c }, ev);
                }
            }
            Err(e) if e.error_len().is_some() || self.utf8.len() >= 4 => self.utf8.clear(),
            Err(_) => {}
        }
    }

    fn insert_char(&mut self, c: char, ev: &mut Vec<Event>) {
        if self.line.len() >= MAX_LINE {
            return;
        }
        self.line.insert(self.cursor, c);
        self.cursor += 1;
        if self.cursor == self.line.len() {
            // Typing at the end: just echo the character.
            let mut s = [0u8; 4];
            ev.push(Event::Output(c.encode_utf8(&mut s).as_bytes().to_vec()));
        } else {
            ev.push(Event::Output(self.redraw()));
        }
    }

    fn delete_at_cursor(&mut self, ev: &mut Vec<Event>) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            ev.push(Event::Output(self.redraw()));
        }
    }

    fn move_to(&mut self, pos: usize, ev: &mut Vec<Event>) {
        if pos != self.cursor {
            self.cursor = pos;
            ev.push(Event::Output(self.redraw()));
        }
    }

    fn history_step(&mut self, up: bool, ev: &mut Vec<Event>) {
        if self.history.is_empty() {
            return;
        }
        let next = match (self.browsing, up) {
            (None, true) => {
                self.stash = self.line.clone();
                Some(self.history.len() - 1)
            }
            (None, false) => return,
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < self.history.len() => Some(i + 1),
            (Some(_), false) => None,
        };
        self.browsing = next;
        self.line = match next {
            Some(i) => self.history[i].chars().collect(),
            None => std::mem::take(&mut self.stash),
        };
        self.cursor = self.line.len();
        ev.push(Event::Output(self.redraw()));
    }

    fn enter(&mut self, ev: &mut Vec<Event>) {
        let line: String = self.line.iter().collect();
        self.line.clear();
        self.cursor = 0;
        self.browsing = None;
        ev.push(Event::Output(b"\r\n".to_vec()));
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > MAX_HISTORY {
                self.history.remove(0);
            }
        }
        ev.push(Event::Submit(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submits(ev: &[Event]) -> Vec<String> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Submit(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn typing_editing_and_enter() {
        let mut e = Editor::new();
        e.prompt("$ ");
        // "lx", backspace, "s -la", home, ctrl-e, left ×3, delete, enter
        let ev = e.feed(b"lx\x7fs -la\x1b[H\x05\x1b[D\x1b[D\x1b[D\x1b[3~\r");
        assert_eq!(submits(&ev), vec!["ls la".to_string()]);
        let ev = e.feed(b"echo one two\x17\x17three\r");
        assert_eq!(submits(&ev), vec!["echo three".to_string()]);
        let ev = e.feed(b"garbage\x15pwd\r\n");
        assert_eq!(
            submits(&ev),
            vec!["pwd".to_string()],
            "ctrl-u clears; CRLF is one Enter"
        );
    }

    #[test]
    fn history_and_control_keys() {
        let mut e = Editor::new();
        e.feed(b"first\rsecond\r");
        e.feed(b"\x1b[A\x1b[A");
        assert_eq!(e.line(), "first");
        e.feed(b"\x1b[B");
        assert_eq!(e.line(), "second");
        e.feed(b"\x1b[B");
        assert_eq!(e.line(), "");
        let ev = e.feed(b"half\x03");
        assert!(ev.contains(&Event::Interrupt));
        assert_eq!(e.line(), "");
        assert_eq!(e.feed(b"\x04"), vec![Event::Eof]);
    }

    #[test]
    fn bracketed_paste_submits_every_line_in_order() {
        let mut e = Editor::new();
        let ev = e.feed(b"\x1b[200~cd /tmp\nrm -rf /srv\r\nls\x1b[201~");
        assert_eq!(
            submits(&ev),
            vec!["cd /tmp".to_string(), "rm -rf /srv".to_string()]
        );
        assert_eq!(e.line(), "ls", "the last pasted line waits for Enter");
        // Control characters inside a paste do not act as keys.
        let mut e = Editor::new();
        let ev = e.feed(b"\x1b[200~a\x03b\x1b[201~\r");
        assert_eq!(submits(&ev), vec!["ab".to_string()]);
    }

    #[test]
    fn utf8_split_across_reads_and_unknown_escapes() {
        let mut e = Editor::new();
        e.feed(b"echo \xc3");
        e.feed(b"\xa9\x1b[15~\x1bOP");
        assert_eq!(e.line(), "echo é");
    }
}
