//! Judging what a database client will execute: SQL statements, Redis commands, Mongo shell code.
//!
//! The statements are taken from where the client reads them (`psql -c`, `mysql -e`, `sqlite3 DB
//! SQL`, a heredoc, a here-string or `echo … |`), string literals and comments are removed so
//! that data is not mistaken for a statement, and every statement is judged on its own: one
//! unscoped `DELETE` after a scoped one is still an unscoped `DELETE`.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::Tier;
use crate::sqlclient::{client_side_effects, option_values, sensitive_literal};
use crate::walk::SimpleCmd;

const KEYWORDS: &[&str] = &[
    "drop",
    "truncate",
    "delete",
    "update",
    "insert",
    "alter",
    "create",
    "grant",
    "revoke",
    "where",
    "select",
    "explain",
    "show",
    "describe",
    "desc",
    "with",
    "into",
    "copy",
    "merge",
    "replace",
    "rename",
    "vacuum",
    "analyze",
    "reindex",
    "cluster",
    "comment",
    "set",
    "begin",
    "commit",
    "rollback",
    "use",
    "pragma",
    "values",
    "limit",
    "shutdown",
    "kill",
    "load",
    "call",
    "do",
    "lock",
    "refresh",
    "import",
    "attach",
    "detach",
    "reset",
    "discard",
    "listen",
    "notify",
    "checkpoint",
    "security",
    "owner",
    "outfile",
    "dumpfile",
    "pg_terminate_backend",
    "program",
    "lo_export",
    "lo_import",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "pg_file_write",
    "load_file",
    "dblink",
    "dblink_exec",
    "xp_cmdshell",
    "sys_exec",
    "sys_eval",
    "pg_cancel_backend",
    "pg_reload_conf",
    "set_config",
    "pg_promote",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "superuser",
    "bypassrls",
    "writefile",
    "readfile",
    "edit",
    "fsdir",
    "load_extension",
    "pg_shadow",
    "pg_authid",
    "rolpassword",
    "setval",
    "pg_drop_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_wal_replay_pause",
    "pg_backup_start",
    "pg_start_backup",
    "query_to_xml",
    "lo_unlink",
    "lo_put",
    "lo_from_bytea",
    "lo_create",
    "pg_stat_reset",
    "pg_stat_statements_reset",
    "global",
    "persist",
    "master",
    "replica",
    "slave",
    "binary",
    "do_system",
    "purge",
    "flush",
    "sleep",
    "pg_sleep",
    "get_lock",
];

static SQL_AC: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(KEYWORDS)
        .ok()
});

/// Options whose value is the statement text, across the clients we know.
const INLINE_FLAGS: &[&str] = &[
    "-c",
    "--command",
    "-e",
    "--execute",
    "-q",
    "--query",
    "-Q",
    "--eval",
    "-cmd",
];
/// Options whose value is a script file we cannot see.
const FILE_FLAGS: &[&str] = &["-f", "--file", "-i", "--init-command", "--init", "--source"];

/// The tier and explanation for one database-client command.
pub fn judge(program: &str, cmd: &SimpleCmd) -> (Tier, String) {
    match program {
        "redis-cli" | "valkey-cli" | "keydb-cli" => crate::nosql::redis(cmd),
        "mongosh" | "mongo" => crate::nosql::mongo(cmd),
        _ => sql_client(program, cmd),
    }
}

fn sql_client(program: &str, cmd: &SimpleCmd) -> (Tier, String) {
    let (tier, why) = sql_texts(program, cmd);
    match client_side_effects(program, &cmd.argv) {
        Some(side) if side.0 > tier => side,
        _ => (tier, why),
    }
}

fn sql_texts(program: &str, cmd: &SimpleCmd) -> (Tier, String) {
    let argv = &cmd.argv;
    let mut texts = option_values(argv, INLINE_FLAGS);
    if matches!(program, "sqlite3" | "duckdb") {
        // `sqlite3 [options] DATABASE [SQL…]`: every operand after the database is SQL.
        let operands: Vec<&String> = argv
            .iter()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        texts.extend(operands.iter().skip(1).map(|s| (*s).clone()));
    }
    if let Some(s) = &cmd.stdin_text {
        texts.push(s.clone());
    }
    if texts.is_empty() {
        if !option_values(argv, FILE_FLAGS).is_empty()
            || argv.iter().any(|a| a.starts_with("--file="))
        {
            return (
                Tier::Medium,
                format!("{program} runs a script file whose statements are not visible"),
            );
        }
        if cmd.stdin_piped || cmd.stdin_file {
            return (
                Tier::Medium,
                format!("{program} reads statements from stdin that cannot be checked"),
            );
        }
        if argv.iter().skip(1).any(|a| {
            matches!(
                a.as_str(),
                "--version" | "-V" | "--help" | "-?" | "-l" | "--list"
            )
        }) {
            return (
                Tier::Low,
                format!("{program} prints its version, help or database list"),
            );
        }
        // Statements typed into the session would never be seen by the gate.
        return (
            Tier::High,
            format!("{program} opens an interactive session that Airlock cannot gate"),
        );
    }
    let mut worst = (Tier::Low, String::from("read-only query"));
    for t in &texts {
        if let Some(path) = sensitive_literal(t) {
            return (
                Tier::High,
                format!("SQL writes a server file at a sensitive path: {path}"),
            );
        }
        for stmt in statements(t) {
            let (tier, why) = statement(&stmt);
            if tier > worst.0 {
                worst = (tier, why);
            }
        }
    }
    worst
}

/// Remove string literals and comments, then split on `;`.
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // Identifiers keep their text (`"pg_read_file"(…)` is still that function).
            '"' | '`' => {
                cur.push(' ');
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                    cur.push(d);
                }
                cur.push(' ');
            }
            '\'' => {
                // Keep the quotes so `DELETE FROM 'x'` still has a literal, drop the content.
                cur.push(c);
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
                cur.push(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                cur.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                // `/*! … */` is executed by MySQL: keep it as statement text.
                if chars.peek() == Some(&'!') {
                    chars.next();
                    while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                        chars.next();
                    }
                    let mut prev = ' ';
                    for d in chars.by_ref() {
                        if prev == '*' && d == '/' {
                            cur.pop();
                            break;
                        }
                        cur.push(d);
                        prev = d;
                    }
                    continue;
                }
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                cur.push(' ');
            }
            ';' => out.push(std::mem::take(&mut cur)),
            '\n' if cur.trim_start().starts_with('\\') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.retain(|s| !s.trim().is_empty());
    out
}

/// Judge one statement (literals and comments already removed).
fn statement(stmt: &str) -> (Tier, String) {
    let trimmed = stmt.trim();
    if let Some(meta) = trimmed.strip_prefix('\\') {
        // psql meta-commands: `\dt` and friends read; `\!` runs a shell; `\i` runs a file.
        if meta.starts_with("password") {
            return (
                Tier::High,
                "psql \\password changes a role's password".into(),
            );
        }
        if meta.starts_with("lo_") || meta.starts_with("s ") || meta.starts_with("copy") {
            return (
                Tier::Medium,
                format!("psql meta-command \\{meta} writes files or large objects"),
            );
        }
        return match meta.chars().next() {
            Some('!') => (Tier::High, "psql \\! runs a shell command".into()),
            Some('i') | Some('o') | Some('w') | Some('c') => {
                (Tier::Medium, format!("psql meta-command \\{meta}"))
            }
            _ => (
                Tier::Low,
                "psql meta-command that lists or describes".into(),
            ),
        };
    }
    if let Some(dot) = trimmed.strip_prefix('.') {
        // sqlite3 dot-commands.
        let name = dot.split_whitespace().next().unwrap_or_default();
        return match name {
            "shell" | "system" => (Tier::High, format!("sqlite3 .{name} runs a shell command")),
            "tables" | "schema" | "indexes" | "indices" | "databases" | "dbinfo" | "show"
            | "help" | "mode" | "headers" | "width" | "timer" | "stats" | "fullschema" | "lint"
            | "eqp" | "dump" | "quit" | "exit" | "print" | "nullvalue" => {
                (Tier::Low, format!("sqlite3 .{name} only reads or formats"))
            }
            _ => (
                Tier::Medium,
                format!("sqlite3 .{name} may write files or the database"),
            ),
        };
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("system ") || lower.starts_with("system\t") {
        return (Tier::High, "mysql system runs a shell command".into());
    }
    let mut found: Vec<&str> = Vec::new();
    if let Some(ac) = &*SQL_AC {
        for m in ac.find_iter(&lower) {
            let before = lower[..m.start()].chars().next_back();
            let after = lower[m.end()..].chars().next();
            let boundary =
                |c: Option<char>| c.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
            if boundary(before) && boundary(after) {
                found.push(KEYWORDS[m.pattern().as_usize()]);
            }
        }
    } else {
        return (Tier::High, "SQL keyword matcher unavailable".into());
    }
    let has = |k: &str| found.contains(&k);
    let first = found.first().copied().unwrap_or_default();
    if (has("drop") && first != "select") || has("truncate") {
        return (Tier::High, "drops or truncates database objects".into());
    }
    if has("shutdown") {
        return (Tier::High, "shuts the database server down".into());
    }
    if has("delete") || has("update") {
        let verb = if has("delete") { "DELETE" } else { "UPDATE" };
        return match where_clause(&lower) {
            None => (
                Tier::High,
                format!("{verb} without WHERE touches every row"),
            ),
            Some(w) if trivially_true(w) => (
                Tier::High,
                format!("{verb} with an always-true WHERE touches every row"),
            ),
            Some(_) => (
                Tier::Medium,
                format!("scoped {verb} writes to the database"),
            ),
        };
    }
    if has("writefile") || has("edit") || has("load_extension") || has("do_system") {
        return (
            Tier::High,
            "writes files, runs a program or loads native code from SQL (writefile, edit, load_extension)".into(),
        );
    }
    if has("pg_shadow") || has("pg_authid") || has("rolpassword") || lower.contains("mysql.user") {
        return (Tier::High, "reads password hashes".into());
    }
    if (has("reset") && (has("master") || has("replica") || has("slave")))
        || (has("purge") && has("binary"))
        || has("pg_drop_replication_slot")
        || has("setval")
        || has("query_to_xml")
    {
        return (
            Tier::High,
            "deletes replication state or logs, resets sequences, or runs SQL hidden in a string"
                .into(),
        );
    }
    if has("set") && (has("global") || has("persist")) {
        let ro = lower.contains("read_only");
        return (
            if ro { Tier::High } else { Tier::Medium },
            "changes server-wide settings".into(),
        );
    }
    if has("flush") || has("sleep") || has("pg_sleep") || has("get_lock") {
        return (
            Tier::Medium,
            "holds locks or connections, or flushes server state".into(),
        );
    }
    if has("readfile")
        || has("fsdir")
        || has("pg_create_logical_replication_slot")
        || has("pg_create_physical_replication_slot")
        || has("pg_wal_replay_pause")
        || has("pg_backup_start")
        || has("pg_start_backup")
        || has("lo_unlink")
        || has("lo_put")
        || has("lo_from_bytea")
        || has("lo_create")
        || has("pg_stat_reset")
        || has("pg_stat_statements_reset")
    {
        return (
            Tier::Medium,
            "reads files, holds WAL, changes large objects or resets statistics".into(),
        );
    }
    if has("copy") && has("program") {
        return (
            Tier::High,
            "COPY … PROGRAM runs a shell command on the database server".into(),
        );
    }
    if has("xp_cmdshell") || has("sys_exec") || has("sys_eval") {
        return (
            Tier::High,
            "runs an operating-system command from SQL".into(),
        );
    }
    if has("superuser") || has("bypassrls") || lower.contains("with grant option") {
        return (
            Tier::High,
            "grants superuser-level or re-grantable privileges".into(),
        );
    }
    if has("lo_export") || has("pg_file_write") {
        return (Tier::Medium, "writes a file on the database server".into());
    }
    if has("lo_import")
        || has("pg_read_file")
        || has("pg_read_binary_file")
        || has("pg_ls_dir")
        || has("pg_stat_file")
        || has("load_file")
        || has("dblink")
        || has("dblink_exec")
    {
        return (
            Tier::Medium,
            "reads server files or reaches another database".into(),
        );
    }
    if has("pg_cancel_backend")
        || has("pg_reload_conf")
        || has("set_config")
        || has("pg_promote")
        || has("pg_rotate_logfile")
        || has("pg_switch_wal")
    {
        return (
            Tier::Medium,
            "changes server state (settings, sessions, WAL or promotion)".into(),
        );
    }
    if has("outfile") || has("dumpfile") {
        return (
            Tier::High,
            "writes an arbitrary file on the database server (INTO OUTFILE/DUMPFILE)".into(),
        );
    }
    if has("pg_terminate_backend") {
        return (
            Tier::Medium,
            "writes files or terminates sessions from SQL".into(),
        );
    }
    match first {
        "select" | "explain" | "show" | "describe" | "desc" | "with" | "values" | "analyze"
            if !has("into") && !has("insert") && !has("create") && !has("alter") =>
        {
            (Tier::Low, "read-only query".into())
        }
        "begin" | "commit" | "rollback" | "use" | "set" | "pragma" | "listen" | "reset"
            if found.len() <= 2 =>
        {
            (Tier::Low, "session or transaction control".into())
        }
        "" => (Tier::Medium, "statement of an unknown kind".into()),
        _ => (
            Tier::Medium,
            "writes to the database or changes its schema".into(),
        ),
    }
}

/// The text after the first top-level WHERE, if any.
fn where_clause(lower: &str) -> Option<&str> {
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("where") {
        let at = from + pos;
        let before_ok =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let end = at + 5;
        let after_ok =
            end >= bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
        if before_ok && after_ok {
            return Some(&lower[end..]);
        }
        from = end;
    }
    None
}

fn trivially_true(w: &str) -> bool {
    let compact: String = w.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = compact.trim_end_matches(';');
    matches!(
        compact,
        "1=1" | "true" | "1" | "'1'='1'" | "''=''" | "1<2" | "0=0"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_comments_are_not_statements() {
        let s = statements("SELECT 'drop table x; --' FROM t; -- DROP TABLE y\nSELECT 2");
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(
            !s.iter().any(|x| x.to_ascii_lowercase().contains("drop")),
            "{s:?}"
        );
    }

    #[test]
    fn each_statement_is_judged() {
        let worst = statements("DELETE FROM t WHERE id = 1; DELETE FROM u")
            .iter()
            .map(|s| statement(s).0)
            .max();
        assert_eq!(worst, Some(Tier::High));
        assert_eq!(statement("update t set a = 1 where 1 = 1").0, Tier::High);
        assert_eq!(statement("update t set a = 1 where id = 7").0, Tier::Medium);
        assert_eq!(statement("select drop_count from t").0, Tier::Low);
        assert_eq!(statement("ALTER TABLE t DROP COLUMN c").0, Tier::High);
        assert_eq!(statement("ALTER TABLE t ADD COLUMN c int").0, Tier::Medium);
        assert_eq!(statement("select * into backup from t").0, Tier::Medium);
    }
}
