//! The five tools `airlock mcp` offers: their descriptions, input schemas and the checking
//! of arguments.
//!
//! Why it exists: the descriptions are what a model reads before it acts, so they say what
//! the gate does — ask with a reason, wait for people, take a denial as final — and the
//! schemas and checks make a bad call fail early with an MCP error naming the field, before
//! anything reaches the gateway. What it owns: the tool list and [`Call`], the checked form
//! of one call.

use std::sync::Arc;
use std::time::Duration;

use rmcp::ErrorData;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::run::{MAX_WAIT, OUTPUT_LIMIT};

/// Longest stated reason the gateway takes (characters).
const REASON_MAX: usize = 500;
/// Longest target name or request id accepted here.
const NAME_MAX: usize = 128;
/// Longest `duration` accepted here (`2h30m`, `90m`, …).
const DURATION_MAX: usize = 32;

const RUN: &str = "Run a shell command on a server through Airlock, the approval gateway between you and the servers. \
Every command is parsed and scored before it runs: low-risk (read-only) commands run at once, and cannot write; riskier ones wait until a human reviewer approves them (high-risk ones need two), and no answer in time means deny. \
Always give `reason` — one sentence on why, e.g. a ticket — reviewers see it beside the command and decide faster. \
While the command waits, this tool sends progress notifications (request id, who must approve, time left). \
The result gives the exit status, stdout and stderr (each cut at 64 KiB, with a note saying how much was cut), the request id and how it was decided. \
A denial comes back as an error with the reviewer's comment: it is final for that command. Do not retry it reworded, split into pieces, wrapped in a script, or on another target to get around it; tell the user, or change the plan. \
Not sure how a command will be judged? Call explain_command first. Commands run as `bash -c` without a terminal or stdin.";

const LIST: &str = "List the targets (servers) this agent may use through Airlock, with their labels (e.g. env=prod) and whether each needs an access grant. Use a name from here as `target` in run_command.";

const EXPLAIN: &str = "Ask Airlock what it would do with a command on a target, without running it: risk tier, score, the rules that matched (with spans), and the decision — run at once, whitelisted, ask reviewers (how many, timeout) or deny (why). Nothing runs and no request is made. Use it to choose a safer command, or to know you will need a reviewer and a good reason.";

const ACCESS: &str = "Ask human reviewers for time-boxed access to a target that needs an access grant (list_targets says which; run_command on such a target without a grant is denied with `no access grant`). \
Give `duration` (e.g. 30m, 1h; at most the gateway's [grants] max_duration, by default 8h) and a `reason` reviewers can judge, e.g. a ticket. \
The call waits until a reviewer decides (progress notifications while it waits) and returns the grant's id and expiry; then run_command works on that target until the grant expires, each command still judged and, above low risk, still asked about. \
A denial is final: do not ask again with another wording; tell the user.";

const STATUS: &str = "The state of one of this agent's approval requests, by the request id run_command reported: pending (with votes so far), approved, denied (by whom, why), expired or withdrawn.";

fn schema(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(o) => Arc::new(o),
        _ => Arc::new(JsonObject::new()),
    }
}

fn target_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": NAME_MAX,
        "description": "The target's name, as list_targets gives it (e.g. \"local\")."})
}

/// Every tool, in the order a model should meet them.
pub fn all() -> Vec<Tool> {
    let read_only = ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .open_world(false);
    vec![
        Tool::new(
            "run_command",
            RUN,
            schema(json!({
                "type": "object",
                "properties": {
                    "target": target_schema(),
                    "command": {"type": "string", "minLength": 1,
                        "description": "The shell command, exactly as it should run (bash syntax)."},
                    "reason": {"type": "string", "maxLength": REASON_MAX,
                        "description": "Why you run it, for the reviewers (at most 500 characters). Give one for anything that may change a system."},
                    "timeout_s": {"type": "integer", "minimum": 1, "maximum": MAX_WAIT.as_secs(),
                        "description": "Stop after this many seconds (waiting for approval plus running). Then the channel is closed: a request still waiting is withdrawn, a running command is killed. Default: wait until the gateway decides (its approval timeout) and the command ends, at most 3600."}
                },
                "required": ["target", "command"],
                "additionalProperties": false
            })),
        )
        .with_title("Run a command through the Airlock gate")
        .with_annotations(ToolAnnotations::new().destructive(true).open_world(true)),
        Tool::new(
            "list_targets",
            LIST,
            schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        )
        .with_title("Targets this agent may use")
        .with_annotations(read_only.clone()),
        Tool::new(
            "explain_command",
            EXPLAIN,
            schema(json!({
                "type": "object",
                "properties": {
                    "target": target_schema(),
                    "command": {"type": "string", "minLength": 1,
                        "description": "The shell command to judge, exactly as it would run."}
                },
                "required": ["target", "command"],
                "additionalProperties": false
            })),
        )
        .with_title("What the gate would do with a command")
        .with_annotations(read_only.clone()),
        Tool::new(
            "request_access",
            ACCESS,
            schema(json!({
                "type": "object",
                "properties": {
                    "target": target_schema(),
                    "duration": {"type": "string", "minLength": 1, "maxLength": DURATION_MAX,
                        "description": "How long the access should last, e.g. \"30m\", \"1h\", \"2h30m\"."},
                    "reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX,
                        "description": "Why you need access, for the reviewers (one line, at most 500 characters)."}
                },
                "required": ["target", "duration", "reason"],
                "additionalProperties": false
            })),
        )
        .with_title("Ask reviewers for access to a target")
        .with_annotations(ToolAnnotations::new().destructive(false).open_world(true)),
        Tool::new(
            "request_status",
            STATUS,
            schema(json!({
                "type": "object",
                "properties": {
                    "id": {"type": "string", "minLength": 1, "maxLength": NAME_MAX,
                        "description": "The request id run_command reported."}
                },
                "required": ["id"],
                "additionalProperties": false
            })),
        )
        .with_title("State of an approval request")
        .with_annotations(read_only),
    ]
}

/// One checked tool call.
pub enum Call {
    Run(super::run::RunSpec),
    ListTargets,
    Explain {
        target: String,
        command: String,
    },
    Status {
        id: String,
    },
    Access {
        target: String,
        duration: String,
        reason: String,
    },
}

fn bad(field: &str, why: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("invalid argument `{field}`: {why}"),
        Some(json!({"field": field})),
    )
}

/// The arguments of one call, checked field by field.
struct Args<'a> {
    map: &'a JsonObject,
}

impl Args<'_> {
    fn only(&self, allowed: &[&str]) -> Result<(), ErrorData> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(bad(
                k,
                &format!("unknown argument (this tool takes: {})", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    fn string(&self, field: &str) -> Result<Option<&str>, ErrorData> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(field, "must be a string")),
        }
    }

    fn required(&self, field: &str) -> Result<&str, ErrorData> {
        match self.string(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(bad(field, "must not be empty")),
            None => Err(bad(field, "is required")),
        }
    }

    /// A single word: a target name or a request id.
    fn word(&self, field: &str) -> Result<String, ErrorData> {
        let s = self.required(field)?;
        if s.chars().count() > NAME_MAX {
            return Err(bad(field, &format!("longer than {NAME_MAX} characters")));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                field,
                "must be one word, without spaces or control characters",
            ));
        }
        Ok(s.to_owned())
    }

    fn command(&self) -> Result<String, ErrorData> {
        let s = self.required("command")?;
        if s.contains('\0') {
            return Err(bad("command", "must not contain a NUL character"));
        }
        Ok(s.to_owned())
    }
}

/// Check the arguments of tool `name`.
pub fn parse(name: &str, arguments: Option<&JsonObject>) -> Result<Call, ErrorData> {
    let empty = JsonObject::new();
    let a = Args {
        map: arguments.unwrap_or(&empty),
    };
    match name {
        "run_command" => {
            a.only(&["target", "command", "reason", "timeout_s"])?;
            let reason = match a.string("reason")? {
                Some(r) if r.chars().count() > REASON_MAX => {
                    return Err(bad(
                        "reason",
                        &format!(
                            "{} characters; the gateway takes at most {REASON_MAX}",
                            r.chars().count()
                        ),
                    ));
                }
                Some(r) if r.contains('\0') => {
                    return Err(bad("reason", "must not contain a NUL character"));
                }
                Some(r) if !r.trim().is_empty() => Some(r.to_owned()),
                _ => None,
            };
            let timeout = match a.map.get("timeout_s") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=MAX_WAIT.as_secs()).contains(&n) => {
                        Some(Duration::from_secs(n))
                    }
                    _ => {
                        return Err(bad(
                            "timeout_s",
                            &format!(
                                "must be a whole number of seconds from 1 to {}",
                                MAX_WAIT.as_secs()
                            ),
                        ));
                    }
                },
            };
            Ok(Call::Run(super::run::RunSpec {
                target: a.word("target")?,
                command: a.command()?,
                reason,
                timeout,
            }))
        }
        "list_targets" => {
            a.only(&[])?;
            Ok(Call::ListTargets)
        }
        "explain_command" => {
            a.only(&["target", "command"])?;
            Ok(Call::Explain {
                target: a.word("target")?,
                command: a.command()?,
            })
        }
        "request_status" => {
            a.only(&["id"])?;
            Ok(Call::Status { id: a.word("id")? })
        }
        "request_access" => {
            a.only(&["target", "duration", "reason"])?;
            let duration = a.word("duration")?;
            if duration.chars().count() > DURATION_MAX {
                return Err(bad("duration", "too long; use e.g. 30m, 1h, 2h30m"));
            }
            let reason = a.required("reason")?;
            let n = reason.chars().count();
            if n > REASON_MAX {
                return Err(bad(
                    "reason",
                    &format!("{n} characters; the gateway takes at most {REASON_MAX}"),
                ));
            }
            if reason.chars().any(char::is_control) {
                return Err(bad("reason", "must be one line without control characters"));
            }
            Ok(Call::Access {
                target: a.word("target")?,
                duration,
                reason: reason.trim().to_owned(),
            })
        }
        other => Err(ErrorData::invalid_params(
            format!(
                "unknown tool {other:?} (tools: run_command, list_targets, explain_command, request_access, request_status)"
            ),
            Some(json!({"field": "name"})),
        )),
    }
}

/// The output bound, for the server's instructions.
pub const OUTPUT_LIMIT_KIB: usize = OUTPUT_LIMIT / 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> JsonObject {
        match v {
            Value::Object(o) => o,
            _ => JsonObject::new(),
        }
    }

    fn err(name: &str, v: Value) -> String {
        match parse(name, Some(&args(v))) {
            Err(e) => e.message.to_string(),
            Ok(_) => "accepted".into(),
        }
    }

    #[test]
    fn bad_arguments_name_the_field() {
        assert!(err("run_command", json!({"command": "ls"})).contains("`target`: is required"));
        assert!(
            err("run_command", json!({"target": "local", "command": 3}))
                .contains("`command`: must be a string")
        );
        assert!(
            err("run_command", json!({"target": "a b", "command": "ls"}))
                .contains("`target`: must be one word")
        );
        assert!(
            err(
                "run_command",
                json!({"target": "l", "command": "ls", "timeout_s": 0})
            )
            .contains("`timeout_s`")
        );
        assert!(
            err(
                "run_command",
                json!({"target": "l", "command": "ls", "timeout_s": "9"})
            )
            .contains("`timeout_s`")
        );
        assert!(
            err(
                "run_command",
                json!({"target": "l", "command": "ls", "reason": "x".repeat(501)})
            )
            .contains("`reason`: 501 characters")
        );
        assert!(
            err(
                "run_command",
                json!({"target": "l", "command": "ls", "tagret": "x"})
            )
            .contains("`tagret`: unknown argument")
        );
        assert!(err("request_status", json!({})).contains("`id`: is required"));
        assert_eq!(
            err(
                "explain_command",
                json!({"target": "local", "command": "touch F"})
            ),
            "accepted"
        );
        assert!(
            err(
                "request_access",
                json!({"target": "prod", "duration": "1h"})
            )
            .contains("`reason`: is required")
        );
        assert!(
            err(
                "request_access",
                json!({"target": "prod", "duration": "1h", "reason": "a\nb"})
            )
            .contains("`reason`: must be one line")
        );
        assert_eq!(
            err(
                "request_access",
                json!({"target": "prod", "duration": "1h", "reason": "hotfix, OPS-42"})
            ),
            "accepted"
        );
        assert_eq!(all().len(), 5);
    }
}
