//! `[whitelist]`, `[[webhook]]` and the smaller `[reviewer]`/`[approval]` keys: checked here so
//! `serve` refuses a bad one at start.

use std::time::Duration;

use airlock_approvals::NobodyOnline;
use airlock_approvals::notify::{Event as WebhookEvent, Format as WebhookFormat, Webhook};
use airlock_approvals::whitelist::{WhitelistRules, parse_ttl};

use super::{ReviewerFile, SshFile, WebhookFile, WhitelistFile, valid_name};
use crate::preauth::{PreAuthConfig, Startups};

/// One `[[webhook]]`; `Err` is the message for [`ConfigError::Invalid`].
pub(super) fn webhook(f: &WebhookFile) -> Result<Webhook, String> {
    let at = format!("[[webhook]] {:?}", f.name);
    if !valid_name(&f.name) {
        return Err(format!(
            "{at}: name must be 1-64 letters, digits, '.', '_' or '-'"
        ));
    }
    if !(f.url.starts_with("https://") || f.url.starts_with("http://")) {
        return Err(format!("{at}: url must start with https:// (or http://)"));
    }
    let format = match f.format.as_deref().unwrap_or("slack") {
        "slack" => WebhookFormat::Slack,
        "json" => WebhookFormat::Json,
        other => {
            return Err(format!(
                "{at}: format {other:?} (expected \"slack\" or \"json\")"
            ));
        }
    };
    let events = match &f.events {
        None => vec![WebhookEvent::Pending, WebhookEvent::Timeout],
        Some(list) => list
            .iter()
            .map(|e| {
                WebhookEvent::parse(e).ok_or_else(|| {
                    format!("{at}: event {e:?} (expected \"pending\" or \"timeout\")")
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let attempts = f.attempts.unwrap_or(5);
    if !(1..=20).contains(&attempts) {
        return Err(format!("{at}: attempts must be 1 to 20"));
    }
    let timeout = match &f.timeout {
        None => Duration::from_secs(5),
        Some(t) => humantime::parse_duration(t).map_err(|e| format!("{at}: timeout {t:?}: {e}"))?,
    };
    Ok(Webhook {
        name: f.name.clone(),
        url: f.url.clone(),
        format,
        events,
        attempts,
        timeout,
    })
}

/// `[whitelist]`; `Err` is the message for [`ConfigError::Invalid`].
pub(super) fn whitelist_rules(f: &WhitelistFile) -> Result<WhitelistRules, String> {
    let mut rules = WhitelistRules::default();
    if let Some(t) = &f.default_ttl {
        rules.default_ttl = parse_ttl(t).map_err(|e| format!("[whitelist] default_ttl: {e}"))?;
    }
    if let Some(t) = &f.max_ttl {
        let max = humantime::parse_duration(t)
            .map_err(|e| format!("[whitelist] max_ttl = {t:?}: {e}"))?;
        if rules.default_ttl.is_none_or(|d| d > max) {
            return Err(format!(
                "[whitelist] default_ttl must not be longer than max_ttl ({t})"
            ));
        }
        rules.max_ttl = Some(max);
    }
    Ok(rules)
}

/// `[approval] when_nobody_online`: `"wait"` (default) or `"deny"`.
pub(super) fn when_nobody_online(v: Option<&str>) -> Result<NobodyOnline, String> {
    match v {
        None => Ok(NobodyOnline::default()),
        Some(s) => NobodyOnline::parse(s).ok_or_else(|| {
            format!("[approval] when_nobody_online = {s:?} (expected \"wait\" or \"deny\")")
        }),
    }
}

/// `[reviewer] public_url`: an http(s) address without spaces; kept without a trailing `/`.
pub(super) fn public_url(v: Option<&str>) -> Result<Option<String>, String> {
    let Some(url) = v else { return Ok(None) };
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "http://".len()
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii());
    if !ok {
        return Err(format!(
            "[reviewer] public_url = {url:?}: expected an http(s) address such as \"https://airlock.example.com\""
        ));
    }
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

/// Longest target label key or value.
pub(super) const MAX_LABEL_CHARS: usize = 64;

/// A target's `labels`: shown to reviewers as they are, so only plain visible text.
pub(super) fn check_labels(
    what: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    for (k, v) in labels {
        for text in [k, v] {
            let shown = airlock_classifier::visible::Shown::of(text);
            if text.is_empty()
                || text.chars().count() > MAX_LABEL_CHARS
                || !shown.is_plain()
                || text.contains('\n')
            {
                return Err(format!(
                    "{what}: label {:?} = {:?}: labels must be 1-{MAX_LABEL_CHARS} characters of visible text (no control, invisible or look-alike characters, no line breaks)",
                    airlock_classifier::visible::Shown::of(k).one_line(),
                    shown.one_line()
                ));
            }
        }
    }
    Ok(())
}

/// `[grants]`: limits on time-boxed access grants (docs/grants.md).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GrantsFile {
    /// The longest grant anyone may give (`grant add --for`, an approved access request).
    max_duration: Option<String>,
}

/// `[grants] max_duration`, default 8h.
pub(super) fn grant_max_duration(f: &GrantsFile) -> Result<Duration, String> {
    positive_duration(
        f.max_duration.as_deref(),
        airlock_approvals::grants::DEFAULT_MAX_DURATION,
        "[grants] max_duration",
    )
}

/// A humantime duration greater than zero, or `default` when absent; errors name `key`.
fn positive_duration(v: Option<&str>, default: Duration, key: &str) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(format!("{key} must be greater than zero")),
            Err(e) => Err(format!("{key} = {text:?}: {e}")),
        },
    }
}

/// `[ssh]`'s limits before login (see [`crate::preauth`]); `max_connections` is the
/// authenticated pool.
pub(super) fn preauth(f: &SshFile, max_connections: usize) -> Result<PreAuthConfig, String> {
    let d = PreAuthConfig::default();
    let duration = |v: &Option<String>, default, key: &str| {
        positive_duration(v.as_deref(), default, &format!("[ssh] {key}"))
    };
    if max_connections == 0 {
        return Err("[ssh] max_connections must be at least 1".into());
    }
    let startups = match &f.max_startups {
        None => d.startups,
        Some(s) => Startups::parse(s).map_err(|e| format!("[ssh] max_startups = {e}"))?,
    };
    let per_source_startups = f.per_source_max_startups.unwrap_or(d.per_source_startups);
    if per_source_startups == 0 {
        return Err("[ssh] per_source_max_startups must be at least 1".into());
    }
    Ok(PreAuthConfig {
        login_grace: duration(&f.login_grace_time, d.login_grace, "login_grace_time")?,
        startups,
        per_source_startups,
        penalty_noauth: duration(
            &f.per_source_penalty,
            d.penalty_noauth,
            "per_source_penalty",
        )?,
        penalty_max: duration(
            &f.per_source_penalty_max,
            d.penalty_max,
            "per_source_penalty_max",
        )?,
        block_after: duration(
            &f.per_source_block_after,
            d.block_after,
            "per_source_block_after",
        )?,
        max_authenticated: max_connections,
    })
}

/// `[reviewer]`'s connection limits and timeouts (defaults in `airlock_reviewer_ws::Limits`).
pub(super) fn reviewer_limits(f: &ReviewerFile) -> Result<airlock_reviewer_ws::Limits, String> {
    use airlock_reviewer_ws::Limits;
    let count = |v: Option<usize>, default: usize, key: &str| match v {
        Some(0) => Err(format!("[reviewer] {key} must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let duration = |v: &Option<String>, default, key: &str| {
        positive_duration(v.as_deref(), default, &format!("[reviewer] {key}"))
    };
    Ok(Limits {
        max_connections: count(
            f.max_connections,
            Limits::DEFAULT_MAX_CONNECTIONS,
            "max_connections",
        )?,
        max_unauthenticated: count(
            f.max_unauthenticated,
            Limits::DEFAULT_MAX_UNAUTHENTICATED,
            "max_unauthenticated",
        )?,
        header_read_timeout: duration(
            &f.header_read_timeout,
            Limits::DEFAULT_HEADER_READ_TIMEOUT,
            "header_read_timeout",
        )?,
        idle_timeout: duration(
            &f.idle_timeout,
            Limits::DEFAULT_IDLE_TIMEOUT,
            "idle_timeout",
        )?,
    })
}

/// `[metrics]`: the operators' listener (docs/metrics.md).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MetricsFile {
    /// `HOST:PORT` for `/metrics`, `/healthz` and `/readyz`; unset: no such listener.
    pub(super) listen: Option<String>,
}
