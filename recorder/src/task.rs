//! The recorder a session writes to: a bounded queue in front of one writer task.
//!
//! Sessions must never block on disk, and must never run unrecorded. So events go through a
//! bounded channel (back-pressure, no unbounded memory) to a task that owns the file, flushes
//! at least every second (a crash loses at most the last second) and fsyncs on close. If the
//! writer fails, every later call returns [`RecorderError::Failed`] and [`Recorder::failed`]
//! resolves, so the session can end itself at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::asciicast::{self, EventKind, Header};
use crate::raw;

/// How many events may wait for the writer before senders are slowed down.
const QUEUE: usize = 1024;
/// Output bytes handed to the recorder but not yet in its file buffer. A sender waits beyond
/// this, so what the agent is shown runs at most this far ahead of what is recorded: when the
/// disk fills, output stops within it. 1 MiB keeps the writer fed at full speed (it writes
/// in 256 KiB blocks) while bounding that window.
const MAX_BYTES_IN_FLIGHT: usize = 1024 * 1024;
/// Write buffers: the cast's events are small; the raw file takes bulk binary output, where
/// 1 MiB per write (4× fewer hops to the blocking pool than 256 KiB) showed in the profile.
const CAST_BUFFER: usize = 256 * 1024;
const RAW_BUFFER: usize = 1024 * 1024;
/// Longest time an event may sit in the write buffer before it reaches the file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error, Clone)]
pub enum RecorderError {
    #[error("cannot create recording {path}: {msg}")]
    Create { path: PathBuf, msg: String },
    #[error("recording failed: {0}")]
    Failed(String),
}

/// What a finished recording is, for the session row and the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub path: PathBuf,
    pub size: u64,
    /// Hex SHA-256 of the whole file as written.
    pub sha256: String,
    /// The raw data file ([`crate::raw`]), when the session produced bytes the cast cannot
    /// hold; hashed into the ledger like the cast.
    pub raw: Option<Box<Closed>>,
}

/// Which byte stream a chunk came from (the raw index keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
    Input,
}

enum Msg {
    Bytes {
        time: f64,
        stream: Stream,
        data: Vec<u8>,
        /// Its share of [`MAX_BYTES_IN_FLIGHT`], given back once written.
        budget: OwnedSemaphorePermit,
    },
    Text {
        time: f64,
        kind: EventKind,
        data: String,
    },
    Close(oneshot::Sender<Result<Closed, RecorderError>>),
    /// Write out what is buffered and make it durable; answer whether that worked.
    Sync(oneshot::Sender<Result<(), RecorderError>>),
}

/// Handle to a running recording. Clone it for every task that produces events.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    /// Event times are measured from here, on the sending side, so queueing delay in the
    /// writer does not distort the replay timing.
    start: Instant,
    /// Set (once) by the writer task when it gives up; carries the reason.
    failed: watch::Receiver<Option<String>>,
    /// Bytes in flight to the writer (see [`MAX_BYTES_IN_FLIGHT`]).
    budget: Arc<Semaphore>,
}

impl Recorder {
    /// Create a new recording file (never overwriting one) and start its writer task.
    pub async fn create(path: &Path, header: Header) -> Result<Self, RecorderError> {
        let create_err = |e: std::io::Error| RecorderError::Create {
            path: path.to_owned(),
            msg: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(create_err)?;
        }
        let mut opts = tokio::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let file = opts.open(path).await.map_err(create_err)?;
        Self::start(file, path.to_owned(), header).await
    }

    /// Start recording into an already opened file (tests use `/dev/full`).
    pub async fn start(
        file: tokio::fs::File,
        path: PathBuf,
        header: Header,
    ) -> Result<Self, RecorderError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (fail_tx, failed) = watch::channel(None);
        let mut writer = Writer {
            raw: None,
            raw_path: path.with_extension("raw"),
            cast: Sink::new(file, path, CAST_BUFFER),
            carry: None,
            line: Vec::new(),
        };
        let mut head = Vec::new();
        asciicast::write_header(&mut head, &header)
            .map_err(|e| RecorderError::Failed(e.to_string()))?;
        writer
            .cast
            .put(&head)
            .await
            .map_err(|e| RecorderError::Failed(e.to_string()))?;
        tokio::spawn(writer.run(rx, fail_tx));
        Ok(Self {
            tx,
            start: Instant::now(),
            failed,
            budget: Arc::new(Semaphore::new(MAX_BYTES_IN_FLIGHT)),
        })
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn error(&self) -> RecorderError {
        RecorderError::Failed(
            self.failed
                .borrow()
                .clone()
                .unwrap_or_else(|| "recorder stopped".to_owned()),
        )
    }

    async fn send(&self, m: Msg) -> Result<(), RecorderError> {
        if self.failed.borrow().is_some() {
            return Err(self.error());
        }
        self.tx.send(m).await.map_err(|_| self.error())
    }

    pub async fn output(&self, stream: Stream, data: &[u8]) -> Result<(), RecorderError> {
        if self.failed.borrow().is_some() {
            return Err(self.error());
        }
        // When it was produced, not when the writer had room for it.
        let time = self.now();
        // A chunk larger than the whole budget takes all of it.
        let share = data.len().clamp(1, MAX_BYTES_IN_FLIGHT) as u32;
        let budget = self
            .budget
            .clone()
            .acquire_many_owned(share)
            .await
            .map_err(|_| self.error())?;
        self.send(Msg::Bytes {
            time,
            stream,
            data: data.to_vec(),
            budget,
        })
        .await
    }

    pub async fn input(&self, data: &[u8]) -> Result<(), RecorderError> {
        self.output(Stream::Input, data).await
    }

    pub async fn resize(&self, cols: u32, rows: u32) -> Result<(), RecorderError> {
        self.send(Msg::Text {
            time: self.now(),
            kind: EventKind::Resize,
            data: format!("{cols}x{rows}"),
        })
        .await
    }

    pub async fn marker(&self, label: &str) -> Result<(), RecorderError> {
        self.send(Msg::Text {
            time: self.now(),
            kind: EventKind::Marker,
            data: label.to_owned(),
        })
        .await
    }

    /// Everything recorded so far is in the file and on disk, or the error (the recording is
    /// then failed for good). For a moment that must not pass unrecorded — before anyone is
    /// asked to approve a command whose recording might already be lost.
    pub async fn sync(&self) -> Result<(), RecorderError> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Sync(tx)).await?;
        rx.await.map_err(|_| self.error())?
    }

    /// Resolves when the writer has failed; never resolves while recording works.
    pub async fn failed(&self) -> RecorderError {
        let mut rx = self.failed.clone();
        // An error from wait_for means the writer task ended; report that as failure too.
        let _ = rx.wait_for(Option::is_some).await;
        self.error()
    }

    /// Flush, fsync and close; returns the file's size and hash.
    pub async fn close(self) -> Result<Closed, RecorderError> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Close(tx)).await?;
        rx.await.map_err(|_| self.error())?
    }
}

/// One output file and the running size and SHA-256 of what was written to it.
struct Sink {
    out: tokio::io::BufWriter<tokio::fs::File>,
    path: PathBuf,
    size: u64,
    hash: Sha256,
}

impl Sink {
    /// `buffer`: large enough that bulk output is written in few system calls (each write is a
    /// hop to tokio's blocking pool).
    fn new(file: tokio::fs::File, path: PathBuf, buffer: usize) -> Self {
        Self {
            out: tokio::io::BufWriter::with_capacity(buffer, file),
            path,
            size: 0,
            hash: Sha256::new(),
        }
    }

    async fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes).await?;
        self.hash.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    async fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush().await?;
        self.out.get_ref().sync_data().await
    }

    async fn finish(&mut self) -> std::io::Result<Closed> {
        self.out.flush().await?;
        self.out.get_ref().sync_all().await?;
        Ok(Closed {
            path: self.path.clone(),
            size: self.size,
            sha256: hex::encode(self.hash.clone().finalize()),
            raw: None,
        })
    }
}

struct Writer {
    cast: Sink,
    /// The raw data file ([`crate::raw`]), created with the first chunk that needs it.
    raw: Option<Sink>,
    raw_path: PathBuf,
    /// The end of a chunk that stopped inside a UTF-8 sequence, with its stream and time. It
    /// joins the next chunk if that is of the same stream; anything else first writes it raw,
    /// so bytes are never reordered.
    carry: Option<(Stream, Vec<u8>, f64)>,
    /// The event line being built, kept to reuse its allocation.
    line: Vec<u8>,
}

fn kind_of(stream: Stream) -> EventKind {
    if stream == Stream::Input {
        EventKind::Input
    } else {
        EventKind::Output
    }
}

impl Writer {
    async fn sync(&mut self) -> std::io::Result<()> {
        if let Some(raw) = &mut self.raw {
            raw.sync().await?;
        }
        self.cast.sync().await
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if let Some(raw) = &mut self.raw {
            raw.out.flush().await?;
        }
        self.cast.out.flush().await
    }

    async fn event(&mut self, time: f64, kind: EventKind, data: &str) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        asciicast::push_event(&mut line, time, kind, data);
        let res = self.cast.put(&line).await;
        self.line = line;
        res
    }

    /// `data` into the raw file, then its index event into the cast.
    async fn raw(&mut self, time: f64, stream: Stream, data: &[u8]) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let sink = match &mut self.raw {
            Some(s) => s,
            None => {
                let mut opts = tokio::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                opts.mode(0o600);
                let file = opts.open(&self.raw_path).await?;
                self.raw
                    .insert(Sink::new(file, self.raw_path.clone(), RAW_BUFFER))
            }
        };
        let span = raw::Span {
            stream,
            offset: sink.size,
            len: data.len() as u64,
        };
        sink.put(data).await?;
        self.event(time, EventKind::Raw, &span.label()).await
    }

    /// A carried partial sequence that will not be completed: keep it raw.
    async fn flush_carry(&mut self) -> std::io::Result<()> {
        match self.carry.take() {
            Some((stream, tail, time)) => self.raw(time, stream, &tail).await,
            None => Ok(()),
        }
    }

    async fn bytes(&mut self, time: f64, stream: Stream, mut data: Vec<u8>) -> std::io::Result<()> {
        match self.carry.take() {
            Some((s, mut tail, _)) if s == stream => {
                tail.extend_from_slice(&data);
                data = tail;
            }
            other => {
                self.carry = other;
                self.flush_carry().await?;
            }
        }
        let keep = raw::keep(&data);
        // `keep` checked that the first `text` bytes are UTF-8.
        let text = std::str::from_utf8(&data[..keep.text]).map_err(std::io::Error::other)?;
        self.event(time, kind_of(stream), text).await?;
        let rest = &data[keep.text..];
        if keep.raw_rest {
            self.raw(time, stream, rest).await
        } else {
            if !rest.is_empty() {
                self.carry = Some((stream, rest.to_vec(), time));
            }
            Ok(())
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>, fail: watch::Sender<Option<String>>) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let step: std::io::Result<Option<oneshot::Sender<Result<Closed, RecorderError>>>> = tokio::select! {
                m = rx.recv() => match m {
                    Some(Msg::Bytes { time, stream, data, budget }) => {
                        let res = self.bytes(time, stream, data).await.map(|()| None);
                        drop(budget);
                        res
                    }
                    Some(Msg::Text { time, kind, data }) => {
                        match self.flush_carry().await {
                            Ok(()) => self.event(time, kind, &data).await.map(|()| None),
                            Err(e) => Err(e),
                        }
                    }
                    Some(Msg::Close(reply)) => Ok(Some(reply)),
                    Some(Msg::Sync(reply)) => match self.sync().await {
                        Ok(()) => {
                            let _ = reply.send(Ok(()));
                            Ok(None)
                        }
                        Err(e) => {
                            let _ = reply.send(Err(RecorderError::Failed(format!(
                                "{}: {e}",
                                self.cast.path.display()
                            ))));
                            Err(e)
                        }
                    },
                    // Every handle dropped without close: finish the file anyway.
                    None => {
                        let _ = self.finish().await;
                        Err(std::io::Error::other("recorder dropped without close"))
                    }
                },
                _ = tick.tick() => self.flush().await.map(|()| None),
            };
            match step {
                Ok(None) => {}
                Ok(Some(reply)) => {
                    let res = self
                        .finish()
                        .await
                        .map_err(|e| RecorderError::Failed(e.to_string()));
                    if let Err(e) = &res {
                        let _ = fail.send(Some(e.to_string()));
                    }
                    let _ = reply.send(res);
                    return;
                }
                Err(e) => {
                    tracing::error!(path = %self.cast.path.display(), error = %e, "recording failed");
                    let _ = fail.send(Some(format!("{}: {e}", self.cast.path.display())));
                    return;
                }
            }
        }
    }

    /// Write what is carried, then close the raw file before the cast that indexes it.
    async fn finish(&mut self) -> std::io::Result<Closed> {
        self.flush_carry().await?;
        let raw = match &mut self.raw {
            Some(r) => Some(Box::new(r.finish().await?)),
            None => None,
        };
        let mut closed = self.cast.finish().await?;
        closed.raw = raw;
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recording;

    #[tokio::test]
    async fn records_and_closes_with_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let rec = Recorder::create(&path, Header::new(80, 24)).await.unwrap();
        rec.output(Stream::Stdout, "caf\u{e9}".as_bytes())
            .await
            .unwrap();
        rec.output(Stream::Stdout, b"\n").await.unwrap();
        rec.marker("exit 0").await.unwrap();
        let closed = rec.close().await.unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(closed.size, bytes.len() as u64);
        assert_eq!(closed.sha256, hex::encode(Sha256::digest(&bytes)));
        let r = Recording::read(&bytes[..]).unwrap();
        assert_eq!(r.output(), "caf\u{e9}\n");
        assert_eq!(
            r.markers().map(|m| m.data.as_str()).collect::<Vec<_>>(),
            ["exit 0"]
        );
    }

    #[tokio::test]
    async fn binary_output_is_kept_byte_for_byte_in_the_raw_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let rec = Recorder::create(&path, Header::new(80, 24)).await.unwrap();
        let all: Vec<u8> = (0..=255u8).collect();
        let check = "✓".as_bytes();
        let mut want = Vec::new();
        // Text, every byte value, zeros, a character split across chunks, a split sequence
        // interrupted by another stream, and a stream that ends inside a sequence.
        for (stream, chunk) in [
            (Stream::Stdout, &b"plain text\r\n"[..]),
            (Stream::Stdout, &all[..]),
            (Stream::Stderr, &[0u8; 5000][..]),
            (Stream::Stdout, &check[..1]),
            (Stream::Stdout, &check[1..]),
            (Stream::Stdout, &check[..2]),
            (Stream::Stderr, &b"err\n"[..]),
            (Stream::Stdout, &b"\xff\xfe tail"[..]),
            (Stream::Stdout, &check[..1]),
        ] {
            rec.output(stream, chunk).await.unwrap();
            want.extend_from_slice(chunk);
        }
        rec.marker("exit 0").await.unwrap();
        let closed = rec.close().await.unwrap();
        let raw = closed.raw.as_deref().expect("a raw file");
        let raw_bytes = std::fs::read(dir.path().join("s.raw")).unwrap();
        assert_eq!(raw.size, raw_bytes.len() as u64);
        assert_eq!(raw.sha256, hex::encode(Sha256::digest(&raw_bytes)));
        let r = Recording::open(&path).unwrap();
        assert_eq!(r.output_bytes().unwrap(), want);
        let ascii: String = (0..0x80u8).map(char::from).collect();
        assert_eq!(
            r.output(),
            format!("plain text\r\n{ascii}✓err\n"),
            "text stays in the cast"
        );
        // A truncated raw file is refused, not read short.
        std::fs::write(dir.path().join("s.raw"), &raw_bytes[..10]).unwrap();
        assert!(Recording::open(&path).is_err());
    }

    #[tokio::test]
    async fn text_sessions_have_no_raw_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let rec = Recorder::create(&path, Header::new(80, 24)).await.unwrap();
        rec.output(Stream::Stdout, b"\x1b[31mred\x1b[0m\n")
            .await
            .unwrap();
        assert!(rec.close().await.unwrap().raw.is_none());
        assert!(!dir.path().join("s.raw").exists());
    }

    #[tokio::test]
    async fn never_overwrites_an_existing_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        std::fs::write(&path, b"keep").unwrap();
        assert!(Recorder::create(&path, Header::new(80, 24)).await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }

    /// A recorder writing to `/dev/full`: every flush fails with ENOSPC.
    async fn on_a_full_disk() -> Recorder {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        Recorder::start(file, "/dev/full".into(), Header::new(80, 24))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sync_answers_at_once_whether_the_recording_is_on_disk() {
        let rec = on_a_full_disk().await;
        rec.marker("command: rm -rf x").await.unwrap();
        let err = rec.sync().await.unwrap_err();
        assert!(err.to_string().contains("No space left"), "{err}");
        assert!(rec.marker("later").await.is_err(), "failed for good");

        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::create(&dir.path().join("ok.cast"), Header::new(80, 24))
            .await
            .unwrap();
        rec.marker("command: ls").await.unwrap();
        rec.sync().await.unwrap();
        let text = std::fs::read_to_string(dir.path().join("ok.cast")).unwrap();
        assert!(text.contains("command: ls"), "on disk before close: {text}");
    }

    #[tokio::test]
    async fn disk_full_is_reported_to_the_session() {
        let rec = on_a_full_disk().await;
        // The flush (at most a second away) hits ENOSPC; the session learns through failed().
        let big = vec![b'x'; 64 * 1024];
        let mut saw_error = false;
        for _ in 0..64 {
            if rec.output(Stream::Stdout, &big).await.is_err() {
                saw_error = true;
                break;
            }
        }
        let failure = tokio::time::timeout(Duration::from_secs(5), rec.failed())
            .await
            .expect("failure within 5s");
        assert!(failure.to_string().contains("No space left"), "{failure}");
        assert!(saw_error || rec.marker("x").await.is_err());
        assert!(rec.close().await.is_err());
    }
}
