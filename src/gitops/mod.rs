//! The state branch: observed state, committed by `cairn apply` to a branch of the config
//! repository (`cairn-state`), never touching the work tree. Commits are built with git2 from
//! path-level changes, so a push rejected because another job pushed first is fixed by
//! replaying the same changes on the new tip (each task writes only `state/<task>/`). Fetch and
//! push go through the `git` command, which knows the user's credentials and transports.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature};

use crate::error::Error;

/// How a replayed write joins a version of the file that another runner pushed meanwhile:
/// `(base, theirs, ours)` to the merged content, where base is what this run read.
pub type Merge = fn(Option<&[u8]>, &[u8], &[u8]) -> Vec<u8>;

/// One file of a state commit: written, or removed when `None`.
#[derive(Debug, Clone)]
pub struct Change {
    pub path: String,
    pub content: Option<Vec<u8>>,
    /// None: ours replaces theirs.
    pub merge: Option<Merge>,
}

impl PartialEq for Change {
    fn eq(&self, other: &Change) -> bool {
        self.path == other.path && self.content == other.content
    }
}

impl Eq for Change {}

impl Change {
    pub fn write(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Change {
        Change {
            path: path.into(),
            content: Some(content.into()),
            merge: None,
        }
    }

    /// A write that, replayed on another runner's newer version, is merged with it.
    pub fn write_merged(
        path: impl Into<String>,
        content: impl Into<Vec<u8>>,
        merge: Merge,
    ) -> Change {
        Change {
            merge: Some(merge),
            ..Change::write(path, content)
        }
    }

    pub fn remove(path: impl Into<String>) -> Change {
        Change {
            path: path.into(),
            content: None,
            merge: None,
        }
    }
}

/// How many times a rejected push is replayed on the new tip before giving up.
const PUSH_ATTEMPTS: usize = 6;

pub struct StateBranch {
    repo: Repository,
    workdir: PathBuf,
    pub branch: String,
    pub remote: String,
}

fn git_error(repo: &Path, e: impl std::fmt::Display) -> Error {
    Error::Git {
        path: repo.to_path_buf(),
        message: e.to_string(),
    }
}

impl StateBranch {
    /// The state branch of the git repository that holds `dir`.
    pub fn open(dir: &Path, branch: &str, remote: &str) -> Result<StateBranch, Error> {
        let repo = Repository::discover(dir).map_err(|_| Error::NotAGitRepository {
            path: dir.to_path_buf(),
            needs: crate::error::GitNeed::State,
        })?;
        let workdir = repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| repo.path().to_path_buf());
        Ok(StateBranch {
            repo,
            workdir,
            branch: branch.to_string(),
            remote: remote.to_string(),
        })
    }

    fn local_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/{}/{}", self.remote, self.branch)
    }

    pub fn has_remote(&self) -> bool {
        self.repo.find_remote(&self.remote).is_ok()
    }

    /// The config repository's current commit, and whether the work tree differs from it.
    pub fn config_revision(&self) -> Option<String> {
        let head = self.repo.head().ok()?.peel_to_commit().ok()?;
        Some(head.id().to_string())
    }

    /// The manifests of the config repository in `config_dir` (cairn.yaml, tasks/,
    /// restores/, templates/) that differ from the commit checked out: changed, added or removed and not
    /// committed. `apply` records the commit it ran, so it must be what ran.
    pub fn uncommitted_manifests(&self, config_dir: &Path) -> Result<Vec<String>, Error> {
        let Some(workdir) = self.repo.workdir() else {
            return Ok(Vec::new());
        };
        let fail = |e: git2::Error| git_error(&self.workdir, e);
        let root = std::fs::canonicalize(workdir).map_err(|e| git_error(&self.workdir, e))?;
        let dir = std::fs::canonicalize(config_dir).map_err(|e| git_error(config_dir, e))?;
        let prefix = dir
            .strip_prefix(&root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let mut options = git2::StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        for spec in ["cairn.yaml", "tasks", "restores", "templates"] {
            options.pathspec(format!("{prefix}{spec}"));
        }
        let statuses = self.repo.statuses(Some(&mut options)).map_err(fail)?;
        Ok(statuses
            .iter()
            .filter(|s| !s.status().is_empty() && !s.status().is_ignored())
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect())
    }

    fn git(&self, args: &[&str]) -> Result<std::process::Output, Error> {
        crate::git_process::run(&self.workdir, args).map_err(|e| {
            git_error(
                &self.workdir,
                format!("cannot run git ({e}); install git, or set state.push: false"),
            )
        })
    }

    /// Brings the remote's state branch into the remote-tracking ref; a remote without the
    /// branch yet (the first apply) is not an error.
    pub fn fetch(&self) -> Result<(), Error> {
        if !self.has_remote() {
            return Ok(());
        }
        let refspec = format!("+{}:{}", self.local_ref(), self.tracking_ref());
        let output = self.git(&["fetch", "--quiet", &self.remote, &refspec])?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || stderr.contains("couldn't find remote ref") {
            return Ok(());
        }
        Err(git_error(
            &self.workdir,
            format!("git fetch {} failed: {}", self.remote, stderr.trim()),
        ))
    }

    fn commit_at(&self, reference: &str) -> Option<git2::Commit<'_>> {
        self.repo
            .find_reference(reference)
            .ok()?
            .peel_to_commit()
            .ok()
    }

    /// The newest state: the local branch, unless the remote's is ahead of it.
    pub fn tip(&self) -> Option<git2::Commit<'_>> {
        let local = self.commit_at(&self.local_ref());
        let remote = self.commit_at(&self.tracking_ref());
        match (local, remote) {
            (Some(local), Some(remote)) => {
                let behind = local.id() != remote.id()
                    && self
                        .repo
                        .graph_descendant_of(remote.id(), local.id())
                        .unwrap_or(false);
                Some(if behind { remote } else { local })
            }
            (local, remote) => local.or(remote),
        }
    }

    /// A file on the state branch, if present.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(tip) = self.tip() else {
            return Ok(None);
        };
        let tree = tip.tree().map_err(|e| git_error(&self.workdir, e))?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        let blob = entry
            .to_object(&self.repo)
            .and_then(|o| o.peel_to_blob())
            .map_err(|e| git_error(&self.workdir, e))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// The names in a directory of the state branch.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, Error> {
        let Some(subtree) = self.subtree(dir)? else {
            return Ok(Vec::new());
        };
        Ok(subtree
            .iter()
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect())
    }

    /// Every file under `dir` on the branch's tip, by path from the repository's root.
    pub fn list_files(&self, dir: &str) -> Result<Vec<String>, Error> {
        let Some(subtree) = self.subtree(dir)? else {
            return Ok(Vec::new());
        };
        let mut files = Vec::new();
        subtree
            .walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
                if entry.kind() == Some(git2::ObjectType::Blob)
                    && let Ok(name) = entry.name()
                {
                    files.push(format!("{dir}/{parent}{name}"));
                }
                git2::TreeWalkResult::Ok
            })
            .map_err(|e| git_error(&self.workdir, e))?;
        Ok(files)
    }

    /// The directory `dir` on the branch's tip, if the tip has one there.
    fn subtree(&self, dir: &str) -> Result<Option<git2::Tree<'_>>, Error> {
        let Some(tip) = self.tip() else {
            return Ok(None);
        };
        let tree = tip.tree().map_err(|e| git_error(&self.workdir, e))?;
        let Ok(entry) = tree.get_path(Path::new(dir)) else {
            return Ok(None);
        };
        Ok(entry
            .to_object(&self.repo)
            .and_then(|o| o.peel_to_tree())
            .ok())
    }

    fn signature(&self) -> Result<Signature<'static>, Error> {
        Signature::now("cairn", "cairn@localhost").map_err(|e| git_error(&self.workdir, e))
    }

    /// Applies the changes on top of `parent` (or as the first commit of the branch).
    fn build_commit(
        &self,
        parent: Option<&git2::Commit<'_>>,
        changes: &[Change],
        message: &str,
    ) -> Result<Oid, Error> {
        let fail = |e: git2::Error| git_error(&self.workdir, e);
        let base = match parent {
            Some(parent) => parent.tree().map_err(fail)?,
            None => {
                let empty = self
                    .repo
                    .treebuilder(None)
                    .map_err(fail)?
                    .write()
                    .map_err(fail)?;
                self.repo.find_tree(empty).map_err(fail)?
            }
        };
        let mut update = git2::build::TreeUpdateBuilder::new();
        for change in changes {
            match &change.content {
                Some(bytes) => {
                    let blob = self.repo.blob(bytes).map_err(fail)?;
                    update.upsert(&change.path, blob, git2::FileMode::Blob);
                }
                // Removing what is not there (another runner removed it first) is done.
                None if base.get_path(Path::new(&change.path)).is_err() => {}
                None => {
                    update.remove(&change.path);
                }
            }
        }
        let tree_id = update.create_updated(&self.repo, &base).map_err(fail)?;
        let tree = self.repo.find_tree(tree_id).map_err(fail)?;
        let signature = self.signature()?;
        let parents: Vec<&git2::Commit<'_>> = parent.into_iter().collect();
        self.repo
            .commit(None, &signature, &signature, message, &tree, &parents)
            .map_err(fail)
    }

    /// The changes as they apply on `theirs`: a mergeable file that `theirs` changed since
    /// `base` is merged.
    fn merge_changes(
        &self,
        base: Option<Oid>,
        theirs: &git2::Commit<'_>,
        changes: &[Change],
    ) -> Result<Vec<Change>, Error> {
        let read = |commit: &git2::Commit<'_>, path: &str| -> Option<Vec<u8>> {
            let entry = commit.tree().ok()?.get_path(Path::new(path)).ok()?;
            Some(
                entry
                    .to_object(&self.repo)
                    .ok()?
                    .peel_to_blob()
                    .ok()?
                    .content()
                    .to_vec(),
            )
        };
        let base = base.and_then(|oid| self.repo.find_commit(oid).ok());
        Ok(changes
            .iter()
            .map(|change| {
                let (Some(merge), Some(ours)) = (change.merge, &change.content) else {
                    return change.clone();
                };
                let before = base.as_ref().and_then(|b| read(b, &change.path));
                match read(theirs, &change.path) {
                    Some(now) if Some(&now) != before.as_ref() => Change {
                        content: Some(merge(before.as_deref(), &now, ours)),
                        ..change.clone()
                    },
                    _ => change.clone(),
                }
            })
            .collect())
    }

    /// Commits the changes on the state branch (the work tree is never touched) and returns
    /// the commit id. Nothing changed, no commit.
    pub fn commit(&self, changes: &[Change], message: &str) -> Result<Option<Oid>, Error> {
        let tip = self.tip();
        let oid = self.build_commit(tip.as_ref(), changes, message)?;
        let fail = |e: git2::Error| git_error(&self.workdir, e);
        let commit = self.repo.find_commit(oid).map_err(fail)?;
        if let Some(tip) = &tip
            && commit.tree_id() == tip.tree_id()
        {
            return Ok(None);
        }
        self.set_ref(&self.local_ref(), oid, "cairn apply")?;
        Ok(Some(oid))
    }

    /// Points `name` at `oid`, past a lock file that a git or a cairn killed while moving the
    /// ref left behind.
    fn set_ref(&self, name: &str, oid: Oid, message: &str) -> Result<(), Error> {
        crate::git_process::past_ref_lock(self.repo.path(), name, || {
            self.repo.reference(name, oid, true, message)
        })
        .map(|_| ())
        .map_err(|e| git_error(&self.workdir, e))
    }

    /// Pushes the branch. A rejection (someone pushed first) fetches their state and replays
    /// `changes` on it, then tries again.
    pub fn push(&self, changes: &[Change], message: &str) -> Result<(), Error> {
        if !self.has_remote() {
            return Err(git_error(
                &self.workdir,
                format!(
                    "there is no git remote `{}` to push the state branch to; add it, or set state.push: false",
                    self.remote
                ),
            ));
        }
        let refspec = format!("{}:{}", self.local_ref(), self.local_ref());
        // What this run read: a file another runner changed since is merged, not replaced.
        let base = self
            .commit_at(&self.local_ref())
            .and_then(|c| c.parent(0).ok())
            .map(|c| c.id());
        let mut last = String::new();
        for _ in 0..PUSH_ATTEMPTS {
            let output = self.git(&["push", "--quiet", &self.remote, &refspec])?;
            if output.status.success() {
                // The remote now has our tip: record it as seen.
                if let Some(tip) = self.commit_at(&self.local_ref()) {
                    self.set_ref(&self.tracking_ref(), tip.id(), "cairn push")?;
                }
                return Ok(());
            }
            last = String::from_utf8_lossy(&output.stderr).trim().to_string();
            self.fetch()?;
            let Some(theirs) = self.commit_at(&self.tracking_ref()) else {
                break;
            };
            let merged = self.merge_changes(base, &theirs, changes)?;
            let oid = self.build_commit(Some(&theirs), &merged, message)?;
            self.set_ref(&self.local_ref(), oid, "cairn apply (replayed)")?;
        }
        Err(git_error(
            &self.workdir,
            format!(
                "pushing {} to {} failed after {PUSH_ATTEMPTS} attempts: {last}",
                self.branch, self.remote
            ),
        ))
    }
}
