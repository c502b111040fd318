//! Row images of a rows event, decoded straight into value slots.
//!
//! mysql_common's own row iterator builds a `Column` (schema, table and a formatted name,
//! each copied) for every column of every row and re-reads the table map's optional metadata
//! per row: on a 2,000,000-row transaction that was most of diagnose's time. The per-column
//! facts are the same for every row of an event, so they are worked out once here and each
//! value is parsed by mysql_common's own `BinlogValue` decoder.

use std::io;

use mysql::binlog::events::{OptionalMetaExtractor, RowsEventData, TableMapEvent};
use mysql::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;
use mysql_common::misc::raw::int::{LenEnc, RawInt};

use super::fetch::ImageRow;

/// What decoding a column needs, the same for every row of the event.
struct ColumnPlan<'a> {
    ty: ColumnType,
    meta: &'a [u8],
    unsigned: bool,
}

/// binlog_row_value_options bit: the after image carries partial JSON updates.
const PARTIAL_JSON_UPDATES: u64 = 1;

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn plan<'a>(map: &'a TableMapEvent<'_>, n: usize) -> io::Result<Vec<ColumnPlan<'a>>> {
    let optional = OptionalMetaExtractor::new(map.iter_optional_meta())?;
    let mut signedness = optional.iter_signedness();
    (0..n)
        .map(|i| {
            let ty = map
                .get_column_type(i)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                .ok_or_else(|| invalid("no column type in the table map"))?;
            // Signedness is listed for numeric columns only, in column order.
            let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
            Ok(ColumnPlan {
                ty,
                meta: map.get_column_metadata(i).unwrap_or(&[]),
                unsigned,
            })
        })
        .collect()
}

fn take<'a>(buf: &mut ParseBuf<'a>, n: usize) -> io::Result<&'a [u8]> {
    buf.checked_eat(n)
        .ok_or_else(|| invalid("row image shorter than its bitmap"))
}

fn bit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// One image: the columns `present` lists, each in its slot of a row of `plan.len()`.
fn image<'a>(
    buf: &mut ParseBuf<'a>,
    plan: &[ColumnPlan<'a>],
    present: &[usize],
    shared_image: bool,
) -> io::Result<ImageRow> {
    // A partial update's after image starts with its value options (WL#2955).
    let partial_json: Option<&[u8]> = match shared_image {
        true => {
            let options: RawInt<LenEnc> = buf.parse(())?;
            match *options & PARTIAL_JSON_UPDATES {
                0 => None,
                _ => {
                    let json_columns = plan
                        .iter()
                        .filter(|c| c.ty == ColumnType::MYSQL_TYPE_JSON)
                        .count();
                    Some(take(buf, json_columns.div_ceil(8))?)
                }
            }
        }
        false => None,
    };
    let nulls = take(buf, present.len().div_ceil(8))?;
    let mut row: ImageRow = vec![None; plan.len()];
    for (slot, &col) in present.iter().enumerate() {
        let c = &plan[col];
        // The partial bitmap has a bit for every JSON column of the table, in order.
        let is_partial = c.ty == ColumnType::MYSQL_TYPE_JSON
            && partial_json.is_some_and(|bits| {
                let json_index = plan[..col]
                    .iter()
                    .filter(|p| p.ty == ColumnType::MYSQL_TYPE_JSON)
                    .count();
                bit(bits, json_index)
            });
        row[col] = Some(match bit(nulls, slot) {
            true => BinlogValue::Value(mysql::Value::NULL),
            false => buf
                .parse::<BinlogValue<'_>>((c.ty, c.meta, c.unsigned, is_partial))?
                .into_owned(),
        });
    }
    Ok(row)
}

/// Every row of the event as (before image, after image).
pub fn decode(
    rows: &RowsEventData<'_>,
    map: &TableMapEvent<'_>,
) -> io::Result<Vec<(Option<ImageRow>, Option<ImageRow>)>> {
    let n = rows.num_columns() as usize;
    let plan = plan(map, n)?;
    let before: Option<Vec<usize>> = rows
        .columns_before_image()
        .map(|b| b.iter_ones().filter(|&i| i < n).collect());
    let after: Option<Vec<usize>> = rows
        .columns_after_image()
        .map(|b| b.iter_ones().filter(|&i| i < n).collect());
    let shared = matches!(rows, RowsEventData::PartialUpdateRowsEvent(_));
    let mut buf = ParseBuf(rows.rows_data());
    let mut out = Vec::new();
    while !buf.is_empty() {
        let b = match &before {
            Some(cols) => Some(image(&mut buf, &plan, cols, false)?),
            None => None,
        };
        let a = match &after {
            Some(cols) => Some(image(&mut buf, &plan, cols, shared)?),
            None => None,
        };
        out.push((b, a));
    }
    Ok(out)
}
