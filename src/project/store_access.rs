//! Opening a config repository's store: the backend from cairn.yaml, the key from the
//! environment (a raw key, or a passphrase for one of the key files).

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::model::{Repository, Store as StoreSetting};

use crate::store::backend::{Backend, LocalBackend};
use crate::store::git::{GitBackend, GitRemote};
use crate::store::lock::{LockTiming, STALE_AFTER_VARIABLE};
use crate::store::s3::{S3Backend, S3Settings};
use crate::store::{Store, keys};

pub use super::Env;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Where a local store is (its path is relative to the config directory); None for the other
/// backends, which have no directory.
pub fn local_store_dir(dir: &Path, repository: &Repository) -> Option<PathBuf> {
    match &repository.store {
        StoreSetting::Local(local) => Some(dir.join(&local.path)),
        StoreSetting::Git(_) | StoreSetting::S3(_) => None,
    }
}

/// A local store that lies inside the git work tree holding `dir`: the place a CI runner's
/// checkout throws away after every job. None for a store elsewhere, or another backend.
pub fn store_inside_checkout(dir: &Path, repository: &Repository) -> Option<PathBuf> {
    let local = local_store_dir(dir, repository)?;
    let repo = git2::Repository::discover(dir).ok()?;
    let workdir = std::fs::canonicalize(repo.workdir()?).ok()?;
    let absolute = normalise(
        &std::fs::canonicalize(dir)
            .ok()?
            .join(local.strip_prefix(dir).unwrap_or(&local)),
    );
    absolute.starts_with(&workdir).then_some(local)
}

/// `a/b/../c` as `a/c`, without touching the disk (the store may not exist yet).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The CI service whose runner is running this, when it is one that throws its checkout away
/// (and `git clean`s it even on a self-hosted machine).
pub fn ephemeral_ci(env: Env<'_>) -> Option<&'static str> {
    if env("GITHUB_ACTIONS").as_deref() == Some("true") {
        Some("GitHub Actions")
    } else if env("GITLAB_CI").is_some() {
        Some("GitLab CI")
    } else {
        None
    }
}

pub fn backend(
    dir: &Path,
    repository: &Repository,
    env: Env<'_>,
) -> Result<Box<dyn Backend>, Error> {
    if let Some(ci) = ephemeral_ci(env)
        && let Some(path) = store_inside_checkout(dir, repository)
    {
        return Err(Error::StoreInCheckout {
            path,
            ci: ci.to_string(),
        });
    }
    match &repository.store {
        StoreSetting::Git(git) => {
            if let Some(ci) = ephemeral_ci(env) {
                let has_remote = git2::Repository::discover(dir)
                    .is_ok_and(|r| r.find_remote(&repository.state.remote).is_ok());
                if !repository.state.push || !has_remote {
                    return Err(Error::GitStoreNotPushed {
                        remote: repository.state.remote.clone(),
                        ci: ci.to_string(),
                    });
                }
            }
            Ok(Box::new(GitBackend::open(
                dir,
                &git.reference,
                Some(GitRemote {
                    name: repository.state.remote.clone(),
                    push: repository.state.push,
                }),
            )?))
        }
        StoreSetting::S3(s3) => {
            let secret = |name: &str, purpose: &str| {
                env(name).ok_or_else(|| Error::MissingVariable {
                    name: name.to_string(),
                    purpose: purpose.to_string(),
                })
            };
            let settings = S3Settings {
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
                region: s3.region.clone().or_else(|| env("AWS_REGION")),
                endpoint: s3.endpoint.clone(),
                access_key_id: secret(&s3.access_key_id_env, "the S3 access key id")?,
                secret_access_key: secret(&s3.secret_access_key_env, "the S3 secret access key")?,
            };
            Ok(Box::new(S3Backend::new(&settings)?))
        }
        StoreSetting::Local(local) => Ok(Box::new(LocalBackend::new(dir.join(&local.path)))),
    }
}

/// Opens the store with the raw key if one is set, else with the passphrase.
pub fn open(dir: &Path, repository: &Repository, env: Env<'_>) -> Result<Store, Error> {
    let timing = lock_timing(env)?;
    open_backend(backend(dir, repository, env)?, repository, env)
        .map(|store| store.with_lock_timing(timing))
        .map_err(|e| match (e, &repository.store) {
        // In a fresh clone, `cairn init` would make a second, empty store: say where the
        // real one is instead.
        (Error::Store(crate::store::StoreError::NotAStore { location }), StoreSetting::Git(git)) => {
            Error::Usage {
                message: format!(
                    "no cairn store at {location}, and the remote `{}` has none either",
                    repository.state.remote
                ),
                next: format!(
                    "push it from the clone where `cairn init` created it (`git push {} {}`); run `cairn init` only for a new deployment",
                    repository.state.remote, git.reference
                ),
            }
        }
        (other, _) => other,
    })
}

/// How long this process's locks may go unrefreshed before others take them over.
fn lock_timing(env: Env<'_>) -> Result<LockTiming, Error> {
    match env(STALE_AFTER_VARIABLE) {
        None => Ok(LockTiming::default()),
        Some(text) => LockTiming::parse(&text).ok_or_else(|| Error::Usage {
            message: format!("{STALE_AFTER_VARIABLE}={text:?} is not a duration"),
            next: "write it like 90s, 15m or 1h (at least one second)".into(),
        }),
    }
}

fn open_backend(
    backend: Box<dyn Backend>,
    repository: &Repository,
    env: Env<'_>,
) -> Result<Store, Error> {
    let encryption = &repository.encryption;
    if let Some(raw) = env(&encryption.key_env) {
        return Ok(Store::open(backend, keys::raw_key(&raw)?)?);
    }
    if let Some(passphrase) = env(&encryption.passphrase_env) {
        return Ok(Store::open_with_passphrase(backend, &passphrase)?);
    }
    let location = backend.location();
    if let Some(passphrase) =
        super::ask::ask(super::ask::Question::Passphrase { store: &location })?
    {
        return Ok(Store::open_with_passphrase(backend, &passphrase)?);
    }
    Err(Error::NoKey {
        key_env: encryption.key_env.clone(),
        passphrase_env: encryption.passphrase_env.clone(),
    })
}

/// Takes a lock on the store, waiting up to `wait` for a conflicting one, and says (as
/// notices, `progress::notice`) what it waits for and which stale locks it took over.
pub fn lock(
    store: &Store,
    kind: crate::store::lock::LockKind,
    wait: std::time::Duration,
) -> Result<crate::store::lock::Lock, Error> {
    let lock = store.lock_waiting(kind, wait, &mut |line| crate::progress::notice(line))?;
    for line in &lock.took_over {
        crate::progress::notice(&format!("note: {line}"));
    }
    Ok(lock)
}
