//! The reviewer listener's read API and page headers: a token on every call, recordings named
//! only by session id, a strict Content-Security-Policy on the page.

mod harness;

use harness::{Gateway, Opts};

#[tokio::test]
async fn the_api_wants_a_token_and_serves_only_recordings() {
    let gw = Gateway::start(Opts::default()).await;
    let token = gw.add_reviewer("alice");
    let page = gw.http_get("/", None).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    assert!(page.to_ascii_lowercase().contains("x-frame-options: deny"));
    for path in [
        "/api/history",
        "/api/sessions",
        "/api/sessions/ab/recording",
    ] {
        assert!(
            gw.http_get(path, None).await.starts_with("HTTP/1.1 401"),
            "{path}"
        );
        assert!(
            gw.http_get(path, Some("wrong"))
                .await
                .starts_with("HTTP/1.1 401"),
            "{path}"
        );
    }
    let (code, _, _) = gw.exec("echo hello-api").await;
    assert_eq!(code, 0);
    let sessions = gw.http_get("/api/sessions", Some(&token)).await;
    assert!(
        sessions.starts_with("HTTP/1.1 200") && sessions.contains("echo hello-api"),
        "{sessions}"
    );
    let id = sessions
        .split("\"id\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a session id")
        .to_owned();
    let cast = gw
        .http_get(&format!("/api/sessions/{id}/recording"), Some(&token))
        .await;
    assert!(
        cast.starts_with("HTTP/1.1 200") && cast.contains("hello-api"),
        "{cast}"
    );
    let screen = gw
        .http_get(&format!("/api/sessions/{id}/screen"), Some(&token))
        .await;
    assert!(screen.contains("hello-api"), "{screen}");
    // Only hex session ids name files: no way out of the recordings directory.
    for bad in ["..%2F..%2Fetc%2Fpasswd", "a.b", "zz"] {
        let r = gw
            .http_get(&format!("/api/sessions/{bad}/recording"), Some(&token))
            .await;
        assert!(r.starts_with("HTTP/1.1 400"), "{bad}: {r}");
    }
    let missing = gw
        .http_get("/api/sessions/abcdef/recording", Some(&token))
        .await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}
