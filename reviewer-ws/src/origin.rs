//! Which browser origins may use the reviewer listener: the guard against cross-site
//! WebSocket hijacking and cross-site POSTs.
//!
//! A browser page may talk to the listener only from the listener's own origin. Reached
//! directly, that is the request's `Host`; behind a reverse proxy that rewrites `Host`
//! (nginx's default is the upstream's address), the page's origin is the public one, so
//! `[reviewer] public_url` names it and is accepted as well. Requests without `Origin` are
//! not from a browser page (the terminal client, scripts) and pass; they prove themselves
//! with a bearer token, which a page on another site cannot read.

use axum::http::{HeaderMap, header};
use openidconnect::url::Url;

/// `scheme://host[:port]` of an http(s) URL, lower-case, the default port left out — the
/// form browsers send in `Origin`. `None` for anything else.
pub fn of(url: &str) -> Option<String> {
    let u = Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let origin = u.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// May a request carrying these headers act, given the public origin (see [`of`])?
pub(crate) fn allowed(headers: &HeaderMap, public: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true; // not a browser
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if public.is_some_and(|p| p.eq_ignore_ascii_case(origin.trim_end_matches('/'))) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("origin"));
        }
        h
    }

    #[test]
    fn public_origins_are_normalised() {
        assert_eq!(
            of("https://Airlock.Example.com:443/queue/").as_deref(),
            Some("https://airlock.example.com")
        );
        assert_eq!(
            of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(of("ftp://x"), None);
        assert_eq!(of("airlock.example.com"), None);
    }

    #[test]
    fn same_host_or_the_public_origin_only() {
        let public = of("https://airlock.example.com");
        let p = public.as_deref();
        // Direct: Origin matches Host.
        assert!(allowed(
            &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
            None
        ));
        // Behind a proxy that rewrote Host to the upstream: only public_url makes it pass.
        let proxied = headers(Some("https://airlock.example.com"), "127.0.0.1:8080");
        assert!(!allowed(&proxied, None));
        assert!(allowed(&proxied, p));
        // Another site, or the public host on another scheme or port, never passes.
        for o in [
            "https://evil.example",
            "http://airlock.example.com",
            "https://airlock.example.com:8443",
            "https://airlock.example.com.evil.example",
            "null",
        ] {
            assert!(!allowed(&headers(Some(o), "127.0.0.1:8080"), p), "{o}");
        }
        // No Origin: not a browser page.
        assert!(allowed(&headers(None, "127.0.0.1:8080"), p));
    }
}
