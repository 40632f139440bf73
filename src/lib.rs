//! cairn: backup-as-code for SaaS data, Salesforce first.
//!
//! The binary calls `cli::main`; `cli` turns arguments into the options of `commands`, which
//! holds one function per subcommand; ARCHITECTURE.md maps the layers below them.

// An item is `pub` only when the crate exports it: the public surface is chosen, not accidental.
#![warn(unreachable_pub)]

pub mod backup;
pub mod cli;
pub mod commands;
pub mod diff;
pub mod error;
pub mod exit;
pub(crate) mod git_process;
pub mod gitops;
pub mod manifest;
pub(crate) mod notify;
pub mod ops;
pub(crate) mod plan;
pub mod progress;
pub mod project;
pub(crate) mod reconcile;
pub mod restore;
pub mod search;
pub mod snapshot;
pub mod source;
pub(crate) mod state;
pub mod store;
pub(crate) mod templates;
pub mod text;
pub mod time;

pub use error::Error;
