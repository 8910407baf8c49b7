//! Session recordings in asciicast v2 (plus a raw data file for bytes asciicast cannot hold,
//! see [`raw`]), written by a background task.
//!
//! The `asciicast` crate is abandoned and lacks resize and marker events, so the format is
//! implemented here: [`asciicast`] is the plain file format (writer, reader, UTF-8 handling),
//! [`task`] is the recorder a session talks to. Recording is part of the security boundary:
//! when it fails, the session must stop, so every failure is surfaced to the caller.

pub mod asciicast;
pub mod raw;
pub mod replay;
pub mod task;

pub use asciicast::{Chunk, Event, EventKind, Header, ParseError, Recording};
pub use task::{Closed, Recorder, RecorderError};
