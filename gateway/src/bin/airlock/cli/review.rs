//! `airlock review`: where the reviewer token comes from. Never from the command line, where
//! `ps` and shell history would show it: `AIRLOCK_TOKEN`, or a file only its owner can read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The token from `--token-file FILE` or, without one, from `AIRLOCK_TOKEN`.
pub fn token(file: Option<&Path>) -> Result<String> {
    if let Some(path) = file {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("--token-file {}: cannot read it", path.display()))?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "--token-file {}: readable by others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--token-file {}: cannot read it", path.display()))?;
        let token = text.trim();
        if token.is_empty() || token.lines().count() != 1 {
            bail!(
                "--token-file {}: expected one line holding the token `airlock reviewer add` printed",
                path.display()
            );
        }
        return Ok(token.to_owned());
    }
    match std::env::var("AIRLOCK_TOKEN") {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => bail!(
            "airlock review needs a reviewer token: set AIRLOCK_TOKEN (e.g. `read -rs AIRLOCK_TOKEN; export AIRLOCK_TOKEN`) \
             or pass --token-file FILE (mode 600). A token on the command line would show in `ps`."
        ),
    }
}

/// Where to connect and which certificates to trust: `--url`/`--ca` when given; else the
/// config's listener (`wss://` when it has TLS; `0.0.0.0`/`::` reached on loopback) and, for
/// a self-signed listener, its own certificate.
pub fn endpoint(
    config: &airlock_gateway::config::Config,
    url: Option<String>,
    ca: Option<std::path::PathBuf>,
) -> (String, Option<std::path::PathBuf>) {
    use airlock_reviewer_ws::TlsSource;
    let mut at = config.reviewer_listen;
    if at.ip().is_unspecified() {
        at.set_ip(if at.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let url = url.unwrap_or_else(|| match config.reviewer_tls {
        Some(_) => format!("wss://{at}/ws"),
        None => format!("ws://{at}/ws"),
    });
    let ca = ca.or_else(|| match &config.reviewer_tls {
        Some(TlsSource::SelfSigned { dir, .. }) => {
            Some(dir.join(airlock_reviewer_ws::tls::SELF_SIGNED_CERT))
        }
        _ => None,
    });
    (url, ca)
}
