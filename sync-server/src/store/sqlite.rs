//! The SQLite engine: one file (`DATA/server.db`), one write connection
//! behind a mutex, a small pool of read-only connections.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction: committed when the
//! closure returns `Ok`, rolled back when it returns `Err` (or panics), so a
//! refused request leaves nothing behind. `synchronous=FULL`: nothing is
//! acknowledged before it is on disk. WAL lets the read pool, and other
//! processes (`sync-server enroll-code` while the server runs), work beside
//! the writer; the busy timeout bounds how long either waits for the other.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

// The connection settings, the busy timeout and the private file are
// loket-node's, the same as the kiosk's.
pub use loket_node::sqlite::BUSY_TIMEOUT;
use loket_node::sqlite::{configure_reader, configure_writer, create_private};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;
use super::sql::{Dialect, Row, Sql, Value};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy(format!("sqlite: {e}"))
            }
            _ => StoreError::Engine(format!("sqlite: {e}")),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> StoreError {
        StoreError::Unavailable(format!("sqlite connection pool: {e}"))
    }
}

/// A connection (or the open transaction on it) seen through the seam.
pub struct SqliteConn<'a>(pub &'a Connection);

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(r) => ToSqlOutput::Borrowed(ValueRef::Real(*r)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn value_of(v: ValueRef<'_>) -> Result<Value, StoreError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec())
                .map_err(|_| StoreError::Corrupt { what: "text column".into(), reason: "not UTF-8".into() })?,
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

impl Sql for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        let n = self.0.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args))?;
        Ok(n as u64)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        self.query_each(sql, args, &mut |row| {
            out.push(row);
            Ok(())
        })?;
        Ok(out)
    }

    fn query_each(
        &mut self,
        sql: &str,
        args: &[Value],
        each: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(value_of(r.get_ref(i)?)?);
            }
            each(Row(values))?;
        }
        Ok(())
    }
}

/// The SQLite database. Cheap to clone: every clone shares the same write
/// connection and read pool.
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

/// The store's page size. Documents are rows of about half a kilobyte
/// (their packed snapshot): a 4 KiB page holds seven and leaves most of an
/// eighth unused, 9 % of the documents' pages at 100,000 requests; 8 KiB
/// pages leave half as much per row, about 38 bytes a request (issue 18,
/// item 2). 16 KiB saved 6 bytes more and doubles what every write puts
/// in the WAL again.
pub const PAGE_SIZE: u32 = 8192;

/// Rewrites the file at `path` compactly (`VACUUM`) and returns its page
/// size afterwards. With no other connection to it (the server stopped),
/// at [`PAGE_SIZE`]: SQLite changes a page size only outside WAL, so the
/// file leaves WAL for the rewrite (atomic under its rollback journal) and
/// returns to it. Otherwise (the server running) at the page size it has,
/// waiting up to [`BUSY_TIMEOUT`] for a moment without writers.
pub fn vacuum(path: &Path) -> Result<u32, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(Duration::from_millis(100))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let mode = conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0));
    if mode.is_ok_and(|m| m.eq_ignore_ascii_case("delete")) {
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        let rewritten = conn.execute_batch("VACUUM");
        // Back to WAL whatever the rewrite did; the server sets it too.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        rewritten?;
    } else {
        configure_writer(&conn)?;
        conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    Ok(conn.pragma_query_value(None, "page_size", |r| r.get(0))?)
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl SqliteDb {
    /// Opens (creating it if missing, file mode 0600) the database at
    /// `path` with `read_connections` (1..=64) pooled readers. Does not
    /// migrate: see [`super::migrate`].
    pub fn open(path: &Path, read_connections: u32) -> Result<SqliteDb, StoreError> {
        if !(1..=64).contains(&read_connections) {
            return Err(StoreError::Invalid(format!("read_connections must be 1..=64, not {read_connections}")));
        }
        // 0600 before SQLite writes a byte (its -wal and -shm files take
        // the database file's mode).
        create_private(path).map_err(|e| StoreError::Invalid(format!("restricting {}: {e}", path.display())))?;
        let conn = Connection::open(path)?;
        // Only a new, empty file takes it; an existing store keeps its own
        // until `sync-server compact --vacuum` rewrites it (`vacuum`).
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        configure_writer(&conn)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| configure_reader(c));
        let readers = r2d2::Pool::builder()
            .max_size(read_connections)
            .min_idle(Some(1))
            // A local file's connection does not go stale: no query on
            // every checkout (r2d2_sqlite prepares one each time).
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(SqliteDb { inner: Arc::new(Inner { path: path.to_path_buf(), writer: Mutex::new(conn), readers }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the write
    /// connection: commits if it returns `Ok`, rolls back if it returns
    /// `Err`. Blocks (on the mutex, then on SQLite's write lock up to
    /// [`BUSY_TIMEOUT`]).
    pub fn write<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, E>) -> Result<T, E> {
        // A panic while the lock was held rolled its transaction back (the
        // transaction's drop), so the connection is still usable.
        let mut conn = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?;
        match f(&mut SqliteConn(&tx)) {
            Ok(value) => {
                tx.commit().map_err(StoreError::from)?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = tx.rollback() {
                    tracing::error!(error = %rollback, "rollback failed");
                }
                Err(e)
            }
        }
    }

    /// Runs `f` on a pooled read-only connection. Blocks until one is free
    /// (bounded by the pool's connection timeout). `f` runs in a deferred
    /// transaction, so its reads see one snapshot.
    pub fn read<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, E>) -> Result<T, E> {
        let mut conn = self.inner.readers.get().map_err(StoreError::from)?;
        let tx = conn.transaction().map_err(StoreError::from)?;
        let out = f(&mut SqliteConn(&tx));
        // Read-only: nothing to keep; ending it releases the snapshot.
        drop(tx);
        out
    }

    /// [`SqliteDb::write`] with the raw rusqlite transaction: for tests and
    /// tools that check SQLite itself (pragmas, plans, hand-made rows).
    pub fn raw_write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// A consistent copy of the whole database in the new file `out`
    /// (`VACUUM INTO`, in a read transaction: the server goes on writing
    /// meanwhile), created 0600 and fsynced. The copy is compacted.
    pub fn snapshot_into(&self, out: &Path) -> Result<(), StoreError> {
        let conn = self.inner.readers.get()?;
        loket_node::sqlite::snapshot_into(&conn, out).map_err(|e| StoreError::Invalid(format!("{e:#}")))
    }

    /// SQLite's `quick_check`: the problems it finds (none: an empty list).
    pub fn quick_check(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.inner.readers.get()?;
        Ok(loket_node::sqlite::quick_check(&conn)?)
    }

    /// [`SqliteDb::read`] with the raw rusqlite connection (tests and tools).
    pub fn raw_read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.inner.readers.get()?;
        f(&conn)
    }

    /// Runs `f` on the write connection outside any transaction (the
    /// migrations, which manage their own).
    pub fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }
}
