//! The gateway's log: `[log] format` (text or JSON lines) and level, written to stderr.
//!
//! Stderr is what service managers collect (journald, docker, a supervisor's file), so it is
//! the one destination; colour is used only when stderr is a terminal (and `NO_COLOR` is
//! unset), so files and journals never get escape codes. The level is `RUST_LOG` when it is
//! set — an operator debugging a box should not have to edit the config — else
//! `[log] level`, else `info,russh=warn`; an invalid one stops start-up with its name.
//!
//! JSON lines are flat: the fields of every span around an event (`agent` from the
//! connection, `session` and `request` from the command, `name` from a reviewer socket…) sit
//! at the top level beside the event's own, so `jq 'select(.session == "…")'` finds every
//! line of a command. An event field wins over a span field of the same name, an inner span
//! over an outer one.

use std::io::IsTerminal as _;

use airlock_gateway::config::{LogConfig, LogFormat};
use anyhow::{Context as _, Result};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Install the global subscriber for `serve`.
pub fn init(cfg: &LogConfig) -> Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder()
            .parse(&v)
            .with_context(|| format!("RUST_LOG={v:?} is not a valid log filter"))?,
        _ => EnvFilter::builder()
            .parse(&cfg.level)
            .with_context(|| format!("[log] level = {:?}", cfg.level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match cfg.format {
        LogFormat::Text if colour() => builder.with_ansi(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(false)
            .event_format(OneLine(tracing_subscriber::fmt::format::Format::default()))
            .try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// The text format for files and journals: one line per event, whatever a message holds.
/// Some messages carry text a peer chose (a library's `unknown channel request {name}`), so a
/// line break inside one is written as `\n` and a line is cut at [`MAX_LINE`] bytes: an agent
/// can neither forge a line of its own nor flood the log through one.
struct OneLine<F>(F);

/// The longest text log line written, in bytes (a longer one is cut, saying how much).
const MAX_LINE: usize = 16 * 1024;

impl<S, N, F> FormatEvent<S, N> for OneLine<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        let mut written = 0;
        for (i, c) in body.char_indices() {
            if written >= MAX_LINE {
                write!(writer, " … ({} more bytes cut)", body.len() - i)?;
                break;
            }
            written += match c {
                '\n' => writer.write_str("\\n").map(|()| 2)?,
                '\r' => writer.write_str("\\r").map(|()| 2)?,
                c => writer.write_char(c).map(|()| c.len_utf8())?,
            };
        }
        writer.write_char('\n')
    }
}

/// Colour only for a person at a terminal.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// One JSON object per event: `timestamp`, `level`, `module` (the tracing target), `spans`
/// (outermost first, `conn>session`), every span field, then the event's fields (`message`
/// among them).
struct FlatJson;

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        let mut ts = String::new();
        SystemTime.format_time(&mut Writer::new(&mut ts))?;
        line.insert("timestamp".into(), Value::String(ts));
        line.insert("level".into(), Value::String(meta.level().as_str().into()));
        // `module`, not `target`: a span's `target` is the SSH target a command runs on.
        line.insert("module".into(), Value::String(meta.target().into()));
        if let Some(scope) = ctx.event_scope() {
            let mut names = Vec::new();
            for span in scope.from_root() {
                names.push(span.name());
                let ext = span.extensions();
                // JsonFields keeps each span's fields as one JSON object.
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields)
                {
                    line.extend(map);
                }
            }
            line.insert("spans".into(), Value::String(names.join(">")));
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// An event's fields into the line's object.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Everything the subscriber writes, kept.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Kept {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text_log(emit: impl FnOnce()) -> String {
        let kept = Kept::default();
        let sink = kept.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .event_format(OneLine(tracing_subscriber::fmt::format::Format::default()))
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = kept.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn a_message_with_line_breaks_stays_one_line() {
        // What a library logs with a name a peer chose (russh: unknown channel request).
        let name = "x\n2026-12-03T07:18:00.000000Z  INFO airlock_gateway: request approved\r\n";
        let log = text_log(|| tracing::warn!("unknown channel request {name}"));
        assert_eq!(log.lines().count(), 1, "{log:?}");
        assert!(log.ends_with('\n'), "{log:?}");
        assert!(log.contains("x\\n2026-12-03T07:18:00.000000Z"), "{log:?}");
        assert!(log.contains("approved\\r\\n"), "{log:?}");
    }

    #[test]
    fn a_huge_message_is_cut_and_says_so() {
        let big = "y".repeat(100_000);
        let log = text_log(|| tracing::warn!("unknown channel request {big}"));
        assert_eq!(log.lines().count(), 1);
        assert!(log.len() < MAX_LINE + 200, "{}", log.len());
        assert!(
            log.contains("more bytes cut)"),
            "{}",
            &log[log.len() - 80..]
        );
    }
}
