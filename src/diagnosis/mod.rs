//! The diagnosis model and the pure logic around it.

pub mod errortext;
pub mod model;

pub use model::*;
