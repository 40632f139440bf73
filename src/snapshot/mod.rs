//! Snapshots: an object's records as canonical JSON sorted by Id, in sealed segments. A full
//! snapshot writes base segments; an incremental one writes only upserts and tombstones since
//! its parent; reading merges base and deltas in Id order, streaming.

pub mod arrival;
pub mod base;
pub mod columns;
mod compaction;
pub mod components;
pub mod delta;
pub mod files;
pub mod ids_lookup;
pub(crate) mod json_fields;
pub mod manifest;
pub mod reader;
pub mod recent;
pub mod segment;
pub mod sorter;
pub mod writer;

pub use manifest::{ObjectEntry, Outcome, SnapshotManifest, Source, Window};
pub use reader::ObjectReader;
pub use writer::{Change, SnapshotWriter};
