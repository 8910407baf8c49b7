//! A gateway run directly (not through the harness), so a test can read its whole banner.

use super::*;

/// A gateway run directly (not through the harness), to read its whole banner.
pub struct Serve {
    child: Option<Child>,
    pub banner: Vec<String>,
    log: PathBuf,
}

impl Serve {
    pub fn start(dir: &Path, listen: &str, reviewer_extra: &str) -> Self {
        let config = dir.join("airlock.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"data\"\n[ssh]\nlisten = \"127.0.0.1:0\"\n[reviewer]\nlisten = \"{listen}\"\n{reviewer_extra}\n"
            ),
        )
        .expect("config");
        let log = dir.join("gateway.log");
        let stderr = std::fs::File::create(&log).expect("log");
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .current_dir(dir)
            .env("RUST_LOG", "info,russh=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("airlock serve");
        let lines = read_lines(child.stdout.take().expect("stdout"));
        let mut banner = Vec::new();
        let deadline = Instant::now() + WAIT;
        while !banner.iter().any(|l: &String| l.starts_with("Next steps")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(l) => banner.push(l),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "no banner: {banner:?}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        Self {
            child: Some(child),
            banner,
            log,
        }
    }

    pub fn line(&self, prefix: &str) -> String {
        self.banner
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in the banner: {:?}", self.banner))
            .trim()
            .to_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            if wait_child(&mut c, Duration::from_secs(30)).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
