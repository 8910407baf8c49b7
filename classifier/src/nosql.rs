//! Redis and MongoDB clients: commands and shell code that flush, drop or reconfigure.

use crate::Tier;
use crate::sqlclient::option_values;
use crate::walk::SimpleCmd;

/// Redis: the first operand is the command.
pub fn redis(cmd: &SimpleCmd) -> (Tier, String) {
    let argv = &cmd.argv;
    let with_value = [
        "-h",
        "-p",
        "-a",
        "-n",
        "-u",
        "-s",
        "--user",
        "--pass",
        "-r",
        "-i",
        "--tls-cert",
        "--cacert",
        "--key",
        "--cert",
        "--pattern",
        "--count",
        "--quoted-pattern",
        "-d",
        "--delimiter",
    ];
    let mut i = 1;
    let mut modes = Vec::new();
    while i < argv.len() {
        let a = argv[i].as_str();
        if with_value.contains(&a) {
            i += 2;
        } else if a.starts_with('-') {
            modes.push(a);
            i += 1;
        } else {
            break;
        }
    }
    let mut lines: Vec<Vec<String>> = Vec::new();
    if i < argv.len() {
        lines.push(argv[i..].to_vec());
    } else if let Some(t) = &cmd.stdin_text {
        lines.extend(
            t.lines()
                .map(|l| l.split_whitespace().map(str::to_owned).collect()),
        );
    } else if modes.iter().any(|m| {
        matches!(
            *m,
            "--scan"
                | "--bigkeys"
                | "--memkeys"
                | "--stat"
                | "--latency"
                | "--latency-history"
                | "--hotkeys"
                | "--version"
                | "-v"
        )
    }) {
        return (Tier::Low, "redis-cli inspection mode".into());
    } else if cmd.stdin_piped || cmd.stdin_file || modes.contains(&"-x") {
        return (
            Tier::Medium,
            "redis commands arrive on stdin and cannot be checked".into(),
        );
    } else {
        return (
            Tier::High,
            "redis-cli opens an interactive session that Airlock cannot gate".into(),
        );
    }
    let mut worst = (Tier::Low, String::from("read-only Redis command"));
    for words in &lines {
        let Some(name) = words.first() else { continue };
        let name = name.to_ascii_uppercase();
        let sub = words
            .get(1)
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        let judged = match name.as_str() {
            "FLUSHALL" | "FLUSHDB" => (Tier::High, format!("{name} deletes every key")),
            "SHUTDOWN" | "DEBUG" | "MODULE" | "SLAVEOF" | "REPLICAOF" | "FAILOVER" | "MIGRATE" => {
                (Tier::High, format!("{name} changes or stops the server"))
            }
            "CONFIG" if matches!(sub.as_str(), "SET" | "REWRITE") => (
                Tier::High,
                "CONFIG SET can make Redis write files anywhere".into(),
            ),
            // `CONFIG GET *` (or `requirepass`, `masterauth`) reveals the passwords.
            "CONFIG"
                if sub == "GET"
                    && words.iter().skip(2).any(|p| {
                        let p = p.to_ascii_lowercase();
                        p.contains(['*', '?', '[']) || p.contains("pass") || p.contains("auth")
                    }) =>
            {
                (
                    Tier::Medium,
                    "CONFIG GET reveals settings, passwords included".into(),
                )
            }
            "SLOWLOG" | "LATENCY" | "MEMORY" if matches!(sub.as_str(), "RESET" | "PURGE") => (
                Tier::Medium,
                format!("{name} {sub} erases diagnostics or changes memory"),
            ),
            "GET" | "MGET" | "KEYS" | "SCAN" | "INFO" | "PING" | "TTL" | "PTTL" | "TYPE"
            | "EXISTS" | "HGET" | "HGETALL" | "HKEYS" | "HVALS" | "HLEN" | "LRANGE" | "LLEN"
            | "SMEMBERS" | "SCARD" | "ZRANGE" | "ZCARD" | "ZSCORE" | "DBSIZE" | "STRLEN"
            | "XRANGE" | "XLEN" | "XINFO" | "SLOWLOG" | "MEMORY" | "LASTSAVE" | "TIME" | "ECHO"
            | "SISMEMBER" | "HEXISTS" | "GETRANGE" | "OBJECT" | "ROLE" | "LATENCY" | "COMMAND" => {
                (Tier::Low, format!("{name} only reads"))
            }
            "CONFIG" | "CLIENT" if matches!(sub.as_str(), "GET" | "LIST" | "INFO" | "GETNAME") => {
                (Tier::Low, format!("{name} {sub} only reads"))
            }
            _ => (Tier::Medium, format!("{name} writes to Redis")),
        };
        if judged.0 > worst.0 {
            worst = judged;
        }
    }
    worst
}

/// Mongo shell: judge the JavaScript passed with `--eval` (or a heredoc).
pub fn mongo(cmd: &SimpleCmd) -> (Tier, String) {
    let mut code = option_values(&cmd.argv, &["--eval"]).join("\n");
    if let Some(t) = &cmd.stdin_text {
        code.push('\n');
        code.push_str(t);
    }
    if code.trim().is_empty() {
        if option_values(&cmd.argv, &["--file", "-f"]).is_empty()
            && !cmd.argv.iter().skip(1).any(|a| a.ends_with(".js"))
            && !cmd.stdin_piped
        {
            return (
                Tier::High,
                "the mongo shell opens an interactive session that Airlock cannot gate".into(),
            );
        }
        return (
            Tier::Medium,
            "mongo script whose commands are not visible".into(),
        );
    }
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let high = [
        ("dropDatabase(", "drops a database"),
        (".drop(", "drops a collection"),
        ("deleteMany({})", "deletes every document"),
        ("remove({})", "deletes every document"),
        ("updateMany({},", "updates every document"),
        ("dropUser(", "drops a user"),
        ("dropAllUsers(", "drops every user"),
        ("shutdownServer(", "shuts the server down"),
    ];
    if let Some((_, why)) = high.iter().find(|(k, _)| compact.contains(k)) {
        return (Tier::High, (*why).into());
    }
    let writes = [
        "delete",
        "remove(",
        "update",
        "insert",
        "replaceOne",
        "createIndex",
        "dropIndex",
        "renameCollection",
        "bulkWrite",
        "findOneAndDelete",
        "findOneAndUpdate",
        "findAndModify",
        "createUser",
        "grantRoles",
        "$out",
        "$merge",
        "save(",
        "runCommand",
        "adminCommand",
    ];
    if writes.iter().any(|k| compact.contains(k)) {
        return (Tier::Medium, "writes to the database".into());
    }
    let reads = [
        "find(",
        "findOne(",
        "count",
        "aggregate(",
        "getCollectionNames(",
        "stats(",
        "printjson(",
        "getIndexes(",
        "distinct(",
        "serverStatus(",
        "version(",
        "isMaster(",
        "hello(",
        "ping",
        "rs.status(",
        "show",
    ];
    if reads.iter().any(|k| compact.contains(k)) {
        return (Tier::Low, "read-only query".into());
    }
    (Tier::Medium, "mongo shell code of an unknown kind".into())
}
