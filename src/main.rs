//! The `replmend` binary: parse, dispatch, print, exit. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = replmend::cli::Cli::parse();
    ExitCode::from(replmend::ops::main(&cli))
}
