//! The lab: one real OpenSSH `sshd` and one `airlock serve` on loopback, with throwaway keys,
//! and the single `ssh` client invocation both are measured with.
//!
//! Both servers run the same command the same way (the user's shell, `bash -c`), and the
//! client pins the same key exchange, host-key algorithm and cipher on both sides, so a ratio
//! compares the gateways, not the algorithms.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What the client negotiates on both sides.
#[derive(Debug, Clone)]
pub struct Crypto {
    pub kex: String,
    pub cipher: String,
}

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub crypto: Crypto,
    /// The agent's key: authorised on sshd and registered as agent `bot` on Airlock.
    pub agent_key: PathBuf,
    pub user: String,
    pub sshd_port: u16,
    pub airlock_port: u16,
    pub ws_url: String,
    pub airlock_pid: u32,
    sshd: Child,
    airlock: Child,
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn keygen(path: &Path) -> anyhow::Result<String> {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f"])
        .arg(path))?;
    let public = std::fs::read_to_string(path.with_extension("pub"))?;
    Ok(public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn sshd_binary() -> Option<&'static str> {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

impl Lab {
    pub fn start(airlock_bin: &Path, crypto: Crypto) -> anyhow::Result<Self> {
        let mut dir = tempfile::tempdir()?;
        // AIRLOCK_BENCH_KEEP=1 keeps the lab (logs, database, recordings) for a post-mortem.
        if std::env::var_os("AIRLOCK_BENCH_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("lab kept in {}", dir.path().display());
        }
        let d = dir.path();
        let agent_key = d.join("agent");
        let agent_pub = keygen(&agent_key)?;
        let host_key = d.join("sshd_host");
        let host_pub = keygen(&host_key)?;
        let gateway_key = d.join("gateway_key");
        let gateway_pub = keygen(&gateway_key)?;
        std::fs::write(
            d.join("authorized_keys"),
            format!("{agent_pub}\n{gateway_pub}\n"),
        )?;
        let user = run(Command::new("id").arg("-un"))?.trim().to_owned();

        // sshd: stock behaviour apart from what a throwaway instance needs. MaxStartups and
        // MaxSessions are raised so the concurrent scenarios measure work, not refusals.
        // HOME is an empty dir: sshd runs every command through the user's login shell, and
        // bash sources ~/.bashrc when sshd starts it, so a heavy one (this machine's runs
        // `pyenv init`, ~0.5 s) was measured as OpenSSH's cost per command. Airlock runs
        // `bash --noprofile --norc`; with no rc file both sides start the same bash.
        let sshd_port = free_port()?;
        let home = d.join("openssh-home");
        std::fs::create_dir_all(&home)?;
        let _ = std::fs::create_dir_all("/run/sshd");
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {sshd_port}\nListenAddress 127.0.0.1\nHostKey {host}\n\
                 AuthorizedKeysFile {auth}\nPidFile none\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin yes\nMaxSessions 100\n\
                 MaxStartups 1000\nX11Forwarding no\nPrintMotd no\nPrintLastLog no\n\
                 SetEnv HOME={home}\n",
                home = home.display(),
                host = host_key.display(),
                auth = d.join("authorized_keys").display()
            ),
        )?;
        let bin = sshd_binary().context("sshd not installed (bench/run.sh installs it)")?;
        let sshd = Command::new(bin)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log"))?)
            .spawn()
            .context("starting sshd")?;

        std::fs::write(
            d.join("airlock.toml"),
            format!(
                r#"data_dir = "data"
[ssh]
listen = "127.0.0.1:0"
max_connections = 10000
# Every bench client comes from 127.0.0.1: the flood limits would measure refusals.
max_startups = "2000:30:4000"
per_source_max_startups = 2000
[reviewer]
listen = "127.0.0.1:0"
[database]
url = "sqlite://{db}"
[approval]
timeout = "60s"
[[target]]
name = "local"
kind = "local"
bash = "/bin/bash"
[[target]]
name = "up"
kind = "ssh"
address = "127.0.0.1:{sshd_port}"
user = "{user}"
key = "{gw_key}"
host_key = "{host_pub}"
[[agent]]
name = "bot"
keys = ["{agent_pub}"]
targets = ["local", "up"]
"#,
                db = d.join("data/airlock.db").display(),
                gw_key = gateway_key.display(),
            ),
        )?;
        let mut airlock = Command::new(airlock_bin)
            .args(["serve", "--config"])
            .arg(d.join("airlock.toml"))
            .current_dir(d)
            .env(
                "RUST_LOG",
                std::env::var("AIRLOCK_BENCH_LOG").unwrap_or_else(|_| "info,russh=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(d.join("airlock.log"))?)
            .spawn()
            .context("starting airlock")?;
        let stdout = airlock.stdout.take().context("airlock stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut port, mut ws) = (None, None);
        while port.is_none() || ws.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .context("airlock did not start (see airlock.log)")?;
            if let Some(a) = line.strip_prefix("airlock: ssh listening on ") {
                port = a.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            }
            if let Some(a) = line.strip_prefix("airlock: reviewers listening on ") {
                ws = Some(format!("ws://{a}/ws"));
            }
        }
        let airlock_pid = airlock.id();
        let lab = Lab {
            dir,
            crypto,
            agent_key,
            user,
            sshd_port,
            airlock_port: port.unwrap_or_default(),
            ws_url: ws.unwrap_or_default(),
            airlock_pid,
            sshd,
            airlock,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", lab.sshd_port)).is_err() {
            if Instant::now() > deadline {
                bail!("sshd did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(lab)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The one client command line: no user config, no agent, pinned algorithms.
    pub fn ssh(&self, side: Side, extra: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args([
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "HostKeyAlgorithms=ssh-ed25519",
        ])
        .arg("-o")
        .arg(format!("KexAlgorithms={}", self.crypto.kex))
        .arg("-o")
        .arg(format!("Ciphers={}", self.crypto.cipher))
        .arg("-i")
        .arg(&self.agent_key)
        .args(extra)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
        match side {
            Side::OpenSsh => c.args(["-p", &self.sshd_port.to_string(), "-l", &self.user]),
            Side::Airlock => c.args(["-p", &self.airlock_port.to_string(), "-l", "local"]),
            Side::AirlockUpstream => c.args(["-p", &self.airlock_port.to_string(), "-l", "up"]),
        };
        c.arg("127.0.0.1");
        c
    }

    /// A reviewer token from the gateway's own CLI.
    pub fn add_reviewer(&self, airlock_bin: &Path, name: &str) -> anyhow::Result<String> {
        Ok(run(Command::new(airlock_bin)
            .arg("--config")
            .arg(self.path("airlock.toml"))
            .args(["reviewer", "add", name])
            .current_dir(self.dir.path()))?
        .trim()
        .to_owned())
    }

    /// Run the gateway's CLI on the lab's config; its stdout.
    pub fn cli(&self, airlock_bin: &Path, args: &[&str]) -> anyhow::Result<String> {
        run(Command::new(airlock_bin)
            .arg("--config")
            .arg(self.path("airlock.toml"))
            .args(args)
            .current_dir(self.dir.path()))
    }

    /// The sequence number of the ledger's last entry.
    pub fn ledger_head(&self, airlock_bin: &Path) -> anyhow::Result<i64> {
        let export = self.cli(airlock_bin, &["ledger", "export"])?;
        Ok(export
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["seq"].as_i64())
            .max()
            .unwrap_or(0))
    }

    /// Resident set size of the gateway process, in KiB.
    pub fn airlock_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.airlock_pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")
    }

    /// Recordings pile up at a gigabyte per throughput run; clear them.
    pub fn clear_recordings(&self) {
        let dir = self.path("data/recordings");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.airlock.kill();
        let _ = self.airlock.wait();
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    OpenSsh,
    Airlock,
    /// Airlock with the `up` target: the command runs on the lab's sshd.
    AirlockUpstream,
}
