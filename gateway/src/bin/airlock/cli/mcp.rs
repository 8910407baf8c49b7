//! `airlock mcp`: a stdio MCP server an agent's host starts, so agents that act through tools
//! reach the gateway through the same gate as `ssh` — with the agent's own SSH key, so there
//! is one policy, one queue and one ledger for both.
//!
//! What this module owns: the command line (`--gateway`, `--identity`, `--known-hosts`), the
//! start-up checks (the host key must be pinned, the identity readable, and a gateway that
//! answers must show the pinned key and take ours — otherwise it exits with the reason), the
//! logging (stderr only: stdout is the MCP channel) and serving until the client leaves.
//! `link` holds the SSH connections, `tools` the tool list and argument checks, `run` the
//! watched exec behind `run_command` (and `access` behind `request_access`), `server` the MCP handler. Needs no gateway config.

mod access;
mod link;
mod run;
mod server;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use rmcp::ServiceExt;

use link::{Link, LinkConfig, LinkError};

#[derive(clap::Args, Debug)]
pub struct McpArgs {
    /// The gateway's SSH address.
    #[arg(long, value_name = "HOST:PORT")]
    gateway: String,
    /// The agent's private key (OpenSSH format, without a passphrase).
    #[arg(long, value_name = "KEYFILE")]
    identity: PathBuf,
    /// Where the gateway's host key is pinned, in OpenSSH known_hosts format (hashed names
    /// and `[host]:port` entries work). Default: ~/.ssh/known_hosts. An unknown or different
    /// key is always refused.
    #[arg(long, value_name = "FILE")]
    known_hosts: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
enum McpError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("no --known-hosts given and no home directory to find ~/.ssh/known_hosts in")]
    NoHome,
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the MCP session failed: {0}")]
    Session(String),
}

/// Run the server until the client closes stdin; the exit code says whether it started.
pub fn main(args: &McpArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,airlock=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(McpError::Runtime)
        .and_then(|rt| rt.block_on(serve(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("airlock mcp: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &McpArgs) -> Result<(), McpError> {
    let (host, port) = link::parse_gateway(&args.gateway)?;
    let known_hosts = match &args.known_hosts {
        Some(p) => p.clone(),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
            .ok_or(McpError::NoHome)?,
    };
    let key = link::load_identity(&args.identity)?;
    let cfg = LinkConfig {
        host,
        port,
        known_hosts,
    };
    link::pinned_keys(&cfg)?;
    let link = Arc::new(Link::new(cfg, key));
    // A gateway that shows another key, or refuses our key, will not get better: stop now,
    // with the reason. One that is down may come back: tool calls retry.
    match link.probe("airlock").await {
        Ok(()) => {}
        Err(e @ (LinkError::HostKey { .. } | LinkError::Auth { .. })) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "the gateway cannot be reached now; tool calls will try again")
        }
    }
    tracing::info!("serving MCP on stdio");
    let running = server::Server::new(link)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpError::Session(e.to_string()))?;
    let quit = running
        .waiting()
        .await
        .map_err(|e| McpError::Session(e.to_string()))?;
    tracing::info!(reason = ?quit, "MCP session ended");
    Ok(())
}
