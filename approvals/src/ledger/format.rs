//! The ledger's wire format: entries, checkpoints, canonical JSON and hashes. No I/O, so the
//! offline verifier and the writer share exactly one definition (docs/ledger.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Domain separation for checkpoint signatures.
const CHECKPOINT_CONTEXT: &str = "airlock-ledger-checkpoint-v1";

/// One ledger entry as exported (`"type": "entry"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    pub kind: String,
    pub payload: Value,
    pub prev: String,
    pub hash: String,
}

/// A signed head (`"type": "checkpoint"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub ts: i64,
    /// `ed25519:` + base64 of the 32-byte public key.
    pub key: String,
    /// Base64 of the 64-byte signature.
    pub sig: String,
}

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Line {
    Entry(Entry),
    Checkpoint(Checkpoint),
}

/// Canonical JSON: object keys sorted, no whitespace, serde_json string escaping (the same
/// bytes as Python's `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`).
pub fn canonical(v: &Value) -> String {
    // serde_json's map is ordered by key (no `preserve_order`), so plain serialisation is
    // canonical; numbers in payloads are integers only.
    v.to_string()
}

/// SHA-256 (hex) over `prev`, a newline, and the canonical JSON of seq, ts, kind and payload.
///
/// The canonical body is `{"kind":…,"payload":…,"seq":…,"ts":…}` (keys in sorted order); it
/// is serialised straight into the hasher rather than built as a `Value` and a `String`
/// first, which made hashing the most expensive part of `ledger verify` (docs/performance.md).
pub fn entry_hash(prev: &str, seq: i64, ts: i64, kind: &str, payload: &Value) -> String {
    let mut h = HashWriter(Sha256::new());
    h.0.update(prev.as_bytes());
    h.0.update(b"\n{\"kind\":");
    // Writing into a hasher cannot fail, and strings and `Value`s always serialise.
    let _ = serde_json::to_writer(&mut h, kind);
    h.0.update(b",\"payload\":");
    let _ = serde_json::to_writer(&mut h, payload);
    h.0.update(format!(",\"seq\":{seq},\"ts\":{ts}}}").as_bytes());
    hex::encode(h.0.finalize())
}

/// `io::Write` into a running SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn checkpoint_message(seq: i64, hash: &str) -> String {
    format!("{CHECKPOINT_CONTEXT}\n{seq}\n{hash}")
}

pub fn key_string(k: &VerifyingKey) -> String {
    format!("ed25519:{}", B64.encode(k.to_bytes()))
}

/// Parse `ed25519:BASE64` (or bare BASE64).
pub fn parse_key(s: &str) -> Result<VerifyingKey, String> {
    let b64 = s.trim().strip_prefix("ed25519:").unwrap_or(s.trim());
    let bytes = B64
        .decode(b64)
        .map_err(|e| format!("public key is not base64: {e}"))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "public key must be 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&arr).map_err(|e| format!("invalid public key: {e}"))
}

pub fn sign_checkpoint(key: &SigningKey, seq: i64, hash: &str, ts: i64) -> Checkpoint {
    let sig = key.sign(checkpoint_message(seq, hash).as_bytes());
    Checkpoint {
        seq,
        hash: hash.to_owned(),
        ts,
        key: key_string(&key.verifying_key()),
        sig: B64.encode(sig.to_bytes()),
    }
}

/// Whether `c` is a valid signature by `key` (the key named in `c` when `key` is `None`).
pub fn verify_checkpoint(c: &Checkpoint, key: Option<&VerifyingKey>) -> Result<(), String> {
    let own = parse_key(&c.key)?;
    if let Some(k) = key
        && k != &own
    {
        return Err(format!(
            "checkpoint at seq {} is signed by {}, not by the trusted key {}",
            c.seq,
            c.key,
            key_string(k)
        ));
    }
    let bytes = B64
        .decode(&c.sig)
        .map_err(|e| format!("checkpoint at seq {}: signature is not base64: {e}", c.seq))?;
    let arr: [u8; 64] = bytes
        .try_into()
        .map_err(|_| format!("checkpoint at seq {}: signature must be 64 bytes", c.seq))?;
    own.verify_strict(
        checkpoint_message(c.seq, &c.hash).as_bytes(),
        &Signature::from_bytes(&arr),
    )
    .map_err(|_| format!("checkpoint at seq {}: bad signature", c.seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_matches_python_escaping() {
        let v = serde_json::json!({"b": 1, "a": {"z": "x\"y\n\u{1b}é", "c": [1, 2]}});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"c":[1,2],"z":"x\"y\n\u001bé"},"b":1}"#
        );
    }

    /// The streamed hash is byte for byte the one over the canonical `Value` (the definition
    /// in docs/ledger.md), for awkward kinds, payloads and negative numbers.
    #[test]
    fn entry_hash_is_the_hash_of_the_canonical_body() {
        let payloads = [
            serde_json::json!({}),
            serde_json::json!(null),
            serde_json::json!({"z": [1, -2, {"b": "\u{0}\u{7f}é\"\\", "a": true}], "a": "line\nnext"}),
            serde_json::json!("just a string \u{1b}[31m"),
        ];
        for (i, payload) in payloads.iter().enumerate() {
            for kind in ["command.submitted", "we\"ird\tkind", "é"] {
                let (seq, ts) = (i as i64 * 7 - 3, -(i as i64) * 1_000_000_007);
                let body =
                    serde_json::json!({ "seq": seq, "ts": ts, "kind": kind, "payload": payload });
                let mut h = Sha256::new();
                h.update(b"prevhash\n");
                h.update(canonical(&body).as_bytes());
                assert_eq!(
                    entry_hash("prevhash", seq, ts, kind, payload),
                    hex::encode(h.finalize()),
                    "kind {kind:?}, payload {payload}"
                );
            }
        }
    }

    #[test]
    fn checkpoints_sign_and_verify() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let c = sign_checkpoint(&key, 5, "abc", 1);
        assert!(verify_checkpoint(&c, None).is_ok());
        assert!(verify_checkpoint(&c, Some(&key.verifying_key())).is_ok());
        assert!(verify_checkpoint(&c, Some(&other.verifying_key())).is_err());
        let mut forged = c.clone();
        forged.hash = "abd".into();
        assert!(
            verify_checkpoint(&forged, None)
                .unwrap_err()
                .contains("bad signature")
        );
    }
}
