//! `cairn key add|list|remove|raw`: the key files that open a store.

use std::path::Path;

use crate::error::Error;
use crate::project::Project;
use crate::project::store_access::{self, Env};
use crate::store::keys::{self, KdfParams};

/// The variable `cairn key add` reads the new passphrase from.
pub const NEW_PASSPHRASE_ENV: &str = "CAIRN_NEW_PASSPHRASE";

pub fn add(dir: &Path, label: &str, kdf: KdfParams, env: Env<'_>) -> Result<String, Error> {
    let project = Project::open(dir, env)?;
    let store = project.store()?;
    let passphrase = env(NEW_PASSPHRASE_ENV).ok_or_else(|| Error::MissingVariable {
        name: NEW_PASSPHRASE_ENV.into(),
        purpose: "the passphrase of the new key file".into(),
    })?;
    let created = crate::time::format_datetime_z(crate::time::now_ms());
    let file = store.add_key_file(&passphrase, label, kdf, &created)?;
    Ok(format!(
        "Added key file keys/{}.key (\"{}\").\n{}",
        file.id,
        file.label,
        store_access::publish(store)?
    ))
}

pub fn list(dir: &Path, env: Env<'_>) -> Result<String, Error> {
    let project = Project::open(dir, env)?;
    let store = project.store()?;
    let mut out = String::new();
    let files = store.key_files_readable()?;
    for file in files.readable {
        let in_use = if store.opened_with.as_deref() == Some(file.id.as_str()) {
            "  (in use: this passphrase opens it)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{}  {}  created {}{in_use}\n",
            file.id, file.label, file.created
        ));
    }
    for (id, why) in files.unreadable {
        out.push_str(&format!(
            "{id}  UNREADABLE: {why} (`cairn key remove {id}` removes it)\n"
        ));
    }
    Ok(out)
}

pub fn remove(dir: &Path, id: &str, env: Env<'_>) -> Result<String, Error> {
    let project = Project::open(dir, env)?;
    let store = project.store()?;
    store.remove_key_file(id)?;
    Ok(format!(
        "Removed key file keys/{id}.key.\n{}",
        store_access::publish(store)?
    ))
}

/// The raw master key, for a CI secret. It opens the store without any passphrase.
pub fn raw(dir: &Path, env: Env<'_>) -> Result<String, Error> {
    let project = Project::open(dir, env)?;
    let store = project.store()?;
    Ok(format!("{}\n", keys::encode_raw_key(store.master_key())))
}
