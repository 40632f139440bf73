//! Opening a config repository's store: the backend from cairn.yaml, the key from the
//! environment (a raw key, or a passphrase for one of the key files).

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::model::{Repository, Store as StoreSetting};
use crate::manifest::{ConfigTree, load};
use crate::store::backend::{Backend, LocalBackend};
use crate::store::git::GitBackend;
use crate::store::{Store, keys};

/// Reads the environment; tests and embedders can supply their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The repository manifest of a config directory, which must be valid.
pub fn repository(dir: &Path) -> Result<Repository, Error> {
    let config = load(&ConfigTree::work_tree(dir)?)?;
    match config.repository {
        Some(repository) if !config.has_errors() => Ok(repository),
        _ => Err(Error::InvalidConfig {
            dir: dir.to_path_buf(),
        }),
    }
}

/// Where a local store is: its path is relative to the config directory.
pub fn store_dir(dir: &Path, repository: &Repository) -> Result<PathBuf, Error> {
    match &repository.store {
        StoreSetting::Local(local) => Ok(dir.join(&local.path)),
        StoreSetting::Git(_) => Err(Error::UnsupportedStore {
            backend: "git".into(),
        }),
        StoreSetting::S3(_) => Err(Error::UnsupportedStore {
            backend: "S3".into(),
        }),
    }
}

pub fn backend(dir: &Path, repository: &Repository) -> Result<Box<dyn Backend>, Error> {
    match &repository.store {
        StoreSetting::Git(git) => Ok(Box::new(GitBackend::open(dir, &git.reference)?)),
        _ => Ok(Box::new(LocalBackend::new(store_dir(dir, repository)?))),
    }
}

/// Opens the store with the raw key if one is set, else with the passphrase.
pub fn open(dir: &Path, repository: &Repository, env: Env<'_>) -> Result<Store, Error> {
    let backend = backend(dir, repository)?;
    let encryption = &repository.encryption;
    if let Some(raw) = env(&encryption.key_env) {
        return Ok(Store::open(backend, keys::raw_key(&raw)?)?);
    }
    if let Some(passphrase) = env(&encryption.passphrase_env) {
        return Ok(Store::open_with_passphrase(backend, &passphrase)?);
    }
    Err(Error::NoKey {
        key_env: encryption.key_env.clone(),
        passphrase_env: encryption.passphrase_env.clone(),
    })
}
