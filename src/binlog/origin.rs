//! The origin search's I/O: a node's own binary log, read over the replication protocol, for
//! the transactions that last wrote some keys. Which rows events hold a key is the caller's
//! (pure) matcher; this file only reads, within a budget of bytes and seconds, and keeps per
//! key the newest transaction that matched.
//!
//! Each file is read from its start to its end on a dump connection of its own (the newest
//! match of a file is its last one), so memory stays flat: one rows event at a time.
//!
//! Order: the files the caller names first (those holding the node's errant GTIDs), newest of
//! them first, then every other file newest first; no file is read twice. The rule that keeps
//! the answer the newest writer whatever the order: a key's match in file i is *final* only
//! once every file newer than i has been read (nothing can tell, short of reading them, that a
//! newer file does not write the key: neither a file's GTIDs nor the row's current values
//! do). Until then it is a *candidate*: a newer match replaces it, an older one never does,
//! and files older than a key's match are not read for that key. When the budget ends first,
//! the key is reported not found (budget exhausted) and the candidate is named beside it as
//! such, never as the writer. Reading a file ahead of its turn so never makes a final answer
//! cheaper (the same newer files must still be read); what it buys is the candidate when the
//! budget cannot reach that far back newest first. A file named first that does not fit in
//! the bytes left is not read ahead: it waits for its turn, so reading ahead never spends
//! more than the budget's bytes would have reached anyway on one file.

use std::time::{Duration, Instant};

use super::fetch::{self, FetchError, ImageRow, Item, Limits, RawRowsEvent, RawTransaction};
use crate::conn::ConnSpec;
use crate::flavor::Flavor;
use crate::vocab::RowsEventKind;

/// How much of a node's binary log one search may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub seconds: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            bytes: 256 << 20,
            seconds: 10,
        }
    }
}

/// One retained binary log, as SHOW BINARY LOGS lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    pub name: String,
    pub size: u64,
}

/// A rows event's row that holds wanted key number `key`.
#[derive(Debug)]
pub struct KeyHit {
    pub key: usize,
    pub kind: RowsEventKind,
    /// The image it wrote (the after image of a write or update); None for a delete.
    pub image: Option<ImageRow>,
}

/// The newest transaction that wrote a key.
#[derive(Debug, Clone)]
pub struct Hit {
    pub file: String,
    /// The file's index in the list searched (oldest 0).
    pub file_index: usize,
    pub trx: RawTransaction,
    pub kind: RowsEventKind,
    pub image: Option<ImageRow>,
    /// Which rows event of the transaction (0: its first) last wrote the key.
    pub rows_index: usize,
}

/// A match in a file read ahead of its turn whose newer files were not all read: maybe the
/// writer, maybe not.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub hit: Hit,
    /// The files newer than the match that were not read, oldest first.
    pub unread_newer: Vec<String>,
}

/// What a search found and how far it read.
#[derive(Debug, Default)]
pub struct Searched {
    /// Per wanted key, its newest writer (final).
    pub hits: Vec<Option<Hit>>,
    /// Per wanted key without a final writer, a candidate found ahead of order.
    pub candidates: Vec<Option<Candidate>>,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Files read whole, in the order read.
    pub files_read: Vec<String>,
    /// Of those, the ones read ahead of their turn (errant GTIDs' files), in the order read.
    pub read_first: Vec<String>,
    /// The budget ran out here (file, position reached) before every key was found.
    pub exhausted_at: Option<(String, u64)>,
    /// The oldest retained log and the time of its first event, when it was read.
    pub oldest: Option<(String, Option<u32>)>,
}

/// Which part of the logs a search looks at, and in what order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// Files read ahead of their turn (indices into the logs, those holding errant GTIDs).
    pub first: &'a [usize],
    /// Transactions starting at or after this position of the newest file listed are not
    /// looked at, and it is read no further: the writers *before* a transaction (the one
    /// that failed on the replica), not that transaction itself.
    pub end_pos: Option<u64>,
}

/// Searches `logs` (oldest first, as listed) for the `keys` keys `matcher` recognizes: the
/// files `scope.first` names newest first, then the others newest first, until each key's
/// writer is final, the oldest log was read, or the budget is spent.
pub fn search(
    spec: &ConnSpec,
    flavor: Flavor,
    logs: &[LogFile],
    budget: Budget,
    keys: usize,
    scope: Scope<'_>,
    matcher: &mut dyn FnMut(&RawRowsEvent) -> Vec<KeyHit>,
) -> Result<Searched, FetchError> {
    search_with(
        logs,
        budget,
        keys,
        scope,
        matcher,
        &mut |file, limits, sink| fetch::scan_file(spec, flavor, file, limits, sink),
    )
}

/// How one file is read: its name, the limits, where its items go.
type ScanFile<'a> = dyn FnMut(&str, Limits, &mut dyn FnMut(Item) -> bool) -> Result<fetch::Scanned, FetchError>
    + 'a;

/// `search`, with the reading of a file given (the order and the rule testable without a
/// server).
fn search_with(
    logs: &[LogFile],
    budget: Budget,
    keys: usize,
    scope: Scope<'_>,
    matcher: &mut dyn FnMut(&RawRowsEvent) -> Vec<KeyHit>,
    scan_file: &mut ScanFile<'_>,
) -> Result<Searched, FetchError> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(budget.seconds);
    let n = logs.len();
    let mut out = Searched::default();
    let mut best: Vec<Option<Hit>> = (0..keys).map(|_| None).collect();
    let mut read = vec![false; n];
    let is_final = |best: &[Option<Hit>], read: &[bool], k: usize| {
        best[k]
            .as_ref()
            .is_some_and(|h| read[h.file_index + 1..].iter().all(|r| *r))
    };
    // A file can change key k's answer when k is not final and has no match as new as it.
    let could_change = |best: &[Option<Hit>], read: &[bool], k: usize, i: usize| {
        !is_final(best, read, k) && best[k].as_ref().is_none_or(|h| h.file_index < i)
    };
    let mut ahead: Vec<usize> = scope.first.iter().copied().filter(|&i| i < n).collect();
    ahead.sort_unstable_by(|a, b| b.cmp(a));
    ahead.dedup();
    let ahead_count = ahead.len();
    // Ahead files first, then every file newest first (those already read are passed over).
    let order = ahead.into_iter().chain((0..n).rev());
    for (step, i) in order.enumerate() {
        let is_ahead = step < ahead_count;
        if (0..keys).all(|k| is_final(&best, &read, k)) {
            break;
        }
        if read[i] {
            continue;
        }
        let wanted: Vec<bool> = (0..keys)
            .map(|k| could_change(&best, &read, k, i))
            .collect();
        if !wanted.contains(&true) {
            continue;
        }
        let log = &logs[i];
        let left = budget.bytes.saturating_sub(out.bytes);
        if is_ahead && log.size > left {
            continue;
        }
        if left == 0 || Instant::now() >= deadline {
            out.exhausted_at = Some((log.name.clone(), 4));
            break;
        }
        let mut in_file: Vec<Option<Hit>> = (0..keys).map(|_| None).collect();
        let mut pending: Vec<(KeyHit, usize)> = Vec::new();
        let mut rows_seen = 0usize;
        // The end of the scope: reached once a rows event ends past it (only the transaction
        // at end_pos or a later one can).
        let end = scope.end_pos.filter(|_| i + 1 == n);
        let mut reached_end = false;
        let limits = Limits {
            max_bytes: left,
            deadline: Some(deadline),
            one_file: true,
        };
        let scanned = scan_file(&log.name, limits, &mut |item| {
            match item {
                Item::Begin => {
                    pending.clear();
                    rows_seen = 0;
                }
                Item::Rows(ev) if end.is_some_and(|e| ev.end_log_pos > e) => {
                    reached_end = true;
                    return false;
                }
                Item::Rows(ev) => {
                    let at = rows_seen;
                    rows_seen += 1;
                    pending.extend(
                        matcher(&ev)
                            .into_iter()
                            .filter(|h| h.key < keys && wanted[h.key])
                            .map(|h| (h, at)),
                    );
                }
                Item::Done(trx) => {
                    for (h, rows_index) in pending.drain(..) {
                        in_file[h.key] = Some(Hit {
                            file: log.name.clone(),
                            file_index: i,
                            trx: trx.clone(),
                            kind: h.kind,
                            image: h.image,
                            rows_index,
                        });
                    }
                    rows_seen = 0;
                }
            }
            true
        })?;
        out.bytes += scanned.bytes;
        if !scanned.complete && !reached_end {
            // A key matched in the part read may have been written again later in the file:
            // only a whole file's last match is the newest.
            out.exhausted_at = Some((log.name.clone(), scanned.last_pos));
            break;
        }
        read[i] = true;
        for (slot, hit) in best.iter_mut().zip(in_file) {
            if hit.is_some() {
                *slot = hit;
            }
        }
        out.files_read.push(log.name.clone());
        if is_ahead {
            out.read_first.push(log.name.clone());
        }
        if i == 0 {
            out.oldest = Some((log.name.clone(), scanned.first_timestamp));
        }
    }
    for k in 0..keys {
        let done = is_final(&best, &read, k);
        let hit = best[k].take();
        out.candidates.push(match (&hit, done) {
            (Some(h), false) => Some(Candidate {
                unread_newer: (h.file_index + 1..n)
                    .filter(|&j| !read[j])
                    .map(|j| logs[j].name.clone())
                    .collect(),
                hit: h.clone(),
            }),
            _ => None,
        });
        out.hits.push(hit.filter(|_| done));
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

impl std::str::FromStr for Budget {
    type Err = String;

    /// `256M,10s`: bytes (K, M, G suffixes, powers of 1024) and/or seconds (`s` suffix), in
    /// either order; a part left out keeps its default.
    fn from_str(text: &str) -> Result<Budget, String> {
        let mut b = Budget::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || format!("{part:?} is neither bytes (256M) nor seconds (10s)");
            if let Some(secs) = part.strip_suffix(['s', 'S']) {
                b.seconds = secs.trim().parse().map_err(|_| bad())?;
                continue;
            }
            let (digits, shift) = match part.as_bytes()[part.len() - 1].to_ascii_uppercase() {
                b'K' => (&part[..part.len() - 1], 10),
                b'M' => (&part[..part.len() - 1], 20),
                b'G' => (&part[..part.len() - 1], 30),
                _ => (part, 0),
            };
            let n: u64 = digits.trim().parse().map_err(|_| bad())?;
            b.bytes = n
                .checked_shl(shift)
                .filter(|v| v >> shift == n)
                .ok_or_else(bad)?;
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::TableRef;

    /// Files of `size` bytes, each writing the keys listed (transaction start = the key * 10
    /// + the file's index, to tell which file a hit came from).
    fn run(
        files: &[(u64, &[usize])],
        first: &[usize],
        bytes: u64,
        keys: usize,
    ) -> (Searched, Vec<String>) {
        run_to(files, first, None, bytes, keys)
    }

    /// `run`, with the newest file's transactions from `end_pos` on out of the scope.
    fn run_to(
        files: &[(u64, &[usize])],
        first: &[usize],
        end_pos: Option<u64>,
        bytes: u64,
        keys: usize,
    ) -> (Searched, Vec<String>) {
        let logs: Vec<LogFile> = files
            .iter()
            .enumerate()
            .map(|(i, (size, _))| LogFile {
                name: format!("f{i}"),
                size: *size,
            })
            .collect();
        let mut opened = Vec::new();
        let mut matcher = |ev: &RawRowsEvent| {
            vec![KeyHit {
                key: ev.end_log_pos as usize,
                kind: RowsEventKind::Write,
                image: None,
            }]
        };
        let budget = Budget { bytes, seconds: 60 };
        let searched = search_with(
            &logs,
            budget,
            keys,
            Scope { first, end_pos },
            &mut matcher,
            &mut |file, limits, sink| {
                opened.push(file.to_string());
                let i: usize = file[1..].parse().unwrap();
                let (size, writes) = files[i];
                for &k in writes {
                    sink(Item::Begin);
                    let go_on = sink(Item::Rows(RawRowsEvent {
                        kind: RowsEventKind::Write,
                        table: TableRef {
                            schema: "d".into(),
                            name: "t".into(),
                        },
                        end_log_pos: k as u64,
                        rows: Vec::new(),
                    }));
                    if !go_on {
                        return Ok(fetch::Scanned {
                            bytes: 1,
                            complete: false,
                            first_timestamp: None,
                            last_pos: k as u64,
                        });
                    }
                    sink(Item::Done(RawTransaction {
                        start_pos: (k * 10 + i) as u64,
                        ..Default::default()
                    }));
                }
                let complete = size <= limits.max_bytes;
                Ok(fetch::Scanned {
                    bytes: size.min(limits.max_bytes),
                    complete,
                    first_timestamp: None,
                    last_pos: 4,
                })
            },
        )
        .unwrap();
        (searched, opened)
    }

    fn from(h: &Option<Hit>) -> Option<usize> {
        h.as_ref().map(|h| h.file_index)
    }

    #[test]
    fn newest_first_stops_at_the_newest_writer() {
        let (s, opened) = run(&[(10, &[0]), (10, &[0]), (10, &[])], &[], 1000, 1);
        assert_eq!(opened, ["f2", "f1"]);
        assert_eq!(from(&s.hits[0]), Some(1));
        assert!(s.read_first.is_empty());
    }

    #[test]
    fn an_errant_file_read_first_never_outranks_a_newer_writer() {
        // Key 0 written in f0 (errant, read first) and again in f2: f2 wins; f1 is read
        // because the f0 match is not final before it is.
        let (s, opened) = run(
            &[(10, &[0]), (10, &[]), (10, &[0]), (10, &[])],
            &[0],
            1000,
            1,
        );
        assert_eq!(opened, ["f0", "f3", "f2"]);
        assert_eq!(from(&s.hits[0]), Some(2));
        assert_eq!(s.read_first, ["f0"]);
        // Only in f0: final once every newer file was read; nothing read twice.
        let (s, opened) = run(&[(10, &[0]), (10, &[]), (10, &[])], &[0], 1000, 1);
        assert_eq!(opened, ["f0", "f2", "f1"]);
        assert_eq!(from(&s.hits[0]), Some(0));
        assert!(s.candidates[0].is_none());
    }

    #[test]
    fn a_budget_too_small_for_the_newer_files_leaves_a_candidate_not_an_answer() {
        let files: &[(u64, &[usize])] = &[(10, &[]), (10, &[0]), (500, &[]), (500, &[])];
        // Newest first: the budget ends in f3, nothing found, nothing to name.
        let (s, _) = run(files, &[], 300, 1);
        assert!(s.hits[0].is_none() && s.candidates[0].is_none());
        assert_eq!(s.exhausted_at.as_ref().unwrap().0, "f3");
        // The errant file first: its match is named as a candidate, with the unread files.
        let (s, opened) = run(files, &[1], 300, 1);
        assert_eq!(opened, ["f1", "f3"]);
        assert!(s.hits[0].is_none());
        let c = s.candidates[0].as_ref().unwrap();
        assert_eq!(c.hit.file_index, 1);
        assert_eq!(c.unread_newer, ["f2", "f3"]);
        assert_eq!(s.exhausted_at.as_ref().unwrap().0, "f3");
    }

    #[test]
    fn an_errant_file_bigger_than_the_bytes_left_waits_for_its_turn() {
        let (s, opened) = run(&[(900, &[0]), (10, &[0])], &[0], 100, 1);
        assert_eq!(opened, ["f1"]);
        assert_eq!(from(&s.hits[0]), Some(1));
        assert!(s.read_first.is_empty());
    }

    #[test]
    fn several_keys_each_final_on_its_own() {
        // Key 0 in f0 (errant) only, key 1 in f2 and f0: key 1's newest is f2.
        let (s, opened) = run(&[(10, &[0, 1]), (10, &[]), (10, &[1])], &[0], 1000, 2);
        assert_eq!(opened, ["f0", "f2", "f1"]);
        assert_eq!(from(&s.hits[0]), Some(0));
        assert_eq!(from(&s.hits[1]), Some(2));
    }

    #[test]
    fn a_scope_ending_at_a_transaction_finds_the_writers_before_it() {
        // The newest file writes key 0 at 0 (before the end) and key 1 at 1 (the failing
        // transaction): key 1's writer before it is the one in f0; the newest file counts as
        // read whole (nothing past the end is wanted).
        let (s, opened) = run_to(&[(10, &[1]), (10, &[0, 1])], &[], Some(0), 1000, 2);
        assert_eq!(opened, ["f1", "f0"]);
        assert_eq!(from(&s.hits[0]), Some(1));
        assert_eq!(from(&s.hits[1]), Some(0));
        assert!(s.exhausted_at.is_none());
    }

    #[test]
    fn budgets_parse() {
        let b: Budget = "256M,10s".parse().unwrap();
        assert_eq!((b.bytes, b.seconds), (256 << 20, 10));
        let b: Budget = "5s,1G".parse().unwrap();
        assert_eq!((b.bytes, b.seconds), (1 << 30, 5));
        let b: Budget = "4096".parse().unwrap();
        assert_eq!((b.bytes, b.seconds), (4096, 10));
        assert!("ten".parse::<Budget>().is_err());
        assert!("10m".parse::<Budget>().is_ok(), "m is MiB, not minutes");
    }
}
