//! Enrolled kiosks and one-time enrollment codes.
//!
//! A kiosk's secret, like an enrollment code, is stored only as its
//! SHA-256 (hex). Kiosk codes (`K001`, `K002`, ...) come from a counter in
//! `meta` that only grows, so a code is never handed out twice, even if a
//! kiosk row were deleted: tickets start with it and must stay unique.

use loket_shared::{KelurahanCode, KioskCode};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, meta_get, meta_set};
use crate::auth::KioskAuth;

/// Rows `list` returns at most.
pub const LIST_MAX: usize = 10_000;

/// A kiosk as the admin pages see it.
#[derive(Debug, Clone)]
pub struct KioskRow {
    pub id: String,
    pub code: KioskCode,
    pub kelurahan: KelurahanCode,
    pub name: String,
    pub actor: String,
    pub revoked: bool,
    pub enrolled_at_ms: i64,
    pub last_seen_at_ms: Option<i64>,
    pub last_sync_ok_at_ms: Option<i64>,
    pub version: Option<String>,
    pub pending_known: Option<i64>,
}

impl KioskRow {
    pub fn auth(&self) -> KioskAuth {
        KioskAuth {
            id: self.id.clone(),
            code: self.code.clone(),
            kelurahan: self.kelurahan.clone(),
            actor: self.actor.clone(),
        }
    }
}

const COLUMNS: &str = "id, code, kelurahan, name, actor, revoked, enrolled_at_ms, last_seen_at_ms, \
                       last_sync_ok_at_ms, version, pending_known";

fn corrupt(id: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { what: format!("kiosk {id}"), reason: reason.to_string() }
}

type RawRow =
    (String, String, String, String, String, bool, i64, Option<i64>, Option<i64>, Option<String>, Option<i64>);

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn parse(row: RawRow) -> Result<KioskRow, StoreError> {
    let (id, code, kelurahan, name, actor, revoked, enrolled_at_ms, last_seen, last_ok, version, pending) = row;
    Ok(KioskRow {
        code: code.parse().map_err(|e| corrupt(&id, e))?,
        kelurahan: kelurahan.parse().map_err(|e| corrupt(&id, e))?,
        id,
        name,
        actor,
        revoked,
        enrolled_at_ms,
        last_seen_at_ms: last_seen,
        last_sync_ok_at_ms: last_ok,
        version,
        pending_known: pending,
    })
}

/// The kiosk whose secret hashes to `token_hash`, revoked or not.
pub fn by_token_hash(conn: &Connection, token_hash: &str) -> Result<Option<KioskRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM kiosks WHERE token_hash = ?1");
    conn.prepare_cached(&sql)?.query_row([token_hash], raw).optional()?.map(parse).transpose()
}

/// The kiosk whose *next* credential (issued by a rotation, not used yet)
/// hashes to `token_hash`.
pub fn by_next_token_hash(conn: &Connection, token_hash: &str) -> Result<Option<KioskRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM kiosks WHERE next_token_hash = ?1");
    conn.prepare_cached(&sql)?.query_row([token_hash], raw).optional()?.map(parse).transpose()
}

/// Starts a rotation: `next_hash` becomes valid beside the current
/// credential. Asking again replaces the pending one.
pub fn begin_rotation(conn: &Connection, kiosk_id: &str, next_hash: &str) -> Result<(), StoreError> {
    conn.execute("UPDATE kiosks SET next_token_hash = ?2 WHERE id = ?1 AND revoked = 0", [kiosk_id, next_hash])?;
    Ok(())
}

/// Completes a rotation on the first use of the new credential: the old
/// one stops working from this request on.
pub fn complete_rotation(conn: &Connection, kiosk_id: &str, next_hash: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE kiosks SET token_hash = next_token_hash, next_token_hash = NULL WHERE id = ?1 AND next_token_hash = ?2",
        [kiosk_id, next_hash],
    )? == 1)
}

/// A kiosk by its id (UUID) or its code (`K001`).
pub fn by_id_or_code(conn: &Connection, key: &str) -> Result<Option<KioskRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM kiosks WHERE id = ?1 OR code = ?1");
    conn.query_row(&sql, [key], raw).optional()?.map(parse).transpose()
}

/// Every kiosk, by code, at most [`LIST_MAX`].
pub fn list(conn: &Connection) -> Result<Vec<KioskRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM kiosks ORDER BY code LIMIT {LIST_MAX}");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], raw)?;
    rows.map(|r| parse(r?)).collect()
}

/// Kiosks not revoked that were seen at or after `since_ms`.
pub fn count_seen_since(conn: &Connection, since_ms: i64) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM kiosks WHERE revoked = 0 AND last_seen_at_ms >= ?1", [since_ms], |r| {
        r.get(0)
    })?)
}

/// Kiosks enrolled and not revoked.
pub fn count_active(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM kiosks WHERE revoked = 0", [], |r| r.get(0))?)
}

/// Revokes a kiosk (by id or code); returns it as it is now, or `None` if
/// there is no such kiosk. Revoking twice keeps the first time.
pub fn revoke(conn: &Connection, key: &str, now_ms: i64) -> Result<Option<KioskRow>, StoreError> {
    conn.execute(
        "UPDATE kiosks SET revoked = 1, revoked_at_ms = ?2 WHERE (id = ?1 OR code = ?1) AND revoked = 0",
        params![key, now_ms],
    )?;
    by_id_or_code(conn, key)
}

/// Allocates the next kiosk code: `K001`, `K002`, ... (`K1000` after
/// `K999`). Call inside the transaction that inserts the kiosk.
pub fn next_code(conn: &Connection) -> Result<KioskCode, StoreError> {
    let last: u64 = match meta_get(conn, "kiosk_seq")? {
        None => 0,
        Some(v) => v.parse().map_err(|_| StoreError::Corrupt { what: "meta.kiosk_seq".into(), reason: v })?,
    };
    let next = last + 1;
    meta_set(conn, "kiosk_seq", &next.to_string())?;
    format!("K{next:03}").parse().map_err(|_| StoreError::Invalid(format!("kiosk codes are exhausted after K{last}")))
}

pub struct NewKiosk<'a> {
    pub id: &'a str,
    pub code: &'a KioskCode,
    pub kelurahan: &'a KelurahanCode,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub actor: &'a str,
    pub version: &'a str,
}

/// Inserts a kiosk; `false` if its actor is already registered to another
/// kiosk (nothing changed).
pub fn insert(conn: &Connection, k: &NewKiosk<'_>, now_ms: i64) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT INTO kiosks (id, code, kelurahan, name, token_hash, actor, revoked, enrolled_at_ms, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8) ON CONFLICT (actor) DO NOTHING",
        params![k.id, k.code.as_str(), k.kelurahan.as_str(), k.name, k.token_hash, k.actor, now_ms, k.version],
    )?;
    Ok(n == 1)
}

/// An enrollment code as stored.
#[derive(Debug, Clone)]
pub struct EnrollCodeRow {
    pub kelurahan: KelurahanCode,
    pub expires_at_ms: i64,
    pub used_at_ms: Option<i64>,
}

pub fn insert_enroll_code(
    conn: &Connection,
    code_hash: &str,
    kelurahan: &KelurahanCode,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), StoreError> {
    // Expired, unused codes are of no use to anyone: drop those a day old.
    conn.execute(
        "DELETE FROM enroll_codes WHERE used_at_ms IS NULL AND expires_at_ms < ?1",
        [now_ms.saturating_sub(24 * 3600 * 1000)],
    )?;
    conn.execute(
        "INSERT INTO enroll_codes (code_hash, kelurahan, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![code_hash, kelurahan.as_str(), now_ms, expires_at_ms],
    )?;
    Ok(())
}

pub fn enroll_code(conn: &Connection, code_hash: &str) -> Result<Option<EnrollCodeRow>, StoreError> {
    let row: Option<(String, i64, Option<i64>)> = conn
        .query_row(
            "SELECT kelurahan, expires_at_ms, used_at_ms FROM enroll_codes WHERE code_hash = ?1",
            [code_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    row.map(|(kelurahan, expires_at_ms, used_at_ms)| {
        Ok(EnrollCodeRow {
            kelurahan: kelurahan
                .parse()
                .map_err(|e| StoreError::Corrupt { what: "enroll_codes row".into(), reason: format!("{e}") })?,
            expires_at_ms,
            used_at_ms,
        })
    })
    .transpose()
}

/// Marks a code used by `kiosk_id`; `false` if it was used already.
pub fn use_enroll_code(conn: &Connection, code_hash: &str, kiosk_id: &str, now_ms: i64) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE enroll_codes SET used_at_ms = ?2, kiosk_id = ?3 WHERE code_hash = ?1 AND used_at_ms IS NULL",
        params![code_hash, now_ms, kiosk_id],
    )?;
    Ok(n == 1)
}
