//! Column values, from a binlog row image or from a SELECT, into `Cell`s that compare equal when
//! they are the same value. Pure: needs only the column's definition.

use mysql::Value;
use mysql::binlog::value::BinlogValue;

use crate::schema::ColumnDef;
use crate::value::{Cell, utc_datetime, with_fraction};

/// A value as a prepared-statement SELECT returns it.
pub fn cell_from_value(v: Value, col: &ColumnDef) -> Cell {
    match v {
        Value::NULL => Cell::Null,
        Value::Int(i) => Cell::Number(i.to_string()),
        Value::UInt(u) => Cell::Number(u.to_string()),
        Value::Float(f) => Cell::Number(float_text(f as f64, f.to_string())),
        Value::Double(d) => Cell::Number(float_text(d, d.to_string())),
        Value::Date(y, m, d, h, mi, s, us) => {
            Cell::Temporal(format_date(col, y, m, d, h, mi, s, us))
        }
        Value::Time(neg, days, h, m, s, us) => {
            Cell::Temporal(format_time(col, neg, days, h, m, s, us))
        }
        Value::Bytes(b) => cell_from_bytes(b, col),
    }
}

/// Floats as the server prints them: scientific notation for very large or small magnitudes
/// instead of hundreds of digits.
fn float_text(v: f64, plain: String) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-5..1e15).contains(&a) {
        format!("{v:e}")
    } else {
        plain
    }
}

fn cell_from_bytes(b: Vec<u8>, col: &ColumnDef) -> Cell {
    match col.data_type.as_str() {
        "decimal" | "year" => Cell::Number(String::from_utf8_lossy(&b).into_owned()),
        "json" => match String::from_utf8(b) {
            Ok(s) => Cell::json_from_text(&s),
            Err(e) => Cell::Bytes(e.into_bytes()),
        },
        "bit" | "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
        | "geometry" | "point" | "linestring" | "polygon" | "vector" => Cell::Bytes(b),
        _ if col.binary => Cell::Bytes(b),
        // A SELECT returns character data in the connection's character set (utf8mb4).
        _ => Cell::from_text_bytes(b),
    }
}

/// Character data in the binlog is in the column's own character set: decoded from it, so
/// GBK, Big5 or SJIS text reads (and compares) as the same text a SELECT returns.
fn text_in_charset(b: &[u8], charset: Option<&str>) -> Cell {
    crate::value::text_in_charset(b, charset)
}

/// The width of a BINARY(n) column.
fn binary_width(col: &ColumnDef) -> Option<usize> {
    let inner = col.column_type.strip_prefix("binary(")?.strip_suffix(')')?;
    inner.parse().ok()
}

/// Character columns: text in a character set (not ENUM/SET, JSON, DECIMAL or binary).
fn is_character(col: &ColumnDef) -> bool {
    !col.binary
        && col.charset.is_some()
        && matches!(
            col.data_type.as_str(),
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
        )
}

#[allow(clippy::too_many_arguments)]
fn format_date(col: &ColumnDef, y: u16, m: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> String {
    if col.data_type == "date" {
        return format!("{y:04}-{m:02}-{d:02}");
    }
    with_fraction(
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
        us,
        col.fsp,
    )
}

fn format_time(col: &ColumnDef, neg: bool, days: u32, h: u8, m: u8, s: u8, us: u32) -> String {
    let hours = days * 24 + h as u32;
    let sign = if neg { "-" } else { "" };
    with_fraction(format!("{sign}{hours:02}:{m:02}:{s:02}"), us, col.fsp)
}

/// A value from a row image. The binlog stores ENUM as an index, SET as a bitmask, TIMESTAMP as
/// epoch seconds, and unsigned integers as signed unless the source logs signedness metadata.
pub fn cell_from_binlog(v: &BinlogValue<'_>, col: &ColumnDef) -> Cell {
    match v {
        BinlogValue::Jsonb(j) => match serde_json::Value::try_from(j.clone()) {
            Ok(json) => Cell::Json(json.to_string()),
            Err(e) => Cell::Text(format!("(undecodable JSON: {e})")),
        },
        BinlogValue::JsonDiff(_) => {
            Cell::Text("(partial JSON update: only the changed paths were logged)".into())
        }
        // The binlog stores SET (and, depending on its width, ENUM) as a little-endian integer.
        BinlogValue::Value(Value::Bytes(b))
            if matches!(col.data_type.as_str(), "set" | "enum") && b.len() <= 8 =>
        {
            let n = b.iter().rev().fold(0i64, |acc, &x| (acc << 8) | x as i64);
            cell_from_binlog(&BinlogValue::Value(Value::Int(n)), col)
        }
        // Signed MEDIUMINT: the 24-bit value is not always sign-extended.
        BinlogValue::Value(Value::Int(i))
            if col.data_type == "mediumint" && !col.unsigned && *i >= 1 << 23 =>
        {
            Cell::Number((*i - (1 << 24)).to_string())
        }
        BinlogValue::Value(value) => match (value, col.data_type.as_str()) {
            (Value::Int(i), "enum") => {
                let names = col.enum_or_set_values();
                match usize::try_from(*i).ok().and_then(|i| i.checked_sub(1)) {
                    Some(idx) if idx < names.len() => Cell::Text(names[idx].clone()),
                    _ => Cell::Text(String::new()),
                }
            }
            (Value::Int(mask), "set") => {
                let names = col.enum_or_set_values();
                let chosen: Vec<&str> = names
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| *bit < 64 && (*mask as u64) & (1u64 << bit) != 0)
                    .map(|(_, n)| n.as_str())
                    .collect();
                Cell::Text(chosen.join(","))
            }
            (Value::Int(i), "timestamp") => Cell::Temporal(utc_datetime(*i, 0, 0)),
            (Value::Bytes(b), "timestamp") => {
                let text = String::from_utf8_lossy(b);
                let (secs, frac) = text.split_once('.').unwrap_or((&text, "0"));
                let secs: i64 = secs.parse().unwrap_or(0);
                let micros: u32 = format!("{frac:0<6}")[..6].parse().unwrap_or(0);
                Cell::Temporal(utc_datetime(secs, micros, col.fsp))
            }
            (Value::Bytes(b), _) if is_character(col) => text_in_charset(b, col.charset.as_deref()),
            // The row image drops a BINARY(n) value's trailing 0x00 bytes; the column holds
            // them (0x00FF8000 arrives as 0x00FF80).
            (Value::Bytes(b), "binary") => {
                let mut bytes = b.clone();
                if let Some(n) = binary_width(col).filter(|n| *n > bytes.len()) {
                    bytes.resize(n, 0);
                }
                Cell::Bytes(bytes)
            }
            (Value::Int(i), _) if col.unsigned && *i < 0 => {
                let bits = match col.data_type.as_str() {
                    "tinyint" => 8,
                    "smallint" => 16,
                    "mediumint" => 24,
                    "int" | "integer" => 32,
                    _ => 64,
                };
                let u = (*i as i128).rem_euclid(1i128 << bits);
                Cell::Number(u.to_string())
            }
            (other, _) => cell_from_value(other.clone(), col),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, column_type: &str) -> ColumnDef {
        ColumnDef {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            unsigned: column_type.contains("unsigned"),
            fsp: 0,
            binary: false,
            charset: Some("utf8mb4".into()),
            generated: false,
            auto_increment: false,
            invisible: false,
            nullable: true,
        }
    }

    fn bv(v: Value) -> BinlogValue<'static> {
        BinlogValue::Value(v)
    }

    #[test]
    fn binary_values_get_back_their_trailing_zero_bytes() {
        let mut c = col("binary", "binary(4)");
        c.binary = true;
        c.charset = None;
        assert_eq!(
            cell_from_binlog(&bv(Value::Bytes(vec![0, 0xff, 0x80])), &c),
            Cell::Bytes(vec![0, 0xff, 0x80, 0])
        );
        let v = col("varbinary", "varbinary(4)");
        assert_eq!(
            cell_from_binlog(&bv(Value::Bytes(vec![0, 0xff])), &v),
            Cell::Bytes(vec![0, 0xff])
        );
    }

    #[test]
    fn enum_set_and_unsigned() {
        let e = col("enum", "enum('new','paid','it''s')");
        assert_eq!(
            cell_from_binlog(&bv(Value::Int(3)), &e),
            Cell::Text("it's".into())
        );
        let s = col("set", "set('a','b','c')");
        assert_eq!(
            cell_from_binlog(&bv(Value::Int(5)), &s),
            Cell::Text("a,c".into())
        );
        let u = col("int", "int(10) unsigned");
        assert_eq!(
            cell_from_binlog(&bv(Value::Int(-1)), &u),
            Cell::Number("4294967295".into())
        );
        let b = col("bigint", "bigint(20) unsigned");
        assert_eq!(
            cell_from_binlog(&bv(Value::Int(-1)), &b),
            Cell::Number("18446744073709551615".into())
        );
        let t = col("tinyint", "tinyint(4)");
        assert_eq!(
            cell_from_binlog(&bv(Value::Int(-5)), &t),
            Cell::Number("-5".into())
        );
    }

    #[test]
    fn set_as_bytes_and_negative_mediumint() {
        let s = col("set", "set('red','green','blue')");
        assert_eq!(
            cell_from_binlog(&bv(Value::Bytes(vec![5])), &s),
            Cell::Text("red,blue".into())
        );
        let m = col("mediumint", "mediumint(9)");
        assert_eq!(
            cell_from_binlog(&bv(Value::Int(8388608)), &m),
            Cell::Number("-8388608".into())
        );
        assert_eq!(
            cell_from_binlog(&bv(Value::Int(-5)), &m),
            Cell::Number("-5".into())
        );
    }

    #[test]
    fn temporal_forms_match_select() {
        let mut ts = col("timestamp", "timestamp(6)");
        ts.fsp = 6;
        assert_eq!(
            cell_from_binlog(&bv(Value::Bytes(b"1572290991.5".to_vec())), &ts),
            Cell::Temporal("2019-10-28 19:29:51.500000".into())
        );
        let mut dt = col("datetime", "datetime(3)");
        dt.fsp = 3;
        let from_binlog = cell_from_binlog(&bv(Value::Date(2019, 10, 29, 3, 29, 51, 885_000)), &dt);
        let from_select = cell_from_value(Value::Date(2019, 10, 29, 3, 29, 51, 885_000), &dt);
        assert_eq!(from_binlog, from_select);
        assert_eq!(
            from_select,
            Cell::Temporal("2019-10-29 03:29:51.885".into())
        );
        let d = col("date", "date");
        assert_eq!(
            cell_from_value(Value::Date(2019, 1, 2, 0, 0, 0, 0), &d),
            Cell::Temporal("2019-01-02".into())
        );
        let t = col("time", "time");
        assert_eq!(
            cell_from_value(Value::Time(true, 1, 2, 3, 4, 0), &t),
            Cell::Temporal("-26:03:04".into())
        );
    }

    #[test]
    fn bytes_by_type() {
        let mut bin = col("varbinary", "varbinary(16)");
        bin.binary = true;
        bin.charset = None;
        assert_eq!(
            cell_from_value(Value::Bytes(b"ab".to_vec()), &bin),
            Cell::Bytes(b"ab".to_vec())
        );
        let dec = col("decimal", "decimal(10,2)");
        assert_eq!(
            cell_from_value(Value::Bytes(b"1.50".to_vec()), &dec),
            Cell::Number("1.50".into())
        );
        let j = col("json", "json");
        assert_eq!(
            cell_from_value(Value::Bytes(br#"{"b": 1, "a": 2}"#.to_vec()), &j),
            Cell::Json(r#"{"a":2,"b":1}"#.into())
        );
        let mut latin = col("varchar", "varchar(10)");
        latin.charset = Some("latin1".into());
        assert_eq!(
            cell_from_binlog(&bv(Value::Bytes(vec![0x63, 0x61, 0x66, 0xe9])), &latin),
            Cell::Text("café".into())
        );
        // GBK and Big5 from the binlog read as the text a SELECT returns.
        let mut gbk = col("varchar", "varchar(20)");
        gbk.charset = Some("gbk".into());
        assert_eq!(
            cell_from_binlog(&bv(Value::Bytes(vec![0xd5, 0xc5, 0xc8, 0xfd])), &gbk),
            Cell::Text("张三".into())
        );
        let mut big5 = col("varchar", "varchar(20)");
        big5.charset = Some("big5".into());
        assert_eq!(
            cell_from_binlog(&bv(Value::Bytes(vec![0xb1, 0x69, 0xa4, 0x54])), &big5),
            Cell::Text("張三".into())
        );
        // A SELECT's text is utf8mb4 whatever the column's set.
        assert_eq!(
            cell_from_value(Value::Bytes("张三".as_bytes().to_vec()), &gbk),
            Cell::Text("张三".into())
        );
    }
}
