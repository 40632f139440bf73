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

# Encrypted backup data lives here (kept out of git). For a team, use s3: or git: instead.
store:
  local:
    path: .cairn/store

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

/// A new config repository in `dir`: cairn.yaml, a template to customise and the GitHub
/// workflows. Returns the files written.
pub fn scaffold_repository(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let files: [(&str, &str); 4] = [
        ("cairn.yaml", REPOSITORY),
        ("templates/run-summary.md.j2", crate::notify::BUILTIN[0].1),
        (
            ".github/workflows/cairn-plan.yml",
            include_str!("../../examples/workflows/plan.yml"),
        ),
        (
            ".github/workflows/cairn-apply.yml",
            include_str!("../../examples/workflows/apply.yml"),
        ),
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

#[derive(Debug, Clone)]
pub struct AddOptions {
    pub dir: PathBuf,
    pub name: String,
    pub environment: Environment,
    /// Default: a slug of the name.
    pub id: Option<String>,
}

/// Writes `tasks/<id>.yaml` for a Salesforce org and returns its id and what to do next.
pub fn add_salesforce(options: &AddOptions) -> Result<(String, String), Error> {
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
    let next = format!(
        "Wrote {}.\nNext: set SF_{variable}_CLIENT_ID to your connected app's consumer key, then run\n  cairn auth login --task {id}\nand store the refresh token it prints as SF_{variable}_REFRESH_TOKEN. `cairn plan` shows the new task.\n",
        path.display()
    );
    Ok((id, next))
}
