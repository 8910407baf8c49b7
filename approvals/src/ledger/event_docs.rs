//! docs/ledger.md's table of events is checked against this enum: every kind, and every
//! payload field of each, in both directions.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

const DOC: &str = include_str!("../../../docs/ledger.md");

/// One of every event, with every optional field set.
fn samples() -> Vec<Event> {
    let s = || "x".to_owned();
    vec![
        Event::ConfigLoaded {
            source: s(),
            config_sha256: s(),
            expired_requests: 0,
            interrupted_sessions: 0,
        },
        Event::Auth {
            agent: Some(s()),
            target: s(),
            key: s(),
            peer: s(),
            outcome: AuthOutcome::Accepted,
        },
        Event::SessionOpen {
            session: s(),
            agent: s(),
            target: s(),
            kind: SessionKind::Exec,
            peer: s(),
        },
        Event::SessionClose {
            session: s(),
            outcome: SessionOutcome::Ran,
            exit_status: Some(0),
        },
        Event::CommandSubmitted {
            session: s(),
            agent: s(),
            target: s(),
            command: s(),
            tier: Some(Tier::Low),
            score: Some(1),
            rules: vec![s()],
            decision: Verdict::Allow,
            why: Some(s()),
            quorum: Some(1),
            scripts: vec![crate::scripts::ScriptPin {
                path: s(),
                sha256: s(),
            }],
        },
        Event::RequestOpened {
            request: s(),
            session: s(),
            agent: s(),
            target: s(),
            command: s(),
            quorum: 1,
            expires_at: 0,
            reason: None,
            rule: Some(s()),
            needs: s(),
        },
        Event::RequestVote {
            request: s(),
            reviewer: s(),
            decision: VoteDecision::Approve,
            comment: s(),
            groups: vec![s()],
        },
        Event::VoteRefused {
            request: s(),
            reviewer: s(),
            decision: VoteDecision::Approve,
            code: s(),
            why: s(),
        },
        Event::ReadRefused {
            reviewer: s(),
            what: s(),
            code: s(),
        },
        Event::SignIn {
            reviewer: s(),
            groups: vec![s()],
            claimed: vec![s()],
        },
        Event::SignInRefused {
            reviewer: Some(s()),
            code: s(),
            why: s(),
        },
        Event::SignOut { reviewer: s() },
        Event::RequestOutcome {
            request: s(),
            outcome: Outcome::Approved,
            by: s(),
            why: s(),
        },
        Event::ExecStart {
            session: s(),
            command: s(),
            sandbox: Some(s()),
        },
        Event::ExecExit {
            session: s(),
            status: Some(0),
            signal: Some(s()),
            killed: Some(s()),
        },
        Event::RecordingClosed {
            session: s(),
            file: s(),
            size: 0,
            sha256: s(),
        },
        Event::ReviewerAdd {
            reviewer: s(),
            by: s(),
        },
        Event::ReviewerRemove {
            reviewer: s(),
            by: s(),
        },
        Event::WhitelistAdd {
            id: s(),
            agent: None,
            target: None,
            command: s(),
            glob: false,
            tier: Tier::Medium,
            expires_at: None,
            by: s(),
            request: None,
        },
        Event::WhitelistRevoke { id: s(), by: s() },
        Event::WhitelistProposed {
            id: s(),
            agent: None,
            target: None,
            command: s(),
            glob: false,
            tier: Tier::Low,
            expires_at: None,
            by: s(),
            source: s(),
        },
        Event::WhitelistProposalAccepted {
            id: s(),
            by: s(),
            accepted: 1,
            needed: 2,
        },
        Event::WhitelistProposalRejected { id: s(), by: s() },
        Event::UpstreamHostKeyMismatch {
            target: s(),
            presented: s(),
        },
        Event::GatewayStop {
            sessions: 0,
            grace_ms: 0,
        },
        Event::GrantRequested {
            request: s(),
            session: s(),
            agent: s(),
            target: s(),
            duration_s: 3600,
            reason: s(),
        },
        Event::GrantAdded {
            id: s(),
            agent: s(),
            target: s(),
            expires_at: 0,
            by: s(),
            reason: s(),
            request: Some(s()),
        },
        Event::GrantRevoked {
            id: s(),
            agent: s(),
            target: s(),
            by: s(),
        },
        Event::GrantExpired {
            id: s(),
            agent: s(),
            target: s(),
            expires_at: 0,
        },
        Event::CommandExplained {
            agent: s(),
            target: s(),
            command: s(),
            tier: Some(Tier::Low),
            decision: Verdict::Allow,
            why: Some(s()),
        },
    ]
}

/// A new variant fails to compile here until it has a number, and the test below fails
/// until `samples` has one of it.
fn variant(e: &Event) -> usize {
    match e {
        Event::ConfigLoaded { .. } => 0,
        Event::Auth { .. } => 1,
        Event::SessionOpen { .. } => 2,
        Event::SessionClose { .. } => 3,
        Event::CommandSubmitted { .. } => 4,
        Event::RequestOpened { .. } => 5,
        Event::RequestVote { .. } => 6,
        Event::RequestOutcome { .. } => 7,
        Event::ExecStart { .. } => 8,
        Event::ExecExit { .. } => 9,
        Event::RecordingClosed { .. } => 10,
        Event::ReviewerAdd { .. } => 11,
        Event::ReviewerRemove { .. } => 12,
        Event::WhitelistAdd { .. } => 13,
        Event::WhitelistRevoke { .. } => 14,
        Event::WhitelistProposed { .. } => 40,
        Event::WhitelistProposalAccepted { .. } => 41,
        Event::WhitelistProposalRejected { .. } => 42,
        Event::UpstreamHostKeyMismatch { .. } => 15,
        Event::GatewayStop { .. } => 16,
        Event::CommandExplained { .. } => 17,
        Event::VoteRefused { .. } => 18,
        Event::ReadRefused { .. } => 19,
        Event::SignIn { .. } => 20,
        Event::SignInRefused { .. } => 21,
        Event::SignOut { .. } => 22,
        Event::GrantRequested { .. } => 50,
        Event::GrantAdded { .. } => 30,
        Event::GrantRevoked { .. } => 31,
        Event::GrantExpired { .. } => 32,
    }
}
const VARIANTS: usize = 30;

fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// kind → payload fields, from the table.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for row in DOC.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        assert_eq!(cells.len(), 3, "docs/ledger.md row: {row}");
        let kinds = backticked(cells[0]);
        // Parenthesised notes hold example values, not fields.
        let mut payload = String::new();
        let mut depth = 0;
        for c in cells[2].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                c if depth == 0 => payload.push(c),
                _ => {}
            }
        }
        let parts: Vec<&str> = payload.split(" / ").collect();
        for (i, kind) in kinds.iter().enumerate() {
            let part = parts.get(i).or(parts.last()).copied().unwrap_or("");
            let fields: BTreeSet<String> = backticked(part).into_iter().collect();
            out.insert(kind.clone(), fields);
        }
    }
    out
}

#[test]
fn docs_table_matches_the_enum() {
    let samples = samples();
    let covered: BTreeSet<usize> = samples.iter().map(variant).collect();
    assert_eq!(covered.len(), VARIANTS, "samples() lacks a variant");
    let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &samples {
        let Value::Object(map) = e.payload() else {
            panic!("{} has no object payload", e.kind());
        };
        fields
            .entry(e.kind().to_owned())
            .or_default()
            .extend(map.keys().cloned());
    }
    let doc = documented();
    assert_eq!(
        doc.keys().collect::<Vec<_>>(),
        fields.keys().collect::<Vec<_>>(),
        "event kinds in docs/ledger.md differ from the Event enum"
    );
    for (kind, got) in &fields {
        assert_eq!(
            &doc[kind], got,
            "docs/ledger.md: payload fields of {kind} differ from the Event enum"
        );
    }
}

#[test]
fn kind_is_the_serde_tag() {
    for e in samples() {
        let v = serde_json::to_value(&e).expect("serialises");
        assert_eq!(v["kind"], e.kind());
    }
}
