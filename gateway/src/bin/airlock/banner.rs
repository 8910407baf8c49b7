//! The start-up banner `airlock serve` prints: the listening lines tests and supervisors read,
//! what was loaded, and the next steps for a first run.

use airlock_gateway::Gateway;

/// Print the start-up banner: where it listens, what it loaded, and the next steps.
pub fn print(gw: &Gateway, ssh: std::net::SocketAddr, rev: std::net::SocketAddr) {
    use std::fmt::Write as _;
    use std::io::Write as _;
    // Build the whole banner, then write it once. The banner is informational: if whoever
    // reads stdout has gone away (`| head`, a restarted log shipper), the gateway must keep
    // serving, so write errors are ignored instead of panicking like `println!` would.
    let mut out = String::new();
    macro_rules! put {
        ($o:expr, $($arg:tt)*) => {{
            let _ = writeln!($o, $($arg)*);
        }};
    }
    let c = &gw.config;
    let targets: Vec<&str> = c.targets.iter().map(|t| t.name.as_str()).collect();
    put!(
        out,
        "airlock: gateway {} ready (config: {})",
        c.node,
        c.source
    );
    put!(out, "airlock: ssh listening on {ssh}");
    put!(out, "airlock: reviewers listening on {rev}");
    put!(out, "  data dir    {}", c.data_dir.display());
    put!(
        out,
        "  database    {}",
        airlock_approvals::store::redact(&c.database_url)
    );
    put!(
        out,
        "  host key    {} ({})",
        gw.info.host_key_fingerprint,
        if gw.info.host_key_created {
            "generated now"
        } else {
            "existing"
        }
    );
    put!(
        out,
        "  ledger key  {} ({})",
        gw.info.ledger_pubkey,
        if gw.info.ledger_key_created {
            "generated now"
        } else {
            "existing"
        }
    );
    put!(out, "  targets     {}", targets.join(", "));
    put!(
        out,
        "  approvals   timeout {}, high needs {} reviewers",
        humantime::format_duration(c.approval_timeout),
        c.high_quorum
    );
    for line in &gw.info.containment {
        put!(out, "  sandbox     {line}");
    }
    if gw.info.expired_at_start > 0 {
        put!(
            out,
            "  note        {} request(s) left pending by the previous run were marked expired",
            gw.info.expired_at_start
        );
    }
    let cfg = match c.source.as_str() {
        "built-in default" => String::new(),
        s => format!(" --config {s}"),
    };
    out.push('\n');
    put!(out, "Next steps:");
    put!(
        out,
        "  1. Enrol an agent: append its public key, named, to {}:",
        c.authorized_keys.display()
    );
    put!(
        out,
        "       echo \"$(cut -d' ' -f1,2 ~/.ssh/id_ed25519.pub) my-agent\" >> {}",
        c.authorized_keys.display()
    );
    put!(
        out,
        "     (or list it under [[agent]] in a config file; see config/airlock.example.toml)"
    );
    put!(
        out,
        "  2. Create a reviewer token (shown once):  airlock{cfg} reviewer add alice"
    );
    put!(
        out,
        "  3. Review requests:                       read -rs AIRLOCK_TOKEN; export AIRLOCK_TOKEN; airlock{cfg} review"
    );
    put!(
        out,
        "  4. As the agent:  ssh -p {} {}@{} 'uptime'",
        ssh.port(),
        targets.first().copied().unwrap_or("local"),
        ssh.ip()
    );
    put!(
        out,
        "     pin the host key:  echo '[{}]:{} {}' >> ~/.ssh/known_hosts",
        ssh.ip(),
        ssh.port(),
        gw.info.host_key_line
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}
