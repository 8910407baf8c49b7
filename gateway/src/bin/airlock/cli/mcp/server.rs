//! The MCP server proper: tool calls in, gateway execs out.
//!
//! Why it exists: it is the seam between the MCP SDK (`rmcp`) and the gateway link. What it
//! owns: the server's identity and instructions, dispatching each checked call, turning a
//! client's progress token into progress notifications, and mapping the control target's
//! answers (`targets`, `explain`, `status` with `--json`) to tool results. Failures of the
//! gateway or of a command are tool errors the model can read; only malformed calls are
//! protocol errors.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::Value;

use super::link::{self, Link};
use super::run::{self, Progress};
use super::tools::{self, Call, OUTPUT_LIMIT_KIB};

/// The reserved target that answers about the agent's own world.
const CONTROL_TARGET: &str = "airlock";
/// Most a control answer may be (it is JSON, parsed whole).
const CONTROL_LIMIT: usize = 1024 * 1024;
/// How long a control verb may take (it never waits for people).
const CONTROL_WITHIN: Duration = Duration::from_secs(30);

const INSTRUCTIONS: &str = "Airlock is the approval gateway between you and the servers: every command you run here is judged, low-risk ones run at once (read-only), others wait for human reviewers, and a denial is final. Call list_targets to see where you may run, explain_command when unsure, and run_command with a `reason` reviewers can read. Never try to route around a denial.";

#[derive(Clone)]
pub struct Server {
    link: Arc<Link>,
}

impl Server {
    pub fn new(link: Arc<Link>) -> Self {
        Self { link }
    }

    /// Run a control verb and return its JSON answer as the result.
    async fn control(&self, command: String) -> CallToolResult {
        let answer = match self.link.exec(CONTROL_TARGET, &command, None, None).await {
            Ok(channel) => link::collect(channel, CONTROL_LIMIT, CONTROL_WITHIN).await,
            Err(e) => Err(e),
        };
        let got = match answer {
            Ok(got) => got,
            Err(e) => return error(format!("airlock mcp: {e}")),
        };
        let stdout = String::from_utf8_lossy(&got.stdout);
        let stderr = String::from_utf8_lossy(&got.stderr);
        let json: Option<Value> = serde_json::from_str(stdout.trim()).ok();
        match (got.status, json) {
            (Some(0), Some(v)) => {
                let mut r = CallToolResult::success(vec![ContentBlock::text(
                    serde_json::to_string_pretty(&v).unwrap_or_else(|_| stdout.to_string()),
                )]);
                r.structured_content = Some(v);
                r
            }
            (status, _) => {
                let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
                tracing::info!(command, status, "control verb failed");
                error(format!(
                    "the gateway's control target answered `{command}` with exit status {status}\n{}{}",
                    stdout.trim_end(),
                    if stderr.trim().is_empty() {
                        String::new()
                    } else {
                        format!("\n{}", stderr.trim_end())
                    }
                ))
            }
        }
    }
}

fn error(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// Progress notifications for one call, on the client's token.
struct PeerProgress {
    peer: Peer<RoleServer>,
    token: ProgressToken,
}

impl Progress for PeerProgress {
    async fn report(&mut self, progress: f64, total: Option<f64>, message: String) {
        let mut p =
            ProgressNotificationParam::new(self.token.clone(), progress).with_message(message);
        if let Some(t) = total.filter(|t| *t >= progress) {
            p = p.with_total(t);
        }
        if let Err(e) = self.peer.notify_progress(p).await {
            tracing::debug!(error = %e, "progress notification not sent");
        }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("airlock", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "{INSTRUCTIONS} Output is cut at {OUTPUT_LIMIT_KIB} KiB per stream."
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::all()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::all().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = tools::parse(&request.name, request.arguments.as_ref())?;
        let result = match call {
            Call::Run(spec) => {
                let progress = context.meta.get_progress_token().map(|token| PeerProgress {
                    peer: context.peer.clone(),
                    token,
                });
                let ct = context.ct.clone();
                tracing::info!(target = spec.target, "run_command");
                match run::run(
                    &self.link,
                    &spec,
                    progress,
                    async move { ct.cancelled().await },
                )
                .await
                {
                    Ok((is_error, text, structured)) => {
                        let mut r = if is_error {
                            error(text)
                        } else {
                            CallToolResult::success(vec![ContentBlock::text(text)])
                        };
                        r.structured_content = Some(structured);
                        r
                    }
                    Err(e) => error(format!("airlock mcp: {e}")),
                }
            }
            Call::ListTargets => self.control("targets --json".to_owned()).await,
            Call::Explain { target, command } => {
                // The control target splits flags on spaces and takes what follows ` -- `
                // verbatim; `target` is one word (checked).
                self.control(format!("explain --json --target {target} -- {command}"))
                    .await
            }
            Call::Status { id } => self.control(format!("status --json {id}")).await,
            Call::Access {
                target,
                duration,
                reason,
            } => {
                let progress = context.meta.get_progress_token().map(|token| PeerProgress {
                    peer: context.peer.clone(),
                    token,
                });
                let ct = context.ct.clone();
                tracing::info!(target, duration, "request_access");
                let asked = super::access::request(
                    &self.link,
                    &target,
                    &duration,
                    &reason,
                    progress,
                    async move { ct.cancelled().await },
                )
                .await;
                match asked {
                    Ok((is_error, text, structured)) => {
                        let mut r = if is_error {
                            error(text)
                        } else {
                            CallToolResult::success(vec![ContentBlock::text(text)])
                        };
                        r.structured_content = Some(structured);
                        r
                    }
                    Err(e) => error(format!("airlock mcp: {e}")),
                }
            }
        };
        Ok(result.into())
    }
}
