//! Where an object's fetched rows go while they arrive: a full pass's new base or an
//! incremental's delta, counted for progress; and how each becomes the object's in the
//! snapshot, with the few words its step ends with.

use std::collections::BTreeSet;

use super::{BackupError, BackupOptions, ObjectRun};
use crate::progress::{Meter, Running};
use crate::snapshot::SnapshotWriter;
use crate::snapshot::base::BaseWriter;
use crate::snapshot::delta::DeltaWriter;
use crate::snapshot::reader::ObjectReader;
use crate::snapshot::recent::RecentVersions;
use crate::snapshot::sorter::Row;
use crate::source::{ObjectPlan, RowSink};
use crate::store::{Store, StoreError};

/// Where an object's fetched rows go, and what the source said of the rest.
pub(super) struct Fetched {
    pub(super) into: Writing,
    /// Counts the rows for whoever watches.
    meter: Meter,
    /// Every Id the source lists now, when it lists rather than reports deletions.
    pub(super) listed: Option<BTreeSet<String>>,
    /// Rows the source could not give in full, and why.
    pub(super) left_out: Vec<(String, String)>,
}

pub(super) enum Writing {
    /// A full pass: its new base, written as rows arrive.
    Full(Box<FullFetch>),
    /// An incremental: its delta, written as rows arrive.
    Changes(Box<DeltaWriter>),
}

impl Fetched {
    pub(super) fn new(into: Writing, meter: Meter) -> Fetched {
        Fetched {
            into,
            meter,
            listed: None,
            left_out: Vec::new(),
        }
    }
}

impl RowSink for Fetched {
    fn push(&mut self, row: Row) -> Result<(), StoreError> {
        self.meter.add(1);
        match &mut self.into {
            Writing::Full(full) => full.push(row),
            Writing::Changes(delta) => delta.push(row),
        }
    }

    fn listed(&mut self, ids: BTreeSet<String>) {
        self.listed = Some(ids);
    }

    fn left_out(&mut self, what: String, why: String) {
        self.left_out.push((what, why));
    }

    fn announced(&mut self, total: u64) {
        self.meter.set_total(total);
    }
}

/// A full pass in progress: the new base, and the versions the next incremental will fetch
/// again.
pub(super) struct FullFetch {
    base: BaseWriter,
    recent: RecentVersions,
    fetched: u64,
}

impl FullFetch {
    pub(super) fn new(
        store: &Store,
        plan: &ObjectPlan,
        options: &BackupOptions,
        recent_from: i64,
    ) -> Self {
        FullFetch {
            base: BaseWriter::new(store, &plan.name, options.sort_memory_per_object()),
            recent: RecentVersions::since(recent_from),
            fetched: 0,
        }
    }

    fn push(&mut self, row: Row) -> Result<(), StoreError> {
        self.fetched += 1;
        self.recent.note(&row);
        self.base.push(row)
    }
}

/// Makes a full pass's base the object's, and returns the versions the next incremental will
/// fetch again.
pub(super) fn write_full(
    writer: &mut SnapshotWriter,
    plan: &ObjectPlan,
    full: Box<FullFetch>,
    reason: &str,
) -> Result<(ObjectRun, RecentVersions), BackupError> {
    let base = full.base.finish()?;
    writer.set_base(&plan.name, base.segments, base.records);
    let run = ObjectRun {
        object: plan.name.clone(),
        full: true,
        reason: Some(reason.to_string()),
        fetched: full.fetched,
        added: 0,
        modified: 0,
        deleted: 0,
        records: Some(base.records),
    };
    Ok((run, full.recent))
}

/// Adds an incremental's delta to the object, and returns the versions the next incremental
/// will fetch again. When the source listed every Id it has, the parent's records it did not
/// list are deleted.
pub(super) fn write_incremental(
    writer: &mut SnapshotWriter,
    store: &Store,
    plan: &ObjectPlan,
    parent: Option<&crate::snapshot::ObjectEntry>,
    mut delta: Box<DeltaWriter>,
    listed: Option<BTreeSet<String>>,
) -> Result<(ObjectRun, RecentVersions), BackupError> {
    if let (Some(listed), Some(parent)) = (listed, parent) {
        for record in ObjectReader::new(store, &plan.name, parent) {
            let (id, _) = record?;
            if !listed.contains(&id) {
                delta.push(Row {
                    id,
                    deleted: true,
                    created: false,
                    revisit: false,
                    stamp: i64::MIN,
                    body: Vec::new(),
                })?;
            }
        }
    }
    let delta = delta.finish()?;
    let counts = delta.counts;
    writer.add_delta(&plan.name, delta.segments, counts.upserts(), counts.deleted);
    writer.count_changes(&plan.name, counts.added, counts.removed);
    let run = ObjectRun {
        object: plan.name.clone(),
        full: false,
        reason: None,
        fetched: counts.upserts() + counts.deleted,
        added: counts.added,
        modified: counts.modified,
        deleted: counts.deleted,
        records: writer.records(&plan.name),
    };
    Ok((run, delta.recent))
}

/// Ends an object's step with what its run did, in a few words.
pub(super) fn finish_step(step: Running, run: &ObjectRun) {
    use crate::text::count;
    let summary = match (run.full, run.records) {
        (true, Some(records)) if records == run.fetched => {
            format!("full, {}", crate::text::plural(records, "record"))
        }
        (true, Some(records)) => format!(
            "full, {} fetched, {} live",
            crate::text::plural(run.fetched, "record"),
            count(records)
        ),
        (true, None) => format!(
            "full, {} fetched",
            crate::text::plural(run.fetched, "record")
        ),
        (false, _) if run.added + run.modified + run.deleted == 0 => "no change".to_string(),
        (false, _) => format!(
            "{} added, {} modified, {} deleted",
            count(run.added),
            count(run.modified),
            count(run.deleted)
        ),
    };
    step.finish(&summary);
}
