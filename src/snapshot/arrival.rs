//! Rows usually arrive in Id order, the store's order, and can then be written at once; the
//! few that do not (a page fetched again after it broke off, a source with another order) are
//! set aside, sorted with bounded memory, for the writer to merge in at the end.

use super::sorter::{Row, RowSorter};
use crate::store::StoreError;

pub struct ArrivalOrder {
    /// The largest Id passed so far: a row past it is still in order.
    highest: Option<String>,
    late: Option<RowSorter>,
    sort_memory: usize,
}

impl ArrivalOrder {
    /// `sort_memory` bounds what late rows hold in memory before spilling.
    pub fn new(sort_memory: usize) -> ArrivalOrder {
        ArrivalOrder {
            highest: None,
            late: None,
            sort_memory,
        }
    }

    /// Whether a row with this Id can be written at once.
    pub fn in_order(&self, id: &str) -> bool {
        self.highest.as_deref().is_none_or(|h| h < id)
    }

    /// Notes that the row with this Id was taken in order (written or not).
    pub fn passed(&mut self, id: String) {
        self.highest = Some(id);
    }

    /// Keeps a row that came out of order for the end.
    pub fn set_aside(&mut self, row: Row) -> Result<(), StoreError> {
        let memory = self.sort_memory;
        self.late
            .get_or_insert_with(|| RowSorter::new(memory))
            .push(row)
    }

    pub fn has_late_rows(&self) -> bool {
        self.late.is_some()
    }

    /// The rows set aside, if any.
    pub fn into_late(self) -> Option<RowSorter> {
        self.late
    }
}

/// Rows in Id order as a source might send them instead: `order` names the shape.
#[cfg(test)]
pub(crate) fn arriving(rows: Vec<Row>, order: &str) -> Vec<Row> {
    match order {
        "ascending" => rows,
        // A page broke off two thirds in and came again from halfway, with one record edited
        // and one deleted in between.
        "page fetched again" => {
            let (cut, again) = (rows.len() * 2 / 3, rows.len() / 2);
            let mut out = rows[..cut].to_vec();
            out.extend(rows[again..].iter().cloned().enumerate().map(|(i, mut r)| {
                if i == 3 {
                    r.body = b"{\"edited\":true}".to_vec();
                    r.revisit = false;
                    r.stamp += 1;
                }
                if i == 4 {
                    r.deleted = true;
                }
                r
            }));
            out
        }
        "descending" => rows.into_iter().rev().collect(),
        "interleaved" => {
            let (even, odd): (Vec<Row>, Vec<Row>) = rows
                .into_iter()
                .partition(|r| r.id.ends_with(['0', '2', '4', '6', '8']));
            even.into_iter().chain(odd).collect()
        }
        other => panic!("no order {other}"),
    }
}
