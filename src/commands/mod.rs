//! One module per subcommand. Each is a function over the library with an options struct, so
//! tests and other front ends can call it without the CLI.

pub mod apply;
pub mod auth;
pub mod check;
pub mod demo;
pub mod diff;
pub mod export;
pub mod forget;
pub mod init;
pub mod key;
pub mod plan_comment;
pub mod prune;
pub mod repair;
pub mod report;
pub mod restore;
pub(crate) mod restore_manifests;
pub mod scaffold;
pub mod schema;
pub mod search;
pub mod sim;
pub mod snapshot_access;
pub mod snapshots;
pub mod status;
pub mod validate;
pub mod version;

use crate::exit::ExitStatus;

/// A command's outcome as a value: text for people, JSON (its serialization) for scripts, and
/// the exit status it means. The command line chooses the rendering (`--format`).
pub trait Report: serde::Serialize {
    fn text(&self) -> String;

    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Success
    }

    fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// The line saying what made a change durable beyond this machine (the git store's push); empty
/// when the store needed no publishing.
fn published_line(published: Option<&str>) -> String {
    published
        .map(|done| format!("{done}.\n"))
        .unwrap_or_default()
}
