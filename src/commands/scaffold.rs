//! Writing a new config repository (`cairn init` in an empty directory) and new tasks
//! (`cairn add salesforce`): valid manifests with sensible defaults and comments that say what
//! each setting does.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::model::Environment;
use crate::manifest::rules::id_format::slugify;

const REPOSITORY: &str = r#"# yaml-language-server: $schema=https://raw.githubusercontent.com/cairn-backup/cairn/main/schemas/repository.schema.json
apiVersion: cairn/v1
kind: Repository

{store}
encryption:
  keyFiles: [keys/]
  passphraseEnv: CAIRN_PASSPHRASE   # opens a key file
  keyEnv: CAIRN_KEY                 # or the raw key, for CI (`cairn key raw`)

# `cairn apply` commits status, sealed snapshot manifests and change summaries here.
state:
  branch: cairn-state
  remote: origin
  push: true
  recordIds: false    # record Ids never reach git unless you allow it

# Every task gets these unless its manifest says otherwise.
defaults:
  schedule: "0 3 * * *"
  retention:
    keepDaily: 14
    keepWeekly: 8
    keepMonthly: 12
    keepAtLeastGood: 3
"#;

/// Where a new config repository keeps its encrypted data (`cairn init --store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The ref refs/cairn/store of the config repository, pushed to its remote.
    Git,
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
    },
    /// A directory, relative to the config repository or absolute.
    Local(String),
}

impl std::str::FromStr for StoreChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "git" {
            return Ok(StoreChoice::Git);
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !valid {
                return Err(format!(
                    "`{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens), as in s3://my-backups/acme"
                ));
            }
            let prefix = prefix.trim_matches('/');
            return Ok(StoreChoice::S3 {
                bucket: bucket.to_string(),
                prefix: if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                },
                endpoint: None,
                region: None,
            });
        }
        if let Some(path) = text.strip_prefix("local:")
            && !path.trim().is_empty()
        {
            return Ok(StoreChoice::Local(path.trim().to_string()));
        }
        Err(format!(
            "`{text}`: use git, s3://BUCKET/PREFIX or local:PATH"
        ))
    }
}

impl StoreChoice {
    /// The default for a new config repository: the git store where there is a git
    /// repository to keep it (zero infrastructure, and it outlives any CI runner once pushed),
    /// else a local directory.
    pub fn default_for(dir: &Path) -> StoreChoice {
        if git2::Repository::discover(dir).is_ok() {
            StoreChoice::Git
        } else {
            StoreChoice::Local(".cairn/store".into())
        }
    }

    /// Its `store:` section of cairn.yaml, with a comment on when to choose another.
    fn yaml(&self) -> String {
        let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
        match self {
            StoreChoice::Git => "# Encrypted backup data lives on the ref refs/cairn/store of this repository;\n# `cairn apply` pushes it to the state remote before the state that names it. Past a\n# few GiB of backups (see the README), move to s3.\nstore:\n  git: {}\n".to_string(),
            StoreChoice::S3 {
                bucket,
                prefix,
                endpoint,
                region,
            } => {
                let mut text = format!(
                    "# Encrypted backup data lives in this bucket; credentials come from\n# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.\nstore:\n  s3:\n    bucket: {}\n    prefix: {}\n",
                    quote(bucket),
                    quote(prefix)
                );
                match region {
                    Some(region) => text.push_str(&format!("    region: {}\n", quote(region))),
                    None => text.push_str("    # region: eu-west-1\n"),
                }
                match endpoint {
                    Some(endpoint) => {
                        text.push_str(&format!("    endpoint: {}\n", quote(endpoint)))
                    }
                    None => text.push_str(
                        "    # endpoint: https://s3.example.com   # an S3-compatible service\n",
                    ),
                }
                text
            }
            StoreChoice::Local(path) => format!(
                "# Encrypted backup data lives in this directory (kept out of git). It must outlive\n# the machine that runs `cairn apply`: on a CI runner use git or s3 instead.\nstore:\n  local:\n    path: {}\n",
                quote(path)
            ),
        }
    }

    /// The variables the scheduled workflow must give `cairn apply` for this store.
    pub fn secrets(&self) -> Vec<String> {
        let mut names = vec!["CAIRN_KEY".to_string()];
        if matches!(self, StoreChoice::S3 { .. }) {
            names.push("AWS_ACCESS_KEY_ID".into());
            names.push("AWS_SECRET_ACCESS_KEY".into());
        }
        names
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file that must not exist yet.
fn create(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(io(path))
}

/// A new config repository in `dir`: cairn.yaml with the chosen store, a template to
/// customise and the GitHub workflows, whose apply step is given the store's secrets. Returns
/// the files written.
pub fn scaffold_repository(dir: &Path, store: &StoreChoice) -> Result<Vec<PathBuf>, Error> {
    let repository = REPOSITORY.replace("{store}", &store.yaml());
    let apply = map_secrets(
        include_str!("../../examples/workflows/apply.yml"),
        &store.secrets(),
    )
    .unwrap_or_else(|| include_str!("../../examples/workflows/apply.yml").to_string());
    let files: [(&str, &str); 4] = [
        ("cairn.yaml", &repository),
        (
            "templates/run-summary.md.j2",
            crate::templates::BUILTIN[0].1,
        ),
        (
            ".github/workflows/cairn-plan.yml",
            include_str!("../../examples/workflows/plan.yml"),
        ),
        (".github/workflows/cairn-apply.yml", &apply),
    ];
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        create(&path, text)?;
        written.push(path);
    }
    std::fs::create_dir_all(dir.join("tasks")).map_err(io(dir))?;
    Ok(written)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// The workflow text with `names` mapped from secrets in the `env:` of the step that runs
/// `cairn apply` through the action (`command: apply`), keeping everything else as written.
/// None when no such step is found; names mapped already are left alone.
pub fn map_secrets(workflow: &str, names: &[String]) -> Option<String> {
    let value: serde_json::Value = serde_yaml::from_str(workflow).ok()?;
    let parsed = crate::manifest::workflows::parse(String::new(), &value);
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !parsed.mapped.contains(*n))
        .collect();
    let lines: Vec<&str> = workflow.lines().collect();
    let command = lines.iter().position(|l| {
        let t = l.trim();
        t == "command: apply"
            || t == "command: \"apply\""
            || t == "command: 'apply'"
            || t.starts_with("command: apply ")
    })?;
    // The step item ("- uses: ...") that holds it, and the step's end.
    let start = (0..command)
        .rev()
        .find(|&i| lines[i].trim_start().starts_with("- "))?;
    let item = indent(lines[start]);
    let keys = item + 2;
    let end = (command + 1..lines.len())
        .find(|&i| is_content(lines[i]) && indent(lines[i]) <= item)
        .unwrap_or(lines.len());
    if missing.is_empty() {
        return Some(workflow.to_string());
    }
    let env = (start + 1..end).find(|&i| indent(lines[i]) == keys && lines[i].trim() == "env:");
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match env {
        Some(env) => {
            let entries = (env + 1..end)
                .filter(|&i| is_content(lines[i]))
                .take_while(|&i| indent(lines[i]) > keys)
                .collect::<Vec<_>>();
            let entry_indent = entries.first().map_or(keys + 2, |&i| indent(lines[i]));
            let after = entries.last().map_or(env + 1, |&i| i + 1);
            for (k, name) in missing.iter().enumerate() {
                out.insert(
                    after + k,
                    format!(
                        "{}{name}: ${{{{ secrets.{name} }}}}",
                        " ".repeat(entry_indent)
                    ),
                );
            }
        }
        None => {
            // After the step's last line of content.
            let after = (start..end).rev().find(|&i| is_content(lines[i]))? + 1;
            let mut block = vec![format!("{}env:", " ".repeat(keys))];
            block.extend(
                missing.iter().map(|name| {
                    format!("{}{name}: ${{{{ secrets.{name} }}}}", " ".repeat(keys + 2))
                }),
            );
            for (k, line) in block.into_iter().enumerate() {
                out.insert(after + k, line);
            }
        }
    }
    let mut text = out.join("\n");
    if workflow.ends_with('\n') {
        text.push('\n');
    }
    Some(text)
}

/// Maps `names` in every workflow of `dir` that runs `cairn apply`; says what it did, or what
/// to add by hand where the step could not be found.
fn map_secrets_in_workflows(dir: &Path, names: &[String]) -> Result<Vec<String>, Error> {
    let tree = crate::manifest::ConfigTree::work_tree(dir)?;
    let mut said = Vec::new();
    for workflow in crate::manifest::workflows::read(&tree)? {
        if !workflow.runs_apply {
            continue;
        }
        let path = dir.join(&workflow.rel);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let lines = names
            .iter()
            .map(|n| format!("  {n}: ${{{{ secrets.{n} }}}}"))
            .collect::<Vec<_>>()
            .join("\n");
        match map_secrets(&text, names) {
            Some(updated) if updated != text => {
                std::fs::write(&path, updated).map_err(io(&path))?;
                said.push(format!(
                    "Mapped {} in {} (the step that runs cairn apply).",
                    names.join(", "),
                    workflow.rel
                ));
            }
            Some(_) => {}
            None => said.push(format!(
                "{} runs cairn apply in a step this command cannot edit: add to its env:\n{lines}",
                workflow.rel
            )),
        }
    }
    Ok(said)
}

#[derive(Debug, Clone)]
pub struct AddOptions {
    pub dir: PathBuf,
    pub name: String,
    pub environment: Environment,
    /// Default: a slug of the name.
    pub id: Option<String>,
}

/// A task manifest that `add` wrote, and the secrets it reads.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskAdded {
    pub task: String,
    pub path: PathBuf,
    pub client_id_env: String,
    pub refresh_token_env: String,
    /// What was done to (or is to be added by hand in) the workflows that run apply.
    pub workflows: Vec<String>,
}

impl super::Report for TaskAdded {
    fn text(&self) -> String {
        let mut out = format!("Wrote {}.\n", self.path.display());
        for line in &self.workflows {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!(
            "Next: set {} to your connected app's consumer key, then run\n  cairn auth login --task {}\nand store the refresh token it prints as {} (for GitHub Actions, both as repository secrets). `cairn plan` shows the new task.\n",
            self.client_id_env, self.task, self.refresh_token_env
        ));
        out
    }
}

/// Writes `tasks/<id>.yaml` for a Salesforce org.
pub fn add_salesforce(options: &AddOptions) -> Result<TaskAdded, Error> {
    if !options.dir.join("cairn.yaml").is_file() {
        return Err(Error::Usage {
            message: format!("{} has no cairn.yaml", options.dir.display()),
            next: "run `cairn init` there first, or pass --dir".into(),
        });
    }
    let id = options.id.clone().unwrap_or_else(|| slugify(&options.name));
    if id.is_empty() {
        return Err(Error::Usage {
            message: format!("no task id can be made from the name {:?}", options.name),
            next: "give one with --id, such as --id acme-production".into(),
        });
    }
    let variable = id.replace('-', "_").to_uppercase();
    let (environment, host) = match options.environment {
        Environment::Production => ("production", "login.salesforce.com"),
        Environment::Sandbox => ("sandbox", "test.salesforce.com"),
    };
    let name = options.name.replace('"', "'");
    let text = format!(
        r#"# yaml-language-server: $schema=https://raw.githubusercontent.com/cairn-backup/cairn/main/schemas/task.schema.json
apiVersion: cairn/v1
kind: BackupTask
id: {id}                       # stable: renaming the task changes `name`, never this
name: "{name}"

source:
  type: salesforce
  environment: {environment}   # fixed for the task's life; logs in through {host}
  # loginUrl: https://acme.my.salesforce.com   # your My Domain, if logins must go through it
  apiUsageLimitPercent: 75     # share of the org's daily API allocation backups may use (1-100)
  auth:
    refreshToken:              # `cairn auth login --task {id}` gets the token
      clientIdEnv: SF_{variable}_CLIENT_ID
      refreshTokenEnv: SF_{variable}_REFRESH_TOKEN

objects:
  include: ["*"]               # every queryable object; or a list such as [Account, Contact, "*__c"]
  exclude: []

search:
  index: true                  # index all data for search and granular restore

# Keep daily snapshots for two weeks, weekly for two months, monthly for a year (the
# repository's defaults apply when this is absent).
# retention:
#   keepDaily: 14
#   autoArchivedDays: 30       # after the task is removed, purge its data after 30 days

alerts:
  - object: "*"
    deletedPercent: 5          # warn when more than 5% of an object's records disappear
"#
    );
    let path = options.dir.join("tasks").join(format!("{id}.yaml"));
    if path.exists() {
        return Err(Error::Usage {
            message: format!("{} exists already", path.display()),
            next: "choose another --id, or edit that file".into(),
        });
    }
    create(&path, &text)?;
    let client_id_env = format!("SF_{variable}_CLIENT_ID");
    let refresh_token_env = format!("SF_{variable}_REFRESH_TOKEN");
    let workflows = map_secrets_in_workflows(
        &options.dir,
        &[client_id_env.clone(), refresh_token_env.clone()],
    )?;
    Ok(TaskAdded {
        task: id,
        path,
        client_id_env,
        refresh_token_env,
        workflows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(text: &str) -> Vec<String> {
        let value: serde_json::Value = serde_yaml::from_str(text).expect("still YAML");
        crate::manifest::workflows::parse(String::new(), &value)
            .mapped
            .into_iter()
            .collect()
    }

    const WITH_ENV: &str = "jobs:\n  apply:\n    steps:\n      - uses: actions/checkout@v4\n      - uses: cairn-backup/cairn@v0\n        with:\n          command: apply\n        env:\n          CAIRN_KEY: ${{ secrets.CAIRN_KEY }}\n      - run: echo after\n";

    #[test]
    fn secrets_are_added_to_the_apply_steps_env_and_nothing_else_changes() {
        let names = ["SF_A".to_string(), "CAIRN_KEY".to_string()];
        let updated = map_secrets(WITH_ENV, &names).expect("the step is found");
        assert_eq!(mapped(&updated), ["CAIRN_KEY", "SF_A"]);
        assert!(updated.contains("          SF_A: ${{ secrets.SF_A }}\n      - run: echo after\n"));
        assert_eq!(updated.matches("CAIRN_KEY:").count(), 1, "{updated}");
        // Mapped already: the text is left as it is.
        assert_eq!(
            map_secrets(&updated, &names).as_deref(),
            Some(updated.as_str())
        );
    }

    #[test]
    fn a_step_without_env_gets_one() {
        let text = "jobs:\n  a:\n    steps:\n      - uses: cairn-backup/cairn@v0\n        with:\n          command: apply\n\n  b:\n    steps:\n      - run: echo\n";
        let updated = map_secrets(text, &["SF_B".to_string()]).expect("found");
        assert_eq!(mapped(&updated), ["SF_B"]);
        assert!(
            updated.contains("        env:\n          SF_B: ${{ secrets.SF_B }}\n"),
            "{updated}"
        );
        let no_apply = "jobs:\n  p:\n    steps:\n      - uses: cairn-backup/cairn@v0\n        with:\n          command: plan\n";
        assert_eq!(map_secrets(no_apply, &["X".to_string()]), None);
    }

    #[test]
    fn store_choices_parse() {
        assert_eq!("git".parse::<StoreChoice>(), Ok(StoreChoice::Git));
        assert_eq!(
            "s3://my-backups/acme/prod/".parse::<StoreChoice>(),
            Ok(StoreChoice::S3 {
                bucket: "my-backups".into(),
                prefix: "acme/prod/".into(),
                endpoint: None,
                region: None
            })
        );
        assert_eq!(
            "local:/var/lib/cairn".parse::<StoreChoice>(),
            Ok(StoreChoice::Local("/var/lib/cairn".into()))
        );
        for bad in ["s3://", "s3://B/x", "local:", "ftp://x", ""] {
            assert!(bad.parse::<StoreChoice>().is_err(), "{bad}");
        }
    }
}
