//! cairn: backup-as-code for SaaS data, Salesforce first.
//!
//! The binary is a thin layer over this library: `commands` holds one function per subcommand,
//! each taking an options struct; everything below follows the data flow in DESIGN.md.

pub mod commands;
pub mod diff;
pub mod error;
pub mod git_process;
pub mod gitops;
pub mod manifest;
pub mod notify;
pub mod plan;
pub mod reconcile;
pub mod search;
pub mod sim;
pub mod snapshot;
pub mod source;
pub mod store;
pub mod text;
pub mod time;

pub use error::Error;
