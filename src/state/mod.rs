//! What the state branch records about each task, and the policies applied to it: its status
//! (conditions, runs, snapshots, coverage), when it is next due (`schedule`) and which of its
//! snapshots retention keeps, and the one decision (`decision`) plan shows and apply carries
//! out. Read by plan, status and snapshots; written by apply.

pub mod decision;
pub mod retention;
pub mod schedule;
pub mod status;
