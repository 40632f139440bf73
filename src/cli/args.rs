//! The command line as clap reads it: one struct of arguments per subcommand, and the options
//! they share (`ProjectArgs`: the config directory, given the same way everywhere).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::commands::schema::SchemaKind;
use crate::manifest::Format;

pub use super::groups::{
    AddCommand, AuthCommand, EnvironmentArg, KeyCommand, ServeArgs, SimCommand,
};
pub use super::values::*;

#[derive(Debug, clap::Parser)]
#[command(
    name = "cairn",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CAIRN_COMMIT"), " ", env!("CAIRN_COMMIT_DATE"), ")"),
    about = "Backup-as-code for SaaS data, Salesforce first"
)]
pub struct Cli {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub talk: Talk,
    #[command(subcommand)]
    pub command: Command,
}

/// How much a command says on stderr while it works.
#[derive(Debug, Args)]
pub struct Talk {
    /// Say nothing while working: no progress, only the outcome and errors.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Say more while working: a line as each object ends, and why it is fetched as it is.
    #[arg(long, short = 'v', global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Colour what is printed for people: auto (on a terminal, unless NO_COLOR is set),
    /// always or never.
    #[arg(long, value_enum, global = true, default_value_t = Color::Auto, value_name = "WHEN")]
    pub color: Color,
}

/// Where the config repository is, for every subcommand that reads one.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// The config repository: the directory holding cairn.yaml and tasks/ (default: the
    /// current directory).
    #[arg(long = "dir", short = 'C', value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
}

/// The directory as scripts written before `--dir` give it: a last positional argument,
/// still read (and not shown in help) by the subcommands that took it.
#[derive(Debug, Args)]
pub struct LegacyDir {
    #[arg(id = "positional_dir", value_name = "DIR", hide = true)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole loop on a simulated org; no account needed.
    ///
    /// A simulated org, apply, changes, apply, diff, search, restore.
    Demo(DemoArgs),
    /// Create the encrypted store of a config repository and its first key file.
    ///
    /// In a directory without cairn.yaml, writes a new config repository first, with the store
    /// chosen by --store (asked on a terminal). The passphrase comes from the variable named by
    /// `encryption.passphraseEnv` (CAIRN_PASSPHRASE); a raw key in `encryption.keyEnv`
    /// (CAIRN_KEY) becomes the master key. A git store is pushed to the remote at once.
    Init(InitArgs),
    /// Add a backup task to the config repository.
    Add {
        #[command(subcommand)]
        source: AddCommand,
    },
    /// Connect a task to its org.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Check a config repository's manifests against the schemas and rules.
    ///
    /// Exits 0 when every manifest is valid, 1 with diagnostics otherwise.
    Validate(ValidateArgs),
    /// Show what `apply` would change; needs no credentials.
    ///
    /// Compares the manifests at a base revision with the work tree and the recorded state.
    /// Restore manifests (restores/*.yaml) not carried out yet are listed too; where the store
    /// key and the target task's credentials are set, each with its own plan, in counts.
    ///
    /// Exits 0 with no changes, 2 with changes (a pending restore is one), 1 on errors, a
    /// refused change or a restore that cannot run as written.
    Plan(PlanArgs),
    /// Back up the due tasks and commit the observed state to the state branch.
    ///
    /// Applies retention after each backup; one task failing never stops the others. Then
    /// carries out each restore manifest (restores/*.yaml) not carried out before, once, and
    /// records it in state/<task>/restores/<id>.yaml.
    ///
    /// Exits 0 when every task succeeded (or was not due), 3 when one was partial (or a
    /// restore wrote only some records), 1 when one failed (or a restore could not run or
    /// wrote none), 130 when interrupted.
    Apply(ApplyArgs),
    /// One row per task: connection, health, last backup, next due, API calls.
    Status(StatusArgs),
    /// List snapshots with time, outcome and record count.
    Snapshots(SnapshotsArgs),
    /// What changed between two snapshots: + added, - deleted, M modified records.
    ///
    /// FROM and TO are snapshot ids (or prefixes), latest, latest~N, or dates; by default
    /// latest~1 and latest. Data is decrypted here and written nowhere.
    Diff(DiffArgs),
    /// Search every backup of a task, including records deleted since.
    Search(SearchArgs),
    /// Put records from a snapshot back into an org: shows the plan, --apply carries it out.
    ///
    /// Choose records with --object (all of its records), --id, or --where FIELD=VALUE.
    /// Existing records are updated field by field (only --fields, when given); deleted ones
    /// still in the Recycle Bin are undeleted with their original Ids, and those purged from it
    /// are created again, parents first, with lookups remapped to the new Ids.
    ///
    /// Exits 0 when done (or planned), 3 when some records failed, 1 when all did.
    Restore(RestoreArgs),
    /// Write a snapshot's records to files, one per object, as CSV or JSON lines.
    Export(ExportArgs),
    /// Write a self-contained HTML report of a task: records over time, changes, API calls.
    Report(ReportArgs),
    /// Verify the store: its structure, and with --read-data its data.
    ///
    /// Exits 0 when no errors are found, 1 otherwise.
    Check(CheckArgs),
    /// Make what `check` found damaged consistent again: snapshots keep what is whole and
    /// lose (as partial, saying so) what is not; the next apply backs up the lost part again.
    ///
    /// Runs alone, as prune does. Reads every blob the snapshots name.
    Repair(RepairArgs),
    /// Apply each task's retention policy: forget the snapshots it does not keep.
    Forget(ForgetArgs),
    /// Delete the data no snapshot refers to any more (after forget, or an interrupted backup).
    ///
    /// Runs alone: it waits (up to --wait) for running backups and forgets to finish.
    Prune(PruneArgs),
    /// Remove stale locks: those whose process is gone, or that were not refreshed in time.
    ///
    /// Stale locks are also taken over by the next command that needs them; live locks are
    /// removed only with --force.
    Unlock(UnlockArgs),
    /// Manage the key files that open the store.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Post a plan's comment parts on a pull request, one sticky comment per part.
    ///
    /// Edits cairn's comments in place, adds missing parts and deletes parts a longer, older
    /// plan left. Reads GITHUB_TOKEN, and GITHUB_API_URL (default https://api.github.com).
    /// The GitHub Action runs it after `plan`.
    PlanComment(PlanCommentArgs),
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
    /// Print a shell's completion script: `cairn completions bash > /etc/bash_completion.d/cairn`.
    ///
    /// zsh: into a directory on $fpath as _cairn; fish: ~/.config/fish/completions/cairn.fish;
    /// PowerShell: dot-source it from $PROFILE.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one per command into --out.
    ///
    /// `cairn man | man -l -` reads it; `cairn man --out /usr/local/share/man/man1` installs it.
    Man {
        /// Write cairn.1 and a page per command (cairn-apply.1, ...) into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// The version, the commit it was built from and the target: what a bug report needs.
    Version {
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Records in the simulated org.
    #[arg(long, default_value_t = 20_000)]
    pub records: usize,
    /// Keep the config repository and store in this (new or empty) directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    /// Validate the manifests as committed at this git revision (branch, tag, commit)
    /// instead of the files on disk.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    /// The base revision (default: the merge base with the default branch).
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Judge what is due at this time (ISO 8601) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// With --format markdown: also write each part of the pull-request comment to its
    /// own file in DIR (part-001.md, ...), for `cairn plan-comment`.
    #[arg(long, value_name = "DIR")]
    pub comment_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanCommentArgs {
    /// The repository, owner/name (GITHUB_REPOSITORY on a runner).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repository: String,
    /// The pull request's number.
    #[arg(long, value_name = "N")]
    pub pr: u64,
    /// The parts, in order (written by `cairn plan --format markdown --comment-dir`).
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    #[command(flatten)]
    pub output: Output,
}

/// How a command's outcome is printed.
#[derive(Debug, Args)]
pub struct Output {
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// The tasks a command works on: all when none is named.
#[derive(Debug, Args)]
pub struct OnlyTasks {
    /// Only this task (repeatable).
    #[arg(long = "task", value_name = "ID")]
    pub tasks: Vec<String>,
}

/// The task whose snapshots a command reads.
#[derive(Debug, Args)]
pub struct OfTask {
    /// The task (needed when several have snapshots).
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
}

/// Whether a command that deletes may go ahead without asking: on a terminal it shows what it
/// will do and asks; scripts and CI, with no one to ask, go ahead as invoked.
#[derive(Debug, Args)]
pub struct Confirm {
    /// Go ahead without asking on a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// How long a command waits for others holding the store.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait this long (90s, 5m, 1h) for running backups, prunes or forgets to finish before
    /// giving up.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub wait: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    #[command(flatten)]
    pub only: OnlyTasks,
    /// Run the chosen tasks now, due or not.
    #[arg(long)]
    pub now: bool,
    /// Say what would run, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Act as if it were this time (ISO 8601), for replays and tests.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Exit 1 when a data-loss alert fires (so a CI check fails).
    #[arg(long)]
    pub fail_on_alert: bool,
    /// Run even though manifests have uncommitted changes; the state records the revision
    /// as `<commit>-dirty`.
    #[arg(long)]
    pub allow_dirty: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    #[command(flatten)]
    pub only: OnlyTasks,
    /// Log in to each org now instead of showing the last recorded connection; exits 1 when a
    /// task is Disconnected.
    #[arg(long)]
    pub check_connection: bool,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older snapshot (default latest~1).
    pub from: Option<String>,
    /// The newer snapshot (default latest).
    pub to: Option<String>,
    #[command(flatten)]
    pub of: OfTask,
    /// Only this object.
    #[arg(long, value_name = "NAME")]
    pub object: Option<String>,
    /// Show field values, before -> after.
    #[arg(long)]
    pub values: bool,
    #[arg(long, value_enum, default_value_t = DiffFormatArg::Text)]
    pub format: DiffFormatArg,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to find (tantivy query syntax: AND, OR, "phrases").
    pub query: String,
    #[command(flatten)]
    pub of: OfTask,
    /// Only this object.
    #[arg(long, value_name = "NAME")]
    pub object: Option<String>,
    /// Only matches in this field.
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,
    /// Only this snapshot (id, latest, latest~N or a date).
    #[arg(long, value_name = "S")]
    pub snapshot: Option<String>,
    /// Only records that were deleted since.
    #[arg(long)]
    pub deleted: bool,
    /// At most this many hits.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The task whose snapshot to restore from.
    #[arg(long, value_name = "ID")]
    pub task: String,
    /// The snapshot: id, latest (default), latest~N or a date.
    #[arg(long, value_name = "S")]
    pub snapshot: Option<String>,
    /// Only this object.
    #[arg(long, value_name = "NAME")]
    pub object: Option<String>,
    /// A metadata component by Type:FullName, globs allowed (repeatable): deployed back,
    /// after the org validates the package.
    #[arg(long = "metadata", value_name = "TYPE:NAME", conflicts_with_all = ["object", "ids", "filters", "fields", "with_children"])]
    pub metadata: Vec<String>,
    /// A record by Id (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    /// Records whose FIELD equals VALUE (repeatable: all must match).
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    pub filters: Vec<String>,
    /// Restore only these fields of existing records (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "F,G")]
    pub fields: Vec<String>,
    /// Which records to write: both (the default) brings back what is gone and sets back
    /// what differs; create-missing only brings back; update-existing only sets back.
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    pub mode: ModeArg,
    /// Also restore the records whose lookups point at the chosen ones (their contacts,
    /// opportunities, cases...), and theirs, to DEPTH levels (default 1).
    #[arg(long, value_name = "DEPTH", num_args = 0..=1, default_missing_value = "1")]
    pub with_children: Option<u32>,
    /// Restore into this task's org (such as a sandbox) instead.
    #[arg(long, value_name = "ID")]
    pub to_task: Option<String>,
    /// Carry out the plan: on a terminal, after showing it and asking.
    #[arg(long)]
    pub apply: bool,
    /// Carry out the plan without asking (what scripts and CI give; implies --apply).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub of: OfTask,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub of: OfTask,
    /// The snapshot: id, latest (default), latest~N or a date.
    #[arg(long, value_name = "S")]
    pub snapshot: Option<String>,
    /// Only this object.
    #[arg(long, value_name = "NAME")]
    pub object: Option<String>,
    /// Records as JSON lines (the default) or CSV, one file per object.
    #[arg(long = "as", value_enum, value_name = "FORMAT", conflicts_with_all = ["metadata", "files"])]
    pub records_as: Option<ExportFormatArg>,
    /// What is said of the export: text for people, json for scripts. (csv and jsonl are
    /// read as --as, as scripts written before --as give them.)
    #[arg(long, value_enum, default_value_t = ExportOutputArg::Text)]
    pub format: ExportOutputArg,
    /// The metadata components instead, as files in Salesforce's metadata format with a
    /// package.xml (what `sf project deploy start --metadata-dir` deploys).
    #[arg(long, conflicts_with_all = ["object", "files"])]
    pub metadata: bool,
    /// The file bodies instead (of ContentVersion, Attachment, Document, or the --object
    /// given), each as `OBJECT/ID/NAME`, with an index of them all in `files.csv`.
    #[arg(long)]
    pub files: bool,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    #[command(flatten)]
    pub only: OnlyTasks,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    /// A name for the first key file, such as whose passphrase it is.
    #[arg(long, default_value = "initial")]
    pub label: String,
    /// Where the backups go: git (the ref refs/cairn/store of this repository, pushed to its
    /// remote; the default in a git repository), s3://BUCKET/PREFIX (large orgs), or
    /// local:PATH (a directory that outlives the machine running apply).
    #[arg(long, value_name = "STORE")]
    pub store: Option<String>,
    /// With an s3:// store: the endpoint of an S3-compatible service.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// With an s3:// store: the bucket's region.
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    /// Decrypt and verify blobs: all (the default), a share such as 10%, or a part n/m of
    /// m runs that together read everything.
    #[arg(long, value_name = "SUBSET", num_args = 0..=1, default_missing_value = "all")]
    pub read_data: Option<String>,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    /// Say what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub confirm: Confirm,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    #[command(flatten)]
    pub only: OnlyTasks,
    /// List what would be kept and removed, and why, without removing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Forget this snapshot (its id or a unique prefix), whatever the policy says
    /// (repeatable).
    #[arg(long = "snapshot", value_name = "ID")]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub confirm: Confirm,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    /// Count what would be deleted, without deleting.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub confirm: Confirm,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub legacy: LegacyDir,
    /// Only this lock and the other locks of its run (its path, as a "locked by" error
    /// shows it).
    #[arg(long, value_name = "ID")]
    pub lock: Option<String>,
    /// Remove live locks too; their runs then fail rather than commit.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub confirm: Confirm,
    #[command(flatten)]
    pub output: Output,
}

/// `--wait`'s durations: 90s, 5m, 1h, or seconds.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    crate::time::parse_duration_ms(text)
        .map(|ms| std::time::Duration::from_millis(ms as u64))
        .ok_or_else(|| format!("{text:?} is not a duration; write it like 90s, 5m or 1h"))
}
