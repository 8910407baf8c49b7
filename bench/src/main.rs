//! `airlock-bench`: what Airlock costs next to plain OpenSSH, measured on this machine in one
//! run. `bench/run.sh` builds release and calls this; see docs/performance.md.

mod fleet;
mod idle;
mod lab;
mod report;
mod reviewers;
mod scale;
mod scenarios;
mod stats;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use lab::{Crypto, Lab};

#[derive(Parser, Debug)]
#[command(about = "Benchmark Airlock against OpenSSH on loopback")]
struct Args {
    /// The gateway binary to measure (a release build).
    #[arg(long, default_value = "target/release/airlock")]
    airlock: PathBuf,
    /// Scenarios to run (1-11).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5,6,7,8,9,10,11")]
    only: Vec<u8>,
    /// A fast look (about a minute): fewer runs, 128 MiB throughput, a 100-agent fleet, the
    /// scale rows at 100,000; scenarios 1, 2, 3, 4, 8, 10 and 11 unless --only says otherwise.
    #[arg(long)]
    quick: bool,
    /// Runs per side for the latency scenarios.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Runs per side for the throughput scenario (at least 5).
    #[arg(long, default_value_t = 5)]
    throughput_runs: usize,
    /// Agents in the fleet scenario (10).
    #[arg(long, default_value_t = 500)]
    agents: usize,
    /// Commands per agent in the fleet scenario.
    #[arg(long, default_value_t = 20)]
    commands: usize,
    /// Ledger entries and sessions in the scale scenario (11).
    #[arg(long, default_value_t = 1_000_000)]
    scale: u64,
    /// PostgreSQL for the sessions rows of scenario 11 (a scratch database is created in it).
    #[arg(long, env = "AIRLOCK_TEST_POSTGRES_URL")]
    postgres: Option<String>,
    /// Bytes of output in the throughput scenario.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// Idle session counts for the scale scenario.
    #[arg(long, value_delimiter = ',', default_value = "100,500,2000")]
    sessions: Vec<usize>,
    /// Connected reviewers in the fan-out scenario.
    #[arg(long, default_value_t = 50)]
    reviewers: usize,
    /// Key exchange both sides are held to.
    #[arg(long, default_value = "curve25519-sha256")]
    kex: String,
    /// Cipher both sides are held to.
    #[arg(long, default_value = "chacha20-poly1305@openssh.com")]
    cipher: String,
    /// Also write the table (with the machine description) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What else the machine is doing: the figures are only as good as this.
fn conditions(when: &str) -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "nproc {nproc}, load average {when} {}, kernel {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        kernel.trim()
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let ssh = std::process::Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, Linux {}, client and server {ssh}",
        kernel.trim()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let at_start = conditions("at start");
    eprintln!("{at_start}");
    if args.quick {
        if !std::env::args().any(|a| a.starts_with("--only")) {
            args.only = vec![1, 2, 3, 4, 8, 10, 11];
        }
        args.runs = args.runs.min(10);
        args.bytes = args.bytes.min(128 << 20);
        args.agents = args.agents.min(100);
        args.commands = args.commands.min(5);
        args.scale = args.scale.min(100_000);
    }
    args.throughput_runs = args.throughput_runs.max(5);
    anyhow::ensure!(
        args.airlock.exists(),
        "{} not found: build it with `cargo build --release` (bench/run.sh does)",
        args.airlock.display()
    );
    let bin = std::fs::canonicalize(&args.airlock)?;
    let crypto = Crypto {
        kex: args.kex.clone(),
        cipher: args.cipher.clone(),
    };
    let started = Instant::now();
    let mut rows = Vec::new();
    let want = |n: u8| args.only.contains(&n);
    // Scenarios 9 and 11 need only the binary; the lab (sshd + gateway) the others.
    if args.only.iter().any(|n| (1..=8).contains(n) || *n == 10) {
        let lab = Lab::start(&bin, crypto).context("starting sshd and airlock")?;
        lab_scenarios(&lab, &bin, &args, &mut rows).await?;
    }
    if want(9) {
        eprintln!("9. classify CLI throughput");
        rows.push(scenarios::classify_cli(&bin, args.runs.min(10))?);
    }
    if want(11) {
        eprintln!(
            "11. scale: ledger verify, sessions list and history at {}",
            args.scale
        );
        rows.extend(
            scale::rows(
                &bin,
                args.scale,
                args.postgres.as_deref(),
                if args.quick {
                    5
                } else {
                    args.runs.clamp(5, 50)
                },
            )
            .await?,
        );
    }
    let table = report::markdown(&rows);
    let text = format!(
        "Machine: {}\n{at_start}; {}\n\
         Key exchange {}, cipher {}, host key ssh-ed25519; runs alternate OpenSSH and Airlock.\n\
         Measured in {:.0} s.\n\n{table}",
        machine(),
        conditions("at the end"),
        args.kex,
        args.cipher,
        started.elapsed().as_secs_f64()
    );
    println!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    let missed = rows.iter().filter(|r| r.met() == Some(false)).count();
    if missed > 0 {
        eprintln!("{missed} target(s) not met");
    }
    Ok(())
}

/// Scenarios 1–8, which need the lab.
async fn lab_scenarios(
    lab: &Lab,
    bin: &std::path::Path,
    args: &Args,
    rows: &mut Vec<report::Row>,
) -> anyhow::Result<()> {
    let want = |n: u8| args.only.contains(&n);
    if want(1) {
        eprintln!("1. exec latency, new connection");
        rows.push(scenarios::exec_latency(lab, args.runs, false)?);
    }
    if want(2) {
        eprintln!("2. exec latency, ControlMaster");
        rows.push(scenarios::exec_reuse(lab, args.runs)?);
    }
    if want(3) {
        for (pty, text) in [(false, false), (true, false), (false, true)] {
            eprintln!("3. throughput, pty={pty} text={text}");
            rows.push(scenarios::throughput(
                lab,
                args.throughput_runs,
                args.bytes,
                pty,
                text,
            )?);
        }
    }
    if want(4) {
        eprintln!("4. approval path");
        rows.extend(scenarios::approval_path(lab, bin, args.runs).await?);
    }
    if want(5) {
        eprintln!("5. idle sessions");
        rows.extend(scenarios::scale(lab, &args.sessions, 10).await?);
    }
    if want(6) {
        eprintln!("6. reviewer fan-out");
        rows.extend(scenarios::fan_out(lab, bin, args.reviewers, args.runs.min(20)).await?);
    }
    if want(7) {
        eprintln!("7. upstream target");
        rows.push(scenarios::exec_latency(lab, args.runs, true)?);
    }
    if want(8) {
        eprintln!("8. sandbox cost");
        rows.extend(scenarios::sandbox_cost(lab, bin, args.runs)?);
    }
    if want(10) {
        eprintln!(
            "10. fleet: {} agents × {} commands",
            args.agents, args.commands
        );
        rows.extend(fleet::fleet(lab, bin, args.agents, args.commands).await?);
    }
    Ok(())
}
