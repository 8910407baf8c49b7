//! Drawing `airlock review`: pure functions of the client state.
//!
//! Agent text is drawn only from its display form (`shown`): marks such as `⟨U+202E⟩` or
//! `⟨300 spaces⟩` in reverse video, flags in red. The detail pane wraps everything to its width
//! itself (so it knows exactly how many lines the request takes) and scrolls; when lines are
//! below the pane it says how many and which key shows them, and the frame reports what it
//! showed so the state knows whether the whole request has been on screen.

use airlock_classifier::Tier;
use airlock_classifier::visible::{Part, Shown, thousands};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};
use unicode_width::UnicodeWidthChar;

use super::detail::detail_lines;
use super::state::{DetailShown, Dialog, Link, State, TTLS, excerpt};
use crate::protocol::RequestMsg;

pub(super) fn tier_style(t: Tier) -> Style {
    let c = match t {
        Tier::Low => Color::Green,
        Tier::Medium => Color::Yellow,
        Tier::High => Color::Red,
    };
    Style::new().fg(c).add_modifier(Modifier::BOLD)
}

/// How a mark looks: it must never pass for command text.
fn mark_style() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}

/// Marks a request the reviewer's vote cannot count on (queue row, detail, key hints).
pub(super) const NOT_COUNTED: &str = "⊘";

pub(super) fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub(super) fn countdown(expires_at_ms: i64) -> String {
    let s = ((expires_at_ms - airlock_approvals::now_ms()) / 1000).max(0);
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// A piece of a paragraph: text, its style, and whether it must stay on one line if it fits.
pub(super) type Piece = (String, Style, bool);

/// A display form as pieces: text in `text_style`, marks in the mark style.
pub(super) fn pieces(shown: &Shown, text_style: Style) -> Vec<Piece> {
    shown
        .parts
        .iter()
        .map(|p| match p {
            Part::Text { text, .. } => (text.clone(), text_style, false),
            Part::Mark { mark, .. } => (mark.clone(), mark_style(), true),
        })
        .collect()
}

/// Hard-wrap pieces to `width` columns (like the web page's break-all): the result is exactly
/// what the pane draws, so its length is the paragraph's height. A line feed starts a line.
pub(crate) fn wrap(pieces: &[Piece], width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut col = 0;
    let flush = |spans: &mut Vec<Span<'static>>, lines: &mut Vec<Line<'static>>| {
        lines.push(Line::from(std::mem::take(spans)));
    };
    for (text, style, atomic) in pieces {
        let w: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
        if *atomic && w <= width && col + w > width {
            flush(&mut spans, &mut lines);
            col = 0;
        }
        let mut run = String::new();
        for c in text.chars() {
            if c == '\n' {
                spans.push(Span::styled(std::mem::take(&mut run), *style));
                flush(&mut spans, &mut lines);
                col = 0;
                continue;
            }
            let cw = c.width().unwrap_or(0);
            if col + cw > width {
                spans.push(Span::styled(std::mem::take(&mut run), *style));
                flush(&mut spans, &mut lines);
                col = 0;
            }
            run.push(c);
            col += cw;
        }
        if !run.is_empty() {
            spans.push(Span::styled(run, *style));
        }
    }
    if !spans.is_empty() || lines.is_empty() {
        flush(&mut spans, &mut lines);
    }
    lines
}

pub(super) fn plain(text: impl Into<String>, style: Style) -> Vec<Piece> {
    vec![(text.into(), style, false)]
}

/// Who fills which need: `dba 0/1 · sre 1/1 (bob)`, each need green once filled. A gateway
/// before groups sends no entries: then the plain count.
pub(super) fn progress_pieces(r: &RequestMsg) -> Vec<Piece> {
    let mut p = plain("approvals ", Style::new());
    if r.progress.entries.is_empty() {
        let who = if r.approvals.is_empty() {
            String::new()
        } else {
            format!(": {}", r.approvals.join(", "))
        };
        p.push((
            format!("{}/{}{who}", r.approvals.len(), r.approvals_needed),
            Style::new(),
            false,
        ));
        return p;
    }
    for (i, e) in r.progress.entries.iter().enumerate() {
        if i > 0 {
            p.push((" · ".into(), dim(), false));
        }
        let filled = e.approvers.len() as u64 >= u64::from(e.count);
        let who = if e.approvers.is_empty() {
            String::new()
        } else {
            format!(" ({})", e.approvers.join(", "))
        };
        let style = Style::new().fg(if filled { Color::Green } else { Color::Yellow });
        p.push((
            format!("{} {}/{}{who}", e.label, e.approvers.len(), e.count),
            style,
            false,
        ));
    }
    p
}

/// `needs 1 from dba and 1 from sre · rule prod-db`, when a rule or a group sets the quorum.
pub(super) fn needs_line(r: &RequestMsg) -> Option<String> {
    let rule = r.rule.as_deref().map(|n| format!(" · rule {n}"));
    let named = r.progress.entries.iter().any(|e| e.label != "any");
    (rule.is_some() || named).then(|| format!("needs {}{}", r.needs, rule.unwrap_or_default()))
}

/// Draw the frame; returns what the detail pane showed of the selected request.
pub(crate) fn draw(f: &mut Frame, st: &State) -> Option<DetailShown> {
    let [top, body, hints, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let link = match &st.link {
        Link::Up => Span::styled("live", Style::new().fg(Color::Green)),
        Link::Down { retry_at, why, .. } => Span::styled(
            format!(
                "disconnected ({why}) — reconnecting in {}s",
                retry_at
                    .saturating_duration_since(std::time::Instant::now())
                    .as_secs()
            ),
            Style::new().fg(Color::Red),
        ),
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Airlock review", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!(" — {}", st.me)),
            Span::styled(
                if st.groups.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", st.groups.join(", "))
                },
                dim(),
            ),
            Span::raw(format!(" — {} pending — ", st.queue.len())),
            link,
        ])),
        top,
    );
    // Approve and deny look different (green, red); R is not offered for high.
    let approve = Style::new().fg(Color::Green).add_modifier(Modifier::BOLD);
    let deny = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let keys: Vec<Span> = match st.current() {
        None => vec![Span::styled("[j/k] select  [q]uit", dim())],
        Some(r) if st.not_counted(r).is_some() => vec![
            Span::styled("[j/k] select  [Space/b] scroll  ", dim()),
            Span::styled(format!("{NOT_COUNTED} your vote does not count here"), deny),
            Span::styled("  [q]uit", dim()),
        ],
        Some(r) => {
            let mut k = vec![
                Span::styled("[j/k] select  [Space/b] scroll  ", dim()),
                Span::styled(
                    if r.tier == Tier::High {
                        "[A]pprove (type target)"
                    } else {
                        "[A]pprove"
                    },
                    approve,
                ),
                Span::raw("  "),
                Span::styled("[D]eny…", deny),
            ];
            if r.tier != Tier::High {
                k.push(Span::styled("  [R]emember", dim()));
            }
            k.push(Span::styled("  [q]uit", dim()));
            k
        }
    };
    f.render_widget(Paragraph::new(Line::from(keys)), hints);
    f.render_widget(
        Paragraph::new(st.status.clone()).style(Style::new().fg(Color::Gray)),
        status,
    );
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(38), Constraint::Percentage(62)]).areas(body);
    queue(f, st, left);
    let shown = details(f, st, right);
    if st.dialog.is_some() {
        dialog(f, st, body);
    }
    shown
}

fn queue(f: &mut Frame, st: &State, area: Rect) {
    // Borders and the highlight symbol take 4 columns.
    let width = usize::from(area.width.saturating_sub(4));
    let items: Vec<ListItem> = st
        .queue
        .iter()
        .map(|r| {
            // An access request reads `acc` and its title, never a command.
            let tier = if r.is_access() {
                "acc"
            } else {
                &r.tier.as_str()[..r.tier.as_str().len().min(4)]
            };
            // Narrow panes leave agent and target to the detail pane: the command comes first.
            let head = if width >= 60 {
                format!(
                    "{tier:<4} {:>5} {}@{} ",
                    countdown(r.expires_at_ms),
                    r.agent,
                    r.target
                )
            } else {
                format!("{tier:<4} {:>5} ", countdown(r.expires_at_ms))
            };
            // A request our vote cannot count on: marked, and its command dimmed.
            let barred = st.not_counted(r).is_some();
            let bar = if barred {
                format!("{NOT_COUNTED} ")
            } else {
                String::new()
            };
            let used = head.chars().count() + bar.chars().count() + 1;
            let (mut text, mut more) = r.shown.command.one_line_within(width.saturating_sub(used));
            if r.is_access() {
                let title = super::detail::access_title(r);
                (text, more) = (title.chars().take(width.saturating_sub(used)).collect(), 0);
            } else if more > 0 {
                // Room for the marker that says how much is left out.
                let marker = format!("…+{}", thousands(r.shown.command.chars))
                    .chars()
                    .count();
                (text, more) = r
                    .shown
                    .command
                    .one_line_within(width.saturating_sub(used + marker).max(1));
            }
            let tail = if more > 0 {
                format!("…+{}", thousands(more))
            } else {
                String::new()
            };
            let flag = if r.shown.command.flags.is_empty() {
                ""
            } else {
                "⚠"
            };
            ListItem::new(Line::from(vec![
                Span::styled(head, tier_style(r.tier)),
                Span::styled(bar, dim()),
                Span::styled(flag, Style::new().fg(Color::Red)),
                Span::styled(text, if barred { dim() } else { Style::new() }),
                Span::styled(tail, dim()),
            ]))
        })
        .collect();
    let index = st
        .selected
        .as_deref()
        .and_then(|id| st.queue.iter().position(|r| r.id == id));
    let mut state = ListState::default().with_selected(index);
    let title = if index.is_none() && !st.queue.is_empty() {
        " queue — nothing selected (j/k) "
    } else {
        " queue (newest first) "
    };
    let list = List::new(items)
        .block(Block::bordered().title(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    f.render_stateful_widget(list, area, &mut state);
}

fn details(f: &mut Frame, st: &State, area: Rect) -> Option<DetailShown> {
    let [info, screen] =
        Layout::vertical([Constraint::Percentage(70), Constraint::Percentage(30)]).areas(area);
    let Some(r) = st.current() else {
        let text = if st.queue.is_empty() {
            "Nothing waiting. New requests appear in the queue at once (with a bell)."
        } else {
            "Nothing selected. j/k selects a request; a new one is never selected for you."
        };
        f.render_widget(
            Paragraph::new(text).block(Block::bordered().title(" request ")),
            area,
        );
        return None;
    };
    let width = usize::from(info.width.saturating_sub(2));
    let height = usize::from(info.height.saturating_sub(2));
    let (lines, content) = detail_lines(r, st.not_counted(r).as_deref(), width);
    let total = lines.len();
    let scroll = st.scroll.min(total.saturating_sub(height));
    let below = total.saturating_sub(scroll + height);
    let mut visible: Vec<Line> = lines.into_iter().skip(scroll).take(height).collect();
    if below > 0 && !visible.is_empty() {
        // The last row says what is below instead of showing one more line of it.
        let more = below + 1;
        visible.pop();
        visible.push(Line::styled(
            format!("↓ {more} more lines — Space/PgDn"),
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ));
    }
    let title = if total > height {
        format!(
            " request — lines {}–{} of {total} ",
            scroll + 1,
            (scroll + height).min(total)
        )
    } else {
        " request ".to_owned()
    };
    f.render_widget(
        Paragraph::new(visible).block(Block::bordered().title(title)),
        info,
    );
    let text = match &st.screen {
        Some((id, text)) if *id == r.id => text.trim_end().to_owned(),
        _ => "…".to_owned(),
    };
    // The bottom of the agent's screen is where the action is.
    let rows = usize::from(screen.height.saturating_sub(2));
    let all: Vec<&str> = text.lines().collect();
    // What commands printed: marks for anything a terminal would draw at another width or not
    // at all, so it stays inside its box.
    let shown = all[all.len().saturating_sub(rows)..]
        .iter()
        .map(|l| Shown::of(l).one_line())
        .collect::<Vec<_>>()
        .join("\n");
    f.render_widget(
        Paragraph::new(shown).block(Block::bordered().title(" what the agent sees ")),
        screen,
    );
    // The marker row hides one line; what the reviewer has seen ends above it.
    let seen_height = if below > 0 {
        height.saturating_sub(1)
    } else {
        height
    };
    Some(DetailShown {
        id: r.id.clone(),
        total,
        height: seen_height.max(1),
        content,
    })
}

fn field(label: &str, value: &str, active: bool) -> Line<'static> {
    let style = if active {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    };
    Line::from(vec![
        Span::raw(label.to_owned()),
        Span::styled(format!("{value}_"), style),
    ])
}

fn dialog(f: &mut Frame, st: &State, body: Rect) {
    let Some(d) = &st.dialog else { return };
    let id = match d {
        Dialog::Remember(d) => &d.id,
        Dialog::Deny { id, .. } | Dialog::ConfirmHigh { id, .. } => id,
    };
    let Some(r) = st.queue.iter().find(|r| r.id == *id) else {
        return;
    };
    let w = body.width.min(72);
    let (title, text) = match d {
        Dialog::Remember(d) => {
            let ttl = TTLS
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if i == d.ttl {
                        format!("[{}:{t}]", i + 1)
                    } else {
                        format!(" {}:{t} ", i + 1)
                    }
                })
                .collect::<String>();
            let who = |any: bool, one: &str, all: &str| {
                if any {
                    all.to_owned()
                } else {
                    format!("only {one}")
                }
            };
            (
                " approve and remember ",
                vec![
                    Line::from(excerpt(r, 60)),
                    Line::from(""),
                    Line::from(format!(
                        "[g] agent:  {}",
                        who(d.any_agent, &r.agent, "any agent")
                    )),
                    Line::from(format!(
                        "[t] target: {}",
                        who(d.any_target, &r.target, "any target")
                    )),
                    Line::from(format!("[1-4] for: {ttl}")),
                    Line::from("[Enter] approve and remember   [Esc] cancel"),
                ],
            )
        }
        Dialog::Deny { text, .. } => (
            " deny ",
            vec![
                Line::from(format!("Deny {}", excerpt(r, 54))),
                Line::from(""),
                Line::from("Reason the agent will read (optional):"),
                field("> ", text, true),
                Line::from(""),
                Line::from("[Enter] deny   [Esc] cancel"),
            ],
        ),
        Dialog::ConfirmHigh {
            typed,
            note,
            on_note,
            error,
            ..
        } => (
            " approve a HIGH-risk request ",
            vec![
                Line::styled(
                    format!("HIGH on target {}: {}", r.target, excerpt(r, 40)),
                    tier_style(Tier::High),
                ),
                Line::from(""),
                field(
                    &format!("Type the target name ({}) to confirm: ", r.target),
                    typed,
                    !*on_note,
                ),
                field("Note (optional, Tab): ", note, *on_note),
                Line::styled(
                    error.clone().unwrap_or_default(),
                    Style::new().fg(Color::Red),
                ),
                Line::from("[Enter] approve   [Tab] note   [Esc] cancel"),
            ],
        ),
    };
    let height = (text.len() as u16 + 2).min(body.height);
    let area = Rect::new(body.x + (body.width - w) / 2, body.y + 2, w, height);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(Block::bordered().title(title)),
        area,
    );
}
