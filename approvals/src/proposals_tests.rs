//! Proposals on every backend: they never match until accepted, medium needs two distinct
//! people, the agent and out-of-scope reviewers are refused, a rejection is final.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::authority::{ReviewerGroup, Scope};
use crate::store::NewWhitelist;
use crate::store::tests::backends;

fn authority() -> Authority {
    let staging = Scope {
        targets: vec!["staging".into()],
        labels: BTreeMap::new(),
    };
    Authority::new(
        vec![
            ReviewerGroup {
                name: "sre".into(),
                members: vec!["alice".into(), "bob".into()],
                oidc_groups: Vec::new(),
                scope: None,
            },
            ReviewerGroup {
                name: "qa".into(),
                members: vec!["quinn".into()],
                oidc_groups: Vec::new(),
                scope: Some(staging),
            },
        ],
        Vec::new(),
        BTreeMap::new(),
    )
    .expect("authority")
    .with_targets(BTreeMap::from([
        ("prod".to_owned(), BTreeMap::new()),
        ("staging".to_owned(), BTreeMap::new()),
    ]))
}

fn who(a: &Authority, name: &str) -> Reviewer {
    a.reviewer(name, &[])
}

async fn propose(s: &Store, command: &str, tier: Tier, target: Option<&str>) -> String {
    s.propose_whitelist(
        &NewWhitelist {
            scripts: &[],
            agent: Some("bot"),
            target,
            pattern: command,
            words: None,
            tier,
            created_by: "cli:op",
            created_at: 1,
            expires_at: None,
        },
        "cli:op",
        "promoted from target staging",
    )
    .await
    .expect("propose")
    .id
}

async fn matches(s: &Store, command: &str, tier: Tier) -> bool {
    s.whitelist_match("bot", "prod", command, None, tier, 2)
        .await
        .expect("match")
        .is_some()
}

#[tokio::test]
async fn a_proposal_matches_only_once_enough_distinct_people_accept_it() {
    let a = authority();
    for db in backends().await {
        let s = &db.store;
        let ledger = Ledger::new(s.clone(), None, u64::MAX);
        let id = propose(s, "systemctl restart app", Tier::Medium, Some("prod")).await;
        assert!(
            !matches(s, "systemctl restart app", Tier::Medium).await,
            "{}",
            db.name
        );
        assert!(s.list_whitelist().await.unwrap().is_empty(), "{}", db.name);
        assert_eq!(s.list_proposals().await.unwrap().len(), 1);

        // The agent itself, and a reviewer scoped to staging, cannot accept.
        let bot = who(&a, "bot");
        let err = accept(s, &ledger, &a, &Actor::Reviewer(&bot), &id, 3).await;
        assert_eq!(err.unwrap_err().code(), "own_agent");
        // …nor under a case twin of its name.
        let twin = who(&a, "Bot");
        let err = accept(s, &ledger, &a, &Actor::Reviewer(&twin), &id, 3).await;
        assert_eq!(err.unwrap_err().code(), "own_agent");
        let quinn = who(&a, "quinn");
        let err = accept(s, &ledger, &a, &Actor::Reviewer(&quinn), &id, 3).await;
        assert_eq!(err.unwrap_err().code(), "out_of_scope");

        // One acceptance of a medium entry is not enough; the same person twice is one.
        let alice = who(&a, "alice");
        let one = accept(s, &ledger, &a, &Actor::Reviewer(&alice), &id, 3)
            .await
            .unwrap();
        assert!(!one.live);
        assert!(!matches(s, "systemctl restart app", Tier::Medium).await);
        let again = accept(s, &ledger, &a, &Actor::Operator("cli:alice"), &id, 4).await;
        assert_eq!(again.unwrap_err().code(), "already_accepted");
        let twin = who(&a, "ALICE");
        let again = accept(s, &ledger, &a, &Actor::Reviewer(&twin), &id, 4).await;
        assert_eq!(
            again.unwrap_err().code(),
            "already_accepted",
            "a case twin is the same person"
        );
        assert!(!matches(s, "systemctl restart app", Tier::Medium).await);

        // A second person makes it live; then it matches, and it is no longer proposed.
        let two = accept(s, &ledger, &a, &Actor::Operator("cli:bob"), &id, 5)
            .await
            .unwrap();
        assert!(two.live);
        assert_eq!(two.accepted_by, vec!["alice".to_owned(), "bob".to_owned()]);
        assert!(
            matches(s, "systemctl restart app", Tier::Medium).await,
            "{}",
            db.name
        );
        assert!(s.list_proposals().await.unwrap().is_empty());
        let late = accept(s, &ledger, &a, &Actor::Reviewer(&alice), &id, 6).await;
        assert_eq!(late.unwrap_err().code(), "not_proposed");

        let kinds: BTreeSet<String> = s
            .ledger_entries(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert!(kinds.contains("whitelist.proposal_accepted"), "{kinds:?}");
        assert!(kinds.contains("whitelist.add"), "{kinds:?}");
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_rejected_or_any_target_proposal_needs_the_right_people() {
    let a = authority();
    for db in backends().await {
        let s = &db.store;
        let ledger = Ledger::new(s.clone(), None, u64::MAX);
        // For every target: only an unscoped reviewer may accept.
        let any = propose(s, "uptime", Tier::Low, None).await;
        let quinn = who(&a, "quinn");
        let err = accept(s, &ledger, &a, &Actor::Reviewer(&quinn), &any, 3).await;
        assert_eq!(err.unwrap_err().code(), "out_of_scope");
        let alice = who(&a, "alice");
        let ok = accept(s, &ledger, &a, &Actor::Reviewer(&alice), &any, 3)
            .await
            .unwrap();
        assert!(ok.live, "low needs one person");
        assert!(matches(s, "uptime", Tier::Low).await);

        // Rejected: never matches, cannot be accepted afterwards.
        let id = propose(s, "df -h", Tier::Low, Some("prod")).await;
        reject(s, &ledger, &a, &Actor::Operator("cli:bob"), &id)
            .await
            .unwrap();
        let late = accept(s, &ledger, &a, &Actor::Reviewer(&alice), &id, 4).await;
        assert_eq!(late.unwrap_err().code(), "not_proposed");
        assert!(!matches(s, "df -h", Tier::Low).await);
        assert_eq!(
            s.proposal(&id).await.unwrap().unwrap().status,
            ProposalStatus::Rejected
        );
        db.drop_db().await;
    }
}
