//! The Airlock gateway: the SSH edge agents connect to.
//!
//! Layers, each knowing only the one below: [`server`] accepts TCP connections (bounded by a
//! semaphore) and hands each to russh with a [`handler::AgentConnection`], which only
//! authenticates and turns channels into [`session`] tasks. A session asks the [`gate`] for a
//! decision (classifier → whitelist → policy → broker), runs the approved command on a
//! [`target`], records it, and reports the exit status. Nothing runs without a decision, and
//! every error on the way to one is a deny.

pub mod audit;
pub mod config;
pub mod gate;
pub mod handler;
pub mod hostkey;
pub mod policy;
pub mod server;
pub mod session;
pub mod shell;
pub mod target;

pub use server::{Gateway, run};
