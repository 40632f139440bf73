//! `cairn init`: create the encrypted store of a config repository, and its first key file.

use std::path::PathBuf;

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

pub fn init(options: &InitOptions, env: Env<'_>) -> Result<String, Error> {
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

fn init_repository_and_store(options: &InitOptions, env: Env<'_>) -> Result<String, Error> {
    // An empty (or new) directory becomes a config repository first.
    let mut scaffolded = String::new();
    if !options.dir.join("cairn.yaml").exists() {
        let store = options
            .store
            .clone()
            .unwrap_or_else(|| StoreChoice::default_for(&options.dir));
        for path in super::scaffold::scaffold_repository(&options.dir, &store)? {
            scaffolded.push_str(&format!("Wrote {}\n", path.display()));
        }
        scaffolded.push_str("Add a task with `cairn add salesforce --name \"Acme Production\" --environment production`.\n");
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
    let passphrase = env(&encryption.passphrase_env).ok_or_else(|| Error::MissingVariable {
        name: encryption.passphrase_env.clone(),
        purpose: "the passphrase that will open the store's first key file".into(),
    })?;
    let store = Store::init(backend, master)?;
    // A store that is not a local directory has nothing to keep out of git.
    let ignored = match store_access::local_store_dir(&options.dir, repository) {
        Some(local) => ignore_store_in_git(&options.dir, &local)?,
        None => None,
    };
    let created = crate::time::format_datetime_z(crate::time::now_ms());
    let file = store.add_key_file(&passphrase, &options.label, options.kdf, &created)?;
    let mut out = format!(
        "Created the encrypted store at {location} (id {}).\nKey file keys/{}.key (\"{}\") opens it with the passphrase in {}.\n",
        store.id, file.id, file.label, encryption.passphrase_env
    );
    if from_env {
        out.push_str(&format!(
            "The master key is the one in {}.\n",
            encryption.key_env
        ));
    } else {
        out.push_str(&format!(
            "For CI, store the raw key as the secret {} (`cairn key raw` prints it), or the passphrase as {}.\n",
            encryption.key_env, encryption.passphrase_env
        ));
    }
    if let Some(entry) = ignored {
        out.push_str(&format!(
            "Added {entry} to .gitignore: the store stays out of the config repository's history.\n"
        ));
    }
    match store.publish()? {
        Some(done) => out.push_str(&format!(
            "{done}: every clone and CI runner of this repository finds the store there.\n"
        )),
        None if matches!(repository.store, crate::manifest::model::Store::Git(_)) => {
            out.push_str(&format!(
                "The store is on {} of this repository. Once it has a remote, push it with\n  git push {} {}\n(`cairn apply` pushes it after every backup).\n",
                store.location(),
                repository.state.remote,
                git_store_ref(repository)
            ));
        }
        None => {}
    }
    if let Some(path) = store_access::store_inside_checkout(&options.dir, repository)
        && applies_in_ci(&options.dir)?
    {
        out.push_str(&format!(
            "warning: a workflow runs `cairn apply`, but the store {} is inside the checkout, which a CI runner throws away after every job; apply refuses to run there. Use `store: {{git: {{}}}}` or s3 in cairn.yaml, or a path outside the checkout on a self-hosted runner.\n",
            path.display()
        ));
    }
    out.push_str("Keep a copy of the passphrase or the raw key somewhere safe: without them the backups cannot be read.\n");
    Ok(scaffolded + &out)
}

fn git_store_ref(repository: &crate::manifest::model::Repository) -> String {
    match &repository.store {
        crate::manifest::model::Store::Git(git) => git.reference.clone(),
        _ => String::new(),
    }
}

/// Whether one of the repository's workflows runs `cairn apply`.
fn applies_in_ci(dir: &std::path::Path) -> Result<bool, Error> {
    let tree = crate::manifest::ConfigTree::work_tree(dir)?;
    Ok(crate::manifest::workflows::read(&tree)?
        .iter()
        .any(|w| w.runs_apply))
}
