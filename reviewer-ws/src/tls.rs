//! TLS for the reviewer listener: the certificate and key it serves, reloading them, and the
//! optional self-signed certificate.
//!
//! The page carries reviewer tokens and sign-on cookies and the socket carries votes, so
//! anything that leaves the host must be encrypted. [`Tls`] holds the certificate in force
//! behind a resolver, so [`Tls::reload`] (on SIGHUP, see `server`) swaps it for new
//! handshakes while open connections keep theirs; a reload that fails keeps the old one and
//! says why. The key file must not be readable by group or others (like sshd's host keys):
//! start-up refuses it and names the file.
//!
//! The self-signed certificate ([`TlsSource::SelfSigned`]) is made once, kept in the data
//! directory and reused, so its fingerprint — printed in the banner — stays the same across
//! restarts and reviewers can pin it. The handshake itself (bounded by the listener's limits)
//! is in `accept`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use sha2::Digest as _;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

/// The `Strict-Transport-Security` value sent on every answer over TLS: a year, this host only
/// (the gateway cannot speak for sibling subdomains).
pub(crate) const HSTS: &str = "max-age=31536000";
/// File names of the self-signed certificate and its key inside [`TlsSource::SelfSigned`]'s
/// directory.
pub const SELF_SIGNED_CERT: &str = "cert.pem";
pub const SELF_SIGNED_KEY: &str = "key.pem";
/// How long a generated certificate is valid, in years.
const SELF_SIGNED_YEARS: i32 = 10;

/// Where the certificate comes from (`[reviewer] tls_cert`/`tls_key`, or
/// `tls_self_signed = true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files: the certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or
    /// SEC1).
    Files { cert: PathBuf, key: PathBuf },
    /// A certificate made on first start and kept in `dir` ([`SELF_SIGNED_CERT`],
    /// [`SELF_SIGNED_KEY`]), for `names` (DNS names and IP addresses).
    SelfSigned { dir: PathBuf, names: Vec<String> },
}

impl TlsSource {
    fn paths(&self) -> (PathBuf, PathBuf) {
        match self {
            Self::Files { cert, key } => (cert.clone(), key.clone()),
            Self::SelfSigned { dir, .. } => (dir.join(SELF_SIGNED_CERT), dir.join(SELF_SIGNED_KEY)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file that cannot be used; names the file.
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error("cannot make the self-signed certificate in {dir}: {msg}")]
    Generate { dir: String, msg: String },
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// The certificate in force, handed to every new handshake.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    fn get(&self) -> Arc<CertifiedKey> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The reviewer listener's TLS: the certificate in force and the acceptor that serves it.
pub struct Tls {
    source: TlsSource,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
    /// Whether this start generated the self-signed certificate (first run).
    created: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("source", &self.source)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Load the certificate and key (making the self-signed pair first when asked and absent).
    /// Fails, naming the file, on anything unusable: missing, unparsable, a key that does not
    /// match the certificate, or a key readable by group or others.
    pub fn load(source: TlsSource) -> Result<Self, TlsError> {
        let created = match &source {
            TlsSource::SelfSigned { dir, names } => ensure_self_signed(dir, names)?,
            TlsSource::Files { .. } => false,
        };
        let (cert, key) = source.paths();
        let current = Arc::new(Current(RwLock::new(Arc::new(read_pair(&cert, &key)?))));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // The listener speaks HTTP/1.1 only (WebSocket upgrades need it).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            source,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            created,
        })
    }

    /// Read the files again and serve the new certificate to new connections; the old one
    /// stays in force if anything is wrong. `Ok` is the new fingerprint.
    pub fn reload(&self) -> Result<String, TlsError> {
        let (cert, key) = self.source.paths();
        let pair = Arc::new(read_pair(&cert, &key)?);
        self.current.set(pair);
        Ok(self.fingerprint())
    }

    /// SHA-256 of the certificate in force (DER), as `AB:CD:…` — what
    /// `openssl x509 -noout -fingerprint -sha256` and browsers show.
    pub fn fingerprint(&self) -> String {
        let key = self.current.get();
        key.end_entity_cert()
            .map(|c| fingerprint(c.as_ref()))
            .unwrap_or_default()
    }

    /// The certificate file (for the banner).
    pub fn cert_path(&self) -> PathBuf {
        self.source.paths().0
    }

    pub fn is_self_signed(&self) -> bool {
        matches!(self.source, TlsSource::SelfSigned { .. })
    }

    /// True when this start generated the self-signed certificate.
    pub fn created(&self) -> bool {
        self.created
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

/// Every answer over TLS tells browsers to use nothing else for this host.
pub(crate) async fn hsts(mut res: axum::response::Response) -> axum::response::Response {
    res.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static(HSTS),
    );
    res
}

/// SIGHUP: read the certificate and key again (renewals need no restart). Other parts of the
/// gateway may listen for SIGHUP too (tokio hands each listener the signal).
pub(crate) async fn reload_on_hangup(tls: Arc<Tls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: the reviewer TLS certificate will not be reloaded");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(fingerprint) => tracing::info!(
                cert = %tls.cert_path().display(),
                sha256 = %fingerprint,
                "reviewer TLS certificate reloaded"
            ),
            Err(e) => tracing::error!(
                error = %e,
                sha256 = %tls.fingerprint(),
                "reviewer TLS certificate NOT reloaded; still serving the previous one"
            ),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// `AB:CD:…` over SHA-256 of `der`.
pub fn fingerprint(der: &[u8]) -> String {
    let mut out = String::with_capacity(95);
    for (i, b) in sha2::Sha256::digest(der).iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, format!("cannot read the certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, format!("not a PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(file_err(cert, "no CERTIFICATE block in this file"));
    }
    let meta = std::fs::metadata(key).map_err(|e| file_err(key, e))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(file_err(
            key,
            format!(
                "the TLS key is readable or writable by group or others (mode {:o}); chmod 600 it",
                mode & 0o777
            ),
        ));
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_err(key, format!("not a PEM private key: {e}")))?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => file_err(
            key,
            format!(
                "this key does not belong to the certificate {}",
                cert.display()
            ),
        ),
        e => file_err(key, format!("unusable key: {e}")),
    })
}

/// Make the self-signed certificate in `dir` unless it is there; `Ok(true)` when made now.
/// Half a pair (one file without the other) is an error, not something to overwrite.
fn ensure_self_signed(dir: &Path, names: &[String]) -> Result<bool, TlsError> {
    let (cert, key) = (dir.join(SELF_SIGNED_CERT), dir.join(SELF_SIGNED_KEY));
    match (cert.exists(), key.exists()) {
        (true, true) => return Ok(false),
        (false, false) => {}
        (true, false) => return Err(file_err(&key, "missing (its certificate is there)")),
        (false, true) => return Err(file_err(&cert, "missing (its key is there)")),
    }
    let gen_err = |msg: String| TlsError::Generate {
        dir: dir.display().to_string(),
        msg,
    };
    std::fs::create_dir_all(dir).map_err(|e| gen_err(e.to_string()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| gen_err(e.to_string()))?;
    let (cert_pem, key_pem) = self_signed(names).map_err(gen_err)?;
    // The key first, created 0600 and never replaced: a half-written pair fails loudly at
    // the next start instead of being silently regenerated.
    for (path, text, mode) in [(&key, key_pem, 0o600), (&cert, cert_pem, 0o644)] {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| file_err(path, e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| file_err(path, e))?;
    }
    Ok(true)
}

/// A fresh ECDSA P-256 certificate and key (PEM) for `names`, valid from a year ago for
/// [`SELF_SIGNED_YEARS`].
fn self_signed(names: &[String]) -> Result<(String, String), String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "Airlock reviewer listener");
    params.distinguished_name = dn;
    let year = this_year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + SELF_SIGNED_YEARS, 1, 1);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // 31_556_952 s is the mean Gregorian year; a day's error either way does not matter here.
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into()]
    }

    #[test]
    fn a_self_signed_pair_is_made_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("tls");
        let a = Tls::load(TlsSource::SelfSigned {
            dir: d.clone(),
            names: names(),
        })
        .expect("made");
        assert!(a.created() && a.is_self_signed());
        let mode = std::fs::metadata(d.join(SELF_SIGNED_KEY))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Tls::load(TlsSource::SelfSigned {
            dir: d.clone(),
            names: names(),
        })
        .expect("reused");
        assert!(!b.created());
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 95, "{}", a.fingerprint());
    }

    #[test]
    fn unusable_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("one");
        Tls::load(TlsSource::SelfSigned {
            dir: d.clone(),
            names: names(),
        })
        .expect("made");
        let (cert, key) = (d.join(SELF_SIGNED_CERT), d.join(SELF_SIGNED_KEY));
        // Group-readable key.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let e = Tls::load(TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        })
        .expect_err("group-readable key");
        assert!(e.to_string().contains("key.pem") && e.to_string().contains("chmod 600"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        // Another pair's key.
        let other = dir.path().join("two");
        Tls::load(TlsSource::SelfSigned {
            dir: other.clone(),
            names: names(),
        })
        .expect("made");
        let e = Tls::load(TlsSource::Files {
            cert: cert.clone(),
            key: other.join(SELF_SIGNED_KEY),
        })
        .expect_err("mismatched key");
        assert!(e.to_string().contains("does not belong"), "{e}");
        // Not a certificate.
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello\n").expect("write");
        let e = Tls::load(TlsSource::Files {
            cert: junk,
            key: key.clone(),
        })
        .expect_err("junk");
        assert!(e.to_string().contains("junk.pem"), "{e}");
        // Half a self-signed pair is not silently replaced.
        std::fs::remove_file(&key).expect("rm");
        let e = Tls::load(TlsSource::SelfSigned {
            dir: d,
            names: names(),
        })
        .expect_err("half a pair");
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn reload_swaps_the_certificate_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            Tls::load(TlsSource::SelfSigned {
                dir: d.clone(),
                names: names(),
            })
            .expect("made");
        }
        let live = dir.path().join("live");
        std::fs::create_dir(&live).expect("mkdir");
        let copy = |from: &Path| {
            for f in [SELF_SIGNED_CERT, SELF_SIGNED_KEY] {
                std::fs::copy(from.join(f), live.join(f)).expect("copy");
            }
        };
        copy(&a);
        let tls = Tls::load(TlsSource::Files {
            cert: live.join(SELF_SIGNED_CERT),
            key: live.join(SELF_SIGNED_KEY),
        })
        .expect("load");
        let first = tls.fingerprint();
        copy(&b);
        let second = tls.reload().expect("reload");
        assert_ne!(first, second);
        std::fs::write(live.join(SELF_SIGNED_CERT), "broken").expect("write");
        assert!(tls.reload().is_err());
        assert_eq!(
            tls.fingerprint(),
            second,
            "a failed reload keeps the old certificate"
        );
    }
}
