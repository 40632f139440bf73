//! `cairn validate`: check a config repository's manifests and report every problem.

use std::path::PathBuf;

use crate::error::Error;
use crate::manifest::{self, ConfigTree, Format, Summary};

#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The config repository directory.
    pub dir: PathBuf,
    /// Read the manifests as committed at this git revision instead of from disk.
    pub rev: Option<String>,
    pub format: Format,
    /// Colour the text output.
    pub color: bool,
}

#[derive(Debug, Clone)]
pub struct ValidateOutcome {
    /// The rendered report.
    pub output: String,
    pub summary: Summary,
}

impl ValidateOutcome {
    pub fn is_valid(&self) -> bool {
        self.summary.errors == 0
    }
}

pub fn validate(options: &ValidateOptions) -> Result<ValidateOutcome, Error> {
    let tree = match &options.rev {
        Some(rev) => ConfigTree::at_revision(&options.dir, rev)?,
        None => ConfigTree::work_tree(&options.dir)?,
    };
    let config = manifest::load(&tree)?;
    let summary = Summary::count(&config.diagnostics, config.files, config.task_files);
    let output = manifest::render::render(
        options.format,
        &config.diagnostics,
        &config.sources,
        summary,
        options.color,
    );
    Ok(ValidateOutcome { output, summary })
}
