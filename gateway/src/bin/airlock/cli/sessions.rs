//! `airlock sessions list` and `airlock replay`: finding a recorded session and playing it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_approvals::{SessionFilter, SessionRow, Store, rfc3339};
use airlock_gateway::config::Config;
use airlock_recorder::Recording;
use airlock_recorder::replay::{self, PlayOptions};
use anyhow::{Context as _, Result, bail};

pub async fn list(
    store: &Store,
    agent: Option<String>,
    target: Option<String>,
    since: Option<String>,
    limit: i64,
) -> Result<()> {
    let since = match since {
        Some(s) => {
            let d = humantime::parse_duration(&s).with_context(|| format!("--since {s:?}"))?;
            Some(airlock_approvals::now_ms() - d.as_millis() as i64)
        }
        None => None,
    };
    let rows = store
        .find_sessions(
            &SessionFilter {
                agent,
                target,
                since,
            },
            limit,
        )
        .await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "SESSION\tSTARTED\tDURATION\tAGENT\tTARGET\tKIND\tOUTCOME\tCOMMAND"
    )?;
    for r in rows {
        let duration = r
            .ended_at
            .map(|e| {
                humantime::format_duration(Duration::from_secs(
                    ((e - r.started_at).max(0) / 1000) as u64,
                ))
                .to_string()
            })
            .unwrap_or_else(|| "running".into());
        let outcome = match (&r.outcome, r.exit_status) {
            (Some(o), Some(c)) => format!("{o} ({c})"),
            (Some(o), None) => o.clone(),
            (None, _) => "-".into(),
        };
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.id,
            rfc3339(r.started_at),
            duration,
            r.agent,
            r.target,
            r.kind,
            outcome,
            // One line of visible text: a tab, newline or ESC in a command must not reach
            // the operator's terminal or break the columns.
            airlock_classifier::visible::Shown::of(r.command.as_deref().unwrap_or("")).one_line()
        )?;
    }
    Ok(())
}

/// A session id (or unique prefix) from the database, or a path to a `.cast` file.
async fn locate(config: &Config, store: Option<&Store>, session: &str) -> Result<PathBuf> {
    let as_path = Path::new(session);
    if session.ends_with(".cast") && as_path.exists() {
        return Ok(as_path.to_owned());
    }
    if let Some(store) = store {
        let rows: Vec<SessionRow> = store.session(session).await?;
        match rows.as_slice() {
            [] => {}
            [one] => {
                return Ok(one
                    .recording
                    .as_ref()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| config.recordings_dir().join(format!("{}.cast", one.id))));
            }
            _ => bail!("{session:?} matches more than one session; give more of the id"),
        }
    }
    let fallback = config.recordings_dir().join(format!("{session}.cast"));
    if fallback.exists() {
        return Ok(fallback);
    }
    bail!("no session {session:?} (see `airlock sessions list`)")
}

pub struct ReplayArgs {
    pub session: String,
    pub speed: f64,
    pub idle_limit: Option<String>,
    pub from_marker: Option<usize>,
    pub cat: bool,
    pub markers: bool,
    pub export: Option<PathBuf>,
}

pub async fn replay(config: &Config, store: Option<&Store>, a: ReplayArgs) -> Result<()> {
    let path = locate(config, store, &a.session).await?;
    let rec = Recording::open(&path).with_context(|| format!("reading {}", path.display()))?;
    if let Some(file) = &a.export {
        if file.as_os_str() == "-" {
            return replay::export(&rec, &mut std::io::stdout().lock()).map_err(Into::into);
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        let f = opts
            .open(file)
            .with_context(|| format!("creating {} (it must not exist)", file.display()))?;
        let mut w = std::io::BufWriter::new(f);
        replay::export(&rec, &mut w).with_context(|| format!("writing {}", file.display()))?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();

    if a.markers {
        for (i, m) in rec.markers().enumerate() {
            writeln!(out, "{}\t{:.3}s\t{}", i + 1, m.time, m.data)?;
        }
        return Ok(());
    }
    if a.cat {
        return replay::cat(&rec, &mut out).map_err(Into::into);
    }
    let idle_limit = a
        .idle_limit
        .map(|s| humantime::parse_duration(&s).with_context(|| format!("--idle-limit {s:?}")))
        .transpose()?;
    let opts = PlayOptions {
        speed: a.speed,
        idle_limit,
        from_marker: a.from_marker,
    };
    replay::play(&rec, &mut out, &opts, std::thread::sleep)?;
    Ok(())
}
