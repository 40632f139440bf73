//! Locks that keep `prune` from deleting the blobs of a backup still being written. A backup
//! holds a shared lock, prune an exclusive one. Taking a lock writes it, then looks for a
//! conflicting one and backs off if there is: two that race both back off rather than both
//! proceed. A lock older than its staleness limit is ignored (its holder died).

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// A lock older than this belongs to a process that died.
pub const STALE_AFTER_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Backup,
    Prune,
    /// One task's apply: two applies never write the same task at once.
    Task(String),
}

impl LockKind {
    fn name(&self) -> String {
        match self {
            LockKind::Backup => "backup".into(),
            LockKind::Prune => "prune".into(),
            LockKind::Task(task) => format!("task {task}"),
        }
    }

    fn conflicts_with(&self, other: &LockKind) -> bool {
        match (self, other) {
            (LockKind::Prune, LockKind::Prune | LockKind::Backup)
            | (LockKind::Backup, LockKind::Prune) => true,
            (LockKind::Task(a), LockKind::Task(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    pub kind: LockKind,
    pub holder: String,
    pub created_ms: i64,
}

/// A held lock; released when dropped.
pub struct Lock<'s> {
    store: &'s Store,
    path: String,
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        let _ = self.store.backend().delete(&self.path);
    }
}

fn holder() -> String {
    format!(
        "pid {} on {}",
        std::process::id(),
        std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".into())
    )
}

impl Store {
    /// Takes a lock of this kind, or says who holds the conflicting one.
    pub fn lock(&self, kind: LockKind, now_ms: i64) -> Result<Lock<'_>, StoreError> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
        let kind_name = match &kind {
            LockKind::Backup => "backup",
            LockKind::Prune => "prune",
            LockKind::Task(_) => "task",
        };
        let path = format!("locks/{kind_name}-{}", super::crypto::hex(&raw));
        let info = LockInfo {
            kind: kind.clone(),
            holder: holder(),
            created_ms: now_ms,
        };
        let json = serde_json::to_vec(&info).map_err(|e| StoreError::Compression(e.to_string()))?;
        self.backend().put(&path, &json)?;
        let lock = Lock { store: self, path };
        for (other_path, other) in self.locks()? {
            if other_path == lock.path || now_ms - other.created_ms > STALE_AFTER_MS {
                continue;
            }
            if kind.conflicts_with(&other.kind) {
                // Dropping `lock` removes ours.
                return Err(StoreError::Locked {
                    holder: other.holder,
                    kind: other.kind.name(),
                    path: other_path,
                });
            }
        }
        Ok(lock)
    }

    /// Every lock in the store, stale or not.
    pub fn locks(&self) -> Result<Vec<(String, LockInfo)>, StoreError> {
        let mut locks = Vec::new();
        for path in self.backend().list("locks")? {
            if let Some(bytes) = self.backend().get(&path)?
                && let Ok(info) = serde_json::from_slice::<LockInfo>(&bytes)
            {
                locks.push((path, info));
            }
        }
        Ok(locks)
    }

    /// Removes one lock, named by its path (`locks/task-...`) or the last part of it.
    pub fn unlock(&self, id: &str) -> Result<(), StoreError> {
        let wanted = id.trim_start_matches("locks/");
        for (path, _) in self.locks()? {
            if path.rsplit('/').next() == Some(wanted) {
                return self.backend().delete(&path);
            }
        }
        Err(StoreError::NoSuchLock { id: id.to_string() })
    }

    /// Removes every lock: for when their holders are known to be gone.
    pub fn unlock_all(&self) -> Result<usize, StoreError> {
        let locks = self.locks()?;
        for (path, _) in &locks {
            self.backend().delete(path)?;
        }
        Ok(locks.len())
    }
}
