//! Operator commands of the `airlock` binary that only read the config: `classify` and
//! `policy check|lint`. They print for humans by default and JSON for machines, and their exit
//! codes are part of the interface (CI gates depend on them).

pub mod classify;
pub mod ledger;
pub mod policy;
pub mod sessions;
pub mod whitelist;
