//! The gateway's handle on the audit ledger. What an event contains is
//! [`airlock_approvals::ledger::Event`]'s business; whether it must be written before its
//! action is [`Event::gates_action`]'s. This module only applies that rule: [`Audit::write`]
//! returns [`Deny::AuditUnavailable`] when a gating event cannot be appended (the caller then
//! refuses), and logs a failed after-the-fact event.

use airlock_approvals::Ledger;
use airlock_approvals::ledger::Event;

use crate::deny::Deny;

#[derive(Clone)]
pub struct Audit {
    ledger: Ledger,
}

impl Audit {
    pub fn new(ledger: Ledger) -> Self {
        Self { ledger }
    }

    /// Append `event`. `Err` only for an event that gates its action and was not written.
    pub async fn write(&self, event: Event) -> Result<(), Deny> {
        match self.ledger.append(&event).await {
            Ok(_) => Ok(()),
            Err(e) if event.gates_action() => {
                tracing::error!(error = %e, kind = event.kind(), "cannot append to the audit ledger; refusing");
                Err(Deny::AuditUnavailable)
            }
            Err(e) => {
                tracing::error!(error = %e, kind = event.kind(), "event not in the audit ledger");
                Ok(())
            }
        }
    }

    /// Sign the head now (periodic tick and the last act of a shutdown).
    pub async fn checkpoint(&self) {
        if let Err(e) = self.ledger.checkpoint().await {
            tracing::error!(error = %e, "ledger checkpoint failed");
        }
    }
}
