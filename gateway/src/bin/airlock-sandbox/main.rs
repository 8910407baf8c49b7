//! `airlock-sandbox`: the sandbox helper on its own, small enough to start quickly.
//!
//! Every local command starts through the sandbox helper ([`airlock_gateway::sandbox::guard`]).
//! `airlock sandbox-exec` is that helper too, but starting the whole gateway binary (its SSH,
//! HTTP and database code) for each command costs a few milliseconds; this binary links only
//! the helper's code. It takes exactly `airlock sandbox-exec`'s command line, so it can stand in
//! for it anywhere (the gateway uses it when it sits next to `airlock` and comes from the same
//! build, an upstream `runner` may name it), plus `--build-id`, which the gateway asks at start.

use std::ffi::OsString;

use airlock_gateway::sandbox::{self, SANDBOX_FAILED_EXIT, SUBCOMMAND};

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some(SUBCOMMAND) => sandbox::guard::main(&args[2..]),
        Some("--build-id") => println!("{}", sandbox::HELPER_BUILD),
        _ => {
            eprintln!(
                "airlock: denied: usage: airlock-sandbox {SUBCOMMAND} [OPTIONS] -- PROGRAM [ARG…] (the same command line as `airlock {SUBCOMMAND}`), or airlock-sandbox --build-id"
            );
            std::process::exit(SANDBOX_FAILED_EXIT);
        }
    }
}
