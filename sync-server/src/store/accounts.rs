//! People who log in to the central app, and their sessions. Passwords
//! are argon2id PHC strings; sessions are stored as the SHA-256 of their
//! token only. A disabled user (`disabled_at_ms` set) has no sessions and
//! gets none: disabling deletes them, and `session_user` ignores the
//! user's rows anyway.

use std::fmt;
use std::str::FromStr;

use loket_shared::KelurahanCode;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::sql::{Row, Sql, scalar};
use crate::args;

/// What a person may do on the central app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Pemko Medan's central admins: everything.
    Admin,
    /// Staff of a partner agency: the requests handed to their agency.
    Agency,
    /// Read-only oversight, possibly limited to one kelurahan.
    Supervisor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Agency, Role::Supervisor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agency => "agency",
            Role::Supervisor => "supervisor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| "peran tidak dikenal / unknown role (admin, agency, supervisor)".to_owned())
    }
}

/// A login name: 3-64 characters of `a-z 0-9 . _ -`, starting with a
/// letter or digit. Parsing lowercases and trims, so `Admin ` logs in as
/// `admin`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Username(String);

impl Username {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Username {
    type Err = String;
    fn from_str(s: &str) -> Result<Username, String> {
        let s = s.trim().to_ascii_lowercase();
        let ok = (3..=64).contains(&s.len())
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Username(s))
        } else {
            Err("nama pengguna: 3-64 huruf kecil, angka, titik, _ atau - / a username is 3-64 lowercase letters, \
                 digits, dots, _ or -"
                .to_owned())
        }
    }
}

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
    /// The kecamatan (codes, `12.71.01`) an `agency` user's unit covers
    /// when the agency works per kecamatan (Kantor Camat, KUA, a Polsek
    /// whose area spans two); empty for a city-wide agency.
    pub region: Vec<String>,
}

/// `users.region` as stored: the kecamatan codes joined by commas, or
/// NULL for none.
fn region_column(region: &[String]) -> Option<String> {
    (!region.is_empty()).then(|| region.join(","))
}

fn region_of(column: Option<String>) -> Vec<String> {
    column.map(|c| c.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

fn corrupt(what: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { what: what.to_owned(), reason: reason.to_string() }
}

/// A row of `username, password_hash, role, agency, kelurahan, region`.
fn parse_user(r: Row) -> Result<UserRecord, StoreError> {
    let (username, password_hash, role, agency, kelurahan): (String, String, String, Option<String>, Option<String>) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
    let region = region_of(r.get(5)?);
    let what = format!("users row {username:?}");
    Ok(UserRecord {
        username: username.parse().map_err(|e| corrupt(&what, e))?,
        password_hash,
        role: role.parse().map_err(|e| corrupt(&what, e))?,
        agency,
        kelurahan: kelurahan.map(|k| k.parse()).transpose().map_err(|e| corrupt(&what, e))?,
        region,
    })
}

/// Adds a user; `false` if the username is taken (nothing changed).
pub fn insert_user(db: &mut dyn Sql, user: &UserRecord, now_ms: i64) -> Result<bool, StoreError> {
    let n = db.execute(
        "INSERT INTO users (username, password_hash, role, agency, kelurahan, region, created_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
        args![
            user.username.as_str(),
            user.password_hash.as_str(),
            user.role.as_str(),
            user.agency.as_deref(),
            user.kelurahan.as_ref().map(KelurahanCode::as_str),
            region_column(&user.region),
            now_ms
        ],
    )?;
    Ok(n == 1)
}

pub fn user(db: &mut dyn Sql, username: &Username) -> Result<Option<UserRecord>, StoreError> {
    db.query_opt(
        "SELECT username, password_hash, role, agency, kelurahan, region FROM users WHERE username = ?",
        args![username.as_str()],
    )?
    .map(parse_user)
    .transpose()
}

pub fn user_count(db: &mut dyn Sql) -> Result<i64, StoreError> {
    Ok(scalar(db, "SELECT count(*) FROM users", args![])?.unwrap_or(0))
}

/// Stores a session, drops expired ones and the user's oldest beyond
/// [`SESSIONS_PER_USER_MAX`].
pub fn create_session(
    db: &mut dyn Sql,
    token_hash: &str,
    username: &Username,
    expires_at_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    db.execute("DELETE FROM user_sessions WHERE expires_at_ms <= ?", args![now_ms])?;
    db.execute(
        "INSERT INTO user_sessions (token_hash, username, expires_at_ms) VALUES (?, ?, ?)",
        args![token_hash, username.as_str(), expires_at_ms],
    )?;
    db.execute(
        "DELETE FROM user_sessions WHERE username = ? AND token_hash NOT IN
            (SELECT token_hash FROM user_sessions WHERE username = ? ORDER BY expires_at_ms DESC LIMIT ?)",
        args![username.as_str(), username.as_str(), SESSIONS_PER_USER_MAX],
    )?;
    Ok(())
}

/// The user holding an unexpired session with this token hash.
pub fn session_user(db: &mut dyn Sql, token_hash: &str, now_ms: i64) -> Result<Option<UserRecord>, StoreError> {
    db.query_opt(
        "SELECT u.username, u.password_hash, u.role, u.agency, u.kelurahan, u.region
         FROM user_sessions s JOIN users u ON u.username = s.username
         WHERE s.token_hash = ? AND s.expires_at_ms > ? AND u.disabled_at_ms IS NULL",
        args![token_hash, now_ms],
    )?
    .map(parse_user)
    .transpose()
}

/// Ends a session; `false` if there was none.
pub fn delete_session(db: &mut dyn Sql, token_hash: &str) -> Result<bool, StoreError> {
    Ok(db.execute("DELETE FROM user_sessions WHERE token_hash = ?", args![token_hash])? == 1)
}

/// Whether `username` is disabled (`false` for no such user).
pub fn is_disabled(db: &mut dyn Sql, username: &Username) -> Result<bool, StoreError> {
    let at: Option<Option<i64>> =
        scalar(db, "SELECT disabled_at_ms FROM users WHERE username = ?", args![username.as_str()])?;
    Ok(at.flatten().is_some())
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
    tx: &mut dyn Sql,
    username: &Username,
    disabled: bool,
    by: Actor<'_>,
    reason: &str,
    now_ms: i64,
) -> Result<Option<usize>, StoreError> {
    let n = if disabled {
        tx.execute(
            "UPDATE users SET disabled_at_ms = coalesce(disabled_at_ms, ?) WHERE username = ?",
            args![now_ms, username.as_str()],
        )?
    } else {
        tx.execute("UPDATE users SET disabled_at_ms = NULL WHERE username = ?", args![username.as_str()])?
    };
    if n == 0 {
        return Ok(None);
    }
    let ended = if disabled {
        tx.execute("DELETE FROM user_sessions WHERE username = ?", args![username.as_str()])?
    } else {
        0
    };
    let action = if disabled { "disable_user" } else { "enable_user" };
    audit(
        tx,
        &AuditEntry {
            at_ms: now_ms,
            username: by.username,
            role: by.role,
            action,
            doc_id: None,
            reason,
            subject: Some(username.as_str()),
        },
    )?;
    Ok(Some(usize::try_from(ended).unwrap_or(usize::MAX)))
}

/// A user as the admin list shows it.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub username: String,
    pub role: String,
    pub agency: Option<String>,
    pub kelurahan: Option<String>,
    /// An agency unit's kecamatan (see [`UserRecord::region`]).
    pub region: Vec<String>,
    pub created_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
}

/// Every user, by name.
pub fn list_users(db: &mut dyn Sql) -> Result<Vec<UserSummary>, StoreError> {
    db.query(
        "SELECT username, role, agency, kelurahan, created_at_ms, disabled_at_ms, region FROM users ORDER BY username",
        args![],
    )?
    .into_iter()
    .map(|r| {
        Ok(UserSummary {
            username: r.get(0)?,
            role: r.get(1)?,
            agency: r.get(2)?,
            kelurahan: r.get(3)?,
            created_at_ms: r.get(4)?,
            disabled_at_ms: r.get(5)?,
            region: region_of(r.get(6)?),
        })
    })
    .collect()
}

/// One row of the audit log.
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry<'a> {
    pub at_ms: i64,
    pub username: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    /// The request whose personal data was seen.
    pub doc_id: Option<&'a str>,
    pub reason: &'a str,
    /// The user an account action was about.
    pub subject: Option<&'a str>,
}

/// Appends to the audit log (append-only; admins read it).
pub fn audit(db: &mut dyn Sql, e: &AuditEntry<'_>) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO audit_log (at_ms, username, role, action, doc_id, reason, subject) VALUES (?, ?, ?, ?, ?, ?, ?)",
        args![e.at_ms, e.username, e.role, e.action, e.doc_id, e.reason, e.subject],
    )?;
    Ok(())
}

/// An audit row as read back: `(at_ms, username, role, action, doc_id, reason, subject)`.
pub type AuditRow = (i64, String, String, String, Option<String>, String, Option<String>);

/// The audit log, newest first.
pub fn audit_log(db: &mut dyn Sql, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
    db.query(
        "SELECT at_ms, username, role, action, doc_id, reason, subject FROM audit_log ORDER BY id DESC LIMIT ?",
        args![limit],
    )?
    .into_iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
    .collect()
}

/// The staff id (NIP) recorded for a central user who is also on a
/// kelurahan's staff, if any (a complaint about them must not show them
/// who complained).
pub fn staff_id_of(db: &mut dyn Sql, username: &Username) -> Result<Option<String>, StoreError> {
    Ok(scalar::<Option<String>>(db, "SELECT staff_id FROM users WHERE username = ?", args![username.as_str()])?
        .flatten())
}

/// Records (or with `None` clears) a central user's staff id; `false`
/// for no such user.
pub fn set_staff_id(db: &mut dyn Sql, username: &Username, staff_id: Option<&str>) -> Result<bool, StoreError> {
    Ok(db.execute("UPDATE users SET staff_id = ? WHERE username = ?", args![staff_id, username.as_str()])? == 1)
}
