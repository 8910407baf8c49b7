//! Playing a recording back: output events with their real timing (optionally faster, with
//! long pauses cut), from the start or from a marker, or all at once (`--cat`), and export to
//! plain asciicast for other players.
//!
//! Sleeping is injected so the timing logic is tested without waiting.

use std::io::Write;
use std::time::Duration;

use crate::asciicast::{self, EventKind, Recording, Utf8Carry};

#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// 2.0 plays twice as fast.
    pub speed: f64,
    /// Pauses longer than this are shortened to it.
    pub idle_limit: Option<Duration>,
    /// Start at the Nth marker (1-based): output before it is written at once, so the screen
    /// is what it was at that moment, and timing starts there.
    pub from_marker: Option<usize>,
}

impl Default for PlayOptions {
    fn default() -> Self {
        Self {
            speed: 1.0,
            idle_limit: None,
            from_marker: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the recording has {have} markers; there is no marker {want}")]
    NoSuchMarker { want: usize, have: usize },
    #[error("speed must be a positive number")]
    BadSpeed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Write the recording's output to `out`, calling `sleep` for the pauses between events.
pub fn play(
    rec: &Recording,
    out: &mut impl Write,
    opts: &PlayOptions,
    mut sleep: impl FnMut(Duration),
) -> Result<(), ReplayError> {
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        return Err(ReplayError::BadSpeed);
    }
    let start = match opts.from_marker {
        None => 0.0,
        Some(n) => {
            let have = rec.markers().count();
            let m = rec
                .markers()
                .nth(n.saturating_sub(1))
                .filter(|_| n >= 1)
                .ok_or(ReplayError::NoSuchMarker { want: n, have })?;
            m.time
        }
    };
    let mut clock = start;
    rec.visit(|c| {
        if c.kind != EventKind::Output {
            return Ok(());
        }
        if c.time > clock {
            let mut gap = (c.time - clock) / opts.speed;
            if let Some(limit) = opts.idle_limit {
                gap = gap.min(limit.as_secs_f64());
            }
            out.flush()?;
            sleep(Duration::from_secs_f64(gap));
            clock = c.time;
        }
        out.write_all(c.bytes)
    })?;
    out.flush()?;
    Ok(())
}

/// All output at once, byte for byte (raw spans included), as `asciinema cat` prints it.
pub fn cat(rec: &Recording, out: &mut impl Write) -> std::io::Result<()> {
    rec.visit(|c| match c.kind {
        EventKind::Output => out.write_all(c.bytes),
        _ => Ok(()),
    })?;
    out.flush()
}

/// A plain asciicast v2 file for `asciinema` and other players: raw spans become `o`/`i`
/// events. asciicast holds only text, so bytes that are not UTF-8 become U+FFFD there (the
/// recording itself keeps them; `airlock replay --cat` prints them exactly).
pub fn export(rec: &Recording, out: &mut impl Write) -> std::io::Result<()> {
    asciicast::write_header(out, &rec.header)?;
    let mut carry = [Utf8Carry::default(), Utf8Carry::default()];
    let mut line = Vec::new();
    let mut markers = rec
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Marker | EventKind::Resize));
    let mut next = markers.next();
    let mut last = 0.0;
    rec.visit(|c| {
        // Markers and resizes keep their place among the output.
        while let Some(m) = next.filter(|m| m.time <= c.time) {
            line.clear();
            asciicast::push_event(&mut line, m.time, m.kind, &m.data);
            out.write_all(&line)?;
            next = markers.next();
        }
        let text = carry[usize::from(c.kind == EventKind::Input)].decode(c.bytes);
        if !text.is_empty() {
            line.clear();
            asciicast::push_event(&mut line, c.time, c.kind, &text);
            out.write_all(&line)?;
        }
        last = c.time;
        Ok(())
    })?;
    for (i, c) in carry.iter_mut().enumerate() {
        let tail = c.finish();
        if !tail.is_empty() {
            let kind = if i == 1 {
                EventKind::Input
            } else {
                EventKind::Output
            };
            line.clear();
            asciicast::push_event(&mut line, last, kind, &tail);
            out.write_all(&line)?;
        }
    }
    while let Some(m) = next {
        line.clear();
        asciicast::push_event(&mut line, m.time, m.kind, &m.data);
        out.write_all(&line)?;
        next = markers.next();
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asciicast::{Event, Header};

    fn rec() -> Recording {
        let ev = |time: f64, kind, data: &str| Event {
            time,
            kind,
            data: data.into(),
        };
        Recording {
            raw_path: None,
            header: Header::new(80, 24),
            events: vec![
                ev(0.5, EventKind::Output, "a"),
                ev(1.0, EventKind::Marker, "command: x"),
                ev(3.0, EventKind::Output, "b"),
                ev(3.0, EventKind::Input, "typed"),
                ev(13.0, EventKind::Output, "c"),
            ],
        }
    }

    fn run(opts: PlayOptions) -> (String, Vec<f64>) {
        let mut out = Vec::new();
        let mut pauses = Vec::new();
        play(&rec(), &mut out, &opts, |d| {
            pauses.push((d.as_secs_f64() * 100.0).round() / 100.0)
        })
        .expect("play");
        (String::from_utf8(out).expect("utf8"), pauses)
    }

    #[test]
    fn timing_speed_and_idle_limit() {
        assert_eq!(
            run(PlayOptions::default()),
            ("abc".into(), vec![0.5, 2.5, 10.0])
        );
        let fast = PlayOptions {
            speed: 2.0,
            ..PlayOptions::default()
        };
        assert_eq!(run(fast).1, vec![0.25, 1.25, 5.0]);
        let capped = PlayOptions {
            idle_limit: Some(Duration::from_secs(1)),
            ..PlayOptions::default()
        };
        assert_eq!(run(capped).1, vec![0.5, 1.0, 1.0]);
    }

    #[test]
    fn from_marker_writes_the_past_at_once() {
        let (out, pauses) = run(PlayOptions {
            from_marker: Some(1),
            ..PlayOptions::default()
        });
        assert_eq!(out, "abc");
        assert_eq!(pauses, vec![2.0, 10.0], "timing starts at the marker");
        let mut sink = Vec::new();
        let err = play(
            &rec(),
            &mut sink,
            &PlayOptions {
                from_marker: Some(2),
                ..PlayOptions::default()
            },
            |_| {},
        );
        assert!(matches!(
            err,
            Err(ReplayError::NoSuchMarker { want: 2, have: 1 })
        ));
    }
}
