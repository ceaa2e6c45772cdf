//! Numbered migrations. Version N means the same tables on every engine;
//! each engine lists how to get there ([`super::schema::SQLITE`],
//! `postgres::MIGRATIONS`). `meta.schema_version` is the last one applied;
//! a database whose version is newer than this build knows is refused, so
//! an old binary never writes to a schema it does not understand.
//!
//! Each migration runs in its own transaction and re-reads the version
//! inside it, so two instances starting at once on one database apply each
//! step once (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock).

use super::sql::{Dialect, Sql, scalar};
use super::{Db, StoreError, meta_get, meta_set, now_ms};
use crate::args;

/// One step.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub run: fn(&mut dyn Sql) -> Result<(), StoreError>,
}

/// The `meta` key a step sets when every request must be projected again
/// (version 4 changed what working time means). [`run`] does it once the
/// store is at [`LATEST`], with this build's projection, which writes that
/// version's tables: a step of its own could not, since later steps
/// reshape the tables it would write.
pub const REPROJECT_PENDING: &str = "reproject_pending";

/// The schema version this build writes.
pub const LATEST: i64 = 24;

/// What [`run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub from: i64,
    pub to: i64,
    pub steps: Vec<(i64, &'static str)>,
}

fn steps(dialect: Dialect) -> &'static [Migration] {
    match dialect {
        Dialect::Sqlite => super::schema::SQLITE,
        Dialect::Postgres => super::schema::POSTGRES,
    }
}

/// The version recorded in the database, 0 for an empty one.
pub fn current(db: &mut dyn Sql) -> Result<i64, StoreError> {
    let has_meta: i64 = match db.dialect() {
        Dialect::Sqlite => scalar(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", args![])?,
        Dialect::Postgres => scalar(
            db,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'meta'",
            args![],
        )?,
    }
    .unwrap_or(0);
    if has_meta == 0 {
        return Ok(0);
    }
    match meta_get(db, "schema_version")? {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| StoreError::Corrupt { what: "meta.schema_version".into(), reason: v }),
    }
}

/// Refuses a database written by a newer build.
fn check_not_newer(found: i64) -> Result<(), StoreError> {
    if found > LATEST {
        return Err(StoreError::Invalid(format!(
            "the database has schema version {found}, newer than this sync-server knows ({LATEST}): \
             run a newer sync-server"
        )));
    }
    Ok(())
}

/// Brings the database to [`LATEST`], one transaction per step.
pub fn run(db: &Db) -> Result<Applied, StoreError> {
    let from = db.read(current)?;
    check_not_newer(from)?;
    let mut applied = Applied { from, to: from, steps: Vec::new() };
    for m in steps(db.dialect()).iter().filter(|m| m.version > from) {
        let did = db.write(|tx| -> Result<bool, StoreError> {
            if tx.dialect() == Dialect::Postgres {
                // Instances starting together take turns; the loser then
                // sees the version moved and does nothing.
                tx.query("SELECT pg_advisory_xact_lock(7254810)", args![])?;
            }
            let now = current(tx)?;
            check_not_newer(now)?;
            if now >= m.version {
                return Ok(false);
            }
            (m.run)(tx)?;
            meta_set(tx, "schema_version", &m.version.to_string())?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)
                 ON CONFLICT (version) DO NOTHING",
                args![m.version, m.name, now_ms()],
            )?;
            Ok(true)
        })?;
        if did {
            tracing::info!(version = m.version, name = m.name, "schema migrated");
            applied.steps.push((m.version, m.name));
        }
        applied.to = m.version;
    }
    applied.to = applied.to.max(db.read(current)?);
    if db.read(|c| meta_get(c, REPROJECT_PENDING))?.is_some() {
        let requests = db.write(|tx| -> Result<Option<usize>, StoreError> {
            if tx.dialect() == Dialect::Postgres {
                tx.query("SELECT pg_advisory_xact_lock(7254810)", args![])?;
            }
            if meta_get(tx, REPROJECT_PENDING)?.is_none() {
                return Ok(None);
            }
            let n = super::projection::reproject_all_in(tx)?;
            super::projection::rebuild_rollups(tx)?;
            tx.execute("DELETE FROM meta WHERE key = ?", args![REPROJECT_PENDING])?;
            Ok(Some(n))
        })?;
        if let Some(requests) = requests {
            tracing::info!(requests, "requests projected again after the upgrade");
        }
    }
    Ok(applied)
}
