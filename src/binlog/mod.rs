//! The source's binary log: fetching the failing transaction (edge) and decoding its values.

pub mod decode;
pub mod fetch;
pub mod rows;
