//! Writing an object's new base while its records are still arriving. Sources usually return
//! records in Id order (Salesforce's Bulk results do, though nothing promises it), and then
//! there is nothing to sort: each record goes straight into a segment, and the download,
//! the sealing and the next page overlap. Records that come out of order (a page fetched
//! again after it broke off, or a source with another order) are set aside in a [`RowSorter`]
//! and merged in at the end; the merge wins over what was written directly, as the later fetch.

use super::arrival::ArrivalOrder;
use super::manifest::{ObjectEntry, SegmentRef};
use super::reader::ObjectReader;
use super::sorter::Row;
use super::writer::SegmentSink;
use crate::store::{Store, StoreError};

/// A new base, written.
#[derive(Debug)]
pub struct Base {
    pub segments: Vec<SegmentRef>,
    pub records: u64,
}

pub struct BaseWriter {
    store: Store,
    object: String,
    direct: SegmentSink,
    order: ArrivalOrder,
    written: u64,
}

impl BaseWriter {
    /// `sort_memory` bounds what out-of-order rows hold in memory before spilling.
    pub fn new(store: &Store, object: &str, sort_memory: usize) -> BaseWriter {
        BaseWriter {
            store: store.clone(),
            object: object.to_string(),
            direct: SegmentSink::new(store, object),
            order: ArrivalOrder::new(sort_memory),
            written: 0,
        }
    }

    /// Takes one fetched row; a deleted one only says the record is not in the base.
    pub fn push(&mut self, row: Row) -> Result<(), StoreError> {
        if !self.order.in_order(&row.id) {
            return self.order.set_aside(row);
        }
        if !row.deleted {
            self.direct.push(&row.id, Some(&row.body))?;
            self.written += 1;
        }
        self.order.passed(row.id);
        Ok(())
    }

    /// Whether some rows came out of order (and `finish` merges).
    pub fn has_late_rows(&self) -> bool {
        self.order.has_late_rows()
    }

    pub fn finish(self) -> Result<Base, StoreError> {
        let direct = self.direct.finish()?;
        let Some(late) = self.order.into_late() else {
            return Ok(Base {
                segments: direct,
                records: self.written,
            });
        };
        let written = ObjectEntry {
            base: direct,
            ..ObjectEntry::default()
        };
        let mut earlier = ObjectReader::new(&self.store, &self.object, &written);
        let mut later = late.finish()?;
        let mut out = SegmentSink::new(&self.store, &self.object);
        let mut records = 0;
        let mut a = earlier.next().transpose()?;
        let mut b = later.next().transpose()?;
        loop {
            match (&a, &b) {
                (None, None) => break,
                (Some((id, body)), next) if next.as_ref().is_none_or(|row| *id < row.id) => {
                    out.push(id, Some(body))?;
                    records += 1;
                    a = earlier.next().transpose()?;
                }
                // Fetched again later: the later row (below) decides.
                (Some((id, _)), Some(row)) if *id == row.id => {
                    a = earlier.next().transpose()?;
                }
                _ => {
                    if let Some(row) = b.take()
                        && !row.deleted
                    {
                        out.push(&row.id, Some(&row.body))?;
                        records += 1;
                    }
                    b = later.next().transpose()?;
                }
            }
        }
        Ok(Base {
            segments: out.finish()?,
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::sorter::RowSorter;
    use rstest::rstest;

    fn row(n: u64, version: u64, deleted: bool) -> Row {
        Row {
            id: format!("001{n:015}"),
            deleted,
            created: false,
            revisit: false,
            stamp: version as i64,
            body: format!("{{\"n\":{n},\"v\":{version}}}").into_bytes(),
        }
    }

    /// The reference: a sorter over everything (the later fetch of an Id wins), deletions out.
    fn expected(rows: &[Row]) -> Vec<(String, Vec<u8>)> {
        let mut sorter = RowSorter::new(usize::MAX);
        for r in rows {
            sorter.push(r.clone()).expect("push");
        }
        sorter
            .finish()
            .expect("finish")
            .map(|r| r.expect("row"))
            .filter(|r| !r.deleted)
            .map(|r| (r.id, r.body))
            .collect()
    }

    #[rstest]
    #[case::ascending("ascending", false)]
    #[case::page_fetched_again("page fetched again", true)]
    #[case::descending("descending", true)]
    #[case::interleaved("interleaved", true)]
    fn the_base_holds_the_last_fetch_of_each_record_in_any_arrival_order(
        #[case] order: &str,
        #[case] merges: bool,
        #[values(usize::MAX, 4096)] sort_memory: usize,
    ) {
        let (_dir, store) = crate::store::temporary();
        let ascending = (0..3000).map(|n| row(n, 1, n % 97 == 5)).collect();
        let rows = crate::snapshot::arrival::arriving(ascending, order);
        let mut writer = BaseWriter::new(&store, "Account", sort_memory);
        for r in rows.clone() {
            writer.push(r).expect("push");
        }
        assert_eq!(writer.has_late_rows(), merges);
        let base = writer.finish().expect("finish");
        let entry = ObjectEntry {
            base: base.segments,
            ..ObjectEntry::default()
        };
        let read: Vec<(String, Vec<u8>)> = ObjectReader::new(&store, "Account", &entry)
            .map(|r| r.expect("read"))
            .collect();
        let want = expected(&rows);
        assert_eq!(base.records, want.len() as u64);
        assert_eq!(read, want);
    }
}
