//! Behind a real nginx doing TLS (the docs/tls.md sample, with nginx's default `Host`
//! rewrite): `[reviewer] public_url` is what lets the page's origin through, and nothing else.

use super::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// nginx in the foreground with a config of its own; stopped on drop.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx(dir: &Path, port: u16, upstream: &str, pki: &Pki) -> Nginx {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx.err info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {dir};\n proxy_temp_path {dir};\n\
             server {{\n  listen 127.0.0.1:{port} ssl;\n  server_name localhost;\n\
               ssl_certificate {cert};\n  ssl_certificate_key {key};\n\
               location / {{\n   proxy_pass http://{upstream};\n   proxy_http_version 1.1;\n\
                 proxy_set_header Upgrade $http_upgrade;\n   proxy_set_header Connection \"upgrade\";\n\
                 proxy_read_timeout 1d;\n   proxy_send_timeout 1d;\n  }}\n }}\n}}\n",
            dir = dir.display(),
            cert = pki.cert.display(),
            key = pki.key.display(),
        ),
    )
    .expect("nginx.conf");
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (scripts/test.sh installs nginx-light)");
    Nginx(child)
}

#[tokio::test]
async fn behind_nginx_the_public_origin_passes_and_another_does_not() {
    let pkis = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(pkis.path(), "proxy");
    let port = free_port();
    let public = format!("https://localhost:{port}");
    let gw = Gateway::start(Opts {
        reviewer_extra: format!("public_url = {public:?}\n"),
        ..Opts::default()
    })
    .await;
    let _nginx = nginx(pkis.path(), port, &reviewer_addr(&gw), &pki);
    let ca = pki.ca.to_str().expect("utf8");
    let health = format!("{public}/healthz");
    let t = Instant::now();
    while !curl(&["--cacert", ca, &health]).status.success() {
        assert!(
            t.elapsed() < WAIT,
            "nginx did not come up: {}",
            std::fs::read_to_string(pkis.path().join("nginx.err")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = gw.add_reviewer("alice");
    let socket = |origin: &str| {
        Command::new(python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/tls/wss.py"))
            .env("AIRLOCK_URL", format!("wss://localhost:{port}/ws"))
            .env("AIRLOCK_CA", &pki.ca)
            .env("AIRLOCK_TOKEN", &token)
            .env("AIRLOCK_ORIGIN", origin)
            .env("AIRLOCK_UNTIL", "snapshot")
            .stdin(Stdio::null())
            .output()
            .expect("python with websockets")
    };
    // The page's own (public) origin: upgraded through the proxy, signed in, snapshot.
    let ok = socket(&public);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success() && out.contains("READY") && out.contains("alice"),
        "{out}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Another site's page is refused before the upgrade, token or not.
    let evil = socket("https://evil.example");
    let err = String::from_utf8_lossy(&evil.stderr);
    assert!(
        !evil.status.success() && err.contains("403"),
        "{}\n{err}",
        String::from_utf8_lossy(&evil.stdout)
    );
}
