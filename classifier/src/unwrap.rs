//! Peeling wrappers off a simple command so the command that really runs is judged.
//!
//! `sudo -u root nice -n 5 timeout 10 rm -rf /` runs `rm -rf /`; `bash -c 'STRING'`, `su -c`,
//! `eval`, `watch` and `ssh HOST CMD` run a shell string, which is parsed again one level deeper;
//! `find -exec`, `xargs`, `docker exec` and `kubectl exec` run an argv of their own. Shells that
//! would read commands from stdin or from the user are reported as such: they are a way around
//! the gate, so they are never low.

use crate::walk::SimpleCmd;
use crate::wrappers::{Wrapped, XargsInput};
use crate::{MAX_DEPTH, Reason, Tier};

pub enum Unwrapped {
    /// A command to be matched against the rules.
    Command(SimpleCmd),
    /// Shell text that will be parsed and classified at the next depth.
    Script {
        text: String,
        span: Option<(usize, usize)>,
    },
    /// Something the rules must not be asked about.
    Problem(Reason),
}

/// Program name as the rules see it: `/usr/bin/rm` and `\rm` are `rm`.
pub fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

pub fn unwrap(cmd: SimpleCmd, depth: usize) -> Vec<Unwrapped> {
    let mut out = Vec::new();
    let mut cmd = cmd;
    for level in depth..=MAX_DEPTH + 1 {
        if level > MAX_DEPTH {
            out.push(Unwrapped::Problem(Reason {
                rule: "shell.too-deep".into(),
                span: cmd.span,
                text: format!("wrappers nest deeper than {MAX_DEPTH} levels"),
                tier: Tier::High,
            }));
            return out;
        }
        if let Some(first) = cmd.argv.first_mut() {
            // `./ls`, `/tmp/cat`: a program by path outside the system directories is not the
            // tool its name suggests; remember the path so readers do not vouch for it.
            cmd.program_path = first
                .contains('/')
                .then(|| first.clone())
                .filter(|p| !crate::paths::system_program(p));
            let name = program_name(first);
            let name = crate::code::canonical(name).unwrap_or(name).to_owned();
            *first = name;
        }
        let (reasons, scripts) = crate::envvars::assignments(&cmd);
        out.extend(reasons.into_iter().map(Unwrapped::Problem));
        out.extend(scripts.into_iter().map(|text| Unwrapped::Script {
            text,
            span: cmd.span,
        }));
        for (reason, text) in crate::progopts::commands(&cmd) {
            out.push(Unwrapped::Problem(reason));
            out.push(Unwrapped::Script {
                text,
                span: cmd.span,
            });
        }
        match step(&cmd) {
            Step::Done => {
                out.push(Unwrapped::Command(cmd));
                return out;
            }
            Step::Inner { skip, wrapper } => {
                let xargs = (wrapper == "xargs").then(|| XargsInput::of(&cmd.argv[..skip]));
                cmd.moved_dir |= crate::files::chdir_wrapper(&cmd.argv[..skip]);
                cmd.wrappers.push(wrapper);
                cmd.argv.drain(..skip);
                let words = cmd.dynamic_words.len();
                cmd.dynamic_words.drain(..skip.min(words));
                let words = cmd.opaque_words.len();
                cmd.opaque_words.drain(..skip.min(words));
                cmd.dynamic_name = cmd.dynamic_words.first().copied().unwrap_or(false);
                if cmd.argv.is_empty() {
                    return out;
                }
                if let Some(input) = xargs {
                    input.apply(&mut cmd);
                }
            }
            Step::Argv {
                range,
                wrapper,
                also,
            } => {
                if let Some(c) = also {
                    out.push(Unwrapped::Command(c));
                }
                if range.is_empty() {
                    return out;
                }
                cmd.moved_dir |= crate::files::chdir_wrapper(&cmd.argv[..range.start]);
                cmd.argv = cmd.argv[range.clone()].to_vec();
                cmd.dynamic_words = cmd
                    .dynamic_words
                    .get(range.clone())
                    .unwrap_or_default()
                    .to_vec();
                cmd.opaque_words = cmd.opaque_words.get(range).unwrap_or_default().to_vec();
                cmd.wrappers.push(wrapper);
                cmd.dynamic_name = cmd.dynamic_words.first().copied().unwrap_or(false);
            }
            Step::Script { texts, also } => {
                let elevated =
                    cmd.wrappers.iter().chain(cmd.argv.first()).find(|w| {
                        matches!(w.as_str(), "sudo" | "doas" | "su" | "runuser" | "pkexec")
                    });
                if let Some(w) = elevated {
                    out.push(Unwrapped::Problem(Reason {
                        rule: "priv.sudo".into(),
                        span: cmd.span,
                        text: format!("runs a shell string with elevated privileges ({w})"),
                        tier: Tier::Medium,
                    }));
                }
                if cmd.wrappers.iter().any(|w| w == "xargs" || w == "parallel") {
                    out.push(Unwrapped::Problem(Reason {
                        rule: "exec.input-to-shell".into(),
                        span: cmd.span,
                        text: "a shell runs commands built from xargs input at run time".into(),
                        tier: Tier::High,
                    }));
                }
                if cmd.dynamic_args {
                    // Part of the command string is only known at run time: what we can see is
                    // classified, and the unseen part is never low.
                    let (tier, text) = if cmd.substituted_args {
                        (
                            Tier::High,
                            "runs a command string produced by another command at run time",
                        )
                    } else {
                        (
                            Tier::High,
                            "runs a command string only known at run time ($VAR): the \
                             reviewer cannot read it",
                        )
                    };
                    out.push(Unwrapped::Problem(Reason {
                        rule: "shell.dynamic-script".into(),
                        span: cmd.span,
                        text: text.into(),
                        tier,
                    }));
                }
                if let Some(c) = also {
                    out.push(Unwrapped::Command(c));
                }
                out.extend(texts.into_iter().map(|text| Unwrapped::Script {
                    text,
                    span: cmd.span,
                }));
                return out;
            }
        }
    }
    out
}

enum Step {
    /// Nothing left to peel.
    Done,
    /// The real command starts at `argv[skip]`.
    Inner { skip: usize, wrapper: String },
    /// Another argv runs (no shell); `also` is judged alongside (the `find` itself).
    Argv {
        /// Where the argv that runs sits in the wrapper's argv.
        range: std::ops::Range<usize>,
        wrapper: String,
        also: Option<SimpleCmd>,
    },
    /// Shell strings run; `also` is judged alongside (e.g. the `ssh` itself).
    Script {
        texts: Vec<String>,
        also: Option<SimpleCmd>,
    },
}

/// Index of the first non-option argument, given which short options take a value.
fn after_options(argv: &[String], start: usize, with_value: &[&str]) -> usize {
    let mut i = start;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            return i + 1;
        }
        if !a.starts_with('-') || a == "-" {
            return i;
        }
        if with_value.contains(&a) {
            i += 2;
        } else {
            i += 1;
        }
    }
    i
}

fn step(cmd: &SimpleCmd) -> Step {
    let argv = &cmd.argv;
    let Some(name) = argv.first().map(String::as_str) else {
        return Step::Done;
    };
    let inner = |skip: usize| -> Step {
        if skip >= argv.len() {
            Step::Done
        } else {
            Step::Inner {
                skip,
                wrapper: name.to_owned(),
            }
        }
    };
    if let Some(w) = crate::wrappers::find(name) {
        // The wrapper is judged with its own options; what it runs is judged as a command.
        let outer = |end: usize| {
            let mut o = cmd.clone();
            o.argv.truncate(end);
            Some(o)
        };
        return match w.wrapped(argv) {
            Wrapped::Nothing => Step::Done,
            Wrapped::Argv(i) => Step::Argv {
                range: i..argv.len(),
                wrapper: name.to_owned(),
                also: outer(i),
            },
            Wrapped::Script(i, text) => Step::Script {
                texts: vec![text],
                also: outer(i),
            },
        };
    }
    match name {
        "sudo" | "doas" => {
            let i = after_options(
                argv,
                1,
                &[
                    "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U", "--user", "--group",
                ],
            );
            // `sudo -s`/`-i` with no command is an interactive root shell: leave it to the rules.
            // With a command they run it through root's shell and its startup files, and `-E`
            // keeps the caller's environment: the wrapper says so for the judges.
            let options = argv.get(1..i).unwrap_or_default();
            let through_shell = options.iter().any(|a| {
                matches!(a.as_str(), "--shell" | "--login" | "--preserve-env")
                    || a.starts_with("--preserve-env=")
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && a.chars().any(|c| matches!(c, 's' | 'i' | 'E')))
            });
            if through_shell && i < argv.len() {
                Step::Inner {
                    skip: i,
                    wrapper: format!("{name} (root shell or caller's environment)"),
                }
            } else {
                inner(i)
            }
        }
        "env" => {
            let mut i = after_options(argv, 1, &["-u", "-C", "--unset", "--chdir"]);
            // `-S STRING`, `-SSTRING`, `--split-string STRING`, `--split-string=STRING`.
            for (pos, a) in argv.iter().enumerate().skip(1) {
                let text = if a == "-S" || a == "--split-string" {
                    argv.get(pos + 1).cloned()
                } else if let Some(t) = a.strip_prefix("--split-string=") {
                    Some(t.to_owned())
                } else if a.starts_with('-') && !a.starts_with("--") {
                    // A short bundle: `-vS'…'`, `-iS …`; what follows the S is the string
                    // (or the next argument). `-u NAME` takes a value, so stop at a u.
                    let bundle = &a[1..];
                    let s = bundle.find('S').filter(|s| !bundle[..*s].contains('u'));
                    s.map(|s| &bundle[s + 1..]).and_then(|rest| {
                        if rest.is_empty() {
                            argv.get(pos + 1).cloned()
                        } else {
                            Some(rest.to_owned())
                        }
                    })
                } else {
                    None
                };
                if let Some(text) = text {
                    return Step::Script {
                        texts: vec![text],
                        also: None,
                    };
                }
                if !a.starts_with('-') {
                    break;
                }
            }
            while i < argv.len() && argv[i].contains('=') && !argv[i].starts_with('=') {
                i += 1;
            }
            inner(i)
        }
        "nice" => inner(after_options(argv, 1, &["-n", "--adjustment"])),
        "ionice" => inner(after_options(argv, 1, &["-c", "-n", "-p"])),
        "stdbuf" => inner(after_options(argv, 1, &["-i", "-o", "-e"])),
        "nohup" | "builtin" | "unbuffer" => inner(1),
        "time" => inner(after_options(argv, 1, &["-f", "-o"])),
        "command" => {
            if argv.iter().skip(1).any(|a| a == "-v" || a == "-V") {
                Step::Done
            } else {
                inner(after_options(argv, 1, &[]))
            }
        }
        "exec" => inner(after_options(argv, 1, &["-a"])),
        "timeout" => {
            let i = after_options(argv, 1, &["-s", "-k", "--signal", "--kill-after"]);
            inner(i + 1) // the duration
        }
        "xargs" => {
            let i = after_options(
                argv,
                1,
                &[
                    "-I", "-n", "-P", "-d", "-L", "-s", "-E", "-a", "-i", "-l", "-e",
                ],
            );
            if i >= argv.len() {
                Step::Done // runs `echo`
            } else {
                Step::Inner {
                    skip: i,
                    wrapper: "xargs".into(),
                }
            }
        }
        "watch" => {
            let i = after_options(argv, 1, &["-n", "--interval", "-d", "-q", "--chgexit"]);
            if i >= argv.len() {
                return Step::Done;
            }
            Step::Script {
                texts: vec![argv[i..].join(" ")],
                also: None,
            }
        }
        "source" | "." => match (argv.get(1).map(String::as_str), &cmd.stdin_text) {
            (Some("/dev/stdin" | "/proc/self/fd/0" | "/dev/fd/0"), Some(text)) => Step::Script {
                texts: vec![text.clone()],
                also: None,
            },
            _ => Step::Done,
        },
        // `history -s TEXT` adds TEXT for `fc -s`/`!!` to run later: judged as if it ran now.
        "history" => match argv.iter().position(|a| a == "-s") {
            Some(p) if p + 1 < argv.len() => Step::Script {
                texts: vec![argv[p + 1..].join(" ")],
                also: Some(cmd.clone()),
            },
            _ => Step::Done,
        },
        // Code stored now and run later: judged as if it ran now.
        "alias" => {
            let texts: Vec<String> = argv[1..]
                .iter()
                .filter_map(|a| a.split_once('=').map(|(_, v)| v.to_owned()))
                .collect();
            if texts.is_empty() {
                Step::Done
            } else {
                Step::Script { texts, also: None }
            }
        }
        "trap" => {
            let i = after_options(argv, 1, &[]);
            match argv.get(i) {
                Some(action) if argv.len() > i + 1 && !action.is_empty() && action != "-" => {
                    Step::Script {
                        texts: vec![action.clone()],
                        also: Some(cmd.clone()),
                    }
                }
                _ => Step::Done,
            }
        }
        "complete" | "compgen" => match argv.iter().position(|a| a == "-C") {
            Some(p) if p + 1 < argv.len() => Step::Script {
                texts: vec![argv[p + 1].clone()],
                also: None,
            },
            _ => Step::Done,
        },
        "eval" => Step::Script {
            texts: vec![argv[1..].join(" ")],
            also: None,
        },
        "su" => match argv.iter().position(|a| a == "-c" || a == "--command") {
            Some(p) if p + 1 < argv.len() => Step::Script {
                texts: vec![argv[p + 1].clone()],
                also: None,
            },
            _ => Step::Done,
        },
        // busybox runs its applets (`busybox sh -c …`) and is peeled like a shell.
        n if n == "busybox" || crate::judge::SHELLS.contains(&n) => shell_step(cmd),
        "find" => {
            let pos = argv
                .iter()
                .position(|a| matches!(a.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir"));
            match pos {
                Some(p) if p + 1 < argv.len() => {
                    let end = argv[p + 1..]
                        .iter()
                        .position(|a| a == ";" || a == "+")
                        .map_or(argv.len(), |e| p + 1 + e);
                    let mut outer = cmd.clone();
                    outer.argv = argv[..p].to_vec();
                    outer
                        .argv
                        .extend(argv[end.min(argv.len())..].iter().skip(1).cloned());
                    // find runs the argv itself (no shell); the find is judged too (-delete).
                    Step::Argv {
                        range: p + 1..end,
                        wrapper: "find -exec".into(),
                        also: Some(outer),
                    }
                }
                _ => Step::Done,
            }
        }
        "ssh" => {
            let i = after_options(
                argv,
                1,
                &[
                    "-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-E", "-e",
                    "-I", "-m", "-O", "-Q", "-S", "-W", "-w", "-B",
                ],
            );
            if i + 1 < argv.len() {
                let mut outer = cmd.clone();
                outer.argv.truncate(i + 1);
                Step::Script {
                    texts: vec![argv[i + 1..].join(" ")],
                    also: Some(outer),
                }
            } else {
                Step::Done
            }
        }
        "docker" | "podman" | "kubectl" | "oc" => container_exec(cmd),
        "sed" => alongside(crate::scripts::sed_commands(&argv[1..]), cmd),
        "python" | "python3" | "perl" | "ruby" | "node" | "php" | "lua" | "awk" => {
            interpreter_step(cmd)
        }
        "parallel" => match argv.iter().position(|a| a == ":::" || a == "::::") {
            Some(p) if p > 1 => Step::Script {
                texts: vec![argv[1..p].join(" ")],
                also: None,
            },
            _ => Step::Done,
        },
        _ => Step::Done,
    }
}

/// Judge `texts` as shell one level deeper, and the command itself alongside.
fn alongside(texts: Vec<String>, cmd: &SimpleCmd) -> Step {
    if texts.is_empty() {
        Step::Done
    } else {
        Step::Script {
            texts,
            also: Some(cmd.clone()),
        }
    }
}

/// Inline code that hands commands to a shell: those commands are classified too, and the
/// interpreter itself is judged alongside (its code may do damage of its own).
fn interpreter_step(cmd: &SimpleCmd) -> Step {
    let Some((lang, code)) = crate::code::inline_code(&cmd.argv) else {
        return Step::Done;
    };
    match crate::code::shell_strings(lang, &code) {
        Some(texts) if texts.is_empty() => Step::Done,
        Some(texts) => Step::Script {
            texts,
            also: Some(cmd.clone()),
        },
        // Patterns unavailable: judge the interpreter alone; its inline code is never low.
        None => Step::Done,
    }
}

/// `bash -c STRING`, `bash -lc STRING`, `bash script`, `bash` reading stdin.
fn shell_step(cmd: &SimpleCmd) -> Step {
    let argv = &cmd.argv;
    let mut i = 1;
    if argv[0] == "busybox" {
        // `busybox sh -c …` behaves like `sh -c …`; `busybox rm …` like `rm …`.
        return if argv.len() > 1 {
            Step::Inner {
                skip: 1,
                wrapper: "busybox".into(),
            }
        } else {
            Step::Done
        };
    }
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if a.starts_with('-') && !a.starts_with("--") && a.len() > 1 && a[1..].contains('c') {
            if let Some(text) = argv.get(i + 1) {
                return Step::Script {
                    texts: vec![text.clone()],
                    also: None,
                };
            }
            return Step::Done;
        }
        if a == "-o" || a == "+o" || a == "-O" || a == "+O" {
            i += 2;
            continue;
        }
        if a.starts_with('-') || a.starts_with('+') {
            i += 1;
            continue;
        }
        break;
    }
    if i >= argv.len()
        && let Some(text) = &cmd.stdin_text
    {
        // `bash <<EOF … EOF` runs the heredoc.
        return Step::Script {
            texts: vec![text.clone()],
            also: None,
        };
    }
    Step::Done
}

/// `docker exec [opts] CONTAINER cmd…`, `kubectl exec [opts] POD -- cmd…`.
fn container_exec(cmd: &SimpleCmd) -> Step {
    let argv = &cmd.argv;
    if argv.get(1).map(String::as_str) != Some("exec") {
        return Step::Done;
    }
    let start = if let Some(dd) = argv.iter().position(|a| a == "--") {
        dd + 1
    } else {
        let i = after_options(
            argv,
            2,
            &[
                "-u",
                "--user",
                "-w",
                "--workdir",
                "-e",
                "--env",
                "-n",
                "--namespace",
                "-c",
                "--container",
                "--context",
            ],
        );
        i + 1 // the container / pod name
    };
    if start >= argv.len() {
        return Step::Done;
    }
    let mut outer = cmd.clone();
    outer.argv.truncate(start);
    Step::Script {
        texts: vec![shell_join(&argv[start..])],
        also: Some(outer),
    }
}

/// Quote an argv back into shell text so it can be re-parsed at the next depth.
pub(crate) fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@{}".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
