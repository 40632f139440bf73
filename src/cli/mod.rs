//! The command line: arguments (`args`) turned into each command's options in one place,
//! `run` carrying the command out to an `ExitStatus`, and the signals that stop it. The
//! binary (`src/main.rs`) only calls `main`.

pub mod args;
mod groups;
mod manual;
mod output;
mod paint;
mod progress;
mod shared;
mod signals;
mod terminal;
mod values;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::commands::apply::{ApplyOptions, apply};
use crate::commands::auth::{LoginOptions, login};
use crate::commands::check::{CheckOptions, check};
use crate::commands::demo::{DemoOptions, demo};
use crate::commands::diff::{DiffFormat, DiffOptions, diff};
use crate::commands::export::{ExportFormat, ExportOptions, export};
use crate::commands::forget::{ForgetOptions, forget};
use crate::commands::init::{InitOptions, init};
use crate::commands::plan_comment::{PlanCommentOptions, plan_comment};
use crate::commands::prune::{PruneOptions, UnlockOptions};
use crate::commands::repair::{RepairOptions, repair};
use crate::commands::report::{ReportOptions, report as html_report};
use crate::commands::restore::{MetadataRestoreOptions, RestoreOptions, restore, restore_metadata};
use crate::commands::scaffold::{AddOptions, add_salesforce};
use crate::commands::schema::schema;
use crate::commands::search::{SearchOptions, search};
use crate::commands::sim::{ServeOptions, serve};
use crate::commands::snapshots::{SnapshotsOptions, snapshots};
use crate::commands::status::{StatusOptions, status};
use crate::commands::validate::{ValidateOptions, validate};
use crate::commands::{Report, key, prune};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::manifest::Format;
use crate::manifest::model::Environment;
use crate::ops::check::ReadData;
use crate::plan::{PlanOptions, plan, render as plan_render};
use crate::project::store_access::process_env;
use crate::reconcile::Interrupt;
use crate::store::keys::KdfParams;
use output::{declined, fail, go_ahead, print, print_for_people, show, write_parts};
use shared::{parse_at, project_dir, runtime, usage};
use terminal::{confirm_on_terminal, store_choice};

use args::{
    AddCommand, AuthCommand, Cli, Command, DiffFormatArg, EnvironmentArg, ExportFormatArg,
    ExportOutputArg, KeyCommand, LegacyDir, ModeArg, OutputFormat, PlanFormat, SimCommand,
};

/// Parses the command line, runs the command, and ends with its exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Failure.into()
            } else {
                ExitStatus::Success.into()
            };
        }
    };
    paint::choose(cli.talk.color.enabled(), cli.talk.color.enabled_on_stderr());
    // Clap has checked the arguments: `--format json` here is the option, whatever the command.
    let arguments: Vec<String> = std::env::args().collect();
    let json = arguments
        .windows(2)
        .any(|pair| pair[0] == "--format" && pair[1] == "json")
        || arguments.iter().any(|a| a == "--format=json");
    output::errors_as_json(json);
    progress::install_notices(cli.talk.quiet, json);
    terminal::install_passphrase_prompts();
    let interrupt = Interrupt::default();
    // The simulator's server stops on Ctrl-C by itself.
    if !matches!(cli.command, Command::Sim { .. }) {
        let graceful = matches!(cli.command, Command::Apply(_)).then(|| interrupt.clone());
        signals::watch(graceful);
    }
    let status = run(cli, &interrupt).unwrap_or_else(|e| fail(&e));
    // Locks still held by threads that outlived the command (a stopped backup's sealers).
    crate::store::lock::release_all();
    status.into()
}

/// Carries out the command; what it prints goes to stdout, and the error (if any) is the
/// caller's to show.
pub fn run(cli: Cli, interrupt: &Interrupt) -> Result<ExitStatus, Error> {
    let Cli {
        project,
        talk,
        command,
    } = cli;
    let progress =
        |json: bool| progress::reporter(progress::Style::choose(talk.quiet, json), talk.verbose);
    let env = &process_env;
    let no_dir = || LegacyDir { dir: None };
    match command {
        Command::Demo(args) => {
            let (progress, _sampling) = progress(false);
            let options = DemoOptions {
                records: args.records,
                keep: args.keep,
                progress,
            };
            let mut stdout = std::io::stdout();
            runtime()?.block_on(demo(&options, &mut stdout))?;
            Ok(ExitStatus::Success)
        }
        Command::Validate(args) => {
            let options = ValidateOptions {
                dir: project_dir(&project, args.legacy)?,
                rev: args.rev,
                format: args.format,
                color: talk.color.enabled(),
            };
            let outcome = validate(&options)?;
            print(&outcome.output);
            Ok(ExitStatus::from_ok(outcome.is_valid()))
        }
        Command::PlanComment(args) => {
            let token = process_env("GITHUB_TOKEN").ok_or_else(|| {
                usage(
                    "GITHUB_TOKEN is not set".into(),
                    "give the step `env: GITHUB_TOKEN: ${{ github.token }}`",
                )
            })?;
            let options = PlanCommentOptions {
                repository: args.repository,
                pull_request: args.pr,
                parts: args.parts,
                api_url: process_env("GITHUB_API_URL")
                    .unwrap_or_else(|| "https://api.github.com".into()),
                token,
            };
            let outcome = runtime()?.block_on(plan_comment(&options))?;
            Ok(show(&outcome, args.output.format))
        }
        Command::Plan(args) => {
            let dir = project_dir(&project, args.legacy)?;
            let (mut plan, config) = plan(&PlanOptions {
                dir: dir.clone(),
                base: args.base,
                at: parse_at(args.at.as_deref())?,
            })?;
            // A matrix lists due tasks only; a restore's own plan is not part of it.
            let matrix = matches!(args.format, PlanFormat::Matrix);
            if !config.has_errors() && !matrix && plan.pending_restores() > 0 {
                runtime()?.block_on(crate::commands::restore_manifests::preview(
                    &mut plan, &config, &dir, env,
                ));
            }
            if config.has_errors() {
                let summary = crate::manifest::render::Summary::count(
                    &config.diagnostics,
                    config.files,
                    config.task_files,
                );
                print(&crate::manifest::render::render(
                    Format::Text,
                    &config.diagnostics,
                    &config.sources,
                    summary,
                    false,
                ));
                return Ok(ExitStatus::Failure);
            }
            match args.format {
                PlanFormat::Text => print_for_people(&plan_render::text(&plan)),
                PlanFormat::Markdown => {
                    let parts = plan_render::markdown(&plan, &dir).map_err(|problem| {
                        usage(
                            format!("the plan comment cannot be rendered: {problem}"),
                            "fix the template, or remove it to use the built-in one",
                        )
                    })?;
                    if let Some(out) = &args.comment_dir {
                        write_parts(out, &parts)?;
                    }
                    print(&parts.join("\n---\n"));
                }
                PlanFormat::Json => print(&plan_render::json(&plan)),
                // A matrix is for a workflow to read, not a verdict on the change.
                PlanFormat::Matrix => {
                    print(&plan_render::matrix(&plan));
                    return Ok(ExitStatus::Success);
                }
            }
            Ok(plan.exit_status())
        }
        Command::Apply(args) => {
            let (progress, sampling) = progress(args.output.format == OutputFormat::Json);
            let options = ApplyOptions {
                progress,
                allow_dirty: args.allow_dirty,
                wait: args.wait.wait,
                interrupt: interrupt.clone(),
                dir: project_dir(&project, args.legacy)?,
                tasks: args.only.tasks,
                force: args.now,
                dry_run: args.dry_run,
                at: parse_at(args.at.as_deref())?,
                fail_on_alert: args.fail_on_alert,
            };
            let outcome = runtime()?.block_on(apply(&options, env));
            // The bars are gone before the outcome is printed.
            drop(sampling);
            Ok(show(&outcome?, args.output.format))
        }
        Command::Status(args) => {
            let options = StatusOptions {
                dir: project_dir(&project, args.legacy)?,
                tasks: args.only.tasks,
                check_connection: args.check_connection,
                at: None,
            };
            let outcome = runtime()?.block_on(status(&options, env))?;
            Ok(show(&outcome, args.output.format))
        }
        Command::Diff(args) => {
            let for_people = args.format == DiffFormatArg::Text;
            let text = diff(
                &DiffOptions {
                    dir: project_dir(&project, no_dir())?,
                    task: args.of.task,
                    from: args.from,
                    to: args.to,
                    object: args.object,
                    values: args.values,
                    format: match args.format {
                        DiffFormatArg::Text => DiffFormat::Text,
                        DiffFormatArg::Json => DiffFormat::Json,
                        DiffFormatArg::Markdown => DiffFormat::Markdown,
                    },
                },
                env,
            )?;
            match for_people {
                true => print_for_people(&text),
                false => print(&text),
            }
            Ok(ExitStatus::Success)
        }
        Command::Search(args) => {
            let hits = search(
                &SearchOptions {
                    dir: project_dir(&project, no_dir())?,
                    task: args.of.task,
                    query: args.query,
                    object: args.object,
                    field: args.field,
                    snapshot: args.snapshot,
                    deleted: args.deleted,
                    limit: args.limit,
                },
                env,
            )?;
            Ok(show(&hits, args.output.format))
        }
        Command::Restore(args) => {
            use std::io::IsTerminal;
            let ask = args.apply && !args.yes;
            if ask && !std::io::stdin().is_terminal() {
                return Err(usage(
                    "restore --apply asks before it writes into the org, and there is no terminal to ask on".into(),
                    "add --yes to carry out the plan without asking (as in CI), or run without --apply to see the plan",
                ));
            }
            if !args.metadata.is_empty() {
                let options = MetadataRestoreOptions {
                    dir: project_dir(&project, no_dir())?,
                    task: args.task,
                    snapshot: args.snapshot,
                    components: args.metadata,
                    to_task: args.to_task,
                    apply: args.apply || args.yes,
                    wait: args.wait.wait,
                    confirm: ask.then_some(confirm_on_terminal as fn(&str) -> bool),
                };
                let outcome = runtime()?.block_on(restore_metadata(&options, env))?;
                return Ok(show(&outcome, args.output.format));
            }
            let (restore_progress, _sampling) = progress(args.output.format == OutputFormat::Json);
            let options = RestoreOptions {
                dir: project_dir(&project, no_dir())?,
                task: args.task,
                snapshot: args.snapshot,
                object: args.object,
                ids: args.ids,
                filters: args.filters,
                fields: args.fields,
                to_task: args.to_task,
                with_children: args.with_children,
                mode: match args.mode {
                    ModeArg::Both => crate::restore::Mode::Both,
                    ModeArg::CreateMissing => crate::restore::Mode::CreateMissing,
                    ModeArg::UpdateExisting => crate::restore::Mode::UpdateExisting,
                },
                apply: args.apply || args.yes,
                wait: args.wait.wait,
                confirm: ask.then_some(confirm_on_terminal as fn(&str) -> bool),
                manifest: None,
                progress: restore_progress,
            };
            let outcome = runtime()?.block_on(restore(&options, env))?;
            Ok(show(&outcome, args.output.format))
        }
        Command::Report(args) => {
            let options = ReportOptions {
                dir: project_dir(&project, no_dir())?,
                task: args.of.task,
                out: args.out,
            };
            Ok(show(&html_report(&options, env)?, args.output.format))
        }
        Command::Export(args) => {
            let records_as = args
                .format
                .records_format(args.records_as, args.metadata || args.files)?;
            let options = ExportOptions {
                dir: project_dir(&project, no_dir())?,
                task: args.of.task,
                snapshot: args.snapshot,
                object: args.object,
                format: match records_as {
                    _ if args.metadata => ExportFormat::Metadata,
                    _ if args.files => ExportFormat::Files,
                    Some(ExportFormatArg::Csv) => ExportFormat::Csv,
                    Some(ExportFormatArg::Jsonl) | None => ExportFormat::Jsonl,
                },
                out: args.out,
            };
            let said = match args.format {
                ExportOutputArg::Json => OutputFormat::Json,
                _ => OutputFormat::Text,
            };
            Ok(show(&export(&options, env)?, said))
        }
        Command::Snapshots(args) => {
            let list = snapshots(
                &SnapshotsOptions {
                    dir: project_dir(&project, args.legacy)?,
                    tasks: args.only.tasks,
                },
                env,
            )?;
            Ok(show(&list, args.output.format))
        }
        Command::Init(args) => {
            let dir = project_dir(&project, args.legacy)?;
            let store = store_choice(&dir, args.store, args.s3_endpoint, args.s3_region)
                .map_err(|problem| {
                    usage(
                        format!("--store {problem}"),
                        "git keeps backups on this repository's remote; s3://BUCKET/PREFIX in a bucket; local:PATH in a directory",
                    )
                })?;
            let options = InitOptions {
                dir,
                store,
                label: args.label,
                kdf: KdfParams::default(),
            };
            Ok(show(&init(&options, env)?, args.output.format))
        }
        Command::Add {
            source:
                AddCommand::Salesforce {
                    name,
                    environment,
                    id,
                    output,
                },
        } => {
            let options = AddOptions {
                dir: project_dir(&project, no_dir())?,
                name,
                environment: match environment {
                    EnvironmentArg::Production => Environment::Production,
                    EnvironmentArg::Sandbox => Environment::Sandbox,
                },
                id,
            };
            Ok(show(&add_salesforce(&options)?, output.format))
        }
        Command::Key { command } => match command {
            KeyCommand::List { legacy, output } => Ok(show(
                &key::list(&project_dir(&project, legacy)?, env)?,
                output.format,
            )),
            KeyCommand::Add {
                legacy,
                label,
                output,
            } => Ok(show(
                &key::add(
                    &project_dir(&project, legacy)?,
                    &label,
                    KdfParams::default(),
                    env,
                )?,
                output.format,
            )),
            KeyCommand::Remove {
                id,
                legacy,
                confirm,
                output,
            } => {
                let dir = project_dir(&project, legacy)?;
                if !go_ahead(confirm.yes, || {
                    Ok(format!(
                        "Key file {id} will be removed: its passphrase will no longer open the store."
                    ))
                })? {
                    return Ok(declined());
                }
                Ok(show(&key::remove(&dir, &id, env)?, output.format))
            }
            KeyCommand::Raw { legacy, output } => Ok(show(
                &key::raw(&project_dir(&project, legacy)?, env)?,
                output.format,
            )),
        },
        Command::Check(args) => {
            let read_data = match args.read_data.as_deref().map(str::parse::<ReadData>) {
                None => ReadData::None,
                Some(Ok(subset)) => subset,
                Some(Err(problem)) => {
                    return Err(usage(
                        format!("--read-data {problem}"),
                        "give all, a share such as 10%, or a part such as 1/7",
                    ));
                }
            };
            let options = CheckOptions {
                dir: project_dir(&project, args.legacy)?,
                read_data,
            };
            let outcome = check(&options, env)?;
            Ok(show(&outcome, args.output.format))
        }
        Command::Forget(args) => {
            let mut options = ForgetOptions {
                dir: project_dir(&project, args.legacy)?,
                tasks: args.only.tasks,
                dry_run: true,
                snapshots: args.snapshots,
                wait: args.wait.wait,
            };
            if !args.dry_run && !go_ahead(args.confirm.yes, || Ok(forget(&options, env)?.text()))? {
                return Ok(declined());
            }
            options.dry_run = args.dry_run;
            Ok(show(&forget(&options, env)?, args.output.format))
        }
        Command::Repair(args) => {
            let mut options = RepairOptions {
                dir: project_dir(&project, args.legacy)?,
                dry_run: true,
                wait: args.wait.wait,
            };
            if !args.dry_run && !go_ahead(args.confirm.yes, || Ok(repair(&options, env)?.text()))? {
                return Ok(declined());
            }
            options.dry_run = args.dry_run;
            Ok(show(&repair(&options, env)?, args.output.format))
        }
        Command::Prune(args) => {
            let mut options = PruneOptions {
                dir: project_dir(&project, args.legacy)?,
                dry_run: true,
                wait: args.wait.wait,
            };
            if !args.dry_run
                && !go_ahead(args.confirm.yes, || Ok(prune::prune(&options, env)?.text()))?
            {
                return Ok(declined());
            }
            options.dry_run = args.dry_run;
            Ok(show(&prune::prune(&options, env)?, args.output.format))
        }
        Command::Unlock(args) => {
            let options = UnlockOptions {
                dir: project_dir(&project, args.legacy)?,
                lock: args.lock,
                force: args.force,
            };
            // Stale locks are safe to remove; live ones fail the runs holding them.
            if args.force
                && !go_ahead(args.confirm.yes, || {
                    Ok("--force removes live locks too: the runs holding them will fail rather than commit.".into())
                })?
            {
                return Ok(declined());
            }
            Ok(show(&prune::unlock(&options, env)?, args.output.format))
        }
        Command::Auth {
            command:
                AuthCommand::Login {
                    task,
                    port,
                    no_browser,
                    timeout,
                    output,
                },
        } => {
            let options = LoginOptions {
                dir: project_dir(&project, no_dir())?,
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
            let outcome = runtime()?.block_on(login(&options, env, &show))?;
            Ok(self::show(&outcome, output.format))
        }
        Command::Completions { shell } => {
            print(&manual::completions(shell));
            Ok(ExitStatus::Success)
        }
        Command::Man { out } => manual::man(out.as_deref()),
        Command::Version { output } => {
            Ok(show(&crate::commands::version::version(), output.format))
        }
        Command::Schema { kind } => {
            print(&schema(kind));
            Ok(ExitStatus::Success)
        }
        Command::Sim {
            command: SimCommand::Serve(args),
        } => {
            let port = args.port;
            let options = ServeOptions {
                port,
                records: args.records,
                seed: args.seed,
                extra_metadata: args.extra_metadata,
                sandbox: args.sandbox,
                bulk_delay_ms: args.bulk_delay_ms,
                latency_ms: args.latency_ms,
                api_limit: args.api_limit,
                jwt_certificate: args.jwt_cert,
                tls: args.tls,
                ca_file: args.ca_file,
            };
            runtime()?.block_on(serve(options, print)).map_err(|e| {
                usage(
                    format!("the simulator could not start: {e}"),
                    &format!(
                        "if the port ({port}) is taken, pick another with --port (0 for any free one)"
                    ),
                )
            })?;
            Ok(ExitStatus::Success)
        }
    }
}
