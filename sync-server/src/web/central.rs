//! The admin and agency API (DESIGN.md §9): request lists and details,
//! central events, audited personal data, rosters, the catalog and its
//! holidays, IKM. Each handler parses what came over HTTP and calls
//! `ops`; the work and its rules are there.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use loket_shared::reference::{self, StaffRole};
use loket_shared::request;
use loket_shared::skm::Element;
use loket_shared::workflow;
use loket_shared::{Code, DocId, KelurahanCode, StaffId, Status};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiQuery, AppState, error};
use crate::ops::auth::{self, Admin, User};
use crate::ops::central;
use crate::ops::reports::{self, IkmKey, ListRow, RequestFilter};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/requests", get(list_requests))
        .route("/api/admin/requests/{id}", get(request_detail))
        .route("/api/admin/requests/{id}/events", post(central_event))
        .route("/api/admin/requests/{id}/personal", get(personal_data))
        .route("/api/admin/audit", get(audit_log))
        .route("/api/admin/rosters/{kelurahan}/staff/{staff_id}", put(put_staff))
        .route("/api/admin/catalog", get(get_catalog))
        .route("/api/admin/catalog/services/{code}", put(put_service))
        .route("/api/admin/catalog/holidays/{date}", put(put_holiday).delete(delete_holiday))
        .route("/api/admin/catalog/holidays/import", post(import_holidays))
        .route("/api/admin/catalog/settings", put(put_settings))
        .route("/api/admin/catalog/hours", put(put_city_hours))
        .route("/api/admin/catalog/hours/{kelurahan}", put(put_kelurahan_hours).delete(delete_kelurahan_hours))
        .route("/api/admin/ikm", get(ikm))
        .route("/api/admin/ikm/publish", post(publish_ikm))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    kelurahan: Option<String>,
    status: Option<String>,
    service: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A list cursor, `<created_at_ms>_<doc_id>` of the last item seen.
pub(crate) fn parse_cursor(c: &str) -> Result<(i64, DocId), ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "penanda halaman tidak valid / bad cursor");
    let (ms, id) = c.split_once('_').ok_or_else(bad)?;
    Ok((ms.parse().map_err(|_| bad())?, id.parse().map_err(|_| bad())?))
}

/// The cursor after a list row (see [`parse_cursor`]).
pub(crate) fn cursor_of(row: &ListRow) -> String {
    format!("{}_{}", row.6, row.0)
}

async fn list_requests(
    State(st): State<AppState>,
    user: User,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let mut f = RequestFilter { limit: p.limit.unwrap_or(100).clamp(1, 1000), ..RequestFilter::default() };
    if let Some(k) = p.kelurahan.as_deref().filter(|s| !s.is_empty()) {
        f.kelurahan =
            Some(k.parse::<KelurahanCode>().map_err(|e| ApiError::bad_request("invalid_kelurahan", e))?.to_string());
    }
    if let Some(s) = p.status.as_deref().filter(|s| !s.is_empty()) {
        f.status =
            Some(s.parse::<Status>().map_err(|e| ApiError::bad_request("invalid_status", e))?.as_str().to_owned());
    }
    if let Some(s) = p.service.as_deref().filter(|s| !s.is_empty()) {
        f.service = Some(s.parse::<Code>().map_err(|e| ApiError::bad_request("invalid_service", e))?.to_string());
    }
    if let Some(c) = p.cursor.as_deref().filter(|s| !s.is_empty()) {
        f.after = Some(parse_cursor(c).map(|(ms, id)| (ms, id.to_string()))?);
    }
    let limit = f.limit;
    let rows = reports::query_requests(&st.db, &user, f).await?;
    let more = rows.len() > limit as usize;
    let rows = &rows[..rows.len().min(limit as usize)];
    let next = if more { rows.last().map(cursor_of) } else { None };
    let items: Vec<Value> = rows
        .iter()
        .map(|(id, ticket, kel, kiosk, service, status, created, updated, conflict)| {
            json!({
                "id": id, "ticket": ticket, "kelurahan": kel, "kiosk": kiosk, "service": service,
                "status": status, "created_at": st.format_time(*created), "updated_at": st.format_time(*updated),
                "conflict": conflict,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": next })))
}

async fn request_detail(
    State(st): State<AppState>,
    user: User,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (view, derived, heads) = central::load_visible(&st.db, &user, &raw).await?;
    let mut detail = detail_json(&st, &view, &derived);
    detail["heads"] = json!(heads);
    Ok(Json(detail))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalParams {
    /// Why the full values are needed (kept in the audit log).
    reason: Option<String>,
}

/// The applicant's full NIK and phone (API).
async fn personal_data(
    State(st): State<AppState>,
    user: User,
    Path(raw): Path<String>,
    ApiQuery(params): ApiQuery<PersonalParams>,
) -> Result<Json<Value>, ApiError> {
    let p = central::reveal_personal(&st.db, &user, &raw, params.reason.as_deref().unwrap_or_default()).await?;
    Ok(Json(json!({ "id": p.id, "name": p.name, "nik": p.nik, "phone": p.phone })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    limit: Option<u32>,
}

/// The audit log, newest first (admins only).
async fn audit_log(
    State(st): State<AppState>,
    _admin: Admin,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let rows = central::audit_log(&st.db, limit).await?;
    // `request`: the request whose personal data was seen; `subject`: the
    // user an account action was about.
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(at, username, role, action, doc, reason, subject)| {
            json!({
                "at": st.format_time(at), "username": username, "role": role, "action": action,
                "request": doc, "subject": subject, "reason": reason,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

fn detail_json(st: &AppState, view: &request::RequestView, derived: &workflow::Derived) -> Value {
    let events: Vec<Value> = derived
        .ordered
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "kind": e.kind.as_str(), "from": e.from, "to": e.to, "by": e.by,
                "at": st.format_time(e.at_ms), "hlc": e.hlc.to_string(), "node": e.node,
                "note": e.note, "agency": e.agency, "parents": e.parents,
                "waiting": e.waiting, "result_ref": e.result_ref,
            })
        })
        .collect();
    let conflicts: Vec<Value> = derived
        .conflict
        .iter()
        .map(|c| json!({ "event_id": c.event_id, "to": c.to, "by": c.by, "at": st.format_time(c.at_ms), "agency": c.agency, "note": c.note }))
        .collect();
    let rating = view.ratings.first().map(|r| {
        json!({
            "scores": r.scores.to_map().into_iter().map(|(k, v)| (k.code(), v)).collect::<BTreeMap<_, _>>(),
            "comment": r.comment,
            "at": st.format_time(r.at_ms),
        })
    });
    let updated_at = derived.ordered.iter().map(|e| e.at_ms).max().unwrap_or(view.created_at_ms);
    json!({
        "id": view.id, "ticket": view.ticket, "kelurahan": view.kelurahan, "kiosk": view.kiosk,
        "service": view.service, "status": derived.status, "conflict": derived.has_conflict(),
        "created_at": st.format_time(view.created_at_ms), "updated_at": st.format_time(updated_at),
        "agency": derived.agency, "waiting": derived.waiting,
        "results": derived.results.iter().map(|(agency, reference)| json!({ "agency": agency, "reference": reference })).collect::<Vec<_>>(),
        "applicant": {
            "name": view.applicant.name,
            "nik": view.applicant.nik.masked(),
            "phone": view.applicant.phone.as_ref().map(|p| p.masked()),
        },
        "events": events, "rating": rating, "conflicts": conflicts,
        "extra_ratings": view.ratings.len().saturating_sub(1),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    to: Option<String>,
    note: Option<String>,
    agency: Option<String>,
    result_ref: Option<String>,
}

/// A central or agency event. With a conflict waiting, an admin's event
/// resolves it (it descends from every side).
async fn central_event(
    State(st): State<AppState>,
    user: User,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let result = central::append_central_event(
        &st.db,
        &st.writer,
        &user,
        &raw,
        central::EventInput { to: body.to, note: body.note, agency: body.agency, result_ref: body.result_ref },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(result)))
}

// ------------------------------------------------------------------ rosters

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffBody {
    name: String,
    role: StaffRole,
    /// `pns`, `pppk` or `non_asn`; absent, what the id's shape says.
    #[serde(default)]
    kind: Option<loket_shared::StaffKind>,
    /// A new password (hashed here), or absent to keep the current one.
    password: Option<String>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// Adds or changes a staff member in a kelurahan's roster document; the
/// kiosks of that kelurahan get it at their next sync and can log in with
/// it offline from then on. `active: false` revokes.
async fn put_staff(
    State(st): State<AppState>,
    _admin: Admin,
    Path((kelurahan, staff_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<StaffBody>,
) -> Result<Json<Value>, ApiError> {
    let kelurahan: KelurahanCode = kelurahan.parse().map_err(|e| ApiError::bad_request("invalid_kelurahan", e))?;
    let staff_id: StaffId = staff_id.parse().map_err(|e| ApiError::bad_request("invalid_staff_id", e))?;
    let kind = body.kind.unwrap_or_else(|| staff_id.default_kind());
    if !kind.accepts(&staff_id) {
        return Err(ApiError::unprocessable(
            "staff_kind_mismatch",
            "ID tidak sesuai jenis pegawai (PNS: NIP; PPPK: NI PPPK 18 angka; non-ASN: NA-…) / the staff id does not fit the staff kind (PNS: NIP; PPPK: 18-digit PPPK number; non-ASN: NA-…)",
        ));
    }
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable("invalid_name", "nama 1-100 huruf / name of 1-100 characters"));
    }
    let new_hash = match body.password {
        Some(p) => {
            auth::check_new_password(&p).map_err(|e| ApiError::unprocessable("weak_password", e))?;
            let _permit = st.hashing.clone().acquire_owned().await.map_err(error::internal)?;
            Some(
                tokio::task::spawn_blocking(move || auth::hash_password(&p))
                    .await
                    .map_err(error::internal)?
                    .map_err(error::internal)?,
            )
        }
        None => None,
    };
    let result =
        central::put_staff(&st.db, &st.writer, kelurahan, staff_id, name, body.role, kind, new_hash, body.active)
            .await?;
    Ok(Json(result))
}

// ------------------------------------------------------------------ catalog

async fn get_catalog(State(st): State<AppState>, _user: User) -> Result<Json<Value>, ApiError> {
    let catalog = central::load_catalog(&st.db).await?;
    Ok(Json(json!({
        "agencies": catalog.agencies,
        "services": catalog.services,
        "holidays": catalog.holidays,
        "cuti_bersama_open": catalog.cuti_bersama_open,
        "service_hours": catalog.service_hours,
        "kelurahan_hours": catalog.kelurahan_hours,
    })))
}

/// Adds or changes a service in the catalog (the server's document); the
/// kiosks get it at their next sync. `active: false` withdraws it.
async fn put_service(
    State(st): State<AppState>,
    _admin: Admin,
    Path(code): Path<String>,
    ApiJson(service): ApiJson<reference::Service>,
) -> Result<Json<Value>, ApiError> {
    let result = central::put_service(&st.db, &st.writer, &code, service).await?;
    Ok(Json(result))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayBody {
    name: String,
    /// `libur` (default) or `cuti_bersama`.
    #[serde(default)]
    kind: loket_shared::reference::HolidayKind,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    year: i32,
    /// `tanggal,nama[,jenis]` lines.
    csv: String,
}

/// Replaces a year's holidays with a CSV list (the year's decree).
async fn import_holidays(
    State(st): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<Value>, ApiError> {
    if !(2000..=2100).contains(&body.year) {
        return Err(ApiError::bad_request("invalid_year", "tahun tidak valid / invalid year"));
    }
    let list = central::parse_holiday_csv(body.year, &body.csv)?;
    Ok(Json(central::import_holidays(&st.db, &st.writer, body.year, list).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    cuti_bersama_open: bool,
}

/// Whether offices open on cuti bersama days (then those are working days).
async fn put_settings(
    State(st): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(central::set_cuti_bersama_open(&st.db, &st.writer, body.cuti_bersama_open).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursBody {
    /// `{ "mon": "08:00-16:00", … }`, closed days left out.
    hours: loket_shared::sla::ServiceHours,
}

/// The city's service hours (every kelurahan without hours of its own).
async fn put_city_hours(
    State(st): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<HoursBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(central::set_hours(&st.db, &st.writer, None, Some(body.hours)).await?))
}

fn kelurahan_param(raw: &str) -> Result<KelurahanCode, ApiError> {
    raw.parse().map_err(|e: loket_shared::ids::KelurahanCodeError| ApiError::bad_request("invalid_kelurahan", e))
}

/// A kelurahan's own service hours.
async fn put_kelurahan_hours(
    State(st): State<AppState>,
    _admin: Admin,
    Path(kelurahan): Path<String>,
    ApiJson(body): ApiJson<HoursBody>,
) -> Result<Json<Value>, ApiError> {
    let k = kelurahan_param(&kelurahan)?;
    Ok(Json(central::set_hours(&st.db, &st.writer, Some(k), Some(body.hours)).await?))
}

/// The kelurahan follows the city's hours again.
async fn delete_kelurahan_hours(
    State(st): State<AppState>,
    _admin: Admin,
    Path(kelurahan): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let k = kelurahan_param(&kelurahan)?;
    Ok(Json(central::set_hours(&st.db, &st.writer, Some(k), None).await?))
}

/// Adds or renames a holiday (offices closed; not a working day for the
/// SLA). Kiosks get it at their next sync; finished requests whose span
/// touches the day get their working time again.
async fn put_holiday(
    State(st): State<AppState>,
    _admin: Admin,
    Path(date): Path<String>,
    ApiJson(body): ApiJson<HolidayBody>,
) -> Result<Json<Value>, ApiError> {
    let date = central::parse_holiday_date(&date)?;
    let done = central::set_holiday(&st.db, &st.writer, date, Some((body.name, body.kind))).await?;
    Ok(Json(done))
}

async fn delete_holiday(
    State(st): State<AppState>,
    _admin: Admin,
    Path(date): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let date = central::parse_holiday_date(&date)?;
    Ok(Json(central::set_holiday(&st.db, &st.writer, date, None).await?))
}

// ------------------------------------------------------------------ IKM

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    /// `2026`, `2026-H1`, `2026-Q3` or `2026-11`.
    period: String,
}

/// Publishes each office's IKM for a period to its kiosks (admins only):
/// `{period, label, offices}`; 422 `no_respondents` when the period has
/// none anywhere.
async fn publish_ikm(
    State(st): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<Json<Value>, ApiError> {
    let (period, offices) = super::pages::publish_ikm(&st, &admin, &body.period).await?;
    Ok(Json(json!({ "period": period.code(), "label": period.label(), "offices": offices })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IkmParams {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
}

fn parse_day(s: &str, offset: time::UtcOffset) -> Result<i64, ApiError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, &fmt)
        .map_err(|_| ApiError::bad_request("invalid_date", "tanggal YYYY-MM-DD / date as YYYY-MM-DD"))?;
    let t = date.with_hms(0, 0, 0).expect("midnight").assume_offset(offset);
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// IKM per group for ratings given in `[from, to]` (local days,
/// inclusive). `sample_min` is the Krejcie-Morgan minimum for the number of
/// requests filed in the group in the period (the service users).
async fn ikm(
    State(st): State<AppState>,
    user: User,
    ApiQuery(p): ApiQuery<IkmParams>,
) -> Result<Json<Value>, ApiError> {
    let offset = st.config.utc_offset();
    let from = p.from.as_deref().map(|s| parse_day(s, offset)).transpose()?.unwrap_or(0);
    let to = match p.to.as_deref() {
        Some(s) => parse_day(s, offset)? + 86_400_000,
        None => i64::MAX,
    };
    let key = IkmKey::parse(p.group_by.as_deref().unwrap_or("kelurahan"))
        .ok_or_else(|| ApiError::bad_request("invalid_group_by", "group_by: kelurahan | kecamatan | service"))?;
    let groups: Vec<Value> = reports::ikm_groups(&st.db, &user, offset, (from, to), key)
        .await?
        .into_iter()
        .map(|g| {
            let nrr: BTreeMap<&str, Option<f64>> = Element::ALL
                .iter()
                .map(|e| (e.code(), g.tally.nrr(*e).map(|v| (v * 1000.0).round() / 1000.0)))
                .collect();
            let ikm = g.tally.ikm();
            json!({
                "key": g.key,
                "respondents": g.tally.respondents,
                "service_users": g.service_users,
                "nrr": nrr,
                "ikm": ikm.map(|i| i.value()),
                "grade": ikm.map(|i| i.grade.to_string()),
                "sample_min": g.sample_min,
                "sample_sufficient": g.sufficient(),
            })
        })
        .collect();
    Ok(Json(json!({ "groups": groups })))
}
