//! The SSH edge under floods and scanners, on loopback with the real binary and OpenSSH:
//! idle connections from many sources cannot lock a real agent out for longer than the login
//! grace time; a handshake flood from one source is throttled and penalized without delaying
//! an agent from another; `ssh-audit` finds nothing but the post-quantum note on curve25519.
//!
//! Loopback has a whole /8: the attackers bind 127.0.0.2 and up, the agent (OpenSSH) comes
//! from 127.0.0.1, so per-source limits can be seen at work.

mod harness;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::{Gateway, Opts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to the gateway from `127.0.0.{last}`.
async fn connect_from(last: u8, port: u16) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), 0)))?;
    tokio::time::timeout(
        Duration::from_secs(5),
        s.connect(SocketAddr::from(([127, 0, 0, 1], port))),
    )
    .await
    .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// Whether the gateway sends its banner on `s` within `wait` (a dropped connection reads EOF).
async fn banner(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(wait, s.read(&mut buf)).await,
        Ok(Ok(n)) if n >= 4 && buf.starts_with(b"SSH-")
    )
}

/// `ssh … true` until it succeeds or `within` passes; how long it took.
async fn agent_gets_in(gw: &Gateway, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        let (code, _, _) = gw.exec("true").await;
        if code == 0 {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The login grace time the flood tests run with.
const GRACE: Duration = Duration::from_secs(3);

async fn gateway_with_a_short_grace_time() -> Gateway {
    Gateway::start(Opts {
        ssh_extra: format!("login_grace_time = \"{}s\"", GRACE.as_secs()),
        ..Opts::default()
    })
    .await
}

/// `n` connections, `per_source` from each of 127.0.0.2, .3, …
async fn from_sources(port: u16, n: u16, per_source: u16) -> Vec<TcpStream> {
    let mut out = Vec::new();
    for i in 0..n {
        let last = 2 + (i / per_source) as u8;
        if let Ok(s) = connect_from(last, port).await {
            out.push(s);
        }
    }
    out
}

#[tokio::test]
async fn six_hundred_idle_connections_hold_an_agent_off_no_longer_than_the_grace_time() {
    let grace = GRACE;
    let gw = gateway_with_a_short_grace_time().await;
    // 600 connections that never send a byte, ten from each of 60 sources.
    let mut idle = from_sources(gw.ssh_port, 600, 10).await;
    assert_eq!(idle.len(), 600, "every idle connection was made");
    let took = agent_gets_in(&gw, grace + Duration::from_secs(5)).await;
    assert!(
        took.is_some(),
        "the agent logged in within the grace time + 5 s:\n{}",
        gw.log()
    );
    // The ones the gateway took are closed once their grace time is over (read gives EOF or
    // a reset); the rest were dropped at accept.
    tokio::time::sleep(grace + Duration::from_secs(1)).await;
    let mut still_open = 0;
    for s in idle.iter_mut().take(200) {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Err(_) => still_open += 1,
            Ok(Ok(n)) if n > 0 => {
                // The banner; the close follows.
                let mut rest = [0u8; 64];
                if tokio::time::timeout(Duration::from_millis(500), s.read(&mut rest))
                    .await
                    .is_err()
                {
                    still_open += 1;
                }
            }
            Ok(_) => {}
        }
    }
    assert_eq!(
        still_open, 0,
        "idle connections outlived the login grace time"
    );
    assert!(
        gw.log().contains("no login within the grace time")
            || gw.log().contains("connections dropped before login"),
        "the operator can see it happen:\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn a_handshake_flood_from_one_source_is_penalized_and_does_not_delay_an_agent() {
    let gw = Gateway::start(Opts::default()).await;
    // Baseline: one exec, nothing else going on.
    let quiet = Instant::now();
    assert_eq!(gw.exec("true").await.0, 0);
    let quiet = quiet.elapsed();
    // 200 handshakes in about a second from 127.0.0.2: each reads the banner, sends its own
    // version and a garbage key exchange, and leaves without logging in.
    let port = gw.ssh_port;
    let flood = tokio::spawn(async move {
        let mut answered = 0u32;
        let mut tasks = Vec::new();
        for _ in 0..200 {
            tasks.push(tokio::spawn(async move {
                let Ok(mut s) = connect_from(2, port).await else {
                    return false;
                };
                let got = banner(&mut s, Duration::from_secs(2)).await;
                let _ = s
                    .write_all(b"SSH-2.0-flood\r\n\0\0\0\x0c\x0a\x14garbage...")
                    .await;
                got
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for t in tasks {
            if t.await.unwrap_or(false) {
                answered += 1;
            }
        }
        answered
    });
    // Meanwhile an agent from 127.0.0.1, measured end to end (ssh start to exit).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = Instant::now();
    let (code, _, err) = gw.exec("true").await;
    let during = during.elapsed();
    let answered = flood.await.expect("flood task");
    assert_eq!(code, 0, "{err}");
    assert!(
        during < Duration::from_secs(2),
        "the agent took {during:?} during the flood (alone: {quiet:?})"
    );
    assert!(
        answered < 200,
        "the flooding source was throttled ({answered} of 200 got a banner)"
    );
    // The source is penalized for a while: a new connection from it gets nothing.
    let mut s = connect_from(2, gw.ssh_port).await.expect("tcp connect");
    assert!(
        !banner(&mut s, Duration::from_secs(2)).await,
        "the penalized source still gets a banner"
    );
    assert!(gw.log().contains("source penalized"), "{}", gw.log());
    // Another source is not.
    let mut s = connect_from(3, gw.ssh_port).await.expect("tcp connect");
    assert!(banner(&mut s, Duration::from_secs(2)).await);
}

fn ssh_audit() -> String {
    std::env::var("AIRLOCK_TEST_SSH_AUDIT")
        .unwrap_or_else(|_| "target/asciinema-venv/bin/ssh-audit".into())
}

#[tokio::test]
async fn ssh_audit_finds_nothing_but_the_post_quantum_note_on_curve25519() {
    let exe = ssh_audit();
    assert!(
        std::path::Path::new(&exe).exists(),
        "ssh-audit missing ({exe}): run scripts/test.sh, which installs it"
    );
    let gw = Gateway::start(Opts::default()).await;
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&exe)
            .args(["-j", "-p", &gw.ssh_port.to_string(), "127.0.0.1"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ssh-audit within 120 s")
    .expect("ssh-audit runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    std::fs::write(dir.join("ssh-audit.json"), &text).expect("keep the report");
    let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "ssh-audit printed no JSON ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        report["banner"]["raw"], "SSH-2.0-Airlock",
        "no version in the banner"
    );
    assert_eq!(report["compression"], serde_json::json!(["none"]));
    let mut findings = Vec::new();
    for kind in ["kex", "key", "enc", "mac"] {
        for alg in report[kind].as_array().cloned().unwrap_or_default() {
            let name = alg["algorithm"].as_str().unwrap_or_default().to_owned();
            for level in ["fail", "warn"] {
                for note in alg["notes"][level].as_array().cloned().unwrap_or_default() {
                    let note = note.as_str().unwrap_or_default().to_owned();
                    let pq_note = level == "warn"
                        && name.starts_with("curve25519-sha256")
                        && note.contains("post-quantum");
                    if !pq_note {
                        findings.push(format!("{kind} {name}: [{level}] {note}"));
                    }
                }
            }
        }
    }
    assert!(findings.is_empty(), "ssh-audit findings: {findings:#?}");
    assert!(
        report["kex"][0]["algorithm"] == "mlkem768x25519-sha256",
        "the hybrid post-quantum exchange comes first"
    );
    let recs = report["recommendations"].to_string();
    assert!(!recs.contains("\"fail\""), "recommendations: {recs}");
    let notes = report["additional_notes"].to_string();
    assert!(!notes.contains("DHEat"), "a DHEat finding: {notes}");
    assert!(
        report["cves"].as_array().is_none_or(|c| c.is_empty()),
        "{}",
        report["cves"]
    );
}

#[tokio::test]
async fn connections_that_stall_after_their_version_line_are_closed_at_the_grace_time() {
    let grace = GRACE;
    let gw = gateway_with_a_short_grace_time().await;
    // 128 connections (16 from each of 8 sources) that send a version line, then stall in the
    // key exchange: they fill the startup pool.
    let mut stalled = from_sources(gw.ssh_port, 128, 16).await;
    for s in &mut stalled {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    }
    assert_eq!(stalled.len(), 128);
    let took = agent_gets_in(&gw, grace + Duration::from_secs(5)).await;
    assert!(
        took.is_some(),
        "the agent logged in within the grace time + 5 s:\n{}",
        gw.log()
    );
    tokio::time::sleep(grace + Duration::from_secs(1)).await;
    let mut open = 0;
    for s in stalled.iter_mut() {
        // Drain what the server sent (banner, key exchange init); then it must be closed.
        let mut buf = vec![0u8; 8192];
        loop {
            match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue,
                Err(_) => {
                    open += 1;
                    break;
                }
            }
        }
    }
    assert_eq!(open, 0, "stalled connections outlived the login grace time");
}
