//! Running the `git` command for fetches and pushes: it knows the user's credentials and
//! transports. A git that was stopped mid-update (its cairn killed, a runner cancelled) may
//! still be finishing, or may have left its ref lock file behind; either way the next command
//! must not fail on it, so a held lock is waited for and, once it is old, removed, and a ref
//! it moved under this command is read again. Refs moved through git2 get the same treatment
//! (`past_ref_lock`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a held ref lock is waited for.
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// A ref lock file this old belongs to a git that is gone: git holds one for milliseconds. (A
/// git whose cairn was killed dies of SIGPIPE on its next write, leaving its lock behind.)
const STALE_LOCK: Duration = Duration::from_secs(5);

pub(crate) fn run(dir: &Path, args: &[&str]) -> std::io::Result<Output> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut removed = false;
    loop {
        // No automatic gc or maintenance: it packs and prunes loose objects, and cairn writes
        // the store's objects into the same repository from another thread meanwhile.
        let output = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()?;
        if output.status.success() {
            return Ok(output);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Another git moved the ref between this one's read and its update (the git of a
        // killed cairn, still finishing): the next attempt reads the new value.
        if moved_under_us(&stderr) && started.elapsed() < LOCK_WAIT {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
            continue;
        }
        let Some(lock) = held_lock(&stderr) else {
            return Ok(output);
        };
        if !wait_out_lock(dir, &lock, started, &mut removed, &mut pause) {
            return Ok(output);
        }
    }
}

/// Runs `update`, a git2 move of the ref `reference` of the repository whose git directory is
/// `git_dir`, past a lock file left behind by a git or a cairn killed while moving that ref: as
/// for the command, a held lock is waited for and, once old, removed.
pub(crate) fn past_ref_lock<T>(
    git_dir: &Path,
    reference: &str,
    mut update: impl FnMut() -> Result<T, git2::Error>,
) -> Result<T, git2::Error> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut removed = false;
    loop {
        match update() {
            Err(e) if e.code() == git2::ErrorCode::Locked => {
                let lock = git_dir.join(format!("{reference}.lock"));
                if !wait_out_lock(git_dir, &lock, started, &mut removed, &mut pause) {
                    return Err(e);
                }
            }
            done => return done,
        }
    }
}

/// What a command that found `lock` held does next: true to try again (the lock was abandoned
/// and is removed now, or there is time left to wait for it), false to give up. Only a lock
/// inside the repository at `dir` is removed, and only once.
fn wait_out_lock(
    dir: &Path,
    lock: &Path,
    started: Instant,
    removed: &mut bool,
    pause: &mut Duration,
) -> bool {
    let abandoned = std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age > STALE_LOCK);
    let ours =
        std::fs::canonicalize(dir).is_ok_and(|d| lock.starts_with(d)) || lock.starts_with(dir);
    if abandoned && !*removed && ours && std::fs::remove_file(lock).is_ok() {
        *removed = true;
        return true;
    }
    if started.elapsed() >= LOCK_WAIT {
        return false;
    }
    std::thread::sleep(*pause);
    *pause = (*pause * 2).min(Duration::from_secs(1));
    true
}

/// git's "cannot lock ref 'R': is at X but expected Y": R changed while this git ran.
fn moved_under_us(stderr: &str) -> bool {
    stderr.contains("cannot lock ref") && stderr.contains("but expected")
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
    fn a_ref_moved_by_another_git_is_told_from_other_failures() {
        assert!(super::moved_under_us(
            "error: cannot lock ref 'refs/remotes/origin/cairn-state': is at a46c but expected b13e"
        ));
        assert!(!super::moved_under_us(
            "fatal: couldn't find remote ref cairn-state"
        ));
    }

    /// A ref lock left by a git that died (its cairn killed) does not fail the next command.
    #[test]
    fn an_abandoned_ref_lock_is_removed_and_the_command_runs() {
        let dir = tempfile::tempdir().expect("dir");
        let git = |args: &[&str]| {
            let output = std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .output()
                .expect("git");
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        };
        git(&["init", "--quiet"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            "one",
        ]);
        let head = git(&["rev-parse", "HEAD"]);
        let lock = dir.path().join(".git/refs/heads/kept.lock");
        std::fs::write(&lock, "").expect("lock");
        let aged = std::process::Command::new("touch")
            .args(["-d", "1 minute ago"])
            .arg(&lock)
            .status()
            .expect("touch");
        assert!(aged.success());
        let output =
            super::run(dir.path(), &["update-ref", "refs/heads/kept", &head]).expect("git");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!lock.exists());
    }

    /// The same for a ref moved through git2, as the state branch and the git store do.
    #[test]
    fn an_abandoned_ref_lock_does_not_fail_a_move_through_git2() {
        let dir = tempfile::tempdir().expect("dir");
        let repo = git2::Repository::init(dir.path()).expect("repo");
        let tree = repo
            .treebuilder(None)
            .and_then(|b| b.write())
            .expect("tree");
        let tree = repo.find_tree(tree).expect("tree");
        let signature = git2::Signature::now("t", "t@t").expect("signature");
        let commit = repo
            .commit(None, &signature, &signature, "one", &tree, &[])
            .expect("commit");
        let reference = "refs/remotes/origin/cairn-state";
        let lock = repo.path().join(format!("{reference}.lock"));
        std::fs::create_dir_all(lock.parent().expect("parent")).expect("dirs");
        let held = std::fs::File::create(&lock).expect("lock");
        let move_it = || repo.reference(reference, commit, true, "test");
        assert_eq!(
            move_it().map(|_| ()).map_err(|e| e.code()),
            Err(git2::ErrorCode::Locked),
            "git2 does not move a ref whose lock is held"
        );
        held.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
            .expect("age the lock");
        let moved = super::past_ref_lock(repo.path(), reference, move_it).expect("moved");
        assert_eq!(moved.target(), Some(commit));
        assert!(!lock.exists());
        // Any other failure is said at once.
        let started = std::time::Instant::now();
        let invalid = super::past_ref_lock(repo.path(), "refs/heads/a..b", || {
            repo.reference("refs/heads/a..b", commit, true, "test")
        });
        assert!(invalid.is_err() && started.elapsed() < std::time::Duration::from_secs(1));
    }

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
