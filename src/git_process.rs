//! Running the `git` command for fetches and pushes: it knows the user's credentials and
//! transports. A git that was stopped mid-update (its cairn killed, a runner cancelled) may
//! still be finishing, or may have left its ref lock file behind; either way the next command
//! must not fail on it, so a held lock is waited for and, once it is old, removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a ref lock is waited for before it is judged.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A ref lock file this old belongs to a git that is gone: git holds one for milliseconds.
const STALE_LOCK: Duration = Duration::from_secs(30);

pub fn run(dir: &Path, args: &[&str]) -> std::io::Result<Output> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut removed = false;
    loop {
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()?;
        if output.status.success() {
            return Ok(output);
        }
        let Some(lock) = held_lock(&String::from_utf8_lossy(&output.stderr)) else {
            return Ok(output);
        };
        if started.elapsed() < LOCK_WAIT {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
            continue;
        }
        let old = std::fs::metadata(&lock)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_LOCK);
        // Only a lock inside this repository's own git directory, and only once.
        if !removed && old && lock.starts_with(dir) && std::fs::remove_file(&lock).is_ok() {
            removed = true;
            continue;
        }
        return Ok(output);
    }
}

/// The lock file named by git's "Unable to create '<path>.lock': File exists".
fn held_lock(stderr: &str) -> Option<PathBuf> {
    let start = stderr.find("Unable to create '")? + "Unable to create '".len();
    let rest = &stderr[start..];
    let end = rest.find("': File exists")?;
    let path = &rest[..end];
    path.ends_with(".lock").then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lock_file_is_read_from_gits_message() {
        let stderr = "error: cannot lock ref 'refs/remotes/origin/cairn/store': Unable to create '/tmp/a/.git/refs/remotes/origin/cairn/store.lock': File exists.\n\nAnother git process seems to be running";
        assert_eq!(
            super::held_lock(stderr),
            Some("/tmp/a/.git/refs/remotes/origin/cairn/store.lock".into())
        );
        assert_eq!(super::held_lock("fatal: not a git repository"), None);
    }
}
