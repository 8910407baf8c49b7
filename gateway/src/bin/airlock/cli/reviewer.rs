//! `airlock reviewer add|list|remove`: reviewer tokens (only a hash is stored).

use airlock_approvals::ledger::Event;
use airlock_approvals::{now_ms, rfc3339};
use airlock_gateway::config::Config;
use anyhow::Result;

use super::operator::{audit, operator, store};
use crate::ReviewerCmd;

pub async fn run(config: Config, cmd: ReviewerCmd) -> Result<()> {
    let s = store(&config).await?;
    match cmd {
        ReviewerCmd::Add { name } => {
            let token = s.add_reviewer(&name, now_ms()).await?;
            let by = operator();
            audit(
                &s,
                Event::ReviewerAdd {
                    reviewer: name.clone(),
                    by,
                },
            )
            .await?;
            eprintln!("reviewer {name} created; this token is shown once, store it now:");
            println!("{token}");
        }
        ReviewerCmd::List => {
            for (name, at) in s.list_reviewers().await? {
                println!("{name}\tcreated {}", rfc3339(at));
            }
        }
        ReviewerCmd::Remove { name } => {
            // A signed-in (single sign-on) user has sessions but maybe no token: removing
            // ends both, and is an error only when there was neither.
            let sessions = s.end_sessions_of(&name).await?;
            match s.remove_reviewer(&name).await {
                Ok(()) => {}
                Err(airlock_approvals::StoreError::NoReviewer(_)) if sessions > 0 => {}
                Err(e) => return Err(e.into()),
            }
            let by = operator();
            audit(
                &s,
                Event::ReviewerRemove {
                    reviewer: name.clone(),
                    by,
                },
            )
            .await?;
            eprintln!(
                "reviewer {name} removed; its token and {sessions} sign-on session(s) no longer work, even on open connections (closed within 5 s); a signed-in user can sign in again unless the identity provider or the groups mapping stops them"
            );
        }
    }
    Ok(())
}
