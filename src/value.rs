//! One column value, in a form that compares the same whether it came from a binlog row image
//! or from a SELECT on either node, prints unambiguously, and binds back as a parameter.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// Values longer than this are abbreviated in reports (never in the journal).
pub const DISPLAY_LIMIT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub enum Cell {
    Null,
    /// Integers, DECIMAL and floating point, as their exact decimal text.
    Number(String),
    /// Character data (CHAR, VARCHAR, TEXT, ENUM/SET by name), valid UTF-8.
    Text(String),
    /// Binary data, or character data that is not valid UTF-8.
    Bytes(Vec<u8>),
    /// DATE/TIME/DATETIME/TIMESTAMP/YEAR as `YYYY-MM-DD HH:MM:SS[.ffffff]` (TIMESTAMP in UTC).
    Temporal(String),
    /// JSON, normalized (keys sorted, compact) so equal documents compare equal.
    Json(String),
}

impl Cell {
    pub fn from_text_bytes(bytes: Vec<u8>) -> Cell {
        match String::from_utf8(bytes) {
            Ok(s) => Cell::Text(s),
            Err(e) => Cell::Bytes(e.into_bytes()),
        }
    }

    pub fn json_from_text(text: &str) -> Cell {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => Cell::Json(v.to_string()),
            Err(_) => Cell::Text(text.to_string()),
        }
    }

    /// The value as a bound parameter.
    pub fn to_param(&self) -> mysql::Value {
        match self {
            Cell::Null => mysql::Value::NULL,
            Cell::Number(s) | Cell::Text(s) | Cell::Temporal(s) | Cell::Json(s) => {
                mysql::Value::Bytes(s.as_bytes().to_vec())
            }
            Cell::Bytes(b) => mysql::Value::Bytes(b.clone()),
        }
    }

    /// A short, unambiguous rendering for reports: strings quoted SQL-style, bytes as 0x hex,
    /// long values abbreviated with their length.
    pub fn display(&self) -> String {
        match self {
            Cell::Null => "NULL".to_string(),
            Cell::Number(s) => s.clone(),
            Cell::Text(s) | Cell::Temporal(s) | Cell::Json(s) => {
                let shown: String = s.chars().take(DISPLAY_LIMIT).collect();
                let mut out = format!("'{}'", shown.replace('\'', "''"));
                if shown.len() < s.len() {
                    out.push_str(&format!("… ({} bytes)", s.len()));
                }
                out
            }
            Cell::Bytes(b) => {
                let shown = &b[..b.len().min(DISPLAY_LIMIT / 2)];
                let mut out = format!("0x{}", hex(shown));
                if shown.len() < b.len() {
                    out.push_str(&format!("… ({} bytes)", b.len()));
                }
                out
            }
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Reports: null, a string, or `{"hex": …}` for bytes; long values abbreviated as
/// `{"length": n, "prefix": …}`. The journal has its own lossless encoding.
impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => ser.serialize_none(),
            Cell::Number(s) | Cell::Text(s) | Cell::Temporal(s) | Cell::Json(s) => {
                if s.len() > DISPLAY_LIMIT * 16 {
                    let mut m = ser.serialize_map(Some(3))?;
                    m.serialize_entry("length", &s.len())?;
                    m.serialize_entry(
                        "prefix",
                        &s.chars().take(DISPLAY_LIMIT).collect::<String>(),
                    )?;
                    m.serialize_entry("truncated", &true)?;
                    m.end()
                } else {
                    ser.serialize_str(s)
                }
            }
            Cell::Bytes(b) => {
                if b.len() > DISPLAY_LIMIT * 8 {
                    let mut m = ser.serialize_map(Some(3))?;
                    m.serialize_entry("length", &b.len())?;
                    m.serialize_entry("hex_prefix", &hex(&b[..DISPLAY_LIMIT]))?;
                    m.serialize_entry("truncated", &true)?;
                    m.end()
                } else {
                    let mut m = ser.serialize_map(Some(1))?;
                    m.serialize_entry("hex", &hex(b))?;
                    m.end()
                }
            }
        }
    }
}

/// Lossless encoding for the journal: every value round-trips exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "lowercase")]
pub enum StoredCell {
    Null,
    Number(String),
    Text(String),
    Hex(String),
    Temporal(String),
    Json(String),
}

impl From<&Cell> for StoredCell {
    fn from(c: &Cell) -> StoredCell {
        match c {
            Cell::Null => StoredCell::Null,
            Cell::Number(s) => StoredCell::Number(s.clone()),
            Cell::Text(s) => StoredCell::Text(s.clone()),
            Cell::Bytes(b) => StoredCell::Hex(hex(b)),
            Cell::Temporal(s) => StoredCell::Temporal(s.clone()),
            Cell::Json(s) => StoredCell::Json(s.clone()),
        }
    }
}

impl TryFrom<&StoredCell> for Cell {
    type Error = String;
    fn try_from(s: &StoredCell) -> Result<Cell, String> {
        Ok(match s {
            StoredCell::Null => Cell::Null,
            StoredCell::Number(v) => Cell::Number(v.clone()),
            StoredCell::Text(v) => Cell::Text(v.clone()),
            StoredCell::Hex(h) => Cell::Bytes(unhex(h).ok_or_else(|| format!("bad hex {h:?}"))?),
            StoredCell::Temporal(v) => Cell::Temporal(v.clone()),
            StoredCell::Json(v) => Cell::Json(v.clone()),
        })
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC for seconds since the epoch (TIMESTAMP in the binlog).
pub fn utc_datetime(secs: i64, micros: u32, decimals: u8) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    with_fraction(base, micros, decimals)
}

pub fn with_fraction(base: String, micros: u32, decimals: u8) -> String {
    if decimals == 0 {
        return base;
    }
    let frac = format!("{micros:06}");
    format!("{base}.{}", &frac[..(decimals.min(6) as usize)])
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The encoding of a MySQL/MariaDB character set, for text that arrives in it (row images);
/// None for the UTF-8 sets, binary, and sets replmend does not convert (their bytes are kept).
pub fn encoding_of(charset: Option<&str>) -> Option<&'static encoding_rs::Encoding> {
    let label = match charset? {
        "utf8" | "utf8mb3" | "utf8mb4" | "binary" => return None,
        // MySQL's latin1 is cp1252; ascii is a subset of it.
        "latin1" | "ascii" => "windows-1252",
        "gb2312" | "gbk" => "gbk",
        "gb18030" => "gb18030",
        "big5" => "big5",
        "sjis" | "cp932" => "shift_jis",
        "ujis" | "eucjpms" => "euc-jp",
        "euckr" => "euc-kr",
        "cp1250" => "windows-1250",
        "cp1251" => "windows-1251",
        "cp1256" => "windows-1256",
        "cp1257" => "windows-1257",
        "koi8r" => "koi8-r",
        "koi8u" => "koi8-u",
        "greek" => "iso-8859-7",
        "hebrew" => "iso-8859-8",
        "latin2" => "iso-8859-2",
        "latin5" => "windows-1254",
        "latin7" => "iso-8859-13",
        "tis620" => "windows-874",
        _ => return None,
    };
    encoding_rs::Encoding::for_label(label.as_bytes())
}

/// Character data in a column's character set (as a row image carries it), decoded to the text
/// the server decodes it to, so that it equals what a SELECT returns; bytes that are not valid
/// in the set stay bytes. The UTF-8 sets, binary and unconverted sets: UTF-8 text or bytes.
pub fn text_in_charset(bytes: &[u8], charset: Option<&str>) -> Cell {
    let Some(enc) = encoding_of(charset) else {
        return Cell::from_text_bytes(bytes.to_vec());
    };
    let text = match charset {
        Some(cs @ ("sjis" | "ujis" | "eucjpms")) => decode_jis(bytes, cs, enc),
        _ => enc
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|t| t.into_owned()),
    };
    match text {
        Some(t) => Cell::Text(t),
        None => Cell::Bytes(bytes.to_vec()),
    }
}

/// encoding_rs decodes Shift_JIS and EUC-JP as the WHATWG standard does, with Microsoft's
/// (cp932) mappings. The servers' sjis and ujis keep the JIS mappings of seven symbols (sjis
/// 0x8160 is U+301C WAVE DASH `〜`, not U+FF5E `～`), ujis and eucjpms differ in one JIS X 0212
/// symbol each, and both map the user-defined rows to the Private Use Area: those characters
/// are decoded here, every other run of characters by encoding_rs.
fn decode_jis(b: &[u8], charset: &str, enc: &'static encoding_rs::Encoding) -> Option<String> {
    let sjis = charset == "sjis";
    let decode = |out: &mut String, run: &[u8]| {
        out.push_str(&enc.decode_without_bom_handling_and_without_replacement(run)?);
        Some(())
    };
    let mut out = String::with_capacity(b.len() * 3 / 2);
    let (mut run, mut i) = (0, 0);
    while i < b.len() {
        let width = match b[i] {
            0x81..=0x9F | 0xE0..=0xFC if sjis => 2,
            0x8E | 0xA1..=0xFE if !sjis => 2,
            0x8F if !sjis => 3,
            _ => 1,
        }
        .min(b.len() - i);
        if let Some(c) = jis_exception(charset, &b[i..i + width]) {
            decode(&mut out, &b[run..i])?;
            out.push(c);
            run = i + width;
        }
        i += width;
    }
    decode(&mut out, &b[run..])?;
    Some(out)
}

/// The characters the servers' sjis, ujis and eucjpms decode differently from encoding_rs
/// (found by decoding every one-, two- and three-byte sequence on MariaDB 10.11 and MySQL 9.7).
fn jis_exception(charset: &str, seq: &[u8]) -> Option<char> {
    // Rows 85-94 of JIS X 0208 (two bytes), then of JIS X 0212 (0x8F and two bytes).
    let user_defined = |base: u32, row: u8, cell: u8| {
        char::from_u32(base + (row - 0xF5) as u32 * 94 + (cell - 0xA1) as u32)
    };
    Some(match (charset, seq) {
        ("sjis", [0x81, 0x5F]) | ("ujis", [0xA1, 0xC0]) => '\\',
        ("sjis", [0x81, 0x60]) | ("ujis", [0xA1, 0xC1]) => '\u{301C}',
        ("sjis", [0x81, 0x61]) | ("ujis", [0xA1, 0xC2]) => '\u{2016}',
        ("sjis", [0x81, 0x7C]) | ("ujis", [0xA1, 0xDD]) => '\u{2212}',
        ("sjis", [0x81, 0x91]) | ("ujis", [0xA1, 0xF1]) => '\u{A2}',
        ("sjis", [0x81, 0x92]) | ("ujis", [0xA1, 0xF2]) => '\u{A3}',
        ("sjis", [0x81, 0xCA]) | ("ujis", [0xA2, 0xCC]) => '\u{AC}',
        ("ujis", [0x8F, 0xA2, 0xB7]) => '~',
        ("eucjpms", [0x8F, 0xA2, 0xC3]) => '\u{FFE4}',
        ("ujis" | "eucjpms", &[row @ 0xF5..=0xFE, cell @ 0xA1..=0xFE]) => {
            user_defined(0xE000, row, cell)?
        }
        ("ujis" | "eucjpms", &[0x8F, row @ 0xF5..=0xFE, cell @ 0xA1..=0xFE]) => {
            user_defined(0xE3AC, row, cell)?
        }
        _ => return None,
    })
}

/// Character sets whose columns compare with a utf8mb4 parameter only after the parameter is
/// converted (`col <=> ?` on a gbk column fails with error 1267, "Illegal mix of collations").
pub fn needs_convert(charset: &str) -> bool {
    !matches!(charset, "utf8" | "utf8mb3" | "utf8mb4" | "binary")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_from_epoch() {
        assert_eq!(utc_datetime(0, 0, 0), "1970-01-01 00:00:00");
        assert_eq!(
            utc_datetime(1_572_290_991, 885_616, 6),
            "2019-10-28 19:29:51.885616"
        );
        assert_eq!(utc_datetime(951_782_400, 0, 0), "2000-02-29 00:00:00");
        assert_eq!(
            utc_datetime(1_572_290_991, 885_616, 3),
            "2019-10-28 19:29:51.885"
        );
    }

    #[test]
    fn display_is_unambiguous() {
        assert_eq!(Cell::Text("it's".into()).display(), "'it''s'");
        assert_eq!(Cell::Bytes(vec![0, 255]).display(), "0x00ff");
        assert_eq!(Cell::Null.display(), "NULL");
        let long = Cell::Text("x".repeat(1000));
        assert!(long.display().ends_with("(1000 bytes)"));
    }

    #[test]
    fn utf8_or_bytes() {
        assert_eq!(
            Cell::from_text_bytes("😀".as_bytes().to_vec()),
            Cell::Text("😀".into())
        );
        assert_eq!(Cell::from_text_bytes(vec![0xff]), Cell::Bytes(vec![0xff]));
    }

    #[test]
    fn journal_encoding_round_trips() {
        for c in [
            Cell::Null,
            Cell::Bytes((0..=255).collect()),
            Cell::Text("a'\"\\😀".into()),
            Cell::Json("{\"a\":1}".into()),
        ] {
            let stored = StoredCell::from(&c);
            let json = serde_json::to_string(&stored).unwrap();
            let back: StoredCell = serde_json::from_str(&json).unwrap();
            assert_eq!(Cell::try_from(&back).unwrap(), c);
        }
    }

    #[test]
    fn charset_names_map_to_encodings() {
        let name = |cs: &str| encoding_of(Some(cs)).map(|e| e.name());
        assert_eq!(name("sjis"), Some("Shift_JIS"));
        assert_eq!(name("cp932"), Some("Shift_JIS"));
        assert_eq!(name("ujis"), Some("EUC-JP"));
        assert_eq!(name("eucjpms"), Some("EUC-JP"));
        assert_eq!(name("gbk"), Some("GBK"));
        assert_eq!(name("big5"), Some("Big5"));
        assert_eq!(name("latin1"), Some("windows-1252"));
        // UTF-8 and binary: kept as they are (UTF-8 text, else bytes).
        for cs in ["utf8", "utf8mb3", "utf8mb4", "binary"] {
            assert_eq!(name(cs), None, "{cs}");
        }
        assert_eq!(encoding_of(None), None);
    }

    /// Expected texts are what MariaDB 10.11 and MySQL 9.7 return for
    /// `CONVERT(CAST(0x… AS CHAR CHARACTER SET cs) USING utf8mb4)`.
    #[test]
    fn japanese_text_decodes_as_the_server_decodes_it() {
        let text = |hex: &str, cs: &str| text_in_charset(&unhex(hex).unwrap(), Some(cs));
        let t = |s: &str| Cell::Text(s.into());
        // 注文-001; ソ and 表 end in 0x5C (backslash): one character each, not two.
        assert_eq!(text("928D95B62D303031", "sjis"), t("注文-001"));
        assert_eq!(text("835C955C5C", "sjis"), t("ソ表\\"));
        // Half-width katakana (one byte in sjis; 0x8E and one byte in ujis).
        assert_eq!(text("B6C0", "sjis"), t("ｶﾀ"));
        assert_eq!(text("8EB68EC0", "ujis"), t("ｶﾀ"));
        // The JIS symbols the servers decode unlike encoding_rs (cp932 keeps Microsoft's).
        assert_eq!(text("3130816032308161", "sjis"), t("10\u{301C}20\u{2016}"));
        assert_eq!(
            text("815F817C8191819281CA", "sjis"),
            t("\\\u{2212}\u{A2}\u{A3}\u{AC}")
        );
        assert_eq!(text("8160", "cp932"), t("\u{FF5E}"));
        assert_eq!(
            text("A1C0A1C1A1C2A1DDA1F1A1F2A2CC8FA2B7", "ujis"),
            t("\\\u{301C}\u{2016}\u{2212}\u{A2}\u{A3}\u{AC}~")
        );
        assert_eq!(
            text("A1C18FA2B78FA2C3", "eucjpms"),
            t("\u{FF5E}\u{FF5E}\u{FFE4}")
        );
        // JIS X 0212 (three bytes) and the user-defined rows (Private Use Area).
        assert_eq!(text("8FB0A1", "ujis"), t("丂"));
        assert_eq!(text("F5A1F9A1FEFE", "ujis"), t("\u{E000}\u{E178}\u{E3AB}"));
        assert_eq!(text("8FF5A18FFEFE", "eucjpms"), t("\u{E3AC}\u{E757}"));
        // Not valid in the set: bytes, also around an exception.
        assert_eq!(
            text("81608120", "sjis"),
            Cell::Bytes(vec![0x81, 0x60, 0x81, 0x20])
        );
        assert_eq!(text("A1C1A1", "ujis"), Cell::Bytes(vec![0xA1, 0xC1, 0xA1]));
        // UTF-8 sets and binary: UTF-8 text, else bytes.
        assert_eq!(text("F0A0AEB7", "utf8mb4"), t("𠮷"));
        assert_eq!(text("E38080", "utf8mb3"), t("\u{3000}"));
        assert_eq!(
            text("00FF80", "binary"),
            Cell::Bytes(vec![0x00, 0xFF, 0x80])
        );
    }

    #[test]
    fn json_normalizes() {
        assert_eq!(
            Cell::json_from_text("{\"b\": 1, \"a\": [1, 2]}"),
            Cell::Json("{\"a\":[1,2],\"b\":1}".into())
        );
    }
}

/// A row's key: its key columns with their values, in key order.
pub type Key = Vec<(String, Cell)>;

/// A named row: column names with values, in table order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub columns: Vec<String>,
    pub values: Vec<Cell>,
}

impl Row {
    /// A row from (column, value) pairs, in that order.
    pub fn of(pairs: &[(&str, Cell)]) -> Row {
        Row {
            columns: pairs.iter().map(|(c, _)| c.to_string()).collect(),
            values: pairs.iter().map(|(_, v)| v.clone()).collect(),
        }
    }

    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| &self.values[i])
    }

    /// Equal in every column but `except`: the same record under another key (rekey's).
    pub fn same_but(&self, other: &Row, except: &str) -> bool {
        self.columns == other.columns
            && self
                .columns
                .iter()
                .zip(self.values.iter().zip(&other.values))
                .all(|(c, (a, b))| c == except || a == b)
    }
}
