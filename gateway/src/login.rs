//! One connection's way from accept to logged in, shared by its task and its russh handler:
//! the startup slot it holds until it logs in, the authenticated slot it gets then, the login
//! grace deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use crate::preauth::{PreAuth, Startup};

#[derive(Clone)]
pub struct Login {
    inner: Arc<Inner>,
}

struct Inner {
    preauth: Arc<PreAuth>,
    /// Held until the connection logs in or ends.
    startup: Mutex<Option<Startup>>,
    /// Held from login until the connection ends.
    slot: Mutex<Option<OwnedSemaphorePermit>>,
    logged_in: AtomicBool,
    /// A known agent's key was proven, even if the login was then refused.
    key_proven: AtomicBool,
}

/// Why a login that proved its key is still refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    /// Every authenticated slot (`max_connections`) is taken.
    Full,
}

impl Login {
    pub fn new(preauth: Arc<PreAuth>, startup: Startup) -> Self {
        Self {
            inner: Arc::new(Inner {
                preauth,
                startup: Mutex::new(Some(startup)),
                slot: Mutex::new(None),
                logged_in: AtomicBool::new(false),
                key_proven: AtomicBool::new(false),
            }),
        }
    }

    /// The connection proved an agent's key: move it from the startup pool to the
    /// authenticated one.
    pub fn admit(&self) -> Result<(), NoSlot> {
        let slot = self.inner.preauth.login().ok_or(NoSlot::Full)?;
        *self.inner.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(slot);
        self.inner
            .startup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.inner.logged_in.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// A known agent proved its key (its login may still have been refused: that is no
    /// misbehaviour, so its source pays no penalty).
    pub fn prove_key(&self) {
        self.inner.key_proven.store(true, Ordering::SeqCst);
    }

    pub fn key_proven(&self) -> bool {
        self.inner.key_proven.load(Ordering::SeqCst)
    }

    pub fn logged_in(&self) -> bool {
        self.inner.logged_in.load(Ordering::SeqCst)
    }

    /// Resolves when `grace` has passed without a login; never after one.
    pub async fn grace_over(&self, grace: Duration) {
        tokio::time::sleep(grace).await;
        if self.logged_in() {
            std::future::pending::<()>().await;
        }
    }

    pub fn max_connections(&self) -> usize {
        self.inner.preauth.config().max_authenticated
    }
}
