//! Buffers for blobs' plaintext, handed back by the readers that go through many segments
//! (a diff's lookups, indexing, reading an object back). A segment opens to a few MiB; the
//! allocator returns freed memory to the system at once (`main.rs`), so a fresh buffer per
//! segment costs a page fault per 4 KiB touched, which measured a third of an incremental
//! apply. A few buffers kept here are reused instead.

use std::sync::Mutex;

/// Buffers kept: one per thread that reads segments at once, and a spare.
const KEPT: usize = 4;

/// A buffer larger than this is not kept: it came from an unusually large blob.
const LARGEST_KEPT: usize = 32 * 1024 * 1024;

/// Smaller blobs (manifests, lists, small segments) get a buffer of their own: their pages are
/// few, and a kept buffer could leave with a caller that keeps it.
const SMALLEST_KEPT: usize = 256 * 1024;

/// Kept buffers, for the whole process.
static KEPT_BUFFERS: Pool = Pool::new();

/// An empty buffer with room for at least `capacity` bytes: a kept one when there is one.
pub fn take(capacity: usize) -> Vec<u8> {
    KEPT_BUFFERS.take(capacity)
}

/// Hands a buffer back for the next [`take`]; dropped when enough are kept.
pub fn give_back(buffer: Vec<u8>) {
    KEPT_BUFFERS.give_back(buffer);
}

/// A buffer handed back when dropped: for one given away as `bytes::Bytes::from_owner`
/// (an upload's chunk), which frees it wherever the HTTP client is done with it.
pub struct Kept(pub Vec<u8>);

impl AsRef<[u8]> for Kept {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

/// mimalloc's defaults keep freed pages resident for a second, and (built without `no_thp`)
/// back its arenas with transparent huge pages, of which a freed 64 KiB leaves the whole 2 MiB
/// resident. An apply frees tens of MiB a second (segments read back, blocks handed to the
/// index), so its resident memory was about three times its heap: 210 MiB for a 72 MiB heap at
/// 1M records; 120 MiB with huge pages off (Cargo.toml) and freed pages returned at once
/// (benches/apply.rs, issue 28). Returned at once, a freed buffer costs a page fault per 4 KiB
/// when the next is made: what streams through large buffers takes kept ones from here.
/// The binary calls this first thing, and the benchmarks too, so that they measure the same.
#[allow(unsafe_code)]
pub fn return_freed_memory_promptly() {
    // mimalloc.h, `enum mi_option_e`.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // Set for mimalloc in the environment, it is the operator's choice.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: one of mimalloc's documented options, a plain integer it reads when it next
    // purges; no pointers. Only the memory it keeps changes, not what any pointer means.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    const fn new() -> Pool {
        Pool(Mutex::new(Vec::new()))
    }

    fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity < SMALLEST_KEPT {
            return Vec::with_capacity(capacity);
        }
        let kept = self.0.lock().ok().and_then(|mut kept| {
            // The smallest that fits, or else the largest (grown once, then kept larger).
            let fits = kept
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= capacity)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(at, _)| at);
            let at = fits.or_else(|| {
                kept.iter()
                    .enumerate()
                    .max_by_key(|(_, b)| b.capacity())
                    .map(|(at, _)| at)
            })?;
            Some(kept.swap_remove(at))
        });
        let mut buffer = kept.unwrap_or_default();
        buffer.clear();
        buffer.reserve(capacity);
        buffer
    }

    fn give_back(&self, buffer: Vec<u8>) {
        if !(SMALLEST_KEPT..=LARGEST_KEPT).contains(&buffer.capacity()) {
            return;
        }
        if let Ok(mut kept) = self.0.lock()
            && kept.len() < KEPT
        {
            kept.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_handed_back_is_reused_empty_and_the_pool_stays_bounded() {
        let pool = Pool::new();
        let mut buffer = pool.take(SMALLEST_KEPT);
        buffer.extend_from_slice(b"plaintext");
        let address = buffer.as_ptr();
        pool.give_back(buffer);
        let again = pool.take(SMALLEST_KEPT);
        assert!(again.is_empty() && again.capacity() >= SMALLEST_KEPT);
        assert_eq!(
            again.as_ptr(),
            address,
            "the buffer handed back is taken again"
        );
        let larger = pool.take(4 * SMALLEST_KEPT);
        assert!(larger.capacity() >= 4 * SMALLEST_KEPT);
        let larger_address = larger.as_ptr();
        pool.give_back(again);
        pool.give_back(larger);
        let fitting = pool.take(2 * SMALLEST_KEPT);
        assert_eq!(fitting.as_ptr(), larger_address, "the one that fits");
        for _ in 0..2 * KEPT {
            pool.give_back(Vec::with_capacity(SMALLEST_KEPT));
        }
        assert_eq!(pool.0.lock().expect("pool").len(), KEPT);
        let pool = Pool::new();
        pool.give_back(Vec::with_capacity(LARGEST_KEPT + 1));
        pool.give_back(Vec::with_capacity(SMALLEST_KEPT - 1));
        assert!(pool.0.lock().expect("pool").is_empty());
        assert!(
            pool.take(100).capacity() < SMALLEST_KEPT,
            "small ones are their own"
        );
    }
}
