//! Who is on the other end of a reviewer socket or API call, and how they proved it.
//!
//! Every front-end (the WebSocket, the read API, the web page) turns a request into an
//! [`Identity`] here and nowhere else. Two proofs exist:
//! - a reviewer token (`Authorization: Bearer`, or the socket's first frame) names a reviewer
//!   created with `airlock reviewer add` — the terminal client and scripts use these;
//! - a session cookie (`airlock_session`) names a user who signed in through the identity
//!   provider (see `sso`); their groups claim, kept with the session, is mapped to reviewer
//!   groups by the config in force now.
//!
//! The identity carries the reviewer's groups, resolved against the config's
//! `[[reviewer_group]]`s, which decide what they see and what their votes count for. A
//! signed-in user who maps to no group is refused (single sign-on never grants unscoped
//! access). Proofs are re-checked on every vote, so a removed reviewer, an ended session or
//! an expired one cannot keep voting on an open socket.

use airlock_approvals::store::secret_hash;
use airlock_approvals::{Reviewer, StoreError, now_ms};
use axum::http::HeaderMap;

use crate::server::{AppState, bearer};
use crate::sso::{SESSION_COOKIE, cookie_value};

/// A reviewer and their proof.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) reviewer: Reviewer,
    pub(crate) proof: Proof,
}

#[derive(Debug, Clone)]
pub(crate) enum Proof {
    /// A reviewer token (never logged).
    Token(String),
    /// A single sign-on session: the SHA-256 of its cookie (the key of its row), and when it
    /// ends.
    Session { hash: String, expires_at: i64 },
}

/// Why a request carries no usable identity.
#[derive(Debug)]
pub(crate) enum AuthFailure {
    /// Nothing offered.
    Missing,
    /// Something offered, and it is not (or no longer) valid.
    Bad(&'static str),
    /// The store could not be asked.
    Store(StoreError),
}

/// Said to a signed-in user whose groups claim maps to no reviewer group (any more).
pub(crate) const NO_GROUP: &str = "your account is not in any Airlock reviewer group";

impl AppState {
    /// The reviewer behind a token, with their groups.
    pub(crate) async fn by_token(&self, token: &str) -> Result<Identity, AuthFailure> {
        match self.store.reviewer_for_token(token).await {
            Ok(Some(name)) => Ok(Identity {
                reviewer: self.broker.authority().reviewer(&name, &[]),
                proof: Proof::Token(token.to_owned()),
            }),
            Ok(None) => Err(AuthFailure::Bad("bad token")),
            Err(e) => Err(AuthFailure::Store(e)),
        }
    }

    /// The reviewer behind a session cookie's value, with the groups their claim maps to.
    async fn by_session(&self, cookie: &str) -> Result<Identity, AuthFailure> {
        let hash = secret_hash(cookie);
        match self.store.reviewer_session(&hash, now_ms()).await {
            Ok(Some(s)) => {
                let reviewer = self.broker.authority().reviewer(&s.name, &s.claimed_groups);
                if reviewer.groups.is_empty() {
                    return Err(AuthFailure::Bad(NO_GROUP));
                }
                Ok(Identity {
                    reviewer,
                    proof: Proof::Session {
                        hash,
                        expires_at: s.expires_at,
                    },
                })
            }
            Ok(None) => Err(AuthFailure::Bad("session ended or expired; sign in again")),
            Err(e) => Err(AuthFailure::Store(e)),
        }
    }

    /// The identity an HTTP request proves: a bearer token, else (when single sign-on is on)
    /// a session cookie. A token that is offered decides alone: a bad token is not rescued
    /// by a cookie.
    pub(crate) async fn identify(&self, headers: &HeaderMap) -> Result<Identity, AuthFailure> {
        if let Some(token) = bearer(headers) {
            return self.by_token(token).await;
        }
        match (&self.sso, cookie_value(headers, SESSION_COOKIE)) {
            (Some(_), Some(cookie)) => self.by_session(cookie).await,
            _ => Err(AuthFailure::Missing),
        }
    }

    /// Whether the proof still holds (checked before every vote).
    pub(crate) async fn still_valid(&self, id: &Identity) -> Result<bool, StoreError> {
        match &id.proof {
            Proof::Token(token) => Ok(self
                .store
                .reviewer_for_token(token)
                .await?
                .is_some_and(|n| n == id.reviewer.name)),
            Proof::Session { hash, .. } => Ok(self.sso.is_some()
                && self
                    .store
                    .reviewer_session(hash, now_ms())
                    .await?
                    .is_some_and(|s| {
                        s.name == id.reviewer.name
                            && !self
                                .broker
                                .authority()
                                .reviewer(&s.name, &s.claimed_groups)
                                .groups
                                .is_empty()
                    })),
        }
    }
}
