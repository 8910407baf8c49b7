//! Reviewer groups and approval rules on the page (issue 20): each card says who must approve
//! and who has (`dba 1/1 (carol) · sre 0/1`, updated as votes arrive), names the rule, and
//! marks a request the signed-in reviewer's vote cannot count on, where A sends nothing.

use super::*;

/// Inside the harness agent's `[[agent]]` table: olivia owns the agent. `prod-db` needs a DBA
/// and an SRE on `db-*` targets; dave is in `ops`, which no rule requires.
const GROUPS: &str = r#"owner = "olivia"
[[target]]
name = "db-main"
kind = "local"
labels = { env = "prod" }
[[reviewer_group]]
name = "sre"
members = ["bob", "olivia"]
[[reviewer_group]]
name = "dba"
members = ["carol"]
[[reviewer_group]]
name = "ops"
members = ["dave"]
[[approval_rule]]
name = "prod-db"
match = { targets = ["db-*"] }
require = [{ group = "dba", count = 1 }, { group = "sre", count = 1 }]
"#;

#[tokio::test]
async fn cards_say_who_must_approve_and_whose_vote_cannot_count() {
    let gw = Gateway::start(Opts {
        timeout: "180s",
        extra: GROUPS.into(),
        more_targets: vec!["db-main".into()],
        ..Opts::default()
    })
    .await;
    let (dave, olivia) = (gw.add_reviewer("dave"), gw.add_reviewer("olivia"));
    let mut carol = gw.reviewer("carol").await;
    let mut bob = gw.reviewer("bob").await;
    let file = gw.path("needs-dba-and-sre");
    let cmd = format!("touch {}", file.display());
    let child = gw.spawn_on("db-main", &cmd);
    let req = carol.next_of("request").await;
    let id = req["id"].as_str().expect("id").to_owned();
    assert_eq!(req["rule"], "prod-db", "{req}");
    assert_eq!(req["progress_text"], "dba 0/1 · sre 0/1", "{req}");

    // dave (ops) sees the request but is not in a group it needs; carol approves meanwhile.
    let ready = gw.path("dave-refused");
    let steps = json!([
        {"card": cmd, "as": "c"},
        {"inspect": "c"},
        {"click": "c"},
        {"key": "a"},
        {"latest": "your vote does not count here, nothing was sent", "as": "refused"},
        {"sleep": 300},
        {"sent": "sent"},
        {"touch": ready},
        {"status": "carol approved", "as": "carol_status"},
        {"inspect": "c", "as": "after_carol"},
        {"shot": artefact("web-groups.png")},
    ]);
    let carol_votes = async {
        reached(&ready).await;
        carol.decide(&id, "approve").await
    };
    let (seen, ack) = tokio::join!(drive(&gw, &dave, "web-groups", steps), carol_votes);
    assert_eq!(ack["progress_text"], "dba 1/1 (carol) · sre 0/1", "{ack}");
    assert_eq!(seen["groups"], "groups: ops", "{seen:#}");
    let c = &seen["c"];
    assert_eq!(c["progress"], "approvals dba 0/1 · sre 0/1", "{seen:#}");
    assert_eq!(
        c["needs"], "needs 1 from dba and 1 from sre · rule prod-db",
        "{seen:#}"
    );
    assert_eq!(
        c["not_counted"],
        "⊘ your vote does not count here: it needs 1 from dba and 1 from sre; you are in none of those groups",
        "{seen:#}"
    );
    assert!(
        text(&seen, "refused").contains("it needs 1 from dba and 1 from sre"),
        "{seen:#}"
    );
    assert_eq!(seen["sent"], json!([]), "A sent nothing: {seen:#}");
    assert_eq!(
        seen["after_carol"]["progress"], "approvals dba 1/1 (carol) · sre 0/1",
        "the card follows the votes: {seen:#}"
    );
    assert!(
        text(&seen, "carol_status").contains("dba 1/1 (carol) · sre 0/1"),
        "{seen:#}"
    );

    // olivia is an SRE but owns the agent: her vote never counts on its requests.
    let seen = drive(
        &gw,
        &olivia,
        "web-groups-owner",
        json!([
            {"card": cmd, "as": "c"},
            {"inspect": "c"},
            {"click": "c"},
            {"key": "a"},
            {"latest": "your vote does not count here", "as": "refused"},
            {"sleep": 300},
            {"sent": "sent"},
        ]),
    )
    .await;
    assert_eq!(seen["groups"], "groups: sre", "{seen:#}");
    assert_eq!(
        seen["c"]["not_counted"],
        "⊘ your vote does not count here: you own agent bot: your vote does not count on its requests",
        "{seen:#}"
    );
    assert_eq!(seen["sent"], json!([]), "{seen:#}");
    assert!(!file.exists(), "one of two needs is not enough");

    let ack = bob.decide(&id, "approve").await;
    assert_eq!(ack["result"], "approved", "{ack}");
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(file.exists(), "a DBA and an SRE approved: it ran");
}
