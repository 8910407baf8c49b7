//! Programs that run another program given as their operands, described as data.
//!
//! `strace -f rm -rf /x`, `flock /tmp/l rm -rf /x`, `taskset -c 0 dd …`: the program that does
//! the work is the operand, whatever tool wraps it. Each wrapper here says which of its options
//! take a value, how many plain operands come before the wrapped command, and which option
//! (if any) takes a shell string instead. The wrapped command is judged one level deeper; the
//! wrapper itself (with its own options, e.g. `strace -o FILE`) is judged alongside, so neither
//! hides the other. Modes that run nothing (`taskset -p`, `chrt -p`, `numactl --show`) are left
//! to the rules and reader models as ordinary commands. `xargs` is read here too: where its
//! input lands among the arguments of the command it runs.

use crate::walk::SimpleCmd;

/// How one wrapper is read.
pub struct Wrapper {
    pub name: &'static str,
    /// Options that take the next argument as their value (`-o FILE`). `--opt=value` needs no
    /// entry.
    pub with_value: &'static [&'static str],
    /// Plain operands before the wrapped command (`taskset MASK cmd`, `chroot DIR cmd`).
    pub operands: usize,
    /// Options whose value is a shell string run by a shell (`script -c CMD`, `flock -c CMD`).
    pub script: &'static [&'static str],
    /// Options after which nothing is wrapped (`taskset -p`: change a running process).
    pub no_command: &'static [&'static str],
}

const fn w(
    name: &'static str,
    with_value: &'static [&'static str],
    operands: usize,
    script: &'static [&'static str],
    no_command: &'static [&'static str],
) -> Wrapper {
    Wrapper {
        name,
        with_value,
        operands,
        script,
        no_command,
    }
}

const TRACE_VALUES: &[&str] = &[
    "-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-O", "-S", "-P", "-X", "-I", "-U", "-n", "-A",
    "-l", "-L", "-x", "-D",
];

pub const WRAPPERS: &[Wrapper] = &[
    w("strace", TRACE_VALUES, 0, &[], &[]),
    w("ltrace", TRACE_VALUES, 0, &[], &[]),
    w(
        "taskset",
        &[],
        1,
        &[],
        &["-p", "--pid", "-ap", "-pa", "-cp", "-pc"],
    ),
    w(
        "flock",
        &["-w", "--timeout", "-E", "--conflict-exit-code"],
        1,
        &["-c", "--command"],
        &[],
    ),
    w(
        "prlimit",
        &["-p", "--pid", "-o", "--output"],
        0,
        &[],
        &["-p", "--pid"],
    ),
    w(
        "chrt",
        &[
            "-T",
            "--sched-runtime",
            "-P",
            "--sched-period",
            "-D",
            "--sched-deadline",
        ],
        1,
        &[],
        &["-p", "--pid"],
    ),
    w(
        "numactl",
        &[
            "-i",
            "--interleave",
            "-m",
            "--membind",
            "-N",
            "--cpunodebind",
            "-C",
            "--physcpubind",
            "-p",
            "--preferred",
            "-w",
            "--weighted-interleave",
            "-b",
            "--balancing",
        ],
        0,
        &[],
        &["-s", "--show", "-H", "--hardware"],
    ),
    w(
        "script",
        &[
            "-I",
            "-O",
            "-B",
            "-T",
            "-E",
            "-o",
            "-m",
            "--log-in",
            "--log-out",
            "--log-io",
            "--log-timing",
            "--echo",
            "--output-limit",
            "--logging-format",
        ],
        0,
        &["-c", "--command"],
        &[],
    ),
    w(
        "unshare",
        &[
            "-S",
            "--setuid",
            "-G",
            "--setgid",
            "-R",
            "--root",
            "-w",
            "--wd",
            "--map-user",
            "--map-group",
            "--propagation",
        ],
        0,
        &[],
        &[],
    ),
    w(
        "nsenter",
        &[
            "-t", "--target", "-S", "--setuid", "-G", "--setgid", "-r", "--root", "-w", "--wd",
        ],
        0,
        &[],
        &[],
    ),
    w(
        "setpriv",
        &[
            "--reuid",
            "--regid",
            "--groups",
            "--inh-caps",
            "--ambient-caps",
            "--bounding-set",
            "--securebits",
            "--selinux-label",
            "--apparmor-profile",
            "--landlock-access",
            "--landlock-rule",
        ],
        0,
        &[],
        &[],
    ),
    w(
        "runuser",
        &[
            "-u",
            "--user",
            "-g",
            "--group",
            "-G",
            "--supp-group",
            "-s",
            "--shell",
            "-w",
            "--whitelist-environment",
        ],
        0,
        &["-c", "--command"],
        &[],
    ),
    w("chroot", &["--userspec", "--groups"], 1, &[], &[]),
    w("sg", &[], 1, &["-c"], &[]),
    w("pkexec", &["--user", "-u"], 0, &[], &[]),
    w(
        "systemd-run",
        &[
            "-u",
            "--unit",
            "-p",
            "--property",
            "-E",
            "--setenv",
            "-M",
            "--machine",
            "-H",
            "--host",
            "--uid",
            "--gid",
            "--slice",
            "--description",
            "--on-calendar",
            "--on-active",
            "--on-boot",
            "--on-startup",
            "--on-unit-active",
            "--on-unit-inactive",
            "--working-directory",
            "--nice",
            "--timer-property",
            "--path-property",
            "--socket-property",
        ],
        0,
        &[],
        &[],
    ),
    w("cgexec", &["-g"], 0, &[], &[]),
    w("faketime", &["-f"], 1, &[], &[]),
    w("torsocks", &["-u", "-p", "-a", "-P"], 0, &[], &[]),
    w("proxychains", &["-f"], 0, &[], &[]),
    w("proxychains4", &["-f"], 0, &[], &[]),
    w(
        "fakeroot",
        &["-l", "-s", "-i", "--lib", "--faked"],
        0,
        &[],
        &[],
    ),
    w("valgrind", &[], 0, &[], &[]),
    w("catchsegv", &[], 0, &[], &[]),
    w("rlwrap", &["-f", "-H", "-l", "-P", "-S", "-z"], 0, &[], &[]),
    w("ssh-agent", &["-a", "-E", "-P", "-t"], 0, &[], &["-k"]),
    w("dbus-launch", &[], 0, &[], &[]),
    w("xvfb-run", &["-n", "-s", "-e", "-f", "-p"], 0, &[], &[]),
    w(
        "chpst",
        &[
            "-u", "-U", "-b", "-e", "-/", "-n", "-l", "-L", "-m", "-d", "-o", "-p", "-f", "-c",
            "-r", "-t",
        ],
        0,
        &[],
        &[],
    ),
    w(
        "softlimit",
        &[
            "-m", "-a", "-d", "-o", "-p", "-f", "-c", "-r", "-t", "-s", "-l",
        ],
        0,
        &[],
        &[],
    ),
    w("setsid", &[], 0, &[], &[]),
    w("setarch", &[], 1, &[], &[]),
    w("linux32", &[], 0, &[], &[]),
    w("linux64", &[], 0, &[], &[]),
    w("nocache", &[], 0, &[], &[]),
    w("eatmydata", &[], 0, &[], &[]),
    w("firejail", &[], 0, &[], &[]),
    w("bwrap", &[], 0, &[], &[]),
];

/// What a wrapper runs.
pub enum Wrapped {
    /// Not wrapping anything (a mode that acts on its own, or nothing after the options).
    Nothing,
    /// The wrapped argv starts at this index.
    Argv(usize),
    /// A shell string, given by the option at this index.
    Script(usize, String),
}

pub fn find(name: &str) -> Option<&'static Wrapper> {
    WRAPPERS.iter().find(|w| w.name == name)
}

impl Wrapper {
    /// Where the wrapped command starts in `argv` (argv[0] is the wrapper).
    pub fn wrapped(&self, argv: &[String]) -> Wrapped {
        let mut i = 1;
        let mut operands = 0;
        while i < argv.len() {
            let a = argv[i].as_str();
            if a == "--" {
                i += 1;
                break;
            }
            if a.starts_with('-') && a.len() > 1 {
                // `script -qc CMD`: a bundle of short flags ending in the script option.
                if !a.starts_with("--")
                    && a.len() > 2
                    && let Some(last) = a.chars().last()
                    && self.script.contains(&format!("-{last}").as_str())
                {
                    return match argv.get(i + 1) {
                        Some(text) => Wrapped::Script(i, text.clone()),
                        None => Wrapped::Nothing,
                    };
                }
                let (flag, attached) = match a.split_once('=') {
                    Some((f, _)) => (f, true),
                    None => (a, false),
                };
                if self.no_command.contains(&flag) {
                    return Wrapped::Nothing;
                }
                if self.script.contains(&flag) {
                    return match (a.split_once('='), argv.get(i + 1)) {
                        (Some((_, text)), _) => Wrapped::Script(i, text.to_owned()),
                        (None, Some(text)) => Wrapped::Script(i, text.clone()),
                        (None, None) => Wrapped::Nothing,
                    };
                }
                i += if !attached && self.with_value.contains(&flag) {
                    2
                } else {
                    1
                };
                continue;
            }
            if operands < self.operands {
                operands += 1;
                i += 1;
                continue;
            }
            break;
        }
        // Operands still owed after `--` (`flock -- FILE cmd`).
        while operands < self.operands && i < argv.len() {
            operands += 1;
            i += 1;
        }
        if i < argv.len() {
            Wrapped::Argv(i)
        } else {
            Wrapped::Nothing
        }
    }
}

/// How xargs turns its input into arguments of the command it runs.
pub struct XargsInput {
    /// `-I STR` / `-i`: each input line replaces STR; otherwise input words are appended.
    replace: Option<String>,
    /// `-a FILE`: the input is a file, not standard input.
    from_file: bool,
}

impl XargsInput {
    pub fn of(options: &[String]) -> Self {
        let mut replace = None;
        let mut from_file = false;
        for (i, a) in options.iter().enumerate() {
            if a == "-I" {
                replace = options.get(i + 1).cloned();
            } else if let Some(r) = a
                .strip_prefix("--replace=")
                .or_else(|| a.strip_prefix("-i"))
            {
                replace = Some(if r.is_empty() {
                    "{}".into()
                } else {
                    r.to_owned()
                });
            } else if a == "-a" || a.starts_with("--arg-file") {
                from_file = true;
            }
        }
        Self { replace, from_file }
    }

    /// Put the input where xargs puts it: the literal text of `echo … | xargs` when known,
    /// otherwise a word that could be anything (a flag included).
    pub fn apply(self, cmd: &mut SimpleCmd) {
        let literal = cmd.stdin_text.take().filter(|_| !self.from_file);
        match (&self.replace, literal) {
            (Some(r), Some(text)) => {
                let line = text.lines().next().unwrap_or_default();
                for a in cmd.argv.iter_mut().skip(1) {
                    *a = a.replace(r.as_str(), line);
                }
            }
            (Some(r), None) => {
                for (a, opaque) in cmd.argv.iter().zip(cmd.opaque_words.iter_mut()).skip(1) {
                    *opaque |= a.contains(r.as_str());
                }
            }
            (None, Some(text)) => {
                for w in text.split_whitespace() {
                    cmd.argv.push(w.to_owned());
                    cmd.dynamic_words.push(false);
                    cmd.opaque_words.push(false);
                }
            }
            (None, None) => {
                cmd.argv.push("{}".into());
                cmd.dynamic_words.push(true);
                cmd.opaque_words.push(true);
            }
        }
    }
}
