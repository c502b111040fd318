//! The source's binary log: fetching the failing transaction (edge) and decoding its values.

pub use crate::decode;
pub mod fetch;
pub mod origin;
pub mod rows;
