//! Which segments of an index are merged as backups add theirs.

use std::collections::HashSet;

use tantivy::index::{SegmentId, SegmentMeta};
use tantivy::merge_policy::{LogMergePolicy, MergeCandidate, MergePolicy};

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

/// When a run's writer commits: the segments it wrote become one, and the earlier ones merge
/// by like size. A query opens every segment (the tables at each file's end), and a run that
/// indexes a whole org commits a segment per 16 MiB of text (`block::HANDED_BEFORE_COMMIT`):
/// at 10M records the index had about twenty, and a one-word query opened 156 blobs of the
/// store where at 1M it opened 51; with each run's segments merged, 37 and 24.
#[derive(Debug)]
pub(super) struct RunIntoOne {
    earlier: HashSet<SegmentId>,
    like_size: LogMergePolicy,
}

impl RunIntoOne {
    /// `earlier`: the segments the index had before the run.
    pub(super) fn new(earlier: HashSet<SegmentId>) -> RunIntoOne {
        RunIntoOne {
            earlier,
            like_size: by_like_size(),
        }
    }
}

impl MergePolicy for RunIntoOne {
    fn compute_merge_candidates(&self, segments: &[SegmentMeta]) -> Vec<MergeCandidate> {
        let (earlier, this_run): (Vec<SegmentMeta>, Vec<SegmentMeta>) = segments
            .iter()
            .cloned()
            .partition(|segment| self.earlier.contains(&segment.id()));
        let mut candidates = self.like_size.compute_merge_candidates(&earlier);
        if this_run.len() > 1 {
            candidates.push(MergeCandidate(
                this_run.iter().map(SegmentMeta::id).collect(),
            ));
        }
        candidates
    }
}
