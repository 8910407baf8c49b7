//! `/metrics`, `/healthz` and `/readyz` (docs/metrics.md) against a real gateway: real agents'
//! commands over OpenSSH, scripted reviewers over the WebSocket, and the scrape read back by
//! the Prometheus project's own Python parsers (text format 0.0.4 and OpenMetrics), installed
//! by scripts/test.sh. Counts must match exactly what happened.

mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::{Gateway, Opts, eventually, finish, free_port};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The venv's Python, which must have `prometheus_client` (scripts/test.sh installs it).
fn python() -> String {
    let exe = std::env::var("AIRLOCK_TEST_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/asciinema-venv/bin/python"
        )
        .into()
    });
    let ok = std::process::Command::new(&exe)
        .args([
            "-c",
            "import prometheus_client.parser, prometheus_client.openmetrics.parser",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "prometheus_client is missing ({exe} cannot import it): run scripts/test.sh, which installs it"
    );
    exe
}

/// Parse `text` with `prometheus_client`'s parser (`openmetrics`: the OpenMetrics one, which
/// also insists on `# EOF`) and return every sample as `{family, type, name, labels, value}`.
fn parse(text: &str, openmetrics: bool) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families as prom
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
parse = om if sys.argv[1] == "openmetrics" else prom
out = []
for f in parse(sys.stdin.read()):
    for s in f.samples:
        out.append({"family": f.name, "type": f.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;
    use std::io::Write as _;
    let mut child = std::process::Command::new(python())
        .args([
            "-c",
            SCRIPT,
            if openmetrics { "openmetrics" } else { "text" },
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write scrape");
    let out = child.wait_with_output().expect("parser ran");
    assert!(
        out.status.success(),
        "the parser rejected the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("parser output")
}

/// One HTTP/1.1 GET: (status, head, body).
async fn get(addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, head.to_owned(), body.to_owned())
}

/// The value of sample `name` with exactly `labels` (0 when absent).
fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .find(|s| {
            let have: BTreeMap<String, String> =
                serde_json::from_value(s["labels"].clone()).unwrap_or_default();
            have == want
        })
        .and_then(|s| s["value"].as_f64())
        .unwrap_or(0.0)
}

async fn scrape(addr: &str) -> Vec<Value> {
    let (status, head, body) = get(addr, "/metrics", None).await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    parse(&body, false)
}

/// Ledger entries this gateway process wrote (its entries carry its node name; the CLI's
/// do not), from `airlock ledger export`.
fn gateway_entries(gw: &Gateway) -> usize {
    let out = gw.cli(&["ledger", "export"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "entry" && e["payload"]["node"] == "airlock-1")
        .count()
}

/// Wait for the next request pushed to `r` and return its id.
async fn next_request(r: &mut harness::Reviewer, tier: &str) -> String {
    let req = r.next_of("request").await;
    assert_eq!(req["tier"], tier, "{req}");
    req["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_exactly_what_happened() {
    let port = free_port();
    let gw = Gateway::start(Opts {
        timeout: "3s",
        extra: format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
        ..Default::default()
    })
    .await;
    let addr = format!("127.0.0.1:{port}");
    let mut alice = gw.reviewer("alice").await;

    // Two low commands run at once.
    for _ in 0..2 {
        let (code, out, err) = gw.exec("echo hi").await;
        assert_eq!((code, out.as_str()), (0, "hi\n"), "{err}");
    }
    // A medium command a whitelist entry allows.
    let whitelisted = format!("touch {}", gw.path("wl").display());
    gw.whitelist_for_bot("local", &whitelisted);
    assert_eq!(gw.exec(&whitelisted).await.0, 0);
    // Medium: approved, denied, left to expire, withdrawn by the agent going away.
    let child = gw.spawn_exec(&format!("touch {}", gw.path("approved").display()));
    let id = next_request(&mut alice, "medium").await;
    assert_eq!(alice.decide(&id, "approve").await["type"], "ack");
    assert_eq!(finish(child).await.0, 0);
    let child = gw.spawn_exec(&format!("touch {}", gw.path("denied").display()));
    let id = next_request(&mut alice, "medium").await;
    assert_eq!(alice.decide(&id, "deny").await["type"], "ack");
    assert_eq!(finish(child).await.0, 77);
    let child = gw.spawn_exec(&format!("touch {}", gw.path("expired").display()));
    next_request(&mut alice, "medium").await;
    assert_eq!(finish(child).await.0, 77, "expires after 3s");
    let mut child = gw.spawn_exec(&format!("touch {}", gw.path("gone").display()));
    next_request(&mut alice, "medium").await;
    child.kill().await.expect("agent hangs up");
    // High: two distinct reviewers approve.
    let victim = gw.path("victim");
    std::fs::create_dir_all(victim.join("sub")).expect("victim dir");
    let child = gw.spawn_exec(&format!("rm -rf {}", victim.display()));
    let id = next_request(&mut alice, "high").await;
    let mut bob = gw.reviewer("bob").await;
    assert_eq!(alice.decide(&id, "approve").await["type"], "ack");
    assert_eq!(bob.decide(&id, "approve").await["type"], "ack");
    assert_eq!(finish(child).await.0, 0);
    assert!(!victim.exists());

    // Every session is closed (the withdrawn one too) before counts are compared.
    let mut samples = Vec::new();
    for _ in 0..200 {
        samples = scrape(&addr).await;
        if sample(&samples, "airlock_sessions_active", &[]) == 0.0
            && sample(
                &samples,
                "airlock_commands_total",
                &[("tier", "medium"), ("decision", "withdrawn")],
            ) == 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let commands = |tier: &str, decision: &str| {
        sample(
            &samples,
            "airlock_commands_total",
            &[("tier", tier), ("decision", decision)],
        )
    };
    assert_eq!(commands("low", "auto"), 2.0);
    assert_eq!(commands("medium", "whitelist"), 1.0);
    assert_eq!(commands("medium", "approved"), 1.0);
    assert_eq!(commands("medium", "denied"), 1.0);
    assert_eq!(commands("medium", "expired"), 1.0);
    assert_eq!(commands("medium", "withdrawn"), 1.0);
    assert_eq!(commands("high", "approved"), 1.0);
    let total: f64 = samples
        .iter()
        .filter(|s| s["name"] == "airlock_commands_total")
        .filter_map(|s| s["value"].as_f64())
        .sum();
    assert_eq!(total, 8.0, "nothing else was counted: {samples:?}");
    let waited = |decision: &str| {
        sample(
            &samples,
            "airlock_approval_duration_seconds_count",
            &[("decision", decision)],
        )
    };
    assert_eq!(
        (
            waited("approved"),
            waited("denied"),
            waited("expired"),
            waited("withdrawn")
        ),
        (2.0, 1.0, 1.0, 1.0)
    );
    let expired_wait = sample(
        &samples,
        "airlock_approval_duration_seconds_sum",
        &[("decision", "expired")],
    );
    assert!(
        (2.5..30.0).contains(&expired_wait),
        "the expired request waited its 3s: {expired_wait}"
    );
    assert_eq!(
        sample(&samples, "airlock_classifier_duration_seconds_count", &[]),
        8.0
    );
    assert_eq!(
        sample(&samples, "airlock_sessions_total", &[("kind", "exec")]),
        8.0
    );
    assert_eq!(sample(&samples, "airlock_sessions_active", &[]), 0.0);
    assert_eq!(sample(&samples, "airlock_requests_pending", &[]), 0.0);
    assert_eq!(sample(&samples, "airlock_reviewers_connected", &[]), 2.0);
    assert_eq!(
        sample(&samples, "airlock_recording_failures_total", &[]),
        0.0
    );
    let on_disk: u64 = gw
        .recordings()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cast"))
        .map(|p| std::fs::metadata(p).expect("recording").len())
        .sum();
    assert_eq!(
        sample(&samples, "airlock_recorded_bytes_total", &[]),
        on_disk as f64,
        "recorded bytes are the recordings' sizes"
    );
    // Ledger appends: exactly the entries this process wrote (stable once traffic stopped).
    let appends = sample(&samples, "airlock_ledger_appends_total", &[]);
    assert!(appends > 0.0);
    assert_eq!(appends, gateway_entries(&gw) as f64);
    assert_eq!(
        sample(&samples, "airlock_ledger_append_failures_total", &[]),
        0.0
    );

    // A waiting request shows as pending.
    let child = gw.spawn_exec(&format!("touch {}", gw.path("pending").display()));
    let id = next_request(&mut alice, "medium").await;
    assert_eq!(
        sample(&scrape(&addr).await, "airlock_requests_pending", &[]),
        1.0
    );
    assert_eq!(alice.decide(&id, "deny").await["type"], "ack");
    assert_eq!(finish(child).await.0, 77);

    // OpenMetrics for scrapers that ask for it, parsed by the strict OpenMetrics parser.
    let (status, head, body) = get(
        &addr,
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let om = parse(&body, true);
    assert_eq!(
        sample(
            &om,
            "airlock_commands_total",
            &[("tier", "medium"), ("decision", "denied")]
        ),
        2.0
    );

    // Never on the reviewer listener.
    let reviewer_addr = gw
        .ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let (status, _, body) = get(&reviewer_addr, "/metrics", None).await;
    assert!(
        status != 200 || !body.contains("airlock_commands_total"),
        "{status} {body}"
    );
    drop(bob);
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_checks_a_postgres_database_too() {
    if harness::pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set");
        return;
    }
    let port = free_port();
    let gw = Gateway::start(Opts {
        postgres: true,
        extra: format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
        ..Default::default()
    })
    .await;
    let (status, _, body) = get(&format!("127.0.0.1:{port}"), "/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["failed"], serde_json::json!([]), "{v}");
    // The probe's row never stays in the ledger.
    let out = gw.cli(&["ledger", "export"]);
    assert!(out.status.success());
    let export = String::from_utf8_lossy(&out.stdout);
    assert!(export.contains("config.loaded"), "{export}");
    assert!(!export.contains("readyz"), "{export}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_names_what_is_not_writable() {
    let port = free_port();
    let gw = Gateway::start(Opts {
        extra: format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
        ..Default::default()
    })
    .await;
    let addr = format!("127.0.0.1:{port}");
    let reviewer_addr = gw
        .ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    for a in [&addr, &reviewer_addr] {
        let (status, _, body) = get(a, "/healthz", None).await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        let (status, _, body) = get(a, "/readyz", None).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["ready"], true, "{v}");
        let names: Vec<&str> = v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["database", "ledger", "recordings"]);
    }
    // The recordings directory replaced by a file: nothing can be recorded there.
    let rec = gw.path("data/recordings");
    let aside = gw.path("data/recordings.aside");
    std::fs::rename(&rec, &aside).expect("move recordings aside");
    std::fs::write(&rec, b"not a directory").expect("file in its place");
    for a in [&addr, &reviewer_addr] {
        let (status, _, body) = get(a, "/readyz", None).await;
        assert_eq!(status, 503, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["ready"], false);
        assert_eq!(v["failed"], serde_json::json!(["recordings"]), "{v}");
        let err = v["checks"][2]["error"].as_str().unwrap_or_default();
        assert!(
            err.contains("data/recordings"),
            "names the directory: {err}"
        );
    }
    // No probe file is left behind, and readiness comes back with the directory.
    std::fs::remove_file(&rec).expect("remove the file");
    std::fs::rename(&aside, &rec).expect("restore recordings");
    eventually("ready again", || {
        std::fs::read_dir(&rec)
            .map(|d| {
                d.filter_map(Result::ok)
                    .all(|e| !e.file_name().to_string_lossy().starts_with(".readyz"))
            })
            .unwrap_or(false)
    })
    .await;
    let (status, _, body) = get(&addr, "/readyz", None).await;
    assert_eq!(status, 200, "{body}");
}
