//! Helpers for the approval-authority tests (reviewer groups, scopes, approval rules, agent
//! owners): commands on any target, frames collected for a while, the ledger's entries.

use super::*;

impl Gateway {
    /// Start `cmd` as the agent on `target` and return the running client.
    pub fn spawn_on(&self, target: &str, cmd: &str) -> tokio::process::Child {
        let mut c = self.ssh_cmd(&self.agent_key, target);
        c.arg("127.0.0.1").arg(cmd);
        c.spawn().expect("ssh")
    }

    /// Run `cmd` as the agent on `target`; returns (exit code, stdout, stderr).
    pub async fn exec_on(&self, target: &str, cmd: &str) -> (i32, String, String) {
        finish(self.spawn_on(target, cmd)).await
    }

    /// Every ledger entry of `kind` (from `airlock ledger export`), in order.
    pub fn ledger_entries(&self, kind: &str) -> Vec<Value> {
        let out = self.cli(&["ledger", "export"]);
        assert!(
            out.status.success(),
            "ledger export: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["type"] == "entry" && e["kind"] == kind)
            .collect()
    }

    /// GET `path` from the reviewer listener with `token`: (HTTP status, body).
    pub async fn http_status_body(&self, path: &str, token: &str) -> (u16, String) {
        let text = self.http_get(path, Some(token)).await;
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Reviewer {
    /// Every frame that arrives within `dur` (nothing waits longer; the socket may stay idle).
    pub async fn frames_for(&mut self, dur: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + dur;
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return out,
                Ok(Some(Ok(Message::Text(t)))) => {
                    out.push(serde_json::from_str(&t).expect("json"));
                }
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("socket ended: {other:?}"),
            }
        }
    }

    /// The next `request` frame for a request on `target`, skipping others (bounded).
    pub async fn request_on(&mut self, target: &str) -> Value {
        for _ in 0..100 {
            let m = self.next_of("request").await;
            if m["target"] == target {
                return m;
            }
        }
        panic!("no request on {target}");
    }
}

// --- the approval-authority cast and helpers shared by tests/authority*.rs ------------------

/// Appended inside the harness agent's `[[agent]]` table (so its first line is the agent's
/// `owner`), then targets, reviewer groups and approval rules.
pub const AUTHORITY: &str = r#"owner = "olivia"
[[target]]
name = "db-main"
kind = "local"
labels = { env = "prod" }
[[target]]
name = "db-stage"
kind = "local"
labels = { env = "staging" }
[[target]]
name = "web-1"
kind = "local"
labels = { env = "prod" }
[[target]]
name = "xdb-1"
kind = "local"
labels = { env = "prod" }
[[reviewer_group]]
name = "sre"
members = ["alice", "bob", "frank", "olivia"]
[[reviewer_group]]
name = "dba"
members = ["carol", "frank"]
scope = { targets = ["db-*"], labels = { env = "prod" } }
[[reviewer_group]]
name = "ops"
members = ["dave"]
[[approval_rule]]
name = "prod-db-destructive"
match = { tier = "high", targets = ["db-*"], labels = { env = "prod" } }
require = [{ group = "dba", count = 1 }, { group = "sre", count = 1 }]
timeout = "10m"
[[approval_rule]]
name = "staging-anything"
match = { tier = ["low", "medium"], labels = { env = "staging" } }
require = [{ any = true, count = 1 }]
[[approval_rule]]
name = "web-needs-dba"
match = { tier = "high", targets = ["web-*"] }
require = [{ group = "dba", count = 1 }, { group = "sre", count = 1 }]
[[target]]
name = "db-pay"
kind = "local"
labels = { env = "prod", team = "payments" }
[[target]]
name = "db"
kind = "local"
labels = { env = "prod" }
"#;

pub const TARGETS: [&str; 6] = ["db-main", "db-stage", "web-1", "xdb-1", "db-pay", "db"];

pub async fn gateway(postgres: bool) -> Gateway {
    Gateway::start(Opts {
        postgres,
        extra: AUTHORITY.into(),
        more_targets: TARGETS.iter().map(|t| (*t).to_owned()).collect(),
        ..Opts::default()
    })
    .await
}

pub fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("request id").to_owned()
}

/// A high command (`rm -rf`) that also leaves a canary when it runs: (command, victim, canary).
pub fn destructive(gw: &Gateway, name: &str) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let victim = gw.path(&format!("{name}-victim"));
    std::fs::create_dir_all(&victim).expect("victim dir");
    std::fs::write(victim.join("v"), "x").expect("victim file");
    let canary = gw.path(&format!("{name}-canary"));
    let cmd = format!("rm -rf {} && touch {}", victim.display(), canary.display());
    (cmd, victim, canary)
}

/// A medium command (`touch`, then a line of output naming it): (command, canary).
pub fn medium(gw: &Gateway, name: &str) -> (String, std::path::PathBuf) {
    let canary = gw.path(&format!("{name}-canary"));
    (
        format!("touch {} && echo {name}-output", canary.display()),
        canary,
    )
}

/// The agent is still waiting and nothing ran.
pub async fn still_waiting(
    child: &mut tokio::process::Child,
    canary: &std::path::Path,
    what: &str,
) {
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        child.try_wait().expect("ssh status").is_none(),
        "{what}: the agent must still be waiting"
    );
    assert!(!canary.exists(), "{what}: the command must not have run");
}

/// A vote that must be refused with `code` (and so cast nothing).
pub async fn refused(r: &mut Reviewer, id: &str, decision: &str, code: &str) {
    let reply = r.decide(id, decision).await;
    assert_eq!(
        reply["type"], "error",
        "{decision} must be refused: {reply}"
    );
    assert_eq!(reply["code"], code, "{reply}");
}

/// The ledger's `request.vote_refused` entries for request `id`: (reviewer, code) pairs.
pub fn refused_in_ledger(gw: &Gateway, id: &str) -> Vec<(String, String)> {
    gw.ledger_entries("request.vote_refused")
        .iter()
        .map(|e| &e["payload"])
        .filter(|p| p["request"] == id)
        .map(|p| {
            (
                p["reviewer"].as_str().unwrap_or("?").to_owned(),
                p["code"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. The two-group rule.
