//! What the command arms share: the config directory as given, the async runtime, a usage
//! error, and `--at` read as a time.

use std::path::PathBuf;

use super::args::{LegacyDir, ProjectArgs};
use crate::error::Error;

/// The config directory: `--dir`, or the positional one older scripts give, or `.`.
pub(super) fn project_dir(project: &ProjectArgs, legacy: LegacyDir) -> Result<PathBuf, Error> {
    match (&project.dir, legacy.dir) {
        (Some(flag), Some(positional)) if *flag != positional => Err(Error::Usage {
            message: format!(
                "two config directories given: --dir {} and {}",
                flag.display(),
                positional.display()
            ),
            next: "give it once, as --dir DIR".into(),
        }),
        (Some(flag), _) => Ok(flag.clone()),
        (None, Some(positional)) => Ok(positional),
        (None, None) => Ok(PathBuf::from(".")),
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Runtime::new().map_err(|e| Error::Io {
        path: PathBuf::from("tokio runtime"),
        source: e,
    })
}

pub(super) fn usage(message: String, next: &str) -> Error {
    Error::Usage {
        message,
        next: next.to_string(),
    }
}

pub(super) fn parse_at(at: Option<&str>) -> Result<Option<i64>, Error> {
    at.map(|text| {
        crate::time::parse_datetime(text).ok_or_else(|| {
            usage(
                format!("--at {text:?} is not an ISO 8601 time"),
                "write it like 2026-01-31T03:00:00Z",
            )
        })
    })
    .transpose()
}
