//! The complaint API (issue 16; DESIGN.md §9 style): the list, one
//! complaint, the audited complainant, and central steps. Each handler
//! parses what came over HTTP and calls `ops::complaints`, where the
//! rules are.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use loket_shared::KelurahanCode;
use loket_shared::complaint::{self, Flag};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiQuery, AppState};
use crate::ops::auth::User;
use crate::ops::complaints::{self, Detail, ListFilter, StepRequest};
use crate::store::complaints::{ListRow, flag_name};
use crate::store::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/complaints", get(list))
        .route("/api/admin/complaints/figures", get(figures))
        .route("/api/admin/complaints/{id}", get(detail))
        .route("/api/admin/complaints/{id}/steps", post(step))
        .route("/api/admin/complaints/{id}/complainant", get(complainant))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    kelurahan: Option<String>,
    state: Option<String>,
    overdue: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn parse_state(s: &str) -> Result<complaint::State, ApiError> {
    [complaint::State::Received, complaint::State::Registered, complaint::State::Answered, complaint::State::Closed]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                "state: received, registered, answered atau closed / state: received, registered, answered or closed",
            )
        })
}

fn about_json(kind: &str, target: Option<&str>) -> Value {
    json!({ "kind": kind, "target": target })
}

fn item_json(st: &AppState, r: &ListRow, now: i64) -> Value {
    json!({
        "id": r.id, "ticket": r.ticket, "kelurahan": r.kelurahan,
        "about": about_json(&r.about_kind, r.about_target.as_deref()),
        "class": r.class, "unit": r.unit, "state": r.state,
        "received_at": st.format_time(r.received_at_ms), "due_at": st.format_time(r.due_at_ms),
        "overdue": r.overdue(now), "lapor": r.lapor,
    })
}

async fn list(
    State(st): State<AppState>,
    user: User,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let mut f = ListFilter { limit: p.limit.unwrap_or(100).clamp(1, 1000), ..ListFilter::default() };
    if let Some(k) = p.kelurahan.as_deref().filter(|s| !s.is_empty()) {
        f.kelurahan = Some(k.parse::<KelurahanCode>().map_err(|e| ApiError::bad_request("invalid_kelurahan", e))?);
    }
    if let Some(s) = p.state.as_deref().filter(|s| !s.is_empty()) {
        f.state = Some(parse_state(s)?);
    }
    f.overdue = match p.overdue.as_deref().unwrap_or("") {
        "" => None,
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => return Err(ApiError::bad_request("invalid_overdue", "overdue: true atau false / overdue: true or false")),
    };
    if let Some(c) = p.cursor.as_deref().filter(|s| !s.is_empty()) {
        f.after = Some(super::central::parse_cursor(c).map(|(ms, id)| (ms, id.to_string()))?);
    }
    let limit = f.limit as usize;
    let now = now_ms();
    let rows = complaints::list(&st.db, &user, f, now).await?;
    let more = rows.len() > limit;
    let rows = &rows[..rows.len().min(limit)];
    let next = if more { rows.last().map(|r| format!("{}_{}", r.received_at_ms, r.id)) } else { None };
    let items: Vec<Value> = rows.iter().map(|r| item_json(&st, r, now)).collect();
    Ok(Json(json!({ "items": items, "next": next })))
}

fn flag_json(f: &Flag) -> Value {
    let steps = match f {
        Flag::ConcurrentAnswers(s)
        | Flag::ConcurrentRegistrations(s)
        | Flag::ExtraExtension(s)
        | Flag::ConcurrentForwards(s)
        | Flag::AnswerUnseenAtClose(s) => s,
    };
    json!({ "kind": flag_name(f), "steps": steps })
}

/// One complaint as the user may see it: the complainant masked (name
/// initials, NIK and phone masked), absent if anonymous, and hidden
/// altogether from the staff member it is about.
pub(crate) fn detail_json(st: &AppState, d: &Detail, now: i64) -> Value {
    let (view, derived) = (&d.view, &d.derived);
    let steps: Vec<Value> = derived
        .ordered
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "kind": complaints::kind_name(s.kind), "by": s.by, "at": st.format_time(s.at_ms),
                "hlc": s.hlc.to_string(), "class": s.class.map(complaint::Class::as_str),
                "unit": s.unit.as_ref().map(ToString::to_string), "days": s.days, "lapor": s.lapor,
                "text": s.text, "parents": s.parents,
            })
        })
        .collect();
    let answers: Vec<Value> = derived
        .answers
        .iter()
        .map(|a| json!({ "step_id": a.step_id, "by": a.by, "at": st.format_time(a.at_ms), "text": a.text }))
        .collect();
    let complainant = match (&view.complainant, d.complainant_hidden) {
        (Some(c), false) => json!({
            "name": c.name.masked(),
            "nik": c.nik.as_ref().map(loket_shared::Nik::masked),
            "phone": c.phone.as_ref().map(loket_shared::Phone::masked),
        }),
        _ => Value::Null,
    };
    let (about_kind, about_target) = (view.about.kind().as_str(), crate::store::complaints::about_target(&view.about));
    let (received, due) = match &d.row {
        Some(r) => (Some(r.received_at_ms), Some(r.due_at_ms)),
        None => (None, None),
    };
    json!({
        "id": view.id, "ticket": view.ticket, "kelurahan": view.kelurahan, "kiosk": view.kiosk,
        "about": about_json(about_kind, about_target.as_deref()),
        "anonymous": view.complainant.is_none(),
        "complainant": complainant, "complainant_hidden": d.complainant_hidden,
        "text": view.text, "state": derived.state.as_str(),
        "class": derived.class.map(complaint::Class::as_str),
        "unit": derived.unit.as_ref().map(ToString::to_string),
        "extended_days": derived.extension_days,
        "received_at": received.map(|ms| st.format_time(ms)),
        "due_at": due.map(|ms| st.format_time(ms)),
        "overdue": d.row.as_ref().is_some_and(|r| r.overdue(now)),
        "lapor": derived.lapor, "answers": answers,
        "flags": derived.flags.iter().map(flag_json).collect::<Vec<_>>(),
        "steps": steps, "may_act": d.may_act, "heads": d.heads,
    })
}

async fn detail(State(st): State<AppState>, user: User, Path(raw): Path<String>) -> Result<Json<Value>, ApiError> {
    let d = complaints::load_visible(&st.db, &user, &raw).await?;
    Ok(Json(detail_json(&st, &d, now_ms())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonParams {
    /// Why the identity is needed (kept in the audit log).
    reason: Option<String>,
}

/// The complainant's full name, NIK and phone (audited).
async fn complainant(
    State(st): State<AppState>,
    user: User,
    Path(raw): Path<String>,
    ApiQuery(p): ApiQuery<ReasonParams>,
) -> Result<Json<Value>, ApiError> {
    let who = complaints::reveal_complainant(&st.db, &user, &raw, p.reason.as_deref().unwrap_or_default()).await?;
    Ok(Json(json!({ "id": who.id, "name": who.name, "nik": who.nik, "phone": who.phone })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    kind: String,
    class: Option<String>,
    unit: Option<String>,
    days: Option<u32>,
    lapor: Option<String>,
    text: Option<String>,
}

/// A central step: `{kind: register|extend|lapor|answer|close, class?,
/// unit?, days?, lapor?, text?}` → `201 {id, step_id, kind, state, flags}`.
async fn step(
    State(st): State<AppState>,
    user: User,
    Path(raw): Path<String>,
    ApiJson(b): ApiJson<StepBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = StepRequest { kind: b.kind, class: b.class, unit: b.unit, days: b.days, lapor: b.lapor, text: b.text };
    let result = complaints::append_step(&st.db, &st.writer, &user, &raw, req).await?;
    Ok((StatusCode::CREATED, Json(result)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FiguresParams {
    periode: Option<String>,
}

fn median_json(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| json!(super::pages::working_days(ms)))
}

/// The complaint figures of a period (`periode`, as the pages write it;
/// default this year) within the user's scope: the figures page's, as
/// JSON. Times to answer are in the office's working days.
async fn figures(
    State(st): State<AppState>,
    user: User,
    ApiQuery(p): ApiQuery<FiguresParams>,
) -> Result<Json<Value>, ApiError> {
    use crate::ops::complaints::ThemeAbout;
    let (period, (from, to), f) = super::pages::complaint_figures(&st, &user, p.periode.as_deref()).await?;
    let offices: Vec<Value> = f
        .offices
        .iter()
        .map(|o| {
            json!({
                "kelurahan": o.kelurahan, "received": o.received, "open": o.open, "overdue": o.overdue,
                "answered_in_time": o.answered_in_time, "answered_late": o.answered_late,
                "median_answer_working_days": median_json(o.median_answer_ms),
                "u8": { "nrr": o.u8.nrr.map(|v| (v * 10_000.0).floor() / 10_000.0), "ratings": o.u8.rated },
            })
        })
        .collect();
    let services: Vec<Value> = f
        .services
        .iter()
        .map(|s| {
            json!({
                "service": s.service, "received": s.received, "open": s.open, "overdue": s.overdue,
                "median_answer_working_days": median_json(s.median_answer_ms),
            })
        })
        .collect();
    let themes: Vec<Value> = f
        .themes
        .iter()
        .map(|t| {
            let (about, target, hidden) = match &t.about {
                ThemeAbout::Office => ("office", None, false),
                ThemeAbout::Service(s) => ("service", Some(s.as_str()), false),
                ThemeAbout::Request(s) => ("request", s.as_deref(), false),
                ThemeAbout::Staff(s) => ("staff", s.as_deref(), s.is_none()),
            };
            json!({ "kelurahan": t.kelurahan, "about": about, "target": target, "target_hidden": hidden, "count": t.count })
        })
        .collect();
    Ok(Json(json!({
        "period": period.code(), "from": st.format_time(from), "to": st.format_time(to),
        "answer_time_unit": "working_days",
        "offices": offices, "services": services, "themes": themes,
    })))
}
