//! The project a command works on: a config repository, the state branch beside it and the
//! store it names, opened from the environment. Used by the commands and by reconcile.

pub mod connect;
pub mod store_access;

/// Reads the environment (secrets, keys, CI markers); tests and embedders supply their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;
