//! The Airlock gateway: the SSH edge agents connect to.
//!
//! Rooms, from the ground up (each imports only rooms below it; no import circles):
//! - [`preauth`]: what a connection may hold before it logs in (grace time, startups,
//!   per-source penalties) — counters only.
//! - [`config`], [`hostkey`], [`deny`], [`environment`]: the validated config (and the one
//!   agent lookup), the host key, [`deny::Deny`] (the typed reason anything does not run),
//!   and the environment every command gets.
//! - [`continuity`]: whether the database is still the one the gateway had (ledger head
//!   file, SQLite file identity).
//! - [`audit`]: the gateway's handle on the ledger; applies the fail-closed rule of
//!   [`Event::gates_action`](airlock_approvals::ledger::Event::gates_action).
//! - [`sandbox`]: what a command can reach, enforced by the kernel (Landlock, the guard
//!   process, capabilities); also the `airlock sandbox-exec` helper's own code.
//! - [`targets`]: where approved commands run (local, upstream), behind one interface.
//! - [`scripts`]: the files a command runs — read from the target, judged, shown to
//!   reviewers, checked and pinned before they run.
//! - [`gate`]: command text in, a typed verdict out (access, limits, classifier, the files it
//!   runs, whitelist, policy). Writes nothing.
//! - [`record`]: the session record (witness): recording, store row and ledger entries,
//!   written together, one method per lifecycle step.
//! - [`state`]: the narrow handles sessions share (gate, broker, records, targets, limits,
//!   the shutdown signal) — the ground floor of the session rooms.
//! - [`session`]: the front-ends (exec, gated shell, script) over one lifecycle and one
//!   approval conversation.
//! - [`handler`]: the russh handler — authentication and routing only.
//! - [`startup`] and [`server`]: opening everything, the accept loop, background duties and
//!   the shutdown drain.
//! - [`policy`]: `policy check`/`lint` for the CLI, on the same [`gate::assess`].
//! - [`metrics`]: the Prometheus registry handle the session record and the gate count into;
//!   [`ops`]: `/metrics` and `/readyz` for the reviewer crate's listeners (docs/metrics.md).
//! - [`agents_report`]: one agent's blast radius (targets, grants, whitelist, last week), for
//!   `airlock agents show` and the reviewer page's Agents tab.
//!
//! Data flows one way: agent → session → gate → broker → reviewers → decision → target →
//! recorder + ledger. Nothing runs without a decision, and every error on the way to one is a
//! deny.

pub mod agents_report;
pub mod audit;
pub mod config;
pub mod continuity;
pub mod deny;
pub mod environment;
pub mod gate;
pub mod grants;
pub mod handler;
pub mod hostkey;
pub mod login;
pub mod metrics;
pub mod ops;
pub mod policy;
pub mod preauth;
pub mod quickack;
pub mod record;
pub mod sandbox;
pub mod scripts;
pub mod server;
pub mod session;
pub mod startup;
pub mod state;
pub mod targets;

pub use server::run;
pub use startup::Gateway;
