//! `cairn init`: create the encrypted store of a config repository, and its first key file.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use super::scaffold::StoreChoice;
use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::{self, Env};
use crate::store::Store;
use crate::store::crypto::MasterKey;
use crate::store::keys::{self, KdfParams};

/// A store inside the config repository is kept out of git: its `.gitignore` gets the store's
/// path, unless it already lists it. Returns the entry added.
fn ignore_store_in_git(
    dir: &std::path::Path,
    store: &std::path::Path,
) -> Result<Option<String>, Error> {
    let Ok(relative) = store.strip_prefix(dir) else {
        return Ok(None);
    };
    let entry = format!("/{}/", relative.to_string_lossy().trim_end_matches('/'));
    let path = dir.join(".gitignore");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(Error::Io { path, source }),
    };
    let bare = entry.trim_matches('/');
    if existing.lines().any(|l| l.trim().trim_matches('/') == bare) {
        return Ok(None);
    }
    let mut updated = existing;
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(&entry);
    updated.push('\n');
    std::fs::write(&path, updated).map_err(|source| Error::Io { path, source })?;
    Ok(Some(entry))
}

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    /// Where the data goes, for a new config repository (default: `StoreChoice::default_for`).
    pub store: Option<StoreChoice>,
    /// Names the first key file (whose passphrase it is).
    pub label: String,
    pub kdf: KdfParams,
}

/// A git store that has no remote yet: how to push it once there is one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushLater {
    pub location: String,
    pub remote: String,
    pub reference: String,
}

/// What `init` wrote and created.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitOutcome {
    /// The files of a new config repository; empty when cairn.yaml was there.
    pub wrote: Vec<PathBuf>,
    pub store: String,
    pub store_id: String,
    pub key_id: String,
    pub key_label: String,
    pub passphrase_env: String,
    pub key_env: String,
    /// The master key came from `key_env` rather than being made here.
    pub master_key_from_env: bool,
    /// The line added to .gitignore to keep a local store out of git.
    pub gitignored: Option<String>,
    pub published: Option<String>,
    pub push_later: Option<PushLater>,
    pub warnings: Vec<String>,
}

impl Report for InitOutcome {
    fn text(&self) -> String {
        let mut out = String::new();
        for path in &self.wrote {
            let _ = writeln!(out, "Wrote {}", path.display());
        }
        if !self.wrote.is_empty() {
            out.push_str("Add a task with `cairn add salesforce --name \"Acme Production\" --environment production`.\n");
        }
        let _ = write!(
            out,
            "Created the encrypted store at {} (id {}).\nKey file keys/{}.key (\"{}\") opens it with the passphrase in {}.\n",
            self.store, self.store_id, self.key_id, self.key_label, self.passphrase_env
        );
        if self.master_key_from_env {
            let _ = writeln!(out, "The master key is the one in {}.", self.key_env);
        } else {
            let _ = writeln!(
                out,
                "For CI, store the raw key as the secret {} (`cairn key raw` prints it), or the passphrase as {}.",
                self.key_env, self.passphrase_env
            );
        }
        if let Some(entry) = &self.gitignored {
            let _ = writeln!(
                out,
                "Added {entry} to .gitignore: the store stays out of the config repository's history."
            );
        }
        if let Some(done) = &self.published {
            let _ = writeln!(
                out,
                "{done}: every clone and CI runner of this repository finds the store there."
            );
        }
        if let Some(push) = &self.push_later {
            let _ = writeln!(
                out,
                "The store is on {} of this repository. Once it has a remote, push it with\n  git push {} {}\n(`cairn apply` pushes it after every backup).",
                push.location, push.remote, push.reference
            );
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        out.push_str("Keep a copy of the passphrase or the raw key somewhere safe: without them the backups cannot be read.\n");
        out
    }
}

pub fn init(options: &InitOptions, env: Env<'_>) -> Result<InitOutcome, Error> {
    let scaffolds = !options.dir.join("cairn.yaml").exists();
    init_repository_and_store(options, env).map_err(|e| {
        if !scaffolds || !options.dir.join("cairn.yaml").exists() {
            return e;
        }
        // The files are there; only the store is not: say so, and how to finish.
        Error::Usage {
            message: format!(
                "the config repository was written, but its store was not created: {e}"
            ),
            next: format!(
                "{}; then run `cairn init` again (it keeps the files written)",
                e.guidance()
            ),
        }
    })
}

fn init_repository_and_store(options: &InitOptions, env: Env<'_>) -> Result<InitOutcome, Error> {
    // An empty (or new) directory becomes a config repository first; the passphrase is had
    // before anything is written, so a missing one leaves nothing half made.
    let mut wrote = Vec::new();
    let mut passphrase = None;
    if !options.dir.join("cairn.yaml").exists() {
        passphrase = Some(first_passphrase(
            &crate::manifest::model::Encryption::default(),
            env,
        )?);
        let store = options
            .store
            .clone()
            .unwrap_or_else(|| StoreChoice::default_for(&options.dir));
        wrote = super::scaffold::scaffold_repository(&options.dir, &store)?;
    } else if options.store.is_some() {
        return Err(Error::Usage {
            message: format!(
                "{} exists already, and its `store` section says where the data goes",
                options.dir.join("cairn.yaml").display()
            ),
            next: "edit `store` in cairn.yaml, then run `cairn init` without --store".into(),
        });
    }
    let project = Project::open(&options.dir, env)?;
    let repository = project.require_valid()?;
    let encryption = &repository.encryption;
    let backend = store_access::backend(&options.dir, repository, env)?;
    let location = backend.location();
    // A raw key given for CI becomes the master key; otherwise a new one is made.
    let (master, from_env) = match env(&encryption.key_env) {
        Some(raw) => (keys::raw_key(&raw)?, true),
        None => (MasterKey::generate()?, false),
    };
    let passphrase = match passphrase {
        Some(had) => had,
        None => first_passphrase(encryption, env)?,
    };
    let store = Store::init(backend, master)?;
    // A store that is not a local directory has nothing to keep out of git.
    let ignored = match store_access::local_store_dir(&options.dir, repository) {
        Some(local) => ignore_store_in_git(&options.dir, &local)?,
        None => None,
    };
    let created = crate::time::format_datetime_z(crate::time::now_ms());
    let file = store.add_key_file(&passphrase, &options.label, options.kdf, &created)?;
    let published = store.publish()?;
    let push_later = match (&published, &repository.store) {
        (None, crate::manifest::model::Store::Git(git)) => Some(PushLater {
            location: store.location(),
            remote: repository.state.remote.clone(),
            reference: git.reference.clone(),
        }),
        _ => None,
    };
    let mut warnings = Vec::new();
    if let Some(path) = store_access::store_inside_checkout(&options.dir, repository)
        && applies_in_ci(&options.dir)?
    {
        warnings.push(format!(
            "a workflow runs `cairn apply`, but the store {} is inside the checkout, which a CI runner throws away after every job; apply refuses to run there. Use `store: {{git: {{}}}}` or s3 in cairn.yaml, or a path outside the checkout on a self-hosted runner.",
            path.display()
        ));
    }
    Ok(InitOutcome {
        wrote,
        store: location,
        store_id: store.id.clone(),
        key_id: file.id,
        key_label: file.label,
        passphrase_env: encryption.passphrase_env.clone(),
        key_env: encryption.key_env.clone(),
        master_key_from_env: from_env,
        gitignored: ignored,
        published,
        push_later,
        warnings,
    })
}

/// Whether one of the repository's workflows runs `cairn apply`.
fn applies_in_ci(dir: &std::path::Path) -> Result<bool, Error> {
    let tree = crate::manifest::ConfigTree::work_tree(dir)?;
    Ok(crate::manifest::workflows::read(&tree)?
        .iter()
        .any(|w| w.runs_apply))
}

/// The passphrase of the store's first key file: from the environment, else asked (twice) on a
/// terminal.
fn first_passphrase(
    encryption: &crate::manifest::model::Encryption,
    env: Env<'_>,
) -> Result<String, Error> {
    if let Some(passphrase) = env(&encryption.passphrase_env) {
        return Ok(passphrase);
    }
    crate::project::ask::ask(crate::project::ask::Question::NewPassphrase {
        for_what: "the store's first key file",
    })?
    .ok_or_else(|| Error::MissingVariable {
        name: encryption.passphrase_env.clone(),
        purpose: "the passphrase that will open the store's first key file".into(),
    })
}
