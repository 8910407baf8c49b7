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

/// The one-line text both formats carry.
pub fn text(event: Event, r: &RequestView) -> String {
    let command: String = r.command.chars().take(300).collect();
    match event {
        Event::Pending => format!(
            "Airlock: {} wants to run `{}` on {} — {} risk (score {}), needs {} approval{}, denied at {} if nobody decides (request {})",
            r.agent,
            command,
            r.target,
            r.tier,
            r.score,
            r.quorum,
            if r.quorum == 1 { "" } else { "s" },
            rfc3339(r.expires_at),
            r.id
        ),
        Event::Timeout => format!(
            "Airlock: DENIED by timeout — nobody decided on `{}` by {} on {} ({} risk, request {})",
            command, r.agent, r.target, r.tier, r.id
        ),
    }
}

/// Slack-style markup treats `<…>` as links and mentions (`<!channel>`) and `&` as an entity:
/// an agent's command must not be able to ping a channel or forge a link.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn body(hook: &Webhook, event: Event, r: &RequestView) -> serde_json::Value {
    let text = text(event, r);
    match hook.format {
        Format::Slack => json!({ "text": slack_escape(&text) }),
        Format::Json => json!({
            "event": match event { Event::Pending => "request.pending", Event::Timeout => "request.timeout" },
            "text": text,
            "request": r,
        }),
    }
}

/// Send one notification, retrying transient failures; returns whether it was delivered.
pub async fn deliver(
    client: &reqwest::Client,
    hook: &Webhook,
    event: Event,
    r: &RequestView,
) -> bool {
    let payload = body(hook, event, r).to_string();
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
pub fn spawn(broker: Broker, hooks: Vec<Webhook>) -> tokio::task::JoinHandle<()> {
    let events = broker.subscribe();
    tokio::spawn(run(broker, hooks, events))
}

async fn run(broker: Broker, hooks: Vec<Webhook>, mut events: broadcast::Receiver<BrokerEvent>) {
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
            tokio::spawn(async move {
                deliver(&client, &hook, event, &request).await;
                drop(permit);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_text_cannot_mention_or_link() {
        assert_eq!(
            slack_escape("echo <!channel> && cat <http://x|y> > f"),
            "echo &lt;!channel&gt; &amp;&amp; cat &lt;http://x|y&gt; &gt; f"
        );
    }
}
