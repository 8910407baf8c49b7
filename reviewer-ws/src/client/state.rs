//! What `airlock review` knows and how keys and server messages change it — pure, so the
//! rules that keep a tired reviewer from approving the wrong thing are unit-tested here:
//!
//! - the selection is a request id and only the reviewer moves it: a new request is never
//!   selected by itself, and a decided one leaves nothing selected (a second A does nothing);
//! - a request can be approved only after its whole detail (command, reason, every
//!   classifier reason) has been on screen;
//! - a high request is approved only by typing its target's name; R is not offered for high;
//! - D asks for a reason the agent will read (Enter alone sends none);
//! - a request this reviewer's vote cannot count on (they own its agent, or it needs groups
//!   they are not in) says so, and A/D/R send nothing for it: the gateway would refuse them.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use airlock_approvals::{Progress, Remember, VoteDecision};
use airlock_classifier::Tier;
use airlock_classifier::visible::thousands;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::protocol::{ClientMsg, RequestMsg, ServerMsg};

pub(crate) const TTLS: [&str; 4] = ["1h", "1d", "7d", "never"];

/// Error codes that refuse a vote because of who the reviewer is (docs/reviewer-protocol.md):
/// the request is then marked as one our vote does not count on.
const REFUSALS: [&str; 3] = ["out_of_scope", "agent_owner", "not_required"];

/// Longest comment a reviewer can type (the gateway's limit).
const MAX_COMMENT: usize = airlock_approvals::model::MAX_COMMENT_CHARS;

/// The approve-and-remember dialog.
pub(crate) struct RememberDialog {
    pub id: String,
    pub any_agent: bool,
    pub any_target: bool,
    pub ttl: usize,
}

/// A dialog that has the keys until Enter or Esc.
pub(crate) enum Dialog {
    Remember(RememberDialog),
    /// Deny, with a reason for the agent (may stay empty).
    Deny {
        id: String,
        text: String,
    },
    /// Approve a high request: type its target's name; a note is optional.
    ConfirmHigh {
        id: String,
        typed: String,
        note: String,
        on_note: bool,
        error: Option<String>,
    },
}

impl Dialog {
    fn id(&self) -> &str {
        match self {
            Dialog::Remember(d) => &d.id,
            Dialog::Deny { id, .. } | Dialog::ConfirmHigh { id, .. } => id,
        }
    }
}

pub(crate) enum Link {
    Up,
    /// Waiting to reconnect at this instant (attempt number).
    Down {
        retry_at: std::time::Instant,
        attempt: u32,
        why: String,
    },
}

/// What the last frame showed of the selected request's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DetailShown {
    pub id: String,
    /// Lines the whole detail takes at the pane's width.
    pub total: usize,
    /// Lines the pane shows.
    pub height: usize,
    /// Lines before the footer: what must have been on screen before approval.
    pub content: usize,
}

pub(crate) struct State {
    pub me: String,
    /// The reviewer groups the gateway put us in (its hello), for the header and for knowing
    /// which requests our vote counts on.
    pub groups: Vec<String>,
    /// Requests the gateway refused our vote on, with its words: they outrank our own guess
    /// (the gateway also knows each group's scope).
    pub refused: HashMap<String, String>,
    pub queue: Vec<RequestMsg>,
    /// The selected request's id; only the reviewer's keys set it.
    pub selected: Option<String>,
    /// First detail line shown.
    pub scroll: usize,
    /// Lines of the detail below the pane in the last frame.
    pub unseen_lines: usize,
    /// Detail pane height in the last frame (a page for Space/PgDn).
    pub page: usize,
    /// Requests whose whole detail has been on screen.
    pub seen_whole: HashSet<String>,
    pub status: String,
    pub link: Link,
    pub screen: Option<(String, String)>,
    pub dialog: Option<Dialog>,
}

/// What a key asks the connection loop to do.
pub(crate) enum Action {
    None,
    Quit,
    Send(ClientMsg),
}

/// `"touch /tmp/x"`, or the first part of a long command and how much is left out.
pub(crate) fn excerpt(r: &RequestMsg, max: usize) -> String {
    let (text, more) = r.shown.command.one_line_within(max);
    if more == 0 {
        format!("\"{text}\"")
    } else {
        format!("\"{text}…\" (+{} chars)", thousands(more))
    }
}

fn decide(id: &str, decision: VoteDecision, comment: &str) -> Action {
    let comment = comment.trim();
    Action::Send(ClientMsg::Decide {
        id: id.to_owned(),
        decision,
        comment: (!comment.is_empty()).then(|| comment.to_owned()),
        remember: None,
    })
}

/// Typing into a one-line field: printable characters only, bounded.
fn edit(field: &mut String, key: KeyEvent) {
    match key.code {
        KeyCode::Backspace => {
            field.pop();
        }
        KeyCode::Char(c) if !c.is_control() && field.chars().count() < MAX_COMMENT => {
            field.push(c);
        }
        _ => {}
    }
}

impl State {
    pub fn new() -> Self {
        Self {
            me: String::new(),
            groups: Vec::new(),
            refused: HashMap::new(),
            queue: Vec::new(),
            selected: None,
            scroll: 0,
            unseen_lines: 0,
            page: 10,
            seen_whole: HashSet::new(),
            status: "connected".into(),
            link: Link::Up,
            screen: None,
            dialog: None,
        }
    }

    pub fn current(&self) -> Option<&RequestMsg> {
        let id = self.selected.as_deref()?;
        self.queue.iter().find(|r| r.id == id)
    }

    fn find(&self, id: &str) -> Option<&RequestMsg> {
        self.queue.iter().find(|r| r.id == id)
    }

    fn select(&mut self, index: usize) {
        let id = self.queue.get(index).map(|r| r.id.clone());
        if id != self.selected {
            self.scroll = 0;
        }
        self.selected = id;
    }

    /// Record what the frame showed: clamp the scroll, and remember a request whose detail
    /// has now been on screen to its last line.
    pub fn after_draw(&mut self, shown: Option<DetailShown>) {
        let Some(d) = shown else {
            self.unseen_lines = 0;
            return;
        };
        self.page = d.height.max(1);
        let last_start = d.total.saturating_sub(d.height);
        self.scroll = self.scroll.min(last_start);
        self.unseen_lines = d.content.saturating_sub(self.scroll + d.height);
        if self.unseen_lines == 0 {
            self.seen_whole.insert(d.id);
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Action::Quit;
        }
        if self.dialog.is_some() {
            return self.dialog_key(key);
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char('j') | KeyCode::Down => {
                let next = match self.position() {
                    Some(i) => (i + 1).min(self.queue.len().saturating_sub(1)),
                    None => 0,
                };
                self.select(next);
            }
            KeyCode::Char('k') | KeyCode::Up => {
                let prev = self.position().map_or(0, |i| i.saturating_sub(1));
                self.select(prev);
            }
            KeyCode::Char(' ') | KeyCode::PageDown => self.scroll += self.page.max(1),
            KeyCode::Char('b') | KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_sub(self.page.max(1));
            }
            KeyCode::End => self.scroll = usize::MAX / 2,
            KeyCode::Home => self.scroll = 0,
            KeyCode::Char('a' | 'A' | 'd' | 'D' | 'r' | 'R') if self.vote_refused_here() => {}
            KeyCode::Char('a' | 'A') => return self.approve(),
            KeyCode::Char('d' | 'D') => {
                if let Some(id) = self.current().map(|r| r.id.clone()) {
                    self.dialog = Some(Dialog::Deny {
                        id,
                        text: String::new(),
                    });
                } else {
                    self.status = "select a request first (j/k)".into();
                }
            }
            KeyCode::Char('r' | 'R') => self.remember(),
            _ => {}
        }
        Action::None
    }

    fn position(&self) -> Option<usize> {
        let id = self.selected.as_deref()?;
        self.queue.iter().position(|r| r.id == id)
    }

    /// Why our vote cannot count on `r`, if it cannot: the gateway refused it, we own its
    /// agent (`excluded`), or every need names a group we are not in. Only spares a key press
    /// the gateway would refuse; the gateway decides.
    pub fn not_counted(&self, r: &RequestMsg) -> Option<String> {
        if let Some(why) = self.refused.get(&r.id) {
            return Some(why.clone());
        }
        if !self.me.is_empty() && r.excluded.contains(&self.me) {
            return Some(format!(
                "you own agent {}: your vote does not count on its requests",
                r.agent
            ));
        }
        let required: Vec<&str> = r
            .progress
            .entries
            .iter()
            .map(|e| e.label.as_str())
            .collect();
        // `any` is reserved for a need anyone may fill; no entries: a gateway before groups.
        if required.is_empty()
            || required.contains(&"any")
            || self.groups.iter().any(|g| required.contains(&g.as_str()))
        {
            return None;
        }
        let needs = if r.needs.is_empty() {
            required.join(", ")
        } else {
            r.needs.clone()
        };
        Some(format!("it needs {needs}; you are in none of those groups"))
    }

    /// Our vote cannot count on the selected request: say why and send nothing.
    fn vote_refused_here(&mut self) -> bool {
        let Some(why) = self.current().and_then(|r| self.not_counted(r)) else {
            return false;
        };
        self.status = format!("your vote does not count here, nothing was sent: {why}");
        true
    }

    /// Why the selected request cannot be approved yet, if it cannot.
    fn not_approvable(&self, r: &RequestMsg) -> Option<String> {
        (!self.seen_whole.contains(&r.id)).then(|| {
            format!(
                "scroll to the end first (Space/PgDn): {} more lines of this request are not shown yet",
                self.unseen_lines.max(1)
            )
        })
    }

    fn approve(&mut self) -> Action {
        let Some(r) = self.current() else {
            self.status = "select a request first (j/k)".into();
            return Action::None;
        };
        if let Some(why) = self.not_approvable(r) {
            self.status = why;
            return Action::None;
        }
        if r.tier == Tier::High {
            self.dialog = Some(Dialog::ConfirmHigh {
                id: r.id.clone(),
                typed: String::new(),
                note: String::new(),
                on_note: false,
                error: None,
            });
            return Action::None;
        }
        let (status, action) = (
            format!("sent approve for {}", excerpt(r, 40)),
            decide(&r.id, VoteDecision::Approve, ""),
        );
        self.status = status;
        action
    }

    fn remember(&mut self) {
        let Some(r) = self.current() else {
            self.status = "select a request first (j/k)".into();
            return;
        };
        if r.is_access() {
            self.status = "an access request is not a command: it cannot be remembered".into();
            return;
        }
        if r.tier == Tier::High {
            self.status = "high-risk commands can never be remembered".into();
            return;
        }
        if let Some(why) = self.not_approvable(r) {
            self.status = why;
            return;
        }
        self.dialog = Some(Dialog::Remember(RememberDialog {
            id: r.id.clone(),
            any_agent: false,
            any_target: false,
            ttl: 2,
        }));
    }

    fn dialog_key(&mut self, key: KeyEvent) -> Action {
        if key.code == KeyCode::Esc {
            self.dialog = None;
            self.status = "cancelled; nothing was sent".into();
            return Action::None;
        }
        let target = self
            .dialog
            .as_ref()
            .and_then(|d| self.find(d.id()))
            .map(|r| r.target.clone());
        let Some(dialog) = self.dialog.as_mut() else {
            return Action::None;
        };
        match dialog {
            Dialog::Remember(d) => match key.code {
                KeyCode::Char('g') => d.any_agent = !d.any_agent,
                KeyCode::Char('t') => d.any_target = !d.any_target,
                KeyCode::Char(c @ '1'..='4') => d.ttl = usize::from(c as u8 - b'1'),
                KeyCode::Enter => {
                    let msg = ClientMsg::Decide {
                        id: d.id.clone(),
                        decision: VoteDecision::Approve,
                        comment: None,
                        remember: Some(Remember {
                            any_agent: d.any_agent,
                            any_target: d.any_target,
                            ttl: Some(TTLS[d.ttl].to_owned()),
                        }),
                    };
                    self.dialog = None;
                    self.status = "sent approve + remember".into();
                    return Action::Send(msg);
                }
                _ => {}
            },
            Dialog::Deny { id, text } => match key.code {
                KeyCode::Enter => {
                    let action = decide(id, VoteDecision::Deny, text);
                    self.status = if text.trim().is_empty() {
                        "sent deny (no reason)".into()
                    } else {
                        format!("sent deny: {}", text.trim())
                    };
                    self.dialog = None;
                    return action;
                }
                _ => edit(text, key),
            },
            Dialog::ConfirmHigh {
                id,
                typed,
                note,
                on_note,
                error,
            } => match key.code {
                KeyCode::Tab | KeyCode::BackTab => *on_note = !*on_note,
                KeyCode::Enter => {
                    if target.as_deref() != Some(typed.as_str()) {
                        *error = Some(format!(
                            "{typed:?} is not the target's name; nothing was sent"
                        ));
                        return Action::None;
                    }
                    let action = decide(id, VoteDecision::Approve, note);
                    self.status = "sent approve (high, confirmed)".into();
                    self.dialog = None;
                    return action;
                }
                _ if *on_note => edit(note, key),
                _ => {
                    edit(typed, key);
                    *error = None;
                }
            },
        }
        Action::None
    }

    pub fn apply(&mut self, m: ServerMsg) {
        match m {
            ServerMsg::Hello {
                reviewer, groups, ..
            } => {
                self.me = reviewer;
                self.groups = groups;
            }
            ServerMsg::Snapshot { mut requests } => {
                requests.reverse();
                self.queue = requests;
                self.forget_gone();
            }
            ServerMsg::Request(r) => {
                self.status = format!(
                    "new {} request from {} on {}: j/k selects",
                    r.tier.as_str().to_uppercase(),
                    r.agent,
                    r.target
                );
                // Never selected by itself: a key meant for another card must not land here.
                self.queue.insert(0, *r);
                // The bell: something new to decide, even if this window is not in front.
                let mut out = std::io::stdout();
                let _ = out.write_all(b"\x07");
                let _ = out.flush();
            }
            ServerMsg::Vote {
                id,
                approvals,
                progress,
                progress_text,
                ..
            } => self.progressed(&id, approvals, progress, progress_text),
            ServerMsg::Resolved {
                id,
                outcome,
                by,
                why,
                ..
            } => {
                let what = self.find(&id).map(|r| excerpt(r, 40)).unwrap_or_default();
                let said = if why.is_empty() {
                    format!("{} by {by}", outcome.as_str())
                } else {
                    why
                };
                self.status = format!("{said}: {what}");
                self.queue.retain(|r| r.id != id);
                self.forget_gone();
            }
            ServerMsg::Ack {
                id,
                result,
                approvals,
                approvals_needed,
                progress,
                progress_text,
                whitelisted,
            } => {
                self.progressed(&id, approvals.clone(), progress, progress_text.clone());
                let what = self.find(&id).map(|r| excerpt(r, 40)).unwrap_or_default();
                self.status = match (result.as_str(), whitelisted) {
                    (_, Some(w)) => format!("{what}: {result}, remembered as whitelist entry {w}"),
                    ("counted", None) if !progress_text.is_empty() => {
                        format!("counted, still waiting ({progress_text}): you approved {what}")
                    }
                    ("counted", None) => format!(
                        "{} of {approvals_needed} approvals, waiting for another reviewer: you approved {what}",
                        approvals.len()
                    ),
                    (other, None) => format!("{what}: {other}"),
                }
            }
            ServerMsg::Error { code, message, id } => {
                let what = id
                    .as_deref()
                    .and_then(|id| self.find(id))
                    .map(|r| format!(" ({})", excerpt(r, 30)))
                    .unwrap_or_default();
                if REFUSALS.contains(&code.as_str()) {
                    self.status = format!("your vote was refused{what}: {message}");
                    if let Some(id) = id.filter(|id| self.find(id).is_some()) {
                        self.refused.insert(id, message);
                    }
                } else {
                    self.status = format!("error{what}: {message}");
                }
            }
            ServerMsg::Pong => {}
        }
    }

    /// A vote moved request `id` on: who fills which need now. An empty progress (a gateway
    /// before groups) keeps the old one.
    fn progressed(
        &mut self,
        id: &str,
        approvals: Vec<String>,
        progress: Progress,
        progress_text: String,
    ) {
        if let Some(r) = self.queue.iter_mut().find(|r| r.id == id) {
            r.approvals = approvals;
            if !progress.entries.is_empty() {
                r.progress = progress;
                r.progress_text = progress_text;
            }
        }
    }

    /// Drop the selection and dialog of requests no longer pending; nothing takes their place.
    fn forget_gone(&mut self) {
        if self.current().is_none() && self.selected.take().is_some() {
            self.scroll = 0;
        }
        if let Some(d) = &self.dialog
            && self.find(d.id()).is_none()
        {
            self.dialog = None;
        }
        let live: HashSet<&str> = self.queue.iter().map(|r| r.id.as_str()).collect();
        self.seen_whole.retain(|id| live.contains(id.as_str()));
        self.refused.retain(|id, _| live.contains(id.as_str()));
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
