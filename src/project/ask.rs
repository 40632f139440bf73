//! What cairn asks the person running it, when there is one: a passphrase the environment does
//! not give. The command line installs an asker on a terminal; anywhere else (CI, scripts,
//! tests) nothing is installed, nothing is asked, and the missing variable is the error.

use std::sync::OnceLock;

/// A question for the person at the terminal.
#[derive(Debug, Clone, Copy)]
pub enum Question<'a> {
    /// The passphrase of one of the store's key files, to open the store at `store`.
    Passphrase { store: &'a str },
    /// A passphrase for a new key file (`for_what` says which); asked twice.
    NewPassphrase { for_what: &'a str },
}

/// Answers a question: Ok(None) when declined (no answer), Err with why an answer was refused
/// (two passphrases that differ, an empty one).
pub type Asker = Box<dyn Fn(Question<'_>) -> Result<Option<String>, String> + Send + Sync>;

static ASKER: OnceLock<Asker> = OnceLock::new();

/// The store's passphrase once given: a command that opens the store twice (a preview, then
/// the deed) asks once.
static GIVEN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Makes `asker` the process's; the first one installed stays.
pub fn install(asker: Asker) {
    let _ = ASKER.set(asker);
}

/// Asks, if someone can be asked.
pub fn ask(question: Question<'_>) -> Result<Option<String>, crate::error::Error> {
    let Some(asker) = ASKER.get() else {
        return Ok(None);
    };
    let opening = matches!(question, Question::Passphrase { .. });
    if opening && let Some(given) = GIVEN.lock().ok().and_then(|g| g.clone()) {
        return Ok(Some(given));
    }
    let answer = asker(question).map_err(|problem| crate::error::Error::Usage {
        message: problem,
        next: "run the command again and type the passphrase the same way twice".into(),
    })?;
    if opening && let (Some(answer), Ok(mut given)) = (&answer, GIVEN.lock()) {
        *given = Some(answer.clone());
    }
    Ok(answer)
}
