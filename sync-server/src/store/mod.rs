//! The server's SQLite store: one file (`DATA/server.db`), one write
//! connection behind a mutex, a small pool of read-only connections.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction: committed when the
//! closure returns `Ok`, rolled back when it returns `Err` (or panics), so a
//! refused request leaves nothing behind. `synchronous=FULL`: nothing is
//! acknowledged before it is on disk. WAL lets the read pool, and other
//! processes (`sync-server enroll-code` while the server runs), work beside
//! the writer; the busy timeout bounds how long either waits for the other.
//!
//! Both [`Db::write`] and [`Db::read`] block: async callers wrap them in
//! `spawn_blocking`.
//!
//! Tables: `schema.rs` (infrastructure: users, sessions, kiosks, enrollment
//! codes) and `docs.rs` (documents, change log, projections).

pub mod accounts;
pub mod docs;
pub mod engine;
pub mod kiosks;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use thiserror::Error;

/// Failures of the store itself (disk, database, corrupt data): never the
/// client's fault, answered with 500/503 and logged.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("{what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// How long a connection waits for another writer (this process or
/// another) before giving up with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections when the caller does not say.
pub const READ_CONNECTIONS_DEFAULT: u32 = 4;

/// The server's database. Cheap to clone: every clone shares the same
/// write connection and read pool.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating it if missing, file mode 0600) and migrates the
    /// database at `path`, with the default number of read connections.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        Db::open_with(path, READ_CONNECTIONS_DEFAULT)
    }

    /// [`Db::open`] with `read_connections` (1..=64) pooled readers.
    pub fn open_with(path: &Path, read_connections: u32) -> Result<Db, StoreError> {
        if !(1..=64).contains(&read_connections) {
            return Err(StoreError::Invalid(format!("read_connections must be 1..=64, not {read_connections}")));
        }
        let existed = path.exists();
        let mut conn = Connection::open(path)?;
        if !existed {
            restrict_permissions(path)?;
        }
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;

        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| {
                c.busy_timeout(BUSY_TIMEOUT)?;
                c.pragma_update(None, "foreign_keys", "ON")
            });
        let readers = r2d2::Pool::builder()
            .max_size(read_connections)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Db { inner: Arc::new(Inner { path: path.to_path_buf(), writer: Mutex::new(conn), readers }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the write
    /// connection: commits if it returns `Ok`, rolls back if it returns
    /// `Err`. Blocks (on the mutex, then on SQLite's write lock up to
    /// [`BUSY_TIMEOUT`]).
    ///
    /// The error type is the caller's, as long as a store failure converts
    /// into it; closures that only fail with [`StoreError`] may need
    /// `Ok::<_, StoreError>(..)` to pin it.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // A panic while the lock was held rolled its transaction back (the
        // transaction's drop), so the connection is still usable.
        let mut conn = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?;
        match f(&tx) {
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
    /// (bounded by the pool's connection timeout). Start a transaction in
    /// `f` when several reads must see one snapshot.
    pub fn read<T, E: From<StoreError>>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E> {
        let conn = self.inner.readers.get().map_err(StoreError::from)?;
        f(&conn)
    }

    /// Whether `sync-server init` completed on this database.
    pub fn is_initialised(&self) -> Result<bool, StoreError> {
        self.read(|c| Ok(meta_get(c, "initialised_at_ms")?.is_some()))
    }
}

/// The SQLite document engine: reads on the pool, commits on the writer.
impl engine::DocEngine for Db {
    fn load(&self, doc_id: &str) -> Result<Option<engine::StoredDoc>, StoreError> {
        self.read(|c| docs::load_raw(c, doc_id))
    }

    fn pull_candidates(
        &self,
        kiosk_id: &str,
        kelurahan: &loket_shared::KelurahanCode,
        after: u64,
        limit: usize,
    ) -> Result<Vec<engine::Candidate>, StoreError> {
        self.read(|c| docs::changed_since(c, kiosk_id, kelurahan, after, limit))
    }

    fn kiosk_marks(&self, kiosk_id: &str) -> Result<engine::KioskMarks, StoreError> {
        self.read(|c| docs::kiosk_marks(c, kiosk_id))
    }

    fn partner_actors(
        &self,
        kelurahan: &loket_shared::KelurahanCode,
        except_kiosk: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT actor FROM kiosks WHERE kelurahan = ?1 AND id != ?2")?;
            let rows = stmt.query_map([kelurahan.as_str(), except_kiosk], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn reference(
        &self,
        doc_type: loket_shared::sync::DocType,
        kelurahan: Option<&str>,
    ) -> Result<Option<engine::StoredDoc>, StoreError> {
        self.read(|c| match docs::reference_doc(c, doc_type, kelurahan)? {
            Some(id) => docs::load_raw(c, &id),
            None => Ok(None),
        })
    }

    fn commit(&self, commit: &engine::Commit) -> Result<engine::CommitOutcome, StoreError> {
        /// Why the transaction rolled back: a stale base is an answer, not a failure.
        enum Abort {
            Stale(Vec<String>),
            Store(StoreError),
        }
        impl From<StoreError> for Abort {
            fn from(e: StoreError) -> Abort {
                Abort::Store(e)
            }
        }
        let outcome = self.write(|tx| match docs::commit_tx(tx, commit)? {
            engine::CommitOutcome::Committed => Ok(()),
            engine::CommitOutcome::Stale(ids) => Err(Abort::Stale(ids)),
        });
        match outcome {
            Ok(()) => Ok(engine::CommitOutcome::Committed),
            Err(Abort::Stale(ids)) => Ok(engine::CommitOutcome::Stale(ids)),
            Err(Abort::Store(e)) => Err(e),
        }
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError::Invalid(format!("restricting {}: {e}", path.display())))
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// Milliseconds since the Unix epoch, by the server's clock.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // Without an OS random source there is nothing safe to do: no token,
    // key or code may be made from anything weaker.
    getrandom::fill(&mut buf).expect("the operating system's random source works");
    buf
}

pub fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
}

pub fn meta_set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
