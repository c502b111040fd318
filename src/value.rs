//! One column value, in a form that compares the same whether it came from a binlog row image
//! or from a SELECT on either node, prints unambiguously, and binds back as a parameter.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// Values longer than this are abbreviated in reports (never in the journal).
pub const DISPLAY_LIMIT: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
    fn json_normalizes() {
        assert_eq!(
            Cell::json_from_text("{\"b\": 1, \"a\": [1, 2]}"),
            Cell::Json("{\"a\":[1,2],\"b\":1}".into())
        );
    }
}
