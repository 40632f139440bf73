//! `cairn snapshots`: a task's snapshots with time, outcome and record count, from the state
//! branch (no key needed), each marked with whether the store still holds its data: with a
//! key, its manifest opens and every blob it names is there; without one, its manifest is.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::{self, Env};
use crate::snapshot::writer::load_manifest;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct SnapshotsOptions {
    pub dir: PathBuf,
    pub tasks: Vec<String>,
}

/// Whether the store holds a listed snapshot's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataState {
    /// Its manifest opens and every blob it names is in the store.
    Present,
    /// Its manifest is in the store (no key was given to look further).
    ManifestPresent,
    /// The store has no manifest of it.
    Missing,
    /// Its manifest does not open, or blobs it names are gone.
    Damaged,
    /// The store could not be reached (no credentials, say).
    Unverified,
}

impl DataState {
    fn word(self) -> &'static str {
        match self {
            DataState::Present => "ok",
            DataState::ManifestPresent => "ok?",
            DataState::Missing => "MISSING",
            DataState::Damaged => "DAMAGED",
            DataState::Unverified => "-",
        }
    }

    fn is_bad(self) -> bool {
        matches!(self, DataState::Missing | DataState::Damaged)
    }
}

/// What the store holds of each snapshot.
fn data_states(
    project: &Project<'_>,
    ids: &[&str],
) -> std::collections::HashMap<String, DataState> {
    let unverified = || {
        ids.iter()
            .map(|id| (id.to_string(), DataState::Unverified))
            .collect()
    };
    let Ok(repository) = project.repository() else {
        return unverified();
    };
    if let Ok(store) = project.store() {
        let stored: std::collections::HashSet<String> = match store.list_blobs() {
            Ok(blobs) => blobs.into_iter().collect(),
            Err(_) => return unverified(),
        };
        return ids
            .iter()
            .map(|id| {
                let state = match load_manifest(store, id) {
                    Ok(manifest) => {
                        let complete = manifest
                            .objects
                            .values()
                            .flat_map(|entry| entry.segments())
                            .all(|segment| stored.contains(&segment.blob));
                        if complete {
                            DataState::Present
                        } else {
                            DataState::Damaged
                        }
                    }
                    Err(StoreError::MissingSnapshot { .. }) => DataState::Missing,
                    Err(StoreError::BadManifest { .. } | StoreError::CorruptBlob { .. }) => {
                        DataState::Damaged
                    }
                    Err(_) => DataState::Unverified,
                };
                (id.to_string(), state)
            })
            .collect();
    }
    let Ok(backend) = store_access::backend(project.dir(), repository, project.env()) else {
        return unverified();
    };
    ids.iter()
        .map(|id| {
            let state = match backend.exists(&crate::store::snapshot_path(id)) {
                Ok(true) => DataState::ManifestPresent,
                Ok(false) => DataState::Missing,
                Err(_) => DataState::Unverified,
            };
            (id.to_string(), state)
        })
        .collect()
}

/// One snapshot of the list.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotListRow {
    pub task: String,
    pub id: String,
    pub time: String,
    pub complete: bool,
    pub records: u64,
    pub data: DataState,
}

/// Every listed snapshot, newest first per task; as JSON, the array of rows.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct SnapshotList {
    pub rows: Vec<SnapshotListRow>,
}

impl Report for SnapshotList {
    fn text(&self) -> String {
        let mut out = format!(
            "{:<24} {:<14} {:<25} {:<9} {:>10}  {}\n",
            "TASK", "SNAPSHOT", "TIME", "OUTCOME", "RECORDS", "DATA"
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:<24} {:<14} {:<25} {:<9} {:>10}  {}",
                row.task,
                &row.id[..row.id.len().min(12)],
                row.time,
                if row.complete { "complete" } else { "partial" },
                row.records,
                row.data.word()
            );
        }
        let _ = writeln!(out, "{} snapshots", self.rows.len());
        let bad = self.rows.iter().filter(|row| row.data.is_bad()).count();
        if bad > 0 {
            let _ = writeln!(
                out,
                "warning: the store lacks data of {bad} of these snapshots (MISSING: no manifest; DAMAGED: unreadable or blobs gone); `cairn check` names what is affected"
            );
        }
        if self
            .rows
            .iter()
            .any(|row| row.data == DataState::ManifestPresent)
        {
            let _ = writeln!(
                out,
                "ok? = the manifest is in the store; set CAIRN_KEY or CAIRN_PASSPHRASE to verify every blob"
            );
        }
        out
    }
}

pub fn snapshots(options: &SnapshotsOptions, env: Env<'_>) -> Result<SnapshotList, Error> {
    let project = Project::open(&options.dir, env)?;
    project.state_fetched_if_reachable()?;
    let mut all = Vec::new();
    for id in project.tasks_with_state()? {
        if !options.tasks.is_empty() && !options.tasks.contains(&id) {
            continue;
        }
        if let Some(status) = project.status(&id)? {
            for snapshot in status.snapshots {
                all.push((id.clone(), snapshot));
            }
        }
    }
    let ids: Vec<&str> = all.iter().map(|(_, s)| s.id.as_str()).collect();
    let data = data_states(&project, &ids);
    let state = |id: &str| data.get(id).copied().unwrap_or(DataState::Unverified);
    let rows = all
        .iter()
        .map(|(task, s)| SnapshotListRow {
            task: task.clone(),
            id: s.id.clone(),
            time: s.time.clone(),
            complete: s.complete,
            records: s.records,
            data: state(&s.id),
        })
        .collect();
    Ok(SnapshotList { rows })
}
