//! The admin API: kiosks (list, revoke), enrollment codes, and central
//! users (list, disable, enable). Every handler takes an [`Admin`]: other
//! roles get 403 `forbidden`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use loket_shared::KelurahanCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, AppState};
use crate::ops::admin as ops;
use crate::ops::auth::{Admin, User, Username};
use crate::store::kiosks;

/// Enrollment codes last this long unless asked otherwise.
pub const ENROLL_CODE_TTL_DEFAULT: Duration = Duration::from_secs(24 * 3600);

fn kiosk_json(st: &AppState, k: &kiosks::KioskRow) -> Value {
    let time = |ms: Option<i64>| ms.map(|ms| st.format_time(ms));
    json!({
        "id": k.id,
        "code": k.code,
        "kelurahan": k.kelurahan,
        "name": k.name,
        "enrolled_at": st.format_time(k.enrolled_at_ms),
        "last_seen": time(k.last_seen_at_ms),
        "last_sync_ok_at": time(k.last_sync_ok_at_ms),
        "pending_known": k.pending_known,
        "version": k.version,
        "revoked": k.revoked,
    })
}

pub(super) async fn kiosks(State(st): State<AppState>, _admin: Admin) -> Result<Json<Value>, ApiError> {
    let rows = ops::kiosks(&st.db).await?;
    let items: Vec<Value> = rows.iter().map(|k| kiosk_json(&st, k)).collect();
    Ok(Json(json!({ "items": items })))
}

/// `{id}` is the kiosk's id or its code (`K001`).
pub(super) async fn revoke(
    State(st): State<AppState>,
    Admin(admin): Admin,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = ops::revoke_kiosk(&st.db, &key).await?;
    tracing::warn!(kiosk = %row.code, id = %row.id, by = %admin.username, "kiosk revoked");
    Ok(Json(kiosk_json(&st, &row)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnrollCodeBody {
    kelurahan: Option<String>,
    ttl_seconds: Option<u64>,
}

pub(super) async fn enroll_code(
    State(st): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<EnrollCodeBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let kelurahan = body.kelurahan.ok_or_else(|| ApiError::missing("kelurahan"))?;
    let kelurahan: KelurahanCode =
        kelurahan.trim().parse().map_err(|e| ApiError::unprocessable("invalid_kelurahan", e))?;
    let ttl = body.ttl_seconds.map(Duration::from_secs).unwrap_or(ENROLL_CODE_TTL_DEFAULT);
    let max = st.config.enroll_code_ttl_max;
    if ttl > max {
        return Err(ApiError::unprocessable(
            "invalid_ttl",
            format!("masa berlaku paling lama {0} detik / ttl_seconds is at most {0}", max.as_secs()),
        ));
    }
    let issued = ops::issue_enroll_code(&st.db, kelurahan, ttl).await?;
    tracing::info!(kelurahan = %issued.kelurahan, by = %admin.username, "enrollment code issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "code": issued.code.to_string(),
            "kelurahan": issued.kelurahan,
            "expires_at": st.format_time(issued.expires_at_ms),
        })),
    ))
}

/// The central app's users (no password hashes).
pub(super) async fn users(State(st): State<AppState>, _admin: Admin) -> Result<Json<Value>, ApiError> {
    let rows = ops::users(&st.db).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|u| {
            json!({
                "username": u.username,
                "role": u.role,
                "agency": u.agency,
                "region": u.region,
                "kelurahan": u.kelurahan,
                "created_at": st.format_time(u.created_at_ms),
                "disabled": u.disabled_at_ms.is_some(),
                "disabled_at": u.disabled_at_ms.map(|ms| st.format_time(ms)),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountBody {
    /// Why (5-200 characters; kept in the audit log).
    reason: Option<String>,
}

/// Disables (`disable`) or enables a user, audited with the reason.
/// Disabling ends every session of the user at once: their next request
/// is 401 `unauthorized`, their next login 403 `account_disabled`. An
/// admin cannot disable themself (409 `cannot_disable_self`), so some
/// admin is always left to undo it; `sync-server enable-user` works on
/// the data directory regardless.
pub(super) async fn set_disabled(
    State(st): State<AppState>,
    Admin(admin): Admin,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<AccountBody>,
    disable: bool,
) -> Result<Json<Value>, ApiError> {
    let (username, ended) =
        change_account(&st, &admin, &raw, disable, body.reason.as_deref().unwrap_or_default()).await?;
    Ok(Json(json!({ "username": username, "disabled": disable, "sessions_ended": ended })))
}

/// Disables or enables the user named `raw` for `admin`, audited with
/// `reason`; shared by the API and the users page. The user and the
/// sessions ended.
pub(crate) async fn change_account(
    st: &AppState,
    admin: &User,
    raw: &str,
    disable: bool,
    reason: &str,
) -> Result<(Username, usize), ApiError> {
    Ok(ops::change_account(&st.db, admin, raw, disable, reason).await?)
}
