//! The Insights tab (docs/metrics.md, "Insights") over a real gateway: four days of history
//! seeded into its database (ledger entries chained on its head, request rows), plus real
//! commands through OpenSSH today. `GET /api/insights` must count exactly that, scoped to the
//! reviewer's groups; and the page in a real Chromium must draw it — every bar and dot carries
//! the seeded number — without fetching anything from elsewhere. The screenshot is kept in
//! target/test-artifacts/insights.png.

mod harness;

use std::time::Duration;

use airlock_approvals::Store;
use airlock_approvals::ledger::format::{Entry, GENESIS, entry_hash};
use airlock_approvals::store::insights::{DAY_MS, ymd};
use harness::{Gateway, Opts};
use serde_json::{Value, json};

/// carol's group may act on `prod` only; alice is in no group (unscoped).
const SCOPED: &str = r#"[[reviewer_group]]
name = "ops"
members = ["carol"]
scope = { targets = ["prod"] }
"#;

fn now_ms() -> i64 {
    airlock_approvals::now_ms()
}

/// Append `kind`/`payload` at `ts` on top of the ledger's head (retrying if the gateway
/// appended meanwhile), exactly as the ledger chains its own entries.
async fn append(store: &Store, ts: i64, kind: &str, payload: Value) {
    for _ in 0..50 {
        let (seq, prev) = match store.ledger_head().await.expect("head") {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS.to_owned()),
        };
        let e = Entry {
            seq,
            ts,
            kind: kind.to_owned(),
            hash: entry_hash(&prev, seq, ts, kind, &payload),
            payload: payload.clone(),
            prev,
        };
        if store
            .ledger_insert(std::slice::from_ref(&e))
            .await
            .expect("insert")
        {
            return;
        }
    }
    panic!("could not append a seeded entry");
}

async fn submitted(store: &Store, ts: i64, target: &str, tier: Option<&str>, decision: &str) {
    let why = match decision {
        "whitelist" => Some("whitelisted (entry seeded)"),
        "auto" => Some("low risk"),
        "deny" => Some("refused"),
        _ => None,
    };
    let mut p = json!({
        "session": "5eed", "agent": "bot", "target": target, "command": "seeded",
        "decision": match decision { "whitelist" | "auto" => "allow", d => d },
    });
    if let Some(t) = tier {
        p["tier"] = json!(t);
    }
    if let Some(w) = why {
        p["why"] = json!(w);
    }
    append(store, ts, "command.submitted", p).await;
}

/// A command request that was resolved `after_ms` after it opened.
async fn request(
    db: &sqlx::AnyPool,
    id: &str,
    target: &str,
    tier: &str,
    status: &str,
    (at, after_ms, by): (i64, i64, &str),
) {
    sqlx::query(
        "INSERT INTO requests (id, session_id, agent, target, command, tier, score, reasons, quorum, \
         status, created_at, expires_at, resolved_at, resolved_by) \
         VALUES ($1, '5eed', 'bot', $2, 'seeded', $3, 50, '[]', 1, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(target)
    .bind(tier)
    .bind(status)
    .bind(at)
    .bind(at + 600_000)
    .bind(at + after_ms)
    .bind(by)
    .execute(db)
    .await
    .expect("insert request");
}

async fn whitelist(store: &Store, ts: i64, id: &str, target: Option<&str>, added: bool) {
    if added {
        let p = json!({"id": id, "agent": "bot", "target": target, "command": "seeded", "glob": false,
            "tier": "medium", "expires_at": null, "by": "alice", "request": null});
        append(store, ts, "whitelist.add", p).await;
    } else {
        append(
            store,
            ts,
            "whitelist.revoke",
            json!({"id": id, "by": "alice"}),
        )
        .await;
    }
}

/// Days D-3 … D-1 (D = today, UTC) of history; see the test for what they add up to.
async fn seed(gw: &Gateway) {
    let store = Store::connect(&gw.db_url).await.expect("store");
    sqlx::any::install_default_drivers();
    let db = sqlx::any::AnyPoolOptions::new()
        .connect(&gw.db_url)
        .await
        .expect("pool");
    let today = now_ms().div_euclid(DAY_MS);
    let at = |d: i64, minute: i64| (today - d) * DAY_MS + 10 * 3_600_000 + minute * 60_000;
    // D-5 … D-1: the whitelist grows (one entry revoked on D-1).
    whitelist(&store, at(5, 0), "w1", Some("local"), true).await;
    whitelist(&store, at(5, 1), "w2", Some("local"), true).await;
    whitelist(&store, at(3, 0), "w3", Some("local"), true).await;
    whitelist(&store, at(2, 0), "w4", Some("local"), true).await;
    whitelist(&store, at(2, 1), "w5", Some("prod"), true).await;
    whitelist(&store, at(1, 0), "w6", None, true).await;
    whitelist(&store, at(1, 1), "w1", None, false).await;
    // D-3: 4 low at once, 1 whitelisted, 2 asked (approved after 30s, denied after 90s).
    for m in 0..4 {
        submitted(&store, at(3, 10 + m), "local", Some("low"), "auto").await;
    }
    submitted(&store, at(3, 20), "local", Some("medium"), "whitelist").await;
    for m in 0..2 {
        submitted(&store, at(3, 30 + m), "local", Some("medium"), "ask").await;
    }
    request(
        &db,
        "r31",
        "local",
        "medium",
        "approved",
        (at(3, 30), 30_000, "alice"),
    )
    .await;
    request(
        &db,
        "r32",
        "local",
        "medium",
        "denied",
        (at(3, 31), 90_000, "bob"),
    )
    .await;
    // D-2: 2 low, 3 whitelisted, 1 high approved after 120s, 1 refused before classification.
    for m in 0..2 {
        submitted(&store, at(2, 10 + m), "local", Some("low"), "auto").await;
    }
    for m in 0..3 {
        submitted(&store, at(2, 20 + m), "local", Some("medium"), "whitelist").await;
    }
    submitted(&store, at(2, 30), "local", Some("high"), "ask").await;
    request(
        &db,
        "r21",
        "local",
        "high",
        "approved",
        (at(2, 30), 120_000, "bob"),
    )
    .await;
    submitted(&store, at(2, 40), "local", None, "deny").await;
    // D-1 on local: 5 low, 4 whitelisted, 1 medium that expired (300s, by the gateway);
    // on prod: 2 whitelisted, 1 medium approved after 60s.
    for m in 0..5 {
        submitted(&store, at(1, 10 + m), "local", Some("low"), "auto").await;
    }
    for m in 0..4 {
        submitted(&store, at(1, 20 + m), "local", Some("medium"), "whitelist").await;
    }
    submitted(&store, at(1, 30), "local", Some("medium"), "ask").await;
    request(
        &db,
        "r11",
        "local",
        "medium",
        "expired",
        (at(1, 30), 300_000, "airlock"),
    )
    .await;
    for m in 0..2 {
        submitted(&store, at(1, 40 + m), "prod", Some("medium"), "whitelist").await;
    }
    submitted(&store, at(1, 50), "prod", Some("medium"), "ask").await;
    request(
        &db,
        "r12",
        "prod",
        "medium",
        "approved",
        (at(1, 50), 60_000, "carol"),
    )
    .await;
    db.close().await;
}

async fn insights(gw: &Gateway, token: Option<&str>, days: &str) -> (String, Value) {
    let raw = gw
        .http_get(&format!("/api/insights?days={days}"), token)
        .await;
    let status = raw.lines().next().unwrap_or_default().to_owned();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn day(v: &Value, ago: i64) -> &Value {
    let name = ymd(now_ms().div_euclid(DAY_MS) - ago);
    v["days"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["day"] == name.as_str()))
        .unwrap_or_else(|| panic!("no day {name} in {v}"))
}

/// Seed the history, run today's real commands, and check `/api/insights` for alice (all)
/// and carol (prod only). Returns alice's token.
async fn seeded_and_counted(gw: &Gateway) -> String {
    let alice = gw.add_reviewer("alice");
    let carol = gw.add_reviewer("carol");
    seed(gw).await;
    // Today, for real: one low command and one whitelisted medium one.
    assert_eq!(gw.exec("echo hi").await.0, 0);
    let wl = format!("touch {}", gw.path("wl").display());
    gw.whitelist_for_bot("local", &wl);
    assert_eq!(gw.exec(&wl).await.0, 0);

    let (status, _) = insights(gw, None, "7").await;
    assert!(status.contains(" 401"), "{status}");
    let (status, _) = insights(gw, Some(&alice), "0").await;
    assert!(status.contains(" 400"), "{status}");

    let (status, v) = insights(gw, Some(&alice), "7").await;
    assert!(status.contains(" 200"), "{status} {v}");
    assert_eq!(v["days"].as_array().map(Vec::len), Some(7));
    assert_eq!(v["withheld"], false);
    let t = &v["totals"];
    assert_eq!(
        (t["commands"].as_u64(), t["unattended"].as_u64()),
        (Some(29), Some(23)),
        "{t}"
    );
    assert_eq!(
        t["decision"],
        json!({"count": 4, "median_ms": 60_000, "p90_ms": 120_000})
    );
    assert_eq!(
        (t["whitelist_start"].as_u64(), t["whitelist_now"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(
        day(&v, 3)["outcomes"],
        json!({"low": {"auto": 4}, "medium": {"whitelist": 1, "approved": 1, "denied": 1}})
    );
    assert_eq!(
        day(&v, 2)["outcomes"],
        json!({"low": {"auto": 2}, "medium": {"whitelist": 3}, "high": {"approved": 1}, "none": {"refused": 1}})
    );
    assert_eq!(
        day(&v, 1)["outcomes"],
        json!({"low": {"auto": 5}, "medium": {"whitelist": 6, "expired": 1, "approved": 1}})
    );
    assert_eq!(
        day(&v, 0)["outcomes"],
        json!({"low": {"auto": 1}, "medium": {"whitelist": 1}}),
        "today's real commands"
    );
    assert_eq!(
        day(&v, 3)["decision"],
        json!({"count": 2, "median_ms": 30_000, "p90_ms": 90_000})
    );
    let sizes: Vec<u64> = (0..7)
        .rev()
        .map(|a| day(&v, a)["whitelist"].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(
        sizes,
        [0, 2, 2, 3, 5, 5, 6],
        "the whitelist grows (one revoked on D-1)"
    );

    // carol sees prod only.
    let (_, c) = insights(gw, Some(&carol), "7").await;
    assert_eq!(c["withheld"], true);
    assert_eq!(
        (
            c["totals"]["commands"].as_u64(),
            c["totals"]["unattended"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(c["totals"]["decision"]["median_ms"], 60_000);
    assert_eq!(
        c["totals"]["whitelist_now"], 2,
        "prod's entry and the any-target one"
    );
    assert_eq!(day(&c, 3)["commands"], 0);
    alice
}

fn opts(postgres: bool) -> Opts {
    Opts {
        postgres,
        more_targets: vec!["prod".into()],
        extra: SCOPED.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn insights_count_the_history_on_postgres() {
    if harness::pg_url().is_none() {
        eprintln!("skipped: AIRLOCK_TEST_POSTGRES_URL is not set");
        return;
    }
    let gw = Gateway::start(opts(true)).await;
    seeded_and_counted(&gw).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn insights_count_the_history_and_the_page_draws_it() {
    let gw = Gateway::start(opts(false)).await;
    let alice = seeded_and_counted(&gw).await;
    // The page draws exactly that.
    let seen = drive(&gw, &alice, "7").await;
    assert!(
        seen["elsewhere"].as_array().is_some_and(Vec::is_empty),
        "nothing from elsewhere: {seen}"
    );
    assert_eq!(
        seen["charts"],
        json!([
            "chart-requests",
            "chart-decision",
            "chart-unattended",
            "chart-whitelist"
        ])
    );
    let kpi = |id: &str| {
        seen["kpis"][id]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(kpi("kpi-commands"), "29");
    assert_eq!(kpi("kpi-unattended"), "79");
    assert_eq!(seen["kpis"]["kpi-unattended"]["text"], "79%");
    assert_eq!(kpi("kpi-median"), "60000");
    assert_eq!(seen["kpis"]["kpi-median"]["text"], "1m");
    assert_eq!(seen["kpis"]["kpi-p90"]["text"], "2m");
    assert_eq!(kpi("kpi-whitelist"), "6");
    assert_eq!(seen["kpis"]["kpi-whitelist"]["sub"], "+6 in 7 days");
    let d = |ago| ymd(now_ms().div_euclid(DAY_MS) - ago);
    let bar = |bars: &Value, ago: i64, outcome: &str| -> Option<(u64, f64)> {
        bars.as_array()?
            .iter()
            .find(|b| b["day"] == d(ago).as_str() && b["outcome"] == outcome)
            .map(|b| {
                (
                    b["count"].as_u64().unwrap_or(0),
                    b["height"].as_f64().unwrap_or(0.0),
                )
            })
    };
    let bars = &seen["bars"];
    assert_eq!(bars.as_array().map(Vec::len), Some(14), "{bars}");
    let (n, low_d1) = bar(bars, 1, "auto").expect("D-1 auto bar");
    assert_eq!(n, 5);
    let (n, wl_d1) = bar(bars, 1, "whitelist").expect("D-1 whitelist bar");
    assert_eq!(n, 6);
    assert!(
        (wl_d1 / low_d1 - 6.0 / 5.0).abs() < 0.05,
        "bar heights follow counts"
    );
    assert_eq!(bar(bars, 3, "denied").map(|b| b.0), Some(1));
    assert_eq!(bar(bars, 2, "refused").map(|b| b.0), Some(1));
    assert_eq!(bar(bars, 1, "expired").map(|b| b.0), Some(1));
    let totals: Vec<(String, u64)> = seen["totals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t["day"].as_str().unwrap_or("").to_owned(),
                        t["total"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(totals, [(d(3), 7), (d(2), 7), (d(1), 13), (d(0), 2)]);
    let dots = |series: &str| -> Vec<(String, String)> {
        seen["dots"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["series"] == series)
                    .map(|x| {
                        (
                            x["day"].as_str().unwrap_or("").to_owned(),
                            x["value"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        dots("median"),
        [
            (d(3), "30000".into()),
            (d(2), "120000".into()),
            (d(1), "60000".into())
        ]
    );
    assert_eq!(dots("p90")[0], (d(3), "90000".into()));
    assert_eq!(
        dots("share"),
        [
            (d(3), "71".into()),
            (d(2), "71".into()),
            (d(1), "85".into()),
            (d(0), "100".into())
        ]
    );
    assert_eq!(
        dots("whitelist")
            .iter()
            .map(|x| x.1.as_str())
            .collect::<Vec<_>>(),
        ["0", "2", "2", "3", "5", "5", "6"]
    );
    // The "high" chip keeps only D-2's approved high command.
    let high = &seen["high_bars"];
    assert_eq!(high.as_array().map(Vec::len), Some(1), "{high}");
    assert_eq!(bar(high, 2, "approved").map(|b| b.0), Some(1));
    assert_eq!(seen["hidden_after_leaving"], true);
    assert!(
        seen["width"].as_u64().unwrap_or(9999) <= 1280,
        "fits the window: {seen}"
    );
}

/// Run tests/web/insights.mjs against the page as `token`, for the last `days` days.
async fn drive(gw: &Gateway, token: &str, days: &str) -> Value {
    let chromium =
        std::env::var("AIRLOCK_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let web = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/web");
    assert!(
        std::path::Path::new(&chromium).exists()
            && web.join("node_modules/playwright-core").exists(),
        "chromium or playwright-core missing: run scripts/test.sh, which installs both"
    );
    let artefacts =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artefacts).expect("artefact dir");
    let page = gw
        .ws_url
        .replace("ws://", "http://")
        .trim_end_matches("/ws")
        .to_owned()
        + "/";
    let run = tokio::process::Command::new("node")
        .arg(web.join("insights.mjs"))
        .env("AIRLOCK_URL", &page)
        .env("AIRLOCK_TOKEN", token)
        .env("AIRLOCK_DAYS", days)
        .env("AIRLOCK_SHOT", artefacts.join("insights.png"))
        .env("AIRLOCK_CHROMIUM", chromium)
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
