//! Shells, interpreters, editors and pagers: whether a command hands over a session or runs
//! commands from somewhere Airlock cannot see.

use crate::judge::runtime_code_path;
use crate::walk::SimpleCmd;
use crate::{Reason, Tier};

/// Whether `program argv…` would drop the caller into an interactive session.
pub fn interactive_use(program: &str, argv: &[String]) -> bool {
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

pub fn shell_reason(cmd: &SimpleCmd, program: &str, span: Option<(usize, usize)>) -> Reason {
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
