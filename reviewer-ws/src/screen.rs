//! "What the agent sees now": a session's recording so far, played into a terminal emulator
//! (`vt100`), rendered as text for the reviewer's card.
//!
//! The recording is the source because it holds exactly the bytes the agent received, and it
//! is flushed at least every second while the session runs. Only the last [`TAIL`] bytes are
//! played, which is plenty for one screen and keeps a long session cheap to look at.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::num::NonZeroU16;
use std::path::Path;

/// How much of the end of a recording is replayed.
const TAIL: u64 = 2 * 1024 * 1024;

pub struct Screen {
    pub cols: u16,
    pub rows: u16,
    pub text: String,
}

fn size(v: &serde_json::Value, key: &str, default: u16) -> NonZeroU16 {
    let n = v[key]
        .as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(default);
    NonZeroU16::new(n.clamp(1, 1000)).unwrap_or(NonZeroU16::MIN)
}

/// Render the last screen of the asciicast at `path`. `Err` is a message for the reviewer.
pub fn last_screen(path: &Path) -> Result<Screen, String> {
    let file = std::fs::File::open(path)
        .map_err(|_| "no recording of that session on this gateway node".to_owned())?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::new(file);
    let mut header = String::new();
    r.read_line(&mut header)
        .map_err(|e| format!("reading the recording: {e}"))?;
    let h: serde_json::Value =
        serde_json::from_str(&header).map_err(|_| "the recording has no header yet".to_owned())?;
    let (mut rows, mut cols) = (size(&h, "height", 24), size(&h, "width", 80));
    let mut parser = vt100::Parser::new(rows, cols, 0);
    let start = header.len() as u64;
    if len > start + TAIL {
        r.seek(SeekFrom::Start(len - TAIL))
            .map_err(|e| format!("reading the recording: {e}"))?;
        let mut skip = Vec::new();
        // Resume at a line boundary.
        r.read_until(b'\n', &mut skip)
            .map_err(|e| format!("reading the recording: {e}"))?;
    }
    let mut rest = Vec::new();
    r.take(TAIL + 1)
        .read_to_end(&mut rest)
        .map_err(|e| format!("reading the recording: {e}"))?;
    // The last line may be half-written; only complete lines count.
    for line in rest.split(|&b| b == b'\n') {
        let Ok((_, code, data)) = serde_json::from_slice::<(f64, String, String)>(line) else {
            continue;
        };
        match code.as_str() {
            "o" => parser.process(data.as_bytes()),
            "r" => {
                if let Some((c, r)) = data.split_once('x')
                    && let (Ok(c), Ok(r)) = (c.parse::<u16>(), r.parse::<u16>())
                    && let (Some(c), Some(r)) = (NonZeroU16::new(c), NonZeroU16::new(r))
                {
                    (rows, cols) = (r, c);
                    parser.set_size(rows, cols);
                }
            }
            _ => {}
        }
    }
    Ok(Screen {
        cols: cols.get(),
        rows: rows.get(),
        text: parser.screen().contents(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_a_terminal_would_show() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.cast");
        std::fs::write(
            &p,
            "{\"version\":2,\"width\":20,\"height\":3}\n\
             [0.1, \"o\", \"first line\\r\\nsecond\"]\n\
             [0.2, \"o\", \"\\u001b[2J\\u001b[Hcleared\\r\\n$ \"]\n\
             [0.3, \"r\", \"30x4\"]\n\
             [0.4, \"o\", \"half-writ",
        )
        .unwrap();
        let s = last_screen(&p).unwrap();
        assert_eq!((s.cols, s.rows), (30, 4));
        assert!(s.text.starts_with("cleared\n$"), "{:?}", s.text);
        assert!(!s.text.contains("first line"));
        assert!(last_screen(&dir.path().join("none.cast")).is_err());
    }
}
