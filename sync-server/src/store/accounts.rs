//! People who log in to the central app, and their sessions. Passwords
//! are argon2id PHC strings; sessions are stored as the SHA-256 of their
//! token only. A disabled user (`disabled_at_ms` set) has no sessions and
//! gets none: disabling deletes them, and `session_user` ignores the
//! user's rows anyway.

use loket_shared::KelurahanCode;
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::auth::{Role, Username};

/// Sessions kept per user; logging in again past this drops the oldest.
pub const SESSIONS_PER_USER_MAX: i64 = 32;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
    /// The agency an `agency` user works for (a catalog agency code).
    pub agency: Option<String>,
    /// The kelurahan a `supervisor` oversees, if limited to one.
    pub kelurahan: Option<KelurahanCode>,
}

fn corrupt(what: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { what: what.to_owned(), reason: reason.to_string() }
}

/// username, password_hash, role, agency, kelurahan
type RawUser = (String, String, String, Option<String>, Option<String>);

fn row_to_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawUser> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn parse_user((username, password_hash, role, agency, kelurahan): RawUser) -> Result<UserRecord, StoreError> {
    let what = format!("users row {username:?}");
    Ok(UserRecord {
        username: username.parse().map_err(|e| corrupt(&what, e))?,
        password_hash,
        role: role.parse().map_err(|e| corrupt(&what, e))?,
        agency,
        kelurahan: kelurahan.map(|k| k.parse()).transpose().map_err(|e| corrupt(&what, e))?,
    })
}

/// Adds a user; `false` if the username is taken (nothing changed).
pub fn insert_user(conn: &Connection, user: &UserRecord, now_ms: i64) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT INTO users (username, password_hash, role, agency, kelurahan, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (username) DO NOTHING",
        params![
            user.username.as_str(),
            user.password_hash,
            user.role.as_str(),
            user.agency,
            user.kelurahan.as_ref().map(KelurahanCode::as_str),
            now_ms
        ],
    )?;
    Ok(n == 1)
}

pub fn user(conn: &Connection, username: &Username) -> Result<Option<UserRecord>, StoreError> {
    conn.query_row(
        "SELECT username, password_hash, role, agency, kelurahan FROM users WHERE username = ?1",
        [username.as_str()],
        row_to_user,
    )
    .optional()?
    .map(parse_user)
    .transpose()
}

pub fn user_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

/// Stores a session, drops expired ones and the user's oldest beyond
/// [`SESSIONS_PER_USER_MAX`].
pub fn create_session(
    conn: &Connection,
    token_hash: &str,
    username: &Username,
    expires_at_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute("DELETE FROM user_sessions WHERE expires_at_ms <= ?1", [now_ms])?;
    conn.execute(
        "INSERT INTO user_sessions (token_hash, username, expires_at_ms) VALUES (?1, ?2, ?3)",
        params![token_hash, username.as_str(), expires_at_ms],
    )?;
    conn.execute(
        "DELETE FROM user_sessions WHERE username = ?1 AND token_hash NOT IN
            (SELECT token_hash FROM user_sessions WHERE username = ?1 ORDER BY expires_at_ms DESC LIMIT ?2)",
        params![username.as_str(), SESSIONS_PER_USER_MAX],
    )?;
    Ok(())
}

/// The user holding an unexpired session with this token hash.
pub fn session_user(conn: &Connection, token_hash: &str, now_ms: i64) -> Result<Option<UserRecord>, StoreError> {
    conn.query_row(
        "SELECT u.username, u.password_hash, u.role, u.agency, u.kelurahan
         FROM user_sessions s JOIN users u ON u.username = s.username
         WHERE s.token_hash = ?1 AND s.expires_at_ms > ?2 AND u.disabled_at_ms IS NULL",
        params![token_hash, now_ms],
        row_to_user,
    )
    .optional()?
    .map(parse_user)
    .transpose()
}

/// Ends a session; `false` if there was none.
pub fn delete_session(conn: &Connection, token_hash: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM user_sessions WHERE token_hash = ?1", [token_hash])? == 1)
}

/// Whether `username` is disabled (`false` for no such user).
pub fn is_disabled(conn: &Connection, username: &Username) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT disabled_at_ms IS NOT NULL FROM users WHERE username = ?1", [username.as_str()], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(false))
}

/// Who did an audited action on an account.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub username: &'a str,
    pub role: &'a str,
}

/// Disables (`disabled`) or enables `username` and writes the audit row
/// (`disable_user` / `enable_user`, the user as its subject), in the
/// caller's transaction. Disabling deletes every session of the user.
/// `None` if there is no such user; else the sessions ended.
pub fn set_disabled(
    tx: &Connection,
    username: &Username,
    disabled: bool,
    by: Actor<'_>,
    reason: &str,
    now_ms: i64,
) -> Result<Option<usize>, StoreError> {
    let n = tx.execute(
        "UPDATE users SET disabled_at_ms = CASE WHEN ?2 THEN coalesce(disabled_at_ms, ?3) END WHERE username = ?1",
        params![username.as_str(), disabled, now_ms],
    )?;
    if n == 0 {
        return Ok(None);
    }
    let ended =
        if disabled { tx.execute("DELETE FROM user_sessions WHERE username = ?1", [username.as_str()])? } else { 0 };
    let action = if disabled { "disable_user" } else { "enable_user" };
    tx.execute(
        "INSERT INTO audit_log (at_ms, username, role, action, doc_id, reason, subject)
         VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)",
        params![now_ms, by.username, by.role, action, reason, username.as_str()],
    )?;
    Ok(Some(ended))
}

/// A user as the admin list shows it.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub username: String,
    pub role: String,
    pub agency: Option<String>,
    pub kelurahan: Option<String>,
    pub created_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
}

/// Every user, by name.
pub fn list_users(conn: &Connection) -> Result<Vec<UserSummary>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT username, role, agency, kelurahan, created_at_ms, disabled_at_ms FROM users ORDER BY username",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(UserSummary {
            username: r.get(0)?,
            role: r.get(1)?,
            agency: r.get(2)?,
            kelurahan: r.get(3)?,
            created_at_ms: r.get(4)?,
            disabled_at_ms: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
