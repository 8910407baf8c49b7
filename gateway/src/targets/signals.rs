//! Signal names between SSH (RFC 4254 names without `SIG`), Unix numbers and the
//! descriptions portable-pty reports.

use nix::sys::signal::Signal;

/// SSH signal name to a Unix signal.
pub fn from_ssh_name(name: &str) -> Option<Signal> {
    Some(match name {
        "ABRT" => Signal::SIGABRT,
        "ALRM" => Signal::SIGALRM,
        "FPE" => Signal::SIGFPE,
        "HUP" => Signal::SIGHUP,
        "ILL" => Signal::SIGILL,
        "INT" => Signal::SIGINT,
        "KILL" => Signal::SIGKILL,
        "PIPE" => Signal::SIGPIPE,
        "QUIT" => Signal::SIGQUIT,
        "SEGV" => Signal::SIGSEGV,
        "TERM" => Signal::SIGTERM,
        "USR1" => Signal::SIGUSR1,
        "USR2" => Signal::SIGUSR2,
        _ => return None,
    })
}

/// Unix signal number to its SSH name (`SIGTERM` → `TERM`).
pub fn ssh_name(num: i32) -> String {
    match Signal::try_from(num) {
        Ok(s) => s.as_str().trim_start_matches("SIG").to_owned(),
        Err(_) => format!("SIG{num}"),
    }
}

/// glibc `strsignal` text (what portable-pty reports) to an SSH name.
pub fn from_description(desc: &str) -> String {
    let num = match desc {
        "Hangup" => 1,
        "Interrupt" => 2,
        "Quit" => 3,
        "Illegal instruction" => 4,
        "Aborted" => 6,
        "Floating point exception" => 8,
        "Killed" => 9,
        "User defined signal 1" => 10,
        "Segmentation fault" => 11,
        "User defined signal 2" => 12,
        "Broken pipe" => 13,
        "Alarm clock" => 14,
        "Terminated" => 15,
        _ => return desc.replace(' ', "_").to_uppercase(),
    };
    ssh_name(num)
}

/// russh's signal enum to a Unix signal.
pub fn from_russh(sig: &russh::Sig) -> Option<Signal> {
    use russh::Sig;
    match sig {
        Sig::ABRT => Some(Signal::SIGABRT),
        Sig::ALRM => Some(Signal::SIGALRM),
        Sig::FPE => Some(Signal::SIGFPE),
        Sig::HUP => Some(Signal::SIGHUP),
        Sig::ILL => Some(Signal::SIGILL),
        Sig::INT => Some(Signal::SIGINT),
        Sig::KILL => Some(Signal::SIGKILL),
        Sig::PIPE => Some(Signal::SIGPIPE),
        Sig::QUIT => Some(Signal::SIGQUIT),
        Sig::SEGV => Some(Signal::SIGSEGV),
        Sig::TERM => Some(Signal::SIGTERM),
        Sig::USR1 => Some(Signal::SIGUSR1),
        Sig::Custom(name) => from_ssh_name(name),
    }
}

/// An SSH name to russh's enum, for exit-signal messages.
pub fn to_russh(name: &str) -> russh::Sig {
    use russh::Sig;
    match name {
        "ABRT" => Sig::ABRT,
        "ALRM" => Sig::ALRM,
        "FPE" => Sig::FPE,
        "HUP" => Sig::HUP,
        "ILL" => Sig::ILL,
        "INT" => Sig::INT,
        "KILL" => Sig::KILL,
        "PIPE" => Sig::PIPE,
        "QUIT" => Sig::QUIT,
        "SEGV" => Sig::SEGV,
        "TERM" => Sig::TERM,
        "USR1" => Sig::USR1,
        other => Sig::Custom(other.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(ssh_name(15), "TERM");
        assert_eq!(from_description("Killed"), "KILL");
        assert_eq!(from_ssh_name("INT"), Some(Signal::SIGINT));
    }
}
