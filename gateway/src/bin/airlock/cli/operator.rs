//! What every operator command shares: who the operator is, the database, and writing an
//! operator change to the audit ledger.

use airlock_approvals::Store;
use airlock_approvals::ledger::Event;
use airlock_gateway::config::Config;
use anyhow::{Context as _, Result};

/// Who ran an operator command, for the ledger.
///
/// `$USER` lower-cased when it is a plain name (letters, digits, `.`, `_`, `-`; at most 64),
/// else `operator`: the name lands in the ledger and counts as a person for whitelist
/// proposals, so no empty, spaced, escape-carrying or case-twin names.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .ok()
        .map(|u| u.to_ascii_lowercase())
        .filter(|u| airlock_gateway::config::valid_name(u))
        .unwrap_or_else(|| "operator".into());
    format!("cli:{user}")
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

/// The config's database (creating the data directory for SQLite), checked against the
/// ledger head file like the gateway checks it: an operator command never writes into a
/// database that replaced the real one (it would create a fresh file where one was deleted).
pub async fn store(config: &Config) -> Result<Store> {
    // 0700 like the gateway makes it: the CLI often runs first (`reviewer add`).
    airlock_gateway::startup::files::private_data_dir(&config.data_dir)?;
    airlock_gateway::continuity::Continuity::precheck(&config.data_dir, &config.database_url)?;
    let store = Store::connect_within(&config.database_url, config.database_connect_timeout)
        .await
        .with_context(|| {
            format!(
                "opening {}",
                airlock_approvals::store::redact(&config.database_url)
            )
        })?;
    airlock_gateway::continuity::Continuity::open(&store, &config.data_dir, &config.database_url)
        .await?;
    Ok(store)
}
