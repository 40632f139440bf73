//! The Salesforce simulator: a faithful local org (see ../shared/reference/salesforce-api.md) for
//! tests, benchmarks and the demo. Used only by tests, `cairn demo` and `cairn sim serve`.

// An item is `pub` only when the crate exports it: the public surface is chosen, not accidental.
#![warn(unreachable_pub)]

pub mod admin;
pub mod batch;
pub mod blob;
pub mod bulk;
pub mod catalog;
mod columns;
pub mod composite;
pub mod faults;
pub mod files;
mod http1;
pub mod ids;
pub mod ingest;
pub mod metadata;
pub mod oauth;
pub mod org;
pub mod records;
pub mod render;
pub mod rest;
mod routes;
pub mod server;
pub mod soap;
pub mod soql;
pub mod sosl;
pub mod tls;
pub mod tooling;
pub mod tree;
pub mod write;
