//! Test harness: a real `airlock serve` process, real OpenSSH clients, scripted reviewers.
//!
//! Every wait is bounded; every port is 127.0.0.1:0 chosen by the gateway and read from its
//! start-up lines.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const BIN: &str = env!("CARGO_BIN_EXE_airlock");
/// Options every OpenSSH client (`ssh`, `sftp`) in the tests uses: no user config, no
/// known_hosts, no prompts, only the key given with `-i`.
pub const CLIENT_OPTS: &[&str] = &[
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
    "ConnectTimeout=10",
];
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub agent_key: PathBuf,
    pub ssh_port: u16,
    pub ws_url: String,
    /// The database this gateway uses (to start a second node on it).
    pub db_url: String,
    child: Option<Child>,
    pg_admin: Option<(String, String)>,
    /// Command prefix the gateway runs under (e.g. `unshare` for a tmpfs).
    launcher: Vec<String>,
    /// Extra environment for the gateway process ([`Opts::env`]).
    env: Vec<(String, String)>,
    /// See [`Opts::deny_landlock`].
    deny_landlock: bool,
    /// See [`Opts::binary`].
    binary: Option<PathBuf>,
    /// See [`Opts::leak_fd`].
    leak_fd: Option<PathBuf>,
}

/// Options for a gateway under test.
pub struct Opts {
    pub timeout: &'static str,
    pub postgres: bool,
    pub extra: String,
    /// Mount a tmpfs of this size over the recordings directory (in a private mount
    /// namespace), so a test can fill the disk under the recorder.
    pub tiny_recordings: Option<&'static str>,
    /// Targets the agent may use besides `local` (defined in `extra`).
    pub more_targets: Vec<String>,
    /// This gateway's node name (cluster tests).
    pub node: Option<&'static str>,
    /// Use this database (another gateway's) instead of a fresh one: a cluster.
    pub shared_db: Option<String>,
    /// A fixed reviewer port, so clients can reconnect to a restarted gateway.
    pub reviewer_port: Option<u16>,
    /// More keys for the `[ssh]` table (e.g. `shutdown_grace = "5s"`).
    pub ssh_extra: String,
    /// More keys for the `[reviewer]` table (e.g. `public_url = "…"`).
    pub reviewer_extra: String,
    /// More keys for the `[approval]` table (e.g. `when_nobody_online = "deny"`).
    pub approval_extra: String,
    /// Extra environment variables for the gateway process itself (not for its commands).
    pub env: Vec<(String, String)>,
    /// Start the gateway under a seccomp filter that makes the Landlock system calls fail
    /// with ENOSYS (x86_64 only), as on a kernel without Landlock.
    pub deny_landlock: bool,
    /// Run this copy of the binary instead of the build's (a test may then replace it).
    pub binary: Option<PathBuf>,
    /// Hand the gateway this file open on descriptor 7, without close-on-exec, the way a
    /// careless launcher would (`airlock serve 7>>file`).
    pub leak_fd: Option<PathBuf>,
    /// Load [`MISTAKES`]: a classifier that wrongly calls writing and executing tools
    /// read-only, so a test can show the kernel holds when the judgement does not.
    pub mistaken_classifier: bool,
}

/// A rule pack that simulates classifier mistakes (tests only).
pub const MISTAKES: &str = r#"# Simulated classifier mistakes, for tests only: these tools are taken to be read-only in
# every mode, and the rules that know better are switched off. A command the classifier
# wrongly calls low must still be unable to write: the kernel holds, not the judgement.
[[reader]]
programs = ["sed", "awk", "sort", "find", "env", "tee", "cp", "ln", "mkdir", "mktemp", "dd", "split", "tar", "install", "truncate", "rm", "mv", "rmdir", "perl", "python3", "git", "curl"]
any_flags = true

[[rule]]
id = "fs.write"
disabled = true

[[rule]]
id = "fs.tee"
disabled = true

[[rule]]
id = "fs.rm"
disabled = true

[[rule]]
id = "fs.find-delete"
disabled = true

[[rule]]
id = "fs.find-fprint"
disabled = true

[[rule]]
id = "fs.sed-in-place"
disabled = true

[[rule]]
id = "fs.tar-create"
disabled = true

[[rule]]
id = "code.inline"
disabled = true

[[rule]]
id = "code.writes"
disabled = true

[[rule]]
id = "git.write"
disabled = true

[[rule]]
id = "disk.dd"
disabled = true

[[rule]]
id = "fs.truncate-zero"
disabled = true

[[rule]]
id = "fs.permissions"
disabled = true

[[rule]]
id = "fs.curl-download"
disabled = true

[[rule]]
id = "fs.curl-write"
disabled = true
"#;

impl Default for Opts {
    fn default() -> Self {
        Self {
            timeout: "60s",
            postgres: false,
            extra: String::new(),
            tiny_recordings: None,
            more_targets: Vec::new(),
            node: None,
            shared_db: None,
            reviewer_port: None,
            ssh_extra: String::new(),
            reviewer_extra: String::new(),
            approval_extra: String::new(),
            env: Vec::new(),
            deny_landlock: false,
            binary: None,
            leak_fd: None,
            mistaken_classifier: false,
        }
    }
}

pub fn keygen(path: &Path, comment: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(st.success());
}

pub fn pg_url() -> Option<String> {
    std::env::var("AIRLOCK_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

impl Gateway {
    pub async fn start(opts: Opts) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent_key = dir.path().join("agent");
        keygen(&agent_key, "bot");
        let pubkey = std::fs::read_to_string(dir.path().join("agent.pub")).expect("pubkey");
        let mut pg_admin = None;
        let db_url = if let Some(url) = &opts.shared_db {
            url.clone()
        } else if opts.postgres {
            let admin = pg_url().expect("postgres requested without AIRLOCK_TEST_POSTGRES_URL");
            let name = format!("airlock_e2e_{}_{}", std::process::id(), rand_suffix());
            sqlx::any::install_default_drivers();
            let pool = sqlx::any::AnyPoolOptions::new()
                .connect(&admin)
                .await
                .expect("pg pool");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .expect("create db");
            pool.close().await;
            let base = &admin[..admin.rfind('/').expect("url has a database")];
            pg_admin = Some((admin.clone(), name.clone()));
            format!("{base}/{name}")
        } else {
            format!("sqlite://{}", dir.path().join("data/airlock.db").display())
        };
        let config = dir.path().join("airlock.toml");
        let mistakes = if opts.mistaken_classifier {
            let pack = dir.path().join("mistakes.toml");
            std::fs::write(&pack, MISTAKES).expect("write mistakes pack");
            format!("[rules]\npacks = [{:?}]\n", pack.display().to_string())
        } else {
            String::new()
        };
        let text = format!(
            r#"data_dir = "data"
node = "{node}"
[ssh]
listen = "127.0.0.1:0"
{ssh_extra}
[reviewer]
listen = "127.0.0.1:{reviewer_port}"
{reviewer_extra}
[database]
url = "{db_url}"
[approval]
timeout = "{timeout}"
{approval_extra}
[[target]]
name = "local"
kind = "local"
[[target]]
name = "prod"
kind = "local"
labels = {{ env = "prod" }}
[[agent]]
name = "bot"
keys = ["{key}"]
targets = [{targets}]
{extra}
{mistakes}
"#,
            timeout = opts.timeout,
            ssh_extra = opts.ssh_extra,
            reviewer_extra = opts.reviewer_extra,
            approval_extra = opts.approval_extra,
            reviewer_port = opts.reviewer_port.unwrap_or(0),
            node = opts.node.unwrap_or("airlock-1"),
            targets = std::iter::once("local".to_owned())
                .chain(opts.more_targets.iter().cloned())
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            key = pubkey.trim(),
            extra = opts.extra
        );
        std::fs::write(&config, text).expect("write config");
        let mut launcher = Vec::new();
        if let Some(size) = opts.tiny_recordings {
            let rec = dir.path().join("data/recordings");
            std::fs::create_dir_all(&rec).expect("recordings dir");
            launcher = vec![
                "unshare".to_owned(),
                "-rm".to_owned(),
                "sh".to_owned(),
                "-c".to_owned(),
                format!("mount -t tmpfs -o size={size} tmpfs \"$0\" && exec \"$@\""),
                rec.display().to_string(),
            ];
        }
        let mut gw = Gateway {
            dir,
            config,
            agent_key,
            ssh_port: 0,
            ws_url: String::new(),
            db_url: db_url.clone(),
            child: None,
            pg_admin,
            launcher,
            env: opts.env,
            deny_landlock: opts.deny_landlock,
            binary: opts.binary,
            leak_fd: opts.leak_fd,
        };
        gw.spawn();
        gw
    }

    /// Start (or restart) the gateway process and wait for its listening lines.
    pub fn spawn(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("gateway.log"))
            .expect("log");
        let bin = self.binary.clone().unwrap_or_else(|| PathBuf::from(BIN));
        let mut cmd = match self.launcher.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        if let Some(path) = &self.leak_fd {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("file to leak");
            let fd = f.as_raw_fd();
            // SAFETY: dup2 is async-signal-safe; the new descriptor has no close-on-exec.
            unsafe {
                cmd.pre_exec(move || {
                    if nix::libc::dup2(fd, 7) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            std::mem::forget(f); // open until the gateway has started
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if self.deny_landlock {
            deny_landlock_on_exec(&mut cmd);
        }
        let mut child = cmd
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env(
                "RUST_LOG",
                std::env::var("AIRLOCK_TEST_LOG").unwrap_or_else(|_| "info,russh=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start airlock");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after start-up: the gateway's stdout stays a live pipe for the
            // whole test, as it would under a process supervisor.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let (mut ssh, mut ws) = (None, None);
        while ssh.is_none() || ws.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("gateway did not start; log:\n{}", self.log()));
            if let Some(a) = line.strip_prefix("airlock: ssh listening on ") {
                ssh = Some(
                    a.rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok())
                        .expect("port"),
                );
            }
            if let Some(a) = line.strip_prefix("airlock: reviewers listening on ") {
                ws = Some(format!("ws://{a}/ws"));
            }
        }
        self.ssh_port = ssh.unwrap_or_default();
        self.ws_url = ws.unwrap_or_default();
        self.child = Some(child);
    }

    /// SIGTERM, as a service manager stops it; waits (bounded) for the process to exit and
    /// returns its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "gateway did not stop within 60 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The gateway's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kill -9: a crash, not a graceful stop.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Base `ssh` command for the agent, with `target` as user.
    pub fn ssh_cmd(&self, key: &Path, target: &str) -> tokio::process::Command {
        self.ssh_cmd_logging(key, target, "ERROR")
    }

    /// As [`Gateway::ssh_cmd`] with the client's LogLevel (INFO shows refused channels).
    pub fn ssh_cmd_logging(
        &self,
        key: &Path,
        target: &str,
        level: &str,
    ) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ssh");
        c.args(CLIENT_OPTS)
            .arg("-o")
            .arg(format!("LogLevel={level}"))
            .arg("-i")
            .arg(key)
            .args(["-p", &self.ssh_port.to_string(), "-l", target])
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Run `cmd` as the agent on `local`; returns (exit code, stdout, stderr).
    pub async fn exec(&self, cmd: &str) -> (i32, String, String) {
        let mut c = self.ssh_cmd(&self.agent_key, "local");
        c.arg("127.0.0.1").arg(cmd);
        finish(c.spawn().expect("ssh")).await
    }

    /// Start `cmd` as the agent and return the running client.
    pub fn spawn_exec(&self, cmd: &str) -> tokio::process::Child {
        let mut c = self.ssh_cmd(&self.agent_key, "local");
        c.arg("127.0.0.1").arg(cmd);
        c.spawn().expect("ssh")
    }

    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("airlock cli")
    }

    pub fn add_reviewer(&self, name: &str) -> String {
        let out = self.cli(&["reviewer", "add", name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }

    pub async fn reviewer(&self, name: &str) -> Reviewer {
        let token = self.add_reviewer(name);
        Reviewer::connect(&self.ws_url, &token).await
    }

    /// One raw HTTP/1.1 GET to the reviewer listener; the whole response text.
    pub async fn http_get(&self, path: &str, token: Option<&str>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self
            .ws_url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .to_owned();
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("send");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("answer in time")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn recordings(&self) -> Vec<PathBuf> {
        // The casts; a session's raw data file (`SESSION.raw`) is read through its cast.
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path("data/recordings"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|x| x == "cast"));
        v.sort();
        v
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.crash();
        if std::thread::panicking() {
            eprintln!(
                "---- gateway log ({}) ----\n{}",
                self.dir.path().display(),
                self.log()
            );
        }
        if let Some((admin, db)) = self.pg_admin.take() {
            // Best effort, on a fresh runtime: the test's runtime may be gone.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let pool = sqlx::any::AnyPoolOptions::new()
                        .connect(&admin)
                        .await
                        .ok()?;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    Some(())
                })
            })
            .join();
        }
    }
}

/// Make `cmd` start under a seccomp filter under which the Landlock system calls
/// (`landlock_create_ruleset`, `landlock_add_rule`, `landlock_restrict_self`: 444–446 on
/// x86_64) fail with ENOSYS, as on a kernel built without Landlock; every other call is
/// allowed. The filter is inherited by everything the process starts. x86_64 only (on other
/// architectures the filter allows everything: callers skip).
pub fn deny_landlock_on_exec(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    #[repr(C)]
    struct SockFilter {
        code: u16,
        jt: u8,
        jf: u8,
        k: u32,
    }
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const SockFilter,
    }
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const ENOSYS: u32 = 38;
    // struct seccomp_data { int nr; __u32 arch; … }
    static FILTER: [SockFilter; 8] = [
        SockFilter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 4,
        },
        SockFilter {
            code: JEQ_K,
            jt: 0,
            jf: 4,
            k: AUDIT_ARCH_X86_64,
        },
        SockFilter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        SockFilter {
            code: JEQ_K,
            jt: 3,
            jf: 0,
            k: 444,
        },
        SockFilter {
            code: JEQ_K,
            jt: 2,
            jf: 0,
            k: 445,
        },
        SockFilter {
            code: JEQ_K,
            jt: 1,
            jf: 0,
            k: 446,
        },
        SockFilter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
        SockFilter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | ENOSYS,
        },
    ];
    const PR_SET_NO_NEW_PRIVS: nix::libc::c_int = 38;
    const PR_SET_SECCOMP: nix::libc::c_int = 22;
    const SECCOMP_MODE_FILTER: nix::libc::c_ulong = 2;
    // SAFETY: only prctl(2) between fork and exec (async-signal-safe); the filter is static.
    unsafe {
        cmd.pre_exec(|| {
            let prog = SockFprog {
                len: FILTER.len() as u16,
                filter: FILTER.as_ptr(),
            };
            let one: nix::libc::c_ulong = 1;
            let zero: nix::libc::c_ulong = 0;
            if nix::libc::prctl(PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if nix::libc::prctl(
                PR_SET_SECCOMP,
                SECCOMP_MODE_FILTER,
                &prog as *const SockFprog as nix::libc::c_ulong,
                zero,
                zero,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("random");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub async fn finish(child: tokio::process::Child) -> (i32, String, String) {
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("ssh finished in time")
        .expect("ssh output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scripted reviewer over the real WebSocket protocol.
pub struct Reviewer {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pub snapshot: Vec<Value>,
}

impl Reviewer {
    pub async fn connect(url: &str, token: &str) -> Self {
        let mut req = url.into_client_request().expect("request");
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("reviewer connects");
        let mut r = Reviewer {
            ws,
            snapshot: Vec::new(),
        };
        let hello = r.next().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        let snap = r.next().await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        r.snapshot = snap["requests"].as_array().cloned().unwrap_or_default();
        r
    }

    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("message in time");
            match frame {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("json"),
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    }

    /// Next message of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        for _ in 0..100 {
            let m = self.next().await;
            if m["type"] == kind {
                return m;
            }
        }
        panic!("no {kind} message");
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    /// Vote and return the reply (`ack` or `error`), skipping broadcast events.
    pub async fn decide(&mut self, id: &str, decision: &str) -> Value {
        self.send(json!({"type": "decide", "id": id, "decision": decision, "comment": format!("{decision} from test")})).await;
        for _ in 0..100 {
            let m = self.next().await;
            if m["type"] == "ack" || m["type"] == "error" {
                return m;
            }
        }
        panic!("no reply to decide");
    }
}

/// A port nobody listens on right now (for a gateway that must come back on the same one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Whether a private mount namespace with a tmpfs can be made here (`unshare -rm`).
pub fn can_mount_tmpfs() -> bool {
    Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Poll `f` until true, bounded.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// An agent's interactive session through the real `ssh -tt`, with the keystrokes written to
/// the client's stdin and every byte the gateway sent collected from its stdout — exactly
/// what the agent's terminal would receive.
pub struct ShellClient {
    /// Prompts shown when the last line was typed: the next line waits for a newer one.
    prompts_at_last_line: usize,
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl ShellClient {
    pub async fn open(gw: &Gateway, target: &str) -> Self {
        use tokio::io::AsyncReadExt;
        let mut c = gw.ssh_cmd(&gw.agent_key, target);
        c.arg("-tt").arg("127.0.0.1").stdin(Stdio::piped());
        let mut child = c.spawn().expect("ssh -tt");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.extend_from_slice(&buf[..n]);
                }
            }
        });
        let s = Self {
            prompts_at_last_line: 0,
            child,
            stdin,
            seen,
        };
        s.wait_for("bot@").await;
        s
    }

    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub async fn send(&mut self, keys: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(keys).await.expect("keys");
        self.stdin.flush().await.expect("flush");
    }

    /// Type a line and press Enter, once the prompt is showing (keys typed while a command
    /// runs go to that command, as on any terminal).
    pub async fn line(&mut self, text: &str) {
        self.wait_prompt().await;
        self.send(format!("{text}\r").as_bytes()).await;
    }

    /// Once the next fresh prompt shows, press ctrl-d and wait for the client to exit (a
    /// ctrl-d sent while the last command still runs would go to that command instead).
    pub async fn quit(mut self) -> (i32, String) {
        self.wait_prompt().await;
        self.send(b"\x04").await;
        self.exit().await
    }

    /// Wait for a fresh prompt, newer than the one the last line was typed at.
    async fn wait_prompt(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.bytes();
            let on = find_last(&t, b"\x1b[?2004h");
            let off = find_last(&t, b"\x1b[?2004l");
            let prompts = t.windows(8).filter(|w| w == b"\x1b[?2004h").count();
            if on.is_some() && on > off && prompts > self.prompts_at_last_line {
                self.prompts_at_last_line = prompts;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no prompt; transcript:\n{}",
                self.transcript()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until the transcript contains `needle` `times` times in all (bounded).
    pub async fn wait_for_n(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.transcript().matches(needle).count() >= times {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "no {needle:?} (×{times}) in the session; transcript:\n{}",
            self.transcript()
        );
    }

    /// Wait until `needle` appears after the last `after` (a prompt after a unit's output: the
    /// editor redraws the prompt while a line is typed, so counting prompts is not enough).
    pub async fn wait_for_after(&self, after: &str, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let t = self.transcript();
            if let Some(i) = t.rfind(after)
                && t[i + after.len()..].contains(needle)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "no {needle:?} after {after:?} in the session; transcript:\n{}",
            self.transcript()
        );
    }

    pub async fn wait_for(&self, needle: &str) {
        self.wait_for_n(needle, 1).await;
    }

    /// Wait for the client to exit; returns its status.
    pub async fn exit(mut self) -> (i32, String) {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("ssh exited in time")
            .expect("ssh status");
        // Let the reader take the last bytes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status.code().unwrap_or(-1), self.transcript())
    }
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

mod access;
#[allow(unused_imports)] // only the access-request tests use these
pub use access::*;
mod authority;
#[allow(unused_imports)] // only the authority tests use these
pub use authority::*;
mod grants;
#[allow(unused_imports)] // only the grant tests use these
pub use grants::*;
mod peers;
#[allow(unused_imports)] // each test binary uses a different part of the harness
pub use peers::{Sshd, Tmux};
mod promote;
#[allow(unused_imports)] // only the staging-first tests use these
pub use promote::*;
