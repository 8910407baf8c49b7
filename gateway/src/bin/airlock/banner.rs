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
    if let Some(Ok(m)) = gw.metrics_listener.as_ref().map(|l| l.local_addr()) {
        put!(out, "airlock: metrics listening on {m}");
    }
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
    if let Some(tls) = &gw.reviewer_tls {
        put!(
            out,
            "  reviewer    https (TLS), certificate {}{}",
            tls.cert_path().display(),
            match (tls.is_self_signed(), tls.created()) {
                (true, true) => " (self-signed, generated now)",
                (true, false) => " (self-signed)",
                _ => "",
            }
        );
        put!(out, "              sha256 {}", tls.fingerprint());
    }
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
    let (exe, installed) = invoked_as();
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
        "  2. Create a reviewer token (shown once):  {exe}{cfg} reviewer add alice"
    );
    put!(
        out,
        "  3. Review requests:                       read -rs AIRLOCK_TOKEN; export AIRLOCK_TOKEN; {exe}{cfg} review"
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
    if !installed {
        put!(
            out,
            "  (`airlock` on your PATH is not this binary; to install it:  cargo install --path gateway --locked)"
        );
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// How the operator runs this binary: `airlock` when that name on `PATH` is this very file
/// (installed), else its full path (e.g. `target/release/airlock` after `cargo run`), so the
/// printed next steps work when pasted.
fn invoked_as() -> (String, bool) {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return ("airlock".into(), true);
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .filter_map(|d| d.join("airlock").canonicalize().ok())
            .next()
            .is_some_and(|found| found == me)
    });
    if on_path {
        ("airlock".into(), true)
    } else {
        (me.display().to_string(), false)
    }
}
