//! `cairn restore`: records from a snapshot back into an org. It always shows the plan first
//! (create or update, field by field current -> restored); `--apply` carries it out. What it
//! says is in `text.rs`.

mod metadata;
mod text;

pub use metadata::{MetadataRestoreOptions, MetadataRestoreOutcome, restore_metadata};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::snapshot_access::{TaskSnapshots, resolve, usage};
use serde::Serialize;

use crate::error::Error;
use crate::project::Project;
use crate::project::connect;
use crate::project::store_access;
use crate::project::store_access::Env;
use crate::restore::{self, Chosen, RestorePlan, RestoreResult, RunJournal, Schemas, journal};
use crate::snapshot::ObjectReader;
use crate::snapshot::writer::load_manifest;
use crate::source::{Connection, Connector};
use crate::store::lock::LockKind;

pub use text::TreeRow;
pub(crate) use text::render_tree;
use text::{plan_changes, render_plan, shown, tree_rows};

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub dir: PathBuf,
    pub task: String,
    /// Default `latest`.
    pub snapshot: Option<String>,
    pub object: Option<String>,
    /// Records by Id (any object).
    pub ids: Vec<String>,
    /// `FIELD=VALUE` filters; a record matching all of them is chosen.
    pub filters: Vec<String>,
    /// Restore only these fields of existing records.
    pub fields: Vec<String>,
    /// Restore into this task's org instead.
    pub to_task: Option<String>,
    pub apply: bool,
    /// Which records are written: gone ones, existing ones, or both.
    pub mode: restore::Mode,
    /// Also the records whose lookups point at the chosen ones (children), to this depth.
    pub with_children: Option<u32>,
    /// How long `apply` waits for another restore into the same task to finish.
    pub wait: std::time::Duration,
    /// Asked with the plan before `apply` writes anything; false leaves the org as it is.
    pub confirm: Option<fn(&str) -> bool>,
    /// The restore manifest (`restores/<id>.yaml`) carried out: it runs once, so a finished
    /// run of it in the store's journal means there is nothing to do.
    pub manifest: Option<String>,
    /// Told of the records written as they are.
    pub progress: crate::progress::Reporter,
}

/// A restore's plan, and with `--apply` what became of each record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOutcome {
    pub task: String,
    pub snapshot: String,
    pub snapshot_time: String,
    pub target: String,
    pub account: String,
    /// What the source calls an account ("org").
    #[serde(skip)]
    pub account_word: &'static str,
    pub records: usize,
    /// Children added by `--with-children`, per object.
    pub children: BTreeMap<String, usize>,
    /// The records chosen and their children as a tree of objects: each row an object reached
    /// from its parent row through a lookup field, with how many records (empty without
    /// `--with-children`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tree: Vec<TreeRow>,
    /// Notes on what was done differently from the snapshot (an unreadable schema document).
    pub notes: Vec<String>,
    pub plan: RestorePlan,
    /// None: planned only.
    pub result: Option<RestoreResult>,
    /// The journal's run that carried out this restore's manifest before, and how it ended:
    /// nothing was done this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_before: Option<(String, restore::Finished)>,
    /// The journal's run that carried out this restore (with --apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

pub async fn restore(options: &RestoreOptions, env: Env<'_>) -> Result<RestoreOutcome, Error> {
    if options.object.is_none() && options.ids.is_empty() && options.filters.is_empty() {
        return Err(usage(
            "say which records to restore".into(),
            "choose them with --object NAME (all of its records), --id ID, or --where FIELD=VALUE",
        ));
    }
    if options
        .object
        .as_deref()
        .is_some_and(|o| o.eq_ignore_ascii_case(crate::source::METADATA_OBJECT))
    {
        return Err(usage(
            "metadata components are not records: they go back through a deploy".into(),
            "restore them with --metadata Type:FullName (such as --metadata 'Flow:*')",
        ));
    }
    let filters: Vec<(String, String)> = options
        .filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| {
                    usage(
                        format!("--where {f:?} is not FIELD=VALUE"),
                        "write it like --where AccountId=001...",
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let project = Project::open(&options.dir, env)?;
    let source = TaskSnapshots::open(&project, Some(&options.task))?;
    let snapshot = resolve(
        &source.status.snapshots,
        options.snapshot.as_deref().unwrap_or("latest"),
    )?;
    let store = project.store()?;
    let manifest = load_manifest(store, &snapshot.id)?;

    let target_id = options
        .to_task
        .clone()
        .unwrap_or_else(|| options.task.clone());
    let connector = connect::connector(project.task(&target_id)?, env)?;

    let mut chosen = Vec::new();
    let mut schemas: Schemas = BTreeMap::new();
    let mut undescribed = Vec::new();
    // The schema document is derived (the org's describe): a damaged one is described again
    // from the org below.
    let mut describe_from_snapshot =
        |object: &str, entry: &crate::snapshot::manifest::ObjectEntry, schemas: &mut Schemas| {
            if schemas.contains_key(object) || undescribed.iter().any(|u| u == object) {
                return;
            }
            if let Some(blob) = &entry.schema {
                match store.get_blob(blob) {
                    Ok(bytes) => {
                        let document: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        schemas.insert(object.to_string(), connector.field_infos(&document));
                    }
                    Err(_) => undescribed.push(object.to_string()),
                }
            }
        };
    for (object, entry) in &manifest.objects {
        // Metadata is restored by `--metadata`; file bodies with their records.
        if object == crate::source::METADATA_OBJECT
            || crate::snapshot::files::is_body_object(object)
            || options
                .object
                .as_deref()
                .is_some_and(|o| !o.eq_ignore_ascii_case(object))
        {
            continue;
        }
        describe_from_snapshot(object, entry, &mut schemas);
        let every = options.ids.is_empty() && filters.is_empty();
        for record in ObjectReader::new(store, object, entry) {
            let (id, body) = record?;
            let listed = options.ids.iter().any(|i| i == &id);
            let value: Value;
            let matches = if !listed && !every && !filters.is_empty() {
                value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                filters
                    .iter()
                    .all(|(field, wanted)| value.get(field).is_some_and(|v| shown(v) == *wanted))
            } else {
                false
            };
            if (every || listed || matches)
                && let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(&body)
            {
                chosen.push(Chosen {
                    object: object.clone(),
                    id,
                    record,
                });
            }
        }
    }
    if chosen.is_empty() {
        let task = &options.task;
        let find = match options.ids.first() {
            Some(id) => format!(
                "`cairn search {id} --deleted --task {task}` names the snapshots that hold it"
            ),
            None => format!("`cairn snapshots --task {task}` lists them"),
        };
        return Err(usage(
            format!(
                "no record of snapshot {} ({}) matches",
                &snapshot.id,
                options.snapshot.as_deref().unwrap_or("latest")
            ),
            &format!(
                "a record deleted before that backup is not in it: choose an earlier snapshot with --snapshot latest~1 or a date ({find}); otherwise check the Ids and filters (`cairn export` shows what a snapshot holds)"
            ),
        ));
    }
    // Children: records of any object whose lookups point at a chosen record, as they were in
    // the snapshot, then their children, to the depth asked.
    let mut children: BTreeMap<String, usize> = BTreeMap::new();
    // Each record's place in the tree: the objects and lookups from a chosen record down.
    type TreePath = Vec<(String, String)>;
    let mut paths: BTreeMap<TreePath, usize> = BTreeMap::new();
    if let Some(depth) = options.with_children {
        let mut taken: std::collections::BTreeSet<String> =
            chosen.iter().map(|c| c.id.clone()).collect();
        let mut frontier: BTreeMap<String, TreePath> = chosen
            .iter()
            .map(|c| (c.id.clone(), vec![(c.object.clone(), String::new())]))
            .collect();
        for path in frontier.values() {
            *paths.entry(path.clone()).or_default() += 1;
        }
        for _ in 0..depth {
            let mut next: BTreeMap<String, TreePath> = BTreeMap::new();
            for (object, entry) in &manifest.objects {
                describe_from_snapshot(object, entry, &mut schemas);
                let lookups: Vec<String> = schemas
                    .get(object)
                    .map(|infos| {
                        infos
                            .iter()
                            .filter(|(_, i)| !i.reference_to.is_empty())
                            .map(|(name, _)| name.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                if lookups.is_empty() {
                    continue;
                }
                for record in ObjectReader::new(store, object, entry) {
                    let (id, body) = record?;
                    if taken.contains(&id) {
                        continue;
                    }
                    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(&body) else {
                        continue;
                    };
                    let parent = lookups.iter().find_map(|field| {
                        let parent = record.get(field).and_then(Value::as_str)?;
                        Some((field, frontier.get(parent)?))
                    });
                    if let Some((field, parent_path)) = parent {
                        let mut path = parent_path.clone();
                        path.push((object.clone(), field.clone()));
                        *paths.entry(path.clone()).or_default() += 1;
                        taken.insert(id.clone());
                        next.insert(id.clone(), path);
                        *children.entry(object.clone()).or_default() += 1;
                        chosen.push(Chosen {
                            object: object.clone(),
                            id,
                            record,
                        });
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
    }

    let account = match connector.check_connection().await {
        Connection::Connected { org_id, .. } => org_id,
        Connection::Disconnected { reason, detail } => {
            return Err(not_connected(&target_id, reason, &detail));
        }
    };
    let same_account = connector.same_account(&account, &manifest.source.account);
    let mut notes = Vec::new();
    let described_now: std::collections::BTreeSet<String> = undescribed.iter().cloned().collect();
    for object in undescribed {
        let described = connector
            .describe(&object)
            .await
            .map_err(|e| usage(format!("describing {object}: {e}"), &e.guidance()))?;
        schemas.insert(object.clone(), connector.field_infos(&described));
        notes.push(format!(
            "the snapshot's schema document of {object} is unreadable; the {}'s current description was used (`cairn check --read-data` shows the damage)",
            connector.account_word()
        ));
    }
    // What may be written is the target's to say now, not what the backup saw: its field
    // permissions ("Set Audit Fields upon Record Creation"), fields added or removed since, or
    // another org altogether. The chosen objects are described again; where that fails, the
    // snapshot's description stands and the plan says so.
    let chosen_objects: std::collections::BTreeSet<String> =
        chosen.iter().map(|c| c.object.clone()).collect();
    for object in chosen_objects {
        if described_now.contains(&object) {
            continue;
        }
        match connector.describe(&object).await {
            Ok(described) => {
                schemas.insert(object.clone(), connector.field_infos(&described));
            }
            Err(e) => notes.push(format!(
                "{object} could not be described in the target {} ({e}); what can be written is taken from the snapshot's description",
                connector.account_word()
            )),
        }
    }
    // One restore at a time writes into a task's account; what earlier ones created, and what
    // a stopped one may have created, is read under that lock.
    let _alone = match options.apply {
        true => Some(store_access::lock(
            store,
            LockKind::Restore(target_id.clone()),
            options.wait,
        )?),
        false => None,
    };
    let outcome = |notes: Vec<String>,
                   plan: RestorePlan,
                   result: Option<RestoreResult>,
                   finished_before: Option<(String, restore::Finished)>,
                   run: Option<String>| RestoreOutcome {
        task: options.task.clone(),
        snapshot: snapshot.id.clone(),
        snapshot_time: snapshot.time.clone(),
        target: target_id.clone(),
        account: account.clone(),
        account_word: connector.account_word(),
        records: chosen.len(),
        children: children.clone(),
        tree: tree_rows(&paths),
        notes,
        plan,
        result,
        finished_before,
        run,
    };
    let mut runs = journal::runs(store, &account)?;
    if let Some(manifest) = &options.manifest
        && let Some((name, finished)) = journal::finished_manifest(&runs, manifest)
    {
        return Ok(outcome(
            notes,
            RestorePlan::default(),
            None,
            Some((name.to_string(), finished.clone())),
            None,
        ));
    }
    let settled = restore::resolve_pending(&connector, &mut runs).await?;
    if options.apply {
        for (name, document) in runs.iter().filter(|(n, _)| settled.contains(n)) {
            journal::save(store, &account, name, document)?;
        }
    }
    let earlier = journal::id_map(&runs);
    let only = (!options.fields.is_empty()).then_some(options.fields.as_slice());
    let plan = restore::plan(&connector, &chosen, &schemas, only, !same_account, &earlier)
        .await?
        .in_mode(options.mode);
    let declined = options.apply
        && plan_changes(&plan) > 0
        && options.confirm.is_some_and(|ask| {
            let mut summary = String::new();
            render_plan(&plan, &mut summary);
            let summary = format!(
                "restore into {target_id} ({} {account}):\n{summary}",
                connector.account_word()
            );
            !ask(&summary)
        });
    if declined {
        notes.push("not confirmed: nothing was changed".into());
    }
    let mut run_name = None;
    let result = match options.apply && !declined {
        true => {
            let mut run = RunJournal::start(store, &account)?;
            if let Some(manifest) = &options.manifest {
                run.for_manifest(manifest)?;
            }
            let bodies = restore::SnapshotBodies::new(store, &manifest);
            let step = options.progress.start(
                &target_id,
                "restore",
                crate::progress::Unit::Records,
                format!(
                    "from snapshot {}",
                    &snapshot.id[..snapshot.id.len().min(12)]
                ),
            );
            step.meter().set_total(restore::writes(&plan));
            let result = restore::apply_watched(
                &connector,
                &plan,
                &schemas,
                Some(&bodies),
                &mut run,
                step.meter(),
            )
            .await?;
            step.finish(&format!(
                "{} undeleted, {} created, {} updated, {} failed",
                result.undeleted.len(),
                result.created.len(),
                result.updated.len(),
                result.failed.len()
            ));
            run.finish(restore::Finished {
                at: crate::time::now_ms(),
                undeleted: result.undeleted.len(),
                created: result.created.len(),
                updated: result.updated.len(),
                failed: result.failed.len(),
            })?;
            run_name = Some(run.name().to_string());
            // Other machines read the journal where the store lives. The org has the records
            // either way: a journal not yet published is said, not turned into a failure.
            if let Err(e) = store.publish() {
                notes.push(format!(
                    "the restore journal is written here but could not be published ({e}); run any cairn command that writes the store (or this restore again) before restoring from another machine"
                ));
            }
            Some(result)
        }
        false => None,
    };
    Ok(outcome(notes, plan, result, None, run_name))
}

/// Why a restore cannot reach its org, pointing the right way: an org that does not answer is
/// a network or loginUrl matter, not the credentials'.
pub(super) fn not_connected(
    task: &str,
    reason: crate::source::DisconnectReason,
    detail: &str,
) -> Error {
    match reason {
        crate::source::DisconnectReason::Unreachable => usage(
            format!("the org of task {task} could not be reached: {detail}"),
            "check the network and the task's source.loginUrl, then run the restore again; the credentials were not tried, and nothing was written",
        ),
        reason => usage(
            format!("task {task} is Disconnected ({reason:?}): {detail}"),
            &format!("run `cairn auth login --task {task}` or fix its connected app"),
        ),
    }
}
