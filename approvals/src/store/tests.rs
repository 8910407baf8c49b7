//! Store behaviour on every backend: SQLite always, PostgreSQL when AIRLOCK_TEST_POSTGRES_URL
//! is set (each test gets its own throwaway database).

use super::*;

pub(crate) struct TestDb {
    pub store: Store,
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>, // (admin url, database name)
}

impl TestDb {
    pub async fn drop_db(self) {
        self.store.close().await;
        if let Some((admin, db)) = self.pg
            && let Ok(s) = Store::connect_raw(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}")))
                .execute(&s.pool)
                .await;
            s.close().await;
        }
    }
}

pub(crate) async fn backends() -> Vec<TestDb> {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut out = vec![TestDb {
        store: Store::connect(&url).await.expect("sqlite"),
        name: "sqlite",
        _dir: Some(dir),
        pg: None,
    }];
    match std::env::var("AIRLOCK_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let db = format!("airlock_t_{}", ids::new_id().expect("id"));
            let s = Store::connect_raw(&admin)
                .await
                .expect("postgres admin connection");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&s.pool)
                .await
                .expect("create db");
            s.close().await;
            let url = match admin.rfind('/') {
                Some(i) if admin[..i].contains("@") || admin[..i].ends_with(char::is_numeric) => {
                    let (base, rest) = admin.split_at(i);
                    let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
                    format!("{base}/{db}{query}")
                }
                _ => panic!("AIRLOCK_TEST_POSTGRES_URL must end in /DATABASE"),
            };
            out.push(TestDb {
                store: Store::connect(&url).await.expect("postgres"),
                name: "postgres",
                _dir: None,
                pg: Some((admin, db)),
            });
        }
        _ => eprintln!("postgres store tests skipped: AIRLOCK_TEST_POSTGRES_URL is not set"),
    }
    out
}

fn new_request(agent: &str, tier: Tier, quorum: u32, expires_at: i64) -> NewRequest {
    NewRequest {
        scripts: Vec::new(),
        node: "test-node".into(),
        session_id: "s1".into(),
        agent: agent.into(),
        target: "local".into(),
        command: "touch /tmp/x".into(),
        tier,
        score: 45,
        reasons: vec![],
        needs: crate::authority::Quorum::anyone(quorum),
        expires_at,
        reason: Some("rotate the logs".into()),
        labels: [("env".to_owned(), "prod".to_owned())].into(),
        kind: Default::default(),
    }
}

#[tokio::test]
async fn reviewers_tokens_are_hashed_and_checked() {
    for db in backends().await {
        let s = &db.store;
        let token = s.add_reviewer("alice", 1).await.unwrap();
        assert!(token.starts_with("alr_"), "{}", db.name);
        assert_eq!(
            s.reviewer_for_token(&token).await.unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(s.reviewer_for_token("alr_wrong").await.unwrap(), None);
        assert!(matches!(
            s.add_reviewer("alice", 2).await,
            Err(StoreError::ReviewerExists(_))
        ));
        assert!(matches!(
            s.add_reviewer("bad name", 2).await,
            Err(StoreError::ReviewerName(_))
        ));
        assert_eq!(
            s.list_reviewers().await.unwrap(),
            vec![("alice".to_string(), 1)]
        );
        s.remove_reviewer("alice").await.unwrap();
        assert_eq!(
            s.reviewer_for_token(&token).await.unwrap(),
            None,
            "{}",
            db.name
        );
        assert!(matches!(
            s.remove_reviewer("alice").await,
            Err(StoreError::NoReviewer(_))
        ));
        db.drop_db().await;
    }
}

#[tokio::test]
async fn quorum_rules() {
    for db in backends().await {
        let s = &db.store;
        let n = db.name;
        // Medium: one approval settles it.
        let r = s
            .insert_request(&new_request("bot", Tier::Medium, 1, 1_000), 0)
            .await
            .unwrap();
        assert_eq!(
            s.vote(&r.id, "alice", VoteDecision::Approve, None, &[], 1)
                .await
                .unwrap()
                .settled(),
            Some(Outcome::Approved),
            "{n}"
        );
        assert_eq!(
            s.vote(&r.id, "bob", VoteDecision::Approve, None, &[], 2)
                .await
                .unwrap(),
            VoteResult::NotPending(RequestStatus::Settled(Outcome::Approved)),
            "{n}"
        );

        // High: two distinct reviewers; the same one twice is not two.
        let r = s
            .insert_request(&new_request("bot", Tier::High, 2, 1_000), 0)
            .await
            .unwrap();
        assert_eq!(
            s.vote(&r.id, "alice", VoteDecision::Approve, None, &[], 1)
                .await
                .unwrap(),
            VoteResult::Counted {
                approvals: vec!["alice".into()],
                quorum: 2,
                progress: crate::authority::Progress {
                    entries: vec![crate::authority::NeedProgress {
                        label: "any".into(),
                        count: 2,
                        approvers: vec!["alice".into()],
                    }],
                    met: false,
                },
            },
            "{n}"
        );
        assert_eq!(
            s.vote(&r.id, "alice", VoteDecision::Approve, None, &[], 2)
                .await
                .unwrap(),
            VoteResult::AlreadyVoted,
            "{n}"
        );
        assert_eq!(
            s.vote(&r.id, "bot", VoteDecision::Approve, None, &[], 2)
                .await
                .unwrap(),
            VoteResult::OwnRequest,
            "{n}"
        );
        assert_eq!(
            s.vote(&r.id, "bob", VoteDecision::Approve, Some("ok"), &[], 3)
                .await
                .unwrap()
                .settled(),
            Some(Outcome::Approved),
            "{n}"
        );
        let view = s.get_request(&r.id).await.unwrap().unwrap();
        assert_eq!(view.status, RequestStatus::Settled(Outcome::Approved));
        assert_eq!(view.reason.as_deref(), Some("rotate the logs"), "{n}");
        assert_eq!(
            view.labels.get("env").map(String::as_str),
            Some("prod"),
            "{n}"
        );
        assert_eq!(
            view.approvals(),
            vec!["alice".to_string(), "bob".to_string()]
        );

        // Any deny wins.
        let r = s
            .insert_request(&new_request("bot", Tier::High, 2, 1_000), 0)
            .await
            .unwrap();
        s.vote(&r.id, "alice", VoteDecision::Approve, None, &[], 1)
            .await
            .unwrap();
        assert_eq!(
            s.vote(&r.id, "bob", VoteDecision::Deny, Some("no"), &[], 2)
                .await
                .unwrap()
                .settled(),
            Some(Outcome::Denied),
            "{n}"
        );

        // Unknown id; a vote at or after the deadline does not count.
        assert_eq!(
            s.vote("nope", "alice", VoteDecision::Approve, None, &[], 1)
                .await
                .unwrap(),
            VoteResult::NotFound
        );
        let r = s
            .insert_request(&new_request("bot", Tier::Medium, 1, 10), 0)
            .await
            .unwrap();
        assert_eq!(
            s.vote(&r.id, "alice", VoteDecision::Approve, None, &[], 10)
                .await
                .unwrap(),
            VoteResult::NotPending(RequestStatus::Settled(Outcome::Expired)),
            "{n}"
        );
        db.drop_db().await;
    }
}

#[tokio::test]
async fn settle_happens_once() {
    for db in backends().await {
        let s = &db.store;
        let r = s
            .insert_request(&new_request("bot", Tier::Medium, 1, 1_000), 0)
            .await
            .unwrap();
        assert_eq!(
            s.settle(&r.id, Outcome::Expired, "airlock", "timeout", 5)
                .await
                .unwrap(),
            Some(RequestStatus::Settled(Outcome::Expired))
        );
        assert_eq!(
            s.vote(&r.id, "alice", VoteDecision::Approve, None, &[], 6)
                .await
                .unwrap(),
            VoteResult::NotPending(RequestStatus::Settled(Outcome::Expired))
        );
        assert_eq!(
            s.settle(&r.id, Outcome::Withdrawn, "bot", "gone", 7)
                .await
                .unwrap(),
            Some(RequestStatus::Settled(Outcome::Expired))
        );

        let a = s
            .insert_request(&new_request("bot", Tier::Medium, 1, 1_000), 0)
            .await
            .unwrap();
        let b = s
            .insert_request(&new_request("bot", Tier::Medium, 1, 1_000), 0)
            .await
            .unwrap();
        assert_eq!(s.pending_requests(1).await.unwrap().len(), 2);
        let mut expired = s
            .expire_pending_of("test-node", "restart", 2)
            .await
            .unwrap();
        expired.sort();
        let mut want = vec![a.id.clone(), b.id.clone()];
        want.sort();
        assert_eq!(expired, want, "{}", db.name);
        assert!(s.pending_requests(3).await.unwrap().is_empty());
        db.drop_db().await;
    }
}

fn wl<'a>(
    agent: Option<&'a str>,
    target: Option<&'a str>,
    pattern: &'a str,
    words: Option<&'a [String]>,
    tier: Tier,
    expires_at: Option<i64>,
) -> NewWhitelist<'a> {
    NewWhitelist {
        scripts: &[],
        agent,
        target,
        pattern,
        words,
        tier,
        created_by: "alice",
        created_at: 0,
        expires_at,
    }
}

#[tokio::test]
async fn whitelist_scope_expiry_and_high_never_match() {
    for db in backends().await {
        let s = &db.store;
        let n = db.name;
        let m = Tier::Medium;
        s.add_whitelist(&wl(
            Some("bot"),
            Some("local"),
            "systemctl restart nginx",
            None,
            m,
            None,
        ))
        .await
        .unwrap();
        s.add_whitelist(&wl(None, None, "touch /tmp/a", None, m, Some(100)))
            .await
            .unwrap();
        s.add_whitelist(&wl(None, None, "rm -rf /srv", None, Tier::High, None))
            .await
            .unwrap();
        s.add_whitelist(&wl(None, None, "ls /srv", None, Tier::Low, None))
            .await
            .unwrap();
        let hit = |agent: &'static str, target: &'static str, cmd: &'static str, tier, now| async move {
            s.whitelist_match(agent, target, cmd, None, tier, now)
                .await
                .unwrap()
                .is_some()
        };
        assert!(
            hit("bot", "local", "systemctl restart nginx", m, 1).await,
            "{n}"
        );
        assert!(
            !hit("other", "local", "systemctl restart nginx", m, 1).await,
            "{n}"
        );
        assert!(
            !hit("bot", "web-1", "systemctl restart nginx", m, 1).await,
            "{n}"
        );
        assert!(hit("x", "y", "touch /tmp/a", m, 99).await, "{n}");
        assert!(
            !hit("x", "y", "touch /tmp/a", m, 100).await,
            "expired at 100 ({n})"
        );
        assert!(
            !hit("x", "y", "rm -rf /srv", Tier::High, 1).await,
            "high never matches ({n})"
        );
        assert!(
            !hit("x", "y", "rm -rf /srv", m, 1).await,
            "a high entry never matches ({n})"
        );
        assert!(hit("x", "y", "ls /srv", Tier::Low, 1).await, "{n}");
        assert!(
            !hit("x", "y", "ls /srv", m, 1).await,
            "a low entry does not cover a command now judged medium ({n})"
        );
        let all = s.list_whitelist().await.unwrap();
        assert_eq!(all.len(), 4);
        assert!(s.revoke_whitelist(&all[0].id).await.unwrap());
        assert!(!s.revoke_whitelist(&all[0].id).await.unwrap());
        db.drop_db().await;
    }
}

#[tokio::test]
async fn whitelist_globs_match_argv_of_their_program() {
    for db in backends().await {
        let s = &db.store;
        let n = db.name;
        let words = airlock_classifier::glob_pattern("docker restart web-*").unwrap();
        let e = s
            .add_whitelist(&wl(
                Some("bot"),
                None,
                "docker restart web-*",
                Some(&words),
                Tier::Medium,
                None,
            ))
            .await
            .unwrap();
        assert!(e.glob);
        let argv = |c: &str| airlock_classifier::plain_argv(c).unwrap();
        let m = |c: &'static str, agent: &'static str| {
            let a = argv(c);
            async move {
                s.whitelist_match(agent, "local", c, Some(&a), Tier::Medium, 1)
                    .await
                    .unwrap()
                    .map(|e| e.id)
            }
        };
        assert_eq!(
            m("docker restart web-1", "bot").await,
            Some(e.id.clone()),
            "{n}"
        );
        assert_eq!(
            m("docker   restart 'web-2'", "bot").await,
            Some(e.id.clone()),
            "{n}"
        );
        assert_eq!(m("docker restart db-1", "bot").await, None, "{n}");
        assert_eq!(m("docker restart web-1 db-1", "bot").await, None, "{n}");
        assert_eq!(m("docker restart web-1", "other").await, None, "{n}");
        // A command with no plain argv is only ever compared by its text.
        assert_eq!(
            s.whitelist_match(
                "bot",
                "local",
                "docker restart web-1; id",
                None,
                Tier::Medium,
                1
            )
            .await
            .unwrap(),
            None,
            "{n}"
        );
        let listed = s.list_whitelist().await.unwrap();
        assert!(listed[0].glob, "{n}");
        db.drop_db().await;
    }
}

#[tokio::test]
async fn concurrent_votes_count_once() {
    for db in backends().await {
        let s = db.store.clone();
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(
                s.insert_request(&new_request("bot", Tier::High, 2, i64::MAX), 0)
                    .await
                    .unwrap()
                    .id,
            );
        }
        let mut tasks = Vec::new();
        for id in &ids {
            for who in ["alice", "bob"] {
                let (s, id) = (s.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    s.vote(&id, who, VoteDecision::Approve, None, &[], 1).await
                }));
            }
        }
        let mut resolved = 0;
        for t in tasks {
            if let VoteResult::Resolved {
                outcome: Outcome::Approved,
                ..
            } = t.await.unwrap().unwrap()
            {
                resolved += 1;
            }
        }
        assert_eq!(
            resolved,
            ids.len(),
            "each request approved exactly once ({})",
            db.name
        );
        for id in &ids {
            let r = s.get_request(id).await.unwrap().unwrap();
            assert_eq!((r.status.as_str(), r.votes.len()), ("approved", 2));
        }
        db.drop_db().await;
    }
}

#[tokio::test]
async fn pending_requests_carry_their_votes() {
    for db in backends().await {
        let s = &db.store;
        let a = s
            .insert_request(&new_request("bot", Tier::High, 2, 1_000), 0)
            .await
            .unwrap();
        let b = s
            .insert_request(&new_request("bot", Tier::High, 2, 1_000), 1)
            .await
            .unwrap();
        s.vote(&a.id, "alice", VoteDecision::Approve, None, &[], 2)
            .await
            .unwrap();
        s.vote(&b.id, "bob", VoteDecision::Approve, None, &[], 3)
            .await
            .unwrap();
        s.vote(&b.id, "carol", VoteDecision::Approve, None, &[], 4)
            .await
            .unwrap(); // settles b
        let pending = s.pending_requests(5).await.unwrap();
        assert_eq!(pending.len(), 1, "{}", db.name);
        assert_eq!(pending[0].id, a.id);
        assert_eq!(
            pending[0].approvals(),
            vec!["alice".to_string()],
            "{}",
            db.name
        );
        db.drop_db().await;
    }
}

#[test]
fn database_urls_never_show_a_password() {
    assert_eq!(
        super::redact("postgres://airlock:S3cret@db:5432/airlock"),
        "postgres://airlock:***@db:5432/airlock"
    );
    assert_eq!(
        super::redact("postgres://db:5432/airlock?user=airlock&password=S3cret&sslmode=require"),
        "postgres://db:5432/airlock?user=airlock&password=***&sslmode=require"
    );
    assert_eq!(
        super::redact("sqlite:///var/lib/a.db?mode=rwc"),
        "sqlite:///var/lib/a.db?mode=rwc"
    );
}
