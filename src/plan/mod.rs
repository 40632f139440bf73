//! `cairn plan`: the manifests at a base revision against the head (work tree), and both
//! against the state recorded on the state branch, as a Terraform-style plan: create, update
//! (with the changed fields), archive, or a refusal where an immutable field changed. Needs no
//! Salesforce credentials and no store key: everything comes from git.

pub(crate) mod render;
pub(crate) mod restores;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::exit::ExitStatus;
use crate::gitops::StateBranch;
use crate::manifest::model::BackupTask;
use crate::manifest::{ConfigTree, LoadedConfig, load};
use crate::project::Project;
use crate::state::decision::{RemovedDecision, TaskDecision, decide, decide_removed, forgotten};
use crate::state::status::{CoverageFile, Phase, TaskStatus};

#[derive(Debug, Clone)]
pub(crate) struct PlanOptions {
    pub dir: PathBuf,
    /// The base revision; default: the merge base of HEAD with the default branch.
    pub base: Option<String>,
    /// The time to judge what is due at (default: now).
    pub at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FieldChange {
    /// Dotted path, such as `retention.keepDaily`.
    pub field: String,
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Create,
    Update,
    Archive,
    /// An archived task whose `autoArchivedDays` have passed: apply removes its snapshots.
    Purge,
    /// An immutable field changed: apply would refuse it.
    Refused,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskPlan {
    pub id: String,
    pub name: String,
    pub action: Action,
    pub changes: Vec<FieldChange>,
    /// Changes that force a new lineage (why the task is refused).
    pub refused: Vec<FieldChange>,
    pub due: bool,
    pub suspended: bool,
    /// None: never checked.
    pub connected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnected_reason: Option<String>,
    /// Snapshots the head's retention policy would forget, with their times.
    pub would_forget: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_days: Option<u32>,
    /// What a changed objects.include/exclude will add to and drop from the backup, judged
    /// against the org's objects as the last backup recorded them (coverage.yaml).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageForecast>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CoverageForecast {
    pub adds: Vec<String>,
    pub drops: Vec<String>,
    /// Include patterns that match none of the org's objects, with the likeliest meant one.
    pub unmatched: Vec<(String, Option<String>)>,
}

/// The objects the last backup of a task saw that a manifest can choose: those backed up and
/// those include/exclude left out (skipped ones cannot be backed up at all). None without a
/// recorded coverage that lists them all (one written before it recorded `excluded`).
fn recorded_objects(state: &StateBranch, id: &str) -> Option<(Vec<String>, Vec<String>)> {
    let bytes = state.read(&CoverageFile::path(id)).ok()??;
    let recorded = CoverageFile::parse(&bytes)?;
    let mut eligible = recorded.backed_up.clone();
    eligible.extend(recorded.excluded?);
    Some((recorded.backed_up, eligible))
}

/// Which objects the task's include/exclude choose among those the org had.
fn coverage_forecast(state: &StateBranch, id: &str, task: &BackupTask) -> Option<CoverageForecast> {
    use crate::text::glob::glob;
    let (backed_up, eligible) = recorded_objects(state, id)?;
    let chosen = |name: &str| {
        task.objects.include.iter().any(|p| glob(p, name))
            && !task.objects.exclude.iter().any(|p| glob(p, name))
    };
    let mut forecast = CoverageForecast::default();
    for name in &eligible {
        let before = backed_up.contains(name);
        match (before, chosen(name)) {
            (false, true) => forecast.adds.push(name.clone()),
            (true, false) => forecast.drops.push(name.clone()),
            _ => {}
        }
    }
    for pattern in &task.objects.include {
        if !eligible.iter().any(|name| glob(pattern, name)) {
            let close =
                crate::text::suggest::did_you_mean(pattern, eligible.iter().map(String::as_str))
                    .map(str::to_string);
            forecast.unmatched.push((pattern.clone(), close));
        }
    }
    forecast.adds.sort();
    forecast.drops.sort();
    Some(forecast)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Plan {
    pub base: String,
    pub head: String,
    pub tasks: Vec<TaskPlan>,
    /// Repository-level refusals (store or key changed).
    pub repository_refused: Vec<FieldChange>,
    /// Restore manifests apply will carry out, and carried-out ones this change edits.
    pub restores: Vec<restores::RestoreEntry>,
}

impl Plan {
    pub(crate) fn count(&self, action: Action) -> usize {
        self.tasks.iter().filter(|t| t.action == action).count()
    }

    pub(crate) fn has_changes(&self) -> bool {
        self.tasks
            .iter()
            .any(|t| !matches!(t.action, Action::Unchanged))
            || self.pending_restores() > 0
    }

    pub(crate) fn pending_restores(&self) -> usize {
        self.restores.iter().filter(|r| r.pending()).count()
    }

    pub(crate) fn refused(&self) -> bool {
        !self.repository_refused.is_empty()
            || self.count(Action::Refused) > 0
            || self.restores.iter().any(|r| r.problem.is_some())
    }

    /// Failure when a change is refused, Changes when there are any, else Success.
    pub(crate) fn exit_status(&self) -> ExitStatus {
        if self.refused() {
            ExitStatus::Failure
        } else if self.has_changes() {
            ExitStatus::Changes
        } else {
            ExitStatus::Success
        }
    }

    pub(crate) fn due(&self) -> Vec<&str> {
        self.tasks
            .iter()
            .filter(|t| {
                t.due
                    && !t.suspended
                    && !matches!(t.action, Action::Archive | Action::Purge | Action::Refused)
            })
            .map(|t| t.id.as_str())
            .collect()
    }
}

/// The default branch to compare with, as the first of these refs that exists.
const DEFAULT_BRANCHES: [&str; 5] = [
    "origin/HEAD",
    "origin/main",
    "main",
    "origin/master",
    "master",
];

fn resolve_base(dir: &Path, base: Option<&str>) -> Result<Option<String>, Error> {
    let repo = git2::Repository::discover(dir).map_err(|_| Error::NotAGitRepository {
        path: dir.to_path_buf(),
        needs: crate::error::GitNeed::Base,
    })?;
    let fail = |e: git2::Error| Error::Git {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let head = match repo.head().ok().and_then(|h| h.peel_to_commit().ok()) {
        Some(head) => head.id(),
        None => return Ok(None), // no commits yet: everything is new
    };
    if let Some(base) = base {
        let object = repo
            .revparse_single(base)
            .map_err(|_| Error::RevisionNotFound {
                rev: base.to_string(),
                path: dir.to_path_buf(),
            })?;
        let commit = object.peel_to_commit().map_err(fail)?;
        return Ok(Some(commit.id().to_string()));
    }
    for candidate in DEFAULT_BRANCHES {
        if let Ok(object) = repo.revparse_single(candidate)
            && let Ok(commit) = object.peel_to_commit()
        {
            let merge_base = repo.merge_base(head, commit.id()).map_err(fail)?;
            return Ok(Some(merge_base.to_string()));
        }
    }
    Ok(Some(head.to_string()))
}

fn tasks_by_id(config: &LoadedConfig) -> BTreeMap<String, (String, BackupTask)> {
    config
        .tasks
        .iter()
        .map(|t| (t.task.id.clone(), (t.path.clone(), t.task.clone())))
        .collect()
}

/// Every leaf that differs, as dotted paths.
fn differences(prefix: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                differences(
                    &path,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(FieldChange {
            field: prefix.to_string(),
            before: a.clone(),
            after: b.clone(),
        }),
        _ => {}
    }
}

fn as_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The fields a task can never change: a change means a different backup lineage.
const IMMUTABLE: [&str; 3] = ["id", "source.environment", "source.orgId"];

pub(crate) fn plan(options: &PlanOptions) -> Result<(Plan, LoadedConfig), Error> {
    // A plan reads no secrets.
    let project = Project::open(&options.dir, &|_| None)?;
    let base_rev = resolve_base(&options.dir, options.base.as_deref())?;
    let base_config = match &base_rev {
        Some(rev) => match ConfigTree::at_revision(&options.dir, rev) {
            Ok(tree) => Some(load(&tree)?),
            // The config directory did not exist at the base: everything is new.
            Err(Error::NotInRevision { .. }) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let state = project.state_fetched_if_reachable()?;
    let head_config = project.config();
    let now = options.at.unwrap_or_else(crate::time::now_ms);

    let head_tasks = tasks_by_id(head_config);
    let base_tasks = base_config.as_ref().map(tasks_by_id).unwrap_or_default();
    let mut recorded: BTreeMap<String, TaskStatus> = BTreeMap::new();
    for id in project.tasks_with_state()? {
        if let Some(status) = project.status(&id)? {
            recorded.insert(id, status);
        }
    }

    let mut repository_refused = Vec::new();
    if let (Some(base), Some(head)) = (
        base_config.as_ref().and_then(|c| c.repository.as_ref()),
        head_config.repository.as_ref(),
    ) {
        differences(
            "store",
            &as_json(&base.store),
            &as_json(&head.store),
            &mut repository_refused,
        );
        differences(
            "encryption",
            &as_json(&base.encryption),
            &as_json(&head.encryption),
            &mut repository_refused,
        );
    }

    let mut tasks = Vec::new();
    for (id, (path, task)) in &head_tasks {
        let status = recorded.get(id);
        let known = status.is_some_and(|s| s.phase != Phase::Purged);
        let mut changes = Vec::new();
        // The file's previous id, when the id in it was edited.
        let renamed_from = base_tasks
            .iter()
            .find(|(other, (other_path, _))| other_path == path && *other != id)
            .map(|(other, _)| other.clone());
        if let Some((_, before)) = base_tasks.get(id) {
            differences("", &as_json(before), &as_json(task), &mut changes);
        }
        let mut refused: Vec<FieldChange> = changes
            .iter()
            .filter(|c| IMMUTABLE.contains(&c.field.as_str()))
            .filter(|c| c.field != "source.orgId" || !c.before.is_null())
            .cloned()
            .collect();
        if let Some(old) = &renamed_from {
            refused.push(FieldChange {
                field: "id".into(),
                before: Value::String(old.clone()),
                after: Value::String(id.clone()),
            });
        }
        // What apply will do with the task, decided as apply decides it.
        let decision = decide(task, status, now, false);
        if let TaskDecision::Refused {
            field,
            before,
            after,
        } = &decision
            && !refused.iter().any(|c| c.field == *field)
        {
            refused.push(FieldChange {
                field: field.to_string(),
                before: Value::String(before.clone()),
                after: Value::String(after.clone()),
            });
        }
        let action = if !refused.is_empty() {
            Action::Refused
        } else if !known {
            // Never applied (new in this change, or merged and not yet run).
            Action::Create
        } else if !changes.is_empty() {
            Action::Update
        } else {
            Action::Unchanged
        };
        let due = decision == TaskDecision::BackUp;
        let would_forget = status
            .map(|status| forgotten(task, &status.snapshots))
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.id, crate::time::format_datetime_z(d.time)))
            .collect();
        let coverage = changes
            .iter()
            .any(|c| c.field.starts_with("objects."))
            .then(|| coverage_forecast(state, id, task))
            .flatten();
        tasks.push(TaskPlan {
            coverage,
            id: id.clone(),
            name: task.name.clone(),
            action,
            changes,
            refused,
            due,
            suspended: task.suspend,
            connected: status.and_then(TaskStatus::connected),
            disconnected_reason: status
                .and_then(|s| s.condition("Connected"))
                .filter(|c| c.status != "True")
                .map(|c| c.reason.clone()),
            would_forget,
            archive_days: task.retention.auto_archived_days,
        });
    }
    // Removed tasks: in the base or with recorded state, gone from the head.
    let mut removed: Vec<&String> = base_tasks
        .keys()
        .chain(
            recorded
                .iter()
                .filter(|(_, s)| decide_removed(s, now) != RemovedDecision::Keep)
                .map(|(id, _)| id),
        )
        .filter(|id| !head_tasks.contains_key(*id))
        .collect();
    removed.sort();
    removed.dedup();
    for id in removed {
        // A file whose id was edited is a refusal above, not an archive.
        let renamed = tasks.iter().any(|t| {
            t.refused
                .iter()
                .any(|c| c.field == "id" && c.before == Value::String(id.clone()))
        });
        if renamed {
            continue;
        }
        let status = recorded.get(id);
        let base_task = base_tasks.get(id).map(|(_, t)| t);
        // What apply does with it, decided as apply decides it (a task that never ran has
        // nothing to archive, but its manifest's removal is shown).
        let action = match status.map(|s| decide_removed(s, now)) {
            Some(RemovedDecision::Keep) => continue,
            Some(RemovedDecision::Purge) => Action::Purge,
            Some(RemovedDecision::Archive) | None => Action::Archive,
        };
        tasks.push(TaskPlan {
            id: id.clone(),
            name: base_task
                .map(|t| t.name.clone())
                .or_else(|| status.map(|s| s.name.clone()))
                .unwrap_or_default(),
            action,
            changes: Vec::new(),
            refused: Vec::new(),
            due: false,
            suspended: false,
            connected: status.and_then(TaskStatus::connected),
            disconnected_reason: None,
            would_forget: Vec::new(),
            archive_days: base_task
                .and_then(|t| t.retention.auto_archived_days)
                .or_else(|| status.and_then(|s| s.auto_archived_days)),
            coverage: None,
        });
    }
    tasks.sort_by(|a, b| a.id.cmp(&b.id));
    let restores = restores::entries(head_config, base_config.as_ref(), state)?;
    let plan = Plan {
        restores,
        base: base_rev
            .map(|r| r[..r.len().min(12)].to_string())
            .unwrap_or_else(|| "(nothing)".into()),
        head: "work tree".into(),
        tasks,
        repository_refused,
    };
    Ok((plan, project.into_config()))
}
