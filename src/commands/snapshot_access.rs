//! Finding a task's snapshots: the task from `--task` (or the only one with state), its
//! snapshot list from the state branch, and snapshot names (`latest`, `latest~N`, a date, an
//! id prefix) resolved against it.

use crate::error::Error;
use crate::project::Project;
use crate::state::status::{SnapshotRow, TaskStatus};

pub struct TaskSnapshots {
    pub id: String,
    pub status: TaskStatus,
}

impl TaskSnapshots {
    /// The task's snapshots as the state branch lists them (fetched when the remote answers);
    /// without `task`, the only task with state.
    pub fn open(project: &Project<'_>, task: Option<&str>) -> Result<TaskSnapshots, Error> {
        project.repository()?;
        project.state_fetched_if_reachable()?;
        let known = project.tasks_with_state()?;
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
        match project.status(&id)? {
            Some(status) => Ok(TaskSnapshots { id, status }),
            None => Err(Error::NoSuchTask {
                id,
                dir: project.dir().to_path_buf(),
                known,
            }),
        }
    }
}

pub fn usage(message: String, next: &str) -> Error {
    Error::Usage {
        message,
        next: next.to_string(),
    }
}

/// The first 12 characters of a snapshot id, as lists show it.
pub fn short_id(id: &str) -> &str {
    &id[..crate::text::floor_char_boundary(id, id.len().min(12))]
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
            .ok_or_else(|| match snapshots.last() {
                Some(oldest) => usage(
                    format!(
                        "no snapshot was taken on or before {spec}: the oldest is {} ({})",
                        short_id(&oldest.id),
                        oldest.time
                    ),
                    "a date names the newest snapshot taken on or before it; give a later one, latest~N or an id (`cairn snapshots` lists them)",
                ),
                None => missing(),
            });
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
