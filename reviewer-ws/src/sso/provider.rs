//! Talking to the identity provider: discovery, the authorization URL, the code exchange and
//! what the provider says about the user.
//!
//! Everything cryptographic is the `openidconnect` crate's: it discovers the provider's
//! metadata and keys from the issuer, builds the authorization request (PKCE S256, nonce,
//! state) and validates the ID token (signature against the provider's keys, issuer,
//! audience, expiry, nonce). This file only picks the two claims Airlock needs — the name and
//! the groups — from the validated token, or from the userinfo endpoint (whose answer the
//! crate checks is about the same subject) when the token does not carry them.
//!
//! Its HTTP goes through the workspace's `reqwest` (rustls), with redirects off (a provider
//! that redirects its token endpoint is refused, not followed) and a timeout on every call.
//! The metadata and keys are re-read every [`METADATA_TTL`], so a provider's key rotation is
//! picked up without a restart.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AsyncHttpClient, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IdTokenFields, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse, StandardTokenResponse,
    TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::OidcSettings;

/// How long discovered metadata and keys are used before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(10 * 60);
/// Every call to the provider: connect, send, answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A provider's answer larger than this is refused (metadata, keys, tokens are kilobytes).
const MAX_ANSWER: usize = 1024 * 1024;

/// Claims beyond the standard ones, kept as JSON: the groups claim (or a custom name claim)
/// is read from here by its configured name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Extra(#[serde(default)] Map<String, Value>);
impl AdditionalClaims for Extra {}

type Tokens = StandardTokenResponse<
    IdTokenFields<
        Extra,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

type OidcClient = Client<
    Extra,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why talking to the provider did not yield a user. Shown to the user (no secrets in it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProviderError {
    #[error("cannot read the identity provider's configuration: {0}")]
    Discovery(String),
    #[error("the identity provider did not accept the sign-in: {0}")]
    Exchange(String),
    #[error("the identity provider's answer has no ID token")]
    NoIdToken,
    #[error("the ID token is not valid: {0}")]
    BadToken(String),
    #[error("the identity provider's userinfo answer is not usable: {0}")]
    UserInfo(String),
    #[error(
        "the groups claim has {0} values; at most {MAX_GROUPS} are read, so it was refused rather than cut"
    )]
    TooManyGroups(usize),
}

/// An HTTP error from the adapter below.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Reqwest(#[from] reqwest::Error),
    #[error("answer larger than {MAX_ANSWER} bytes")]
    TooLarge,
    #[error("{0}")]
    Http(#[from] openidconnect::http::Error),
}

/// `reqwest` as the crate's HTTP client.
#[derive(Clone)]
pub(crate) struct Http(reqwest::Client);

impl Http {
    fn new() -> Result<Self, ProviderError> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(CALL_TIMEOUT)
            .build()
            .map(Http)
            .map_err(|e| ProviderError::Discovery(e.to_string()))
    }

    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let mut out = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let mut answer = openidconnect::http::Response::builder().status(out.status());
        for (k, v) in out.headers() {
            answer = answer.header(k, v);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = out.chunk().await? {
            if bytes.len() + chunk.len() > MAX_ANSWER {
                return Err(HttpError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(answer.body(bytes)?)
    }
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(Http::call(self, request))
    }
}

/// What a new login sends the browser to, and what must be kept to finish it.
pub(crate) struct Authorize {
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) pkce_verifier: String,
    pub(crate) nonce: String,
}

/// The user as the provider vouched for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    /// `None`: the configured name claim was missing, empty or unverified.
    pub(crate) name: Option<String>,
    pub(crate) groups: Vec<String>,
}

/// The provider, discovered on first use and re-discovered every [`METADATA_TTL`].
pub(crate) struct Provider {
    settings: Arc<OidcSettings>,
    http: Http,
    /// One discovery at a time; a tokio mutex because it is held across the fetch.
    cached: Mutex<Option<(Instant, Arc<OidcClient>)>>,
}

impl Provider {
    pub(crate) fn new(settings: Arc<OidcSettings>) -> Result<Self, ProviderError> {
        Ok(Self {
            settings,
            http: Http::new()?,
            cached: Mutex::new(None),
        })
    }

    async fn client(&self) -> Result<Arc<OidcClient>, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, c)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(c.clone());
        }
        let s = &self.settings;
        let issuer = IssuerUrl::new(s.issuer.clone())
            .map_err(|e| ProviderError::Discovery(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| ProviderError::Discovery(error_chain(&e)))?;
        let redirect = RedirectUrl::new(s.redirect_url.clone())
            .map_err(|e| ProviderError::Discovery(e.to_string()))?;
        let client: OidcClient = Client::from_provider_metadata(
            metadata,
            ClientId::new(s.client_id.clone()),
            s.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        let client = Arc::new(client);
        *cached = Some((Instant::now(), client.clone()));
        Ok(client)
    }

    /// A fresh authorization request: code flow, PKCE (S256), random state and nonce.
    pub(crate) async fn authorize(&self) -> Result<Authorize, ProviderError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.settings.scopes {
            if scope != "openid" {
                req = req.add_scope(Scope::new(scope.clone()));
            }
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        Ok(Authorize {
            url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Exchange `code` (with the login's PKCE verifier), validate the ID token against the
    /// login's nonce, and read the user's name and groups.
    pub(crate) async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<User, ProviderError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ProviderError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Exchange(error_chain(&e)))?;
        let id_token = tokens.id_token().ok_or(ProviderError::NoIdToken)?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce))
            .map_err(|e| ProviderError::BadToken(error_chain(&e)))?;
        let s = &self.settings;
        let from_token = Claims {
            sub: claims.subject().as_str(),
            preferred_username: claims.preferred_username().map(|u| u.as_str()),
            email: claims.email().map(|e| e.as_str()),
            email_verified: claims.email_verified(),
            extra: &claims.additional_claims().0,
        };
        let mut user = User {
            name: from_token.name(&s.username_claim),
            groups: from_token.groups(&s.groups_claim)?,
        };
        let incomplete = user.name.is_none() || !from_token.has(&s.groups_claim);
        if incomplete && let Ok(request) = client.user_info(tokens.access_token().clone(), None) {
            // The crate checks the answer's `sub` against the ID token's.
            let info: UserInfoClaims<Extra, CoreGenderClaim> = request
                .require_signed_response(false)
                .request_async(&self.http)
                .await
                .map_err(|e| ProviderError::UserInfo(error_chain(&e)))?;
            if info.subject() != claims.subject() {
                return Err(ProviderError::UserInfo("it names another subject".into()));
            }
            let from_info = Claims {
                sub: info.subject().as_str(),
                preferred_username: info.preferred_username().map(|u| u.as_str()),
                email: info.email().map(|e| e.as_str()),
                email_verified: info.email_verified(),
                extra: &info.additional_claims().0,
            };
            user.name = user.name.or_else(|| from_info.name(&s.username_claim));
            if !from_token.has(&s.groups_claim) {
                user.groups = from_info.groups(&s.groups_claim)?;
            }
        }
        Ok(user)
    }
}

/// Claims from one source (the ID token, or userinfo).
struct Claims<'a> {
    sub: &'a str,
    preferred_username: Option<&'a str>,
    email: Option<&'a str>,
    email_verified: Option<bool>,
    extra: &'a Map<String, Value>,
}

impl Claims<'_> {
    fn has(&self, claim: &str) -> bool {
        self.extra.contains_key(claim)
    }

    /// The configured name claim; `email` only when the provider says it is verified.
    fn name(&self, claim: &str) -> Option<String> {
        let v = match claim {
            "preferred_username" => self.preferred_username,
            "email" => self.email.filter(|_| self.email_verified == Some(true)),
            "sub" => Some(self.sub),
            other => self.extra.get(other).and_then(Value::as_str),
        };
        // Lower-cased: one person, one name, whatever case the provider sends (names are
        // compared exactly elsewhere: the agent's own name, its owner, a quorum's places).
        v.map(str::to_ascii_lowercase).filter(|n| valid_name(n))
    }

    /// The groups claim: an array of strings (non-strings are ignored), or one string.
    /// More values than [`MAX_GROUPS`] refuse the sign-in: cutting the list could drop the
    /// very group that maps to a reviewer group, and would misstate the user's groups.
    fn groups(&self, claim: &str) -> Result<Vec<String>, ProviderError> {
        Ok(match self.extra.get(claim) {
            Some(Value::Array(a)) if a.len() > MAX_GROUPS => {
                return Err(ProviderError::TooManyGroups(a.len()));
            }
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(g)) => vec![g.clone()],
            _ => Vec::new(),
        })
    }
}

/// Most values a groups claim may have (the session row stays small).
const MAX_GROUPS: usize = 1024;

/// A reviewer name from a provider (after lower-casing): 1-128 characters of `a-z`, `0-9`,
/// `.`, `_`, `-`, `@`, `+`. Nothing invisible, no look-alike letters, no case twins: a name
/// that only looks like `claude` or `alice` could otherwise approve what `claude` or `alice`
/// may not (its own agent's requests, a second place in a quorum).
pub(crate) fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+')
        })
}

/// An error and its sources in one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_visible_and_bounded() {
        assert!(valid_name("carol"));
        assert!(valid_name("carol@example.com"));
        assert!(!valid_name(""));
        assert!(!valid_name("car ol"));
        assert!(!valid_name("carol\u{7}"));
        assert!(!valid_name(&"x".repeat(129)));
        for twin in [
            "Claude",
            "claude\u{200b}",
            "cl\u{202e}aude",
            "\u{0441}laude",
            "ｃlaude",
        ] {
            assert!(!valid_name(twin), "{twin:?}");
        }
    }
}
