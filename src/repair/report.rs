//! A step's outcome in words as it happens, on stderr: repair, resync, inject-errant and the
//! watcher print the same line. Below `ops` and `watch`, so both use it without importing
//! each other.

/// A step's outcome as it happens (stderr): repair, resync and inject-errant print the same.
pub fn print_step(r: &crate::repair::apply::StepResult) {
    eprintln!(
        "  step {:>2} [{}] {} — {}",
        r.step, r.endpoint, r.description, r.detail
    );
}
