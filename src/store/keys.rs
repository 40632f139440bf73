//! Key files: the master key wrapped under a key derived from a passphrase with Argon2id.
//! Several key files can wrap one master key, so each person or CI job has its own passphrase
//! and any one can be removed.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};

type GcmNonce = aes_gcm::aead::Nonce<Aes256Gcm>;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::StoreError;
use super::crypto::{MasterKey, hex};

/// Argon2id cost. The default follows OWASP's guidance for interactive logins; tests use less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// Cheap parameters, for tests only: they make a passphrase easy to guess.
    pub fn insecure_for_tests() -> Self {
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyFile {
    pub version: u32,
    /// Names the file in `keys/`.
    pub id: String,
    pub label: String,
    pub created: String,
    pub kdf: String,
    pub params: KdfParams,
    pub salt: String,
    pub nonce: String,
    /// The master key, sealed with AES-256-GCM under the passphrase-derived key.
    pub wrapped_key: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn passphrase_key(
    passphrase: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|e| StoreError::BadKeyFile {
        id: String::new(),
        reason: format!("Argon2 parameters: {e}"),
    })?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| StoreError::BadKeyFile {
            id: String::new(),
            reason: format!("Argon2: {e}"),
        })?;
    Ok(key)
}

fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(bytes)
}

impl KeyFile {
    pub fn create(
        master: &MasterKey,
        passphrase: &str,
        label: &str,
        params: KdfParams,
        created: &str,
    ) -> Result<KeyFile, StoreError> {
        if passphrase.is_empty() {
            return Err(StoreError::EmptyPassphrase);
        }
        let salt: [u8; 16] = random()?;
        let nonce: [u8; 12] = random()?;
        let id = hex(&random::<8>()?);
        let kek = passphrase_key(passphrase, &salt, params)?;
        let kek: &[u8; 32] = &kek;
        let wrapped = Aes256Gcm::new(kek.into())
            .encrypt(
                <&GcmNonce>::from(&nonce),
                Payload {
                    msg: master.as_bytes(),
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| StoreError::BadKeyFile {
                id: id.clone(),
                reason: "could not wrap the key".into(),
            })?;
        Ok(KeyFile {
            version: 1,
            label: label.to_string(),
            created: created.to_string(),
            kdf: "argon2id".to_string(),
            params,
            salt: b64().encode(salt),
            nonce: b64().encode(nonce),
            wrapped_key: b64().encode(wrapped),
            id,
        })
    }

    /// The master key, if the passphrase is this file's.
    pub fn open(&self, passphrase: &str) -> Result<MasterKey, StoreError> {
        let bad = |reason: &str| StoreError::BadKeyFile {
            id: self.id.clone(),
            reason: reason.to_string(),
        };
        if self.version != 1 || self.kdf != "argon2id" {
            return Err(bad("unknown key file version or KDF; upgrade cairn"));
        }
        let salt = b64()
            .decode(&self.salt)
            .map_err(|_| bad("salt is not base64"))?;
        let nonce = b64()
            .decode(&self.nonce)
            .map_err(|_| bad("nonce is not base64"))?;
        let wrapped = b64()
            .decode(&self.wrapped_key)
            .map_err(|_| bad("wrappedKey is not base64"))?;
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| bad("nonce has the wrong length"))?;
        let kek = passphrase_key(passphrase, &salt, self.params)?;
        let kek: &[u8; 32] = &kek;
        let key = Zeroizing::new(
            Aes256Gcm::new(kek.into())
                .decrypt(
                    <&GcmNonce>::from(&nonce),
                    Payload {
                        msg: &wrapped,
                        aad: self.id.as_bytes(),
                    },
                )
                .map_err(|_| StoreError::WrongPassphrase {
                    key_file: self.id.clone(),
                })?,
        );
        MasterKey::from_bytes(&key).ok_or_else(|| bad("the wrapped key has the wrong length"))
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub fn from_json(id: &str, bytes: &[u8]) -> Result<KeyFile, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::BadKeyFile {
            id: id.to_string(),
            reason: e.to_string(),
        })
    }
}

/// A raw master key as given in an environment variable for CI: base64 of 32 bytes.
pub fn raw_key(text: &str) -> Result<MasterKey, StoreError> {
    let bytes = Zeroizing::new(
        b64()
            .decode(text.trim())
            .map_err(|_| StoreError::BadRawKey)?,
    );
    MasterKey::from_bytes(&bytes).ok_or(StoreError::BadRawKey)
}

pub fn encode_raw_key(key: &MasterKey) -> String {
    b64().encode(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_opens_with_its_passphrase_only() {
        let master = MasterKey::generate().expect("random");
        let file = KeyFile::create(
            &master,
            "correct horse",
            "ops",
            KdfParams::insecure_for_tests(),
            "2026-01-01T00:00:00Z",
        )
        .expect("create");
        let back = KeyFile::from_json(&file.id, &file.to_json()).expect("parse");
        assert_eq!(
            back.open("correct horse").expect("open").as_bytes(),
            master.as_bytes()
        );
        assert!(matches!(
            back.open("wrong horse"),
            Err(StoreError::WrongPassphrase { .. })
        ));
        let mut tampered = back.clone();
        tampered.id = "0000000000000000".into();
        assert!(
            tampered.open("correct horse").is_err(),
            "the id is bound into the wrapping"
        );
        assert!(matches!(
            KeyFile::create(&master, "", "x", KdfParams::insecure_for_tests(), ""),
            Err(StoreError::EmptyPassphrase)
        ));
        assert_eq!(
            raw_key(&encode_raw_key(&master)).expect("raw").as_bytes(),
            master.as_bytes()
        );
        assert!(matches!(raw_key("c2hvcnQ="), Err(StoreError::BadRawKey)));
        assert!(!format!("{master:?}").contains(&hex(master.as_bytes())[..8]));
    }
}
