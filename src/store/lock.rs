//! Locks that keep runs from undoing each other: a backup holds a shared lock for the whole
//! run, so `prune` and `forget` (exclusive) never delete what it builds on or has just written;
//! one task's applies hold that task's lock, so two runners never both write its state.
//!
//! Taking a lock writes it, then looks for a conflicting one and backs off if there is one:
//! two that race both back off rather than both proceed. The holder refreshes its locks while
//! it works, so a lock is live while its holder is. A lock is stale, and the next command takes
//! it over with a line saying so, when its holder is a process on this machine that is no
//! longer running (pid and start time, so a reused pid cannot fool it), when this machine
//! restarted since it was taken, or when it was not refreshed for the time its holder promised
//! (`staleAfterMs`, written in the lock itself, so every runner judges it the same way).
//!
//! A holder that finds its lock gone (`cairn unlock --force`, or taken over while the holder
//! could not reach the store) has lost it: `Lock::ensure_held` fails, and the run commits
//! nothing that relies on it.
//!
//! Long because a lock's life (take, refresh, judge, take over, release) is one protocol; the
//! last 60 lines are its tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::backend::Backend;
use super::{Store, StoreError};

/// How long a lock may go without a refresh before others take it over. Runs that outlive it
/// stay protected (the lock is refreshed every sixth of it); a crashed runner on another
/// machine blocks the task for at most this long.
pub const DEFAULT_STALE_AFTER_MS: i64 = 15 * 60 * 1000;

/// Locks written before holders refreshed them (no `staleAfterMs`) were stale after an hour.
const LEGACY_STALE_AFTER_MS: i64 = 60 * 60 * 1000;

/// The environment variable that sets the stale time (`90s`, `15m`, `1h`, or seconds).
pub const STALE_AFTER_VARIABLE: &str = "CAIRN_LOCK_STALE_AFTER";

/// How this process's locks age: how long others wait for a refresh, and how often it comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    pub stale_after_ms: i64,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming {
            stale_after_ms: DEFAULT_STALE_AFTER_MS,
        }
    }
}

impl LockTiming {
    /// `90s`, `15m`, `1h`, or a number of seconds; at least one second.
    pub fn parse(text: &str) -> Option<LockTiming> {
        let ms = crate::time::parse_duration_ms(text)?;
        (ms >= 1000).then_some(LockTiming { stale_after_ms: ms })
    }

    fn refresh_every(&self) -> Duration {
        Duration::from_millis((self.stale_after_ms / 6).max(200) as u64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// A backup writing the store: many at once, never with a prune or forget.
    Backup,
    /// Deleting blobs: alone.
    Prune,
    /// Deleting snapshot manifests: alone.
    Forget,
    /// One task's apply: two applies never write the same task at once.
    Task(String),
    /// A restore into one task's account: two never write there at once (each would create
    /// what the other is creating).
    Restore(String),
}

impl LockKind {
    pub fn name(&self) -> String {
        match self {
            LockKind::Backup => "backup".into(),
            LockKind::Prune => "prune".into(),
            LockKind::Forget => "forget".into(),
            LockKind::Task(task) => format!("apply of task {task}"),
            LockKind::Restore(task) => format!("restore into task {task}"),
        }
    }

    fn file_prefix(&self) -> &'static str {
        match self {
            LockKind::Backup => "backup",
            LockKind::Prune => "prune",
            LockKind::Forget => "forget",
            LockKind::Task(_) => "task",
            LockKind::Restore(_) => "restore",
        }
    }

    fn exclusive(&self) -> bool {
        matches!(self, LockKind::Prune | LockKind::Forget)
    }

    fn conflicts_with(&self, other: &LockKind) -> bool {
        match (self, other) {
            (LockKind::Task(a), LockKind::Task(b)) => a == b,
            (LockKind::Restore(a), LockKind::Restore(b)) => a == b,
            (LockKind::Task(_) | LockKind::Restore(_), _)
            | (_, LockKind::Task(_) | LockKind::Restore(_)) => false,
            (a, b) => a.exclusive() || b.exclusive(),
        }
    }
}

/// Who holds a lock, precisely enough to tell whether it still runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// The host name.
    pub host: String,
    /// The kernel's boot id: changes when the machine restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// The pid namespace: containers on one kernel have their own pids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    pub kind: LockKind,
    /// For people: "pid 123 on runner-4".
    pub holder: String,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_ms: Option<i64>,
    /// How long the holder may go without refreshing before the lock is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_after_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<Machine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The process's start time (clock ticks after boot), which a reused pid does not share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

/// Whether a lock still protects its holder's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Live,
    Stale(String),
}

impl LockInfo {
    pub fn refreshed(&self) -> i64 {
        self.refreshed_ms.unwrap_or(self.created_ms)
    }

    /// Live or stale, and why, as seen from this process at `now_ms`.
    pub fn liveness(&self, now_ms: i64) -> Liveness {
        let me = this_process();
        if let (Some(machine), Some(pid)) = (&self.machine, self.pid)
            && machine.host == me.machine.host
            && machine.pid_namespace == me.machine.pid_namespace
            && machine.boot.is_some()
        {
            if machine.boot != me.machine.boot {
                return Liveness::Stale(format!(
                    "{} restarted since pid {pid} took it",
                    machine.host
                ));
            }
            match process_started(pid) {
                None => {
                    return Liveness::Stale(format!(
                        "pid {pid} is not running on {}",
                        machine.host
                    ));
                }
                Some(started) if self.started.is_some_and(|s| s != started) => {
                    return Liveness::Stale(format!(
                        "pid {pid} on {} is another process now",
                        machine.host
                    ));
                }
                Some(_) => return Liveness::Live,
            }
        }
        let stale_after = self.stale_after_ms.unwrap_or(LEGACY_STALE_AFTER_MS);
        let quiet = now_ms - self.refreshed();
        if quiet > stale_after {
            Liveness::Stale(format!(
                "not refreshed for {} (its holder promised every {})",
                human_duration(quiet),
                human_duration(stale_after / 6)
            ))
        } else {
            Liveness::Live
        }
    }

    /// "a backup (pid 123 on runner-4, refreshed 20 s ago)"
    pub fn describe(&self, now_ms: i64) -> String {
        format!(
            "{} ({}, refreshed {} ago)",
            self.kind.name(),
            self.holder,
            human_duration((now_ms - self.refreshed()).max(0))
        )
    }
}

pub fn human_duration(ms: i64) -> String {
    let seconds = ms / 1000;
    if seconds < 120 {
        format!("{seconds} s")
    } else if seconds < 2 * 3600 {
        format!("{} min", seconds / 60)
    } else {
        format!("{} h", seconds / 3600)
    }
}

struct ThisProcess {
    machine: Machine,
    pid: u32,
    started: Option<u64>,
}

fn this_process() -> &'static ThisProcess {
    static ME: OnceLock<ThisProcess> = OnceLock::new();
    ME.get_or_init(|| {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let host = read("/proc/sys/kernel/hostname")
            .or_else(|| read("/etc/hostname"))
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "this machine".into());
        let pid = std::process::id();
        ThisProcess {
            machine: Machine {
                host,
                boot: read("/proc/sys/kernel/random/boot_id"),
                pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                    .ok()
                    .map(|p| p.display().to_string()),
            },
            pid,
            started: process_started(pid),
        }
    })
}

/// A running process's start time, or None when no process has that pid (Linux's /proc).
fn process_started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields after its last ')' do not.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 3 is the state: a zombie has finished, only its parent has not reaped it.
    if fields.first() == Some(&"Z") {
        return None;
    }
    // starttime is field 22 of the whole line, the 20th after the command name.
    fields.get(19)?.parse().ok()
}

/// The locks this process holds, refreshed by one thread and released on Ctrl-C.
struct Held {
    backend: Arc<dyn Backend>,
    path: String,
    info: LockInfo,
    lost: Arc<AtomicBool>,
    /// Guards of this lock still alive (a process taking a lock it holds shares it).
    users: usize,
    next_refresh: std::time::Instant,
    last_refreshed: std::time::Instant,
    timing: LockTiming,
}

struct Registry {
    held: Mutex<Vec<Held>>,
    wake: Condvar,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    static REFRESHER: OnceLock<()> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| Registry {
        held: Mutex::new(Vec::new()),
        wake: Condvar::new(),
    });
    REFRESHER.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("cairn-lock-refresh".into())
            .spawn(refresh_forever);
    });
    registry
}

fn refresh_forever() {
    let registry = registry();
    let Ok(mut held) = registry.held.lock() else {
        return;
    };
    loop {
        let now = std::time::Instant::now();
        for lock in held.iter_mut().filter(|l| l.next_refresh <= now) {
            refresh(lock);
        }
        let next = held
            .iter()
            .map(|l| l.next_refresh)
            .min()
            .map(|at| at.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        held = match registry.wake.wait_timeout(held, next) {
            Ok((guard, _)) => guard,
            Err(_) => return,
        };
    }
}

/// Rewrites one lock with a new time, unless someone removed it: then it is lost.
fn refresh(lock: &mut Held) {
    lock.next_refresh = std::time::Instant::now() + lock.timing.refresh_every();
    if lock.lost.load(Ordering::SeqCst) {
        return;
    }
    let _ = lock.backend.sync_locks();
    let ours = match lock.backend.get(&lock.path) {
        Ok(bytes) => bytes.is_some_and(|bytes| {
            serde_json::from_slice::<LockInfo>(&bytes)
                .is_ok_and(|info| info.created_ms == lock.info.created_ms)
        }),
        // Unreachable storage: keep the lock until it could have gone stale.
        Err(_) => !lock.past_stale(),
    };
    if !ours {
        lock.lost.store(true, Ordering::SeqCst);
        return;
    }
    lock.info.refreshed_ms = Some(crate::time::now_ms());
    let written = serde_json::to_vec(&lock.info)
        .ok()
        .is_some_and(|json| lock.backend.put(&lock.path, &json).is_ok())
        && lock.backend.sync_locks().is_ok();
    if written {
        lock.last_refreshed = std::time::Instant::now();
    } else if lock.past_stale() {
        lock.lost.store(true, Ordering::SeqCst);
    }
}

impl Held {
    /// Whether others may have taken this lock over by now.
    fn past_stale(&self) -> bool {
        self.last_refreshed.elapsed().as_millis() as i64 > self.timing.stale_after_ms
    }
}

static CLOSING: AtomicBool = AtomicBool::new(false);

/// Releases every lock this process holds: for Ctrl-C and SIGTERM, before the process exits
/// with work still running on other threads.
pub fn release_all() {
    let Ok(mut held) = registry().held.lock() else {
        return;
    };
    // No lock is taken after this: the process is ending.
    CLOSING.store(true, Ordering::SeqCst);
    for lock in held.drain(..) {
        lock.lost.store(true, Ordering::SeqCst);
        let _ = lock.backend.delete(&lock.path);
        let _ = lock.backend.sync_locks();
    }
}

/// A held lock; released when the last guard of it is dropped.
pub struct Lock {
    path: String,
    lost: Arc<AtomicBool>,
    /// Stale locks this one replaced, said to the user.
    pub took_over: Vec<String>,
}

impl Lock {
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Fails once the lock is no longer this process's: whatever it protected may have been
    /// changed by someone else, so nothing that relies on it may be committed.
    pub fn ensure_held(&self) -> Result<(), StoreError> {
        if self.lost.load(Ordering::SeqCst) {
            Err(StoreError::LockLost {
                path: self.path.clone(),
            })
        } else {
            Ok(())
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let registry = registry();
        let Ok(mut held) = registry.held.lock() else {
            return;
        };
        let Some(index) = held.iter().position(|l| l.path == self.path) else {
            return;
        };
        held[index].users -= 1;
        if held[index].users == 0 {
            let lock = held.remove(index);
            if !lock.lost.load(Ordering::SeqCst) {
                let _ = lock.backend.delete(&lock.path);
                let _ = lock.backend.sync_locks();
            }
        }
    }
}

impl Store {
    /// Takes a lock of this kind, or says who holds the conflicting one. Stale conflicting
    /// locks are taken over (and named in `Lock::took_over`).
    pub fn lock(&self, kind: LockKind, now_ms: i64) -> Result<Lock, StoreError> {
        if let Some(shared) = self.share_held(&kind) {
            return Ok(shared);
        }
        let _ = self.backend.sync_locks();
        let mut took_over = Vec::new();
        // Every stale lock goes, conflicting or not: a crashed run's locks are cleared by the
        // next command, so nothing accumulates that a later one would trip over.
        for (path, other) in self.locks()? {
            if let Liveness::Stale(why) = other.liveness(crate::time::now_ms()) {
                self.backend.delete(&path)?;
                took_over.push(format!(
                    "took over the stale lock {path} of a {} ({}): {why}",
                    other.kind.name(),
                    other.holder
                ));
            }
        }
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
        let path = format!("locks/{}-{}", kind.file_prefix(), super::crypto::hex(&raw));
        let me = this_process();
        let info = LockInfo {
            kind: kind.clone(),
            holder: format!("pid {} on {}", me.pid, me.machine.host),
            created_ms: now_ms,
            refreshed_ms: Some(now_ms),
            stale_after_ms: Some(self.lock_timing.stale_after_ms),
            machine: Some(me.machine.clone()),
            pid: Some(me.pid),
            started: me.started,
        };
        let json = serde_json::to_vec(&info).map_err(|e| StoreError::Compression(e.to_string()))?;
        let lost = Arc::new(AtomicBool::new(false));
        let registry = registry();
        // Written and registered as one step: a Ctrl-C in between must not leave a lock file
        // that `release_all` does not know of.
        {
            let mut held = registry.held.lock().map_err(|_| StoreError::Backend {
                location: self.backend.location(),
                message: "this process's lock registry is broken (a thread panicked)".into(),
            })?;
            if CLOSING.load(Ordering::SeqCst) {
                return Err(StoreError::Interrupted);
            }
            self.backend.put(&path, &json)?;
            let now = std::time::Instant::now();
            held.push(Held {
                backend: self.backend.clone(),
                path: path.clone(),
                info,
                lost: lost.clone(),
                users: 1,
                next_refresh: now + self.lock_timing.refresh_every(),
                last_refreshed: now,
                timing: self.lock_timing,
            });
            registry.wake.notify_all();
        }
        let lock = Lock {
            path,
            lost,
            took_over,
        };
        // Another process may have written its lock meanwhile: both see each other now.
        self.backend.sync_locks().map_err(|e| match e {
            StoreError::Backend { location, message } => StoreError::Backend {
                location,
                message: format!(
                    "the lock could not be pushed for other runners to see, so nothing was done: {message}"
                ),
            },
            other => other,
        })?;
        for (other_path, other) in self.locks()? {
            if other_path == lock.path || !kind.conflicts_with(&other.kind) {
                continue;
            }
            if other.liveness(crate::time::now_ms()) == Liveness::Live {
                // Dropping `lock` removes ours.
                return Err(StoreError::Locked {
                    holder: other.holder.clone(),
                    kind: other.kind.name(),
                    path: other_path,
                });
            }
        }
        Ok(lock)
    }

    /// Takes a lock, waiting up to `wait` for a conflicting live one to be released; `waiting`
    /// hears once what it waits for.
    pub fn lock_waiting(
        &self,
        kind: LockKind,
        wait: Duration,
        waiting: &mut dyn FnMut(&str),
    ) -> Result<Lock, StoreError> {
        let deadline = std::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(100);
        let mut told = false;
        loop {
            match self.lock(kind.clone(), crate::time::now_ms()) {
                Err(StoreError::Locked { holder, kind, path })
                    if std::time::Instant::now() + pause < deadline =>
                {
                    if !told {
                        waiting(&format!(
                            "waiting up to {} for the {kind} ({holder}, {path}) to finish",
                            human_duration(wait.as_millis() as i64)
                        ));
                        told = true;
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    /// A lock of this kind that this process holds on this store already, shared.
    fn share_held(&self, kind: &LockKind) -> Option<Lock> {
        let mut held = registry().held.lock().ok()?;
        let location = self.backend.location();
        let lock = held.iter_mut().find(|l| {
            &l.info.kind == kind
                && l.backend.location() == location
                && !l.lost.load(Ordering::SeqCst)
        })?;
        lock.users += 1;
        Some(Lock {
            path: lock.path.clone(),
            lost: lock.lost.clone(),
            took_over: Vec::new(),
        })
    }

    /// Every lock in the store, stale or not.
    pub fn locks(&self) -> Result<Vec<(String, LockInfo)>, StoreError> {
        let mut locks = Vec::new();
        for path in self.backend.list("locks")? {
            if let Some(bytes) = self.backend.get(&path)?
                && let Ok(info) = serde_json::from_slice::<LockInfo>(&bytes)
            {
                locks.push((path, info));
            }
        }
        Ok(locks)
    }

    /// Removes the locks whose holders are gone; with `force`, live ones too. Returns what
    /// was removed, each with what it was.
    pub fn unlock(&self, force: bool) -> Result<Vec<(String, LockInfo, Liveness)>, StoreError> {
        let _ = self.backend.sync_locks();
        let now = crate::time::now_ms();
        let mut removed = Vec::new();
        for (path, info) in self.locks()? {
            let liveness = info.liveness(now);
            if force || liveness != Liveness::Live {
                self.backend.delete(&path)?;
                removed.push((path, info, liveness));
            }
        }
        Ok(removed)
    }

    /// Removes one lock, named by its path (`locks/task-...`) or the last part of it, and the
    /// other locks of the same run (a task lock and the backup lock it works under); a live
    /// one only with `force`.
    pub fn unlock_one(
        &self,
        id: &str,
        force: bool,
    ) -> Result<Vec<(String, LockInfo, Liveness)>, StoreError> {
        let _ = self.backend.sync_locks();
        let wanted = id.trim_start_matches("locks/");
        let locks = self.locks()?;
        let Some((_, named)) = locks
            .iter()
            .find(|(path, _)| path.rsplit('/').next() == Some(wanted))
        else {
            return Err(StoreError::NoSuchLock { id: id.to_string() });
        };
        let now = crate::time::now_ms();
        if !force && let Liveness::Live = named.liveness(now) {
            return Err(StoreError::LockLive {
                path: format!("locks/{wanted}"),
                what: named.describe(now),
            });
        }
        let same_run = |info: &LockInfo| {
            info.holder == named.holder && info.machine == named.machine && info.pid == named.pid
        };
        let mut removed = Vec::new();
        for (path, info) in locks.iter().filter(|(_, info)| same_run(info)) {
            self.backend.delete(path)?;
            removed.push((path.clone(), info.clone(), info.liveness(now)));
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_times_parse_with_units() {
        assert_eq!(
            LockTiming::parse("90s").map(|t| t.stale_after_ms),
            Some(90_000)
        );
        assert_eq!(
            LockTiming::parse("15m").map(|t| t.stale_after_ms),
            Some(900_000)
        );
        assert_eq!(
            LockTiming::parse("2").map(|t| t.stale_after_ms),
            Some(2_000)
        );
        assert_eq!(LockTiming::parse("0.5s"), None);
        assert_eq!(LockTiming::parse("soon"), None);
    }

    #[test]
    fn a_lock_of_a_process_that_is_not_running_here_is_stale() {
        let me = this_process();
        let mut info = LockInfo {
            kind: LockKind::Backup,
            holder: "test".into(),
            created_ms: crate::time::now_ms(),
            refreshed_ms: None,
            stale_after_ms: Some(DEFAULT_STALE_AFTER_MS),
            machine: Some(me.machine.clone()),
            pid: Some(me.pid),
            started: me.started,
        };
        assert_eq!(info.liveness(crate::time::now_ms()), Liveness::Live);
        if me.machine.boot.is_some() {
            // No pid is this large on Linux (pid_max is at most 2^22).
            info.pid = Some(u32::MAX - 1);
            assert!(matches!(
                info.liveness(crate::time::now_ms()),
                Liveness::Stale(_)
            ));
            info.pid = Some(me.pid);
            info.started = me.started.map(|s| s + 1);
            assert!(matches!(
                info.liveness(crate::time::now_ms()),
                Liveness::Stale(_)
            ));
        }
        // Another machine's lock goes stale only by time.
        info.machine = Some(Machine {
            host: "elsewhere".into(),
            ..Machine::default()
        });
        assert_eq!(info.liveness(crate::time::now_ms()), Liveness::Live);
        assert!(matches!(
            info.liveness(crate::time::now_ms() + DEFAULT_STALE_AFTER_MS + 1),
            Liveness::Stale(_)
        ));
    }
}
