//! A batch of creates around its sending: written down in the run's journal before it goes
//! (what it creates, and since when the source may have made it), and after (what it made),
//! so a killed run's creates are found again rather than made twice.

use std::collections::BTreeMap;

use super::{CLOCK_MARGIN_MS, Created, PendingBatch, RestoreError, RestoreResult, RunJournal};
use crate::source::{Connector, RecordWrite, Upload, WriteOutcome};

/// One object's creates under way: where their new Ids, outcomes and journal go.
pub(super) struct Creating<'a, 'j> {
    pub object: &'a str,
    pub mapped: &'a mut BTreeMap<String, String>,
    pub result: &'a mut RestoreResult,
    pub journal: &'a mut RunJournal<'j>,
}

impl Creating<'_, '_> {
    /// Creates records in the connector's batches, each written down before and after.
    pub(super) async fn batches<C: Connector>(
        &mut self,
        connector: &C,
        old_ids: &[String],
        records: &[RecordWrite],
    ) -> Result<(), RestoreError> {
        let size = connector.write_batch().max(1);
        for (old_ids, records) in old_ids.chunks(size).zip(records.chunks(size)) {
            self.journal
                .sending(pending_batch(connector, self.object, old_ids, records))?;
            let mut answers = connector.write_records(records).await?;
            answers.resize_with(records.len(), || {
                Err("no result returned for this record".into())
            });
            let outcomes = old_ids.iter().cloned().zip(answers).collect();
            settle(
                self.object,
                outcomes,
                self.mapped,
                self.result,
                self.journal,
            )?;
        }
        Ok(())
    }

    /// Creates one record with its file body, in a call of its own.
    pub(super) async fn with_body<C: Connector>(
        &mut self,
        connector: &C,
        old_id: String,
        record: RecordWrite,
        upload: &Upload,
    ) -> Result<(), RestoreError> {
        let old_ids = std::slice::from_ref(&old_id);
        self.journal.sending(pending_batch(
            connector,
            self.object,
            old_ids,
            std::slice::from_ref(&record),
        ))?;
        let outcome = connector
            .create_with_body(self.object, &record.fields, upload)
            .await?;
        settle(
            self.object,
            vec![(old_id, outcome)],
            self.mapped,
            self.result,
            self.journal,
        )
    }
}

/// The journal's note of a batch about to be sent: what it creates, and since when the source
/// may have made it.
fn pending_batch<C: Connector>(
    connector: &C,
    object: &str,
    old_ids: &[String],
    records: &[RecordWrite],
) -> PendingBatch {
    let since = connector
        .server_time_bounds()
        .map_or_else(crate::time::now_ms, |(earliest, _)| earliest)
        - CLOCK_MARGIN_MS;
    PendingBatch {
        object: object.to_string(),
        since,
        records: old_ids
            .iter()
            .cloned()
            .zip(records.iter().map(|r| r.fields.clone()))
            .collect(),
    }
}

/// Takes a batch's outcomes: new Ids mapped from old, failures reported, and what it made
/// written down.
fn settle(
    object: &str,
    outcomes: Vec<(String, WriteOutcome)>,
    mapped: &mut BTreeMap<String, String>,
    result: &mut RestoreResult,
    journal: &mut RunJournal<'_>,
) -> Result<(), RestoreError> {
    result.progress.add(outcomes.len() as u64);
    let mut made = Vec::new();
    for (old_id, outcome) in outcomes {
        match outcome {
            Ok(new) => {
                mapped.insert(old_id.clone(), new.clone());
                made.push((
                    old_id.clone(),
                    Created {
                        object: object.to_string(),
                        new_id: new.clone(),
                    },
                ));
                result.created.push((object.to_string(), old_id, new));
            }
            Err(why) => result.failed.push((object.to_string(), old_id, why)),
        }
    }
    journal.settled(made)?;
    Ok(())
}
