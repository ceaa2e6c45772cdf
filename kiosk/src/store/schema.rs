//! The kiosk database schema and connection settings.
//!
//! Every document is a snapshot (`docs.snapshot`, an Automerge `save()`)
//! plus appended incremental chunks (`chunks`), folded back into the
//! snapshot by compaction. `change_log` is the local, monotonic change
//! sequence: one row per committed write, never reused (AUTOINCREMENT), the
//! cursor that sync will advance. The query tables (`requests`, `staff`,
//! `services`) are projections rewritten in the same transaction as the
//! document they come from, so they can never disagree with it after a
//! crash. `doc_sync` holds, per document, the heads the server is known
//! to have (the base of the next push) and whether the document is in the
//! Automerge-sync-protocol fallback. Documents pulled from the server get
//! `last_seq = 0`: only local writes make a document pending.

use rusqlite::Connection;

/// 2: complaint documents (`docs.doc_type` takes `complaint`) and their
/// `complaints` projection (issue 16).
pub const SCHEMA_VERSION: i64 = 2;

/// The document types `docs` takes (its CHECK constraint; a new one means
/// rebuilding the table: `migrate`).
const DOCS_TABLE: &str = "(
    doc_id      TEXT PRIMARY KEY,
    doc_type    TEXT NOT NULL CHECK (doc_type IN ('request', 'catalog', 'roster', 'complaint')),
    snapshot    BLOB,
    chunk_count INTEGER NOT NULL DEFAULT 0,
    last_seq    INTEGER NOT NULL,
    -- The document's heads (32-byte hashes, concatenated) after its last
    -- write, so a push of a document the server has none of sends the
    -- stored bytes without loading them. NULL: unknown (a row from before
    -- the column); the push loads the document then.
    heads       BLOB
) STRICT";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS docs_by_seq ON docs (last_seq);

CREATE TABLE IF NOT EXISTS chunks (
    id     INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES docs (doc_id),
    data   BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (doc_id, id);

CREATE TABLE IF NOT EXISTS change_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    at_ms  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS requests (
    doc_id         TEXT PRIMARY KEY REFERENCES docs (doc_id),
    ticket         TEXT NOT NULL,
    ticket_day     TEXT NOT NULL,
    service        TEXT NOT NULL,
    status         TEXT NOT NULL,
    conflict       INTEGER NOT NULL,
    agency         TEXT,
    applicant_name TEXT NOT NULL,
    nik_masked     TEXT NOT NULL,
    rated          INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    UNIQUE (ticket_day, ticket)
) STRICT;
CREATE INDEX IF NOT EXISTS requests_by_ticket ON requests (ticket, created_at_ms);
CREATE INDEX IF NOT EXISTS requests_by_status ON requests (status, created_at_ms);
CREATE INDEX IF NOT EXISTS requests_by_created ON requests (created_at_ms);

-- Complaints (pengaduan, issue 16) filed here or pulled for this office:
-- what the status check and the console need, nothing personal (the
-- complainant stays in the document). `ticket` is `ADU-…`; its number
-- comes from `ticket_counters`, shared with requests.
CREATE TABLE IF NOT EXISTS complaints (
    doc_id        TEXT PRIMARY KEY REFERENCES docs (doc_id),
    ticket        TEXT NOT NULL,
    ticket_day    TEXT NOT NULL,
    about         TEXT NOT NULL,
    anonymous     INTEGER NOT NULL,
    state         TEXT NOT NULL,
    class         TEXT,
    flagged       INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (ticket_day, ticket)
) STRICT;
CREATE INDEX IF NOT EXISTS complaints_by_ticket ON complaints (ticket, created_at_ms);
CREATE INDEX IF NOT EXISTS complaints_by_created ON complaints (created_at_ms);

CREATE TABLE IF NOT EXISTS ticket_counters (
    day  TEXT PRIMARY KEY,
    last INTEGER NOT NULL
) STRICT;

-- The first answer to each idempotency key, kept for retries: one day,
-- and never past the eviction of the request it names (`doc_id`). The
-- fingerprint is an HMAC under `meta.fingerprint_key`, never a bare hash
-- of what was typed.
CREATE TABLE IF NOT EXISTS idempotency (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    response    TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    doc_id      TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS idempotency_by_doc ON idempotency (doc_id);
CREATE INDEX IF NOT EXISTS idempotency_by_time ON idempotency (at_ms);

CREATE TABLE IF NOT EXISTS staff (
    staff_id      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    active        INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS services (
    code   TEXT PRIMARY KEY,
    json   TEXT NOT NULL,
    active INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS doc_sync (
    doc_id       TEXT PRIMARY KEY REFERENCES docs (doc_id),
    server_heads BLOB NOT NULL,
    fallback     INTEGER NOT NULL DEFAULT 0,
    fallback_msg BLOB
) STRICT;

-- Documents the server refused (the kiosk stops pushing them until staff
-- retry): shown on /healthz instead of being retried forever.
CREATE TABLE IF NOT EXISTS quarantine (
    doc_id  TEXT PRIMARY KEY REFERENCES docs (doc_id),
    code    TEXT NOT NULL,
    message TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
) STRICT;

-- Requests whose personal data this kiosk has evicted (finished, held by
-- the server, older than the retention period): the document is gone,
-- the projection row stays without name or NIK.
CREATE TABLE IF NOT EXISTS evicted (
    doc_id TEXT PRIMARY KEY REFERENCES docs (doc_id),
    at_ms  INTEGER NOT NULL
) STRICT;

-- Which kiosk wrote with which Automerge actor (an event's `node`), learnt
-- from the `create` event of every request projected here (the filing
-- kiosk's actor and code): the history names the other kiosk of the
-- office instead of taking its steps for central ones.
CREATE TABLE IF NOT EXISTS kiosk_nodes (
    node  TEXT PRIMARY KEY,
    kiosk TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS staff_sessions (
    token_hash    TEXT PRIMARY KEY,
    staff_id      TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
"#;

/// Settings every write connection gets: `loket_node::sqlite`'s (WAL,
/// `synchronous=FULL`: a kiosk loses power often, and a ticket handed to a
/// citizen must survive it; foreign keys; the busy timeout), and
/// `secure_delete`: deleted content is overwritten, not left in free
/// pages, so evicted personal data does not linger in the file.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    loket_node::sqlite::configure_writer(conn)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(())
}

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    // `doc_sync.fallback_msg` came after the first release of this table.
    let has_doc_sync: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'doc_sync'", [], |r| {
            r.get(0)
        })?;
    if has_doc_sync {
        let has_msg: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('doc_sync') WHERE name = 'fallback_msg'",
            [],
            |r| r.get(0),
        )?;
        if !has_msg {
            conn.execute_batch("ALTER TABLE doc_sync ADD COLUMN fallback_msg BLOB")?;
        }
    }
    // Idempotency rows from before `doc_id` hold bare SHA-256 hashes of
    // name, NIK and phone, which give the NIK back in well under a second:
    // they are dropped (a retry of a form that old files anew).
    let has_idempotency: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'idempotency'", [], |r| {
            r.get(0)
        })?;
    if has_idempotency {
        let has_doc: bool =
            conn.query_row("SELECT count(*) FROM pragma_table_info('idempotency') WHERE name = 'doc_id'", [], |r| {
                r.get(0)
            })?;
        if !has_doc {
            conn.execute_batch("DELETE FROM idempotency; ALTER TABLE idempotency ADD COLUMN doc_id TEXT")?;
        }
    }
    widen_doc_types(conn)?;
    let has_heads: bool =
        conn.query_row("SELECT count(*) FROM pragma_table_info('docs') WHERE name = 'heads'", [], |r| r.get(0))?;
    if !has_heads {
        conn.execute_batch("ALTER TABLE docs ADD COLUMN heads BLOB")?;
    }
    conn.execute_batch(SCHEMA)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value
             WHERE CAST(value AS INTEGER) < CAST(excluded.value AS INTEGER)",
        [SCHEMA_VERSION.to_string()],
    )?;
    Ok(())
}

/// Creates `docs`, or rebuilds one whose CHECK predates a document type
/// (schema 1 had no `complaint`). SQLite cannot alter a CHECK: the table
/// is copied into a new one that takes its name, in one transaction,
/// with foreign keys off meanwhile (the tables that reference `docs` by
/// name then reference the new one) and checked before the commit. Rowids
/// are kept: the newest catalog is the one with the highest.
fn widen_doc_types(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::OptionalExtension;
    let sql: Option<String> = conn
        .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'docs'", [], |r| r.get(0))
        .optional()?;
    match sql {
        None => return conn.execute_batch(&format!("CREATE TABLE docs {DOCS_TABLE};")),
        Some(sql) if sql.contains("'complaint'") => return Ok(()),
        Some(_) => {}
    }
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let rebuilt = (|| {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             CREATE TABLE docs_widened {DOCS_TABLE};
             INSERT INTO docs_widened (rowid, doc_id, doc_type, snapshot, chunk_count, last_seq)
                 SELECT rowid, doc_id, doc_type, snapshot, chunk_count, last_seq FROM docs;
             DROP TABLE docs;
             ALTER TABLE docs_widened RENAME TO docs;"
        ))?;
        let dangling: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
        if dangling != 0 {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                Some(format!("{dangling} rows lost their document while docs was rebuilt")),
            ));
        }
        conn.execute_batch("COMMIT")
    })();
    if rebuilt.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    rebuilt
}
