//! `cairn init`: create the encrypted store of a config repository, and its first key file.

use std::path::PathBuf;

use super::store_access::{self, Env};
use crate::error::Error;
use crate::store::Store;
use crate::store::crypto::MasterKey;
use crate::store::keys::{self, KdfParams};

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    /// Names the first key file (whose passphrase it is).
    pub label: String,
    pub kdf: KdfParams,
}

pub fn init(options: &InitOptions, env: Env<'_>) -> Result<String, Error> {
    let repository = store_access::repository(&options.dir)?;
    let encryption = &repository.encryption;
    let backend = store_access::backend(&options.dir, &repository)?;
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
    out.push_str("Keep a copy of the passphrase or the raw key somewhere safe: without them the backups cannot be read.\n");
    Ok(out)
}
