//! The restore manifests in a plan: each one not carried out yet (apply runs it once), and each
//! one carried out before that this change edits (the edit has no effect). The records a
//! restore would write are planned against the org only where its credentials are (filled in
//! by the command, which can connect; see `commands::restore_manifests::preview`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::gitops::StateBranch;
use crate::manifest::LoadedConfig;
use crate::manifest::model::{RestoreManifest, RestoreMode};
use crate::state::restore_record::{RestoreEnd, RestoreRecord};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestoreEntry {
    pub id: String,
    /// The manifest's path in the config repository.
    pub path: String,
    pub task: String,
    pub target: String,
    pub snapshot: String,
    /// Which records, in words: `Contact where LastName=Okafor`.
    pub selection: String,
    pub mode: RestoreMode,
    pub with_children: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Added or edited by this change.
    pub changed: bool,
    /// None: apply carries it out next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carried_out: Option<CarriedOut>,
    /// The restore's own plan against the org (text), where credentials allowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// Why there is no such plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_preview: Option<String>,
    /// Why it cannot run as written (its snapshot is not among the task's): the plan fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CarriedOut {
    pub finished_at: String,
    pub end: RestoreEnd,
    pub undeleted: usize,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
}

impl RestoreEntry {
    pub(crate) fn pending(&self) -> bool {
        self.carried_out.is_none()
    }
}

fn selection(manifest: &RestoreManifest) -> String {
    let select = &manifest.select;
    let mut parts = Vec::new();
    parts.push(select.object.clone().unwrap_or_else(|| "records".into()));
    if !select.ids.is_empty() {
        let shown: Vec<&str> = select.ids.iter().take(5).map(String::as_str).collect();
        let more = match select.ids.len().saturating_sub(shown.len()) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        parts.push(format!("with Id {}{more}", shown.join(", ")));
    }
    let filters = select.filters();
    if !filters.is_empty() {
        parts.push(format!("where {}", filters.join(" and ")));
    }
    crate::text::printable(&parts.join(" ")).into_owned()
}

/// Every restore manifest of the head that is pending, or carried out and edited here.
pub(crate) fn entries(
    head: &LoadedConfig,
    base: Option<&LoadedConfig>,
    state: &StateBranch,
) -> Result<Vec<RestoreEntry>, Error> {
    let before: BTreeMap<&str, &RestoreManifest> = base
        .map(|b| {
            b.restores
                .iter()
                .map(|r| (r.restore.id.as_str(), &r.restore))
                .collect()
        })
        .unwrap_or_default();
    let mut entries = Vec::new();
    for loaded in &head.restores {
        let manifest = &loaded.restore;
        let changed = before.get(manifest.id.as_str()) != Some(&manifest);
        let carried_out = state
            .read(&RestoreRecord::path(&manifest.task, &manifest.id))?
            .and_then(|bytes| RestoreRecord::parse(&bytes).ok())
            .map(|record| CarriedOut {
                finished_at: record.finished_at,
                end: record.end,
                undeleted: record.undeleted,
                created: record.created,
                updated: record.updated,
                failed: record.failed,
            });
        if carried_out.is_some() && !changed {
            continue;
        }
        entries.push(RestoreEntry {
            id: manifest.id.clone(),
            path: loaded.path.clone(),
            task: manifest.task.clone(),
            target: manifest.target_task().to_string(),
            snapshot: manifest.snapshot.clone(),
            selection: selection(manifest),
            mode: manifest.mode,
            with_children: manifest.with_children,
            reason: manifest.reason.clone(),
            changed,
            carried_out,
            preview: None,
            no_preview: None,
            problem: None,
        });
    }
    Ok(entries)
}

/// The plan's lines for one restore manifest.
pub(crate) fn lines(entry: &RestoreEntry) -> Vec<String> {
    let mut lines = Vec::new();
    let reason = match entry.reason.is_empty() {
        true => String::new(),
        false => format!("  \"{}\"", crate::text::printable(&entry.reason)),
    };
    let children = match entry.with_children {
        0 => String::new(),
        1 => ", with their children".into(),
        n => format!(", with their children to depth {n}"),
    };
    let mode = match entry.mode {
        RestoreMode::Both => "",
        RestoreMode::CreateMissing => ", only those gone (mode create-missing)",
        RestoreMode::UpdateExisting => ", only those still there (mode update-existing)",
    };
    let what = format!(
        "    {}{children}{mode}, from snapshot {} of {} into {}",
        entry.selection, entry.snapshot, entry.task, entry.target
    );
    match &entry.carried_out {
        None => {
            lines.push(format!("+ restore {}{reason}", entry.id));
            lines.push(what);
            if let Some(problem) = &entry.problem {
                lines.push(format!("    ! cannot run as written: {problem}"));
                return lines;
            }
            lines.push(
                "    runs once, at the next apply; its record then goes to the state branch".into(),
            );
            match (&entry.preview, &entry.no_preview) {
                (Some(preview), _) => {
                    lines.extend(preview.lines().map(|l| format!("    | {l}")));
                }
                (None, Some(why)) => lines.push(format!(
                    "    the records it writes are planned against the org where its credentials and the store key are (a protected environment): {why}"
                )),
                (None, None) => {}
            }
        }
        Some(done) => {
            lines.push(format!("! restore {}{reason}", entry.id));
            lines.push(what);
            lines.push(format!(
                "    carried out {} ({:?}: {} undeleted, {} created, {} updated, {} failed): this edit has no effect, a restore runs once; to restore again, add a manifest with a new id",
                done.finished_at, done.end, done.undeleted, done.created, done.updated, done.failed
            ));
        }
    }
    lines
}
