//! Small named values every instance shares (`meta`): the schema version,
//! the seal key, the local-time offset of the projections, counters.

use super::StoreError;
use super::sql::{Sql, scalar};
use crate::args;

pub fn meta_get(db: &mut dyn Sql, key: &str) -> Result<Option<String>, StoreError> {
    scalar(db, "SELECT value FROM meta WHERE key = ?", args![key])
}

pub fn meta_set(db: &mut dyn Sql, key: &str, value: &str) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![key, value],
    )?;
    Ok(())
}

/// Sets `key` unless it is set already, and returns the value that holds:
/// the one way for several instances to agree on a value made once (the
/// seal key), whoever gets there first.
pub fn meta_set_once(db: &mut dyn Sql, key: &str, value: &str) -> Result<String, StoreError> {
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", args![key, value])?;
    meta_get(db, key)?.ok_or_else(|| StoreError::Corrupt { what: format!("meta.{key}"), reason: "vanished".into() })
}

/// The local-time offset the projections use (meta `utc_offset_hours`,
/// written by `serve` from its configuration; WIB by default).
pub fn projection_offset(db: &mut dyn Sql) -> Result<time::UtcOffset, StoreError> {
    let hours: i8 = meta_get(db, "utc_offset_hours")?.and_then(|v| v.parse().ok()).unwrap_or(7);
    Ok(time::UtcOffset::from_hms(hours, 0, 0).unwrap_or(time::UtcOffset::UTC))
}
