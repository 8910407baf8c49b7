//! The argument text rules see, and git settings that name programs.
//!
//! Rules match a regex over the arguments joined by single spaces; for tools with subcommands
//! (git, kubectl, docker, …) leading global options are dropped first, so `git -C /repo push -f`
//! matches `^push`. Git's `-c key=value` settings are read here too, because some keys make git
//! run a program.

/// Global options that take a value, for tools whose rules match on the subcommand.
pub fn global_options(program: &str) -> Option<&'static [&'static str]> {
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
pub fn rule_args(program: &str, argv: &[String]) -> String {
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

/// `git -c core.sshCommand=… …`: config keys that make git run a command.
pub fn git_config_override(argv: &[String]) -> Option<String> {
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
