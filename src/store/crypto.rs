//! What a store's master key does: blobs compressed with zstd, named by a keyed BLAKE3 hash of
//! that (so nothing in git lets anyone confirm that a known record exists; BLAKE3 is several
//! times faster than the HMAC-SHA256 it replaced, which was once the backup's largest single
//! cost), then sealed with AES-256-GCM under a fresh random nonce, with the blob id as
//! associated data (so a blob cannot be passed off as another).

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadCore, AeadInOut, KeyInit};

type GcmNonce = aes_gcm::aead::Nonce<Aes256Gcm>;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::StoreError;

/// Sealed blobs start with this, then the 12-byte nonce, then ciphertext and tag.
const MAGIC: &[u8; 4] = b"CRB1";
const NONCE_LEN: usize = 12;
/// A blob never decompresses to more than this: a corrupt or hostile one cannot exhaust memory.
pub const MAX_PLAINTEXT: usize = 512 * 1024 * 1024;
/// zstd level 1 with a hash table of 2^14 entries. Segments keep their records' fields in
/// columns (`snapshot::columns`), whose repeats lie further apart than those of record after
/// record of JSON: on the 544 MB of a spread org of 1M records, in 4 MiB segments, 2^14 gives
/// 36.5 MiB where 2^12 (the L1-sized table that suited JSON rows) gives 46.6, at the same
/// speed; levels 2 to 4 are slower and no smaller.
const ZSTD_LEVEL: i32 = 1;
const ZSTD_HASH_LOG: u32 = 14;

/// Compression contexts kept for the process's next blob: made once, as one per blob costs
/// more than compressing a small blob, and kept here rather than per thread because many
/// threads live for one job (a lookup's threads per layer, the blocking pool's), and a context
/// made per thread cost a search 1.6% of its time (`ZSTD_createDCtx`, at 1M records).
static COMPRESSORS: ContextPool<zstd::bulk::Compressor<'static>> = ContextPool::new();
/// Likewise for opening blobs, which a diff or a rebuilt index does by the thousand.
static DECOMPRESSORS: ContextPool<zstd::bulk::Decompressor<'static>> = ContextPool::new();

/// Contexts kept: one per thread that reads or writes at once, and spares.
const CONTEXTS_KEPT: usize = 8;

struct ContextPool<T>(std::sync::Mutex<Vec<T>>);

impl<T> ContextPool<T> {
    const fn new() -> ContextPool<T> {
        ContextPool(std::sync::Mutex::new(Vec::new()))
    }

    /// Runs `work` with a kept context, or a new one `make` makes, and keeps it after.
    fn with<R>(
        &self,
        make: impl FnOnce() -> std::io::Result<T>,
        work: impl FnOnce(&mut T) -> std::io::Result<R>,
    ) -> std::io::Result<R> {
        let kept = self.0.lock().ok().and_then(|mut kept| kept.pop());
        let mut context = match kept {
            Some(context) => context,
            None => make()?,
        };
        let done = work(&mut context);
        if let Ok(mut kept) = self.0.lock()
            && kept.len() < CONTEXTS_KEPT
        {
            kept.push(context);
        }
        done
    }
}

/// Bytes a sealed blob holds before its ciphertext: the magic, then the nonce.
const HEADER: usize = MAGIC.len() + NONCE_LEN;
/// Bytes of the tag after the ciphertext.
const TAG: usize = 16;

/// A blob's plaintext compressed as the store keeps it, in a buffer with room for the header
/// before it and the tag after it: sealing encrypts it where it lies. One buffer per blob
/// (kept ones, `buffers`) instead of one for each of compressing, encrypting and framing: at
/// file-download speed those were gigabytes a second handed to and back from the allocator.
pub struct Compressed(Vec<u8>);

impl Compressed {
    pub fn new(plaintext: &[u8]) -> Result<Compressed, StoreError> {
        let failed = |e: std::io::Error| StoreError::Compression(e.to_string());
        let mut buffer =
            super::buffers::take(HEADER + zstd::zstd_safe::compress_bound(plaintext.len()) + TAG);
        buffer.resize(HEADER, 0);
        COMPRESSORS
            .with(
                || {
                    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
                    compressor
                        .set_parameter(zstd::zstd_safe::CParameter::HashLog(ZSTD_HASH_LOG))?;
                    Ok(compressor)
                },
                |compressor| {
                    let mut after_header = std::io::Cursor::new(&mut buffer);
                    after_header.set_position(HEADER as u64);
                    compressor.compress_to_buffer(plaintext, &mut after_header)
                },
            )
            .map_err(failed)?;
        Ok(Compressed(buffer))
    }

    /// The compressed bytes (what a blob's id is made from).
    pub fn bytes(&self) -> &[u8] {
        &self.0[HEADER..]
    }

    /// Hands its buffer back for the next blob.
    pub fn give_back(self) {
        super::buffers::give_back(self.0);
    }
}

/// The 256-bit key everything in a store is derived from.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    pub fn generate() -> Result<MasterKey, StoreError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|e| StoreError::Random(e.to_string()))?;
        Ok(MasterKey(key))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<MasterKey> {
        let array: [u8; 32] = bytes.try_into().ok()?;
        Some(MasterKey(Zeroizing::new(array)))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A subkey for one purpose (HKDF-SHA256), so the keys for ids, data and the store check
    /// are independent.
    fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let hkdf = Hkdf::<Sha256>::new(Some(b"cairn store v1"), self.0.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hkdf.expand(purpose.as_bytes(), out.as_mut());
        out
    }

    /// The seed of the chunker's gear tables: where file bodies are cut depends on the key, so
    /// the sizes of a store's chunks do not tell which known file it holds.
    pub fn chunker_seed(&self) -> u64 {
        let key = self.derive("file body chunker seed");
        u64::from_le_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ])
    }

    /// A value that proves, without revealing the key, that a key is the store's.
    pub fn check_value(&self, store_id: &str) -> String {
        let key = self.derive("key check");
        hex_hmac(key.as_ref(), store_id.as_bytes())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

fn hex_hmac(key: &[u8], message: &[u8]) -> String {
    // Any key length is valid for HMAC.
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    hex(&mac.finalize().into_bytes())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Seals and opens a store's blobs.
#[derive(Clone)]
pub struct BlobCipher {
    aead: Aes256Gcm,
    id_key: Zeroizing<[u8; 32]>,
}

impl BlobCipher {
    pub fn new(master: &MasterKey) -> BlobCipher {
        let data_key = master.derive("blob data");
        let key: &[u8; 32] = &data_key;
        BlobCipher {
            aead: Aes256Gcm::new(key.into()),
            id_key: master.derive("blob id, BLAKE3 keyed"),
        }
    }

    /// The id of a blob of this kind with this content (as [`compress`] leaves it, for
    /// `Store::put_blob`): keyed, so equal content dedupes but no one without the key can
    /// compute it. Ids are names, never recomputed to check a blob (the AEAD does that), so
    /// changing how they are made (or a zstd release that compresses differently) only means
    /// content stored before is not deduplicated against.
    pub fn blob_id(&self, kind: &str, plaintext: &[u8]) -> String {
        let mut hasher = blake3::Hasher::new_keyed(&self.id_key);
        hasher.update(kind.as_bytes());
        hasher.update(&[0]);
        hasher.update(plaintext);
        hex(hasher.finalize().as_bytes())
    }

    pub fn seal(&self, id: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.seal_compressed(id, Compressed::new(plaintext)?)
    }

    /// Seals a compressed blob in its own buffer, which it returns (hand it back to
    /// `buffers` once written).
    pub fn seal_compressed(&self, id: &str, compressed: Compressed) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::Random(e.to_string()))?;
        let Compressed(mut sealed) = compressed;
        sealed[..MAGIC.len()].copy_from_slice(MAGIC);
        sealed[MAGIC.len()..HEADER].copy_from_slice(&nonce);
        let tag = self
            .aead
            .encrypt_inout_detached(
                <&GcmNonce>::from(&nonce),
                id.as_bytes(),
                (&mut sealed[HEADER..]).into(),
            )
            .map_err(|_| StoreError::Compression("encryption failed".into()))?;
        sealed.extend_from_slice(&tag);
        Ok(sealed)
    }

    /// Whether a sealed blob is intact (authenticates under `id`), without decompressing it.
    pub fn authenticate(&self, id: &str, mut sealed: Vec<u8>) -> Result<(), StoreError> {
        let checked = self.decrypt_in_place(id, &mut sealed).map(|_| ());
        super::buffers::give_back(sealed);
        checked
    }

    /// Opens a blob stored under `id`; any change to it, or a blob stored under another id,
    /// fails authentication. Decrypted where it lies; its buffer is then kept for the next.
    pub fn open(&self, id: &str, mut sealed: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let opened = self.open_in_place(id, &mut sealed);
        super::buffers::give_back(sealed);
        opened
    }

    fn open_in_place(&self, id: &str, sealed: &mut [u8]) -> Result<Vec<u8>, StoreError> {
        let compressed = self.decrypt_in_place(id, sealed)?;
        let corrupt = |reason: String| StoreError::CorruptBlob {
            id: id.to_string(),
            reason: format!("decompression failed: {reason}"),
        };
        // A blob `seal` made records its size: it opens into a kept buffer.
        let Some(size) = zstd::bulk::Decompressor::upper_bound(compressed) else {
            return zstd::bulk::decompress(compressed, MAX_PLAINTEXT)
                .map_err(|e| corrupt(e.to_string()));
        };
        if size > MAX_PLAINTEXT {
            return Err(corrupt(format!(
                "it says it holds {size} bytes, more than a blob can ({MAX_PLAINTEXT})"
            )));
        }
        let mut plain = super::buffers::take(size);
        DECOMPRESSORS
            .with(zstd::bulk::Decompressor::new, |decompressor| {
                decompressor.decompress_to_buffer(compressed, &mut plain)
            })
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(plain)
    }

    /// The compressed content of a sealed blob, authenticated and decrypted in its place.
    fn decrypt_in_place<'b>(&self, id: &str, sealed: &'b mut [u8]) -> Result<&'b [u8], StoreError> {
        let corrupt = |reason: &str| StoreError::CorruptBlob {
            id: id.to_string(),
            reason: reason.to_string(),
        };
        if sealed.len() < HEADER + TAG || &sealed[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a cairn blob (bad header)"));
        }
        let (header, rest) = sealed.split_at_mut(HEADER);
        let nonce: [u8; NONCE_LEN] = header[MAGIC.len()..]
            .try_into()
            .map_err(|_| corrupt("truncated nonce"))?;
        let (body, tag) = rest.split_at_mut(rest.len() - TAG);
        let tag = aes_gcm::Tag::<<Aes256Gcm as AeadCore>::TagSize>::try_from(&*tag)
            .map_err(|_| corrupt("truncated tag"))?;
        self.aead
            .decrypt_inout_detached(<&GcmNonce>::from(&nonce), id.as_bytes(), (&mut *body).into(), &tag)
            .map_err(|_| corrupt("authentication failed: the blob was changed, or belongs to another store or key"))?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_any_change_is_caught() {
        let key = MasterKey::generate().expect("random");
        let cipher = BlobCipher::new(&key);
        let data = b"{\"Id\":\"001\",\"Name\":\"Acme\"}".repeat(100);
        let id = cipher.blob_id("segment", &data);
        assert_eq!(id.len(), 64);
        assert_eq!(
            id,
            cipher.blob_id("segment", &data),
            "ids are deterministic"
        );
        assert_ne!(id, cipher.blob_id("manifest", &data), "and differ by kind");
        let sealed = cipher.seal(&id, &data).expect("seal");
        assert!(sealed.len() < data.len(), "compressed before sealing");
        assert_ne!(
            sealed,
            cipher.seal(&id, &data).expect("seal"),
            "fresh nonce every time"
        );
        assert_eq!(cipher.open(&id, sealed.clone()).expect("open"), data);
        for at in [0, 5, 20, sealed.len() - 1] {
            let mut flipped = sealed.clone();
            flipped[at] ^= 1;
            assert!(cipher.open(&id, flipped).is_err(), "byte {at} flipped");
        }
        let other_id = cipher.blob_id("segment", b"other");
        assert!(
            cipher.open(&other_id, sealed.clone()).is_err(),
            "bound to its id"
        );
        let other_key = BlobCipher::new(&MasterKey::generate().expect("random"));
        assert!(other_key.open(&id, sealed).is_err(), "bound to its key");
        assert_ne!(other_key.blob_id("segment", &data), id, "ids are keyed");
    }
}
