//! Webhooks: tell people a request is waiting, and that one was denied because nobody
//! answered in time ("deny and alert").
//!
//! Notifications never sit on the decision path: the broker's events are read by a task of
//! their own, each delivery runs in its own task with bounded retries and backoff, and a
//! webhook that is down only costs log lines. A gateway notifies only for requests whose
//! agent it holds, so a cluster sends each alert once.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::{Semaphore, broadcast};

use airlock_classifier::visible::{Shown, thousands};

use crate::model::{Outcome, RequestView};
use crate::{Broker, BrokerEvent, rfc3339};

/// Body shape a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"text": "…"}`: Slack incoming webhooks, Mattermost, Rocket.Chat, Teams workflows.
    Slack,
    /// `{"event": …, "text": …, "request": {…}}` for programs.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A request is waiting for reviewers.
    Pending,
    /// A request was denied because nobody decided in time.
    Timeout,
}

impl Event {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Event::Pending),
            "timeout" => Some(Event::Timeout),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    pub format: Format,
    pub events: Vec<Event>,
    /// Attempts per notification, the first included.
    pub attempts: u32,
    pub timeout: Duration,
}

/// First retry delay; doubled each time.
const BACKOFF: Duration = Duration::from_millis(500);
/// Deliveries in flight at once, across all webhooks.
const IN_FLIGHT: usize = 32;

/// Characters of the command a notification carries before it says what it leaves out.
const COMMAND_CHARS: usize = 300;
/// The same for the agent's stated reason.
const REASON_CHARS: usize = 200;

/// Most files a notification names (the page shows every one).
const SCRIPTS_NAMED: usize = 4;
/// Characters of a script's path or riskiest line a notification carries.
const SCRIPT_LINE_CHARS: usize = 200;

/// Agent text as a notification shows it: the display form on one line (controls, bidi and
/// invisible characters as visible marks), never cut without saying how much is left out, in
/// a code block so chat markup (`*bold*`, `_italic_`, `~strike~`) does not apply; a backtick
/// (which could close the block) is shown as a mark.
fn shown(form: &Shown, max: usize) -> String {
    let (line, more) = form.one_line_within(max);
    let line = line.replace('`', "⟨U+0060⟩");
    if more == 0 {
        format!("```{line}```")
    } else {
        format!("```{line}…``` (+{} chars, open the page)", thousands(more))
    }
}

/// One line per file the command runs: its path, kind, size, hash, and its riskiest line or
/// why it was not read — `Runs ```x.sh``` (shell, 20 bytes, sha256 ab12cd34ef56…):
/// ```x.sh:1: rm -rf /tmp/d````. The path and the line are the agent's: shown like the command.
fn scripts(r: &RequestView) -> String {
    let mut out = String::new();
    let quote = |t: &str| shown(&Shown::of_line(t), SCRIPT_LINE_CHARS);
    for f in r.scripts.iter().take(SCRIPTS_NAMED) {
        let sha = f
            .sha256
            .as_deref()
            .map(|h| format!(", sha256 {}…", h.chars().take(12).collect::<String>()))
            .unwrap_or_default();
        out.push_str(&format!(
            "\nRuns {} ({}, {} bytes{sha})",
            quote(&f.path),
            f.kind.as_str(),
            thousands(usize::try_from(f.size).unwrap_or(usize::MAX))
        ));
        if let Some(p) = &f.previous {
            let old: String = p.sha256.chars().take(12).collect();
            out.push_str(&format!(", changed since the approved version {old}…"));
        }
        if let Some(problem) = &f.problem {
            out.push_str(&format!(": {}", quote(problem)));
        }
        if let Some(line) = f.riskiest() {
            out.push_str(&format!(": {}", quote(&line)));
        }
    }
    if r.scripts.len() > SCRIPTS_NAMED {
        out.push_str(&format!(
            "\n… and {} more files (open the page)",
            r.scripts.len() - SCRIPTS_NAMED
        ));
    }
    out
}

/// Where the request is on the reviewer page, when `[reviewer] public_url` is set.
pub fn link(public_url: Option<&str>, id: &str) -> Option<String> {
    public_url.map(|u| format!("{u}/#request={id}"))
}

/// The text both formats carry.
pub fn text(event: Event, r: &RequestView, public_url: Option<&str>) -> String {
    let form = Shown::of(&r.command);
    let command = shown(&form, COMMAND_CHARS);
    let flags = form.flags;
    let mut out = match event {
        Event::Pending => format!(
            "Airlock: {} wants to run {command} on {} — {} risk (score {}), needs {}, denied at {} if nobody decides (request {})",
            r.agent,
            r.target,
            r.tier,
            r.score,
            if r.needs.is_anyone() {
                format!(
                    "{} approval{}",
                    r.quorum,
                    if r.quorum == 1 { "" } else { "s" }
                )
            } else {
                match &r.needs.rule {
                    Some(rule) => format!("{} by rule {rule}", r.needs.describe()),
                    None => r.needs.describe(),
                }
            },
            rfc3339(r.expires_at),
            r.id
        ),
        Event::Timeout => format!(
            "Airlock: DENIED by timeout — nobody decided on {command} by {} on {} ({} risk, request {})",
            r.agent, r.target, r.tier, r.id
        ),
    };
    for f in &flags {
        out.push_str(&format!("\n⚠ {}", f.text));
    }
    out.push_str(&scripts(r));
    if !r.labels.is_empty() {
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("\nTarget labels: {}", labels.join(", ")));
    }
    if let Some(reason) = &r.reason {
        let form = Shown::of_line(reason);
        for f in &form.flags {
            out.push_str(&format!("\n⚠ stated reason: {}", f.text));
        }
        out.push_str(&format!("\nAgent says: {}", shown(&form, REASON_CHARS)));
    }
    if let Some(url) = link(public_url, &r.id) {
        out.push_str(&format!("\nReview: {url}"));
    }
    out
}

/// Slack-style markup treats `<…>` as links and mentions (`<!channel>`) and `&` as an entity:
/// an agent's command must not be able to ping a channel or forge a link.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn body(
    hook: &Webhook,
    event: Event,
    r: &RequestView,
    public_url: Option<&str>,
) -> serde_json::Value {
    let text = text(event, r, public_url);
    match hook.format {
        Format::Slack => json!({ "text": slack_escape(&text) }),
        // The request is the stored one (exact bytes, for programs); `shown` is how a human
        // must see its command; `text` is escaped like Slack's, as it is often forwarded to chat.
        Format::Json => json!({
            "event": match event { Event::Pending => "request.pending", Event::Timeout => "request.timeout" },
            "text": slack_escape(&text),
            "request": r,
            "shown": { "command": Shown::of(&r.command), "reason": r.reason.as_deref().map(Shown::of_line) },
            "url": link(public_url, &r.id),
        }),
    }
}

/// Send one notification, retrying transient failures; returns whether it was delivered.
pub async fn deliver(
    client: &reqwest::Client,
    hook: &Webhook,
    event: Event,
    r: &RequestView,
    public_url: Option<&str>,
) -> bool {
    let payload = body(hook, event, r, public_url).to_string();
    let mut delay = BACKOFF;
    for attempt in 1..=hook.attempts.max(1) {
        let sent = client
            .post(&hook.url)
            .timeout(hook.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.clone())
            .send()
            .await;
        let retry = match sent {
            Ok(resp) if resp.status().is_success() => return true,
            Ok(resp) => {
                let s = resp.status();
                tracing::warn!(webhook = %hook.name, status = s.as_u16(), attempt, "webhook refused the notification");
                s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 408
            }
            Err(e) => {
                tracing::warn!(webhook = %hook.name, error = %e, attempt, "webhook unreachable");
                true
            }
        };
        if !retry || attempt == hook.attempts {
            break;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
    tracing::error!(webhook = %hook.name, request = %r.id, "notification not delivered");
    false
}

/// Start notifying `hooks` of `broker`'s requests. Subscribes before it returns, so no
/// request made after this call can be missed while the task starts.
/// `public_url` is the reviewer page's address, for links to each request.
pub fn spawn(
    broker: Broker,
    hooks: Vec<Webhook>,
    public_url: Option<String>,
) -> tokio::task::JoinHandle<()> {
    let events = broker.subscribe();
    tokio::spawn(run(broker, hooks, public_url, events))
}

async fn run(
    broker: Broker,
    hooks: Vec<Webhook>,
    public_url: Option<String>,
    mut events: broadcast::Receiver<BrokerEvent>,
) {
    if hooks.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; notifications are off");
            return;
        }
    };
    let hooks = Arc::new(hooks);
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let (event, request) = match events.recv().await {
            Ok(BrokerEvent::Requested(r)) => (Event::Pending, (*r).clone()),
            // Expired: nobody decided in time (or the holding node died) — denied, so alert.
            Ok(BrokerEvent::Resolved {
                id,
                outcome: Outcome::Expired,
                ..
            }) => match broker.store().get_request(&id).await {
                Ok(Some(r)) => (Event::Timeout, r),
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(request = %id, error = %e, "cannot read an expired request for its alert");
                    continue;
                }
            },
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "notifier fell behind; some notifications were skipped"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        // Peers announce their requests too; the node holding the agent notifies.
        if request.node != broker.node() {
            continue;
        }
        for hook in hooks.iter().filter(|h| h.events.contains(&event)) {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::error!(webhook = %hook.name, "too many notifications in flight; dropped one");
                continue;
            };
            let (client, hook, request) = (client.clone(), hook.clone(), request.clone());
            let url = public_url.clone();
            tokio::spawn(async move {
                deliver(&client, &hook, event, &request, url.as_deref()).await;
                drop(permit);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: &str) -> RequestView {
        RequestView {
            scripts: Vec::new(),
            id: "r1".into(),
            session_id: "s".into(),
            agent: "bot".into(),
            target: "prod".into(),
            command: command.into(),
            tier: airlock_classifier::Tier::High,
            score: 90,
            reasons: vec![],
            quorum: 2,
            needs: Default::default(),
            status: crate::model::RequestStatus::Pending,
            created_at: 0,
            expires_at: 0,
            node: "n".into(),
            reason: Some("rotate logs\x1b[2K, OPS-42".into()),
            labels: [("env".to_owned(), "prod".to_owned())].into(),
            kind: Default::default(),
            votes: vec![],
        }
    }

    #[test]
    fn long_commands_say_what_is_left_out_and_controls_are_marked() {
        let cmd = format!(
            "ls /tmp/x{}; echo {}; rm -rf /tmp/x/v\x1b[1A",
            " ".repeat(300),
            "a".repeat(400)
        );
        let t = text(
            Event::Pending,
            &request(&cmd),
            Some("https://airlock.example"),
        );
        assert!(t.contains("```ls /tmp/x⟨300 spaces⟩; echo aaa"), "{t}");
        assert!(t.contains("…``` (+"), "an elision marker: {t}");
        assert!(t.contains("chars, open the page)"), "{t}");
        assert!(!t.contains('\x1b'), "no raw ESC: {t}");
        assert!(
            t.contains("Agent says: ```rotate logs⟨ESC⟩[2K, OPS-42```"),
            "{t}"
        );
        assert!(t.contains("Target labels: env=prod"), "{t}");
        assert!(
            t.contains("Review: https://airlock.example/#request=r1"),
            "{t}"
        );
        assert!(t.contains("a run of 300 spaces"), "{t}");
        let short = text(Event::Pending, &request("echo hi \u{202E}; rm x"), None);
        assert!(short.contains("```echo hi ⟨U+202E⟩; rm x```"), "{short}");
        // Chat markup cannot start inside the command or the reason.
        let mut r = request("echo `*APPROVED*` ~x~ _y_");
        r.reason = Some("*ok*\n<!here>".into());
        let t = slack_escape(&text(Event::Pending, &r, None));
        assert!(
            t.contains("```echo ⟨U+0060⟩*APPROVED*⟨U+0060⟩ ~x~ _y_```"),
            "{t}"
        );
        assert!(t.contains("```*ok*⟨LF⟩&lt;!here&gt;```"), "{t}");
        assert!(!short.contains('\u{202E}') && !short.contains("open the page"));
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        assert_eq!(
            slack_escape("echo <!channel> && cat <http://x|y> > f"),
            "echo &lt;!channel&gt; &amp;&amp; cat &lt;http://x|y&gt; &gt; f"
        );
    }

    #[test]
    fn the_text_names_each_script_and_its_riskiest_line() {
        use crate::scripts::{Previous, RiskyLine, ScriptFile, ScriptKind};
        let mut r = request("bash x.sh");
        let risky = |line, tier| RiskyLine {
            line,
            tier,
            rule: "fs.rm-recursive".into(),
            text: "rm: deletes recursively".into(),
        };
        r.scripts = vec![
            ScriptFile {
                unbound: None,
                path: "x.sh".into(),
                resolved: "/tmp/x.sh".into(),
                kind: ScriptKind::Shell,
                size: 2714,
                sha256: Some("abcd1234ef567890".repeat(4)),
                content: Some("echo hi\nrm -rf /tmp/d `*x*` \u{1b}[2K\n".into()),
                problem: None,
                lines: vec![
                    risky(2, airlock_classifier::Tier::High),
                    risky(1, airlock_classifier::Tier::Low),
                ],
                previous: Some(Previous {
                    sha256: "0123456789ab".repeat(5),
                    diff: String::new(),
                }),
            },
            ScriptFile {
                unbound: None,
                path: "big.sh".into(),
                resolved: "/tmp/big.sh".into(),
                kind: ScriptKind::Unread,
                size: 0,
                sha256: None,
                content: None,
                problem: Some("larger than 256 KiB".into()),
                lines: vec![],
                previous: None,
            },
        ];
        let t = text(Event::Pending, &r, None);
        assert!(
            t.contains(
                "\nRuns ```x.sh``` (shell, 2,714 bytes, sha256 abcd1234ef56…), changed since the \
                 approved version 0123456789ab…: ```x.sh:2: rm -rf /tmp/d ⟨U+0060⟩*x*⟨U+0060⟩ ⟨ESC⟩[2K```"
            ),
            "{t}"
        );
        assert!(
            t.contains("\nRuns ```big.sh``` (unread, 0 bytes): ```larger than 256 KiB```"),
            "{t}"
        );
        assert!(!t.contains('\x1b'), "{t}");
        let timeout = text(Event::Timeout, &r, None);
        assert!(timeout.contains("x.sh:2: rm -rf /tmp/d"), "{timeout}");
        r.scripts = vec![r.scripts[1].clone(); 6];
        let many = text(Event::Pending, &r, None);
        assert_eq!(many.matches("\nRuns ```big.sh```").count(), 4, "{many}");
        assert!(
            many.contains("\n… and 2 more files (open the page)\nTarget labels"),
            "{many}"
        );
    }
}
