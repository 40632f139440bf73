//! What a run writes to the state branch about the org's metadata beyond the change summary:
//! the components' source files (`metadata.commitSource`), and the components still missing
//! from the backup in `coverage.yaml`.

use super::Context;
use crate::backup::BackupOutcome;
use crate::gitops::Change;
use crate::manifest::model::BackupTask;
use crate::state::status;
use crate::store::StoreError;

use super::failure::TaskFailure;

/// `state/<task>/metadata/`: with `metadata.commitSource`, every component's files as the
/// snapshot holds them (rewritten whole, so files of deleted components go); without it, none
/// (a task that turns it off takes its source off the branch's tip).
pub(super) fn metadata_source(
    context: &Context<'_>,
    connector: &impl crate::source::Connector,
    task: &BackupTask,
    dir: &str,
    manifest: &crate::snapshot::SnapshotManifest,
    parent: Option<&crate::snapshot::ObjectEntry>,
) -> Result<Vec<Change>, TaskFailure> {
    let root = format!("{dir}/metadata");
    let mut stale: std::collections::BTreeSet<String> =
        context.state.list_files(&root)?.into_iter().collect();
    // The branch already holds the components as the parent had them, and none changed.
    let unchanged = manifest.objects.get(crate::source::METADATA_OBJECT) == parent;
    if task.metadata.commit_source && !stale.is_empty() && unchanged {
        return Ok(Vec::new());
    }
    let mut changes = Vec::new();
    if task.metadata.commit_source {
        for component in crate::snapshot::components::read_all(context.store, manifest)? {
            let files =
                connector
                    .source_files(&component)
                    .map_err(|reason| StoreError::CorruptBlob {
                        id: component.id.clone(),
                        reason,
                    })?;
            for (path, bytes) in files {
                let path = format!("{root}/{path}");
                stale.remove(&path);
                changes.push(Change::write(path, bytes));
            }
        }
    }
    changes.extend(stale.into_iter().map(Change::remove));
    Ok(changes)
}

/// Components whose files a run could not retrieve stay named in `coverage.yaml` until a run
/// retrieves them again: an incremental re-reads only what changed, so what an earlier run
/// left out, and this one did not touch, is still missing from the backup.
pub(super) fn carry_components_left_out(
    coverage: &mut status::CoverageFile,
    recorded: Option<status::CoverageFile>,
    outcome: &BackupOutcome,
    changed: &[crate::diff::summary::ComponentChange],
) {
    let metadata = crate::source::METADATA_OBJECT;
    let refetched_all = outcome.full.iter().any(|o| o == metadata);
    let kept = outcome.manifest.objects.contains_key(metadata);
    let Some(recorded) = recorded else { return };
    if refetched_all || !kept {
        return;
    }
    for (component, why) in recorded.components_left_out {
        // A type or folder the org would not list is asked again every run.
        let listing = component
            .split_once(':')
            .is_none_or(|(kind, _)| kind.contains(' '));
        let touched = changed.iter().any(|(id, _, _)| *id == component);
        if !touched && !listing {
            coverage.components_left_out.entry(component).or_insert(why);
        }
    }
}
