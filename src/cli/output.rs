//! What a command prints: its outcome in the format asked for, the plan comment's part files,
//! the question before a deletion, and an error with what to do next.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::OutputFormat;
use super::terminal;
use crate::commands::Report;
use crate::error::Error;
use crate::exit::ExitStatus;

pub(super) fn print(text: &str) {
    // A closed pipe (`cairn validate | head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Prints text for people: painted when stdout takes colour.
pub(super) fn print_for_people(text: &str) {
    match super::paint::stdout_painted() {
        true => print(&super::paint::paint(text)),
        false => print(text),
    }
}

/// Prints a command's outcome in the format asked for; its exit status follows.
pub(super) fn show(report: &impl Report, format: OutputFormat) -> ExitStatus {
    match format {
        OutputFormat::Text => print_for_people(&report.text()),
        OutputFormat::Json => print(&report.json()),
    }
    report.exit_status()
}

/// Each comment part in its own file, numbered so they sort in order; parts of an earlier,
/// longer plan in the directory are removed.
pub(super) fn write_parts(dir: &Path, parts: &[String]) -> Result<(), Error> {
    let io = |path: PathBuf| move |source| Error::Io { path, source };
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

/// Whether a deleting command goes ahead: at once with --yes or without a terminal (a script
/// or CI run is its own decision); on a terminal after showing `preview` and a yes.
pub(super) fn go_ahead(
    yes: bool,
    preview: impl FnOnce() -> Result<String, Error>,
) -> Result<bool, Error> {
    if yes || !terminal::attended() {
        return Ok(true);
    }
    let preview = preview()?;
    Ok(terminal::confirm(&preview, "Go ahead?"))
}

/// A deletion the person at the terminal declined.
pub(super) fn declined() -> ExitStatus {
    let _ = writeln!(std::io::stderr(), "not confirmed: nothing was changed");
    ExitStatus::Failure
}

/// Whether errors are said as JSON (`--format json`), for the script that asked for it.
static JSON_ERRORS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

pub(super) fn errors_as_json(json: bool) {
    let _ = JSON_ERRORS.set(json);
}

/// Shows an error with what to do next (on stderr; as `{"error", "help", "exitCode"}` with
/// `--format json`); the run fails.
pub(super) fn fail(error: &Error) -> ExitStatus {
    if JSON_ERRORS.get().copied().unwrap_or(false) {
        let value = serde_json::json!({
            "error": error.to_string(),
            "help": error.guidance(),
            "exitCode": 1,
        });
        let _ = writeln!(std::io::stderr(), "{value}");
        return ExitStatus::Failure;
    }
    let text = format!("error: {error}\n  help: {}\n", error.guidance());
    let text = match super::paint::stderr_painted() {
        true => super::paint::paint(&text),
        false => text,
    };
    // Not eprintln: a closed stderr must not turn an error into a panic.
    let _ = std::io::stderr().write_all(text.as_bytes());
    ExitStatus::Failure
}
