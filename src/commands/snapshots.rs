//! `cairn snapshots`: a task's snapshots with time, outcome and record count, from the state
//! branch (no key needed), each marked with whether the store still holds its data: with a
//! key, its manifest opens and every blob it names is there; without one, its manifest is.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::{self, Env};
use crate::snapshot::writer::load_manifest;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct SnapshotsOptions {
    pub dir: PathBuf,
    pub tasks: Vec<String>,
    pub json: bool,
}

/// Whether the store holds a listed snapshot's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

pub fn snapshots(options: &SnapshotsOptions, env: Env<'_>) -> Result<String, Error> {
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
    if options.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|(task, s)| serde_json::json!({"task": task, "id": s.id, "time": s.time, "complete": s.complete, "records": s.records, "data": format!("{:?}", state(&s.id)).to_lowercase()}))
            .collect();
        return Ok(serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n");
    }
    let mut out = format!(
        "{:<24} {:<14} {:<25} {:<9} {:>10}  {}\n",
        "TASK", "SNAPSHOT", "TIME", "OUTCOME", "RECORDS", "DATA"
    );
    for (task, s) in &all {
        let _ = writeln!(
            out,
            "{:<24} {:<14} {:<25} {:<9} {:>10}  {}",
            task,
            &s.id[..s.id.len().min(12)],
            s.time,
            if s.complete { "complete" } else { "partial" },
            s.records,
            state(&s.id).word()
        );
    }
    let _ = writeln!(out, "{} snapshots", all.len());
    let bad = all.iter().filter(|(_, s)| state(&s.id).is_bad()).count();
    if bad > 0 {
        let _ = writeln!(
            out,
            "warning: the store lacks data of {bad} of these snapshots (MISSING: no manifest; DAMAGED: unreadable or blobs gone); `cairn check` names what is affected"
        );
    }
    if data.values().any(|d| *d == DataState::ManifestPresent) {
        let _ = writeln!(
            out,
            "ok? = the manifest is in the store; set CAIRN_KEY or CAIRN_PASSPHRASE to verify every blob"
        );
    }
    Ok(out)
}
