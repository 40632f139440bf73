//! What long work says while it runs. The library reports through [`Progress`] and never
//! prints; the command line draws it (bars on a terminal, timestamped lines in CI, JSON event
//! lines for machines). Counting is an atomic add on a [`Meter`], so a row costs nothing
//! measurable; whoever draws samples the meters at its own pace.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counts of one step of work, shared by the worker (which adds) and the drawer (which
/// reads).
#[derive(Clone, Debug, Default)]
pub struct Meter(Arc<Counts>);

#[derive(Debug)]
struct Counts {
    done: AtomicU64,
    /// `UNKNOWN` until the source says how many to expect.
    total: AtomicU64,
    bytes: AtomicU64,
}

const UNKNOWN: u64 = u64::MAX;

impl Default for Counts {
    fn default() -> Self {
        Counts {
            done: AtomicU64::new(0),
            total: AtomicU64::new(UNKNOWN),
            bytes: AtomicU64::new(0),
        }
    }
}

impl Meter {
    pub fn add(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes moved, beside the count (file bodies).
    pub fn add_bytes(&self, n: u64) {
        self.0.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// How many the step expects in all, once the source has said.
    pub fn set_total(&self, total: u64) {
        self.0.total.store(total, Ordering::Relaxed);
    }

    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> Option<u64> {
        match self.0.total.load(Ordering::Relaxed) {
            UNKNOWN => None,
            total => Some(total),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }
}

/// What a step counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Records (and tombstones) fetched from the source.
    Records,
    /// Records whose file bodies were looked at (downloaded or known unchanged).
    Files,
    /// Records put into the search index.
    Indexed,
}

impl Unit {
    pub fn word(self) -> &'static str {
        match self {
            Unit::Records => "records",
            Unit::Files => "files",
            Unit::Indexed => "indexed",
        }
    }
}

/// One step of a task's work: an object's records, a body object's files, the search index.
#[derive(Clone, Debug)]
pub struct Step {
    pub task: String,
    pub name: String,
    pub unit: Unit,
    /// How the step goes about it, such as "full: first backup" or "incremental".
    pub detail: String,
}

/// Where progress goes. Every method has a default that ignores it, so a drawer implements
/// only what it shows.
pub trait Progress: Send + Sync {
    /// A task begins its work.
    fn task_started(&self, task: &str) {
        let _ = task;
    }
    /// A step begins; `meter` counts it until `finished`.
    fn started(&self, step: &Step, meter: &Meter) {
        let _ = (step, meter);
    }
    /// A step ended: `summary` says what it did in a few words ("stopped" when it ended early).
    fn finished(&self, step: &Step, meter: &Meter, summary: &str) {
        let _ = (step, meter, summary);
    }
    /// Something worth a line of its own, for those who asked for more (`-v`).
    fn detail(&self, task: &str, text: &str) {
        let _ = (task, text);
    }
}

/// Where notices go: things a command's user should hear while it waits (a lock held by
/// another run, a stale lock taken over), said outside any step. The command line installs
/// one; a library user who installs none hears nothing.
type NoticeSink = Box<dyn Fn(&str) + Send + Sync>;

static NOTICES: std::sync::OnceLock<NoticeSink> = std::sync::OnceLock::new();

/// Makes `sink` the process's; the first one installed stays.
pub fn install_notices(sink: NoticeSink) {
    let _ = NOTICES.set(sink);
}

pub fn notice(text: &str) {
    if let Some(sink) = NOTICES.get() {
        sink(text);
    }
}

/// Progress nobody watches.
pub struct Silent;

impl Progress for Silent {}

/// A handle on whatever draws progress, cheap to clone into options.
#[derive(Clone)]
pub struct Reporter(Arc<dyn Progress>);

impl Default for Reporter {
    fn default() -> Self {
        Reporter(Arc::new(Silent))
    }
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reporter")
    }
}

impl Reporter {
    pub fn new(progress: impl Progress + 'static) -> Reporter {
        Reporter(Arc::new(progress))
    }

    pub fn task_started(&self, task: &str) {
        self.0.task_started(task);
    }

    pub fn detail(&self, task: &str, text: &str) {
        self.0.detail(task, text);
    }

    /// Begins a step; the step ends when the returned guard is finished, or dropped (then it
    /// says "stopped": an error or an interruption ended it).
    pub fn start(&self, task: &str, name: &str, unit: Unit, detail: impl Into<String>) -> Running {
        let step = Step {
            task: task.to_string(),
            name: name.to_string(),
            unit,
            detail: detail.into(),
        };
        let meter = Meter::default();
        self.0.started(&step, &meter);
        Running {
            progress: self.0.clone(),
            step,
            meter,
            ended: false,
        }
    }
}

/// A step under way.
pub struct Running {
    progress: Arc<dyn Progress>,
    step: Step,
    meter: Meter,
    ended: bool,
}

impl Running {
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    pub fn finish(mut self, summary: &str) {
        self.ended = true;
        self.progress.finished(&self.step, &self.meter, summary);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.ended {
            self.progress.finished(&self.step, &self.meter, "stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl Progress for Arc<Recorded> {
        fn started(&self, step: &Step, meter: &Meter) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {} {:?}", step.name, meter.total()));
        }
        fn finished(&self, step: &Step, meter: &Meter, summary: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("end {} {} {summary}", step.name, meter.done()));
        }
    }

    #[test]
    fn a_step_dropped_unfinished_says_it_stopped() {
        let recorded = Arc::new(Recorded::default());
        let reporter = Reporter::new(recorded.clone());
        let step = reporter.start("t", "Account", Unit::Records, "full");
        step.meter().set_total(10);
        step.meter().add(3);
        drop(step);
        let done = reporter.start("t", "Contact", Unit::Records, "incremental");
        done.meter().add(2);
        done.finish("+2");
        assert_eq!(
            *recorded.0.lock().unwrap(),
            [
                "start Account None",
                "end Account 3 stopped",
                "start Contact None",
                "end Contact 2 +2"
            ]
        );
    }
}
