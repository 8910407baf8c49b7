//! The fleet-shaped load (issue 24): many agents at once, each an in-process russh client on
//! one connection running its commands one after another on fresh channels — 80% low (`true`,
//! auto-allowed), 20% medium (`touch`, approved by a scripted reviewer over the WebSocket).
//! Reports commands/s, p50/p99 per class, the gateway's CPU seconds per 1,000 commands (from
//! `/proc/PID/stat`) and its peak RSS (`VmHWM`), then checks the books: every command has its
//! ledger entries, every recording is closed, and `airlock ledger verify --recordings` passes.
//! Then the low part alone runs on both servers (Airlock and the lab's OpenSSH sshd) with the
//! same client and concurrency: that gives the ratio, and the machine's busy CPU per command
//! during each (client, server, helpers, shells and commands together).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use tokio::task::JoinSet;

use crate::idle::Client;
use crate::lab::Lab;
use crate::report::{Better, Row, Target};
use crate::reviewers;
use crate::stats::Samples;

/// Who the fleet talks to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Airlock,
    OpenSsh,
}

/// One agent's results: (medium?, latency) per command.
type Timings = Vec<(bool, Duration)>;

async fn connect(port: u16, user: &str, key: Arc<PrivateKey>) -> anyhow::Result<Handle<Client>> {
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        ..Default::default()
    });
    let mut h = client::connect(config, ("127.0.0.1", port), Client).await?;
    let auth = h
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None))
        .await?;
    anyhow::ensure!(auth.success(), "the server refused the key");
    Ok(h)
}

/// Run `cmd` on a new channel; its exit status.
async fn run(h: &Handle<Client>, cmd: &str) -> anyhow::Result<u32> {
    let mut ch = h.channel_open_session().await?;
    ch.exec(true, cmd).await?;
    let mut status = None;
    while let Some(msg) = ch.wait().await {
        match msg {
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    status.context("the channel closed without an exit status")
}

/// CPU time the whole machine spent busy so far (all cores, from `/proc/stat`): user, nice,
/// system, irq, softirq and steal.
fn machine_busy_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu = stat.lines().next().context("/proc/stat")?;
    let f: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<f64>().unwrap_or(0.0))
        .collect();
    anyhow::ensure!(f.len() >= 8, "/proc/stat: short cpu line");
    let busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(busy / hz.max(1.0))
}

/// `agents` connections (opened `parallel` at a time), then all of them run `commands` each.
/// Returns every agent's timings, the wall time of the command phase and the machine's busy
/// CPU seconds during it (client and server together).
async fn drive(
    server: Server,
    lab: &Lab,
    agents: usize,
    commands: usize,
    medium_every: usize,
) -> anyhow::Result<(Vec<Timings>, Duration, f64)> {
    let key = Arc::new(russh::keys::load_secret_key(&lab.agent_key, None).context("agent key")?);
    let (port, user) = match server {
        Server::Airlock => (lab.airlock_port, "local".to_owned()),
        Server::OpenSsh => (lab.sshd_port, lab.user.clone()),
    };
    let mut handles = Vec::with_capacity(agents);
    let mut set = JoinSet::new();
    let mut started = 0;
    while handles.len() < agents {
        while started < agents && set.len() < 32 {
            let (key, user) = (key.clone(), user.clone());
            set.spawn(async move {
                tokio::time::timeout(Duration::from_secs(60), connect(port, &user, key))
                    .await
                    .context("handshake timed out")?
            });
            started += 1;
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        handles.push(done??);
    }
    let probe = lab.path("fleet-probe");
    let medium = format!("touch {}", probe.display());
    let go = Arc::new(tokio::sync::Barrier::new(agents + 1));
    let mut set = JoinSet::new();
    for (i, h) in handles.into_iter().enumerate() {
        let (go, medium) = (go.clone(), medium.clone());
        set.spawn(async move {
            go.wait().await;
            let mut t = Timings::with_capacity(commands);
            for j in 0..commands {
                // Spread the medium commands evenly over agents and over time.
                let is_medium = medium_every > 0 && (i + j) % medium_every == 0;
                let cmd = if is_medium { medium.as_str() } else { "true" };
                let t0 = Instant::now();
                let status = tokio::time::timeout(Duration::from_secs(120), run(&h, cmd))
                    .await
                    .context("a command took over 120 s")??;
                anyhow::ensure!(status == 0, "{cmd:?} exited {status}");
                t.push((is_medium, t0.elapsed()));
            }
            let _ = h
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
            anyhow::Ok(t)
        });
    }
    go.wait().await;
    let t0 = Instant::now();
    let busy0 = machine_busy_seconds()?;
    let mut all = Vec::with_capacity(agents);
    while let Some(done) = set.join_next().await {
        all.push(done??);
    }
    Ok((all, t0.elapsed(), machine_busy_seconds()? - busy0))
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").context("/proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz.max(1.0))
}

fn hwm_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc status")
}

/// The ledger since entry `after`: every command submitted, started and exited, every session
/// opened is closed with a closed recording; then `ledger verify --recordings` on the export.
fn check_books(lab: &Lab, bin: &Path, after: i64, commands: usize) -> anyhow::Result<String> {
    let export = lab.cli(bin, &["ledger", "export"])?;
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut opened: HashMap<String, bool> = HashMap::new();
    let mut cast_closed: HashMap<String, bool> = HashMap::new();
    for line in export.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["type"] != "entry" || v["seq"].as_i64().unwrap_or(0) <= after {
            continue;
        }
        let kind = v["kind"].as_str().unwrap_or_default().to_owned();
        let session = v["payload"]["session"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match kind.as_str() {
            "session.open" => {
                opened.insert(session, false);
            }
            "session.close" => {
                opened.insert(session, true);
            }
            "recording.closed"
                if v["payload"]["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with(".cast")) =>
            {
                cast_closed.insert(session, true);
            }
            _ => {}
        }
        *count.entry(kind).or_default() += 1;
    }
    for kind in ["command.submitted", "exec.start", "exec.exit"] {
        let n = count.get(kind).copied().unwrap_or(0);
        if n != commands {
            bail!("{n} {kind} entries for {commands} commands");
        }
    }
    let open = opened.values().filter(|c| !**c).count();
    if open > 0 || opened.len() != commands {
        bail!(
            "{} sessions opened for {commands} commands, {open} not closed",
            opened.len()
        );
    }
    if let Some(s) = opened.keys().find(|s| !cast_closed.contains_key(*s)) {
        bail!("session {s} has no recording.closed entry");
    }
    // Only the fleet's part of the ledger: earlier scenarios deleted their recordings (the
    // throughput runs write gigabytes). An export that starts mid-chain verifies, with its link
    // to earlier entries taken on trust.
    let mine: String = export
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["seq"].as_i64().is_some_and(|s| s > after))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let file = lab.path("fleet-ledger.jsonl");
    std::fs::write(&file, &mine)?;
    let recordings = lab.path("data/recordings");
    let out = std::process::Command::new(bin)
        .args(["ledger", "verify"])
        .arg(&file)
        .arg("--recordings")
        .arg(&recordings)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "ledger verify --recordings failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(format!(
        "{commands} commands: every one submitted/started/exited in the ledger, {} sessions closed with their recordings; {}",
        opened.len(),
        text.lines().next().unwrap_or_default()
    ))
}

/// The scenario; `agents` × `commands`, one in five medium.
pub async fn fleet(
    lab: &Lab,
    bin: &Path,
    agents: usize,
    commands: usize,
) -> anyhow::Result<Vec<Row>> {
    let token = lab.add_reviewer(bin, "fleet-approver")?;
    let approver = reviewers::spawn_approver(reviewers::connect(&lab.ws_url, &token).await?);
    let after = lab.ledger_head(bin)?;
    let cpu0 = cpu_seconds(lab.airlock_pid)?;
    let (timings, wall, _) = drive(Server::Airlock, lab, agents, commands, 5).await?;
    let cpu = cpu_seconds(lab.airlock_pid)? - cpu0;
    let hwm = hwm_kib(lab.airlock_pid)?;
    approver.abort();
    let total = agents * commands;
    let (mut low, mut med) = (Samples::default(), Samples::default());
    for (m, d) in timings.iter().flatten() {
        if *m {
            med.push_dur(*d);
        } else {
            low.push_dur(*d);
        }
    }
    eprintln!(
        "  {total} commands in {:.1} s; gateway CPU {cpu:.1} s, VmHWM {hwm} KiB",
        wall.as_secs_f64()
    );
    // Let the last sessions close (the client hears the exit before the gateway closes the
    // recording and writes the last ledger rows).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let books = check_books(lab, bin, after, total)?;
    eprintln!("  books: {books}");
    // The low part alone, on both servers, with the same client and concurrency: the ratio.
    // CPU here is the whole server side: the process, and what its reaped children used.
    let low_n = commands * 4 / 5;
    let (a_timings, a_wall, a_cpu) = drive(Server::Airlock, lab, agents, low_n, 0).await?;
    let (o_timings, o_wall, o_cpu) = drive(Server::OpenSsh, lab, agents, low_n, 0).await?;
    let (mut a_low, mut o_low) = (Samples::default(), Samples::default());
    for (_, d) in a_timings.iter().flatten() {
        a_low.push_dur(*d);
    }
    for (_, d) in o_timings.iter().flatten() {
        o_low.push_dur(*d);
    }
    let low_total = agents * low_n;
    let one = |v: f64| {
        let mut s = Samples::default();
        s.push(v);
        s
    };
    let rate = one(total as f64 / wall.as_secs_f64());
    let a_rate = one(low_total as f64 / a_wall.as_secs_f64());
    let o_rate = one(low_total as f64 / o_wall.as_secs_f64());
    let cpu_per = one(cpu / total as f64 * 1000.0);
    let server_cpu = (
        one(o_cpu / low_total as f64 * 1000.0),
        one(a_cpu / low_total as f64 * 1000.0),
    );
    let peak = one(hwm as f64 / 1024.0);
    let name = |s: &str| format!("10. fleet, {agents} agents × {commands} commands: {s}");
    Ok(vec![
        Row {
            scenario: name("commands/s, 80% low + 20% medium approved (Airlock only)"),
            unit: "commands/s",
            better: Better::Higher,
            openssh: None,
            airlock: rate,
            target: Target::None,
        },
        Row {
            scenario: name("low command latency in that mix"),
            unit: "ms",
            better: Better::Lower,
            openssh: None,
            airlock: low,
            target: Target::None,
        },
        Row {
            scenario: name("medium command latency (approved over the WebSocket)"),
            unit: "ms",
            better: Better::Lower,
            openssh: None,
            airlock: med,
            target: Target::None,
        },
        Row {
            scenario: name("gateway CPU seconds per 1,000 commands of the mix"),
            unit: "s",
            better: Better::Lower,
            openssh: None,
            airlock: cpu_per,
            target: Target::None,
        },
        Row {
            scenario: name("gateway peak RSS (VmHWM, whole run so far)"),
            unit: "MiB",
            better: Better::Lower,
            openssh: None,
            airlock: peak,
            target: Target::None,
        },
        Row {
            scenario: format!(
                "10. fleet, {agents} agents × {low_n} low commands only, both servers: commands/s"
            ),
            unit: "commands/s",
            better: Better::Higher,
            openssh: Some(o_rate),
            airlock: a_rate,
            target: Target::Ratio(2.0),
        },
        Row {
            scenario: format!("10. fleet, {agents} agents × {low_n} low commands only: latency"),
            unit: "ms",
            better: Better::Lower,
            openssh: Some(o_low),
            airlock: a_low,
            target: Target::None,
        },
        Row {
            scenario: "10. fleet, low commands only: machine CPU seconds per 1,000 commands (both cores, client included, command phase only)".into(),
            unit: "s",
            better: Better::Lower,
            openssh: Some(server_cpu.0),
            airlock: server_cpu.1,
            target: Target::None,
        },
    ])
}
