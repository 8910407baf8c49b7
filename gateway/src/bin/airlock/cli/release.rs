//! `airlock verify-release TARBALL --pubkey KEY`: check a release made by
//! `scripts/package.sh` before running it. Users are told to verify what they run; this is
//! the means, with no tool besides the binary they already trust.
//!
//! A release is three files side by side:
//! - `NAME.tar.gz`, the package;
//! - `NAME.tar.gz.sha256`, one line in `sha256sum` format: 64 lowercase hex digits, two
//!   spaces, the tarball's file name, a newline (so `sha256sum -c` works too);
//! - `NAME.tar.gz.sha256.sig`, the Ed25519 signature (RFC 8032, 64 bytes) over the exact bytes
//!   of the `.sha256` file, base64 on one line.
//!
//! The public key is `ed25519:BASE64` (32 bytes, the form `airlock ledger pubkey` prints), given
//! literally or as a file holding that line or a PEM `PUBLIC KEY` (what `openssl pkey -pubout`
//! writes). The signature is checked first (strictly: no malleable encodings), then that the
//! signed line names this tarball, then its hash: a swapped tarball, a swapped checksum file, a
//! foreign key and one flipped byte each fail, with what failed named. Exit 0 only if all holds;
//! 1 when verification fails; 2 when a file or the key cannot be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

enum Failure {
    /// The release does not verify (exit 1).
    Bad(String),
    /// A file or the key could not be read (exit 2).
    Usage(String),
}

pub fn verify(tarball: &Path, pubkey: &str) -> ExitCode {
    match check(tarball, pubkey) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(Failure::Bad(msg)) => {
            eprintln!("airlock: verify-release: FAILED: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("airlock: verify-release: {msg}");
            ExitCode::from(2)
        }
    }
}

fn sidecar(tarball: &Path, ext: &str) -> PathBuf {
    let mut s = tarball.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

fn check(tarball: &Path, pubkey: &str) -> Result<String, Failure> {
    let key = parse_pubkey(pubkey).map_err(Failure::Usage)?;
    let sums_path = sidecar(tarball, ".sha256");
    let sig_path = sidecar(tarball, ".sha256.sig");
    let sums = read(&sums_path)?;
    let sig_text = read(&sig_path)?;
    let sig_bytes = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&sig_text).trim())
        .map_err(|e| Failure::Bad(format!("{}: not base64: {e}", sig_path.display())))?;
    let sig = Signature::from_slice(&sig_bytes).map_err(|_| {
        Failure::Bad(format!(
            "{}: not an Ed25519 signature ({} bytes, expected 64)",
            sig_path.display(),
            sig_bytes.len()
        ))
    })?;
    key.verify_strict(&sums, &sig).map_err(|_| {
        Failure::Bad(format!(
            "the signature {} over {} was not made by {} (a wrong key, or an altered checksum file)",
            sig_path.display(),
            sums_path.display(),
            format_key(&key)
        ))
    })?;
    let text = std::str::from_utf8(&sums)
        .map_err(|_| Failure::Bad(format!("{}: not UTF-8", sums_path.display())))?;
    let (want, name) = parse_sums(text).ok_or_else(|| {
        Failure::Bad(format!(
            "{}: expected one line `HEX  NAME`",
            sums_path.display()
        ))
    })?;
    let file_name = tarball
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name != file_name {
        return Err(Failure::Bad(format!(
            "the signed checksum is for {name:?}, not {file_name:?}"
        )));
    }
    let got = sha256_file(tarball)?;
    if got != want {
        return Err(Failure::Bad(format!(
            "{}: SHA-256 is {got}, the signed checksum says {want}: the file was altered or is incomplete",
            tarball.display()
        )));
    }
    Ok(format!(
        "OK: {} (SHA-256 {got}) is signed by {}",
        tarball.display(),
        format_key(&key)
    ))
}

fn sha256_file(path: &Path) -> Result<String, Failure> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// `HEX  NAME\n` (one line; `*NAME` for binary mode is accepted as `sha256sum` writes it).
fn parse_sums(text: &str) -> Option<(String, String)> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let line = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    let (hash, name) = line.split_once("  ").or_else(|| line.split_once(" *"))?;
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| (hash.to_ascii_lowercase(), name.trim_end().to_owned()))
}

fn format_key(key: &VerifyingKey) -> String {
    format!(
        "ed25519:{}",
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
    )
}

/// `ed25519:BASE64`, or a file holding that or a PEM `PUBLIC KEY`.
fn parse_pubkey(arg: &str) -> Result<VerifyingKey, String> {
    let text = if arg.starts_with("ed25519:") {
        arg.to_owned()
    } else {
        std::fs::read_to_string(arg).map_err(|e| {
            format!("--pubkey {arg}: {e} (give `ed25519:BASE64` or a file holding it)")
        })?
    };
    let text = text.trim();
    let bytes: Vec<u8> = if let Some(b64) = text.strip_prefix("ed25519:") {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("--pubkey: not base64: {e}"))?
    } else if let Some(body) = text
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|r| r.strip_suffix("-----END PUBLIC KEY-----"))
    {
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .map_err(|e| format!("--pubkey {arg}: PEM body is not base64: {e}"))?;
        der.strip_prefix(&SPKI_ED25519_PREFIX[..])
            .ok_or_else(|| format!("--pubkey {arg}: not an Ed25519 public key"))?
            .to_vec()
    } else {
        return Err(format!(
            "--pubkey {arg}: expected `ed25519:BASE64` or a PEM PUBLIC KEY"
        ));
    };
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|v: Vec<u8>| format!("--pubkey: {} bytes, expected 32", v.len()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("--pubkey: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sums_line_names_one_file() {
        let h = "a".repeat(64);
        assert_eq!(
            parse_sums(&format!("{h}  x.tar.gz\n")),
            Some((h.clone(), "x.tar.gz".into()))
        );
        assert_eq!(parse_sums(&format!("{h}  x\n{h}  y\n")), None);
        assert_eq!(parse_sums("abc  x\n"), None);
    }
}
