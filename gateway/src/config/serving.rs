//! How the gateway presents itself to operators: `[reviewer] tls_*` (TLS for the reviewer
//! listener) and `[log]` (format and level of its log).
//!
//! Checked here so `serve` and `policy lint` refuse a bad value at start, naming the key; the
//! certificate files themselves are read at start by `airlock_reviewer_ws::Tls` (a config
//! check must not need the key, which only the gateway's user can read).

use std::net::SocketAddr;
use std::path::PathBuf;

use airlock_reviewer_ws::TlsSource;
use serde::Deserialize;

/// The self-signed certificate's directory inside the data directory.
pub const SELF_SIGNED_DIR: &str = "reviewer-tls";

/// `[reviewer] tls_cert`, `tls_key`, `tls_self_signed`: `None` is plain HTTP.
pub(super) fn reviewer_tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<bool>,
    data_dir: &std::path::Path,
    listen: SocketAddr,
    public_url: Option<&str>,
) -> Result<Option<TlsSource>, String> {
    match (cert, key, self_signed.unwrap_or(false)) {
        (None, None, false) => Ok(None),
        (Some(cert), Some(key), false) => Ok(Some(TlsSource::Files { cert, key })),
        (Some(_), None, false) | (None, Some(_), false) => Err(
            "[reviewer] tls_cert and tls_key go together: set both (PEM files), or neither".into(),
        ),
        (None, None, true) => Ok(Some(TlsSource::SelfSigned {
            dir: data_dir.join(SELF_SIGNED_DIR),
            names: self_signed_names(listen, public_url),
        })),
        (_, _, true) => Err(
            "[reviewer] tls_self_signed = true makes its own certificate: remove tls_cert and \
             tls_key, or set tls_self_signed = false"
                .into(),
        ),
    }
}

/// The names a generated certificate covers: loopback, the listen address when it is a
/// specific one, and the host of `public_url`.
fn self_signed_names(listen: SocketAddr, public_url: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    if let Some(host) = public_url.and_then(url_host) {
        names.push(host);
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// `https://h.example:8443/x` → `h.example`; `https://[::1]/` → `::1`.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogFile {
    format: Option<String>,
    level: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event; colour only on a terminal.
    #[default]
    Text,
    /// One JSON object per line, with the fields of every enclosing span (session, request,
    /// agent…) at the top level.
    Json,
}

/// `[log]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `info,russh=warn`, `airlock_gateway=debug`); `RUST_LOG`,
    /// when set, wins over it.
    pub level: String,
}

/// The filter when neither `[log] level` nor `RUST_LOG` says otherwise.
pub const DEFAULT_LOG_LEVEL: &str = "info,russh=warn";

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: DEFAULT_LOG_LEVEL.into(),
        }
    }
}

pub(super) fn log(f: &LogFile) -> Result<LogConfig, String> {
    let format = match f.format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(format!(
                "[log] format = {other:?}: expected \"text\" or \"json\""
            ));
        }
    };
    let level = match &f.level {
        None => DEFAULT_LOG_LEVEL.to_owned(),
        Some(l) => {
            tracing_subscriber::EnvFilter::builder()
                .parse(l)
                .map_err(|e| {
                    format!(
                        "[log] level = {l:?}: {e} (expected e.g. \"info\" or \"info,russh=warn\")"
                    )
                })?;
            l.clone()
        }
    };
    Ok(LogConfig { format, level })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_keys_go_together() {
        let dir = std::path::Path::new("/data");
        let listen: SocketAddr = "0.0.0.0:8443".parse().expect("addr");
        let t = |c: Option<&str>, k: Option<&str>, s: Option<bool>| {
            reviewer_tls(
                c.map(PathBuf::from),
                k.map(PathBuf::from),
                s,
                dir,
                listen,
                Some("https://Airlock.example.com:8443/"),
            )
        };
        assert_eq!(t(None, None, None), Ok(None));
        assert_eq!(t(None, None, Some(false)), Ok(None));
        assert!(matches!(
            t(Some("c.pem"), Some("k.pem"), None),
            Ok(Some(TlsSource::Files { .. }))
        ));
        assert!(t(Some("c.pem"), None, None).is_err_and(|e| e.contains("go together")));
        assert!(t(Some("c.pem"), Some("k.pem"), Some(true)).is_err());
        match t(None, None, Some(true)) {
            Ok(Some(TlsSource::SelfSigned { dir, names })) => {
                assert_eq!(dir, PathBuf::from("/data/reviewer-tls"));
                assert_eq!(
                    names,
                    ["localhost", "127.0.0.1", "::1", "airlock.example.com"]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(url_host("https://[::1]:8443/x").as_deref(), Some("::1"));
        assert_eq!(url_host("http://10.0.0.5").as_deref(), Some("10.0.0.5"));
        assert_eq!(url_host("nonsense"), None);
    }

    #[test]
    fn log_section() {
        let f = |format: Option<&str>, level: Option<&str>| {
            log(&LogFile {
                format: format.map(str::to_owned),
                level: level.map(str::to_owned),
            })
        };
        assert_eq!(f(None, None), Ok(LogConfig::default()));
        assert_eq!(
            f(Some("json"), Some("debug,russh=warn")),
            Ok(LogConfig {
                format: LogFormat::Json,
                level: "debug,russh=warn".into()
            })
        );
        assert!(f(Some("yaml"), None).is_err_and(|e| e.contains("[log] format")));
        assert!(f(None, Some("info,airlock=loud")).is_err_and(|e| e.contains("[log] level")));
    }
}
