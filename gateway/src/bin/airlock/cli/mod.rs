//! The operator commands of the `airlock` binary, one module each. They print for humans by
//! default and JSON for machines, and their exit codes are part of the interface (CI gates
//! depend on them). `operator` holds what they share (the database, the operator's name,
//! auditing a change).

pub mod agents;
pub mod backup;
pub mod classify;
pub mod grant;
pub mod ledger;
pub mod mcp;
pub mod operator;
pub mod policy;
pub mod proposals;
pub mod release;
pub mod review;
pub mod reviewer;
pub mod sessions;
pub mod whitelist;
pub mod whitelist_diff;
