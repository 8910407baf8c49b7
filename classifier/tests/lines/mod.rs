//! Reading `TIER COMMAND` corpus files, shared by the corpus, held-out and evasion tests.
//!
//! One command per line: the expected tier, whitespace, the command exactly as sent. `#` starts
//! a comment; a `# ===== NAME =====` comment starts a section (the held-out files name their
//! families that way). Malformed lines fail the test with the file and line.

// Each test binary reads the fields it needs.
#![allow(dead_code)]

use std::path::Path;

use airlock_classifier::Tier;

pub struct Line {
    /// `file.txt:LINE`, for messages.
    pub at: String,
    pub file: String,
    pub want: Tier,
    pub command: String,
    /// The current `# ===== … =====` heading, lower-cased ("" before the first).
    pub section: String,
}

/// Every line of every `*.txt` file in `dir` (relative to the crate), files in name order.
pub fn load(dir: &str) -> Vec<Line> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut section = String::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            if let Some(comment) = raw.strip_prefix('#') {
                if comment.contains("=====") {
                    section = comment.to_lowercase();
                }
                continue;
            }
            let (tier, command) = raw
                .split_once(char::is_whitespace)
                .unwrap_or_else(|| panic!("{file}:{}: expected `TIER COMMAND`", i + 1));
            let want: Tier = tier
                .parse()
                .unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
            out.push(Line {
                at: format!("{file}:{}", i + 1),
                file: file.clone(),
                want,
                command: command.trim_start().to_owned(),
                section: section.clone(),
            });
        }
    }
    out
}
