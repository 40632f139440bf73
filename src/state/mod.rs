//! What the state branch records about each task, and the policies applied to it: its status
//! (conditions, runs, snapshots, coverage), when it is next due (`schedule`) and which of its
//! snapshots retention keeps. Read by plan, status and snapshots; written by apply.

pub mod retention;
pub mod schedule;
pub mod status;
