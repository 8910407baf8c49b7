//! Judging one simple command (already unwrapped) against the rule packs and the structural
//! checks that are not a matter of data: run-time command names, privilege wrappers,
//! redirections, writes to sensitive paths, shells and interpreters that would take commands
//! from somewhere Airlock cannot see, and database clients.

use crate::ruleargs::{git_config_override, rule_args};
use crate::rules::RulePack;
use crate::shells::{interactive_use, shell_reason};
use crate::walk::{Redirect, SimpleCmd};
use crate::{Reason, Tier, paths, sql};

pub const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "hush", "yash",
    "posh", "rbash", "ksh93",
];

/// Interpreters that run a program given on stdin or on the command line.
pub const INTERPRETERS: &[&str] = &["python", "python3", "perl", "ruby", "node", "php", "lua"];

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
    let (shell, interpreter) = (SHELLS.contains(&program), INTERPRETERS.contains(&program));
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
        && !shell
        && !interpreter
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
        } else if w.starts_with("sudo (") || w.starts_with("doas (") {
            out.push(reason(
                "priv.sudo",
                Tier::Medium,
                format!("runs with elevated privileges through {w}"),
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
    if (shell || interpreter) && cmd.wrappers.iter().any(|w| w == "xargs" || w == "parallel") {
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
    if program == "git"
        && let Some(flag) = cmd.argv.iter().find(|a| a.starts_with("--exec-path"))
    {
        // Git runs its helpers (`git-remote-https`, …) from that directory.
        out.push(reason(
            "posture.client-override",
            Tier::Medium,
            format!("git {flag}: runs git's helper programs from another directory"),
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
    if shell {
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
    if interpreter
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
    let reader = inner.readers.get(program);
    if let Some(model) = reader.filter(|m| m.has_language()) {
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
    if interpreter && cmd.argv.iter().skip(1).any(|a| runtime_code_path(a)) {
        matched = true;
        out.push(reason(
            "exec.runtime-code",
            Tier::High,
            format!("{program} runs a program produced by another command at run time (<(…))"),
        ));
    }
    if interpreter && let Some((_, code)) = crate::code::inline_code(&cmd.argv) {
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
        } else if let Some(model) = reader {
            let checked = model.check(&cmd.argv);
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
    // Whatever vouched for the visible words (a rule or a reader model), a word only known at
    // run time could be any flag or operand: unproven, unless the program has no writing or
    // executing flag at all.
    if cmd.opaque_words.iter().skip(1).any(|o| *o)
        && !reader.is_some_and(|r| r.runtime_args())
        && out.iter().all(|r| r.tier == Tier::Low)
    {
        out.push(reason(
            "reader.runtime-argument",
            Tier::Medium,
            format!(
                "{program} gets an argument only known at run time, which could be any flag (a writing or executing mode included)"
            ),
        ));
    }
    out
}

/// Paths through which a program reads code another command produces while it runs.
pub fn runtime_code_path(a: &str) -> bool {
    a.starts_with("/dev/fd/") || a == "/dev/stdin" || a.starts_with("/proc/self/fd/")
}

fn has_script_operand(argv: &[String]) -> bool {
    argv.iter().skip(1).any(|a| !a.starts_with('-'))
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
