//! The values options take: output formats, restore modes, colour; and how `export --format`
//! is read beside `--as`.

use clap::ValueEnum;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    /// A pull-request comment (with a hidden marker; parts split by a line of `---`).
    Markdown,
    Json,
    /// The due tasks as a GitHub Actions matrix.
    Matrix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormatArg {
    Text,
    /// JSON lines: one per changed record, then the statistics.
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    Csv,
    Jsonl,
}

/// `export --format`: how the outcome is said, or (hidden, as before `--as`) the records'
/// format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportOutputArg {
    Text,
    Json,
    #[value(hide = true)]
    Csv,
    #[value(hide = true)]
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Both,
    CreateMissing,
    UpdateExisting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Color {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to colour what goes to stdout.
    pub fn enabled(self) -> bool {
        use std::io::IsTerminal;
        self.for_stream(std::io::stdout().is_terminal())
    }

    /// Whether to colour what goes to stderr.
    pub fn enabled_on_stderr(self) -> bool {
        use std::io::IsTerminal;
        self.for_stream(std::io::stderr().is_terminal())
    }

    fn for_stream(self, terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            // NO_COLOR set to anything but the empty string turns colour off (no-color.org).
            Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

impl ExportOutputArg {
    /// The records' format from `--as`, or from `--format csv|jsonl` as scripts written before
    /// `--as` give it; None leaves the default (or --metadata, --files).
    pub fn records_format(
        self,
        records_as: Option<ExportFormatArg>,
        metadata_or_files: bool,
    ) -> Result<Option<ExportFormatArg>, Error> {
        let legacy = match self {
            ExportOutputArg::Csv => Some(ExportFormatArg::Csv),
            ExportOutputArg::Jsonl => Some(ExportFormatArg::Jsonl),
            ExportOutputArg::Text | ExportOutputArg::Json => None,
        };
        let usage = |message: &str, next: &str| Error::Usage {
            message: message.into(),
            next: next.into(),
        };
        match (records_as, legacy) {
            (Some(given), Some(old)) if given != old => Err(usage(
                "--as and --format name two record formats",
                "give the records' format once, as --as csv or --as jsonl",
            )),
            (_, Some(_)) if metadata_or_files => Err(usage(
                "a record format was given with --metadata or --files",
                "those export files as they are; leave out --format csv/jsonl",
            )),
            (given, old) => Ok(given.or(old)),
        }
    }
}
