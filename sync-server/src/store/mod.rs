//! The server's store: the tables every instance shares, behind one
//! handle ([`Db`]) whatever the engine: SQLite (one file, the embedded
//! default) or PostgreSQL (any number of instances on one database).
//!
//! The store's logic (documents and the pull cursor, projections and their
//! rollups, accounts, kiosks, meta, report queries) is written once over
//! [`sql::Sql`], the seam an engine implements; each module here is one
//! concern. Nothing above the store sees an engine type: callers get a
//! `&mut dyn Sql` inside [`Db::read`] / [`Db::write`] and call the
//! concern's functions with it, and every failure is a [`StoreError`].
//!
//! Every write is one transaction: committed when the closure returns
//! `Ok`, rolled back when it returns `Err` (or panics), durable before
//! `write` returns. Both block: async callers wrap them in `spawn_blocking`.

pub mod accounts;
pub mod compact;
pub mod complaints;
pub mod copy;
pub mod docs;
pub mod engine;
pub mod followups;
pub mod hot;
pub mod kiosks;
pub mod meta;
pub mod migrate;
pub mod postgres;
pub mod projection;
pub mod reports;
pub mod schema;
pub mod sql;
pub mod sqlite;

use std::path::Path;

use thiserror::Error;

// The clock and the random source are loket-node's; `store::now_ms` and
// `store::random_bytes` stay the paths the layers above use.
pub use loket_node::{now_ms, random_bytes};
pub use meta::{meta_get, meta_set};
pub use sql::{Dialect, Row, RowBatch, Sql, Value};

/// Failures of the store itself (disk, database, corrupt data): never the
/// client's fault, answered with 500/503 and logged. Engine errors arrive
/// as text: nothing above the store matches on an engine's error type.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The engine failed a statement (constraint, I/O, syntax).
    #[error("{0}")]
    Engine(String),
    /// No connection could be had in time (pool exhausted, database away).
    #[error("{0}")]
    Unavailable(String),
    /// Another writer held what this one needed for too long (SQLite's
    /// busy timeout, a PostgreSQL lock timeout or deadlock): try again.
    #[error("{0}")]
    Busy(String),
    #[error("{what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// Read connections when the caller does not say.
pub const READ_CONNECTIONS_DEFAULT: u32 = 4;

#[derive(Clone, Debug)]
enum Engine {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PgDb),
}

/// The server's database, whichever engine holds it, and the documents
/// this process merged last, kept open ([`hot::HotDocs`]). Cheap to clone
/// (clones share the cache).
#[derive(Clone, Debug)]
pub struct Db {
    engine: Engine,
    hot: std::sync::Arc<hot::HotDocs>,
}

impl Db {
    fn with(engine: Engine) -> Db {
        Db { engine, hot: std::sync::Arc::new(hot::HotDocs::new(hot::DEFAULT_BUDGET_BYTES)) }
    }

    /// The open documents this process keeps (issue 17).
    pub fn hot(&self) -> &hot::HotDocs {
        &self.hot
    }

    /// Opens (creating it if missing, file mode 0600) and migrates the
    /// SQLite database at `path`, with the default number of read
    /// connections.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        Db::open_with(path, READ_CONNECTIONS_DEFAULT)
    }

    /// [`Db::open`] with `read_connections` (1..=64) pooled readers.
    pub fn open_with(path: &Path, read_connections: u32) -> Result<Db, StoreError> {
        let db = Db::with(Engine::Sqlite(sqlite::SqliteDb::open(path, read_connections)?));
        migrate::run(&db)?;
        Ok(db)
    }

    /// [`Db::open_with`] without migrating (`sync-server migrate` reports
    /// what it does itself).
    pub fn open_unmigrated(path: &Path, read_connections: u32) -> Result<Db, StoreError> {
        Ok(Db::with(Engine::Sqlite(sqlite::SqliteDb::open(path, read_connections)?)))
    }

    /// Connects to the PostgreSQL database at `url` with a pool of
    /// `pool_size` (1..=64) connections and migrates it. Call it, and use
    /// the handle, from blocking threads only (the client runs a runtime of
    /// its own): see [`postgres`].
    pub fn connect(url: &str, pool_size: u32) -> Result<Db, StoreError> {
        let db = Db::connect_unmigrated(url, pool_size)?;
        migrate::run(&db)?;
        Ok(db)
    }

    /// [`Db::connect`] without migrating.
    pub fn connect_unmigrated(url: &str, pool_size: u32) -> Result<Db, StoreError> {
        Ok(Db::with(Engine::Postgres(postgres::PgDb::connect(url, pool_size)?)))
    }

    pub fn dialect(&self) -> Dialect {
        match &self.engine {
            Engine::Sqlite(_) => Dialect::Sqlite,
            Engine::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Where the data is, for logs (never a password).
    pub fn describe(&self) -> String {
        match &self.engine {
            Engine::Sqlite(db) => format!("sqlite:{}", db.path().display()),
            Engine::Postgres(db) => db.describe().to_owned(),
        }
    }

    /// Runs `f` in one transaction: commits if it returns `Ok`, rolls back
    /// if it returns `Err`. Blocks.
    ///
    /// The error type is the caller's, as long as a store failure converts
    /// into it; closures that only fail with [`StoreError`] may need
    /// `Ok::<_, StoreError>(..)` to pin it.
    pub fn write<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, E>) -> Result<T, E> {
        match &self.engine {
            Engine::Sqlite(db) => db.write(f),
            Engine::Postgres(db) => db.write(f),
        }
    }

    /// Runs `f` on a read-only connection, in one snapshot. Blocks until a
    /// connection is free (bounded).
    pub fn read<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, E>) -> Result<T, E> {
        match &self.engine {
            Engine::Sqlite(db) => db.read(f),
            Engine::Postgres(db) => db.read(f),
        }
    }

    /// Whether `sync-server init` completed on this database.
    pub fn is_initialised(&self) -> Result<bool, StoreError> {
        self.read(|c| Ok(meta_get(c, "initialised_at_ms")?.is_some()))
    }

    /// The SQLite engine, for tests and tools that must reach under the
    /// seam (`None` on PostgreSQL).
    pub fn sqlite(&self) -> Option<&sqlite::SqliteDb> {
        match &self.engine {
            Engine::Sqlite(db) => Some(db),
            Engine::Postgres(_) => None,
        }
    }
}

#[cfg(test)]
mod seam_tests;
#[cfg(test)]
pub(crate) mod tests;
