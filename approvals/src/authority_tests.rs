use super::*;
use crate::model::{Vote, VoteDecision};

fn group(name: &str, members: &[&str], scope: Option<Scope>) -> ReviewerGroup {
    ReviewerGroup {
        name: name.into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        oidc_groups: Vec::new(),
        scope,
    }
}

fn need(group: Option<&str>, count: u32) -> Need {
    Need {
        group: group.map(str::to_owned),
        count,
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn vote(who: &str, groups: &[&str]) -> Vote {
    Vote {
        reviewer: who.into(),
        decision: VoteDecision::Approve,
        comment: None,
        at: 0,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn two_teams() -> Authority {
    let prod = labels(&[("env", "prod")]);
    Authority::new(
        vec![
            group("sre", &["alice", "bob"], None),
            group(
                "dba",
                &["carol"],
                Some(Scope {
                    targets: vec!["db-*".into()],
                    labels: prod.clone(),
                }),
            ),
            group(
                "contractors",
                &["eve"],
                Some(Scope {
                    targets: Vec::new(),
                    labels: labels(&[("env", "staging")]),
                }),
            ),
        ],
        vec![ApprovalRule {
            name: "prod-db-destructive".into(),
            matches: RuleMatch {
                tiers: vec![Tier::High],
                targets: vec!["db-*".into()],
                labels: prod,
                ..RuleMatch::default()
            },
            require: vec![need(Some("dba"), 1), need(Some("sre"), 1)],
            timeout: Some(Duration::from_secs(600)),
        }],
        [("deploy-bot".to_owned(), "alice".to_owned())].into(),
    )
    .unwrap()
}

#[test]
fn and_across_groups_counts_each_person_once() {
    let q = Quorum {
        rule: None,
        needs: vec![need(Some("dba"), 1), need(Some("sre"), 1)],
        excluded: Vec::new(),
    };
    let alice = vote("alice", &["sre"]);
    let bob = vote("bob", &["sre"]);
    let carol = vote("carol", &["dba"]);
    let p = q.progress(std::slice::from_ref(&alice));
    assert!(!p.met);
    assert_eq!(p.to_string(), "dba 0/1 · sre 1/1 (alice)");
    let p = q.progress(&[alice.clone(), bob.clone()]);
    assert!(!p.met, "a second sre adds nothing");
    assert_eq!(p.to_string(), "dba 0/1 · sre 1/1 (alice)");
    let p = q.progress(&[alice, bob, carol]);
    assert!(p.met);
    assert_eq!(p.to_string(), "dba 1/1 (carol) · sre 1/1 (alice)");
}

#[test]
fn one_person_in_two_required_groups_fills_one_place() {
    let q = Quorum {
        rule: None,
        needs: vec![need(Some("dba"), 1), need(Some("sre"), 1)],
        excluded: Vec::new(),
    };
    let both = vote("dana", &["dba", "sre"]);
    assert!(!q.progress(std::slice::from_ref(&both)).met);
    // A later sre lets the matching move dana to dba.
    let p = q.progress(&[both, vote("bob", &["sre"])]);
    assert!(p.met);
    assert_eq!(p.to_string(), "dba 1/1 (dana) · sre 1/1 (bob)");
}

#[test]
fn excluded_people_and_deny_votes_never_count() {
    let mut q = Quorum::anyone(1);
    q.excluded = vec!["alice".into()];
    assert!(!q.progress(&[vote("alice", &[])]).met);
    let mut no = vote("bob", &[]);
    no.decision = VoteDecision::Deny;
    assert!(!q.progress(&[no]).met);
    assert!(q.progress(&[vote("bob", &[])]).met);
}

#[test]
fn the_first_matching_rule_sets_the_quorum_and_the_owner_is_excluded() {
    let a = two_teams();
    let prod = labels(&[("env", "prod")]);
    let s = Subject {
        agent: "deploy-bot",
        target: "db-main",
        labels: &prod,
        tier: Tier::High,
    };
    let req = a.requirement(&s, 2);
    assert_eq!(req.quorum.rule.as_deref(), Some("prod-db-destructive"));
    assert_eq!(req.quorum.total(), 2);
    assert_eq!(req.quorum.excluded, vec!["alice".to_owned()]);
    assert_eq!(req.timeout, Some(Duration::from_secs(600)));
    assert_eq!(req.quorum.describe(), "1 from dba and 1 from sre");
    // Medium on the same target: no rule, the tier default.
    let medium = Subject {
        tier: Tier::Medium,
        ..s
    };
    let req = a.requirement(&medium, 1);
    assert_eq!(req.quorum.rule, None);
    assert_eq!(req.quorum.describe(), "1 reviewer");
    // High elsewhere: never below two.
    let web = Subject {
        target: "web-1",
        ..s
    };
    assert_eq!(a.requirement(&web, 1).quorum.total(), 2);
}

#[test]
fn scopes_decide_who_sees_and_who_may_vote() {
    let a = two_teams();
    let prod = labels(&[("env", "prod")]);
    let staging = labels(&[("env", "staging")]);
    let carol = a.reviewer("carol", &[]);
    let eve = a.reviewer("eve", &[]);
    let bob = a.reviewer("bob", &[]);
    let nobody = a.reviewer("zed", &[]);
    assert!(a.may_see(&carol, "db-main", &prod));
    assert!(!a.may_see(&carol, "web-1", &prod));
    assert!(!a.may_see(&carol, "db-main", &staging));
    assert!(a.may_see(&eve, "web-1", &staging));
    assert!(!a.may_see(&eve, "db-main", &prod));
    assert!(a.may_see(&bob, "anything", &BTreeMap::new()));
    assert!(a.may_see(&nobody, "anything", &BTreeMap::new()));

    let req = RequestView {
        scripts: Vec::new(),
        id: "r1".into(),
        session_id: "s".into(),
        agent: "deploy-bot".into(),
        target: "db-main".into(),
        command: "rm -rf /x".into(),
        tier: Tier::High,
        score: 90,
        reasons: Vec::new(),
        quorum: 2,
        needs: Quorum::anyone(2),
        status: crate::model::RequestStatus::Pending,
        created_at: 0,
        expires_at: 0,
        node: String::new(),
        reason: None,
        labels: prod.clone(),
        kind: Default::default(),
        votes: Vec::new(),
    };
    let s = Subject {
        agent: "deploy-bot",
        target: "db-main",
        labels: &prod,
        tier: Tier::High,
    };
    let q = a.requirement(&s, 2).quorum;
    assert_eq!(a.standing(&carol, &req, &q), Ok(vec!["dba".to_owned()]));
    assert_eq!(a.standing(&bob, &req, &q), Ok(vec!["sre".to_owned()]));
    assert_eq!(
        a.standing(&eve, &req, &q).map_err(|e| e.code()),
        Err("out_of_scope")
    );
    assert_eq!(
        a.standing(&a.reviewer("alice", &[]), &req, &q)
            .map_err(|e| e.code()),
        Err("agent_owner")
    );
    assert_eq!(
        a.standing(&nobody, &req, &q).map_err(|e| e.code()),
        Err("not_required")
    );
}

#[test]
fn identity_provider_groups_map_to_reviewer_groups() {
    let mut g = group("dba", &[], None);
    g.oidc_groups = vec!["db-admins".into()];
    let a = Authority::new(vec![g], Vec::new(), BTreeMap::new()).unwrap();
    assert!(
        a.reviewer("x", &["db-admins".into()])
            .groups
            .contains("dba")
    );
    assert!(a.reviewer("x", &["marketing".into()]).groups.is_empty());
}

#[test]
fn configs_that_could_run_high_on_one_approval_are_refused() {
    let rule = |tiers: Vec<Tier>, require: Vec<Need>| ApprovalRule {
        name: "r".into(),
        matches: RuleMatch {
            tiers,
            ..RuleMatch::default()
        },
        require,
        timeout: None,
    };
    let g = || vec![group("sre", &["a"], None)];
    let err = Authority::new(
        g(),
        vec![rule(vec![], vec![need(None, 1)])],
        BTreeMap::new(),
    )
    .unwrap_err();
    assert!(err.0.contains("high needs at least 2"), "{err}");
    assert!(
        Authority::new(
            g(),
            vec![rule(vec![Tier::High], vec![need(Some("sre"), 1)])],
            BTreeMap::new()
        )
        .is_err()
    );
    assert!(
        Authority::new(
            g(),
            vec![rule(vec![Tier::Medium], vec![need(None, 1)])],
            BTreeMap::new()
        )
        .is_ok()
    );
    let unknown = Authority::new(
        g(),
        vec![rule(vec![Tier::Medium], vec![need(Some("dba"), 1)])],
        BTreeMap::new(),
    )
    .unwrap_err();
    assert!(unknown.0.contains("\"dba\""), "{unknown}");
    assert!(
        Authority::new(
            g(),
            vec![rule(vec![Tier::Medium], vec![need(None, 0)])],
            BTreeMap::new()
        )
        .is_err()
    );
}

#[test]
fn globs() {
    assert!(glob("db-*", "db-main"));
    assert!(!glob("db-*", "web-db-1"));
    assert!(glob("*", ""));
    assert!(glob("a?c", "abc"));
    assert!(!glob("a?c", "ac"));
    assert!(glob("*-prod-*", "eu-prod-3"));
}

#[test]
fn lint_finds_shadowed_rules_empty_groups_and_impossible_needs() {
    let rule = |name: &str, tiers: Vec<Tier>, targets: &[&str], require: Vec<Need>| ApprovalRule {
        name: name.into(),
        matches: RuleMatch {
            tiers,
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
            ..RuleMatch::default()
        },
        require,
        timeout: None,
    };
    let a = Authority::new(
        vec![group("sre", &["a"], None), group("ghosts", &[], None)],
        vec![
            rule("all-db", vec![], &["db-*"], vec![need(Some("sre"), 2)]),
            rule(
                "db-main-high",
                vec![Tier::High],
                &["db-main"],
                vec![need(None, 2)],
            ),
            rule("web", vec![Tier::Medium], &["web-*"], vec![need(None, 1)]),
        ],
        BTreeMap::new(),
    )
    .unwrap()
    .with_targets([("db-main".to_owned(), BTreeMap::new())].into());
    let found = a.lint().join("\n");
    assert!(found.contains("\"db-main-high\" is unreachable"), "{found}");
    assert!(!found.contains("\"web\" is unreachable"), "{found}");
    assert!(found.contains("\"ghosts\" has no members"), "{found}");
    assert!(
        found.contains("needs 2 from group \"sre\", which has only 1"),
        "{found}"
    );
    assert!(
        found.contains("\"web-*\" matches no configured target"),
        "{found}"
    );

    let scoped = Authority::new(
        vec![group(
            "dba",
            &["carol"],
            Some(Scope {
                targets: vec!["db-*".into()],
                labels: BTreeMap::new(),
            }),
        )],
        vec![rule(
            "web-high",
            vec![Tier::High],
            &["web-*"],
            vec![need(Some("dba"), 2)],
        )],
        [("bot".to_owned(), "Alice".to_owned())].into(),
    )
    .unwrap()
    .with_targets(
        [
            ("web-1".to_owned(), BTreeMap::new()),
            ("db-1".to_owned(), BTreeMap::new()),
        ]
        .into(),
    );
    let found = scoped.lint().join("\n");
    assert!(
        found.contains("whose scope covers none of the targets"),
        "{found}"
    );
    assert!(
        found.contains("owner \"Alice\" is a member of no reviewer_group"),
        "{found}"
    );
}
