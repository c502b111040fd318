//! Playbooks and the planner: pure, unit-tested, no I/O.

pub mod errant;
mod facts;
pub mod logged;
mod losses;
pub mod plan;
pub mod playbook;
pub mod render;
pub mod resync;
mod rows;
mod steps;

pub use plan::{Plan, PlanSet, Policy, Step, Winner, plan};
pub use playbook::RemedyId;

#[cfg(test)]
pub(crate) mod tests;
