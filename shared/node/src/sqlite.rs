//! What both stores do to SQLite the same way: connection settings, a
//! database file only its owner can read, and the `meta` table's rows.
//!
//! Invariants:
//! - A write connection runs in WAL mode with `synchronous=FULL`: nothing
//!   is acknowledged before it is on disk, power cuts included; readers
//!   (a pool, or another process such as a second CLI command) work
//!   beside the writer. Foreign keys are enforced on every connection.
//! - Every connection waits [`BUSY_TIMEOUT`] for another writer before
//!   giving up with `SQLITE_BUSY`: bounded, never forever.
//! - A database made by [`create_private`] is mode 0600 from its first
//!   byte, and so are its `-wal` and `-shm` files (SQLite gives them the
//!   database file's mode): it holds personal data and credentials.
//! - `meta` is `(key TEXT PRIMARY KEY, value TEXT NOT NULL)` in each
//!   store's schema; a set replaces the value.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

/// How long a connection waits for another writer (this process or
/// another) before giving up with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements a connection keeps (`prepare_cached`). rusqlite's
/// default of 16 is fewer than one sync commit's projection uses, so the
/// cache thrashed and every statement was parsed again: 40 % of the
/// server's merge time (issue 17's profile). Each costs a few KB.
pub const STATEMENT_CACHE: usize = 256;

/// Settings every write connection gets: WAL, `synchronous=FULL`, foreign
/// keys, [`BUSY_TIMEOUT`], a [`STATEMENT_CACHE`]. A store adds its own
/// (the kiosk: `secure_delete`) after these.
pub fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Settings every read connection gets: [`BUSY_TIMEOUT`], foreign keys
/// (the journal mode is the file's, set by the writer), a
/// [`STATEMENT_CACHE`].
pub fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", "ON")
}

/// Makes the database file at `path` readable by its owner only (0600),
/// creating it empty first if missing, so it never exists with wider
/// permissions. Call before SQLite opens it. Does nothing off Unix.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The `meta` value under `key`, if any.
pub fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
}

/// Sets (inserts or replaces) the `meta` value under `key`.
pub fn meta_set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// Writes a consistent copy of the database `conn` reads into the new
/// file `out` (`VACUUM INTO`, in one read transaction: writers go on), made
/// 0600 before SQLite writes it, and synced. `out` must not exist.
pub fn snapshot_into(conn: &Connection, out: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::OpenOptionsExt;
    // VACUUM INTO wants a missing or empty file: an empty one, private.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let target = out.to_str().with_context(|| format!("{} is not UTF-8", out.display()))?;
    conn.execute("VACUUM INTO ?1", [target]).with_context(|| format!("copying the database into {}", out.display()))?;
    std::fs::File::open(out).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", out.display()))
}

/// SQLite's `quick_check` on `conn`'s database: the problems it finds
/// (none: an empty list).
pub fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(conn: &Connection, name: &str) -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
    }

    #[test]
    fn writers_get_wal_full_foreign_keys_and_a_busy_timeout_readers_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.db");
        let conn = Connection::open(&path).unwrap();
        configure_writer(&conn).unwrap();
        assert_eq!(pragma(&conn, "journal_mode"), "wal");
        assert_eq!(pragma(&conn, "synchronous"), "2", "FULL");
        assert_eq!(pragma(&conn, "foreign_keys"), "1");
        assert_eq!(pragma(&conn, "busy_timeout"), "5000");

        let reader = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        configure_reader(&reader).unwrap();
        assert_eq!(pragma(&reader, "journal_mode"), "wal", "the file's mode");
        assert_eq!(pragma(&reader, "foreign_keys"), "1");
        assert_eq!(pragma(&reader, "busy_timeout"), "5000");
    }

    #[test]
    fn meta_rows_are_set_replaced_and_read() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT").unwrap();
        assert_eq!(meta_get(&conn, "hlc").unwrap(), None);
        meta_set(&conn, "hlc", "1").unwrap();
        meta_set(&conn, "hlc", "2").unwrap();
        assert_eq!(meta_get(&conn, "hlc").unwrap().as_deref(), Some("2"));
    }

    #[cfg(unix)]
    #[test]
    fn a_private_database_and_its_wal_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.db");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

        create_private(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        let conn = Connection::open(&path).unwrap();
        configure_writer(&conn).unwrap();
        conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)").unwrap();
        meta_set(&conn, "k", "v").unwrap();
        for suffix in ["-wal", "-shm"] {
            let side = dir.path().join(format!("node.db{suffix}"));
            assert_eq!(mode(&side), 0o600, "{suffix}");
        }
        drop(conn);

        // An existing file keeps its content and is restricted too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_private(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        let conn = Connection::open(&path).unwrap();
        assert_eq!(meta_get(&conn, "k").unwrap().as_deref(), Some("v"));
    }
}
