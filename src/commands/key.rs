//! `cairn key add|list|remove|raw`: the key files that open a store.

use std::path::Path;

use serde::Serialize;

use super::Report;
use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::Env;
use crate::store::keys::{self, KdfParams};

/// The variable `cairn key add` reads the new passphrase from.
pub const NEW_PASSPHRASE_ENV: &str = "CAIRN_NEW_PASSPHRASE";

/// A key file that `key add` wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyAdded {
    pub id: String,
    pub label: String,
    /// Where the store was published, when it lives on a remote.
    pub published: Option<String>,
}

impl Report for KeyAdded {
    fn text(&self) -> String {
        format!(
            "Added key file keys/{}.key (\"{}\").\n{}",
            self.id,
            self.label,
            super::published_line(self.published.as_deref())
        )
    }
}

/// A key file that `key remove` removed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRemoved {
    pub id: String,
    pub published: Option<String>,
}

impl Report for KeyRemoved {
    fn text(&self) -> String {
        format!(
            "Removed key file keys/{}.key.\n{}",
            self.id,
            super::published_line(self.published.as_deref())
        )
    }
}

/// The store's master key, encoded for a CI secret.
#[derive(Debug, Clone, Serialize)]
pub struct RawKey {
    pub key: String,
}

impl Report for RawKey {
    fn text(&self) -> String {
        format!("{}\n", self.key)
    }
}

pub fn add(dir: &Path, label: &str, kdf: KdfParams, env: Env<'_>) -> Result<KeyAdded, Error> {
    let project = Project::open(dir, env)?;
    project.require_valid()?;
    let store = project.store()?;
    let passphrase = match env(NEW_PASSPHRASE_ENV) {
        Some(given) => given,
        None => crate::project::ask::ask(crate::project::ask::Question::NewPassphrase {
            for_what: "the new key file",
        })?
        .ok_or_else(|| Error::MissingVariable {
            name: NEW_PASSPHRASE_ENV.into(),
            purpose: "the passphrase of the new key file".into(),
        })?,
    };
    let created = crate::time::format_datetime_z(crate::time::now_ms());
    let file = store.add_key_file(&passphrase, label, kdf, &created)?;
    Ok(KeyAdded {
        id: file.id,
        label: file.label,
        published: store.publish()?,
    })
}

/// A key file as `key list` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyEntry {
    pub id: String,
    pub label: String,
    pub created: String,
    /// This process's passphrase opens it.
    pub in_use: bool,
}

/// The store's key files; those that do not read, with why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    pub keys: Vec<KeyEntry>,
    /// (id, why)
    pub unreadable: Vec<(String, String)>,
}

impl Report for KeyList {
    fn text(&self) -> String {
        let mut out = String::new();
        for key in &self.keys {
            let in_use = if key.in_use {
                "  (in use: this passphrase opens it)"
            } else {
                ""
            };
            out.push_str(&format!(
                "{}  {}  created {}{in_use}\n",
                key.id, key.label, key.created
            ));
        }
        for (id, why) in &self.unreadable {
            out.push_str(&format!(
                "{id}  UNREADABLE: {why} (`cairn key remove {id}` removes it)\n"
            ));
        }
        out
    }
}

pub fn list(dir: &Path, env: Env<'_>) -> Result<KeyList, Error> {
    let project = Project::open(dir, env)?;
    project.require_valid()?;
    let store = project.store()?;
    let files = store.key_files_readable()?;
    Ok(KeyList {
        keys: files
            .readable
            .into_iter()
            .map(|file| KeyEntry {
                in_use: store.opened_with.as_deref() == Some(file.id.as_str()),
                id: file.id,
                label: file.label,
                created: file.created,
            })
            .collect(),
        unreadable: files.unreadable,
    })
}

pub fn remove(dir: &Path, id: &str, env: Env<'_>) -> Result<KeyRemoved, Error> {
    let project = Project::open(dir, env)?;
    project.require_valid()?;
    let store = project.store()?;
    store.remove_key_file(id)?;
    Ok(KeyRemoved {
        id: id.to_string(),
        published: store.publish()?,
    })
}

/// The raw master key, for a CI secret. It opens the store without any passphrase.
pub fn raw(dir: &Path, env: Env<'_>) -> Result<RawKey, Error> {
    let project = Project::open(dir, env)?;
    project.require_valid()?;
    let store = project.store()?;
    Ok(RawKey {
        key: keys::encode_raw_key(store.master_key()),
    })
}
