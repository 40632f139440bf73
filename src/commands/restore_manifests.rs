//! Restore manifests (`restores/<id>.yaml`), carried out by `cairn apply`: each one that the
//! state branch has no record of runs once, as `cairn restore --apply` would run it, and its
//! record (`state/<task>/restores/<id>.yaml`) is committed. A run that stops before its end
//! leaves no record, so the next apply continues it; the store's restore journal makes that
//! safe (nothing created twice) and also knows a finished run whose record was never
//! committed, so a manifest never runs twice even then.

use crate::error::Error;
use crate::manifest::LoadedRestore;
use crate::project::{Env, Project};
use crate::reconcile::{ApplyOptions, ApplyOutcome, RestoreRun};
use crate::state::restore_record::{RestoreEnd, RestoreFailure, RestoreRecord, error_code};

use super::restore::{RestoreOptions, RestoreOutcome, restore};

/// The options of `cairn restore` that carry out a manifest.
pub(crate) fn restore_options(
    loaded: &LoadedRestore,
    dir: &std::path::Path,
    wait: std::time::Duration,
    apply: bool,
    progress: &crate::progress::Reporter,
) -> RestoreOptions {
    let manifest = &loaded.restore;
    RestoreOptions {
        dir: dir.to_path_buf(),
        task: manifest.task.clone(),
        snapshot: Some(manifest.snapshot.clone()),
        object: manifest.select.object.clone(),
        ids: manifest.select.ids.clone(),
        filters: manifest.select.filters(),
        fields: manifest.fields.clone(),
        to_task: manifest.target.clone(),
        apply,
        mode: manifest.mode,
        with_children: (manifest.with_children > 0).then_some(manifest.with_children),
        wait,
        confirm: None,
        manifest: Some(manifest.id.clone()),
        progress: progress.clone(),
    }
}

/// Carries out the restore manifests not carried out before, adding what became of them (and
/// the state commit recording them) to the run's outcome.
pub(crate) async fn carry_out(
    options: &ApplyOptions,
    env: Env<'_>,
    outcome: &mut ApplyOutcome,
) -> Result<(), Error> {
    let project = Project::open(&options.dir, env)?;
    let restores = &project.config().restores;
    let chosen = |loaded: &&LoadedRestore| {
        options.tasks.is_empty()
            || options
                .tasks
                .iter()
                .any(|t| t == loaded.restore.target_task())
    };
    if !restores.iter().any(|r| chosen(&r)) {
        return Ok(());
    }
    let state = match options.dry_run {
        true => project.state_fetched_if_reachable()?,
        false => project.fetch_state()?,
    };
    let revision = state.config_revision();
    let mut changes = Vec::new();
    for loaded in restores.iter().filter(chosen) {
        let manifest = &loaded.restore;
        let run = |end, error, message: String| RestoreRun {
            id: manifest.id.clone(),
            target: manifest.target_task().to_string(),
            end,
            error,
            message,
        };
        if state
            .read(&RestoreRecord::path(&manifest.task, &manifest.id))?
            .is_some()
        {
            continue;
        }
        if options.dry_run {
            outcome.restores.push(run(
                None,
                false,
                format!("would restore into {} (dry run)", manifest.target_task()),
            ));
            continue;
        }
        if options.interrupt.is_set() {
            outcome.restores.push(run(
                None,
                false,
                "interrupted before it started; the next apply runs it".into(),
            ));
            continue;
        }
        let restore_options =
            restore_options(loaded, &options.dir, options.wait, true, &options.progress);
        match restore(&restore_options, env).await {
            Ok(done) => {
                let record = record_of(loaded, &done, revision.clone(), crate::time::now_ms());
                outcome
                    .restores
                    .push(run(Some(record.end), false, summary(&record, &done)));
                changes.push(record.write());
            }
            Err(e) => outcome.restores.push(run(
                None,
                true,
                format!("{e}; {} (the next apply tries again)", e.guidance()),
            )),
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = outcome
        .restores
        .iter()
        .filter(|r| r.end.is_some())
        .map(|r| r.id.as_str())
        .collect();
    let message = format!(
        "cairn apply {}: restore manifests carried out: {}\n",
        crate::time::format_datetime_z(crate::time::now_ms()),
        ids.join(", ")
    );
    if let Some((commit, pushed)) = project.commit_state(state, &changes, &message)? {
        outcome.commit = Some(commit.to_string());
        outcome.pushed = pushed;
    }
    Ok(())
}

/// The state record of a restore that came to its end (now, or in an earlier run whose
/// record was not committed).
fn record_of(
    loaded: &LoadedRestore,
    done: &RestoreOutcome,
    revision: Option<String>,
    now_ms: i64,
) -> RestoreRecord {
    let manifest = &loaded.restore;
    let (run, finished, failures) = match (&done.finished_before, &done.result) {
        // The earlier run's failures were in its output; the journal keeps counts.
        (Some((run, finished)), _) => (run.clone(), finished.clone(), Vec::new()),
        (None, result) => {
            let result = result.clone().unwrap_or_default();
            let finished = crate::restore::Finished {
                at: now_ms,
                undeleted: result.undeleted.len(),
                created: result.created.len(),
                updated: result.updated.len(),
                failed: result.failed.len(),
            };
            let failures = result
                .failed
                .iter()
                .map(|(object, id, why)| RestoreFailure {
                    object: object.clone(),
                    id: id.clone(),
                    code: error_code(why),
                })
                .collect();
            (done.run.clone().unwrap_or_default(), finished, failures)
        }
    };
    RestoreRecord {
        id: manifest.id.clone(),
        manifest: loaded.path.clone(),
        revision,
        task: manifest.task.clone(),
        target: done.target.clone(),
        snapshot: done.snapshot.clone(),
        account: done.account.clone(),
        run,
        finished_at: crate::time::format_datetime_z(finished.at),
        end: RestoreRecord::end_of(
            finished.undeleted + finished.created + finished.updated,
            finished.failed,
        ),
        records: done.records,
        undeleted: finished.undeleted,
        created: finished.created,
        updated: finished.updated,
        failed: finished.failed,
        failures,
    }
}

fn summary(record: &RestoreRecord, done: &RestoreOutcome) -> String {
    let before = match done.finished_before {
        Some(_) => " (carried out by an earlier run; recorded now)",
        None => "",
    };
    let end = match record.end {
        RestoreEnd::Completed => "",
        RestoreEnd::Partial | RestoreEnd::Failed => {
            "; `cairn restore` with the same selection shows what is left"
        }
    };
    format!(
        "into {} ({} {}): {} undeleted, {} created, {} updated, {} failed of {} records{before}{end}",
        record.target,
        done.account_word,
        record.account,
        record.undeleted,
        record.created,
        record.updated,
        record.failed,
        record.records
    )
}

/// A restore's plan in counts per object and step, and Ids of nothing: a pull request's
/// comment is read by more people than the org's records are (no names, no field values).
fn counted(planned: &RestoreOutcome) -> String {
    use crate::restore::Step;
    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    let mut per_object: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for step in &planned.plan.steps {
        let (object, action) = match step {
            Step::Undelete { object, .. } => (object, "to undelete (original Ids)"),
            Step::Create { object, .. } => (object, "to create"),
            Step::Update { object, .. } => (object, "to update"),
            Step::Unchanged { object, .. } => (object, "unchanged"),
            Step::Skipped { object, .. } => (object, "skipped"),
        };
        *per_object
            .entry(object.as_str())
            .or_default()
            .entry(action)
            .or_default() += 1;
    }
    let mut out = format!("{}\n", planned.heading());
    if let Some((run, finished)) = &planned.finished_before {
        let _ = writeln!(
            out,
            "carried out already by run {run}, finished {}: the next apply only records it",
            crate::time::format_datetime_z(finished.at)
        );
    }
    for (object, actions) in &per_object {
        let actions: Vec<String> = actions.iter().map(|(a, n)| format!("{n} {a}")).collect();
        let _ = writeln!(out, "{object}: {}", actions.join(", "));
    }
    if !planned.tree.is_empty() {
        out.push_str("with their children, as they were in the snapshot:\n");
        super::restore::render_tree(&planned.tree, &mut out);
    }
    for (object, fields) in &planned.plan.not_restorable {
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "{object} records created again cannot get back: {}",
            fields.join(", ")
        );
    }
    for note in &planned.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Fills in the plan's pending restores with their own plans against the org, where the store
/// key and the target's credentials are at hand (a protected environment); elsewhere (a fork's
/// pull request) says what was missing. Nothing is written: no lock, no journal.
pub(crate) async fn preview(
    plan: &mut crate::plan::Plan,
    config: &crate::manifest::LoadedConfig,
    dir: &std::path::Path,
    env: Env<'_>,
) {
    let project = Project::open(dir, env);
    for entry in plan.restores.iter_mut().filter(|e| e.pending()) {
        let Some(loaded) = config.restores.iter().find(|r| r.restore.id == entry.id) else {
            continue;
        };
        // The snapshot is checked against the state branch, which needs no key: a pinned id
        // that is not the task's fails the plan everywhere, a fork's pull request too.
        let snapshot = match &project {
            Ok(project) => super::snapshot_access::TaskSnapshots::open(project, Some(&entry.task))
                .and_then(|snapshots| {
                    super::snapshot_access::resolve(&snapshots.status.snapshots, &entry.snapshot)
                        .map(|_| ())
                }),
            Err(e) => Err(crate::error::Error::Usage {
                message: e.to_string(),
                next: e.guidance(),
            }),
        };
        if let Err(e) = snapshot {
            entry.problem = Some(format!("{e}; {}", e.guidance()));
            continue;
        }
        let options = restore_options(
            loaded,
            dir,
            std::time::Duration::ZERO,
            false,
            &crate::progress::Reporter::default(),
        );
        match restore(&options, env).await {
            Ok(planned) => entry.preview = Some(counted(&planned)),
            Err(e) => entry.no_preview = Some(format!("{e}")),
        }
    }
}
