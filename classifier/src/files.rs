//! Which files a command runs as a program or script: `./deploy.sh`, `bash x.sh`, `. x.sh`,
//! `python3 x.py`, `make` (its Makefile), `crontab FILE`, `psql -f FILE`, `mysql < FILE`, and
//! the same behind every wrapper the walker unwraps.
//!
//! The classifier cannot read files (it does no I/O); it names them here so the gateway can
//! read them from the target and hand their text back to [`crate::content`]. A path only known
//! at run time (`bash "$X"`) is not named: the rules already say the command cannot be seen.

use serde::{Deserialize, Serialize};

use crate::command::SimpleCmd;

/// What a file is run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Run as a program by path (`./x.sh`): its first bytes decide (ELF, `#!` line, or text
    /// that bash then runs as a script).
    Program,
    /// Read by a shell (`bash x.sh`, `. x.sh`, `bash < x.sh`).
    Shell,
    Python,
    Perl,
    Ruby,
    Node,
    /// SQL statements for this client (`psql -f`, `mysql < FILE`).
    Sql,
    /// A Makefile.
    Make,
    /// A crontab to install.
    Crontab,
}

/// A file a command runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRun {
    /// As written (`x.sh`, `./deploy.sh`), relative to the working directory unless absolute.
    /// For `make` without `-f`: the first of `candidates` that exists is read.
    pub path: String,
    /// Other names to try in order when `path` does not exist (`make`: GNUmakefile,
    /// makefile, Makefile).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    pub role: Role,
    /// The program that runs it (`bash`, `python3`, `psql`), for judging its text the way
    /// that program would read it.
    pub program: String,
    /// Why the gateway cannot know which file this will be, or what else the program will load
    /// with it (`cd` before it, `env -C`, `chroot`, `MAKEFILES`, `PYTHONPATH`, …): then it is
    /// not read, and the command stays medium and cannot be remembered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknowable: Option<String>,
}

/// Changing directory: relative paths then name other files than the gateway would read.
const MOVERS: &[&str] = &["cd", "pushd", "popd"];
/// Wrappers that change the root or the mount namespace: no path means what it says.
const ROOTS: &[&str] = &[
    "chroot",
    "nsenter",
    "unshare",
    "bwrap",
    "firejail",
    "systemd-nspawn",
    "proot",
    "fakechroot",
];
/// Wrappers whose options can change the working directory.
const CHDIR_WRAPPERS: &[&str] = &[
    "env",
    "sudo",
    "doas",
    "runuser",
    "su",
    "setpriv",
    "systemd-run",
];
const CHDIR_FLAGS: &[&str] = &[
    "-C",
    "--chdir",
    "-D",
    "--directory",
    "--wd",
    "-w",
    "--working-directory",
];
/// Variables that make a shell, make or an interpreter load files the gateway does not read.
const LOADERS: &[&str] = &[
    "BASH_ENV",
    "ENV=",
    "MAKEFILES",
    "MAKEFLAGS",
    "MFLAGS",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
];

/// Whether `argv` (a wrapper and its options) moves the working directory.
pub(crate) fn chdir_wrapper(argv: &[String]) -> bool {
    let Some(name) = argv.first().map(|a| crate::unwrap::program_name(a)) else {
        return false;
    };
    ROOTS.contains(&name)
        || (CHDIR_WRAPPERS.contains(&name)
            && argv.iter().skip(1).any(|a| {
                CHDIR_FLAGS.contains(&a.as_str())
                    || CHDIR_FLAGS
                        .iter()
                        .any(|f| f.starts_with("--") && a.starts_with(&format!("{f}=")))
                    || (a.starts_with("-C") && name == "env")
                    || (a.starts_with("-D") && name == "sudo")
            }))
}

/// Shells whose first operand is a script file.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"];
/// SQL clients that read statements from a file or stdin.
const SQL: &[&str] = &["psql", "mysql", "mariadb", "sqlite3"];

/// Every file `cmds` (parsed from `text`) would run.
pub fn runs(cmds: &[SimpleCmd], text: &str) -> Vec<FileRun> {
    let mut out: Vec<FileRun> = Vec::new();
    for c in cmds {
        for f in of(c) {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    if out.is_empty() {
        return out;
    }
    let first = |c: &SimpleCmd| {
        c.argv
            .first()
            .map(String::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let rooted = cmds
        .iter()
        .find(|c| {
            ROOTS.contains(&first(c).as_str())
                || c.wrappers.iter().any(|w| ROOTS.contains(&w.as_str()))
        })
        .map(first);
    let moved = cmds
        .iter()
        .find(|c| MOVERS.contains(&first(c).as_str()) || c.moved_dir || chdir_wrapper(&c.argv))
        .map(first);
    let loader = LOADERS.iter().find(|v| text.contains(*v));
    // A changed PATH decides which file `. name` (and `bash name`, when not here) finds.
    let path_changed = text.contains("PATH=") || text.contains("PATH+=");
    for f in out.iter_mut().filter(|f| f.unknowable.is_none()) {
        f.unknowable = if let Some(w) = &rooted {
            Some(format!(
                "the command runs it under {w}, where paths mean other files"
            ))
        } else if let Some(v) = loader {
            Some(format!(
                "the command sets {}, which makes the program load files the gateway does not read",
                v.trim_end_matches('=')
            ))
        } else if path_changed && !f.path.contains('/') {
            Some(format!(
                "the command changes PATH before it runs {}: which file that is cannot be known (name it by path)",
                f.path
            ))
        } else if let Some(m) = moved.as_ref().filter(|_| !f.path.starts_with('/')) {
            Some(format!(
                "the command changes directory ({m}) before it runs {}: which file that is cannot be known (name it by absolute path)",
                f.path
            ))
        } else {
            None
        };
    }
    out
}

fn run(path: &str, role: Role, program: &str) -> FileRun {
    FileRun {
        path: path.to_owned(),
        candidates: Vec::new(),
        role,
        program: program.to_owned(),
        unknowable: None,
    }
}

/// The operand at `i`, if it is a literal word (not only known at run time).
fn literal(c: &SimpleCmd, i: usize) -> Option<&str> {
    let w = c.argv.get(i)?;
    (!c.dynamic_words.get(i).copied().unwrap_or(false) && !w.is_empty()).then_some(w.as_str())
}

/// The index of the first operand, skipping options and the values of `with_value` options.
/// `None` when `stop` options appear first (`-c CODE`, `-m MODULE`: no file).
fn first_operand(argv: &[String], with_value: &[&str], stop: &[&str]) -> Option<usize> {
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            return (i + 1 < argv.len()).then_some(i + 1);
        }
        if stop.contains(&a) {
            return None;
        }
        if with_value.contains(&a) {
            i += 2;
            continue;
        }
        if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
            i += 1;
            continue;
        }
        return Some(i);
    }
    None
}

fn of(c: &SimpleCmd) -> Vec<FileRun> {
    let mut out = Vec::new();
    let Some(program) = c.argv.first().map(String::as_str) else {
        return out;
    };
    if let Some(path) = &c.program_path
        && !c.dynamic_name
    {
        out.push(run(path, Role::Program, path));
    }
    let stdin = c.stdin_path.as_deref().filter(|_| c.stdin_file);
    let interpreter = match program {
        "python" | "python3" => Some(Role::Python),
        "perl" => Some(Role::Perl),
        "ruby" => Some(Role::Ruby),
        "node" => Some(Role::Node),
        _ => None,
    };
    if SHELLS.contains(&program) {
        let args: &[String] = if program == "busybox" {
            match c.argv.get(1).map(String::as_str) {
                Some("sh" | "ash") => &c.argv[1..],
                _ => return out,
            }
        } else {
            &c.argv
        };
        let shift = c.argv.len() - args.len();
        let has = |f: &str| {
            args.iter().skip(1).any(|a| {
                a == f || (a.starts_with('-') && !a.starts_with("--") && a[1..].contains(&f[1..]))
            })
        };
        if has("-c") || has("-s") {
            return out;
        }
        match first_operand(
            args,
            &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"],
            &[],
        )
        .and_then(|i| literal(c, i + shift))
        {
            Some(path) => out.push(run(path, Role::Shell, program)),
            None => {
                if let Some(p) = stdin {
                    out.push(run(p, Role::Shell, program));
                }
            }
        }
    } else if matches!(program, "." | "source") {
        if let Some(path) = literal(c, 1) {
            out.push(run(path, Role::Shell, program));
        }
    } else if let Some(role) = interpreter {
        if crate::code::inline_code(&c.argv).is_some() {
            return out;
        }
        let (with_value, stop): (&[&str], &[&str]) = match role {
            Role::Python => (&["-W", "-X", "--check-hash-based-pycs"], &["-m", "-c"]),
            Role::Perl => (&["-I", "-M", "-m", "-x"], &["-e", "-E"]),
            Role::Ruby => (&["-I", "-r", "-C", "-E"], &["-e"]),
            _ => (
                &["-r", "--require", "--import", "--loader", "--conditions"],
                &["-e", "--eval", "-p", "--print"],
            ),
        };
        match first_operand(&c.argv, with_value, stop).and_then(|i| literal(c, i)) {
            Some(path) if path != "-" => out.push(run(path, role, program)),
            _ => {
                if let Some(p) = stdin {
                    out.push(run(p, role, program));
                }
            }
        }
    } else if program == "make" || program == "gmake" {
        out.push(makefile(c));
    } else if program == "crontab" {
        let listing = c
            .argv
            .iter()
            .skip(1)
            .any(|a| a.starts_with('-') && a.len() > 1 && a[1..].contains(['l', 'r', 'e']));
        if !listing
            && let Some(i) = first_operand(&c.argv, &["-u"], &[])
            && let Some(path) = literal(c, i)
            && path != "-"
        {
            out.push(run(path, Role::Crontab, program));
        }
    } else if SQL.contains(&program) {
        let files = crate::sqlclient::option_values(&c.argv, &["-f", "--file"]);
        let attached = c.argv.iter().skip(1).find_map(|a| {
            a.strip_prefix("-f")
                .filter(|v| !v.is_empty() && !a.starts_with("--"))
        });
        if let Some(path) = files.first().map(String::as_str).or(attached) {
            out.push(run(path, Role::Sql, program));
        } else if let Some(p) = stdin {
            out.push(run(p, Role::Sql, program));
        }
    }
    out
}

/// `make [-C DIR] [-f FILE]`: the Makefile it reads.
fn makefile(c: &SimpleCmd) -> FileRun {
    let dir = crate::sqlclient::option_values(&c.argv, &["-C", "--directory"])
        .pop()
        .or_else(|| {
            c.argv
                .iter()
                .find_map(|a| a.strip_prefix("-C").filter(|v| !v.is_empty()))
                .map(str::to_owned)
        });
    let join = |name: &str| match &dir {
        Some(d) if !name.starts_with('/') => format!("{}/{name}", d.trim_end_matches('/')),
        _ => name.to_owned(),
    };
    let file = crate::sqlclient::option_values(&c.argv, &["-f", "--file", "--makefile"])
        .pop()
        .or_else(|| {
            c.argv
                .iter()
                .find_map(|a| {
                    a.strip_prefix("-f")
                        .filter(|v| !v.is_empty() && !a.starts_with("--"))
                })
                .map(str::to_owned)
        });
    let all = crate::sqlclient::option_values(&c.argv, &["-f", "--file", "--makefile"]);
    if all.len() > 1 {
        // make reads every `-f` file, in order.
        let mut r = run(&join(&all[0]), Role::Make, "make");
        r.unknowable = Some(format!(
            "make reads {} makefiles here; name one per command to have it read",
            all.len()
        ));
        return r;
    }
    match file {
        Some(f) => run(&join(&f), Role::Make, "make"),
        None => FileRun {
            path: join("Makefile"),
            candidates: ["GNUmakefile", "makefile", "Makefile"]
                .iter()
                .map(|n| join(n))
                .collect(),
            role: Role::Make,
            program: "make".into(),
            unknowable: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::{Classifier, Context};

    fn files(cmd: &str) -> Vec<(String, super::Role)> {
        Classifier::builtin()
            .classify(cmd, &Context::default())
            .files
            .into_iter()
            .map(|f| (f.path, f.role))
            .collect()
    }

    #[test]
    fn every_way_of_running_a_file_names_it() {
        use super::Role::*;
        let cases: &[(&str, &str, super::Role)] = &[
            ("bash x.sh", "x.sh", Shell),
            ("bash -x -e x.sh a b", "x.sh", Shell),
            ("sh -o errexit x.sh", "x.sh", Shell),
            ("sudo bash x.sh", "x.sh", Shell),
            ("env FOO=1 timeout 5 sh ./x.sh", "./x.sh", Shell),
            ("sh -c ./x", "./x", Program),
            ("./x.sh", "./x.sh", Program),
            ("bin/deploy --now", "bin/deploy", Program),
            (". x.sh", "x.sh", Shell),
            ("source lib/env.sh", "lib/env.sh", Shell),
            ("bash < x.sh", "x.sh", Shell),
            ("python3 x.py", "x.py", Python),
            ("python3 -u -W ignore x.py arg", "x.py", Python),
            ("perl x.pl", "x.pl", Perl),
            ("node x.js", "x.js", Node),
            ("ruby x.rb", "x.rb", Ruby),
            ("make -f build.mk", "build.mk", Make),
            ("make -C sub install", "sub/Makefile", Make),
            ("crontab jobs.txt", "jobs.txt", Crontab),
            ("psql -f f.sql", "f.sql", Sql),
            ("psql --file=f.sql db", "f.sql", Sql),
            ("mysql db < f.sql", "f.sql", Sql),
        ];
        for (cmd, path, role) in cases {
            assert_eq!(files(cmd), vec![((*path).to_owned(), *role)], "{cmd}");
        }
        let make = Classifier::builtin().classify("make", &Context::default());
        assert_eq!(
            make.files[0].candidates,
            vec!["GNUmakefile", "makefile", "Makefile"]
        );
    }

    #[test]
    fn a_file_whose_identity_the_command_changes_is_unknowable() {
        let c = Classifier::builtin();
        let why = |cmd: &str| {
            c.classify(cmd, &Context::default())
                .files
                .first()
                .and_then(|f| f.unknowable.clone())
        };
        for cmd in [
            "cd sub && bash y.sh",
            "pushd sub; . y.sh",
            "bash -c 'cd ..; bash y.sh'",
            "env -C /srv bash y.sh",
            "sudo -D /srv ./y.sh",
            "chroot /srv bash /y.sh",
            "MAKEFILES=evil.mk make",
            "BASH_ENV=/tmp/e bash /srv/y.sh",
            "PYTHONPATH=. python3 /srv/a.py",
            "make -f evil.mk -f Makefile",
            "PATH=/tmp/x:$PATH; . x.sh",
        ] {
            assert!(why(cmd).is_some(), "{cmd}");
        }
        for cmd in [
            "cd /srv && bash /srv/y.sh",
            "bash y.sh",
            "sudo bash y.sh",
            "make -C sub",
        ] {
            assert_eq!(why(cmd), None, "{cmd}");
        }
    }

    #[test]
    fn code_on_the_command_line_and_run_time_paths_name_no_file() {
        for cmd in [
            "bash -c 'echo hi'",
            "python3 -c 'print(1)'",
            "python3 -m http.server",
            "bash \"$X\"",
            "crontab -l",
            "ls /usr/bin/bash",
            "/usr/bin/ls -la",
            "psql -c 'select 1'",
        ] {
            assert!(files(cmd).is_empty(), "{cmd}: {:?}", files(cmd));
        }
    }
}
