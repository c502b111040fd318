//! Pure judgements over fetched rows: the verdict per conflicting row and the incident's
//! fingerprint.

use super::model::{Row, Verdict};

/// Compares the replica's and the source's current versions of a row, byte for byte (a SQL
/// `=` would call 'a' and 'a ' equal under PAD SPACE collations).
pub fn verdict(replica: Option<&Row>, source: Option<&Row>, source_known: bool) -> Verdict {
    match (replica, source) {
        (_, _) if !source_known => Verdict::SourceUnknown,
        (Some(r), Some(s)) => {
            let differing: Vec<String> = r
                .columns
                .iter()
                .zip(&r.values)
                .filter(|(name, value)| s.get(name).is_some_and(|sv| sv != *value))
                .map(|(name, _)| name.clone())
                .collect();
            if differing.is_empty() {
                Verdict::Identical
            } else {
                Verdict::Differs { columns: differing }
            }
        }
        (Some(_), None) => Verdict::AbsentOnSource,
        (None, Some(_)) => Verdict::AbsentOnReplica,
        (None, None) => Verdict::AbsentOnBoth,
    }
}

/// FNV-1a over the parts: stable across runs and platforms, which is all a fingerprint needs.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0x1f)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Cell;

    fn row(vals: &[(&str, Cell)]) -> Row {
        Row::of(vals)
    }

    #[test]
    fn verdicts() {
        let a = row(&[
            ("id", Cell::Number("1".into())),
            ("v", Cell::Text("a".into())),
        ]);
        let b = row(&[
            ("id", Cell::Number("1".into())),
            ("v", Cell::Text("a ".into())),
        ]);
        assert_eq!(verdict(Some(&a), Some(&a), true), Verdict::Identical);
        assert_eq!(
            verdict(Some(&a), Some(&b), true),
            Verdict::Differs {
                columns: vec!["v".into()]
            }
        );
        assert_eq!(verdict(Some(&a), None, true), Verdict::AbsentOnSource);
        assert_eq!(verdict(None, Some(&a), true), Verdict::AbsentOnReplica);
        assert_eq!(verdict(Some(&a), None, false), Verdict::SourceUnknown);
    }

    #[test]
    fn fingerprint_is_stable_and_separates_parts() {
        assert_eq!(fingerprint(&["a", "b"]), fingerprint(&["a", "b"]));
        assert_ne!(fingerprint(&["ab", ""]), fingerprint(&["a", "b"]));
    }
}
