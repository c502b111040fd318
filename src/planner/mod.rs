//! Playbooks and the planner: pure, unit-tested, no I/O.

pub mod errant;
pub mod plan;
pub mod playbook;
pub mod render;
pub mod resync;

pub use plan::{Plan, PlanSet, Policy, Step, Winner, plan};
pub use playbook::RemedyId;

#[cfg(test)]
pub(crate) mod tests;
