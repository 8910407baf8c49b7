use super::*;
use crate::client::ui;
use airlock_approvals::authority::NeedProgress;
use airlock_approvals::{Need, Quorum, VoteDecision};
use crossterm::event::KeyEventState;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn req(id: &str, tier: Tier, target: &str, command: &str) -> RequestMsg {
    needing(id, tier, target, command, Quorum::anyone(1))
}

/// A request whose quorum is `needs` (a rule's, with its groups and excluded owner).
fn needing(id: &str, tier: Tier, target: &str, command: &str, needs: Quorum) -> RequestMsg {
    let view = airlock_approvals::RequestView {
        scripts: Vec::new(),
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
        quorum: needs.total(),
        needs,
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

/// `1 from dba and 1 from sre`, set by rule `prod-db`, the agent owned by `owner`.
fn dba_and_sre(owner: Option<&str>) -> Quorum {
    let need = |g: &str| Need {
        group: Some(g.into()),
        count: 1,
    };
    Quorum {
        rule: Some("prod-db".into()),
        needs: vec![need("dba"), need("sre")],
        excluded: owner.into_iter().map(str::to_owned).collect(),
    }
}

fn hello(st: &mut State, me: &str, groups: &[&str]) {
    st.apply(ServerMsg::Hello {
        reviewer: me.into(),
        version: "test".into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    });
}

/// `dba 0/1 · sre 1/1 (bob)` as the gateway sends it.
fn sre_by_bob() -> (Progress, String) {
    let entry = |label: &str, who: &[&str]| NeedProgress {
        label: label.into(),
        count: 1,
        approvers: who.iter().map(|w| (*w).to_owned()).collect(),
    };
    let p = Progress {
        entries: vec![entry("dba", &[]), entry("sre", &["bob"])],
        met: false,
    };
    let text = p.to_string();
    (p, text)
}

#[test]
fn the_header_names_the_reviewer_and_their_groups() {
    let mut st = State::new();
    hello(&mut st, "alice", &["dba", "oncall"]);
    let screen = frame(&mut st, 100, 24);
    assert!(screen.contains("— alice (dba, oncall) —"), "{screen}");
    hello(&mut st, "carol", &[]);
    let screen = frame(&mut st, 100, 24);
    assert!(screen.contains("— carol — 0 pending"), "{screen}");
}

#[test]
fn progress_and_rule_are_shown_and_follow_votes_and_acks() {
    let mut st = State::new();
    hello(&mut st, "alice", &["dba"]);
    st.apply(ServerMsg::Request(Box::new(needing(
        "r1",
        Tier::Medium,
        "db1",
        "psql -c 'vacuum'",
        dba_and_sre(None),
    ))));
    st.on_key(key(KeyCode::Char('j')));
    let screen = frame(&mut st, 120, 30);
    assert!(screen.contains("approvals dba 0/1 · sre 0/1"), "{screen}");
    assert!(
        screen.contains("needs 1 from dba and 1 from sre · rule prod-db"),
        "{screen}"
    );
    assert!(!screen.contains('⊘'), "alice's vote counts: {screen}");
    let (progress, progress_text) = sre_by_bob();
    assert_eq!(progress_text, "dba 0/1 · sre 1/1 (bob)");
    st.apply(ServerMsg::Vote {
        id: "r1".into(),
        reviewer: "bob".into(),
        decision: VoteDecision::Approve,
        approvals: vec!["bob".into()],
        progress: progress.clone(),
        progress_text: progress_text.clone(),
    });
    let screen = frame(&mut st, 120, 30);
    assert!(
        screen.contains("approvals dba 0/1 · sre 1/1 (bob)"),
        "{screen}"
    );
    assert_eq!(st.current().map(|r| r.approvals.len()), Some(1));
    // A vote that leaves a gateway from before groups sends no progress: the old one stays.
    st.apply(ServerMsg::Vote {
        id: "r1".into(),
        reviewer: "dave".into(),
        decision: VoteDecision::Approve,
        approvals: vec!["bob".into(), "dave".into()],
        progress: Progress::default(),
        progress_text: String::new(),
    });
    assert_eq!(
        st.current().map(|r| r.progress_text.as_str()),
        Some("dba 0/1 · sre 1/1 (bob)")
    );
    st.apply(ServerMsg::Ack {
        id: "r1".into(),
        result: "counted".into(),
        approvals: vec!["bob".into(), "alice".into()],
        approvals_needed: 2,
        progress: progress.clone(),
        progress_text: progress_text.clone(),
        whitelisted: None,
    });
    assert!(
        st.status
            .starts_with("counted, still waiting (dba 0/1 · sre 1/1 (bob))"),
        "{}",
        st.status
    );
}

#[test]
fn a_request_needing_other_groups_is_marked_and_a_sends_nothing() {
    let mut st = State::new();
    hello(&mut st, "alice", &["web"]);
    st.apply(ServerMsg::Request(Box::new(needing(
        "r1",
        Tier::Medium,
        "db1",
        "psql -c 'vacuum'",
        dba_and_sre(None),
    ))));
    let list = frame(&mut st, 120, 30);
    assert!(list.contains("⊘ psql"), "the queue row is marked: {list}");
    st.on_key(key(KeyCode::Char('j')));
    let screen = frame(&mut st, 120, 30);
    assert!(
        screen.contains("your vote does not count here: it needs 1 from dba and 1 from sre"),
        "{screen}"
    );
    assert!(!screen.contains("[A]pprove"), "A is not offered: {screen}");
    for k in ['a', 'd', 'r'] {
        assert!(matches!(st.on_key(key(KeyCode::Char(k))), Action::None));
        assert!(st.dialog.is_none());
        assert!(
            st.status
                .starts_with("your vote does not count here, nothing was sent: it needs"),
            "{}",
            st.status
        );
    }
    // In one of the groups: it counts.
    hello(&mut st, "alice", &["sre", "web"]);
    frame(&mut st, 120, 30);
    let (id, d, _) = sent(st.on_key(key(KeyCode::Char('a'))));
    assert_eq!((id.as_str(), d), ("r1", VoteDecision::Approve));
}

#[test]
fn the_agents_owner_is_told_their_vote_never_counts() {
    let mut st = State::new();
    hello(&mut st, "alice", &["dba"]);
    st.apply(ServerMsg::Request(Box::new(needing(
        "r1",
        Tier::Medium,
        "db1",
        "psql -c 'vacuum'",
        dba_and_sre(Some("alice")),
    ))));
    st.on_key(key(KeyCode::Char('j')));
    let screen = frame(&mut st, 120, 30);
    assert!(
        screen.contains("your vote does not count here: you own agent bot"),
        "{screen}"
    );
    assert!(matches!(st.on_key(key(KeyCode::Char('a'))), Action::None));
    assert!(st.status.contains("you own agent bot"), "{}", st.status);
}

#[test]
fn refusals_are_plain_status_lines_and_mark_the_request() {
    let mut st = with(vec![req("r1", Tier::Medium, "local", "touch /tmp/a")]);
    hello(&mut st, "alice", &[]);
    st.on_key(key(KeyCode::Char('j')));
    frame(&mut st, 120, 30);
    // Anyone counts, as far as the client knows: the approval is sent.
    sent(st.on_key(key(KeyCode::Char('a'))));
    st.apply(ServerMsg::error(
        "out_of_scope",
        "request r1 is outside the scope of your reviewer groups",
        Some("r1"),
    ));
    assert_eq!(
        st.status,
        "your vote was refused (\"touch /tmp/a\"): request r1 is outside the scope of your reviewer groups"
    );
    let screen = frame(&mut st, 120, 30);
    assert!(screen.contains("⊘ touch /tmp/a"), "{screen}");
    assert!(matches!(st.on_key(key(KeyCode::Char('a'))), Action::None));
    assert!(st.status.contains("outside the scope"), "{}", st.status);
    // Other errors are not refusals of the reviewer: nothing is marked.
    let mut st = with(vec![req("r2", Tier::Medium, "local", "touch /tmp/b")]);
    st.apply(ServerMsg::error(
        "already_voted",
        "you voted before",
        Some("r2"),
    ));
    assert!(
        st.status.starts_with("error (\"touch /tmp/b\")"),
        "{}",
        st.status
    );
    assert!(st.refused.is_empty());
    // A refusal is forgotten with its request.
    st.apply(ServerMsg::error(
        "not_required",
        "needs 1 from dba",
        Some("r2"),
    ));
    assert_eq!(st.refused.len(), 1);
    st.apply(ServerMsg::Resolved {
        id: "r2".into(),
        outcome: airlock_approvals::Outcome::Expired,
        by: "airlock".into(),
        approvers: vec![],
        comment: None,
        why: String::new(),
    });
    assert!(st.refused.is_empty());
}
