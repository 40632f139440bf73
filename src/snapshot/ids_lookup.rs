//! Reading chosen records of an object entry by Id (a diff's older versions of what changed,
//! search's candidates), layer by layer, the newest first: the first layer holding an Id says
//! what it is, so Ids an incremental captured are read from its own small delta, not the base
//! under it. The segments of one layer hold disjoint runs of Ids, so they are opened and
//! picked from on a thread per core: opening (decrypting, decompressing) is most of the cost.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::columns::Picker;
use super::manifest::{ObjectEntry, SegmentRef};
use crate::store::{Store, StoreError};

/// Open segments a lookup keeps for the next: each layer's last segment read, which the next
/// lookup of higher Ids starts in.
const SEGMENTS_KEPT: usize = 4;

#[derive(Default)]
pub struct IdsLookup {
    kept: Vec<(String, Picker)>,
}

/// One segment's share of a lookup: the Ids within its range.
struct Share<'a> {
    segment: &'a SegmentRef,
    /// Where its Ids start in the layer's sorted list.
    from: usize,
    ids: &'a [&'a str],
    picker: Option<Picker>,
}

/// What a segment said of its share: for each Id it holds, its index in the layer's list and
/// its body (None: a deletion); and the segment, open, when it is kept.
type Picked = (Vec<(usize, Option<Vec<u8>>)>, Option<(String, Picker)>);

impl IdsLookup {
    /// The bodies of `ids` in `entry`, in Id order; an Id it does not hold, or holds as a
    /// deletion, is left out.
    pub fn read(
        &mut self,
        store: &Store,
        entry: &ObjectEntry,
        ids: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut remaining: Vec<&str> = ids.iter().map(String::as_str).collect();
        remaining.sort_unstable();
        remaining.dedup();
        let layers = entry
            .deltas
            .iter()
            .rev()
            .map(|delta| &delta.segments)
            .chain([&entry.base]);
        let mut found = Vec::new();
        for layer in layers {
            if remaining.is_empty() {
                break;
            }
            let shares = self.shares(layer, &remaining);
            let mut answered = vec![false; remaining.len()];
            let mut last_open = None;
            for (picked, open) in pick_shares(store, shares)? {
                for (at, body) in picked {
                    answered[at] = true;
                    found.extend(body.map(|body| (remaining[at].to_string(), body)));
                }
                last_open = open.or(last_open);
            }
            if let Some(open) = last_open {
                if self.kept.len() >= SEGMENTS_KEPT {
                    self.kept.remove(0);
                }
                self.kept.push(open);
            }
            let mut answered = answered.into_iter();
            remaining.retain(|_| !answered.next().unwrap_or(false));
        }
        found.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        Ok(found)
    }

    /// Each segment of `layer` that may hold some of `ids` (sorted), with them, and the
    /// segment already open when it is kept.
    fn shares<'a>(&mut self, layer: &'a [SegmentRef], ids: &'a [&'a str]) -> Vec<Share<'a>> {
        let mut shares = Vec::new();
        let mut cursor = 0;
        for segment in layer {
            let from = cursor.max(ids.partition_point(|id| *id < segment.first.as_str()));
            let to = from.max(ids.partition_point(|id| *id <= segment.last.as_str()));
            if from == to {
                continue;
            }
            cursor = to;
            let picker = self
                .kept
                .iter()
                .position(|(blob, _)| *blob == segment.blob)
                .map(|at| self.kept.remove(at).1);
            shares.push(Share {
                segment,
                from,
                ids: &ids[from..to],
                picker,
            });
        }
        shares
    }
}

/// Picks every share's Ids, on as many threads as there are cores (and shares); the answers
/// come back in the shares' order. The last share's segment stays open, to be kept.
fn pick_shares(store: &Store, shares: Vec<Share>) -> Result<Vec<Picked>, StoreError> {
    let count = shares.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count);
    if threads <= 1 {
        return shares
            .into_iter()
            .enumerate()
            .map(|(n, share)| pick_share(store, share, n + 1 == count))
            .collect();
    }
    let shares: Vec<Mutex<Option<Share>>> = shares
        .into_iter()
        .map(|share| Mutex::new(Some(share)))
        .collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut answers: Vec<Option<Result<Picked, StoreError>>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut answered = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(slot) = shares.get(n) else {
                            return answered;
                        };
                        let share = slot.lock().ok().and_then(|mut share| share.take());
                        if let Some(share) = share {
                            let picked = pick_share(store, share, n + 1 == count);
                            if picked.is_err() {
                                stop.store(true, Ordering::Relaxed);
                            }
                            answered.push((n, picked));
                        }
                    }
                    answered
                })
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(answered) => {
                    for (n, picked) in answered {
                        answers[n] = Some(picked);
                    }
                }
                Err(_) => answers.push(Some(Err(StoreError::Backend {
                    location: "the segments of a lookup".into(),
                    message: "a thread reading records stopped unexpectedly".into(),
                }))),
            }
        }
    });
    // A share no thread reached (another failed first) has no answer: the failure is said.
    let mut picked = Vec::with_capacity(count);
    let mut failure = None;
    for answer in answers {
        match answer {
            Some(Ok(answer)) => picked.push(answer),
            Some(Err(e)) => {
                failure.get_or_insert(e);
            }
            None => {}
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(picked),
    }
}

/// One segment's share: opened (unless it already is) and its Ids picked in order.
fn pick_share(store: &Store, share: Share, keep: bool) -> Result<Picked, StoreError> {
    let blob = &share.segment.blob;
    let mut picker = match share.picker {
        Some(picker) => picker,
        None => Picker::open(blob, store.get_blob(blob)?)?,
    };
    let mut picked = Vec::new();
    for (n, id) in share.ids.iter().enumerate() {
        match picker.pick(id.as_bytes()) {
            Ok(None) => {}
            Ok(Some(body)) => picked.push((share.from + n, body)),
            Err(reason) => {
                return Err(StoreError::CorruptBlob {
                    id: blob.clone(),
                    reason: reason.to_string(),
                });
            }
        }
    }
    Ok((picked, keep.then(|| (blob.clone(), picker))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::manifest::Delta;
    use crate::snapshot::writer::SegmentSink;
    use std::collections::BTreeMap;

    fn id(n: u64) -> String {
        format!("001{n:015}")
    }

    /// A layer of several segments, one per run of `records` (id, body or deletion), in order.
    fn layer(store: &Store, runs: &[Vec<(u64, Option<String>)>]) -> Vec<SegmentRef> {
        let mut segments = Vec::new();
        for run in runs {
            let mut sink = SegmentSink::new(store, "Account");
            for (n, body) in run {
                sink.push(&id(*n), body.as_deref().map(str::as_bytes))
                    .expect("push");
            }
            segments.extend(sink.finish().expect("segment"));
        }
        segments
    }

    fn body(n: u64, version: u32) -> Option<String> {
        Some(format!(
            r#"{{"Id":"{}","Name":"Acme {n}","V":{version}}}"#,
            id(n)
        ))
    }

    #[test]
    fn every_id_is_read_from_the_newest_layer_holding_it_across_segments_and_lookups() {
        let (_dir, store) = crate::store::temporary();
        // Base: records 0..2000 in four segments.
        let base_runs: Vec<Vec<(u64, Option<String>)>> = (0..4)
            .map(|s| (s * 500..(s + 1) * 500).map(|n| (n, body(n, 1))).collect())
            .collect();
        // First delta, in two segments: every fifth edited, every seventh deleted, 100 added.
        let first: Vec<(u64, Option<String>)> = (0..2100)
            .filter_map(|n| match () {
                _ if n >= 2000 => Some((n, body(n, 2))),
                _ if n % 7 == 0 => Some((n, None)),
                _ if n % 5 == 0 => Some((n, body(n, 2))),
                _ => None,
            })
            .collect();
        let (low, high) = first.split_at(first.len() / 3);
        // Second delta: every tenth edited again, and every 21st (deleted before) back.
        let second: Vec<(u64, Option<String>)> = (0..2100)
            .filter(|n| n % 10 == 0 || n % 21 == 0)
            .map(|n| (n, body(n, 3)))
            .collect();
        let entry = ObjectEntry {
            base: layer(&store, &base_runs),
            deltas: vec![
                Delta {
                    upserts: 0,
                    deletes: 0,
                    segments: layer(&store, &[low.to_vec(), high.to_vec()]),
                },
                Delta {
                    upserts: 0,
                    deletes: 0,
                    segments: layer(&store, std::slice::from_ref(&second)),
                },
            ],
            ..ObjectEntry::default()
        };
        assert!(entry.base.len() >= 4 && entry.deltas[0].segments.len() >= 2);
        let mut truth: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (n, body) in base_runs.concat().into_iter().chain(first).chain(second) {
            truth.insert(id(n), body);
        }

        let mut lookup = IdsLookup::default();
        // Batches in turn (the kept segments carry over), one out of order, with Ids no layer
        // holds and Ids asked twice.
        let batches: Vec<Vec<String>> = vec![
            (0..700).step_by(3).map(id).collect(),
            (700..2300).rev().step_by(2).map(id).collect(),
            [5, 5, 14, 2099, 9999].into_iter().map(id).collect(),
        ];
        for ids in batches {
            let read = lookup.read(&store, &entry, &ids).expect("read");
            let mut wanted: Vec<(String, Vec<u8>)> = ids
                .iter()
                .filter_map(|id| {
                    let body = truth.get(id)?.as_ref()?;
                    Some((id.clone(), body.clone().into_bytes()))
                })
                .collect();
            wanted.sort();
            wanted.dedup();
            assert_eq!(read, wanted);
        }
    }

    #[test]
    fn a_segment_that_is_gone_fails_the_lookup_of_its_ids_only() {
        let (dir, store) = crate::store::temporary();
        let runs: Vec<Vec<(u64, Option<String>)>> = (0..3)
            .map(|s| (s * 100..(s + 1) * 100).map(|n| (n, body(n, 1))).collect())
            .collect();
        let entry = ObjectEntry {
            base: layer(&store, &runs),
            ..ObjectEntry::default()
        };
        let gone = &entry.base[1].blob;
        std::fs::remove_file(dir.path().join(crate::store::blob_path(gone))).expect("remove");
        let ids: Vec<String> = [10, 150, 250].into_iter().map(id).collect();
        match IdsLookup::default().read(&store, &entry, &ids) {
            Err(StoreError::MissingBlob { id }) => assert_eq!(&id, gone),
            other => panic!("expected the missing segment, got {other:?}"),
        }
        let elsewhere: Vec<String> = [10, 250].into_iter().map(id).collect();
        let read = IdsLookup::default()
            .read(&store, &entry, &elsewhere)
            .expect("the other segments read");
        assert_eq!(read.len(), 2);
    }
}
