//! The asciicast v2 format: a JSON header line, then one JSON array per event,
//! `[seconds, "o"|"i"|"r"|"m", "data"]`.
//!
//! Terminal output is bytes but asciicast stores strings, so output is decoded as UTF-8 with a
//! carry-over of incomplete sequences between chunks (a multi-byte character split across two
//! reads must not turn into two replacement characters).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u8,
    pub width: u32,
    pub height: u32,
    /// Unix seconds at the start of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl Header {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            version: 2,
            width,
            height,
            timestamp: None,
            command: None,
            title: None,
            env: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Output,
    Input,
    Resize,
    Marker,
}

impl EventKind {
    fn code(self) -> &'static str {
        match self {
            EventKind::Output => "o",
            EventKind::Input => "i",
            EventKind::Resize => "r",
            EventKind::Marker => "m",
        }
    }
    fn from_code(s: &str) -> Option<Self> {
        Some(match s {
            "o" => EventKind::Output,
            "i" => EventKind::Input,
            "r" => EventKind::Resize,
            "m" => EventKind::Marker,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the start of the recording.
    pub time: f64,
    pub kind: EventKind,
    pub data: String,
}

/// Serialise one event line (without the newline).
pub fn event_line(e: &Event) -> String {
    let mut buf = Vec::with_capacity(e.data.len() + 32);
    push_event(&mut buf, e.time, e.kind, &e.data);
    buf.pop();
    // Only ASCII was added around `data`, and `data` is a `str`, so this is valid UTF-8.
    String::from_utf8(buf).unwrap_or_default()
}

/// Append one event line, newline included, to `buf`.
///
/// This is the recorder's hot path (every byte an agent sees passes here), so it escapes
/// straight into the output buffer, copying runs of plain bytes at once, instead of building
/// intermediate strings.
pub fn push_event(buf: &mut Vec<u8>, time: f64, kind: EventKind, data: &str) {
    use std::io::Write as _;
    // Microsecond precision, as asciinema writes it.
    let t = (time * 1_000_000.0).round() / 1_000_000.0;
    // Writing into a Vec cannot fail.
    let _ = write!(buf, "[{t:.6}, \"{}\", \"", kind.code());
    push_json_escaped(buf, data);
    buf.extend_from_slice(b"\"]\n");
}

/// JSON string escaping (RFC 8259) without the quotes: `"`, `\\` and control characters.
fn push_json_escaped(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    let mut plain = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        buf.extend_from_slice(&bytes[plain..i]);
        let long = [
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ];
        let esc = if short.is_empty() { &long[..] } else { short };
        // A run of the same byte (NUL padding, binary zeros) is written by doubling what is
        // already in the buffer: a few large copies instead of one small append per byte.
        let run = bytes[i..].iter().take_while(|&&c| c == b).count();
        let start = buf.len();
        buf.extend_from_slice(esc);
        let total = esc.len() * run;
        while buf.len() - start < total {
            let have = buf.len() - start;
            buf.extend_from_within(start..start + have.min(total - have));
        }
        i += run;
        plain = i;
    }
    buf.extend_from_slice(&bytes[plain..]);
}

pub fn write_header<W: Write>(w: &mut W, h: &Header) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, h)?;
    w.write_all(b"\n")
}

pub fn write_event<W: Write>(w: &mut W, e: &Event) -> std::io::Result<()> {
    w.write_all(event_line(e).as_bytes())?;
    w.write_all(b"\n")
}

/// Incremental UTF-8 decoder that carries incomplete sequences to the next chunk.
#[derive(Debug, Default)]
pub struct Utf8Carry {
    pending: Vec<u8>,
}

impl Utf8Carry {
    pub fn decode(&mut self, chunk: &[u8]) -> String {
        self.decode_owned(chunk.to_vec())
    }

    /// As [`Utf8Carry::decode`], without copying a chunk that is valid UTF-8 on its own.
    pub fn decode_owned(&mut self, chunk: Vec<u8>) -> String {
        let chunk = if self.pending.is_empty() {
            match String::from_utf8(chunk) {
                Ok(text) => return text,
                Err(e) => e.into_bytes(),
            }
        } else {
            chunk
        };
        self.pending.extend_from_slice(&chunk);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                        None => {
                            // Incomplete sequence at the end: keep it for the next chunk.
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Whatever is left at the end of the stream.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("line {line}: {msg}")]
    Line { line: usize, msg: String },
    #[error("empty recording (no header)")]
    Empty,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A recording read back from disk.
#[derive(Debug, Clone)]
pub struct Recording {
    pub header: Header,
    pub events: Vec<Event>,
}

impl Recording {
    pub fn read<R: BufRead>(r: R) -> Result<Self, ParseError> {
        let mut lines = r.lines();
        let first = lines.next().ok_or(ParseError::Empty)??;
        let header: Header = serde_json::from_str(&first).map_err(|e| ParseError::Line {
            line: 1,
            msg: format!("bad header: {e}"),
        })?;
        if header.version != 2 {
            return Err(ParseError::Line {
                line: 1,
                msg: format!("unsupported version {}", header.version),
            });
        }
        let mut events = Vec::new();
        for (i, line) in lines.enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let n = i + 2;
            let bad = |msg: String| ParseError::Line { line: n, msg };
            let (time, code, data): (f64, String, String) =
                serde_json::from_str(&line).map_err(|e| bad(format!("bad event: {e}")))?;
            let kind = EventKind::from_code(&code)
                .ok_or_else(|| bad(format!("unknown event type {code:?}")))?;
            events.push(Event { time, kind, data });
        }
        Ok(Self { header, events })
    }

    /// All output, concatenated (what `asciinema cat` prints).
    pub fn output(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Output)
            .map(|e| e.data.as_str())
            .collect()
    }

    pub fn markers(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.kind == EventKind::Marker)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn escaping_matches_serde_json() {
        let mut s: String = (0u8..0x80).map(char::from).collect();
        s.push_str("é✓ \u{1F600} \u{2028}");
        let mut buf = Vec::new();
        push_event(&mut buf, 1.5, EventKind::Output, &s);
        let expected = format!(
            "[1.500000, \"o\", {}]\n",
            serde_json::to_string(&s).unwrap()
        );
        assert_eq!(String::from_utf8(buf).unwrap(), expected);
        let e = Event {
            time: 0.25,
            kind: EventKind::Marker,
            data: "a\"b".into(),
        };
        assert_eq!(event_line(&e), r#"[0.250000, "m", "a\"b"]"#);
    }

    #[test]
    fn runs_of_escaped_bytes_are_escaped_each() {
        for n in [1usize, 2, 3, 7, 64, 1000, 4097] {
            let s = format!("a{}b\n\n\"{}", "\0".repeat(n), "\u{1}".repeat(n % 5));
            let mut buf = Vec::new();
            push_json_escaped(&mut buf, &s);
            let expected = serde_json::to_string(&s).unwrap();
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                expected[1..expected.len() - 1],
                "n = {n}"
            );
        }
    }

    #[test]
    fn owned_decode_keeps_split_sequences() {
        let mut d = Utf8Carry::default();
        let bytes = "✓".as_bytes();
        assert_eq!(d.decode_owned(bytes[..1].to_vec()), "");
        assert_eq!(d.decode_owned(bytes[1..].to_vec()), "✓");
        assert_eq!(d.decode_owned(b"plain".to_vec()), "plain");
    }

    use super::*;

    #[test]
    fn split_multibyte_characters_survive_chunking() {
        let text = "héllo → wörld ✓";
        let bytes = text.as_bytes();
        for split in 0..bytes.len() {
            let mut d = Utf8Carry::default();
            let mut s = d.decode(&bytes[..split]);
            s.push_str(&d.decode(&bytes[split..]));
            s.push_str(&d.finish());
            assert_eq!(s, text, "split at {split}");
        }
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut d = Utf8Carry::default();
        assert_eq!(d.decode(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        let mut h = Header::new(80, 24);
        h.command = Some("echo hi".into());
        write_header(&mut buf, &h).unwrap();
        let events = [
            Event {
                time: 0.1,
                kind: EventKind::Output,
                data: "hi\r\n\"q\"\u{1b}[0m".into(),
            },
            Event {
                time: 0.2,
                kind: EventKind::Resize,
                data: "100x30".into(),
            },
            Event {
                time: 0.3,
                kind: EventKind::Marker,
                data: "exit 0".into(),
            },
        ];
        for e in &events {
            write_event(&mut buf, e).unwrap();
        }
        let rec = Recording::read(&buf[..]).unwrap();
        assert_eq!(rec.header, h);
        assert_eq!(rec.events, events);
        assert_eq!(rec.output(), "hi\r\n\"q\"\u{1b}[0m");
    }

    #[test]
    fn garbage_is_rejected_with_the_line() {
        let err = Recording::read(
            &b"{\"version\":2,\"width\":1,\"height\":1}\n[1.0, \"x\", \"y\"]\n"[..],
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
