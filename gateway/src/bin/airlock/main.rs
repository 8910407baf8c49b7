//! `airlock`: the gateway binary and its operator commands.

mod banner;
mod cli;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_gateway::config::Config;
use airlock_gateway::{Gateway, run};
use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "airlock",
    version,
    about = "Approval gateway for AI agents operating servers over SSH"
)]
struct Cli {
    /// Config file (default: ./airlock.toml if present, else the built-in default).
    #[arg(long, global = true, env = "AIRLOCK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum AgentsCmd {
    /// One agent's blast radius: targets and grants, its whitelist by target, what it ran in
    /// the last 7 days, and the largest thing it can do without a human now.
    Show {
        name: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway (SSH for agents, WebSocket for reviewers).
    Serve,
    /// Manage reviewer tokens.
    #[command(subcommand)]
    Reviewer(ReviewerCmd),
    /// Manage the whitelist of commands that run without asking.
    #[command(subcommand)]
    Whitelist(WhitelistCmd),
    /// Time-boxed access grants for targets with requires_grant = true.
    #[command(subcommand)]
    Grant(cli::grant::GrantCmd),
    /// What agents can do: targets, grants, whitelist, recent commands.
    #[command(subcommand)]
    Agents(AgentsCmd),
    /// Terminal client: pending requests live; A approves, R approves and remembers, D denies.
    Review {
        /// Reviewer WebSocket URL (default: from the config's [reviewer] listen).
        #[arg(long)]
        url: Option<String>,
        /// A file holding the reviewer token (mode 600). Without it the token is read from
        /// AIRLOCK_TOKEN; it is never taken on the command line, where `ps` would show it.
        #[arg(long, value_name = "FILE")]
        token_file: Option<std::path::PathBuf>,
        /// Trust only the certificates in this PEM file for wss:// (a private CA, or the
        /// gateway's self-signed certificate; default: the system's roots, or the config's
        /// self-signed certificate).
        #[arg(long, value_name = "FILE")]
        ca: Option<std::path::PathBuf>,
    },
    /// Classify a command the way the gateway would: tier, score and reasons.
    Classify {
        /// One JSON object (per line with --stdin) instead of text.
        #[arg(long)]
        json: bool,
        /// Read one command per line from stdin and write one result per line, in order.
        #[arg(long, conflicts_with = "command")]
        stdin: bool,
        /// Target label for context, e.g. env=prod (repeatable).
        #[arg(long = "target-label", value_name = "K=V")]
        labels: Vec<String>,
        #[arg(last = true, required_unless_present = "stdin")]
        command: Vec<String>,
    },
    /// Recorded sessions.
    #[command(subcommand)]
    Sessions(SessionsCmd),
    /// Play a recorded session in the terminal with its real timing.
    Replay {
        /// Session id (or a unique prefix), or a path to a .cast file.
        session: String,
        /// Playback speed (2 = twice as fast).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Shorten pauses longer than this (e.g. 1s).
        #[arg(long)]
        idle_limit: Option<String>,
        /// Start at the Nth marker (see --markers); earlier output is shown at once.
        #[arg(long)]
        from_marker: Option<usize>,
        /// Print the output without timing.
        #[arg(long, conflicts_with_all = ["speed", "idle_limit", "from_marker"])]
        cat: bool,
        /// List the markers (commands, decisions, exit statuses) with their times.
        #[arg(long, conflicts_with = "cat")]
        markers: bool,
        /// Write a plain asciicast v2 file for `asciinema` (`-` for stdout).
        #[arg(long, conflicts_with_all = ["speed", "idle_limit", "from_marker", "cat", "markers"])]
        export: Option<PathBuf>,
    },
    /// The audit ledger: signing key, export, offline verification.
    #[command(subcommand)]
    Ledger(LedgerCmd),
    /// Check decisions and configs without running the gateway (for CI).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Serve MCP on stdio for an agent: its tools run through this gateway as the agent
    /// (needs no gateway config).
    Mcp(cli::mcp::McpArgs),
    /// Check a release tarball against its signed SHA-256 file (from scripts/package.sh).
    /// Exit 0: verified; 1: it does not verify; 2: a file or the key cannot be read.
    VerifyRelease {
        tarball: PathBuf,
        /// The release signing key: `ed25519:BASE64`, or a file holding it or a PEM PUBLIC KEY.
        #[arg(long)]
        pubkey: String,
    },
    /// Copy the SQLite database consistently (safe while the gateway runs) into FILE, which
    /// must not exist, and print the ledger head at that moment.
    Backup { file: PathBuf },
    /// Put a backup in place of the configured SQLite database (the gateway must be stopped).
    Restore {
        file: PathBuf,
        /// Replace an existing database (it and ledger.head are moved aside, not deleted).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum SessionsCmd {
    /// Sessions, newest first.
    List {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// Only sessions started within this long (e.g. 1h, 7d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum LedgerCmd {
    /// Print the public key that verifies checkpoints (`ed25519:BASE64`).
    Pubkey,
    /// Write the ledger as JSON lines to stdout.
    Export {
        /// First entry to export.
        #[arg(long, default_value_t = 1)]
        since: i64,
    },
    /// Check an export offline (no database, no config). Exit 0 only if everything verifies.
    Verify {
        file: PathBuf,
        /// Trust only checkpoints signed by this key (from `airlock ledger pubkey`).
        #[arg(long)]
        pubkey: Option<String>,
        /// The hash the last entry must have (an anchor kept elsewhere).
        #[arg(long)]
        head: Option<String>,
        /// Re-hash every recording the ledger names, in this directory.
        #[arg(long)]
        recordings: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// The decision the gateway would make. Exit 0: allowed or needs approval; 1: denied;
    /// 2: usage or config error.
    Check {
        #[arg(long)]
        agent: String,
        #[arg(long)]
        target: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Validate a config and its rule packs (errors name file and line), and run the packs'
    /// examples. Exit 0: valid; 1: invalid; 2: usage error.
    Lint,
}

#[derive(Subcommand)]
pub(crate) enum ReviewerCmd {
    /// Create a reviewer and print its token (shown once; only a hash is stored).
    Add {
        name: String,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum WhitelistCmd {
    /// Let a command (or, with --glob, any command matching a pattern) run without approval.
    /// Refused for high-risk commands.
    Add {
        #[arg(long, conflicts_with = "any_agent")]
        agent: Option<String>,
        #[arg(long)]
        any_agent: bool,
        #[arg(long, conflicts_with = "any_target")]
        target: Option<String>,
        #[arg(long)]
        any_target: bool,
        /// Lifetime, e.g. 1h, 1d, 7d or never (default: [whitelist] default_ttl, 7d).
        #[arg(long)]
        ttl: Option<String>,
        /// The command is a glob over the argv: `*` and `?` within a word, `**` for any number
        /// of words (e.g. `docker restart web-*`).
        #[arg(long)]
        glob: bool,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Every entry, expired ones marked.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    Revoke {
        id: String,
    },
    /// Write the entries in force as sorted TOML (for git).
    Export {
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Add the entries of an exported file; checks them all first and adds none if any is bad.
    Import {
        file: PathBuf,
    },
    /// Copy the entries of one target to another as proposals: they allow nothing until
    /// reviewers accept them (`whitelist review`, or the web page's Proposed list).
    Promote {
        #[arg(long)]
        from_target: String,
        #[arg(long)]
        to_target: String,
        /// Only this agent's entries.
        #[arg(long)]
        agent: Option<String>,
        /// One JSON object per proposal.
        #[arg(long)]
        json: bool,
    },
    /// Copy one agent's entries to another agent as proposals (onboarding).
    Copy {
        #[arg(long)]
        from_agent: String,
        #[arg(long)]
        to_agent: String,
        #[arg(long)]
        json: bool,
    },
    /// List proposals with what each would allow; accept or reject them (asks on a terminal;
    /// with --accept/--reject/--accept-all, or without a terminal, it never asks).
    Review {
        /// Accept this proposal as the operator (cli:$USER; repeatable).
        #[arg(long, value_name = "ID")]
        accept: Vec<String>,
        /// Reject this proposal (repeatable).
        #[arg(long, value_name = "ID")]
        reject: Vec<String>,
        /// Accept every proposal listed.
        #[arg(long)]
        accept_all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Compare the live whitelist with an exported file (`whitelist export`).
    Diff {
        file: PathBuf,
        /// Exit with status 1 when they differ (for CI).
        #[arg(long)]
        exit_code: bool,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // The sandbox helper and the editor stub run inside commands' process trees: before any
    // thread, runtime or config exists (the helper forks), and with nothing else parsed.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some(airlock_gateway::sandbox::SUBCOMMAND) => {
            airlock_gateway::sandbox::guard::main(&args[2..])
        }
        Some(airlock_gateway::environment::NO_EDITOR) => {
            eprintln!("{}", airlock_gateway::environment::NO_EDITOR_TEXT);
            return ExitCode::from(1);
        }
        _ => {}
    }
    // Whatever descriptors we inherited (a launching shell's `7>>file`) must not reach the
    // commands we start: mark them all close-on-exec before anything else opens.
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes flags.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Serve | Cmd::Mcp(_)) {
        // Operator commands end quietly when their reader goes away (`grant list | head`),
        // like other Unix tools, instead of panicking on a broken pipe. The gateway and the
        // MCP server keep Rust's default (ignore SIGPIPE, handle the write error).
        // SAFETY: setting a signal disposition before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if let Cmd::Ledger(LedgerCmd::Verify {
        file,
        pubkey,
        head,
        recordings,
    }) = &cli.cmd
    {
        return cli::ledger::verify(
            file,
            pubkey.as_deref(),
            head.as_deref(),
            recordings.as_deref(),
        );
    }
    if let Cmd::Mcp(args) = &cli.cmd {
        return cli::mcp::main(args);
    }
    if let Cmd::VerifyRelease { tarball, pubkey } = &cli.cmd {
        return cli::release::verify(tarball, pubkey);
    }
    if let Cmd::Policy(p) = &cli.cmd {
        return match p {
            PolicyCmd::Check {
                agent,
                target,
                json,
                command,
            } => cli::policy::check(
                cli.config.as_deref(),
                agent,
                target,
                &command.join(" "),
                *json,
            ),
            PolicyCmd::Lint => cli::policy::lint(cli.config.as_deref()),
        };
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(async_main(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("airlock: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn async_main(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.cmd {
        Cmd::Serve => serve(config).await,
        Cmd::Reviewer(c) => cli::reviewer::run(config, c).await,
        Cmd::Whitelist(c) => cli::whitelist::run(config, c).await,
        Cmd::Grant(c) => cli::grant::run(config, c).await,
        Cmd::Agents(AgentsCmd::Show { name, json }) => cli::agents::show(config, &name, json).await,
        Cmd::Review {
            url,
            token_file,
            ca,
        } => {
            let token = cli::review::token(token_file.as_deref())?;
            let (url, ca) = cli::review::endpoint(&config, url, ca);
            let trust = airlock_reviewer_ws::client::Trust::new(ca.as_deref())?;
            airlock_reviewer_ws::client::run(&url, &token, trust)
                .await
                .map_err(Into::into)
        }
        Cmd::Classify {
            json,
            stdin,
            labels,
            command,
        } => {
            let ctx = cli::classify::context(&labels)?;
            let classifier = config.classifier()?;
            if stdin {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                cli::classify::batch(&classifier, &ctx, json, std::io::stdin().lock(), &mut out)?;
                Ok(())
            } else {
                cli::classify::one(&classifier, &ctx, json, &command.join(" "))
            }
        }
        Cmd::Sessions(SessionsCmd::List {
            agent,
            target,
            since,
            limit,
        }) => {
            let s = cli::operator::store(&config).await?;
            cli::sessions::list(&s, agent, target, since, limit).await
        }
        Cmd::Replay {
            session,
            speed,
            idle_limit,
            from_marker,
            cat,
            markers,
            export,
        } => {
            // A .cast path needs no database; an id does.
            let s = if session.ends_with(".cast") {
                None
            } else {
                Some(cli::operator::store(&config).await?)
            };
            let args = cli::sessions::ReplayArgs {
                session,
                speed,
                idle_limit,
                from_marker,
                cat,
                markers,
                export,
            };
            cli::sessions::replay(&config, s.as_ref(), args).await
        }
        Cmd::Ledger(LedgerCmd::Pubkey) => cli::ledger::pubkey(&config),
        Cmd::Ledger(LedgerCmd::Export { since }) => {
            let s = cli::operator::store(&config).await?;
            cli::ledger::export(&s, since).await
        }
        Cmd::Backup { file } => cli::backup::backup(&config, &file).await,
        Cmd::Restore { file, force } => cli::backup::restore(&config, &file, force).await,
        // Handled before the runtime starts: they have their own exit codes.
        Cmd::Policy(_)
        | Cmd::Ledger(LedgerCmd::Verify { .. })
        | Cmd::Mcp(_)
        | Cmd::VerifyRelease { .. } => Ok(()),
    }
}

async fn serve(config: Config) -> Result<()> {
    logging::init(&config.log)?;
    let ssh = tokio::net::TcpListener::bind(config.ssh_listen)
        .await
        .with_context(|| format!("binding SSH on {}", config.ssh_listen))?;
    let reviewers = tokio::net::TcpListener::bind(config.reviewer_listen)
        .await
        .with_context(|| format!("binding reviewers on {}", config.reviewer_listen))?;
    // `/metrics` is unauthenticated (docs/metrics.md): bound only where configured.
    let metrics = match config.metrics_listen {
        Some(a) => {
            if !a.ip().is_loopback() {
                tracing::warn!(listen = %a, "[metrics] listen is beyond loopback and unauthenticated: firewall it to your scrapers");
            }
            Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding metrics on {a}"))?,
            )
        }
        None => None,
    };
    let mut gw = Gateway::open(config).await?;
    gw.metrics_listener = metrics;
    let ssh_addr = ssh.local_addr()?;
    let rev_addr = reviewers.local_addr()?;
    // Every signal handler is in place before the banner says the gateway is up: a SIGTERM
    // that follows the banner gets the graceful shutdown, never the default death.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // SIGHUP (`systemctl reload`) must never kill the gateway mid-session, and must not be
    // mistaken for a config reload: say what it does (the reviewer TLS listener re-reads its
    // certificate on the same signal) and what it does not.
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::warn!(
                "SIGHUP: the configuration, rule packs, agents and targets are NOT reloaded (restart the gateway to apply changes); only a reviewer TLS certificate is re-read"
            );
        }
    });
    banner::print(&gw, ssh_addr, rev_addr);
    let shutdown = async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    };
    run(ssh, reviewers, gw, shutdown).await?;
    Ok(())
}
