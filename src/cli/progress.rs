//! Progress drawn for the one who runs cairn: bars on a terminal, plain timestamped lines at a
//! bounded pace where output is a log (CI, a pipe), JSON event lines for machines, or
//! nothing. Everything goes to stderr: stdout holds the command's outcome, in the format
//! asked for.
//!
//! The library only adds to [`Meter`]s; a sampler thread here reads them, a few times a
//! second for bars and once every interval for lines, so drawing never slows the work.

use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Meter, Progress, Reporter, Step, Unit};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Quiet,
    /// Bars on a terminal.
    Bars,
    /// Timestamped lines, at most one per step per interval, and a line as each ends.
    Lines,
    /// One JSON object per line: `started`, `progress`, `finished`, `task`, `detail`.
    Json,
}

impl Style {
    /// Bars where stderr is a terminal outside CI; lines otherwise; JSON for `--format json`.
    pub(super) fn choose(quiet: bool, json: bool) -> Style {
        use std::io::IsTerminal;
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        match (quiet, json) {
            (true, _) => Style::Quiet,
            (false, true) => Style::Json,
            (false, false) if std::io::stderr().is_terminal() && !ci => Style::Bars,
            (false, false) => Style::Lines,
        }
    }
}

/// Seconds between two progress lines of one step: `CAIRN_PROGRESS_INTERVAL` (90s, 1m, 2),
/// else 5 s.
fn line_interval() -> Duration {
    std::env::var("CAIRN_PROGRESS_INTERVAL")
        .ok()
        .and_then(|text| crate::time::parse_duration_ms(&text))
        .map_or(Duration::from_secs(5), |ms| {
            Duration::from_millis(ms.max(100) as u64)
        })
}

/// Notices (a lock waited for, a stale one taken over) on stderr: as they are, as JSON events
/// with `--format json`, or not at all with `-q`.
pub(super) fn install_notices(quiet: bool, json: bool) {
    if quiet {
        return;
    }
    crate::progress::install_notices(Box::new(move |text| {
        let mut stderr = std::io::stderr().lock();
        let _ = match json {
            true => writeln!(
                stderr,
                "{}",
                serde_json::json!({"event": "notice", "text": text, "time": timestamp()})
            ),
            false => writeln!(stderr, "{}", crate::text::printable(text)),
        };
    }));
}

/// A reporter drawing in `style`, and the guard that stops its sampler (drop it when the
/// command is done).
pub(super) fn reporter(style: Style, verbose: bool) -> (Reporter, Option<Sampling>) {
    if style == Style::Quiet {
        return (Reporter::default(), None);
    }
    let shared = Arc::new(Shared {
        style,
        verbose,
        interval: line_interval(),
        bars: (style == Style::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        active: Mutex::new(Vec::new()),
        stop: (Mutex::new(false), Condvar::new()),
    });
    let sampler = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || shared.sample_until_stopped())
            .ok()
    };
    let sampling = Sampling {
        shared: shared.clone(),
        sampler,
    };
    (Reporter::new(Drawer(shared)), Some(sampling))
}

/// Stops the sampler when dropped.
pub(super) struct Sampling {
    shared: Arc<Shared>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sampling {
    fn drop(&mut self) {
        let (stopped, wake) = &self.shared.stop;
        if let Ok(mut stopped) = stopped.lock() {
            *stopped = true;
        }
        wake.notify_all();
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        if let Some(bars) = &self.shared.bars {
            let _ = bars.clear();
        }
    }
}

struct Drawer(Arc<Shared>);

struct Shared {
    style: Style,
    verbose: bool,
    interval: Duration,
    bars: Option<MultiProgress>,
    active: Mutex<Vec<Active>>,
    stop: (Mutex<bool>, Condvar),
}

/// A step being drawn.
struct Active {
    step: Step,
    meter: Meter,
    started: Instant,
    bar: Option<ProgressBar>,
    /// When the last line was written, and what it counted.
    last_line: Instant,
    last_done: u64,
}

impl Active {
    /// Rows (or files) a second since the step started.
    fn rate(&self, done: u64) -> f64 {
        done as f64 / self.started.elapsed().as_secs_f64().max(0.001)
    }
}

impl Progress for Drawer {
    fn task_started(&self, task: &str) {
        let shared = &self.0;
        match shared.style {
            Style::Json => shared.event(serde_json::json!({"event": "task", "task": task})),
            Style::Lines => shared.line(&format!("{task}: backing up")),
            Style::Bars if shared.verbose => shared.line(&format!("{task}: backing up")),
            _ => {}
        }
    }

    fn started(&self, step: &Step, meter: &Meter) {
        let shared = &self.0;
        let now = Instant::now();
        let bar = shared.bars.as_ref().map(|bars| {
            let bar = bars.add(
                ProgressBar::no_length()
                    .with_style(spinner_style())
                    .with_prefix(format!("{} {}", step.task, step.name))
                    .with_message(step.detail.clone()),
            );
            bar.tick();
            bar
        });
        match shared.style {
            Style::Json => shared.event(serde_json::json!({
                "event": "started",
                "task": step.task,
                "step": step.name,
                "unit": step.unit.word(),
                "detail": step.detail,
            })),
            Style::Lines if shared.verbose => shared.line(&format!(
                "{} {}: started ({})",
                step.task, step.name, step.detail
            )),
            _ => {}
        }
        if let Ok(mut active) = shared.active.lock() {
            active.push(Active {
                step: step.clone(),
                meter: meter.clone(),
                started: now,
                bar,
                last_line: now,
                last_done: 0,
            });
        }
    }

    fn finished(&self, step: &Step, meter: &Meter, summary: &str) {
        let shared = &self.0;
        let ended = shared.active.lock().ok().and_then(|mut active| {
            let at = active
                .iter()
                .position(|a| a.step.task == step.task && a.step.name == step.name)?;
            Some(active.remove(at))
        });
        let elapsed = ended
            .as_ref()
            .map_or(Duration::ZERO, |a| a.started.elapsed());
        if let Some(bar) = ended.and_then(|a| a.bar) {
            bar.finish_and_clear();
            if let Some(bars) = &shared.bars {
                bars.remove(&bar);
            }
        }
        let line = format!(
            "{} {}: {summary} ({})",
            step.task,
            step.name,
            seconds(elapsed)
        );
        match shared.style {
            Style::Json => shared.event(serde_json::json!({
                "event": "finished",
                "task": step.task,
                "step": step.name,
                "unit": step.unit.word(),
                "done": meter.done(),
                "total": meter.total(),
                "bytes": meter.bytes(),
                "seconds": elapsed.as_secs_f64(),
                "summary": summary,
            })),
            Style::Lines => shared.line(&line),
            Style::Bars if shared.verbose => shared.line(&line),
            _ => {}
        }
    }

    fn detail(&self, task: &str, text: &str) {
        let shared = &self.0;
        match shared.style {
            Style::Json => shared.event(serde_json::json!({
                "event": "detail", "task": task, "text": text,
            })),
            Style::Lines | Style::Bars if shared.verbose => shared.line(&format!("{task}: {text}")),
            _ => {}
        }
    }
}

impl Shared {
    /// Reads the meters until told to stop: bars a few times a second, lines once per
    /// interval for a step whose count moved.
    fn sample_until_stopped(&self) {
        let tick = match self.style {
            Style::Bars => Duration::from_millis(100),
            _ => self.interval.min(Duration::from_millis(250)),
        };
        let (stopped, wake) = &self.stop;
        let Ok(mut guard) = stopped.lock() else {
            return;
        };
        while !*guard {
            guard = match wake.wait_timeout(guard, tick) {
                Ok((guard, _)) => guard,
                Err(_) => return,
            };
            if *guard {
                break;
            }
            self.sample();
        }
    }

    fn sample(&self) {
        let Ok(mut active) = self.active.lock() else {
            return;
        };
        let now = Instant::now();
        for a in active.iter_mut() {
            let done = a.meter.done();
            let total = a.meter.total();
            if let Some(bar) = &a.bar {
                if let Some(total) = total
                    && bar.length() != Some(total)
                {
                    bar.set_length(total);
                    bar.set_style(bar_style(a.step.unit));
                }
                bar.set_position(done);
                if total.is_some() {
                    let mut message = format!("{}/s", crate::text::count(a.rate(done) as u64));
                    if a.meter.bytes() > 0 {
                        message.push_str(&format!(", {}", crate::text::size(a.meter.bytes())));
                    }
                    bar.set_message(message);
                }
                continue;
            }
            if now.duration_since(a.last_line) < self.interval || done == a.last_done {
                continue;
            }
            let rate = a.rate(done);
            a.last_line = now;
            a.last_done = done;
            match self.style {
                Style::Json => self.event(serde_json::json!({
                    "event": "progress",
                    "task": a.step.task,
                    "step": a.step.name,
                    "unit": a.step.unit.word(),
                    "done": done,
                    "total": total,
                    "bytes": a.meter.bytes(),
                    "perSecond": rate.round(),
                })),
                _ => self.line(&progress_line(a, done, total, rate)),
            }
        }
    }

    /// A line of its own: above the bars on a terminal, timestamped in a log.
    fn line(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(crate::text::printable(text));
            }
            None => {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "{} {}",
                    timestamp(),
                    crate::text::printable(text)
                );
            }
        }
    }

    fn event(&self, mut event: serde_json::Value) {
        if let Some(map) = event.as_object_mut() {
            map.insert("time".into(), timestamp().into());
        }
        let _ = writeln!(std::io::stderr().lock(), "{event}");
    }
}

/// `acme Account: 120,000 of 300,000 records (24,000/s, about 8s left)`
fn progress_line(a: &Active, done: u64, total: Option<u64>, rate: f64) -> String {
    let unit = a.step.unit.word();
    let mut line = format!(
        "{} {}: {}",
        a.step.task,
        a.step.name,
        crate::text::count(done)
    );
    match total {
        Some(total) => line.push_str(&format!(" of {} {unit}", crate::text::count(total))),
        None => line.push_str(&format!(" {unit}")),
    }
    let bytes = a.meter.bytes();
    if bytes > 0 {
        line.push_str(&format!(", {}", crate::text::size(bytes)));
    }
    line.push_str(&format!(" ({}/s", crate::text::count(rate as u64)));
    if let Some(total) = total
        && rate > 0.0
        && total > done
    {
        let left = Duration::from_secs_f64((total - done) as f64 / rate);
        line.push_str(&format!(", about {} left", seconds(left)));
    }
    line.push(')');
    line
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    match s {
        s if s < 60.0 => format!("{s:.1}s"),
        s => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
    }
}

/// The wall clock, to the second, in UTC.
fn timestamp() -> String {
    let ms = crate::time::now_ms();
    crate::time::format_datetime_z(ms - ms.rem_euclid(1000)).replace(".000Z", "Z")
}

/// A template without its colours when colour is off (`--color never`, NO_COLOR).
fn coloured(template: &str) -> String {
    match super::paint::stderr_painted() {
        true => template.to_string(),
        false => template
            .replace(":.cyan/blue}", "}")
            .replace(":30.cyan/blue}", ":30}")
            .replace(":.cyan}", "}")
            .replace(":.bold}", "}"),
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template(&coloured(
        "{spinner:.cyan} {prefix:.bold} {pos} {msg} {elapsed}",
    ))
    .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style(unit: Unit) -> ProgressStyle {
    let template = coloured(&format!(
        "{{spinner:.cyan}} {{prefix:.bold}} [{{bar:30.cyan/blue}}] {{human_pos}}/{{human_len}} {} {{msg}} ETA {{eta}}",
        unit.word()
    ));
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_says_how_far_how_fast_and_how_long_is_left() {
        let meter = Meter::default();
        meter.set_total(300_000);
        let active = Active {
            step: Step {
                task: "acme".into(),
                name: "Account".into(),
                unit: Unit::Records,
                detail: "full".into(),
            },
            meter,
            started: Instant::now(),
            bar: None,
            last_line: Instant::now(),
            last_done: 0,
        };
        assert_eq!(
            progress_line(&active, 120_000, Some(300_000), 24_000.0),
            "acme Account: 120,000 of 300,000 records (24,000/s, about 7.5s left)"
        );
        assert_eq!(
            progress_line(&active, 5, None, 2.4),
            "acme Account: 5 records (2/s)"
        );
    }

    #[test]
    fn a_timestamp_is_utc_to_the_second() {
        let stamp = timestamp();
        assert_eq!(stamp.len(), "2026-12-01T16:20:03Z".len(), "{stamp}");
        assert!(stamp.ends_with('Z') && stamp.contains('T'), "{stamp}");
    }
}
