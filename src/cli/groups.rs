//! The subcommands that group others (`key`, `add`, `auth`, `sim`) and their arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::args::{LegacyDir, Output};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a key file; its passphrase comes from CAIRN_NEW_PASSPHRASE.
    Add {
        #[command(flatten)]
        legacy: LegacyDir,
        /// A name for the key file, such as whose passphrase it is.
        #[arg(long)]
        label: String,
        #[command(flatten)]
        output: Output,
    },
    /// List the key files.
    List {
        #[command(flatten)]
        legacy: LegacyDir,
        #[command(flatten)]
        output: Output,
    },
    /// Remove a key file (never the last one).
    Remove {
        /// The key file's id, as `cairn key list` shows it.
        id: String,
        #[command(flatten)]
        legacy: LegacyDir,
        #[command(flatten)]
        confirm: super::args::Confirm,
        #[command(flatten)]
        output: Output,
    },
    /// Print the raw master key, for a CI secret (CAIRN_KEY). Handle it like the passphrase.
    Raw {
        #[command(flatten)]
        legacy: LegacyDir,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// A Salesforce org: writes tasks/<id>.yaml with sensible defaults and comments.
    Salesforce {
        /// The task's display name, such as "Acme Production".
        #[arg(long)]
        name: String,
        /// Production or sandbox; fixed for the task's life.
        #[arg(long, value_enum)]
        environment: EnvironmentArg,
        /// The task's id (default: a slug of the name).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnvironmentArg {
    Production,
    Sandbox,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Approve access in a browser (OAuth web flow with PKCE) and get the refresh token a
    /// `source.auth.refreshToken` task needs, with how to store it as a secret.
    ///
    /// The connected app's callback URL must be http://127.0.0.1:<port>/callback.
    Login {
        /// The task to connect.
        #[arg(long = "task", value_name = "ID")]
        task: String,
        /// Port of the 127.0.0.1 callback listener; 0 picks a free one.
        #[arg(long, default_value_t = crate::commands::auth::DEFAULT_PORT)]
        port: u16,
        /// Print the URL only; do not try to open a browser.
        #[arg(long)]
        no_browser: bool,
        /// Seconds to wait for the approval.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve a generated org on 127.0.0.1 until interrupted, printing the URL and credentials.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// How many records to generate, spread across Account, Contact, Opportunity, Case,
    /// Lead, Task and Invoice__c.
    #[arg(long, default_value_t = 10_000)]
    pub records: usize,
    /// Seed of the data generator: the same seed always gives the same org.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Metadata components to generate beyond the org's own set (flows, and reports in
    /// folders of 100), for a large org's metadata.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub extra_metadata: usize,
    /// Make the org a sandbox (Organization.IsSandbox = true).
    #[arg(long)]
    pub sandbox: bool,
    /// Milliseconds a Bulk API 2.0 query job takes to complete.
    #[arg(long, default_value_t = 0)]
    pub bulk_delay_ms: u64,
    /// Milliseconds every answer takes beyond its work, as a distant org's do (100 to 300
    /// from a CI runner).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// The org's daily API request allocation.
    #[arg(long, default_value_t = 100_000)]
    pub api_limit: u64,
    /// The connected app's certificate (or RSA public key) in PEM, for the JWT bearer
    /// grant.
    #[arg(long, value_name = "FILE")]
    pub jwt_cert: Option<PathBuf>,
    /// Serve HTTPS, with a certificate from a CA minted at start (for clients that only
    /// speak https); the CA certificate is written to --ca-file.
    #[arg(long)]
    pub tls: bool,
    /// Where --tls writes the CA certificate clients must trust.
    #[arg(long, value_name = "FILE", default_value = "cairn-sim-ca.pem")]
    pub ca_file: PathBuf,
}
