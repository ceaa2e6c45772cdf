//! Central reads and writes over the merged documents: the admin request
//! API, central and agency workflow events (merged like any other change
//! and pulled by the kiosk at its next sync), staff rosters (documents the
//! server owns), and the IKM figures.
//!
//! Reads go to the projections; writes load the document, apply the same
//! workflow rules as a kiosk (`loket_shared::workflow`), and save, project
//! and log it in one transaction. The server writes with its own actor and
//! hybrid logical clock, both persisted in `meta`.

use std::collections::{BTreeMap, HashMap};

use automerge::{ActorId, AutoCommit};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use loket_shared::reference::{self, Roster, StaffMember, StaffRole};
use loket_shared::request::{self, NOTE_MAX_CHARS};
use loket_shared::skm::{Element, Tally, krejcie_morgan_min_sample};
use loket_shared::sync::DocType;
use loket_shared::workflow::{self, Event, EventKind, TransitionError};
use loket_shared::{Code, DocId, Hlc, KelurahanCode, StaffId, Status};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Admin, Role, User};
use crate::store::docs;
use crate::store::{StoreError, meta_get, meta_set, now_ms, random_bytes};
use crate::web::{ApiError, ApiJson, ApiQuery, AppState};

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
        .route("/api/admin/ikm", get(ikm))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

// ------------------------------------------------------------------ reference documents

/// Creates the catalog document from the built-in catalog if the server
/// has none yet (first start).
pub fn ensure_catalog(conn: &Connection) -> Result<(), StoreError> {
    if let Some(id) = docs::reference_doc(conn, DocType::Catalog, None)? {
        // Keep the rollups' SLA table in step with the stored catalog.
        if let Some(stored) = docs::load(conn, &id)?
            && let Ok(catalog) = reference::read_catalog(&stored.doc)
        {
            docs::record_service_slas(conn, &catalog)?;
            docs::record_holidays(conn, &catalog)?;
        }
        build_step_times_once(conn)?;
        return Ok(());
    }
    let catalog: reference::Catalog = toml::from_str(reference::DEFAULT_CATALOG_TOML)
        .map_err(|e| StoreError::Invalid(format!("built-in catalog: {e}")))?;
    let mut doc = AutoCommit::new().with_actor(server_actor(conn)?);
    reference::create_catalog(&mut doc, &catalog).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let id = docs::create_reference(conn, DocType::Catalog, None, doc, now_ms(), random_bytes())?;
    docs::record_service_slas(conn, &catalog)?;
    docs::record_holidays(conn, &catalog)?;
    build_step_times_once(conn)?;
    tracing::info!(doc = %id, services = catalog.services.len(), "created the service catalog");
    Ok(())
}

/// Fills `request_steps` from the projections the first time a store
/// starts with it (a store from before it has finished requests).
fn build_step_times_once(conn: &Connection) -> Result<(), StoreError> {
    if meta_get(conn, "request_steps_built")?.is_none() {
        let n = docs::rebuild_request_steps(conn)?;
        meta_set(conn, "request_steps_built", "1")?;
        tracing::info!(requests = n, "step times measured for the time-lost page");
    }
    Ok(())
}

/// Gives the server a new Automerge actor; called at every start.
///
/// An actor must never write two different changes with the same sequence
/// number, and a server restored from a backup has forgotten the changes
/// its actor wrote after the backup (kiosks may still hold them). A fresh
/// actor per start makes that impossible, at the cost of one more actor in
/// the documents the server edits.
pub fn rotate_server_actor(conn: &Connection) -> Result<ActorId, StoreError> {
    let actor = crate::seal::SealKey::load_or_create(conn)?.new_actor();
    meta_set(conn, "server_actor", &actor.to_hex_string())?;
    Ok(actor)
}

/// The server's Automerge actor for this run (see [`rotate_server_actor`]).
fn server_actor(conn: &Connection) -> Result<ActorId, StoreError> {
    if let Some(hex) = meta_get(conn, "server_actor")? {
        return hex::decode(hex).map(ActorId::from).map_err(|e| StoreError::Invalid(format!("server_actor: {e}")));
    }
    let actor = ActorId::from(random_bytes::<16>());
    meta_set(conn, "server_actor", &actor.to_hex_string())?;
    Ok(actor)
}

/// The next server HLC stamp, above `seen` and every stamp issued before.
fn next_hlc(conn: &Connection, seen: Option<Hlc>) -> Result<Hlc, StoreError> {
    let last: Hlc = meta_get(conn, "server_hlc")?.and_then(|s| s.parse().ok()).unwrap_or(Hlc::ZERO);
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let next = match seen {
        Some(remote) => last.observe(remote, now),
        None => last.tick(now),
    };
    meta_set(conn, "server_hlc", &next.to_string())?;
    Ok(next)
}

// ------------------------------------------------------------------ requests

/// `(doc_id, ticket, kelurahan, kiosk, service, status, created, updated, conflict)`
pub(crate) type ListRow = (String, String, String, String, String, String, i64, i64, bool);
/// A request with its derived workflow and sorted hex heads.
pub(crate) type Detail = (request::RequestView, workflow::Derived, Vec<String>);
/// Rating tallies and service-user counts per group key.
type IkmGroups = (BTreeMap<String, Tally>, BTreeMap<String, u64>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    kelurahan: Option<String>,
    status: Option<String>,
    service: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// What a user may see of the requests: admins everything, a supervisor
/// their kelurahan, an agency what was handed to it.
fn scope_sql(user: &User) -> (String, Vec<String>) {
    scope_sql_as(user, "")
}

/// `scope_sql` for a query where `requests` is aliased (`alias` is `q.`).
fn scope_sql_as(user: &User, alias: &str) -> (String, Vec<String>) {
    match user.role {
        Role::Admin => (String::new(), vec![]),
        Role::Supervisor => match &user.kelurahan {
            Some(k) => (format!(" AND {alias}kelurahan = ?"), vec![k.to_string()]),
            None => (String::new(), vec![]),
        },
        Role::Agency => (
            format!(" AND {alias}doc_id IN (SELECT doc_id FROM events WHERE to_status = 'handed_off' AND agency = ?)"),
            vec![user.agency.clone().unwrap_or_default()],
        ),
    }
}

/// Which requests a list shows (all optional).
#[derive(Debug, Default, Clone)]
pub(crate) struct RequestFilter {
    pub kelurahan: Option<KelurahanCode>,
    pub status: Option<Status>,
    pub service: Option<Code>,
    /// Only requests in conflict (the review queue).
    pub conflict: bool,
    /// Only requests this agency holds now (handed to it or taken by it).
    pub with_agency: Option<String>,
    /// `(created_at_ms, doc_id)` of the last item seen.
    pub after: Option<(i64, DocId)>,
    pub limit: u32,
}

/// One list row: `(doc_id, ticket, kelurahan, kiosk, service, status,
/// created, updated, conflict)`, newest first, within the user's scope;
/// one more than `limit` if there are more.
pub(crate) async fn query_requests(st: &AppState, user: &User, f: RequestFilter) -> Result<Vec<ListRow>, ApiError> {
    let mut sql = String::from(
        "SELECT doc_id, ticket, kelurahan, kiosk, service, status, created_at_ms, updated_at_ms, conflict
         FROM requests WHERE 1 = 1",
    );
    let mut args: Vec<String> = Vec::new();
    if let Some(k) = &f.kelurahan {
        sql.push_str(" AND kelurahan = ?");
        args.push(k.to_string());
    }
    if let Some(s) = f.status {
        sql.push_str(" AND status = ?");
        args.push(s.as_str().into());
    }
    if let Some(s) = &f.service {
        sql.push_str(" AND service = ?");
        args.push(s.to_string());
    }
    if f.conflict {
        sql.push_str(" AND conflict = 1");
    }
    if let Some(a) = &f.with_agency {
        // Handed to it and not yet taken, or taken by it (the projection's
        // agency is set only while an agency holds the request).
        sql.push_str(" AND status IN ('handed_off', 'in_progress') AND agency = ?");
        args.push(a.clone());
    }
    if let Some((ms, id)) = &f.after {
        sql.push_str(" AND (created_at_ms < ? OR (created_at_ms = ? AND doc_id < ?))");
        args.extend([ms.to_string(), ms.to_string(), id.to_string()]);
    }
    let (scope, scope_args) = scope_sql(user);
    sql.push_str(&scope);
    args.extend(scope_args);
    let limit = f.limit.clamp(1, 1000);
    sql.push_str(&format!(" ORDER BY created_at_ms DESC, doc_id DESC LIMIT {}", limit + 1));
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<ListRow>, StoreError> {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?)
    })
    .await
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
        f.kelurahan = Some(k.parse().map_err(|e| ApiError::bad_request("invalid_kelurahan", e))?);
    }
    if let Some(s) = p.status.as_deref().filter(|s| !s.is_empty()) {
        f.status = Some(s.parse().map_err(|e| ApiError::bad_request("invalid_status", e))?);
    }
    if let Some(s) = p.service.as_deref().filter(|s| !s.is_empty()) {
        f.service = Some(s.parse().map_err(|e| ApiError::bad_request("invalid_service", e))?);
    }
    if let Some(c) = p.cursor.as_deref().filter(|s| !s.is_empty()) {
        f.after = Some(parse_cursor(c)?);
    }
    let limit = f.limit;
    let rows = query_requests(&st, &user, f).await?;
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

fn may_see(user: &User, view: &request::RequestView, derived: &workflow::Derived) -> bool {
    match user.role {
        Role::Admin => true,
        Role::Supervisor => user.kelurahan.as_ref().is_none_or(|k| *k == view.kelurahan),
        Role::Agency => {
            derived.ordered.iter().any(|e| e.to == Status::HandedOff && e.agency.as_deref() == user.agency.as_deref())
        }
    }
}

async fn request_detail(
    State(st): State<AppState>,
    user: User,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (view, derived, heads) = load_visible(&st, &user, &raw).await?;
    let mut detail = detail_json(&st, &view, &derived);
    detail["heads"] = json!(heads);
    Ok(Json(detail))
}

/// A request the user may see, with its derived workflow and heads; 404
/// for anything else (unknown, not a request, not theirs).
pub(crate) async fn load_visible(st: &AppState, user: &User, raw: &str) -> Result<Detail, ApiError> {
    let id: DocId = raw.parse().map_err(|_| ApiError::not_found())?;
    let db = st.db.clone();
    let loaded = blocking(move || {
        Ok(db.read(|c| -> Result<Option<Detail>, StoreError> {
            match docs::load(c, &id.to_string())? {
                Some(mut s) if s.doc_type == DocType::Request => {
                    let mut heads: Vec<String> = s.doc.get_heads().iter().map(|h| h.to_string()).collect();
                    heads.sort();
                    docs::read_request(&s.doc)
                        .map(|(v, d)| Some((v, d, heads)))
                        .map_err(|e| StoreError::Corrupt { what: id.to_string(), reason: e })
                }
                _ => Ok(None),
            }
        })?)
    })
    .await?;
    let (view, derived, heads) = loaded.ok_or_else(ApiError::not_found)?;
    if !may_see(user, &view, &derived) {
        return Err(ApiError::not_found());
    }
    Ok((view, derived, heads))
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
    let p = reveal_personal(&st, &user, &raw, params.reason.as_deref().unwrap_or_default()).await?;
    Ok(Json(json!({ "id": p.id, "name": p.name, "nik": p.nik, "phone": p.phone })))
}

/// An applicant's full personal data.
pub(crate) struct Personal {
    pub id: String,
    pub name: String,
    pub nik: String,
    pub phone: Option<String>,
}

impl Personal {
    fn of(id: String, view: &request::RequestView) -> Personal {
        Personal {
            id,
            name: view.applicant.name.as_str().to_owned(),
            nik: view.applicant.nik.as_str().to_owned(),
            phone: view.applicant.phone.as_ref().map(|p| p.as_str().to_owned()),
        }
    }
}

/// Checks that the reason for seeing full personal data is given (it is
/// kept in the audit log).
pub(crate) fn check_reason(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim().to_owned();
    if reason.chars().count() < 5 || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "reason_required",
            "sebutkan keperluan (5-200 huruf) / give the reason (5-200 characters)",
        ));
    }
    Ok(reason)
}

/// Refuses full personal data to roles that see masked values only.
pub(crate) fn check_personal_role(user: &User) -> Result<(), ApiError> {
    if user.role == Role::Supervisor {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_personal_data",
            "peran Anda hanya melihat data tersamar / your role sees masked personal data only",
        ));
    }
    Ok(())
}

/// The applicant's full NIK and phone, for roles whose work needs them (an
/// admin; the agency the request was handed to), shared by the API and the
/// request page. Every view is written to the audit log first: if that
/// fails, nothing is shown. Supervisors see masked values only.
pub(crate) async fn reveal_personal(st: &AppState, user: &User, raw: &str, reason: &str) -> Result<Personal, ApiError> {
    let id: DocId = raw.parse().map_err(|_| ApiError::not_found())?;
    check_personal_role(user)?;
    let reason = check_reason(reason)?;
    let (view, _, _) = load_visible(st, user, raw).await?;
    let db = st.db.clone();
    let (who, role, doc) = (user.username.as_str().to_owned(), user.role.as_str(), id.to_string());
    blocking(move || {
        Ok(db.write(|tx| {
            tx.execute(
                "INSERT INTO audit_log (at_ms, username, role, action, doc_id, reason) VALUES (?1, ?2, ?3, 'view_personal', ?4, ?5)",
                rusqlite::params![now_ms(), who, role, doc, reason],
            )
            .map_err(StoreError::from)
        })?)
    })
    .await?;
    tracing::info!(doc = %id, user = %user.username.as_str(), "full personal data viewed (audited)");
    Ok(Personal::of(id.to_string(), &view))
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
    let db = st.db.clone();
    let rows = blocking(move || {
        type Row = (i64, String, String, String, Option<String>, String, Option<String>);
        Ok(db.read(|c| -> Result<Vec<Row>, StoreError> {
            let mut stmt = c.prepare(
                "SELECT at_ms, username, role, action, doc_id, reason, subject FROM audit_log ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?)
    })
    .await?;
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
        "agency": derived.agency,
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
}

/// A central or agency event. With a conflict waiting, an admin's event
/// resolves it (it descends from every side).
async fn central_event(
    State(st): State<AppState>,
    user: User,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let result = append_central_event(&st, &user, &raw, body.to, body.note, body.agency).await?;
    Ok((StatusCode::CREATED, Json(result)))
}

/// Checks and writes a central or agency event (shared by the API and the
/// web app's forms): who may act, the workflow, the seal, the projection.
pub(crate) async fn append_central_event(
    st: &AppState,
    user: &User,
    raw: &str,
    to: Option<String>,
    note: Option<String>,
    agency: Option<String>,
) -> Result<Value, ApiError> {
    struct Body {
        to: Option<String>,
        note: Option<String>,
        agency: Option<String>,
    }
    let body = Body { to, note, agency };
    let id: DocId = raw.parse().map_err(|_| ApiError::not_found())?;
    if user.role == Role::Supervisor {
        return Err(ApiError::forbidden());
    }
    let to: Status = body
        .to
        .as_deref()
        .ok_or_else(|| ApiError::missing("to"))?
        .parse()
        .map_err(|e| ApiError::unprocessable("invalid_status", e))?;
    let note = body.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if let Some(n) = &note
        && (n.chars().count() > NOTE_MAX_CHARS || n.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(ApiError::unprocessable("invalid_note", "catatan tidak valid / invalid note"));
    }
    let agency = body.agency.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    let db = st.db.clone();
    let by = match (&user.role, &user.agency) {
        (Role::Agency, Some(a)) => format!("agency:{a}:{}", user.username.as_str()),
        _ => format!("admin:{}", user.username.as_str()),
    };
    let user2 = user.clone();
    let result = blocking(move || {
        db.write(|tx| -> Result<Result<Value, ApiError>, StoreError> {
            let doc_id = id.to_string();
            let Some(mut stored) = docs::load(tx, &doc_id)? else { return Ok(Err(ApiError::not_found())) };
            if stored.doc_type != DocType::Request {
                return Ok(Err(ApiError::not_found()));
            }
            let (view, derived) =
                docs::read_request(&stored.doc).map_err(|e| StoreError::Corrupt { what: doc_id.clone(), reason: e })?;
            if !may_see(&user2, &view, &derived) {
                return Ok(Err(ApiError::not_found()));
            }
            let kind = if derived.has_conflict() { EventKind::Resolve } else { EventKind::Transition };
            let actor = match (&user2.role, &user2.agency) {
                (Role::Agency, Some(a)) => workflow::Actor::Agency(a.as_str()),
                (Role::Agency, None) => return Ok(Err(ApiError::forbidden())),
                _ => workflow::Actor::Admin,
            };
            if let Err(e) = workflow::check_transition(&derived, actor, kind, to, agency.as_deref()) {
                let status = match e {
                    TransitionError::AgencyRequired | TransitionError::AgencyNotExpected => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    TransitionError::NotYourAgency => StatusCode::FORBIDDEN,
                    _ => StatusCode::CONFLICT,
                };
                return Ok(Err(ApiError::new(status, e.code(), e)));
            }
            let heads_before = stored.doc.get_heads();
            stored.doc.set_actor(server_actor(tx)?);
            let latest = derived.ordered.iter().map(|e| e.hlc).max();
            let now = now_ms();
            let mut event = Event {
                id: DocId::new_v7(u64::try_from(now).unwrap_or(0), random_bytes()).to_string(),
                hlc: next_hlc(tx, latest)?,
                node: server_actor(tx)?.to_hex_string(),
                at_ms: now,
                by: by.clone(),
                kind,
                from: Some(derived.status),
                to,
                note: note.clone(),
                agency: agency.clone(),
                parents: derived.frontier.clone(),
                seal: None,
            };
            event.seal = Some(crate::seal::SealKey::load_or_create(tx)?.seal(&doc_id, &event));
            request::append_event(&mut stored.doc, &event).map_err(|e| StoreError::Invalid(e.to_string()))?;
            stored.doc.commit();
            let (view, after) =
                docs::read_request(&stored.doc).map_err(|e| StoreError::Corrupt { what: doc_id.clone(), reason: e })?;
            docs::save(tx, &doc_id, &mut stored, &heads_before, false, None, now)?;
            docs::record_receipts(tx, &doc_id, &mut stored.doc, &heads_before, None, now)?;
            docs::project_request(tx, &view, &after)?;
            Ok(Ok(
                json!({ "id": doc_id, "event_id": event.id, "status": after.status, "conflict": after.has_conflict() }),
            ))
        })
        .map_err(ApiError::from)
    })
    .await??;
    tracing::info!(doc = %id, user = %user.username.as_str(), to = %to, "central event");
    Ok(result)
}

// ------------------------------------------------------------------ rosters

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffBody {
    name: String,
    role: StaffRole,
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
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable("invalid_name", "nama 1-100 huruf / name of 1-100 characters"));
    }
    let new_hash = match body.password {
        Some(p) => {
            crate::auth::check_new_password(&p).map_err(|e| ApiError::unprocessable("weak_password", e))?;
            let _permit = st.hashing.clone().acquire_owned().await.map_err(ApiError::internal)?;
            Some(
                tokio::task::spawn_blocking(move || crate::auth::hash_password(&p))
                    .await
                    .map_err(ApiError::internal)?
                    .map_err(ApiError::internal)?,
            )
        }
        None => None,
    };
    let db = st.db.clone();
    let (role, active) = (body.role, body.active);
    let kel = kelurahan.clone();
    let sid = staff_id.clone();
    let result = blocking(move || {
        db.write(|tx| -> Result<Result<Value, ApiError>, StoreError> {
            let now = now_ms();
            let existing = docs::reference_doc(tx, DocType::Roster, Some(kel.as_str()))?;
            let member =
                |hash: String| StaffMember { id: sid.clone(), name: name.clone(), role, password_hash: hash, active };
            match existing {
                None => {
                    let Some(hash) = new_hash.clone() else {
                        return Ok(Err(ApiError::missing("password")));
                    };
                    let roster = Roster { kelurahan: kel.clone(), staff: vec![member(hash)] };
                    let mut doc = AutoCommit::new().with_actor(server_actor(tx)?);
                    reference::create_roster(&mut doc, &roster).map_err(|e| StoreError::Invalid(e.to_string()))?;
                    docs::create_reference(tx, DocType::Roster, Some(kel.as_str()), doc, now, random_bytes())?;
                }
                Some(doc_id) => {
                    let Some(mut stored) = docs::load(tx, &doc_id)? else {
                        return Err(StoreError::Corrupt { what: doc_id, reason: "listed but missing".into() });
                    };
                    let roster = reference::read_roster(&stored.doc)
                        .map_err(|e| StoreError::Corrupt { what: doc_id.clone(), reason: e.to_string() })?;
                    let hash = match (new_hash.clone(), roster.staff.iter().find(|s| s.id == sid)) {
                        (Some(h), _) => h,
                        (None, Some(current)) => current.password_hash.clone(),
                        (None, None) => return Ok(Err(ApiError::missing("password"))),
                    };
                    let heads_before = stored.doc.get_heads();
                    stored.doc.set_actor(server_actor(tx)?);
                    reference::put_staff(&mut stored.doc, &member(hash))
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    stored.doc.commit();
                    if stored.doc.get_heads() != heads_before {
                        docs::save(tx, &doc_id, &mut stored, &heads_before, false, None, now)?;
                    }
                }
            }
            Ok(Ok(json!({ "kelurahan": kel, "staff_id": sid, "active": active })))
        })
        .map_err(ApiError::from)
    })
    .await??;
    Ok(Json(result))
}

// ------------------------------------------------------------------ catalog

async fn get_catalog(State(st): State<AppState>, _user: User) -> Result<Json<Value>, ApiError> {
    let catalog = load_catalog(&st).await?;
    Ok(Json(json!({ "agencies": catalog.agencies, "services": catalog.services, "holidays": catalog.holidays })))
}

/// The catalog as the server holds it.
pub(crate) async fn load_catalog(st: &AppState) -> Result<reference::Catalog, ApiError> {
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<reference::Catalog, StoreError> {
            let Some(id) = docs::reference_doc(c, DocType::Catalog, None)? else {
                return Ok(reference::Catalog::default());
            };
            let stored = docs::load(c, &id)?
                .ok_or_else(|| StoreError::Corrupt { what: id.clone(), reason: "missing".into() })?;
            reference::read_catalog(&stored.doc).map_err(|e| StoreError::Corrupt { what: id, reason: e.to_string() })
        })?)
    })
    .await
}

/// Adds or changes a service in the catalog (the server's document); the
/// kiosks get it at their next sync. `active: false` withdraws it.
async fn put_service(
    State(st): State<AppState>,
    _admin: Admin,
    Path(code): Path<String>,
    ApiJson(service): ApiJson<reference::Service>,
) -> Result<Json<Value>, ApiError> {
    if service.code.as_str() != code {
        return Err(ApiError::unprocessable(
            "code_mismatch",
            "kode di alamat dan isi berbeda / code in path and body differ",
        ));
    }
    let text_ok = |t: &str| !t.trim().is_empty() && t.chars().count() <= 500 && !t.chars().any(char::is_control);
    let lists_ok = service.requirements_id.iter().chain(&service.requirements_en).all(|t| text_ok(t))
        && service.requirements_id.len() <= 30
        && service.requirements_en.len() <= 30;
    let fields_ok = [
        &service.name_id,
        &service.name_en,
        &service.procedure_id,
        &service.product_id,
        &service.cost_id,
        &service.complaint_id,
    ]
    .iter()
    .all(|t| text_ok(t));
    if !lists_ok || !fields_ok || !(1..=365).contains(&service.sla_days) {
        return Err(ApiError::unprocessable("invalid_service", "isian layanan tidak valid / invalid service fields"));
    }
    let db = st.db.clone();
    let result = blocking(move || {
        db.write(|tx| -> Result<Result<Value, ApiError>, StoreError> {
            let Some(id) = docs::reference_doc(tx, DocType::Catalog, None)? else {
                return Err(StoreError::Invalid("no catalog document".into()));
            };
            let mut stored = docs::load(tx, &id)?
                .ok_or_else(|| StoreError::Corrupt { what: id.clone(), reason: "missing".into() })?;
            let catalog = reference::read_catalog(&stored.doc)
                .map_err(|e| StoreError::Corrupt { what: id.clone(), reason: e.to_string() })?;
            if service.handoff.iter().any(|a| catalog.agency(a.as_str()).is_none()) {
                return Ok(Err(ApiError::unprocessable(
                    "unknown_agency",
                    "instansi dalam handoff tidak dikenal / an agency in handoff is not known",
                )));
            }
            let heads_before = stored.doc.get_heads();
            stored.doc.set_actor(server_actor(tx)?);
            reference::put_service(&mut stored.doc, &service).map_err(|e| StoreError::Invalid(e.to_string()))?;
            docs::record_service_slas(
                tx,
                &reference::Catalog { services: vec![service.clone()], ..Default::default() },
            )?;
            stored.doc.commit();
            if stored.doc.get_heads() != heads_before {
                docs::check_reference(&stored.doc, DocType::Catalog).map_err(StoreError::Invalid)?;
                docs::save(tx, &id, &mut stored, &heads_before, false, None, now_ms())?;
            }
            Ok(Ok(json!({ "code": service.code, "active": service.active })))
        })
        .map_err(ApiError::from)
    })
    .await??;
    Ok(Json(result))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayBody {
    name: String,
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
    let date = parse_holiday_date(&date)?;
    let done = set_holiday(&st, date, Some(body.name)).await?;
    Ok(Json(done))
}

async fn delete_holiday(
    State(st): State<AppState>,
    _admin: Admin,
    Path(date): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let date = parse_holiday_date(&date)?;
    Ok(Json(set_holiday(&st, date, None).await?))
}

pub(crate) fn parse_holiday_date(s: &str) -> Result<time::Date, ApiError> {
    reference::ymd::parse(s.trim()).ok_or_else(|| {
        ApiError::unprocessable("invalid_date", "tanggal harus YYYY-MM-DD / the date must be YYYY-MM-DD")
    })
}

/// Adds, renames (`Some(name)`) or removes (`None`) a holiday in the
/// catalog document, in one transaction with the projections it changes
/// (shared by the API and the web app).
pub(crate) async fn set_holiday(st: &AppState, date: time::Date, name: Option<String>) -> Result<Value, ApiError> {
    let holiday = match name {
        Some(name) => {
            let h = reference::Holiday { date, name: name.trim().to_owned() };
            h.check().map_err(|e| ApiError::unprocessable("invalid_holiday", e))?;
            Some(h)
        }
        None => None,
    };
    let db = st.db.clone();
    let result = blocking(move || {
        db.write(|tx| -> Result<Result<Value, ApiError>, StoreError> {
            let Some(id) = docs::reference_doc(tx, DocType::Catalog, None)? else {
                return Err(StoreError::Invalid("no catalog document".into()));
            };
            let mut stored = docs::load(tx, &id)?
                .ok_or_else(|| StoreError::Corrupt { what: id.clone(), reason: "missing".into() })?;
            let heads_before = stored.doc.get_heads();
            stored.doc.set_actor(server_actor(tx)?);
            let invalid = |e: request::SchemaError| StoreError::Invalid(e.to_string());
            match &holiday {
                Some(h) => reference::put_holiday(&mut stored.doc, h).map_err(invalid)?,
                None => {
                    if !reference::delete_holiday(&mut stored.doc, date).map_err(invalid)? {
                        return Ok(Err(ApiError::not_found()));
                    }
                }
            }
            stored.doc.commit();
            let mut reprojected = 0;
            if stored.doc.get_heads() != heads_before {
                docs::check_reference(&stored.doc, DocType::Catalog).map_err(StoreError::Invalid)?;
                docs::save(tx, &id, &mut stored, &heads_before, false, None, now_ms())?;
                let catalog = reference::read_catalog(&stored.doc)
                    .map_err(|e| StoreError::Corrupt { what: id.clone(), reason: e.to_string() })?;
                reprojected = docs::record_holidays(tx, &catalog)?;
            }
            Ok(Ok(json!({
                "date": reference::ymd::format(date),
                "name": holiday.as_ref().map(|h| h.name.clone()),
                "reprojected": reprojected,
            })))
        })
        .map_err(ApiError::from)
    })
    .await??;
    tracing::info!(date = %reference::ymd::format(date), removed = result["name"].is_null(), "holiday changed");
    Ok(result)
}

// ------------------------------------------------------------------ IKM

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
    let groups: Vec<Value> = ikm_groups(&st, &user, from, to, key)
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

/// How IKM figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IkmKey {
    Kelurahan,
    Kecamatan,
    Service,
    /// Local calendar month of the rating, `YYYY-MM` (for trends).
    Month,
}

impl IkmKey {
    pub(crate) fn parse(s: &str) -> Option<IkmKey> {
        match s {
            "kelurahan" => Some(IkmKey::Kelurahan),
            "kecamatan" => Some(IkmKey::Kecamatan),
            "service" => Some(IkmKey::Service),
            "month" => Some(IkmKey::Month),
            _ => None,
        }
    }
}

/// One group's figures.
#[derive(Debug, Clone)]
pub(crate) struct IkmGroup {
    pub key: String,
    pub tally: Tally,
    /// Requests filed in the group and period (never fewer than respondents).
    pub service_users: u64,
    pub sample_min: u64,
}

impl IkmGroup {
    pub(crate) fn sufficient(&self) -> bool {
        self.tally.respondents >= self.sample_min && self.tally.respondents > 0
    }
}

/// IKM per group over ratings with `from <= at < to` (a request's first
/// rating only), within the user's scope. Groups with service users but
/// no respondents are included (zero respondents, no IKM).
pub(crate) async fn ikm_groups(
    st: &AppState,
    user: &User,
    from: i64,
    to: i64,
    key: IkmKey,
) -> Result<Vec<IkmGroup>, ApiError> {
    let offset_secs = st.config.utc_offset().whole_seconds();
    let (q_key, r_key) = match key {
        IkmKey::Kelurahan => ("q.kelurahan".to_owned(), "kelurahan".to_owned()),
        IkmKey::Kecamatan => ("q.kecamatan".to_owned(), "kecamatan".to_owned()),
        IkmKey::Service => ("q.service".to_owned(), "service".to_owned()),
        IkmKey::Month => (
            format!("strftime('%Y-%m', r.at_ms / 1000, 'unixepoch', '{offset_secs} seconds')"),
            format!("strftime('%Y-%m', created_at_ms / 1000, 'unixepoch', '{offset_secs} seconds')"),
        ),
    };
    let (scope, scope_args) = scope_sql(user);
    let (scope_q, _) = scope_sql_as(user, "q.");
    let db = st.db.clone();
    let (tallies, users) = blocking(move || {
        Ok(db.read(|c| -> Result<IkmGroups, StoreError> {
            let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
            let sql = format!(
                "SELECT {q_key}, count(*), sum(r.u1), sum(r.u2), sum(r.u3), sum(r.u4), sum(r.u5), sum(r.u6), sum(r.u7), sum(r.u8), sum(r.u9)
                 FROM ratings r JOIN requests q USING (doc_id)
                 WHERE r.at_ms >= ?1 AND r.at_ms < ?2
                   AND r.rating_id = (SELECT min(rating_id) FROM ratings r2 WHERE r2.doc_id = r.doc_id)
                   {scope_q}
                 GROUP BY 1"
            );
            let mut stmt = c.prepare(&sql)?;
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(from), Box::new(to)];
            for a in &scope_args {
                args.push(Box::new(a.clone()));
            }
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())))?;
            while let Some(r) = rows.next()? {
                let mut t = Tally { respondents: r.get::<_, i64>(1)? as u64, sums: [0; 9] };
                for (i, s) in t.sums.iter_mut().enumerate() {
                    *s = r.get::<_, i64>(2 + i)? as u64;
                }
                tallies.insert(r.get(0)?, t);
            }
            let mut users: BTreeMap<String, u64> = BTreeMap::new();
            let sql = format!(
                "SELECT {r_key}, count(*) FROM requests WHERE created_at_ms >= ?1 AND created_at_ms < ?2 {scope} GROUP BY 1"
            );
            let mut stmt = c.prepare(&sql)?;
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(from), Box::new(to)];
            for a in &scope_args {
                args.push(Box::new(a.clone()));
            }
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())))?;
            while let Some(r) = rows.next()? {
                users.insert(r.get(0)?, r.get::<_, i64>(1)? as u64);
            }
            Ok((tallies, users))
        })?)
    })
    .await?;
    let keys: std::collections::BTreeSet<&String> = tallies.keys().chain(users.keys()).collect();
    Ok(keys
        .into_iter()
        .map(|k| {
            let tally = tallies.get(k).copied().unwrap_or_default();
            let service_users = users.get(k).copied().unwrap_or(0).max(tally.respondents);
            IkmGroup { key: k.clone(), tally, service_users, sample_min: krejcie_morgan_min_sample(service_users) }
        })
        .collect())
}

/// The latest comments with ratings given in `[from, to)`, within scope.
pub(crate) async fn ikm_comments(
    st: &AppState,
    user: &User,
    from: i64,
    to: i64,
    limit: u32,
) -> Result<Vec<(i64, String, String)>, ApiError> {
    let (scope_q, scope_args) = scope_sql_as(user, "q.");
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<(i64, String, String)>, StoreError> {
            let sql = format!(
                "SELECT r.at_ms, q.kelurahan, r.comment FROM ratings r JOIN requests q USING (doc_id)
                 WHERE r.at_ms >= ?1 AND r.at_ms < ?2 AND r.comment IS NOT NULL AND r.comment != '' {scope_q}
                 ORDER BY r.at_ms DESC LIMIT {limit}"
            );
            let mut stmt = c.prepare(&sql)?;
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(from), Box::new(to)];
            for a in &scope_args {
                args.push(Box::new(a.clone()));
            }
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?)
    })
    .await
}

/// One group's service figures for the overview.
#[derive(Debug, Clone, Default)]
pub(crate) struct OverviewGroup {
    pub key: String,
    /// Filed in the period.
    pub filed: u64,
    /// Finished in the period, and of those within their SLA.
    pub finished: u64,
    pub within_sla: u64,
    /// Open now (not finished, or in conflict), and in conflict now.
    pub open: u64,
    pub conflicts: u64,
}

impl OverviewGroup {
    pub(crate) fn merge(&mut self, o: &OverviewGroup) {
        self.filed += o.filed;
        self.finished += o.finished;
        self.within_sla += o.within_sla;
        self.open += o.open;
        self.conflicts += o.conflicts;
    }

    /// Share finished within the SLA, in percent with one decimal.
    pub(crate) fn sla_percent(&self) -> Option<f64> {
        (self.finished > 0).then(|| (self.within_sla as f64 * 1000.0 / self.finished as f64).round() / 10.0)
    }
}

/// Service figures per kelurahan or kecamatan for `[from, to)`, within the
/// user's scope. SLA: the catalog's working days of each service, against
/// the projected working time (`requests.working_ms`).
pub(crate) async fn overview_groups(
    st: &AppState,
    user: &User,
    from: i64,
    to: i64,
    key: IkmKey,
    catalog: &reference::Catalog,
) -> Result<Vec<OverviewGroup>, ApiError> {
    let column = match key {
        IkmKey::Kecamatan => "kecamatan",
        _ => "kelurahan",
    };
    // SLA in working milliseconds per service, as a CASE the query applies.
    let mut case = String::from("CASE service");
    let mut sla_args: Vec<Box<dyn rusqlite::ToSql + Send>> = Vec::new();
    for s in &catalog.services {
        case.push_str(" WHEN ? THEN ?");
        sla_args.push(Box::new(s.code.to_string()));
        sla_args.push(Box::new(i64::from(s.sla_days) * 86_400_000));
    }
    case.push_str(" ELSE -1 END");
    if sla_args.is_empty() {
        // No catalog yet: nothing can be within an SLA.
        case = "-1".into();
    }
    let (scope, scope_args) = scope_sql(user);
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<OverviewGroup>, StoreError> {
            let sql = format!(
                "SELECT {column},
                        sum(created_at_ms >= ?1 AND created_at_ms < ?2),
                        sum(finished_at_ms >= ?1 AND finished_at_ms < ?2),
                        sum(finished_at_ms >= ?1 AND finished_at_ms < ?2 AND working_ms <= ({case})),
                        sum(finished_at_ms IS NULL),
                        sum(conflict)
                 FROM requests WHERE 1 = 1 {scope} GROUP BY 1"
            );
            let mut stmt = c.prepare(&sql)?;
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&from, &to];
            for a in &sla_args {
                args.push(a.as_ref());
            }
            for a in &scope_args {
                args.push(a);
            }
            // Positional: ?1 and ?2 are named above; the CASE and scope
            // placeholders follow in order.
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
                Ok(OverviewGroup {
                    key: r.get(0)?,
                    filed: r.get::<_, i64>(1)? as u64,
                    finished: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                    within_sla: r.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64,
                    open: r.get::<_, i64>(4)? as u64,
                    conflicts: r.get::<_, i64>(5)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?)
    })
    .await
}

/// Requests filed per local day in `[from, to)`, within scope.
pub(crate) async fn filed_per_day(st: &AppState, user: &User, from: i64, to: i64) -> Result<Vec<(i64, u64)>, ApiError> {
    let offset_ms = i64::from(st.config.utc_offset().whole_seconds()) * 1000;
    let (scope, scope_args) = scope_sql(user);
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<(i64, u64)>, StoreError> {
            let sql = format!(
                "SELECT (created_at_ms + {offset_ms}) / 86400000, count(*) FROM requests
                 WHERE created_at_ms >= ?1 AND created_at_ms < ?2 {scope} GROUP BY 1 ORDER BY 1"
            );
            let mut stmt = c.prepare(&sql)?;
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&from, &to];
            for a in &scope_args {
                args.push(a);
            }
            let rows =
                stmt.query_map(rusqlite::params_from_iter(args), |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?)
    })
    .await
}

// ------------------------------------------------------------------ where time is lost

/// One finished request's steps: working time spent in each status, in
/// the order the workflow went, with the agency for hand-offs.
#[derive(Debug, Clone)]
pub(crate) struct Journey {
    pub doc_id: String,
    pub ticket: String,
    pub kelurahan: String,
    pub service: String,
    pub working_ms: i64,
    /// `(status, agency, working ms)` per step.
    pub steps: Vec<(Status, Option<String>, i64)>,
}

/// Whether the user sees the whole city (no kelurahan or agency scope):
/// city-wide pages can then read rollups kept for the whole city.
pub(crate) fn city_wide(user: &User) -> bool {
    scope_sql_as(user, "").0.is_empty()
}

/// The city's "where time is lost" figures for a period, from the
/// projections: step-time histograms (`step_hist`, per month), every
/// finished journey's working time, and the breaches with their longest
/// step (`request_steps`).
pub(crate) struct TimeLostCity {
    /// `(service, status, agency or "", representative ms, how many)`.
    pub steps: Vec<(String, String, String, i64, u64)>,
    /// The working ms of each request finished in the period, by kelurahan.
    pub journeys: BTreeMap<String, Vec<i64>>,
    pub finished: usize,
    /// How many finished later than their SLA.
    pub breach_count: usize,
    /// Those with the largest overrun first (at most `breaches_max`).
    pub breaches: Vec<CityBreach>,
}

pub(crate) struct CityBreach {
    pub ticket: String,
    pub doc_id: String,
    pub kelurahan: String,
    pub service: String,
    pub working_ms: i64,
    pub sla_ms: i64,
    pub longest: (Status, Option<String>, i64),
}

pub(crate) async fn time_lost_city(
    st: &AppState,
    months: (i64, i64),
    (from, to): (i64, i64),
    breaches_max: Option<usize>,
) -> Result<TimeLostCity, ApiError> {
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<TimeLostCity, StoreError> {
            let mut stmt = c.prepare(
                "SELECT service, status, agency, bucket, sum(n) FROM step_hist
                 WHERE month >= ?1 AND month <= ?2 AND n > 0 GROUP BY service, status, agency, bucket",
            )?;
            let steps = stmt
                .query_map(params![months.0, months.1], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, docs::bucket_ms(r.get(3)?), r.get::<_, i64>(4)?.max(0) as u64))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            // One pass over the finished requests (a covering index): every
            // journey's working time, the breaches counted, and the largest
            // overruns kept (all of them when there is no limit).
            let sla: HashMap<String, i64> = c
                .prepare("SELECT code, sla_days * 86400000 FROM service_sla")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut stmt = c.prepare(
                "SELECT kelurahan, service, coalesce(working_ms, 0), doc_id FROM requests INDEXED BY requests_finished_cover
                 WHERE finished_at_ms >= ?1 AND finished_at_ms < ?2",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            let mut journeys: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            let mut finished = 0;
            let mut breach_count = 0;
            // (overrun, doc) of the largest overruns, smallest on top
            let mut worst: std::collections::BinaryHeap<std::cmp::Reverse<(i64, std::cmp::Reverse<String>)>> =
                std::collections::BinaryHeap::new();
            while let Some(r) = rows.next()? {
                let working: i64 = r.get(2)?;
                finished += 1;
                if let Some(&sla_ms) = sla.get(r.get_ref(1)?.as_str().unwrap_or_default())
                    && working > sla_ms
                {
                    breach_count += 1;
                    worst.push(std::cmp::Reverse((working - sla_ms, std::cmp::Reverse(r.get(3)?))));
                    if breaches_max.is_some_and(|n| worst.len() > n) {
                        worst.pop();
                    }
                }
                let kelurahan = r.get_ref(0)?.as_str().unwrap_or_default();
                match journeys.get_mut(kelurahan) {
                    Some(v) => v.push(working),
                    None => {
                        journeys.insert(kelurahan.to_owned(), vec![working]);
                    }
                }
            }
            let mut detail = c.prepare_cached(
                "SELECT ticket, kelurahan, service, working_ms FROM requests WHERE doc_id = ?1",
            )?;
            // The longest step: the last of the longest in the journey's
            // order, as the journeys' own reading picks it.
            let mut longest = c.prepare(
                "SELECT status, agency, working_ms FROM request_steps WHERE doc_id = ?1
                 ORDER BY working_ms DESC, seq DESC LIMIT 1",
            )?;
            let mut breaches = Vec::with_capacity(worst.len());
            for std::cmp::Reverse((_, std::cmp::Reverse(doc_id))) in worst.into_sorted_vec() {
                let (ticket, kelurahan, service, working_ms): (String, String, String, i64) =
                    detail.query_row([&doc_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                let step = longest
                    .query_row([&doc_id], |s| Ok((s.get::<_, String>(0)?, s.get::<_, String>(1)?, s.get::<_, i64>(2)?)))
                    .optional()?;
                breaches.push(CityBreach {
                    ticket,
                    doc_id,
                    kelurahan,
                    sla_ms: sla.get(&service).copied().unwrap_or(0),
                    service,
                    working_ms,
                    longest: match step {
                        Some((status, agency, ms)) => {
                            (status.parse().unwrap_or(Status::Submitted), Some(agency).filter(|a| !a.is_empty()), ms)
                        }
                        None => (Status::Submitted, None, 0),
                    },
                });
            }
            Ok(TimeLostCity { steps, journeys, finished, breach_count, breaches })
        })?)
    })
    .await
}

/// Folds `visit` over the journeys of every request finished in
/// `[from, to)` within scope, one at a time, so a city's year of journeys
/// is never held in memory at once; returns the accumulator. Event times
/// are taken in causal (HLC) order and never go backwards, never before
/// filing and never after the finish, so a kiosk clock days off shifts time
/// between steps but cannot invent any.
pub(crate) async fn fold_journeys<A: Send + 'static>(
    st: &AppState,
    user: &User,
    from: i64,
    to: i64,
    init: A,
    mut visit: impl FnMut(&mut A, &Journey) + Send + 'static,
) -> Result<A, ApiError> {
    let offset = st.config.utc_offset();
    let (scope_q, scope_args) = scope_sql_as(user, "q.");
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<A, StoreError> {
            // Requests in finish order (the partial index), each one's
            // events right after it in causal order: SQLite sorts only
            // within each request, never the whole period.
            let sql = format!(
                "SELECT q.doc_id, q.ticket, q.kelurahan, q.service, q.created_at_ms, q.finished_at_ms, q.working_ms,
                        e.at_ms, e.to_status, e.agency
                 FROM requests q INDEXED BY requests_by_finished JOIN events e USING (doc_id)
                 WHERE q.finished_at_ms >= ?1 AND q.finished_at_ms < ?2 {scope_q}
                 ORDER BY q.finished_at_ms, q.doc_id, e.hlc, e.node, e.event_id"
            );
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&from, &to];
            for a in &scope_args {
                args.push(a);
            }
            let holidays = docs::projection_holidays(c)?;
            let mut stmt = c.prepare(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            let mut acc = init;
            let mut journey: Option<(Journey, i64, i64)> = None;
            let mut events: Vec<docs::JourneyEvent> = Vec::new();
            let mut finish = |acc: &mut A, j: Option<(Journey, i64, i64)>, events: &mut Vec<_>| {
                if let Some((mut j, created, finished)) = j {
                    j.steps = docs::journey_steps(created, finished, events, offset, &holidays);
                    visit(acc, &j);
                }
                events.clear();
            };
            while let Some(r) = rows.next()? {
                let doc_id: String = r.get(0)?;
                if journey.as_ref().is_none_or(|(j, _, _)| j.doc_id != doc_id) {
                    finish(&mut acc, journey.take(), &mut events);
                    let created: i64 = r.get(4)?;
                    let finished: i64 = r.get::<_, Option<i64>>(5)?.unwrap_or(created);
                    let j = Journey {
                        doc_id,
                        ticket: r.get(1)?,
                        kelurahan: r.get(2)?,
                        service: r.get(3)?,
                        working_ms: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                        steps: Vec::new(),
                    };
                    journey = Some((j, created, finished));
                }
                let Ok(status) = r.get_ref(8)?.as_str().unwrap_or_default().parse::<Status>() else { continue };
                events.push((r.get(7)?, status, r.get(9)?));
            }
            finish(&mut acc, journey.take(), &mut events);
            Ok(acc)
        })?)
    })
    .await
}

// ------------------------------------------------------------------ staff competency

/// A staff member of a kelurahan roster.
#[derive(Debug, Clone)]
pub(crate) struct StaffRow {
    pub nip: String,
    pub name: String,
    pub kelurahan: String,
    pub role: String,
    pub active: bool,
}

/// Every kelurahan roster's staff (supervisors: their kelurahan only).
pub(crate) async fn staff_register(st: &AppState, user: &User) -> Result<Vec<StaffRow>, ApiError> {
    let only = match user.role {
        Role::Supervisor => user.kelurahan.as_ref().map(ToString::to_string),
        _ => None,
    };
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<StaffRow>, StoreError> {
            let mut stmt =
                c.prepare("SELECT doc_id, kelurahan FROM docs WHERE doc_type = 'roster' ORDER BY kelurahan")?;
            let ids: Vec<(String, Option<String>)> =
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for (id, kel) in ids {
                let kel = kel.unwrap_or_default();
                if only.as_ref().is_some_and(|k| *k != kel) {
                    continue;
                }
                let Some(stored) = docs::load(c, &id)? else { continue };
                let Ok(roster) = reference::read_roster(&stored.doc) else { continue };
                for m in roster.staff {
                    out.push(StaffRow {
                        nip: m.id.to_string(),
                        name: m.name,
                        kelurahan: kel.clone(),
                        role: m.role.as_str().to_owned(),
                        active: m.active,
                    });
                }
            }
            Ok(out)
        })?)
    })
    .await
}

/// What one staff member handled in a window: distinct requests they
/// acted on, the working times of those finished, and the first ratings'
/// U6 (competence) and U7 (conduct) sums.
#[derive(Debug, Clone, Default)]
pub(crate) struct StaffWork {
    pub handled: u64,
    pub working_ms: Vec<i64>,
    pub within_sla: u64,
    pub rated: u64,
    pub u6: u64,
    pub u7: u64,
}

impl StaffWork {
    pub(crate) fn nrr(&self, sum: u64) -> Option<f64> {
        (self.rated > 0).then(|| sum as f64 / self.rated as f64)
    }

    pub(crate) fn sla_percent(&self) -> Option<f64> {
        (!self.working_ms.is_empty()).then(|| self.within_sla as f64 * 100.0 / self.working_ms.len() as f64)
    }
}

/// Per staff id, the requests whose last step by them was in `[from, to)`.
pub(crate) async fn staff_work(
    st: &AppState,
    user: &User,
    from: i64,
    to: i64,
    only: Option<String>,
) -> Result<BTreeMap<String, StaffWork>, ApiError> {
    let (scope_q, scope_args) = scope_sql_as(user, "q.");
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<BTreeMap<String, StaffWork>, StoreError> {
            let who = if only.is_some() { "AND nip = ?3" } else { "" };
            // One row per staff member and request they acted on, the last
            // time in the period (`request_staff`, kept by triggers).
            let sql = format!(
                "SELECT q.nip, q.finished, q.working_ms, q.within_sla, q.u6, q.u7
                 FROM request_staff q
                 WHERE q.last_at_ms >= ?1 AND q.last_at_ms < ?2 {who} {scope_q}"
            );
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(from), Box::new(to)];
            if let Some(o) = &only {
                args.push(Box::new(o.clone()));
            }
            for a in &scope_args {
                args.push(Box::new(a.clone()));
            }
            let mut stmt = c.prepare(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())))?;
            let mut out: BTreeMap<String, StaffWork> = BTreeMap::new();
            while let Some(r) = rows.next()? {
                let w = out.entry(r.get(0)?).or_default();
                w.handled += 1;
                if r.get::<_, bool>(1)? {
                    w.working_ms.push(r.get::<_, Option<i64>>(2)?.unwrap_or(0));
                    w.within_sla += u64::from(r.get::<_, bool>(3)?);
                }
                if let (Some(u6), Some(u7)) = (r.get::<_, Option<i64>>(4)?, r.get::<_, Option<i64>>(5)?) {
                    w.rated += 1;
                    w.u6 += u6 as u64;
                    w.u7 += u7 as u64;
                }
            }
            for w in out.values_mut() {
                w.working_ms.sort_unstable();
            }
            Ok(out)
        })?)
    })
    .await
}

/// A recorded training.
#[derive(Debug, Clone)]
pub(crate) struct Training {
    pub nip: String,
    pub day: time::Date,
    pub topic: String,
    pub provider: String,
}

pub(crate) async fn trainings(st: &AppState) -> Result<Vec<Training>, ApiError> {
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<Training>, StoreError> {
            let mut stmt =
                c.prepare("SELECT nip, day, topic, provider FROM trainings ORDER BY day DESC, id DESC LIMIT 500")?;
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (nip, day, topic, provider) = row?;
                if let Ok(day) = time::Date::parse(&day, &fmt) {
                    out.push(Training { nip, day, topic, provider });
                }
            }
            Ok(out)
        })?)
    })
    .await
}

pub(crate) async fn record_training(st: &AppState, user: &User, t: Training) -> Result<(), ApiError> {
    let db = st.db.clone();
    let by = user.username.to_string();
    blocking(move || {
        Ok(db.write(|tx| -> Result<(), StoreError> {
            tx.execute(
                "INSERT INTO trainings (nip, day, topic, provider, recorded_by, recorded_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![t.nip, t.day.to_string(), t.topic, t.provider, by, now_ms()],
            )?;
            Ok(())
        })?)
    })
    .await
}

// ------------------------------------------------------------------ exports

/// One request as an export shows it (personal data masked).
#[derive(Debug, Clone)]
pub(crate) struct ExportRow {
    pub doc_id: String,
    pub ticket: String,
    pub kelurahan: String,
    pub kecamatan: String,
    pub service: String,
    pub status: String,
    pub conflict: bool,
    pub agency: Option<String>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub working_ms: Option<i64>,
    pub name_masked: Option<String>,
    pub nik_masked: Option<String>,
}

/// Requests filed in `[from, to)` within scope, newest first, at most `limit`.
pub(crate) async fn export_rows(
    st: &AppState,
    user: &User,
    from: i64,
    to: i64,
    status: Option<Status>,
    limit: u32,
) -> Result<Vec<ExportRow>, ApiError> {
    let (scope, scope_args) = scope_sql(user);
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<ExportRow>, StoreError> {
            let status_sql = if status.is_some() { "AND status = ?3" } else { "" };
            let sql = format!(
                "SELECT ticket, kelurahan, kecamatan, service, status, conflict, agency, created_at_ms, finished_at_ms,
                        working_ms, name_masked, nik_masked, doc_id
                 FROM requests WHERE created_at_ms >= ?1 AND created_at_ms < ?2 {status_sql} {scope}
                 ORDER BY created_at_ms DESC LIMIT {limit}"
            );
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(from), Box::new(to)];
            if let Some(s) = status {
                args.push(Box::new(s.as_str()));
            }
            for a in &scope_args {
                args.push(Box::new(a.clone()));
            }
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())), |r| {
                Ok(ExportRow {
                    ticket: r.get(0)?,
                    kelurahan: r.get(1)?,
                    kecamatan: r.get(2)?,
                    service: r.get(3)?,
                    status: r.get(4)?,
                    conflict: r.get(5)?,
                    agency: r.get(6)?,
                    created_at_ms: r.get(7)?,
                    finished_at_ms: r.get(8)?,
                    working_ms: r.get(9)?,
                    name_masked: r.get(10)?,
                    nik_masked: r.get(11)?,
                    doc_id: r.get(12)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?)
    })
    .await
}

/// Full personal data of many requests, for an export by a role that may
/// see it: one audit row per request (`export_personal`), written before
/// anything is returned. The caller has already scoped `doc_ids` to the
/// user.
pub(crate) async fn reveal_personal_many(
    st: &AppState,
    user: &User,
    doc_ids: Vec<String>,
    reason: &str,
) -> Result<HashMap<String, Personal>, ApiError> {
    check_personal_role(user)?;
    let reason = check_reason(reason)?;
    let db = st.db.clone();
    let (who, role) = (user.username.as_str().to_owned(), user.role.as_str());
    let count = doc_ids.len();
    let found = blocking(move || {
        Ok(db.write(|tx| -> Result<HashMap<String, Personal>, StoreError> {
            let now = now_ms();
            let mut out = HashMap::with_capacity(doc_ids.len());
            let mut audit = tx.prepare(
                "INSERT INTO audit_log (at_ms, username, role, action, doc_id, reason) VALUES (?1, ?2, ?3, 'export_personal', ?4, ?5)",
            )?;
            for id in doc_ids {
                // A request that does not read back is left out of the
                // file (and not audited, nothing of it is shown), by id.
                let stored = match docs::load(tx, &id) {
                    Ok(Some(stored)) => stored,
                    Ok(None) => continue,
                    Err(StoreError::Corrupt { reason, .. }) => {
                        tracing::error!(doc = %id, error = %reason, "full export: unreadable request left out");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let Ok((view, _)) = docs::read_request(&stored.doc) else {
                    tracing::error!(doc = %id, "full export: unreadable request left out");
                    continue;
                };
                audit.execute(rusqlite::params![now, who, role, id, reason])?;
                out.insert(
                    id.clone(),
                    Personal::of(id, &view),
                );
            }
            Ok(out)
        })?)
    })
    .await?;
    tracing::info!(user = %user.username.as_str(), requests = count, "full personal data exported (audited)");
    Ok(found)
}

// ------------------------------------------------------------------ rollups

/// Whether the rollups can answer for this user (they are per kelurahan;
/// an agency's scope is per request, so it reads the projections).
pub(crate) fn rollups_serve(user: &User) -> bool {
    user.role != Role::Agency
}

/// The overview from the monthly rollup (months `yyyymm`, inclusive) plus
/// the current open and conflict counts from the projections' partial
/// indexes.
pub(crate) async fn overview_rollup(
    st: &AppState,
    user: &User,
    months: (i64, i64),
    key: IkmKey,
) -> Result<Vec<OverviewGroup>, ApiError> {
    let column = match key {
        IkmKey::Kecamatan => "substr(kelurahan, 1, 8)",
        _ => "kelurahan",
    };
    let (scope, scope_args) = scope_sql(user);
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<OverviewGroup>, StoreError> {
            let mut groups: BTreeMap<String, OverviewGroup> = BTreeMap::new();
            let sql = format!(
                "SELECT {column}, sum(filed), sum(finished), sum(within_sla) FROM monthly
                 WHERE month >= ?1 AND month <= ?2 {scope} GROUP BY 1"
            );
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&months.0, &months.1];
            for a in &scope_args {
                args.push(a);
            }
            let mut stmt = c.prepare(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            while let Some(r) = rows.next()? {
                let key: String = r.get(0)?;
                let g = groups.entry(key.clone()).or_insert_with(|| OverviewGroup { key, ..Default::default() });
                g.filed = r.get::<_, i64>(1)? as u64;
                g.finished = r.get::<_, i64>(2)? as u64;
                g.within_sla = r.get::<_, i64>(3)? as u64;
            }
            for (filter, open) in [("finished_at_ms IS NULL", true), ("conflict = 1", false)] {
                let sql = format!("SELECT {column}, count(*) FROM requests WHERE {filter} {scope} GROUP BY 1");
                let mut stmt = c.prepare(&sql)?;
                let args: Vec<&dyn rusqlite::ToSql> = scope_args.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    let key: String = r.get(0)?;
                    let n = r.get::<_, i64>(1)? as u64;
                    let g = groups.entry(key.clone()).or_insert_with(|| OverviewGroup { key, ..Default::default() });
                    if open {
                        g.open = n;
                    } else {
                        g.conflicts = n;
                    }
                }
            }
            Ok(groups.into_values().collect())
        })?)
    })
    .await
}

/// Requests filed per local day (days since 1970-01-01, inclusive range).
pub(crate) async fn filed_per_day_rollup(
    st: &AppState,
    user: &User,
    days: (i64, i64),
) -> Result<Vec<(i64, u64)>, ApiError> {
    let (scope, scope_args) = scope_sql(user);
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<(i64, u64)>, StoreError> {
            let sql = format!(
                "SELECT day, sum(filed) FROM daily_filed WHERE day >= ?1 AND day <= ?2 {scope} GROUP BY 1 ORDER BY 1"
            );
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&days.0, &days.1];
            for a in &scope_args {
                args.push(a);
            }
            let mut stmt = c.prepare(&sql)?;
            let rows =
                stmt.query_map(rusqlite::params_from_iter(args), |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?)
    })
    .await
}

/// IKM groups from the monthly rollup (months `yyyymm`, inclusive).
pub(crate) async fn ikm_rollup(
    st: &AppState,
    user: &User,
    months: (i64, i64),
    key: IkmKey,
) -> Result<Vec<IkmGroup>, ApiError> {
    let column = match key {
        IkmKey::Kelurahan => "kelurahan",
        IkmKey::Kecamatan => "substr(kelurahan, 1, 8)",
        IkmKey::Service => "service",
        IkmKey::Month => "printf('%04d-%02d', month / 100, month % 100)",
    };
    let (scope, scope_args) = scope_sql(user);
    let db = st.db.clone();
    blocking(move || {
        Ok(db.read(|c| -> Result<Vec<IkmGroup>, StoreError> {
            let sql = format!(
                "SELECT {column}, sum(filed), sum(respondents), sum(u1), sum(u2), sum(u3), sum(u4), sum(u5), sum(u6),
                        sum(u7), sum(u8), sum(u9)
                 FROM monthly WHERE month >= ?1 AND month <= ?2 {scope} GROUP BY 1
                 HAVING sum(filed) > 0 OR sum(respondents) > 0"
            );
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&months.0, &months.1];
            for a in &scope_args {
                args.push(a);
            }
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
                let mut tally = Tally { respondents: r.get::<_, i64>(2)? as u64, sums: [0; 9] };
                for (i, s) in tally.sums.iter_mut().enumerate() {
                    *s = r.get::<_, i64>(3 + i)? as u64;
                }
                let service_users = (r.get::<_, i64>(1)? as u64).max(tally.respondents);
                Ok(IkmGroup {
                    key: r.get(0)?,
                    tally,
                    service_users,
                    sample_min: krejcie_morgan_min_sample(service_users),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })?)
    })
    .await
}

/// Whether a request exists on the server (used by tests and tools).
pub fn request_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row("SELECT 1 FROM requests WHERE doc_id = ?1", [id], |_| Ok(())).optional()?.is_some())
}
