//! Persistence for reviewers, sessions, requests, votes and the whitelist.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL (clusters) through sqlx's
//! `Any` driver, with one set of portable migrations. Every state change on a request is a
//! conditional update (`… WHERE status = 'pending'`), so a vote, a timeout and a restart can
//! never both win: exactly one resolves the request, and the others see that it is resolved.

use std::collections::BTreeMap;
use std::time::Duration;

use airlock_classifier::{Reason, Tier};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::authority::{Progress, Quorum};
use crate::ids::{self, RandomError};
use crate::model::{Outcome, RequestStatus, RequestView, Vote, VoteDecision};

/// The file a `sqlite://PATH[?…]` URL names (`None` for other databases and `:memory:`).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// How long connecting to the database may take before start-up (or a CLI command) fails.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database URL fit for a message: a password (in the user info or a `password=` query
/// parameter) replaced by `***`.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        None => base,
        Some(q) => {
            let q: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{base}?{}", q.join("&"))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url {0:?} (expected sqlite://… or postgres://…)")]
    Url(String),
    #[error("the ledger is too busy: no append succeeded after many attempts")]
    Contention,
    /// An append written together with others (one transaction) failed with them.
    #[error("ledger append failed: {0}")]
    LedgerBatch(String),
    #[error("reviewer {0:?} already exists")]
    ReviewerExists(String),
    #[error("no reviewer named {0:?}")]
    NoReviewer(String),
    #[error("invalid reviewer name {0:?}: use 1-64 letters, digits, '.', '_' or '-'")]
    ReviewerName(String),
    #[error("corrupt row in {table}: {msg}")]
    Corrupt { table: &'static str, msg: String },
    #[error("cannot reach the database {url} within {}s: {msg}", within.as_secs_f32())]
    Unreachable {
        url: String,
        within: Duration,
        msg: String,
    },
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("no grant with id {0:?}")]
    NoGrant(String),
    #[error("grant {id} has already ended ({how})")]
    GrantEnded { id: String, how: String },
}

/// Result of recording a vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteResult {
    /// Vote stored; the request is still pending with these approvals of `quorum` needed.
    Counted {
        approvals: Vec<String>,
        quorum: u32,
        /// Who fills which need so far.
        progress: Progress,
    },
    /// Vote stored and it settled the request; every vote on it, in order.
    Resolved {
        outcome: Outcome,
        votes: Vec<Vote>,
        quorum: u32,
        progress: Progress,
    },
    NotFound,
    /// The request was already settled (status given).
    NotPending(RequestStatus),
    AlreadyVoted,
    OwnRequest,
    /// The reviewer is excluded from this request's quorum (the agent's owner).
    Excluded,
}

impl VoteResult {
    /// The outcome this vote settled, if it settled one.
    pub fn settled(&self) -> Option<Outcome> {
        match self {
            VoteResult::Resolved { outcome, .. } => Some(*outcome),
            _ => None,
        }
    }
}

/// A new approval request, as the gateway submits it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub session_id: String,
    pub agent: String,
    pub target: String,
    pub command: String,
    pub tier: Tier,
    pub score: u8,
    pub reasons: Vec<Reason>,
    /// Who must approve (the rule's needs or the tier default).
    pub needs: Quorum,
    pub expires_at: i64,
    /// The gateway node that holds the waiting agent.
    pub node: String,
    /// Why the agent says it runs this (`AIRLOCK_REASON`), if it said.
    pub reason: Option<String>,
    /// The target's labels (`env = "prod"`, …).
    pub labels: BTreeMap<String, String>,
    /// A command, or an access request for `target`.
    pub kind: crate::model::RequestKind,
    /// Files the command runs, as the gateway read them.
    pub scripts: Vec<crate::scripts::ScriptFile>,
}

/// What `airlock sessions list` narrows by; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub agent: Option<String>,
    pub target: Option<String>,
    /// Started at or after (ms since the epoch).
    pub since: Option<i64>,
}

/// A session row as the CLI lists it.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub agent: String,
    pub target: String,
    pub kind: String,
    pub command: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub exit_status: Option<i64>,
    pub recording: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

/// Columns of `requests` that [`Store::request_from_row`] reads.
macro_rules! request_cols {
    () => {
        "id, session_id, agent, target, command, tier, score, reasons, quorum, status, created_at, expires_at, node, reason, labels, needs, kind, access_duration_s, scripts"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A request row's `status` column, typed; an unknown word is a corrupt row, never "pending".
fn status_of(r: &AnyRow) -> Result<RequestStatus, StoreError> {
    let s: String = r.try_get("status")?;
    RequestStatus::parse(&s).map_err(|e| corrupt("requests", e))
}

fn corrupt(table: &'static str, msg: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        msg: msg.to_string(),
    }
}

impl Store {
    /// Connect and bring the schema up to date. `sqlite://` files are created if missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_within(url, DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Connect (and migrate), giving up with [`StoreError::Unreachable`] after `timeout`.
    pub async fn connect_within(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let store = Self::open(url, timeout).await?;
        MIGRATOR.run(&store.pool).await?;
        Ok(store)
    }

    /// Connect without migrating (administrative connections in tests).
    pub async fn connect_raw(url: &str) -> Result<Self, StoreError> {
        Self::open(url, DEFAULT_CONNECT_TIMEOUT).await
    }

    async fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(StoreError::Url(url.to_owned()));
        }
        let url = if is_sqlite && !url.contains("mode=") {
            // A database that exists is opened without `create`: if its file disappears while
            // the gateway runs, a new pool connection fails instead of starting an empty one.
            let file = sqlite_file(url);
            // A new database file is made here, once (an empty file is an empty database).
            let mode = match &file {
                Some(p) if !p.exists() => {
                    let mut f = std::fs::OpenOptions::new();
                    f.write(true).create_new(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
                    match f.open(p) {
                        Ok(_) => "rw",
                        // Let SQLite say what is wrong with the path.
                        Err(_) => "rwc",
                    }
                }
                Some(_) => "rw",
                None => "rwc",
            };
            format!(
                "{url}{}mode={mode}",
                if url.contains('?') { '&' } else { '?' }
            )
        } else {
            url.to_owned()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if is_sqlite { 4 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if is_sqlite {
                        // WAL lets the CLI read and write while the gateway runs; the busy
                        // timeout turns brief lock contention into a wait, not an error.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        // Checkpoints (copying the WAL into the database, with an fsync) run
                        // from a background task instead of inside whichever commit crosses
                        // the threshold, so no decision waits behind one.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .acquire_timeout(timeout)
            .connect(&url);
        // One clear error within the timeout, never a long silence.
        let pool = match tokio::time::timeout(timeout, pool).await {
            Ok(Ok(pool)) => pool,
            Ok(Err(e)) => {
                return Err(StoreError::Unreachable {
                    url: redact(&url),
                    within: timeout,
                    msg: e.to_string(),
                });
            }
            Err(_) => {
                return Err(StoreError::Unreachable {
                    url: redact(&url),
                    within: timeout,
                    msg: "no answer".into(),
                });
            }
        };
        Ok(Self { pool })
    }

    /// Close the pool (tests drop their throwaway databases afterwards).
    /// Move the SQLite write-ahead log into the database without blocking writers (a no-op on
    /// PostgreSQL). The gateway calls this every second; see `connect_raw`.
    pub async fn checkpoint_wal(&self) -> Result<(), StoreError> {
        if !self.is_postgres() {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // --- reviewers -------------------------------------------------------------------------

    // --- requests and votes ----------------------------------------------------------------

    pub async fn insert_request(
        &self,
        req: &NewRequest,
        now: i64,
    ) -> Result<RequestView, StoreError> {
        let id = ids::new_id()?;
        let reasons = serde_json::to_string(&req.reasons).map_err(|e| corrupt("requests", e))?;
        let labels = serde_json::to_string(&req.labels).map_err(|e| corrupt("requests", e))?;
        let needs = serde_json::to_string(&req.needs).map_err(|e| corrupt("requests", e))?;
        let scripts = scripts::column(&req.scripts)?;
        sqlx::query(
            "INSERT INTO requests (id, session_id, agent, target, command, tier, score, reasons, quorum, status, created_at, expires_at, node, reason, labels, needs, kind, access_duration_s, scripts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(&id)
        .bind(&req.session_id)
        .bind(&req.agent)
        .bind(&req.target)
        .bind(&req.command)
        .bind(req.tier.as_str())
        .bind(i64::from(req.score))
        .bind(reasons)
        .bind(i64::from(req.needs.total()))
        .bind(now)
        .bind(req.expires_at)
        .bind(&req.node)
        .bind(&req.reason)
        .bind(labels)
        .bind(needs)
        .bind(req.kind.as_str())
        .bind(access::duration_column(req.kind)?)
        .bind(scripts)
        .execute(&self.pool)
        .await?;
        self.keep_script_texts(&req.scripts, now).await?;
        Ok(RequestView {
            scripts: req.scripts.clone(),
            kind: req.kind,
            reason: req.reason.clone(),
            labels: req.labels.clone(),
            node: req.node.clone(),
            id,
            session_id: req.session_id.clone(),
            agent: req.agent.clone(),
            target: req.target.clone(),
            command: req.command.clone(),
            tier: req.tier,
            score: req.score,
            reasons: req.reasons.clone(),
            quorum: req.needs.total(),
            needs: req.needs.clone(),
            status: RequestStatus::Pending,
            created_at: now,
            expires_at: req.expires_at,
            votes: Vec::new(),
        })
    }

    fn request_from_row(r: &AnyRow) -> Result<RequestView, StoreError> {
        let tier: String = r.try_get("tier")?;
        let reasons: String = r.try_get("reasons")?;
        let score: i64 = r.try_get("score")?;
        let quorum: i64 = r.try_get("quorum")?;
        let labels: Option<String> = r.try_get("labels")?;
        let quorum = u32::try_from(quorum).map_err(|e| corrupt("requests", e))?;
        let needs: Option<String> = r.try_get("needs")?;
        let needs = match needs {
            Some(n) => serde_json::from_str(&n).map_err(|e| corrupt("requests", e))?,
            None => Quorum::anyone(quorum),
        };
        Ok(RequestView {
            scripts: scripts::from_row(r)?,
            kind: access::kind_of(r)?,
            reason: r.try_get("reason")?,
            labels: match labels {
                Some(l) => serde_json::from_str(&l).map_err(|e| corrupt("requests", e))?,
                None => BTreeMap::new(),
            },
            id: r.try_get("id")?,
            session_id: r.try_get("session_id")?,
            agent: r.try_get("agent")?,
            target: r.try_get("target")?,
            command: r.try_get("command")?,
            tier: tier.parse().map_err(|e: String| corrupt("requests", e))?,
            score: u8::try_from(score).map_err(|e| corrupt("requests", e))?,
            reasons: serde_json::from_str(&reasons).map_err(|e| corrupt("requests", e))?,
            quorum,
            needs,
            status: status_of(r)?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            node: r.try_get("node")?,
            votes: Vec::new(),
        })
    }

    fn vote_from_row(r: &AnyRow) -> Result<Vote, StoreError> {
        let d: String = r.try_get("decision")?;
        Ok(Vote {
            reviewer: r.try_get("reviewer")?,
            decision: match d.as_str() {
                "approve" => VoteDecision::Approve,
                "deny" => VoteDecision::Deny,
                other => return Err(corrupt("votes", format!("decision {other:?}"))),
            },
            comment: r.try_get("comment")?,
            at: r.try_get("at")?,
            groups: match r.try_get::<Option<String>, _>("groups")? {
                Some(g) => serde_json::from_str(&g).map_err(|e| corrupt("votes", e))?,
                None => Vec::new(),
            },
        })
    }

    async fn votes_for(&self, id: &str) -> Result<Vec<Vote>, StoreError> {
        let rows = sqlx::query(
            "SELECT reviewer, decision, comment, at, groups FROM votes WHERE request_id = $1 ORDER BY at, reviewer",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::vote_from_row).collect()
    }

    pub async fn get_request(&self, id: &str) -> Result<Option<RequestView>, StoreError> {
        let sql = concat!("SELECT ", request_cols!(), " FROM requests WHERE id = $1");
        let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let mut req = Self::request_from_row(&row)?;
        req.votes = self.votes_for(id).await?;
        Ok(Some(req))
    }

    /// Pending requests that have not yet passed their deadline, oldest first.
    pub async fn pending_requests(&self, now: i64) -> Result<Vec<RequestView>, StoreError> {
        let sql = concat!(
            "SELECT ",
            request_cols!(),
            " FROM requests WHERE status = 'pending' AND expires_at > $1 ORDER BY created_at"
        );
        let rows = sqlx::query(sql).bind(now).fetch_all(&self.pool).await?;
        let mut out: Vec<RequestView> = rows
            .iter()
            .map(Self::request_from_row)
            .collect::<Result<_, _>>()?;
        if out.is_empty() {
            return Ok(out);
        }
        // All their votes in one query, not one query per request.
        let votes = sqlx::query(
            "SELECT v.request_id, v.reviewer, v.decision, v.comment, v.at, v.groups FROM votes v \
             JOIN requests r ON r.id = v.request_id \
             WHERE r.status = 'pending' AND r.expires_at > $1 ORDER BY v.at, v.reviewer",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Self::attach_votes(&mut out, &votes)?;
        Ok(out)
    }

    /// Give each request its votes, from rows of one query over all of them (with
    /// `request_id`, in vote order) instead of one query per request.
    fn attach_votes(requests: &mut [RequestView], votes: &[AnyRow]) -> Result<(), StoreError> {
        let index: std::collections::HashMap<String, usize> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        for v in votes {
            let rid: String = v.try_get("request_id")?;
            if let Some(&i) = index.get(&rid) {
                requests[i].votes.push(Self::vote_from_row(v)?);
            }
        }
        Ok(())
    }

    /// Settle a pending request without a vote (timeout, withdrawal). Returns the status the
    /// request ends up with: `outcome` if this call settled it, the earlier one otherwise.
    pub async fn settle(
        &self,
        id: &str,
        outcome: Outcome,
        by: &str,
        note: &str,
        now: i64,
    ) -> Result<Option<RequestStatus>, StoreError> {
        let changed = self.write_outcome(id, outcome, by, note, now, true).await?;
        if changed == 1 {
            return Ok(Some(RequestStatus::Settled(outcome)));
        }
        let row = sqlx::query("SELECT status FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| status_of(&r)).transpose()
    }

    /// Expire what `node` held (and requests from before nodes were recorded): at start-up,
    /// the waiters are gone. Other nodes' requests are left alone.
    pub async fn expire_pending_of(
        &self,
        node: &str,
        note: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM requests WHERE status = 'pending' AND (node = $1 OR node = '')",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        for id in &ids {
            self.settle(id, Outcome::Expired, "airlock", note, now)
                .await?;
        }
        Ok(ids)
    }

    /// Replace a settled outcome (an approval whose outcome could not be audited becomes a
    /// deny). The one write that may change a settled request.
    pub async fn overrule(
        &self,
        id: &str,
        outcome: Outcome,
        by: &str,
        note: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write_outcome(id, outcome, by, note, now, false)
            .await
            .map(|_| ())
    }

    /// Set a request's outcome (only while it is pending, with `pending_only`); rows changed.
    async fn write_outcome(
        &self,
        id: &str,
        outcome: Outcome,
        by: &str,
        note: &str,
        now: i64,
        pending_only: bool,
    ) -> Result<u64, StoreError> {
        let sql = if pending_only {
            "UPDATE requests SET status = $2, resolved_at = $3, resolved_by = $4, note = $5 WHERE id = $1 AND status = 'pending'"
        } else {
            "UPDATE requests SET status = $2, resolved_at = $3, resolved_by = $4, note = $5 WHERE id = $1"
        };
        let res = sqlx::query(sql)
            .bind(id)
            .bind(outcome.as_str())
            .bind(now)
            .bind(by)
            .bind(note)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }

    /// Status, who resolved it and the note, for delivering an outcome another node settled.
    pub async fn request_outcome(
        &self,
        id: &str,
    ) -> Result<Option<(RequestStatus, Option<String>, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT status, resolved_by, note FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((
                status_of(&r)?,
                r.try_get("resolved_by")?,
                r.try_get("note")?,
            )),
            None => None,
        })
    }

    /// Whether this store is PostgreSQL (cluster mode needs it).
    pub fn is_postgres(&self) -> bool {
        self.pool.connect_options().database_url.scheme() == "postgres"
            || self.pool.connect_options().database_url.scheme() == "postgresql"
    }
}

mod access;
mod grants;
mod health;
mod history;
pub mod insights;
mod ledger;
mod nodes;
mod proposals;
mod reviewers;
mod scripts;
mod sessions;
mod sso;
mod votes;
mod whitelist;
pub use crate::grants::{Grant, NewGrant};
pub use history::Resolved;
pub use proposals::Accepted;
pub use sso::{LoginStart, SignedIn, secret_hash};
pub use whitelist::{NewWhitelist, PinnedMatch};
#[cfg(test)]
pub(crate) mod tests;
