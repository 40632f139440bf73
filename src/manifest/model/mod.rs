//! Typed manifests. They are deserialised from the JSON value *after* the schema has accepted
//! it, so every user-facing error comes from the schema with a position; the model only adds
//! types.

mod repository;
mod restore;
mod task;

pub use repository::*;
pub use restore::*;
pub use task::*;
