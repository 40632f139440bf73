//! `cairn apply`: the backups (see [`crate::reconcile`]), then the restore manifests not carried
//! out before (see [`super::restore_manifests`]).

pub use crate::reconcile::{ApplyOptions, ApplyOutcome, RestoreRun};
pub use crate::state::restore_record::RestoreEnd;

use super::Report;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::project::Env;

/// Backups first: a restore then writes into an org whose state just before is in a snapshot.
pub async fn apply(options: &ApplyOptions, env: Env<'_>) -> Result<ApplyOutcome, Error> {
    let mut outcome = crate::reconcile::apply(options, env).await?;
    if !outcome.interrupted {
        super::restore_manifests::carry_out(options, env, &mut outcome).await?;
    }
    Ok(outcome)
}

impl Report for ApplyOutcome {
    fn text(&self) -> String {
        self.render()
    }

    fn exit_status(&self) -> ExitStatus {
        ApplyOutcome::exit_status(self)
    }
}
