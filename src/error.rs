//! The one error type of the library. Every variant says what failed, and `guidance` says what
//! to do next. Problems *in* manifests are not errors but diagnostics (`manifest::Diagnostic`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} is not inside a git repository", path.display())]
    NotAGitRepository { path: PathBuf, needs: GitNeed },
    #[error("revision `{rev}` does not exist in the git repository of {}", path.display())]
    RevisionNotFound { rev: String, path: PathBuf },
    #[error("the config directory `{}` does not exist at revision `{rev}`", path.display())]
    NotInRevision { path: PathBuf, rev: String },
    #[error("git failed in {}: {message}", path.display())]
    Git { path: PathBuf, message: String },
    #[error("the manifests in {} have errors", dir.display())]
    InvalidConfig { dir: PathBuf },
    #[error("the state branch's {path} is unreadable: {detail}")]
    UnreadableStatus {
        task: String,
        path: String,
        branch: String,
        detail: String,
    },
    #[error("no key to open the store: neither {key_env} nor {passphrase_env} is set")]
    NoKey {
        key_env: String,
        passphrase_env: String,
    },
    #[error(
        "the store {} is inside the checkout, which {ci} throws away after the job: backups kept there would be lost",
        path.display()
    )]
    StoreInCheckout { path: PathBuf, ci: String },
    #[error(
        "the backup's data could not be pushed to the remote store ({detail}); nothing was committed to the state branch, so no snapshot of this run is reported"
    )]
    Unpublished { detail: String },
    #[error(
        "the git store would stay on this {ci} runner: it is pushed only to the remote `{remote}` with state.push: true, and the runner is thrown away after the job"
    )]
    GitStoreNotPushed { remote: String, ci: String },
    #[error("GitHub: {message}")]
    GitHub { message: String },
    #[error("{name} is not set")]
    MissingVariable { name: String, purpose: String },
    #[error("no task `{id}` in {}", dir.display())]
    NoSuchTask {
        id: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    #[error("login failed: {message}")]
    Login { message: String, next: String },
    /// A request the command cannot carry out as given.
    #[error("{message}")]
    Usage { message: String, next: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error(transparent)]
    Restore(#[from] crate::restore::RestoreError),
}

/// What a command needed git for, when the directory is not in a git repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitNeed {
    /// `--rev`: manifests as committed.
    Revision,
    /// `plan`'s base revision.
    Base,
    /// The state branch (apply, status, diff, ...).
    State,
}

impl Error {
    /// What the user can do about it.
    pub fn guidance(&self) -> String {
        match self {
            Error::Io { .. } => {
                "check that the path exists and that you may read it".to_string()
            }
            Error::NotADirectory { .. } => {
                "pass the directory that holds cairn.yaml, not a file in it".to_string()
            }
            Error::NotAGitRepository { needs, .. } => match needs {
                GitNeed::Revision => "--rev reads manifests from git history; run it inside a git repository, or drop --rev to read the files on disk",
                GitNeed::Base => "plan compares the manifests with a base revision in git; run it in the config repository's git clone (a new one: `git init`, then `git add -A && git commit`)",
                GitNeed::State => "cairn records each task's state on a branch of the config repository; run it in the repository's git clone (a new one: `git init`, then `git add -A && git commit`)",
            }
            .to_string(),
            Error::RevisionNotFound { .. } => {
                "give a branch, tag or commit that exists (see `git log --oneline`); in a shallow CI clone, fetch more history first".to_string()
            }
            Error::NotInRevision { .. } => {
                "the config directory was added after that revision; pick a later one or validate the work tree".to_string()
            }
            Error::Git { .. } => "check the repository with `git fsck`".to_string(),
            Error::InvalidConfig { dir } => format!("run `cairn validate {}` and fix what it reports", dir.display()),
            Error::UnreadableStatus { task, path, branch, .. } => format!(
                "it was edited by hand or damaged; take it back from the branch's history (`git log -p {branch} -- {path}`), commit and push; the store's snapshots of {task} are unaffected"
            ),
            Error::NoKey { key_env, passphrase_env } => format!(
                "set {passphrase_env} to the passphrase of one of the store's key files, or {key_env} to the store's raw key (`cairn key raw` prints it)"
            ),
            Error::MissingVariable { name, purpose } => format!("set {name} to {purpose}"),
            Error::Unpublished { .. } => "check that the runner may push to the remote (a GitHub workflow needs `permissions: contents: write`), then run apply again: it backs up anew".to_string(),
            Error::GitStoreNotPushed { remote, .. } => format!("set `state.push: true` in cairn.yaml and make sure the checkout has the remote `{remote}` (state.remote), or use an s3 store"),
            Error::GitHub { .. } => "check GITHUB_TOKEN and that the workflow has `permissions: pull-requests: write` (fork pull requests get a read-only token: the plan is still in the job summary)".to_string(),
            Error::StoreInCheckout { .. } => "keep the store where it outlives the runner: `store: {git: {}}` in cairn.yaml keeps it on the remote's refs/cairn/store (small orgs), `store: {s3: {bucket: ...}}` in a bucket (large ones); a local store suits only a self-hosted runner, at a path outside the checkout (such as /var/lib/cairn/store)".to_string(),
            Error::NoSuchTask { known, .. } if known.is_empty() => {
                "add a task under tasks/ (`cairn validate` lists what is wrong with the ones there)".to_string()
            }
            Error::NoSuchTask { known, .. } => format!("the tasks here are: {}", known.join(", ")),
            Error::Login { next, .. } | Error::Usage { next, .. } => next.clone(),
            Error::Store(e) => e.guidance(),
            Error::Source(e) => e.guidance(),
            Error::Backup(e) => e.guidance(),
            Error::Restore(crate::restore::RestoreError::Source(e)) => format!(
                "{}; then run the same restore again: it continues where it stopped",
                e.guidance()
            ),
            Error::Restore(crate::restore::RestoreError::Journal(e)) => format!(
                "{}; then run the same restore again: it continues where it stopped, and creates nothing twice",
                e.guidance()
            ),
            Error::Restore(crate::restore::RestoreError::Snapshot(e)) => format!(
                "{}; or restore from another snapshot (`--snapshot`); what was restored stays, and the same restore run again creates nothing twice",
                e.guidance()
            ),
        }
    }
}
