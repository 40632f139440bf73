//! `cairn check`: verify a store's structure, and with `--read-data` its data; and compare the
//! store with the state branch both ways, since a snapshot the state lists is a promise that
//! the store holds it.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::ops::check::{self, CheckReport, Finding, ReadData, Severity};
use crate::project::Project;
use crate::project::store_access::Env;
use crate::store::Store;

/// Snapshots the state branch lists that the store lacks (errors: a backup reported as kept is
/// gone), and snapshots in the store that no task's state lists (warnings: a run whose state
/// was never committed or pushed).
fn compare_with_state(project: &Project<'_>, store: &Store) -> Result<Vec<Finding>, Error> {
    let Ok(state) = project.state() else {
        return Ok(Vec::new());
    };
    let mut findings = Vec::new();
    if let Err(e) = state.fetch() {
        findings.push(Finding {
            severity: Severity::Warning,
            what: format!("the state branch could not be fetched ({e}); the store was compared with the local copy"),
            affects: Vec::new(),
            next: "check that the remote is reachable, then run check again".into(),
        });
    }
    let stored: std::collections::BTreeSet<String> = store.list_snapshots()?.into_iter().collect();
    let mut listed = std::collections::BTreeSet::new();
    for task in state.list("state")? {
        let status = match project.status(&task) {
            Ok(Some(status)) => status,
            Ok(None) => continue,
            // Its snapshots cannot be compared; the damage is a finding like any other.
            Err(e) => {
                findings.push(Finding {
                    severity: Severity::Error,
                    what: e.to_string(),
                    affects: vec![format!("task {task}")],
                    next: e.guidance(),
                });
                continue;
            }
        };
        for row in status.snapshots {
            if !stored.contains(&row.id) {
                findings.push(Finding {
                    severity: Severity::Error,
                    what: format!(
                        "snapshot {} of task {task} ({}) is listed by the state branch but missing from the store",
                        row.id, row.time
                    ),
                    affects: vec![format!("snapshot {} ({task})", row.id)],
                    next: format!(
                        "its data never reached this store or was removed from it; restore the store from a copy, or run `cairn apply --task {task} --now` for a new backup (the missing one cannot be read)"
                    ),
                });
            }
            listed.insert(row.id);
        }
    }
    let unlisted: Vec<&String> = stored.iter().filter(|id| !listed.contains(*id)).collect();
    if !unlisted.is_empty() {
        findings.push(Finding {
            severity: Severity::Warning,
            what: format!(
                "{} snapshots in the store are listed by no task's state (a run that stopped before its state commit was pushed, or a purged task)",
                unlisted.len()
            ),
            affects: unlisted.iter().map(|id| format!("snapshot {id}")).collect(),
            next: "nothing is lost: the listed snapshots are whole; `cairn forget` applies retention to these too".into(),
        });
    }
    Ok(findings)
}

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub dir: PathBuf,
    pub read_data: ReadData,
}

/// What check found, and how much it read; `ok` when no finding is an error.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    #[serde(flatten)]
    pub report: CheckReport,
    /// Whether blobs were decrypted (`--read-data`), not only listed.
    pub data_read: bool,
    pub ok: bool,
}

impl Report for CheckOutcome {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::from_ok(self.ok)
    }

    fn text(&self) -> String {
        let report = &self.report;
        let mut out = String::new();
        for finding in &report.findings {
            let level = match finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let _ = writeln!(out, "{level}: {}", finding.what);
            for place in &finding.affects {
                let _ = writeln!(out, "  affects {place}");
            }
            let _ = writeln!(out, "  help: {}\n", finding.next);
        }
        for lock in &report.live_locks {
            let _ = writeln!(out, "in progress: {lock}");
        }
        let read = if self.data_read {
            format!(
                "{} of {} blobs decrypted and verified",
                report.blobs_read, report.blobs
            )
        } else {
            "structure only; add --read-data to decrypt and verify the data".to_string()
        };
        let verdict = if self.ok { "no errors" } else { "ERRORS FOUND" };
        let _ = writeln!(
            out,
            "checked {} snapshots and {} blobs ({read}): {verdict}",
            report.snapshots, report.blobs
        );
        out
    }
}

pub fn check(options: &CheckOptions, env: Env<'_>) -> Result<CheckOutcome, Error> {
    let project = Project::open(&options.dir, env)?;
    project.require_valid()?;
    let store = project.store()?;
    let mut report = check::check(store, options.read_data)?;
    report.findings.extend(compare_with_state(&project, store)?);
    Ok(CheckOutcome {
        ok: !report.has_errors(),
        report,
        data_read: !matches!(options.read_data, ReadData::None),
    })
}
