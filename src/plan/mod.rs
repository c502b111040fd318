//! Playbooks and the planner (pure).
