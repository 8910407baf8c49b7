//! Data flowing between the commands of one line: a file written by one command and run by a
//! later one (`echo … | base64 -d > /tmp/r.sh && sh /tmp/r.sh`) runs text nobody read.

use crate::judge::{INTERPRETERS, SHELLS};
use crate::walk::SimpleCmd;
use crate::{Reason, Tier, paths};

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

/// A file written by one command of the line and run by a later one (`echo … | base64 -d >
/// /tmp/r.sh && sh /tmp/r.sh`, `curl -o /tmp/b … && /tmp/b`): what runs is data nobody read.
pub fn written_then_run(commands: &[SimpleCmd]) -> Vec<Reason> {
    let mut out = Vec::new();
    for (i, writer) in commands.iter().enumerate() {
        for path in written_paths(writer) {
            if let Some(runner) = commands[i + 1..].iter().find(|c| runs_file(c, &path)) {
                out.push(Reason {
                    rule: "exec.written-then-run".into(),
                    span: runner.span,
                    text: format!(
                        "runs {path}, a file written earlier on the same line: its contents \
                         are produced at run time and the reviewer cannot read them"
                    ),
                    tier: Tier::High,
                });
            }
        }
    }
    out
}
