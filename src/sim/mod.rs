//! The Salesforce simulator: a faithful local org (see ../shared/reference/salesforce-api.md) for
//! tests, benchmarks and the demo. Used only by tests, `cairn demo` and `cairn sim serve`.

pub mod bulk;
pub mod catalog;
pub mod ids;
pub mod oauth;
pub mod org;
pub mod render;
pub mod rest;
pub mod server;
pub mod soql;
pub mod time;
