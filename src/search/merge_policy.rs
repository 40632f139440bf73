//! Which segments of an index are merged as backups add theirs.

use tantivy::merge_policy::LogMergePolicy;

/// Segments of fewer blocks than this are of one size when merging.
const SMALLEST_MERGE_LEVEL: u32 = 64;

/// tantivy's log merge policy, with levels that start small. Its default puts every segment
/// under 10,000 documents in one level, and a block is a document: below about 1.3M records
/// an index was one level, so every eighth backup merged the whole index again (0.7 s at 1M
/// records, against 25 ms for the backup's own segment). Merging only segments of like size
/// makes each backup's share of merging follow its change.
pub(super) fn by_like_size() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_min_layer_size(SMALLEST_MERGE_LEVEL);
    policy
}
