//! Drawing `airlock review`: pure functions of the client state.

use airlock_classifier::Tier;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph, Wrap};

use super::{Link, State, TTLS};

fn tier_style(t: Tier) -> Style {
    let c = match t {
        Tier::Low => Color::Green,
        Tier::Medium => Color::Yellow,
        Tier::High => Color::Red,
    };
    Style::new().fg(c).add_modifier(Modifier::BOLD)
}

fn countdown(expires_at_ms: i64) -> String {
    let s = ((expires_at_ms - airlock_approvals::now_ms()) / 1000).max(0);
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub(crate) fn draw(f: &mut Frame, st: &State) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
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
            Span::raw(format!(" — {} — {} pending — ", st.me, st.queue.len())),
            link,
        ])),
        top,
    );
    f.render_widget(
        Paragraph::new(format!(
            "[j/k] move  [A]pprove  [R]emember  [D]eny  [q]uit   {}",
            st.status
        ))
        .style(Style::new().fg(Color::Gray)),
        bottom,
    );
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(body);
    queue(f, st, left);
    details(f, st, right);
    if st.dialog.is_some() {
        dialog(f, st, body);
    }
}

fn queue(f: &mut Frame, st: &State, area: Rect) {
    let items: Vec<ListItem> = st
        .queue
        .iter()
        .map(|r| {
            ListItem::new(Line::from(vec![
                Span::styled(format!("{:<6} ", r.tier.as_str()), tier_style(r.tier)),
                Span::raw(format!(
                    "{:>6} {}@{} ",
                    countdown(r.expires_at_ms),
                    r.agent,
                    r.target
                )),
                Span::raw(r.command.replace(['\r', '\n'], " ")),
            ]))
        })
        .collect();
    let mut state =
        ListState::default().with_selected((!st.queue.is_empty()).then_some(st.selected));
    let list = List::new(items)
        .block(Block::bordered().title(" queue (newest first) "))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    f.render_stateful_widget(list, area, &mut state);
}

fn details(f: &mut Frame, st: &State, area: Rect) {
    let [info, screen] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let Some(r) = st.queue.get(st.selected) else {
        f.render_widget(
            Paragraph::new("Nothing waiting. New requests appear here at once (with a bell).")
                .block(Block::bordered().title(" request ")),
            area,
        );
        return;
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(r.tier.as_str().to_uppercase(), tier_style(r.tier)),
            Span::raw(format!(
                "  score {}  {} → {}  denies in {}",
                r.score,
                r.agent,
                r.target,
                countdown(r.expires_at_ms)
            )),
        ]),
        Line::from(
            r.target_labels
                .iter()
                .map(|(k, v)| {
                    let prod = matches!(
                        v.to_ascii_lowercase().as_str(),
                        "prod" | "production" | "live"
                    );
                    let style = if prod {
                        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
                    } else {
                        Style::new()
                    };
                    Span::styled(format!("{k}={v} "), style)
                })
                .collect::<Vec<_>>(),
        ),
        Line::from(format!(
            "approvals {}/{}{}",
            r.approvals.len(),
            r.approvals_needed,
            if r.approvals.is_empty() {
                String::new()
            } else {
                format!(": {}", r.approvals.join(", "))
            }
        )),
        Line::from(""),
        Line::styled(r.command.clone(), Style::new().add_modifier(Modifier::BOLD)),
        Line::from(""),
    ];
    if let Some(reason) = &r.reason {
        lines.push(Line::from(vec![
            Span::styled("agent says: ", Style::new().fg(Color::DarkGray)),
            Span::styled(reason.clone(), Style::new().add_modifier(Modifier::ITALIC)),
        ]));
    }
    for reason in &r.reasons {
        lines.push(Line::from(vec![
            Span::styled(
                format!("[{}] ", reason.tier.as_str()),
                tier_style(reason.tier),
            ),
            Span::raw(reason.text.clone()),
        ]));
    }
    lines.push(Line::styled(
        format!("request {} · node {}", r.id, r.node),
        Style::new().fg(Color::DarkGray),
    ));
    f.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" request ")),
        info,
    );
    let text = match &st.screen {
        Some((id, text)) if *id == r.id => text.trim_end().to_owned(),
        _ => "…".to_owned(),
    };
    // The bottom of the agent's screen is where the action is.
    let rows = usize::from(screen.height.saturating_sub(2));
    let all: Vec<&str> = text.lines().collect();
    let shown = all[all.len().saturating_sub(rows)..].join("\n");
    f.render_widget(
        Paragraph::new(shown).block(Block::bordered().title(" what the agent sees ")),
        screen,
    );
}

fn dialog(f: &mut Frame, st: &State, body: Rect) {
    let Some(d) = &st.dialog else { return };
    let Some(r) = st.queue.iter().find(|r| r.id == d.id) else {
        return;
    };
    let w = body.width.min(64);
    let area = Rect::new(
        body.x + (body.width - w) / 2,
        body.y + 2,
        w,
        9.min(body.height),
    );
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
    let text = vec![
        Line::from(r.command.clone()),
        Line::from(""),
        Line::from(format!(
            "[g] agent:  {}",
            if d.any_agent {
                "any agent".to_owned()
            } else {
                format!("only {}", r.agent)
            }
        )),
        Line::from(format!(
            "[t] target: {}",
            if d.any_target {
                "any target".to_owned()
            } else {
                format!("only {}", r.target)
            }
        )),
        Line::from(format!("[1-4] for: {ttl}")),
        Line::from("[Enter] approve and remember   [Esc] cancel"),
    ];
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text).block(Block::bordered().title(" approve and remember ")),
        area,
    );
}
