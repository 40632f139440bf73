//! The `cairn` binary: command-line parsing and exit codes only.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use cairn::commands::apply::{ApplyOptions, apply};
use cairn::commands::auth::{LoginOptions, login};
use cairn::commands::check::{CheckOptions, check};
use cairn::commands::demo::{DemoOptions, demo};
use cairn::commands::diff::{DiffFormat, DiffOptions, diff};
use cairn::commands::export::{ExportFormat, ExportOptions, export};
use cairn::commands::forget::{ForgetOptions, forget};
use cairn::commands::init::{InitOptions, init};
use cairn::commands::plan_comment::{PlanCommentOptions, plan_comment};
use cairn::commands::repair::{RepairOptions, repair};
use cairn::commands::report::{ReportOptions, report as html_report};
use cairn::commands::restore::{RestoreOptions, restore};
use cairn::commands::scaffold::{AddOptions, StoreChoice, add_salesforce};
use cairn::commands::schema::{SchemaKind, schema};
use cairn::commands::search::{SearchOptions, search};
use cairn::commands::sim::{ServeOptions, serve};
use cairn::commands::snapshots::{SnapshotsOptions, snapshots};
use cairn::commands::status::{StatusOptions, status};
use cairn::commands::validate::{ValidateOptions, validate};
use cairn::commands::{key, prune};
use cairn::manifest::Format;
use cairn::ops::check::ReadData;
use cairn::plan::{PlanOptions, plan, render as plan_render};
use cairn::project::store_access::process_env;
use cairn::reconcile::{EXIT_INTERRUPTED, Interrupt};
use cairn::store::keys::KdfParams;

/// mimalloc: indexing for search spends a tenth of its time in glibc malloc's locks
/// (benches/search.rs: ~100k -> ~113k records/s on 2 cores).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes (ARCHITECTURE.md): 0 success, 1 error or invalid input, 2 plan has changes, 3 partial.
const EXIT_ERROR: u8 = 1;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Backup-as-code for SaaS data, Salesforce first"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole loop on a simulated org; no account needed.
    ///
    /// A simulated org, apply, changes, apply, diff, search, restore.
    Demo {
        /// Records in the simulated org.
        #[arg(long, default_value_t = 20_000)]
        records: usize,
        /// Keep the config repository and store in this (new or empty) directory.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
    /// Check a config repository's manifests against the schemas and rules.
    ///
    /// Exits 0 when every manifest is valid, 1 with diagnostics otherwise.
    Validate {
        /// The config repository: the directory holding cairn.yaml and tasks/.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Validate the manifests as committed at this git revision (branch, tag, commit)
        /// instead of the files on disk.
        #[arg(long, value_name = "REV")]
        rev: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Colour the text output.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
    },
    /// Show what `apply` would change; needs no credentials.
    ///
    /// Compares the manifests at a base revision with the work tree and the recorded state.
    ///
    /// Exits 0 with no changes, 2 with changes, 1 on errors or a refused change.
    Plan {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The base revision (default: the merge base with the default branch).
        #[arg(long, value_name = "REF")]
        base: Option<String>,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Judge what is due at this time (ISO 8601) instead of now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// With --format markdown: also write each part of the pull-request comment to its
        /// own file in DIR (part-001.md, ...), for `cairn plan-comment`.
        #[arg(long, value_name = "DIR")]
        comment_dir: Option<PathBuf>,
    },
    /// Post a plan's comment parts on a pull request, one sticky comment per part.
    ///
    /// Edits cairn's comments in place, adds missing parts and deletes parts a longer, older
    /// plan left. Reads GITHUB_TOKEN, and GITHUB_API_URL (default https://api.github.com).
    /// The GitHub Action runs it after `plan`.
    PlanComment {
        /// The repository, owner/name (GITHUB_REPOSITORY on a runner).
        #[arg(long, value_name = "OWNER/NAME")]
        repository: String,
        /// The pull request's number.
        #[arg(long, value_name = "N")]
        pr: u64,
        /// The parts, in order (written by `cairn plan --format markdown --comment-dir`).
        #[arg(required = true)]
        parts: Vec<PathBuf>,
    },
    /// Back up the due tasks and commit the observed state to the state branch.
    ///
    /// Applies retention after each backup; one task failing never stops the others.
    ///
    /// Exits 0 when every task succeeded (or was not due), 3 when one was partial, 1 when one
    /// failed.
    Apply {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Only this task (repeatable).
        #[arg(long = "task", value_name = "ID")]
        tasks: Vec<String>,
        /// Run the chosen tasks now, due or not.
        #[arg(long)]
        now: bool,
        /// Say what would run, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Act as if it were this time (ISO 8601), for replays and tests.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Exit 1 when a data-loss alert fires (so a CI check fails).
        #[arg(long)]
        fail_on_alert: bool,
        /// Run even though manifests have uncommitted changes; the state records the revision
        /// as `<commit>-dirty`.
        #[arg(long)]
        allow_dirty: bool,
        /// Wait this long (90s, 5m, 1h) for a prune, a forget, or another runner's apply of the
        /// same task to finish, before giving up on a task.
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
        wait: std::time::Duration,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// One row per task: connection, health, last backup, next due, API calls.
    Status {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Only this task (repeatable).
        #[arg(long = "task", value_name = "ID")]
        tasks: Vec<String>,
        /// Log in to each org now instead of showing the last recorded connection; exits 1 when a
        /// task is Disconnected.
        #[arg(long)]
        check_connection: bool,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// What changed between two snapshots: + added, - deleted, M modified records.
    ///
    /// FROM and TO are snapshot ids (or prefixes), latest, latest~N, or dates; by default
    /// latest~1 and latest. Data is decrypted here and written nowhere.
    Diff {
        /// The older snapshot (default latest~1).
        from: Option<String>,
        /// The newer snapshot (default latest).
        to: Option<String>,
        /// The config repository.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The task (needed when several have snapshots).
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// Only this object.
        #[arg(long, value_name = "NAME")]
        object: Option<String>,
        /// Show field values, before -> after.
        #[arg(long)]
        values: bool,
        #[arg(long, value_enum, default_value_t = DiffFormatArg::Text)]
        format: DiffFormatArg,
    },
    /// Search every backup of a task, including records deleted since.
    Search {
        /// Words to find (tantivy query syntax: AND, OR, "phrases").
        query: String,
        /// The config repository.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The task (needed when several have snapshots).
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// Only this object.
        #[arg(long, value_name = "NAME")]
        object: Option<String>,
        /// Only matches in this field.
        #[arg(long, value_name = "NAME")]
        field: Option<String>,
        /// Only this snapshot (id, latest, latest~N or a date).
        #[arg(long, value_name = "S")]
        snapshot: Option<String>,
        /// Only records that were deleted since.
        #[arg(long)]
        deleted: bool,
        /// At most this many hits.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Put records from a snapshot back into an org: shows the plan, --apply carries it out.
    ///
    /// Choose records with --object (all of its records), --id, or --where FIELD=VALUE.
    /// Existing records are updated field by field (only --fields, when given); deleted ones
    /// are created again, parents first, with lookups remapped to the new Ids.
    Restore {
        /// The config repository.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The task whose snapshot to restore from.
        #[arg(long, value_name = "ID")]
        task: String,
        /// The snapshot: id, latest (default), latest~N or a date.
        #[arg(long, value_name = "S")]
        snapshot: Option<String>,
        /// Only this object.
        #[arg(long, value_name = "NAME")]
        object: Option<String>,
        /// A record by Id (repeatable).
        #[arg(long = "id", value_name = "ID")]
        ids: Vec<String>,
        /// Records whose FIELD equals VALUE (repeatable: all must match).
        #[arg(long = "where", value_name = "FIELD=VALUE")]
        filters: Vec<String>,
        /// Restore only these fields of existing records (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "F,G")]
        fields: Vec<String>,
        /// Restore into this task's org (such as a sandbox) instead.
        #[arg(long, value_name = "ID")]
        to_task: Option<String>,
        /// Carry out the plan.
        #[arg(long, visible_alias = "yes")]
        apply: bool,
    },
    /// Write a self-contained HTML report of a task: records over time, changes, API calls.
    Report {
        /// The config repository.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The task (needed when several have snapshots).
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Write a snapshot's records to files, one per object, as CSV or JSON lines.
    Export {
        /// The config repository.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The task (needed when several have snapshots).
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// The snapshot: id, latest (default), latest~N or a date.
        #[arg(long, value_name = "S")]
        snapshot: Option<String>,
        /// Only this object.
        #[arg(long, value_name = "NAME")]
        object: Option<String>,
        #[arg(long, value_enum)]
        format: ExportFormatArg,
        /// The directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// List snapshots with time, outcome and record count.
    Snapshots {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Only this task (repeatable).
        #[arg(long = "task", value_name = "ID")]
        tasks: Vec<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Create the encrypted store of a config repository and its first key file.
    ///
    /// In a directory without cairn.yaml, writes a new config repository first, with the store
    /// chosen by --store (asked on a terminal). The passphrase comes from the variable named by
    /// `encryption.passphraseEnv` (CAIRN_PASSPHRASE); a raw key in `encryption.keyEnv`
    /// (CAIRN_KEY) becomes the master key. A git store is pushed to the remote at once.
    Init {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// A name for the first key file, such as whose passphrase it is.
        #[arg(long, default_value = "initial")]
        label: String,
        /// Where the backups go: git (the ref refs/cairn/store of this repository, pushed to its
        /// remote; the default in a git repository), s3://BUCKET/PREFIX (large orgs), or
        /// local:PATH (a directory that outlives the machine running apply).
        #[arg(long, value_name = "STORE")]
        store: Option<String>,
        /// With an s3:// store: the endpoint of an S3-compatible service.
        #[arg(long, value_name = "URL")]
        s3_endpoint: Option<String>,
        /// With an s3:// store: the bucket's region.
        #[arg(long, value_name = "REGION")]
        s3_region: Option<String>,
    },
    /// Add a backup task to the config repository.
    Add {
        #[command(subcommand)]
        source: AddCommand,
    },
    /// Manage the key files that open the store.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Verify the store: its structure, and with --read-data its data.
    ///
    /// Exits 0 when no errors are found, 1 otherwise.
    Check {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Decrypt and verify blobs: all (the default), a share such as 10%, or a part n/m of
        /// m runs that together read everything.
        #[arg(long, value_name = "SUBSET", num_args = 0..=1, default_missing_value = "all")]
        read_data: Option<String>,
    },
    /// Make what `check` found damaged consistent again: snapshots keep what is whole and
    /// lose (as partial, saying so) what is not; the next apply backs up the lost part again.
    ///
    /// Runs alone, as prune does. Reads every blob the snapshots name.
    Repair {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Say what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait this long (90s, 5m, 1h) for running backups to finish before giving up.
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
        wait: std::time::Duration,
    },
    /// Apply each task's retention policy: forget the snapshots it does not keep.
    Forget {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Only this task (repeatable).
        #[arg(long = "task", value_name = "ID")]
        tasks: Vec<String>,
        /// List what would be kept and removed, and why, without removing anything.
        #[arg(long)]
        dry_run: bool,
        /// Forget this snapshot (its id or a unique prefix), whatever the policy says
        /// (repeatable).
        #[arg(long = "snapshot", value_name = "ID")]
        snapshots: Vec<String>,
        /// Wait this long (90s, 5m, 1h) for running backups to finish before giving up.
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
        wait: std::time::Duration,
    },
    /// Delete the data no snapshot refers to any more (after forget, or an interrupted backup).
    ///
    /// Runs alone: it waits (up to --wait) for running backups and forgets to finish.
    Prune {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Count what would be deleted, without deleting.
        #[arg(long)]
        dry_run: bool,
        /// Wait this long (90s, 5m, 1h) for running backups to finish before giving up.
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
        wait: std::time::Duration,
    },
    /// Remove stale locks: those whose process is gone, or that were not refreshed in time.
    ///
    /// Stale locks are also taken over by the next command that needs them; live locks are
    /// removed only with --force.
    Unlock {
        /// The config repository.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Only this lock and the other locks of its run (its path, as a "locked by" error
        /// shows it).
        #[arg(long, value_name = "ID")]
        lock: Option<String>,
        /// Remove live locks too; their runs then fail rather than commit.
        #[arg(long)]
        force: bool,
    },
    /// Connect a task to its org.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Print an embedded JSON Schema (for editors and other tools).
    Schema {
        #[arg(value_enum)]
        kind: SchemaKind,
    },
    /// The built-in Salesforce simulator, a local org for trying cairn without an account.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Add a key file; its passphrase comes from CAIRN_NEW_PASSPHRASE.
    Add {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// A name for the key file, such as whose passphrase it is.
        #[arg(long)]
        label: String,
    },
    /// List the key files.
    List {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Remove a key file (never the last one).
    Remove {
        /// The key file's id, as `cairn key list` shows it.
        id: String,
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print the raw master key, for a CI secret (CAIRN_KEY). Handle it like the passphrase.
    Raw {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum AddCommand {
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
        /// The config repository.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum EnvironmentArg {
    Production,
    Sandbox,
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Approve access in a browser (OAuth web flow with PKCE) and get the refresh token a
    /// `source.auth.refreshToken` task needs, with how to store it as a secret.
    ///
    /// The connected app's callback URL must be http://127.0.0.1:<port>/callback.
    Login {
        /// The task to connect.
        #[arg(long = "task", value_name = "ID")]
        task: String,
        /// The config repository.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Port of the 127.0.0.1 callback listener; 0 picks a free one.
        #[arg(long, default_value_t = cairn::commands::auth::DEFAULT_PORT)]
        port: u16,
        /// Print the URL only; do not try to open a browser.
        #[arg(long)]
        no_browser: bool,
        /// Seconds to wait for the approval.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Serve a generated org on 127.0.0.1 until interrupted, printing the URL and credentials.
    Serve {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// How many records to generate, spread across Account, Contact, Opportunity, Case,
        /// Lead, Task and Invoice__c.
        #[arg(long, default_value_t = 10_000)]
        records: usize,
        /// Seed of the data generator: the same seed always gives the same org.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Make the org a sandbox (Organization.IsSandbox = true).
        #[arg(long)]
        sandbox: bool,
        /// Milliseconds a Bulk API 2.0 query job takes to complete.
        #[arg(long, default_value_t = 0)]
        bulk_delay_ms: u64,
        /// The org's daily API request allocation.
        #[arg(long, default_value_t = 100_000)]
        api_limit: u64,
        /// The connected app's certificate (or RSA public key) in PEM, for the JWT bearer
        /// grant.
        #[arg(long, value_name = "FILE")]
        jwt_cert: Option<PathBuf>,
        /// Serve HTTPS, with a certificate from a CA minted at start (for clients that only
        /// speak https); the CA certificate is written to --ca-file.
        #[arg(long)]
        tls: bool,
        /// Where --tls writes the CA certificate clients must trust.
        #[arg(long, value_name = "FILE", default_value = "cairn-sim-ca.pem")]
        ca_file: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlanFormat {
    Text,
    /// A pull-request comment (with a hidden marker; parts split by a line of `---`).
    Markdown,
    Json,
    /// The due tasks as a GitHub Actions matrix.
    Matrix,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiffFormatArg {
    Text,
    /// JSON lines: one per changed record, then the statistics.
    Json,
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormatArg {
    Csv,
    Jsonl,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

fn runtime() -> Result<tokio::runtime::Runtime, cairn::Error> {
    tokio::runtime::Runtime::new().map_err(|e| cairn::Error::Io {
        path: PathBuf::from("tokio runtime"),
        source: e,
    })
}

fn parse_at(at: Option<&str>) -> Result<Option<i64>, ExitCode> {
    match at {
        None => Ok(None),
        Some(text) => match cairn::time::parse_datetime(text) {
            Some(ms) => Ok(Some(ms)),
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "error: --at {text:?} is not an ISO 8601 time\n  help: write it like 2026-01-31T03:00:00Z"
                );
                Err(ExitCode::from(EXIT_ERROR))
            }
        },
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    Always,
    Never,
}

impl Color {
    fn enabled(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

/// The store `cairn init` writes into a new cairn.yaml: --store, else asked on a terminal,
/// else None (the default for the directory).
fn store_choice(
    dir: &std::path::Path,
    given: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
) -> Result<Option<StoreChoice>, String> {
    let text = match given {
        Some(text) => Some(text),
        None if !dir.join("cairn.yaml").exists() && std::io::stdin().is_terminal() => {
            let default = match StoreChoice::default_for(dir) {
                StoreChoice::Git => "git".to_string(),
                StoreChoice::Local(path) => format!("local:{path}"),
                StoreChoice::S3 { .. } => String::new(),
            };
            eprint!(
                "Where should the encrypted backups live?\n  git                 on this repository's remote (ref refs/cairn/store): nothing else to run\n  s3://BUCKET/PREFIX  in an S3 bucket: for large orgs\n  local:PATH          in a directory that outlives the machine running apply\nStore [{default}]: "
            );
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("could not be read: {e}"))?;
            let line = line.trim();
            (!line.is_empty()).then(|| line.to_string())
        }
        None => None,
    };
    let mut choice = text.map(|t| t.parse::<StoreChoice>()).transpose()?;
    if let Some(StoreChoice::S3 {
        endpoint: e,
        region: r,
        ..
    }) = &mut choice
    {
        *e = endpoint;
        *r = region;
    } else if endpoint.is_some() || region.is_some() {
        return Err("--s3-endpoint and --s3-region go with an s3:// store".into());
    }
    Ok(choice)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let interrupt = Interrupt::default();
    // The simulator's server stops on Ctrl-C by itself.
    if !matches!(cli.command, Command::Sim { .. }) {
        let graceful = matches!(cli.command, Command::Apply { .. }).then(|| interrupt.clone());
        watch_signals(graceful);
    }
    let code = run(cli.command, &interrupt);
    // Locks still held by threads that outlived the command (a stopped backup's sealers).
    cairn::store::lock::release_all();
    code
}

/// Ctrl-C and SIGTERM (how CI cancels a job) release the store's locks before the process
/// ends, so nothing stays locked. A command that can stop cleanly (`apply`) is asked to,
/// and records the run as interrupted; a second signal ends it at once.
fn watch_signals(graceful: Option<Interrupt>) {
    let _ = std::thread::Builder::new()
        .name("cairn-signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Some(mut signals) = Signals::watch() else {
                    return;
                };
                let mut first = true;
                while signals.next().await {
                    match (&graceful, first) {
                        (Some(interrupt), true) => {
                            eprintln!(
                                "interrupted: stopping the running backup and recording it as interrupted (press Ctrl-C again to quit at once)"
                            );
                            interrupt.trigger();
                            first = false;
                        }
                        _ => {
                            cairn::store::lock::release_all();
                            cairn::search::scratch::remove_all();
                            eprintln!("interrupted: the store's locks are released");
                            std::process::exit(i32::from(EXIT_INTERRUPTED));
                        }
                    }
                }
            });
        });
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn watch() -> Option<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Some(Signals {
                interrupt: signal(SignalKind::interrupt()).ok()?,
                terminate: signal(SignalKind::terminate()).ok()?,
            })
        }
        #[cfg(not(unix))]
        Some(Signals {})
    }

    /// The next signal; false when none can come any more.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            tokio::select! {
                got = self.interrupt.recv() => got.is_some(),
                got = self.terminate.recv() => got.is_some(),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

fn run(command: Command, interrupt: &Interrupt) -> ExitCode {
    match command {
        Command::Demo { records, keep } => {
            let options = DemoOptions { records, keep };
            let mut stdout = std::io::stdout();
            match runtime().and_then(|rt| rt.block_on(demo(&options, &mut stdout))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Validate {
            dir,
            rev,
            format,
            color,
        } => {
            let options = ValidateOptions {
                dir,
                rev,
                format,
                color: color.enabled(),
            };
            match validate(&options) {
                Ok(outcome) => {
                    print(&outcome.output);
                    if outcome.is_valid() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(EXIT_ERROR)
                    }
                }
                Err(e) => fail(&e),
            }
        }
        Command::PlanComment {
            repository,
            pr,
            parts,
        } => {
            let Some(token) = process_env("GITHUB_TOKEN") else {
                let _ = writeln!(
                    std::io::stderr(),
                    "error: GITHUB_TOKEN is not set\n  help: give the step `env: GITHUB_TOKEN: ${{{{ github.token }}}}`"
                );
                return ExitCode::from(EXIT_ERROR);
            };
            let options = PlanCommentOptions {
                repository,
                pull_request: pr,
                parts,
                api_url: process_env("GITHUB_API_URL")
                    .unwrap_or_else(|| "https://api.github.com".into()),
                token,
            };
            report(runtime().and_then(|rt| rt.block_on(plan_comment(&options))))
        }
        Command::Plan {
            dir,
            base,
            format,
            at,
            comment_dir,
        } => {
            let at = match parse_at(at.as_deref()) {
                Ok(at) => at,
                Err(code) => return code,
            };
            match plan(&PlanOptions {
                dir: dir.clone(),
                base,
                at,
            }) {
                Ok((plan, config)) => {
                    if config.has_errors() {
                        let summary = cairn::manifest::render::Summary::count(
                            &config.diagnostics,
                            config.files,
                            config.task_files,
                        );
                        let rendered = cairn::manifest::render::render(
                            Format::Text,
                            &config.diagnostics,
                            &config.sources,
                            summary,
                            false,
                        );
                        print(&rendered);
                        return ExitCode::from(EXIT_ERROR);
                    }
                    match format {
                        PlanFormat::Text => print(&plan_render::text(&plan)),
                        PlanFormat::Markdown => match plan_render::markdown(&plan, &dir) {
                            Ok(parts) => {
                                if let Some(out) = &comment_dir
                                    && let Err(e) = write_parts(out, &parts)
                                {
                                    return fail(&e);
                                }
                                print(&parts.join("\n---\n"))
                            }
                            Err(problem) => {
                                eprintln!(
                                    "error: the plan comment cannot be rendered: {problem}\n  fix the template, or remove it to use the built-in one"
                                );
                                return ExitCode::from(EXIT_ERROR);
                            }
                        },
                        PlanFormat::Json => print(&plan_render::json(&plan)),
                        PlanFormat::Matrix => print(&plan_render::matrix(&plan)),
                    }
                    if format == PlanFormat::Matrix {
                        return ExitCode::SUCCESS;
                    }
                    ExitCode::from(plan.exit_code())
                }
                Err(e) => fail(&e),
            }
        }
        Command::Apply {
            dir,
            tasks,
            now,
            dry_run,
            at,
            fail_on_alert,
            allow_dirty,
            wait,
            format,
        } => {
            let options = ApplyOptions {
                allow_dirty,
                wait,
                interrupt: interrupt.clone(),
                dir,
                tasks,
                force: now,
                dry_run,
                at,
                fail_on_alert,
            };
            let result = runtime().and_then(|rt| rt.block_on(apply(&options, &process_env)));
            match result {
                Ok(outcome) => {
                    match format {
                        OutputFormat::Text => print(&outcome.render()),
                        OutputFormat::Json => print(
                            &(serde_json::to_string_pretty(&outcome).unwrap_or_default() + "\n"),
                        ),
                    }
                    ExitCode::from(outcome.exit_code())
                }
                Err(e) => fail(&e),
            }
        }
        Command::Status {
            dir,
            tasks,
            check_connection,
            format,
        } => {
            let options = StatusOptions {
                dir,
                tasks,
                check_connection,
                json: format == OutputFormat::Json,
                at: None,
            };
            match runtime().and_then(|rt| rt.block_on(status(&options, &process_env))) {
                Ok(outcome) => {
                    print(&outcome.output);
                    ExitCode::from(outcome.exit_code())
                }
                Err(e) => fail(&e),
            }
        }
        Command::Diff {
            from,
            to,
            dir,
            task,
            object,
            values,
            format,
        } => report(diff(
            &DiffOptions {
                dir,
                task,
                from,
                to,
                object,
                values,
                format: match format {
                    DiffFormatArg::Text => DiffFormat::Text,
                    DiffFormatArg::Json => DiffFormat::Json,
                    DiffFormatArg::Markdown => DiffFormat::Markdown,
                },
            },
            &process_env,
        )),
        Command::Search {
            query,
            dir,
            task,
            object,
            field,
            snapshot,
            deleted,
            limit,
            format,
        } => report(search(
            &SearchOptions {
                dir,
                task,
                query,
                object,
                field,
                snapshot,
                deleted,
                limit,
                json: format == OutputFormat::Json,
            },
            &process_env,
        )),
        Command::Restore {
            dir,
            task,
            snapshot,
            object,
            ids,
            filters,
            fields,
            to_task,
            apply,
        } => {
            let options = RestoreOptions {
                dir,
                task,
                snapshot,
                object,
                ids,
                filters,
                fields,
                to_task,
                apply,
            };
            match runtime().and_then(|rt| rt.block_on(restore(&options, &process_env))) {
                Ok(outcome) => {
                    print(&outcome.output);
                    ExitCode::from(outcome.exit)
                }
                Err(e) => fail(&e),
            }
        }
        Command::Report { dir, task, out } => {
            report(html_report(&ReportOptions { dir, task, out }, &process_env))
        }
        Command::Export {
            dir,
            task,
            snapshot,
            object,
            format,
            out,
        } => report(export(
            &ExportOptions {
                dir,
                task,
                snapshot,
                object,
                format: match format {
                    ExportFormatArg::Csv => ExportFormat::Csv,
                    ExportFormatArg::Jsonl => ExportFormat::Jsonl,
                },
                out,
            },
            &process_env,
        )),
        Command::Snapshots { dir, tasks, format } => report(snapshots(
            &SnapshotsOptions {
                dir,
                tasks,
                json: format == OutputFormat::Json,
            },
            &process_env,
        )),
        Command::Init {
            dir,
            label,
            store,
            s3_endpoint,
            s3_region,
        } => {
            let store = match store_choice(&dir, store, s3_endpoint, s3_region) {
                Ok(store) => store,
                Err(problem) => {
                    eprintln!(
                        "error: --store {problem}\n  help: git keeps backups on this repository's remote; s3://BUCKET/PREFIX in a bucket; local:PATH in a directory"
                    );
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            let options = InitOptions {
                dir,
                store,
                label,
                kdf: KdfParams::default(),
            };
            report(init(&options, &process_env))
        }
        Command::Add {
            source:
                AddCommand::Salesforce {
                    name,
                    environment,
                    id,
                    dir,
                },
        } => {
            let options = AddOptions {
                dir,
                name,
                environment: match environment {
                    EnvironmentArg::Production => cairn::manifest::model::Environment::Production,
                    EnvironmentArg::Sandbox => cairn::manifest::model::Environment::Sandbox,
                },
                id,
            };
            report(add_salesforce(&options).map(|(_, next)| next))
        }
        Command::Key { command } => report(match command {
            KeyCommand::Add { dir, label } => {
                key::add(&dir, &label, KdfParams::default(), &process_env)
            }
            KeyCommand::List { dir } => key::list(&dir, &process_env),
            KeyCommand::Remove { id, dir } => key::remove(&dir, &id, &process_env),
            KeyCommand::Raw { dir } => key::raw(&dir, &process_env),
        }),
        Command::Check { dir, read_data } => {
            let read_data = match read_data.as_deref().map(str::parse::<ReadData>) {
                None => ReadData::None,
                Some(Ok(subset)) => subset,
                Some(Err(problem)) => {
                    eprintln!("error: --read-data {problem}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            match check(&CheckOptions { dir, read_data }, &process_env) {
                Ok(outcome) => {
                    print(&outcome.output);
                    if outcome.ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(EXIT_ERROR)
                    }
                }
                Err(e) => fail(&e),
            }
        }
        Command::Forget {
            dir,
            tasks,
            dry_run,
            snapshots,
            wait,
        } => report(forget(
            &ForgetOptions {
                dir,
                tasks,
                dry_run,
                snapshots,
                wait,
            },
            &process_env,
        )),
        Command::Repair { dir, dry_run, wait } => {
            report(repair(&RepairOptions { dir, dry_run, wait }, &process_env))
        }
        Command::Prune { dir, dry_run, wait } => {
            report(prune::prune(&dir, dry_run, wait, &process_env))
        }
        Command::Unlock { dir, lock, force } => {
            report(prune::unlock(&dir, lock.as_deref(), force, &process_env))
        }
        Command::Auth {
            command:
                AuthCommand::Login {
                    task,
                    dir,
                    port,
                    no_browser,
                    timeout,
                },
        } => {
            let options = LoginOptions {
                dir,
                task,
                port,
                open_browser: !no_browser,
                timeout: std::time::Duration::from_secs(timeout),
            };
            let show = |url: &str| {
                let _ = writeln!(
                    std::io::stderr(),
                    "Open this URL, sign in and choose Allow:\n\n  {url}\n\nWaiting for the approval..."
                );
            };
            let result = tokio::runtime::Runtime::new()
                .map_err(|e| cairn::Error::Io {
                    path: PathBuf::from("tokio runtime"),
                    source: e,
                })
                .and_then(|rt| rt.block_on(login(&options, &process_env, &show)));
            report(result)
        }
        Command::Schema { kind } => {
            print(&schema(kind));
            ExitCode::SUCCESS
        }
        Command::Sim {
            command:
                SimCommand::Serve {
                    port,
                    records,
                    seed,
                    sandbox,
                    bulk_delay_ms,
                    api_limit,
                    jwt_cert,
                    tls,
                    ca_file,
                },
        } => {
            let options = ServeOptions {
                port,
                records,
                seed,
                sandbox,
                bulk_delay_ms,
                api_limit,
                jwt_certificate: jwt_cert,
                tls,
                ca_file,
            };
            let served = tokio::runtime::Runtime::new().and_then(|rt| rt.block_on(serve(options)));
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!(
                        "error: the simulator could not start: {e}\n  help: if the port ({port}) is taken, pick another with --port (0 for any free one)"
                    );
                    ExitCode::from(EXIT_ERROR)
                }
            }
        }
    }
}

fn print(text: &str) {
    // A closed pipe (`cairn validate | head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Prints a command's output, or its error with what to do next.
/// Each comment part in its own file, numbered so they sort in order; parts of an earlier,
/// longer plan in the directory are removed.
fn write_parts(dir: &std::path::Path, parts: &[String]) -> Result<(), cairn::Error> {
    let io = |path: PathBuf| move |source| cairn::Error::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir.to_path_buf()))? {
        let path = entry.map_err(io(dir.to_path_buf()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("part-") && name.ends_with(".md") {
            std::fs::remove_file(&path).map_err(io(path.clone()))?;
        }
    }
    for (i, part) in parts.iter().enumerate() {
        let path = dir.join(format!("part-{:03}.md", i + 1));
        std::fs::write(&path, part).map_err(io(path.clone()))?;
    }
    Ok(())
}

fn report(result: Result<String, cairn::Error>) -> ExitCode {
    match result {
        Ok(output) => {
            print(&output);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `--wait`'s durations: 90s, 5m, 1h, or seconds.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    cairn::time::parse_duration_ms(text)
        .map(|ms| std::time::Duration::from_millis(ms as u64))
        .ok_or_else(|| format!("{text:?} is not a duration; write it like 90s, 5m or 1h"))
}

fn fail(error: &cairn::Error) -> ExitCode {
    // Not eprintln: a closed stderr must not turn an error into a panic.
    let _ = writeln!(
        std::io::stderr(),
        "error: {error}\n  help: {}",
        error.guidance()
    );
    ExitCode::from(EXIT_ERROR)
}
