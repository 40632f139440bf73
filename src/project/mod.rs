//! The project a command works on: a config repository, the state branch beside it and the
//! store it names, opened from the environment. Used by the commands and by reconcile; each
//! part is opened once, when first asked for, and a task's status is read one way everywhere.

pub mod ask;
pub mod connect;
pub mod store_access;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::gitops::StateBranch;
use crate::manifest::model::{BackupTask, Repository, State as StateSettings};
use crate::manifest::{ConfigTree, LoadedConfig, load};
use crate::state::status::TaskStatus;
use crate::store::Store;

/// Reads the environment (secrets, keys, CI markers); tests and embedders supply their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub struct Project<'e> {
    dir: PathBuf,
    config: LoadedConfig,
    env: Env<'e>,
    state: OnceCell<StateBranch>,
    store: OnceCell<Store>,
}

impl<'e> Project<'e> {
    /// The config repository in `dir`'s work tree, loaded with its diagnostics (it may have
    /// errors: `repository()` and `task()` say so when they matter).
    pub fn open(dir: &Path, env: Env<'e>) -> Result<Project<'e>, Error> {
        Ok(Project::with_config(
            dir,
            load(&ConfigTree::work_tree(dir)?)?,
            env,
        ))
    }

    /// A project whose config is already loaded.
    pub fn with_config(dir: &Path, config: LoadedConfig, env: Env<'e>) -> Project<'e> {
        Project {
            dir: dir.to_path_buf(),
            config,
            env,
            state: OnceCell::new(),
            store: OnceCell::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LoadedConfig {
        &self.config
    }

    pub fn into_config(self) -> LoadedConfig {
        self.config
    }

    pub fn env(&self) -> Env<'e> {
        self.env
    }

    /// The repository manifest (cairn.yaml), which must be valid; a broken task manifest
    /// does not stop commands that read the store (restore on the day it is needed).
    pub fn repository(&self) -> Result<&Repository, Error> {
        self.config
            .repository
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig {
                dir: self.dir.clone(),
            })
    }

    /// The repository manifest, with every manifest free of errors: for the commands that act
    /// on the tasks or change the store (apply, forget, repair, prune, check, init, key).
    pub fn require_valid(&self) -> Result<&Repository, Error> {
        if self.config.has_errors() {
            return Err(Error::InvalidConfig {
                dir: self.dir.clone(),
            });
        }
        self.repository()
    }

    /// Where the state branch is: from cairn.yaml when it reads, else the defaults (so that a
    /// command reporting on a broken config still finds the state).
    pub fn state_settings(&self) -> StateSettings {
        self.config
            .repository
            .as_ref()
            .map(|r| r.state.clone())
            .unwrap_or_default()
    }

    /// The state branch, opened once (not fetched: `fetch_state` brings the remote's).
    pub fn state(&self) -> Result<&StateBranch, Error> {
        if let Some(state) = self.state.get() {
            return Ok(state);
        }
        let settings = self.state_settings();
        let state = StateBranch::open(&self.dir, &settings.branch, &settings.remote)?;
        Ok(self.state.get_or_init(|| state))
    }

    /// The state branch with what its remote holds.
    pub fn fetch_state(&self) -> Result<&StateBranch, Error> {
        let state = self.state()?;
        state.fetch()?;
        Ok(state)
    }

    /// The state branch, fetched when the remote answers: for commands that only report, and
    /// say what they read.
    pub fn state_fetched_if_reachable(&self) -> Result<&StateBranch, Error> {
        let state = self.state()?;
        let _ = state.fetch();
        Ok(state)
    }

    /// The state branch with what its remote holds, when `dir` is in a git repository (outside
    /// one there is none, and a command that changes the store changes only the store).
    pub fn fetch_state_if_git(&self) -> Result<Option<&StateBranch>, Error> {
        if git2::Repository::discover(&self.dir).is_err() {
            return Ok(None);
        }
        self.fetch_state().map(Some)
    }

    /// Commits `changes` to the state branch and pushes them when cairn.yaml says so and there
    /// is a remote: the commit and whether it was pushed, None when nothing changed. Callers
    /// publish the store first, so the state never names what the remote lacks.
    pub fn commit_state(
        &self,
        state: &StateBranch,
        changes: &[crate::gitops::Change],
        message: &str,
    ) -> Result<Option<Committed>, Error> {
        let Some(commit) = state.commit(changes, message)? else {
            return Ok(None);
        };
        let push = self.repository()?.state.push && state.has_remote();
        if push {
            state.push(changes, message)?;
        }
        Ok(Some((commit, push)))
    }

    /// The store cairn.yaml names, opened once with the key from the environment.
    pub fn store(&self) -> Result<&Store, Error> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let store = store_access::open(&self.dir, self.repository()?, self.env)?;
        Ok(self.store.get_or_init(|| store))
    }

    /// A task's status from the state branch; None before its first run. An unreadable one is
    /// an error wherever it is read: no command may take it for "never backed up".
    pub fn status(&self, task: &str) -> Result<Option<TaskStatus>, Error> {
        let state = self.state()?;
        read_status(state, task)
    }

    /// The ids of the tasks the state branch has a status for.
    pub fn tasks_with_state(&self) -> Result<Vec<String>, Error> {
        self.state()?.list("state")
    }

    /// A task of the config by id.
    pub fn task(&self, id: &str) -> Result<&BackupTask, Error> {
        let known = || -> Vec<String> {
            self.config
                .tasks
                .iter()
                .map(|t| t.task.id.clone())
                .collect()
        };
        match self.config.tasks.iter().find(|t| t.task.id == id) {
            Some(loaded) => Ok(&loaded.task),
            // It may be the task whose manifest is broken: say so rather than "no such task".
            None if self.config.has_errors() => Err(Error::InvalidConfig {
                dir: self.dir.clone(),
            }),
            None => Err(Error::NoSuchTask {
                id: id.to_string(),
                dir: self.dir.clone(),
                known: known(),
            }),
        }
    }
}

/// A state commit, and whether it was pushed.
pub type Committed = (git2::Oid, bool);

/// A task's status from a state branch; None before its first run, an error when unreadable.
pub fn read_status(state: &StateBranch, task: &str) -> Result<Option<TaskStatus>, Error> {
    let path = TaskStatus::path(task);
    match state.read(&path)? {
        None => Ok(None),
        Some(bytes) => TaskStatus::parse(&bytes)
            .map(Some)
            .map_err(|e| Error::UnreadableStatus {
                task: task.to_string(),
                path,
                branch: state.branch.clone(),
                detail: e.to_string(),
            }),
    }
}
