//! Which privileges a remedy needs, and whether the connected user has them: named before
//! anything changes, never discovered halfway through a repair. See docs/privileges.md. The
//! grants are read and compared in `capability::grants` (the probe and status use them too).

pub use crate::capability::grants::*;
pub use crate::flavor::Need;
