//! How much the reviewer listener lets anyone hold open, and for how long.
//!
//! The listener is reachable before anyone has shown a token, so a client that opens sockets
//! and never finishes a request must not be able to exhaust the gateway's descriptors or lock
//! reviewers out. This module owns the knobs ([`Limits`], with the defaults as associated
//! consts so the config can name them), the cap on WebSockets that have not authenticated yet
//! ([`Unauthenticated`]), and the throttle that keeps a flood from flooding the log as well
//! ([`Throttle`]). The accept loop that applies the connection limits is in `accept`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often, at most, one kind of refusal is logged; the warning counts what it stands for.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(60);

/// Connection limits of the reviewer listener (`Options::limits`).
///
/// A zero count is taken as 1 and a zero duration as 1 ms: the config should refuse both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open TCP connections, WebSockets included, at most. When every one is taken, a new
    /// connection closes the one that has been silent longest (at least a second) if it is
    /// still speaking HTTP — a WebSocket is never closed for room — and is itself closed at
    /// once otherwise. Default [`Limits::DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// WebSockets that are upgraded but have not sent their `auth` frame yet (the browser
    /// flow; they have `AUTH_WAIT`, 10 s, to do so), at most. Over it an upgrade without an
    /// `Authorization: Bearer` header gets HTTP 503; an upgrade that carries a token is
    /// checked before it is upgraded and never waits for a frame, so it does not count.
    /// Default [`Limits::DEFAULT_MAX_UNAUTHENTICATED`].
    pub max_unauthenticated: usize,
    /// Time a client has to send a request's headers, counted from the connection's start
    /// or the end of its previous request (so it also closes a silent or idle keep-alive
    /// connection). Default [`Limits::DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// Time an HTTP connection may make no progress at all — no byte read or written — while
    /// a request is under way: a body sent slowly, a response not read. WebSockets are not
    /// subject to it (a reviewer may wait hours for a request). Default
    /// [`Limits::DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
}

impl Limits {
    /// Default [`Limits::max_connections`]: 256.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
    /// Default [`Limits::max_unauthenticated`]: 64.
    pub const DEFAULT_MAX_UNAUTHENTICATED: usize = 64;
    /// Default [`Limits::header_read_timeout`]: 10 s.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`Limits::idle_timeout`]: 120 s.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

    /// The limits as applied: no zero counts or durations, counts a semaphore can hold.
    pub(crate) fn sane(&self) -> Self {
        let count = |n: usize| n.clamp(1, Semaphore::MAX_PERMITS);
        let dur = |d: Duration| d.max(Duration::from_millis(1));
        Self {
            max_connections: count(self.max_connections),
            max_unauthenticated: count(self.max_unauthenticated),
            header_read_timeout: dur(self.header_read_timeout),
            idle_timeout: dur(self.idle_timeout),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_unauthenticated: Self::DEFAULT_MAX_UNAUTHENTICATED,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Counts events and says when one may be logged: the first at once, then at most one per
/// period, carrying how many happened since the last one logged.
pub(crate) struct Throttle {
    every: Duration,
    /// When the last one was logged, and how many happened since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Count one event; `Some(n)` means log now, for `n` events (this one included).
    pub(crate) fn hit(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.1 += 1;
        let now = Instant::now();
        if s.0
            .is_none_or(|last| now.duration_since(last) >= self.every)
        {
            let n = s.1;
            *s = (Some(now), 0);
            Some(n)
        } else {
            None
        }
    }
}

/// Seats for WebSockets that still owe their `auth` frame.
#[derive(Clone)]
pub(crate) struct Unauthenticated {
    seats: Arc<Semaphore>,
    max: usize,
    refused: Arc<Throttle>,
}

impl Unauthenticated {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            seats: Arc::new(Semaphore::new(max)),
            max,
            refused: Arc::new(Throttle::new(WARN_EVERY)),
        }
    }

    /// A seat, held until the socket has authenticated (or given up); `None` when all are
    /// taken (logged, throttled).
    pub(crate) fn seat(&self) -> Option<OwnedSemaphorePermit> {
        match self.seats.clone().try_acquire_owned() {
            Ok(seat) => Some(seat),
            Err(_) => {
                if let Some(n) = self.refused.hit() {
                    tracing::warn!(
                        max_unauthenticated = self.max,
                        refused = n,
                        "reviewer listener: WebSocket upgrades refused (503): too many sockets \
                         waiting for their auth frame"
                    );
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_logs_the_first_then_counts() {
        let t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.hit(), Some(1));
        assert_eq!(t.hit(), None);
        assert_eq!(t.hit(), None);
        let t = Throttle::new(Duration::ZERO);
        assert_eq!(t.hit(), Some(1));
        assert_eq!(t.hit(), Some(1));
    }

    #[test]
    fn zero_limits_are_made_usable() {
        let l = Limits {
            max_connections: 0,
            max_unauthenticated: 0,
            header_read_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
        }
        .sane();
        assert_eq!((l.max_connections, l.max_unauthenticated), (1, 1));
        assert!(!l.header_read_timeout.is_zero() && !l.idle_timeout.is_zero());
        assert_eq!(Limits::default().sane(), Limits::default());
    }

    #[test]
    fn seats_run_out_and_come_back() {
        let u = Unauthenticated::new(2);
        let a = u.seat();
        let b = u.seat();
        assert!(a.is_some() && b.is_some());
        assert!(u.seat().is_none());
        drop(a);
        assert!(u.seat().is_some());
    }
}
