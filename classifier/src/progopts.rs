//! Options whose value is a command line another program will run.
//!
//! `tar --to-command=sh`, `rsync -e 'sh -c …'`, `ssh -o ProxyCommand=…`, `sort
//! --compress-program=…`, `zip -TT …`, `man -P …`: "read-only" tools with a mode that runs a
//! program named on their command line. Each value found is judged as a command line one level
//! deeper, and naming a program at all is never low.

use crate::walk::SimpleCmd;
use crate::{Reason, Tier};

/// (program, options whose value is a command line). A value may be attached (`-Ifoo`,
/// `--opt=foo`) or the next argument.
const TABLE: &[(&str, &[&str])] = &[
    (
        "tar",
        &[
            "--checkpoint-action",
            "--to-command",
            "--use-compress-program",
            "-I",
            "--info-script",
            "--new-volume-script",
            "-F",
            "--rsh-command",
        ],
    ),
    ("bsdtar", &["--use-compress-program", "-I"]),
    ("rsync", &["-e", "--rsh", "--rsync-path"]),
    ("scp", &["-S", "-o"]),
    ("sftp", &["-S", "-o", "-D"]),
    ("ssh", &["-o"]),
    ("sort", &["--compress-program"]),
    ("zip", &["-TT", "--unzip-command"]),
    ("man", &["-P", "--pager", "-H", "--html"]),
    ("mysql", &["--pager"]),
    ("mariadb", &["--pager"]),
    ("tcpdump", &["-z"]),
    ("rg", &["--pre"]),
    ("fd", &["-x", "--exec", "-X", "--exec-batch"]),
    ("fdfind", &["-x", "--exec", "-X", "--exec-batch"]),
    ("bat", &["--pager"]),
    ("batcat", &["--pager"]),
    ("less", &["--lesskey-src"]),
    ("ack", &["--pager"]),
    ("gdb", &["-ex", "--eval-command"]),
];

/// The long option in `options` that `flag` names, whole or as an unambiguous prefix of at
/// least one letter (GNU getopt and git's parse-options accept `--compress-prog` for
/// `--compress-program`).
pub fn long_option(flag: &str, options: &[&'static str]) -> Option<&'static str> {
    let name = flag.strip_prefix("--")?;
    if name.is_empty() {
        return None;
    }
    let mut hits = options
        .iter()
        .filter(|o| o.strip_prefix("--").is_some_and(|o| o.starts_with(name)));
    let first = hits.next()?;
    // Ambiguous among the program options means ambiguous to the program too, unless exact.
    if hits.next().is_some() && first.strip_prefix("--") != Some(name) {
        return None;
    }
    Some(first)
}

/// `ssh -o` settings that are commands.
const SSH_COMMAND_SETTINGS: &[&str] = &["proxycommand", "localcommand", "knownhostscommand"];

/// Command lines named by `cmd`'s options, with a reason for each.
pub fn commands(cmd: &SimpleCmd) -> Vec<(Reason, String)> {
    let Some(program) = cmd.argv.first().map(String::as_str) else {
        return Vec::new();
    };
    if program == "git" {
        return git_programs(cmd)
            .into_iter()
            .map(|text| {
                (
                    Reason {
                        rule: "git.program-option".into(),
                        span: cmd.span,
                        text: format!("git is told to run a program: {text}"),
                        tier: Tier::Medium,
                    },
                    text,
                )
            })
            .collect();
    }
    let Some((_, options)) = TABLE.iter().find(|(p, _)| *p == program) else {
        return Vec::new();
    };
    let argv = &cmd.argv;
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        i += 1;
        if a == "--" {
            break;
        }
        let value = if let Some((flag, v)) = a.split_once('=')
            && flag.starts_with("--")
            && let Some(full) = long_option(flag, options)
        {
            Some((full.to_owned(), v.to_owned()))
        } else if let Some(full) = long_option(a, options).filter(|_| !a.contains('=')) {
            i += 1;
            argv.get(i - 1).map(|v| (full.to_owned(), v.clone()))
        } else if options.contains(&a) {
            i += 1;
            argv.get(i - 1).map(|v| (a.to_owned(), v.clone()))
        } else {
            // Attached short values: `-Isomething`, `-oProxyCommand=…`.
            options
                .iter()
                .filter(|o| !o.starts_with("--") && o.len() == 2)
                .find_map(|o| {
                    a.strip_prefix(o)
                        .filter(|v| !v.is_empty())
                        .map(|v| ((*o).to_owned(), v.to_owned()))
                })
        };
        let Some((flag, v)) = value else { continue };
        let text = match (program, flag.as_str()) {
            ("tar", "--checkpoint-action") => match v.strip_prefix("exec=") {
                Some(c) => c.to_owned(),
                None => continue,
            },
            ("ssh" | "scp" | "sftp", "-o") => {
                let (key, val) = v
                    .split_once('=')
                    .or_else(|| v.split_once(char::is_whitespace))
                    .unwrap_or((v.as_str(), ""));
                if !SSH_COMMAND_SETTINGS.contains(&key.trim().to_ascii_lowercase().as_str()) {
                    continue;
                }
                val.trim().to_owned()
            }
            ("gdb", _) => match v
                .trim()
                .strip_prefix("shell")
                .or(v.trim().strip_prefix('!'))
            {
                Some(c) => c.to_owned(),
                None => continue,
            },
            _ => v,
        };
        let text = text.trim().trim_start_matches(';').trim().to_owned();
        if text.is_empty() {
            continue;
        }
        out.push((
            Reason {
                rule: "exec.program-option".into(),
                span: cmd.span,
                text: format!("{program} {flag} names a program to run: {text}"),
                tier: Tier::Medium,
            },
            text,
        ));
    }
    out
}

/// Programs git is told to run on its command line: `--upload-pack=CMD`, `grep -O CMD`,
/// `rebase -x CMD`, `-c core.pager=CMD`, `--config-env=core.pager=VAR` (with `VAR=CMD` set
/// before the command). Each is judged as a command line.
pub fn git_programs(cmd: &SimpleCmd) -> Vec<String> {
    const OPTIONS: &[&str] = &[
        "--upload-pack",
        "--receive-pack",
        "--exec",
        "--open-files-in-pager",
        "--extcmd",
        "-O",
        "-x",
    ];
    let argv = &cmd.argv;
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        i += 1;
        let long = |flag: &str| -> Option<&'static str> { long_option(flag, OPTIONS) };
        if let Some((flag, value)) = a.split_once('=')
            && (OPTIONS.contains(&flag) || long(flag).is_some())
        {
            out.push(value.to_owned());
        } else if a.starts_with("--") && long(a).is_some() {
            if let Some(v) = argv.get(i) {
                out.push(v.clone());
                i += 1;
            }
        } else if (a == "foreach" && argv.iter().any(|w| w == "submodule"))
            || (a == "run" && argv.iter().any(|w| w == "bisect"))
        {
            // `git submodule foreach CMD`, `git bisect run CMD…`: the rest is a command line.
            let rest: Vec<&String> = argv[i..]
                .iter()
                .skip_while(|w| w.starts_with('-'))
                .collect();
            if !rest.is_empty() {
                out.push(
                    rest.iter()
                        .map(|w| w.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            break;
        } else if a == "-x"
            && !argv
                .iter()
                .any(|w| matches!(w.as_str(), "rebase" | "difftool" | "mergetool"))
        {
            // `-x` runs a command only for rebase (`cherry-pick -x`, `clean -x` differ).
        } else if OPTIONS.contains(&a) {
            if let Some(v) = argv.get(i) {
                out.push(v.clone());
                i += 1;
            }
        } else if let Some(v) = a.strip_prefix("-O").filter(|v| !v.is_empty()) {
            out.push(v.to_owned());
        } else if a == "-c" || a == "--config-env" || a.starts_with("--config-env=") {
            let setting = match a.strip_prefix("--config-env=") {
                Some(s) => Some(s.to_owned()),
                None => {
                    i += 1;
                    argv.get(i - 1).cloned()
                }
            };
            let Some((_, value)) = setting.as_deref().and_then(|s| s.split_once('=')) else {
                continue;
            };
            let text = if a == "-c" {
                Some(value)
            } else {
                cmd.env
                    .iter()
                    .find(|(n, _)| n == value)
                    .map(|(_, v)| v.as_str())
            };
            let key = setting
                .as_deref()
                .and_then(|s| s.split_once('='))
                .map(|(k, _)| k.to_ascii_lowercase())
                .unwrap_or_default();
            if let Some(t) = text.map(|t| t.trim_start_matches('!').trim()) {
                // core.sshCommand is an ssh prefix git completes; pagers may be plain pagers.
                let benign = crate::envvars::BENIGN_PROGRAMS.contains(&t)
                    || (key.ends_with("sshcommand") && t.starts_with("ssh"));
                if !benign {
                    out.push(t.to_owned());
                }
            }
        }
    }
    out.retain(|t| !t.trim().is_empty());
    out
}
