//! Judging one simple command (already unwrapped) against the rule packs and the structural
//! checks that are not a matter of data: run-time command names, privilege wrappers,
//! redirections, writes to sensitive paths, shells and interpreters that would take commands
//! from somewhere Airlock cannot see, and database clients.

use crate::rules::RulePack;
use crate::walk::{Redirect, SimpleCmd};
use crate::{Reason, Tier, paths, sql};

pub const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "hush", "yash",
    "posh", "rbash", "ksh93",
];

/// Interpreters that run a program given on stdin or on the command line.
const INTERPRETERS: &[&str] = &["python", "python3", "perl", "ruby", "node", "php", "lua"];

/// Programs that hand the user a session with no gate in between.
const INTERACTIVE: &[&str] = &[
    "python", "python3", "perl", "ruby", "node", "irb", "php", "lua", "vim", "vi", "nvim", "emacs",
    "nano", "ed", "less", "more", "ssh", "telnet", "nc", "ncat", "socat", "screen", "tmux", "gdb",
    "ftp", "sftp", "mc",
];

/// Programs that talk to other hosts.
const NETWORK: &[&str] = &[
    "curl",
    "wget",
    "dig",
    "nslookup",
    "host",
    "ping",
    "ping6",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "telnet",
    "http",
    "https",
    "xh",
    "xhs",
    "whois",
    "traceroute",
    "tracepath",
    "mtr",
    "openssl",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "ftp",
    "tftp",
    "nmap",
    "arping",
    "drill",
    "kdig",
    "grpcurl",
];

/// Programs that stop, kill or delete whatever list they are given.
const BULK_TARGETS: &[&str] = &[
    "kill",
    "pkill",
    "killall",
    "docker",
    "podman",
    "kubectl",
    "oc",
    "rm",
    "systemctl",
    "virsh",
    "aws",
    "gcloud",
    "az",
    "nerdctl",
    "crictl",
];

/// Partition editors that read their commands from standard input.
const PARTITIONERS: &[&str] = &["fdisk", "sfdisk", "gdisk", "cfdisk", "parted", "sgdisk"];

/// Programs that write to (or delete) the files named by their operands, and which operands.
enum Targets {
    Last,
    All,
}

fn write_targets(program: &str) -> Option<Targets> {
    Some(match program {
        "cp" | "install" | "ln" | "rsync" | "scp" => Targets::Last,
        // `mv` removes its sources from where they were, so every operand counts.
        "mv" | "tee" | "truncate" | "touch" | "rm" | "rmdir" | "unlink" | "shred" | "chmod"
        | "chown" | "chgrp" | "chattr" | "setfacl" | "sed" | "perl" => Targets::All,
        _ => return None,
    })
}

/// All reasons one simple command earns.
pub fn evaluate(pack: &RulePack, cmd: &SimpleCmd) -> Vec<Reason> {
    let inner = &*pack.inner;
    let mut out = Vec::new();
    let span = cmd.span;
    let reason = |rule: &str, tier: Tier, text: String| Reason {
        rule: rule.to_owned(),
        span,
        text,
        tier,
    };
    let program = cmd.argv.first().map(String::as_str).unwrap_or_default();
    let args = rule_args(program, &cmd.argv);

    if cmd.dynamic_name {
        // What the reviewer cannot read is high: `$X`, `$(…)`, `${IFS}` splicing and brace
        // expansion all decide the program only when the line runs.
        out.push(reason(
            "shell.dynamic-command",
            Tier::High,
            "the program name is only known at run time ($VAR, $(…), ${IFS} splicing or brace \
             expansion): the reviewer cannot read what will run"
                .into(),
        ));
        // Nothing below can be trusted to know what the program is.
        out.extend(cmd.redirects.iter().map(|r| redirect_reason(r, span)));
        return out;
    }
    if cmd.argv.len() > 1
        && cmd.argv.last().is_some_and(|a| a == "--help")
        && !cmd.argv.iter().any(|a| a == "--")
        && !SHELLS.contains(&program)
        && !INTERPRETERS.contains(&program)
        && !cmd.dynamic_words.iter().any(|d| *d)
    {
        // `kubectl delete --help`: option parsers print help and exit before acting.
        out.push(reason(
            "program.help",
            Tier::Low,
            format!("{program} only prints its help"),
        ));
        out.extend(cmd.redirects.iter().map(|r| redirect_reason(r, span)));
        return out;
    }
    for w in &cmd.wrappers {
        if w == "sudo" || w == "doas" {
            // Effects, not names: a proven read stays a read as root (secrets rules judge what
            // is read); anything else is at least medium on its own.
            out.push(reason(
                "priv.sudo",
                Tier::Low,
                format!("runs with elevated privileges ({w})"),
            ));
        }
    }
    out.extend(cmd.redirects.iter().map(|r| redirect_reason(r, span)));

    let mut matched = false;
    for i in pack.matching(program, &args) {
        let rule = &inner.rules[i];
        matched = true;
        out.push(reason(
            &rule.id,
            rule.tier,
            format!("{program}: {}", rule.why),
        ));
    }
    if matches!(program, "rm" | "shred" | "unlink" | "srm")
        && cmd
            .wrappers
            .iter()
            .any(|w| w == "xargs" || w == "find -exec")
    {
        matched = true;
        out.push(reason(
            "fs.bulk-delete",
            Tier::High,
            format!(
                "{program} runs once per file that {} lists",
                cmd.wrappers.last().map(String::as_str).unwrap_or("xargs")
            ),
        ));
    }
    if (SHELLS.contains(&program) || INTERPRETERS.contains(&program))
        && cmd.wrappers.iter().any(|w| w == "xargs" || w == "parallel")
    {
        matched = true;
        out.push(reason(
            "exec.input-to-shell",
            Tier::High,
            format!("{program} runs commands built from its input at run time"),
        ));
    }
    if program == "git"
        && let Some(key) = git_config_override(&cmd.argv)
    {
        matched = true;
        out.push(reason(
            "git.config-override",
            Tier::Medium,
            format!("git -c {key} can make git run arbitrary commands"),
        ));
    }
    if matches!(program, "source" | ".")
        && cmd.argv.get(1).is_some_and(|a| runtime_code_path(a))
        && cmd.stdin_text.is_none()
    {
        matched = true;
        out.push(reason(
            "exec.source-runtime-code",
            Tier::High,
            "sources code produced by another command at run time".into(),
        ));
    }
    if NETWORK.contains(&program) {
        if cmd.substituted_args {
            matched = true;
            out.push(reason(
                "net.runtime-data",
                Tier::High,
                format!(
                    "{program} sends data produced at run time ($(…) in its arguments) to \
                     another host: a channel for exfiltration"
                ),
            ));
        }
        if let Some(path) = cmd
            .stdin_path
            .as_ref()
            .filter(|p| !paths::is_harmless_sink(p))
        {
            matched = true;
            out.push(reason(
                "net.sends-file",
                Tier::High,
                format!("{program} sends the local file {path} to another host"),
            ));
        }
    }
    if PARTITIONERS.contains(&program)
        && (cmd.stdin_piped || cmd.stdin_file || cmd.stdin_text.is_some())
    {
        matched = true;
        out.push(reason(
            "disk.scripted-partition",
            Tier::High,
            format!("{program} takes partitioning commands from its input and writes the table"),
        ));
    }
    if matches!(
        program,
        "kubectl" | "oc" | "helm" | "docker" | "podman" | "nerdctl"
    ) && let Some(flag) = cmd.argv.iter().skip(1).find(|a| {
        let flag = a.split('=').next().unwrap_or(a);
        matches!(
            flag,
            "--kubeconfig"
                | "--server"
                | "--token"
                | "--insecure-skip-tls-verify"
                | "--as"
                | "--as-group"
                | "--as-uid"
                | "--profile-output"
                | "--cache-dir"
                | "--config"
                | "-H"
                | "--host"
                | "--tlscacert"
                | "--certificate-authority"
        ) || (program != "kubectl" && a.starts_with("-H") && a.len() > 2)
            || (matches!(program, "kubectl" | "oc") && flag == "-s")
    }) {
        out.push(reason(
            "posture.client-override",
            Tier::Medium,
            format!(
                "{program} {flag}: other credentials, another server or an impersonated identity"
            ),
        ));
    }
    // Programs that list names or metadata, not contents.
    let names_only = matches!(
        program,
        "ls" | "stat"
            | "du"
            | "find"
            | "echo"
            | "printf"
            | "test"
            | "["
            | "namei"
            | "realpath"
            | "readlink"
            | "basename"
            | "dirname"
            | "lsattr"
            | "getfacl"
            | "tree"
            | "eza"
            | "exa"
    );
    if let Some((word, file)) = cmd
        .argv
        .iter()
        .skip(1)
        .chain(cmd.stdin_path.iter())
        .filter(|_| !names_only)
        .find_map(|w| paths::secret_glob(w).map(|f| (w, f)))
    {
        matched = true;
        out.push(reason(
            "secrets.glob",
            Tier::High,
            format!("{program} {word}: the pattern matches {file}, a credential file"),
        ));
    }
    if let Some(r) = sensitive_write(program, &cmd.argv) {
        matched = true;
        out.push(reason("fs.sensitive-write", Tier::High, r));
    }
    if inner.sql_programs.contains(program) {
        matched = true;
        let (tier, why) = sql::judge(program, cmd);
        out.push(reason(
            &format!("db.{}", tier.as_str()),
            tier,
            format!("{program}: {why}"),
        ));
    }
    if SHELLS.contains(&program) {
        matched = true;
        out.push(shell_reason(cmd, program, span));
    } else if INTERACTIVE.contains(&program) && interactive_use(program, &cmd.argv) {
        matched = true;
        out.push(reason(
            "exec.interactive",
            Tier::High,
            format!("{program} opens an interactive session that Airlock cannot gate"),
        ));
    }
    if INTERPRETERS.contains(&program)
        && (cmd.stdin_piped || cmd.stdin_file)
        && crate::code::inline_code(&cmd.argv).is_none()
        && !has_script_operand(&cmd.argv)
    {
        matched = true;
        out.push(reason(
            "exec.piped-into-interpreter",
            Tier::High,
            format!("feeds data to {program}, which runs it as code"),
        ));
    }
    if let Some(model) = inner.readers.get(program).filter(|m| m.has_language()) {
        let runtime_script = model
            .script_positions(&cmd.argv)
            .into_iter()
            .any(|i| cmd.dynamic_words.get(i).copied().unwrap_or(false));
        if runtime_script {
            // A sed script or awk program only known at run time cannot be read.
            matched = true;
            out.push(reason(
                "reader.runtime-script",
                Tier::High,
                format!("{program} gets part of its script or program only at run time: the reviewer cannot read what it does"),
            ));
        } else if matched && let Err(np) = model.check(&cmd.argv) {
            out.push(reason(np.rule, np.tier, np.text));
        }
    }
    if INTERPRETERS.contains(&program) && cmd.argv.iter().skip(1).any(|a| runtime_code_path(a)) {
        matched = true;
        out.push(reason(
            "exec.runtime-code",
            Tier::High,
            format!("{program} runs a program produced by another command at run time (<(…))"),
        ));
    }
    if INTERPRETERS.contains(&program)
        && let Some((_, code)) = crate::code::inline_code(&cmd.argv)
    {
        if cmd.substituted_args {
            matched = true;
            out.push(reason(
                "exec.runtime-code",
                Tier::High,
                format!(
                    "{program} runs code produced at run time ($(…)): the reviewer cannot read it"
                ),
            ));
        }
        if cmd.stdin_piped && cmd.stdin_text.is_none() && code.contains("stdin") {
            matched = true;
            out.push(reason(
                "exec.piped-into-interpreter",
                Tier::High,
                format!("{program} code reads its input, which is piped data it may run"),
            ));
        }
    }
    if cmd.substituted_args
        && BULK_TARGETS.contains(&program)
        && out.iter().any(|r| r.tier == Tier::Medium)
    {
        out.push(reason(
            "shell.runtime-targets",
            Tier::High,
            format!(
                "{program} acts on targets chosen only at run time ($(…)): possibly all of them"
            ),
        ));
    }
    if !matched {
        if let Some(path) = &cmd.program_path {
            out.push(reason(
                "program.local-path",
                Tier::Medium,
                format!("runs {path}, a program outside the system directories, not the system's {program}"),
            ));
        } else if let Some(model) = inner.readers.get(program) {
            // xargs and find -exec append operands the text does not show.
            let appended = cmd
                .wrappers
                .iter()
                .any(|w| matches!(w.as_str(), "xargs" | "find -exec" | "parallel"));
            let checked = if appended {
                let mut a = cmd.argv.clone();
                a.push("{}".into());
                model.check(&a)
            } else {
                model.check(&cmd.argv)
            };
            out.push(match checked {
                Ok(()) => reason(
                    "program.read-only",
                    Tier::Low,
                    format!("{program} only reads or prints, in the modes given"),
                ),
                Err(np) => reason(np.rule, np.tier, np.text),
            });
        } else if program == ":" && !cmd.redirects.is_empty() {
            // Already explained by the redirect reason.
        } else {
            out.push(reason(
                "program.unknown",
                Tier::Medium,
                format!("{program}: not a known read-only program"),
            ));
        }
    }
    out
}

/// Global options that take a value, for tools whose rules match on the subcommand.
fn global_options(program: &str) -> Option<&'static [&'static str]> {
    Some(match program {
        "git" => &[
            "-C",
            "-c",
            "--git-dir",
            "--work-tree",
            "--namespace",
            "--exec-path",
        ],
        "kubectl" | "oc" => &[
            "-n",
            "--namespace",
            "--context",
            "--kubeconfig",
            "-s",
            "--server",
            "--cluster",
            "--user",
            "--token",
            "--as",
            "--as-group",
            "-v",
            "--request-timeout",
            "-l",
        ],
        "helm" => &[
            "-n",
            "--namespace",
            "--kube-context",
            "--kubeconfig",
            "--registry-config",
        ],
        "docker" | "podman" | "nerdctl" => &[
            "-H",
            "--host",
            "--context",
            "-c",
            "--config",
            "-l",
            "--log-level",
        ],
        "systemctl" => &[
            "-H",
            "--host",
            "-M",
            "--machine",
            "-t",
            "--type",
            "--state",
            "-p",
            "--property",
            "-o",
            "--output",
        ],
        "terraform" | "tofu" | "terragrunt" => &[],
        "pulumi" => &["-s", "--stack", "-C", "--cwd"],
        _ => return None,
    })
}

/// The argument text rules match against: the arguments joined by single spaces, with leading
/// global options of subcommand tools dropped (`git -C /repo push -f` matches `^push`).
fn rule_args(program: &str, argv: &[String]) -> String {
    let rest = argv.get(1..).unwrap_or_default();
    let Some(with_value) = global_options(program) else {
        return rest.join(" ");
    };
    let mut i = 0;
    while i < rest.len() {
        let a = rest[i].as_str();
        if !a.starts_with('-') || a == "-" || a == "--" {
            break;
        }
        i += if with_value.contains(&a) { 2 } else { 1 };
    }
    rest.get(i..).unwrap_or_default().join(" ")
}

/// Paths through which a program reads code another command produces while it runs.
fn runtime_code_path(a: &str) -> bool {
    a.starts_with("/dev/fd/") || a == "/dev/stdin" || a.starts_with("/proc/self/fd/")
}

/// `git -c core.sshCommand=… …`: config keys that make git run a command.
fn git_config_override(argv: &[String]) -> Option<String> {
    const RISKY: &[&str] = &[
        "core.hookspath",
        "core.sshcommand",
        "core.pager",
        "core.fsmonitor",
        "core.editor",
        "core.gitproxy",
        "alias.",
        "credential.helper",
        "diff.external",
        "filter.",
        "protocol.ext.allow",
        "uploadpack.packobjectshook",
        "sequence.editor",
        "gpg.program",
        "pager.",
        "core.askpass",
        "include.path",
        "includeif.",
        "sendemail.",
        "web.browser",
        "browser.",
        "man.",
        "difftool.",
        "mergetool.",
        "interactive.difffilter",
        "url.",
        "remote.",
        "diff.",
        "merge.",
        "core.worktree",
        "safe.directory",
    ];
    let mut it = argv.iter().peekable();
    while let Some(a) = it.next() {
        let setting = if a == "-c" || a == "--config-env" {
            it.peek().map(|s| s.as_str())
        } else {
            a.strip_prefix("--config-env=")
        };
        if let Some(kv) = setting {
            let key = kv.to_ascii_lowercase();
            if RISKY.iter().any(|r| key.starts_with(r)) {
                return Some(kv.to_owned());
            }
        }
    }
    None
}

fn has_script_operand(argv: &[String]) -> bool {
    argv.iter().skip(1).any(|a| !a.starts_with('-'))
}

/// Whether `program argv…` would drop the caller into an interactive session.
fn interactive_use(program: &str, argv: &[String]) -> bool {
    let operands = argv.iter().skip(1).filter(|a| !a.starts_with('-')).count();
    match program {
        "python" | "python3" | "perl" | "ruby" | "node" | "php" | "lua" | "irb" => {
            operands == 0
                && crate::code::inline_code(argv).is_none()
                && !argv.iter().any(|a| {
                    matches!(
                        a.as_str(),
                        "--version" | "-V" | "-v" | "--help" | "-h" | "-m"
                    )
                })
        }
        // Ex mode in silent batch (`vim -es -c … file`) takes no keys; its commands are
        // judged by the editor rules.
        "vim" | "vi" | "nvim" | "ex" => !argv.iter().skip(1).any(|a| {
            a.starts_with('-')
                && !a.starts_with("--")
                && (a.contains('e') || a.contains('E'))
                && a.contains('s')
        }),
        // A pager or editor on a file still offers `!cmd` shell escapes.
        "emacs" | "nano" | "ed" | "less" | "more" | "mc" => true,
        "ssh" => operands <= 1,
        "tmux" | "screen" => !argv
            .iter()
            .skip(1)
            .any(|a| matches!(a.as_str(), "ls" | "list-sessions" | "-ls" | "-list" | "-V")),
        _ => true,
    }
}

fn shell_reason(cmd: &SimpleCmd, program: &str, span: Option<(usize, usize)>) -> Reason {
    let script = cmd
        .argv
        .iter()
        .skip(1)
        .find(|a| !a.starts_with('-') && !a.starts_with('+'));
    let (tier, rule, text) = if cmd.stdin_runtime && script.is_none() {
        (
            Tier::High,
            "exec.runtime-input-to-shell",
            format!(
                "{program} runs text produced at run time (a substitution in its here-string \
                 or heredoc): the reviewer cannot read the commands"
            ),
        )
    } else if cmd.stdin_piped && cmd.stdin_text.is_none() {
        (
            Tier::High,
            "exec.piped-into-shell",
            format!("pipes data into {program}, which runs it as commands"),
        )
    } else if cmd.stdin_text.is_some() && script.is_none() {
        // The heredoc or literal text was classified as shell one level deeper.
        (
            Tier::Low,
            "exec.shell-literal-input",
            format!("{program} runs the literal commands it is given, judged above"),
        )
    } else if let Some(s) = script.filter(|s| runtime_code_path(s)) {
        (
            Tier::High,
            "exec.shell-runtime-code",
            format!("{program} runs {s}: code produced by another command at run time"),
        )
    } else if let Some(s) = script {
        (
            Tier::Medium,
            "exec.shell-script",
            format!("runs the script {s}, whose contents Airlock cannot see"),
        )
    } else if cmd.stdin_file {
        (
            Tier::High,
            "exec.shell-from-file",
            format!("{program} reads commands from a file Airlock cannot see"),
        )
    } else {
        (
            Tier::High,
            "exec.interactive-shell",
            format!("{program} opens a shell that Airlock cannot gate"),
        )
    };
    Reason {
        rule: rule.into(),
        span,
        text,
        tier,
    }
}

/// A write to a sensitive path through a program that writes its operands.
fn sensitive_write(program: &str, argv: &[String]) -> Option<String> {
    if program == "find" {
        return argv.windows(2).find_map(|w| {
            matches!(w[0].as_str(), "-fprint" | "-fprint0" | "-fprintf" | "-fls")
                .then(|| paths::sensitive(&w[1]))
                .flatten()
                .map(|why| format!("find {} writes to {} ({why})", w[0], w[1]))
        });
    }
    if program == "dd" {
        let of = argv.iter().find_map(|a| a.strip_prefix("of="))?;
        return paths::sensitive(of).map(|why| format!("dd writes to {of} ({why})"));
    }
    let targets = write_targets(program)?;
    if matches!(program, "sed" | "perl")
        && !argv
            .iter()
            .any(|a| a.starts_with("-i") || a == "--in-place")
    {
        return None;
    }
    let operands: Vec<&String> = argv
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-') && !is_remote(a))
        .collect();
    let candidates: Vec<&String> = match targets {
        Targets::Last if operands.len() >= 2 => operands.last().copied().into_iter().collect(),
        Targets::Last => Vec::new(),
        Targets::All => operands,
    };
    candidates
        .into_iter()
        .find_map(|p| paths::sensitive(p).map(|why| format!("{program} writes to {p} ({why})")))
}

/// `host:path` operands of scp/rsync name another machine.
fn is_remote(a: &str) -> bool {
    a.split_once(':')
        .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

pub fn redirect_reason(r: &Redirect, span: Option<(usize, usize)>) -> Reason {
    let t = r.target.as_str();
    let (tier, rule, text) = if t.starts_with("/dev/tcp/") || t.starts_with("/dev/udp/") {
        (
            Tier::High,
            "net.dev-tcp",
            format!("sends output over the network through bash's {t}"),
        )
    } else if paths::is_harmless_sink(t) {
        (Tier::Low, "redirect.null", format!("output goes to {t}"))
    } else if let Some(why) = paths::sensitive(t) {
        (
            Tier::High,
            "redirect.sensitive",
            format!("writes to the sensitive path {t} ({why})"),
        )
    } else if r.dynamic {
        (
            Tier::Medium,
            "redirect.dynamic",
            "writes to a file named only at run time".into(),
        )
    } else {
        (
            Tier::Medium,
            "redirect.write",
            if r.append {
                format!("appends to {t}")
            } else {
                format!("writes to {t}, truncating it if it exists")
            },
        )
    };
    Reason {
        rule: rule.into(),
        span,
        text,
        tier,
    }
}

/// Files `cmd` writes that a later command could run: redirect targets, `tee` operands, the
/// output of `curl -o`/`wget -O`, the destination of `cp`/`mv`/`install`, `dd of=`.
pub fn written_paths(cmd: &SimpleCmd) -> Vec<String> {
    let mut out: Vec<String> = cmd.redirects.iter().map(|r| r.target.clone()).collect();
    let argv = &cmd.argv;
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let operands: Vec<&String> = argv
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match program {
        "tee" => out.extend(operands.iter().map(|s| (*s).clone())),
        "cp" | "mv" | "install" | "ln" => out.extend(operands.last().map(|s| (*s).clone())),
        "dd" => out.extend(
            argv.iter()
                .filter_map(|a| a.strip_prefix("of=").map(str::to_owned)),
        ),
        "curl" | "wget" => {
            for w in argv.windows(2) {
                let a = w[0].as_str();
                let bundle_ends_in_o = a.starts_with('-')
                    && !a.starts_with("--")
                    && (a.ends_with('o') || a.ends_with('O'));
                if bundle_ends_in_o || matches!(a, "--output" | "--output-document") {
                    out.push(w[1].clone());
                }
            }
            out.extend(argv.iter().filter_map(|a| {
                a.strip_prefix("--output=")
                    .or_else(|| a.strip_prefix("--output-document="))
                    .map(str::to_owned)
            }));
        }
        _ => {}
    }
    out.retain(|p| !paths::is_harmless_sink(p) && !p.is_empty());
    out
}

/// Whether `cmd` runs the file at `path`: as its program, or as a shell's or interpreter's
/// script, or through `source`.
pub fn runs_file(cmd: &SimpleCmd, path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    let Some(program) = cmd.argv.first() else {
        return false;
    };
    if program == base && !cmd.dynamic_name {
        return true;
    }
    (SHELLS.contains(&program.as_str())
        || INTERPRETERS.contains(&program.as_str())
        || matches!(program.as_str(), "source" | "."))
        && cmd.argv.iter().skip(1).any(|a| a == path)
}
