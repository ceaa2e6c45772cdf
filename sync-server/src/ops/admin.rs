//! Running the city's kiosks and accounts: listing and revoking kiosks,
//! issuing enrollment codes, listing, disabling and enabling users (each
//! audited), and what health and metrics report of the store.

use std::time::Duration;

use loket_shared::KelurahanCode;

use super::auth::{Role, User, Username};
use super::{OpError, Refusal, read, write};
use crate::store::accounts::{self, UserSummary};
use crate::store::kiosks::{self, KioskRow};
use crate::store::{Db, now_ms};

pub async fn kiosks(db: &Db) -> Result<Vec<KioskRow>, OpError> {
    read(db, |c| Ok(kiosks::list(c)?)).await
}

/// Revokes a kiosk by id or code; `not_found` if there is none.
pub async fn revoke_kiosk(db: &Db, key: &str) -> Result<KioskRow, OpError> {
    if key.len() > 64 {
        return Err(OpError::not_found());
    }
    let key = key.to_owned();
    write(db, move |tx| Ok(kiosks::revoke(tx, &key, now_ms())?)).await?.ok_or_else(OpError::not_found)
}

/// A one-time enrollment code for `kelurahan`, valid for `ttl`.
pub async fn issue_enroll_code(
    db: &Db,
    kelurahan: KelurahanCode,
    ttl: Duration,
) -> Result<super::enroll::Issued, OpError> {
    super::enroll::check_known_kelurahan(&kelurahan)?;
    write(db, move |tx| Ok(super::enroll::issue(tx, &kelurahan, ttl, now_ms())?)).await
}

pub async fn users(db: &Db) -> Result<Vec<UserSummary>, OpError> {
    read(db, |c| Ok(accounts::list_users(c)?)).await
}

/// Disables or enables an account (audited with `reason`); returns the
/// user and how many sessions ended.
pub async fn change_account(
    db: &Db,
    admin: &User,
    raw: &str,
    disable: bool,
    reason: &str,
) -> Result<(Username, usize), OpError> {
    admin.require(Role::Admin)?;
    let username: Username = raw.parse().map_err(|_| OpError::not_found())?;
    let reason = super::central::check_reason(reason)?;
    if disable && username == admin.username {
        return Err(OpError::new(
            Refusal::Conflict,
            "cannot_disable_self",
            "Anda tidak dapat menonaktifkan akun sendiri / you cannot disable your own account",
        ));
    }
    let (who, target) = (admin.username.clone(), username.clone());
    let ended = write(db, move |tx| {
        let by = accounts::Actor { username: who.as_str(), role: "admin" };
        Ok(accounts::set_disabled(tx, &target, disable, by, &reason, now_ms())?)
    })
    .await?
    .ok_or_else(OpError::not_found)?;
    tracing::warn!(user = %username, by = %admin.username, sessions_ended = ended, disabled = disable, "user account changed");
    Ok((username, ended))
}

/// Whether the database answers: a read of a real table (`SELECT 1`
/// touches no page, so an SQLite file locked by another process would
/// still pass it).
pub async fn database_answers(db: &Db) -> Result<(), OpError> {
    read(db, |c| Ok(c.query("SELECT count(*) FROM meta", crate::args![]).map(|_| ())?)).await
}

/// Kiosks seen since `since_ms` (not revoked), and kiosks enrolled and not revoked.
pub async fn kiosk_counts(db: &Db, since_ms: i64) -> Result<(i64, i64), OpError> {
    read(db, move |c| Ok((kiosks::count_seen_since(c, since_ms)?, kiosks::count_active(c)?))).await
}
