//! The `replmend` binary: parse, dispatch, print, exit. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

// Decoding a big transaction allocates a few values per row on one thread and frees them on
// another: glibc's allocator spent a third of diagnose's time there, mimalloc a fraction.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = replmend::cli::Cli::parse();
    ExitCode::from(replmend::ops::main(&cli))
}
