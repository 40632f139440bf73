//! Why a task's run failed. Its text (what failed, and what to do next) becomes the task's
//! result and the message its status records.

use crate::backup::BackupError;
use crate::error::Error;
use crate::source::SourceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(super) enum TaskFailure {
    #[error("{0}; {next}", next = .0.guidance())]
    Source(#[from] SourceError),
    #[error(
        "the credentials reach {word} {reached}, but the task is pinned to {pinned} (source.orgId)"
    )]
    WrongAccount {
        word: &'static str,
        reached: String,
        pinned: String,
    },
    #[error(
        "the credentials now reach {word} {reached}, but this task backed up {word} {before}: that forces a new lineage; give the task a new id"
    )]
    AccountChanged {
        word: &'static str,
        reached: String,
        before: String,
    },
    /// No answer is not a disconnection: the connection stays as last recorded.
    #[error(
        "the {word} could not be reached ({detail}); the connection is as last recorded, and the next run tries again"
    )]
    Unreachable { word: &'static str, detail: String },
    #[error(
        "Disconnected ({reason}): {detail}; run `cairn auth login --task {task}` or fix the connected app, then apply again"
    )]
    Disconnected {
        reason: String,
        detail: String,
        task: String,
    },
    #[error("{0}; {next}", next = .0.guidance())]
    Backup(#[from] BackupError),
    #[error("{0}; {next}", next = .0.guidance())]
    Store(#[from] StoreError),
    #[error("snapshot {snapshot} does not read back from the store: {error}; {next}", next = .error.guidance())]
    Unverified { snapshot: String, error: StoreError },
    #[error("snapshot {snapshot} vanished from the store while the run committed it")]
    Vanished { snapshot: String },
    /// The state branch could not be read.
    #[error("{0}; {next}", next = .0.guidance())]
    State(#[from] Error),
    /// The manifest asks what the task's backups forbid (`state::decision`).
    #[error("{0}")]
    Refused(String),
}

impl TaskFailure {
    /// The API budget (cairn's ceiling, or the org's allocation) ran out before anything was
    /// backed up: the run did none of its work, and the next one does it, so it is partial,
    /// not failed.
    pub(super) fn out_of_budget(&self) -> bool {
        let spent = |e: &SourceError| {
            matches!(
                e,
                SourceError::BudgetExhausted { .. } | SourceError::DailyLimitReached { .. }
            )
        };
        match self {
            TaskFailure::Source(e) | TaskFailure::Backup(BackupError::Source(e)) => spent(e),
            TaskFailure::Backup(BackupError::NothingBackedUp { .. }) => true,
            _ => false,
        }
    }
}
