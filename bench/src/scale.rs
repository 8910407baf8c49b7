//! Scale rows (issue 24): `airlock ledger verify` over an export of N entries, and `airlock
//! sessions list` and the History API (`/api/sessions`, `/api/history`) with N sessions in
//! SQLite and in PostgreSQL. The export is written here with the ledger's own hash function;
//! the sessions are seeded with one SQL statement (`sqlite3` / `psql`), so seeding a million
//! rows takes seconds, not an hour of SSH sessions.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlock_approvals::ledger::format::{GENESIS, entry_hash};
use anyhow::{Context, bail};
use serde_json::json;

use crate::report::{Better, Row, Target};
use crate::stats::Samples;

pub async fn rows(
    bin: &Path,
    n: u64,
    postgres: Option<&str>,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let mut rows = vec![ledger_verify(bin, dir.path(), n, runs)?];
    rows.extend(sessions(bin, dir.path(), n, None, runs).await?);
    match postgres {
        Some(url) => rows.extend(sessions(bin, dir.path(), n, Some(url), runs).await?),
        None => eprintln!("  no PostgreSQL (set AIRLOCK_TEST_POSTGRES_URL): SQLite rows only"),
    }
    Ok(rows)
}

/// A valid export of `n` entries: sessions of five entries each (open, submitted, start,
/// exit, close), hash-chained from genesis exactly as the gateway chains them.
fn write_export(path: &Path, n: u64) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut prev = GENESIS.to_owned();
    let ts0 = 1_780_000_000_000i64;
    for seq in 1..=n as i64 {
        let session = format!("{:016x}", seq / 5);
        let (kind, payload) = match seq % 5 {
            0 => (
                "session.open",
                json!({"session": session, "agent": "bot", "target": "local", "kind": "exec", "peer": "127.0.0.1:40000"}),
            ),
            1 => (
                "command.submitted",
                json!({"session": session, "agent": "bot", "target": "local", "command": "systemctl status nginx", "tier": "low", "score": 12, "rules": [], "decision": "allow", "why": "low risk"}),
            ),
            2 => (
                "exec.start",
                json!({"session": session, "command": "systemctl status nginx", "sandbox": "read-only"}),
            ),
            3 => ("exec.exit", json!({"session": session, "status": 0})),
            _ => (
                "session.close",
                json!({"session": session, "outcome": "ran", "exit_status": 0}),
            ),
        };
        let ts = ts0 + seq;
        let hash = entry_hash(&prev, seq, ts, kind, &payload);
        let line = json!({"type": "entry", "seq": seq, "ts": ts, "kind": kind, "payload": payload, "prev": prev, "hash": hash});
        writeln!(w, "{line}")?;
        prev = hash;
    }
    w.flush()?;
    Ok(())
}

fn ledger_verify(bin: &Path, dir: &Path, n: u64, runs: usize) -> anyhow::Result<Row> {
    let file = dir.join("ledger.jsonl");
    let t = Instant::now();
    write_export(&file, n)?;
    eprintln!(
        "  {n}-entry export written in {:.1} s ({} MiB)",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&file)?.len() >> 20
    );
    let mut s = Samples::default();
    for _ in 0..runs.max(5) {
        let t = Instant::now();
        let out = Command::new(bin)
            .args(["ledger", "verify"])
            .arg(&file)
            .env_remove("AIRLOCK_CONFIG")
            .output()?;
        let d = t.elapsed();
        if !out.status.success() {
            bail!(
                "ledger verify failed on the generated export: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        s.push(n as f64 / d.as_secs_f64());
    }
    Ok(Row {
        scenario: format!("11. `airlock ledger verify` on a {n}-entry export (whole command)"),
        unit: "entries/s",
        better: Better::Higher,
        openssh: None,
        airlock: s,
        target: Target::P50AtLeast(200_000.0),
    })
}

/// A gateway on `url` (started, its reviewer port read from its banner); killed on drop.
struct Gateway {
    child: Child,
    config: PathBuf,
    http: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, dir: &Path, url: &str) -> anyhow::Result<Gateway> {
    let config = dir.join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:0\"\n[reviewer]\nlisten = \"127.0.0.1:0\"\n\
             [database]\nurl = \"{url}\"\n[[target]]\nname = \"local\"\nkind = \"local\"\n"
        ),
    )?;
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("airlock.log"))?)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).with_context(|| {
            format!(
                "airlock did not start (see {})",
                dir.join("airlock.log").display()
            )
        })?;
        if let Some(a) = line.strip_prefix("airlock: reviewers listening on ") {
            break format!("http://{a}");
        }
    };
    Ok(Gateway {
        child,
        config,
        http,
    })
}

/// One statement: `n` closed exec sessions over 30 days, 50 agents, 20 targets.
fn seed_sql(n: u64, postgres: bool) -> String {
    let series = if postgres {
        format!("SELECT g AS x FROM generate_series(1::bigint, {n}) AS g")
    } else {
        format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT x FROM c"
        )
    };
    let hex = if postgres {
        "lpad(to_hex(x), 16, '0')"
    } else {
        "printf('%016x', x)"
    };
    format!(
        "INSERT INTO sessions (id, agent, target, kind, command, peer, started_at, ended_at, outcome, exit_status) \
         SELECT {hex}, 'agent-' || (x % 50), 'target-' || (x % 20), 'exec', 'systemctl status nginx', '127.0.0.1:1', \
         1780000000000 + x * 2592, 1780000000000 + x * 2592 + 40, 'ran', 0 FROM ({series}) AS s;"
    )
}

async fn sessions(
    bin: &Path,
    dir: &Path,
    n: u64,
    postgres: Option<&str>,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let db = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let sub = dir.join(db);
    std::fs::create_dir_all(&sub)?;
    let scratch = format!("airlock_bench_{}", std::process::id());
    let url = match postgres {
        Some(base) => {
            psql(base, &format!("CREATE DATABASE {scratch}"))?;
            let (root, _) = base
                .rsplit_once('/')
                .context("postgres URL has no database")?;
            format!("{root}/{scratch}")
        }
        None => format!("sqlite://{}", sub.join("airlock.db").display()),
    };
    let result = async {
        let gw = start(bin, &sub, &url)?;
        let t = Instant::now();
        let sql = seed_sql(n, postgres.is_some());
        match postgres {
            Some(_) => psql(&url, &sql)?,
            None => {
                let out = Command::new("sqlite3")
                    .arg(sub.join("airlock.db"))
                    .arg(format!("PRAGMA busy_timeout = 10000; {sql}"))
                    .output()
                    .context("sqlite3 (apt install sqlite3)")?;
                if !out.status.success() {
                    bail!("seeding SQLite: {}", String::from_utf8_lossy(&out.stderr));
                }
            }
        }
        eprintln!(
            "  {db}: {n} sessions seeded in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let token = cli(bin, &gw, &["reviewer", "add", "bench-history"])?;
        let token = token.trim().to_owned();
        let mut list = Samples::default();
        let mut by_agent = Samples::default();
        let mut api = Samples::default();
        let mut history = Samples::default();
        let client = reqwest_free::Client::new(&gw.http, &token);
        for _ in 0..runs {
            let t = Instant::now();
            cli(bin, &gw, &["sessions", "list"])?;
            list.push_dur(t.elapsed());
            let t = Instant::now();
            cli(
                bin,
                &gw,
                &["sessions", "list", "--agent", "agent-7", "--since", "3650d"],
            )?;
            by_agent.push_dur(t.elapsed());
            api.push_dur(client.get("/api/sessions").await?);
            history.push_dur(client.get("/api/history").await?);
        }
        let row = |what: &str, s: Samples| Row {
            scenario: format!("11. {what}, {n} sessions in {db}"),
            unit: "ms",
            better: Better::Lower,
            openssh: None,
            airlock: s,
            target: Target::P99AtMost(50.0),
        };
        Ok(vec![
            row(
                "`airlock sessions list` (whole command, newest first)",
                list,
            ),
            row(
                "`airlock sessions list --agent A --since 3650d` (whole command)",
                by_agent,
            ),
            row("GET /api/sessions (History: sessions)", api),
            row("GET /api/history (History: decided requests)", history),
        ])
    }
    .await;
    if let Some(base) = postgres {
        // The gateway is gone (dropped above); the scratch database goes too.
        let _ = psql(
            base,
            &format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"),
        );
    }
    result
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .context("psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn cli(bin: &Path, gw: &Gateway, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .arg("--config")
        .arg(&gw.config)
        .args(args)
        .current_dir(gw.config.parent().context("dir")?)
        .output()?;
    if !out.status.success() {
        bail!("airlock {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The smallest HTTP/1.1 GET over a kept-alive loopback connection: the bench needs a
/// latency, not a client library.
mod reqwest_free {
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    pub struct Client {
        addr: String,
        token: String,
    }

    impl Client {
        pub fn new(base: &str, token: &str) -> Self {
            Self {
                addr: base.trim_start_matches("http://").to_owned(),
                token: token.to_owned(),
            }
        }

        /// Time to the last byte of a 200 response (a fresh connection each time).
        pub async fn get(&self, path: &str) -> anyhow::Result<Duration> {
            let t = Instant::now();
            let mut s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                self.addr, self.token
            );
            s.write_all(req.as_bytes()).await?;
            let mut r = BufReader::new(s);
            let mut status = String::new();
            r.read_line(&mut status).await?;
            if !status.contains(" 200 ") {
                bail!("GET {path}: {}", status.trim());
            }
            let mut body = Vec::new();
            tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut body))
                .await
                .context("response within 30 s")??;
            Ok(t.elapsed())
        }
    }
}
