//! Database client command lines: option values, client options that write files or run a
//! pager, and server-side file writes named by a string literal.

use crate::Tier;

pub fn option_values(argv: &[String], flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if flags.contains(&a) {
            if let Some(v) = argv.get(i + 1) {
                out.push(v.clone());
            }
            i += 2;
            continue;
        }
        if let Some((k, v)) = a.split_once('=')
            && flags.contains(&k)
        {
            out.push(v.to_owned());
        }
        i += 1;
    }
    out
}

/// Client options that write files or run programs whatever the statements are.
pub fn client_side_effects(program: &str, argv: &[String]) -> Option<(Tier, String)> {
    if let Some(p) = option_values(argv, &["--pager"]).first() {
        return Some((
            Tier::Medium,
            format!("{program} pipes its output through {p}"),
        ));
    }
    let files = option_values(argv, &["-o", "--output", "-L", "--log-file", "--tee"]);
    let file = files.iter().find(|f| !crate::paths::is_harmless_sink(f))?;
    let tier = if crate::paths::sensitive(file).is_some() {
        Tier::High
    } else {
        Tier::Medium
    };
    Some((
        tier,
        format!("{program} writes its output or session to {file}"),
    ))
}

/// Server-side file writes whose path is a string literal (`lo_export(…, '/root/.ssh/…')`).
pub fn sensitive_literal(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if !["lo_export", "pg_file_write", "outfile", "dumpfile", "copy"]
        .iter()
        .any(|k| lower.contains(k))
    {
        return None;
    }
    text.split('\'')
        .skip(1)
        .step_by(2)
        .find_map(|lit| crate::paths::sensitive(lit).map(|why| format!("{lit} ({why})")))
}
