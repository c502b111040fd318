//! The registry of live sandbox directories (one file per directory under the run dir), so a
//! sweep finds those whose owner died wherever they are.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::paths::run_dir;

/// Live sandbox directories, wherever they are (a chroot build's are inside its chroot under
/// whichever REPLMEND_CACHE their process used), so a sweep finds them.
pub(crate) fn registry() -> PathBuf {
    run_dir().join("registry")
}

fn reg_name(dir: &Path) -> String {
    dir.display().to_string().replace('/', "%")
}

pub(crate) fn register(dir: &Path) -> Result<()> {
    fs::create_dir_all(registry())?;
    fs::write(registry().join(reg_name(dir)), dir.display().to_string())?;
    Ok(())
}

pub(crate) fn unregister(dir: &Path) {
    let _ = fs::remove_file(registry().join(reg_name(dir)));
}
