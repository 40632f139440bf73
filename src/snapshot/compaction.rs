//! Folding an object's layers when it has too many deltas. What the parent held is folded and
//! the run's own deltas stay on top of it, marked (`Folded`), so the diff against the parent
//! still reads only the change. The parent's deltas are folded into one delta while they hold
//! fewer records than a [`FOLD_INTO_BASE_AT`]th of the base (a cost that follows the change),
//! else with the base into a new base. Without the parent's layers under the run's (a full
//! fetch, no parent), everything becomes one new base.

use super::manifest::{Delta, Folded, ObjectEntry};
use super::reader::ObjectReader;
use super::writer::{SegmentSink, write_base};
use crate::store::{Store, StoreError};

/// The parent's deltas are folded with the base into a new base once they hold this fraction
/// of the base's records (1/4): below, rewriting the base would cost the size of the object for
/// a change of a fraction of it.
const FOLD_INTO_BASE_AT: u64 = 4;

/// `entry` (of the snapshot being written) with its layers folded; `parent` is the object's
/// entry in the parent snapshot. No more than `max_deltas` deltas are left.
pub(super) fn fold(
    store: &Store,
    object: &str,
    entry: &ObjectEntry,
    parent: Option<&ObjectEntry>,
    max_deltas: usize,
) -> Result<ObjectEntry, StoreError> {
    let parent = parent.filter(|parent| {
        entry.extends(parent)
            && !parent.deltas.is_empty()
            && entry.deltas.len() - parent.deltas.len() < max_deltas
    });
    let Some(parent) = parent else {
        let (base, count) = write_base(store, object, ObjectReader::new(store, object, entry))?;
        return Ok(ObjectEntry {
            base,
            base_records: count,
            deltas: Vec::new(),
            records: Some(count),
            folded: None,
            ..entry.clone()
        });
    };
    let in_deltas: u64 = parent.deltas.iter().map(|d| d.upserts + d.deletes).sum();
    let (base, base_records, mut deltas) = if in_deltas.saturating_mul(FOLD_INTO_BASE_AT)
        < parent.base_records
    {
        let deltas_only = ObjectEntry {
            base: Vec::new(),
            ..parent.clone()
        };
        let mut sink = SegmentSink::for_delta(store, object);
        let (mut upserts, mut deletes) = (0, 0);
        for change in ObjectReader::changes(store, &deltas_only) {
            let (id, body) = change?;
            sink.push(&id, body.as_deref())?;
            match body {
                Some(_) => upserts += 1,
                None => deletes += 1,
            }
        }
        let folded = Delta {
            upserts,
            deletes,
            segments: sink.finish()?,
        };
        (parent.base.clone(), parent.base_records, vec![folded])
    } else {
        let (base, count) = write_base(store, object, ObjectReader::new(store, object, parent))?;
        (base, count, Vec::new())
    };
    let folded = Folded {
        from: parent.layers_digest(),
        deltas: deltas.len(),
    };
    deltas.extend_from_slice(&entry.deltas[parent.deltas.len()..]);
    Ok(ObjectEntry {
        base,
        base_records,
        deltas,
        folded: Some(folded),
        ..entry.clone()
    })
}
