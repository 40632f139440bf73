//! Operations on a whole store, above snapshot and search, which they read: `check` verifies
//! every kind of file the store holds and compares it with the state, `prune` deletes what no
//! snapshot or search index needs.

pub mod check;
pub mod prune;
