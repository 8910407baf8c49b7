//! `request-access TARGET DURATION REASON…` on the control target: an agent asks reviewers
//! for a time-boxed grant on a target marked `requires_grant = true`.
//!
//! Checks before anyone is asked (each refusal is `airlock: denied: …`, exit status 77): the
//! target exists and the agent may use it, DURATION parses and is within `[grants]
//! max_duration`, REASON is given (at most 500 characters). A target that needs no grant is
//! told so (exit status 1). Then it is one request like a command's, through the one
//! [`conversation`]: the same waiting line, the same reviewers pushed it, the same approval
//! timeout, ctrl-c or a disconnect withdraws it. The broker makes the grant (store and
//! ledger) before the approval is delivered; this module only reads it back and answers
//! `airlock: access to prod granted until … (grant ID, by alice)`, or JSON with `--json`.
//!
//! The channel has a session record of its own (on the control target), so the exchange is
//! recorded and in the ledger like any other session.

use std::time::Duration;

use airlock_approvals::{SessionKind, SessionOutcome, rfc3339};
use airlock_classifier::visible::Shown;
use airlock_recorder::task::Stream;
use russh::{ChannelMsg, ChannelReadHalf, Sig};
use serde_json::json;

use super::conversation::{self, Answer, Gone, Interrupt, Waiting};
use super::{DENIED_EXIT, SessionCtx, Tx, end_with, line};
use crate::deny::Deny;
use crate::gate;
use crate::record::Witness;

/// The verb.
pub const VERB: &str = "request-access";

const USAGE: &str = "usage: ssh airlock@GATEWAY 'request-access [--json] TARGET DURATION REASON…' (e.g. request-access prod 1h \"deploy fix, OPS-42\")";

/// Exit status when the target needs no grant (nothing was asked).
const NOT_NEEDED_EXIT: u32 = 1;

/// What the agent asked for, parsed.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    json: bool,
    target: String,
    duration: Duration,
    reason: String,
}

/// `[--json] TARGET DURATION REASON…` (the text after the verb). The reason is the rest of
/// the line as sent, one pair of surrounding quotes removed (`ssh gw 'request-access prod 1h
/// "why"'` keeps them). `Err` is a usage message.
fn parse(args: &str) -> Result<Asked, String> {
    let mut rest = args.trim_start();
    let mut json = false;
    let next = |rest: &mut &str| -> Option<String> {
        let s = rest.trim_start();
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        let (word, tail) = s.split_at(end);
        *rest = tail;
        (!word.is_empty()).then(|| word.to_owned())
    };
    let target = loop {
        match next(&mut rest) {
            Some(w) if w == "--json" => json = true,
            Some(w) => break w,
            None => return Err("request-access needs TARGET DURATION REASON".into()),
        }
    };
    let Some(duration) = next(&mut rest) else {
        return Err("request-access needs a DURATION (e.g. 1h, 30m) and a REASON".into());
    };
    let duration = humantime::parse_duration(&duration)
        .map_err(|_| format!("{duration:?} is not a duration (use e.g. 30m, 1h, 2h30m)"))?;
    let mut reason = rest.trim();
    for q in ['"', '\''] {
        if reason.len() >= 2 && reason.starts_with(q) && reason.ends_with(q) {
            reason = reason[1..reason.len() - 1].trim();
            break;
        }
    }
    Ok(Asked {
        json,
        target,
        duration,
        reason: reason.to_owned(),
    })
}

/// A reason reviewers read as sent: one line, nothing invisible or controlling.
fn visible_line(reason: &str) -> bool {
    !reason.contains('\n') && Shown::of(reason).is_plain()
}

/// The front-end's side of the wait: the channel's read half and the session record.
struct Access {
    ctx: SessionCtx,
    witness: Witness,
    rx: ChannelReadHalf,
    tx: Tx,
    pty: bool,
}

/// Answer `request-access` (`args` is what follows the verb) on `tx`, and end the channel.
pub async fn run(ctx: SessionCtx, rx: ChannelReadHalf, tx: Tx, pty: bool, args: &str) {
    let asked = match parse(args) {
        Ok(a) => a,
        Err(why) => return end_with(&tx, pty, &format!("airlock: {why}\n{USAGE}"), 2).await,
    };
    let shared = ctx.shared.clone();
    if let Some(deny) = shared.gate.refusal() {
        return super::refuse(&tx, pty, &deny).await;
    }
    let target = match shared.gate.admit(&ctx.agent, &asked.target) {
        Ok(t) => t,
        Err(deny) => return super::refuse(&tx, pty, &deny).await,
    };
    if !target.requires_grant {
        let why = format!(
            "airlock: {} does not need an access grant: run commands on it directly",
            target.name
        );
        if asked.json {
            let out =
                json!({ "target": target.name, "granted": false, "needed": false, "why": why });
            let _ = tx.data(format!("{out}\n").as_bytes()).await;
        }
        return end_with(&tx, pty, &why, NOT_NEEDED_EXIT).await;
    }
    let max = shared.gate.grant_max_duration();
    if let Err(e) = airlock_approvals::grants::check_duration(asked.duration, max) {
        return super::refuse(&tx, pty, &Deny::AccessRefused(e.to_string())).await;
    }
    let reason = match gate::stated_reason(&asked.reason) {
        Ok(Some(r)) if !visible_line(&r) => {
            let deny = Deny::AccessRefused(format!(
                "the reason must be one line of visible text (it reads {:?})",
                Shown::of(&r).one_line()
            ));
            return super::refuse(&tx, pty, &deny).await;
        }
        Ok(Some(r)) => r,
        Ok(None) => {
            let deny = Deny::AccessRefused(
                "an access request needs a REASON reviewers can read (e.g. \"deploy fix, OPS-42\")"
                    .into(),
            );
            return super::refuse(&tx, pty, &deny).await;
        }
        Err(deny) => return super::refuse(&tx, pty, &deny).await,
    };
    let human = airlock_approvals::grants::humanize(asked.duration);
    let command = format!("{VERB} {} {human}", target.name);
    let opened = shared
        .records
        .open(&ctx.who(), SessionKind::Exec, Some(&command), None)
        .await;
    let witness = match opened {
        Ok(w) => w,
        Err(deny) => return super::refuse(&tx, pty, &deny).await,
    };
    let mut front = Access {
        ctx,
        witness,
        rx,
        tx,
        pty,
    };
    let requirement = shared.gate.access_requirement(&front.ctx.agent, &target);
    let answer = conversation::ask_access(
        &mut front,
        &command,
        &target,
        asked.duration,
        &reason,
        requirement,
    )
    .await;
    let outcome = match answer {
        Answer::Approved { request } => front.granted(&request, &target.name, asked.json).await,
        Answer::Denied(deny) => front.deny(deny, asked.json, &target.name).await,
        Answer::Withdrawn | Answer::Gone => {
            let _ = front.tx.exit_status(DENIED_EXIT).await;
            let _ = front.tx.eof().await;
            let _ = front.tx.close().await;
            SessionOutcome::Withdrawn
        }
    };
    front.witness.close(outcome, None).await;
}

impl Access {
    /// Tell the agent something on stderr, recorded first.
    async fn say(&self, text: &str) -> Result<(), Gone> {
        let bytes = line(self.pty, text);
        let _ = self.witness.output(Stream::Stderr, &bytes).await;
        self.tx
            .extended_data_bytes(1, bytes)
            .await
            .map_err(|_| Gone)
    }

    /// Denied: record it, the line on stderr (and JSON on stdout when asked), exit 77.
    async fn deny(&self, deny: Deny, json: bool, target: &str) -> SessionOutcome {
        tracing::info!(reason = %deny, code = deny.code(), "access request denied");
        self.witness.denied(&deny).await;
        let message = deny.line();
        if json {
            let out =
                json!({ "target": target, "granted": false, "code": deny.code(), "why": message });
            let _ = self.tx.data(format!("{out}\n").as_bytes()).await;
        }
        let _ = self
            .witness
            .output(Stream::Stderr, &line(self.pty, &message))
            .await;
        end_with(&self.tx, self.pty, &message, DENIED_EXIT).await;
        SessionOutcome::Denied
    }

    /// Approved: the grant the broker made for `request` is read back and shown. Without one
    /// (it could not be read), the agent is told it was denied.
    async fn granted(&self, request: &str, target: &str, json: bool) -> SessionOutcome {
        let grant = match self.ctx.shared.broker.grant_for_request(request).await {
            Ok(Some(g)) => g,
            Ok(None) => {
                let deny = Deny::AccessRefused(format!(
                    "request {request} was approved, but no grant was stored for it"
                ));
                return self.deny(deny, json, target).await;
            }
            Err(e) => {
                tracing::error!(request, error = %e, "cannot read the grant back");
                let deny = Deny::GrantsUnavailable(e.to_string());
                return self.deny(deny, json, target).await;
            }
        };
        let until = rfc3339(grant.expires_at);
        let text = format!(
            "airlock: access to {target} granted until {until} (grant {}, by {})",
            grant.id, grant.created_by
        );
        self.witness.mark(&text).await;
        let out = if json {
            let v = json!({
                "target": target,
                "granted": true,
                "request_id": request,
                "grant": {
                    "id": grant.id,
                    "expires_at": until,
                    "expires_at_ms": grant.expires_at,
                    "by": grant.created_by,
                },
            });
            format!("{v}\n").into_bytes()
        } else {
            line(self.pty, &text)
        };
        let _ = self.witness.output(Stream::Stdout, &out).await;
        let _ = self.tx.data(out.as_slice()).await;
        let _ = self.tx.exit_status(0).await;
        let _ = self.tx.eof().await;
        let _ = self.tx.close().await;
        SessionOutcome::Ran
    }
}

impl Waiting for Access {
    type Ev = Option<ChannelMsg>;

    async fn next(&mut self) -> Option<ChannelMsg> {
        self.rx.wait().await
    }

    async fn handle(&mut self, ev: Option<ChannelMsg>) -> Option<Interrupt> {
        match ev {
            // On a terminal, ctrl-c withdraws the request (without one, the agent's ssh
            // ending is what withdraws it).
            Some(ChannelMsg::Data { data }) if self.pty && data.contains(&0x03) => {
                Some(Interrupt::Withdraw)
            }
            Some(ChannelMsg::Signal { signal: Sig::INT }) => Some(Interrupt::Withdraw),
            None | Some(ChannelMsg::Close) => Some(Interrupt::Gone),
            Some(_) => None,
        }
    }

    async fn tell(&mut self, line: &str) -> Result<(), Gone> {
        self.say(line).await
    }

    async fn countdown(&mut self, _text: &str) -> Result<(), Gone> {
        Ok(())
    }

    fn witness(&self) -> &Witness {
        &self.witness
    }

    fn ctx(&self) -> &SessionCtx {
        &self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_are_target_duration_and_the_rest_as_reason() {
        let a = parse("prod 1h deploy the fix,  OPS-42").unwrap();
        assert_eq!(
            a,
            Asked {
                json: false,
                target: "prod".into(),
                duration: Duration::from_secs(3600),
                reason: "deploy the fix,  OPS-42".into(),
            }
        );
        let a = parse("--json prod 90m \"why -- not\"").unwrap();
        assert!(a.json);
        assert_eq!(a.duration, Duration::from_secs(5400));
        assert_eq!(a.reason, "why -- not");
        assert_eq!(parse("prod 1h").unwrap().reason, "");
        assert!(parse("").is_err());
        assert!(parse("prod").is_err());
        assert!(
            parse("prod soon why")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
