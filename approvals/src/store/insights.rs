//! The reviewer page's Insights (docs/metrics.md, "Insights"): per UTC day, how many commands
//! were judged and how each was decided, by tier; how long reviewers took (median and p90);
//! the share that ran without a human; and the whitelist's size.
//!
//! Sources, all portable SQL (SQLite and PostgreSQL):
//! - the ledger's `command.submitted` entries: every judged command, its target, tier and
//!   whether it was allowed (by its tier, or by a whitelist entry), refused, or asked about;
//! - the `requests` table: what reviewers made of each command they were asked about, and
//!   when (`created_at` → `resolved_at`);
//! - the ledger's `whitelist.add` / `whitelist.revoke` entries: the whitelist's history,
//!   including entries since revoked or expired (the table keeps only the present).
//!
//! [`Store::insights_data`] reads the rows; [`summarize`] (pure) buckets them by day, keeping
//! only what the reader's scope admits, so one reviewer never learns about another team's
//! targets from a chart.

use std::collections::BTreeMap;

use airlock_classifier::Tier;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError};

/// A day in milliseconds (days are UTC).
pub const DAY_MS: i64 = 86_400_000;
/// The longest period the page may ask for.
pub const MAX_DAYS: i64 = 90;
/// At most this many commands are read for one answer; beyond, `truncated` says so.
pub const MAX_ROWS: i64 = 200_000;

/// One judged command, as its `command.submitted` entry says.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub ts: i64,
    pub target: String,
    /// `None`: refused before it was classified.
    pub tier: Option<Tier>,
    pub decision: Gate,
}

/// What the gate did with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Allowed by its tier.
    Auto,
    /// Allowed by a whitelist entry.
    Whitelist,
    /// Refused by the gateway (access, limits, policy).
    Refused,
    /// Sent to reviewers.
    Asked,
}

/// A command request to reviewers.
#[derive(Debug, Clone)]
pub struct AskedRow {
    pub target: String,
    pub tier: Option<Tier>,
    /// `pending`, `approved`, `denied`, `expired` or `withdrawn`.
    pub status: String,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    /// A reviewer, or `airlock` (timeouts, failures, withdrawals).
    pub resolved_by: Option<String>,
}

/// A change to the whitelist, from the ledger.
#[derive(Debug, Clone)]
pub struct WhitelistChange {
    pub ts: i64,
    pub id: String,
    /// `None`: an entry for every target. Always `None` on a revoke.
    pub target: Option<String>,
    pub expires_at: Option<i64>,
    pub added: bool,
}

/// Everything [`summarize`] needs for one period.
#[derive(Debug, Clone, Default)]
pub struct InsightsData {
    pub submitted: Vec<Submitted>,
    pub asked: Vec<AskedRow>,
    pub whitelist: Vec<WhitelistChange>,
    /// More than [`MAX_ROWS`] commands in the period: the oldest were read, the rest not.
    pub truncated: bool,
}

fn tier_of(v: &Value) -> Option<Tier> {
    match v.as_str()? {
        "low" => Some(Tier::Low),
        "medium" => Some(Tier::Medium),
        "high" => Some(Tier::High),
        _ => None,
    }
}

fn payload(row: &sqlx::any::AnyRow) -> Result<Value, StoreError> {
    let text: String = row.try_get("payload")?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Store {
    /// The rows behind the Insights page from `since` (ms) on: commands and requests in the
    /// period, and the whole whitelist history (its size at the start needs what came before).
    pub async fn insights_data(&self, since: i64) -> Result<InsightsData, StoreError> {
        let rows = sqlx::query(
            "SELECT ts, payload FROM ledger WHERE kind = 'command.submitted' AND ts >= $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(since)
        .bind(MAX_ROWS + 1)
        .fetch_all(&self.pool)
        .await?;
        let truncated = rows.len() as i64 > MAX_ROWS;
        let mut submitted = Vec::with_capacity(rows.len());
        for row in rows.iter().take(MAX_ROWS as usize) {
            let p = payload(row)?;
            let why = p["why"].as_str().unwrap_or_default();
            let decision = match p["decision"].as_str() {
                Some("allow") if why.starts_with("whitelisted") => Gate::Whitelist,
                Some("allow") => Gate::Auto,
                Some("ask") => Gate::Asked,
                _ => Gate::Refused,
            };
            submitted.push(Submitted {
                ts: row.try_get("ts")?,
                target: p["target"].as_str().unwrap_or_default().to_owned(),
                tier: tier_of(&p["tier"]),
                decision,
            });
        }
        let rows = sqlx::query(
            "SELECT target, tier, status, created_at, resolved_at, resolved_by FROM requests \
             WHERE kind = 'command' AND created_at >= $1 ORDER BY created_at LIMIT $2",
        )
        .bind(since)
        .bind(MAX_ROWS)
        .fetch_all(&self.pool)
        .await?;
        let mut asked = Vec::with_capacity(rows.len());
        for row in &rows {
            let tier: String = row.try_get("tier")?;
            asked.push(AskedRow {
                target: row.try_get("target")?,
                tier: tier_of(&Value::String(tier)),
                status: row.try_get("status")?,
                created_at: row.try_get("created_at")?,
                resolved_at: row.try_get("resolved_at")?,
                resolved_by: row.try_get("resolved_by")?,
            });
        }
        let rows = sqlx::query(
            "SELECT ts, kind, payload FROM ledger \
             WHERE kind = 'whitelist.add' OR kind = 'whitelist.revoke' ORDER BY seq LIMIT $1",
        )
        .bind(MAX_ROWS)
        .fetch_all(&self.pool)
        .await?;
        let mut whitelist = Vec::with_capacity(rows.len());
        for row in &rows {
            let p = payload(row)?;
            let kind: String = row.try_get("kind")?;
            whitelist.push(WhitelistChange {
                ts: row.try_get("ts")?,
                id: p["id"].as_str().unwrap_or_default().to_owned(),
                target: p["target"].as_str().map(str::to_owned),
                expires_at: p["expires_at"].as_i64(),
                added: kind == "whitelist.add",
            });
        }
        Ok(InsightsData {
            submitted,
            asked,
            whitelist,
            truncated,
        })
    }
}

/// Median and 90th percentile (nearest rank) of how long reviewers took, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Spread {
    pub count: usize,
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

impl Spread {
    fn of(mut v: Vec<i64>) -> Self {
        v.sort_unstable();
        let rank = |p: f64| -> Option<i64> {
            if v.is_empty() {
                return None;
            }
            let k = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            Some(v[k - 1])
        };
        Spread {
            count: v.len(),
            median_ms: rank(0.5),
            p90_ms: rank(0.9),
        }
    }
}

/// Counts by tier (`low`, `medium`, `high`, `none`), each by outcome (`auto`, `whitelist`,
/// `approved`, `denied`, `expired`, `withdrawn`, `refused`, `pending`).
pub type Outcomes = BTreeMap<&'static str, BTreeMap<&'static str, u64>>;

/// One UTC day of the period.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub start: i64,
    pub outcomes: Outcomes,
    pub commands: u64,
    /// Ran without a human: allowed by tier or by a whitelist entry.
    pub unattended: u64,
    pub decision: Spread,
    /// Whitelist entries in force at the day's end (or now, for today).
    pub whitelist: u64,
}

/// The whole answer of `GET /api/insights`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub days: Vec<Day>,
    pub totals: Totals,
    /// Commands on targets outside the reader's scope were left out.
    pub withheld: bool,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub commands: u64,
    pub unattended: u64,
    pub outcomes: BTreeMap<&'static str, u64>,
    pub tiers: BTreeMap<&'static str, u64>,
    pub decision: Spread,
    pub whitelist_start: u64,
    pub whitelist_now: u64,
}

fn tier_key(t: Option<Tier>) -> &'static str {
    match t {
        Some(Tier::Low) => "low",
        Some(Tier::Medium) => "medium",
        Some(Tier::High) => "high",
        None => "none",
    }
}

fn status_key(s: &str) -> &'static str {
    match s {
        "approved" => "approved",
        "denied" => "denied",
        "expired" => "expired",
        "withdrawn" => "withdrawn",
        "pending" => "pending",
        _ => "refused",
    }
}

/// `YYYY-MM-DD` of day number `d` since 1970-01-01 (civil-from-days, proleptic Gregorian).
pub fn ymd(d: i64) -> String {
    let z = d + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Bucket `data` into the `days` UTC days ending with the one holding `now`, keeping only
/// targets `visible` admits (a whitelist entry for every target is always counted).
///
/// A command sent to reviewers takes its outcome from its request (by the day the request
/// opened); asked commands with no request (refused before one opened: nobody online, a
/// failure) count as `refused`.
pub fn summarize(
    data: &InsightsData,
    now: i64,
    days: i64,
    visible: &dyn Fn(&str) -> bool,
) -> Summary {
    let days = days.clamp(1, MAX_DAYS);
    let last = now.div_euclid(DAY_MS);
    let first = last - days + 1;
    let index = |ts: i64| -> Option<usize> {
        let d = ts.div_euclid(DAY_MS);
        (first..=last).contains(&d).then(|| (d - first) as usize)
    };
    let n = days as usize;
    let mut outcomes: Vec<Outcomes> = vec![Outcomes::new(); n];
    let mut asked: Vec<BTreeMap<&'static str, u64>> = vec![BTreeMap::new(); n];
    let mut waits: Vec<Vec<i64>> = vec![Vec::new(); n];
    let mut withheld = false;
    let bump = |o: &mut Outcomes, tier: &'static str, outcome: &'static str| {
        *o.entry(tier).or_default().entry(outcome).or_default() += 1;
    };
    for s in &data.submitted {
        let Some(i) = index(s.ts) else { continue };
        if !visible(&s.target) {
            withheld = true;
            continue;
        }
        let tier = tier_key(s.tier);
        match s.decision {
            Gate::Auto => bump(&mut outcomes[i], tier, "auto"),
            Gate::Whitelist => bump(&mut outcomes[i], tier, "whitelist"),
            Gate::Refused => bump(&mut outcomes[i], tier, "refused"),
            Gate::Asked => *asked[i].entry(tier).or_default() += 1,
        }
    }
    for r in &data.asked {
        let Some(i) = index(r.created_at) else {
            continue;
        };
        if !visible(&r.target) {
            withheld = true;
            continue;
        }
        let tier = tier_key(r.tier);
        let outcome = status_key(&r.status);
        bump(&mut outcomes[i], tier, outcome);
        if let Some(left) = asked[i].get_mut(tier) {
            *left = left.saturating_sub(1);
        }
        let by_human = r.resolved_by.as_deref().is_some_and(|b| b != "airlock");
        if let (true, "approved" | "denied", Some(at)) = (by_human, outcome, r.resolved_at) {
            waits[i].push((at - r.created_at).max(0));
        }
    }
    for (i, left) in asked.iter().enumerate() {
        for (tier, n) in left {
            for _ in 0..*n {
                bump(&mut outcomes[i], tier, "refused");
            }
        }
    }
    let whitelist_at = |t: i64| -> u64 { whitelist_size(&data.whitelist, t, visible) };
    let mut out = Vec::with_capacity(n);
    let mut totals = Totals {
        commands: 0,
        unattended: 0,
        outcomes: BTreeMap::new(),
        tiers: BTreeMap::new(),
        decision: Spread::of(waits.iter().flatten().copied().collect()),
        whitelist_start: whitelist_at(first * DAY_MS),
        whitelist_now: whitelist_at(now),
    };
    for (i, (o, w)) in outcomes.into_iter().zip(waits).enumerate() {
        let start = (first + i as i64) * DAY_MS;
        let mut commands = 0;
        let mut unattended = 0;
        for (tier, by) in &o {
            for (outcome, c) in by {
                commands += c;
                if matches!(*outcome, "auto" | "whitelist") {
                    unattended += c;
                }
                *totals.outcomes.entry(outcome).or_default() += c;
                *totals.tiers.entry(tier).or_default() += c;
            }
        }
        totals.commands += commands;
        totals.unattended += unattended;
        out.push(Day {
            day: ymd(first + i as i64),
            start,
            outcomes: o,
            commands,
            unattended,
            decision: Spread::of(w),
            whitelist: whitelist_at((start + DAY_MS - 1).min(now)),
        });
    }
    Summary {
        days: out,
        totals,
        withheld,
        truncated: data.truncated,
    }
}

/// Entries in force at `t`: added by then, not revoked by then, not expired by then.
fn whitelist_size(changes: &[WhitelistChange], t: i64, visible: &dyn Fn(&str) -> bool) -> u64 {
    let mut live: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.ts <= t) {
        if c.added {
            if c.target.as_deref().is_none_or(visible) {
                live.insert(&c.id, c.expires_at);
            }
        } else {
            live.remove(c.id.as_str());
        }
    }
    live.values().filter(|e| e.is_none_or(|x| x > t)).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_named_in_utc() {
        assert_eq!(ymd(0), "1970-01-01");
        assert_eq!(ymd(19_723), "2024-01-01");
        assert_eq!(ymd(11_016), "2000-02-29");
    }

    #[test]
    fn spread_is_nearest_rank() {
        let s = Spread::of(vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        assert_eq!((s.median_ms, s.p90_ms), (Some(50), Some(90)));
        assert_eq!(Spread::of(vec![]).median_ms, None);
    }

    #[test]
    fn asked_commands_take_their_requests_outcome_and_scope_hides_targets() {
        let now = 10 * DAY_MS + 5;
        let sub = |ts, target: &str, decision| Submitted {
            ts,
            target: target.into(),
            tier: Some(Tier::Medium),
            decision,
        };
        let data = InsightsData {
            submitted: vec![
                sub(now, "web", Gate::Auto),
                sub(now, "web", Gate::Asked),
                sub(now, "web", Gate::Asked),
                sub(now, "db", Gate::Whitelist),
            ],
            asked: vec![AskedRow {
                target: "web".into(),
                tier: Some(Tier::Medium),
                status: "approved".into(),
                created_at: now,
                resolved_at: Some(now + 4000),
                resolved_by: Some("alice".into()),
            }],
            whitelist: vec![
                WhitelistChange {
                    ts: 2 * DAY_MS,
                    id: "a".into(),
                    target: None,
                    expires_at: None,
                    added: true,
                },
                WhitelistChange {
                    ts: 9 * DAY_MS,
                    id: "b".into(),
                    target: Some("db".into()),
                    expires_at: None,
                    added: true,
                },
            ],
            truncated: false,
        };
        let s = summarize(&data, now, 3, &|t| t != "db");
        assert!(s.withheld);
        let today = s.days.last().expect("today");
        assert_eq!(today.outcomes["medium"]["auto"], 1);
        assert_eq!(today.outcomes["medium"]["approved"], 1);
        assert_eq!(today.outcomes["medium"]["refused"], 1);
        assert_eq!((today.commands, today.unattended), (3, 1));
        assert_eq!(today.decision.median_ms, Some(4000));
        assert_eq!(s.totals.whitelist_now, 1, "db's entry is out of scope");
        let all = summarize(&data, now, 3, &|_| true);
        assert_eq!(all.totals.whitelist_now, 2);
        assert_eq!(all.days[0].whitelist, 1, "day 8 ends before b was added");
    }
}
