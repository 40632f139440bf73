//! Finding a task's snapshots: the task from `--task` (or the only one with state), its
//! snapshot list from the state branch, and snapshot names (`latest`, `latest~N`, a date, an
//! id prefix) resolved against it.

use std::path::Path;

use crate::error::Error;
use crate::gitops::StateBranch;
use crate::manifest::model::Repository;
use crate::manifest::{ConfigTree, load};
use crate::state::status::{SnapshotRow, TaskStatus};

pub struct TaskSnapshots {
    pub repository: Repository,
    pub id: String,
    pub status: TaskStatus,
}

impl TaskSnapshots {
    pub fn open(dir: &Path, task: Option<&str>) -> Result<TaskSnapshots, Error> {
        let config = load(&ConfigTree::work_tree(dir)?)?;
        let Some(repository) = config.repository.clone() else {
            return Err(Error::InvalidConfig {
                dir: dir.to_path_buf(),
            });
        };
        let state = StateBranch::open(dir, &repository.state.branch, &repository.state.remote)?;
        let _ = state.fetch();
        let known = state.list("state")?;
        let id = match (task, known.as_slice()) {
            (Some(task), _) => task.to_string(),
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(usage(
                    "more than one task has snapshots, or none has".into(),
                    &format!("choose one with --task ({})", known.join(", ")),
                ));
            }
        };
        let status = match state.read(&TaskStatus::path(&id))? {
            Some(bytes) => TaskStatus::parse(&bytes).unwrap_or_default(),
            None => {
                return Err(Error::NoSuchTask {
                    id,
                    dir: dir.to_path_buf(),
                    known,
                });
            }
        };
        Ok(TaskSnapshots {
            repository,
            id,
            status,
        })
    }
}

pub fn usage(message: String, next: &str) -> Error {
    Error::Usage {
        message,
        next: next.to_string(),
    }
}

/// Finds a snapshot in a task's list (newest first).
pub fn resolve<'a>(snapshots: &'a [SnapshotRow], spec: &str) -> Result<&'a SnapshotRow, Error> {
    let missing = || {
        usage(
            format!("no snapshot `{spec}` ({} snapshots known)", snapshots.len()),
            "`cairn snapshots --task ID` lists them; use an id, latest, latest~N or a date such as 2026-01-31",
        )
    };
    if spec == "latest" {
        return snapshots.first().ok_or_else(missing);
    }
    if let Some(n) = spec.strip_prefix("latest~") {
        let n: usize = n.parse().map_err(|_| missing())?;
        return snapshots.get(n).ok_or_else(missing);
    }
    let until = if spec.len() == 10 {
        crate::time::parse_date(spec).map(|days| (i64::from(days) + 1) * 86_400_000 - 1)
    } else {
        crate::time::parse_datetime(spec)
    };
    if let Some(until) = until {
        return snapshots
            .iter()
            .find(|s| crate::time::parse_datetime(&s.time).is_some_and(|t| t <= until))
            .ok_or_else(missing);
    }
    let matches: Vec<&SnapshotRow> = snapshots
        .iter()
        .filter(|s| s.id.starts_with(spec))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(missing()),
        _ => Err(usage(
            format!("`{spec}` matches {} snapshots", matches.len()),
            "give more characters of the id",
        )),
    }
}
