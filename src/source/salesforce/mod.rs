//! The Salesforce connector: OAuth (JWT bearer, refresh token), an API client that stays inside
//! the daily API budget, discovery, and full and incremental fetches of canonical rows for the
//! backup engine (`crate::backup`), and restore's writes.

pub mod auth;
pub mod budget;
pub mod bulk_csv;
pub mod bulk_rows;
pub mod client;
pub mod connector;
pub mod discovery;
pub mod fetch;
pub mod links;
pub mod metadata;
pub mod rest_page;
pub mod restore;

pub use auth::{Credentials, Environment, LoginConfig};
pub use budget::Budget;
pub use client::SalesforceClient;
pub use connector::SalesforceConnector;
pub use fetch::FetchSettings;
pub use metadata::MetadataScope;
