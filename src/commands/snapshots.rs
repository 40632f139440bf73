//! `cairn snapshots`: a task's snapshots with time, outcome and record count, from the state
//! branch (no key needed).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::error::Error;
use crate::gitops::StateBranch;
use crate::manifest::{ConfigTree, load};
use crate::reconcile::status::TaskStatus;

#[derive(Debug, Clone)]
pub struct SnapshotsOptions {
    pub dir: PathBuf,
    pub tasks: Vec<String>,
    pub json: bool,
}

pub fn snapshots(options: &SnapshotsOptions) -> Result<String, Error> {
    let config = load(&ConfigTree::work_tree(&options.dir)?)?;
    let settings = config
        .repository
        .as_ref()
        .map(|r| r.state.clone())
        .unwrap_or_default();
    let state = StateBranch::open(&options.dir, &settings.branch, &settings.remote)?;
    let _ = state.fetch();
    let mut all = Vec::new();
    for id in state.list("state")? {
        if !options.tasks.is_empty() && !options.tasks.contains(&id) {
            continue;
        }
        if let Some(bytes) = state.read(&TaskStatus::path(&id))? {
            let status = TaskStatus::parse(&bytes).unwrap_or_default();
            for snapshot in status.snapshots {
                all.push((id.clone(), snapshot));
            }
        }
    }
    if options.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|(task, s)| serde_json::json!({"task": task, "id": s.id, "time": s.time, "complete": s.complete, "records": s.records}))
            .collect();
        return Ok(serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n");
    }
    let mut out = format!(
        "{:<24} {:<14} {:<25} {:<9} {:>10}\n",
        "TASK", "SNAPSHOT", "TIME", "OUTCOME", "RECORDS"
    );
    for (task, s) in &all {
        let _ = writeln!(
            out,
            "{:<24} {:<14} {:<25} {:<9} {:>10}",
            task,
            &s.id[..s.id.len().min(12)],
            s.time,
            if s.complete { "complete" } else { "partial" },
            s.records
        );
    }
    let _ = writeln!(out, "{} snapshots", all.len());
    Ok(out)
}
