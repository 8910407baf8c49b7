//! The ledger on every backend: a chain that verifies, one unbroken chain under concurrent
//! appenders (separate `Ledger`s, as separate processes would be), and tampering detected.

use std::io::Cursor;

use ed25519_dalek::SigningKey;
use serde_json::json;

use super::verify::{VerifyOptions, verify};
use super::*;
use crate::store::tests::backends;

async fn export(l: &Ledger) -> String {
    let mut out = Vec::new();
    l.export(0, &mut out).await.expect("export");
    String::from_utf8(out).expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_keep_one_chain_that_verifies() {
    for db in backends().await {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        // Eight writers that do not share a mutex, like eight gateway processes.
        let mut tasks = Vec::new();
        for w in 0..8 {
            let l = Ledger::new(db.store.clone(), Some(key.clone()), 10);
            tasks.push(tokio::spawn(async move {
                for i in 0..15 {
                    l.append_raw("test.event", json!({ "writer": w, "i": i }))
                        .await
                        .expect("append");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let l = Ledger::new(db.store.clone(), Some(key.clone()), 10);
        l.checkpoint().await.expect("checkpoint");
        let text = export(&l).await;
        let opts = VerifyOptions {
            pubkey: Some(key.verifying_key()),
            ..VerifyOptions::default()
        };
        let r = verify(Cursor::new(text.as_bytes()), &opts);
        assert!(r.ok(), "{}: {:?}", db.name, r.problems);
        assert_eq!(r.entries, 120, "{}", db.name);
        assert_eq!(r.last_seq, Some(120));
        assert_eq!(r.last_checkpoint, Some(120));
        assert!(
            r.checkpoints >= 12,
            "{}: every 10 entries and at the end",
            db.name
        );
        db.drop_db().await;
    }
}

/// Group commit: many callers on one ledger (one mutex) and two more processes' worth of
/// ledgers on the same store, all at once. Every caller gets back its own event's entry,
/// the entries it was given are in the store exactly as returned, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_appends_answer_each_caller_with_its_own_entry() {
    for db in backends().await {
        let key = SigningKey::from_bytes(&[5u8; 32]);
        let shared = Ledger::new(db.store.clone(), Some(key.clone()), 7);
        let mut tasks = Vec::new();
        for w in 0..40 {
            // Writers 0..38 share a ledger; 38 and 39 each have their own (other processes).
            let l = if w < 38 {
                shared.clone()
            } else {
                Ledger::new(db.store.clone(), Some(key.clone()), 7)
            };
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..10 {
                    let e = l
                        .append_raw("test.event", json!({ "writer": w, "i": i }))
                        .await
                        .expect("append");
                    assert_eq!(
                        e.payload,
                        json!({ "writer": w, "i": i }),
                        "someone else's entry"
                    );
                    got.push(e);
                }
                got
            }));
        }
        let mut returned = std::collections::BTreeMap::new();
        for t in tasks {
            for e in t.await.expect("task") {
                assert!(
                    returned.insert(e.seq, e).is_none(),
                    "two callers got one seq"
                );
            }
        }
        assert_eq!(returned.len(), 400, "{}", db.name);
        let text = export(&shared).await;
        let r = verify(Cursor::new(text.as_bytes()), &VerifyOptions::default());
        assert!(r.ok(), "{}: {:?}", db.name, r.problems);
        assert_eq!(r.entries, 400, "{}", db.name);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            if v["type"] == "entry" {
                let seq = v["seq"].as_i64().expect("seq");
                assert_eq!(v["hash"], returned[&seq].hash, "{}: entry {seq}", db.name);
            }
        }
        db.drop_db().await;
    }
}

#[tokio::test]
async fn tampering_is_reported_precisely() {
    let db = backends().await.remove(0);
    let key = SigningKey::from_bytes(&[1u8; 32]);
    let l = Ledger::new(db.store.clone(), Some(key.clone()), 3);
    for i in 0..7 {
        l.append_raw(
            "test.event",
            json!({ "i": i, "text": format!("event {i}") }),
        )
        .await
        .expect("append");
    }
    let text = export(&l).await;
    let lines: Vec<&str> = text.lines().collect();
    let entry_line = |seq: i64| {
        lines
            .iter()
            .position(|l| {
                l.contains("\"type\":\"entry\"") && l.contains(&format!("\"seq\":{seq},"))
            })
            .expect("entry line")
    };
    let run =
        |t: &str, opts: &VerifyOptions| verify(Cursor::new(t.as_bytes()), opts).problems.join("\n");
    let trusted = VerifyOptions {
        pubkey: Some(key.verifying_key()),
        ..VerifyOptions::default()
    };
    assert_eq!(run(&text, &trusted), "");

    let edited = text.replace("event 4", "event X");
    assert!(
        run(&edited, &trusted).contains("entry 5 (test.event) was modified"),
        "{}",
        run(&edited, &trusted)
    );

    let mut deleted = lines.clone();
    deleted.remove(entry_line(4));
    assert!(run(&deleted.join("\n"), &trusted).contains("entry 4 is missing"));

    let mut swapped = lines.clone();
    let (a, b) = (entry_line(5), entry_line(6));
    swapped.swap(a, b);
    assert!(run(&swapped.join("\n"), &trusted).contains("out of order"));

    // Drop the tail after the checkpoint at entry 6: the signed checkpoint proves it existed.
    let truncated: Vec<&str> = lines
        .iter()
        .take(entry_line(6))
        .copied()
        .chain(
            lines
                .iter()
                .skip(entry_line(6) + 1)
                .filter(|l| l.contains("checkpoint"))
                .copied(),
        )
        .collect();
    assert!(
        run(&truncated.join("\n"), &trusted).contains("truncated"),
        "{}",
        run(&truncated.join("\n"), &trusted)
    );
    // Dropping the tail after the last checkpoint is caught by a head anchor.
    let head = verify(Cursor::new(text.as_bytes()), &trusted)
        .head
        .expect("head");
    let no_last: Vec<&str> = lines.iter().take(entry_line(7)).copied().collect();
    let anchored = VerifyOptions {
        pubkey: Some(key.verifying_key()),
        head: Some(head),
        ..VerifyOptions::default()
    };
    assert!(run(&no_last.join("\n"), &anchored).contains("head mismatch"));

    // A checkpoint re-signed by another key.
    let other = SigningKey::from_bytes(&[2u8; 32]);
    let forged = format::sign_checkpoint(
        &other,
        3,
        &l.store.ledger_entries(3, 1).await.expect("e")[0].hash,
        1,
    );
    let forged_line = serde_json::to_string(&Line::Checkpoint(forged)).expect("json");
    let mut resigned: Vec<String> = lines
        .iter()
        .map(|s| (*s).to_owned())
        .filter(|l| !l.contains("\"seq\":3,\"hash\"") || !l.contains("checkpoint"))
        .collect();
    resigned.push(forged_line);
    let out = run(&resigned.join("\n"), &trusted);
    assert!(out.contains("not by the trusted key"), "{out}");
    db.drop_db().await;
}
