//! Safer ways to learn or do the same thing, by the rule that made a command risky: what an
//! agent is told by the control target's `explain` (`ssh airlock@gateway 'explain …'`) so it
//! can try a read-only or dry-run form first, or narrow what it asks for. Advice only: the
//! suggestion is classified like any command when the agent runs it.

use crate::Assessment;

/// Rule id → what to try instead. Checked in the order of the assessment's reasons (most
/// severe first); the first rule with advice wins.
const ADVICE: &[(&str, &str)] = &[
    (
        "fs.rm-root",
        "name the exact files to remove; never a path near /",
    ),
    ("fs.no-preserve-root", "name the exact files to remove"),
    (
        "fs.rm-recursive",
        "list what would go first (`ls -R PATH` or `find PATH -maxdepth 2`), then remove the exact files",
    ),
    (
        "fs.rm-glob",
        "expand the glob first (`ls PATTERN`), then name the files",
    ),
    (
        "fs.find-delete",
        "run the same `find` with `-print` instead of `-delete` to see what it matches",
    ),
    (
        "fs.rsync-delete",
        "add `--dry-run` (`-n`) to see what rsync would delete",
    ),
    (
        "fs.sed-in-place",
        "run `sed` without `-i` to see the result, or `diff` it against the file",
    ),
    (
        "fs.permissions-recursive",
        "check the current modes first (`stat` or `ls -l`); change single files",
    ),
    (
        "fs.shred",
        "move the file aside instead; shredding cannot be undone",
    ),
    (
        "git.force-push",
        "use `--force-with-lease` so you only overwrite what you have seen",
    ),
    (
        "git.destructive",
        "look first: `git status`, `git stash list`, `git log --oneline -5`",
    ),
    (
        "k8s.delete-all",
        "delete by name; list with `kubectl get` first",
    ),
    (
        "k8s.delete",
        "check what it matches with `kubectl get` first",
    ),
    (
        "k8s.change",
        "preview with `kubectl diff -f …` or `--dry-run=server`",
    ),
    (
        "tf.destroy",
        "`terraform plan -destroy` shows what would be destroyed",
    ),
    (
        "tf.apply",
        "`terraform plan` shows the changes without making them",
    ),
    (
        "ansible.run",
        "run the playbook with `--check --diff` first",
    ),
    (
        "svc.stop-critical",
        "`systemctl status UNIT` shows its state; prefer a reload to a stop",
    ),
    (
        "svc.destructive",
        "`systemctl status UNIT` shows its state first",
    ),
    (
        "svc.change",
        "`systemctl status UNIT` reads the state; `systemctl reload` is gentler than a restart",
    ),
    (
        "outage.service-stop",
        "prefer `systemctl reload` or a restart of one unit",
    ),
    ("pkg.remove", "simulate first: `apt-get -s remove PKG`"),
    ("pkg.change", "simulate first: `apt-get -s install PKG`"),
    (
        "db.dropdb",
        "dump it first (`pg_dump`), or rename instead of dropping",
    ),
    (
        "disk.dd-device",
        "read the device's layout first (`lsblk`, `blkid`); never write to a disk in use",
    ),
    ("disk.format", "check what is on it first (`lsblk -f`)"),
    (
        "docker.destructive",
        "list first (`docker ps -a`, `docker images`), then remove by name",
    ),
    (
        "proc.kill-all",
        "find the exact process (`pgrep -a NAME`) and signal its pid",
    ),
    (
        "proc.kill",
        "check the process first (`ps -p PID -o pid,cmd`); try SIGTERM before SIGKILL",
    ),
    ("cron.change", "`crontab -l` shows the current table"),
    (
        "net.firewall",
        "`iptables -S` / `nft list ruleset` shows the rules first",
    ),
];

/// A safer form to try first, if the classifier knows one for what made `a` risky.
pub fn safer(a: &Assessment) -> Option<&'static str> {
    a.reasons.iter().find_map(|r| {
        ADVICE
            .iter()
            .find(|(rule, _)| *rule == r.rule)
            .map(|(_, advice)| *advice)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Classifier, Context};

    #[test]
    fn risky_commands_get_a_safer_form_and_harmless_ones_none() {
        let c = Classifier::builtin();
        let advice = |cmd: &str| safer(&c.classify(cmd, &Context::default()));
        assert!(advice("rm -rf /srv/old").is_some_and(|a| a.contains("ls -R")));
        assert!(
            advice("git push --force origin main").is_some_and(|a| a.contains("force-with-lease"))
        );
        assert!(advice("terraform apply -auto-approve").is_some_and(|a| a.contains("plan")));
        assert_eq!(advice("ls -la"), None);
    }

    #[test]
    fn every_advised_rule_exists_in_the_builtin_packs() {
        let c = Classifier::builtin();
        for (rule, _) in ADVICE {
            assert!(
                c.pack().inner.rules.iter().any(|r| r.id == *rule),
                "no rule {rule}"
            );
        }
    }
}
