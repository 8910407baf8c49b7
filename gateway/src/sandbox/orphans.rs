//! Commands never outlive the gateway, even when the guard itself is killed.
//!
//! Normally the guard ([`super::guard`]) ends a command's processes when the gateway dies. If
//! the guard was killed too (`kill -9` of the whole group, the OOM killer), what it started
//! may still run. So the gateway keeps one file per running guard in `<data_dir>/pids/`
//! (`PID START`, START being the guard's start time in clock ticks since boot) and, at
//! start-up, kills every process still in such a guard's process group that started after it,
//! then removes the file. A recycled pid cannot match: the start time would be different.

use std::path::{Path, PathBuf};

/// The pid-file directory of a data dir.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pids")
}

/// A process's start time (field 22 of `/proc/PID/stat`) and process group (field 5).
fn stat(pid: i32) -> Option<(u64, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, pgrp))
}

/// Remember a running guard.
pub fn record(dir: &Path, pid: u32) -> std::io::Result<()> {
    let Some((start, _)) = stat(pid as i32) else {
        return Ok(()); // already gone: nothing can be left of it
    };
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(pid.to_string()), format!("{pid} {start}\n"))
}

/// Forget a guard that has been reaped.
pub fn forget(dir: &Path, pid: u32) {
    let _ = std::fs::remove_file(dir.join(pid.to_string()));
}

/// Kill what guards of a previous run left behind. Returns how many processes were killed.
pub fn sweep(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut killed = 0;
    for e in entries.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let mut parts = text.split_whitespace();
        let (Some(Ok(guard)), Some(Ok(start))) = (
            parts.next().map(str::parse::<i32>),
            parts.next().map(str::parse::<u64>),
        ) else {
            let _ = std::fs::remove_file(e.path());
            continue;
        };
        let _ = std::fs::remove_file(e.path());
        // The guard's pid now names another process: the group is someone else's.
        let recycled = stat(guard).is_some_and(|(st, _)| st != start);
        if guard <= 1 || recycled {
            continue;
        }
        let Ok(procs) = std::fs::read_dir("/proc") else {
            continue;
        };
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some((st, pgrp)) = stat(pid)
                && pgrp == guard
                && st >= start
            {
                // SAFETY: kill with integer arguments.
                if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                    killed += 1;
                }
            }
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_left_behind_process_group_is_killed_and_its_file_removed() {
        use std::os::unix::process::CommandExt;
        let t = tempfile::tempdir().expect("tempdir");
        let mut leader = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn");
        record(t.path(), leader.id()).expect("record");
        assert_eq!(sweep(t.path()), 1);
        let status = leader.wait().expect("wait");
        assert!(!status.success(), "killed, not finished");
        assert_eq!(std::fs::read_dir(t.path()).expect("dir").count(), 0);
        // A recycled pid (here our own, with a start time that is not ours) kills nothing,
        // and neither does a file naming init.
        std::fs::write(t.path().join("a"), format!("{} 1\n", std::process::id())).expect("write");
        std::fs::write(t.path().join("b"), "1 0\n").expect("write");
        assert_eq!(sweep(t.path()), 0);
    }
}
