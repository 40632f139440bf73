//! Writing an incremental's delta while its rows are still arriving. Each row is compared with
//! the parent snapshot as it comes (a revisited record the parent already holds as it is, or a
//! deletion it already has, is no change), and a change in Id order goes straight into a
//! segment, so fetching the next page, comparing and sealing overlap. Rows that come out of
//! order (a page fetched again, a source with another order) are set aside in a [`RowSorter`]
//! and merged in at the end; as the later fetch, a late row replaces what was written for its Id.

use super::arrival::ArrivalOrder;
use super::manifest::{ObjectEntry, SegmentRef};
use super::reader::{ObjectReader, RecordLookup};
use super::recent::RecentVersions;
use super::sorter::Row;
use super::writer::SegmentSink;
use crate::store::{Store, StoreError};

/// What a written change did to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A record created in the window.
    Added,
    Modified,
    /// A deletion of a record the parent held.
    Removed,
    /// A deletion of a record created in the window (so never in the parent).
    DeletedNew,
}

/// How many changes of each kind a delta holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCounts {
    pub added: u64,
    pub modified: u64,
    /// Deletions, whether or not the parent held the record.
    pub deleted: u64,
    /// Deletions of records the parent held.
    pub removed: u64,
}

impl ChangeCounts {
    fn count(&mut self, kind: Kind) {
        match kind {
            Kind::Added => self.added += 1,
            Kind::Modified => self.modified += 1,
            Kind::Removed => {
                self.deleted += 1;
                self.removed += 1;
            }
            Kind::DeletedNew => self.deleted += 1,
        }
    }

    /// Records upserted by the delta.
    pub fn upserts(&self) -> u64 {
        self.added + self.modified
    }
}

/// A delta, written.
#[derive(Debug)]
pub struct WrittenDelta {
    /// Empty when nothing changed.
    pub segments: Vec<SegmentRef>,
    pub counts: ChangeCounts,
    /// The versions stamped in the overlap window, for the next incremental.
    pub recent: RecentVersions,
}

/// The parent's side of the comparison.
struct Parent {
    lookup: RecordLookup,
    /// The parent's list of the versions fetched last in its window: read at the first
    /// revisited row (`None` inside when the parent kept no list).
    listed_blob: Option<String>,
    listed: Option<Option<RecentVersions>>,
}

/// Decides what a row changes, and notes the versions the next incremental will fetch again.
struct Comparison {
    store: Store,
    parent: Option<Parent>,
    recent: RecentVersions,
    /// The object's rows say nothing of when a record was made (it has no CreatedDate): the
    /// parent tells whether each record is new.
    creation_unstamped: bool,
}

impl Comparison {
    /// What the row changes; `None` when the parent already holds it as it is.
    fn classify(&mut self, row: &Row) -> Result<Option<Kind>, StoreError> {
        self.recent.note(row);
        if self.unchanged(row)? {
            return Ok(None);
        }
        // A version from the overlap the parent's window did not hold may be of a record made
        // in the very moment that window ended, after it was read: the parent says whether it
        // is new (else the live count would come out one short).
        // So may any version of an object whose rows carry no creation date.
        let created = row.created
            || ((row.revisit && !row.deleted) || self.creation_unstamped)
                && match self.parent.as_mut() {
                    Some(parent) => parent.lookup.find(&row.id)?.is_none(),
                    None => false,
                };
        Ok(Some(match (row.deleted, created) {
            (false, true) => Kind::Added,
            (false, false) => Kind::Modified,
            (true, false) => Kind::Removed,
            (true, true) => Kind::DeletedNew,
        }))
    }

    fn unchanged(&mut self, row: &Row) -> Result<bool, StoreError> {
        let Some(parent) = self.parent.as_mut() else {
            return Ok(false);
        };
        if !row.revisit {
            return Ok(false);
        }
        if parent.listed.is_none() {
            // The list only saves reading the parent: one that is damaged or gone is done
            // without, never a failed backup.
            let listed = parent
                .listed_blob
                .as_ref()
                .and_then(|blob| RecentVersions::load(&self.store, blob).ok());
            parent.listed = Some(listed);
        }
        if let Some(Some(listed)) = &parent.listed {
            if listed.contains(row) {
                return Ok(true);
            }
            // An unlisted version is new to the parent; only a deletion needs a look, as the
            // parent may never have had the record (full fetches leave deleted ones out).
            if !row.deleted {
                return Ok(false);
            }
        }
        // Otherwise the parent's segments are read, each at most once while rows come in Id
        // order: at most one read of the parent, less than storing the records again.
        Ok(match parent.lookup.find(&row.id)? {
            None => row.deleted,
            Some(body) => !row.deleted && body == row.body.as_slice(),
        })
    }
}

pub struct DeltaWriter {
    object: String,
    comparison: Comparison,
    direct: SegmentSink,
    /// The kind of each change written directly, in order: a late row that replaces one
    /// takes its place in the counts.
    kinds: Vec<Kind>,
    order: ArrivalOrder,
}

impl DeltaWriter {
    /// Changes to `object` since `parent` (its entry in the parent snapshot, if it had one).
    /// `recent_from` starts the overlap window whose versions are listed for the next run;
    /// `sort_memory` bounds what out-of-order rows hold in memory before spilling.
    pub fn new(
        store: &Store,
        object: &str,
        parent: Option<&ObjectEntry>,
        recent_from: i64,
        sort_memory: usize,
    ) -> DeltaWriter {
        DeltaWriter {
            object: object.to_string(),
            comparison: Comparison {
                store: store.clone(),
                parent: parent.map(|entry| Parent {
                    lookup: RecordLookup::new(store, entry),
                    listed_blob: entry.recent.clone(),
                    listed: None,
                }),
                recent: RecentVersions::since(recent_from),
                creation_unstamped: false,
            },
            direct: SegmentSink::for_delta(store, object),
            kinds: Vec::new(),
            order: ArrivalOrder::new(sort_memory),
        }
    }

    /// For an object whose rows carry no creation date (`Row::created` is always false): each
    /// row's record is looked up in the parent to tell an addition from a modification.
    pub fn creation_unstamped(mut self) -> Self {
        self.comparison.creation_unstamped = true;
        self
    }

    /// Takes one fetched row (a deleted one is a tombstone).
    pub fn push(&mut self, row: Row) -> Result<(), StoreError> {
        if !self.order.in_order(&row.id) {
            return self.order.set_aside(row);
        }
        if let Some(kind) = self.comparison.classify(&row)? {
            let body = (!row.deleted).then_some(row.body.as_slice());
            self.direct.push(&row.id, body)?;
            self.kinds.push(kind);
        }
        self.order.passed(row.id);
        Ok(())
    }

    /// Whether some rows came out of order (and `finish` merges).
    pub fn has_late_rows(&self) -> bool {
        self.order.has_late_rows()
    }

    pub fn finish(self) -> Result<WrittenDelta, StoreError> {
        let DeltaWriter {
            object,
            mut comparison,
            direct,
            kinds,
            order,
        } = self;
        let direct = direct.finish()?;
        let Some(late) = order.into_late() else {
            let mut counts = ChangeCounts::default();
            kinds.iter().for_each(|&kind| counts.count(kind));
            return Ok(WrittenDelta {
                segments: direct,
                counts,
                recent: comparison.recent,
            });
        };
        let store = comparison.store.clone();
        let written = ObjectEntry {
            base: direct,
            ..ObjectEntry::default()
        };
        let mut earlier = ObjectReader::changes(&store, &written);
        let mut earlier_kinds = kinds.into_iter();
        let mut later = late.finish()?;
        let mut out = SegmentSink::for_delta(&store, &object);
        let mut counts = ChangeCounts::default();
        let mut a = earlier.next().transpose()?;
        let mut b = later.next().transpose()?;
        loop {
            match (&a, &b) {
                (None, None) => break,
                (Some((id, body)), next) if next.as_ref().is_none_or(|row| *id < row.id) => {
                    out.push(id, body.as_deref())?;
                    if let Some(kind) = earlier_kinds.next() {
                        counts.count(kind);
                    }
                    a = earlier.next().transpose()?;
                }
                // Fetched again later: the later row (below) decides.
                (Some((id, _)), Some(row)) if *id == row.id => {
                    earlier_kinds.next();
                    a = earlier.next().transpose()?;
                }
                _ => {
                    if let Some(row) = b.take()
                        && let Some(kind) = comparison.classify(&row)?
                    {
                        out.push(&row.id, (!row.deleted).then_some(row.body.as_slice()))?;
                        counts.count(kind);
                    }
                    b = later.next().transpose()?;
                }
            }
        }
        Ok(WrittenDelta {
            segments: out.finish()?,
            counts,
            recent: comparison.recent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::reader::Versioned;
    use rstest::rstest;
    use std::collections::BTreeMap;

    fn id(n: u64) -> String {
        format!("001{n:015}")
    }

    fn body(n: u64, version: u64) -> Vec<u8> {
        format!("{{\"n\":{n},\"v\":{version}}}").into_bytes()
    }

    /// The parent: records 0..2000 at version 1, except every seventh, never created.
    fn parent_records() -> BTreeMap<String, Vec<u8>> {
        (0..2000)
            .filter(|n| n % 7 != 3)
            .map(|n| (id(n), body(n, 1)))
            .collect()
    }

    /// One incremental's rows in Id order: records revisited as they are, edited, deleted,
    /// created (some then deleted), and tombstones of records the parent never had.
    fn ascending() -> Vec<Row> {
        let parent = parent_records();
        (0..2600)
            .filter_map(|n| {
                let in_parent = parent.contains_key(&id(n));
                let (deleted, created, revisit, version) = match n % 11 {
                    _ if n >= 2000 => (n % 5 == 0, true, false, 1),
                    0 | 1 => (false, false, true, 1),
                    2 => (false, false, true, 2),
                    3 => (true, false, true, 1),
                    4 => (false, false, false, 3),
                    5 => (true, false, false, 1),
                    _ => return None,
                };
                if !in_parent && !deleted && !created {
                    return None;
                }
                Some(Row {
                    id: id(n),
                    deleted,
                    created,
                    revisit,
                    stamp: version as i64,
                    body: body(n, version),
                })
            })
            .collect()
    }

    /// The reference, from the rule itself: the later fetch of an Id wins, and a revisited
    /// record the parent holds as it is (or a deletion of one it never had) is no change.
    fn expected(rows: &[Row]) -> (Vec<Versioned>, ChangeCounts) {
        let parent = parent_records();
        let last: BTreeMap<&str, &Row> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut counts = ChangeCounts::default();
        let mut changes = Vec::new();
        for (id, row) in last {
            let held = parent.get(id);
            let same = match row.deleted {
                true => held.is_none(),
                false => held == Some(&row.body),
            };
            if row.revisit && same {
                continue;
            }
            counts.count(match (row.deleted, row.created) {
                (false, true) => Kind::Added,
                (false, false) => Kind::Modified,
                (true, false) => Kind::Removed,
                (true, true) => Kind::DeletedNew,
            });
            changes.push((id.to_string(), (!row.deleted).then(|| row.body.clone())));
        }
        (changes, counts)
    }

    /// A delta is cut into segments of about a MiB, whatever the run changed: a search reads
    /// a block of its records back from one segment.
    #[test]
    fn a_delta_is_cut_at_the_delta_segment_size() {
        let (_dir, store) = crate::store::temporary();
        let mut writer = DeltaWriter::new(&store, "Account", None, 0, usize::MAX);
        let text = "x".repeat(1000);
        for n in 0..3000 {
            writer
                .push(Row {
                    id: id(n),
                    deleted: false,
                    created: true,
                    revisit: false,
                    stamp: 2,
                    body: format!("{{\"n\":{n},\"text\":\"{text}\"}}").into_bytes(),
                })
                .expect("push");
        }
        let segments = writer.finish().expect("finish").segments;
        let largest = segments.iter().map(|s| s.bytes).max().unwrap_or(0);
        assert!(segments.len() >= 3, "{} segments", segments.len());
        assert!(
            largest <= (crate::snapshot::segment::DELTA_TARGET_BYTES + 2048) as u64,
            "{largest}"
        );
    }

    /// Rows of an object with no CreatedDate say nothing of creation: the parent does.
    #[rstest]
    fn without_creation_dates_the_parent_tells_an_addition_from_a_modification(
        #[values(false, true)] unstamped: bool,
    ) {
        let (_dir, store) = crate::store::temporary();
        let mut sink = SegmentSink::new(&store, "Link");
        for n in [1, 2] {
            sink.push(&id(n), Some(&body(n, 1))).expect("parent record");
        }
        let parent = ObjectEntry {
            base: sink.finish().expect("parent"),
            ..ObjectEntry::default()
        };
        let row = |n: u64, deleted: bool| Row {
            id: id(n),
            deleted,
            created: false,
            revisit: false,
            stamp: 2,
            body: body(n, 2),
        };
        let writer = DeltaWriter::new(&store, "Link", Some(&parent), 0, usize::MAX);
        let mut writer = match unstamped {
            true => writer.creation_unstamped(),
            false => writer,
        };
        // Edited, deleted, made since, made and deleted since.
        for r in [row(1, false), row(2, true), row(3, false), row(4, true)] {
            writer.push(r).expect("push");
        }
        let counts = writer.finish().expect("finish").counts;
        let expected = match unstamped {
            true => (1, 1, 2, 1),
            // Rows are taken at their word: every one a change to a record the parent held.
            false => (0, 2, 2, 2),
        };
        assert_eq!(
            (
                counts.added,
                counts.modified,
                counts.deleted,
                counts.removed
            ),
            expected
        );
    }

    #[rstest]
    #[case::ascending("ascending", false)]
    #[case::page_fetched_again("page fetched again", true)]
    #[case::descending("descending", true)]
    #[case::interleaved("interleaved", true)]
    fn the_delta_holds_what_the_last_fetch_of_each_record_changed_in_any_arrival_order(
        #[case] order: &str,
        #[case] merges: bool,
        #[values(usize::MAX, 4096)] sort_memory: usize,
        #[values(false, true)] parent_lists_versions: bool,
    ) {
        let (_dir, store) = crate::store::temporary();
        let mut sink = SegmentSink::new(&store, "Account");
        let mut listed = RecentVersions::since(i64::MIN);
        for (id, body) in parent_records() {
            sink.push(&id, Some(&body)).expect("parent record");
            listed.note(&Row {
                id,
                deleted: false,
                created: false,
                revisit: false,
                stamp: 1,
                body,
            });
        }
        let listed = listed.finish().expect("a short list");
        let parent = ObjectEntry {
            base: sink.finish().expect("parent"),
            recent: parent_lists_versions
                .then(|| store.put_blob("recent", &listed.encode()).expect("list")),
            ..ObjectEntry::default()
        };
        let rows = crate::snapshot::arrival::arriving(ascending(), order);
        let mut writer = DeltaWriter::new(&store, "Account", Some(&parent), 0, sort_memory);
        for r in rows.clone() {
            writer.push(r).expect("push");
        }
        assert_eq!(writer.has_late_rows(), merges);
        let delta = writer.finish().expect("finish");
        let written = ObjectEntry {
            base: delta.segments,
            ..ObjectEntry::default()
        };
        let read: Vec<Versioned> = ObjectReader::changes(&store, &written)
            .map(|r| r.expect("read"))
            .collect();
        let (want, counts) = expected(&rows);
        assert!(counts.added > 0 && counts.modified > 0 && counts.removed > 0);
        assert!(
            counts.deleted > counts.removed,
            "some created rows are deleted"
        );
        assert!(want.len() < rows.len(), "some revisits are no change");
        assert_eq!(delta.counts, counts);
        assert_eq!(read, want);
    }
}
