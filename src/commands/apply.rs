//! `cairn apply`: see [`crate::reconcile`].

pub use crate::reconcile::{ApplyOptions, ApplyOutcome, apply};
