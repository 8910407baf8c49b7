//! Binding an approval to the bytes of the script it runs, on the local target: a file
//! rewritten after reviewers saw it never runs — not when it changes before the approval (the
//! gateway reads it again and refuses), and not while the approved command runs (the approved
//! copy is pinned at the file's path in the command's mount namespace).

mod harness;

use harness::{Gateway, Opts};

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("write script");
}

#[tokio::test]
async fn a_script_changed_before_the_approval_does_not_run() {
    let gw = Gateway::start(Opts::default()).await;
    let d = gw.path("work");
    std::fs::create_dir_all(&d).unwrap();
    let script = d.join("x.sh");
    write(&script, &format!("touch {}/approved\n", d.display()));
    let mut alice = gw.reviewer("alice").await;

    let agent = gw.spawn_exec(&format!("bash {}", script.display()));
    let req = alice.next_of("request").await;
    let text = req["reasons"].to_string();
    assert!(text.contains("x.sh:1: touch"), "{req}");
    // Swapped after reviewers saw it, before they approve.
    write(&script, &format!("touch {}/swapped\n", d.display()));
    let ack = alice.decide(req["id"].as_str().unwrap(), "approve").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (code, _, err) = harness::finish(agent).await;
    assert_eq!(code, 77, "{err}");
    assert!(
        err.contains("airlock: denied:") && err.contains("changed after it was approved"),
        "{err}"
    );
    assert!(!d.join("swapped").exists(), "the swapped script ran");
    assert!(!d.join("approved").exists());
}

#[tokio::test]
async fn a_script_rewritten_while_the_approved_command_runs_keeps_its_approved_bytes() {
    if !harness::can_mount_tmpfs() {
        eprintln!("skipped: no mount namespace here, so scripts cannot be pinned");
        return;
    }
    let gw = Gateway::start(Opts::default()).await;
    let d = gw.path("work");
    std::fs::create_dir_all(&d).unwrap();
    let script = d.join("run.sh");
    write(&script, &format!("touch {}/approved\n", d.display()));
    let mut alice = gw.reviewer("alice").await;

    // The sleep is part of what reviewers approve; the test rewrites the file during it, once
    // the command has started (it says so by creating `started`).
    let started = d.join("started");
    let agent = gw.spawn_exec(&format!(
        "touch {}; sleep 3; bash {}",
        started.display(),
        script.display()
    ));
    let req = alice.next_of("request").await;
    let ack = alice.decide(req["id"].as_str().unwrap(), "approve").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    harness::eventually("the approved command to start", || started.exists()).await;
    write(&script, &format!("touch {}/rewritten\n", d.display()));
    let (code, _, err) = harness::finish(agent).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        d.join("approved").exists(),
        "the approved bytes did not run"
    );
    assert!(!d.join("rewritten").exists(), "the rewritten script ran");
    // The file itself was rewritten (outside the command's namespace), and the copy is gone.
    assert!(
        std::fs::read_to_string(&script)
            .unwrap()
            .contains("rewritten")
    );
}
