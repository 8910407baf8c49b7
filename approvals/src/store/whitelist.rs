//! Whitelist rows: exact command lines and globs over a command's argv, scoped to an agent and
//! a target, each with the tier it was approved at and an optional expiry.
//!
//! Lookup is two indexed queries — the exact text, and the globs for the program being run —
//! so it stays flat as the list grows (see `benches/whitelist.rs`). High-tier commands are
//! never looked up, and an entry only covers commands up to the tier it was approved at.

use airlock_classifier::{Tier, glob_matches};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, corrupt};
use crate::ids;
use crate::model::WhitelistEntry;
use crate::scripts::ScriptPin;

/// An entry to add. `words` is `Some` for a glob (its pattern parsed into words).
#[derive(Debug, Clone)]
pub struct NewWhitelist<'a> {
    pub agent: Option<&'a str>,
    pub target: Option<&'a str>,
    /// The exact command line, or the glob pattern as written.
    pub pattern: &'a str,
    pub words: Option<&'a [String]>,
    pub tier: Tier,
    pub created_by: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// The files the approved command ran, by content: the entry allows the command only while
    /// each still has this hash (empty: it allows only commands that run no file).
    pub scripts: &'a [ScriptPin],
}

pub(super) const COLUMNS: &str =
    "id, agent, target, command, kind, words, tier, created_by, created_at, expires_at, scripts";

/// What the whitelist says about a command that runs files.
#[derive(Debug, Clone, Default)]
pub struct PinnedMatch {
    /// The entry that allows it: same command, and every file as approved.
    pub entry: Option<WhitelistEntry>,
    /// When none does but an entry for the same command approved other versions of its files:
    /// those versions (for the reviewer's diff).
    pub approved: Vec<ScriptPin>,
}

/// Scope, expiry and tier conditions shared by both lookups ($2 agent, $3 target, $4 now,
/// $5 the command's tier, low or medium: an entry approved at medium covers low and medium,
/// and an entry marked high can never match). Only live entries: a proposal (see
/// `proposals.rs`) allows nothing until it is accepted.
const IN_FORCE: &str = "status = 'live' AND (agent IS NULL OR agent = $2) AND (target IS NULL OR target = $3) \
     AND (expires_at IS NULL OR expires_at > $4) AND (tier = 'medium' OR tier = $5)";

impl Store {
    pub async fn add_whitelist(&self, e: &NewWhitelist<'_>) -> Result<WhitelistEntry, StoreError> {
        self.insert_whitelist(e, None).await
    }

    /// Insert `e`: live, or, with `proposal` = (proposed by, source), a proposal that allows
    /// nothing until accepted (see `proposals.rs`).
    pub(super) async fn insert_whitelist(
        &self,
        e: &NewWhitelist<'_>,
        proposal: Option<(&str, &str)>,
    ) -> Result<WhitelistEntry, StoreError> {
        let id = ids::new_id()?;
        let (kind, program, words) = match e.words {
            Some(w) => (
                "glob",
                w.first().cloned(),
                Some(serde_json::to_string(w).map_err(|x| corrupt("whitelist", x))?),
            ),
            None => ("exact", None, None),
        };
        sqlx::query(
            "INSERT INTO whitelist (id, agent, target, command, kind, program, words, tier, \
             created_by, created_at, expires_at, status, proposed_by, source, scripts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&id)
        .bind(e.agent)
        .bind(e.target)
        .bind(e.pattern)
        .bind(kind)
        .bind(program)
        .bind(words)
        .bind(e.tier.as_str())
        .bind(e.created_by)
        .bind(e.created_at)
        .bind(e.expires_at)
        .bind(if proposal.is_some() {
            "proposed"
        } else {
            "live"
        })
        .bind(proposal.map(|p| p.0))
        .bind(proposal.map(|p| p.1))
        .bind(super::scripts::pins_column(e.scripts)?)
        .execute(&self.pool)
        .await?;
        Ok(WhitelistEntry {
            id,
            agent: e.agent.map(str::to_owned),
            target: e.target.map(str::to_owned),
            command: e.pattern.to_owned(),
            glob: e.words.is_some(),
            tier: e.tier,
            created_by: e.created_by.to_owned(),
            created_at: e.created_at,
            expires_at: e.expires_at,
        })
    }

    pub(super) fn whitelist_from_row(
        r: &AnyRow,
    ) -> Result<(WhitelistEntry, Option<Vec<String>>), StoreError> {
        let tier: String = r.try_get("tier")?;
        let kind: String = r.try_get("kind")?;
        let words: Option<String> = r.try_get("words")?;
        let words = match (kind.as_str(), words) {
            ("exact", _) => None,
            ("glob", Some(w)) => {
                Some(serde_json::from_str(&w).map_err(|e| corrupt("whitelist", e))?)
            }
            (k, _) => return Err(corrupt("whitelist", format!("bad kind {k:?}"))),
        };
        Ok((
            WhitelistEntry {
                id: r.try_get("id")?,
                agent: r.try_get("agent")?,
                target: r.try_get("target")?,
                command: r.try_get("command")?,
                glob: words.is_some(),
                tier: tier.parse().map_err(|e: String| corrupt("whitelist", e))?,
                created_by: r.try_get("created_by")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            },
            words,
        ))
    }

    /// Every live entry, expired ones included, in a stable order (proposals: see
    /// `list_proposals`).
    pub async fn list_whitelist(&self) -> Result<Vec<WhitelistEntry>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM whitelist WHERE status = 'live' ORDER BY command, agent, target, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Self::whitelist_from_row(r).map(|(e, _)| e))
            .collect()
    }

    pub async fn revoke_whitelist(&self, id: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM whitelist WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    /// An entry in force for this agent and target that allows `command` (of `tier`), which
    /// runs no file: one with exactly this text, or a glob that matches `argv` (the command's
    /// plain argv, if it has one). High-tier commands never match.
    pub async fn whitelist_match(
        &self,
        agent: &str,
        target: &str,
        command: &str,
        argv: Option<&[String]>,
        tier: Tier,
        now: i64,
    ) -> Result<Option<WhitelistEntry>, StoreError> {
        Ok(self
            .whitelist_match_pinned(agent, target, command, argv, tier, now, &[])
            .await?
            .entry)
    }

    /// [`Store::whitelist_match`] for a command that runs the files `scripts` (resolved path
    /// and SHA-256 of what the gateway read): an entry allows it only if it was approved with
    /// exactly these files at exactly these hashes.
    #[allow(clippy::too_many_arguments)]
    pub async fn whitelist_match_pinned(
        &self,
        agent: &str,
        target: &str,
        command: &str,
        argv: Option<&[String]>,
        tier: Tier,
        now: i64,
        scripts: &[ScriptPin],
    ) -> Result<PinnedMatch, StoreError> {
        let mut out = PinnedMatch::default();
        if tier == Tier::High {
            return Ok(out);
        }
        let mut want = scripts.to_vec();
        want.sort();
        want.dedup();
        for (entry, pins) in self
            .candidates(agent, target, command, argv, tier, now)
            .await?
        {
            if pins == want {
                out.entry = Some(entry);
                return Ok(out);
            }
            if out.approved.is_empty() && !pins.is_empty() {
                out.approved = pins;
            }
        }
        Ok(out)
    }

    /// Entries in force whose command or glob covers this one, with their file pins, exact
    /// texts first.
    async fn candidates(
        &self,
        agent: &str,
        target: &str,
        command: &str,
        argv: Option<&[String]>,
        tier: Tier,
        now: i64,
    ) -> Result<Vec<(WhitelistEntry, Vec<ScriptPin>)>, StoreError> {
        let mut out = Vec::new();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM whitelist WHERE command = $1 AND kind = 'exact' AND {IN_FORCE} \
             ORDER BY id"
        )))
        .bind(command)
        .bind(agent)
        .bind(target)
        .bind(now)
        .bind(tier.as_str())
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.push((Self::whitelist_from_row(r)?.0, super::scripts::pins_of(r)?));
        }
        let Some(argv) = argv else { return Ok(out) };
        let Some(program) = argv.first() else {
            return Ok(out);
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM whitelist WHERE program = $1 AND kind = 'glob' AND {IN_FORCE} \
             ORDER BY id"
        )))
        .bind(program)
        .bind(agent)
        .bind(target)
        .bind(now)
        .bind(tier.as_str())
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let (entry, words) = Self::whitelist_from_row(r)?;
            if words.is_some_and(|w| glob_matches(&w, argv)) {
                out.push((entry, super::scripts::pins_of(r)?));
            }
        }
        Ok(out)
    }
}
