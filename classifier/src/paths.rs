//! Which file paths are sensitive to write.
//!
//! Writing to these changes how the host boots, authenticates, schedules or logs, or destroys a
//! disk outright — the places where one redirection or one `cp` does lasting damage. The list is
//! code rather than data because the checks are structural (prefix, component, basename).

/// Where writes are harmless: the bit bucket and the caller's own terminal.
pub fn is_harmless_sink(path: &str) -> bool {
    matches!(
        path,
        "/dev/null"
            | "/dev/stdout"
            | "/dev/stderr"
            | "/dev/tty"
            | "/dev/zero"
            | "/dev/fd/1"
            | "/dev/fd/2"
    )
}

const PREFIXES: &[(&str, &str)] = &[
    ("/etc/", "system configuration"),
    ("/boot/", "the boot partition"),
    ("/usr/", "system programs"),
    ("/bin/", "system programs"),
    ("/sbin/", "system programs"),
    ("/lib/", "system libraries"),
    ("/lib64/", "system libraries"),
    ("/root/", "root's home directory"),
    ("/proc/", "kernel settings"),
    ("/sys/", "kernel settings"),
    ("/var/lib/", "service state (databases, packages)"),
    ("/var/spool/cron", "crontabs"),
    ("/var/log/", "system logs"),
    ("/dev/sd", "a block device"),
    ("/dev/hd", "a block device"),
    ("/dev/nvme", "a block device"),
    ("/dev/vd", "a block device"),
    ("/dev/xvd", "a block device"),
    ("/dev/mmcblk", "a block device"),
    ("/dev/loop", "a block device"),
    ("/dev/md", "a block device"),
    ("/dev/dm-", "a block device"),
    ("/dev/mapper/", "a block device"),
    ("/dev/disk/", "a block device"),
    ("/dev/mem", "physical memory"),
    ("/dev/kmem", "kernel memory"),
    ("/dev/port", "I/O ports"),
];

/// Basenames that run code at login or grant access wherever they live.
const BASENAMES: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".kshrc",
    ".cshrc",
    ".tcshrc",
    "config.fish",
    "authorized_keys",
    "authorized_keys2",
    ".rhosts",
    ".netrc",
    ".pgpass",
    ".my.cnf",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    ".lesshst",
    ".viminfo",
];

/// Directory components that hold credentials or autostart entries.
const COMPONENTS: &[(&str, &str)] = &[
    ("/.ssh/", "SSH keys and access"),
    ("/.gnupg/", "GnuPG keys"),
    ("/.aws/", "cloud credentials"),
    ("/.kube/", "cluster credentials"),
    ("/.docker/", "registry credentials"),
    ("/.config/systemd/", "user services"),
    ("/.config/autostart/", "autostart entries"),
    // `.pth` files and `sitecustomize.py` here run in every Python program that starts.
    ("/site-packages/", "code every Python program loads"),
    ("/dist-packages/", "code every Python program loads"),
];

/// `/etc//shadow` and `/etc/./shadow` are `/etc/shadow`: the spelling rules and readers see.
/// Only words that are absolute or home-relative paths are touched.
pub fn normalize(word: &str) -> std::borrow::Cow<'_, str> {
    if !(word.starts_with('/') || word.starts_with("~/"))
        || !(word.contains("//") || word.contains("/./") || word.ends_with("/."))
    {
        return std::borrow::Cow::Borrowed(word);
    }
    let mut out = String::with_capacity(word.len());
    for (i, part) in word.split('/').enumerate() {
        if i > 0 && (part.is_empty() || part == ".") {
            continue;
        }
        if i > 0 {
            out.push('/');
        }
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    std::borrow::Cow::Owned(out)
}

/// Files whose contents are credentials, for matching glob words (`/etc/shado?`).
const SECRET_FILES: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/root/.ssh/id_rsa",
    "/root/.ssh/id_ed25519",
    "/root/.ssh/id_ecdsa",
    "/home/user/.ssh/id_rsa",
    "/home/user/.ssh/id_ed25519",
    "~/.ssh/id_rsa",
    "~/.ssh/id_ed25519",
    "~/.aws/credentials",
    "/root/.aws/credentials",
    "~/.kube/config",
    "/etc/kubernetes/admin.conf",
    "/proc/1/environ",
    "/proc/self/environ",
    "/etc/mysql/debian.cnf",
    "~/.my.cnf",
    "~/.pgpass",
    "~/.netrc",
    "~/.git-credentials",
    "~/.docker/config.json",
    "~/.config/gh/hosts.yml",
    "~/.vault-token",
    "/proc/kcore",
];

/// The credential file a glob word could name (`/etc/shado?`, `/e*/shadow`, `/etc/[s]hadow`).
pub fn secret_glob(word: &str) -> Option<&'static str> {
    if !(word.starts_with('/') || word.starts_with("~/")) {
        return None;
    }
    if !word.contains(['*', '?', '[', '{']) {
        return SECRET_FILES.iter().copied().find(|f| *f == word);
    }
    // (A pattern without a directory matches names in the working directory only.)
    // Only files that start with the pattern's literal prefix can match: most patterns
    // (`/var/www/releases/*`) rule every credential file out without building a matcher.
    let literal = &word[..word.find(['*', '?', '[', '{']).unwrap_or(word.len())];
    if !SECRET_FILES.iter().any(|f| f.starts_with(literal)) {
        return None;
    }
    let mut re = String::from("^");
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // Globs never match across `/`.
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    if d == '\\' || d == '^' && re.ends_with('[') {
                        re.push('\\');
                    }
                    re.push(d);
                }
                re.push(']');
            }
            // `{shadow,passwd}`: brace alternatives.
            '{' => re.push('('),
            '}' => re.push(')'),
            ',' if re.contains('(') => re.push('|'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    let re = regex::Regex::new(&re).ok()?;
    SECRET_FILES.iter().copied().find(|f| re.is_match(f))
}

/// A program path in one of the system's program directories (`/usr/bin/ls`, `/bin/rm`).
pub fn system_program(path: &str) -> bool {
    const DIRS: &[&str] = &[
        "/bin/",
        "/usr/bin/",
        "/sbin/",
        "/usr/sbin/",
        "/usr/local/bin/",
        "/usr/local/sbin/",
    ];
    DIRS.iter().any(|d| {
        path.strip_prefix(d)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    })
}

/// Why writing to `path` is sensitive, or `None` when it is an ordinary file.
pub fn sensitive(path: &str) -> Option<&'static str> {
    if path.is_empty() || is_harmless_sink(path) {
        return None;
    }
    if path == "/" || path == "/*" {
        return Some("the root of the filesystem");
    }
    // `~/.ssh/x` and `.ssh/x` (relative to a home directory) are both caught by the component
    // check once a leading slash is added.
    let anchored = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{}", path.trim_start_matches('~').trim_start_matches('/'))
    };
    if let Some((_, why)) = PREFIXES.iter().find(|(p, _)| path.starts_with(p)) {
        // `/proc/self/fd/1` and friends are the caller's own output.
        if !path.starts_with("/proc/self/fd/") {
            return Some(why);
        }
    }
    if let Some((_, why)) = COMPONENTS.iter().find(|(c, _)| anchored.contains(c)) {
        return Some(why);
    }
    let base = anchored.rsplit('/').next().unwrap_or_default();
    if BASENAMES.contains(&base) {
        return Some("a login script or access file");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_paths() {
        for p in [
            "/etc/passwd",
            "/etc/systemd/system/x.service",
            "~/.ssh/authorized_keys",
            ".ssh/config",
            "/home/bob/.bashrc",
            "~/.profile",
            "/dev/sda",
            "/dev/nvme0n1",
            "/var/lib/postgresql/15/main/PG_VERSION",
            "/var/spool/cron/crontabs/root",
            "/var/log/auth.log",
            "~/.local/lib/python3.11/site-packages/zz.pth",
            "/usr/lib/python3/dist-packages/sitecustomize.py",
            "/",
        ] {
            assert!(sensitive(p).is_some(), "{p} should be sensitive");
        }
        for p in [
            "/dev/null",
            "out.txt",
            "/tmp/x",
            "/srv/app/log.txt",
            "./build/etc/x",
            "etc/passwd",
            "/proc/self/fd/1",
        ] {
            assert!(sensitive(p).is_none(), "{p} should not be sensitive");
        }
    }
}
