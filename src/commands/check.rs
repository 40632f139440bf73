//! `cairn check`: verify a store's structure, and with `--read-data` its data.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::store_access::{self, Env};
use crate::error::Error;
use crate::store::check::{self, ReadData, Severity};

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub dir: PathBuf,
    pub read_data: ReadData,
}

pub struct CheckOutcome {
    pub output: String,
    pub ok: bool,
}

pub fn check(options: &CheckOptions, env: Env<'_>) -> Result<CheckOutcome, Error> {
    let store = store_access::open_dir(&options.dir, env)?;
    let report = check::check(&store, options.read_data)?;
    let mut out = String::new();
    for finding in &report.findings {
        let level = match finding.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{level}: {}", finding.what);
        for place in &finding.affects {
            let _ = writeln!(out, "  affects {place}");
        }
        let _ = writeln!(out, "  help: {}\n", finding.next);
    }
    let read = match options.read_data {
        ReadData::None => {
            "structure only; add --read-data to decrypt and verify the data".to_string()
        }
        _ => format!(
            "{} of {} blobs decrypted and verified",
            report.blobs_read, report.blobs
        ),
    };
    let errors = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let verdict = if errors == 0 {
        "no errors"
    } else {
        "ERRORS FOUND"
    };
    let _ = writeln!(
        out,
        "checked {} snapshots and {} blobs ({read}): {verdict}",
        report.snapshots, report.blobs
    );
    Ok(CheckOutcome {
        output: out,
        ok: errors == 0,
    })
}
