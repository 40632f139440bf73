//! The backup engine, the same for every source: discover, then for each object a full pass
//! (first backup, changed fields, no change stamps, the periodic full pass, damage in the
//! parent, or a failed count check) or an incremental one (the window since the object was last
//! current, deletions as tombstones), written into the store while the rows arrive. Objects are
//! fetched a few at a time. A full pass writes the object's new base ([`BaseWriter`]: straight
//! into segments while rows come in Id order, as they usually do); an incremental's rows are
//! compared with the parent and written as a delta ([`DeltaWriter`]). When the API budget runs
//! out the snapshot is kept as partial: finished objects are new, the others keep the parent's
//! data and the next run resumes them. The connector (`crate::source::Connector`) does the
//! talking; the engine never knows which service it is.

mod download;
mod fetched;
mod files;
mod job;

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::progress::{Reporter, Unit};
use crate::snapshot::delta::DeltaWriter;
use crate::snapshot::sorter::DEFAULT_MEMORY;
use fetched::{Fetched, FullFetch, Writing, finish_step, write_full, write_incremental};
pub use files::FilesRun;
pub use job::WINDOW_OVERLAP_MS;
use job::{Job, held_back, plan_job};

use crate::snapshot::{Outcome, SnapshotManifest, SnapshotWriter, Source, Window};
use crate::source::{Connector, Coverage, FetchError, FetchWindow, SourceError};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub task: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Fetch an object in full when its last full fetch is this many days old (0: only when
    /// needed).
    pub full_every_days: u32,
    /// Compare record counts with the org after each incremental.
    pub count_check: bool,
    /// Bytes of fetched rows held in memory before sorting spills to disk, shared by the
    /// objects fetched at once (each holds an equal part), so memory does not grow with them.
    pub sort_memory: usize,
    /// Objects fetched at once.
    pub concurrency: usize,
    /// The kind of org the task is for (`source.environment`): true for a sandbox. Checked
    /// against the account the connector reaches before anything is written; None checks nothing.
    pub sandbox: Option<bool>,
    /// Objects to fetch in full whatever the parent holds, with why (the parent's data of
    /// them is damaged, say).
    pub full_because: std::collections::BTreeMap<String, String>,
    /// Which file bodies to back up; None backs up none.
    pub files: Option<FilesOptions>,
    /// Chunks of the parent's file bodies that are damaged or missing: the bodies naming them
    /// are downloaded again (their body objects are in `full_because`).
    pub damaged_chunks: BTreeSet<String>,
    /// Told of each object's fetch and file pass as they go.
    pub progress: Reporter,
}

/// The file bodies a backup keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesOptions {
    /// Glob patterns of the objects whose bodies are kept.
    pub objects: Vec<String>,
    /// Bodies over this many bytes are left out.
    pub max_size: Option<u64>,
    /// The share of the task's API budget downloads may use in a run.
    pub budget_percent: u8,
}

impl Default for FilesOptions {
    fn default() -> Self {
        FilesOptions {
            objects: ["ContentVersion", "Attachment", "Document"]
                .map(String::from)
                .to_vec(),
            max_size: None,
            budget_percent: 50,
        }
    }
}

impl BackupOptions {
    /// Each object's part of the sort memory.
    fn sort_memory_per_object(&self) -> usize {
        self.sort_memory / self.concurrency.max(1)
    }

    pub fn new(task: &str) -> BackupOptions {
        BackupOptions {
            task: task.to_string(),
            include: vec!["*".to_string()],
            exclude: Vec::new(),
            full_every_days: 7,
            count_check: true,
            sort_memory: DEFAULT_MEMORY,
            concurrency: 4,
            sandbox: None,
            full_because: std::collections::BTreeMap::new(),
            files: None,
            damaged_chunks: BTreeSet::new(),
            progress: Reporter::default(),
        }
    }
}

/// What happened to one object in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRun {
    pub object: String,
    /// Fetched in full (else incrementally), and why.
    pub full: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rows the org returned (records and tombstones).
    pub fetched: u64,
    /// For incrementals: records created, changed and deleted in the window.
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
    /// Live records after the run, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

#[derive(Debug)]
pub struct BackupOutcome {
    pub snapshot: String,
    pub manifest: SnapshotManifest,
    pub coverage: Coverage,
    /// Objects backed up in full this run, and incrementally.
    pub full: Vec<String>,
    pub incremental: Vec<String>,
    /// Per object, in name order.
    pub objects: Vec<ObjectRun>,
    /// The normalised schema document of every object backed up.
    pub schemas: BTreeMap<String, Value>,
    /// API calls this run made.
    pub api_calls: u64,
    /// What the file pass did.
    pub files: FilesRun,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the task says `environment: {}`, but its credentials reach {}; nothing was backed up",
        if *expected_sandbox { "sandbox" } else { "production" },
        if *expected_sandbox { "a production org (Organization.IsSandbox is false)" } else { "a sandbox (Organization.IsSandbox is true)" }
    )]
    WrongEnvironment { expected_sandbox: bool },
    /// The budget ran out before any object was backed up: no snapshot is written (one would
    /// only repeat the last), and the last one stands.
    #[error("{reason}")]
    NothingBackedUp { reason: String },
}

impl From<FetchError> for BackupError {
    fn from(error: FetchError) -> BackupError {
        match error {
            FetchError::Source(e) => BackupError::Source(e),
            FetchError::Store(e) => BackupError::Store(e),
        }
    }
}

impl BackupError {
    pub fn guidance(&self) -> String {
        match self {
            BackupError::Source(e) => e.guidance(),
            BackupError::Store(e) => e.guidance(),
            BackupError::WrongEnvironment { .. } => "point the credentials (and loginUrl) at the org the task is for; an org of the other kind needs a task of its own".into(),
            BackupError::NothingBackedUp { .. } => "the last snapshot stands; the next run starts where this one could not, once the org's usage is below the ceiling (it counts over the last 24 hours); raise source.apiUsageLimitPercent to allow more".into(),
        }
    }
}

/// Why the org's count disagrees with the store's, if it does.
fn count_mismatch(org: Option<u64>, stored: Option<u64>) -> Option<String> {
    match (org, stored) {
        (Some(org), Some(stored)) if org == stored => None,
        (Some(org), Some(stored)) => Some(format!(
            "count check: the org has {org} records, the backup {stored}"
        )),
        (_, None) => Some("count check: the backup's record count is unknown".into()),
        (None, _) => None,
    }
}

fn budget_reason(error: &BackupError, object: &str) -> Option<String> {
    match error {
        BackupError::Source(SourceError::BudgetExhausted {
            used,
            max,
            limit_percent,
        }) => Some(format!(
            "the API budget ran out at {used} of {max} daily calls ({limit_percent}% allowed) before {object} was backed up"
        )),
        BackupError::Source(SourceError::DailyLimitReached { message }) => Some(format!(
            "the org's daily API allocation ran out before {object} was backed up (Salesforce: {message})"
        )),
        _ => None,
    }
}

/// One backup run of `connector`'s source into `store`, on top of `parent`, at `now`.
pub async fn backup<C: Connector>(
    connector: &C,
    store: &Store,
    options: &BackupOptions,
    parent: Option<(&str, &SnapshotManifest)>,
    now: &str,
) -> Result<BackupOutcome, BackupError> {
    let now_ms = crate::time::parse_datetime(now).ok_or_else(|| {
        SourceError::Config(format!(
            "the backup time {now:?} is not an ISO 8601 datetime"
        ))
    })?;
    let calls_before = connector.api_calls();
    connector.prepare().await?;
    let (plans, coverage) = connector
        .discover(&options.include, &options.exclude)
        .await?;
    let account = connector.account().await?;
    // `source.environment` is fixed for the task's life, and a login URL may reach either
    // kind of account: checked before anything is written.
    if let (Some(expected), Some(is_sandbox)) = (options.sandbox, account.sandbox)
        && expected != is_sandbox
    {
        return Err(BackupError::WrongEnvironment {
            expected_sandbox: expected,
        });
    }
    // Windows end at the org's clock, never the runner's: a runner ahead of the org would
    // end a window in the org's future, and the next window, starting there, would never see
    // what the org changed in between; one behind it would leave recent changes for later.
    // The runner's time is taken only when it falls inside what the last answer's `Date` says;
    // otherwise the earliest the org's time can be, never ahead of it: every query sent after
    // sees the whole window, so the next run may take a record created before this end for one
    // this run saw.
    let window_end_ms = match connector.server_time_bounds() {
        // The runner's clock agrees with the org's: it has the milliseconds `Date` lacks.
        Some((earliest, latest)) if (earliest..=latest).contains(&now_ms) => now_ms,
        Some((earliest, _)) => earliest,
        None => now_ms,
    };
    let window_end = crate::time::format_datetime_z(window_end_ms);
    // The snapshot is dated by the run (as the state branch lists it); its data by the org.
    let snapshot_time = now;
    let (now, now_ms) = (window_end.as_str(), window_end_ms);
    let snapshot_until = parent
        .and_then(|(_, m)| m.window.as_ref())
        .map(|w| w.to.as_str());
    let mut writer = SnapshotWriter::new(store, &options.task, parent)?;
    // Objects no longer chosen or gone from the org leave the snapshot.
    if let Some((_, manifest)) = parent {
        for object in manifest.objects.keys() {
            // Bodies follow their records: the file pass decides theirs.
            if crate::snapshot::files::is_body_object(object) {
                continue;
            }
            if !plans.iter().any(|p| &p.name == object) {
                writer.drop_object(object);
            }
        }
    }
    let (held_back, held_back_reason) = held_back(&plans, parent.map(|(_, m)| m));
    let jobs: Vec<Job> = plans
        .iter()
        .filter(|plan| !held_back.contains(&plan.name.as_str()))
        .map(|plan| {
            let previous = parent.and_then(|(_, m)| m.objects.get(&plan.name));
            plan_job(plan, previous, snapshot_until, now, now_ms, options)
        })
        .collect();
    let full = jobs.iter().filter(|j| j.full_reason.is_some()).count();
    options.progress.detail(
        &options.task,
        &format!(
            "{} objects to back up: {full} in full, {} incrementally{}",
            jobs.len(),
            jobs.len() - full,
            match held_back.len() {
                0 => String::new(),
                n => format!(", {n} kept as the last snapshot has them"),
            }
        ),
    );
    // What the next incremental will fetch again: versions stamped in its overlap.
    let recent_from = now_ms - WINDOW_OVERLAP_MS;
    let mut fetches = futures_util::stream::iter(jobs.iter().map(|job| {
        let step = options.progress.start(
            &options.task,
            &job.plan.name,
            Unit::Records,
            match &job.full_reason {
                Some(reason) => format!("full: {reason}"),
                None => "incremental".to_string(),
            },
        );
        let meter = step.meter().clone();
        let into = Fetched::new(
            match job.full_reason {
                Some(_) => Writing::Full(Box::new(FullFetch::new(
                    store,
                    job.plan,
                    options,
                    recent_from,
                ))),
                None => {
                    let delta = DeltaWriter::new(
                        store,
                        &job.plan.name,
                        parent.and_then(|(_, m)| m.objects.get(&job.plan.name)),
                        recent_from,
                        options.sort_memory_per_object(),
                    );
                    Writing::Changes(Box::new(
                        match job.plan.fields.iter().any(|f| f.name == "CreatedDate") {
                            true => delta,
                            false => delta.creation_unstamped(),
                        },
                    ))
                }
            },
            meter,
        );
        // An incremental's count check is asked alongside its fetch: the org counts while
        // the rows arrive.
        let count = job.full_reason.is_none() && options.count_check;
        async move {
            let counted = async {
                match count {
                    true => Some(connector.count(job.plan, now).await),
                    false => None,
                }
            };
            let (fetched, counted) =
                tokio::join!(connector.fetch(job.plan, &job.window, into), counted);
            (fetched, counted, step)
        }
    }))
    .buffered(options.concurrency.max(1));
    let mut runs = Vec::new();
    let mut components_left_out = Vec::new();
    let mut out_of_budget: Option<String> = None;
    let mut next_job = jobs.iter();
    while let Some((result, counted, step)) = fetches.next().await {
        let Some(job) = next_job.next() else { break };
        let name = &job.plan.name;
        let fetched = match result {
            Ok(fetched) => fetched,
            Err(e) => {
                let e = BackupError::from(e);
                match budget_reason(&e, name) {
                    Some(reason) => {
                        out_of_budget.get_or_insert(reason);
                        step.finish("left for the next run: the API budget ran out");
                        continue;
                    }
                    None => return Err(e),
                }
            }
        };
        let Fetched {
            into,
            listed,
            left_out,
            ..
        } = fetched;
        components_left_out.extend(left_out);
        let (mut run, mut recent) = match into {
            Writing::Full(full) => {
                let reason = job.full_reason.as_deref().unwrap_or_default();
                write_full(&mut writer, job.plan, full, reason)?
            }
            Writing::Changes(delta) => write_incremental(
                &mut writer,
                store,
                job.plan,
                parent.and_then(|(_, m)| m.objects.get(name)),
                delta,
                listed,
            )?,
        };
        if let (false, None, Some(counted)) = (run.full, &out_of_budget, counted) {
            let checked = match counted.map(|org| count_mismatch(org, run.records)) {
                Ok(None) => Ok(None),
                Ok(Some(reason)) => {
                    let into = Fetched::new(
                        Writing::Full(Box::new(FullFetch::new(
                            store,
                            job.plan,
                            options,
                            recent_from,
                        ))),
                        step.meter().clone(),
                    );
                    match connector.fetch(job.plan, &FetchWindow::Full, into).await {
                        Ok(Fetched {
                            into: Writing::Full(full),
                            ..
                        }) => write_full(&mut writer, job.plan, full, &reason).map(Some),
                        Ok(_) => unreachable!("fetch fills what it is given"),
                        Err(e) => Err(e.into()),
                    }
                }
                Err(e) => Err(e.into()),
            };
            match checked {
                Ok(Some((full, full_recent))) => {
                    run = full;
                    recent = full_recent;
                }
                Ok(None) => {}
                Err(e) => match budget_reason(&e, name) {
                    // The incremental stands; the next run checks again.
                    Some(reason) => {
                        out_of_budget.get_or_insert(reason);
                    }
                    None => return Err(e),
                },
            }
        }
        writer.set_fields(
            name,
            job.plan.fields.iter().map(|f| f.name.clone()).collect(),
        );
        writer.set_scope(name, job.plan.scope.clone());
        writer.set_schema(
            name,
            &serde_json::to_vec(&job.plan.schema).unwrap_or_default(),
        )?;
        writer.mark_synced(name, now, run.full);
        writer.set_recent(name, recent.finish().as_ref())?;
        finish_step(step, &run);
        runs.push(run);
    }
    drop(fetches);
    if let (true, false, Some(reason)) = (runs.is_empty(), jobs.is_empty(), &out_of_budget) {
        return Err(BackupError::NothingBackedUp {
            reason: reason.clone(),
        });
    }
    let mut coverage = coverage;
    // Bodies after every record: a large library never holds up the data backup.
    // With the budget spent, no body can be fetched: the records' bodies are written waiting,
    // for the next run.
    let (files, files_waiting) = files::back_up_bodies(
        connector,
        store,
        &mut writer,
        &plans,
        &runs,
        parent.map(|(_, m)| m),
        options,
        out_of_budget.clone(),
        &mut coverage,
    )
    .await?;
    let reasons: Vec<String> = held_back_reason
        .into_iter()
        .chain(out_of_budget.or(files_waiting))
        .collect();
    let outcome = match reasons.is_empty() {
        true => Outcome::Complete,
        false => Outcome::Partial {
            reason: reasons.join("; "),
        },
    };
    let window = Some(Window {
        from: snapshot_until.map(str::to_string),
        to: now.to_string(),
    });
    let (snapshot, manifest) = writer.finish(
        snapshot_time,
        Source {
            kind: connector.kind().to_string(),
            account: account.id,
            api_version: connector.api_version().to_string(),
        },
        window,
        outcome,
    )?;
    coverage.components_left_out = components_left_out;
    Ok(BackupOutcome {
        snapshot,
        manifest,
        coverage,
        full: runs
            .iter()
            .filter(|r| r.full)
            .map(|r| r.object.clone())
            .collect(),
        incremental: runs
            .iter()
            .filter(|r| !r.full)
            .map(|r| r.object.clone())
            .collect(),
        objects: runs,
        schemas: plans
            .iter()
            .map(|p| (p.name.clone(), p.schema.clone()))
            .collect(),
        api_calls: connector.api_calls() - calls_before,
        files,
    })
}
