//! What the command line asks on a terminal: where a new store goes, whether to carry out a
//! restore or a deletion, and passphrases the environment does not give. Scripts never reach
//! these (they give --store, --yes and the variables).

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
    confirm(summary, "Carry out this plan?")
}

/// Shows `summary` on stderr and asks `question`; only "y" or "yes" goes ahead.
pub(super) fn confirm(summary: &str, question: &str) -> bool {
    let _ = write!(
        std::io::stderr(),
        "{}\n{question} [y/N] ",
        summary.trim_end()
    );
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Whether a person is there to answer: questions go to stderr, answers come from stdin.
pub(super) fn attended() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks passphrases on the terminal, without echo, when a person is there: installed for the
/// library (`project::ask`), which asks only when the environment gives none.
pub(super) fn install_passphrase_prompts() {
    if !attended() {
        return;
    }
    crate::project::ask::install(Box::new(|question| {
        use crate::project::ask::Question;
        let read = |prompt: &str| {
            rpassword::prompt_password(prompt)
                .map_err(|e| format!("the passphrase could not be read: {e}"))
        };
        match question {
            Question::Passphrase { store } => {
                let given = read(&format!("Passphrase for the store at {store}: "))?;
                Ok((!given.is_empty()).then_some(given))
            }
            Question::NewPassphrase { for_what } => {
                let first = read(&format!("New passphrase for {for_what}: "))?;
                if first.is_empty() {
                    return Err("a passphrase cannot be empty".into());
                }
                let again = read("The same passphrase again: ")?;
                if again != first {
                    return Err("the two passphrases differ; nothing was written".into());
                }
                Ok(Some(first))
            }
        }
    }));
}
