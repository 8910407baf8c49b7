//! The reviewers' side of Airlock: a WebSocket/HTTP listener and the terminal review client.
//!
//! Reviewers see pending requests pushed live and vote on them. The wire format lives in
//! [`protocol`] (documented for third-party clients in `docs/reviewer-protocol.md`), the
//! listener in [`server`], and `airlock review` in [`client`]. The page's Agents tab reads
//! reports the gateway builds, through [`AgentDirectory`].

mod accept;
mod agents;
pub mod client;
mod identity;
mod insights;
mod limits;
pub mod ops;
mod origin;
mod proposals;
pub mod protocol;
mod screen;
pub mod server;
mod sso;
pub mod tls;
mod web;

pub use agents::{AgentDirectory, ReportFuture, TargetFilter};
pub use limits::Limits;
pub use origin::of as origin_of;
pub use server::{Options, run};
pub use sso::{CALLBACK_PATH, MAX_SESSION_LIFETIME, OidcSettings};
pub use tls::{Tls, TlsError, TlsSource};
