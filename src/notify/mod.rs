//! Notifications: a task's run rendered through a minijinja template (built in, or the config
//! repository's own in `templates/`) and sent to its channels. A channel that fails is
//! reported and retried, but never fails or loses the backup.
//!
//! The context every template receives (stable; add, never rename):
//!
//! ```text
//! event       success | partial | failure | warning | disconnected | archived
//! outcome     success | partial | failed | archived
//! task        { id, name, environment }
//! run         { finished_at, snapshot, api_calls, records, message }
//! alerts      [ { object, reason } ]
//! connection  { connected, reason }
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::manifest::model::{BackupTask, Channel, Event};

mod email;

/// Attempts per HTTP channel.
const ATTEMPTS: u32 = 3;
/// `$GITHUB_STEP_SUMMARY` takes at most 1 MiB per step.
pub(crate) const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskInfo {
    pub id: String,
    pub name: String,
    pub environment: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub(crate) struct RunInfo {
    pub finished_at: String,
    pub snapshot: Option<String>,
    pub api_calls: u64,
    pub records: u64,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlertInfo {
    pub object: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectionInfo {
    pub connected: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct NotificationContext {
    pub event: String,
    pub outcome: String,
    pub task: TaskInfo,
    pub run: RunInfo,
    pub alerts: Vec<AlertInfo>,
    pub connection: ConnectionInfo,
}

impl NotificationContext {
    /// A filled-in context: what `templates::NOTIFICATION_SAMPLE` holds.
    #[cfg(test)]
    pub(crate) fn sample() -> NotificationContext {
        NotificationContext {
            event: "warning".into(),
            outcome: "success".into(),
            task: TaskInfo {
                id: "acme-production".into(),
                name: "Acme Production".into(),
                environment: "production".into(),
            },
            run: RunInfo {
                finished_at: "2026-01-31T03:04:05.000Z".into(),
                snapshot: Some("0123456789abcdef".into()),
                api_calls: 42,
                records: 1000,
                message: "snapshot 0123456789ab, 9 objects".into(),
            },
            alerts: vec![AlertInfo {
                object: "Account".into(),
                reason: "Account: 80 of 1000 records deleted (8.0%, more than 5%)".into(),
            }],
            connection: ConnectionInfo {
                connected: true,
                reason: "Connected".into(),
            },
        }
    }
}

pub(crate) fn event_name(event: Event) -> &'static str {
    match event {
        Event::Success => "success",
        Event::Partial => "partial",
        Event::Failure => "failure",
        Event::Warning => "warning",
        Event::Disconnected => "disconnected",
        Event::Archived => "archived",
    }
}

/// The built-in template for an event.
pub(crate) fn default_template(event: &str) -> &'static str {
    match event {
        "failure" => "failure.md.j2",
        "disconnected" => "disconnected.md.j2",
        "warning" => "alert.md.j2",
        "archived" => "archived.md.j2",
        _ => "run-summary.md.j2",
    }
}

/// What happened when sending to one channel.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub task: String,
    pub channel: String,
    pub event: String,
    /// None when delivered; else why not.
    pub error: Option<String>,
}

fn channel_name(channel: &Channel) -> &'static str {
    match channel {
        Channel::Slack(_) => "slack",
        Channel::Webhook(_) => "webhook",
        Channel::Email(_) => "email",
        Channel::GithubSummary(_) => "githubSummary",
        Channel::File(_) => "file",
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        let mut request = http.post(url).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if response.status().is_client_error() => {
                return Err(format!("the receiver refused it ({})", response.status()));
            }
            Ok(response) => last = format!("the receiver answered {}", response.status()),
            // The URL is a secret: never in the message.
            Err(e) if e.is_connect() => last = "could not connect".into(),
            Err(e) if e.is_timeout() => last = "timed out".into(),
            Err(_) => last = "the request failed".into(),
        }
    }
    Err(format!("{last} after {ATTEMPTS} attempts"))
}

/// Sends one event of one task to every notification that wants it.
pub(crate) async fn notify(
    config_dir: &Path,
    task: &BackupTask,
    context: &NotificationContext,
    env: &dyn Fn(&str) -> Option<String>,
    http: &reqwest::Client,
) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for notification in &task.notifications {
        if !notification
            .events
            .iter()
            .any(|e| event_name(*e) == context.event)
        {
            continue;
        }
        let name = notification
            .template
            .clone()
            .unwrap_or_else(|| default_template(&context.event).to_string());
        let sent = match crate::templates::render(config_dir, &name, context) {
            Err(e) => Err(format!("the template failed: {e}")),
            Ok(text) => send(config_dir, &notification.channel, &text, context, env, http).await,
        };
        deliveries.push(Delivery {
            task: task.id.clone(),
            channel: channel_name(&notification.channel).to_string(),
            event: context.event.clone(),
            error: sent.err(),
        });
    }
    deliveries
}

async fn send(
    config_dir: &Path,
    channel: &Channel,
    text: &str,
    context: &NotificationContext,
    env: &dyn Fn(&str) -> Option<String>,
    http: &reqwest::Client,
) -> Result<(), String> {
    let secret = |name: &str| env(name).ok_or_else(|| format!("{name} is not set"));
    match channel {
        Channel::Slack(slack) => {
            let url = secret(&slack.webhook_url_env)?;
            post(http, &url, None, &serde_json::json!({ "text": text })).await
        }
        Channel::Webhook(webhook) => {
            let url = secret(&webhook.url_env)?;
            let token = match &webhook.bearer_token_env {
                Some(name) => Some(secret(name)?),
                None => None,
            };
            let mut body = serde_json::to_value(context).map_err(|e| e.to_string())?;
            body["text"] = serde_json::Value::String(text.to_string());
            post(http, &url, token.as_deref(), &body).await
        }
        Channel::GithubSummary(_) => {
            let Some(path) = env("GITHUB_STEP_SUMMARY") else {
                return Err(
                    "GITHUB_STEP_SUMMARY is not set (not running in GitHub Actions)".into(),
                );
            };
            append(Path::new(&path), text, STEP_SUMMARY_LIMIT)
        }
        Channel::File(file) => append(&config_dir.join(&file.path), text, usize::MAX),
        Channel::Email(email) => {
            let credentials = match (&email.smtp.username_env, &email.smtp.password_env) {
                (Some(user), Some(password)) => Some((secret(user)?, secret(password)?)),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(
                        "smtp.usernameEnv is set but smtp.passwordEnv is not: name both".into(),
                    );
                }
                (None, Some(_)) => {
                    return Err(
                        "smtp.passwordEnv is set but smtp.usernameEnv is not: name both".into(),
                    );
                }
            };
            email::send(email, text, credentials).await
        }
    }
}

/// Appends a section, keeping the file under `limit` bytes.
fn append(path: &Path, text: &str, limit: usize) -> Result<(), String> {
    use std::io::Write as _;
    let used = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
    let mut section = format!("{text}\n");
    if used + section.len() > limit {
        let room = limit.saturating_sub(used + 64);
        section.truncate(crate::text::floor_char_boundary(
            &section,
            room.min(section.len()),
        ));
        section.push_str("\n\n… (cut: the summary limit was reached)\n");
        if room == 0 {
            return Err(format!("{} is full ({limit} bytes)", path.display()));
        }
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(section.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    /// The sample the template check renders notification templates against
    /// (`templates::NOTIFICATION_SAMPLE`) has the shape of the real context.
    #[test]
    fn the_template_sample_is_a_notification_context() {
        let real = serde_json::to_value(super::NotificationContext::sample()).expect("JSON");
        let sample: serde_json::Value =
            serde_json::from_str(crate::templates::NOTIFICATION_SAMPLE).expect("sample JSON");
        assert_eq!(
            sample,
            real,
            "{}",
            serde_json::to_string_pretty(&real).unwrap_or_default()
        );
    }
}
