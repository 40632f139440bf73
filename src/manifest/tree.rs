//! Reading a config repository's files from a working directory or from a git commit.
//!
//! `plan` compares manifests at two revisions, so the loader never assumes a checkout: a git
//! revision is read blob by blob from its tree.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Manifests larger than this are refused before they are read into memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What a file read from the tree gives.
pub enum FileContent {
    Bytes(Vec<u8>),
    TooLarge(u64),
}

/// A config repository's files at one revision (or in the working directory).
pub enum ConfigTree {
    WorkTree {
        root: PathBuf,
    },
    Git {
        repo: git2::Repository,
        tree: git2::Oid,
        rev: String,
        root: PathBuf,
    },
}

impl ConfigTree {
    /// The config repository in directory `root` as it is on disk.
    pub fn work_tree(root: &Path) -> Result<Self, Error> {
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => Ok(ConfigTree::WorkTree {
                root: root.to_path_buf(),
            }),
            Ok(_) => Err(Error::NotADirectory {
                path: root.to_path_buf(),
            }),
            Err(source) => Err(Error::Io {
                path: root.to_path_buf(),
                source,
            }),
        }
    }

    /// The config repository in directory `root` as committed at `rev` (any revision git
    /// understands: a branch, tag, commit id, `HEAD~2`, ...). `root` may be a subdirectory of the
    /// git work tree.
    pub fn at_revision(root: &Path, rev: &str) -> Result<Self, Error> {
        let git_error = |source: git2::Error| Error::Git {
            path: root.to_path_buf(),
            message: source.message().to_string(),
        };
        let repo = git2::Repository::discover(root).map_err(|_| Error::NotAGitRepository {
            path: root.to_path_buf(),
            needs: crate::error::GitNeed::Revision,
        })?;
        let tree = {
            let object = repo
                .revparse_single(rev)
                .map_err(|_| Error::RevisionNotFound {
                    rev: rev.to_string(),
                    path: root.to_path_buf(),
                })?;
            let commit_tree = object.peel_to_tree().map_err(git_error)?;
            let prefix = match repo.workdir() {
                Some(workdir) => {
                    let abs_root = root.canonicalize().map_err(|source| Error::Io {
                        path: root.to_path_buf(),
                        source,
                    })?;
                    let abs_workdir = workdir.canonicalize().map_err(|source| Error::Io {
                        path: workdir.to_path_buf(),
                        source,
                    })?;
                    abs_root
                        .strip_prefix(&abs_workdir)
                        .map(Path::to_path_buf)
                        .unwrap_or_default()
                }
                None => PathBuf::new(),
            };
            let tree = if prefix.as_os_str().is_empty() {
                commit_tree.id()
            } else {
                let entry = commit_tree
                    .get_path(&prefix)
                    .map_err(|_| Error::NotInRevision {
                        path: prefix.clone(),
                        rev: rev.to_string(),
                    })?;
                entry.id()
            };
            repo.find_tree(tree)
                .map_err(|_| Error::NotInRevision {
                    path: prefix,
                    rev: rev.to_string(),
                })?
                .id()
        };
        Ok(ConfigTree::Git {
            repo,
            tree,
            rev: rev.to_string(),
            root: root.to_path_buf(),
        })
    }

    /// The directory the user named; diagnostics show file names under it.
    pub fn root(&self) -> &Path {
        match self {
            ConfigTree::WorkTree { root } | ConfigTree::Git { root, .. } => root,
        }
    }

    /// How to name a repository path to the user.
    pub fn display(&self, rel: &str) -> String {
        let root = self.root();
        if root == Path::new(".") || root.as_os_str().is_empty() {
            rel.to_string()
        } else {
            root.join(rel).to_string_lossy().into_owned()
        }
    }

    /// Reads a file by its path in the repository (`/`-separated); None when it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<FileContent>, Error> {
        match self {
            ConfigTree::WorkTree { root } => {
                let path = root.join(rel);
                let io_error = |source| Error::Io {
                    path: path.clone(),
                    source,
                };
                let meta = match std::fs::metadata(&path) {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_error(e)),
                };
                if !meta.is_file() {
                    return Ok(None);
                }
                if meta.len() > MAX_FILE_BYTES {
                    return Ok(Some(FileContent::TooLarge(meta.len())));
                }
                std::fs::read(&path)
                    .map(|bytes| Some(FileContent::Bytes(bytes)))
                    .map_err(io_error)
            }
            ConfigTree::Git { repo, tree, .. } => {
                let tree = self.git_tree(repo, *tree)?;
                let Ok(entry) = tree.get_path(Path::new(rel)) else {
                    return Ok(None);
                };
                if entry.kind() != Some(git2::ObjectType::Blob) {
                    return Ok(None);
                }
                let blob = repo.find_blob(entry.id()).map_err(|e| self.git_error(e))?;
                let size = blob.size() as u64;
                if size > MAX_FILE_BYTES {
                    return Ok(Some(FileContent::TooLarge(size)));
                }
                Ok(Some(FileContent::Bytes(blob.content().to_vec())))
            }
        }
    }

    /// Names of the files (not directories) directly in a repository directory, sorted; empty
    /// when the directory does not exist.
    pub fn list_files(&self, rel_dir: &str) -> Result<Vec<String>, Error> {
        let mut names = match self {
            ConfigTree::WorkTree { root } => {
                let dir = root.join(rel_dir);
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(source) => return Err(Error::Io { path: dir, source }),
                };
                let mut names = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|source| Error::Io {
                        path: dir.clone(),
                        source,
                    })?;
                    let is_file = entry
                        .file_type()
                        .is_ok_and(|t| t.is_file() || t.is_symlink());
                    if is_file && let Some(name) = entry.file_name().to_str() {
                        names.push(name.to_string());
                    }
                }
                names
            }
            ConfigTree::Git { repo, tree, .. } => {
                let tree = self.git_tree(repo, *tree)?;
                let Ok(entry) = tree.get_path(Path::new(rel_dir)) else {
                    return Ok(Vec::new());
                };
                let Ok(dir) = repo.find_tree(entry.id()) else {
                    return Ok(Vec::new());
                };
                dir.iter()
                    .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
                    .filter_map(|e| e.name().ok().map(str::to_string))
                    .collect()
            }
        };
        names.sort();
        Ok(names)
    }

    fn git_tree<'r>(
        &self,
        repo: &'r git2::Repository,
        oid: git2::Oid,
    ) -> Result<git2::Tree<'r>, Error> {
        repo.find_tree(oid).map_err(|e| self.git_error(e))
    }

    fn git_error(&self, source: git2::Error) -> Error {
        Error::Git {
            path: self.root().to_path_buf(),
            message: source.message().to_string(),
        }
    }

    /// The revision read, for messages; None for the working directory.
    pub fn revision(&self) -> Option<&str> {
        match self {
            ConfigTree::WorkTree { .. } => None,
            ConfigTree::Git { rev, .. } => Some(rev),
        }
    }
}
