//! Before an agent has logged in: what a connection may hold, for how long, and what a source
//! that misbehaves pays — the gateway's answer to idle-connection floods and handshake storms
//! (sshd's `LoginGraceTime`, `MaxStartups`, `PerSourceMaxStartups` and `PerSourcePenalties`).
//!
//! - A connection that has not authenticated holds a *startup* slot, from a pool of its own:
//!   idle or slow connections can fill that pool but never the slots of logged-in agents
//!   ([`PreAuth::login`] moves a connection to the authenticated pool).
//! - Near a full startup pool, new connections are dropped at random (`begin:rate:full`, as in
//!   sshd); one source may hold only so many startups at once.
//! - A connection that ends without logging in (the login grace time ran out, the handshake
//!   failed, the client gave up) adds a penalty to its source; a source whose penalty exceeds
//!   the threshold is refused at accept until it decays. Agents that log in never pay.
//!
//! Owns the counters only; the accept loop asks [`PreAuth::admit`], the connection task says
//! how the connection ended, the handler calls [`PreAuth::login`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `begin:rate:full` — from `begin` startups on, drop `rate`% of new connections, rising
/// linearly to 100% at `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Startups {
    pub begin: usize,
    pub rate: u8,
    pub full: usize,
}

impl Startups {
    /// `"32:30:128"` or a single number (`"128"`: no early drop).
    pub fn parse(s: &str) -> Result<Self, String> {
        let nums: Result<Vec<usize>, _> = s.split(':').map(|p| p.trim().parse::<usize>()).collect();
        let bad = || format!("{s:?}: expected begin:rate:full (e.g. \"32:30:128\") or a number");
        let out = match nums.map_err(|_| bad())?.as_slice() {
            [full] => Startups {
                begin: *full,
                rate: 100,
                full: *full,
            },
            [begin, rate, full] => Startups {
                begin: *begin,
                rate: u8::try_from(*rate).map_err(|_| bad())?,
                full: *full,
            },
            _ => return Err(bad()),
        };
        if out.full == 0 || out.begin > out.full || out.rate > 100 {
            return Err(format!(
                "{s:?}: need 0 < begin <= full and a rate of at most 100"
            ));
        }
        Ok(out)
    }
}

/// The limits, from `[ssh]` (defaults in [`PreAuthConfig::default`]).
#[derive(Debug, Clone)]
pub struct PreAuthConfig {
    /// An unauthenticated connection is closed after this long.
    pub login_grace: Duration,
    pub startups: Startups,
    /// Startups one source may hold at once.
    pub per_source_startups: usize,
    /// What a connection that ends without logging in adds to its source's penalty.
    pub penalty_noauth: Duration,
    /// A source's penalty never exceeds this.
    pub penalty_max: Duration,
    /// A source is refused while its penalty is above this.
    pub block_after: Duration,
    /// Logged-in connections (`max_connections`).
    pub max_authenticated: usize,
}

impl Default for PreAuthConfig {
    fn default() -> Self {
        Self {
            login_grace: Duration::from_secs(20),
            startups: Startups {
                begin: 32,
                rate: 30,
                full: 128,
            },
            per_source_startups: 16,
            penalty_noauth: Duration::from_secs(2),
            penalty_max: Duration::from_secs(600),
            block_after: Duration::from_secs(15),
            max_authenticated: 512,
        }
    }
}

/// Why a new connection was dropped at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The startup pool is full.
    Full,
    /// Dropped at random near a full pool.
    EarlyDrop,
    /// This source holds its share of startups.
    SourceStartups,
    /// This source is penalized (misbehaved recently).
    Penalized,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Full => "unauthenticated connections at their limit (max_startups)",
            Refusal::EarlyDrop => "dropped early: unauthenticated connections near their limit",
            Refusal::SourceStartups => "this source holds per_source_max_startups connections",
            Refusal::Penalized => "this source is penalized for connections that never logged in",
        }
    }
}

/// Sources remembered at most (penalties and startup counts); beyond it, penalties are not
/// recorded for new sources (logged), startups still are capped globally.
const MAX_SOURCES: usize = 65_536;

#[derive(Default)]
struct Source {
    startups: usize,
    /// Penalized until this instant (the penalty is what is left of it).
    penalty_until: Option<Instant>,
}

/// Shared by the accept loop, every connection task and the handler.
pub struct PreAuth {
    config: PreAuthConfig,
    startups: Arc<Semaphore>,
    authenticated: Arc<Semaphore>,
    sources: Mutex<HashMap<IpAddr, Source>>,
}

/// A connection's startup slot; dropped when it logs in or ends.
pub struct Startup {
    _permit: OwnedSemaphorePermit,
    preauth: Arc<PreAuth>,
    source: IpAddr,
}

impl Drop for Startup {
    fn drop(&mut self) {
        let mut sources = self.preauth.sources();
        if let Some(s) = sources.get_mut(&self.source) {
            s.startups = s.startups.saturating_sub(1);
            if s.startups == 0 && s.penalty_until.is_none() {
                sources.remove(&self.source);
            }
        }
    }
}

/// IPv6 sources count by their /64 (one host easily holds a whole prefix).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

/// A uniformly random percentage; `None` if the OS has no randomness (the caller then drops).
fn percent() -> Option<u8> {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).ok()?;
    Some((u16::from_le_bytes(b) % 100) as u8)
}

impl PreAuth {
    pub fn new(config: PreAuthConfig) -> Arc<Self> {
        Arc::new(Self {
            startups: Arc::new(Semaphore::new(config.startups.full)),
            authenticated: Arc::new(Semaphore::new(config.max_authenticated)),
            config,
            sources: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &PreAuthConfig {
        &self.config
    }

    fn sources(&self) -> MutexGuard<'_, HashMap<IpAddr, Source>> {
        // A poisoned lock only means a panic mid-update of plain counters.
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Unauthenticated connections in flight.
    pub fn startups_in_flight(&self) -> usize {
        self.config.startups.full - self.startups.available_permits()
    }

    /// A new connection from `ip`: its startup slot, or why it is dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Startup, Refusal> {
        let source = source_of(ip);
        let now = Instant::now();
        let mut sources = self.sources();
        if let Some(s) = sources.get_mut(&source)
            && let Some(until) = s.penalty_until
        {
            if until <= now {
                s.penalty_until = None;
            } else if until - now > self.config.block_after {
                return Err(Refusal::Penalized);
            }
        }
        if sources
            .get(&source)
            .is_some_and(|s| s.startups >= self.config.per_source_startups)
        {
            return Err(Refusal::SourceStartups);
        }
        let in_flight = self.startups_in_flight();
        let Startups { begin, rate, full } = self.config.startups;
        if in_flight >= begin && full > begin {
            // From `rate`% at `begin` to 100% at `full`.
            let extra = (100 - usize::from(rate)) * (in_flight - begin) / (full - begin);
            let chance = usize::from(rate) + extra;
            match percent() {
                Some(p) if usize::from(p) >= chance => {}
                _ => return Err(Refusal::EarlyDrop),
            }
        }
        let Ok(permit) = self.startups.clone().try_acquire_owned() else {
            return Err(Refusal::Full);
        };
        if !sources.contains_key(&source) && sources.len() >= MAX_SOURCES {
            Self::forget_idle(&mut sources, now);
        }
        sources.entry(source).or_default().startups += 1;
        Ok(Startup {
            _permit: permit,
            preauth: self.clone(),
            source,
        })
    }

    /// The connection logged in: a slot among authenticated connections (`None`: all taken).
    pub fn login(&self) -> Option<OwnedSemaphorePermit> {
        self.authenticated.clone().try_acquire_owned().ok()
    }

    /// A connection from `ip` ended without logging in.
    pub fn penalize(&self, ip: IpAddr) {
        let source = source_of(ip);
        let now = Instant::now();
        let mut sources = self.sources();
        if !sources.contains_key(&source) && sources.len() >= MAX_SOURCES {
            Self::forget_idle(&mut sources, now);
            if sources.len() >= MAX_SOURCES {
                tracing::warn!(%source, "too many sources tracked; penalty not recorded");
                return;
            }
        }
        let s = sources.entry(source).or_default();
        let from = s.penalty_until.filter(|u| *u > now).unwrap_or(now);
        let until = (from + self.config.penalty_noauth).min(now + self.config.penalty_max);
        let was_blocked = from - now > self.config.block_after;
        s.penalty_until = Some(until);
        if !was_blocked && until - now > self.config.block_after {
            tracing::warn!(
                %source,
                penalty_s = (until - now).as_secs(),
                "source penalized: connections that never logged in; refusing it for a while"
            );
        }
    }

    /// Drop entries that hold nothing: no startups and no live penalty.
    fn forget_idle(sources: &mut HashMap<IpAddr, Source>, now: Instant) {
        sources.retain(|_, s| s.startups > 0 || s.penalty_until.is_some_and(|u| u > now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn startups_parse() {
        assert_eq!(
            Startups::parse("10:30:100").unwrap(),
            Startups {
                begin: 10,
                rate: 30,
                full: 100
            }
        );
        assert_eq!(Startups::parse("50").unwrap().full, 50);
        for bad in ["", "a:b:c", "10:30", "100:30:10", "1:101:5", "0"] {
            assert!(Startups::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_source_cannot_hold_every_startup() {
        let p = PreAuth::new(PreAuthConfig {
            startups: Startups::parse("100").unwrap(),
            per_source_startups: 3,
            ..PreAuthConfig::default()
        });
        let held: Vec<_> = (0..3).map(|_| p.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(p.admit(ip("10.0.0.1")).err(), Some(Refusal::SourceStartups));
        assert!(p.admit(ip("10.0.0.2")).is_ok(), "another source gets in");
        drop(held);
        assert!(p.admit(ip("10.0.0.1")).is_ok());
        // An IPv6 /64 is one source.
        let _a = (0..3)
            .map(|i| p.admit(ip(&format!("2001:db8::{i}"))).unwrap())
            .collect::<Vec<_>>();
        assert_eq!(
            p.admit(ip("2001:db8::ff")).err(),
            Some(Refusal::SourceStartups)
        );
    }

    #[test]
    fn a_full_pool_refuses_and_near_full_drops_some() {
        let p = PreAuth::new(PreAuthConfig {
            startups: Startups::parse("10:50:20").unwrap(),
            per_source_startups: 1000,
            ..PreAuthConfig::default()
        });
        let mut held = Vec::new();
        let mut dropped = 0;
        for _ in 0..1000 {
            match p.admit(ip("10.0.0.1")) {
                Ok(s) => held.push(s),
                Err(Refusal::EarlyDrop) => dropped += 1,
                Err(Refusal::Full) => break,
                Err(other) => panic!("{other:?}"),
            }
            if held.len() == 20 {
                break;
            }
        }
        assert_eq!(held.len(), 20, "filled up, with early drops on the way");
        assert!(dropped > 0);
        assert!(matches!(
            p.admit(ip("10.0.0.9")).err(),
            Some(Refusal::Full | Refusal::EarlyDrop)
        ));
        held.truncate(5);
        assert!(
            p.admit(ip("10.0.0.9")).is_ok(),
            "below begin nothing is dropped"
        );
    }

    #[test]
    fn sources_that_never_log_in_are_refused_for_a_while() {
        let p = PreAuth::new(PreAuthConfig {
            penalty_noauth: Duration::from_secs(2),
            block_after: Duration::from_secs(15),
            ..PreAuthConfig::default()
        });
        for _ in 0..7 {
            p.penalize(ip("10.0.0.1"));
        }
        assert!(
            p.admit(ip("10.0.0.1")).is_ok(),
            "14 s of penalty is tolerated"
        );
        p.penalize(ip("10.0.0.1"));
        p.penalize(ip("10.0.0.1"));
        assert_eq!(p.admit(ip("10.0.0.1")).err(), Some(Refusal::Penalized));
        assert!(p.admit(ip("10.0.0.2")).is_ok(), "other sources are not");
    }

    #[test]
    fn logged_in_connections_have_their_own_pool() {
        let p = PreAuth::new(PreAuthConfig {
            max_authenticated: 2,
            ..PreAuthConfig::default()
        });
        let a = p.login();
        let b = p.login();
        assert!(a.is_some() && b.is_some());
        assert!(p.login().is_none());
        drop(a);
        assert!(p.login().is_some());
    }
}
