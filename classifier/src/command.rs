//! One simple command as the classifier sees it, after quote removal and unwrapping: argv,
//! which words are only known at run time, redirections, what feeds its standard input and
//! which wrappers were peeled to reach it. The walker builds these; judges read them.

/// A file a command writes through a redirection.
#[derive(Debug, Clone)]
pub struct Redirect {
    pub target: String,
    pub dynamic: bool,
    /// `>>`: appends instead of truncating.
    pub append: bool,
}

/// What bash passes in place of `<(…)`; judges treat it as code produced at run time.
pub const PROC_SUBST_PATH: &str = "/dev/fd/63";

/// One simple command as the shell would run it.
#[derive(Debug, Clone, Default)]
pub struct SimpleCmd {
    /// Program and arguments after quote removal and unwrapping.
    pub argv: Vec<String>,
    /// The program name is only known at run time (`$X`, `$(…)`).
    pub dynamic_name: bool,
    /// For each word of `argv`, whether it is only known at run time (kept in step with
    /// `argv` through unwrapping, so `sudo $X` still has a run-time program name).
    pub dynamic_words: Vec<bool>,
    /// For each word, whether it *starts* with a run-time part (`$X`, `"$(…)"`), so it could be
    /// any flag (`find . $(echo -delete)`); in step with `argv` like `dynamic_words`.
    pub opaque_words: Vec<bool>,
    /// Some argument is only known at run time.
    pub dynamic_args: bool,
    /// Some argument is the output of a command substitution (`sh -c "$(curl …)"`).
    pub substituted_args: bool,
    /// Character range of the command in the text the user sent.
    pub span: Option<(usize, usize)>,
    /// Standard input comes from an earlier pipeline stage.
    pub stdin_piped: bool,
    /// Standard input is a heredoc, a here-string or the output of a literal `echo`/`printf`
    /// earlier in the pipeline, with this text.
    pub stdin_text: Option<String>,
    /// Standard input is redirected from a file (`< dump.sql`), whose contents are unseen.
    pub stdin_file: bool,
    /// Standard input is a here-string or heredoc whose text is only known at run time
    /// (`bash <<< "$(… | base64 -d)"`): nobody can read what the program will be fed.
    pub stdin_runtime: bool,
    /// The file standard input is redirected from, as written.
    pub stdin_path: Option<String>,
    /// Files written via `>`, `>>`, `&>`, `<>`.
    pub redirects: Vec<Redirect>,
    /// Wrappers peeled off to reach `argv` (`sudo`, `env`, `timeout`, …).
    pub wrappers: Vec<String>,
    /// Variables set for this command only (`X=1 cmd`), as written.
    pub env: Vec<(String, String)>,
    /// The program was named by a path outside the system directories (`./ls`).
    pub program_path: Option<String>,
    /// A wrapper peeled to reach it changes the working directory or root (`env -C`,
    /// `sudo -D`, `chroot`): relative paths name other files than they seem to.
    pub moved_dir: bool,
}

impl SimpleCmd {
    /// Standard input is text only known at run time: judged like data piped in.
    pub fn runtime_stdin(&mut self) {
        self.stdin_text = None;
        self.stdin_piped = true;
        self.stdin_runtime = true;
    }
}
