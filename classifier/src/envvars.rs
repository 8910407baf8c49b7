//! Environment variables that choose a program, load code or rewrite configuration.
//!
//! `GIT_PAGER='rm -rf ~' git log` is a "read-only" git command that runs `rm`; so are `PAGER`,
//! `MANPAGER`, `EDITOR`, git's `GIT_SSH_COMMAND`/`GIT_EXTERNAL_DIFF`/`GIT_CONFIG_*`, exported
//! functions (`BASH_FUNC_ls%%=() { … }`) and many more. However a variable is set — before a
//! command, as an `env` operand, or through `export`/`declare` — its name and value are judged
//! here: a value that is a command line is classified as one (one level deeper), and setting
//! such a variable at all is never low, because a later program will run what it names.

use crate::walk::SimpleCmd;
use crate::{Reason, Tier};

/// Variables whose value is a command line some program runs.
const PROGRAM_VARS: &[&str] = &[
    "PAGER",
    "MANPAGER",
    "GIT_PAGER",
    "SYSTEMD_PAGER",
    "SYSTEMD_PAGERSECURE",
    "PSQL_PAGER",
    "MYSQL_PAGER",
    "BAT_PAGER",
    "DELTA_PAGER",
    "EDITOR",
    "VISUAL",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "SUDO_EDITOR",
    "SYSTEMD_EDITOR",
    "KUBE_EDITOR",
    "FCEDIT",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "RSYNC_RSH",
    "RSYNC_CONNECT_PROG",
    "CVS_RSH",
    "BROWSER",
    "LESSOPEN",
    "LESSCLOSE",
    "LESSEDIT",
    "KUBECTL_EXTERNAL_DIFF",
    "KUBE_EDITOR",
    "PSQL_EDITOR",
];

/// Pager and editor values that are exactly what the variable is for.
pub const BENIGN_PROGRAMS: &[&str] = &["", "cat", "true", "more", "less", "less -R", "less -FRX"];

/// Variables that make interpreters, linkers or git load code or settings from elsewhere.
const CODE_VARS: &[&str] = &[
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONINSPECT",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "GIT_EXEC_PATH",
    "GIT_TEMPLATE_DIR",
    "GIT_CONFIG",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_COUNT",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "PATH",
    "IFS",
    "SHELLOPTS",
    "BASHOPTS",
    "GCONV_PATH",
    "MAGIC",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "SSLKEYLOGFILE",
    "CURL_HOME",
    "WGETRC",
    "SYSTEMD_LESS",
    "TAR_OPTIONS",
    "MANOPT",
    "MANPATH",
    "ZDOTDIR",
    "AWKPATH",
    "AWKLIBPATH",
    "KUBECONFIG",
    "DOCKER_CONFIG",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "CONTAINER_HOST",
    "GIT_TRACE",
    "GIT_TRACE_PACKET",
    "GIT_TRACE_PERFORMANCE",
    "GIT_TRACE2",
    "GIT_TRACE2_EVENT",
    "GIT_TRACE_SETUP",
    "XDG_CONFIG_HOME",
    "INPUTRC",
    "PSQLRC",
    "MYSQL_HOME",
    "PGSERVICEFILE",
    "SQLITE_HISTORY",
    "SYSTEMD_PAGER_SECURE",
    "LD_BIND_NOW",
];

/// What setting `name=value` means: reasons, and command lines to classify one level deeper.
pub fn judge(name: &str, value: &str, span: Option<(usize, usize)>) -> (Vec<Reason>, Vec<String>) {
    let mut reasons = Vec::new();
    let mut scripts = Vec::new();
    let medium = |rule: &str, text: String| Reason {
        rule: rule.into(),
        span,
        text,
        tier: Tier::Medium,
    };
    if let Some(func) = name
        .strip_prefix("BASH_FUNC_")
        .and_then(|n| n.strip_suffix("%%").or_else(|| n.strip_suffix("()")))
    {
        reasons.push(medium(
            "env.exported-function",
            format!("defines a function {func} that every child bash runs in place of the command {func}"),
        ));
        let body = value.trim_start().strip_prefix("()").unwrap_or(value);
        scripts.push(body.to_owned());
    } else if PROGRAM_VARS.contains(&name) {
        let command = value.trim_start_matches('|').trim_start_matches('-').trim();
        if !BENIGN_PROGRAMS.contains(&command) {
            reasons.push(medium(
                "env.program-variable",
                format!("{name} names a program that later commands run: {value}"),
            ));
            scripts.push(command.to_owned());
        }
    } else if name == "LESSSECURE" && value != "1" {
        reasons.push(medium(
            "env.program-variable",
            "LESSSECURE is unset: less and every pager call may run shell commands".into(),
        ));
    } else if let Some(n) = name.strip_prefix("GIT_CONFIG_VALUE_") {
        reasons.push(medium(
            "env.git-config",
            format!("sets git configuration value #{n} from the environment: {value}"),
        ));
        scripts.push(value.to_owned());
    } else if name.starts_with("GIT_CONFIG_KEY_") {
        reasons.push(medium(
            "env.git-config",
            format!("sets git configuration key {value} from the environment"),
        ));
    } else if name == "GIT_CONFIG_PARAMETERS" {
        reasons.push(medium(
            "env.git-config",
            "sets git configuration from the environment".into(),
        ));
        // `'core.pager'='cmd'` pairs, space separated: every value may be a command.
        for pair in value.split("' '") {
            if let Some((_, v)) = pair.split_once('=') {
                scripts.push(v.trim_matches('\'').to_owned());
            }
        }
    } else if CODE_VARS.contains(&name) {
        reasons.push(medium(
            "env.code-path",
            format!("{name} changes what code or settings later programs load: {value}"),
        ));
    }
    (reasons, scripts)
}

/// Variables whose value runs or loads code at once or in every later program: setting one to
/// a value only known at run time (`printf -v LD_PRELOAD …`, `read PATH`) is high.
pub fn sensitive(name: &str) -> bool {
    PROGRAM_VARS.contains(&name)
        || CODE_VARS.contains(&name)
        || name.starts_with("GIT_CONFIG")
        || name.starts_with("BASH_FUNC_")
        || matches!(
            name,
            "LD_PRELOAD"
                | "LD_AUDIT"
                | "LD_LIBRARY_PATH"
                | "BASH_ENV"
                | "ENV"
                | "PROMPT_COMMAND"
                | "PS0"
                | "PS1"
                | "PS2"
                | "PS3"
                | "PS4"
                | "LESSSECURE"
                | "HISTFILE"
                | "SHELLOPTS"
        )
}

/// `NAME=value` words (env operands, `export` arguments), split.
pub fn split(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let plain = name.trim_end_matches("%%").trim_end_matches("()");
    (!name.is_empty() && plain.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some((name, value))
}

/// `env NAME=value …`, `export NAME=value`: the variables set are judged like assignments;
/// `printf -v NAME`, `read NAME`, `declare -n r=NAME` set a variable to a value only known at
/// run time, which is high when the variable decides what runs.
pub fn assignments(cmd: &SimpleCmd) -> (Vec<Reason>, Vec<String>) {
    let mut out = Vec::new();
    let mut scripts = Vec::new();
    let Some(name) = cmd.argv.first() else {
        return (out, scripts);
    };
    let runtime_set: Vec<&str> = match name.as_str() {
        "printf" => cmd
            .argv
            .windows(2)
            .filter(|w| w[0] == "-v")
            .map(|w| w[1].as_str())
            .collect(),
        "read" | "mapfile" | "readarray" => cmd.argv[1..]
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(String::as_str)
            .collect(),
        "declare" | "typeset" | "local"
            if cmd
                .argv
                .iter()
                .any(|a| a.starts_with('-') && a.contains('n')) =>
        {
            cmd.argv[1..]
                .iter()
                .filter_map(|a| a.split_once('=').map(|(_, target)| target))
                .collect()
        }
        _ => Vec::new(),
    };
    // `read 'a[$(…)]'`, `declare 'a[$(…)]=1'`, `test -v 'a[$(…)]'`: builtins that evaluate an
    // array subscript (or arithmetic) in their arguments run the substitution inside.
    let evaluates = matches!(
        name.as_str(),
        "read"
            | "declare"
            | "typeset"
            | "local"
            | "export"
            | "readonly"
            | "test"
            | "["
            | "let"
            | "unset"
            | "mapfile"
            | "readarray"
            | "wait"
            | "shift"
            | "return"
            | "exit"
    ) || (name == "printf" && cmd.argv.iter().any(|a| a == "-v"));
    if evaluates
        && cmd.argv[1..]
            .iter()
            .any(|a| a.contains("$(") || a.contains('`') || a.contains("$["))
    {
        out.push(Reason {
            rule: "shell.stored-substitution".into(),
            span: cmd.span,
            text: format!(
                "{name} evaluates a subscript or arithmetic holding a command substitution"
            ),
            tier: Tier::High,
        });
    }
    for var in runtime_set {
        let var = var.split('[').next().unwrap_or(var);
        if sensitive(var) {
            out.push(Reason {
                rule: "env.runtime-value".into(),
                span: cmd.span,
                text: format!("{name} sets {var} to a value only known at run time: {var} decides what later programs run or load"),
                tier: Tier::High,
            });
        }
    }
    if !matches!(
        name.as_str(),
        "env" | "export" | "declare" | "typeset" | "readonly" | "local"
    ) {
        return (out, scripts);
    }
    for word in &cmd.argv[1..] {
        let Some((var, value)) = split(word) else {
            continue;
        };
        let (reasons, texts) = judge(var, value, cmd.span);
        out.extend(reasons);
        scripts.extend(texts);
    }
    (out, scripts)
}
