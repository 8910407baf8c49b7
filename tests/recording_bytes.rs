//! Byte-exact recordings (issue 24): binary output — every byte value, invalid UTF-8, NULs —
//! through a real `ssh` with and without a terminal comes back from the recording exactly, via
//! our reader, `airlock replay --cat` and `--export` (read by the real asciinema); the raw data
//! file is hashed into the ledger, `ledger verify --recordings` passes, and a tampered or
//! missing raw file fails it. Casts written before raw files existed still replay.

mod harness;

use std::path::{Path, PathBuf};
use std::process::Output;

use airlock_recorder::Recording;
use harness::*;

/// A `printf` format writing every byte value 0..=255 once, as octal escapes.
fn all_bytes_format() -> (String, Vec<u8>) {
    let fmt: String = (0..=255u16).map(|b| format!("\\{b:03o}")).collect();
    (fmt, (0..=255u8).collect())
}

/// Run `cmd` as the agent (with `-tt` when `pty`) and return the client's exact bytes.
async fn exec_bytes(gw: &Gateway, cmd: &str, pty: bool) -> Output {
    let mut c = gw.ssh_cmd(&gw.agent_key, "local");
    if pty {
        c.arg("-tt");
    }
    c.arg("127.0.0.1").arg(cmd);
    tokio::time::timeout(WAIT, c.spawn().expect("ssh").wait_with_output())
        .await
        .expect("ssh finished in time")
        .expect("ssh output")
}

/// The recording whose header names `cmd`, once it is closed (its exit marker is written).
async fn closed_recording(gw: &Gateway, cmd: &str) -> PathBuf {
    let find = || {
        gw.recordings().into_iter().find(|p| {
            Recording::open(p).is_ok_and(|r| {
                r.header.command.as_deref() == Some(cmd)
                    && r.markers().any(|m| m.data.starts_with("exit "))
            })
        })
    };
    eventually("recording closed", || find().is_some()).await;
    let path = find().expect("recording");
    // The ledger's recording.closed entries follow the close; wait for them too.
    let id = session_id(&path);
    eventually("recording.closed in the ledger", || {
        ledger_text(gw)
            .lines()
            .any(|l| l.contains("recording.closed") && l.contains(&format!("{id}.cast")))
    })
    .await;
    path
}

fn session_id(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("id")
        .to_owned()
}

fn ledger_text(gw: &Gateway) -> String {
    String::from_utf8_lossy(&gw.cli(&["ledger", "export"]).stdout).into_owned()
}

/// `airlock ledger verify FILE --recordings DIR`: (exit code, output).
fn verify(file: &Path, recordings: &Path) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(["ledger", "verify"])
        .arg(file)
        .arg("--recordings")
        .arg(recordings)
        .env_remove("AIRLOCK_CONFIG")
        .output()
        .expect("verify");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn asciinema() -> Option<String> {
    std::env::var("AIRLOCK_TEST_ASCIINEMA")
        .ok()
        .filter(|b| !b.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binary_output_without_a_terminal_is_recorded_byte_for_byte() {
    let gw = Gateway::start(Opts::default()).await;
    let (all, all_bytes) = all_bytes_format();
    // Every byte value twice, invalid UTF-8, a run of NULs, text; then binary on stderr.
    let cmd = format!(
        "printf '{all}'; printf 'caf\\303\\251 \\377\\376\\300\\200 '; head -c 70000 /dev/zero; \
         printf '{all}'; sleep 0.3; printf 'err\\000\\377\\n' >&2"
    );
    let out = exec_bytes(&gw, &cmd, false).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want_stdout = all_bytes.clone();
    want_stdout.extend_from_slice(b"caf\xc3\xa9 \xff\xfe\xc0\x80 ");
    want_stdout.extend_from_slice(&[0u8; 70000]);
    want_stdout.extend_from_slice(&all_bytes);
    assert_eq!(out.stdout, want_stdout, "the client got the bytes");
    assert_eq!(out.stderr, b"err\x00\xff\n");
    let mut everything = out.stdout.clone();
    everything.extend_from_slice(&out.stderr);

    let path = closed_recording(&gw, &cmd).await;
    let id = session_id(&path);
    let raw = path.with_extension("raw");
    assert!(raw.exists(), "binary output has a raw data file");
    // The cast stays small: 70,000 NULs are not 420,000 bytes of JSON escapes.
    let cast_len = std::fs::metadata(&path).expect("cast").len();
    assert!(cast_len < 16 * 1024, "cast is {cast_len} bytes");

    // Our reader, replay --cat: exactly what the agent received, stdout then stderr.
    let rec = Recording::open(&path).expect("recording");
    assert_eq!(rec.output_bytes().expect("output"), everything);
    let cat = gw.cli(&["replay", &id[..8], "--cat"]);
    assert_eq!(ok(&cat).stdout, everything, "replay --cat is byte-exact");
    let markers =
        String::from_utf8_lossy(&ok(&gw.cli(&["replay", &id, "--markers"])).stdout).into_owned();
    assert!(markers.contains("exit 0"), "{markers}");

    // Export for asciinema: valid asciicast v2; only the bytes that are not UTF-8 differ
    // (U+FFFD), exactly as a UTF-8 decoder with replacement reads them.
    let dir = tempfile::tempdir().expect("tempdir");
    let exported = dir.path().join("export.cast");
    ok(&gw.cli(&["replay", &id, "--export", &exported.display().to_string()]));
    let plain = Recording::read(std::io::BufReader::new(
        std::fs::File::open(&exported).expect("export"),
    ))
    .expect("the export is plain asciicast");
    assert_eq!(plain.output(), String::from_utf8_lossy(&everything));
    assert!(plain.markers().any(|m| m.data == "exit 0"));
    match asciinema() {
        Some(bin) => {
            let out = std::process::Command::new(&bin)
                .arg("cat")
                .arg(&exported)
                .output()
                .expect("run asciinema");
            assert_eq!(
                String::from_utf8_lossy(&ok(&out).stdout),
                String::from_utf8_lossy(&everything),
                "asciinema cat reads the export"
            );
        }
        None => eprintln!("skipped the asciinema check: AIRLOCK_TEST_ASCIINEMA is not set"),
    }

    // The ledger holds both files; verify re-hashes them.
    let text = ledger_text(&gw);
    let closed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"recording.closed\"") && l.contains(&id))
        .collect();
    assert_eq!(closed.len(), 2, "cast and raw file: {closed:?}");
    assert!(closed.iter().any(|l| l.contains(&format!("{id}.raw"))));
    let ledger = dir.path().join("ledger.jsonl");
    std::fs::write(&ledger, &text).expect("write");
    let recordings = gw.path("data/recordings");
    let (code, report) = verify(&ledger, &recordings);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("recordings match"), "{report}");

    // One flipped bit in the raw file, or the raw file gone, fails verification.
    let copy = dir.path().join("recordings");
    std::fs::create_dir_all(&copy).expect("dir");
    for e in std::fs::read_dir(&recordings).expect("dir").flatten() {
        std::fs::copy(e.path(), copy.join(e.file_name())).expect("copy");
    }
    let victim = copy.join(format!("{id}.raw"));
    let mut bytes = std::fs::read(&victim).expect("raw");
    bytes[1000] ^= 1;
    std::fs::write(&victim, &bytes).expect("tamper");
    let (code, report) = verify(&ledger, &copy);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("was altered") && report.contains(&format!("{id}.raw")),
        "{report}"
    );
    std::fs::remove_file(&victim).expect("rm");
    let (code, report) = verify(&ledger, &copy);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("missing"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminal_output_that_is_not_utf8_is_recorded_byte_for_byte() {
    let gw = Gateway::start(Opts::default()).await;
    let cmd = "printf 'ok \\033[1mbold\\033[0m \\303\\251\\n'; printf '\\377\\376\\000\\001 latin1 caf\\351\\n'; printf 'after\\n'";
    let out = exec_bytes(&gw, cmd, true).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.windows(2).any(|w| w == b"\xff\xfe"),
        "{:?}",
        out.stdout
    );
    let path = closed_recording(&gw, cmd).await;
    let rec = Recording::open(&path).expect("recording");
    assert_eq!(
        rec.output_bytes().expect("output"),
        out.stdout,
        "the recording holds what the terminal received"
    );
    // The text stays readable in the cast itself (for the web player); only the invalid
    // chunk is in the raw file.
    assert!(rec.output().contains("\u{1b}[1mbold"), "{:?}", rec.output());
    let id = session_id(&path);
    assert_eq!(ok(&gw.cli(&["replay", &id, "--cat"])).stdout, out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn text_sessions_and_old_casts_need_no_raw_file() {
    let gw = Gateway::start(Opts::default()).await;
    let cmd = "printf 'h\\303\\251llo\\n'";
    let out = exec_bytes(&gw, cmd, false).await;
    assert_eq!(out.stdout, "héllo\n".as_bytes());
    let path = closed_recording(&gw, cmd).await;
    assert!(!path.with_extension("raw").exists());
    // Written by the cast writer before raw files existed: plain v2 text events only.
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old.cast");
    std::fs::write(
        &old,
        "{\"version\":2,\"width\":80,\"height\":24}\n[0.1, \"o\", \"old \\u0000 \\ufffd\\r\\n\"]\n[0.2, \"m\", \"exit 0\"]\n",
    )
    .expect("write");
    let cat = ok(&gw.cli(&["replay", &old.display().to_string(), "--cat"]))
        .stdout
        .clone();
    assert_eq!(cat, "old \0 \u{fffd}\r\n".as_bytes());
    // A cast whose raw file is missing is an error that names it, not empty output.
    std::fs::write(
        &old,
        "{\"version\":2,\"width\":80,\"height\":24}\n[0.1, \"b\", \"o 0 5\"]\n",
    )
    .expect("write");
    let out = gw.cli(&["replay", &old.display().to_string(), "--cat"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("old.raw"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
