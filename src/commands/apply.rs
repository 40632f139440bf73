//! `cairn apply`: see [`crate::reconcile`].

pub use crate::reconcile::{ApplyOptions, ApplyOutcome, apply};

use super::Report;
use crate::exit::ExitStatus;

impl Report for ApplyOutcome {
    fn text(&self) -> String {
        self.render()
    }

    fn exit_status(&self) -> ExitStatus {
        ApplyOutcome::exit_status(self)
    }
}
