//! Write-then-run, closed: a command that runs a file (`bash deploy.sh`, `./x`, `. lib.sh`,
//! `python3 x.py`, `make`, `crontab FILE`, `psql -f FILE`, `mysql < FILE`) is judged by what the
//! file holds, reviewers see that text, and what runs is exactly what they approved.
//!
//! - **Reading**: the classifier names the files ([`airlock_classifier::files`]); this module
//!   reads each from the target itself — through the sandbox on a local target (so it sees what
//!   the command would, and nothing the sandbox hides), over the gateway's own connection on an
//!   upstream — up to [`MAX_SCRIPT_BYTES`], resolving paths as the command's shell would. Files
//!   those files run (`. ./lib.sh`) are read too, up to [`MAX_SCRIPTS`] in all.
//! - **Judging**: [`airlock_classifier::Classifier::judge_file`]; the command's tier is at least
//!   the file's, and a file that cannot be read whole, is binary, or is run by relative path
//!   after a `cd` keeps the command at medium or above with a reason saying so.
//! - **Binding**: [`Bound`] — just before the approved command starts, every file is read again
//!   and must have the SHA-256 reviewers saw; on a local target the approved bytes are then
//!   pinned read-only at the file's path in the command's mount namespace for its whole run.
//!
//! Owns: the reading protocol, the merge into the assessment, the pins. The gate calls it; the
//! sessions call [`verify`] before they start a command.

use std::path::PathBuf;
use std::time::Duration;

use airlock_approvals::scripts::{
    MAX_SCRIPT_BYTES, MAX_SCRIPTS, RiskyLine, ScriptFile, ScriptKind, ScriptPin, sha256_hex,
};
use airlock_classifier::content::Kind;
use airlock_classifier::files::{FileRun, Role};
use airlock_classifier::{Assessment, Classifier, Context, Reason, Tier};

use crate::config::Target;
use crate::deny::Deny;
use crate::targets::{Control, Exit, Mode, Output, Targets};

/// How deep files that run files are followed (`a.sh` sources `b.sh` sources `c.sh`).
const MAX_DEPTH: usize = 3;
/// How long reading one file may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A file as read from the target.
#[derive(Debug, Clone)]
pub struct Read {
    /// The absolute path the file resolved to (symlinks followed).
    pub resolved: String,
    /// At most [`MAX_SCRIPT_BYTES`] + 1 bytes.
    pub bytes: Vec<u8>,
}

/// Reads files from a target, as the command would find them.
pub trait Reader {
    /// Read `run` on `target` (trying its candidates in order). `Err` says why not, in a few
    /// words.
    fn read(
        &self,
        target: &Target,
        run: &FileRun,
    ) -> impl Future<Output = Result<Read, String>> + Send;
}

/// The reader sessions use: the target itself, through [`Targets::spawn`] in read-only mode
/// (on a local target inside the sandbox, so what it hides stays hidden), from the session's
/// working directory (`None`: where a command starts).
pub struct TargetReader<'a> {
    pub targets: &'a Targets,
    pub cwd: Option<&'a str>,
}

impl Reader for TargetReader<'_> {
    async fn read(&self, target: &Target, run: &FileRun) -> Result<Read, String> {
        let script = read_script(run, self.cwd);
        let mut proc = self
            .targets
            .spawn(target, &script, None, Mode::ReadOnly)
            .await
            .map_err(|d| d.to_string())?;
        let collect = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let limit = MAX_SCRIPT_BYTES + 8192;
            while let Some(chunk) = proc.output.recv().await {
                match chunk {
                    Output::Stdout(b) => {
                        out.extend_from_slice(&b);
                        if out.len() > limit {
                            let _ = proc.control.send(Control::Kill).await;
                            return Err("it printed more than it should".to_owned());
                        }
                    }
                    Output::Stderr(b) if err.len() < 4096 => err.extend_from_slice(&b),
                    Output::Stderr(_) => {}
                }
            }
            let exit = (&mut proc.exit).await.unwrap_or(Exit::Code(255));
            Ok((out, err, exit))
        };
        let (out, err, exit) = match tokio::time::timeout(READ_TIMEOUT, collect).await {
            Ok(r) => r?,
            Err(_) => {
                let _ = proc.control.send(Control::Kill).await;
                return Err(format!(
                    "reading it took longer than {}s",
                    READ_TIMEOUT.as_secs()
                ));
            }
        };
        if exit != Exit::Code(0) {
            let said = String::from_utf8_lossy(&err);
            let line = said
                .lines()
                .map(|l| l.rsplit(": ").next().unwrap_or(l).trim())
                .find(|l| !l.is_empty())
                .unwrap_or("the target could not read it");
            return Err(airlock_classifier::visible::Shown::of(line).one_line());
        }
        parse_read(&out)
    }
}

/// A file the command runs, with the bytes reviewers saw (when read whole).
#[derive(Debug, Clone)]
pub struct Seen {
    pub file: ScriptFile,
    /// What to read again before it runs.
    pub run: FileRun,
    /// The approved bytes, for pinning; `None` when not read whole.
    pub bytes: Option<std::sync::Arc<Vec<u8>>>,
}

impl Seen {
    pub fn pin(&self) -> Option<ScriptPin> {
        self.file.pin()
    }
}

fn kind_of(k: Kind) -> ScriptKind {
    match k {
        Kind::Shell => ScriptKind::Shell,
        Kind::Python => ScriptKind::Python,
        Kind::Perl => ScriptKind::Perl,
        Kind::Ruby => ScriptKind::Ruby,
        Kind::Node => ScriptKind::Node,
        Kind::Sql => ScriptKind::Sql,
        Kind::Make => ScriptKind::Make,
        Kind::Crontab => ScriptKind::Crontab,
        Kind::Binary => ScriptKind::Binary,
    }
}

/// Reasons that say a file is unseen; once it has been read they are replaced by what it holds.
const UNSEEN_RULES: &[&str] = &[
    "exec.shell-script",
    "shell.source",
    "code.make",
    "exec.shell-from-file",
];

fn medium(rule: &str, text: String) -> Reason {
    Reason {
        rule: rule.into(),
        span: None,
        text,
        tier: Tier::Medium,
    }
}

fn unread(run: &FileRun, resolved: String, problem: String) -> ScriptFile {
    ScriptFile {
        path: run.path.clone(),
        resolved,
        kind: ScriptKind::Unread,
        size: 0,
        sha256: None,
        content: None,
        problem: Some(problem),
        lines: Vec::new(),
        previous: None,
        unbound: None,
    }
}

/// Read and judge every file `assessment` names, fold what they hold into it, and return the
/// files as reviewers will see them. Never fails: what cannot be read is a reason.
pub async fn inspect<R: Reader>(
    classifier: &std::sync::Arc<Classifier>,
    ctx: &Context,
    target: &Target,
    assessment: &mut Assessment,
    reader: &R,
) -> Vec<Seen> {
    let mut out: Vec<Seen> = Vec::new();
    let mut more: Vec<Reason> = Vec::new();
    // (file, depth, run by a file that changed directory first)
    let mut queue: std::collections::VecDeque<(FileRun, usize, Option<String>)> = assessment
        .files
        .iter()
        .cloned()
        .map(|f| (f, 0, None))
        .collect();
    let mut all_read = true;
    while let Some((run, depth, moved)) = queue.pop_front() {
        if out.len() >= MAX_SCRIPTS {
            all_read = false;
            more.push(medium(
                "script.too-many",
                format!(
                    "runs more than {MAX_SCRIPTS} files; {} and any after it were not read",
                    run.path
                ),
            ));
            break;
        }
        if let Some(why) = &run.unknowable {
            all_read = false;
            more.push(medium("script.unresolved", format!("{}: {why}", run.path)));
            out.push(Seen {
                file: unread(&run, String::new(), why.clone()),
                run,
                bytes: None,
            });
            continue;
        }
        if let Some(parent) = moved {
            all_read = false;
            let why = format!(
                "run by {parent} after it changes directories, PATH or files: which file that is cannot be known"
            );
            more.push(medium("script.unresolved", format!("{}: {why}", run.path)));
            out.push(Seen {
                file: unread(&run, String::new(), why),
                run,
                bytes: None,
            });
            continue;
        }
        let read = reader.read(target, &run).await;
        let read = match read {
            Ok(r) => r,
            Err(why) => {
                all_read = false;
                more.push(medium(
                    "script.unread",
                    format!(
                        "{}: cannot read it on the target ({why}): its content cannot be reviewed",
                        run.path
                    ),
                ));
                out.push(Seen {
                    file: unread(&run, String::new(), format!("cannot read: {why}")),
                    run,
                    bytes: None,
                });
                continue;
            }
        };
        if out.iter().any(|s| s.file.resolved == read.resolved) {
            continue;
        }
        if read.bytes.len() > MAX_SCRIPT_BYTES {
            all_read = false;
            let why = format!("larger than {} KiB", MAX_SCRIPT_BYTES / 1024);
            more.push(medium(
                "script.too-large",
                format!("{}: {why}: its content cannot be reviewed", run.path),
            ));
            let mut f = unread(&run, read.resolved, why);
            f.size = read.bytes.len() as u64;
            out.push(Seen {
                file: f,
                run,
                bytes: None,
            });
            continue;
        }
        // Up to 256 KiB of text, judged line by line: off the async workers.
        let j = {
            let (c, r, x, bytes) = (
                classifier.clone(),
                run.clone(),
                ctx.clone(),
                read.bytes.clone(),
            );
            match tokio::task::spawn_blocking(move || c.judge_file(&r, &r.path, &bytes, &x)).await {
                Ok(j) => j,
                Err(e) => {
                    all_read = false;
                    tracing::error!(error = %e, path = %run.path, "judging a script failed");
                    more.push(Reason {
                        rule: "script.unjudged".into(),
                        span: None,
                        text: format!("{}: could not be judged: treated as high", run.path),
                        tier: Tier::High,
                    });
                    continue;
                }
            }
        };
        let text = (j.kind != Kind::Binary)
            .then(|| String::from_utf8(read.bytes.clone()).ok())
            .flatten();
        more.extend(j.reasons);
        if j.kind == Kind::Binary {
            all_read = false;
        }
        for nested in j.files {
            if depth + 1 > MAX_DEPTH {
                all_read = false;
                more.push(medium(
                    "script.too-deep",
                    format!(
                        "{}: runs {}, deeper than {MAX_DEPTH} files: not read",
                        run.path, nested.path
                    ),
                ));
                continue;
            }
            queue.push_back((nested, depth + 1, j.changes_dir.then(|| run.path.clone())));
        }
        let sha = sha256_hex(&read.bytes);
        let lines = j
            .lines
            .into_iter()
            .map(|l| RiskyLine {
                line: l.line,
                tier: l.tier,
                rule: l.rule,
                text: l.text,
            })
            .collect();
        out.push(Seen {
            file: ScriptFile {
                path: run.path.clone(),
                resolved: read.resolved,
                kind: kind_of(j.kind),
                size: read.bytes.len() as u64,
                sha256: Some(sha),
                content: text,
                problem: (j.kind == Kind::Binary)
                    .then(|| "binary: its content cannot be reviewed".to_owned()),
                lines,
                previous: None,
                unbound: match j.kind {
                    Kind::Python | Kind::Perl | Kind::Ruby | Kind::Node => Some(format!(
                        "{} code loads modules (from beside it, too) that the gateway does not read",
                        kind_of(j.kind).as_str()
                    )),
                    Kind::Binary => Some("binary: its content cannot be reviewed".into()),
                    _ => None,
                },
            },
            run,
            bytes: Some(std::sync::Arc::new(read.bytes)),
        });
    }
    if out.is_empty() {
        return out;
    }
    if all_read {
        assessment
            .reasons
            .retain(|r| !UNSEEN_RULES.contains(&r.rule.as_str()));
    }
    for s in out.iter().filter(|s| s.file.sha256.is_some()) {
        let f = &s.file;
        more.push(medium(
            "script.runs",
            format!(
                "runs {} ({} bytes, sha256 {}...), shown to reviewers: an approval runs exactly these bytes",
                f.path,
                f.size,
                f.sha256.as_deref().unwrap_or_default().get(..12).unwrap_or_default()
            ),
        ));
    }
    assessment.add_reasons(more, ctx);
    out
}

/// Why a file reviewers saw is not what would run now.
async fn changed<R: Reader>(target: &Target, seen: &Seen, reader: &R) -> Option<String> {
    let want = seen.file.sha256.as_deref()?;
    match reader.read(target, &seen.run).await {
        Err(why) => Some(format!("it can no longer be read ({why})")),
        Ok(r) if r.resolved != seen.file.resolved => Some(format!(
            "it now resolves to {} (approved: {})",
            r.resolved, seen.file.resolved
        )),
        Ok(r) if sha256_hex(&r.bytes) != want => Some(format!(
            "its sha256 is now {}... (approved {}...)",
            &sha256_hex(&r.bytes)[..12],
            want.get(..12).unwrap_or(want)
        )),
        Ok(_) => None,
    }
}

/// Just before an approved (or whitelisted) command starts: every file it runs must still hold
/// the bytes that were judged. `Err` denies it.
pub async fn verify<R: Reader>(target: &Target, seen: &[Seen], reader: &R) -> Result<(), Deny> {
    for s in seen {
        if let Some(why) = changed(target, s, reader).await {
            return Err(Deny::ScriptChanged {
                path: s.file.path.clone(),
                why,
            });
        }
    }
    Ok(())
}

/// The approved bytes, written where the sandbox helper can bind them over the files' paths;
/// removed when dropped (after the command ends).
#[derive(Debug, Default)]
pub struct Bound {
    copies: Vec<PathBuf>,
    /// (copy, path the command runs)
    pub pins: Vec<(PathBuf, PathBuf)>,
}

impl Bound {
    /// Write a copy of each file read whole into `dir` (the gateway's run dir, which every
    /// command's sandbox hides), readable and — for programs run by path — executable.
    pub fn write(dir: &std::path::Path, seen: &[Seen]) -> Result<Self, Deny> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut b = Bound::default();
        for s in seen {
            let Some(bytes) = &s.bytes else { continue };
            let name = airlock_approvals::ids::new_id()
                .map_err(|e| Deny::Target(format!("cannot pin the approved script: {e}")))?;
            let copy = dir.join(format!("pin-{name}"));
            let mode = if s.run.role == Role::Program {
                0o555
            } else {
                0o444
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&copy)
                .and_then(|mut f| f.write_all(bytes).map(|()| f))
                .map_err(|e| {
                    tracing::error!(path = %copy.display(), error = %e, "cannot write the approved copy of a script");
                    Deny::Target(format!(
                        "cannot pin the approved copy of {}: {e}",
                        s.file.path
                    ))
                })?;
            let _ = f.flush();
            b.copies.push(copy.clone());
            b.pins.push((copy, PathBuf::from(&s.file.resolved)));
        }
        Ok(b)
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        for c in &self.copies {
            let _ = std::fs::remove_file(c);
        }
    }
}

/// The shell text that reads `run` on the target: resolves it as the command's shell would,
/// prints the resolved path and a NUL, then at most [`MAX_SCRIPT_BYTES`] + 1 bytes.
pub fn read_script(run: &FileRun, cwd: Option<&str>) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut s = String::new();
    if let Some(d) = cwd {
        s.push_str(&format!(
            "builtin cd -- {} || {{ echo 'cannot enter the working directory' >&2; exit 3; }}\n",
            q(d)
        ));
    }
    let names: Vec<&str> = if run.candidates.is_empty() {
        vec![run.path.as_str()]
    } else {
        run.candidates.iter().map(String::as_str).collect()
    };
    s.push_str("p=\nfor c in");
    for n in &names {
        s.push(' ');
        s.push_str(&q(n));
    }
    s.push_str("; do [ -e \"$c\" ] && { p=$c; break; }; done\n");
    // `. x` looks in PATH first; `bash x` only when x is not in the working directory.
    let path_search = "for d in ${PATH//:/ }; do [ -f \"$d/$c\" ] && { p=$d/$c; break; }; done";
    if run.role == Role::Shell && names.len() == 1 && !names[0].contains('/') {
        if matches!(run.program.as_str(), "." | "source") {
            s.push_str(&format!(
                "c={}; q=$p; p=; {path_search}; [ -n \"$p\" ] || p=$q\n",
                q(names[0])
            ));
        } else {
            s.push_str(&format!(
                "c={}; [ -n \"$p\" ] || {{ {path_search}; }}\n",
                q(names[0])
            ));
        }
    }
    s.push_str(
        "[ -n \"$p\" ] || { echo 'no such file' >&2; exit 3; }\n\
         [ -d \"$p\" ] && { echo 'a directory, not a file' >&2; exit 3; }\n\
         [ -f \"$p\" ] || { echo 'not a regular file' >&2; exit 3; }\n\
         r=$(readlink -f -- \"$p\") || exit 3\n\
         builtin printf '%s\\0' \"$r\"\n",
    );
    s.push_str(&format!(
        "exec head -c {} -- \"$p\"\n",
        MAX_SCRIPT_BYTES + 1
    ));
    s
}

/// Split what [`read_script`] printed.
pub fn parse_read(out: &[u8]) -> Result<Read, String> {
    let nul = out
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| "the target printed no path".to_owned())?;
    let resolved =
        String::from_utf8(out[..nul].to_vec()).map_err(|_| "its path is not UTF-8".to_owned())?;
    if !resolved.starts_with('/') {
        return Err(format!("it resolved to {resolved:?}, not an absolute path"));
    }
    Ok(Read {
        resolved,
        bytes: out[nul + 1..].to_vec(),
    })
}
