//! The environment every command gets, on local and upstream targets alike: nothing from the
//! gateway's own (it may hold a database URL), and a fixed set that turns off the ways
//! "read-only" tools run other programs — pagers with `!cmd`, editors with `:!cmd`, git's
//! system config.
//!
//! The target's `env` table adds variables; it cannot change the pinned ones (the config is
//! refused). In the gated shell the pinned names are also readonly, so no line can change them
//! for the lines after it (`targets::shell`).

use std::collections::BTreeMap;

/// Variables set to a fixed value for every command. Pagers print straight through; less,
/// man and systemctl refuse shell escapes even when a user asks for a pager explicitly.
pub const PINNED: &[(&str, &str)] = &[
    ("LESSSECURE", "1"),
    ("SYSTEMD_PAGERSECURE", "1"),
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("MANPAGER", "cat"),
    ("SYSTEMD_PAGER", "cat"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
];

/// Editor variables: set to a stub that refuses (an editor is an interactive shell).
pub const EDITORS: &[&str] = &["EDITOR", "VISUAL", "GIT_EDITOR", "SUDO_EDITOR"];

/// Names the gated shell makes readonly and empty: each makes bash or the dynamic loader run
/// code the line did not show (`BASH_ENV` for every bash started later, `PS4` with `set -x`,
/// `LD_PRELOAD` for every program).
pub const EMPTY_READONLY: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "PS4",
    "PROMPT_COMMAND",
    "LD_PRELOAD",
    "LD_AUDIT",
];

/// The sub-command of `airlock` that stands in for an editor.
pub const NO_EDITOR: &str = "no-editor";

/// The one line the editor stub prints.
pub const NO_EDITOR_TEXT: &str = "airlock: no editor here: an editor can run any command; write the file with a command a reviewer can read";

/// Is `name` one the target's `env` table may not set?
pub fn is_pinned(name: &str) -> bool {
    PINNED.iter().any(|(k, _)| *k == name)
        || EDITORS.contains(&name)
        || EMPTY_READONLY.contains(&name)
        || name.starts_with("GIT_")
        || name.starts_with("LD_")
        || name.starts_with("BASH_FUNC_")
        || matches!(name, "TMPDIR" | "TERM" | "SHELLOPTS" | "BASHOPTS")
}

/// Who the command runs as, for `HOME`, `USER`, `LOGNAME`.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub home: Option<String>,
    pub user: Option<String>,
}

impl Identity {
    /// The gateway's own user.
    pub fn gateway() -> Self {
        Self {
            home: std::env::var("HOME").ok(),
            user: std::env::var("USER").ok(),
        }
    }
}

/// The environment for a local command: base variables, the pinned set, the editor stub
/// `editor`, the target's extras, and `TERM` on a terminal.
pub fn local(
    who: &Identity,
    editor: &str,
    extra: &BTreeMap<String, String>,
    term: Option<&str>,
) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_owned(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        (
            "LANG".to_owned(),
            std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
        ),
    ];
    if let Some(h) = &who.home {
        env.push(("HOME".into(), h.clone()));
    }
    if let Some(u) = &who.user {
        env.push(("USER".into(), u.clone()));
        env.push(("LOGNAME".into(), u.clone()));
    }
    if let Some(t) = term {
        env.push(("TERM".into(), t.to_owned()));
    }
    env.extend(fixed(editor, extra));
    env
}

/// The pinned set, the editors and the extras (no base variables): what an upstream command
/// gets on top of its login's `HOME`, `USER`, `LOGNAME` and `PATH`.
pub fn fixed(editor: &str, extra: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PINNED
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for e in EDITORS {
        env.push(((*e).to_owned(), editor.to_owned()));
    }
    for (k, v) in extra {
        env.push((k.clone(), v.clone()));
    }
    env
}

/// Quote text as one POSIX shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The bash invocation every command runs under: no profile, no rc file.
pub const BASH_FLAGS: &[&str] = &["--noprofile", "--norc"];

/// The line an upstream runs: a clean environment (`env -i`, keeping the login's `HOME`,
/// `USER`, `LOGNAME`, `PATH`) plus `vars`, then `prefix` (a runner's helper argv, if any), then
/// `bash` with no start-up files running `script` with `args`. Parsed by the upstream login
/// shell, so only plain words and `"$VAR"` appear outside quotes.
pub fn upstream_line(
    vars: &[(String, String)],
    prefix: &[String],
    script: &str,
    args: &[String],
) -> String {
    let mut parts: Vec<String> = [
        "exec",
        "env",
        "-i",
        "HOME=\"$HOME\"",
        "USER=\"$USER\"",
        "LOGNAME=\"$LOGNAME\"",
        "PATH=\"$PATH\"",
        "LANG=C.UTF-8",
    ]
    .map(str::to_owned)
    .into();
    parts.extend(vars.iter().map(|(k, v)| quote(&format!("{k}={v}"))));
    parts.extend(prefix.iter().map(|r| quote(r)));
    parts.push("bash".to_owned());
    parts.extend(BASH_FLAGS.iter().map(|f| (*f).to_owned()));
    parts.push("-c".to_owned());
    parts.push(quote(script));
    parts.extend(args.iter().map(|a| quote(a)));
    parts.join(" ")
}

/// The line an upstream runs for one command: the pinned set (and `TERM` on a terminal),
/// through `runner` when there is one.
pub fn upstream_command(
    command: &str,
    runner: &[String],
    editor: &str,
    extra: &BTreeMap<String, String>,
    term: Option<&str>,
) -> String {
    let mut vars: Vec<(String, String)> = term
        .map(|t| ("TERM".to_owned(), t.to_owned()))
        .into_iter()
        .collect();
    vars.extend(fixed(editor, extra));
    upstream_line(&vars, runner, command, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_line_is_one_clean_bash_with_the_pinned_set() {
        let line = upstream_command("echo 'a' \"$X\"", &[], "false", &BTreeMap::new(), None);
        let out = std::process::Command::new("sh")
            .args(["-c", &line.replace("'echo", "'env; echo")])
            .env("X", "leak")
            .env("BASH_ENV", "/nonexistent/evil")
            .output()
            .expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("LESSSECURE=1"), "{text}");
        assert!(text.contains("GIT_EDITOR=false"), "{text}");
        assert!(
            !text.contains("X=leak"),
            "the login's environment is not passed: {text}"
        );
        assert!(!text.contains("BASH_ENV"), "{text}");
        assert!(text.trim_end().ends_with("a"), "{text}");
    }

    #[test]
    fn pinned_names_cannot_be_overridden() {
        for n in [
            "PAGER",
            "GIT_DIR",
            "LD_LIBRARY_PATH",
            "BASH_FUNC_x%%",
            "EDITOR",
            "PS4",
        ] {
            assert!(is_pinned(n), "{n}");
        }
        assert!(!is_pinned("KUBECONFIG"));
    }
}
