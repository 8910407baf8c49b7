//! Gateway configuration: one TOML file, every key documented in
//! `config/airlock.example.toml`, unknown keys rejected with the file and line.
//!
//! With no file the built-in default applies: data in `./airlock-data`, SSH on
//! 127.0.0.1:2222, reviewers on 127.0.0.1:8080, SQLite, one `local` target, and agents enrolled
//! by adding their public key to `airlock-data/authorized_keys`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_approvals::NobodyOnline;

use crate::preauth::PreAuthConfig;
use airlock_approvals::notify::Webhook;
use airlock_approvals::whitelist::WhitelistRules;
use airlock_classifier::{Classifier, RulePack, Tier};
use russh::keys::PublicKey;
use sections::{webhook, whitelist_rules};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        col: usize,
        msg: String,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    /// A rule pack (builtin or from `[rules] packs`) does not compile; names file and line.
    #[error("{0}")]
    RulePack(#[from] airlock_classifier::RulePackError),
    /// The same, found when the classifier was first needed ([`Config::classifier`]).
    #[error("{0}")]
    Rules(std::sync::Arc<airlock_classifier::RulePackError>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    data_dir: Option<PathBuf>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    ssh: SshFile,
    #[serde(default)]
    reviewer: ReviewerFile,
    #[serde(default)]
    database: DatabaseFile,
    #[serde(default)]
    approval: ApprovalFile,
    #[serde(default)]
    shell: ShellFile,
    #[serde(default)]
    ledger: LedgerFile,
    #[serde(default)]
    cluster: ClusterFile,
    #[serde(default)]
    whitelist: WhitelistFile,
    #[serde(default)]
    grants: sections::GrantsFile,
    #[serde(default)]
    webhook: Vec<WebhookFile>,
    #[serde(default)]
    agent: Vec<AgentFile>,
    #[serde(default)]
    target: Vec<TargetFile>,
    #[serde(default)]
    rules: RulesFile,
    #[serde(default)]
    reviewer_group: Vec<authority::ReviewerGroupFile>,
    #[serde(default)]
    approval_rule: Vec<authority::ApprovalRuleFile>,
    #[serde(default)]
    log: serving::LogFile,
    #[serde(default)]
    metrics: sections::MetricsFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SshFile {
    listen: Option<String>,
    host_key: Option<PathBuf>,
    authorized_keys: Option<PathBuf>,
    max_command_bytes: Option<usize>,
    max_connections: Option<usize>,
    shutdown_grace: Option<String>,
    login_grace_time: Option<String>,
    max_startups: Option<String>,
    per_source_max_startups: Option<usize>,
    per_source_penalty: Option<String>,
    per_source_penalty_max: Option<String>,
    per_source_block_after: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewerFile {
    listen: Option<String>,
    /// The page's address as reviewers reach it (links in webhooks).
    public_url: Option<String>,
    max_connections: Option<usize>,
    max_unauthenticated: Option<usize>,
    header_read_timeout: Option<String>,
    idle_timeout: Option<String>,
    /// TLS for the listener: PEM certificate chain and key, or a generated certificate.
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_self_signed: Option<bool>,
    /// `[reviewer.oidc]`: single sign-on for the page.
    oidc: Option<oidc::OidcFile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseFile {
    url: Option<String>,
    connect_timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalFile {
    timeout: Option<String>,
    high_quorum: Option<u32>,
    medium_quorum: Option<u32>,
    auto_allow_low: Option<bool>,
    when_nobody_online: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    name: String,
    url: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    attempts: Option<u32>,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhitelistFile {
    default_ttl: Option<String>,
    max_ttl: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    heartbeat: Option<String>,
    stale_after: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    key: Option<PathBuf>,
    checkpoint_every: Option<u64>,
    checkpoint_interval: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellFile {
    idle_timeout: Option<String>,
    max_session: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentFile {
    name: String,
    keys: Vec<String>,
    targets: Vec<String>,
    #[serde(default)]
    max_tier: Option<String>,
    /// The reviewer responsible for this agent: never counts toward its requests.
    #[serde(default)]
    owner: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    packs: Vec<PathBuf>,
}

/// An agent allowed to connect.
#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub keys: Vec<PublicKey>,
    /// Target names this agent may use; `None` means every target.
    pub targets: Option<Vec<String>>,
    /// Highest tier this agent may ask for; above it, commands are denied outright.
    pub max_tier: Tier,
}

impl Agent {
    pub fn may_use(&self, target: &str) -> bool {
        self.targets
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == target))
    }
}

#[derive(Debug, Clone)]
pub enum TargetKind {
    /// This host: commands run in the sandbox, as `user` or the gateway's user.
    Local(LocalTarget),
    /// Another host, reached over SSH with the gateway's own credential (boxed: it is the
    /// larger kind, and every judged command carries its target).
    Ssh(Box<UpstreamTarget>),
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    pub labels: BTreeMap<String, String>,
    /// Variables added to the pinned environment (`env = { … }`); never a pinned name.
    pub env: BTreeMap<String, String>,
    /// Every command needs a live access grant for its agent (docs/grants.md).
    pub requires_grant: bool,
}

/// The validated configuration the gateway runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from (`built-in default` or a path), for messages.
    pub source: String,
    /// The config file, when there is one (commands may never read it).
    pub path: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub node: String,
    pub ssh_listen: SocketAddr,
    pub host_key: PathBuf,
    /// OpenSSH authorized_keys-style file; the comment of each line is the agent's name.
    pub authorized_keys: PathBuf,
    pub max_command_bytes: usize,
    pub max_connections: usize,
    /// Limits before login: grace time, startups, per-source penalties.
    pub preauth: PreAuthConfig,
    /// On SIGTERM, how long commands already running may go on before they are killed.
    pub shutdown_grace: Duration,
    pub reviewer_listen: SocketAddr,
    /// The reviewer page's public address (`https://airlock.example`), for links.
    pub reviewer_public_url: Option<String>,
    /// The reviewer listener's connection limits and timeouts.
    pub reviewer_limits: airlock_reviewer_ws::Limits,
    /// `[metrics] listen`: where `/metrics`, `/healthz` and `/readyz` are served (off when
    /// unset; docs/metrics.md).
    pub metrics_listen: Option<SocketAddr>,
    /// TLS for the reviewer listener (`[reviewer] tls_*`); `None`: plain HTTP.
    pub reviewer_tls: Option<airlock_reviewer_ws::TlsSource>,
    /// `[log]`: format and level of the gateway's log (docs/operations.md).
    pub log: LogConfig,
    /// Single sign-on for the reviewer page (`[reviewer.oidc]`), checked.
    pub reviewer_oidc: Option<airlock_reviewer_ws::OidcSettings>,
    /// Other files the config names that hold secrets (`[reviewer] tls_key`, `tls_cert`,
    /// `[reviewer.oidc] client_secret_file`): hidden from commands like the config itself.
    pub secret_files: Vec<PathBuf>,
    pub database_url: String,
    /// Start-up fails with one clear error when the database does not answer within this.
    pub database_connect_timeout: Duration,
    pub approval_timeout: Duration,
    /// Ed25519 seed (hex) that signs ledger checkpoints; created on first start.
    pub ledger_key: PathBuf,
    /// Sign the ledger head every this many entries…
    pub checkpoint_every: u64,
    /// …and at least this often while it grows.
    pub checkpoint_interval: Duration,
    /// How often this node records that it is alive (and polls its waiters).
    pub cluster_heartbeat: Duration,
    /// A peer silent this long is dead: its pending requests are expired.
    pub cluster_stale_after: Duration,
    /// SHA-256 of the config file's text (of the empty string for the built-in default).
    pub config_sha256: String,
    /// An interactive session with no input for this long is ended.
    pub idle_timeout: Duration,
    /// An interactive session is ended after this long, whatever it is doing.
    pub max_session: Duration,
    pub high_quorum: u32,
    pub medium_quorum: u32,
    pub auto_allow_low: bool,
    /// Deny at once, or wait, when no reviewer who could decide is connected.
    pub when_nobody_online: NobodyOnline,
    /// How long remembered commands stay whitelisted, and the longest anyone may choose.
    pub whitelist: WhitelistRules,
    /// `[grants] max_duration`: the longest access grant anyone may give (default 8h).
    pub grant_max_duration: Duration,
    /// Where to announce pending requests and timeouts.
    pub webhooks: Vec<Webhook>,
    pub agents: Vec<Agent>,
    pub targets: Vec<Target>,
    /// Extra classifier rule packs (TOML texts), in order.
    pub rule_packs: Vec<(PathBuf, String)>,
    /// Reviewer groups, scopes, approval rules and agent owners.
    pub authority: std::sync::Arc<airlock_approvals::Authority>,
    /// Compiled on first use: every rule's regexes take ~60 ms to build, which commands that
    /// never classify (`sessions list`, `history`, `reviewer add`, …) should not pay.
    classifier:
        std::sync::OnceLock<Result<Classifier, std::sync::Arc<airlock_classifier::RulePackError>>>,
}

/// Default size limit for one exec command line; longer ones are refused before parsing.
pub const DEFAULT_MAX_COMMAND_BYTES: usize = 16 * 1024;

impl Config {
    /// `--config FILE`, else `./airlock.toml` if present, else the built-in default.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        match explicit {
            Some(p) => Self::from_path(p),
            None if Path::new("airlock.toml").exists() => {
                Self::from_path(Path::new("airlock.toml"))
            }
            None => Self::from_file(File::default(), "built-in default".into(), Path::new(".")),
        }
    }

    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                col,
                msg: e.message().to_owned(),
            }
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut c = Self::from_file(file, path.display().to_string(), base)?;
        c.config_sha256 = sha256_hex(text);
        c.path = Some(path.to_owned());
        Ok(c)
    }

    fn from_file(f: File, source: String, base: &Path) -> Result<Self, ConfigError> {
        let invalid = |msg: String| ConfigError::Invalid {
            path: PathBuf::from(&source),
            msg,
        };
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let data_dir = rel(f.data_dir.unwrap_or_else(|| PathBuf::from("airlock-data")));
        let addr =
            |s: Option<String>, default: &str, key: &str| -> Result<SocketAddr, ConfigError> {
                let s = s.unwrap_or_else(|| default.to_owned());
                s.parse().map_err(|e| {
                    invalid(format!(
                        "{key} = {s:?}: {e} (expected HOST:PORT, e.g. 127.0.0.1:2222)"
                    ))
                })
            };
        let ssh_listen = addr(f.ssh.listen.clone(), "127.0.0.1:2222", "[ssh] listen")?;
        let max_connections = f.ssh.max_connections.unwrap_or(512);
        let preauth = sections::preauth(&f.ssh, max_connections).map_err(invalid)?;
        let reviewer_listen = addr(
            f.reviewer.listen.clone(),
            "127.0.0.1:8080",
            "[reviewer] listen",
        )?;
        let metrics_listen = match f.metrics.listen.clone() {
            Some(a) => Some(addr(Some(a), "", "[metrics] listen")?),
            None => None,
        };
        let timeout_s = f.approval.timeout.unwrap_or_else(|| "5m".into());
        let approval_timeout = humantime::parse_duration(&timeout_s)
            .map_err(|e| invalid(format!("[approval] timeout = {timeout_s:?}: {e}")))?;
        if approval_timeout.is_zero() {
            return Err(invalid(
                "[approval] timeout must be greater than zero".into(),
            ));
        }
        let duration = |v: Option<String>, default: &str, key: &str| {
            let text = v.unwrap_or_else(|| default.to_owned());
            match humantime::parse_duration(&text) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(invalid(format!("{key} must be greater than zero"))),
                Err(e) => Err(invalid(format!("{key} = {text:?}: {e}"))),
            }
        };
        let idle_timeout = duration(f.shell.idle_timeout, "30m", "[shell] idle_timeout")?;
        // Zero is allowed: commands still running at SIGTERM are then ended at once.
        let shutdown_grace = match f.ssh.shutdown_grace {
            None => Duration::from_secs(30),
            Some(text) => humantime::parse_duration(&text)
                .map_err(|e| invalid(format!("[ssh] shutdown_grace = {text:?}: {e}")))?,
        };
        let max_session = duration(f.shell.max_session, "8h", "[shell] max_session")?;
        let checkpoint_interval = duration(
            f.ledger.checkpoint_interval,
            "60s",
            "[ledger] checkpoint_interval",
        )?;
        let cluster_heartbeat = duration(f.cluster.heartbeat, "1s", "[cluster] heartbeat")?;
        let cluster_stale_after = duration(f.cluster.stale_after, "10s", "[cluster] stale_after")?;
        if cluster_stale_after <= cluster_heartbeat * 2 {
            return Err(invalid(
                "[cluster] stale_after must be more than twice the heartbeat".into(),
            ));
        }
        let checkpoint_every = f.ledger.checkpoint_every.unwrap_or(100);
        let ledger_key = f
            .ledger
            .key
            .clone()
            .map(rel)
            .unwrap_or_else(|| data_dir.join("ledger_ed25519_key"));
        if checkpoint_every == 0 {
            return Err(invalid(
                "[ledger] checkpoint_every must be at least 1".into(),
            ));
        }
        let high_quorum = f.approval.high_quorum.unwrap_or(2);
        if high_quorum < 2 {
            return Err(invalid(format!(
                "[approval] high_quorum = {high_quorum}: high commands need at least 2 reviewers"
            )));
        }
        let medium_quorum = f.approval.medium_quorum.unwrap_or(1);
        if medium_quorum < 1 {
            return Err(invalid(
                "[approval] medium_quorum must be at least 1".into(),
            ));
        }
        if medium_quorum > high_quorum {
            return Err(invalid(format!(
                "[approval] medium_quorum = {medium_quorum} is more than high_quorum = {high_quorum}: high-risk commands would need fewer people than medium ones"
            )));
        }

        let whitelist = whitelist_rules(&f.whitelist).map_err(invalid)?;
        let grant_max_duration = sections::grant_max_duration(&f.grants).map_err(invalid)?;
        let when_nobody_online =
            sections::when_nobody_online(f.approval.when_nobody_online.as_deref())
                .map_err(invalid)?;
        let reviewer_public_url =
            sections::public_url(f.reviewer.public_url.as_deref()).map_err(invalid)?;
        let reviewer_limits = sections::reviewer_limits(&f.reviewer).map_err(invalid)?;
        let reviewer_tls = serving::reviewer_tls(
            f.reviewer.tls_cert.clone().map(rel),
            f.reviewer.tls_key.clone().map(rel),
            f.reviewer.tls_self_signed,
            &data_dir,
            reviewer_listen,
            reviewer_public_url.as_deref(),
        )
        .map_err(invalid)?;
        let log = serving::log(&f.log).map_err(invalid)?;
        let secret_files: Vec<PathBuf> = [
            f.reviewer.tls_key.clone(),
            f.reviewer.tls_cert.clone(),
            f.reviewer
                .oidc
                .as_ref()
                .and_then(|o| o.client_secret_file.clone()),
        ]
        .into_iter()
        .flatten()
        .map(rel)
        .collect();
        let reviewer_oidc = match &f.reviewer.oidc {
            Some(o) => {
                Some(oidc::settings(o, rel, reviewer_public_url.as_deref()).map_err(invalid)?)
            }
            None => None,
        };
        let database_connect_timeout = duration(
            f.database.connect_timeout.clone(),
            "5s",
            "[database] connect_timeout",
        )?;
        let webhooks = f
            .webhook
            .iter()
            .map(webhook)
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;

        let mut targets = Vec::new();
        let file_targets = if f.target.is_empty() {
            vec![TargetFile::local_default()]
        } else {
            f.target
        };
        for t in file_targets {
            if targets.iter().any(|x: &Target| x.name == t.name) {
                return Err(invalid(format!("target {:?} is defined twice", t.name)));
            }
            targets.push(targets::parse(t, &rel).map_err(invalid)?);
        }

        let (agents, owners) = agents::parse(f.agent, &targets).map_err(invalid)?;

        let authority = authority::parse(f.reviewer_group, f.approval_rule, owners, &targets)
            .map_err(invalid)?;

        let mut rule_packs = Vec::new();
        for p in f.rules.packs {
            let p = rel(p);
            let text = std::fs::read_to_string(&p).map_err(|source| ConfigError::Read {
                path: p.clone(),
                source,
            })?;
            rule_packs.push((p, text));
        }

        let database_url = f
            .database
            .url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("airlock.db").display()));
        Ok(Config {
            source,
            path: None,
            host_key: f
                .ssh
                .host_key
                .map(rel)
                .unwrap_or_else(|| data_dir.join("host_ed25519_key")),
            authorized_keys: f
                .ssh
                .authorized_keys
                .map(rel)
                .unwrap_or_else(|| data_dir.join("authorized_keys")),
            data_dir,
            node: f.node.unwrap_or_else(|| "airlock-1".into()),
            ssh_listen,
            max_command_bytes: f.ssh.max_command_bytes.unwrap_or(DEFAULT_MAX_COMMAND_BYTES),
            max_connections,
            preauth,
            shutdown_grace,
            reviewer_listen,
            metrics_listen,
            reviewer_public_url,
            reviewer_limits,
            reviewer_tls,
            log,
            reviewer_oidc,
            secret_files,
            database_url,
            database_connect_timeout,
            approval_timeout,
            idle_timeout,
            max_session,
            ledger_key,
            checkpoint_every,
            checkpoint_interval,
            cluster_heartbeat,
            cluster_stale_after,
            config_sha256: sha256_hex(""),
            high_quorum,
            medium_quorum,
            auto_allow_low: f.approval.auto_allow_low.unwrap_or(true),
            when_nobody_online,
            whitelist,
            grant_max_duration,
            webhooks,
            agents,
            targets,
            rule_packs,
            authority: std::sync::Arc::new(authority),
            classifier: std::sync::OnceLock::new(),
        })
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The classifier: the built-in rule packs extended by `[rules] packs`, in order. Compiled
    /// on first use and kept; `serve` asks for it before anything starts and `policy lint`
    /// reports its error, so a bad pack still stops the one and fails the other.
    pub fn classifier(&self) -> Result<Classifier, ConfigError> {
        self.classifier
            .get_or_init(|| {
                let sources: Vec<(String, &str)> = self
                    .rule_packs
                    .iter()
                    .map(|(p, t)| (p.display().to_string(), t.as_str()))
                    .collect();
                let sources: Vec<(&str, &str)> =
                    sources.iter().map(|(n, t)| (n.as_str(), *t)).collect();
                RulePack::builtin_with(&sources)
                    .map(Classifier::with_pack)
                    .map_err(std::sync::Arc::new)
            })
            .clone()
            .map_err(ConfigError::Rules)
    }

    /// The approval policy the config describes.
    pub fn policy(&self) -> airlock_approvals::Policy {
        airlock_approvals::Policy {
            auto_allow_low: self.auto_allow_low,
            medium_quorum: self.medium_quorum,
            high_quorum: self.high_quorum,
        }
    }

    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.name == name)
    }

    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }
}

pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

mod agents;
mod authority;
mod oidc;
mod targets;
pub use agents::{authorized_keys_unsafe, read_authorized_keys};
use targets::TargetFile;
pub use targets::{LocalTarget, UpstreamTarget};
mod sections;
mod serving;
pub use serving::{DEFAULT_LOG_LEVEL, LogConfig, LogFormat, SELF_SIGNED_DIR};
#[cfg(test)]
mod tests;
