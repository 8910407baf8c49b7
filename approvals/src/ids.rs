//! Random identifiers and reviewer tokens.
//!
//! Ids are 64 random bits in hex: short enough to paste into `websocat`, long enough that
//! guessing a pending request id is hopeless. Tokens are 256 bits; only their SHA-256 is stored.

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

fn random_hex(bytes: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(hex::encode(buf))
}

pub fn new_id() -> Result<String, RandomError> {
    random_hex(8)
}

/// A new reviewer token: `alr_` + 64 hex characters (the prefix makes leaked tokens greppable).
pub fn new_token() -> Result<String, RandomError> {
    Ok(format!("alr_{}", random_hex(32)?))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
