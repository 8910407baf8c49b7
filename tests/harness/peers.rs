//! The other real programs the tests drive beside the gateway: a terminal (tmux) and an
//! upstream OpenSSH server.

use super::*;

/// A real terminal (tmux) running `ssh -tt` as the agent: for what only a terminal does —
/// bracketed paste and window resizes.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn available() -> bool {
        // (tmux is installed by scripts/test.sh; a bare `cargo test` may lack it.)
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    pub fn open(gw: &Gateway, target: &str, cols: u16, rows: u16) -> Self {
        let key = gw.agent_key.display().to_string();
        let mut ssh = vec!["ssh".to_owned()];
        ssh.extend(CLIENT_OPTS.iter().map(|s| (*s).to_owned()));
        ssh.extend(
            [
                "-o",
                "LogLevel=ERROR",
                "-tt",
                "-i",
                &key,
                "-p",
                &gw.ssh_port.to_string(),
                "-l",
                target,
                "127.0.0.1",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        // Keep the pane after ssh exits, with its status, so the end can be read.
        Self::run(
            &format!("{}; echo \"[ssh exited $?]\"; sleep 600", ssh.join(" ")),
            cols,
            rows,
        )
    }

    /// A terminal of `cols`×`rows` running the shell command `cmd`.
    pub fn run(cmd: &str, cols: u16, rows: u16) -> Self {
        let socket = format!("airlock-test-{}-{}", std::process::id(), rand_suffix());
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
            ])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string(), cmd])
            .env_remove("TMUX")
            .status()
            .expect("tmux");
        assert!(ok.success(), "tmux new-session failed");
        Self { socket }
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux")
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    /// Paste `text` the way a terminal does: bracketed, since the gateway asked for it.
    pub fn paste(&self, text: &str) {
        assert!(self.tmux(&["set-buffer", "--", text]).status.success());
        assert!(
            self.tmux(&["paste-buffer", "-p", "-t", "t"])
                .status
                .success()
        );
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let out = self.tmux(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-J", "-t", "t", "-S", "-200"])
                .stdout,
        )
        .into_owned()
    }

    pub async fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.screen().contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {needle:?} on the screen:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// A real OpenSSH server on 127.0.0.1 for upstream-target tests: its own host key, an
/// authorized_keys holding the gateway's upstream key, logging to a file we can count in.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `ssh-ed25519 AAAA…` of the server, to pin.
    pub host_key: String,
    /// The gateway's private key for this server (mode 0600).
    pub client_key: PathBuf,
    pub user: String,
    child: Option<Child>,
}

impl Sshd {
    pub fn binary() -> Option<&'static str> {
        ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
    }

    pub async fn start() -> Self {
        let bin = Self::binary().expect("sshd (scripts/test.sh installs openssh-server)");
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().join("host_ed25519");
        keygen(&host, "upstream-host");
        let client_key = dir.path().join("gateway_key");
        keygen(&client_key, "airlock-gateway");
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(dir.path().join("gateway_key.pub"), &authorized).expect("authorized_keys");
        let host_key = std::fs::read_to_string(dir.path().join("host_ed25519.pub"))
            .expect("host pub")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
            .expect("utf8")
            .trim()
            .to_owned();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // Privilege separation needs this directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
                 PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin yes\n\
                 LogLevel VERBOSE\nMaxSessions 100\nMaxStartups 100\nAllowTcpForwarding no\n\
                 X11Forwarding no\nPrintMotd no\nAcceptEnv none\n",
                host = host.display(),
                auth = authorized.display()
            ),
        )
        .expect("sshd_config");
        let log = std::fs::File::create(dir.path().join("sshd.log")).expect("log");
        use std::os::unix::process::CommandExt;
        let child = Command::new(bin)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            // Its own process group, so stopping it also ends the per-connection children.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let s = Self {
            dir,
            port,
            host_key,
            client_key,
            user,
            child: Some(child),
        };
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start:\n{}",
                s.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Logins sshd accepted (one per upstream connection).
    pub fn accepted(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// A `[[target]]` block for the gateway config.
    pub fn target(&self, name: &str, host_key: &str) -> String {
        format!(
            "[[target]]\nname = \"{name}\"\nkind = \"ssh\"\naddress = \"127.0.0.1:{port}\"\nuser = \"{user}\"\n\
             key = \"{key}\"\nhost_key = \"{host_key}\"\nconnect_timeout = \"3s\"\nlabels = {{ env = \"prod\" }}\n",
            port = self.port,
            user = self.user,
            key = self.client_key.display()
        )
    }

    /// Stop the server and every connection it serves (sshd's per-connection processes
    /// start their own sessions, so they are found as descendants, not by process group).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            for pid in descendants(c.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every process below `root`, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so split after the last ')'.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
