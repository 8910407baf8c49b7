//! Which certificates `airlock review` trusts when the listener speaks TLS (`wss://`).
//!
//! By default the system's roots (a certificate from a public or company CA installed on the
//! machine). With `--ca FILE` only the certificates in that PEM file: a private CA, or the
//! gateway's self-signed certificate itself (`DATA_DIR/reviewer-tls/cert.pem`), so a pinned
//! certificate is trusted and nothing else is. The same trust serves the WebSocket and the
//! read API (screens).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::Connector;

use super::ClientError;

/// The client's TLS trust, for the socket and for HTTP.
#[derive(Clone)]
pub struct Trust {
    /// `None`: tokio-tungstenite's default (system roots).
    pub(super) ws: Option<Connector>,
    pub(super) http: reqwest::Client,
}

impl Trust {
    /// System roots, or only the certificates in `ca`.
    pub fn new(ca: Option<&Path>) -> Result<Self, ClientError> {
        let Some(ca) = ca else {
            return Ok(Self {
                ws: None,
                http: reqwest::Client::new(),
            });
        };
        let bad = |msg: String| ClientError::Trust(format!("{}: {msg}", ca.display()));
        let pem = std::fs::read(ca).map_err(|e| bad(e.to_string()))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no CERTIFICATE block in this file".into()));
        }
        let mut roots = RootCertStore::empty();
        for c in &certs {
            roots.add(c.clone()).map_err(|e| bad(e.to_string()))?;
        }
        let config = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http_certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_certs_only(http_certs)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            ws: Some(Connector::Rustls(Arc::new(config))),
            http,
        })
    }
}
