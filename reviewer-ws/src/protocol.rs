//! JSON messages between the gateway and reviewers. Every message is an object with a `type`.

use airlock_approvals::scripts::ScriptFile;
use airlock_approvals::{Outcome, Progress, Remember, RequestView, VoteDecision, rfc3339};
use airlock_classifier::visible::{Flag, Shown};
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
    /// Files the command runs (`bash deploy.sh`), as the gateway read them from the target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<ScriptMsg>,
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
            scripts: r.scripts.iter().map(ScriptMsg::from).collect(),
        }
    }
}

/// A file the command runs, as reviewers get it: the gateway's evidence as read from the
/// target (`path`, `size`, `sha256`, the raw `content`, the risky `lines`, `previous` with its
/// diff), and `shown`, the only form a view may draw the file's agent-written texts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptMsg {
    #[serde(flatten)]
    pub file: ScriptFile,
    pub shown: ShownScript,
}

/// The display forms of a script's texts. The agent wrote the file (and chose its name), so
/// everything here is marked like a command: controls, bidi and invisible characters as
/// visible marks. Content and diff come line by line, so views number and highlight lines
/// without parsing the display form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownScript {
    /// `path` and `resolved` on one line, marked.
    pub path: String,
    pub resolved: String,
    /// `problem`, marked (it can quote the path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The content's lines: entry `i` is line `i + 1` (empty when there is no content).
    #[serde(default)]
    pub content: Vec<ShownLine>,
    /// The diff against the approved version (`previous.diff`), line by line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<ShownLine>,
    /// Why the content deserves a second look: per kind, the first line that has it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
}

/// One line of a script as views draw it: most lines need no mark, and travel as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ShownLine {
    /// Nothing to mark: the line shows as itself.
    Plain(String),
    /// The line's display form (one line: it holds no line feed).
    Marked(Shown),
}

impl ShownLine {
    pub fn of(line: &str) -> Self {
        let form = Shown::of_line(line);
        if form.is_plain() {
            ShownLine::Plain(line.to_owned())
        } else {
            ShownLine::Marked(form)
        }
    }

    /// The display form to draw. A `Plain` line is marked again here: a client does not take
    /// the gateway's word that it holds nothing to mark.
    pub fn form(&self) -> Shown {
        match self {
            ShownLine::Plain(text) => Shown::of_line(text),
            ShownLine::Marked(form) => form.clone(),
        }
    }
}

/// `text`'s lines (a final line feed ends the last line; it does not start another).
fn lines_of(text: &str) -> Vec<ShownLine> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\n').map(ShownLine::of).collect()
}

/// Per kind of flag, the first line that raised it: `line 3: hidden … (and 2 more lines)`.
fn line_flags(lines: &[ShownLine]) -> Vec<Flag> {
    let mut out: Vec<(Flag, usize)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let ShownLine::Marked(form) = l else { continue };
        for f in &form.flags {
            match out.iter_mut().find(|(g, _)| g.code == f.code) {
                Some((_, more)) => *more += 1,
                None => out.push((
                    Flag {
                        code: f.code,
                        text: format!("line {}: {}", i + 1, f.text),
                    },
                    0,
                )),
            }
        }
    }
    out.into_iter()
        .map(|(mut f, more)| {
            if more > 0 {
                let s = if more == 1 { "" } else { "s" };
                f.text.push_str(&format!(" (and {more} more line{s})"));
            }
            f
        })
        .collect()
}

impl From<&ScriptFile> for ScriptMsg {
    fn from(f: &ScriptFile) -> Self {
        let one = |t: &str| Shown::of_line(t).one_line();
        let content = f.content.as_deref().map(lines_of).unwrap_or_default();
        let mut file = f.clone();
        // The classifier's words can quote the file: shown marked, as `reasons` are.
        for l in &mut file.lines {
            l.text = Shown::of(&l.text).one_line();
            l.rule = one(&l.rule);
        }
        Self {
            shown: ShownScript {
                path: one(&f.path),
                resolved: one(&f.resolved),
                problem: f.problem.as_deref().map(one),
                flags: line_flags(&content),
                diff: f
                    .previous
                    .as_ref()
                    .map(|p| lines_of(&p.diff))
                    .unwrap_or_default(),
                content,
            },
            file,
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

    fn script() -> ScriptFile {
        use airlock_approvals::scripts::{Previous, RiskyLine, ScriptKind, unified_diff};
        let old = "echo hi\necho bye\n";
        let now = "echo hi\nrm -rf /tmp/d \u{202E}x\n\tmake <img src=x>\n";
        ScriptFile {
            unbound: None,
            path: "x\u{1b}[2K.sh".into(),
            resolved: "/srv/x.sh".into(),
            kind: ScriptKind::Shell,
            size: now.len() as u64,
            sha256: Some("ab".repeat(32)),
            content: Some(now.into()),
            problem: None,
            lines: vec![RiskyLine {
                line: 2,
                tier: Tier::High,
                rule: "fs.rm-recursive".into(),
                text: "rm -rf /tmp/d \u{202E}x: deletes a tree".into(),
            }],
            previous: Some(Previous {
                sha256: "cd".repeat(32),
                diff: unified_diff(old, now),
            }),
        }
    }

    #[test]
    fn scripts_reach_reviewers_with_every_line_in_display_form() {
        let view = RequestView {
            scripts: vec![script()],
            ..serde_json::from_value(serde_json::json!({
                "id": "r", "session_id": "s", "agent": "bot", "target": "t", "command": "bash x.sh",
                "tier": "high", "score": 90, "reasons": [], "quorum": 2, "status": "pending",
                "created_at": 0, "expires_at": 0, "node": "n", "votes": []
            }))
            .unwrap()
        };
        let m = RequestMsg::from(&view);
        let s = &m.scripts[0];
        assert_eq!(
            s.file,
            ScriptFile {
                unbound: None,
                lines: s.file.lines.clone(),
                ..script()
            }
        );
        // The path, the content's lines and the risky line's words: marked, never raw.
        assert_eq!(s.shown.path, "x⟨ESC⟩[2K.sh");
        assert_eq!(s.shown.content.len(), 3);
        assert_eq!(s.shown.content[0], ShownLine::Plain("echo hi".into()));
        assert_eq!(
            s.shown.content[1].form().one_line(),
            "rm -rf /tmp/d ⟨U+202E⟩x"
        );
        assert_eq!(
            s.shown.content[2].form().one_line(),
            "⟨TAB⟩make <img src=x>"
        );
        assert_eq!(
            s.file.lines[0].text,
            "rm -rf /tmp/d ⟨U+202E⟩x: deletes a tree"
        );
        assert!(
            s.shown.flags[0].text.starts_with("line 2: hidden"),
            "{:?}",
            s.shown.flags
        );
        // The diff, line by line, its changes marked too.
        let diff: Vec<String> = s.shown.diff.iter().map(|l| l.form().one_line()).collect();
        assert!(diff.contains(&"-echo bye".to_owned()), "{diff:?}");
        assert!(
            diff.contains(&"+rm -rf /tmp/d ⟨U+202E⟩x".to_owned()),
            "{diff:?}"
        );
        // On the wire: flattened evidence plus `shown`; a plain line is a string; it round-trips.
        let j = ServerMsg::Request(Box::new(m.clone())).to_json();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["scripts"][0]["sha256"], "ab".repeat(32));
        assert_eq!(v["scripts"][0]["previous"]["sha256"], "cd".repeat(32));
        assert_eq!(v["scripts"][0]["lines"][0]["line"], 2);
        assert_eq!(v["scripts"][0]["shown"]["content"][0], "echo hi");
        let shown = v["scripts"][0]["shown"].to_string();
        assert!(
            !shown.contains('\u{202E}') && !shown.contains("\\u001b"),
            "{shown}"
        );
        assert!(
            j.contains('\u{202E}'),
            "the raw content is still carried: {j}"
        );
        let back: ServerMsg = serde_json::from_str(&j).unwrap();
        assert_eq!(back, ServerMsg::Request(Box::new(m)));
        // No scripts: no key (older clients see nothing new).
        let plain = RequestMsg::from(&RequestView {
            scripts: vec![],
            ..view
        });
        assert!(
            !ServerMsg::Request(Box::new(plain))
                .to_json()
                .contains("scripts")
        );
    }

    #[test]
    fn a_plain_line_from_the_wire_is_marked_again() {
        let l: ShownLine = serde_json::from_str("\"rm \\u001b[2K x\"").unwrap();
        assert_eq!(l.form().one_line(), "rm ⟨ESC⟩[2K x");
        assert_eq!(lines_of("a\n\nb\n").len(), 3);
        assert!(lines_of("").is_empty());
    }
}
