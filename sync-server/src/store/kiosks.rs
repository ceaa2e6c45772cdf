//! Enrolled kiosks and one-time enrollment codes.
//!
//! A kiosk's secret, like an enrollment code, is stored only as its
//! SHA-256 (hex). Kiosk codes (`K001`, `K002`, ...) come from a counter in
//! `meta` that only grows, so a code is never handed out twice, even if a
//! kiosk row were deleted: tickets start with it and must stay unique.

use loket_shared::{KelurahanCode, KioskCode};
use serde::Serialize;

use super::StoreError;
use super::sql::{Row, Sql, scalar};
use crate::args;

/// A kiosk proven by its secret (`Authorization: Bearer SECRET`), not
/// revoked. Extracting it reads the `kiosks` row and changes nothing:
/// recording that the kiosk was seen is the caller's business.
///
/// Refusals: no bearer → 401 `unauthorized`; a secret no kiosk holds → 401
/// `unknown_kiosk`; a revoked kiosk → 403 `kiosk_revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KioskAuth {
    /// The kiosk's id (a UUID, as text).
    pub id: String,
    /// Its short code, the prefix of its tickets (`K001`).
    pub code: KioskCode,
    pub kelurahan: KelurahanCode,
    /// The Automerge actor id (hex) registered at enrollment: every change
    /// this kiosk pushes must be by it.
    pub actor: String,
}

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

fn parse(r: Row) -> Result<KioskRow, StoreError> {
    let id: String = r.get(0)?;
    let (code, kelurahan, name, actor): (String, String, String, String) = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
    let (revoked, enrolled_at_ms, last_seen, last_ok, version, pending): (
        bool,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
    ) = (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?);
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
pub fn by_token_hash(db: &mut dyn Sql, token_hash: &str) -> Result<Option<KioskRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM kiosks WHERE token_hash = ?");
    db.query_opt(&sql, args![token_hash])?.map(parse).transpose()
}

/// The kiosk whose *next* credential (issued by a rotation, not used yet)
/// hashes to `token_hash`.
pub fn by_next_token_hash(db: &mut dyn Sql, token_hash: &str) -> Result<Option<KioskRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM kiosks WHERE next_token_hash = ?");
    db.query_opt(&sql, args![token_hash])?.map(parse).transpose()
}

/// Starts a rotation: `next_hash` becomes valid beside the current
/// credential. Asking again replaces the pending one.
pub fn begin_rotation(db: &mut dyn Sql, kiosk_id: &str, next_hash: &str) -> Result<(), StoreError> {
    db.execute("UPDATE kiosks SET next_token_hash = ? WHERE id = ? AND revoked = 0", args![next_hash, kiosk_id])?;
    Ok(())
}

/// Completes a rotation on the first use of the new credential: the old
/// one stops working from this request on.
pub fn complete_rotation(db: &mut dyn Sql, kiosk_id: &str, next_hash: &str) -> Result<bool, StoreError> {
    Ok(db.execute(
        "UPDATE kiosks SET token_hash = next_token_hash, next_token_hash = NULL WHERE id = ? AND next_token_hash = ?",
        args![kiosk_id, next_hash],
    )? == 1)
}

/// A kiosk by its id (UUID) or its code (`K001`).
pub fn by_id_or_code(db: &mut dyn Sql, key: &str) -> Result<Option<KioskRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM kiosks WHERE id = ? OR code = ?");
    db.query_opt(&sql, args![key, key])?.map(parse).transpose()
}

/// Every kiosk, by code, at most [`LIST_MAX`].
pub fn list(db: &mut dyn Sql) -> Result<Vec<KioskRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM kiosks ORDER BY code LIMIT {LIST_MAX}");
    db.query(&sql, args![])?.into_iter().map(parse).collect()
}

/// The kiosks of one kelurahan as `(actor, code)`, revoked ones too: who
/// wrote its events, for the request page.
pub fn actors_of(db: &mut dyn Sql, kelurahan: &str) -> Result<Vec<(String, String)>, StoreError> {
    let sql = format!(
        "SELECT a.actor, k.code FROM kiosk_actors a JOIN kiosks k ON k.id = a.kiosk_id
         WHERE k.kelurahan = ? ORDER BY k.code, a.added_at_ms, a.actor LIMIT {LIST_MAX}"
    );
    db.query(&sql, args![kelurahan])?.into_iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
}

/// Kiosks not revoked that were seen at or after `since_ms`.
pub fn count_seen_since(db: &mut dyn Sql, since_ms: i64) -> Result<i64, StoreError> {
    Ok(scalar(db, "SELECT count(*) FROM kiosks WHERE revoked = 0 AND last_seen_at_ms >= ?", args![since_ms])?
        .unwrap_or(0))
}

/// Kiosks enrolled and not revoked.
pub fn count_active(db: &mut dyn Sql) -> Result<i64, StoreError> {
    Ok(scalar(db, "SELECT count(*) FROM kiosks WHERE revoked = 0", args![])?.unwrap_or(0))
}

/// Revokes a kiosk (by id or code); returns it as it is now, or `None` if
/// there is no such kiosk. Revoking twice keeps the first time.
pub fn revoke(db: &mut dyn Sql, key: &str, now_ms: i64) -> Result<Option<KioskRow>, StoreError> {
    db.execute(
        "UPDATE kiosks SET revoked = 1, revoked_at_ms = ? WHERE (id = ? OR code = ?) AND revoked = 0",
        args![now_ms, key, key],
    )?;
    by_id_or_code(db, key)
}

/// Allocates the next kiosk code: `K001`, `K002`, ... (`K1000` after
/// `K999`). The counter in `meta` is moved by one statement, which holds
/// its row to the end of the transaction: two instances enrolling at once
/// get different codes.
pub fn next_code(db: &mut dyn Sql) -> Result<KioskCode, StoreError> {
    db.execute("INSERT INTO meta (key, value) VALUES ('kiosk_seq', '0') ON CONFLICT (key) DO NOTHING", args![])?;
    let next: String = scalar(
        db,
        "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = 'kiosk_seq' RETURNING value",
        args![],
    )?
    .ok_or_else(|| StoreError::Corrupt { what: "meta.kiosk_seq".into(), reason: "missing".into() })?;
    let n: u64 =
        next.parse().map_err(|_| StoreError::Corrupt { what: "meta.kiosk_seq".into(), reason: next.clone() })?;
    format!("K{n:03}").parse().map_err(|_| StoreError::Invalid(format!("kiosk codes are exhausted after K{}", n - 1)))
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
/// kiosk (nothing changed). Its kelurahan gets a pull partition.
pub fn insert(db: &mut dyn Sql, k: &NewKiosk<'_>, now_ms: i64) -> Result<bool, StoreError> {
    // Every actor is in `kiosk_actors`, those kiosks took after a restore too.
    let taken: Option<String> = scalar(db, "SELECT kiosk_id FROM kiosk_actors WHERE actor = ?", args![k.actor])?;
    if taken.is_some() {
        return Ok(false);
    }
    let n = db.execute(
        "INSERT INTO kiosks (id, code, kelurahan, name, token_hash, actor, revoked, enrolled_at_ms, version)
         VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (actor) DO NOTHING",
        args![k.id, k.code.as_str(), k.kelurahan.as_str(), k.name, k.token_hash, k.actor, now_ms, k.version],
    )?;
    if n == 0 {
        return Ok(false);
    }
    db.execute(
        "INSERT INTO kiosk_actors (actor, kiosk_id, added_at_ms) VALUES (?, ?, ?)",
        args![k.actor, k.id, now_ms],
    )?;
    super::docs::ensure_partition(db, k.kelurahan.as_str())?;
    Ok(true)
}

/// An enrollment code as stored.
#[derive(Debug, Clone)]
pub struct EnrollCodeRow {
    pub kelurahan: KelurahanCode,
    pub expires_at_ms: i64,
    pub used_at_ms: Option<i64>,
}

pub fn insert_enroll_code(
    db: &mut dyn Sql,
    code_hash: &str,
    kelurahan: &KelurahanCode,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), StoreError> {
    // Expired, unused codes are of no use to anyone: drop those a day old.
    db.execute(
        "DELETE FROM enroll_codes WHERE used_at_ms IS NULL AND expires_at_ms < ?",
        args![now_ms.saturating_sub(24 * 3600 * 1000)],
    )?;
    db.execute(
        "INSERT INTO enroll_codes (code_hash, kelurahan, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?)",
        args![code_hash, kelurahan.as_str(), now_ms, expires_at_ms],
    )?;
    Ok(())
}

pub fn enroll_code(db: &mut dyn Sql, code_hash: &str) -> Result<Option<EnrollCodeRow>, StoreError> {
    let Some(r) = db.query_opt(
        "SELECT kelurahan, expires_at_ms, used_at_ms FROM enroll_codes WHERE code_hash = ?",
        args![code_hash],
    )?
    else {
        return Ok(None);
    };
    let kelurahan: String = r.get(0)?;
    Ok(Some(EnrollCodeRow {
        kelurahan: kelurahan
            .parse()
            .map_err(|e| StoreError::Corrupt { what: "enroll_codes row".into(), reason: format!("{e}") })?,
        expires_at_ms: r.get(1)?,
        used_at_ms: r.get(2)?,
    }))
}

/// Marks a code used by `kiosk_id`; `false` if it was used already (by
/// this instance or another: the update re-checks under the row lock).
pub fn use_enroll_code(db: &mut dyn Sql, code_hash: &str, kiosk_id: &str, now_ms: i64) -> Result<bool, StoreError> {
    let n = db.execute(
        "UPDATE enroll_codes SET used_at_ms = ?, kiosk_id = ? WHERE code_hash = ? AND used_at_ms IS NULL",
        args![now_ms, kiosk_id, code_hash],
    )?;
    Ok(n == 1)
}

/// Actors one kiosk may hold at most: its enrollment actor and those of
/// restores from older copies of its disk (a handful in a kiosk's life).
/// Bounds what a stolen credential can add.
pub const ACTORS_MAX: i64 = 16;

/// Why a new actor was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewActor {
    /// Registered now.
    Registered,
    /// Already this kiosk's (a retried request).
    Again,
    /// Another kiosk's actor.
    Taken,
    /// The kiosk holds [`ACTORS_MAX`] actors already.
    TooMany,
}

/// Registers `actor` as one more of the kiosk's (after it was restored
/// from an older copy of its disk), and forgets what this server believed
/// the kiosk holds (`kiosk_heads`): the restored kiosk lacks what it wrote
/// or pulled after the copy, so the next pull sends each document changed
/// since its cursor in full. Idempotent: a retry changes nothing more than
/// forgetting again.
pub fn add_actor(db: &mut dyn Sql, kiosk_id: &str, actor: &str, now_ms: i64) -> Result<NewActor, StoreError> {
    let owner: Option<String> = scalar(db, "SELECT kiosk_id FROM kiosk_actors WHERE actor = ?", args![actor])?;
    let outcome = match owner {
        Some(owner) if owner != kiosk_id => return Ok(NewActor::Taken),
        Some(_) => NewActor::Again,
        None => {
            let held: i64 =
                scalar(db, "SELECT count(*) FROM kiosk_actors WHERE kiosk_id = ?", args![kiosk_id])?.unwrap_or(0);
            if held >= ACTORS_MAX {
                return Ok(NewActor::TooMany);
            }
            db.execute(
                "INSERT INTO kiosk_actors (actor, kiosk_id, added_at_ms) VALUES (?, ?, ?)",
                args![actor, kiosk_id, now_ms],
            )?;
            NewActor::Registered
        }
    };
    db.execute("DELETE FROM kiosk_heads WHERE kiosk = (SELECT code FROM kiosks WHERE id = ?)", args![kiosk_id])?;
    Ok(outcome)
}

/// The Automerge actors (hex) of a kelurahan's kiosks, revoked ones too
/// (their old changes stay valid), as one kiosk sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KioskActors {
    /// The kiosk's own: its enrollment actor and any it took after a
    /// restore.
    pub own: Vec<String>,
    /// The other kiosks' of the office, whose changes a kiosk carries
    /// after pulling them.
    pub partners: Vec<String>,
}

/// [`KioskActors`] of `kiosk_id` in `kelurahan`.
pub fn kelurahan_actors(db: &mut dyn Sql, kelurahan: &str, kiosk_id: &str) -> Result<KioskActors, StoreError> {
    let rows = db.query(
        "SELECT a.actor, a.kiosk_id FROM kiosk_actors a JOIN kiosks k ON k.id = a.kiosk_id WHERE k.kelurahan = ?",
        args![kelurahan],
    )?;
    let mut out = KioskActors::default();
    for r in rows {
        let (actor, id): (String, String) = (r.get(0)?, r.get(1)?);
        if id == kiosk_id { out.own.push(actor) } else { out.partners.push(actor) }
    }
    Ok(out)
}
