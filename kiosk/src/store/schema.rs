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

/// The last of [`MIGRATIONS`]: 2 added complaint documents (`docs.doc_type`
/// takes `complaint`) and their `complaints` projection (issue 16); 3
/// `docs.heads` (issue 17).
pub const SCHEMA_VERSION: i64 = 3;

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
-- The documents compaction has to fold: only stores from before documents
-- were stored whole have any, so this stays empty and the compaction
-- that looks every 30 s no longer reads every document to find none.
-- An index only (made at open, no schema version): an older release
-- opens the store as before.
CREATE INDEX IF NOT EXISTS docs_with_chunks ON docs (chunk_count) WHERE chunk_count > 0;

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
/// pages, so evicted personal data does not linger in the file; and
/// `temp_store=MEMORY`: the savepoint each pulled document is applied in
/// keeps the pages it would undo in memory, not in a temporary file (5 %
/// of a kiosk's CPU in the initial sync, issue 17, and no copy of
/// personal data in a deleted file on the card). A kiosk's temporary
/// tables and sorts are small; the WAL, and so durability, is untouched.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    loket_node::sqlite::configure_writer(conn)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// One numbered step of the schema. Steps run in order, each at most once
/// per database; `meta.schema_version` names the last one applied.
struct Migration {
    version: i64,
    name: &'static str,
    run: fn(&Connection) -> rusqlite::Result<()>,
}

/// Every step since the first release. A step that only adds tables or
/// indexes needs no code: [`SCHEMA`] creates what is missing after the
/// steps ran (its statements are `IF NOT EXISTS`); a step that changes a
/// table that exists goes here, with a test that opens a database as the
/// release before it left it.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 2,
        name: "columns version 1 gained by checking for them; complaint documents (docs.doc_type widened)",
        run: |conn| {
            unversioned_columns(conn)?;
            widen_doc_types(conn)
        },
    },
    Migration { version: 3, name: "docs.heads, a document's heads after its last write", run: heads_column },
];

/// What migrating found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub from: i64,
    pub to: i64,
}

/// The version a database records: 0 for a new one (every release wrote
/// `meta.schema_version`, 1 until complaints came).
fn recorded_version(conn: &Connection) -> rusqlite::Result<i64> {
    use rusqlite::OptionalExtension;
    let has_meta: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", [], |r| r.get(0))?;
    if !has_meta {
        return Ok(0);
    }
    let v: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn set_version(conn: &Connection, version: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [version.to_string()],
    )?;
    Ok(())
}

/// Brings the database to [`SCHEMA_VERSION`]: a new one is created whole;
/// an older one runs the steps after its version, in order, each
/// recorded as it completes (a crash between two leaves a version from
/// which the rest runs again). A database written by a newer kiosk is
/// refused: this build would not know what its tables mean.
pub fn migrate(conn: &Connection) -> Result<Migrated, super::StoreError> {
    let from = recorded_version(conn)?;
    if from > SCHEMA_VERSION {
        return Err(super::StoreError::NewerSchema { found: from, known: SCHEMA_VERSION });
    }
    let has_docs: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'docs'", [], |r| r.get(0))?;
    if !has_docs {
        // New: the current tables, nothing to carry over.
        conn.execute_batch(&format!("BEGIN IMMEDIATE; CREATE TABLE docs {DOCS_TABLE}; {SCHEMA}"))?;
        set_version(conn, SCHEMA_VERSION)?;
        conn.execute_batch("COMMIT")?;
        return Ok(Migrated { from, to: SCHEMA_VERSION });
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > from) {
        (step.run)(conn)?;
        // `meta` is among the first release's tables.
        conn.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")?;
        set_version(conn, step.version)?;
        tracing::info!(version = step.version, step = step.name, "kiosk store migrated");
    }
    conn.execute_batch(SCHEMA)?;
    Ok(Migrated { from, to: SCHEMA_VERSION })
}

/// Columns releases at version 1 added by checking for them, before
/// migrations were numbered: `doc_sync.fallback_msg`, and `idempotency.doc_id`
/// (rows from before it hold bare SHA-256 hashes of name, NIK and phone,
/// which give the NIK back in well under a second: they are dropped, and
/// a retry of a form that old files anew).
fn unversioned_columns(conn: &Connection) -> rusqlite::Result<()> {
    let has = |table: &str, column: &str| -> rusqlite::Result<bool> {
        conn.query_row("SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |r| {
            r.get::<_, i64>(0).map(|n| n > 0)
        })
    };
    let exists = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| {
            r.get::<_, i64>(0).map(|n| n > 0)
        })
    };
    if exists("doc_sync")? && !has("doc_sync", "fallback_msg")? {
        conn.execute_batch("ALTER TABLE doc_sync ADD COLUMN fallback_msg BLOB")?;
    }
    if exists("idempotency")? && !has("idempotency", "doc_id")? {
        conn.execute_batch(
            "BEGIN IMMEDIATE; DELETE FROM idempotency; ALTER TABLE idempotency ADD COLUMN doc_id TEXT; COMMIT",
        )?;
    }
    Ok(())
}

/// `docs.heads` (issue 17). Releases from before version 3 was numbered
/// added it to version 2 databases by checking for it: such a database
/// has it already.
fn heads_column(conn: &Connection) -> rusqlite::Result<()> {
    let has: bool =
        conn.query_row("SELECT count(*) FROM pragma_table_info('docs') WHERE name = 'heads'", [], |r| r.get(0))?;
    if !has {
        conn.execute_batch("ALTER TABLE docs ADD COLUMN heads BLOB")?;
    }
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
