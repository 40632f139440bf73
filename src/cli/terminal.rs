//! What the command line asks on a terminal: where a new store goes, and whether to carry out
//! a restore. Scripts never reach these (they give --store and --yes).

use std::io::Write as _;
use std::path::Path;

use crate::commands::scaffold::StoreChoice;

/// The store `cairn init` writes into a new cairn.yaml: --store, else asked on a terminal,
/// else None (the default for the directory).
pub(super) fn store_choice(
    dir: &Path,
    given: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
) -> Result<Option<StoreChoice>, String> {
    use std::io::IsTerminal;
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

/// Shows what is about to be done on stderr and asks; only "y" or "yes" goes ahead.
pub(super) fn confirm_on_terminal(summary: &str) -> bool {
    let _ = write!(std::io::stderr(), "{summary}\nCarry out this plan? [y/N] ");
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
