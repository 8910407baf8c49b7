//! Byte-exact output: the recording's raw data file and its index in the cast.
//!
//! asciicast stores strings, so bytes that are not UTF-8 cannot be kept in it, and bytes that
//! JSON must escape (NUL, most control characters) cost six bytes each. A chunk of that kind is
//! written unchanged to the session's raw data file (`SESSION.raw`, next to `SESSION.cast`), and
//! the cast gets an index event in its place:
//!
//! ```text
//! [12.345678, "b", "o 65536 32768"]     stream, offset in the raw file, length
//! ```
//!
//! Streams: `o` stdout (or the terminal), `e` stderr, `i` keystrokes. Offsets are contiguous, so
//! the raw file is the raw chunks in order and nothing else. Text that is valid UTF-8 stays in
//! the cast as ordinary `o`/`i` events (exact too: valid UTF-8 round-trips through JSON), so a
//! terminal session reads as before and the web player shows it. The raw file is hashed into
//! the ledger like the cast (its own `recording.closed` entry), so `ledger verify
//! --recordings` checks both.

use std::io::Read;

use crate::task::Stream;

/// The cast event code of an index event.
pub const CODE: &str = "b";

/// How a chunk is kept: its first `text` bytes as text, then the rest raw (`raw_rest`) or
/// carried over (a UTF-8 sequence of at most 3 bytes that the next chunk completes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub text: usize,
    pub raw_rest: bool,
}

/// How many bytes at the start of a chunk decide whether it is text or binary.
const SAMPLE: usize = 512;

/// Decide how to keep `data`: binary when more than half of its first [`SAMPLE`] bytes would be
/// six-byte JSON escapes (NUL and other control bytes); otherwise its UTF-8 text up to the first
/// invalid byte stays text and the rest is raw. Terminal output with colours is far below that
/// threshold (one ESC in several bytes); binary zeros are far above it. Judging a sample keeps
/// this off the profile for bulk output (a full count was 8% of the gateway's time at 1 GiB of
/// zeros); either way every byte is kept exactly, the rule only picks the cheaper form.
pub fn keep(data: &[u8]) -> Keep {
    let sample = &data[..data.len().min(SAMPLE)];
    // Bytes JSON writes as `\u00XX`; \n \r \t \b \f take two and are common.
    let expensive = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x08 | 0x0c))
        .count();
    if expensive * 2 > sample.len() {
        return Keep {
            text: 0,
            raw_rest: true,
        };
    }
    match std::str::from_utf8(data) {
        Ok(_) => Keep {
            text: data.len(),
            raw_rest: false,
        },
        Err(e) => Keep {
            text: e.valid_up_to(),
            raw_rest: e.error_len().is_some(),
        },
    }
}

pub fn stream_code(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "o",
        Stream::Stderr => "e",
        Stream::Input => "i",
    }
}

/// One index event's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub stream: Stream,
    pub offset: u64,
    pub len: u64,
}

impl Span {
    pub fn label(&self) -> String {
        format!("{} {} {}", stream_code(self.stream), self.offset, self.len)
    }

    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split(' ');
        let stream = match it.next()? {
            "o" => Stream::Stdout,
            "e" => Stream::Stderr,
            "i" => Stream::Input,
            _ => return None,
        };
        let offset = it.next()?.parse().ok()?;
        let len = it.next()?.parse().ok()?;
        it.next().is_none().then_some(Self {
            stream,
            offset,
            len,
        })
    }
}

/// Reads the raw file's spans in order (they are contiguous, so this is a sequential read).
pub struct Spans<R> {
    inner: R,
    at: u64,
}

impl<R: Read> Spans<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, at: 0 }
    }

    /// The bytes of `span`, which must be the next one in the file.
    pub fn read(&mut self, span: &Span, buf: &mut Vec<u8>) -> std::io::Result<()> {
        if span.offset != self.at {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "raw data index out of order: span at {} where {} was expected",
                    span.offset, self.at
                ),
            ));
        }
        let len = usize::try_from(span.len).map_err(std::io::Error::other)?;
        buf.clear();
        buf.resize(len, 0);
        self.inner.read_exact(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "raw data file is shorter than its index ({} bytes at {}): {e}",
                    span.len, span.offset
                ),
            )
        })?;
        self.at += span.len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_binary_goes_raw() {
        let k = |text, raw_rest| Keep { text, raw_rest };
        let colour = b"hello\r\n\x1b[31mred\x1b[0m\n";
        assert_eq!(keep(colour), k(colour.len(), false));
        assert_eq!(keep(&[0u8; 100]), k(0, true));
        assert_eq!(
            keep(b"ok \xff\xfe"),
            k(3, true),
            "text up to the first bad byte"
        );
        // A sequence split at the end is carried, not judged.
        let check = "ab✓".as_bytes();
        assert_eq!(keep(&check[..3]), k(2, false));
        assert_eq!(keep(b""), k(0, false));
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(keep(&all), k(128, true), "ASCII is text, from 0x80 on raw");
        let mut zeros = vec![0u8; 64];
        zeros.push(0xff);
        assert_eq!(keep(&zeros), k(0, true), "escapes would blow it up");
    }

    #[test]
    fn spans_round_trip_and_reject_garbage() {
        for s in [Stream::Stdout, Stream::Stderr, Stream::Input] {
            let span = Span {
                stream: s,
                offset: 7,
                len: 9,
            };
            assert_eq!(Span::parse(&span.label()), Some(span));
        }
        for bad in ["", "x 1 2", "o 1", "o 1 2 3", "o -1 2", "o a 2"] {
            assert_eq!(Span::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn spans_must_be_contiguous_and_present() {
        let data = b"abcdef";
        let mut r = Spans::new(&data[..]);
        let mut buf = Vec::new();
        let span = |offset, len| Span {
            stream: Stream::Stdout,
            offset,
            len,
        };
        r.read(&span(0, 2), &mut buf).unwrap();
        assert_eq!(buf, b"ab");
        assert!(r.read(&span(3, 1), &mut buf).is_err(), "gap");
        let mut r = Spans::new(&data[..]);
        assert!(r.read(&span(0, 7), &mut buf).is_err(), "short file");
    }
}
