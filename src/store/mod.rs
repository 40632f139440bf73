//! The encrypted store: the source of truth for backed-up data. Blobs and snapshot manifests
//! are sealed with keys derived from one master key; key files wrap that key under
//! passphrases. Layout in a backend:
//!
//! ```text
//! config                 store id and a key check (no secrets)
//! keys/<id>.key          key files
//! data/<ab>/<blob id>    sealed blobs (segments of records)
//! snapshots/<id>         sealed snapshot manifests
//! restores/<account>/<run>  sealed restore journals (what each restore created)
//! ```

pub mod backend;
pub mod buffers;
pub mod crypto;
pub mod git;
pub mod keys;
pub mod lock;
pub mod s3;

use serde::{Deserialize, Serialize};

use backend::Backend;
use crypto::{BlobCipher, MasterKey, hex};
use keys::{KdfParams, KeyFile};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no cairn store at {location}")]
    NotAStore { location: String },
    #[error("a cairn store already exists at {location}")]
    AlreadyExists { location: String },
    #[error("the key does not open the store at {location}")]
    WrongKey { location: String },
    #[error("the passphrase does not open key file {key_file}")]
    WrongPassphrase { key_file: String },
    #[error(
        "no key file of the store at {location} opens with this passphrase{}",
        unreadable_note(unreadable)
    )]
    NoKeyFileOpens {
        location: String,
        /// Key files that could not be read at all.
        unreadable: Vec<String>,
    },
    #[error("key file {id} is the one this passphrase opens, and no other key file opens with it")]
    KeyInUse { id: String },
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("the raw key is not base64 of 32 bytes")]
    BadRawKey,
    #[error("key file {id} is unreadable: {reason}")]
    BadKeyFile { id: String, reason: String },
    #[error("key file {id} is the store's last; removing it would lock everyone out")]
    LastKeyFile { id: String },
    #[error("no key file {id}")]
    NoSuchKeyFile { id: String },
    #[error("blob {id} is missing from the store")]
    MissingBlob { id: String },
    #[error("blob {id} is damaged: {reason}")]
    CorruptBlob { id: String, reason: String },
    #[error("snapshot {id} is missing from the store")]
    MissingSnapshot { id: String },
    #[error("snapshot manifest {id} is unreadable: {reason}")]
    BadManifest { id: String, reason: String },
    #[error(
        "records of {object} must come in ascending Id order without repeats; {id} came after {previous}"
    )]
    Unordered {
        object: String,
        previous: String,
        id: String,
    },
    #[error("the store is locked by a {kind} ({holder}, {path})")]
    Locked {
        holder: String,
        kind: String,
        path: String,
    },
    #[error("no lock {id} in the store")]
    NoSuchLock { id: String },
    #[error("lock {path} is live: {what}")]
    LockLive { path: String, what: String },
    #[error("this run's lock {path} was removed or taken over while it worked")]
    LockLost { path: String },
    #[error("the run was interrupted before the snapshot was finished")]
    Interrupted,
    #[error("storage at {location} failed: {message}")]
    Backend { location: String, message: String },
    #[error("compression failed: {0}")]
    Compression(String),
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

fn unreadable_note(unreadable: &[String]) -> String {
    if unreadable.is_empty() {
        String::new()
    } else {
        format!(
            " (key files {} are unreadable and were skipped)",
            unreadable.join(", ")
        )
    }
}

impl StoreError {
    /// What the user can do about it.
    pub fn guidance(&self) -> String {
        match self {
            StoreError::NotAStore { .. } => "run `cairn init` to create the store, or check `store` in cairn.yaml".into(),
            StoreError::AlreadyExists { .. } => "use the existing store, or point `store` in cairn.yaml elsewhere".into(),
            StoreError::WrongKey { .. } => "the raw key (CAIRN_KEY) belongs to another store; use this store's key or a key file".into(),
            StoreError::WrongPassphrase { .. } | StoreError::NoKeyFileOpens { .. } => {
                "check the passphrase (CAIRN_PASSPHRASE); `cairn key list` shows the store's key files".into()
            }
            StoreError::EmptyPassphrase => "choose a passphrase; it is the only way to open the key file".into(),
            StoreError::BadRawKey => "give the key exactly as `cairn key raw` prints it (base64 of 32 bytes), or unset it and give the passphrase instead".into(),
            StoreError::BadKeyFile { .. } => "restore the key file from a copy, or use another key file".into(),
            StoreError::LastKeyFile { .. } => "add another key file first (`cairn key add`), then remove this one".into(),
            StoreError::KeyInUse { .. } => "removing it would lock this passphrase out; run the command with another key's passphrase (or the raw key, CAIRN_KEY), or add a key file first".into(),
            StoreError::NoSuchKeyFile { .. } => "`cairn key list` shows the store's key files".into(),
            StoreError::MissingBlob { .. } | StoreError::CorruptBlob { .. } | StoreError::MissingSnapshot { .. } | StoreError::BadManifest { .. } => {
                "run `cairn check --read-data` to see every affected snapshot; restore the store's files from a copy, or forget the affected snapshots".into()
            }
            StoreError::Unordered { .. } => "this is a bug in the source connector; please report it".into(),
            StoreError::Locked { path, .. } => format!("wait for it to finish (or pass a longer --wait); a lock whose process is gone goes stale and the next command takes it over; `cairn unlock --force --lock {path}` removes it now, failing its run if that still works"),
            StoreError::NoSuchLock { .. } => "it was released already, or give the path the error showed (locks/...); `cairn check` lists the locks".into(),
            StoreError::LockLive { .. } => "wait for that run to finish; pass --force only if you know its process is gone (its run fails rather than commit)".into(),
            StoreError::Interrupted => "run it again; the next run starts from the last finished snapshot".into(),
            StoreError::LockLost { .. } => "nothing of this run was committed; run it again (and do not `cairn unlock --force` a live run)".into(),
            StoreError::Backend { .. } => "check that the storage is reachable and writable, then run again; nothing was lost".into(),
            StoreError::Compression(_) | StoreError::Random(_) => "run again; if it persists, report it".into(),
        }
    }
}

/// The store's plaintext configuration: nothing in it is secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    version: u32,
    id: String,
    key_check: String,
}

pub const CONFIG: &str = "config";

/// An open store: a backend and the keys to read and write it. Cloning is cheap (the backend
/// is shared), so a thread sealing segments can own its handle.
#[derive(Clone)]
pub struct Store {
    backend: std::sync::Arc<dyn Backend>,
    master: MasterKey,
    cipher: BlobCipher,
    pub id: String,
    lock_timing: lock::LockTiming,
    /// The key file the passphrase opened; None when the raw key opened the store.
    pub opened_with: Option<String>,
}

pub fn blob_path(id: &str) -> String {
    format!("data/{}/{id}", &id[..2.min(id.len())])
}

pub fn snapshot_path(id: &str) -> String {
    format!("snapshots/{id}")
}

impl Store {
    /// Creates a store with this master key.
    pub fn init(backend: Box<dyn Backend>, master: MasterKey) -> Result<Store, StoreError> {
        if backend.exists(CONFIG)? {
            return Err(StoreError::AlreadyExists {
                location: backend.location(),
            });
        }
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
        let id = hex(&raw);
        let config = Config {
            version: 1,
            key_check: master.check_value(&id),
            id: id.clone(),
        };
        let json = serde_json::to_vec_pretty(&config)
            .map_err(|e| StoreError::Compression(e.to_string()))?;
        backend.put(CONFIG, &json)?;
        Ok(Store {
            cipher: BlobCipher::new(&master),
            backend: backend.into(),
            master,
            id,
            lock_timing: lock::LockTiming::default(),
            opened_with: None,
        })
    }

    /// Opens a store with its master key (the raw key of CI).
    pub fn open(backend: Box<dyn Backend>, master: MasterKey) -> Result<Store, StoreError> {
        let config = read_config(backend.as_ref())?;
        if master.check_value(&config.id) != config.key_check {
            return Err(StoreError::WrongKey {
                location: backend.location(),
            });
        }
        Ok(Store {
            cipher: BlobCipher::new(&master),
            backend: backend.into(),
            master,
            id: config.id,
            lock_timing: lock::LockTiming::default(),
            opened_with: None,
        })
    }

    /// Opens a store with a passphrase: any key file it opens will do.
    pub fn open_with_passphrase(
        backend: Box<dyn Backend>,
        passphrase: &str,
    ) -> Result<Store, StoreError> {
        read_config(backend.as_ref())?;
        // Every key file is tried: one that is unreadable or belongs to another passphrase
        // does not end the search.
        let KeyFiles {
            readable: files,
            unreadable,
        } = key_files_readable(backend.as_ref())?;
        for file in files {
            if let Ok(master) = file.open(passphrase) {
                let mut store = Store::open(backend, master)?;
                store.opened_with = Some(file.id);
                return Ok(store);
            }
        }
        Err(StoreError::NoKeyFileOpens {
            location: backend.location(),
            unreadable: unreadable.into_iter().map(|(id, _)| id).collect(),
        })
    }

    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// How this process's locks on the store age (`CAIRN_LOCK_STALE_AFTER`).
    pub fn with_lock_timing(mut self, timing: lock::LockTiming) -> Store {
        self.lock_timing = timing;
        self
    }

    /// Makes every write so far durable where other machines read the store (the git store
    /// pushes its ref); see `Backend::publish`.
    pub fn publish(&self) -> Result<Option<String>, StoreError> {
        self.backend.publish()
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master
    }

    pub fn add_key_file(
        &self,
        passphrase: &str,
        label: &str,
        params: KdfParams,
        created: &str,
    ) -> Result<KeyFile, StoreError> {
        let file = KeyFile::create(&self.master, passphrase, label, params, created)?;
        self.backend
            .put(&format!("keys/{}.key", file.id), &file.to_json())?;
        Ok(file)
    }

    pub fn key_files(&self) -> Result<Vec<KeyFile>, StoreError> {
        key_files(self.backend.as_ref())
    }

    /// The key files that parse, and the ids of those that do not, with why.
    pub fn key_files_readable(&self) -> Result<KeyFiles, StoreError> {
        key_files_readable(self.backend.as_ref())
    }

    pub fn remove_key_file(&self, id: &str) -> Result<(), StoreError> {
        let KeyFiles {
            readable: files,
            unreadable,
        } = self.key_files_readable()?;
        let known = files.iter().any(|f| f.id == id) || unreadable.iter().any(|(u, _)| u == id);
        if !known {
            return Err(StoreError::NoSuchKeyFile { id: id.to_string() });
        }
        if files.len() == 1 && files[0].id == id {
            return Err(StoreError::LastKeyFile { id: id.to_string() });
        }
        if self.opened_with.as_deref() == Some(id) {
            return Err(StoreError::KeyInUse { id: id.to_string() });
        }
        self.backend.delete(&format!("keys/{id}.key"))
    }

    /// Stores a blob, unless one with the same content is there already; returns its id.
    pub fn put_blob(&self, kind: &str, plaintext: &[u8]) -> Result<String, StoreError> {
        // The id is keyed to the compressed content: as unique as the plaintext (compression
        // is deterministic and reversible) and a tenth of the bytes to hash.
        let compressed = crypto::Compressed::new(plaintext)?;
        let id = self.cipher.blob_id(kind, compressed.bytes());
        let path = blob_path(&id);
        // A copy that is there but does not verify (a flipped byte, a truncated file) is
        // replaced: damage heals with the next write of the same content instead of every new
        // snapshot pointing at it.
        let sound = match self.backend.get(&path)? {
            Some(existing) => self.cipher.authenticate(&id, existing).is_ok(),
            None => false,
        };
        if sound {
            compressed.give_back();
        } else {
            let sealed = self.cipher.seal_compressed(&id, compressed)?;
            let written = self.backend.put(&path, &sealed);
            buffers::give_back(sealed);
            written?;
        }
        Ok(id)
    }

    pub fn get_blob(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let sealed = self
            .backend
            .get(&blob_path(id))?
            .ok_or_else(|| StoreError::MissingBlob { id: id.to_string() })?;
        self.cipher.open(id, sealed)
    }

    /// Fails when the blob is missing or does not authenticate (changed, truncated, swapped).
    pub fn verify_blob(&self, id: &str) -> Result<(), StoreError> {
        let sealed = self
            .backend
            .get(&blob_path(id))?
            .ok_or_else(|| StoreError::MissingBlob { id: id.to_string() })?;
        self.cipher.authenticate(id, sealed)
    }

    pub fn blob_exists(&self, id: &str) -> Result<bool, StoreError> {
        self.backend.exists(&blob_path(id))
    }

    /// Ids of every blob in the store.
    pub fn list_blobs(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .backend
            .list("data")?
            .into_iter()
            .filter_map(|p| p.rsplit('/').next().map(str::to_string))
            .collect())
    }

    /// The raw sealed bytes of a blob, for tests and repair tools.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Seals and stores a snapshot manifest (after its blobs: the write order that keeps the
    /// store valid after a crash). Its id is keyed to its content.
    pub fn put_snapshot(&self, manifest: &[u8]) -> Result<String, StoreError> {
        let id = self.cipher.blob_id("snapshot", manifest)[..16].to_string();
        let sealed = self.cipher.seal(&id, manifest)?;
        self.backend.put(&snapshot_path(&id), &sealed)?;
        Ok(id)
    }

    pub fn get_snapshot(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let sealed = self
            .backend
            .get(&snapshot_path(id))?
            .ok_or_else(|| StoreError::MissingSnapshot { id: id.to_string() })?;
        self.cipher.open(id, sealed).map_err(|e| match e {
            StoreError::CorruptBlob { reason, .. } => StoreError::BadManifest {
                id: id.to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Seals and stores a document that is neither a blob nor a snapshot (a restore's journal)
    /// at `dir/name`, replacing what was there. The path is sealed in: a document moved to
    /// another name does not open.
    pub fn put_document(&self, dir: &str, name: &str, plaintext: &[u8]) -> Result<(), StoreError> {
        let path = format!("{dir}/{name}");
        let sealed = self.cipher.seal(&path, plaintext)?;
        self.backend.put(&path, &sealed)
    }

    /// The document at `dir/name`, if there is one.
    pub fn get_document(&self, dir: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = format!("{dir}/{name}");
        match self.backend.get(&path)? {
            Some(sealed) => self.cipher.open(&path, sealed).map(Some),
            None => Ok(None),
        }
    }

    /// The names of the documents under `dir` (as `put_document` was given them).
    pub fn list_documents(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{dir}/");
        Ok(self
            .backend
            .list(dir)?
            .into_iter()
            .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    pub fn list_snapshots(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .backend
            .list("snapshots")?
            .into_iter()
            .filter_map(|p| p.rsplit('/').next().map(str::to_string))
            .collect())
    }
}

fn read_config(backend: &dyn Backend) -> Result<Config, StoreError> {
    let bytes = backend.get(CONFIG)?.ok_or_else(|| StoreError::NotAStore {
        location: backend.location(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Backend {
        location: backend.location(),
        message: format!("the store's config is damaged: {e}"),
    })
}

/// A store's key files: those that parse, and the ids of those that do not, with why.
pub struct KeyFiles {
    pub readable: Vec<KeyFile>,
    pub unreadable: Vec<(String, String)>,
}

fn key_files_readable(backend: &dyn Backend) -> Result<KeyFiles, StoreError> {
    let mut files = KeyFiles {
        readable: Vec::new(),
        unreadable: Vec::new(),
    };
    for path in backend.list("keys")? {
        let id = path
            .trim_start_matches("keys/")
            .trim_end_matches(".key")
            .to_string();
        if let Some(bytes) = backend.get(&path)? {
            match KeyFile::from_json(&id, &bytes) {
                Ok(file) => files.readable.push(file),
                Err(e) => files.unreadable.push((id, e.to_string())),
            }
        }
    }
    Ok(files)
}

fn key_files(backend: &dyn Backend) -> Result<Vec<KeyFile>, StoreError> {
    let mut files = Vec::new();
    for path in backend.list("keys")? {
        if let Some(bytes) = backend.get(&path)? {
            let id = path
                .trim_start_matches("keys/")
                .trim_end_matches(".key")
                .to_string();
            files.push(KeyFile::from_json(&id, &bytes)?);
        }
    }
    Ok(files)
}

/// A new store in a temporary directory (gone when the directory is dropped), for unit tests.
#[cfg(test)]
pub(crate) fn temporary() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::init(
        Box::new(backend::LocalBackend::new(dir.path())),
        crypto::MasterKey::generate().expect("a key"),
    )
    .expect("a new store");
    (dir, store)
}
