//! The Rust side of the page driver (tests/web/review.mjs): runs it against a gateway with a
//! list of steps and reads back what it saw; small readers for that answer.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::harness::Gateway;

pub(crate) fn chromium() -> String {
    std::env::var("AIRLOCK_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

pub(crate) fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/web")
}

pub(crate) fn artefact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir.join(name)
}

/// Run the page driver with `steps` (see tests/web/review.mjs); returns what it saw. A failed
/// run leaves a screenshot in target/test-artifacts/`name`-failed.png.
pub(crate) async fn drive(gw: &Gateway, token: &str, name: &str, steps: Value) -> Value {
    assert!(
        std::path::Path::new(&chromium()).exists()
            && web_dir().join("node_modules/playwright-core").exists(),
        "chromium or playwright-core missing: run scripts/test.sh, which installs both"
    );
    let page = gw
        .ws_url
        .replace("ws://", "http://")
        .trim_end_matches("/ws")
        .to_owned()
        + "/";
    let run = tokio::process::Command::new("node")
        .arg(web_dir().join("review.mjs"))
        .env("AIRLOCK_URL", &page)
        .env("AIRLOCK_TOKEN", token)
        .env("AIRLOCK_STEPS", steps.to_string())
        .env("AIRLOCK_FAILSHOT", artefact(&format!("{name}-failed.png")))
        .env("AIRLOCK_CHROMIUM", chromium())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(150), run)
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
    assert!(out.status.success(), "browser run failed: {seen:#}");
    seen
}

pub(crate) fn text<'a>(seen: &'a Value, key: &str) -> &'a str {
    seen[key].as_str().unwrap_or("")
}

pub(crate) fn texts(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The page never got wider than the window.
pub(crate) fn fits_the_window(card: &Value) {
    assert!(
        card["page_width"].as_u64().unwrap_or(u64::MAX)
            <= card["viewport_width"].as_u64().unwrap_or(0),
        "the page is wider than the window: {card:#}"
    );
}

/// 2714 -> "2,714", as the page writes counts.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Wait (bounded) until the driver creates `path`: it tells the test how far the page got.
pub(crate) async fn reached(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the page never reached {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The decide frames the page sent, as (card name, decision, comment).
pub(crate) fn decisions(sent: &Value) -> Vec<(String, String, Option<String>)> {
    sent.as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["id"].as_str().unwrap_or("").to_owned(),
                        m["decision"].as_str().unwrap_or("").to_owned(),
                        m["comment"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn sent(
    card: &str,
    decision: &str,
    comment: Option<&str>,
) -> (String, String, Option<String>) {
    (card.into(), decision.into(), comment.map(str::to_owned))
}
