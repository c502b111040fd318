//! Comparing one chunk's rows as the two nodes hash them. Pure.

use std::collections::HashMap;

use super::model::Key;

/// Which keys of a chunk differ: on the source only, on the replica only, on both with
/// different hashes. Each list keeps the source's (or replica's) row order.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkDiff {
    pub missing: Vec<Key>,
    pub extra: Vec<Key>,
    pub different: Vec<Key>,
    /// Each differing key's (source, replica) row hashes as read when it was found: the first
    /// of the two agreeing reads a recheck needs.
    pub seen: Seen,
}

/// Row hashes per key: (source's, replica's), None where the node has no such row.
pub type Seen = HashMap<Key, (Option<String>, Option<String>)>;

impl ChunkDiff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.different.is_empty()
    }

    pub fn len(&self) -> usize {
        self.missing.len() + self.extra.len() + self.different.len()
    }

    pub fn absorb(&mut self, other: ChunkDiff) {
        self.missing.extend(other.missing);
        self.extra.extend(other.extra);
        self.different.extend(other.different);
        self.seen.extend(other.seen);
    }

    /// Keeps only the keys `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&Key) -> bool) {
        self.missing.retain(&keep);
        self.extra.retain(&keep);
        self.different.retain(&keep);
        self.seen.retain(|k, _| keep(k));
    }

    /// Every key involved, in one list (what a recheck reads again).
    pub fn keys(&self) -> Vec<Key> {
        self.missing
            .iter()
            .chain(&self.extra)
            .chain(&self.different)
            .cloned()
            .collect()
    }
}

pub fn compare(source: Vec<(Key, String)>, replica: Vec<(Key, String)>) -> ChunkDiff {
    let mut theirs: HashMap<Key, String> = replica.iter().cloned().collect();
    let mut out = ChunkDiff::default();
    for (key, hash) in source {
        match theirs.remove(&key) {
            None => {
                out.seen.insert(key.clone(), (Some(hash), None));
                out.missing.push(key)
            }
            Some(h) if h != hash => {
                out.seen.insert(key.clone(), (Some(hash), Some(h)));
                out.different.push(key)
            }
            Some(_) => {}
        }
    }
    out.extra = replica
        .into_iter()
        .filter(|(k, _)| theirs.contains_key(k))
        .map(|(k, h)| {
            out.seen.insert(k.clone(), (None, Some(h)));
            k
        })
        .collect();
    out
}

/// Multisets of row hashes (tables without a usable key): each hash whose count differs, with
/// (source count, replica count).
pub fn compare_multisets(
    source: Vec<(String, u64)>,
    replica: Vec<(String, u64)>,
) -> Vec<(String, u64, u64)> {
    let mut theirs: HashMap<String, u64> = replica.into_iter().collect();
    let mut out = Vec::new();
    for (hash, n) in source {
        let m = theirs.remove(&hash).unwrap_or(0);
        if m != n {
            out.push((hash, n, m));
        }
    }
    let mut rest: Vec<(String, u64, u64)> = theirs.into_iter().map(|(h, m)| (h, 0, m)).collect();
    rest.sort();
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Cell;

    fn k(i: i64) -> Key {
        vec![("id".into(), Cell::Number(i.to_string()))]
    }

    fn rows(v: &[(i64, &str)]) -> Vec<(Key, String)> {
        v.iter().map(|(i, h)| (k(*i), h.to_string())).collect()
    }

    #[test]
    fn missing_extra_and_different_rows_are_told_apart() {
        let d = compare(
            rows(&[(1, "a"), (2, "b"), (3, "c"), (5, "e")]),
            rows(&[(1, "a"), (3, "X"), (4, "d"), (5, "e")]),
        );
        assert_eq!(d.missing, vec![k(2)]);
        assert_eq!(d.different, vec![k(3)]);
        assert_eq!(d.extra, vec![k(4)]);
        assert_eq!(d.len(), 3);
        assert_eq!(d.seen[&k(3)], (Some("c".into()), Some("X".into())));
        assert_eq!(d.seen[&k(2)], (Some("b".into()), None));
        assert_eq!(d.seen[&k(4)], (None, Some("d".into())));
        assert!(compare(rows(&[(1, "a")]), rows(&[(1, "a")])).is_empty());
    }

    #[test]
    fn duplicated_rows_of_a_keyless_table_count() {
        let d = compare_multisets(
            vec![("h1".into(), 2), ("h2".into(), 1)],
            vec![("h1".into(), 1), ("h2".into(), 1), ("h3".into(), 4)],
        );
        assert_eq!(d, vec![("h1".into(), 2, 1), ("h3".into(), 0, 4)]);
    }
}
