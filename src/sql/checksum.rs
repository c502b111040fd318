//! Verify's statements: a table's chunks bounded along its key, checksummed (whole and by
//! bucket), and read as (key, row hash) pairs; the row digest itself (two CRC32s of the
//! row's text, each column read as its exact bytes). Pure; re-exported from `sql`.

use super::quote_ident;
use super::{Charsets, Statement, table_sql};
use crate::value::Cell;
use crate::vocab::TableRef;

// ---- verify: chunked checksums and row hashes -------------------------------------------

/// A column as the row hash reads it. FLOAT is widened to DOUBLE (`+ 0e0`), whose text is
/// exact (FLOAT's own text rounds to 6 digits); character data is hashed as its bytes in the
/// column's own character set (no conversion, and no collation mix between columns).
fn hashed_column(col: &crate::schema::ColumnDef) -> String {
    let q = quote_ident(&col.name);
    match col.data_type.as_str() {
        "float" | "double" | "real" => format!("({q} + 0e0)"),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            format!("CAST({q} AS BINARY)")
        }
        _ => q,
    }
}

/// The multiplier of a row digest's first CRC32: odd and below 2^32, so that
/// `a * M + b` of two 32-bit values stays below 2^64 (no BIGINT UNSIGNED overflow) and the
/// carries of the product make the digest non-linear in the row's bits.
const DIGEST_MULTIPLIER: u64 = 4_294_967_291;

/// The row's text: its stored columns joined with `#`, followed by an `ISNULL` marker of
/// each nullable column (CONCAT_WS skips a NULL, so `NULL` and `''` already differ; the
/// marker keeps a NULL moved to the next column apart). NOT NULL columns need no marker:
/// measured, the markers cost a quarter of the text. Generated columns follow from the
/// others and are left out.
fn row_text(schema: &crate::schema::TableSchema) -> String {
    joined(schema, |x| vec![x])
}

/// CONCAT_WS('#', …) of what `each` makes of every stored column as hashed
/// (`hashed_column`), then the NULL markers of the nullable ones.
fn joined(schema: &crate::schema::TableSchema, each: impl Fn(String) -> Vec<String>) -> String {
    let cols: Vec<&crate::schema::ColumnDef> =
        schema.columns.iter().filter(|c| !c.generated).collect();
    let values = cols.iter().flat_map(|c| each(hashed_column(c)));
    let nulls = cols
        .iter()
        .filter(|c| c.nullable)
        .map(|c| format!("ISNULL({})", quote_ident(&c.name)));
    let parts: Vec<String> = values.chain(nulls).collect();
    format!("CONCAT_WS('#', {})", parts.join(", "))
}

/// Which second CRC a run's row digest takes: one choice for every node of a run, since
/// nodes compare each other's sums (`RowDigest::common`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowDigest {
    /// `CRC32(text) * M + CRC32(REVERSE(text))`: every server.
    Reversed,
    /// `CRC32(text) * M + CRC32C(text)`: MariaDB 10.8 and later (CRC32C is MariaDB's own).
    /// The Castagnoli polynomial shares no factor with CRC32's, so a change of the same
    /// length both CRCs miss is a multiple of their product, of degree 64; and it spares the
    /// server REVERSE's copy of the text (docs/verify.md, "The row digest", has the figures).
    Castagnoli,
}

impl RowDigest {
    /// Its name in reports: `crc32,crc32c` or `crc32,crc32-reversed`.
    pub fn name(self) -> &'static str {
        match self {
            RowDigest::Reversed => "crc32,crc32-reversed",
            RowDigest::Castagnoli => "crc32,crc32c",
        }
    }

    /// The digest every node of a run computes: CRC32C only when every one has it
    /// (`Flavor::has_crc32c`; the flavor module builds statements, so it is asked there).
    pub fn common(every_node_has_crc32c: bool) -> RowDigest {
        match every_node_has_crc32c {
            true => RowDigest::Castagnoli,
            false => RowDigest::Reversed,
        }
    }
}

/// The row's 64-bit digest, an unsigned BIGINT: `CRC32(text) * M` plus a second CRC of the
/// text that sees the change differently from the first (`RowDigest`: the reversed text, or
/// another polynomial). Two CRCs cost the server a third of MD5 (docs/verify.md, "Where
/// verify's server time goes"); a CRC32 of the same bytes in any other framing (salted,
/// reordered) is zero for the same changes as the first. The multiply-add is what chunks
/// are XORed over: a XOR of the CRCs themselves is linear and misses values swapped between
/// rows of equal length.
pub fn row_digest(schema: &crate::schema::TableSchema, digest: RowDigest) -> String {
    full_digest(schema, digest, TextEval::Twice)
}

/// The row digest with its fallback: a row whose text would be longer than the session's
/// max_allowed_packet makes CONCAT_WS return NULL (warning 1301), and a NULL digest is
/// skipped by BIT_XOR and equal on both nodes: such a row would never be compared. Its
/// digest is then computed over each column's own CRCs instead (`long_row_text`); IFNULL
/// evaluates that only for those rows.
fn full_digest(schema: &crate::schema::TableSchema, digest: RowDigest, eval: TextEval) -> String {
    let long = digest_of(&long_row_text(schema, digest), digest, TextEval::Twice);
    format!(
        "IFNULL({}, {long})",
        digest_of(&row_text(schema), digest, eval)
    )
}

/// The text of a row too long for `row_text`: each stored column's CRC32 and CRC32C (64 bits
/// of each value; on servers without CRC32C, CRC32 and the length, as REVERSE of a value that
/// long would be NULL too), then the NULL markers. Numbers only: never NULL, never long.
fn long_row_text(schema: &crate::schema::TableSchema, digest: RowDigest) -> String {
    joined(schema, |x| {
        let second = match digest {
            RowDigest::Castagnoli => format!("CRC32C({x})"),
            RowDigest::Reversed => format!("LENGTH({x})"),
        };
        vec![format!("CRC32({x})"), second]
    })
}

/// How a pass statement has the server evaluate the row's text for the digest's two CRCs.
/// Either way the digest's value is the same: nodes evaluating differently still compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEval {
    /// The text written out for each CRC: the server builds it twice.
    Twice,
    /// The first CRC's argument assigns the text to a session variable, which the second
    /// reads: built once, a fifth less server CPU on narrow rows (docs/verify.md). MariaDB
    /// documents the order of a set and a read in one statement as undefined, so a server
    /// is only trusted with it once `text_once_probe` has found it setting first.
    Once,
}

/// The session variable that carries a row's text from the first CRC to the second.
const TEXT_VAR: &str = "@replmend_row_text";

fn digest_of(text: &str, digest: RowDigest, eval: TextEval) -> String {
    let (first, again) = match eval {
        TextEval::Twice => (text.to_string(), text.to_string()),
        TextEval::Once => (format!("{TEXT_VAR} := {text}"), TEXT_VAR.to_string()),
    };
    let second = match digest {
        RowDigest::Reversed => format!("CRC32(REVERSE({again}))"),
        RowDigest::Castagnoli => format!("CRC32C({again})"),
    };
    format!("(CRC32({first}) * {DIGEST_MULTIPLIER} + {second})")
}

/// Empties the session variable once a session's pass over a table ends: it holds the last
/// row's text, which performance_schema's `user_variables_by_thread` shows to other accounts
/// (and whose memory the session would keep while it waits in the pool).
pub fn text_var_cleared() -> Statement {
    Statement::plain(format!("SET {TEXT_VAR} = NULL"))
}

/// One row, 1, when the server computes `TextEval::Once`'s digest as `Twice`'s over rows
/// of different texts, summed whole and by group (the pass's two statement shapes): it sets
/// the variable before the second CRC reads it. A server evaluating the other way reads the
/// previous row's text, and the sums differ.
pub fn text_once_probe(digest: RowDigest) -> Statement {
    let rows = "SELECT 1 AS g, 'a' AS t UNION ALL SELECT 1, 'bc' UNION ALL SELECT 2, 'def' \
                UNION ALL SELECT 2, ''";
    let (once, twice) = (
        digest_of("t", digest, TextEval::Once),
        digest_of("t", digest, TextEval::Twice),
    );
    let same = format!("BIT_XOR({once}) = BIT_XOR({twice})");
    Statement::plain(format!(
        "SELECT MIN(same) FROM (SELECT {same} AS same FROM ({rows}) w \
         UNION ALL SELECT {same} FROM ({rows}) g GROUP BY g) p"
    ))
}

/// The row digest as text (decimal), as row hashes are compared and looked up: a number
/// compared with a text parameter would be compared as a DOUBLE, which rounds 64 bits.
pub fn row_hash(schema: &crate::schema::TableSchema, digest: RowDigest) -> String {
    format!("CAST({} AS CHAR)", row_digest(schema, digest))
}

/// The parameter marker for a key column (converted to the column's character set).
fn marker(col: &str, charsets: &Charsets) -> String {
    match charsets.iter().find(|(c, _)| c == col) {
        Some((_, cs)) if cs.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') => {
            format!("CONVERT(? USING {cs})")
        }
        _ => "?".to_string(),
    }
}

/// `key > bound` (strictly after) or `key <= bound` over a composite key, expanded so every
/// server uses the index: `k1 > ? OR (k1 = ? AND k2 > ?)`.
fn key_compare(
    bound: &[(String, Cell)],
    after: bool,
    charsets: &Charsets,
    params: &mut Vec<Cell>,
) -> String {
    let mut terms = Vec::new();
    for i in 0..bound.len() {
        let mut parts = Vec::new();
        for (c, v) in &bound[..i] {
            parts.push(format!("{} = {}", quote_ident(c), marker(c, charsets)));
            params.push(v.clone());
        }
        let (c, v) = &bound[i];
        let last = i + 1 == bound.len();
        let op = match (after, last) {
            (true, _) => ">",
            (false, false) => "<",
            (false, true) => "<=",
        };
        parts.push(format!("{} {op} {}", quote_ident(c), marker(c, charsets)));
        params.push(v.clone());
        terms.push(format!("({})", parts.join(" AND ")));
    }
    format!("({})", terms.join(" OR "))
}

/// The WHERE clause of the chunk (lo, hi] (either end open when None).
fn chunk_where(
    lo: Option<&[(String, Cell)]>,
    hi: Option<&[(String, Cell)]>,
    charsets: &Charsets,
) -> (String, Vec<Cell>) {
    let mut params = Vec::new();
    let mut conds = Vec::new();
    if let Some(lo) = lo {
        conds.push(key_compare(lo, true, charsets, &mut params));
    }
    if let Some(hi) = hi {
        conds.push(key_compare(hi, false, charsets, &mut params));
    }
    match conds.is_empty() {
        true => (String::new(), params),
        false => (format!(" WHERE {}", conds.join(" AND ")), params),
    }
}

fn key_list(key: &[String]) -> String {
    key.iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key of the `n`th row after `lo` in key order: the chunk's upper bound (an index-only
/// read of n entries).
pub fn chunk_bound(
    table: &TableRef,
    key: &[String],
    lo: Option<&[(String, Cell)]>,
    n: usize,
    charsets: &Charsets,
) -> Statement {
    let (filter, params) = chunk_where(lo, None, charsets);
    let cols = key_list(key);
    Statement::plain(format!(
        "SELECT {cols} FROM {}{filter} ORDER BY {cols} LIMIT 1 OFFSET {}",
        table_sql(table),
        n.saturating_sub(1)
    ))
    .params(params)
}

/// One chunk's checksum, computed by the server: `COUNT(*)` and the XOR of the rows' 64-bit
/// hashes; with `multiset` also their SUM (XOR cancels a duplicated row, SUM does not).
pub fn chunk_checksum(
    schema: &crate::schema::TableSchema,
    digest: (RowDigest, TextEval),
    lo: Option<&[(String, Cell)]>,
    hi: Option<&[(String, Cell)]>,
    charsets: &Charsets,
    multiset: bool,
) -> Statement {
    let (filter, params) = chunk_where(lo, hi, charsets);
    let x = full_digest(schema, digest.0, digest.1);
    let sum = match multiset {
        true => format!(", COALESCE(SUM({x}), 0)"),
        false => ", 0".to_string(),
    };
    Statement::plain(format!(
        "SELECT COUNT(*), COALESCE(BIT_XOR({x}), 0){sum} FROM {}{filter}",
        table_sql(&schema.table)
    ))
    .params(params)
}

/// One chunk's checksums per bucket of its single integer key (`key DIV step`): a
/// differing chunk is narrowed to its differing buckets without another pass over it.
pub fn chunk_bucket_checksums(
    schema: &crate::schema::TableSchema,
    digest: (RowDigest, TextEval),
    key: &str,
    step: u64,
    lo: Option<&[(String, Cell)]>,
    hi: Option<&[(String, Cell)]>,
) -> Statement {
    let (filter, params) = chunk_where(lo, hi, &[]);
    let x = full_digest(schema, digest.0, digest.1);
    Statement::plain(format!(
        // The expression itself in GROUP BY: MySQL's ONLY_FULL_GROUP_BY refused the alias
        // when the step is 1 (it folds `id DIV 1` to `id`).
        "SELECT {k} DIV {step} AS b, COUNT(*), BIT_XOR({x}) FROM {}{filter} GROUP BY {k} DIV {step}",
        table_sql(&schema.table),
        k = quote_ident(key),
    ))
    .params(params)
}

/// (key, row hash) of the rows of the chunk whose integer key lies in one of the ranges
/// [first, last] (a chunk's differing buckets, read in one round trip).
pub fn bucket_row_hashes(
    schema: &crate::schema::TableSchema,
    digest: RowDigest,
    key: &str,
    ranges: &[(i128, i128)],
    lo: Option<&[(String, Cell)]>,
    hi: Option<&[(String, Cell)]>,
) -> Statement {
    let (filter, params) = chunk_where(lo, hi, &[]);
    let k = quote_ident(key);
    // Integer literals, not parameters: a parameter arrives as text, and the server
    // compares every row read with each range as a DOUBLE (measured: 256 ranges read 8 times
    // slower). The bounds are numbers this program computed, never user text.
    let any: Vec<String> = ranges
        .iter()
        .map(|(first, last)| format!("{k} BETWEEN {first} AND {last}"))
        .collect();
    let buckets = format!("({})", any.join(" OR "));
    let filter = match filter.is_empty() {
        true => format!(" WHERE {buckets}"),
        false => format!("{filter} AND {buckets}"),
    };
    Statement::plain(format!(
        "SELECT {k}, {} FROM {}{filter}",
        row_hash(schema, digest),
        table_sql(&schema.table)
    ))
    .params(params)
}

/// Every row of the chunk as (key columns…, row hash): what a differing chunk is narrowed
/// down with.
pub fn chunk_row_hashes(
    schema: &crate::schema::TableSchema,
    digest: RowDigest,
    key: &[String],
    lo: Option<&[(String, Cell)]>,
    hi: Option<&[(String, Cell)]>,
    charsets: &Charsets,
) -> Statement {
    let (filter, params) = chunk_where(lo, hi, charsets);
    Statement::plain(format!(
        "SELECT {}, {} FROM {}{filter}",
        key_list(key),
        row_hash(schema, digest),
        table_sql(&schema.table)
    ))
    .params(params)
}

/// (key columns…, row hash) of the rows with these keys (NOT NULL key columns: `IN` works).
pub fn row_hashes_by_key(
    schema: &crate::schema::TableSchema,
    digest: RowDigest,
    key: &[String],
    keys: &[Vec<(String, Cell)>],
    charsets: &Charsets,
) -> Statement {
    let columns: Vec<String> = key.to_vec();
    let facts = crate::schema::TableFacts {
        converted_charsets: charsets.to_vec(),
        ..schema.facts()
    };
    let mut st = super::TableSql::of(&schema.table, &facts).select_in(&columns, keys);
    let cols = key_list(key);
    st.sql = st.sql.replacen(
        &format!("SELECT {cols} FROM"),
        &format!("SELECT {cols}, {} FROM", row_hash(schema, digest)),
        1,
    );
    st
}

/// A table without a usable key, as a multiset: each distinct row hash with its count.
pub fn multiset_hashes(schema: &crate::schema::TableSchema, digest: RowDigest) -> Statement {
    Statement::plain(format!(
        "SELECT {h} AS h, COUNT(*) FROM {} GROUP BY h",
        table_sql(&schema.table),
        h = row_hash(schema, digest)
    ))
}

/// The rows of a keyless table whose hash is one of `hashes` (one row per hash).
pub fn rows_by_hash(
    schema: &crate::schema::TableSchema,
    digest: RowDigest,
    columns: &[String],
    hashes: &[String],
) -> Statement {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    Statement::plain(format!(
        "SELECT {h}, {} FROM {} WHERE {h} IN ({})",
        cols.join(", "),
        table_sql(&schema.table),
        vec!["?"; hashes.len().max(1)].join(", "),
        h = row_hash(schema, digest)
    ))
    .params(hashes.iter().map(|h| Cell::Text(h.clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnDef, TableSchema};

    fn col(name: &str, data_type: &str, nullable: bool) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            data_type: data_type.into(),
            column_type: data_type.into(),
            unsigned: false,
            fsp: 0,
            binary: false,
            charset: None,
            generated: false,
            auto_increment: false,
            invisible: false,
            nullable,
        }
    }

    #[test]
    fn the_digest_marks_nullable_columns_only_and_reads_the_text_twice() {
        let schema = TableSchema {
            table: TableRef {
                schema: "d".into(),
                name: "t".into(),
            },
            columns: vec![
                col("id", "int", false),
                col("v", "varchar", true),
                col("f", "float", false),
            ],
            unique_keys: Vec::new(),
        };
        let text = "CONCAT_WS('#', `id`, CAST(`v` AS BINARY), (`f` + 0e0), ISNULL(`v`))";
        // A row too long for its text falls back on each column's CRCs (only then evaluated).
        let long_c = "CONCAT_WS('#', CRC32(`id`), CRC32C(`id`), CRC32(CAST(`v` AS BINARY)), \
                      CRC32C(CAST(`v` AS BINARY)), CRC32((`f` + 0e0)), CRC32C((`f` + 0e0)), ISNULL(`v`))";
        let long_r = "CONCAT_WS('#', CRC32(`id`), LENGTH(`id`), CRC32(CAST(`v` AS BINARY)), \
                      LENGTH(CAST(`v` AS BINARY)), CRC32((`f` + 0e0)), LENGTH((`f` + 0e0)), ISNULL(`v`))";
        assert_eq!(
            row_digest(&schema, RowDigest::Reversed),
            format!(
                "IFNULL((CRC32({text}) * 4294967291 + CRC32(REVERSE({text}))), \
                 (CRC32({long_r}) * 4294967291 + CRC32(REVERSE({long_r}))))"
            )
        );
        assert_eq!(
            row_digest(&schema, RowDigest::Castagnoli),
            format!(
                "IFNULL((CRC32({text}) * 4294967291 + CRC32C({text})), \
                 (CRC32({long_c}) * 4294967291 + CRC32C({long_c})))"
            )
        );
        assert_eq!(
            row_hash(&schema, RowDigest::Castagnoli),
            format!(
                "CAST({} AS CHAR)",
                row_digest(&schema, RowDigest::Castagnoli)
            )
        );
        // Built once: the first CRC sets the variable, the second reads it; the pass's
        // statements carry it, once per aggregate.
        let v = "@replmend_row_text";
        assert_eq!(
            digest_of(text, RowDigest::Castagnoli, TextEval::Once),
            format!("(CRC32({v} := {text}) * 4294967291 + CRC32C({v}))")
        );
        assert_eq!(
            digest_of(text, RowDigest::Reversed, TextEval::Once),
            format!("(CRC32({v} := {text}) * 4294967291 + CRC32(REVERSE({v})))")
        );
        let digest = (RowDigest::Castagnoli, TextEval::Once);
        let st = chunk_checksum(&schema, digest, None, None, &[], true);
        assert_eq!(st.sql.matches(&format!("{v} :=")).count(), 2, "{}", st.sql);
        // (2^32 - 1) * M + (2^32 - 1) stays below 2^64: no BIGINT UNSIGNED overflow.
        let max = u32::MAX as u128;
        assert!(max * DIGEST_MULTIPLIER as u128 + max < 1u128 << 64);
    }
}
