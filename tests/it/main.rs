//! One integration-test binary for the product: each module is what used to be its own test
//! binary (linking the library with tantivy, git2 and aws-lc once instead of seventeen times),
//! and the fixtures they share are in `common`. The simulator's own tests are in crates/sim.
//!
//!     cargo test --test it                 # all of them
//!     cargo test --test it concurrency::   # one module

mod common;

mod action;
mod architecture;
mod auth_login;
mod backup;
mod cli;
mod concurrency;
mod connector;
mod corpus;
mod crash;
mod damage;
mod demo;
mod deploy;
mod diff;
mod files;
mod formats;
mod fuzz;
mod gitops;
mod jsonfile;
mod messages;
mod metadata;
mod progress;
mod prompts;
mod restore;
mod schema;
mod store;
mod store_cli;
