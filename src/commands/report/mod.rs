//! `cairn report --task ID --out report.html`: one self-contained HTML page (no scripts, no
//! network), in the order a reader needs it: what needs attention (alerts, failed runs, a
//! lost connection, what the backup leaves out), then change over time (added, modified and
//! deleted per run and object, dates on the axis, a mark where an alert fired), then the
//! totals per object, the runs with their API calls, the latest change summary and the
//! coverage, rendered rather than dumped.

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

mod chart;
mod markdown;

pub use chart::{ALERT_MARK, COLOURS};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page `report` wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportWritten {
    pub path: PathBuf,
    pub objects: usize,
    pub snapshots: usize,
    pub runs: usize,
    pub alerts: usize,
}

impl Report for ReportWritten {
    fn text(&self) -> String {
        format!(
            "wrote {} ({} charted over {}; {}, {})\n",
            self.path.display(),
            crate::text::plural(self.objects as u64, "object"),
            crate::text::plural(self.snapshots as u64, "snapshot"),
            crate::text::plural(self.runs as u64, "run"),
            crate::text::plural(self.alerts as u64, "alert")
        )
    }
}

pub fn report(options: &ReportOptions, env: Env<'_>) -> Result<ReportWritten, Error> {
    let project = Project::open(&options.dir, env)?;
    let task = TaskSnapshots::open(&project, options.task.as_deref())?;
    let store = project.store()?;
    let state = project.state()?;
    let status = &task.status;
    let read = |path: String| -> Result<Option<String>, Error> {
        Ok(state
            .read(&path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    };

    // Records per object at each snapshot, oldest first.
    let mut series: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    let mut snapshots = status.snapshots.clone();
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

    // Each recorded run, oldest first, with what its summary says it changed.
    let mut runs = Vec::new();
    let mut per_object: BTreeMap<String, BTreeMap<usize, (u64, u64, u64)>> = BTreeMap::new();
    let mut alerted: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, run) in status.history.iter().rev().enumerate() {
        let figures = match &run.snapshot {
            Some(id) => read(format!("state/{}/diffs/{id}.md", task.id))?
                .map(|md| crate::diff::summary::figures(&md)),
            None => None,
        };
        let totals = figures.as_ref().map(|f| {
            f.changes
                .iter()
                .fold((0, 0, 0), |(a, m, d), (_, x, y, z)| (a + x, m + y, d + z))
        });
        for (object, a, m, d) in figures.iter().flat_map(|f| &f.changes) {
            per_object
                .entry(object.clone())
                .or_default()
                .insert(i, (*a, *m, *d));
        }
        let alerts = figures.map(|f| f.alerts).unwrap_or_default();
        if !alerts.is_empty() {
            alerted.insert(i, alerts.clone());
        }
        runs.push(chart::RunBar {
            time_ms: crate::time::parse_datetime(&run.time).unwrap_or(0),
            changes: totals,
            alerts,
            outcome: format!("{:?}", run.outcome).to_lowercase(),
        });
    }
    let coverage = read(format!("state/{}/coverage.yaml", task.id))?
        .and_then(|text| serde_yaml::from_str::<crate::state::status::CoverageFile>(&text).ok());
    let latest_summary = match status.snapshots.first() {
        Some(latest) => read(format!("state/{}/diffs/{}.md", task.id, latest.id))?,
        None => None,
    };

    let name = if status.name.is_empty() {
        &task.id
    } else {
        &status.name
    };
    let title = format!("cairn report: {name}");
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        html,
        "<p class=\"meta\">Task <code>{}</code>{}{} · {} kept · {} recorded{} · last backup {}</p>",
        escape(&task.id),
        if status.environment.is_empty() {
            String::new()
        } else {
            format!(" · {}", escape(&status.environment))
        },
        status
            .org_id
            .as_deref()
            .map(|org| format!(" · org <code>{}</code>", escape(org)))
            .unwrap_or_default(),
        crate::text::plural(status.snapshots.len() as u64, "snapshot"),
        crate::text::plural(status.history.len() as u64, "run"),
        if status.history.len() >= crate::state::status::HISTORY {
            " (the state keeps the last ones)"
        } else {
            ""
        },
        escape(
            status
                .last_applied
                .as_ref()
                .map_or("never", |r| r.time.as_str())
        )
    );

    html.push_str(&attention(status, &alerted, &runs, coverage.as_ref()));

    html.push_str("<h2>Changes per run</h2>\n");
    html.push_str(&chart::changes(&runs));
    html.push_str(&changes_table(&runs, &per_object, &alerted));

    html.push_str("<h2>Records per object</h2>\n");
    html.push_str(&chart::records(&series));

    html.push_str("<h2>Runs</h2>\n<table><tr><th>time</th><th>outcome</th><th>snapshot</th><th class=\"n\">API calls</th><th class=\"n\">records</th><th>message</th></tr>\n");
    for run in &status.history {
        let outcome = format!("{:?}", run.outcome).to_lowercase();
        let _ = writeln!(
            html,
            "<tr class=\"{outcome}\"><td>{}</td><td>{outcome}</td><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(&run.time),
            escape(
                run.snapshot
                    .as_deref()
                    .map_or("-", |s| &s[..s.len().min(12)])
            ),
            crate::text::count(run.api_calls),
            crate::text::count(run.records),
            escape(run.message.as_deref().unwrap_or(""))
        );
    }
    html.push_str("</table>\n<p class=\"note\">Each run may use up to the task's <code>apiUsageLimitPercent</code> of the org's daily API allocation; the connector stops before it.</p>\n");

    html.push_str("<h2>Latest changes</h2>\n");
    match &latest_summary {
        Some(md) => html.push_str(&markdown::to_html(md, 3)),
        None => html.push_str("<p>No snapshot yet.</p>\n"),
    }
    html.push_str("<h2>Coverage</h2>\n");
    html.push_str(&coverage_html(coverage.as_ref()));
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
        runs: status.history.len(),
        alerts: alerted.values().map(Vec::len).sum(),
    })
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:820px;margin:2em auto;color:#222;line-height:1.4}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}.n{text-align:right}.meta,.note{color:#555}section.attention{border-left:4px solid #e15759;padding:.2em 1em;background:#fdf1f1}section.attention.ok{border-color:#59a14f;background:#f1f8f0}tr.failed td,td.alert{background:#fde2e2}tr.partial td{background:#fff4d6}.del{color:#b3262a;font-weight:600}pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}svg{max-width:100%;height:auto}";

/// What needs a person first: alerts of the last runs, a failed or partial last run, a lost
/// connection, and what the backup leaves out.
fn attention(
    status: &crate::state::status::TaskStatus,
    alerted: &BTreeMap<usize, Vec<String>>,
    runs: &[chart::RunBar],
    coverage: Option<&crate::state::status::CoverageFile>,
) -> String {
    let mut items = Vec::new();
    for (i, alerts) in alerted.iter().rev() {
        let when = runs
            .get(*i)
            .map(|r| crate::time::format_datetime_z(r.time_ms));
        for alert in alerts {
            items.push(format!(
                "<li class=\"alert\"><strong>ALERT</strong> {}: {}</li>",
                escape(when.as_deref().unwrap_or("")),
                escape(alert)
            ));
        }
    }
    if let Some(last) = &status.last_attempted
        && !matches!(last.outcome, crate::state::status::RunOutcome::Success)
    {
        items.push(format!(
            "<li class=\"run\"><strong>Last run {}</strong> {}: {}</li>",
            escape(&format!("{:?}", last.outcome).to_lowercase()),
            escape(&last.time),
            escape(last.message.as_deref().unwrap_or(""))
        ));
    }
    if let Some(connected) = status.condition("Connected")
        && connected.status == "False"
    {
        items.push(format!(
            "<li class=\"connection\"><strong>Disconnected ({})</strong> since {}: {}</li>",
            escape(&connected.reason),
            escape(&connected.last_transition_time),
            escape(&connected.message)
        ));
    }
    if let Some(coverage) = coverage {
        let left: usize = coverage.skipped.len()
            + coverage.fields_left_out.len()
            + coverage.files_left_out.len()
            + coverage.components_left_out.len();
        if left > 0 {
            items.push(format!(
                "<li class=\"coverage\"><strong>Left out of the backup</strong>: {} (see Coverage below)</li>",
                [
                    (coverage.skipped.len(), "object"),
                    (coverage.fields_left_out.len(), "field"),
                    (coverage.files_left_out.len(), "kind of file"),
                    (coverage.components_left_out.len(), "metadata component"),
                ]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| crate::text::plural(*n as u64, what))
                .collect::<Vec<_>>()
                .join(", ")
            ));
        }
    }
    match items.is_empty() {
        true => "<section class=\"attention ok\"><h2>Needs attention</h2>\n<p>Nothing: no alert fired, the last run succeeded, the org is connected and the backup leaves nothing out.</p></section>\n".to_string(),
        false => format!(
            "<section class=\"attention\"><h2>Needs attention</h2>\n<ul>\n{}\n</ul></section>\n",
            items.join("\n")
        ),
    }
}

/// Objects down, runs across (the last twelve): `+added ~modified −deleted`, deletions in red,
/// a cell an alert fired on shaded.
fn changes_table(
    runs: &[chart::RunBar],
    per_object: &BTreeMap<String, BTreeMap<usize, (u64, u64, u64)>>,
    alerted: &BTreeMap<usize, Vec<String>>,
) -> String {
    if per_object.is_empty() {
        return "<p>No record changed in the runs recorded.</p>\n".into();
    }
    let shown: Vec<usize> = (runs.len().saturating_sub(12)..runs.len()).collect();
    let mut html = String::from("<table class=\"per-object\"><tr><th>object</th>");
    for i in &shown {
        let when = chart::short_time(runs[*i].time_ms);
        let _ = write!(html, "<th class=\"n\">{}</th>", escape(&when));
    }
    html.push_str("</tr>\n");
    for (object, cells) in per_object {
        let _ = write!(html, "<tr><td>{}</td>", escape(object));
        for i in &shown {
            let alert = alerted
                .get(i)
                .is_some_and(|alerts| alerts.iter().any(|a| a.starts_with(&format!("{object}:"))));
            let class = if alert { " alert" } else { "" };
            match cells.get(i) {
                Some((a, m, d)) => {
                    let deleted = match d {
                        0 => "−0".to_string(),
                        d => format!("<span class=\"del\">−{}</span>", crate::text::count(*d)),
                    };
                    let _ = write!(
                        html,
                        "<td class=\"n{class}\">+{} ~{} {deleted}</td>",
                        crate::text::count(*a),
                        crate::text::count(*m)
                    );
                }
                None => {
                    let _ = write!(html, "<td class=\"n{class}\"></td>");
                }
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

/// coverage.yaml as tables: what is backed up, and what is left out and why.
fn coverage_html(coverage: Option<&crate::state::status::CoverageFile>) -> String {
    let Some(coverage) = coverage else {
        return "<p>No coverage recorded yet.</p>\n".into();
    };
    let mut html = format!(
        "<p>Backed up: {} ({}).</p>\n",
        crate::text::plural(coverage.backed_up.len() as u64, "object"),
        escape(&coverage.backed_up.join(", "))
    );
    let mut table = |heading: &str, rows: &BTreeMap<String, String>| {
        if rows.is_empty() {
            return;
        }
        let _ = write!(
            html,
            "<h3>{heading}</h3>\n<table><tr><th>what</th><th>why</th></tr>\n"
        );
        for (what, why) in rows {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(what),
                escape(why)
            );
        }
        html.push_str("</table>\n");
    };
    table("Objects left out", &coverage.skipped);
    table("Fields left out", &coverage.fields_left_out);
    table("Files left out", &coverage.files_left_out);
    table(
        "Metadata components left out",
        &coverage.components_left_out,
    );
    table(
        "Include patterns that match nothing",
        &coverage.unmatched_includes,
    );
    if let Some(excluded) = coverage.excluded.as_ref().filter(|e| !e.is_empty()) {
        let _ = writeln!(
            html,
            "<p>Left out by include/exclude: {}.</p>",
            escape(&excluded.join(", "))
        );
    }
    html
}
