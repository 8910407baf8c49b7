//! The detail pane's lines for one request, wrapped to a width: a command (header, flags, who
//! must approve, the whole command, the stated reason, the classifier's reasons, the files it
//! runs — drawn by [`super::scripts`]) or an access
//! request (`ACCESS: deploy-bot asks for prod for 1h`, who must approve, the reason, what an
//! approval grants). Split from [`super::ui`], which draws them.

use airlock_classifier::visible::thousands;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

use super::ui::{
    NOT_COUNTED, Piece, countdown, dim, needs_line, pieces, plain, progress_pieces, tier_style,
    wrap,
};
use crate::protocol::RequestMsg;

/// Every line of a request's detail at `width` — header, flags, who must approve, the whole
/// command, the stated reason, every classifier reason, then a footer (ids, end mark) — and
/// how many lines come before the footer (what must have been on screen before approval).
/// `not_counted`: why the reviewer's vote cannot count here, if it cannot.
pub(crate) fn detail_lines(
    r: &RequestMsg,
    not_counted: Option<&str>,
    width: usize,
) -> (Vec<Line<'static>>, usize) {
    if r.is_access() {
        return access_lines(r, not_counted, width);
    }
    let mut paras: Vec<Vec<Piece>> = Vec::new();
    paras.push(vec![
        (r.tier.as_str().to_uppercase(), tier_style(r.tier), true),
        (
            format!(
                "  score {}  {} → {}  denies in {}",
                r.score,
                r.agent,
                r.target,
                countdown(r.expires_at_ms)
            ),
            Style::new(),
            false,
        ),
    ]);
    who_approves(r, not_counted, &mut paras);
    let warn = warn();
    for f in &r.shown.command.flags {
        paras.push(plain(format!("⚠ command: {}", f.text), warn));
    }
    paras.push(plain(
        format!("command ({} characters):", thousands(r.shown.command.chars)),
        dim(),
    ));
    paras.push(pieces(
        &r.shown.command,
        Style::new().add_modifier(Modifier::BOLD),
    ));
    if let Some(reason) = &r.shown.reason {
        for f in &reason.flags {
            paras.push(plain(format!("⚠ stated reason: {}", f.text), warn));
        }
        let mut p = plain("agent says: ", dim());
        p.extend(pieces(reason, Style::new().add_modifier(Modifier::ITALIC)));
        paras.push(p);
    }
    for reason in &r.reasons {
        paras.push(vec![
            (
                format!("[{}] ", reason.tier.as_str()),
                tier_style(reason.tier),
                true,
            ),
            (reason.text.clone(), Style::new(), false),
        ]);
    }
    super::scripts::script_paras(r, &mut paras);
    finish(r, &paras, width)
}

fn warn() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// The target's labels (prod-like values in red), progress, who must approve, and why the
/// reviewer's vote cannot count here if it cannot.
fn who_approves(r: &RequestMsg, not_counted: Option<&str>, paras: &mut Vec<Vec<Piece>>) {
    if !r.target_labels.is_empty() {
        paras.push(
            r.target_labels
                .iter()
                .map(|(k, v)| {
                    let prod = matches!(
                        v.to_ascii_lowercase().as_str(),
                        "prod" | "production" | "live"
                    );
                    let style = if prod { warn() } else { Style::new() };
                    (format!("{k}={v} "), style, true)
                })
                .collect(),
        );
    }
    paras.push(progress_pieces(r));
    if let Some(needs) = needs_line(r) {
        paras.push(plain(needs, dim()));
    }
    if let Some(why) = not_counted {
        paras.push(plain(
            format!("{NOT_COUNTED} your vote does not count here: {why}"),
            warn(),
        ));
    }
}

/// The wrapped lines, then the footer (ids, end mark); and how many come before the footer.
fn finish(r: &RequestMsg, paras: &[Vec<Piece>], width: usize) -> (Vec<Line<'static>>, usize) {
    let mut lines: Vec<Line<'static>> = paras.iter().flat_map(|p| wrap(p, width)).collect();
    let content = lines.len();
    lines.extend(wrap(
        &plain(format!("request {} · node {}", r.id, r.node), dim()),
        width,
    ));
    lines.extend(wrap(&plain("— end of request —", dim()), width));
    (lines, content)
}

/// `1h`, `1h30m`, `45s`.
pub(crate) fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let out: String = [(h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if out.is_empty() { "0s".to_owned() } else { out }
}

/// `ACCESS: deploy-bot asks for prod for 1h`.
pub(crate) fn access_title(r: &RequestMsg) -> String {
    format!(
        "ACCESS: {} asks for {} for {}",
        r.agent,
        r.access_target.as_deref().unwrap_or(&r.target),
        duration(r.access_duration_s.unwrap_or(0))
    )
}

/// An access request: no command and no classifier reasons; the reason and what approving
/// grants.
fn access_lines(
    r: &RequestMsg,
    not_counted: Option<&str>,
    width: usize,
) -> (Vec<Line<'static>>, usize) {
    let accent = Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD);
    let mut paras: Vec<Vec<Piece>> = vec![vec![
        (access_title(r), accent, false),
        (
            format!("  denies in {}", countdown(r.expires_at_ms)),
            Style::new(),
            false,
        ),
    ]];
    who_approves(r, not_counted, &mut paras);
    match &r.shown.reason {
        Some(reason) => {
            for f in &reason.flags {
                paras.push(plain(format!("⚠ reason: {}", f.text), warn()));
            }
            let mut p = plain("reason: ", dim());
            p.extend(pieces(reason, Style::new().add_modifier(Modifier::ITALIC)));
            paras.push(p);
        }
        None => paras.push(plain("reason: (none given)", warn())),
    }
    paras.push(plain(
        format!(
            "Approving (a) grants {} access to {} for {} from the approval: every command there is \
             still judged, and anything above low still asks reviewers. d denies.",
            r.agent,
            r.access_target.as_deref().unwrap_or(&r.target),
            duration(r.access_duration_s.unwrap_or(0))
        ),
        dim(),
    ));
    finish(r, &paras, width)
}
