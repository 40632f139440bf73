//! The Salesforce connector: OAuth (JWT bearer, refresh token), an API client that stays inside
//! the daily API budget, discovery, and full and incremental fetches into the store.

pub mod auth;
pub mod backup;
pub mod budget;
pub mod bulk_csv;
pub mod bulk_rows;
pub mod client;
pub mod connect;
pub mod discovery;
pub mod rest_page;
pub mod restore;

pub use auth::{Credentials, LoginConfig};
pub use budget::Budget;
pub use client::{SalesforceClient, SourceError};
