//! Single sign-on for the reviewer page against a real OpenID provider: node-oidc-provider
//! (`tests/sso/provider.mjs`, pinned) on a free loopback port, signed in to through its real
//! login form in Debian's Chromium (`tests/sso/signin.mjs`, playwright-core). scripts/test.sh
//! installs both. The gateway is the real binary with `[reviewer.oidc]`; the agent is real
//! `ssh`; effects are canary files that must (or must not) appear.
//!
//! The cast: carol's provider groups include `db-admins`, which the `dba` reviewer group
//! takes (`oidc_groups`), scoped to `db-*` targets; dave's groups map to no reviewer group.

mod harness;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use harness::{Gateway, Opts, finish, free_port};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "airlock-test-client-secret";

fn sso_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/sso")
}

fn chromium() -> String {
    std::env::var("AIRLOCK_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn artefact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir.join(name)
}

/// The identity provider, killed when dropped.
struct Provider {
    _child: tokio::process::Child,
    issuer: String,
}

impl Provider {
    async fn start(redirect: &str) -> Self {
        assert!(
            sso_dir().join("node_modules/oidc-provider").exists(),
            "oidc-provider missing: run scripts/test.sh, which installs it"
        );
        let port = free_port();
        let mut child = tokio::process::Command::new("node")
            .arg(sso_dir().join("provider.mjs"))
            .env("AIRLOCK_OP_PORT", port.to_string())
            .env("AIRLOCK_OP_REDIRECT", redirect)
            .env("AIRLOCK_OP_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("provider starts within 30 s")
            .expect("read")
            .expect("a line");
        let issuer = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected provider line {line:?}"))
            .to_owned();
        // Keep reading what it prints: a closed pipe would kill it at its next line.
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                eprintln!("provider: {l}");
            }
        });
        Provider {
            _child: child,
            issuer,
        }
    }
}

/// Targets, and the one reviewer group single sign-on can land in.
const GROUPS: &str = r#"
[[target]]
name = "db-main"
kind = "local"
[[target]]
name = "web-1"
kind = "local"
[[reviewer_group]]
name = "dba"
oidc_groups = ["db-admins"]
scope = { targets = ["db-*"] }
"#;

/// A gateway whose page signs in through `op`, on `port` (the provider's redirect target).
async fn gateway(op: &Provider, port: u16, secrets: &tempfile::TempDir, postgres: bool) -> Gateway {
    let secret = secrets.path().join("oidc-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("write secret");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Gateway::start(Opts {
        reviewer_port: Some(port),
        postgres,
        reviewer_extra: format!(
            "[reviewer.oidc]\nissuer = {issuer:?}\nclient_id = \"airlock\"\n\
             client_secret_file = {secret:?}\nredirect_url = \"http://127.0.0.1:{port}/auth/callback\"\n\
             scopes = [\"openid\", \"profile\", \"email\", \"groups\"]\ndisplay_name = \"Test IdP\"\n\
             session_lifetime = \"1h\"\n",
            issuer = op.issuer,
            secret = secret.display().to_string(),
        ),
        extra: GROUPS.into(),
        more_targets: vec!["db-main".into(), "web-1".into()],
        ..Opts::default()
    })
    .await
}

async fn with_provider(postgres: bool) -> (Provider, Gateway, tempfile::TempDir) {
    let port = free_port();
    let op = Provider::start(&format!("http://127.0.0.1:{port}/auth/callback")).await;
    let secrets = tempfile::tempdir().expect("tempdir");
    let gw = gateway(&op, port, &secrets, postgres).await;
    (op, gw, secrets)
}

fn page_url(gw: &Gateway) -> String {
    gw.ws_url
        .replace("ws://", "http://")
        .trim_end_matches("/ws")
        .to_owned()
        + "/"
}

/// Sign in as `user` in Chromium (and approve the card showing `approve`, if given).
async fn browser(gw: &Gateway, user: &str, approve: Option<&str>, name: &str) -> Value {
    assert!(
        std::path::Path::new(&chromium()).exists()
            && sso_dir().join("node_modules/playwright-core").exists(),
        "chromium or playwright-core missing: run scripts/test.sh, which installs both"
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(sso_dir().join("signin.mjs"))
        .env("AIRLOCK_URL", page_url(gw))
        .env("AIRLOCK_USER", user)
        .env("AIRLOCK_CHROMIUM", chromium())
        .env("AIRLOCK_FAILSHOT", artefact(&format!("{name}-failed.png")))
        .kill_on_drop(true);
    if let Some(a) = approve {
        cmd.env("AIRLOCK_APPROVE", a);
    }
    let out = tokio::time::timeout(Duration::from_secs(150), cmd.output())
        .await
        .expect("browser run within 150 s")
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "driver printed no JSON:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success(),
        "browser run failed: {seen:#}\n{}",
        gw.log()
    );
    seen
}

/// One raw HTTP/1.1 request to the reviewer listener: (status, head, body).
async fn http(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let addr = gw
        .ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// A WebSocket upgrade carrying `cookie`: the socket after its hello, or the refusal status.
async fn cookie_socket(
    gw: &Gateway,
    cookie: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    let mut req = gw.ws_url.as_str().into_client_request().expect("request");
    req.headers_mut()
        .insert("Cookie", cookie.parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("upgrade failed oddly: {e}"),
    }
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    kind: &str,
) -> Value {
    for _ in 0..100 {
        let frame = tokio::time::timeout(harness::WAIT, ws.next())
            .await
            .expect("message in time");
        if let Some(Ok(Message::Text(t))) = frame {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == kind {
                return v;
            }
        } else if !matches!(frame, Some(Ok(_))) {
            panic!("socket ended: {frame:?}");
        }
    }
    panic!("no {kind} message");
}

/// The ledger as exported, one JSON object per entry.
fn ledger(gw: &Gateway) -> Vec<Value> {
    let out = gw.cli(&["ledger", "export"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "entry")
        .collect()
}

fn agent(gw: &Gateway, target: &str, cmd: &str) -> tokio::process::Child {
    let mut c = gw.ssh_cmd(&gw.agent_key, target);
    c.arg("127.0.0.1").arg(cmd);
    c.spawn().expect("ssh")
}

#[tokio::test]
async fn a_signed_in_dba_sees_only_database_requests_and_approves_one() {
    let (_op, gw, _secrets) = with_provider(false).await;
    // An unscoped token reviewer watches both requests arrive (and denies the other later).
    let mut watch = gw.reviewer("watcher").await;
    let db_canary = gw.path("db-ran");
    let web_canary = gw.path("web-ran");
    let db_cmd = format!("touch {}", db_canary.display());
    let web_cmd = format!("touch {}", web_canary.display());
    let db = agent(&gw, "db-main", &db_cmd);
    let web = agent(&gw, "web-1", &web_cmd);
    let mut web_id = String::new();
    for _ in 0..2 {
        let r = watch.next_of("request").await;
        if r["target"] == "web-1" {
            web_id = r["id"].as_str().expect("id").to_owned();
        }
    }
    assert!(!web_id.is_empty(), "the web-1 request is pending");

    let seen = browser(
        &gw,
        "carol",
        Some(db_canary.to_str().expect("utf8")),
        "sso-carol",
    )
    .await;

    let (code, _, err) = finish(db).await;
    assert_eq!(code, 0, "the approved command ran: {err}");
    assert!(db_canary.exists(), "the approved command ran");
    assert_eq!(seen["button"], "Sign in with Test IdP", "{seen:#}");
    assert_eq!(seen["who"], "signed in as carol", "{seen:#}");
    let cards: Vec<String> = serde_json::from_value(seen["cards"].clone()).expect("cards");
    assert_eq!(
        cards,
        vec![db_cmd.clone()],
        "only the in-scope request is shown: {seen:#}"
    );
    assert_eq!(
        seen["api_history"], 200,
        "the read API takes the session: {seen:#}"
    );
    let cookie = &seen["session_cookie"];
    assert_eq!(cookie["httpOnly"], true, "{seen:#}");
    assert_eq!(cookie["sameSite"], "Strict", "{seen:#}");
    assert_eq!(
        cookie["secure"], false,
        "plain http on loopback: no Secure: {seen:#}"
    );
    assert_eq!(cookie["path"], "/", "{seen:#}");
    let left = cookie["session_length_s"].as_i64().unwrap_or(0);
    assert!(
        (3500..=3600).contains(&left),
        "Max-Age is the configured hour: {seen:#}"
    );
    assert_eq!(
        seen["me_after_signout"], 401,
        "signing out ends the session: {seen:#}"
    );

    // The out-of-scope request was never shown to carol and is still the watcher's to decide.
    let ack = watch.decide(&web_id, "deny").await;
    assert_eq!(ack["result"], "denied", "{ack}");
    let (code, _, _) = finish(web).await;
    assert_eq!(code, 77);
    assert!(!web_canary.exists());

    let entries = ledger(&gw);
    let sign_in = entries
        .iter()
        .find(|e| e["kind"] == "reviewer.sign_in")
        .expect("a sign-in entry");
    assert_eq!(sign_in["payload"]["reviewer"], "carol");
    assert_eq!(sign_in["payload"]["groups"], json!(["dba"]));
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "request.vote" && e["payload"]["reviewer"] == "carol"),
        "carol's vote is in the ledger"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "reviewer.sign_out" && e["payload"]["reviewer"] == "carol"),
        "so is her sign-out"
    );
}

#[tokio::test]
async fn a_user_whose_groups_map_to_no_reviewer_group_cannot_sign_in_or_vote() {
    let (_op, gw, _secrets) = with_provider(false).await;
    let mut watch = gw.reviewer("watcher").await;
    let canary = gw.path("db-ran");
    let db = agent(&gw, "db-main", &format!("touch {}", canary.display()));
    let id = watch.next_of("request").await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let seen = browser(&gw, "dave", None, "sso-dave").await;
    let message = seen["message"].as_str().unwrap_or("");
    assert!(
        message.contains("your account is not in any Airlock reviewer group"),
        "{seen:#}"
    );
    assert_eq!(seen["session_cookie"], Value::Null, "no session: {seen:#}");
    assert_eq!(seen["me"], 401, "{seen:#}");

    // Forged or absent cookies get nothing anywhere.
    for cookie in [
        "airlock_session=alr_0000000000000000000000000000000000000000000000000000000000000000",
        "",
    ] {
        let h: Vec<(&str, &str)> = if cookie.is_empty() {
            vec![]
        } else {
            vec![("Cookie", cookie)]
        };
        assert_eq!(http(&gw, "GET", "/auth/me", &h).await.0, 401, "{cookie}");
        assert_eq!(
            http(&gw, "GET", "/api/history", &h).await.0,
            401,
            "{cookie}"
        );
    }
    assert_eq!(
        cookie_socket(&gw, "airlock_session=forged").await.err(),
        Some(401),
        "a forged cookie opens no socket"
    );

    let refused = ledger(&gw)
        .into_iter()
        .find(|e| e["kind"] == "reviewer.sign_in_refused")
        .expect("the refusal is audited");
    assert_eq!(refused["payload"]["reviewer"], "dave");
    assert_eq!(refused["payload"]["code"], "no_group");
    assert!(!canary.exists(), "nothing ran");
    let ack = watch.decide(&id, "deny").await;
    assert_eq!(ack["result"], "denied", "{ack}");
    let (code, _, _) = finish(db).await;
    assert_eq!(code, 77);
}

/// A session row as a sign-in makes it, without the browser: the cookie value.
async fn session_for(gw: &Gateway, name: &str, groups: &[&str], expires_in_ms: i64) -> String {
    let store = airlock_approvals::Store::connect(&gw.db_url)
        .await
        .expect("store");
    let now = airlock_approvals::now_ms();
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    store
        .open_reviewer_session(name, &groups, now, now + expires_in_ms)
        .await
        .expect("session")
}

#[tokio::test]
async fn logout_ends_the_session_for_the_socket_and_the_api_and_expired_sessions_are_refused() {
    logout_and_expiry(false).await;
}

/// The same on PostgreSQL, the cluster database (the sessions table is shared by nodes).
#[tokio::test]
async fn logout_and_expiry_hold_on_postgres_too() {
    if harness::pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set");
        return;
    }
    logout_and_expiry(true).await;
}

async fn logout_and_expiry(postgres: bool) {
    let (_op, gw, _secrets) = with_provider(postgres).await;
    let (status, _, body) = http(&gw, "GET", "/auth/config", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"provider\":\"Test IdP\""), "{body}");

    let id = session_for(&gw, "carol", &["db-admins"], 3_600_000).await;
    let cookie = format!("airlock_session={id}");
    let (status, _, body) = http(&gw, "GET", "/auth/me", &[("Cookie", &cookie)]).await;
    assert_eq!(status, 200, "{body}");
    let me: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(me["name"], "carol");
    assert_eq!(me["groups"], json!(["dba"]));
    assert_eq!(me["via"], "session");

    // The upgrade carries the cookie; no auth frame is needed.
    let mut ws = cookie_socket(&gw, &cookie).await.expect("socket");
    let hello = next_json(&mut ws, "hello").await;
    assert_eq!(hello["reviewer"], "carol", "{hello}");
    let canary = gw.path("db-ran");
    let db = agent(&gw, "db-main", &format!("touch {}", canary.display()));
    let req = next_json(&mut ws, "request").await;

    // Logout from another origin is refused and changes nothing.
    let (status, _, _) = http(
        &gw,
        "POST",
        "/auth/logout",
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        http(&gw, "GET", "/auth/me", &[("Cookie", &cookie)]).await.0,
        200
    );

    let (status, head, _) = http(&gw, "POST", "/auth/logout", &[("Cookie", &cookie)]).await;
    assert_eq!(status, 204);
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: airlock_session=; path=/; max-age=0; httponly; samesite=strict"),
        "the cookie is cleared: {head}"
    );
    // The open socket loses its vote; the API and new sockets refuse the cookie.
    ws.send(Message::Text(
        json!({"type": "decide", "id": req["id"], "decision": "approve"})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    let err = next_json(&mut ws, "error").await;
    assert_eq!(err["code"], "bad_token", "{err}");
    assert_eq!(
        http(&gw, "GET", "/api/history", &[("Cookie", &cookie)])
            .await
            .0,
        401
    );
    assert_eq!(
        http(&gw, "GET", "/auth/me", &[("Cookie", &cookie)]).await.0,
        401
    );
    assert_eq!(cookie_socket(&gw, &cookie).await.err(), Some(401));

    // An expired session is refused everywhere.
    let old = format!(
        "airlock_session={}",
        session_for(&gw, "carol", &["db-admins"], -1).await
    );
    assert_eq!(
        http(&gw, "GET", "/auth/me", &[("Cookie", &old)]).await.0,
        401
    );
    assert_eq!(
        http(&gw, "GET", "/api/history", &[("Cookie", &old)])
            .await
            .0,
        401
    );
    assert_eq!(cookie_socket(&gw, &old).await.err(), Some(401));
    // So is a session whose groups claim no longer maps to any reviewer group.
    let nogroup = format!(
        "airlock_session={}",
        session_for(&gw, "dave", &["marketing"], 3_600_000).await
    );
    assert_eq!(
        http(&gw, "GET", "/auth/me", &[("Cookie", &nogroup)])
            .await
            .0,
        401
    );

    assert!(!canary.exists(), "no vote counted after logout");
    drop(db);
}
