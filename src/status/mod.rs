//! `replmend status`: what every replication channel of a replica is doing.

pub mod auth;
pub mod errant;
pub mod errortext;
pub mod filters;
pub mod fleet;
pub mod fleet_render;
pub mod model;
pub mod read;
pub mod render;
pub mod topology;

pub use model::{Health, StatusReport};
pub use read::{StatusError, read_channels, read_status, workers_busy};
