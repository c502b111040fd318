//! The checksum pass's pairing: each chunk's sums from the source compared with each
//! replica's as they arrive, in whichever order, so that one slow replica holds back no
//! comparison and a failing one stops no other. Pure: no connection.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;

use super::model::TableDrift;
use super::walk::{Chunk, Differing, Sums};

/// The pass's pairing: each chunk's source sums compared with each replica's as they arrive,
/// in whichever order.
pub(super) struct Pairing {
    /// Chunk index → the source's sums and the replicas not compared with them yet.
    source: HashMap<usize, (Sums, Vec<usize>)>,
    /// A replica's sums that arrived before the source's, by (chunk index, replica).
    early: HashMap<(usize, usize), (Arc<Chunk>, Sums)>,
    /// Per replica: its differing chunks, or why its hashing failed.
    found: Vec<Result<Differing>>,
    /// Per replica: chunks compared and the source's rows in them.
    counted: Vec<(u64, u64)>,
}

impl Pairing {
    pub(super) fn new(replicas: usize) -> Pairing {
        Pairing {
            source: HashMap::new(),
            early: HashMap::new(),
            found: (0..replicas).map(|_| Ok(Vec::new())).collect(),
            counted: vec![(0, 0); replicas],
        }
    }

    /// A walk of one replica resumed from a checkpoint: what it had found and counted; the
    /// key the next chunk starts after.
    pub(super) fn resume(&mut self, start: super::checkpoint::Start) -> Option<super::model::Key> {
        self.found[0] = Ok(start.differing);
        self.counted[0] = (start.chunks, start.rows);
        start.lo
    }

    /// A walk of one replica: its differing chunks so far and (chunks, rows) compared, for
    /// the checkpoint. None for a fleet, or once its hashing failed.
    pub(super) fn only(&self) -> Option<(&Differing, (u64, u64))> {
        match (self.found.as_slice(), self.counted.as_slice()) {
            ([Ok(found)], [counted]) => Some((found, *counted)),
            _ => None,
        }
    }

    /// Differing chunks found so far, over every replica.
    pub(super) fn differing(&self) -> usize {
        self.found
            .iter()
            .map(|f| f.as_ref().map_or(0, Vec::len))
            .sum()
    }

    /// The source's sums of a chunk; Some(rows) when every replica has been compared with
    /// them (the chunk is done).
    pub(super) fn source(&mut self, chunk: Arc<Chunk>, sums: Sums) -> Option<u64> {
        let waiting: Vec<usize> = (0..self.found.len())
            .filter(|r| self.found[*r].is_ok())
            .collect();
        self.source.insert(chunk.index, (sums, waiting.clone()));
        let mut done = None;
        for r in waiting {
            if let Some((c, theirs)) = self.early.remove(&(chunk.index, r)) {
                done = done.or(self.compare(r, c, theirs));
            }
        }
        done.or_else(|| self.finish(chunk.index))
    }

    /// A replica's sums of a chunk (or its failure); Some(rows) when that finished the chunk.
    pub(super) fn replica(
        &mut self,
        r: usize,
        chunk: Arc<Chunk>,
        sums: Result<Sums>,
    ) -> Option<u64> {
        match sums {
            Err(e) => {
                self.found[r] = Err(e);
                self.early.retain(|(_, of), _| *of != r);
                // Chunks that waited for it alone are done.
                let waited: Vec<usize> = self.source.keys().copied().collect();
                let mut rows = None;
                for index in waited {
                    if let Some((_, left)) = self.source.get_mut(&index) {
                        left.retain(|x| *x != r);
                    }
                    rows = self.finish(index).map(|n| n + rows.unwrap_or(0)).or(rows);
                }
                rows
            }
            Ok(theirs) if self.source.contains_key(&chunk.index) => self.compare(r, chunk, theirs),
            Ok(theirs) => {
                self.early.insert((chunk.index, r), (chunk, theirs));
                None
            }
        }
    }

    /// Replica `r`'s sums against the source's; Some(rows) when that finished the chunk.
    fn compare(&mut self, r: usize, chunk: Arc<Chunk>, theirs: Sums) -> Option<u64> {
        let (ours, left) = self.source.get_mut(&chunk.index)?;
        left.retain(|x| *x != r);
        self.counted[r].0 += 1;
        self.counted[r].1 += ours.rows();
        if let (Some(buckets), Ok(found)) = (ours.differing(&theirs), &mut self.found[r]) {
            found.push((chunk.clone(), buckets));
        }
        self.finish(chunk.index)
    }

    /// The chunk's source sums dropped once no replica waits for them: its rows.
    fn finish(&mut self, index: usize) -> Option<u64> {
        match self.source.get(&index) {
            Some((sums, left)) if left.is_empty() => {
                let rows = sums.rows();
                self.source.remove(&index);
                Some(rows)
            }
            _ => None,
        }
    }

    /// Per replica of the walk (in `drifts`' order): its differing chunks or its failure;
    /// each compared replica's chunk and row counts added to its drift.
    pub(super) fn into_found(
        self,
        live: &[usize],
        drifts: &mut [TableDrift],
    ) -> Vec<Result<Differing>> {
        let mut out: Vec<Result<Differing>> = drifts.iter().map(|_| Ok(Vec::new())).collect();
        for ((i, found), (chunks, rows)) in live.iter().zip(self.found).zip(self.counted) {
            drifts[*i].chunks += chunks;
            drifts[*i].rows += rows;
            out[*i] = found;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::TableRef;

    fn chunk(index: usize) -> Arc<Chunk> {
        Arc::new(Chunk {
            index,
            lo: None,
            hi: None,
            step: 1,
        })
    }

    fn sums(rows: u64, xor: &str) -> Sums {
        Sums::Whole((rows, xor.into(), String::new()))
    }

    // Sums arrive in any order: a chunk is done (its rows counted once) when the source and
    // every replica have been compared; a differing replica's chunk is its own.
    #[test]
    fn each_replica_is_paired_with_the_source_in_any_order() {
        let mut p = Pairing::new(2);
        assert_eq!(p.replica(0, chunk(0), Ok(sums(10, "a"))), None);
        assert_eq!(
            p.source(chunk(0), sums(10, "a")),
            None,
            "replica 1 not in yet"
        );
        assert_eq!(p.replica(1, chunk(0), Ok(sums(10, "b"))), Some(10));
        assert_eq!(p.source(chunk(1), sums(5, "c")), None);
        assert_eq!(p.replica(1, chunk(1), Ok(sums(5, "c"))), None);
        assert_eq!(p.replica(0, chunk(1), Ok(sums(4, "c"))), Some(5));
        assert!(p.source.is_empty() && p.early.is_empty());
        let mut drifts = vec![
            TableDrift::new(
                TableRef {
                    schema: "s".into(),
                    name: "t".into()
                },
                None
            );
            3
        ];
        // Replicas 0 and 1 of the pass are the walk's replicas 0 and 2.
        let found = p.into_found(&[0, 2], &mut drifts);
        let indexes = |f: &Result<Differing>| -> Vec<usize> {
            f.as_ref().unwrap().iter().map(|(c, _)| c.index).collect()
        };
        assert_eq!(indexes(&found[0]), [1]);
        assert_eq!(indexes(&found[1]), Vec::<usize>::new());
        assert_eq!(indexes(&found[2]), [0]);
        assert_eq!((drifts[0].chunks, drifts[0].rows), (2, 15));
        assert_eq!((drifts[1].chunks, drifts[1].rows), (0, 0));
    }

    // Each node decides when it hashes a chunk whether to sum it by bucket: a chunk one
    // summed whole and the other by bucket is compared whole (the buckets folded together).
    #[test]
    fn a_chunk_summed_whole_on_one_node_and_by_bucket_on_the_other_is_compared_whole() {
        let buckets = |x: &[(i128, u64, &str)]| {
            Sums::Buckets(
                x.iter()
                    .map(|(b, n, v)| (*b, (*n, v.to_string())))
                    .collect(),
            )
        };
        let split = buckets(&[(0, 2, "5"), (1, 3, "3")]);
        assert_eq!(sums(5, "6").differing(&split), None);
        assert_eq!(split.differing(&sums(5, "6")), None);
        assert_eq!(sums(5, "7").differing(&split), Some(Vec::new()));
        assert_eq!(sums(4, "6").differing(&split), Some(Vec::new()));
        let unreadable = buckets(&[(0, 5, "")]);
        assert_eq!(sums(5, "").differing(&unreadable), Some(Vec::new()));
    }

    // A replica whose hashing fails is dropped: the chunks that waited for it alone are done,
    // the other replica goes on, and the failure is that replica's.
    #[test]
    fn a_failing_replica_does_not_hold_up_the_others() {
        let mut p = Pairing::new(2);
        assert_eq!(p.source(chunk(0), sums(7, "a")), None);
        assert_eq!(p.replica(0, chunk(0), Ok(sums(7, "a"))), None);
        let failed = anyhow::anyhow!("lost");
        assert_eq!(p.replica(1, chunk(0), Err(failed)), Some(7));
        assert_eq!(p.source(chunk(1), sums(3, "b")), None);
        assert_eq!(p.replica(0, chunk(1), Ok(sums(3, "b"))), Some(3));
        assert!(p.found[0].is_ok() && p.found[1].is_err());
    }
}
