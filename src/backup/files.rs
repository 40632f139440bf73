//! The file pass: after every object's records, the bodies of the records that have one (a
//! ContentVersion's `VersionData`, an Attachment's `Body`), one call each, for the bodies that
//! are new or changed. A body is known unchanged from what the record says of it (size and
//! checksum, or its last change where the source gives no checksum), so an incremental only
//! downloads what changed. Each body streams through the chunker into the store (memory stays
//! bounded whatever the file's size) and is checked against the size and MD5 the source gave.
//! Downloads may use a share of the task's API budget; what they could not fetch is written as
//! waiting and fetched first by the next run, and the run is partial.

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::download::{Download, Failure};
use super::{BackupError, FilesOptions, ObjectRun};
use crate::snapshot::files::{FileBody, Missing, body_object, is_body_object};
use crate::snapshot::reader::{ObjectReader, RecordLookup};
use crate::snapshot::writer::SegmentSink;
use crate::snapshot::{ObjectEntry, SnapshotManifest, SnapshotWriter};
use crate::source::{BodyField, Connector, Coverage, ObjectPlan};
use crate::store::{Store, StoreError};

/// Bodies decided before their downloads start: a bound on what the pass holds in memory.
const BATCH: usize = 32;
/// Bodies downloaded at once.
const DOWNLOADS: usize = 4;

/// What the file pass did, for the run's report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilesRun {
    /// Bodies downloaded this run, and their bytes.
    pub downloaded: u64,
    pub downloaded_bytes: u64,
    /// Bodies of changed or re-read records known unchanged without a download.
    pub unchanged: u64,
    /// Bodies deleted with their records.
    pub deleted: u64,
    /// Bodies left out (too large, say) and waiting for the next run.
    pub left_out: u64,
    pub waiting: u64,
    /// Files the snapshot knows, over every body object: held, waiting or left out.
    pub known: u64,
    /// API calls the downloads made.
    pub api_calls: u64,
}

/// What a record says of its body.
pub(super) struct Described {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) parent: Option<String>,
    pub(super) size: Option<u64>,
    pub(super) checksum: Option<String>,
    pub(super) version: Option<String>,
}

impl Described {
    fn of(id: &str, record: &[u8], body: &BodyField) -> Described {
        let record: Value = serde_json::from_slice(record).unwrap_or(Value::Null);
        let text = |field: &Option<String>| {
            field
                .as_ref()
                .and_then(|f| record.get(f))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        Described {
            id: id.to_string(),
            name: text(&body.name_field).unwrap_or_default(),
            parent: text(&body.parent_field),
            size: text(&body.size_field).and_then(|s| s.parse().ok()),
            checksum: text(&body.checksum_field).map(|c| c.to_ascii_lowercase()),
            // Without a checksum, the record's last change stands for the body's version.
            version: match &body.checksum_field {
                Some(_) => None,
                None => record
                    .get("SystemModstamp")
                    .or_else(|| record.get("LastModifiedDate"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
        }
    }

    /// Whether `held` is this body, as far as the record tells.
    fn matches(&self, held: &FileBody) -> bool {
        held.is_held()
            && self.size.is_none_or(|size| size == held.size)
            && match &self.checksum {
                Some(checksum) => held.md5.as_deref() == Some(checksum.as_str()),
                None => held.version == self.version,
            }
    }

    /// `held` with this record's name and parent (which change without the body changing).
    fn renamed(&self, held: &FileBody) -> FileBody {
        FileBody {
            name: self.name.clone(),
            parent: self.parent.clone(),
            version: self.version.clone(),
            ..held.clone()
        }
    }

    fn missing(&self, reason: String, retry: bool) -> FileBody {
        FileBody {
            id: self.id.clone(),
            name: self.name.clone(),
            parent: self.parent.clone(),
            size: self.size.unwrap_or(0),
            md5: None,
            version: self.version.clone(),
            chunks: Vec::new(),
            missing: Some(Missing { reason, retry }),
        }
    }
}

/// What becomes of one record's body.
enum Decision {
    /// The row as it stands (carried over, renamed, or left out without a call).
    Row(FileBody),
    Download(Described),
    /// The record was deleted.
    Delete(String),
}

/// A decision carried out.
enum Written {
    Row(FileBody),
    Delete(String),
    Downloaded(FileBody),
    Failed(Described, Failure),
}

/// Where the pass stands on the budget.
struct Allowance {
    calls_at_start: u64,
    /// Calls the downloads may make (None: only the task's budget bounds them).
    share: Option<u64>,
    percent: u8,
    /// Why downloads stopped, once they have (set while downloads are under way).
    spent: std::sync::Mutex<Option<String>>,
}

impl Allowance {
    /// Why no more downloads may start, if so.
    fn check<C: Connector>(&self, connector: &C) -> Option<String> {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        if spent.is_none()
            && let Some(share) = self.share
            && connector.api_calls() - self.calls_at_start >= share
        {
            *spent = Some(format!(
                "the files' share of the API budget ({share} calls, files.budgetPercent {}%) ran out",
                self.percent
            ));
        }
        spent.clone()
    }

    fn stop(&self, why: &str) {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        spent.get_or_insert_with(|| why.to_string());
    }

    fn spent(&self) -> Option<String> {
        self.spent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The file pass over every object `runs` fetched this run; `spent` says why the budget
/// allows no download at all.
#[allow(clippy::too_many_arguments)]
pub(super) async fn back_up_bodies<C: Connector>(
    connector: &C,
    store: &Store,
    writer: &mut SnapshotWriter<'_>,
    plans: &[ObjectPlan],
    runs: &[ObjectRun],
    parent: Option<&SnapshotManifest>,
    backup: &super::BackupOptions,
    spent: Option<String>,
    coverage: &mut Coverage,
) -> Result<(FilesRun, Option<String>), BackupError> {
    let options = backup.files.as_ref();
    let mut report = FilesRun::default();
    let mut chosen = Vec::new();
    for plan in plans {
        for body in &plan.bodies {
            let name = body_object(&plan.name, &body.field);
            match options {
                Some(files)
                    if files
                        .objects
                        .iter()
                        .any(|p| crate::text::glob::glob(p, &plan.name)) =>
                {
                    chosen.push((plan, body, name));
                }
                Some(_) => coverage.fields_left_out.push((
                    name,
                    "a file body of an object files.objects does not name".into(),
                )),
                None => coverage
                    .fields_left_out
                    .push((name, "a file body, and files.enabled is false".into())),
            }
        }
    }
    // Bodies of objects no longer chosen leave the snapshot with them.
    let stale: Vec<String> = writer
        .objects()
        .filter(|o| is_body_object(o) && !chosen.iter().any(|(_, _, name)| name == o))
        .map(str::to_string)
        .collect();
    for object in stale {
        writer.drop_object(&object);
    }
    let Some(files) = options else {
        return Ok((report, None));
    };
    let allowance = Allowance {
        calls_at_start: connector.api_calls(),
        share: connector.budget_share(files.budget_percent),
        percent: files.budget_percent,
        spent: std::sync::Mutex::new(spent),
    };
    let seed = store.master_key().chunker_seed();
    for (plan, body, name) in chosen {
        // Only the records fetched this run can have new bodies: an object the budget left
        // out keeps its bodies as they were, with its records.
        let Some(run) = runs.iter().find(|r| r.object == plan.name) else {
            continue;
        };
        let Some(records) = writer.entry(&plan.name).cloned() else {
            continue;
        };
        let previous = parent.and_then(|m| m.objects.get(&name)).cloned();
        let full = run.full || previous.is_none() || backup.full_because.contains_key(&name);
        let step = backup.progress.start(
            &backup.task,
            &name,
            crate::progress::Unit::Files,
            if full { "every file" } else { "changed files" },
        );
        let mut pass = Pass {
            connector,
            store,
            seed,
            plan,
            body,
            files,
            damaged: &backup.damaged_chunks,
            previous: previous.as_ref().map(|p| RecordLookup::new(store, p)),
            sink: SegmentSink::new(store, &name),
            counts: Counts::default(),
            left_out: Default::default(),
            meter: step.meter().clone(),
        };
        if full {
            if let Some(total) = records.records {
                pass.meter.set_total(total);
            }
            let mut batch = Vec::new();
            for record in ObjectReader::new(store, &plan.name, &records) {
                let (id, json) = record?;
                batch.push((id, Some(json)));
                if batch.len() == BATCH {
                    pass.run_batch(std::mem::take(&mut batch), &allowance, true)
                        .await?;
                }
            }
            pass.run_batch(batch, &allowance, true).await?;
        } else {
            let candidates = incremental_candidates(
                store,
                &records,
                parent.and_then(|m| m.objects.get(&plan.name)),
                previous.as_ref(),
            )?;
            pass.meter.set_total(candidates.len() as u64);
            for batch in candidates.chunks(BATCH) {
                pass.run_batch(batch.to_vec(), &allowance, false).await?;
            }
        }
        let Pass {
            sink,
            counts,
            left_out,
            ..
        } = pass;
        if !left_out.is_empty() {
            let reasons: Vec<String> = left_out
                .iter()
                .map(|(why, n)| format!("{n} left out: {why}"))
                .collect();
            coverage
                .files_left_out
                .push((name.clone(), reasons.join("; ")));
        }
        let segments = sink.finish()?;
        if full {
            writer.set_base(&name, segments, counts.rows);
            writer.set_pending(&name, counts.waiting);
        } else {
            writer.add_delta(&name, segments, counts.rows, counts.deleted);
            writer.count_changes(&name, counts.added, counts.deleted);
            let before = previous.as_ref().map_or(0, |p| p.pending);
            writer.set_pending(
                &name,
                (before + counts.waiting).saturating_sub(counts.resolved),
            );
        }
        step.finish(&match (counts.downloaded, counts.unchanged) {
            (0, 0) => "no change".to_string(),
            (0, unchanged) => format!("{} unchanged", crate::text::plural(unchanged, "file")),
            (downloaded, unchanged) => format!(
                "{} downloaded ({}), {} unchanged",
                crate::text::plural(downloaded, "file"),
                crate::text::size(counts.downloaded_bytes),
                crate::text::count(unchanged)
            ),
        });
        report.downloaded += counts.downloaded;
        report.downloaded_bytes += counts.downloaded_bytes;
        report.unchanged += counts.unchanged;
        report.deleted += counts.deleted;
        report.left_out += counts.left_out;
    }
    for object in writer.objects().filter(|o| is_body_object(o)) {
        if let Some(entry) = writer.entry(object) {
            report.waiting += entry.pending;
            report.known += entry.records.unwrap_or(0);
        }
    }
    report.api_calls = connector.api_calls() - allowance.calls_at_start;
    let waiting = match (allowance.spent(), report.waiting) {
        (_, 0) => None,
        (Some(why), n) => Some(format!("{n} file bodies wait for the next run: {why}")),
        (None, n) => Some(format!(
            "{n} file bodies wait for the next run (their downloads failed)"
        )),
    };
    if let (Some(why), Some(_)) = (&waiting, allowance.spent()) {
        coverage
            .files_left_out
            .push(("waiting".to_string(), why.clone()));
    }
    Ok((report, waiting))
}

/// What an incremental's file pass looks at: the records the run changed or deleted (the
/// newest delta, when the run added one), and the records whose bodies wait from before.
fn incremental_candidates(
    store: &Store,
    records: &ObjectEntry,
    parent_records: Option<&ObjectEntry>,
    previous: Option<&ObjectEntry>,
) -> Result<Vec<crate::snapshot::reader::Versioned>, StoreError> {
    let mut candidates = Vec::new();
    let deltas_before = parent_records.map_or(0, |p| p.deltas.len());
    if records.deltas.len() > deltas_before
        && let Some(delta) = records.deltas.last()
    {
        let layer = ObjectEntry {
            base: delta.segments.clone(),
            ..ObjectEntry::default()
        };
        for change in ObjectReader::changes(store, &layer) {
            candidates.push(change?);
        }
    }
    let Some(previous) = previous.filter(|p| p.pending > 0) else {
        return Ok(candidates);
    };
    // The records whose bodies wait, in Id order, merged in (the delta's change of a record
    // stands for it).
    let mut lookup = RecordLookup::new(store, records);
    let mut waiting = Vec::new();
    for row in ObjectReader::new(store, "", previous) {
        let (id, bytes) = row?;
        if FileBody::parse(&bytes).is_ok_and(|b| b.waiting())
            && candidates.binary_search_by(|(c, _)| c.cmp(&id)).is_err()
        {
            let record = lookup.find(&id)?.map(<[u8]>::to_vec);
            waiting.push((id, record));
        }
    }
    candidates.extend(waiting);
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(candidates)
}

#[derive(Default)]
struct Counts {
    /// Rows written (upserts), and of them the ones new to the body object.
    rows: u64,
    added: u64,
    deleted: u64,
    downloaded: u64,
    downloaded_bytes: u64,
    unchanged: u64,
    left_out: u64,
    /// Rows written waiting, and earlier waiting rows written again or deleted.
    waiting: u64,
    resolved: u64,
}

/// One body object's pass.
struct Pass<'a, C> {
    connector: &'a C,
    store: &'a Store,
    seed: u64,
    plan: &'a ObjectPlan,
    body: &'a BodyField,
    files: &'a FilesOptions,
    /// Chunks of the parent's bodies that are damaged or missing.
    damaged: &'a std::collections::BTreeSet<String>,
    /// The parent snapshot's bodies.
    previous: Option<RecordLookup>,
    sink: SegmentSink,
    counts: Counts,
    /// Bodies left out this run, by reason.
    left_out: std::collections::BTreeMap<String, u64>,
    /// Counts the records looked at and the bytes downloaded, for whoever watches.
    meter: crate::progress::Meter,
}

impl<C: Connector> Pass<'_, C> {
    fn previous_body(&mut self, id: &str) -> Result<Option<FileBody>, StoreError> {
        let Some(previous) = self.previous.as_mut() else {
            return Ok(None);
        };
        let body = previous
            .find(id)?
            .and_then(|bytes| FileBody::parse(bytes).ok());
        // A body whose chunks are damaged is as good as not held: downloaded again.
        Ok(body.map(|mut body| {
            if body.chunks.iter().any(|c| self.damaged.contains(&c.blob)) {
                body.missing = Some(Missing {
                    reason: "its chunks in the store are damaged".into(),
                    retry: true,
                });
                body.chunks.clear();
            }
            body
        }))
    }

    /// Decides a batch of records (in Id order), downloads what needs it, and writes the rows.
    async fn run_batch(
        &mut self,
        batch: Vec<crate::snapshot::reader::Versioned>,
        allowance: &Allowance,
        full: bool,
    ) -> Result<(), BackupError> {
        let looked_at = batch.len() as u64;
        let mut decisions = Vec::with_capacity(batch.len());
        // Whether each decision's row is new to the body object, in the decisions' order.
        let mut new_rows = Vec::with_capacity(batch.len());
        for (id, record) in batch {
            let previous = self.previous_body(&id)?;
            let decided = decisions.len();
            if previous.as_ref().is_some_and(FileBody::waiting) {
                self.counts.resolved += 1;
            }
            let Some(record) = record else {
                if previous.is_some() {
                    decisions.push(Decision::Delete(id));
                    new_rows.push(false);
                }
                continue;
            };
            let described = Described::of(&id, &record, self.body);
            if let Some(held) = previous.as_ref().filter(|held| described.matches(held)) {
                self.counts.unchanged += 1;
                let renamed = described.renamed(held);
                // An incremental writes only what changed; a full pass writes every row.
                if full || renamed != *held {
                    decisions.push(Decision::Row(renamed));
                    new_rows.push(false);
                }
                continue;
            }
            match (described.size, self.files.max_size) {
                (Some(size), Some(max)) if size > max => {
                    self.note_left_out(format!(
                        "over files.maxSizeMb ({})",
                        crate::text::size(max)
                    ));
                    let why = format!(
                        "{} is over files.maxSizeMb ({})",
                        crate::text::size(size),
                        crate::text::size(max)
                    );
                    decisions.push(Decision::Row(described.missing(why, false)));
                }
                _ => decisions.push(Decision::Download(described)),
            }
            if decisions.len() > decided {
                new_rows.push(previous.is_none());
            }
        }
        // Downloads go a few at a time; their rows are written in Id order.
        let mut outcomes = Vec::with_capacity(decisions.len());
        {
            let mut downloads = futures_util::stream::iter(decisions.into_iter().map(|decision| {
                let spent = allowance.check(self.connector);
                let download = Download {
                    connector: self.connector,
                    store: self.store,
                    seed: self.seed,
                    object: self.plan.name.as_str(),
                    field: self.body.field.as_str(),
                    meter: &self.meter,
                };
                async move {
                    let described = match decision {
                        Decision::Download(described) => described,
                        Decision::Row(row) => return Written::Row(row),
                        Decision::Delete(id) => return Written::Delete(id),
                    };
                    let result = match spent {
                        Some(why) => Err(Failure::Budget(why)),
                        None => download.with_retry(&described).await,
                    };
                    match result {
                        Ok(row) => Written::Downloaded(row),
                        Err(failure) => Written::Failed(described, failure),
                    }
                }
            }))
            .buffered(DOWNLOADS);
            while let Some(outcome) = downloads.next().await {
                if let Written::Failed(_, Failure::Budget(why)) = &outcome {
                    allowance.stop(why);
                }
                outcomes.push(outcome);
            }
        }
        // A full pass writes a new base: no row is added to an earlier one.
        for (outcome, new) in outcomes.into_iter().zip(new_rows) {
            let new = new && !full;
            match outcome {
                Written::Delete(id) => {
                    self.sink.push(&id, None)?;
                    self.counts.deleted += 1;
                }
                Written::Row(row) => self.write(row, new)?,
                Written::Downloaded(row) => {
                    self.counts.downloaded += 1;
                    self.counts.downloaded_bytes += row.size;
                    self.write(row, new)?;
                }
                Written::Failed(_, Failure::Store(e)) => return Err(e.into()),
                Written::Failed(described, Failure::Budget(why)) => {
                    self.write(described.missing(why, true), new)?;
                }
                Written::Failed(described, Failure::Body(why)) => {
                    self.note_left_out(why.kind.to_string());
                    self.write(described.missing(why.detail, true), new)?;
                }
            }
        }
        self.meter.add(looked_at);
        Ok(())
    }

    /// Counts a body left out, by a reason that names no file: the coverage report is
    /// committed in plaintext, and a file's name or Id is the org's data.
    fn note_left_out(&mut self, reason: String) {
        self.counts.left_out += 1;
        *self.left_out.entry(reason).or_default() += 1;
    }

    /// Writes a row; `new` when the body object had no row for its record.
    fn write(&mut self, row: FileBody, new: bool) -> Result<(), StoreError> {
        if row.waiting() {
            self.counts.waiting += 1;
        }
        if new {
            self.counts.added += 1;
        }
        self.sink.push(&row.id, Some(&row.encode()))?;
        self.counts.rows += 1;
        Ok(())
    }
}
