use super::*;
use airlock_classifier::Tier;

async fn broker() -> (Broker, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    (Broker::new(Store::connect(&url).await.unwrap()), dir)
}

fn who(name: &str) -> crate::authority::Reviewer {
    crate::authority::Reviewer {
        name: name.into(),
        groups: Default::default(),
    }
}

fn req(quorum: u32) -> NewRequest {
    NewRequest {
        scripts: Vec::new(),
        node: "test-node".into(),
        session_id: "s".into(),
        agent: "bot".into(),
        target: "local".into(),
        command: "touch x".into(),
        tier: if quorum > 1 { Tier::High } else { Tier::Medium },
        score: 50,
        reasons: vec![],
        needs: crate::authority::Quorum::anyone(quorum),
        expires_at: now_ms() + 60_000,
        reason: None,
        labels: Default::default(),
        kind: Default::default(),
    }
}

#[tokio::test]
async fn approval_releases_the_waiter_and_is_broadcast() {
    let (b, _d) = broker().await;
    let mut events = b.subscribe();
    let t = b.submit(req(1)).await.unwrap();
    let id = t.request.id.clone();
    assert!(matches!(
        events.recv().await.unwrap(),
        BrokerEvent::Requested(_)
    ));
    let waiter = tokio::spawn(async move {
        let mut t = t;
        t.wait(Duration::from_secs(30)).await
    });
    assert_eq!(
        b.decide(&who("alice"), &id, VoteDecision::Approve, None)
            .await
            .unwrap(),
        DecideAck::Resolved {
            outcome: Outcome::Approved,
            approvals: vec!["alice".into()],
            needed: 1,
            progress: crate::authority::Quorum::anyone(1).progress(&[crate::model::Vote {
                reviewer: "alice".into(),
                decision: VoteDecision::Approve,
                comment: None,
                at: 0,
                groups: vec![],
            }]),
        }
    );
    let v = waiter.await.unwrap();
    assert_eq!((v.outcome, v.by.as_str()), (Outcome::Approved, "alice"));
    assert!(matches!(
        events.recv().await.unwrap(),
        BrokerEvent::Resolved {
            outcome: Outcome::Approved,
            ..
        }
    ));
    assert!(matches!(
        b.decide(&who("bob"), &id, VoteDecision::Approve, None)
            .await,
        Err(DecideError::AlreadyResolved { .. })
    ));
}

#[tokio::test]
async fn deny_carries_the_comment() {
    let (b, _d) = broker().await;
    let t = b.submit(req(2)).await.unwrap();
    let id = t.request.id.clone();
    let waiter = tokio::spawn(async move {
        let mut t = t;
        t.wait(Duration::from_secs(30)).await
    });
    b.decide(&who("alice"), &id, VoteDecision::Approve, None)
        .await
        .unwrap();
    b.decide(
        &who("bob"),
        &id,
        VoteDecision::Deny,
        Some("not on a Friday"),
    )
    .await
    .unwrap();
    let v = waiter.await.unwrap();
    assert_eq!(v.outcome, Outcome::Denied);
    assert_eq!(v.why, "denied by bob: not on a Friday");
}

#[tokio::test]
async fn no_answer_in_time_expires_and_late_votes_fail() {
    let (b, _d) = broker().await;
    let t = b.submit(req(1)).await.unwrap();
    let id = t.request.id.clone();
    let mut t = t;
    let v = t.wait(Duration::from_millis(200)).await;
    assert_eq!(v.outcome, Outcome::Expired);
    let err = b
        .decide(&who("alice"), &id, VoteDecision::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "already_resolved");
    assert_eq!(
        b.store().get_request(&id).await.unwrap().unwrap().status,
        RequestStatus::Settled(Outcome::Expired)
    );
}

#[tokio::test]
async fn withdrawn_requests_cannot_be_approved() {
    let (b, _d) = broker().await;
    let t = b.submit(req(1)).await.unwrap();
    let id = t.request.id.clone();
    assert_eq!(
        t.withdraw("agent disconnected").await.outcome,
        Outcome::Withdrawn
    );
    assert!(
        b.decide(&who("alice"), &id, VoteDecision::Approve, None)
            .await
            .is_err()
    );
}
