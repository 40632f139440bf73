//! A due task's backup: connect and check the account, verify the parent, back up through
//! the engine, then the state files (snapshot manifest, change summary, schemas, coverage),
//! alerts, retention and the search index.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::archive::purge_after;
use super::failure::TaskFailure;
use super::{Context, index};
use crate::backup::{BackupOutcome, backup};
use crate::diff::summary::Triggered;
use crate::gitops::Change;
use crate::manifest::model::BackupTask;
use crate::project::connect;
use crate::snapshot::writer::load_manifest;
use crate::source::{Connection, Connector as _, DisconnectReason};
use crate::state::decision::forgotten;
use crate::state::status::{self, Phase, Run, RunOutcome, SnapshotRow, TaskStatus};
use crate::store::StoreError;

pub(super) fn describe(outcome: &BackupOutcome) -> String {
    let records: u64 = outcome.objects.iter().filter_map(|o| o.records).sum();
    let mut text = format!(
        "snapshot {}, {} objects ({} full, {} incremental), {records} records, {} API calls",
        &outcome.snapshot[..outcome.snapshot.len().min(12)],
        outcome.objects.len(),
        outcome.full.len(),
        outcome.incremental.len(),
        outcome.api_calls
    );
    let files = &outcome.files;
    if files.known > 0 {
        let _ = write!(
            text,
            "; {} files: {} downloaded ({}), {} unchanged",
            files.known,
            files.downloaded,
            crate::text::size(files.downloaded_bytes),
            files.unchanged
        );
        for (n, what) in [(files.waiting, "waiting"), (files.left_out, "left out")] {
            if n > 0 {
                let _ = write!(text, ", {n} {what}");
            }
        }
    }
    if let crate::snapshot::Outcome::Partial { reason } = &outcome.manifest.outcome {
        let _ = write!(text, "; partial: {reason}");
    }
    text
}

/// What a backup run produced: the backup, the state changes, the alerts it raised and what
/// it could not do as asked (warnings).
pub(super) type BackupRun = (BackupOutcome, Vec<Change>, Vec<Triggered>, Vec<String>);

/// Connects, backs up, applies retention; updates `status` and returns the state changes.
pub(super) async fn run_backup(
    context: &Context<'_>,
    task: &BackupTask,
    status: &mut TaskStatus,
) -> Result<BackupRun, TaskFailure> {
    let now = context.now.clone();
    context.progress.task_started(&task.id);
    let connector = connect::connector(task, context.env)?;
    let word = connector.account_word();
    match connector.check_connection().await {
        Connection::Connected { org_id, .. } => {
            if let Some(pinned) = task.source.pinned_account()
                && !connector.same_account(&org_id, pinned)
            {
                let failure = TaskFailure::WrongAccount {
                    word,
                    reached: org_id,
                    pinned: pinned.to_string(),
                };
                status.set_condition("Connected", false, "WrongOrg", &failure.to_string(), &now);
                return Err(failure);
            }
            if let Some(before) = &status.org_id
                && !connector.same_account(&org_id, before)
            {
                let failure = TaskFailure::AccountChanged {
                    word,
                    reached: org_id,
                    before: before.clone(),
                };
                status.set_condition("Connected", false, "WrongOrg", &failure.to_string(), &now);
                return Err(failure);
            }
            context
                .progress
                .detail(&task.id, &format!("connected to the {word} {org_id}"));
            status.org_id = Some(org_id);
            status.set_condition("Connected", true, "Connected", "", &now);
        }
        // No answer is not a disconnection: the credentials and the org may be fine, so the
        // recorded connection stands and the run fails as unreachable, to be tried again.
        Connection::Disconnected {
            reason: DisconnectReason::Unreachable,
            detail,
        } => {
            return Err(TaskFailure::Unreachable { word, detail });
        }
        Connection::Disconnected { reason, detail } => {
            let reason_name = format!("{reason:?}");
            status.set_condition("Connected", false, &reason_name, &detail, &now);
            if reason == DisconnectReason::OrgGone {
                status.phase = Phase::Archived;
                status.archived_at.get_or_insert_with(|| now.clone());
                status.purge_after = purge_after(status);
            }
            return Err(TaskFailure::Disconnected {
                reason: reason_name,
                detail,
                task: task.id.clone(),
            });
        }
    }
    let parent_id = status
        .last_applied
        .as_ref()
        .and_then(|r| r.snapshot.clone());
    let mut notes = Vec::new();
    let parent = match &parent_id {
        Some(id) => match load_manifest(context.store, id) {
            Ok(manifest) => Some((id.clone(), manifest)),
            // Forgotten or lost: the next backup is a full one.
            Err(StoreError::MissingSnapshot { .. }) => None,
            // Damaged: the same, and said.
            Err(e @ StoreError::BadManifest { .. }) => {
                notes.push(format!(
                    "{e}, so this run was a full backup; `cairn check --read-data` shows what else is affected"
                ));
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    // A parent whose data is damaged or gone (damage, or a prune that no lock held off) would
    // make every incremental built on it unreadable: the objects it affects start over with a
    // full fetch that depends on none of it, and the others go on incrementally.
    let mut refetch = BTreeMap::new();
    let parent = match parent {
        Some((id, mut manifest)) => {
            let unsound = super::chunk_audit::unsound_blobs(context.store, &manifest)?;
            if !unsound.is_empty() {
                let objects: Vec<String> = unsound
                    .iter()
                    .map(|(object, blobs)| format!("{object} ({blobs})"))
                    .collect();
                notes.push(format!(
                    "the last snapshot {id} has damaged or missing blobs in {}, so this run fetched those objects in full, depending on none of them (and writes again the blobs whose records the org still has); `cairn check --read-data` shows what else is affected",
                    objects.join(", ")
                ));
                for object in unsound.keys() {
                    manifest.objects.remove(object);
                    refetch.insert(
                        object.clone(),
                        format!("the last snapshot's data of {object} is damaged"),
                    );
                }
            }
            Some((id, manifest))
        }
        None => None,
    };
    let mut damaged_chunks = std::collections::BTreeSet::new();
    if let Some((id, manifest)) = &parent {
        let now_ms = crate::time::parse_datetime(&now).unwrap_or_else(crate::time::now_ms);
        for (object, chunks) in super::chunk_audit::unsound_chunks(context.store, manifest, now_ms)?
        {
            notes.push(format!(
                "the last snapshot {id} has {} damaged or missing chunks of file bodies in {object}, so this run downloads those files again; `cairn check --read-data` shows what else is affected",
                chunks.len()
            ));
            refetch.insert(
                object.clone(),
                format!("the last snapshot's chunks of {object} are damaged"),
            );
            damaged_chunks.extend(chunks);
        }
    }
    let options = crate::backup::BackupOptions {
        full_because: refetch,
        damaged_chunks,
        progress: context.progress.clone(),
        ..connect::backup_options(task)
    };
    let outcome = backup(
        &connector,
        context.store,
        &options,
        parent.as_ref().map(|(id, m)| (id.as_str(), m)),
        &now,
    )
    .await
    .map_err(|e| {
        if let crate::backup::BackupError::Source(crate::source::SourceError::Disconnected {
            reason,
            ..
        }) = &e
        {
            status.set_condition(
                "Connected",
                false,
                &format!("{reason:?}"),
                &e.to_string(),
                &now,
            );
        }
        TaskFailure::from(e)
    })?;
    crate::snapshot::writer::verify_written(
        context.store,
        &outcome.snapshot,
        parent.as_ref().map(|(_, m)| m),
    )
    .map_err(|error| TaskFailure::Unverified {
        snapshot: outcome.snapshot.clone(),
        error,
    })?;
    let mut changes = Vec::new();
    let dir = format!("state/{}", task.id);
    let sealed = context
        .store
        .backend()
        .get(&crate::store::snapshot_path(&outcome.snapshot))?
        .ok_or_else(|| TaskFailure::Vanished {
            snapshot: outcome.snapshot.clone(),
        })?;
    changes.push(Change::write(
        format!("{dir}/snapshots/{}.enc", outcome.snapshot),
        sealed,
    ));
    let (summary, alerts, index_notes, component_changes) =
        summarise(context, task, &outcome, parent.as_ref(), &status.snapshots)?;
    notes.extend(index_notes);
    changes.push(Change::write(
        format!("{dir}/diffs/{}.md", outcome.snapshot),
        summary,
    ));
    for (object, schema) in &outcome.schemas {
        let yaml = serde_yaml::to_string(schema).unwrap_or_default();
        changes.push(Change::write(format!("{dir}/schema/{object}.yaml"), yaml));
    }
    let known_schemas = context.state.list(&format!("{dir}/schema"))?;
    for previous in known_schemas {
        let object = previous.trim_end_matches(".yaml");
        if !outcome.schemas.contains_key(object) {
            changes.push(Change::remove(format!("{dir}/schema/{previous}")));
        }
    }
    let mut coverage = coverage_file(&outcome);
    let recorded = context
        .state
        .read(&status::CoverageFile::path(&task.id))?
        .and_then(|bytes| status::CoverageFile::parse(&bytes));
    super::metadata_state::carry_components_left_out(
        &mut coverage,
        recorded,
        &outcome,
        &component_changes,
    );
    changes.push(Change::write(
        status::CoverageFile::path(&task.id),
        coverage.to_yaml(),
    ));
    let parent_metadata = parent
        .as_ref()
        .and_then(|(_, m)| m.objects.get(crate::source::METADATA_OBJECT));
    changes.extend(super::metadata_state::metadata_source(
        context,
        &connector,
        task,
        &dir,
        &outcome.manifest,
        parent_metadata,
    )?);

    let complete = outcome.manifest.outcome == crate::snapshot::Outcome::Complete;
    let records: u64 = outcome
        .objects
        .iter()
        .filter_map(|o| o.records)
        .sum::<u64>();
    status.counts = outcome
        .manifest
        .objects
        .iter()
        .map(|(name, entry)| (name.clone(), entry.records.unwrap_or(entry.base_records)))
        .collect();
    // Records only: a file's body row stands for a record counted already.
    let total: u64 = status
        .counts
        .iter()
        .filter(|(object, _)| !crate::snapshot::files::is_body_object(object))
        .map(|(_, n)| n)
        .sum();
    status.snapshots.insert(
        0,
        SnapshotRow {
            id: outcome.snapshot.clone(),
            time: now.clone(),
            complete,
            records: total,
        },
    );
    // Retention: forget what the policy no longer keeps.
    for decision in forgotten(task, &status.snapshots) {
        context
            .store
            .backend()
            .delete(&crate::store::snapshot_path(&decision.id))?;
        changes.push(Change::remove(format!(
            "{dir}/snapshots/{}.enc",
            decision.id
        )));
        status.snapshots.retain(|s| s.id != decision.id);
    }
    status.set_condition(
        "Ready",
        complete,
        if complete { "Succeeded" } else { "Partial" },
        if complete {
            ""
        } else {
            "the last backup is partial; the next run resumes it"
        },
        &now,
    );
    status.set_condition("Stale", false, "Fresh", "", &now);
    let warnings = outcome.coverage.warnings();
    status.set_condition(
        "IncludesMatch",
        warnings.is_empty(),
        if warnings.is_empty() {
            "AllMatch"
        } else {
            "UnmatchedInclude"
        },
        &warnings.join("; "),
        &now,
    );
    let alert_text: Vec<String> = alerts.iter().map(|a| a.message.clone()).collect();
    status.set_condition(
        "DataLossAlert",
        !alerts.is_empty(),
        if alerts.is_empty() {
            "WithinThresholds"
        } else {
            "ThresholdCrossed"
        },
        &alert_text.join("; "),
        &now,
    );
    status.record(Run {
        time: now.clone(),
        outcome: if complete {
            RunOutcome::Success
        } else {
            RunOutcome::Partial
        },
        revision: context.revision.clone(),
        snapshot: Some(outcome.snapshot.clone()),
        api_calls: outcome.api_calls,
        records,
        files_downloaded: outcome.files.downloaded,
        files_downloaded_bytes: outcome.files.downloaded_bytes,
        message: match &outcome.manifest.outcome {
            crate::snapshot::Outcome::Partial { reason } => Some(reason.clone()),
            crate::snapshot::Outcome::Complete => None,
        },
    });
    Ok((outcome, changes, alerts, notes))
}

/// The change against the parent (read as a sorted merge-join that follows the change), as
/// the committed summary, and the alerts it raises.
pub(super) fn summarise(
    context: &Context<'_>,
    task: &BackupTask,
    outcome: &BackupOutcome,
    parent: Option<&(String, crate::snapshot::SnapshotManifest)>,
    history: &[SnapshotRow],
) -> Result<Summarised, StoreError> {
    let empty = crate::snapshot::SnapshotManifest {
        objects: BTreeMap::new(),
        ..outcome.manifest.clone()
    };
    let older = parent.map(|(_, m)| m).unwrap_or(&empty);
    let record_ids = context.repository.state.record_ids;
    let mut ids = Vec::new();
    let mut components = Vec::new();
    // The search index takes the same change: one pass over it for both. An index that is
    // gone or unreadable is first rebuilt from the task's earlier snapshots.
    let mut notes = Vec::new();
    let mut index = if task.search.index {
        let (index, missing) = crate::search::SearchIndex::open_or_new(context.store, &task.id)?;
        let mut writer = index.writer()?;
        if let (Some(why), Some((parent_id, parent))) = (missing, parent) {
            let rebuilt = index::rebuild_from_history(
                context.store,
                (&index, &mut writer),
                history,
                (parent_id, parent),
            )?;
            let mut note = format!(
                "{why}: it was rebuilt from the task's {} earlier snapshots",
                rebuilt.snapshots
            );
            if !rebuilt.unreadable.is_empty() {
                let _ = write!(
                    note,
                    "; {} could not be read, so versions only they held are not found by search: {}",
                    rebuilt.unreadable.len(),
                    rebuilt.unreadable.join(", ")
                );
            }
            notes.push(note);
        }
        Some((index, writer))
    } else {
        None
    };
    let step = context.progress.start(
        &task.id,
        if index.is_some() {
            "changes and search index"
        } else {
            "changes"
        },
        crate::progress::Unit::Indexed,
        match parent {
            Some(_) => "compared with the last snapshot",
            None => "the first snapshot",
        },
    );
    let meter = step.meter().clone();
    let mut indexing = match &mut index {
        Some((index, writer)) => Some(index::Indexing::new(
            context.store,
            (index, writer),
            &outcome.snapshot,
            &outcome.manifest,
        )?),
        None => None,
    };
    let stats = if parent.is_some() {
        let stats = crate::diff::diff(
            context.store,
            older,
            &outcome.manifest,
            None,
            false,
            &mut |c| {
                meter.add(1);
                if let Some(indexing) = indexing.as_mut() {
                    indexing.change(&c);
                }
                components.extend(crate::diff::summary::component_change(&c));
                if record_ids && c.object != crate::source::METADATA_OBJECT {
                    ids.push((c.object, c.id, c.change));
                }
            },
        )?;
        if let Some(indexing) = &mut indexing {
            indexing.entered(&outcome.manifest, &stats)?;
        }
        stats
    } else {
        if let Some(indexing) = &mut indexing {
            indexing.whole_objects(&index::every_object(&outcome.manifest), Some(&meter))?;
        }
        // The first snapshot: everything is new; no need to read it back.
        outcome
            .manifest
            .objects
            .iter()
            .map(|(name, entry)| {
                (
                    name.clone(),
                    crate::diff::ObjectStats {
                        added: entry.records.unwrap_or(entry.base_records),
                        ..Default::default()
                    },
                )
            })
            .collect()
    };
    let schema_diff = match parent {
        Some(_) => crate::diff::schema_diff(context.store, older, &outcome.manifest, None)?,
        None => String::new(),
    };
    if let Some(indexing) = indexing {
        indexing.finish()?;
    }
    if let Some((index, writer)) = index {
        index.save(context.store, &task.id, writer)?;
    }
    step.finish(&crate::text::plural(
        stats
            .values()
            .map(|s| s.added + s.modified + s.deleted)
            .sum(),
        "changed record",
    ));
    let alerts = crate::diff::summary::alerts(&task.alerts, &stats, &components);
    let text = crate::diff::summary::render(&crate::diff::summary::Summary {
        title: &task.name,
        snapshot: &outcome.snapshot,
        time: &outcome.manifest.time,
        previous: parent.map(|(id, _)| id.as_str()),
        stats: &stats,
        schema_diff: &schema_diff,
        alerts: &alerts,
        ids: (record_ids && parent.is_some()).then_some(ids.as_slice()),
        components: &components,
    });
    Ok((text, alerts, notes, components))
}

/// A run's change summary, its alerts, notes on the search index, and the metadata components
/// it saw change.
pub(super) type Summarised = (
    String,
    Vec<Triggered>,
    Vec<String>,
    Vec<crate::diff::summary::ComponentChange>,
);

pub(super) fn coverage_file(outcome: &BackupOutcome) -> status::CoverageFile {
    let coverage = &outcome.coverage;
    status::CoverageFile {
        backed_up: coverage.backed_up.clone(),
        skipped: coverage.skipped.iter().cloned().collect(),
        fields_left_out: coverage.fields_left_out.iter().cloned().collect(),
        unmatched_includes: coverage
            .unmatched
            .iter()
            .map(|(pattern, close)| {
                let said = match close {
                    Some(close) => format!("matches no object; did you mean {close}?"),
                    None => "matches no object".to_string(),
                };
                (pattern.clone(), said)
            })
            .collect(),
        excluded: Some(coverage.excluded.clone()),
        metadata_types: coverage.metadata_types.clone(),
        components_left_out: coverage.components_left_out.iter().cloned().collect(),
        files_left_out: coverage.files_left_out.iter().cloned().collect(),
    }
}
