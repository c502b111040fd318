//! The diagnosis model and the pure logic around it.

pub mod cause;
pub mod compare;
pub mod finder;
pub mod model;
pub mod origin;
pub mod render;
pub mod skipped;

pub use model::*;
