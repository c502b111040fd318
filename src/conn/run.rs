//! Running the builder's statements (`crate::sql::Statement`) on a server: the only way
//! code outside `conn` reaches the session. A statement without parameters goes over the
//! text protocol (one round trip, nothing to prepare), one with parameters is prepared and
//! executed with them bound — except where a method says it always prepares: the binary
//! protocol returns values typed (a DATETIME as a date, an integer as an integer), which the
//! row decoders expect.

use mysql::prelude::{FromRow, Queryable};
use mysql::{Conn, Row};

use super::{Server, decode_row};
use crate::schema::TableSchema;
use crate::sql::Statement;

impl Server {
    /// Runs the statement; its result, if any, is dropped.
    pub fn run(&mut self, st: &Statement) -> mysql::Result<()> {
        if st.params.is_empty() {
            self.conn.query_drop(&st.sql)
        } else {
            self.conn.exec_drop(&st.sql, st.bind())
        }
    }

    /// The statement's first row, if any.
    pub fn first<T: FromRow>(&mut self, st: &Statement) -> mysql::Result<Option<T>> {
        if st.params.is_empty() {
            self.conn.query_first(&st.sql)
        } else {
            self.conn.exec_first(&st.sql, st.bind())
        }
    }

    /// Every row of the statement's result.
    pub fn all<T: FromRow>(&mut self, st: &Statement) -> mysql::Result<Vec<T>> {
        if st.params.is_empty() {
            self.conn.query(&st.sql)
        } else {
            self.conn.exec(&st.sql, st.bind())
        }
    }

    /// The statement's first row, always prepared (values arrive typed).
    pub fn first_prepared<T: FromRow>(&mut self, st: &Statement) -> mysql::Result<Option<T>> {
        self.conn.exec_first(&st.sql, st.bind())
    }

    /// Every row of the statement's result, always prepared (values arrive typed).
    pub fn all_prepared<T: FromRow>(&mut self, st: &Statement) -> mysql::Result<Vec<T>> {
        self.conn.exec(&st.sql, st.bind())
    }

    /// Hands each row of the statement's result to `f` as it arrives, never holding more
    /// than one (a table's hashes can be millions of rows). Always prepared.
    pub fn for_each_row<E: From<mysql::Error>>(
        &mut self,
        st: &Statement,
        mut f: impl FnMut(Row) -> Result<(), E>,
    ) -> Result<(), E> {
        for row in self.conn.exec_iter(&st.sql, st.bind())? {
            f(row?)?;
        }
        Ok(())
    }

    /// Rows the last statement changed.
    pub fn affected_rows(&self) -> u64 {
        self.conn.affected_rows()
    }

    /// Whether the session is still open.
    pub fn ping(&mut self) -> mysql::Result<()> {
        self.conn.ping()
    }

    /// Prepares the statement ahead of its run: the driver keeps it by its text, and the
    /// run that follows finds it ready.
    pub fn prepare(&mut self, st: &Statement) -> mysql::Result<()> {
        self.conn.prep(&st.sql).map(drop)
    }

    /// The session itself, for a binlog dump (it speaks the replication protocol, not SQL):
    /// its session settings are run through `run` first.
    pub fn into_binlog_conn(self) -> Conn {
        self.conn
    }

    /// Runs a statement selecting `columns`: every row it returns.
    pub fn read_rows(
        &mut self,
        schema: &TableSchema,
        columns: &[String],
        st: &Statement,
    ) -> mysql::Result<Vec<crate::value::Row>> {
        let rows: Vec<Row> = self.all_prepared(st)?;
        Ok(rows
            .into_iter()
            .map(|r| decode_row(r.unwrap().into_iter(), schema, columns))
            .collect())
    }

    /// Runs a `sql::select_many_by_key` of `columns` over `n` keys: the row found for each
    /// key.
    pub fn read_rows_by_index(
        &mut self,
        schema: &TableSchema,
        columns: &[String],
        st: &Statement,
        n: usize,
    ) -> mysql::Result<Vec<Option<crate::value::Row>>> {
        let mut out = vec![None; n];
        let rows: Vec<Row> = self.all_prepared(st)?;
        for r in rows {
            let mut values = r.unwrap().into_iter();
            let Some(i) = values
                .next()
                .and_then(|v| mysql::from_value_opt::<usize>(v).ok())
            else {
                continue;
            };
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(decode_row(values, schema, columns));
            }
        }
        Ok(out)
    }

    /// Runs a row-reading statement (a `sql::select_by_key` of `columns`): the row, if any.
    pub fn read_row(
        &mut self,
        schema: &TableSchema,
        columns: &[String],
        st: &Statement,
    ) -> mysql::Result<Option<crate::value::Row>> {
        let row: Option<Row> = self.first_prepared(st)?;
        Ok(row.map(|r| decode_row(r.unwrap().into_iter(), schema, columns)))
    }
}
