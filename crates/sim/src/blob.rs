//! The bodies of files and attachments (`base64` fields): bytes a client uploaded, or bytes
//! generated from a seed on the way out, so a simulated org can hold gigabytes of files it
//! never keeps in memory.

use std::sync::Arc;

use axum::body::Bytes;
use md5::{Digest, Md5};

/// How much of a body one read produces, and one streamed frame carries.
const CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub enum Blob {
    /// `len` bytes that depend only on `seed`.
    Generated {
        seed: u64,
        len: u64,
    },
    Stored(Box<[u8]>),
    /// Bytes uploaded in parts, kept in a file (deleted with its last reference) rather than
    /// in memory: an upload may be of GBs.
    Spilled {
        file: std::fs::File,
        len: u64,
    },
    /// `base` with `patch` inserted at `at`: a later version of a file, edited.
    Edited {
        base: Arc<Blob>,
        at: u64,
        patch: Box<[u8]>,
    },
}

impl PartialEq for Blob {
    /// Bodies made the same way are equal; an upload equals only itself (comparing bytes
    /// could read GBs).
    fn eq(&self, other: &Blob) -> bool {
        match (self, other) {
            (Blob::Generated { seed: a, len: m }, Blob::Generated { seed: b, len: n }) => {
                a == b && m == n
            }
            (Blob::Stored(a), Blob::Stored(b)) => a == b,
            (
                Blob::Edited { base, at, patch },
                Blob::Edited {
                    base: other_base,
                    at: other_at,
                    patch: other_patch,
                },
            ) => at == other_at && patch == other_patch && base == other_base,
            (Blob::Spilled { .. }, Blob::Spilled { .. }) => std::ptr::eq(self, other),
            _ => false,
        }
    }
}

impl Eq for Blob {}

impl Blob {
    /// A body uploaded as a stream: its pieces are written to an unnamed temporary file.
    pub fn spill() -> std::io::Result<Spill> {
        Ok(Spill {
            file: tempfile::tempfile()?,
            len: 0,
        })
    }

    pub fn len(&self) -> u64 {
        match self {
            Blob::Generated { len, .. } => *len,
            Blob::Stored(bytes) => bytes.len() as u64,
            Blob::Edited { base, patch, .. } => base.len() + patch.len() as u64,
            Blob::Spilled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends up to `max` bytes from `offset` on.
    pub fn read_at(&self, offset: u64, max: usize, out: &mut Vec<u8>) {
        let end = self.len().min(offset.saturating_add(max as u64));
        if offset >= end {
            return;
        }
        match self {
            Blob::Stored(bytes) => out.extend_from_slice(&bytes[offset as usize..end as usize]),
            Blob::Spilled { file, .. } => {
                use std::os::unix::fs::FileExt as _;
                let start = out.len();
                out.resize(start + (end - offset) as usize, 0);
                let mut filled = 0;
                while start + filled < out.len() {
                    match file.read_at(&mut out[start + filled..], offset + filled as u64) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => filled += n,
                    }
                }
                // A spill file cut short under the simulator reads as zeros past its end.
            }
            Blob::Edited { base, at, patch } => {
                let at = (*at).min(base.len());
                let patch_end = at + patch.len() as u64;
                let mut position = offset;
                while position < end {
                    let want = (end - position) as usize;
                    if position < at {
                        let take = want.min((at - position) as usize);
                        base.read_at(position, take, out);
                        position += take as u64;
                    } else if position < patch_end {
                        let from = (position - at) as usize;
                        let take = want.min(patch.len() - from);
                        out.extend_from_slice(&patch[from..from + take]);
                        position += take as u64;
                    } else {
                        base.read_at(position - patch.len() as u64, want, out);
                        position = end;
                    }
                }
            }
            Blob::Generated { seed, .. } => {
                // Eight bytes per word, each word a function of the seed and its position, so
                // any range can be produced without the bytes before it.
                let mut word_index = offset / 8;
                let mut skip = (offset % 8) as usize;
                let mut left = (end - offset) as usize;
                while left > 0 {
                    let word =
                        mix(seed ^ word_index.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
                    let take = (8 - skip).min(left);
                    out.extend_from_slice(&word[skip..skip + take]);
                    left -= take;
                    skip = 0;
                    word_index += 1;
                }
            }
        }
    }

    /// The whole body (for small bodies: tests and base64 in JSON).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() as usize);
        self.read_at(0, self.len() as usize, &mut out);
        out
    }

    /// The MD5 of the body in lowercase hex, as ContentVersion's `Checksum` gives it.
    pub fn md5_hex(&self) -> String {
        let mut hasher = Md5::new();
        let mut buffer = Vec::with_capacity(CHUNK);
        let mut offset = 0;
        while offset < self.len() {
            buffer.clear();
            self.read_at(offset, CHUNK, &mut buffer);
            hasher.update(&buffer);
            offset += buffer.len() as u64;
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The body as a stream of frames, produced as the client reads them.
    pub fn stream(
        self: Arc<Self>,
    ) -> impl futures_core::Stream<Item = Result<Bytes, std::convert::Infallible>> {
        futures_util::stream::unfold(0u64, move |offset| {
            let blob = self.clone();
            async move {
                if offset >= blob.len() {
                    return None;
                }
                let mut frame = Vec::with_capacity(CHUNK);
                blob.read_at(offset, CHUNK, &mut frame);
                let next = offset + frame.len() as u64;
                Some((Ok(Bytes::from(frame)), next))
            }
        })
    }
}

/// An upload being written to its file.
pub struct Spill {
    file: std::fs::File,
    len: u64,
}

impl Spill {
    pub fn write(&mut self, piece: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        self.file.write_all(piece)?;
        self.len += piece.len() as u64;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Blob {
        Blob::Spilled {
            file: self.file,
            len: self.len,
        }
    }
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_range_of_a_generated_body_matches_the_whole() {
        let blob = Blob::Generated { seed: 7, len: 1000 };
        let whole = blob.to_vec();
        assert_eq!(whole.len(), 1000);
        for (offset, max) in [(0, 3), (5, 11), (997, 10), (8, 8), (999, 1)] {
            let mut part = Vec::new();
            blob.read_at(offset, max, &mut part);
            let end = (offset as usize + max).min(1000);
            assert_eq!(part, whole[offset as usize..end], "at {offset}+{max}");
        }
        assert_ne!(whole, Blob::Generated { seed: 8, len: 1000 }.to_vec());
    }

    #[test]
    fn an_edited_body_is_its_base_with_the_patch_inserted() {
        let base = Arc::new(Blob::Generated { seed: 3, len: 500 });
        let edited = Blob::Edited {
            base: base.clone(),
            at: 200,
            patch: b"signed".to_vec().into_boxed_slice(),
        };
        let mut expected = base.to_vec();
        expected.splice(200..200, b"signed".iter().copied());
        assert_eq!(edited.len(), 506);
        assert_eq!(edited.to_vec(), expected);
        for (offset, max) in [(0, 506), (195, 10), (203, 100), (206, 300), (505, 9)] {
            let mut part = Vec::new();
            edited.read_at(offset, max, &mut part);
            let end = (offset as usize + max).min(506);
            assert_eq!(part, expected[offset as usize..end], "at {offset}+{max}");
        }
    }

    #[test]
    fn the_checksum_is_the_md5_of_the_body() {
        // RFC 1321's test suite.
        let abc = Blob::Stored(b"abc".to_vec().into_boxed_slice());
        assert_eq!(abc.md5_hex(), "900150983cd24fb0d6963f7d28e17f72");
        let empty = Blob::Stored(Box::new([]));
        assert_eq!(empty.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
        let big = Blob::Generated {
            seed: 1,
            len: 200_000,
        };
        let mut hasher = Md5::new();
        hasher.update(big.to_vec());
        let direct: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(big.md5_hex(), direct);
    }
}
