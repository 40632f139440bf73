//! The project a command works on: a config repository, the state branch beside it and the
//! store it names, opened from the environment. Used by the commands and by reconcile.

pub mod connect;
pub mod store_access;
