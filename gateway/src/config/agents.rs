//! Who an agent is: `[[agent]]` entries and the authorized_keys file, looked up in one place
//! (by key at login, by name for `policy check`).

use std::path::Path;

use airlock_classifier::Tier;
use russh::keys::PublicKey;

use std::collections::BTreeMap;

use super::{Agent, AgentFile, Config, Target, valid_name};

impl Config {
    /// The agent owning `key`: config agents first, then the authorized_keys file (re-read
    /// each time, so enrolment needs no restart).
    pub fn agent_by_key(&self, key: &PublicKey) -> Option<Agent> {
        let same = |a: &Agent| a.keys.iter().any(|k| k.key_data() == key.key_data());
        if let Some(a) = self.agents.iter().find(|a| same(a)) {
            return Some(a.clone());
        }
        read_authorized_keys(&self.authorized_keys)
            .into_iter()
            .find(same)
    }

    /// The agent called `name`, from either source.
    pub fn agent_named(&self, name: &str) -> Option<Agent> {
        self.agent(name).cloned().or_else(|| {
            read_authorized_keys(&self.authorized_keys)
                .into_iter()
                .find(|a| a.name == name)
        })
    }
}

/// Agents enrolled through the authorized_keys file: `KEYTYPE BASE64 NAME` per line. Read on
/// every authentication so enrolling or removing a key needs no restart. Such agents may use
/// every target. Malformed lines are skipped with a warning (they grant nothing).
pub fn read_authorized_keys(path: &Path) -> Vec<Agent> {
    if let Some(why) = authorized_keys_unsafe(path) {
        // Checked at start-up too; a file loosened since then enrols nobody (fail closed).
        tracing::error!("{why}; ignoring every key in it");
        return Vec::new();
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out: Vec<Agent> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = match PublicKey::from_openssh(line) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping malformed key line");
                continue;
            }
        };
        let name = key.comment().as_str_lossy().trim().to_owned();
        if !valid_name(&name) {
            tracing::warn!(file = %path.display(), line = n + 1, "skipping key: its comment must be the agent's name");
            continue;
        }
        match out.iter_mut().find(|a| a.name == name) {
            Some(a) => a.keys.push(key),
            None => out.push(Agent {
                name,
                keys: vec![key],
                targets: None,
                max_tier: Tier::High,
            }),
        }
    }
    out
}

/// `[[agent]]` entries: agents, and each agent's `owner` (agent name → reviewer name).
pub(super) fn parse(
    files: Vec<AgentFile>,
    targets: &[Target],
) -> Result<(Vec<Agent>, BTreeMap<String, String>), String> {
    let mut agents: Vec<Agent> = Vec::new();
    let mut owners = BTreeMap::new();
    for a in files {
        if let Some(o) = &a.owner {
            if !valid_name(o) {
                return Err(format!(
                    "agent {:?} owner {o:?} is not a valid reviewer name",
                    a.name
                ));
            }
            owners.insert(a.name.clone(), o.clone());
        }
        if agents.iter().any(|x| x.name == a.name) {
            return Err(format!("agent {:?} is defined twice", a.name));
        }
        if a.keys.is_empty() {
            return Err(format!("agent {:?} has no keys", a.name));
        }
        let mut keys = Vec::new();
        for (i, k) in a.keys.iter().enumerate() {
            keys.push(PublicKey::from_openssh(k.trim()).map_err(|e| {
                format!(
                    "agent {:?} key #{}: not an OpenSSH public key line: {e}",
                    a.name,
                    i + 1
                )
            })?);
        }
        for t in &a.targets {
            if !targets.iter().any(|x| &x.name == t) {
                return Err(format!("agent {:?} names unknown target {t:?}", a.name));
            }
        }
        let max_tier = match a.max_tier {
            Some(t) => t
                .parse()
                .map_err(|e: String| format!("agent {:?} max_tier: {e}", a.name))?,
            None => Tier::High,
        };
        agents.push(Agent {
            name: a.name,
            keys,
            targets: Some(a.targets),
            max_tier,
        });
    }
    Ok((agents, owners))
}

/// Why the authorized_keys file cannot be trusted (sshd's `StrictModes`): the file or its
/// directory writable by group or others, or the file owned by someone other than the
/// gateway's user or root — whoever can write it can enrol an agent. `None` when it is safe or
/// absent.
pub fn authorized_keys_unsafe(path: &Path) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Some(format!(
            "authorized_keys {} is writable by group or others (mode {mode:o}): anyone who can write it can enrol an agent; chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!(
            "authorized_keys {} is owned by uid {}, not the gateway's user (uid {me}) or root",
            path.display(),
            meta.uid()
        ));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let dmeta = std::fs::metadata(dir).ok()?;
    let dmode = dmeta.permissions().mode() & 0o777;
    if dmode & 0o022 != 0 {
        return Some(format!(
            "authorized_keys {}: its directory {} is writable by group or others (mode {dmode:o}), so anyone could replace the file; chmod go-w {}",
            path.display(),
            dir.display(),
            dir.display()
        ));
    }
    None
}
