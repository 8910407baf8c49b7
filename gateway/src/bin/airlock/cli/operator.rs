//! What every operator command shares: who the operator is, the database, and writing an
//! operator change to the audit ledger.

use airlock_approvals::Store;
use airlock_approvals::ledger::Event;
use airlock_gateway::config::Config;
use anyhow::{Context as _, Result};

/// Who ran an operator command, for the ledger.
pub fn operator() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    )
}

/// Put an operator change in the audit ledger; the change is done, so a failure is an error
/// the operator must see.
pub async fn audit(s: &Store, event: Event) -> Result<()> {
    let kind = event.kind();
    super::ledger::operator_ledger(s)
        .append(&event)
        .await
        .map(|_| ())
        .with_context(|| format!("the change is made, but it is not in the audit ledger ({kind})"))
}

/// The config's database (creating the data directory for SQLite).
pub async fn store(config: &Config) -> Result<Store> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    Store::connect(&config.database_url)
        .await
        .with_context(|| format!("opening {}", config.database_url))
}
