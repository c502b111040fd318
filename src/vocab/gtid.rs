//! GTIDs and GTID sets in each flavor's own notation, with one parser per flavor.
//!
//! - MySQL: `uuid:1-5:7,uuid2:3`, tagged GTIDs of MySQL 8.4+ included
//!   (`uuid:1-5:tag:1-3`, tags `[a-z_][a-z0-9_]{0,31}`, case-insensitive, kept lowercase).
//!   A set is intervals of transaction numbers per (uuid, tag). The server writes its sets
//!   sorted, merged, and with `,\n` between uuids; [`MysqlGtidSet`]'s Display does the same.
//! - MariaDB: `domain-server_id-seq` lists (gtid_slave_pos, gtid_binlog_pos, Gtid_IO_Pos,
//!   gtid_binlog_state). Not intervals: a position holds the last GTID per domain, a binlog
//!   state the last one per (domain, server_id). [`MariadbGtidList`] keeps the entries as
//!   written and answers both questions ([`MariadbGtidList::contains`],
//!   [`MariadbGtidList::logged`]).
//!
//! A single [`Gtid`] is parsed by the same two parsers (a set of exactly one transaction).
//! Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// A GTID in the flavor's own notation: MySQL `uuid:n` (`uuid:tag:n` when tagged), MariaDB
/// `domain-server-seq`. Serialized in its textual form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Gtid {
    Mysql {
        uuid: String,
        /// MySQL 8.4+ tagged GTIDs (`uuid:tag:n`); lowercase.
        tag: Option<String>,
        gno: u64,
    },
    Mariadb {
        domain: u32,
        server_id: u32,
        seq: u64,
    },
}

impl Gtid {
    /// A GTID as servers write one (in error texts, performance_schema, status): MySQL when it
    /// holds a ':', MariaDB otherwise. None unless the text names exactly one transaction.
    pub fn parse(s: &str) -> Option<Gtid> {
        match s.contains(':') {
            true => MysqlGtidSet::parse(s)?.single(),
            false => MariadbGtidList::parse(s)?.single(),
        }
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::Mysql { uuid, tag, gno } => match tag {
                Some(t) => write!(f, "{uuid}:{t}:{gno}"),
                None => write!(f, "{uuid}:{gno}"),
            },
            Gtid::Mariadb {
                domain,
                server_id,
                seq,
            } => write!(f, "{domain}-{server_id}-{seq}"),
        }
    }
}

impl Serialize for Gtid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A GTID set of either flavor. Serialized in its textual form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidSet {
    Mysql(MysqlGtidSet),
    Mariadb(MariadbGtidList),
}

impl GtidSet {
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::Mysql(s) => s.is_empty(),
            GtidSet::Mariadb(l) => l.is_empty(),
        }
    }

    /// Whether the transaction is in the set (MariaDB: its domain's position reaches it).
    pub fn contains(&self, gtid: &Gtid) -> bool {
        match self {
            GtidSet::Mysql(s) => s.contains(gtid),
            GtidSet::Mariadb(l) => l.contains(gtid),
        }
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::Mysql(s) => s.fmt(f),
            GtidSet::Mariadb(l) => l.fmt(f),
        }
    }
}

impl Serialize for GtidSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---- MySQL -------------------------------------------------------------------------------

/// A MySQL GTID set: per (uuid, tag) the transaction numbers, as sorted, disjoint,
/// non-adjacent inclusive intervals (the form the server keeps and writes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MysqlGtidSet {
    intervals: BTreeMap<Source, Vec<(u64, u64)>>,
}

/// Who numbers a run of MySQL transactions: a server uuid and, MySQL 8.4+, a tag. Untagged
/// (None) sorts before any tag, as the server writes them.
type Source = (String, Option<String>);

/// A MySQL 8.4+ GTID tag: `[a-z_][a-z0-9_]{0,31}`, any case.
fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 32
}

/// `n` or `a-b` (a <= b).
fn interval(s: &str) -> Option<(u64, u64)> {
    let digits = |t: &str| match !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        true => t.parse::<u64>().ok(),
        false => None,
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (digits(a)?, digits(b)?),
        None => (digits(s)?, digits(s)?),
    };
    (a <= b).then_some((a, b))
}

impl MysqlGtidSet {
    /// The one MySQL parser: `uuid:1-5:7,uuid2:tag:3`, whitespace (gtid_executed's `,\n`)
    /// and empty parts allowed, uuids and tags lowercased. None when it is not a GTID set.
    pub fn parse(text: &str) -> Option<MysqlGtidSet> {
        let mut set = MysqlGtidSet::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut pieces = part.split(':').map(str::trim);
            let uuid = pieces.next()?;
            if uuid.is_empty() || uuid.contains(char::is_whitespace) {
                return None;
            }
            let uuid = uuid.to_ascii_lowercase();
            let mut tag = None;
            for piece in pieces {
                if let Some((a, b)) = interval(piece) {
                    set.add(&uuid, tag.as_ref(), a, b);
                } else if is_tag(piece) {
                    tag = Some(piece.to_ascii_lowercase());
                } else {
                    return None;
                }
            }
        }
        Some(set)
    }

    fn add(&mut self, uuid: &str, tag: Option<&String>, a: u64, b: u64) {
        let list = self
            .intervals
            .entry((uuid.to_string(), tag.cloned()))
            .or_default();
        list.push((a, b));
        list.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(list.len());
        for &(a, b) in list.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *list = merged;
    }

    pub fn is_empty(&self) -> bool {
        self.intervals.values().all(Vec::is_empty)
    }

    /// Whether the set holds this (MySQL) GTID.
    pub fn contains(&self, gtid: &Gtid) -> bool {
        let Gtid::Mysql { uuid, tag, gno } = gtid else {
            return false;
        };
        self.intervals
            .get(&(uuid.clone(), tag.clone()))
            .is_some_and(|l| l.iter().any(|&(a, b)| a <= *gno && *gno <= b))
    }

    /// Every transaction of either set.
    pub fn union(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut out = self.clone();
        for ((uuid, tag), list) in &other.intervals {
            for &(a, b) in list {
                out.add(uuid, tag.as_ref(), a, b);
            }
        }
        out
    }

    /// The transactions of this set that `other` lacks (the server's GTID_SUBTRACT).
    pub fn subtract(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut out = MysqlGtidSet::default();
        for (key, list) in &self.intervals {
            let holes = other.intervals.get(key).map(Vec::as_slice).unwrap_or(&[]);
            let mut left = Vec::new();
            for &(a, b) in list {
                // The next number not yet covered; None past u64::MAX.
                let mut start = Some(a);
                for &(ha, hb) in holes.iter().filter(|&&(ha, hb)| hb >= a && ha <= b) {
                    if let Some(s) = start.filter(|&s| ha > s) {
                        left.push((s, ha - 1));
                    }
                    start = start.and_then(|s| match s > hb {
                        true => Some(s),
                        false => hb.checked_add(1),
                    });
                }
                if let Some(s) = start.filter(|&s| s <= b) {
                    left.push((s, b));
                }
            }
            if !left.is_empty() {
                out.intervals.insert(key.clone(), left);
            }
        }
        out
    }

    /// The set's GTIDs one by one, in order; None when there are more than `max`.
    pub fn gtids(&self, max: usize) -> Option<Vec<Gtid>> {
        let count = self
            .intervals
            .values()
            .flatten()
            .fold(0u64, |n, &(a, b)| n.saturating_add(b - a + 1));
        if count > max as u64 {
            return None;
        }
        let mut out = Vec::with_capacity(count as usize);
        for ((uuid, tag), list) in &self.intervals {
            for &(a, b) in list {
                out.extend((a..=b).map(|gno| Gtid::Mysql {
                    uuid: uuid.clone(),
                    tag: tag.clone(),
                    gno,
                }));
            }
        }
        Some(out)
    }

    /// The one GTID of a set that holds exactly one.
    fn single(&self) -> Option<Gtid> {
        let mut all = self.gtids(1)?;
        all.pop()
    }
}

/// The server's own form: uuids sorted, `,\n` between them; untagged intervals first, then
/// each tag followed by its intervals (`uuid:1-5:tag:1-3`).
impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last_uuid: Option<&str> = None;
        for ((uuid, tag), list) in self.intervals.iter().filter(|(_, l)| !l.is_empty()) {
            if last_uuid != Some(uuid.as_str()) {
                if last_uuid.is_some() {
                    f.write_str(",\n")?;
                }
                f.write_str(uuid)?;
                last_uuid = Some(uuid);
            }
            if let Some(t) = tag {
                write!(f, ":{t}")?;
            }
            for &(a, b) in list {
                match a == b {
                    true => write!(f, ":{a}")?,
                    false => write!(f, ":{a}-{b}")?,
                }
            }
        }
        Ok(())
    }
}

// ---- MariaDB -----------------------------------------------------------------------------

/// A MariaDB GTID list as the server writes it: a position (gtid_slave_pos, gtid_binlog_pos,
/// Gtid_IO_Pos: one entry per domain) or a binlog state (gtid_binlog_state: one per domain
/// and server_id). Entries keep their order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MariadbGtidList {
    /// (domain, server_id, seq)
    entries: Vec<(u32, u32, u64)>,
}

impl MariadbGtidList {
    /// The one MariaDB parser: `domain-server_id-seq` entries, comma separated, whitespace and
    /// empty parts allowed. None when an entry is not one.
    pub fn parse(text: &str) -> Option<MariadbGtidList> {
        let mut entries = Vec::new();
        for e in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut p = e.split('-');
            let (d, s, n) = (p.next()?, p.next()?, p.next()?);
            if p.next().is_some() {
                return None;
            }
            entries.push((d.parse().ok()?, s.parse().ok()?, n.parse().ok()?));
        }
        Some(MariadbGtidList { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as GTIDs, in order.
    pub fn iter(&self) -> impl Iterator<Item = Gtid> + '_ {
        self.entries
            .iter()
            .map(|&(domain, server_id, seq)| Gtid::Mariadb {
                domain,
                server_id,
                seq,
            })
    }

    /// As a position: the transaction is applied when its domain's position reaches its seq
    /// (whichever server wrote it).
    pub fn contains(&self, gtid: &Gtid) -> bool {
        let Gtid::Mariadb { domain, seq, .. } = *gtid else {
            return false;
        };
        self.entries
            .iter()
            .any(|&(d, _, n)| d == domain && n >= seq)
    }

    /// As a binlog state: the transaction is logged when the entry of its domain and
    /// server_id reaches its seq.
    pub fn logged(&self, gtid: &Gtid) -> bool {
        let Gtid::Mariadb {
            domain,
            server_id,
            seq,
        } = *gtid
        else {
            return false;
        };
        self.entries
            .iter()
            .any(|&(d, s, n)| d == domain && s == server_id && n >= seq)
    }

    /// As binlog states: the entries of this list that `other` has not logged.
    pub fn subtract(&self, other: &MariadbGtidList) -> MariadbGtidList {
        MariadbGtidList {
            entries: self
                .iter()
                .zip(&self.entries)
                .filter(|(g, _)| !other.logged(g))
                .map(|(_, e)| *e)
                .collect(),
        }
    }

    /// As binlog states: per (domain, server_id) the higher seq of the two.
    pub fn union(&self, other: &MariadbGtidList) -> MariadbGtidList {
        let mut out = self.clone();
        for &(d, s, n) in &other.entries {
            match out.entries.iter_mut().find(|e| e.0 == d && e.1 == s) {
                Some(e) => e.2 = e.2.max(n),
                None => out.entries.push((d, s, n)),
            }
        }
        out
    }

    /// As a binlog state: the last seq logged for (domain, server_id), if any.
    pub fn seq_of(&self, domain: u32, server_id: u32) -> Option<u64> {
        self.entries
            .iter()
            .filter(|e| e.0 == domain && e.1 == server_id)
            .map(|e| e.2)
            .max()
    }

    /// The entries written under one server_id.
    pub fn from_server(&self, server_id: u32) -> MariadbGtidList {
        MariadbGtidList {
            entries: self
                .entries
                .iter()
                .filter(|e| e.1 == server_id)
                .copied()
                .collect(),
        }
    }

    /// As a position: this one with the GTID's domain moved to the GTID (the domain's other
    /// entries replaced), domains in ascending order. A MySQL GTID changes nothing.
    pub fn advanced_to(&self, gtid: &Gtid) -> MariadbGtidList {
        let Gtid::Mariadb {
            domain,
            server_id,
            seq,
        } = *gtid
        else {
            return self.clone();
        };
        let mut entries: Vec<_> = self
            .entries
            .iter()
            .filter(|e| e.0 != domain)
            .copied()
            .collect();
        entries.push((domain, server_id, seq));
        entries.sort_by_key(|e| e.0);
        MariadbGtidList { entries }
    }

    /// The one GTID of a list that holds exactly one.
    fn single(&self) -> Option<Gtid> {
        match self.entries.len() {
            1 => self.iter().next(),
            _ => None,
        }
    }
}

/// The server's own form: `d-s-n` entries joined by ','.
impl fmt::Display for MariadbGtidList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, s, n)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}-{s}-{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4f22ab58-71ca-11e1-9e33-c80aa9429563";

    fn my(s: &str) -> MysqlGtidSet {
        MysqlGtidSet::parse(s).unwrap_or_else(|| panic!("{s:?} parses"))
    }

    fn ma(s: &str) -> MariadbGtidList {
        MariadbGtidList::parse(s).unwrap_or_else(|| panic!("{s:?} parses"))
    }

    fn g(s: &str) -> Gtid {
        Gtid::parse(s).unwrap_or_else(|| panic!("{s:?} is a GTID"))
    }

    #[test]
    fn single_gtids_of_both_flavors() {
        let m = g("3E11FA47-71CA-11E1-9E33-C80AA9429562:23");
        assert_eq!(m.to_string(), format!("{U1}:23"));
        let t = g(&format!(" {U1}:My_Tag:5 "));
        assert_eq!(
            t,
            Gtid::Mysql {
                uuid: U1.into(),
                tag: Some("my_tag".into()),
                gno: 5
            }
        );
        assert_eq!(t.to_string(), format!("{U1}:my_tag:5"));
        let d = g("0-1-6");
        assert_eq!(
            d,
            Gtid::Mariadb {
                domain: 0,
                server_id: 1,
                seq: 6
            }
        );
        assert_eq!(d.to_string(), "0-1-6");
        for bad in [
            "garbage",
            "",
            "u:1-3",
            "u:1,u:2",
            "0-1-6,1-1-7",
            "0-1",
            "0-1-2-3",
            "u:",
        ] {
            assert_eq!(Gtid::parse(bad), None, "{bad:?}");
        }
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"0-1-6\"");
    }

    #[test]
    fn mysql_sets_parse_whitespace_tags_and_empty() {
        assert!(my("").is_empty());
        assert!(my(" \n").is_empty());
        // gtid_executed as the server writes it: sorted, `,\n` between uuids.
        let server = format!("{U1}:1-5:7,\n{U2}:3");
        let s = my(&server);
        assert_eq!(s.to_string(), server);
        assert!(s.contains(&g(&format!("{U1}:4"))));
        assert!(!s.contains(&g(&format!("{U1}:6"))));
        assert!(s.contains(&g(&format!("{U2}:3"))));
        // Unsorted, overlapping, adjacent, upper case: the canonical form.
        let messy = my(&format!("{}:7:3-4, {U1}:1-2:5,{U1}:4-5", U2.to_uppercase()));
        assert_eq!(messy.to_string(), format!("{U1}:1-2:4-5,\n{U2}:3-4:7"));
        // Tagged (MySQL 8.4+): untagged first, then each tag; tags lowercased.
        let tagged = my(&format!("{U1}:Tb:2,{U1}:1-3:ta:1-2:4"));
        assert_eq!(tagged.to_string(), format!("{U1}:1-3:ta:1-2:4:tb:2"));
        assert!(tagged.contains(&g(&format!("{U1}:TA:4"))));
        assert!(!tagged.contains(&g(&format!("{U1}:ta:3"))));
        assert!(!tagged.contains(&g(&format!("{U1}:tb:1"))));
        assert_eq!(my(&tagged.to_string()), tagged);
        // What MySQL 9.7 answers for GTID_SUBTRACT(this, ''), byte for byte.
        let server = my(&format!(
            "{U2}:3,{}:1-5:7:6:Tb:2:ta:4:1-2",
            U1.to_uppercase()
        ));
        assert_eq!(
            server.to_string(),
            format!("{U1}:1-7:ta:1-2:4:tb:2,\n{U2}:3")
        );
        for bad in ["u:5-1", "u:1-x", "u::1", "u:1tag:1", "u:-3", ":1", "u v:1"] {
            assert_eq!(MysqlGtidSet::parse(bad), None, "{bad:?}");
        }
        assert!(MysqlGtidSet::parse(&format!("u:{}:1", "t".repeat(33))).is_none());
        assert!(MysqlGtidSet::parse(&format!("u:{}:1", "t".repeat(32))).is_some());
    }

    #[test]
    fn mysql_subtract_and_union() {
        let a = my(&format!("{U1}:1-10:20,{U2}:1-3:x:1-2"));
        let b = my(&format!("{U1}:3-4:8-25,{U2}:x:2"));
        assert_eq!(
            a.subtract(&b).to_string(),
            format!("{U1}:1-2:5-7,\n{U2}:1-3:x:1")
        );
        assert!(a.subtract(&a).is_empty());
        assert_eq!(a.subtract(&my("")), a);
        assert!(my("").subtract(&a).is_empty());
        assert_eq!(my("u:1-3").subtract(&my("u:1,u:3")).to_string(), "u:2");
        assert_eq!(
            a.union(&b).to_string(),
            format!("{U1}:1-25,\n{U2}:1-3:x:1-2")
        );
        assert_eq!(my("u:1").union(&my("u:2")).to_string(), "u:1-2");
    }

    #[test]
    fn mysql_sets_expand_to_each_transaction() {
        let s = my(&format!("{U1}:1-2:7,u:x:5"));
        let text: Vec<String> = s
            .gtids(100)
            .unwrap()
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert_eq!(
            text,
            vec![
                format!("{U1}:1"),
                format!("{U1}:2"),
                format!("{U1}:7"),
                "u:x:5".into()
            ]
        );
        assert!(my("u:1-100000").gtids(10).is_none());
        assert!(my("u:1-10").gtids(10).is_some());
        assert!(my("").gtids(10).unwrap().is_empty());
    }

    #[test]
    fn mariadb_lists_multi_domain() {
        assert!(ma("").is_empty());
        let pos = ma("0-1-100, 1-2-5,\n2-1-9");
        assert_eq!(pos.to_string(), "0-1-100,1-2-5,2-1-9");
        assert_eq!(ma(&pos.to_string()), pos);
        // A position: the domain's seq reaches it, whichever server wrote it.
        assert!(pos.contains(&g("0-3-100")));
        assert!(pos.contains(&g("1-2-4")));
        assert!(!pos.contains(&g("1-2-6")));
        assert!(!pos.contains(&g("3-1-1")));
        // A binlog state: per domain and server_id.
        assert!(pos.logged(&g("0-1-50")));
        assert!(!pos.logged(&g("0-3-50")));
        for bad in ["0-1", "0-1-x", "a-b-c", "0-1-2-3", "u:1"] {
            assert_eq!(MariadbGtidList::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mariadb_subtract_union_and_advance() {
        let replica = ma("0-1-100,0-2-7,1-2-3");
        let source = ma("0-1-101,0-2-5");
        assert_eq!(replica.subtract(&source).to_string(), "0-2-7,1-2-3");
        assert_eq!(
            replica
                .from_server(2)
                .subtract(&source.union(&ma("0-2-7")))
                .to_string(),
            "1-2-3"
        );
        assert_eq!(
            source.union(&ma("0-2-9,3-1-1")).to_string(),
            "0-1-101,0-2-9,3-1-1"
        );
        assert_eq!(
            ma("0-1-100,1-1-5").advanced_to(&g("1-1-6")).to_string(),
            "0-1-100,1-1-6"
        );
        assert_eq!(
            ma("2-1-1,0-1-3").advanced_to(&g("1-4-6")).to_string(),
            "0-1-3,1-4-6,2-1-1"
        );
        assert_eq!(ma("").advanced_to(&g("0-1-1")).to_string(), "0-1-1");
    }

    #[test]
    fn sets_serialize_as_their_text() {
        let s = GtidSet::Mysql(my("u:1-3,v:2"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"u:1-3,\\nv:2\"");
        let m = GtidSet::Mariadb(ma("0-2-9,1-2-3"));
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"0-2-9,1-2-3\"");
        assert!(m.contains(&g("1-5-3")) && !m.contains(&g("u:1")));
        assert!(GtidSet::Mariadb(ma("")).is_empty());
    }
}
