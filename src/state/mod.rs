//! What the state branch records about each task, and the policies applied to it: its status
//! (conditions, runs, snapshots, coverage), when it is next due (`schedule`) and which of its
//! snapshots retention keeps, and the one decision (`decision`) plan shows and apply carries
//! out. Read by plan, status and snapshots; written by apply.

pub(crate) mod decision;
pub(crate) mod restore_record;
pub(crate) mod retention;
pub(crate) mod schedule;
pub(crate) mod status;
