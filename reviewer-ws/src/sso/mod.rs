//! Single sign-on for the reviewer web page: OpenID Connect, authorization code + PKCE.
//!
//! Why: a team's reviewers already have accounts at an identity provider, with groups; a
//! reviewer token per person is one more secret to hand out and revoke. The provider says who
//! the user is (a configured claim, e.g. `preferred_username`) and which groups they hold (a
//! groups claim); the config's `[[reviewer_group]] oidc_groups` turn those into reviewer
//! groups. A user who maps to no reviewer group is refused at sign-in: single sign-on never
//! grants the unscoped access a group-less token reviewer has.
//!
//! What: `GET /auth/login` sends the browser to the provider, `GET /auth/callback` finishes
//! the login and opens a session, `POST /auth/logout` ends it, `GET /auth/me` says who is
//! signed in, `GET /auth/config` whether sign-in is offered. Logins in progress and sessions
//! are rows in the database (`Store::begin_reviewer_login`, `Store::open_reviewer_session`),
//! so every node of a cluster honours them; the browser holds only random secrets whose
//! hashes are stored. Reviewer tokens keep working beside it (terminal client, scripts).
//!
//! Cookies, and why each attribute:
//! - `airlock_session`: `HttpOnly` (no script reads it), `SameSite=Strict` (never sent on a
//!   request another site starts: no cross-site request can vote, read or log out),
//!   `Path=/`, `Max-Age` = the session lifetime, and `Secure` when the redirect URL is
//!   https (a browser does not store a `Secure` cookie from plain http, which the loopback
//!   tests use). The page itself needs no cookie: only its own scripts' requests do, and
//!   those are same-site, so Strict costs nothing after the provider's redirect.
//! - `airlock_login`: the login's `state`, `SameSite=Lax` because it must come back on the
//!   provider's top-level redirect to the callback (a cross-site navigation), `Path` the
//!   callback only, ten minutes. The callback requires it to equal the `state` parameter, so
//!   a callback URL made by someone else (login CSRF) signs nobody in.

mod provider;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use openidconnect::url::{Host, Url};

pub(crate) use provider::Provider;
pub(crate) use routes::routes;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "airlock_session";
/// The login-in-progress cookie's name.
const LOGIN_COOKIE: &str = "airlock_login";
/// Where the provider sends the browser back; `redirect_url` must end with it.
pub const CALLBACK_PATH: &str = "/auth/callback";
/// The longest session the config may ask for.
pub const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a started login may take at the provider.
const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// Logins in progress kept at once, over the whole cluster; beyond it the oldest give way
/// (each is a database row an unauthenticated client can make, so starts are never refused:
/// refusing would let a flood lock everyone out).
const MAX_LIVE_LOGINS: i64 = 10_000;

/// The `[reviewer.oidc]` settings, checked by [`OidcSettings::check`].
#[derive(Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL; its metadata is read from
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client (PKCE only).
    pub client_secret: Option<String>,
    /// `https://airlock.example/auth/callback`: this listener's callback as browsers reach it.
    pub redirect_url: String,
    /// The claim that names the reviewer: `preferred_username`, `email` (used only when the
    /// provider marks it verified), `sub`, or another string claim. It must be one users
    /// cannot choose freely.
    pub username_claim: String,
    /// The claim listing the user's groups (matched against `oidc_groups`).
    pub groups_claim: String,
    /// Scopes asked for; `openid` is always sent.
    pub scopes: Vec<String>,
    /// How long a browser session lasts (at most [`MAX_SESSION_LIFETIME`]).
    pub session_lifetime: Duration,
    /// The button's text: "Sign in with <display_name>".
    pub display_name: String,
}

impl std::fmt::Debug for OidcSettings {
    // By hand: the client secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("redirect_url", &self.redirect_url)
            .field("username_claim", &self.username_claim)
            .field("groups_claim", &self.groups_claim)
            .field("scopes", &self.scopes)
            .field("session_lifetime", &self.session_lifetime)
            .field("display_name", &self.display_name)
            .finish()
    }
}

impl OidcSettings {
    /// What makes the settings unusable, in words for the config error.
    pub fn check(&self) -> Result<(), String> {
        let url = |what: &str, v: &str| -> Result<Url, String> {
            let u = Url::parse(v).map_err(|e| format!("{what} {v:?}: {e}"))?;
            match u.scheme() {
                "https" => Ok(u),
                "http" if is_loopback(&u) => Ok(u),
                _ => Err(format!(
                    "{what} {v:?}: must be https (plain http only on a loopback address)"
                )),
            }
        };
        url("issuer", &self.issuer)?;
        let r = url("redirect_url", &self.redirect_url)?;
        if r.path() != CALLBACK_PATH || r.query().is_some() || r.fragment().is_some() {
            return Err(format!(
                "redirect_url {:?}: must be this listener's {CALLBACK_PATH} (e.g. https://airlock.example{CALLBACK_PATH})",
                self.redirect_url
            ));
        }
        if self.client_id.is_empty() {
            return Err("client_id is empty".into());
        }
        if self.username_claim.is_empty() || self.groups_claim.is_empty() {
            return Err("username_claim and groups_claim must not be empty".into());
        }
        if self.session_lifetime.is_zero() || self.session_lifetime > MAX_SESSION_LIFETIME {
            return Err(format!(
                "session_lifetime {}: must be more than 0 and at most {}",
                humantime::format_duration(self.session_lifetime),
                humantime::format_duration(MAX_SESSION_LIFETIME)
            ));
        }
        Ok(())
    }

    /// Whether cookies carry `Secure` (the page is served over https).
    fn secure(&self) -> bool {
        self.redirect_url.starts_with("https:")
    }
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(a)) => a.is_loopback(),
        Some(Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// Single sign-on as the listener holds it.
pub(crate) struct Sso {
    pub(crate) settings: Arc<OidcSettings>,
    pub(crate) provider: Provider,
    /// Refused sign-ins are audited at a bounded rate: anyone can hit the callback, and the
    /// ledger is permanent.
    pub(crate) refusals: std::sync::Mutex<RefusalBudget>,
}

/// How many refused sign-ins this node writes to the ledger per minute; beyond it they are
/// counted and one summary entry says how many were not written one by one.
pub(crate) const REFUSALS_PER_MINUTE: u32 = 30;

/// The current minute's refused sign-ins: written, and counted but not written.
#[derive(Debug, Default)]
pub(crate) struct RefusalBudget {
    pub(crate) minute_started: i64,
    pub(crate) written: u32,
    pub(crate) suppressed: u64,
}

impl RefusalBudget {
    /// Whether to write this refusal, and how many earlier ones went unwritten (to say once,
    /// in the next entry that is written).
    pub(crate) fn take(&mut self, now_ms: i64) -> Option<u64> {
        if now_ms - self.minute_started >= 60_000 {
            self.minute_started = now_ms;
            self.written = 0;
        }
        if self.written >= REFUSALS_PER_MINUTE {
            self.suppressed += 1;
            return None;
        }
        self.written += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Sso {
    pub(crate) fn new(settings: OidcSettings) -> Result<Self, String> {
        settings.check()?;
        let settings = Arc::new(settings);
        let provider = Provider::new(settings.clone()).map_err(|e| e.to_string())?;
        Ok(Self {
            settings,
            provider,
            refusals: std::sync::Mutex::default(),
        })
    }

    /// `Set-Cookie` for a new session.
    fn session_cookie(&self, id: &str) -> String {
        cookie(
            SESSION_COOKIE,
            id,
            "/",
            "Strict",
            self.settings.session_lifetime.as_secs(),
            self.settings.secure(),
        )
    }

    /// `Set-Cookie` that removes the session cookie.
    fn clear_session_cookie(&self) -> String {
        cookie(SESSION_COOKIE, "", "/", "Strict", 0, self.settings.secure())
    }

    fn login_cookie(&self, state: &str) -> String {
        cookie(
            LOGIN_COOKIE,
            state,
            CALLBACK_PATH,
            "Lax",
            LOGIN_TTL.as_secs(),
            self.settings.secure(),
        )
    }

    fn clear_login_cookie(&self) -> String {
        cookie(
            LOGIN_COOKIE,
            "",
            CALLBACK_PATH,
            "Lax",
            0,
            self.settings.secure(),
        )
    }
}

fn cookie(
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: u64,
    secure: bool,
) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` in the request, if sent (the first one, as browsers order the
/// most specific path first).
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: "https://id.example".into(),
            client_id: "airlock".into(),
            client_secret: None,
            redirect_url: "https://airlock.example/auth/callback".into(),
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            scopes: vec!["openid".into()],
            session_lifetime: Duration::from_secs(8 * 3600),
            display_name: "id.example".into(),
        }
    }

    #[test]
    fn session_cookie_is_http_only_strict_bounded_and_secure_on_https() {
        let sso = Sso::new(settings()).expect("valid");
        let c = sso.session_cookie("abc");
        assert_eq!(
            c,
            "airlock_session=abc; Path=/; Max-Age=28800; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(sso.clear_session_cookie().contains("Max-Age=0"));
        let l = sso.login_cookie("st");
        assert!(
            l.contains("Path=/auth/callback") && l.contains("SameSite=Lax"),
            "{l}"
        );
    }

    #[test]
    fn plain_http_is_for_loopback_only_and_then_not_secure() {
        let mut s = settings();
        s.redirect_url = "http://127.0.0.1:8080/auth/callback".into();
        s.issuer = "http://localhost:9000".into();
        let sso = Sso::new(s.clone()).expect("loopback http is fine");
        assert!(!sso.session_cookie("x").contains("Secure"));
        s.redirect_url = "http://airlock.example/auth/callback".into();
        assert!(s.check().is_err());
    }

    #[test]
    fn bad_settings_are_refused_in_words() {
        let mut s = settings();
        s.redirect_url = "https://airlock.example/callback".into();
        assert!(s.check().unwrap_err().contains("/auth/callback"));
        let mut s = settings();
        s.session_lifetime = Duration::from_secs(25 * 3600);
        assert!(s.check().unwrap_err().contains("session_lifetime"));
        let s = settings();
        assert!(
            !format!(
                "{:?}",
                OidcSettings {
                    client_secret: Some("hush".into()),
                    ..s
                }
            )
            .contains("hush")
        );
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "x_airlock_session=no; airlock_session=yes"
                .parse()
                .expect("hv"),
        );
        assert_eq!(cookie_value(&h, SESSION_COOKIE), Some("yes"));
        assert_eq!(cookie_value(&h, LOGIN_COOKIE), None);
    }

    #[test]
    fn refused_sign_ins_are_audited_at_a_bounded_rate_and_the_rest_counted() {
        let mut b = RefusalBudget::default();
        for _ in 0..REFUSALS_PER_MINUTE {
            assert_eq!(b.take(1_000), Some(0));
        }
        assert_eq!(b.take(2_000), None);
        assert_eq!(b.take(3_000), None);
        assert_eq!(
            b.take(61_000),
            Some(2),
            "the next minute says how many went unwritten"
        );
        assert_eq!(b.take(61_001), Some(0));
    }
}
