//! Where an apply writes the segments it adds to an index before sealing them: record text in
//! plaintext, so it lives in a private directory (0700: no one else can reach its files) for as
//! long as the process needs it and no longer. The directory goes when the index is dropped,
//! when Ctrl-C ends the process (`remove_all`), and, after a crash or SIGKILL, at the next start
//! of any cairn on this machine: the directory names its process, and one whose process is gone
//! is removed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PREFIX: &str = "cairn-search-";

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A private scratch directory; removed when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> std::io::Result<Scratch> {
        remove_abandoned(&std::env::temp_dir());
        let mut builder = tempfile::Builder::new();
        let prefix = format!("{PREFIX}{}-", std::process::id());
        builder.prefix(&prefix);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o700));
        }
        let dir = builder.tempdir()?;
        if let Ok(mut live) = LIVE.lock() {
            live.push(dir.path().to_path_buf());
        }
        Ok(Scratch { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|p| p != self.dir.path());
        }
    }
}

/// Removes every scratch directory of this process now: for an exit that skips destructors.
pub fn remove_all() {
    if let Ok(live) = LIVE.lock() {
        for dir in live.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Removes the scratch directories whose process is no longer running (Linux's /proc tells;
/// elsewhere nothing is judged abandoned).
fn remove_abandoned(temp: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_is_private_and_abandoned_ones_are_removed() {
        let scratch = Scratch::new().expect("scratch");
        std::fs::write(scratch.path().join("f"), b"plaintext").expect("write");
        // Whatever the mode of the files tantivy writes, no one else can reach them.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(scratch.path()), 0o700);
        }
        // A directory left by a process that no longer runs (no pid is this large).
        let temp = tempfile::tempdir().expect("temp");
        let abandoned = temp.path().join(format!("{PREFIX}4294967294-x"));
        let ours = temp
            .path()
            .join(format!("{PREFIX}{}-y", std::process::id()));
        std::fs::create_dir_all(&abandoned).expect("dir");
        std::fs::create_dir_all(&ours).expect("dir");
        remove_abandoned(temp.path());
        if Path::new("/proc/self").exists() {
            assert!(!abandoned.exists());
        }
        assert!(ours.exists(), "a live process's directory stays");
        let path = scratch.path().to_path_buf();
        drop(scratch);
        assert!(!path.exists());
    }
}
