//! The reviewer listener's accept loop: every TCP connection it lets in, how long it may
//! dawdle, and how it ends.
//!
//! `axum::serve` accepts without limit and waits forever for a request's headers, so 50
//! half-sent requests could sit on the listener for minutes and a flood could take every
//! descriptor. Here each connection holds a seat ([`Limits::max_connections`]) for as long as
//! its socket is open — through a WebSocket upgrade too. When the seats are all taken, the
//! HTTP connection open longest (at least [`MIN_SILENCE_TO_EVICT`]) gives its seat to the
//! newcomer — by age, not silence, so clients that drip a byte every half second cannot hold
//! the house — and junk connections cannot lock a reviewer out; with none to give, the
//! newcomer is closed at once. Refusals and evictions are logged at most once a minute.
//!
//! Each connection is served by hyper's HTTP/1.1 server (upgrades enabled, for `/ws`) with a
//! header read timeout, and dropped when it makes no progress for the idle timeout while it
//! still speaks HTTP. On shutdown the loop stops accepting, asks every HTTP connection to
//! finish its request and close, and returns after at most [`SHUTDOWN_GRACE`]; upgraded
//! WebSockets are not waited for, as with `axum::serve`.
//!
//! With TLS (`tls`), the handshake happens inside the connection's seat and is bounded by the
//! header read timeout (a client that opens a socket and never finishes its ClientHello is a
//! slowloris like one that never finishes its headers); a connection still in its handshake
//! is evictable and counts as HTTP.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::limits::{Limits, Throttle, WARN_EVERY};

/// An HTTP connection open for less than this is never closed to make room. (Age, not
/// silence: a client that drips a byte every half second is never silent, yet a real request
/// takes milliseconds; the oldest HTTP connection is the one that has had its chance.)
pub(crate) const MIN_SILENCE_TO_EVICT: Duration = Duration::from_secs(1);
/// How long the newcomer waits for an evicted connection to give its seat back.
const EVICT_WAIT: Duration = Duration::from_millis(200);
/// How long open HTTP connections get to finish after shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A connection's read and write buffers at most (hyper's default is ~400 KiB): a request's
/// head must fit, and the listener only takes GETs and WebSocket frames, so a full house of
/// junk holds a few MiB, not a hundred.
const MAX_BUF: usize = 64 * 1024;
/// Pause after an accept error that is not about one connection (e.g. out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connections that still speak HTTP (not upgraded), by id: the ones that may be
/// evicted, and told to finish on shutdown.
struct Table {
    seats: Arc<Semaphore>,
    http: Mutex<HashMap<u64, Arc<Conn>>>,
    epoch: Instant,
}

/// One connection's progress and its eviction notice.
struct Conn {
    /// Milliseconds since [`Table::epoch`] of the last byte read or written.
    last: AtomicU64,
    /// Milliseconds since [`Table::epoch`] when it was accepted.
    opened: u64,
    evict: Notify,
}

impl Table {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn silence(&self, conn: &Conn) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(conn.last.load(Ordering::Relaxed)),
        )
    }

    fn http(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.http.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A seat for a newcomer when none is free: evict the HTTP connection silent longest,
    /// if one has been silent long enough, and take its seat.
    async fn make_room(&self) -> Option<OwnedSemaphorePermit> {
        let victim = {
            let mut http = self.http();
            let now = self.now_ms();
            let min_age = u64::try_from(MIN_SILENCE_TO_EVICT.as_millis()).unwrap_or(u64::MAX);
            let (&id, _) = http
                .iter()
                .filter(|(_, c)| now.saturating_sub(c.opened) >= min_age)
                .min_by_key(|(_, c)| c.opened)?;
            http.remove(&id)?
        };
        victim.evict.notify_one();
        tokio::time::timeout(EVICT_WAIT, self.seats.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

/// A connection's socket, holding its seat until it closes and noting its progress.
struct Tracked {
    tcp: TcpStream,
    conn: Arc<Conn>,
    table: Arc<Table>,
    _seat: OwnedSemaphorePermit,
}

impl Tracked {
    fn touch(&self) {
        self.conn.last.store(self.table.now_ms(), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        res
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.tcp).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Accept errors about one connection only; anything else (out of descriptors) backs off.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serve `app` on `listener` within `limits` (over TLS with `tls`) until `shutdown` resolves,
/// then let open HTTP connections finish for at most [`SHUTDOWN_GRACE`].
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let limits = Arc::new(limits.sane());
    let table = Arc::new(Table {
        seats: Arc::new(Semaphore::new(limits.max_connections)),
        http: Mutex::new(HashMap::new()),
        epoch: Instant::now(),
    });
    let refused = Throttle::new(WARN_EVERY);
    let evicted = Throttle::new(WARN_EVERY);
    let accept_failed = Throttle::new(WARN_EVERY);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    let mut shutdown = pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "reviewer connection task failed");
                }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    if !is_connection_error(&e) {
                        if let Some(n) = accept_failed.hit() {
                            tracing::warn!(error = %e, failures = n, "reviewer listener: accept failed");
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
        };
        let seat = match table.seats.clone().try_acquire_owned() {
            Ok(seat) => Some(seat),
            Err(_) => {
                let seat = table.make_room().await;
                if seat.is_some()
                    && let Some(n) = evicted.hit()
                {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        evicted = n,
                        "reviewer listener full: closed the longest-silent HTTP connection to \
                         make room"
                    );
                }
                seat
            }
        };
        let Some(seat) = seat else {
            drop(tcp);
            if let Some(n) = refused.hit() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    refused = n,
                    "reviewer listener full: new connections closed at once"
                );
            }
            continue;
        };
        // Decisions and pushes are small frames: send them at once, not after Nagle's wait.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let id = next_id;
        next_id = next_id.wrapping_add(1);
        let conn = Arc::new(Conn {
            last: AtomicU64::new(table.now_ms()),
            opened: table.now_ms(),
            evict: Notify::new(),
        });
        table.http().insert(id, conn.clone());
        let io = Tracked {
            tcp,
            conn: conn.clone(),
            table: table.clone(),
            _seat: seat,
        };
        tasks.spawn(serve_connection(
            io,
            tls.clone(),
            app.clone(),
            limits.clone(),
            (table.clone(), id, conn),
            stop_rx.clone(),
        ));
    }
    // Stop accepting: new connections are refused by the kernel from here on.
    drop(listener);
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(
                    open = tasks.len(),
                    "reviewer connections still open after the shutdown grace; closing them"
                );
                tasks.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}

/// Serve one connection (after its TLS handshake, with `tls`), then forget it.
async fn serve_connection(
    io: Tracked,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Arc<Limits>,
    (table, id, conn): (Arc<Table>, u64, Arc<Conn>),
    mut stop: watch::Receiver<bool>,
) {
    match tls {
        None => serve_http(io, app, &limits, &table, &conn, stop).await,
        Some(acceptor) => {
            // Bounded like a request's headers, and given up for eviction or shutdown.
            let handshake = tokio::select! {
                hs = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io)) => hs,
                () = conn.evict.notified() => {
                    tracing::debug!("reviewer connection evicted during its TLS handshake");
                    table.http().remove(&id);
                    return;
                }
                _ = stop.changed() => {
                    table.http().remove(&id);
                    return;
                }
            };
            match handshake {
                Ok(Ok(stream)) => serve_http(stream, app, &limits, &table, &conn, stop).await,
                // Scanners, plain HTTP on the TLS port, clients that distrust the certificate.
                Ok(Err(e)) => tracing::debug!(error = %e, "reviewer TLS handshake failed"),
                Err(_) => tracing::debug!(
                    timeout = ?limits.header_read_timeout,
                    "reviewer TLS handshake timed out"
                ),
            }
        }
    }
    table.http().remove(&id);
}

/// Serve HTTP on one connection until it closes, is upgraded, is evicted, stalls for the idle
/// timeout, or shutdown has asked it to finish and it has.
async fn serve_http<I>(
    io: I,
    app: Router,
    limits: &Limits,
    table: &Table,
    conn: &Conn,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF);
    let served = http
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .with_upgrades();
    let mut served = pin!(served);
    let mut stopping = false;
    loop {
        let silence = table.silence(conn);
        let idle_at = tokio::time::Instant::now() + limits.idle_timeout.saturating_sub(silence);
        tokio::select! {
            res = served.as_mut() => {
                if let Err(e) = res {
                    // Timeouts, resets, malformed requests: the client's business.
                    tracing::debug!(error = %e, "reviewer connection ended");
                }
                break;
            }
            () = conn.evict.notified() => {
                tracing::debug!("reviewer connection evicted to make room");
                break;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    served.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(idle_at) => {
                if table.silence(conn) >= limits.idle_timeout {
                    tracing::debug!(idle = ?limits.idle_timeout, "reviewer connection idle; closed");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn app() -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/echo", post(|body: String| async move { body }))
    }

    async fn start(limits: Limits) -> (String, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (tx, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            serve(listener, app(), limits, None, stop)
                .await
                .expect("serve");
        });
        (addr, tx, task)
    }

    /// Read until the peer closes (EOF or reset) within `within`; the bytes read.
    async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    async fn fetch(addr: &str) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("send");
        let out = closed_within(&mut s, Duration::from_secs(5))
            .await
            .expect("answer in time");
        String::from_utf8_lossy(&out).into_owned()
    }

    fn small(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            max_unauthenticated: 1,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn over_the_cap_a_fresh_flood_is_refused_and_a_stale_one_gives_way() {
        let (addr, _stop, _task) = start(small(3)).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(&addr).await.expect("connect"));
        }
        // All three are fresh: the fourth is closed at once, nothing is evicted for it.
        let mut fourth = TcpStream::connect(&addr).await.expect("connect");
        assert!(
            closed_within(&mut fourth, Duration::from_secs(2))
                .await
                .is_some(),
            "over the cap, the newcomer is closed at once"
        );
        // Once they have been silent a while, a real request gets a seat.
        tokio::time::sleep(MIN_SILENCE_TO_EVICT + Duration::from_millis(200)).await;
        let answer = fetch(&addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let mut closed = 0;
        for s in &mut held {
            if closed_within(s, Duration::from_millis(300)).await.is_some() {
                closed += 1;
            }
        }
        assert!(closed >= 1, "a silent connection gave its seat");
    }

    #[tokio::test]
    async fn half_sent_headers_time_out() {
        let mut limits = small(8);
        limits.header_read_timeout = Duration::from_millis(500);
        let (addr, _stop, _task) = start(limits).await;
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("send");
        let t = Instant::now();
        assert!(
            closed_within(&mut s, Duration::from_secs(3))
                .await
                .is_some()
        );
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn a_stalled_body_hits_the_idle_timeout_and_a_flowing_one_does_not() {
        let mut limits = small(8);
        limits.idle_timeout = Duration::from_millis(600);
        let (addr, _stop, _task) = start(limits).await;
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            .await
            .expect("send");
        let t = Instant::now();
        let out = closed_within(&mut s, Duration::from_secs(3))
            .await
            .expect("closed");
        assert!(
            t.elapsed() >= Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));

        // A body that keeps coming, slower than the whole timeout but with progress, is fine.
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("send");
        for b in [b"a", b"b", b"c", b"d"] {
            tokio::time::sleep(Duration::from_millis(300)).await;
            s.write_all(b).await.expect("send");
        }
        let out = closed_within(&mut s, Duration::from_secs(3))
            .await
            .expect("answered");
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.starts_with("HTTP/1.1 200") && out.ends_with("abcd"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn an_oversized_head_is_refused() {
        let (addr, _stop, _task) = start(small(8)).await;
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        let big = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
            "a".repeat(2 * MAX_BUF)
        );
        // The server may close before it has read it all.
        let _ = s.write_all(big.as_bytes()).await;
        let out = closed_within(&mut s, Duration::from_secs(3))
            .await
            .expect("closed");
        let out = String::from_utf8_lossy(&out);
        assert!(out.is_empty() || out.starts_with("HTTP/1.1 431"), "{out}");
        assert!(fetch(&addr).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_returns() {
        let (addr, stop, task) = start(small(8)).await;
        assert!(fetch(&addr).await.starts_with("HTTP/1.1 200"));
        // An idle keep-alive connection does not hold the shutdown up.
        let mut idle = TcpStream::connect(&addr).await.expect("connect");
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("send");
        let mut buf = [0u8; 512];
        let n = idle.read(&mut buf).await.expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let t = Instant::now();
        stop.send(true).expect("stop");
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("returned in time")
            .expect("no panic");
        assert!(t.elapsed() < SHUTDOWN_GRACE);
        assert!(
            TcpStream::connect(&addr).await.is_err(),
            "no longer listening"
        );
    }
}
