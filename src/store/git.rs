//! A store on a dedicated ref of a git repository (`refs/cairn/store` by default), so a small
//! org needs nothing but a private repository. Each write is a commit on that ref; the ref moves
//! by compare-and-swap, so a write is atomic and two writers cannot lose each other's objects.
//!
//! A CI runner's clone is thrown away after the job, so the ref lives on the remote: opening the
//! store fetches it and merges it into the local ref, and `publish` pushes it (merging again when
//! another runner pushed first) before any state commit names its data. Blobs and snapshot
//! manifests are immutable and content-addressed, so two writers' trees merge without real
//! conflicts: where both wrote one path, either copy is right, and ours is kept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{ErrorCode, ObjectType, Oid, Repository, Signature, Tree};

use super::StoreError;
use super::backend::Backend;

pub struct GitBackend {
    repo: Mutex<Repository>,
    reference: String,
    path: PathBuf,
    remote: Option<GitRemote>,
    /// One fetch or push at a time: the lock refresher shares the ref with the writer.
    syncing: Mutex<()>,
}

/// The remote the store's ref is shared through.
#[derive(Debug, Clone)]
pub struct GitRemote {
    pub name: String,
    /// Whether `publish` pushes (cairn.yaml's `state.push`).
    pub push: bool,
}

/// Rejected pushes replayed (fetch, merge, push again) before giving up.
const PUSH_ATTEMPTS: usize = 6;

/// Attempts to move the ref before giving up on a store that many writers contend for.
const MAX_RETRIES: usize = 20;

/// A ref's lock file older than this was left by a process killed while moving the ref
/// (git holds it for the few milliseconds of a rename): it is removed, or every later write
/// would fail. The waits between attempts on a locked ref add up to more than this.
const STALE_REF_LOCK: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a writer waits before trying a ref that another process has locked again.
const LOCKED_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(150);

impl GitBackend {
    /// The git repository that contains `dir`, storing under `reference`. With a remote that
    /// the repository knows, the remote's ref is fetched and merged first, so a fresh clone
    /// sees every blob that any runner pushed.
    pub fn open(
        dir: &Path,
        reference: &str,
        remote: Option<GitRemote>,
    ) -> Result<GitBackend, StoreError> {
        let repo = Repository::discover(dir).map_err(|e| StoreError::Backend {
            location: dir.display().to_string(),
            message: format!("the git store needs a git repository: {}", e.message()),
        })?;
        let remote = remote.filter(|r| repo.find_remote(&r.name).is_ok());
        let backend = GitBackend {
            repo: Mutex::new(repo),
            reference: reference.to_string(),
            path: dir.to_path_buf(),
            remote,
            syncing: Mutex::new(()),
        };
        if backend.remote.is_some() {
            backend.fetch()?;
        }
        Ok(backend)
    }

    /// Where the remote's copy of the ref is kept: `refs/remotes/<remote>/cairn/store` for
    /// `refs/cairn/store`.
    fn tracking_ref(&self, remote: &str) -> String {
        format!(
            "refs/remotes/{remote}/{}",
            self.reference.trim_start_matches("refs/")
        )
    }

    fn workdir(&self) -> Result<PathBuf, StoreError> {
        let repo = self.repo()?;
        Ok(repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| repo.path().to_path_buf()))
    }

    /// Runs the `git` command, which knows the user's credentials and transports.
    fn git(&self, args: &[&str]) -> Result<std::process::Output, StoreError> {
        crate::git_process::run(&self.workdir()?, args).map_err(|e| StoreError::Backend {
            location: self.location(),
            message: format!("cannot run git ({e}); install git"),
        })
    }

    /// Brings the remote's ref into its tracking ref and merges it into the local one. A
    /// remote without the ref yet (before the first push) is not an error.
    fn fetch(&self) -> Result<(), StoreError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let tracking = self.tracking_ref(&remote.name);
        let refspec = format!("+{}:{tracking}", self.reference);
        let output = self.git(&["fetch", "--quiet", "--no-tags", &remote.name, &refspec])?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            if stderr.contains("couldn't find remote ref") {
                return Ok(());
            }
            return Err(StoreError::Backend {
                location: self.location(),
                message: format!(
                    "fetching {} from {} failed: {}",
                    self.reference,
                    remote.name,
                    stderr.trim()
                ),
            });
        }
        self.merge_from(&tracking)
    }

    /// Makes the local ref contain everything `other` has: fast-forward where one contains the
    /// other, else a merge commit whose tree holds both sides' objects.
    fn merge_from(&self, other: &str) -> Result<(), StoreError> {
        let repo = self.repo()?;
        let theirs = match repo.find_reference(other) {
            Ok(reference) => reference.peel_to_commit().map_err(|e| self.error(e))?,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(()),
            Err(e) => return Err(self.error(e)),
        };
        for _ in 0..MAX_RETRIES {
            let ours = self.head(&repo)?.map(|(oid, _)| oid);
            let target = match ours {
                None => theirs.id(),
                Some(ours) if ours == theirs.id() => return Ok(()),
                Some(ours) => {
                    if repo
                        .graph_descendant_of(ours, theirs.id())
                        .map_err(|e| self.error(e))?
                    {
                        return Ok(());
                    }
                    if repo
                        .graph_descendant_of(theirs.id(), ours)
                        .map_err(|e| self.error(e))?
                    {
                        theirs.id()
                    } else {
                        self.merge_commit(&repo, ours, &theirs)?
                    }
                }
            };
            if self.move_ref(&repo, ours, target, "cairn store: the remote's objects")? {
                return Ok(());
            }
        }
        Err(self.kept_moving())
    }

    /// Moves the ref from `old` (None: it must not exist yet) to `new`. False when another
    /// writer moved or created it first: the caller starts again from its tree.
    fn move_ref(
        &self,
        repo: &Repository,
        old: Option<Oid>,
        new: Oid,
        message: &str,
    ) -> Result<bool, StoreError> {
        let moved = match old {
            Some(old) => repo.reference_matching(&self.reference, new, true, old, message),
            None => repo.reference(&self.reference, new, false, message),
        };
        match moved {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => Ok(false),
            Err(e) if e.code() == ErrorCode::Locked => {
                if !remove_stale_ref_lock(repo, &self.reference) {
                    std::thread::sleep(LOCKED_RETRY_WAIT);
                }
                Ok(false)
            }
            Err(e) => Err(self.error(e)),
        }
    }

    fn kept_moving(&self) -> StoreError {
        StoreError::Backend {
            location: self.location(),
            message: format!("{} kept moving; try again", self.reference),
        }
    }

    /// A commit with both histories as parents and both trees merged. A path that both sides
    /// wrote differently holds the same content sealed twice (or a lock of one runner's), so
    /// ours is kept; a path one side removed (prune, forget) stays removed.
    fn merge_commit(
        &self,
        repo: &Repository,
        ours: Oid,
        theirs: &git2::Commit<'_>,
    ) -> Result<Oid, StoreError> {
        let fail = |e: git2::Error| self.error(e);
        let our_commit = repo.find_commit(ours).map_err(fail)?;
        let base_tree = match repo.merge_base(ours, theirs.id()) {
            Ok(base) => Some(
                repo.find_commit(base)
                    .and_then(|c| c.tree())
                    .map_err(fail)?,
            ),
            Err(e) if e.code() == ErrorCode::NotFound => None,
            Err(e) => return Err(fail(e)),
        };
        let empty;
        let ancestor = match &base_tree {
            Some(tree) => tree,
            None => {
                let oid = repo
                    .treebuilder(None)
                    .and_then(|b| b.write())
                    .map_err(fail)?;
                empty = repo.find_tree(oid).map_err(fail)?;
                &empty
            }
        };
        let mut index = repo
            .merge_trees(
                ancestor,
                &our_commit.tree().map_err(fail)?,
                &theirs.tree().map_err(fail)?,
                None,
            )
            .map_err(fail)?;
        if index.has_conflicts() {
            let conflicts: Vec<git2::IndexConflict> = index
                .conflicts()
                .map_err(fail)?
                .collect::<Result<_, _>>()
                .map_err(fail)?;
            for conflict in conflicts {
                let Some(path) = conflict
                    .our
                    .as_ref()
                    .or(conflict.their.as_ref())
                    .or(conflict.ancestor.as_ref())
                    .map(|e| e.path.clone())
                else {
                    continue;
                };
                let path = String::from_utf8_lossy(&path).into_owned();
                index.conflict_remove(Path::new(&path)).map_err(fail)?;
                if let Some(mut entry) = conflict.our.or(conflict.their) {
                    // Stage 0: resolved.
                    entry.flags &= !0x3000;
                    index.add(&entry).map_err(fail)?;
                }
            }
        }
        let tree = index.write_tree_to(repo).map_err(fail)?;
        let tree = repo.find_tree(tree).map_err(fail)?;
        let signature = Signature::now("cairn", "cairn@localhost").map_err(fail)?;
        repo.commit(
            None,
            &signature,
            &signature,
            "cairn store: merge objects written by another runner",
            &tree,
            &[&our_commit, theirs],
        )
        .map_err(fail)
    }

    /// Pushes the ref to the remote; a rejection (another runner pushed first) fetches and
    /// merges their objects, then pushes again. Returns the remote's name when it pushed.
    fn push(&self) -> Result<Option<String>, StoreError> {
        let Some(remote) = self.remote.as_ref().filter(|r| r.push) else {
            return Ok(None);
        };
        let local = {
            let repo = self.repo()?;
            self.head(&repo)?.map(|(oid, _)| oid)
        };
        let Some(mut local) = local else {
            return Ok(None);
        };
        let tracking = self.tracking_ref(&remote.name);
        let refspec = format!("{0}:{0}", self.reference);
        let mut last = String::new();
        for _ in 0..PUSH_ATTEMPTS {
            {
                let repo = self.repo()?;
                let seen = repo.find_reference(&tracking).ok().and_then(|r| r.target());
                if seen == Some(local) {
                    return Ok(Some(remote.name.clone()));
                }
            }
            let output = self.git(&["push", "--quiet", &remote.name, &refspec])?;
            if output.status.success() {
                let repo = self.repo()?;
                crate::git_process::past_ref_lock(repo.path(), &tracking, || {
                    repo.reference(&tracking, local, true, "cairn store: pushed")
                })
                .map_err(|e| self.error(e))?;
                return Ok(Some(remote.name.clone()));
            }
            last = String::from_utf8_lossy(&output.stderr).trim().to_string();
            self.fetch()?;
            let repo = self.repo()?;
            local = match self.head(&repo)? {
                Some((oid, _)) => oid,
                None => break,
            };
        }
        Err(StoreError::Backend {
            location: self.location(),
            message: format!(
                "pushing {} to {} failed after {PUSH_ATTEMPTS} attempts: {last}",
                self.reference, remote.name
            ),
        })
    }

    fn error(&self, e: git2::Error) -> StoreError {
        StoreError::Backend {
            location: self.location(),
            message: e.message().to_string(),
        }
    }

    fn repo(&self) -> Result<std::sync::MutexGuard<'_, Repository>, StoreError> {
        self.repo.lock().map_err(|_| StoreError::Backend {
            location: self.location(),
            message: "a writer panicked".into(),
        })
    }

    /// The ref's commit and tree, if the ref exists yet.
    fn head<'r>(&self, repo: &'r Repository) -> Result<Option<(Oid, Tree<'r>)>, StoreError> {
        match repo.find_reference(&self.reference) {
            Ok(reference) => {
                let commit = reference.peel_to_commit().map_err(|e| self.error(e))?;
                let tree = commit.tree().map_err(|e| self.error(e))?;
                Ok(Some((commit.id(), tree)))
            }
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Changes one path (Some: set the blob, None: remove) and moves the ref, retrying when
    /// another writer moved it first.
    fn change(&self, path: &str, blob: Option<&[u8]>) -> Result<(), StoreError> {
        let parts: Vec<&str> = path.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(StoreError::Backend {
                location: self.location(),
                message: format!("invalid object path {path}"),
            });
        }
        let repo = self.repo()?;
        let blob = blob
            .map(|bytes| repo.blob(bytes))
            .transpose()
            .map_err(|e| self.error(e))?;
        for _ in 0..MAX_RETRIES {
            let head = self.head(&repo)?;
            let old_tree = head.as_ref().map(|(_, tree)| tree);
            let new_tree = with_entry(&repo, old_tree, &parts, blob).map_err(|e| self.error(e))?;
            let new_tree = match new_tree {
                Some(oid) => oid,
                None => repo
                    .treebuilder(None)
                    .and_then(|b| b.write())
                    .map_err(|e| self.error(e))?,
            };
            if old_tree.is_some_and(|t| t.id() == new_tree) {
                return Ok(());
            }
            let tree = repo.find_tree(new_tree).map_err(|e| self.error(e))?;
            let signature =
                Signature::now("cairn", "cairn@localhost").map_err(|e| self.error(e))?;
            let parents: Vec<git2::Commit> = match &head {
                Some((commit, _)) => vec![repo.find_commit(*commit).map_err(|e| self.error(e))?],
                None => Vec::new(),
            };
            let parents: Vec<&git2::Commit> = parents.iter().collect();
            let message = format!(
                "cairn store: {} {path}",
                if blob.is_some() { "put" } else { "delete" }
            );
            let commit = repo
                .commit(None, &signature, &signature, &message, &tree, &parents)
                .map_err(|e| self.error(e))?;
            if self.move_ref(&repo, head.as_ref().map(|(old, _)| *old), commit, &message)? {
                return Ok(());
            }
        }
        Err(self.kept_moving())
    }
}

/// The tree with `parts` set to `blob` (or removed); None when the tree ends up empty.
fn with_entry(
    repo: &Repository,
    tree: Option<&Tree>,
    parts: &[&str],
    blob: Option<Oid>,
) -> Result<Option<Oid>, git2::Error> {
    let mut builder = repo.treebuilder(tree)?;
    let (name, rest) = (parts[0], &parts[1..]);
    if rest.is_empty() {
        match blob {
            Some(oid) => {
                builder.insert(name, oid, 0o100644)?;
            }
            None => {
                if builder.get(name)?.is_some() {
                    builder.remove(name)?;
                }
            }
        }
    } else {
        let subtree = match tree.and_then(|t| t.get_name(name)) {
            Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                Some(repo.find_tree(entry.id())?)
            }
            _ => None,
        };
        match with_entry(repo, subtree.as_ref(), rest, blob)? {
            Some(oid) => {
                builder.insert(name, oid, 0o040000)?;
            }
            None => {
                if builder.get(name)?.is_some() {
                    builder.remove(name)?;
                }
            }
        }
    }
    if builder.is_empty() {
        return Ok(None);
    }
    builder.write().map(Some)
}

impl Backend for GitBackend {
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.change(path, Some(bytes))
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let repo = self.repo()?;
        let Some((_, tree)) = self.head(&repo)? else {
            return Ok(None);
        };
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        let blob = repo.find_blob(entry.id()).map_err(|e| self.error(e))?;
        Ok(Some(blob.content().to_vec()))
    }

    fn exists(&self, path: &str) -> Result<bool, StoreError> {
        let repo = self.repo()?;
        let Some((_, tree)) = self.head(&repo)? else {
            return Ok(false);
        };
        Ok(tree
            .get_path(Path::new(path))
            .is_ok_and(|e| e.kind() == Some(ObjectType::Blob)))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let repo = self.repo()?;
        let Some((_, tree)) = self.head(&repo)? else {
            return Ok(Vec::new());
        };
        let prefix = prefix.trim_end_matches('/');
        let mut out = Vec::new();
        let mut failed = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                match entry.name() {
                    Ok(name) => {
                        let path = format!("{dir}{name}");
                        if prefix.is_empty()
                            || path.starts_with(&format!("{prefix}/"))
                            || path == prefix
                        {
                            out.push(path);
                        }
                    }
                    Err(e) => failed = Some(e),
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|e| self.error(e))?;
        if let Some(e) = failed {
            return Err(self.error(e));
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<(), StoreError> {
        self.change(path, None)
    }

    fn location(&self) -> String {
        format!("{} in {}", self.reference, self.path.display())
    }

    fn publish(&self) -> Result<Option<String>, StoreError> {
        let _one_at_a_time = self.syncing.lock();
        Ok(self
            .push()?
            .map(|remote| format!("{} pushed to {remote}", self.reference)))
    }

    /// Locks protect runners that share the store through the remote only if they meet
    /// there: fetch theirs, push ours.
    fn sync_locks(&self) -> Result<(), StoreError> {
        if self.remote.as_ref().is_some_and(|r| r.push) {
            let _one_at_a_time = self.syncing.lock();
            self.fetch()?;
            self.push()?;
        }
        Ok(())
    }
}

/// Removes the lock file of `reference` when it is older than [`STALE_REF_LOCK`]; true when
/// it did (or the lock is gone already).
fn remove_stale_ref_lock(repo: &Repository, reference: &str) -> bool {
    let lock = repo.path().join(format!("{reference}.lock"));
    let age = std::fs::metadata(&lock)
        .and_then(|m| m.modified())
        .map(|modified| modified.elapsed().unwrap_or_default());
    match age {
        Ok(age) if age > STALE_REF_LOCK => std::fs::remove_file(&lock).is_ok(),
        Ok(_) => false,
        // Released meanwhile: try again at once.
        Err(_) => true,
    }
}
