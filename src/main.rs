//! The `cairn` binary: command-line parsing and exit codes only.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use cairn::commands::schema::{SchemaKind, schema};
use cairn::commands::validate::{ValidateOptions, validate};
use cairn::manifest::Format;

/// Exit codes (DESIGN.md): 0 success, 1 error or invalid input, 2 plan has changes, 3 partial.
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
    /// Print an embedded JSON Schema (for editors and other tools).
    Schema {
        #[arg(value_enum)]
        kind: SchemaKind,
    },
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
    match cli.command {
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
        Command::Schema { kind } => {
            print(schema(kind));
            ExitCode::SUCCESS
        }
    }
}

fn print(text: &str) {
    // A closed pipe (`cairn validate | head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn fail(error: &cairn::Error) -> ExitCode {
    eprintln!("error: {error}\n  help: {}", error.guidance());
    ExitCode::from(EXIT_ERROR)
}
