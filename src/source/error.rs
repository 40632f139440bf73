//! What can go wrong talking to a source, whichever it is: refused credentials, a spent API
//! budget, an error answer, no answer, bad settings. The engine tells a spent budget (a partial
//! snapshot, resumed next run) from the rest (a failed run).

use super::DisconnectReason;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("Salesforce refused the login ({error}: {description})")]
    Disconnected {
        reason: DisconnectReason,
        error: String,
        description: String,
    },
    #[error(
        "the API budget is spent: the org has used {used} of {max} daily API calls and backups may use up to {limit_percent}%"
    )]
    BudgetExhausted {
        used: u64,
        max: u64,
        limit_percent: u8,
    },
    #[error("the org's daily API allocation is spent: Salesforce refused the call ({message})")]
    DailyLimitReached { message: String },
    #[error("Salesforce answered {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("Salesforce could not be reached: {0}")]
    Network(String),
    #[error("the connector is misconfigured: {0}")]
    Config(String),
}

impl SourceError {
    pub fn guidance(&self) -> String {
        match self {
            SourceError::Disconnected { .. } => "log in again (`cairn auth login`) or check the connected app and the user's approval; other tasks go on".into(),
            SourceError::BudgetExhausted { .. } => "the next run resumes once the org's usage is below the ceiling again (usage counts over the last 24 hours); raise source.apiUsageLimitPercent to allow more".into(),
            SourceError::DailyLimitReached { .. } => "the org's other integrations used the allocation up; the next run resumes once calls are allowed again (usage counts over the last 24 hours)".into(),
            SourceError::Api { .. } => "see the Salesforce error above; if it persists, report it with the task's status".into(),
            SourceError::Network(_) => "check the network and Salesforce's status page; the next run resumes".into(),
            SourceError::Config(_) => "fix the task's source settings and secrets".into(),
        }
    }
}
