//! Reads one transaction from a source's binary log over the replication protocol, starting at
//! the transaction's own position: the cost is the size of that transaction (plus, on a
//! multi-threaded replica, the few transactions after its low-water mark), never the binlog's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mysql::binlog::events::{BinlogEventHeader, Event, EventData, RowsEventData, TableMapEvent};
use mysql::{BinlogDumpFlags, BinlogRequest};
use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::BinlogVersion;
use thiserror::Error;

use crate::conn::{ConnSpec, ConnectError, Server};
use crate::flavor::Flavor;
use crate::sql::Statement;
use crate::vocab::Gtid;
use crate::vocab::{RowsEventKind, TableRef};

#[derive(Debug, Error)]
pub enum FetchError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("reading {file} from position {pos} on {endpoint}: {}", crate::describe::describe_mysql(.source))]
    Stream {
        endpoint: Box<crate::conn::Account>,
        file: String,
        pos: u64,
        source: mysql::Error,
    },
    #[error("decoding the binlog event ending at {file}:{end_log_pos}: {source}")]
    Decode {
        file: String,
        end_log_pos: u64,
        source: std::io::Error,
    },
    #[error(
        "the source's binlog {file} from position {pos} holds no transaction ending at {target} (read {bytes} bytes); it may have been purged or rotated"
    )]
    NotFound {
        file: String,
        pos: u64,
        target: String,
        bytes: u64,
    },
    #[error("binlog positions above 4 GiB cannot be requested by file and position ({pos})")]
    PositionTooLarge { pos: u64 },
}

/// What to look for.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub file: String,
    pub start_pos: u64,
    /// end_log_pos of the failing event: the transaction that contains it is returned.
    pub failed_end_log_pos: Option<u64>,
    /// The failing transaction's GTID, when the replica names it.
    pub gtid: Option<Gtid>,
}

#[derive(Debug, Clone)]
pub struct RawRowsEvent {
    pub kind: RowsEventKind,
    pub table: TableRef,
    pub end_log_pos: u64,
    /// (before image, after image), each with one slot per table column; None where the
    /// image does not carry the column (binlog_row_image=MINIMAL/NOBLOB).
    pub rows: Vec<(Option<ImageRow>, Option<ImageRow>)>,
}

pub type ImageRow = Vec<Option<mysql::binlog::value::BinlogValue<'static>>>;

/// A rows event without its rows: what a transaction's summary keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct EventHead {
    pub kind: RowsEventKind,
    pub table: TableRef,
    pub end_log_pos: u64,
    pub rows: usize,
}

impl RawRowsEvent {
    pub fn head(&self) -> EventHead {
        EventHead {
            kind: self.kind,
            table: self.table.clone(),
            end_log_pos: self.end_log_pos,
            rows: self.rows.len(),
        }
    }
}

/// A transaction as read: where it is and what it holds, without the rows themselves (those
/// are handed over event by event while the binlog is read, so memory stays flat however big
/// the transaction).
#[derive(Debug, Clone, Default)]
pub struct RawTransaction {
    pub start_pos: u64,
    pub end_pos: u64,
    pub gtid: Option<Gtid>,
    pub statement: Option<String>,
    /// MariaDB's Annotate_rows text (sent only to dumps that ask for it: `scan_file`).
    pub annotate: Option<String>,
    pub events: Vec<EventHead>,
    pub bytes_read: u64,
    /// The originating server's id and the event time (seconds since the epoch, UTC) of the
    /// event that started the transaction.
    pub server_id: u32,
    pub timestamp: u32,
}

/// What a binlog scan hands over, in binlog order.
#[derive(Debug)]
pub enum Item {
    /// A transaction starts: rows handed over before it belong to another transaction.
    Begin,
    /// One rows event of the transaction in progress.
    Rows(RawRowsEvent),
    /// The transaction in progress is a wanted one, and complete.
    Done(RawTransaction),
}

const GTID_EVENT: u8 = 33;
const ANONYMOUS_GTID_EVENT: u8 = 34;
const MARIADB_GTID_EVENT: u8 = 162;
const MARIADB_GTID_STANDALONE: u8 = 1;
const MARIADB_ANNOTATE_ROWS_EVENT: u8 = 160;

/// A server id for our dump connection that no replica of this source uses: a dump with the
/// same id as a live replica would make the source kill that replica's dump thread.
fn pick_dump_server_id(server: &mut Server, flavor: Flavor) -> u32 {
    let mut taken: Vec<u32> = server
        .all::<mysql::Row>(&Statement::plain(flavor.show_replicas()))
        .map(|rows| {
            rows.into_iter()
                .map(|row| row.get::<u32, _>(0).unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    if let Ok(Some(id)) = server.first::<u32>(&crate::sql::admin::server_id()) {
        taken.push(id);
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16);
    let mut id = 0x7a00_0000u32 | (seed & 0x00ff_ffff);
    while taken.contains(&id) {
        id = id.wrapping_add(1) | 0x7a00_0000;
    }
    id
}

struct Scan<'r> {
    req: &'r FetchRequest,
    cur: Option<RawTransaction>,
    bytes_read: u64,
    /// Takes each item; false: stop reading.
    sink: &'r mut dyn FnMut(Item) -> bool,
}

enum Step {
    Continue,
    Found(RawTransaction),
    Passed,
    /// The sink wants no more.
    Stop,
}

impl Scan<'_> {
    fn begin(&mut self, start_pos: u64, gtid: Option<Gtid>, h: &BinlogEventHeader) -> bool {
        self.cur = Some(RawTransaction {
            start_pos,
            gtid,
            server_id: h.server_id(),
            timestamp: h.timestamp(),
            ..Default::default()
        });
        (self.sink)(Item::Begin)
    }

    fn is_target(&self, trx: &RawTransaction) -> bool {
        if let (Some(want), Some(have)) = (&self.req.gtid, &trx.gtid) {
            return want == have;
        }
        match self.req.failed_end_log_pos {
            Some(target) => trx.start_pos < target && target <= trx.end_pos,
            None => !trx.events.is_empty(),
        }
    }

    fn finish(&mut self, end_pos: u64) -> Step {
        let Some(mut trx) = self.cur.take() else {
            return Step::Continue;
        };
        trx.end_pos = end_pos;
        if self.is_target(&trx) {
            trx.bytes_read = self.bytes_read;
            return Step::Found(trx);
        }
        match self.req.failed_end_log_pos {
            Some(target) if end_pos >= target && self.req.gtid.is_none() => Step::Passed,
            _ => Step::Continue,
        }
    }

    fn handle(
        &mut self,
        ev: &Event,
        tme: &dyn Fn(u64) -> Option<TableMapEvent<'static>>,
        outer_end: Option<u64>,
    ) -> Result<Step, FetchError> {
        let h = ev.header();
        let typ = h.event_type_raw();
        // Events inside a compressed payload carry no positions of their own.
        let end = outer_end.unwrap_or(h.log_pos() as u64);
        let start = end.saturating_sub(h.event_size() as u64);
        let decode_err = |source| FetchError::Decode {
            file: self.req.file.clone(),
            end_log_pos: end,
            source,
        };
        match typ {
            GTID_EVENT | ANONYMOUS_GTID_EVENT => {
                let gtid = match ev.read_data().map_err(decode_err)? {
                    Some(EventData::GtidEvent(g)) => Some(Gtid::Mysql {
                        uuid: format_uuid(&g.sid()),
                        tag: None,
                        gno: g.gno(),
                    }),
                    _ => None,
                };
                if !self.begin(start, gtid, &h) {
                    return Ok(Step::Stop);
                }
            }
            MARIADB_GTID_EVENT => {
                let d = ev.data();
                if d.len() >= 13 {
                    let seq = u64::from_le_bytes(d[0..8].try_into().unwrap());
                    let domain = u32::from_le_bytes(d[8..12].try_into().unwrap());
                    let gtid = Gtid::Mariadb {
                        domain,
                        server_id: h.server_id(),
                        seq,
                    };
                    // (A standalone GTID, DDL, is a transaction ended by its one statement.)
                    let _standalone = d[12] & MARIADB_GTID_STANDALONE != 0;
                    if !self.begin(start, Some(gtid), &h) {
                        return Ok(Step::Stop);
                    }
                }
            }
            MARIADB_ANNOTATE_ROWS_EVENT => {
                if let Some(c) = self.cur.as_mut() {
                    c.annotate = Some(String::from_utf8_lossy(ev.data()).into_owned());
                }
            }
            _ => match ev.read_data().map_err(decode_err)? {
                Some(EventData::QueryEvent(q)) => {
                    let text = q.query();
                    let upper = text.trim().to_ascii_uppercase();
                    if self.cur.is_none() && !self.begin(start, None, &h) {
                        return Ok(Step::Stop);
                    }
                    if upper != "BEGIN" && !upper.starts_with("XA START") {
                        if let Some(c) = self.cur.as_mut() {
                            c.statement.get_or_insert_with(|| text.into_owned());
                        }
                        return Ok(self.finish(end));
                    }
                }
                Some(EventData::XidEvent(_)) => return Ok(self.finish(end)),
                Some(EventData::RowsQueryEvent(q)) => {
                    if let Some(c) = self.cur.as_mut() {
                        c.statement = Some(q.query().trim_start_matches('\u{1}').to_string());
                    }
                }
                Some(EventData::RowsEvent(rows)) => {
                    let table_id = rows.table_id();
                    let Some(map) = tme(table_id) else {
                        return Err(decode_err(std::io::Error::other(format!(
                            "rows event for unknown table id {table_id}"
                        ))));
                    };
                    let raw = decode_rows(&rows, &map, end).map_err(decode_err)?;
                    if self.cur.is_none() && !self.begin(start, None, &h) {
                        return Ok(Step::Stop);
                    }
                    if let Some(c) = self.cur.as_mut() {
                        c.events.push(raw.head());
                    }
                    if !(self.sink)(Item::Rows(raw)) {
                        return Ok(Step::Stop);
                    }
                }
                Some(EventData::TransactionPayloadEvent(p)) => {
                    // binlog_transaction_compression: the whole transaction is inside.
                    let mut reader = p.decompressed().map_err(decode_err)?;
                    let mut esr = EventStreamReader::new(BinlogVersion::Version4);
                    while let Some(inner) =
                        esr.read_decompressed(&mut reader).map_err(decode_err)?
                    {
                        let lookup = |id: u64| esr.get_tme(id).cloned();
                        match self.handle(&inner, &lookup, Some(end))? {
                            Step::Continue => {}
                            done => return Ok(done),
                        }
                    }
                }
                _ => {}
            },
        }
        Ok(Step::Continue)
    }
}

fn decode_rows(
    rows: &RowsEventData<'_>,
    map: &TableMapEvent<'static>,
    end_log_pos: u64,
) -> std::io::Result<RawRowsEvent> {
    let kind = match rows {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
            RowsEventKind::Write
        }
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
            RowsEventKind::Delete
        }
        _ => RowsEventKind::Update,
    };
    let decoded = super::rows::decode(rows, map)?;
    Ok(RawRowsEvent {
        kind,
        table: TableRef {
            schema: map.database_name().into_owned(),
            name: map.table_name().into_owned(),
        },
        end_log_pos,
        rows: decoded,
    })
}

fn format_uuid(b: &[u8; 16]) -> String {
    let h = crate::value::hex(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

const ROTATE_EVENT: u8 = 4;
const FORMAT_DESCRIPTION_EVENT: u8 = 15;

/// Where each event of the dump ends, counted from the start position. MariaDB 11.8
/// (binlog_legacy_event_pos=OFF) writes end_log_pos 0 on the events inside a transaction, so
/// a position in the header is used when there is one, and the running count otherwise.
struct Cursor {
    pos: u64,
}

impl Cursor {
    /// The event's end position, or None for events that are not part of the file's stream
    /// (the artificial Rotate and Format_description a dump starts with, and rotations).
    fn advance(&mut self, ev: &Event) -> Option<u64> {
        let h = ev.header();
        let typ = h.event_type_raw();
        if typ == ROTATE_EVENT {
            // The next file's events count from the position the rotation names.
            if let Ok(Some(EventData::RotateEvent(r))) = ev.read_data() {
                self.pos = r.position();
            }
            return None;
        }
        if typ == FORMAT_DESCRIPTION_EVENT && h.log_pos() == 0 {
            return None;
        }
        let end = match h.log_pos() {
            0 => self.pos + h.event_size() as u64,
            p => p as u64,
        };
        self.pos = end;
        Some(end)
    }
}

/// How far a scan may go.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    /// Stop reading at this instant (checked after each event).
    pub deadline: Option<std::time::Instant>,
    /// Stop where the requested file ends (at its rotation) instead of reading on.
    pub one_file: bool,
}

impl Limits {
    fn bytes(max_bytes: u64) -> Limits {
        Limits {
            max_bytes,
            deadline: None,
            one_file: false,
        }
    }
}

/// What a scan read: bytes, whether it reached the end of what it was asked to read (the
/// file's end with `one_file`, else the binlog's end or the wanted transaction), and the time
/// of the first event read (the file's creation when read from its start).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scanned {
    pub bytes: u64,
    pub complete: bool,
    pub first_timestamp: Option<u32>,
    /// The end position of the last event read.
    pub last_pos: u64,
}

/// Streams the source's binlog from `req.start_pos`, handing every item to `sink` until it
/// returns false, the wanted transaction has passed, the binlog ends, or the limits are
/// reached.
fn scan(
    spec: &ConnSpec,
    flavor: Flavor,
    req: &FetchRequest,
    limits: Limits,
    sink: &mut dyn FnMut(Item) -> bool,
) -> Result<Scanned, FetchError> {
    let pos32 = u32::try_from(req.start_pos)
        .map_err(|_| FetchError::PositionTooLarge { pos: req.start_pos })?;
    let stream_err = |source| FetchError::Stream {
        endpoint: Box::new(spec.account()),
        file: req.file.clone(),
        pos: req.start_pos,
        source,
    };
    let mut server = Server::connect_with_timeout(spec, Duration::from_secs(10))?;
    let server_id = pick_dump_server_id(&mut server, flavor);
    if let Some(sql) = flavor.dump_session_statement() {
        server.run(&Statement::plain(sql)).map_err(stream_err)?;
    }
    let conn = server.into_binlog_conn();
    // (MariaDB sends Annotate_rows only to a dump asking with BINLOG_SEND_ANNOTATE_ROWS_EVENT,
    // a flag the driver's COM_BINLOG_DUMP does not pass on: MariaDB's statements stay unknown.)
    let flags = BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK;
    let request = BinlogRequest::new(server_id)
        .with_filename(req.file.as_bytes().to_vec())
        .with_pos(pos32 as u64)
        .with_flags(flags);
    let mut stream = conn.get_binlog_stream(request).map_err(stream_err)?;
    let mut scan = Scan {
        req,
        cur: None,
        bytes_read: 0,
        sink,
    };
    let mut cursor = Cursor { pos: req.start_pos };
    let mut seen_rotate = false;
    let mut out = Scanned {
        complete: true,
        ..Default::default()
    };
    while let Some(ev) = stream.next() {
        let ev = ev.map_err(stream_err)?;
        // The dump starts with a rotation to the requested file (its name may carry the
        // checksum's bytes: the format is not known yet); any later one ends the file.
        if limits.one_file && ev.header().event_type_raw() == ROTATE_EVENT {
            if seen_rotate {
                break;
            }
            seen_rotate = true;
        }
        let Some(end) = cursor.advance(&ev) else {
            continue;
        };
        if out.first_timestamp.is_none() && ev.header().timestamp() != 0 {
            out.first_timestamp = Some(ev.header().timestamp());
        }
        out.last_pos = end;
        scan.bytes_read += ev.header().event_size() as u64;
        let lookup = |id: u64| stream.get_tme(id).cloned();
        match scan.handle(&ev, &lookup, Some(end))? {
            Step::Continue => {}
            Step::Found(trx) => {
                if !(scan.sink)(Item::Done(trx)) {
                    break;
                }
            }
            Step::Passed | Step::Stop => break,
        }
        if scan.bytes_read >= limits.max_bytes
            || limits
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
        {
            out.complete = false;
            break;
        }
    }
    out.bytes = scan.bytes_read;
    Ok(out)
}

/// Reads one binlog file from its start to its end (or the limits), handing every
/// transaction with rows events to `sink` (its rows first, then `Item::Done`).
pub fn scan_file(
    spec: &ConnSpec,
    flavor: Flavor,
    file: &str,
    limits: Limits,
    sink: &mut dyn FnMut(Item) -> bool,
) -> Result<Scanned, FetchError> {
    let req = FetchRequest {
        file: file.to_string(),
        start_pos: 4,
        failed_end_log_pos: None,
        gtid: None,
    };
    scan(
        spec,
        flavor,
        &req,
        Limits {
            one_file: true,
            ..limits
        },
        sink,
    )
}

/// Items in flight between the reading thread and the consumer: enough to keep both busy,
/// few enough that memory stays flat (an item is one rows event, about 8 KiB of binlog).
const PIPELINE_DEPTH: usize = 64;

/// Reads the failing transaction (the one containing the failed event, or with the failing
/// GTID), handing its rows events to `on_rows` as they arrive. Reading and decoding run on a
/// thread of their own, so they overlap with what `on_rows` does (row lookups on the nodes).
/// `Item::Begin` is passed on too: rows seen before it belong to another transaction.
///
/// The outer error is `on_rows`'s own; the inner one says why the transaction was not read.
pub fn stream_transaction(
    spec: &ConnSpec,
    flavor: Flavor,
    req: &FetchRequest,
    on_rows: &mut dyn FnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<Result<RawTransaction, FetchError>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(PIPELINE_DEPTH);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            scan(spec, flavor, req, Limits::bytes(u64::MAX), &mut |item| {
                let last = matches!(item, Item::Done(_));
                tx.send(item).is_ok() && !last
            })
        });
        let mut found = None;
        let mut failed = None;
        for item in rx.iter() {
            let step = match item {
                Item::Done(trx) => {
                    found = Some(trx);
                    break;
                }
                other => on_rows(other),
            };
            if let Err(e) = step {
                failed = Some(e);
                break;
            }
        }
        // The reader stops at its next item once nobody listens.
        drop(rx);
        let scanned = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(match (found, scanned) {
            (Some(trx), _) => Ok(trx),
            (None, Err(e)) => Err(e),
            (None, Ok(scanned)) => Err(not_found(req, scanned.bytes)),
        })
    })
}

fn not_found(req: &FetchRequest, bytes: u64) -> FetchError {
    FetchError::NotFound {
        file: req.file.clone(),
        pos: req.start_pos,
        target: match (&req.gtid, req.failed_end_log_pos) {
            (Some(g), _) => format!("GTID {g}"),
            (None, Some(p)) => format!("end_log_pos {p}"),
            (None, None) => "a transaction with row events".into(),
        },
        bytes,
    }
}

/// A transaction after the incident's, with the rows events a read-ahead kept.
pub type Following = (RawTransaction, Vec<RawRowsEvent>);

/// Up to `max` transactions with row events after `pos`, each with the rows events `keep`
/// selects (batch repairs look ahead for the next conflicts so they are resolved in one
/// stop/start), reading at most `max_bytes`.
pub fn fetch_following(
    spec: &ConnSpec,
    flavor: Flavor,
    file: &str,
    pos: u64,
    max: usize,
    max_bytes: u64,
    keep: &dyn Fn(&RawRowsEvent) -> bool,
) -> Result<Vec<Following>, FetchError> {
    let req = FetchRequest {
        file: file.to_string(),
        start_pos: pos,
        failed_end_log_pos: None,
        gtid: None,
    };
    let mut out = Vec::new();
    let mut events = Vec::new();
    scan(spec, flavor, &req, Limits::bytes(max_bytes), &mut |item| {
        match item {
            Item::Begin => events.clear(),
            Item::Rows(ev) if keep(&ev) => events.push(ev),
            Item::Rows(_) => {}
            Item::Done(trx) => out.push((trx, std::mem::take(&mut events))),
        }
        out.len() < max
    })?;
    Ok(out)
}
