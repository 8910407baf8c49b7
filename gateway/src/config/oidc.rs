//! `[reviewer.oidc]`: single sign-on for the reviewer page through an OpenID provider.
//!
//! Parsed and checked here so `serve` (and `policy lint`) refuse a bad section at start with
//! the key that is wrong; the reviewer listener gets ready [`OidcSettings`]. The client
//! secret comes from a file (preferred: it stays out of the config, which is read by more
//! people) or inline, never both; the file must not be readable by group or others.

use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_reviewer_ws::OidcSettings;
use serde::Deserialize;

/// A string that never shows in `Debug` output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub(super) struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OidcFile {
    issuer: String,
    client_id: String,
    client_secret: Option<Secret>,
    pub(super) client_secret_file: Option<PathBuf>,
    /// Default: `[reviewer] public_url` + `/auth/callback`.
    redirect_url: Option<String>,
    username_claim: Option<String>,
    groups_claim: Option<String>,
    scopes: Option<Vec<String>>,
    session_lifetime: Option<String>,
    display_name: Option<String>,
}

const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];
const DEFAULT_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The checked settings; `Err` is the message for the config error. `rel` resolves a path
/// against the config file's directory; `public_url` is `[reviewer] public_url`, the one
/// source of the page's address: the redirect URL defaults to its callback and, when both
/// are set, must be on the same origin (else the sign-on cookie lands on another host).
pub(super) fn settings(
    f: &OidcFile,
    rel: impl Fn(PathBuf) -> PathBuf,
    public_url: Option<&str>,
) -> Result<OidcSettings, String> {
    let at = "[reviewer.oidc]";
    let redirect_url = match (&f.redirect_url, public_url) {
        (Some(r), None) => r.clone(),
        (None, Some(p)) => format!(
            "{}{}",
            p.trim_end_matches('/'),
            airlock_reviewer_ws::CALLBACK_PATH
        ),
        (None, None) => {
            return Err(format!(
                "{at}: set [reviewer] public_url (the page's address as browsers reach it) or redirect_url"
            ));
        }
        (Some(r), Some(p)) => {
            let origin = airlock_reviewer_ws::origin_of;
            if origin(r).is_none() || origin(r) != origin(p) {
                return Err(format!(
                    "{at}: redirect_url {r:?} is not on [reviewer] public_url {p:?}; drop redirect_url (it defaults to public_url + {})",
                    airlock_reviewer_ws::CALLBACK_PATH
                ));
            }
            r.clone()
        }
    };
    let client_secret = match (&f.client_secret, &f.client_secret_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{at}: set client_secret_file or client_secret, not both"
            ));
        }
        (Some(Secret(s)), None) => Some(s.clone()),
        (None, Some(p)) => Some(read_secret(&rel(p.clone())).map_err(|e| format!("{at}: {e}"))?),
        (None, None) => None,
    };
    let session_lifetime = match &f.session_lifetime {
        None => DEFAULT_LIFETIME,
        Some(t) => humantime::parse_duration(t)
            .map_err(|e| format!("{at}: session_lifetime {t:?}: {e}"))?,
    };
    let mut scopes: Vec<String> = f
        .scopes
        .clone()
        .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let display_name = match &f.display_name {
        Some(n) => n.clone(),
        None => issuer_host(&f.issuer),
    };
    let s = OidcSettings {
        issuer: f.issuer.clone(),
        client_id: f.client_id.clone(),
        client_secret,
        redirect_url,
        username_claim: f
            .username_claim
            .clone()
            .unwrap_or_else(|| "preferred_username".into()),
        groups_claim: f.groups_claim.clone().unwrap_or_else(|| "groups".into()),
        scopes,
        session_lifetime,
        display_name,
    };
    s.check().map_err(|e| format!("{at}: {e}"))?;
    Ok(s)
}

/// `https://id.example/realms/x` → `id.example`.
fn issuer_host(issuer: &str) -> String {
    let rest = issuer.split_once("://").map_or(issuer, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_owned()
}

fn read_secret(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("client_secret_file {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "client_secret_file {}: readable by others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("client_secret_file {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("client_secret_file {}: empty", path.display()));
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(extra: &str) -> OidcFile {
        let text = format!(
            "issuer = \"https://id.example/realms/ops\"\nclient_id = \"airlock\"\n\
             redirect_url = \"https://airlock.example/auth/callback\"\n{extra}"
        );
        toml::from_str(&text).expect("parses")
    }

    #[test]
    fn defaults_are_preferred_username_groups_and_eight_hours() {
        let s = settings(&file(""), |p| p, None).expect("valid");
        assert_eq!(s.username_claim, "preferred_username");
        assert_eq!(s.groups_claim, "groups");
        assert_eq!(s.scopes, ["openid", "profile", "email"]);
        assert_eq!(s.session_lifetime, Duration::from_secs(8 * 3600));
        assert_eq!(s.display_name, "id.example");
        assert_eq!(s.client_secret, None);
    }

    #[test]
    fn secret_from_a_private_file_not_both() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("secret");
        std::fs::write(&p, "s3cret\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let f = file("client_secret_file = \"secret\"");
        let base = dir.path().to_owned();
        let rel = |q: PathBuf| base.join(q);
        assert!(settings(&f, rel, None).unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let s = settings(&f, |q| dir.path().join(q), None).expect("valid");
        assert_eq!(s.client_secret.as_deref(), Some("s3cret"));
        let both = file("client_secret_file = \"secret\"\nclient_secret = \"x\"");
        assert!(
            settings(&both, |q| q, None)
                .unwrap_err()
                .contains("not both")
        );
        assert!(
            !format!("{both:?}").contains("\"x\""),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn the_section_reaches_the_config_and_a_bad_one_names_it() {
        let text = "[reviewer.oidc]\nissuer = \"https://id.example\"\nclient_id = \"airlock\"\n\
                    redirect_url = \"https://airlock.example/auth/callback\"\n";
        let c = super::super::Config::parse(text, Path::new("/etc/airlock/airlock.toml"))
            .expect("parses");
        assert_eq!(
            c.reviewer_oidc.map(|o| o.client_id),
            Some("airlock".to_owned())
        );
        let bad = text.replace("/auth/callback", "/cb");
        let e = super::super::Config::parse(&bad, Path::new("/etc/airlock/airlock.toml"))
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("[reviewer.oidc]") && e.contains("redirect_url"),
            "{e}"
        );
    }

    #[test]
    fn public_url_is_the_one_source_of_the_callback() {
        let mut f = file("");
        f.redirect_url = None;
        let s = settings(&f, |p| p, Some("https://airlock.example/")).expect("valid");
        assert_eq!(s.redirect_url, "https://airlock.example/auth/callback");
        assert!(
            settings(&f, |p| p, None)
                .unwrap_err()
                .contains("public_url")
        );
        // Both set, same origin: kept.
        let s = settings(&file(""), |p| p, Some("https://Airlock.example:443")).expect("valid");
        assert_eq!(s.redirect_url, "https://airlock.example/auth/callback");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = settings(&file("session_lifetime = \"48h\""), |p| p, None).unwrap_err();
        assert!(e.contains("session_lifetime"), "{e}");
        let mut f = file("");
        f.redirect_url = Some("https://airlock.example/login".into());
        assert!(
            settings(&f, |p| p, None)
                .unwrap_err()
                .contains("/auth/callback")
        );
        let e = settings(&f, |p| p, Some("https://other.example")).unwrap_err();
        assert!(e.contains("public_url"), "{e}");
        let e = toml::from_str::<OidcFile>(
            "issuer = \"x\"\nclient_id = \"y\"\nredirect_url = \"z\"\ntypo = 1",
        )
        .expect_err("unknown key");
        assert!(e.to_string().contains("typo"), "{e}");
    }
}
