//! The PostgreSQL engine: a bounded pool of synchronous connections to one
//! database that any number of server instances share.
//!
//! Every write is one `READ COMMITTED` transaction (the store orders
//! concurrent writers itself, by the per-kelurahan counter row each write
//! takes first), committed when the closure returns `Ok` and rolled back
//! when it returns `Err` or panics. Every read is one `REPEATABLE READ,
//! READ ONLY` transaction, so all its statements see one snapshot.
//!
//! Invariants:
//! - A connection goes back to the pool only outside a transaction: one
//!   whose `COMMIT`/`ROLLBACK` did not complete, that failed at the
//!   connection level, or whose closure panicked is closed instead.
//! - PostgreSQL aborts a transaction at its first failed statement. A
//!   closure that swallows such an error and returns `Ok` gets an error
//!   anyway and nothing is committed: silently losing the rest of a write
//!   (PostgreSQL answers `COMMIT` on an aborted transaction with a
//!   rollback) is worse than failing it.
//! - Statements are prepared once per connection (placeholders numbered
//!   once per statement string) and kept in a bounded cache.
//!
//! Blocking only: the `postgres` client drives its own single-threaded
//! tokio runtime, which panics inside another runtime. The server calls
//! the store from `spawn_blocking` (see [`super`]).
//!
//! No TLS: the connection is plaintext. Reaching the database privately is
//! the operator's part (a Unix socket on the same host, or a tunnel or a
//! private network to it). A TLS connector would bring certificate
//! settings that the server's configuration does not have yet; a URL that
//! asks for TLS (`sslmode=require`) fails to connect rather than falling
//! back to plaintext.

use std::collections::HashMap;
use std::error::Error as _;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use postgres::config::Host;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, NoTls, Statement};

use super::StoreError;
use super::migrate::Migration;
use super::sql::{Dialect, Row, Sql, Value, numbered_placeholders};

/// How long a caller waits for a pooled connection (all busy, or the
/// database unreachable) before [`StoreError::Unavailable`].
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a connection may take when the URL does not say
/// (`connect_timeout`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection. The store has well under a
/// hundred distinct statements; past this the cache starts over.
pub const STATEMENT_CACHE_MAX: usize = 256;

/// Pool sizes accepted (connections per instance; PostgreSQL's default
/// `max_connections` of 100 is shared by every instance).
pub const POOL_SIZE_RANGE: std::ops::RangeInclusive<u32> = 1..=64;

const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE";
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// The PostgreSQL database. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PgDb {
    pool: r2d2::Pool<Manager>,
    description: String,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb").field("database", &self.description).finish_non_exhaustive()
    }
}

impl PgDb {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/db`
    /// or `host=… user=…`) with a pool of `pool_size` (1..=64) connections,
    /// opening one now so that a wrong URL fails here. Does not migrate: see
    /// [`super::migrate`].
    pub fn connect(url: &str, pool_size: u32) -> Result<PgDb, StoreError> {
        PgDb::connect_with(url, pool_size, CHECKOUT_TIMEOUT)
    }

    /// [`PgDb::connect`] with another checkout timeout (tests).
    pub fn connect_with(url: &str, pool_size: u32, checkout_timeout: Duration) -> Result<PgDb, StoreError> {
        if !POOL_SIZE_RANGE.contains(&pool_size) {
            return Err(StoreError::Invalid(format!("the PostgreSQL pool size must be 1..=64, not {pool_size}")));
        }
        // The parser's errors never quote the URL.
        let mut config = Config::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("the PostgreSQL URL is not valid: {}", text(&e))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("loket-sync-server");
        }
        let description = describe(&config);
        let manager = Manager { config };
        // One connection now, so that a wrong URL, password or database
        // fails at once with the server's reason (the pool would retry it
        // until its timeout).
        drop(
            r2d2::ManageConnection::connect(&manager)
                .map_err(|e| StoreError::Unavailable(format!("PostgreSQL at {description}: {e}")))?,
        );
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            // A dead connection is found by the `BEGIN` that every use
            // starts with (and replaced, see `begin`), so checking each one
            // out with a round trip of its own would only add latency.
            .test_on_check_out(false)
            .connection_timeout(checkout_timeout)
            .error_handler(Box::new(LogError))
            .build_unchecked(manager);
        Ok(PgDb { pool, description })
    }

    /// `postgres://user@host:port/db`: where the data is, never a password.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// What [`PgDb::describe`] would say for `url`, without connecting (for
    /// logs and messages about a URL that may hold a password).
    pub fn describe_url(url: &str) -> String {
        Config::from_str(url).map_or_else(|_| "postgres://(unparsable URL)".to_owned(), |c| describe(&c))
    }

    /// Runs `f` in one `READ COMMITTED` transaction: commits if it returns
    /// `Ok` (and no statement failed), rolls back otherwise. Blocks.
    pub fn write<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, E>) -> Result<T, E> {
        let mut conn = self.begin(BEGIN_WRITE)?;
        let mut tx = PgTx { conn: &mut conn, failed: None };
        let out = f(&mut tx);
        let failed = tx.failed.take();
        match (out, failed) {
            (Ok(value), None) => {
                conn.finish("COMMIT")?;
                Ok(value)
            }
            (Ok(_), Some(first)) => {
                conn.rollback_quietly();
                Err(StoreError::Engine(format!(
                    "a statement failed inside this transaction ({first}) and PostgreSQL aborted it; nothing was \
                     committed"
                ))
                .into())
            }
            (Err(e), _) => {
                conn.rollback_quietly();
                Err(e)
            }
        }
    }

    /// Runs `f` in one `REPEATABLE READ, READ ONLY` transaction (one
    /// snapshot; a write in it fails). Blocks until a connection is free,
    /// at most the checkout timeout.
    pub fn read<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, E>) -> Result<T, E> {
        let mut conn = self.begin(BEGIN_READ)?;
        let mut tx = PgTx { conn: &mut conn, failed: None };
        let out = f(&mut tx);
        let failed = tx.failed.take();
        // Nothing to keep; ending it releases the snapshot.
        conn.rollback_quietly();
        match (out, failed) {
            (Ok(value), None) => Ok(value),
            (Ok(_), Some(first)) => Err(StoreError::Engine(format!(
                "a statement failed inside this read ({first}) and PostgreSQL aborted the transaction"
            ))
            .into()),
            (Err(e), _) => Err(e),
        }
    }

    /// A pooled connection inside a transaction opened with `begin`. A
    /// connection that died while idle (the server restarted) fails here,
    /// before anything was done, so it is dropped and another one tried.
    fn begin(&self, begin: &str) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        let mut last = String::new();
        for _ in 0..=self.pool.max_size() {
            let mut conn = self.pool.get().map_err(|e| {
                StoreError::Unavailable(format!("no PostgreSQL connection to {} in time: {e}", self.description))
            })?;
            match conn.client().batch_execute(begin) {
                Ok(()) => {
                    conn.in_transaction = true;
                    return Ok(conn);
                }
                Err(e) if is_connection_failure(&e) => {
                    conn.broken = true;
                    last = text(&e);
                }
                Err(e) => return Err(store_error(&e)),
            }
        }
        Err(StoreError::Unavailable(format!("PostgreSQL at {}: {last}", self.description)))
    }
}

/// `postgres://user@host:port/db` from the parsed configuration: the URL
/// itself may hold a password, so it is never printed.
fn describe(config: &Config) -> String {
    let user = config.get_user().unwrap_or("");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let hosts = match (hosts.is_empty(), config.get_hostaddrs()) {
        (false, _) => hosts.join(","),
        (true, []) => "localhost".to_owned(),
        (true, addrs) => addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{hosts}:{port}/{db}")
}

/// One pooled connection and what the engine keeps beside it.
struct PgConn {
    /// `None` only while being dropped.
    client: Option<Client>,
    /// Prepared statements by the statement's text as the store wrote it.
    statements: HashMap<String, Statement>,
    /// Between a successful `BEGIN` and a completed `COMMIT`/`ROLLBACK`: a
    /// connection returned in this state (a panic) is closed, not reused.
    in_transaction: bool,
    /// Failed at the connection level: closed, not reused.
    broken: bool,
}

impl PgConn {
    fn client(&mut self) -> &mut Client {
        self.client.as_mut().expect("a connection has its client until it is dropped")
    }

    /// Ends the transaction with `COMMIT` or `ROLLBACK`. Either way
    /// PostgreSQL has ended it when it answers, even with an error (a
    /// `COMMIT` refused by a serialization failure rolls back); without an
    /// answer its state is unknown and the connection is not reused.
    fn finish(&mut self, end: &str) -> Result<(), StoreError> {
        match self.client().batch_execute(end) {
            Ok(()) => {
                self.in_transaction = false;
                Ok(())
            }
            Err(e) => {
                if e.as_db_error().is_some() && !is_connection_failure(&e) {
                    self.in_transaction = false;
                } else {
                    self.broken = true;
                }
                let mut err = store_error(&e);
                if end == "COMMIT"
                    && let StoreError::Unavailable(m) = &mut err
                {
                    m.push_str(" (while committing: the transaction may or may not have been committed)");
                }
                Err(err)
            }
        }
    }

    fn rollback_quietly(&mut self) {
        if let Err(e) = self.finish("ROLLBACK") {
            tracing::warn!(error = %e, "PostgreSQL rollback failed; the connection is closed");
        }
    }

    /// The prepared statement for `sql`, from the cache or prepared now.
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client().prepare(&numbered_placeholders(sql))?;
        if self.statements.len() >= STATEMENT_CACHE_MAX {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Drop for PgConn {
    /// Closing a client blocks on the client's own runtime, which panics on
    /// a thread of another one: where the last [`PgDb`] may well be dropped
    /// (the server's state, at shutdown). There it closes on a thread of
    /// its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::spawn(move || drop(client));
        }
    }
}

/// The transaction a closure of [`PgDb::write`] / [`PgDb::read`] runs in,
/// seen through the seam.
struct PgTx<'a> {
    conn: &'a mut PgConn,
    /// The first statement that failed: PostgreSQL has aborted the
    /// transaction, so it can only roll back.
    failed: Option<String>,
}

impl PgTx<'_> {
    fn check<T>(&mut self, r: Result<T, postgres::Error>) -> Result<T, StoreError> {
        r.map_err(|e| failure(&mut self.failed, &mut self.conn.broken, &e))
    }
}

/// A statement failed. Unless the failure was only on this side (an
/// argument or a column of a type refused here, found before sending or
/// after receiving), PostgreSQL has aborted the transaction: remember the
/// first such failure. After a connection failure the connection is not
/// reused.
fn failure(failed: &mut Option<String>, broken: &mut bool, e: &postgres::Error) -> StoreError {
    let connection = is_connection_failure(e);
    if connection {
        *broken = true;
    }
    let err = store_error(e);
    let client_side = e.as_db_error().is_none() && !connection && e.source().is_some();
    if !client_side {
        failed.get_or_insert_with(|| err.to_string());
    }
    err
}

impl Sql for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        let statement = self.conn.statement(sql);
        let statement = self.check(statement)?;
        let params = params(args);
        let n = self.conn.client().execute(&statement, &refs(&params));
        self.check(n)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let r = self.conn.client().batch_execute(sql);
        self.check(r)?;
        // DDL may change what a cached statement returns ("cached plan must
        // not change result type"): prepare afresh after it.
        self.conn.statements.clear();
        Ok(())
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
        let statement = self.conn.statement(sql);
        let statement = self.check(statement)?;
        let width = statement.columns().len();
        let PgTx { conn, failed } = self;
        // Rows are decoded as they arrive, never all held.
        // The client and the flags are borrowed apart: the rows hold the client.
        let client = conn.client.as_mut().expect("a connection has its client until it is dropped");
        let mut rows = match client.query_raw(&statement, args.iter().map(Param)) {
            Ok(rows) => rows,
            Err(e) => return Err(failure(failed, &mut conn.broken, &e)),
        };
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => return Ok(()),
                Err(e) => return Err(failure(failed, &mut conn.broken, &e)),
            };
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                match row.try_get::<_, Column>(i) {
                    Ok(column) => values.push(column.0),
                    Err(e) => return Err(failure(failed, &mut conn.broken, &e)),
                }
            }
            // The caller's own error ends the query (the rest of the rows
            // are discarded as they arrive); the transaction is unharmed.
            each(Row(values))?;
        }
    }
}

fn params(args: &[Value]) -> Vec<Param<'_>> {
    args.iter().map(Param).collect()
}

fn refs<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// An argument, encoded as the type PostgreSQL inferred for its
/// placeholder (a `BIGINT` column's `?` is `INT8`, a bare `SELECT ?` is
/// `TEXT`). Conversions that could lose or invent data are refused.
#[derive(Debug)]
struct Param<'a>(&'a Value);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if let Kind::Domain(base) = ty.kind() {
            return self.to_sql(base, out);
        }
        let out_of_range = || -> BoxError { format!("an integer out of range for PostgreSQL {ty}").into() };
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i).map_err(|_| out_of_range())?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i).map_err(|_| out_of_range())?.to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => match i {
                0 => false.to_sql(ty, out),
                1 => true.to_sql(ty, out),
                _ => Err(out_of_range()),
            },
            (Value::Int(i), &Type::FLOAT8) => exact_f64(*i).ok_or_else(out_of_range)?.to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT4) => exact_f32(*i).ok_or_else(out_of_range)?.to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            #[allow(clippy::cast_possible_truncation)]
            (Value::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::NAME | &Type::BPCHAR | &Type::UNKNOWN) => {
                s.as_str().to_sql(ty, out)
            }
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (v, ty) => Err(format!(
                "{} cannot be sent where PostgreSQL expects {ty} (cast the placeholder, or pass another value)",
                kind(v)
            )
            .into()),
        }
    }

    /// Every type: the check is in `to_sql`, whose error says what went
    /// where (the library's own would name the wrapper type).
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `i` as a float if that is exact (FLOAT columns get no integers that
/// would come back different).
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn exact_f64(i: i64) -> Option<f64> {
    let f = i as f64;
    // 2^63 itself saturates back to i64::MAX, so it is excluded first.
    (f < 2f64.powi(63) && f as i64 == i).then_some(f)
}

#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn exact_f32(i: i64) -> Option<f32> {
    let f = i as f32;
    (f64::from(f) < 2f64.powi(63) && f as i64 == i).then_some(f)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

/// A result column, decoded by its PostgreSQL type.
struct Column(Value);

impl<'a> FromSql<'a> for Column {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Column, BoxError> {
        if let Kind::Domain(base) = ty.kind() {
            // information_schema's columns, for one.
            return Column::from_sql(base, raw);
        }
        Ok(Column(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN => {
                Value::Text(String::from_sql(ty, raw)?)
            }
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            // `SELECT pg_advisory_xact_lock(…)`.
            Type::VOID => Value::Null,
            _ => return Err(refused(ty)),
        }))
    }

    /// A NULL of a type the store does not read is refused as well, so an
    /// uncast `sum()` fails on the first test, not on the first non-empty
    /// table.
    fn from_sql_null(ty: &Type) -> Result<Column, BoxError> {
        if let Kind::Domain(base) = ty.kind() {
            return Column::from_sql_null(base);
        }
        match *ty {
            Type::INT8
            | Type::INT4
            | Type::INT2
            | Type::OID
            | Type::BOOL
            | Type::FLOAT8
            | Type::FLOAT4
            | Type::TEXT
            | Type::VARCHAR
            | Type::NAME
            | Type::BPCHAR
            | Type::UNKNOWN
            | Type::BYTEA
            | Type::VOID => Ok(Column(Value::Null)),
            _ => Err(refused(ty)),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Why a column of type `ty` is not read.
fn refused(ty: &Type) -> BoxError {
    if *ty == Type::NUMERIC {
        "a numeric column (sum() of integers is numeric on PostgreSQL): write CAST(… AS BIGINT)".into()
    } else {
        format!("a column of PostgreSQL type {ty}, which the store does not read (cast it)").into()
    }
}

/// Whether the connection, not the statement, failed (then the
/// connection is not reused, and the error is [`StoreError::Unavailable`]).
fn is_connection_failure(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // Class 08: connection exception; 57P01-03: the server is shutting
        // down or starting; 53300: too many connections.
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    e.source().is_some_and(|s| s.is::<std::io::Error>())
}

/// The error as text: the server's message with its SQLSTATE and the
/// constraint, table and column it names, never the detail (which quotes
/// values: a NIK in a duplicate key). Otherwise the library's error and
/// its cause.
fn text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut out = format!("{} (SQLSTATE {}", db.message(), db.code().code());
        for (what, name) in [("constraint", db.constraint()), ("table", db.table()), ("column", db.column())] {
            if let Some(name) = name {
                out.push_str(&format!(", {what} {name}"));
            }
        }
        out.push(')');
        return out;
    }
    match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn store_error(e: &postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    let message = format!("postgres: {}", text(e));
    // Another writer won (a deadlock broken, a serialization failure, a
    // lock wait timed out): the caller may try again, as with SQLite's busy.
    let busy = e.code().is_some_and(|c| {
        [SqlState::T_R_DEADLOCK_DETECTED, SqlState::T_R_SERIALIZATION_FAILURE, SqlState::LOCK_NOT_AVAILABLE].contains(c)
    });
    if is_connection_failure(e) {
        StoreError::Unavailable(message)
    } else if busy {
        StoreError::Busy(message)
    } else {
        StoreError::Engine(message)
    }
}

/// Opens connections for the pool and says which ones to throw away.
struct Manager {
    config: Config,
}

/// Why a connection could not be opened, as text with its cause (the
/// pool reports the last one when a checkout times out).
#[derive(Debug)]
struct ConnectError(String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = ConnectError;

    fn connect(&self) -> Result<PgConn, ConnectError> {
        let client = self.config.connect(NoTls).map_err(|e| ConnectError(text(&e)))?;
        Ok(PgConn { client: Some(client), statements: HashMap::new(), in_transaction: false, broken: false })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), ConnectError> {
        conn.client().is_valid(Duration::from_secs(5)).map_err(|e| ConnectError(text(&e)))
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.broken || conn.in_transaction || conn.client.as_ref().is_none_or(Client::is_closed)
    }
}

/// Connection failures go to the log as they happen (the pool retries).
#[derive(Debug)]
struct LogError;

impl r2d2::HandleError<ConnectError> for LogError {
    fn handle_error(&self, error: ConnectError) {
        tracing::warn!(%error, "opening a PostgreSQL connection failed");
    }
}

/// How the schema is reached on PostgreSQL, step by step (the same
/// versions as [`super::schema::SQLITE`]).
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "first releases", run: v1 },
    Migration { version: 2, name: "rollups in the store, kelurahan cursor, shared login state", run: v2 },
    Migration { version: 3, name: "journey-time and staff rollups, breaches by service", run: v3 },
    Migration { version: 4, name: "service time by party, in service hours", run: v4 },
    Migration { version: 5, name: "training hours (JP) and competency", run: v5 },
    Migration { version: 6, name: "SKM respondent profile and follow-up plans", run: v6 },
    Migration { version: 7, name: "complaints (pengaduan) and central users' staff ids", run: v7 },
    Migration { version: 8, name: "agency units' regions", run: v8 },
    Migration { version: 9, name: "requests by ticket, for complaint figures", run: v9 },
    Migration { version: 10, name: "a kiosk's actors: a new one after a kiosk restore", run: v10 },
    Migration { version: 11, name: "documents waiting for compaction", run: v11 },
    Migration { version: 12, name: "a document's first and last receipt, not a row per change", run: v12 },
    Migration { version: 13, name: "no index of events by who, which nothing read", run: v13 },
    Migration { version: 14, name: "events numbered in causal order, with only what is read", run: v14 },
    Migration { version: 15, name: "ratings stored by their key, without a rowid", run: v15 },
    Migration { version: 16, name: "a document's pull number and receipts on its own row", run: v16 },
    Migration { version: 17, name: "a request's step times packed on its row", run: v17 },
    Migration { version: 18, name: "a request's events packed on its row, handoffs by agency", run: v18 },
    Migration { version: 19, name: "no index entries for what no query finds by them", run: v19 },
    Migration { version: 20, name: "what a kiosk holds keyed by its code", run: v20 },
    Migration { version: 21, name: "the index of SLA overruns without the id it finds", run: v21 },
    Migration { version: 22, name: "a request's masked NIK and name kept without the mask", run: v22 },
    Migration { version: 23, name: "no copies of what the request's row already says", run: v23 },
    Migration { version: 24, name: "documents stored by their id, without a rowid", run: v24 },
];

/// Every `TEXT` column is `COLLATE "C"`: byte order, as SQLite's
/// `BINARY` compares, whatever the database's locale, so `ORDER BY`,
/// `min()` and `<` on ids, ticket numbers and HLCs (the first rating, a
/// journey's order, list pages) give the same answer on both engines; and
/// a `LIKE 'prefix%'` can use the index.
///
/// Version 1: the tables SQLite's version 1 ends with, without its
/// triggers and the `local_offset` view (from version 2 the store keeps
/// the rollups itself, and no PostgreSQL store ever had a version 1 of its
/// own) and without `change_log` (version 2 replaces it).
///
/// Distribution (a later Citus setup; the keys are not changed yet):
/// - per kelurahan (distributed by kelurahan): `kiosks`, `enroll_codes`,
///   `docs` of requests, `requests`, `events`, `ratings`, `request_staff`,
///   `monthly`, `skm_profile`, `daily_filed`, `journey_hist`, `staff_monthly`, `seq_counters`, `doc_seq`; and by their
///   document, so needing its kelurahan as a column first: `chunks`,
///   `change_receipts`, `request_steps`;
/// - per kiosk (co-located with the kiosk's kelurahan once they carry
///   it): `kiosk_heads`, `kiosk_marks`, `kiosk_sent`;
/// - reference (small, read everywhere, replicated): `docs` of the catalog
///   (kelurahan NULL) and of the rosters (which do name their kelurahan),
///   `users`, `service_sla`, `holidays`, `meta`;
/// - city-wide, on the coordinator: `user_sessions`, `audit_log`,
///   `trainings`, `skm_followups`, `step_hist` (a city-wide histogram), `login_failures`,
///   `login_turns`, `login_known`, `schema_migrations`.
const V1: &str = r#"
-- Here already, not only in version 2: `migrate::run` records every step
-- in it, this one included.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version       BIGINT PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL,
    applied_at_ms BIGINT NOT NULL
);

CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);

CREATE TABLE users (
    username       TEXT COLLATE "C" PRIMARY KEY,
    password_hash  TEXT COLLATE "C" NOT NULL,
    role           TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin', 'agency', 'supervisor')),
    agency         TEXT COLLATE "C",
    kelurahan      TEXT COLLATE "C",
    created_at_ms  BIGINT NOT NULL,
    disabled_at_ms BIGINT
);

CREATE TABLE user_sessions (
    token_hash    TEXT COLLATE "C" PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX user_sessions_by_expiry ON user_sessions (expires_at_ms);

CREATE TABLE kiosks (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    code               TEXT COLLATE "C" NOT NULL UNIQUE,
    kelurahan          TEXT COLLATE "C" NOT NULL,
    name               TEXT COLLATE "C" NOT NULL,
    token_hash         TEXT COLLATE "C" NOT NULL UNIQUE,
    actor              TEXT COLLATE "C" NOT NULL UNIQUE,
    revoked            BIGINT NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    revoked_at_ms      BIGINT,
    enrolled_at_ms     BIGINT NOT NULL,
    last_seen_at_ms    BIGINT,
    last_sync_ok_at_ms BIGINT,
    version            TEXT COLLATE "C",
    pending_known      BIGINT,
    next_token_hash    TEXT COLLATE "C"
);
CREATE INDEX kiosks_by_kelurahan ON kiosks (kelurahan);

-- Every view of a citizen's full NIK or phone (UU 27/2022): who, when,
-- which request, why. Append-only; admins read it.
CREATE TABLE audit_log (
    id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at_ms    BIGINT NOT NULL,
    username TEXT COLLATE "C" NOT NULL,
    role     TEXT COLLATE "C" NOT NULL,
    action   TEXT COLLATE "C" NOT NULL,
    doc_id   TEXT COLLATE "C",
    reason   TEXT COLLATE "C" NOT NULL,
    subject  TEXT COLLATE "C"
);

CREATE TABLE enroll_codes (
    code_hash     TEXT COLLATE "C" PRIMARY KEY,
    kelurahan     TEXT COLLATE "C" NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT,
    kiosk_id      TEXT COLLATE "C" REFERENCES kiosks (id)
);

CREATE TABLE docs (
    doc_id      TEXT COLLATE "C" PRIMARY KEY,
    doc_type    TEXT COLLATE "C" NOT NULL CHECK (doc_type IN ('request', 'catalog', 'roster')),
    kelurahan   TEXT COLLATE "C",
    snapshot    BYTEA,
    chunk_count BIGINT NOT NULL DEFAULT 0,
    last_seq    BIGINT NOT NULL,
    heads       BYTEA
);
CREATE INDEX docs_by_kelurahan_seq ON docs (kelurahan, last_seq);
CREATE INDEX docs_by_type_seq ON docs (doc_type, last_seq);

CREATE TABLE chunks (
    id     BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    doc_id TEXT COLLATE "C" NOT NULL REFERENCES docs (doc_id),
    data   BYTEA NOT NULL
);
CREATE INDEX chunks_by_doc ON chunks (doc_id, id);

CREATE TABLE kiosk_heads (
    kiosk_id TEXT COLLATE "C" NOT NULL,
    doc_id   TEXT COLLATE "C" NOT NULL,
    heads    BYTEA NOT NULL,
    PRIMARY KEY (kiosk_id, doc_id)
);

CREATE TABLE kiosk_marks (
    kiosk_id   TEXT COLLATE "C" PRIMARY KEY,
    through    BIGINT,
    pull_given BIGINT
);

CREATE TABLE kiosk_sent (
    kiosk_id TEXT COLLATE "C" NOT NULL,
    doc_id   TEXT COLLATE "C" NOT NULL,
    seq      BIGINT NOT NULL,
    heads    BYTEA NOT NULL,
    PRIMARY KEY (kiosk_id, doc_id)
);

CREATE TABLE change_receipts (
    hash        BYTEA PRIMARY KEY,
    doc_id      TEXT COLLATE "C" NOT NULL,
    kiosk_id    TEXT COLLATE "C",
    received_ms BIGINT NOT NULL
);

CREATE TABLE requests (
    doc_id        TEXT COLLATE "C" PRIMARY KEY,
    ticket        TEXT COLLATE "C" NOT NULL,
    kelurahan     TEXT COLLATE "C" NOT NULL,
    kecamatan     TEXT COLLATE "C" NOT NULL,
    kiosk         TEXT COLLATE "C" NOT NULL,
    service       TEXT COLLATE "C" NOT NULL,
    status        TEXT COLLATE "C" NOT NULL,
    conflict      BIGINT NOT NULL,
    agency        TEXT COLLATE "C",
    rated         BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    -- When it was finished (completed, rejected, cancelled; not in
    -- conflict), bounded by when the server received the document, and the
    -- working time from filing to that moment (shared::sla).
    finished_at_ms BIGINT,
    working_ms     BIGINT,
    -- Masked by default (PDP), for exports: `127101••••••0003`, `S*** N***`.
    nik_masked     TEXT COLLATE "C",
    name_masked    TEXT COLLATE "C"
);
CREATE INDEX requests_by_created ON requests (created_at_ms);
CREATE INDEX requests_by_finished ON requests (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
-- The city-wide time-lost page reads a period's finished requests from this
-- alone, without touching the table.
CREATE INDEX requests_finished_cover ON requests (finished_at_ms, kelurahan, service, working_ms, doc_id)
    WHERE finished_at_ms IS NOT NULL;
CREATE INDEX requests_open ON requests (kelurahan) WHERE finished_at_ms IS NULL;
CREATE INDEX requests_in_conflict ON requests (kelurahan) WHERE conflict = 1;
CREATE INDEX change_receipts_by_doc ON change_receipts (doc_id, received_ms);
CREATE INDEX requests_by_kelurahan ON requests (kelurahan, created_at_ms);
CREATE INDEX requests_by_status ON requests (status, created_at_ms);

CREATE TABLE events (
    doc_id      TEXT COLLATE "C" NOT NULL,
    event_id    TEXT COLLATE "C" NOT NULL,
    kelurahan   TEXT COLLATE "C" NOT NULL,
    hlc         TEXT COLLATE "C" NOT NULL,
    node        TEXT COLLATE "C" NOT NULL,
    at_ms       BIGINT NOT NULL,
    by_who      TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    from_status TEXT COLLATE "C",
    to_status   TEXT COLLATE "C" NOT NULL,
    note        TEXT COLLATE "C",
    agency      TEXT COLLATE "C",
    PRIMARY KEY (doc_id, event_id)
);

CREATE TABLE ratings (
    doc_id    TEXT COLLATE "C" NOT NULL,
    rating_id TEXT COLLATE "C" NOT NULL,
    kelurahan TEXT COLLATE "C" NOT NULL,
    at_ms     BIGINT NOT NULL,
    u1 BIGINT NOT NULL, u2 BIGINT NOT NULL, u3 BIGINT NOT NULL,
    u4 BIGINT NOT NULL, u5 BIGINT NOT NULL, u6 BIGINT NOT NULL,
    u7 BIGINT NOT NULL, u8 BIGINT NOT NULL, u9 BIGINT NOT NULL,
    comment   TEXT COLLATE "C",
    PRIMARY KEY (doc_id, rating_id)
);

CREATE TABLE trainings (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    nip         TEXT COLLATE "C" NOT NULL,
    day         TEXT COLLATE "C" NOT NULL,             -- YYYY-MM-DD, local
    topic       TEXT COLLATE "C" NOT NULL,
    provider    TEXT COLLATE "C" NOT NULL,
    recorded_by TEXT COLLATE "C" NOT NULL,
    recorded_ms BIGINT NOT NULL
);
CREATE INDEX trainings_by_nip ON trainings (nip, day);
CREATE INDEX events_by_who ON events (by_who, at_ms);

CREATE TABLE service_sla (
    code     TEXT COLLATE "C" PRIMARY KEY,
    sla_days BIGINT NOT NULL
);

-- The catalog's holidays (YYYY-MM-DD), which working time skips.
CREATE TABLE holidays (
    day  TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL
);

CREATE TABLE monthly (
    month       BIGINT NOT NULL,
    kelurahan   TEXT COLLATE "C" NOT NULL,
    service     TEXT COLLATE "C" NOT NULL,
    filed       BIGINT NOT NULL DEFAULT 0,
    finished    BIGINT NOT NULL DEFAULT 0,
    within_sla  BIGINT NOT NULL DEFAULT 0,
    respondents BIGINT NOT NULL DEFAULT 0,
    u1 BIGINT NOT NULL DEFAULT 0, u2 BIGINT NOT NULL DEFAULT 0, u3 BIGINT NOT NULL DEFAULT 0,
    u4 BIGINT NOT NULL DEFAULT 0, u5 BIGINT NOT NULL DEFAULT 0, u6 BIGINT NOT NULL DEFAULT 0,
    u7 BIGINT NOT NULL DEFAULT 0, u8 BIGINT NOT NULL DEFAULT 0, u9 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (month, kelurahan, service)
);

CREATE TABLE daily_filed (
    day       BIGINT NOT NULL,
    kelurahan TEXT COLLATE "C" NOT NULL,
    filed     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, kelurahan)
);

CREATE TABLE request_steps (
    doc_id     TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    month      BIGINT NOT NULL,
    service    TEXT COLLATE "C" NOT NULL,
    status     TEXT COLLATE "C" NOT NULL,
    agency     TEXT COLLATE "C" NOT NULL,
    working_ms BIGINT NOT NULL,
    bucket     BIGINT NOT NULL,
    PRIMARY KEY (doc_id, seq)
);

CREATE TABLE step_hist (
    month   BIGINT NOT NULL,
    service TEXT COLLATE "C" NOT NULL,
    status  TEXT COLLATE "C" NOT NULL,
    agency  TEXT COLLATE "C" NOT NULL,
    bucket  BIGINT NOT NULL,
    n       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (month, service, status, agency, bucket)
);

CREATE TABLE request_staff (
    doc_id     TEXT COLLATE "C" NOT NULL,
    nip        TEXT COLLATE "C" NOT NULL,
    kelurahan  TEXT COLLATE "C" NOT NULL,
    last_at_ms BIGINT NOT NULL,
    finished   BIGINT NOT NULL DEFAULT 0,
    working_ms BIGINT,
    within_sla BIGINT NOT NULL DEFAULT 0,
    u6         BIGINT,
    u7         BIGINT,
    PRIMARY KEY (doc_id, nip)
);
CREATE INDEX request_staff_by_time ON request_staff (last_at_ms);
CREATE INDEX request_staff_by_nip ON request_staff (nip, last_at_ms);
"#;

fn v1(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(V1)
}

/// Version 2: the tables SQLite's version 2 adds, then the cursor
/// partitions (on a new database: a counter per kelurahan, at 0).
const V2: &str = r#"
CREATE TABLE IF NOT EXISTS schema_migrations (
    version       BIGINT PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL,
    applied_at_ms BIGINT NOT NULL
);
CREATE TABLE seq_counters (
    kelurahan TEXT COLLATE "C" PRIMARY KEY,
    seq       BIGINT NOT NULL
);
CREATE TABLE doc_seq (
    kelurahan TEXT COLLATE "C" NOT NULL,
    doc_id    TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (kelurahan, doc_id)
);
CREATE INDEX doc_seq_by_seq ON doc_seq (kelurahan, seq);
CREATE TABLE login_failures (
    key             TEXT COLLATE "C" PRIMARY KEY,
    window_start_ms BIGINT NOT NULL,
    failures        BIGINT NOT NULL
);
CREATE TABLE login_turns (
    key     TEXT COLLATE "C" PRIMARY KEY,
    next_ms BIGINT NOT NULL
);
CREATE TABLE login_known (
    pair     TEXT COLLATE "C" PRIMARY KEY,
    until_ms BIGINT NOT NULL
);
"#;

fn v2(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(V2)?;
    // No kiosk ever held a cursor of a PostgreSQL store before version 2.
    super::schema::partition_existing(db, 0)
}

/// Version 4: service time measured per party in the offices' service
/// hours, with the clock paused while a request waits for the citizen
/// (`requests` gains the citizen's and the agencies' time, when the file
/// became complete, and when a request was cancelled; `monthly` counts
/// rejected and cancelled requests apart; `request_agency` and
/// `agency_monthly` judge each agency against its own SLA; `agency_sla`
/// and `service_hours` mirror the catalog). Every request is projected
/// again from its document and the rollups computed again, since working
/// time now means something else.
fn v4(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        r#"ALTER TABLE requests ADD COLUMN IF NOT EXISTS citizen_ms BIGINT;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS agency_ms BIGINT;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS complete_at_ms BIGINT;
ALTER TABLE requests ADD COLUMN IF NOT EXISTS cancelled_at_ms BIGINT;
DROP INDEX IF EXISTS requests_open;
CREATE INDEX requests_open ON requests (kelurahan) WHERE finished_at_ms IS NULL AND cancelled_at_ms IS NULL;
ALTER TABLE monthly ADD COLUMN IF NOT EXISTS rejected BIGINT NOT NULL DEFAULT 0;
ALTER TABLE monthly ADD COLUMN IF NOT EXISTS cancelled BIGINT NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS agency_sla (
    service  TEXT COLLATE "C" NOT NULL,
    agency   TEXT COLLATE "C" NOT NULL,
    sla_days BIGINT NOT NULL,
    PRIMARY KEY (service, agency)
);
CREATE TABLE IF NOT EXISTS service_hours (
    kelurahan TEXT COLLATE "C" PRIMARY KEY,
    spec      TEXT COLLATE "C" NOT NULL
);
CREATE TABLE IF NOT EXISTS request_agency (
    doc_id     TEXT COLLATE "C" NOT NULL,
    agency     TEXT COLLATE "C" NOT NULL,
    kelurahan  TEXT COLLATE "C" NOT NULL,
    service    TEXT COLLATE "C" NOT NULL,
    month      BIGINT NOT NULL,
    working_ms BIGINT NOT NULL,
    sla_days   BIGINT,
    PRIMARY KEY (doc_id, agency)
);
CREATE TABLE IF NOT EXISTS agency_monthly (
    month      BIGINT NOT NULL,
    agency     TEXT COLLATE "C" NOT NULL,
    kelurahan  TEXT COLLATE "C" NOT NULL,
    service    TEXT COLLATE "C" NOT NULL,
    finished   BIGINT NOT NULL DEFAULT 0,
    judged     BIGINT NOT NULL DEFAULT 0,
    within_sla BIGINT NOT NULL DEFAULT 0,
    working_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (month, agency, kelurahan, service)
);"#,
    )?;
    // Every request is projected again once the store is at the latest
    // version (`migrate::run`): this build's projection writes the tables
    // of that version, not of this one.
    super::meta::meta_set(db, super::migrate::REPROJECT_PENDING, "1")
}

/// Version 3 (as SQLite's): the journey-time histogram per month and
/// kelurahan and staff work per month (both distributed by kelurahan),
/// and the index that finds the largest SLA overruns service by service.
/// Version 5: SQLite's `sqlite_v5` (store/schema.rs), the same columns
/// and checks.
fn v5(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        r#"ALTER TABLE trainings ADD COLUMN IF NOT EXISTS hours BIGINT
               CHECK (hours IS NULL OR (hours >= 1 AND hours <= 200));
           ALTER TABLE trainings ADD COLUMN IF NOT EXISTS competency TEXT COLLATE "C"
               CHECK (competency IS NULL OR competency IN ('pelayanan', 'komunikasi', 'penanganan_pengaduan'));
           CREATE INDEX IF NOT EXISTS trainings_by_day ON trainings (day, nip);"#,
    )
}

/// Version 6, as SQLite's (`schema::sqlite_v6`): the profile columns of
/// `ratings`, the `skm_profile` rollup (per kelurahan) and the follow-up
/// plans `skm_followups` (city-wide, on the coordinator).
fn v6(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        r#"ALTER TABLE ratings ADD COLUMN IF NOT EXISTS age_band TEXT COLLATE "C";
           ALTER TABLE ratings ADD COLUMN IF NOT EXISTS sex TEXT COLLATE "C";
           ALTER TABLE ratings ADD COLUMN IF NOT EXISTS education TEXT COLLATE "C";
           ALTER TABLE ratings ADD COLUMN IF NOT EXISTS occupation TEXT COLLATE "C";
           CREATE TABLE IF NOT EXISTS skm_profile (
               month     BIGINT NOT NULL,
               kelurahan TEXT COLLATE "C" NOT NULL,
               dimension TEXT COLLATE "C" NOT NULL,
               code      TEXT COLLATE "C" NOT NULL,
               n         BIGINT NOT NULL DEFAULT 0,
               PRIMARY KEY (month, kelurahan, dimension, code)
           );
           CREATE TABLE IF NOT EXISTS skm_followups (
               id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
               kelurahan     TEXT COLLATE "C",
               period        TEXT COLLATE "C" NOT NULL,
               month_from    BIGINT NOT NULL,
               month_to      BIGINT NOT NULL,
               element       TEXT COLLATE "C" NOT NULL
                   CHECK (element IN ('U1', 'U2', 'U3', 'U4', 'U5', 'U6', 'U7', 'U8', 'U9')),
               action        TEXT COLLATE "C" NOT NULL,
               responsible   TEXT COLLATE "C" NOT NULL,
               target_day    TEXT COLLATE "C" NOT NULL,
               status        TEXT COLLATE "C" NOT NULL CHECK (status IN ('direncanakan', 'berjalan', 'selesai')),
               progress_note TEXT COLLATE "C",
               created_by    TEXT COLLATE "C" NOT NULL,
               created_ms    BIGINT NOT NULL,
               updated_by    TEXT COLLATE "C" NOT NULL,
               updated_ms    BIGINT NOT NULL
           );
           CREATE INDEX IF NOT EXISTS skm_followups_by_period ON skm_followups (month_to, month_from);"#,
    )
}

/// Version 7: as SQLite's (`schema::sqlite_v7`).
fn v7(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        r#"ALTER TABLE users ADD COLUMN IF NOT EXISTS staff_id TEXT COLLATE "C";
           ALTER TABLE docs DROP CONSTRAINT IF EXISTS docs_doc_type_check;
           ALTER TABLE docs ADD CONSTRAINT docs_doc_type_check
               CHECK (doc_type IN ('request', 'catalog', 'roster', 'complaint'));"#,
    )?;
    db.batch(super::complaints::POSTGRES_TABLE)?;
    super::complaints::reproject_all(db)?;
    Ok(())
}

/// `users.region` (see the SQLite migration of the same number).
fn v8(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(r#"ALTER TABLE users ADD COLUMN IF NOT EXISTS region TEXT COLLATE "C";"#)
}

/// `requests_by_ticket` (see the SQLite migration of the same number).
fn v9(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(super::schema::REQUESTS_BY_TICKET)
}

/// `docs_to_compact` (see the SQLite migration of the same number).
fn v11(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(super::schema::DOCS_TO_COMPACT)
}

/// `doc_receipts` (see the SQLite migration of the same number).
fn v12(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        r#"CREATE TABLE IF NOT EXISTS doc_receipts (
               doc_id   TEXT COLLATE "C" PRIMARY KEY,
               first_ms BIGINT NOT NULL,
               last_ms  BIGINT NOT NULL
           );"#,
    )?;
    let old: Option<i64> = super::sql::scalar(
        db,
        "SELECT count(*) FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_name = 'change_receipts'",
        crate::args![],
    )?;
    if old.unwrap_or(0) > 0 {
        db.batch(super::schema::DOC_RECEIPTS_FOLD)?;
    }
    Ok(())
}

/// `events_by_who` dropped (see the SQLite migration of the same number).
fn v13(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(super::schema::DROP_EVENTS_BY_WHO)
}

/// `events` numbered in causal order (see the SQLite migration of the
/// same number).
fn v14(db: &mut dyn Sql) -> Result<(), StoreError> {
    // Gone since version 18 (its rows packed on `requests`): nothing to do.
    if !super::projection::table_exists(db, "events")? {
        return Ok(());
    }
    if has_column(db, "events", "ord")? {
        return Ok(());
    }
    db.batch(
        r#"CREATE TABLE events_v14 (
               doc_id    TEXT COLLATE "C" NOT NULL,
               ord       BIGINT NOT NULL,
               kelurahan TEXT COLLATE "C" NOT NULL,
               at_ms     BIGINT NOT NULL,
               by_who    TEXT COLLATE "C" NOT NULL,
               kind      TEXT COLLATE "C" NOT NULL,
               to_status TEXT COLLATE "C" NOT NULL,
               agency    TEXT COLLATE "C",
               PRIMARY KEY (doc_id, ord)
           );"#,
    )?;
    db.batch(super::schema::EVENTS_V14_COPY)?;
    db.batch("DROP TABLE events; ALTER TABLE events_v14 RENAME TO events; ALTER INDEX events_v14_pkey RENAME TO events_pkey;")
}

/// Nothing: SQLite's version 15 changes how `ratings` is stored, which
/// PostgreSQL does not choose (a heap and its key's index, as before).
fn v15(_db: &mut dyn Sql) -> Result<(), StoreError> {
    Ok(())
}

/// A document's pull number and receipts on its own row (see the SQLite
/// migration of the same number).
fn v16(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        "ALTER TABLE docs ADD COLUMN IF NOT EXISTS first_received_ms BIGINT;
         ALTER TABLE docs ADD COLUMN IF NOT EXISTS last_received_ms BIGINT;",
    )?;
    db.batch(super::schema::DOCS_CARRY_SEQ_AND_RECEIPTS)
}

/// A request's step times packed on its row (see the SQLite migration of
/// the same number).
fn v17(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch("ALTER TABLE requests ADD COLUMN IF NOT EXISTS steps BYTEA;")?;
    super::projection::fold_request_steps(db)
}

/// Whether `table` has `column` (a step that reshapes a table is done).
fn has_column(db: &mut dyn Sql, table: &str, column: &str) -> Result<bool, StoreError> {
    let n: Option<i64> = super::sql::scalar(
        db,
        "SELECT count(*) FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?",
        crate::args![table, column],
    )?;
    Ok(n.unwrap_or(0) > 0)
}

/// A request's events packed on its row, handoffs by agency (see the
/// SQLite migration of the same number).
fn v18(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        r#"ALTER TABLE requests ADD COLUMN IF NOT EXISTS journey BYTEA;
           CREATE TABLE IF NOT EXISTS request_handoffs (
               agency TEXT COLLATE "C" NOT NULL,
               doc_id TEXT COLLATE "C" NOT NULL,
               PRIMARY KEY (agency, doc_id)
           );"#,
    )?;
    super::projection::fold_events(db)
}

/// Leaner indexes (see the SQLite migration of the same number).
fn v19(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(super::schema::LEANER_INDEXES)
}

/// `kiosk_heads` keyed by the kiosk's code (see the SQLite migration of
/// the same number).
fn v20(db: &mut dyn Sql) -> Result<(), StoreError> {
    if has_column(db, "kiosk_heads", "kiosk")? {
        return Ok(());
    }
    db.batch(
        r#"CREATE TABLE kiosk_heads_v20 (
               kiosk  TEXT COLLATE "C" NOT NULL,
               doc_id TEXT COLLATE "C" NOT NULL,
               heads  BYTEA NOT NULL,
               PRIMARY KEY (kiosk, doc_id)
           );"#,
    )?;
    db.batch(super::schema::KIOSK_HEADS_BY_CODE)?;
    db.batch("ALTER TABLE kiosk_heads_v20 RENAME TO kiosk_heads; ALTER INDEX kiosk_heads_v20_pkey RENAME TO kiosk_heads_pkey;")
}

/// The index of SLA overruns without the id (see the SQLite migration of
/// the same number).
fn v21(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(super::schema::SERVICE_WORKING_WITHOUT_ID)
}

/// Masked NIK and name kept short (see the SQLite migration of the same
/// number).
fn v22(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(super::schema::MASKS_KEPT_SHORT)
}

/// No `ratings.kelurahan`, and the covering index of finished requests
/// without the id (see the SQLite migration of the same number).
fn v23(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        "ALTER TABLE ratings DROP COLUMN IF EXISTS kelurahan;
         ALTER TABLE requests DROP COLUMN IF EXISTS kecamatan;
         ALTER TABLE requests DROP COLUMN IF EXISTS agency_ms;",
    )?;
    db.batch(super::schema::FINISHED_COVER_WITHOUT_ID)
}

/// Nothing: SQLite's version 24 changes how `docs` is stored, which
/// PostgreSQL's tables (heaps with their indexes) have no counterpart of.
fn v24(_: &mut dyn Sql) -> Result<(), StoreError> {
    Ok(())
}

/// `kiosk_actors` (see the SQLite migration of the same number).
fn v10(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        r#"CREATE TABLE IF NOT EXISTS kiosk_actors (
               actor       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
               kiosk_id    TEXT COLLATE "C" NOT NULL REFERENCES kiosks (id),
               added_at_ms BIGINT NOT NULL
           );
           CREATE INDEX IF NOT EXISTS kiosk_actors_by_kiosk ON kiosk_actors (kiosk_id);
           INSERT INTO kiosk_actors (actor, kiosk_id, added_at_ms)
               SELECT actor, id, enrolled_at_ms FROM kiosks
               ON CONFLICT (actor) DO NOTHING;"#,
    )
}

fn v3(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        r#"CREATE TABLE IF NOT EXISTS journey_hist (
               month     BIGINT NOT NULL,
               kelurahan TEXT COLLATE "C" NOT NULL,
               bucket    BIGINT NOT NULL,
               n         BIGINT NOT NULL DEFAULT 0,
               PRIMARY KEY (month, kelurahan, bucket)
           );
           CREATE INDEX IF NOT EXISTS requests_service_working
               ON requests (service, working_ms, finished_at_ms, doc_id) WHERE finished_at_ms IS NOT NULL;
           CREATE TABLE IF NOT EXISTS staff_monthly (
               month      BIGINT NOT NULL,
               kelurahan  TEXT COLLATE "C" NOT NULL,
               nip        TEXT COLLATE "C" NOT NULL,
               bucket     BIGINT NOT NULL,
               handled    BIGINT NOT NULL DEFAULT 0,
               within_sla BIGINT NOT NULL DEFAULT 0,
               rated      BIGINT NOT NULL DEFAULT 0,
               u6         BIGINT NOT NULL DEFAULT 0,
               u7         BIGINT NOT NULL DEFAULT 0,
               PRIMARY KEY (month, kelurahan, nip, bucket)
           );"#,
    )?;
    super::projection::rebuild_v3_rollups(db)
}
