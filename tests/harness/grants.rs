//! Helpers for the access-grant tests: a gateway with a `requires_grant` target the agent may
//! use, and the `airlock grant` commands.

use super::*;

/// The target that needs a grant (a local one labelled `env = "prod"`).
pub const VAULT: &str = "vault";

/// What the agent is told on `target` without a grant.
pub fn no_grant_line(target: &str) -> String {
    format!(
        "airlock: denied: no access grant for {target} (request one: ssh airlock@gw request-access {target} 1h \"why\")"
    )
}

/// Options for a gateway with [`VAULT`] (plus `more` config text).
pub fn grant_opts(postgres: bool, more: &str) -> Opts {
    Opts {
        postgres,
        more_targets: vec![VAULT.into()],
        extra: format!(
            "{more}\n[[target]]\nname = \"{VAULT}\"\nkind = \"local\"\nrequires_grant = true\nlabels = {{ env = \"prod\" }}\n"
        ),
        ..Opts::default()
    }
}

impl Gateway {
    /// `airlock whitelist add --agent bot --target TARGET -- CMD`, which must succeed.
    pub fn whitelist_for_bot(&self, target: &str, cmd: &str) {
        let out = self.cli(&[
            "whitelist",
            "add",
            "--agent",
            "bot",
            "--target",
            target,
            "--",
            cmd,
        ]);
        assert!(
            out.status.success(),
            "whitelist add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `airlock grant ARGS…`, whatever its outcome.
    pub fn grant_cli(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["grant"];
        all.extend_from_slice(args);
        self.cli(&all)
    }

    /// `airlock grant add` for the agent on `target` for `duration`; the new grant's id.
    pub fn grant_add(&self, target: &str, duration: &str) -> String {
        let out = self.grant_cli(&[
            "add", "--agent", "bot", "--target", target, "--for", duration, "--reason", "test",
        ]);
        assert!(
            out.status.success(),
            "grant add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}
