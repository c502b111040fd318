//! The origin search's I/O: a node's own binary log, read over the replication protocol
//! newest file first, for the transactions that last wrote some keys. Which rows events hold a
//! key is the caller's (pure) matcher; this file only reads, within a budget of bytes and
//! seconds, and keeps per key the newest transaction that matched.
//!
//! Each file is read from its start to its end on a dump connection of its own (the newest
//! match of a file is its last one), so memory stays flat: one rows event at a time.

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
    pub trx: RawTransaction,
    pub kind: RowsEventKind,
    pub image: Option<ImageRow>,
}

/// What a search found and how far it read.
#[derive(Debug, Default)]
pub struct Searched {
    /// Per wanted key, its newest writer.
    pub hits: Vec<Option<Hit>>,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Files read whole, newest first.
    pub files_read: Vec<String>,
    /// The budget ran out here (file, position reached) before every key was found.
    pub exhausted_at: Option<(String, u64)>,
    /// The oldest retained log and the time of its first event, when it was read.
    pub oldest: Option<(String, Option<u32>)>,
}

/// Searches `logs` (oldest first, as listed) newest first for the `keys` keys `matcher`
/// recognizes, until each is found, the oldest log was read, or the budget is spent.
pub fn search(
    spec: &ConnSpec,
    flavor: Flavor,
    logs: &[LogFile],
    budget: Budget,
    keys: usize,
    matcher: &mut dyn FnMut(&RawRowsEvent) -> Vec<KeyHit>,
) -> Result<Searched, FetchError> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(budget.seconds);
    let mut out = Searched {
        hits: (0..keys).map(|_| None).collect(),
        ..Default::default()
    };
    for (i, log) in logs.iter().enumerate().rev() {
        if out.hits.iter().all(Option::is_some) {
            break;
        }
        let left = budget.bytes.saturating_sub(out.bytes);
        if left == 0 || Instant::now() >= deadline {
            out.exhausted_at = Some((log.name.clone(), 4));
            break;
        }
        let mut in_file: Vec<Option<Hit>> = (0..keys).map(|_| None).collect();
        let mut pending: Vec<KeyHit> = Vec::new();
        let found_before: Vec<bool> = out.hits.iter().map(Option::is_some).collect();
        let limits = Limits {
            max_bytes: left,
            deadline: Some(deadline),
            one_file: true,
        };
        let scanned = fetch::scan_file(spec, flavor, &log.name, limits, &mut |item| {
            match item {
                Item::Begin => pending.clear(),
                Item::Rows(ev) => pending.extend(
                    matcher(&ev)
                        .into_iter()
                        .filter(|h| h.key < keys && !found_before[h.key]),
                ),
                Item::Done(trx) => {
                    for h in pending.drain(..) {
                        in_file[h.key] = Some(Hit {
                            file: log.name.clone(),
                            trx: trx.clone(),
                            kind: h.kind,
                            image: h.image,
                        });
                    }
                }
            }
            true
        })?;
        out.bytes += scanned.bytes;
        if !scanned.complete {
            // A key matched in the part read may have been written again later in the file:
            // only a whole file's last match is the newest.
            out.exhausted_at = Some((log.name.clone(), scanned.last_pos));
            break;
        }
        for (slot, hit) in out.hits.iter_mut().zip(in_file) {
            if slot.is_none() {
                *slot = hit;
            }
        }
        out.files_read.push(log.name.clone());
        if i == 0 {
            out.oldest = Some((log.name.clone(), scanned.first_timestamp));
        }
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
    use super::Budget;

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
