//! cairn: backup-as-code for SaaS data, Salesforce first.
//!
//! The binary is a thin layer over this library: `commands` holds one function per subcommand,
//! each taking an options struct; ARCHITECTURE.md maps the layers below it.

pub mod backup;
pub mod commands;
pub mod diff;
pub mod error;
pub mod git_process;
pub mod gitops;
pub mod manifest;
pub mod notify;
pub mod ops;
pub mod plan;
pub mod project;
pub mod reconcile;
pub mod restore;
pub mod search;
pub mod snapshot;
pub mod source;
pub mod state;
pub mod store;
pub mod templates;
pub mod text;
pub mod time;

pub use error::Error;
