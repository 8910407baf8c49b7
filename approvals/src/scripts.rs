//! Files a command runs, as reviewers see them: `bash deploy.sh` is judged by what `deploy.sh`
//! holds, so a request carries each such file's path, size, SHA-256, text (bounded) and the
//! lines that made it risky, plus — when a whitelist entry approved an earlier version — a diff
//! against that version.
//!
//! Owns the shape of that evidence and the diff; the gateway reads the files (from the target
//! itself) and the classifier judges their text.

use airlock_classifier::Tier;
use serde::{Deserialize, Serialize};

/// Largest file the gateway reads to judge it; a larger file is medium at best, unseen.
pub const MAX_SCRIPT_BYTES: usize = 256 * 1024;
/// Most files one command may run that the gateway follows (nested `source`s included).
pub const MAX_SCRIPTS: usize = 16;
/// Longest diff a request carries; longer diffs are cut with a note.
pub const MAX_DIFF_BYTES: usize = 64 * 1024;

/// What the file is run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScriptKind {
    /// A shell script (`bash x.sh`, `. x.sh`, or a `#!/bin/sh` program).
    Shell,
    Python,
    Perl,
    Ruby,
    Node,
    /// SQL statements (`psql -f`, `mysql < FILE`).
    Sql,
    /// A Makefile's recipes.
    Make,
    /// A crontab's commands.
    Crontab,
    /// A compiled program (ELF), or a file whose interpreter is unknown: nothing to read.
    Binary,
    /// Not read (missing, unreadable, too large, hidden from commands).
    Unread,
}

impl ScriptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptKind::Shell => "shell",
            ScriptKind::Python => "python",
            ScriptKind::Perl => "perl",
            ScriptKind::Ruby => "ruby",
            ScriptKind::Node => "node",
            ScriptKind::Sql => "sql",
            ScriptKind::Make => "make",
            ScriptKind::Crontab => "crontab",
            ScriptKind::Binary => "binary",
            ScriptKind::Unread => "unread",
        }
    }
}

/// One line of a file that raised the command's risk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskyLine {
    /// 1-based.
    pub line: u32,
    pub tier: Tier,
    /// The classifier's rule id (`fs.rm-recursive`).
    pub rule: String,
    /// The reason, as the classifier said it.
    pub text: String,
}

/// The approved version a whitelist entry remembers, when this file differs from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    pub sha256: String,
    /// Unified diff from the approved version to this one (`--- approved`, `+++ now`); empty
    /// when the approved text is no longer stored.
    pub diff: String,
}

/// A file the command runs, as the gateway read it from the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptFile {
    /// As the command names it (`x.sh`, `./deploy.sh`, `Makefile`).
    pub path: String,
    /// Absolute path on the target, resolved against the session's working directory.
    pub resolved: String,
    pub kind: ScriptKind,
    /// Bytes read (0 when unread).
    pub size: u64,
    /// Hex SHA-256 of the bytes read; `None` when the file could not be read whole.
    pub sha256: Option<String>,
    /// The text, when it is text and within [`MAX_SCRIPT_BYTES`].
    pub content: Option<String>,
    /// Why the text is not shown or not trusted (`cannot read: No such file or directory`,
    /// `larger than 256 KiB`, `a binary program`), if so.
    pub problem: Option<String>,
    /// Lines that raised the risk, riskiest first.
    #[serde(default)]
    pub lines: Vec<RiskyLine>,
    /// The version a whitelist entry for this command approved, when this one differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
    /// Why an approval cannot be bound to this file completely (Python code imports modules
    /// from beside it; the file was not read whole): then the command cannot be remembered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbound: Option<String>,
}

impl ScriptFile {
    /// The riskiest line as `x.sh:14: rm -rf /srv/app`-style text, for one-line views
    /// (webhooks, the agent's deny line).
    pub fn riskiest(&self) -> Option<String> {
        let l = self.lines.first()?;
        let text = self
            .content
            .as_deref()
            .and_then(|c| c.lines().nth(l.line.saturating_sub(1) as usize))
            .map(str::trim)
            .unwrap_or(&l.text);
        Some(format!("{}:{}: {}", self.path, l.line, text))
    }

    /// Why a whitelist entry could not stand for this file, if it could not.
    pub fn not_rememberable(&self) -> Option<String> {
        if let Some(why) = &self.unbound {
            return Some(why.clone());
        }
        if self.sha256.is_none() {
            return Some(
                self.problem
                    .clone()
                    .unwrap_or_else(|| "it was not read whole".into()),
            );
        }
        None
    }

    /// `path` and `sha256` for whitelist entries and the ledger.
    pub fn pin(&self) -> Option<ScriptPin> {
        Some(ScriptPin {
            path: self.resolved.clone(),
            sha256: self.sha256.clone()?,
        })
    }
}

/// A file a whitelist entry or ledger entry names by content: the resolved path and the
/// SHA-256 of the approved bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ScriptPin {
    pub path: String,
    pub sha256: String,
}

/// Unified diff of `old` → `new`, bounded by [`MAX_DIFF_BYTES`].
pub fn unified_diff(old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut out = diff
        .unified_diff()
        .context_radius(3)
        .header("approved", "now")
        .to_string();
    if out.len() > MAX_DIFF_BYTES {
        let mut cut = MAX_DIFF_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n… diff cut at 64 KiB\n");
    }
    out
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_both_versions_and_the_changed_line() {
        let d = unified_diff("echo a\necho b\n", "echo a\nrm -rf /srv\n");
        assert!(d.contains("--- approved"), "{d}");
        assert!(d.contains("+++ now"), "{d}");
        assert!(d.contains("-echo b"), "{d}");
        assert!(d.contains("+rm -rf /srv"), "{d}");
    }

    #[test]
    fn riskiest_line_quotes_the_file() {
        let f = ScriptFile {
            path: "x.sh".into(),
            resolved: "/tmp/x.sh".into(),
            kind: ScriptKind::Shell,
            size: 20,
            sha256: Some("ab".into()),
            content: Some("echo hi\n  rm -rf /srv/app\n".into()),
            problem: None,
            lines: vec![RiskyLine {
                line: 2,
                tier: Tier::High,
                rule: "fs.rm-recursive".into(),
                text: "rm: deletes recursively".into(),
            }],
            previous: None,
            unbound: None,
        };
        assert_eq!(f.riskiest().as_deref(), Some("x.sh:2: rm -rf /srv/app"));
        assert_eq!(
            f.pin(),
            Some(ScriptPin {
                path: "/tmp/x.sh".into(),
                sha256: "ab".into()
            })
        );
    }
}
