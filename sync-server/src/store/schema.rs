//! The infrastructure tables and connection settings. The document tables
//! are `docs.rs`'s; both are created in one migration transaction, so a
//! database is never half-migrated.
//!
//! Secrets are stored only as SHA-256 (session tokens, kiosk secrets,
//! enrollment codes) or argon2id (passwords): a copied database holds
//! nothing that logs in.

use rusqlite::{Connection, TransactionBehavior};

use super::{BUSY_TIMEOUT, StoreError};

/// Bumped whenever a migration step is added. A database written by a
/// newer server is refused rather than guessed at.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'agency', 'supervisor')),
    agency        TEXT,
    kelurahan     TEXT,
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS user_sessions (
    token_hash    TEXT PRIMARY KEY,
    username      TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS user_sessions_by_expiry ON user_sessions (expires_at_ms);

CREATE TABLE IF NOT EXISTS kiosks (
    id                 TEXT PRIMARY KEY,
    code               TEXT NOT NULL UNIQUE,
    kelurahan          TEXT NOT NULL,
    name               TEXT NOT NULL,
    token_hash         TEXT NOT NULL UNIQUE,
    actor              TEXT NOT NULL UNIQUE,
    revoked            INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    revoked_at_ms      INTEGER,
    enrolled_at_ms     INTEGER NOT NULL,
    last_seen_at_ms    INTEGER,
    last_sync_ok_at_ms INTEGER,
    version            TEXT,
    pending_known      INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS kiosks_by_kelurahan ON kiosks (kelurahan);

-- Every view of a citizen's full NIK or phone (UU 27/2022): who, when,
-- which request, why. Append-only; admins read it.
CREATE TABLE IF NOT EXISTS audit_log (
    id       INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    username TEXT NOT NULL,
    role     TEXT NOT NULL,
    action   TEXT NOT NULL,
    doc_id   TEXT,
    reason   TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS enroll_codes (
    code_hash     TEXT PRIMARY KEY,
    kelurahan     TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER,
    kiosk_id      TEXT REFERENCES kiosks (id)
) STRICT;
"#;

/// Settings every write connection gets.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}

/// Creates or upgrades every table in one transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = schema_version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Invalid(format!(
            "the database has schema version {found}, newer than this sync-server knows ({SCHEMA_VERSION}): \
             run a newer sync-server"
        )));
    }
    tx.execute_batch(SCHEMA)?;
    // `kiosks.next_token_hash` (credential rotation) came after the first release.
    let has_next: bool =
        tx.query_row("SELECT count(*) FROM pragma_table_info('kiosks') WHERE name = 'next_token_hash'", [], |r| {
            r.get(0)
        })?;
    if !has_next {
        tx.execute_batch("ALTER TABLE kiosks ADD COLUMN next_token_hash TEXT")?;
    }
    // Disabling users came later: when a user was disabled (NULL: not),
    // and whom an audited action was about (the user disabled).
    add_column(&tx, "users", "disabled_at_ms", "INTEGER")?;
    add_column(&tx, "audit_log", "subject", "TEXT")?;
    super::docs::migrate(&tx)?;
    if found < SCHEMA_VERSION {
        super::meta_set(&tx, "schema_version", &SCHEMA_VERSION.to_string())?;
    }
    tx.commit()?;
    Ok(())
}

/// Adds a nullable column to a table that lacks it (an upgrade).
fn add_column(conn: &Connection, table: &str, column: &str, kind: &str) -> Result<(), StoreError> {
    let has: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        rusqlite::params![table, column],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
    }
    Ok(())
}

/// The version recorded in `meta`, 0 for a new database.
fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(0);
    }
    match super::meta_get(conn, "schema_version")? {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| StoreError::Corrupt { what: "meta.schema_version".into(), reason: v }),
    }
}
