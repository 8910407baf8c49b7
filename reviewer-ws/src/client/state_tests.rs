use super::*;
use crate::client::ui;
use airlock_approvals::VoteDecision;
use crossterm::event::KeyEventState;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn req(id: &str, tier: Tier, target: &str, command: &str) -> RequestMsg {
    let view = airlock_approvals::RequestView {
        id: id.into(),
        session_id: "ab".into(),
        agent: "bot".into(),
        target: target.into(),
        command: command.into(),
        tier,
        score: 50,
        reasons: vec![airlock_classifier::Reason {
            rule: "fs.rm-recursive".into(),
            span: None,
            text: "rm -r: deletes a directory tree".into(),
            tier,
        }],
        quorum: 1,
        status: airlock_approvals::RequestStatus::Pending,
        created_at: 0,
        expires_at: airlock_approvals::now_ms() + 300_000,
        node: "n1".into(),
        reason: None,
        labels: Default::default(),
        votes: vec![],
    };
    RequestMsg::from(&view)
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent {
        code,
        modifiers: KeyModifiers::NONE,
        kind: crossterm::event::KeyEventKind::Press,
        state: KeyEventState::NONE,
    }
}

fn typed(st: &mut State, text: &str) {
    for c in text.chars() {
        assert!(matches!(st.on_key(key(KeyCode::Char(c))), Action::None));
    }
}

/// Draw the state at `cols`×`rows` like the client does; returns the screen's text.
fn frame(st: &mut State, cols: u16, rows: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    let mut shown = None;
    term.draw(|f| shown = ui::draw(f, st)).unwrap();
    st.after_draw(shown);
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..rows {
        for x in 0..cols {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn sent(a: Action) -> (String, VoteDecision, Option<String>) {
    match a {
        Action::Send(ClientMsg::Decide {
            id,
            decision,
            comment,
            ..
        }) => (id, decision, comment),
        _ => panic!("nothing was sent"),
    }
}

fn with(reqs: Vec<RequestMsg>) -> State {
    let mut st = State::new();
    for r in reqs {
        st.apply(ServerMsg::Request(Box::new(r)));
    }
    st
}

#[test]
fn a_new_request_is_never_selected_by_itself() {
    let mut st = with(vec![req("r1", Tier::Medium, "local", "touch /tmp/a")]);
    assert_eq!(st.selected, None);
    frame(&mut st, 80, 24);
    assert!(matches!(st.on_key(key(KeyCode::Char('a'))), Action::None));
    assert!(
        st.status.contains("select a request first"),
        "{}",
        st.status
    );
    // Selected, then another arrives: the selection stays on the first.
    st.on_key(key(KeyCode::Char('j')));
    st.apply(ServerMsg::Request(Box::new(req(
        "r2",
        Tier::High,
        "local",
        "rm -rf /tmp/b",
    ))));
    assert_eq!(st.selected.as_deref(), Some("r1"));
}

#[test]
fn after_a_decision_nothing_is_selected_and_a_second_a_sends_nothing() {
    let mut st = with(vec![
        req("high", Tier::High, "local", "rm -rf /tmp/b"),
        req("med", Tier::Medium, "local", "touch /tmp/a"),
    ]);
    st.on_key(key(KeyCode::Char('j')));
    assert_eq!(st.selected.as_deref(), Some("med"));
    frame(&mut st, 80, 24);
    let (id, d, _) = sent(st.on_key(key(KeyCode::Char('a'))));
    assert_eq!((id.as_str(), d), ("med", VoteDecision::Approve));
    st.apply(ServerMsg::Resolved {
        id: "med".into(),
        outcome: airlock_approvals::Outcome::Approved,
        by: "alice".into(),
        approvers: vec!["alice".into()],
        comment: None,
        why: "approved by alice".into(),
    });
    assert_eq!(
        st.selected, None,
        "the high card did not move under the key"
    );
    assert!(st.status.starts_with("approved by alice"), "{}", st.status);
    frame(&mut st, 80, 24);
    assert!(matches!(st.on_key(key(KeyCode::Char('a'))), Action::None));
}

#[test]
fn approval_needs_the_whole_request_on_screen() {
    let long = format!("echo {}; rm -rf /tmp/x/v", "a".repeat(2990));
    let mut st = with(vec![req("r1", Tier::Medium, "local", &long)]);
    st.on_key(key(KeyCode::Char('j')));
    let first = frame(&mut st, 80, 24);
    assert!(first.contains("more lines — Space/PgDn"), "{first}");
    assert!(!first.contains("rm -rf /tmp/x/v"));
    assert!(matches!(st.on_key(key(KeyCode::Char('a'))), Action::None));
    assert!(
        st.status.contains("scroll to the end first"),
        "{}",
        st.status
    );
    let mut last = first;
    for _ in 0..200 {
        if st.seen_whole.contains("r1") {
            break;
        }
        st.on_key(key(KeyCode::Char(' ')));
        last = frame(&mut st, 80, 24);
    }
    assert!(st.seen_whole.contains("r1"));
    assert!(last.contains("end of request"), "{last}");
    assert!(last.contains("deletes a directory tree"), "{last}");
    let (id, d, _) = sent(st.on_key(key(KeyCode::Char('a'))));
    assert_eq!((id.as_str(), d), ("r1", VoteDecision::Approve));
}

#[test]
fn three_hundred_spaces_cannot_hide_the_tail_at_80_by_24() {
    let cmd = format!("ls /tmp/x{}; rm -rf /tmp/x/v", " ".repeat(300));
    let mut st = with(vec![req("r1", Tier::High, "local", &cmd)]);
    let list = frame(&mut st, 80, 24);
    assert!(
        list.contains("ls /tmp/x…+3"),
        "the queue row says what it leaves out: {list}"
    );
    st.on_key(key(KeyCode::Char('j')));
    let screen = frame(&mut st, 80, 24);
    assert!(screen.contains("⟨300 spaces⟩"), "{screen}");
    assert!(screen.contains("rm -rf /tmp/x/v"), "{screen}");
    assert!(screen.contains("a run of 300 spaces"), "{screen}");
}

#[test]
fn hidden_and_look_alike_characters_are_drawn_as_marks() {
    let cmd = "echo hi \u{202E}; ls; ec\u{200B}ho; \u{0441}at /etc/hostname";
    let mut st = with(vec![req("r1", Tier::High, "local", cmd)]);
    st.on_key(key(KeyCode::Char('j')));
    let screen = frame(&mut st, 120, 40);
    for m in ["⟨U+202E⟩", "⟨U+200B⟩", "⟨U+0441⟩at", "hidden or look-alike"] {
        assert!(screen.contains(m), "{m}: {screen}");
    }
    assert!(!screen.contains('\u{202E}') && !screen.contains('\u{200B}'));
}

#[test]
fn high_is_approved_only_by_typing_the_target() {
    let mut st = with(vec![req("r1", Tier::High, "prod-db", "rm -rf /tmp/b")]);
    st.on_key(key(KeyCode::Char('j')));
    frame(&mut st, 80, 24);
    assert!(matches!(st.on_key(key(KeyCode::Char('a'))), Action::None));
    assert!(matches!(st.dialog, Some(Dialog::ConfirmHigh { .. })));
    typed(&mut st, "prod");
    assert!(matches!(st.on_key(key(KeyCode::Enter)), Action::None));
    assert!(matches!(
        &st.dialog,
        Some(Dialog::ConfirmHigh { error: Some(_), .. })
    ));
    typed(&mut st, "-db");
    st.on_key(key(KeyCode::Tab));
    typed(&mut st, "canary first");
    let (id, d, note) = sent(st.on_key(key(KeyCode::Enter)));
    assert_eq!(
        (id.as_str(), d, note.as_deref()),
        ("r1", VoteDecision::Approve, Some("canary first"))
    );
    assert!(st.dialog.is_none());
    // R is never offered for high.
    st.on_key(key(KeyCode::Char('r')));
    assert!(st.dialog.is_none());
    assert!(st.status.contains("never be remembered"));
}

#[test]
fn deny_asks_for_a_reason_and_enter_alone_sends_none() {
    let mut st = with(vec![req("r1", Tier::Medium, "local", "touch /tmp/a")]);
    st.on_key(key(KeyCode::Char('j')));
    st.on_key(key(KeyCode::Char('d')));
    typed(&mut st, "not during the freeze, OPS-12");
    let (_, d, why) = sent(st.on_key(key(KeyCode::Enter)));
    assert_eq!(
        (d, why.as_deref()),
        (VoteDecision::Deny, Some("not during the freeze, OPS-12"))
    );
    st.on_key(key(KeyCode::Char('d')));
    let (_, _, why) = sent(st.on_key(key(KeyCode::Enter)));
    assert_eq!(why, None);
    // Esc sends nothing.
    st.on_key(key(KeyCode::Char('d')));
    assert!(matches!(st.on_key(key(KeyCode::Esc)), Action::None));
    assert!(st.dialog.is_none());
}
