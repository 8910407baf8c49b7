//! `airlock review` in a real terminal (tmux): a request from a real `ssh` exec appears, the
//! A key runs it; after the gateway restarts the client reconnects by itself, and D denies.

mod harness;

use harness::{BIN, Gateway, Opts, Tmux, finish, free_port};

#[tokio::test]
async fn review_in_a_terminal_approves_denies_and_reconnects() {
    assert!(
        Tmux::available(),
        "tmux missing: run scripts/test.sh, which installs it"
    );
    let mut gw = Gateway::start(Opts {
        reviewer_port: Some(free_port()),
        ..Opts::default()
    })
    .await;
    let token = gw.add_reviewer("alice");
    let cmd = format!(
        "{BIN} --config {} review --url {} --token {token}",
        gw.config.display(),
        gw.ws_url
    );
    let tui = Tmux::run(
        &format!("{cmd}; echo '[review exited]'; sleep 600"),
        140,
        40,
    );
    tui.wait_for("Airlock review — alice").await;
    tui.wait_for("Nothing waiting").await;

    let file = gw.path("tui-approved");
    let approve_me = format!("touch {}", file.display());
    let child = gw.spawn_exec(&approve_me);
    tui.wait_for(&approve_me).await;
    tui.wait_for("denies in").await;
    tui.wait_for("touch: creates or modifies files").await;
    // The agent's screen, from its recording so far: it is being told it waits.
    tui.wait_for("airlock: waiting for approval (medium").await;
    tui.keys(&["a"]);
    let (code, _, err) = finish(child).await;
    assert_eq!(code, 0, "{err}");
    assert!(file.exists(), "the command approved with A ran");
    tui.wait_for("approved by alice").await;

    // The gateway goes away and comes back on the same port: the client reconnects alone.
    gw.crash();
    tui.wait_for("reconnecting in").await;
    gw.spawn();
    tui.wait_for("reconnected").await;

    let file = gw.path("tui-denied");
    let deny_me = format!("touch {}", file.display());
    let child = gw.spawn_exec(&deny_me);
    tui.wait_for(&deny_me).await;
    tui.keys(&["d"]);
    let (code, _, err) = finish(child).await;
    assert_ne!(code, 0);
    assert!(err.contains("airlock: denied"), "{err}");
    assert!(!file.exists());
    tui.keys(&["q"]);
    tui.wait_for("[review exited]").await;
}
