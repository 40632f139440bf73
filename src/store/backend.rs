//! Where blobs live. Every backend stores opaque bytes under `/`-separated paths; writes are
//! atomic (a reader sees the whole object or none of it), which is what makes a crash at any
//! point leave the store valid.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::StoreError;

pub trait Backend: Send + Sync {
    /// Stores an object, replacing any at that path, atomically.
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// The object, or None when there is none.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn exists(&self, path: &str) -> Result<bool, StoreError>;
    /// Paths of the objects under a prefix (a directory), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    fn delete(&self, path: &str) -> Result<(), StoreError>;
    /// Where the store is, for messages.
    fn location(&self) -> String;
    /// Makes what was written durable where other machines read it, for a backend whose
    /// writes are first local (the git store pushes its ref). Returns what it did, or None
    /// when every write was durable already.
    fn publish(&self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// Makes this machine's locks visible to other machines and theirs to it, for a backend
    /// whose writes are first local (the git store fetches and pushes its ref).
    fn sync_locks(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A directory on local disk.
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { root: root.into() }
    }

    fn path(&self, rel: &str) -> Result<PathBuf, StoreError> {
        if rel
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(StoreError::Backend {
                location: self.location(),
                message: format!("invalid object path {rel}"),
            });
        }
        Ok(self.root.join(rel))
    }

    fn io(&self, path: &Path, e: std::io::Error) -> StoreError {
        StoreError::Backend {
            location: self.location(),
            message: format!("{}: {e}", path.display()),
        }
    }
}

impl Backend for LocalBackend {
    fn put(&self, rel: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(rel)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| self.io(&dir, e))?;
        // Write aside, flush to disk, then rename into place: never a half-written object.
        let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| self.io(&dir, e))?;
        temp.write_all(bytes).map_err(|e| self.io(&path, e))?;
        temp.as_file().sync_all().map_err(|e| self.io(&path, e))?;
        temp.persist(&path).map_err(|e| self.io(&path, e.error))?;
        if let Ok(dir) = std::fs::File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(rel)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&path, e)),
        }
    }

    fn exists(&self, rel: &str) -> Result<bool, StoreError> {
        Ok(self.path(rel)?.is_file())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let base = self.root.join(prefix);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io(&dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.io(&dir, e))?;
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    // Temporary files of interrupted writes are not objects.
                    if !rel
                        .rsplit('/')
                        .next()
                        .is_some_and(|name| name.starts_with(".tmp"))
                    {
                        out.push(rel);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let path = self.path(rel)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(&path, e)),
        }
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}
