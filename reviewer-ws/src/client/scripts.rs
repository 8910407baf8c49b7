//! The detail pane's lines for the files a command runs (`bash deploy.sh`): each file's path,
//! kind, size and SHA-256, why it was not read if it was not, its content with line numbers
//! and the risky lines in their tier's colour with the classifier's words under them, and —
//! when a whitelist entry approved another version — the diff against that version.
//!
//! Everything the agent wrote (path, content, diff) is drawn from the gateway's display form
//! (`shown`), a plain line marked again here; these lines come before the request's footer, so
//! a request cannot be approved before every line of its scripts has been on screen.

use std::collections::BTreeMap;

use airlock_approvals::scripts::RiskyLine;
use airlock_classifier::Tier;
use airlock_classifier::visible::thousands;
use ratatui::style::{Color, Modifier, Style};

use super::ui::{Piece, dim, pieces, plain, tier_style};
use crate::protocol::{RequestMsg, ScriptMsg, ShownLine};

fn warn() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// Paragraphs for every script of `r`, appended to `paras`.
pub(super) fn script_paras(r: &RequestMsg, paras: &mut Vec<Vec<Piece>>) {
    for s in &r.scripts {
        script(s, paras);
    }
}

fn script(s: &ScriptMsg, paras: &mut Vec<Vec<Piece>>) {
    let f = &s.file;
    let head = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    paras.push(vec![
        ("script ".into(), head, false),
        (s.shown.path.clone(), head, false),
        (
            format!(" — {}, {} bytes", f.kind.as_str(), thousands(size(f.size))),
            Style::new(),
            false,
        ),
    ]);
    if s.shown.resolved != s.shown.path {
        paras.push(plain(format!("  at {}", s.shown.resolved), dim()));
    }
    let sha = f.sha256.as_deref().map(hex).unwrap_or("(none: not read)");
    paras.push(plain(format!("  sha256 {sha}"), dim()));
    if let Some(problem) = &s.shown.problem {
        paras.push(plain(format!("⚠ {}: {problem}", s.shown.path), warn()));
    }
    for flag in &s.shown.flags {
        paras.push(plain(format!("⚠ {}: {}", s.shown.path, flag.text), warn()));
    }
    if let Some(prev) = &f.previous {
        paras.push(plain(
            "⚠ changed since the approved version — diff from it:",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
        paras.push(plain(
            format!("  approved sha256 {}", hex(&prev.sha256)),
            dim(),
        ));
        if s.shown.diff.is_empty() {
            paras.push(plain("  (the approved text is no longer stored)", dim()));
        }
        for line in &s.shown.diff {
            paras.push(diff_line(line));
        }
    }
    content(s, paras);
}

/// The content with line numbers; risky lines marked `▶` in their tier's colour, each
/// followed by what the classifier said of it.
fn content(s: &ScriptMsg, paras: &mut Vec<Vec<Piece>>) {
    if s.shown.content.is_empty() {
        if s.file.content.is_none() {
            paras.push(plain("  (no content to show)", dim()));
        }
        return;
    }
    let mut risky: BTreeMap<u32, Vec<&RiskyLine>> = BTreeMap::new();
    for l in &s.file.lines {
        risky.entry(l.line).or_default().push(l);
    }
    paras.push(plain(
        format!(
            "{} lines{}:",
            thousands(s.shown.content.len()),
            if risky.is_empty() {
                String::new()
            } else {
                format!(", {} risky (▶)", risky.len())
            }
        ),
        dim(),
    ));
    let width = s.shown.content.len().to_string().len();
    for (i, line) in s.shown.content.iter().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let why = risky.get(&n);
        let tier = why.and_then(|w| w.iter().map(|l| l.tier).max());
        let (gutter, text) = match tier {
            Some(t) => (
                tier_style(t),
                tier_style(t).add_modifier(Modifier::REVERSED),
            ),
            None => (dim(), Style::new()),
        };
        let mark = if tier.is_some() { "▶" } else { " " };
        let mut p = vec![(format!("{mark}{:>width$} │ ", i + 1), gutter, true)];
        p.extend(pieces(&line.form(), text));
        paras.push(p);
        for l in why.into_iter().flatten() {
            paras.push(vec![
                (
                    format!("{:>w$}↳ [{}] ", "", l.tier.as_str(), w = width + 2),
                    tier_style(l.tier),
                    true,
                ),
                (format!("{}: {}", l.rule, l.text), tier_style(l.tier), false),
            ]);
        }
    }
    // Risky lines past the end of the content (should not happen): said, not dropped.
    let past = u32::try_from(s.shown.content.len()).unwrap_or(u32::MAX);
    for (n, why) in risky.range(past.saturating_add(1)..) {
        for l in why {
            paras.push(plain(
                format!("⚠ line {n} [{}] {}: {}", l.tier.as_str(), l.rule, l.text),
                tier_style(l.tier.max(Tier::Medium)),
            ));
        }
    }
}

/// A diff line: added green, removed red, hunk headers cyan.
fn diff_line(line: &ShownLine) -> Vec<Piece> {
    let form = line.form();
    let first = form.one_line();
    let style = if first.starts_with("+++") || first.starts_with("---") {
        Style::new().add_modifier(Modifier::BOLD)
    } else if first.starts_with('+') {
        Style::new().fg(Color::Green)
    } else if first.starts_with('-') {
        Style::new().fg(Color::Red)
    } else if first.starts_with("@@") {
        Style::new().fg(Color::Cyan)
    } else {
        dim()
    };
    let mut p = vec![("  ".to_owned(), Style::new(), false)];
    p.extend(pieces(&form, style));
    p
}

/// A hash as the gateway sent it, if it is one; anything else is not drawn.
fn hex(h: &str) -> &str {
    if !h.is_empty() && h.len() <= 128 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        h
    } else {
        "(not a hash)"
    }
}

fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::state::{Action, State};
    use super::super::ui;
    use crate::protocol::{RequestMsg, ServerMsg};
    use airlock_approvals::scripts::{Previous, RiskyLine, ScriptFile, ScriptKind, unified_diff};
    use airlock_classifier::Tier;
    use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    /// `bash x.sh` whose x.sh (changed since an approved version) removes a tree on line 3.
    fn request() -> RequestMsg {
        let old = "echo start\necho old\necho done\n";
        let now = "echo start\necho \u{202E}evil \u{1b}[2K\nrm -rf /tmp/d\necho done\n";
        let view = airlock_approvals::RequestView {
            scripts: vec![ScriptFile {
                unbound: None,
                path: "x.sh".into(),
                resolved: "/home/bot/x.sh".into(),
                kind: ScriptKind::Shell,
                size: now.len() as u64,
                sha256: Some("ab12".repeat(16)),
                content: Some(now.into()),
                problem: None,
                lines: vec![RiskyLine {
                    line: 3,
                    tier: Tier::High,
                    rule: "fs.rm-recursive".into(),
                    text: "rm -rf: deletes a directory tree".into(),
                }],
                previous: Some(Previous {
                    sha256: "cd34".repeat(16),
                    diff: unified_diff(old, now),
                }),
            }],
            id: "r1".into(),
            session_id: "ab".into(),
            agent: "bot".into(),
            target: "local".into(),
            command: "bash x.sh".into(),
            tier: Tier::High,
            score: 90,
            reasons: vec![],
            quorum: 2,
            needs: airlock_approvals::Quorum::anyone(2),
            status: airlock_approvals::RequestStatus::Pending,
            created_at: 0,
            expires_at: airlock_approvals::now_ms() + 300_000,
            node: "n1".into(),
            reason: None,
            labels: Default::default(),
            kind: Default::default(),
            votes: vec![],
        };
        RequestMsg::from(&view)
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    /// Draws like the client; the screen's text, and the (row, col) cells' styles by text.
    fn frame(st: &mut State, cols: u16, rows: u16) -> (String, ratatui::buffer::Buffer) {
        let mut term = Terminal::new(TestBackend::new(cols, rows)).unwrap();
        let mut shown = None;
        term.draw(|f| shown = ui::draw(f, st)).unwrap();
        st.after_draw(shown);
        let buf = term.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..rows {
            for x in 0..cols {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        (out, buf)
    }

    #[test]
    fn the_detail_shows_the_script_numbered_with_its_risky_line_and_the_diff() {
        let mut st = State::new();
        st.apply(ServerMsg::Request(Box::new(request())));
        st.on_key(key('j'));
        let (screen, buf) = frame(&mut st, 160, 60);
        assert!(screen.contains("script x.sh — shell, 53 bytes"), "{screen}");
        assert!(
            screen.contains(&format!("sha256 {}", "ab12".repeat(16))),
            "{screen}"
        );
        assert!(screen.contains("at /home/bot/x.sh"), "{screen}");
        assert!(
            screen.contains("⚠ changed since the approved version — diff from it:"),
            "{screen}"
        );
        assert!(
            screen.contains(&format!("approved sha256 {}", "cd34".repeat(16))),
            "{screen}"
        );
        assert!(screen.contains("  -echo old"), "{screen}");
        assert!(screen.contains("+rm -rf /tmp/d"), "{screen}");
        assert!(screen.contains("4 lines, 1 risky (▶):"), "{screen}");
        assert!(screen.contains(" 1 │ echo start"), "{screen}");
        assert!(screen.contains("▶3 │ rm -rf /tmp/d"), "{screen}");
        assert!(
            screen.contains("↳ [high] fs.rm-recursive: rm -rf: deletes a directory tree"),
            "{screen}"
        );
        // Hidden and control characters: marks, and a flag naming the line.
        assert!(
            screen.contains(" 2 │ echo ⟨U+202E⟩evil ⟨ESC⟩[2K"),
            "{screen}"
        );
        assert!(screen.contains("⚠ x.sh: line 2: hidden"), "{screen}");
        assert!(
            !screen.contains('\u{202E}') && !screen.contains('\u{1b}'),
            "{screen}"
        );
        // The risky line is drawn in the high tier's colour.
        let row = screen
            .lines()
            .position(|l| l.contains("▶3 │ rm -rf"))
            .unwrap();
        let col = screen
            .lines()
            .nth(row)
            .unwrap()
            .chars()
            .position(|c| c == '▶')
            .unwrap();
        let cell = &buf[(u16::try_from(col).unwrap(), u16::try_from(row).unwrap())];
        assert_eq!(cell.fg, ratatui::style::Color::Red, "{cell:?}");
    }

    #[test]
    fn a_script_must_be_scrolled_through_before_approval() {
        let mut r = request();
        let long: String = (1..=80).map(|i| format!("echo line {i}\n")).collect();
        r.scripts[0].shown.content = long.lines().map(crate::protocol::ShownLine::of).collect();
        let mut st = State::new();
        st.apply(ServerMsg::Request(Box::new(r)));
        st.on_key(key('j'));
        let (screen, _) = frame(&mut st, 120, 30);
        assert!(!screen.contains("echo line 80"), "{screen}");
        assert!(matches!(st.on_key(key('a')), Action::None));
        assert!(st.status.contains("more lines"), "{}", st.status);
        for _ in 0..20 {
            st.on_key(KeyEvent {
                code: KeyCode::Char(' '),
                ..key(' ')
            });
            let (screen, _) = frame(&mut st, 120, 30);
            if screen.contains("end of request") {
                assert!(st.seen_whole.contains("r1"));
                return;
            }
        }
        panic!("never reached the end of the request");
    }
}
