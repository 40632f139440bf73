//! Manifests: loading a config repository from a work tree or a git revision, YAML with
//! positions, schema and semantic checks, and diagnostics.

pub mod diagnostic;
pub mod load;
pub mod model;
pub mod reference;
pub mod render;
pub mod rules;
pub mod schema;
pub mod span;
pub mod tree;
pub mod workflows;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity};
pub use load::{LoadedConfig, LoadedRestore, LoadedTask, load};
pub use render::{Format, Summary};
pub use tree::ConfigTree;
