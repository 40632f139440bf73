//! `cairn report --task ID --out report.html`: one self-contained HTML page (no scripts, no
//! network): records per object over time as an inline SVG chart with one series per object,
//! the latest change summary, API calls per run against the budget, and coverage.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use super::snapshot_access::TaskSnapshots;
use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::Env;
use crate::snapshot::writer::load_manifest;

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub dir: PathBuf,
    pub task: Option<String>,
    pub out: PathBuf,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 320.0;
const MARGIN: f64 = 48.0;
/// Room right of the plot for the legend: object API names run long (`Opportunity`, `Invoice__c`).
const LEGEND: f64 = 160.0;
/// Where the plot ends.
const PLOT_RIGHT: f64 = WIDTH - LEGEND;
/// Distinct series colours (Tableau 10).
pub const COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// One `<polyline class="series" data-object=...>` per object: records over snapshot times.
pub fn chart(series: &BTreeMap<String, Vec<(i64, u64)>>) -> String {
    let points: Vec<(i64, u64)> = series.values().flatten().copied().collect();
    let (min_t, max_t) = points
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (t, _)| {
            (lo.min(*t), hi.max(*t))
        });
    let max_n = points.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let span = (max_t - min_t).max(1) as f64;
    let x = |t: i64| MARGIN + (t - min_t) as f64 / span * (PLOT_RIGHT - MARGIN);
    let y = |n: u64| HEIGHT - MARGIN - n as f64 / max_n as f64 * (HEIGHT - 2.0 * MARGIN);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"records per object over time\">\n"
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{MARGIN}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/><line x1=\"{MARGIN}\" y1=\"{MARGIN}\" x2=\"{MARGIN}\" y2=\"{b}\" stroke=\"#888\"/>",
        b = HEIGHT - MARGIN,
        r = PLOT_RIGHT
    );
    let _ = writeln!(
        svg,
        "<text x=\"4\" y=\"{}\" font-size=\"11\">{max_n}</text><text x=\"4\" y=\"{}\" font-size=\"11\">0</text>",
        MARGIN + 4.0,
        HEIGHT - MARGIN
    );
    for (i, (object, values)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = values
            .iter()
            .map(|(t, n)| format!("{:.1},{:.1}", x(*t), y(*n)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"series\" data-object=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            escape(object),
            path.join(" "),
            escape(object)
        );
        // The latest count beside the name: lines with equal counts lie on top of each other.
        let latest = values.last().map_or(0, |(_, n)| *n);
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{colour}\">{} {latest}</text>",
            PLOT_RIGHT + 8.0,
            MARGIN + 14.0 * i as f64,
            escape(object)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The page `report` wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportWritten {
    pub path: PathBuf,
    pub objects: usize,
    pub snapshots: usize,
}

impl Report for ReportWritten {
    fn text(&self) -> String {
        format!(
            "wrote {} ({} objects charted over {} snapshots)\n",
            self.path.display(),
            self.objects,
            self.snapshots
        )
    }
}

pub fn report(options: &ReportOptions, env: Env<'_>) -> Result<ReportWritten, Error> {
    let project = Project::open(&options.dir, env)?;
    let task = TaskSnapshots::open(&project, options.task.as_deref())?;
    let store = project.store()?;
    let state = project.state()?;

    // Records per object at each snapshot, oldest first.
    let mut series: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    let mut snapshots = task.status.snapshots.clone();
    snapshots.reverse();
    for row in &snapshots {
        let Ok(manifest) = load_manifest(store, &row.id) else {
            continue;
        };
        let time = crate::time::parse_datetime(&row.time).unwrap_or(0);
        // Records per object: a file's body row stands for a record counted already.
        for (object, entry) in manifest
            .objects
            .iter()
            .filter(|(o, _)| !crate::snapshot::files::is_body_object(o))
        {
            series
                .entry(object.clone())
                .or_default()
                .push((time, entry.records.unwrap_or(entry.base_records)));
        }
    }
    let latest_summary = match task.status.snapshots.first() {
        Some(latest) => state
            .read(&format!("state/{}/diffs/{}.md", task.id, latest.id))?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        None => String::new(),
    };
    let coverage = state
        .read(&format!("state/{}/coverage.yaml", task.id))?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();

    let mut html = String::new();
    let title = format!(
        "cairn report: {}",
        if task.status.name.is_empty() {
            &task.id
        } else {
            &task.status.name
        }
    );
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:800px;margin:2em auto;color:#222}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}pre{{background:#f6f6f6;padding:1em;white-space:pre-wrap}}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        html,
        "<p>Task <code>{}</code>, {} snapshots, last backup {}.</p>",
        escape(&task.id),
        task.status.snapshots.len(),
        escape(
            task.status
                .last_applied
                .as_ref()
                .map_or("never", |r| r.time.as_str())
        )
    );
    html.push_str("<h2>Records per object</h2>\n");
    html.push_str(&chart(&series));
    html.push_str("<h2>API calls per run</h2>\n<table><tr><th>time</th><th>outcome</th><th>API calls</th><th>records</th></tr>\n");
    for run in &task.status.history {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&run.time),
            escape(&format!("{:?}", run.outcome).to_lowercase()),
            run.api_calls,
            run.records
        );
    }
    html.push_str("</table>\n<p>Each run may use up to the task's <code>apiUsageLimitPercent</code> of the org's daily allocation; the connector stops before it.</p>\n");
    let _ = writeln!(
        html,
        "<h2>Latest changes</h2>\n<pre>{}</pre>",
        escape(&latest_summary)
    );
    let _ = writeln!(html, "<h2>Coverage</h2>\n<pre>{}</pre>", escape(&coverage));
    html.push_str("</body></html>\n");

    if let Some(parent) = options.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(&options.out, &html).map_err(|source| Error::Io {
        path: options.out.clone(),
        source,
    })?;
    Ok(ReportWritten {
        path: options.out.clone(),
        objects: series.len(),
        snapshots: snapshots.len(),
    })
}
