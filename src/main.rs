//! The `replmend` binary: parse, dispatch, print, exit. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

// Decoding a big transaction allocates a few values per row on one thread and frees them on
// another: glibc's allocator spent a third of diagnose's time there, mimalloc a fraction.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc reads its options from the environment when it initializes, before `main`. With
/// `arena_eager_commit` on (its default) every thread verify or diagnose starts commits an
/// arena of its own: resync's peak RSS was 67 MiB, with it off 21 MiB at the same speed. This
/// runs among the first constructors (priority 99, before mimalloc's default-priority one)
/// and leaves a value the user set alone.
#[used]
#[unsafe(link_section = ".init_array.00099")]
static MIMALLOC_OPTIONS: extern "C" fn() = mimalloc_options;

extern "C" fn mimalloc_options() {
    // SAFETY: runs before main, on the only thread, with static NUL-terminated strings; libc's
    // setenv uses libc's own allocator, not mimalloc.
    unsafe { libc::setenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr(), c"0".as_ptr(), 0) };
}

fn main() -> ExitCode {
    replmend::timing::start();
    let cli = replmend::cli::Cli::parse();
    let code = replmend::ops::main(&cli);
    replmend::timing::mark("done");
    exit(code)
}

/// Everything is written and closed by now (ops::main flushed stdout; the journal is never
/// buffered): exiting without the allocator's teardown saves milliseconds a batch repair's
/// heap spends being returned to the OS just before the OS takes it back anyway.
fn exit(code: u8) -> ExitCode {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process at once; no Rust state is observed after it.
    unsafe { libc::_exit(i32::from(code)) }
}
