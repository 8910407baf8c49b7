//! TLS on the reviewer listener, end to end: clients that verify the certificate (curl, the
//! Python `websockets` library, Chromium), HSTS, reload on SIGHUP, the self-signed
//! certificate and its fingerprint in the banner, handshakes bounded like headers, the
//! warning for plain HTTP beyond loopback, and (in `proxy`) a real nginx in front.

#[path = "web/driver.rs"]
#[allow(dead_code)]
mod driver;
mod harness;
#[path = "tls/proxy.rs"]
mod proxy;
#[path = "tls/serve.rs"]
mod serve;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::{BIN, Gateway, Opts, WAIT, finish};
use serve::Serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A certificate authority and a server certificate it signed for 127.0.0.1 and localhost.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).expect("pki dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Airlock test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&d, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=airlock test server",
    ]);
    openssl(&d, &csr);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    openssl(
        &d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
        ],
    );
    Pki {
        ca: d.join("ca.pem"),
        cert: d.join("server.pem"),
        key: d.join("server.key"),
    }
}

/// Put `pki`'s certificate and key where the gateway reads them (key mode 600).
fn install(pki: &Pki, cert: &Path, key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(&pki.cert, cert).expect("copy cert");
    std::fs::copy(&pki.key, key).expect("copy key");
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// `openssl x509 -fingerprint -sha256` of a PEM certificate: `AB:CD:…`.
fn fingerprint(cert: &Path) -> String {
    let out = openssl(
        Path::new("."),
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            cert.to_str().expect("utf8"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .rsplit('=')
        .next()
        .expect("fingerprint")
        .to_owned()
}

/// Base64 SHA-256 of a certificate's public key (what Chromium's SPKI pin list takes).
fn spki_pin(cert: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -in \"$0\" -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64 -A",
        )
        .arg(cert)
        .output()
        .expect("sh");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// curl with a bound on time; `-sS -D -` so headers come first in stdout.
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-", "-o", "/dev/null"])
        .args(args)
        .output()
        .expect("curl runs (scripts/test.sh installs it)")
}

fn reviewer_addr(gw: &Gateway) -> String {
    gw.ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned()
}

fn python() -> String {
    std::env::var("AIRLOCK_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/../target/asciinema-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

fn tls_opts(dir: &Path, extra: &str) -> (Opts, PathBuf, PathBuf) {
    let (cert, key) = (dir.join("live.pem"), dir.join("live.key"));
    let opts = Opts {
        reviewer_extra: format!(
            "tls_cert = {:?}\ntls_key = {:?}\n{extra}",
            cert.display().to_string(),
            key.display().to_string()
        ),
        ..Opts::default()
    };
    (opts, cert, key)
}

/// Wait (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_verifying_client_gets_wss_hsts_and_the_reloaded_certificate() {
    let pkis = tempfile::tempdir().expect("tempdir");
    let (one, two) = (make_pki(pkis.path(), "one"), make_pki(pkis.path(), "two"));
    let (opts, cert, key) = tls_opts(pkis.path(), "");
    install(&one, &cert, &key);
    let gw = Gateway::start(opts).await;
    let addr = reviewer_addr(&gw);
    let https = format!("https://{addr}/healthz");
    let ca_one = one.ca.to_str().expect("utf8");
    let ca_two = two.ca.to_str().expect("utf8");

    // HTTPS that verifies the chain and the name (IP SAN 127.0.0.1), with HSTS.
    let ok = curl(&["--cacert", ca_one, &https]);
    let head = String::from_utf8_lossy(&ok.stdout).to_ascii_lowercase();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    // Another CA's client refuses it (curl: 60, peer certificate cannot be authenticated),
    // and plain HTTP on the TLS port gets no answer.
    let refused = curl(&["--cacert", ca_two, &https]);
    assert_eq!(refused.status.code(), Some(60), "{refused:?}");
    let plain = curl(&[&format!("http://{addr}/healthz")]);
    assert!(!plain.status.success(), "{plain:?}");
    assert!(
        !gw.log().contains("without TLS"),
        "no warning on loopback with TLS"
    );

    // A reviewer over WSS (Python websockets, verifying) approves a command; it runs.
    let token = gw.add_reviewer("alice");
    let mut py = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/tls/wss.py"))
        .env("AIRLOCK_URL", format!("wss://{addr}/ws"))
        .env("AIRLOCK_CA", &one.ca)
        .env("AIRLOCK_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python with websockets (scripts/test.sh installs it)");
    let lines = read_lines(py.stdout.take().expect("stdout"));
    let mut frames = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !frames.iter().any(|l: &String| l == "READY") {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) => frames.push(l),
            Err(_) => panic!("no WSS snapshot: {frames:?}; {}", kill_output(py)),
        }
    }
    assert!(frames[0].contains("TLSv1.3"), "{frames:?}");
    assert!(
        frames
            .iter()
            .any(|f| f.contains(r#""type": "hello""#) && f.contains("alice"))
    );
    let marker = gw.path("approved-over-wss");
    let child = gw.spawn_exec(&format!("touch {}", marker.display()));
    let status = wait_child(&mut py, WAIT);
    frames.extend(lines.try_iter());
    assert_eq!(status, Some(0), "{frames:?}");
    assert!(
        frames
            .iter()
            .any(|f| f.contains(r#""type": "ack""#) && f.contains("approved")),
        "{frames:?}"
    );
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(marker.exists(), "approved over WSS, the command ran");

    // SIGHUP: the renewed certificate is served to new connections, without a restart.
    install(&two, &cert, &key);
    let pid = gw.pid().expect("running").to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    eventually("the new certificate is served", || {
        curl(&["--cacert", ca_two, &https]).status.success()
    })
    .await;
    assert_eq!(curl(&["--cacert", ca_one, &https]).status.code(), Some(60));
    assert!(gw.log().contains("reviewer TLS certificate reloaded"));
    // A broken file on reload keeps the certificate in force, and says so.
    std::fs::write(&cert, "not a certificate\n").expect("break");
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    eventually("the failed reload is logged", || {
        gw.log().contains("NOT reloaded")
    })
    .await;
    assert!(curl(&["--cacert", ca_two, &https]).status.success());
    assert!(gw.pid().is_some() && gw.cli(&["reviewer", "list"]).status.success());
}

/// The listener's key and the sign-on client secret sit outside the data dir, mode 600 and
/// owned by the gateway's user — the user a local target's commands may run as. Commands
/// still cannot read them: they are covered like the config file (found by a red team with
/// `grep -h -A10 "BEGIN PRIVATE" DIR/*`, a low command).
#[tokio::test]
async fn commands_cannot_read_the_listeners_key_or_the_sign_on_secret() {
    use std::os::unix::fs::PermissionsExt;
    let pkis = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(pkis.path(), "one");
    let secret = pkis.path().join("client-secret");
    std::fs::write(&secret, "sso-client-secret-canary\n").expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let oidc = format!(
        "[reviewer.oidc]\nissuer = \"https://id.invalid\"\nclient_id = \"airlock\"\n\
         redirect_url = \"https://127.0.0.1/auth/callback\"\nclient_secret_file = {:?}\n",
        secret.display().to_string()
    );
    // Laid out like certbot: live/ links into archive/, where a renewal adds new files.
    let (opts, cert, key) = tls_opts(pkis.path(), &oidc);
    let archive = pkis.path().join("archive");
    std::fs::create_dir_all(&archive).expect("archive");
    let (cert1, key1) = (archive.join("cert1.pem"), archive.join("privkey1.pem"));
    install(&pki, &cert1, &key1);
    std::os::unix::fs::symlink(&cert1, &cert).expect("link cert");
    std::os::unix::fs::symlink(&key1, &key).expect("link key");
    let gw = Gateway::start(opts).await;
    let renewed = archive.join("privkey2.pem");
    std::fs::copy(&key1, &renewed).expect("renewed key");
    std::fs::set_permissions(&renewed, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // A rotation that re-points the link into a new directory (Kubernetes' `..data` swap):
    // covers are placed for each command, where the link points now.
    let rotated = pkis.path().join("rotated");
    std::fs::create_dir_all(&rotated).expect("rotated");
    std::fs::copy(&key1, rotated.join("tls.key")).expect("rotated key");
    std::fs::set_permissions(
        rotated.join("tls.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let swap = pkis.path().join("live.key.new");
    std::os::unix::fs::symlink(rotated.join("tls.key"), &swap).expect("new link");
    std::fs::rename(&swap, &key).expect("swap the link");
    let dir = pkis.path().display();
    let archive = archive.display();
    let rotated = rotated.display();
    // Globs, not names: what reaches the kernel is what matters, not what the text shows.
    for cmd in [
        format!("grep -h -A10 'BEGIN' {dir}/live.*"),
        format!("cat {dir}/client-*"),
        format!("tail -n 3 {dir}/live.*"),
        format!("cat {archive}/privkey2.pem"),
        format!("grep -h -A10 'BEGIN' {rotated}/*"),
    ] {
        let (code, out, err) = gw.exec(&cmd).await;
        assert!(
            !out.contains("PRIVATE KEY") && !out.contains("sso-client-secret-canary"),
            "{cmd} read a secret: {out}"
        );
        assert_ne!(code, 0, "{cmd}: {out} {err}");
        assert!(
            err.contains("Permission denied") || err.contains("No such file"),
            "{cmd}: {err}"
        );
    }
    // The listener itself still serves with that key.
    let addr = reviewer_addr(&gw);
    let ca = pki.ca.to_str().expect("utf8");
    let out = curl(&["--cacert", ca, &format!("https://{addr}/healthz")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn tls_handshakes_are_bounded_like_headers() {
    let pkis = tempfile::tempdir().expect("tempdir");
    let one = make_pki(pkis.path(), "one");
    let (opts, cert, key) = tls_opts(
        pkis.path(),
        "header_read_timeout = \"1s\"\nmax_connections = 4\n",
    );
    install(&one, &cert, &key);
    let gw = Gateway::start(opts).await;
    let addr = reviewer_addr(&gw);
    // Take every seat: silent sockets and one stuck halfway into its ClientHello.
    let mut held = Vec::new();
    for i in 0..4 {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        if i == 0 {
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .expect("partial hello");
        }
        held.push(s);
    }
    let t = Instant::now();
    for s in &mut held {
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "a stalled handshake is closed by the server: {closed:?}"
        );
    }
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let ok = curl(&[
        "--cacert",
        one.ca.to_str().expect("utf8"),
        &format!("https://{addr}/healthz"),
    ]);
    assert!(ok.status.success(), "seats came back: {ok:?}");
}

#[tokio::test]
async fn the_self_signed_certificate_is_kept_pinned_in_the_banner_and_chromium_loads_the_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("data/reviewer-tls/cert.pem");
    let (addr, first) = {
        let gw = Serve::start(dir.path(), "127.0.0.1:0", "tls_self_signed = true");
        let addr = gw.line("airlock: reviewers listening on");
        assert!(
            gw.line("reviewer").contains("(self-signed, generated now)"),
            "{:?}",
            gw.banner
        );
        let shown = gw.line("sha256");
        assert_eq!(shown, fingerprint(&cert), "the banner shows the served one");
        // The generated certificate is its own trust anchor, for 127.0.0.1.
        let https = format!("https://{addr}/healthz");
        let ok = curl(&["--cacert", cert.to_str().expect("utf8"), &https]);
        assert!(ok.status.success(), "{ok:?}");
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.path().join("data/reviewer-tls/key.pem");
            let mode = std::fs::metadata(key).expect("key").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Chromium, trusting the certificate by its key's pin only, signs in over wss.
        let token = add_reviewer(dir.path(), "alice");
        let shot = driver::artefact("tls-page.png");
        let run = tokio::process::Command::new("node")
            .arg(driver::web_dir().join("tls.mjs"))
            .env("AIRLOCK_URL", format!("https://{addr}/"))
            .env("AIRLOCK_TOKEN", &token)
            .env("AIRLOCK_SPKI", spki_pin(&cert))
            .env("AIRLOCK_CHROMIUM", driver::chromium())
            .env("AIRLOCK_SHOT", &shot)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(150), run)
            .await
            .expect("browser within 150 s")
            .expect("node runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let seen: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
        assert!(out.status.success(), "{seen:#}");
        assert_eq!(seen["status"], 200, "{seen:#}");
        assert_eq!(seen["protocol"], "https:", "{seen:#}");
        assert_eq!(seen["secure_context"], true, "{seen:#}");
        assert_eq!(seen["signed_in_as"], "signed in as alice", "{seen:#}");
        assert_eq!(seen["hsts"], "max-age=31536000", "{seen:#}");
        assert_eq!(seen["tls"]["protocol"], "TLS 1.3", "{seen:#}");
        assert!(
            seen["unpinned_error"]
                .as_str()
                .is_some_and(|e| e.contains("ERR_CERT_AUTHORITY_INVALID")),
            "{seen:#}"
        );

        // `airlock review` finds the self-signed certificate in the config (the port is 0
        // there, so the URL is given): a bad
        // token is refused by the gateway (so TLS held), a good one gets as far as the
        // terminal; trusting another CA, it cannot connect at all.
        let review = |token: &str, ca: Option<&Path>| {
            let mut c = Command::new(BIN);
            c.args(["--config", "airlock.toml", "review", "--url"])
                .arg(format!("wss://{addr}/ws"));
            if let Some(ca) = ca {
                c.arg("--ca").arg(ca);
            }
            let out = c
                .current_dir(dir.path())
                .env("AIRLOCK_TOKEN", token)
                .stdin(Stdio::null())
                .output()
                .expect("review");
            assert!(!out.status.success());
            String::from_utf8_lossy(&out.stderr).into_owned()
        };
        let bad = review("not-a-token", None);
        assert!(bad.contains("refused the token"), "{bad}");
        let good = review(&token, None);
        assert!(good.contains("terminal"), "{good}");
        let other = make_pki(dir.path(), "other");
        let distrust = review(&token, Some(&other.ca));
        assert!(
            distrust.contains("cannot connect to wss://") && distrust.contains("ertificate"),
            "{distrust}"
        );
        (addr, shown)
    };
    // Restarted, it serves the same certificate: pins stay valid.
    let again = Serve::start(dir.path(), "127.0.0.1:0", "tls_self_signed = true");
    assert!(again.line("reviewer").ends_with("(self-signed)"));
    assert_eq!(again.line("sha256"), first);
    assert_ne!(again.line("airlock: reviewers listening on"), "", "{addr}");
}

#[tokio::test]
async fn plain_http_beyond_loopback_is_warned_about_and_bad_tls_settings_stop_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let gw = Serve::start(dir.path(), "0.0.0.0:0", "");
        eventually("the warning", || gw.log().contains("without TLS")).await;
        assert!(gw.log().contains("docs/tls.md"), "{}", gw.log());
    }
    // A key others can read stops the start, naming the file.
    let pkis = tempfile::tempdir().expect("tempdir");
    let one = make_pki(pkis.path(), "one");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&one.key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    std::fs::write(
        dir.path().join("airlock.toml"),
        format!(
            "data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:0\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n",
            one.cert.display().to_string(),
            one.key.display().to_string()
        ),
    )
    .expect("config");
    let out = Command::new(BIN)
        .args(["serve", "--config", "airlock.toml"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("server.key") && err.contains("chmod 600"),
        "{err}"
    );
}

fn add_reviewer(dir: &Path, name: &str) -> String {
    let out = Command::new(BIN)
        .args(["--config", "airlock.toml", "reviewer", "add", name])
        .current_dir(dir)
        .output()
        .expect("reviewer add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn read_lines(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Wait at most `within` for `c` to exit; its exit code.
fn wait_child(c: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return st.code();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_output(mut c: Child) -> String {
    let _ = c.kill();
    c.wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default()
}
