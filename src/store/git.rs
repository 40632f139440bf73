//! A store on a dedicated ref of a git repository (`refs/cairn/store` by default), so a small
//! org needs nothing but a private repository. Each write is a commit on that ref; the ref moves
//! by compare-and-swap, so a write is atomic and two writers cannot lose each other's objects.
//! Pushing the ref to a remote is the state commit's job (`git push origin refs/cairn/store`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use git2::{ErrorCode, ObjectType, Oid, Repository, Signature, Tree};

use super::StoreError;
use super::backend::Backend;

pub struct GitBackend {
    repo: Mutex<Repository>,
    reference: String,
    path: PathBuf,
}

/// Attempts to move the ref before giving up on a store that many writers contend for.
const MAX_RETRIES: usize = 20;

impl GitBackend {
    /// The git repository that contains `dir`, storing under `reference`.
    pub fn open(dir: &Path, reference: &str) -> Result<GitBackend, StoreError> {
        let repo = Repository::discover(dir).map_err(|e| StoreError::Backend {
            location: dir.display().to_string(),
            message: format!("the git store needs a git repository: {}", e.message()),
        })?;
        Ok(GitBackend {
            repo: Mutex::new(repo),
            reference: reference.to_string(),
            path: dir.to_path_buf(),
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
            let moved = match &head {
                Some((old, _)) => {
                    repo.reference_matching(&self.reference, commit, true, *old, &message)
                }
                None => repo.reference(&self.reference, commit, false, &message),
            };
            match moved {
                Ok(_) => return Ok(()),
                // Another writer moved the ref (or created it): start again from its tree.
                Err(e)
                    if matches!(
                        e.code(),
                        ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        Err(StoreError::Backend {
            location: self.location(),
            message: format!("{} kept moving; try again", self.reference),
        })
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
}
