//! Moving a city: every row of an SQLite store copied into an empty
//! PostgreSQL database at the same schema version, then checked.
//!
//! The source is read in one snapshot (one read transaction), so a server
//! still running on it cannot make the copy inconsistent (what it writes
//! after the snapshot is not copied: stop it first). Rows go in as
//! multi-row INSERTs, a table's batches in transactions of their own;
//! `meta.initialised_at_ms` is written last, so a copy that stops half way
//! is never taken for a store (the server refuses it, and so does a second
//! `migrate-store` until the database is emptied).
//!
//! The check compares, table by table, the row count and a SHA-256 over
//! every row in primary-key order (values as the seam reads them, so both
//! engines hash the same bytes), and opens every document on the target
//! and compares its heads with the stored heads.

use sha2::{Digest, Sha256};

use super::sql::{Dialect, Row, Sql, Value, scalar};
use super::{Db, StoreError, docs, engine::blob_heads};
use crate::args;

/// What a copy moved.
#[derive(Debug, Default, Clone)]
pub struct Copied {
    /// `(table, rows)` in the order copied.
    pub tables: Vec<(String, u64)>,
    /// Documents opened on the target whose heads matched.
    pub documents: u64,
}

/// A table's columns and primary key, as the source declares them.
#[derive(Debug, Clone)]
struct Table {
    name: String,
    columns: Vec<String>,
    key: Vec<String>,
}

/// Rows per INSERT statement, and per target transaction.
const BATCH_ROWS: usize = 200;
const TRANSACTION_ROWS: usize = 20_000;

/// The source's tables (SQLite), parents before children, without the
/// migration log (each store has its own).
fn tables(src: &mut dyn Sql) -> Result<Vec<Table>, StoreError> {
    // Parents first: the foreign keys point at users, kiosks and docs.
    let first = ["meta", "users", "kiosks", "docs"];
    let mut names: Vec<String> = src
        .query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name != 'schema_migrations' ORDER BY name",
            args![],
        )?
        .into_iter()
        .map(|r| r.get(0))
        .collect::<Result<_, _>>()?;
    names.sort_by_key(|n| (first.iter().position(|f| f == n).unwrap_or(first.len()), n.clone()));
    let mut out = Vec::new();
    for name in names {
        let mut columns = Vec::new();
        let mut key: Vec<(i64, String)> = Vec::new();
        for r in src.query("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", args![&name])? {
            let (column, pk): (String, i64) = (r.get(0)?, r.get(1)?);
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            columns.push(column);
        }
        key.sort();
        let key = if key.is_empty() { columns.clone() } else { key.into_iter().map(|k| k.1).collect() };
        out.push(Table { name, columns, key });
    }
    Ok(out)
}

fn select(t: &Table) -> String {
    format!("SELECT {} FROM {} ORDER BY {}", t.columns.join(", "), t.name, t.key.join(", "))
}

/// Copies every row of `from` (SQLite) into `to` (PostgreSQL, migrated,
/// empty). `progress` hears each table as it is done.
pub fn copy_store(from: &Db, to: &Db, mut progress: impl FnMut(&str, u64)) -> Result<Copied, StoreError> {
    if from.dialect() != Dialect::Sqlite || to.dialect() != Dialect::Postgres {
        return Err(StoreError::Invalid("a store is copied from SQLite into PostgreSQL".into()));
    }
    let (src_version, dst_version) = (from.read(super::migrate::current)?, to.read(super::migrate::current)?);
    if src_version != dst_version {
        return Err(StoreError::Invalid(format!(
            "the SQLite store is at schema version {src_version}, the PostgreSQL database at {dst_version}"
        )));
    }
    let occupied = to.read(|c| {
        let users = scalar::<i64>(c, "SELECT count(*) FROM users", args![])?.unwrap_or(0);
        let docs = scalar::<i64>(c, "SELECT count(*) FROM docs", args![])?.unwrap_or(0);
        Ok::<_, StoreError>(users + docs)
    })?;
    if occupied > 0 {
        return Err(StoreError::Invalid(
            "the PostgreSQL database already holds a store (or a copy that stopped half way): \
             give an empty database"
                .into(),
        ));
    }
    // The cursor partitions a fresh database made come with the copy.
    to.write(|dst| dst.batch("DELETE FROM doc_seq; DELETE FROM seq_counters;"))?;
    let mut copied = Copied::default();
    from.read(|src| {
        for t in tables(src)? {
            let mut rows: Vec<Row> = Vec::with_capacity(TRANSACTION_ROWS);
            let mut n = 0u64;
            let flush = |rows: &mut Vec<Row>| -> Result<(), StoreError> {
                to.write(|dst| insert_rows(dst, &t, rows))?;
                rows.clear();
                Ok(())
            };
            src.query_each(&select(&t), &[], &mut |row| {
                // The mark of a finished store goes in last of all.
                if t.name == "meta"
                    && matches!(row.0.first(), Some(Value::Text(k)) if k == "initialised_at_ms" || k == "schema_version")
                {
                    return Ok(());
                }
                rows.push(row);
                n += 1;
                if rows.len() == TRANSACTION_ROWS {
                    flush(&mut rows)?;
                }
                Ok(())
            })?;
            flush(&mut rows)?;
            // Identity columns continue after the copied ids.
            if t.columns.first().is_some_and(|c| c == "id") && t.key == ["id"] && t.name != "kiosks" {
                to.write(|dst| {
                    dst.query(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{0}', 'id'), coalesce((SELECT max(id) FROM {0}), 0) + 1, false)",
                            t.name
                        ),
                        &[],
                    )
                    .map(|_| ())
                })?;
            }
            progress(&t.name, n);
            copied.tables.push((t.name.clone(), n));
        }
        Ok::<_, StoreError>(())
    })?;
    copied.documents = verify(from, to)?;
    let initialised = from.read(|c| super::meta_get(c, "initialised_at_ms"))?;
    if let Some(at) = initialised {
        to.write(|dst| super::meta_set(dst, "initialised_at_ms", &at))?;
    }
    Ok(copied)
}

fn insert_rows(dst: &mut dyn Sql, t: &Table, rows: &[Row]) -> Result<(), StoreError> {
    for chunk in rows.chunks(BATCH_ROWS) {
        let one = format!("({})", vec!["?"; t.columns.len()].join(", "));
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            t.name,
            t.columns.join(", "),
            vec![one.as_str(); chunk.len()].join(", ")
        );
        let args: Vec<Value> = chunk.iter().flat_map(|r| r.0.iter().cloned()).collect();
        dst.execute(&sql, &args)?;
    }
    Ok(())
}

/// SHA-256 over a value, tagged by kind so `1` and `"1"` differ.
fn hash_value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update([0]),
        Value::Int(i) => {
            h.update([1]);
            h.update(i.to_be_bytes());
        }
        Value::Real(r) => {
            h.update([2]);
            h.update(r.to_bits().to_be_bytes());
        }
        Value::Text(s) => {
            h.update([3]);
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        Value::Blob(b) => {
            h.update([4]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    }
}

/// Row count and digest of a table in key order.
fn digest(db: &mut dyn Sql, t: &Table, skip_meta: bool) -> Result<(u64, [u8; 32]), StoreError> {
    let mut h = Sha256::new();
    let mut n = 0u64;
    db.query_each(&select(t), &[], &mut |row| {
        if skip_meta
            && matches!(row.0.first(), Some(Value::Text(k)) if k == "initialised_at_ms" || k == "schema_version")
        {
            return Ok(());
        }
        n += 1;
        for v in &row.0 {
            hash_value(&mut h, v);
        }
        Ok(())
    })?;
    Ok((n, h.finalize().into()))
}

/// Checks a copy: every table's rows equal, every document's bytes open to
/// its stored heads. Returns how many documents were opened.
pub fn verify(from: &Db, to: &Db) -> Result<u64, StoreError> {
    let tables = from.read(tables)?;
    for t in &tables {
        let skip = t.name == "meta";
        let a = from.read(|c| digest(c, t, skip))?;
        let b = to.read(|c| digest(c, t, skip))?;
        if a != b {
            return Err(StoreError::Corrupt {
                what: format!("the copy of table {}", t.name),
                reason: format!("{} rows in SQLite, {} in PostgreSQL, or different contents", a.0, b.0),
            });
        }
    }
    let ids: Vec<String> = to
        .read(|c| c.query("SELECT doc_id FROM docs ORDER BY doc_id", &[]))?
        .into_iter()
        .map(|r| r.get(0))
        .collect::<Result<_, _>>()?;
    for id in &ids {
        let stored = to
            .read(|c| docs::load_raw(c, id))?
            .ok_or_else(|| StoreError::Corrupt { what: id.clone(), reason: "listed but missing".into() })?;
        let mut want = blob_heads(&stored.heads)?;
        want.sort_unstable();
        let mut got = docs::to_hashes(&stored.open(id)?.get_heads());
        got.sort_unstable();
        if got != want {
            return Err(StoreError::Corrupt { what: id.clone(), reason: "heads differ after the copy".into() });
        }
    }
    Ok(ids.len() as u64)
}
