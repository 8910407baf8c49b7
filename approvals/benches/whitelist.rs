//! Whitelist lookup with 100,000 entries: `cargo bench -p airlock-approvals --bench whitelist`.
//!
//! Fills a fresh SQLite database (and PostgreSQL too when AIRLOCK_TEST_POSTGRES_URL is set)
//! with 50,000 exact entries and 50,000 globs spread over 5,000 programs, then times the
//! lookup the gate makes for every command: an exact hit, a glob hit, and a miss (which
//! reads both indexes and is the common case). Prints a Markdown table.

use std::time::{Duration, Instant};

use airlock_approvals::{NewWhitelist, Store};
use airlock_classifier::{Tier, glob_pattern, plain_argv};

const ENTRIES: usize = 100_000;
const LOOKUPS: usize = 2_000;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[i.clamp(1, v.len()) - 1].as_secs_f64() * 1e6
}

async fn fill(s: &Store) {
    for i in 0..ENTRIES {
        let program = format!("prog{}", i % 5_000);
        let (pattern, words) = if i % 2 == 0 {
            (format!("{program} --flag value-{i}"), None)
        } else {
            let p = format!("{program} restart svc-{i}-*");
            let w = glob_pattern(&p).expect("glob");
            (p, Some(w))
        };
        s.add_whitelist(&NewWhitelist {
            scripts: &[],
            agent: (i % 3 == 0).then_some("bot"),
            target: (i % 5 == 0).then_some("web-1"),
            pattern: &pattern,
            words: words.as_deref(),
            tier: Tier::Medium,
            created_by: "bench",
            created_at: 0,
            expires_at: (i % 7 == 0).then_some(i64::MAX),
        })
        .await
        .expect("insert");
    }
}

async fn measure(name: &str, s: &Store) {
    let t = Instant::now();
    fill(s).await;
    eprintln!(
        "{name}: {ENTRIES} entries inserted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let cases = [
        ("exact hit", "prog42 --flag value-42".to_owned()),
        ("glob hit", "prog43 restart svc-43-blue".to_owned()),
        ("miss", "prog44 restart something-else".to_owned()),
    ];
    for (label, cmd) in cases {
        let argv = plain_argv(&cmd);
        let mut times = Vec::with_capacity(LOOKUPS);
        let mut hits = 0;
        for _ in 0..LOOKUPS {
            let t = Instant::now();
            let hit = s
                .whitelist_match("bot", "web-1", &cmd, argv.as_deref(), Tier::Medium, 1)
                .await
                .expect("lookup");
            times.push(t.elapsed());
            hits += usize::from(hit.is_some());
        }
        assert_eq!(hits > 0, label != "miss", "{label}: wrong answer");
        println!(
            "| {name} | {label} | {LOOKUPS} | {:.0} | {:.0} | {:.0} |",
            pct(&mut times, 50.0),
            pct(&mut times, 99.0),
            pct(&mut times, 100.0)
        );
    }
}

#[tokio::main]
async fn main() {
    println!("| database | lookup | n | p50 µs | p99 µs | max µs |\n|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("wl.db").display());
    let s = Store::connect(&url).await.expect("sqlite");
    measure("SQLite", &s).await;
    match std::env::var("AIRLOCK_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            sqlx::any::install_default_drivers();
            let admin_pool = sqlx::any::AnyPoolOptions::new()
                .connect(&admin)
                .await
                .expect("postgres");
            let name = format!("airlock_bench_wl_{}", std::process::id());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin_pool)
                .await
                .expect("create db");
            let base = &admin[..admin.rfind('/').expect("url has a database")];
            let s = Store::connect(&format!("{base}/{name}")).await.expect("pg");
            measure("PostgreSQL", &s).await;
            s.close().await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
                .execute(&admin_pool)
                .await;
        }
        _ => eprintln!("PostgreSQL: skipped (AIRLOCK_TEST_POSTGRES_URL not set)"),
    }
}
