//! JSON messages between the gateway and reviewers. Every message is an object with a `type`.

use airlock_approvals::{Outcome, Progress, Remember, RequestView, VoteDecision, rfc3339};
use airlock_classifier::visible::Shown;
use airlock_classifier::{Reason, Tier};
use serde::{Deserialize, Serialize};

/// A pending request as a reviewer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMsg {
    pub id: String,
    /// The agent's session, for its recording and live screen (`/api/sessions/{id}/…`).
    pub session_id: String,
    pub agent: String,
    pub target: String,
    /// The target's labels, e.g. `{"env": "prod"}`.
    #[serde(default)]
    pub target_labels: std::collections::BTreeMap<String, String>,
    /// Why the agent says it runs this (it sent `AIRLOCK_REASON`), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The gateway node holding the waiting agent (cluster mode).
    pub node: String,
    pub command: String,
    /// How every view must display `command` and `reason` (never raw).
    pub shown: ShownRequest,
    pub tier: Tier,
    pub score: u8,
    /// The classifier's reasons; `span`s here count code points (as `shown` does), not bytes.
    pub reasons: Vec<Reason>,
    pub approvals_needed: u32,
    pub approvals: Vec<String>,
    /// The `[[approval_rule]]` that set the quorum (`None`: the tier default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Who must approve, in words: `1 from dba and 1 from sre`.
    #[serde(default)]
    pub needs: String,
    /// Per `require` entry, who has approved and how many are needed.
    #[serde(default)]
    pub progress: Progress,
    /// `dba 0/1 · sre 1/1 (bob)`.
    #[serde(default)]
    pub progress_text: String,
    /// People whose votes never count here (the agent's owner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// `command` (run `command`) or `access` (grant the agent access to `access_target` for
    /// `access_duration_s` seconds from the approval; `command` then reads
    /// `request-access TARGET DURATION` for clients that know only commands).
    #[serde(default = "command_kind")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_duration_s: Option<u64>,
    pub created_at: String,
    /// Milliseconds since the epoch (the gateway's clock).
    pub created_at_ms: i64,
    pub expires_at: String,
    /// Milliseconds since the epoch, for countdowns without date parsing.
    pub expires_at_ms: i64,
}

fn command_kind() -> String {
    "command".to_owned()
}

impl RequestMsg {
    /// Whether this asks for access to a target rather than to run a command.
    pub fn is_access(&self) -> bool {
        self.kind == "access"
    }
}

/// The display forms of a request's agent-supplied texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownRequest {
    pub command: Shown,
    pub reason: Option<Shown>,
}

impl ShownRequest {
    pub fn of(command: &str, reason: Option<&str>) -> Self {
        Self {
            command: Shown::of(command),
            reason: reason.map(Shown::of_line),
        }
    }
}

/// A byte offset of `text` as a code-point offset (offsets inside a character round down).
fn code_points(text: &str, byte: usize) -> usize {
    let byte = byte.min(text.len());
    text.char_indices().take_while(|(i, _)| *i < byte).count()
}

/// The classifier's reasons as reviewers get them: byte spans turned into code-point spans, and
/// texts (which may quote the command) in their display form.
pub fn reasons_in_code_points(command: &str, reasons: &[Reason]) -> Vec<Reason> {
    reasons
        .iter()
        .map(|r| Reason {
            span: r.span.map(|(s, e)| {
                let s = code_points(command, s);
                (s, code_points(command, e).max(s + 1))
            }),
            text: Shown::of(&r.text).one_line(),
            ..r.clone()
        })
        .collect()
}

impl From<&RequestView> for RequestMsg {
    fn from(r: &RequestView) -> Self {
        Self {
            id: r.id.clone(),
            session_id: r.session_id.clone(),
            agent: r.agent.clone(),
            target: r.target.clone(),
            target_labels: r.labels.clone(),
            reason: r.reason.clone(),
            node: r.node.clone(),
            command: r.command.clone(),
            shown: ShownRequest::of(&r.command, r.reason.as_deref()),
            tier: r.tier,
            score: r.score,
            reasons: reasons_in_code_points(&r.command, &r.reasons),
            approvals_needed: r.quorum,
            approvals: r.approvals(),
            rule: r.needs.rule.clone(),
            needs: r.needs.describe(),
            progress_text: r.needs.progress(&r.votes).to_string(),
            progress: r.needs.progress(&r.votes),
            excluded: r.needs.excluded.clone(),
            kind: r.kind.as_str().to_owned(),
            access_target: r.kind.access_duration().map(|_| r.target.clone()),
            access_duration_s: r.kind.access_duration().map(|d| d.as_secs()),
            created_at: rfc3339(r.created_at),
            created_at_ms: r.created_at,
            expires_at: rfc3339(r.expires_at),
            expires_at_ms: r.expires_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Hello {
        reviewer: String,
        version: String,
        /// The reviewer groups this reviewer is in (config members or identity-provider groups).
        #[serde(default)]
        groups: Vec<String>,
    },
    Snapshot {
        requests: Vec<RequestMsg>,
    },
    /// Boxed: a request is far larger than every other message.
    Request(Box<RequestMsg>),
    Vote {
        id: String,
        reviewer: String,
        decision: VoteDecision,
        approvals: Vec<String>,
        /// Who fills which need now.
        #[serde(default)]
        progress: Progress,
        #[serde(default)]
        progress_text: String,
    },
    Resolved {
        id: String,
        outcome: Outcome,
        /// The vote that settled it, or `airlock`.
        by: String,
        /// Every approving reviewer, in voting order.
        #[serde(default)]
        approvers: Vec<String>,
        /// The settling vote's comment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        /// What the agent was told.
        #[serde(default)]
        why: String,
    },
    Ack {
        id: String,
        result: String,
        approvals: Vec<String>,
        approvals_needed: u32,
        #[serde(default)]
        progress: Progress,
        #[serde(default)]
        progress_text: String,
        /// The whitelist entry made for an approve-and-remember.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        whitelisted: Option<String>,
    },
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        id: Option<String>,
    },
    Pong,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// First frame, for clients that cannot set an Authorization header (browsers).
    Auth {
        token: String,
    },
    Decide {
        id: String,
        decision: VoteDecision,
        #[serde(default)]
        comment: Option<String>,
        /// Approve and remember: whitelist this exact command (never for high).
        #[serde(default)]
        remember: Option<Remember>,
    },
    Ping,
}

impl ServerMsg {
    pub fn error(code: &str, message: impl Into<String>, id: Option<&str>) -> Self {
        ServerMsg::Error {
            code: code.to_owned(),
            message: message.into(),
            id: id.map(str::to_owned),
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail; fall back to a valid error frame anyway.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!(r#"{{"type":"error","code":"internal","message":"{e}"}}"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_and_reject_junk() {
        let m: ClientMsg =
            serde_json::from_str(r#"{"type":"decide","id":"ab","decision":"approve"}"#).unwrap();
        assert_eq!(
            m,
            ClientMsg::Decide {
                id: "ab".into(),
                decision: VoteDecision::Approve,
                comment: None,
                remember: None,
            }
        );
        assert!(
            serde_json::from_str::<ClientMsg>(r#"{"type":"decide","id":"ab","decision":"maybe"}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<ClientMsg>(
                r#"{"type":"decide","id":"ab","decision":"deny","x":1}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn server_messages_have_a_type_tag() {
        let j = ServerMsg::Resolved {
            id: "a".into(),
            outcome: Outcome::Expired,
            by: "airlock".into(),
            approvers: vec![],
            comment: None,
            why: "no decision before the deadline".into(),
        }
        .to_json();
        assert_eq!(
            j,
            r#"{"type":"resolved","id":"a","outcome":"expired","by":"airlock","approvers":[],"why":"no decision before the deadline"}"#
        );
    }

    #[test]
    fn spans_count_code_points() {
        let cmd = "echo é; rm -rf x";
        let r = Reason {
            rule: "fs.rm".into(),
            span: Some((cmd.find("rm").unwrap(), cmd.len())),
            text: "rm".into(),
            tier: Tier::High,
        };
        let quoting = Reason {
            rule: "input.mixed-script".into(),
            span: None,
            text: "inside the Latin word \"\u{0441}at\"".into(),
            tier: Tier::High,
        };
        let got = reasons_in_code_points(cmd, &[r, quoting]);
        assert_eq!(got[0].span, Some((8, 16)));
        assert_eq!(got[1].text, "inside the Latin word \"⟨U+0441⟩at\"");
        assert_eq!(cmd.chars().skip(8).collect::<String>(), "rm -rf x");
    }
}
