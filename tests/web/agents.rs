//! The Agents tab (issue 21): the reviewer opens it, picks the agent, and reads its blast
//! radius — the one-line summary, its targets with labels and grant state, and the whitelist
//! entry under the target it belongs to.

use super::*;

#[tokio::test]
async fn the_agents_tab_shows_what_an_agent_can_do_unattended() {
    let gw = Gateway::start(harness::grant_opts(false, "")).await;
    let token = gw.add_reviewer("alice");
    let vault = harness::VAULT;
    let wl = gw.cli(&[
        "whitelist",
        "add",
        "--agent",
        "bot",
        "--target",
        vault,
        "--",
        "hostname",
    ]);
    assert!(
        wl.status.success(),
        "{}",
        String::from_utf8_lossy(&wl.stderr)
    );
    gw.grant_add(vault, "1h");
    let at = |what: &str| format!("#agent-report [data-target=\"{vault}\"] {what}");
    let seen = drive(
        &gw,
        &token,
        "web-agents",
        json!([
            {"tap": "#tab-agents"},
            {"tap": "#agents-list button[data-agent=\"bot\"]"},
            {"text": "#agent-summary", "as": "summary"},
            {"text": at(".target-name"), "as": "target"},
            {"text": at(".label"), "as": "label"},
            {"text": at(".grant"), "as": "grant"},
            {"text": at(".wl-entry"), "as": "entry"},
            {"text": "#agent-report [data-target=\"local\"] .grant", "as": "local"},
            {"shot": artefact("web-agents.png")},
        ]),
    )
    .await;
    let summary = text(&seen, "summary");
    assert!(
        summary.contains("can run 1 whitelisted command (up to low) on vault unattended until"),
        "{seen:#}"
    );
    assert_eq!(seen["target"], vault, "{seen:#}");
    assert_eq!(seen["label"], "env=prod", "{seen:#}");
    assert!(
        text(&seen, "grant").starts_with("grant ") && text(&seen, "grant").contains("live until"),
        "{seen:#}"
    );
    let entry = text(&seen, "entry");
    assert!(
        entry.contains("low") && entry.contains("hostname") && entry.contains("; expires "),
        "{seen:#}"
    );
    assert_eq!(seen["local"], "standing access", "{seen:#}");
}
