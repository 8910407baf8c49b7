//! The asciicast v2 format: a JSON header line, then one JSON array per event,
//! `[seconds, "o"|"i"|"r"|"m", "data"]`.
//!
//! Terminal output is bytes but asciicast stores strings, so output is decoded as UTF-8 with a
//! carry-over of incomplete sequences between chunks (a multi-byte character split across two
//! reads must not turn into two replacement characters).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::raw::{self, Span, Spans};
use crate::task::Stream;

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
    /// An index into the raw data file (`"b"`, see [`crate::raw`]); `data` is the span.
    Raw,
}

impl EventKind {
    fn code(self) -> &'static str {
        match self {
            EventKind::Output => "o",
            EventKind::Input => "i",
            EventKind::Resize => "r",
            EventKind::Marker => "m",
            EventKind::Raw => raw::CODE,
        }
    }
    fn from_code(s: &str) -> Option<Self> {
        Some(match s {
            "o" => EventKind::Output,
            "i" => EventKind::Input,
            "r" => EventKind::Resize,
            "m" => EventKind::Marker,
            raw::CODE => EventKind::Raw,
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

impl Event {
    /// The raw span of a `b` event.
    pub fn span(&self) -> Option<Span> {
        (self.kind == EventKind::Raw)
            .then(|| Span::parse(&self.data))
            .flatten()
    }
}

fn bad_span(data: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("bad raw index {data:?}"),
    )
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

/// The index of the first byte at or after `from` that JSON must escape (`"`, `\\`, or below
/// 0x20), or `bytes.len()`. Eight bytes at a time (the classic "has a zero / a byte below n"
/// word tricks): a byte-by-byte loop here was the gateway's hottest function for text output.
fn next_to_escape(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = from;
    while i + 8 <= bytes.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        let x = u64::from_ne_bytes(w);
        // A byte below 0x20 (and only those: bytes >= 0x80 are masked out by `!x`), a quote, a
        // backslash.
        let flags = (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | zero_in(x ^ (ONES * u64::from(b'"')))
            | zero_in(x ^ (ONES * u64::from(b'\\')));
        if flags != 0 {
            break;
        }
        i += 8;
    }
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x20 || b == b'"' || b == b'\\' {
            return i;
        }
        i += 1;
    }
    i
}

/// JSON string escaping (RFC 8259) without the quotes: `"`, `\\` and control characters.
fn push_json_escaped(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    let mut plain = 0;
    let mut i = 0;
    while i < bytes.len() {
        i = next_to_escape(bytes, i);
        let Some(&b) = bytes.get(i) else { break };
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
    #[error("raw data: {0}")]
    Raw(String),
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
    /// The raw data file its `b` events index ([`Recording::open`] sets it).
    pub raw_path: Option<PathBuf>,
}

/// What [`Recording::visit`] hands over for each output or input event.
pub struct Chunk<'a> {
    pub time: f64,
    /// [`EventKind::Output`] or [`EventKind::Input`].
    pub kind: EventKind,
    /// Known for raw chunks; text events do not say whether they were stdout or stderr.
    pub stream: Option<Stream>,
    pub bytes: &'a [u8],
}

impl Recording {
    /// Read the cast at `path` and, when it indexes raw data, check that `SESSION.raw` is there
    /// and holds what the index says (contiguous spans, none past its end).
    pub fn open(path: &Path) -> Result<Self, ParseError> {
        let file = std::fs::File::open(path)?;
        let mut rec = Self::read(std::io::BufReader::new(file))?;
        let mut end = 0u64;
        for (i, e) in rec.events.iter().enumerate() {
            if let Some(span) = e.span() {
                if span.offset != end {
                    return Err(ParseError::Raw(format!(
                        "event {}: raw span at {} where {end} was expected",
                        i + 1,
                        span.offset
                    )));
                }
                end += span.len;
            }
        }
        if end > 0 {
            let raw_path = path.with_extension("raw");
            let len = std::fs::metadata(&raw_path)
                .map_err(|e| ParseError::Raw(format!("{}: {e}", raw_path.display())))?
                .len();
            if len < end {
                return Err(ParseError::Raw(format!(
                    "{} holds {len} bytes; the index needs {end}",
                    raw_path.display()
                )));
            }
            rec.raw_path = Some(raw_path);
        }
        Ok(rec)
    }

    /// Every output and input event with its exact bytes, in order; raw spans are read from
    /// the raw data file as they come.
    pub fn visit(
        &self,
        mut f: impl FnMut(Chunk<'_>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut spans = match &self.raw_path {
            Some(p) => Some(Spans::new(std::io::BufReader::with_capacity(
                256 * 1024,
                std::fs::File::open(p)?,
            ))),
            None => None,
        };
        let mut buf = Vec::new();
        for e in &self.events {
            match e.kind {
                EventKind::Output | EventKind::Input => f(Chunk {
                    time: e.time,
                    kind: e.kind,
                    stream: None,
                    bytes: e.data.as_bytes(),
                })?,
                EventKind::Raw => {
                    let span = e.span().ok_or_else(|| bad_span(&e.data))?;
                    let reader = spans.as_mut().ok_or_else(|| {
                        std::io::Error::other("the recording indexes raw data but has no raw file (open it with Recording::open)")
                    })?;
                    reader.read(&span, &mut buf)?;
                    f(Chunk {
                        time: e.time,
                        kind: if span.stream == Stream::Input {
                            EventKind::Input
                        } else {
                            EventKind::Output
                        },
                        stream: Some(span.stream),
                        bytes: &buf,
                    })?;
                }
                EventKind::Resize | EventKind::Marker => {}
            }
        }
        Ok(())
    }

    /// All output, byte for byte, as the agent received it (stdout and stderr in order).
    pub fn output_bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.visit(|c| {
            if c.kind == EventKind::Output {
                out.extend_from_slice(c.bytes);
            }
            Ok(())
        })?;
        Ok(out)
    }

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
            if kind == EventKind::Raw && Span::parse(&data).is_none() {
                return Err(bad(format!("bad raw index {data:?}")));
            }
            events.push(Event { time, kind, data });
        }
        Ok(Self {
            header,
            events,
            raw_path: None,
        })
    }

    /// The text output events, concatenated (what `asciinema cat` prints); raw spans are not
    /// in it (see [`Recording::output_bytes`]).
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
    fn word_at_a_time_scan_matches_serde_json() {
        // Every position of every escapable byte among plain and non-ASCII text.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet = [
            "a", "é", "✓", "\"", "\\", "\n", "\u{0}", "\u{1f}", "\u{7f}", " ", "~",
        ];
        for len in 0..200 {
            let mut s = String::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let mut buf = Vec::new();
            push_json_escaped(&mut buf, &s);
            let expected = serde_json::to_string(&s).unwrap();
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                expected[1..expected.len() - 1],
                "{s:?}"
            );
        }
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
