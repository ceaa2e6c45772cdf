//! Complaints (pengaduan, issue 16) at the kiosk: the rules both the JSON
//! API and the citizen screen apply to what a citizen files, and what
//! anyone holding the ticket may read back.
//!
//! Invariants:
//! - the kiosk writes only the `file` step; every later step comes from
//!   the server, sealed, in a pull;
//! - what is about a request names a ticket of this office or at least a
//!   well-formed one; a service is an active one of the catalog; a staff
//!   member is an active one of the roster;
//! - the status (`ComplaintStatus`) carries nothing personal: no
//!   complainant, not what the complaint says, not whom it is about.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use loket_node::web::ApiJson;
use loket_shared::complaint::{self, About, AboutKind, Complainant, ComplaintView, Derived, StepKind};
use loket_shared::{Code, ComplaintTicket, Nik, PersonName, Phone, StaffId, Ticket};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::blocking;
use super::{ApiError, AppState, format_time, idem};
use crate::store::{ComplaintInput, DocStore, StoreError};

/// A complaint's fields as a person gave them (the API's body, the
/// screen's form), before any check. `named`: a complainant is given.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ComplaintFields {
    pub kind: Option<String>,
    pub ticket: Option<String>,
    pub service: Option<String>,
    /// A staff id (the screen maps the chosen name to one).
    pub staff: Option<String>,
    pub named: bool,
    pub name: Option<String>,
    pub nik: Option<String>,
    pub phone: Option<String>,
    pub text: Option<String>,
}

/// A refusal of one field: `field` is the form's name for it (`kind`,
/// `ticket`, `service`, `staff`, `name`, `nik`, `phone`, `text`).
#[derive(Debug)]
pub(crate) struct FieldError {
    pub field: &'static str,
    pub error: ApiError,
}

fn refuse(field: &'static str, error: ApiError) -> FieldError {
    FieldError { field, error }
}

fn present(raw: Option<&str>) -> Option<&str> {
    raw.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The complaint's text as stored: line breaks as `\n` (a browser sends
/// a textarea's as CRLF), trimmed.
pub(crate) fn normalise_text(raw: &str) -> String {
    raw.replace("\r\n", "\n").replace('\r', "\n").trim().to_owned()
}

/// Checks every field (all refusals at once, for the form) against this
/// office's store: `Ok(Err(..))` is the person's to fix, `Err` the
/// kiosk's failure.
pub(crate) fn check_fields(
    store: &DocStore,
    f: &ComplaintFields,
) -> Result<Result<ComplaintInput, Vec<FieldError>>, StoreError> {
    let mut errors = Vec::new();
    let about = match present(f.kind.as_deref()).map(str::parse::<AboutKind>) {
        None => {
            errors.push(refuse("kind", ApiError::missing("about.kind")));
            None
        }
        Some(Err(_)) => {
            errors.push(refuse(
                "kind",
                ApiError::unprocessable(
                    "invalid_about",
                    "pilih tentang apa pengaduan ini / choose what the complaint is about",
                ),
            ));
            None
        }
        Some(Ok(AboutKind::Office)) => Some(About::Office),
        Some(Ok(AboutKind::General)) => Some(About::General),
        Some(Ok(AboutKind::Request)) => match present(f.ticket.as_deref()) {
            None => {
                errors.push(refuse("ticket", ApiError::missing("about.ticket")));
                None
            }
            Some(raw) => {
                // This office's ticket if it is one (as typed, loosely),
                // else the printed form of what was typed.
                let candidates = Ticket::candidates(raw);
                match store.find_ticket(&candidates)? {
                    Some(found) => found.ticket.parse().ok().map(About::Request),
                    None => match candidates.into_iter().next() {
                        Some(t) => Some(About::Request(t)),
                        None => {
                            errors.push(refuse(
                                "ticket",
                                ApiError::unprocessable(
                                    "invalid_ticket",
                                    "nomor tiket permohonan tidak sah, contoh: K07-1128-023 / \
                                     not a request ticket number, e.g. K07-1128-023",
                                ),
                            ));
                            None
                        }
                    },
                }
            }
        },
        Some(Ok(AboutKind::Service)) => {
            let unknown = || {
                refuse("service", ApiError::unprocessable("unknown_service", "layanan tidak dikenal / unknown service"))
            };
            match present(f.service.as_deref()) {
                None => {
                    errors.push(refuse("service", ApiError::missing("about.service")));
                    None
                }
                Some(raw) => match raw.parse::<Code>() {
                    Ok(code) if store.catalog()?.service(code.as_str()).is_some_and(|s| s.active) => {
                        Some(About::Service(code))
                    }
                    _ => {
                        errors.push(unknown());
                        None
                    }
                },
            }
        }
        Some(Ok(AboutKind::Staff)) => match present(f.staff.as_deref()) {
            None => {
                errors.push(refuse("staff", ApiError::missing("about.staff")));
                None
            }
            Some(raw) => match raw.parse::<StaffId>() {
                Ok(id) if store.staff_on_roster(&id)? => Some(About::Staff(id)),
                _ => {
                    errors.push(refuse(
                        "staff",
                        ApiError::unprocessable(
                            "unknown_staff",
                            "petugas tidak dikenal di kantor ini / no such staff member at this office",
                        ),
                    ));
                    None
                }
            },
        },
    };
    let complainant = if f.named {
        let name = match present(f.name.as_deref()) {
            None => {
                errors.push(refuse("name", ApiError::missing("complainant.name")));
                None
            }
            Some(raw) => match raw.parse::<PersonName>() {
                Ok(n) => Some(n),
                Err(e) => {
                    errors.push(refuse("name", ApiError::unprocessable("invalid_name", e)));
                    None
                }
            },
        };
        let nik = match present(f.nik.as_deref()) {
            None => None,
            Some(raw) => match raw.parse::<Nik>() {
                Ok(n) => Some(n),
                Err(e) => {
                    errors.push(refuse("nik", ApiError::unprocessable("invalid_nik", e)));
                    None
                }
            },
        };
        let phone = match present(f.phone.as_deref()) {
            None => None,
            Some(raw) => match raw.parse::<Phone>() {
                Ok(p) => Some(p),
                Err(e) => {
                    errors.push(refuse("phone", ApiError::unprocessable("invalid_phone", e)));
                    None
                }
            },
        };
        name.map(|name| Complainant { name, nik, phone })
    } else {
        None
    };
    let text = normalise_text(f.text.as_deref().unwrap_or(""));
    if text.is_empty() {
        errors.push(refuse("text", ApiError::missing("text")));
    } else if complaint::check_text(&text).is_err() {
        let max = complaint::TEXT_MAX_CHARS;
        errors.push(refuse(
            "text",
            ApiError::unprocessable(
                "invalid_text",
                format!(
                    "paling banyak {max} huruf, tanpa karakter kendali / at most {max} characters, without control characters"
                ),
            ),
        ));
    }
    match about {
        Some(about) if errors.is_empty() => Ok(Ok(ComplaintInput { about, complainant, text })),
        _ => Ok(Err(errors)),
    }
}

/// A complaint as anyone holding its ticket may see it: where it stands,
/// its deadline and answers. Nothing personal.
#[derive(Debug, Clone)]
pub(crate) struct ComplaintStatus {
    pub ticket: ComplaintTicket,
    pub about: AboutKind,
    pub state: complaint::State,
    pub filed_at_ms: i64,
    pub class: Option<complaint::Class>,
    /// Once registered: when the answer is due (with the extension).
    pub due_at_ms: Option<i64>,
    /// The extension that counts: working days and the notice.
    pub extension: Option<(u32, String)>,
    pub lapor: Vec<String>,
    /// The current answers, oldest first: `(at, text)`.
    pub answers: Vec<(i64, String)>,
    pub closed_at_ms: Option<i64>,
    /// Concurrent central steps are being looked at.
    pub flagged: bool,
}

impl ComplaintStatus {
    pub(crate) fn of(store: &DocStore, view: &ComplaintView, derived: &Derived) -> Result<ComplaintStatus, StoreError> {
        let due_at_ms = match derived.class {
            Some(_) => {
                let catalog = store.catalog()?;
                let holidays = catalog.holiday_set();
                let calendar = loket_shared::sla::Calendar {
                    offset: store.options().utc_offset,
                    hours: catalog.hours_for(view.kelurahan.as_str()),
                    holidays: &holidays,
                };
                Some(derived.due_at(&calendar, view.created_at_ms))
            }
            None => None,
        };
        let extension = derived.extension_days.map(|days| {
            let notice = derived
                .ordered
                .iter()
                .find(|s| s.kind == StepKind::Extend)
                .and_then(|s| s.text.clone())
                .unwrap_or_default();
            (days, notice)
        });
        let mut answers: Vec<(i64, String)> = derived.answers.iter().map(|a| (a.at_ms, a.text.clone())).collect();
        answers.sort();
        Ok(ComplaintStatus {
            ticket: view.ticket.clone(),
            about: view.about.kind(),
            state: derived.state,
            filed_at_ms: view.created_at_ms,
            class: derived.class,
            due_at_ms,
            extension,
            lapor: derived.lapor.clone(),
            answers,
            closed_at_ms: derived.closed_at_ms,
            flagged: derived.has_flags(),
        })
    }
}

/// Finds a complaint however its ticket was typed: `ADU` and then a
/// ticket, loosely (`ComplaintTicket::candidates`), or the number alone
/// (the prefix left out: numbers are shared with requests, so one number
/// is one document at its kiosk). Blocking.
pub(crate) fn find_typed(store: &DocStore, raw: &str) -> Result<Option<ComplaintStatus>, StoreError> {
    let mut candidates = ComplaintTicket::candidates(raw);
    if candidates.is_empty() {
        candidates = Ticket::candidates(raw).iter().map(ComplaintTicket::from_number).collect();
    }
    match store.find_complaint(&candidates)? {
        Some((view, derived)) => Ok(Some(ComplaintStatus::of(store, &view, &derived)?)),
        None => Ok(None),
    }
}

// ------------------------------------------------------------------ API

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewComplaintBody {
    about: Option<AboutBody>,
    complainant: Option<ComplainantBody>,
    text: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct AboutBody {
    kind: Option<String>,
    ticket: Option<String>,
    service: Option<String>,
    staff: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ComplainantBody {
    name: Option<String>,
    nik: Option<String>,
    phone: Option<String>,
}

/// `POST /api/complaints`: `201 {id, ticket, state}` once durable. Without
/// `complainant` the complaint is anonymous. Refusals name the field
/// (`missing_field`, `invalid_about`, `invalid_ticket`, `unknown_service`,
/// `unknown_staff`, `invalid_name`, `invalid_nik`, `invalid_phone`,
/// `invalid_text`), the first one found.
pub(super) async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewComplaintBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idem = idem(&st.store, &headers, &body)?;
    let about = body.about.ok_or_else(|| ApiError::missing("about"))?;
    let fields = ComplaintFields {
        kind: about.kind,
        ticket: about.ticket,
        service: about.service,
        staff: about.staff,
        named: body.complainant.is_some(),
        name: body.complainant.as_ref().and_then(|c| c.name.clone()),
        nik: body.complainant.as_ref().and_then(|c| c.nik.clone()),
        phone: body.complainant.as_ref().and_then(|c| c.phone.clone()),
        text: body.text,
    };
    let store = st.store.clone();
    let checked = blocking(move || Ok(check_fields(&store, &fields)?)).await?;
    let input = match checked {
        Ok(input) => input,
        Err(mut errors) => return Err(errors.remove(0).error),
    };
    let filed = st.store.file_complaint(input, idem).await?;
    st.sync.nudge.notify_one();
    tracing::info!(doc = %filed.id, ticket = %filed.ticket, "complaint filed");
    Ok((StatusCode::CREATED, Json(json!({ "id": filed.id, "ticket": filed.ticket, "state": filed.state }))))
}

/// `GET /api/complaints/{ticket}`: where a complaint stands, found however
/// its ticket is typed; nothing personal.
pub(super) async fn status(State(st): State<AppState>, Path(raw): Path<String>) -> Result<Json<Value>, ApiError> {
    if ComplaintTicket::candidates(&raw).is_empty() && Ticket::candidates(&raw).is_empty() {
        return Err(ApiError::bad_request("invalid_ticket", loket_shared::ids::ComplaintTicketError.to_string()));
    }
    let store = st.store.clone();
    let found = blocking(move || Ok(find_typed(&store, &raw)?)).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(status_json(&found, st.utc_offset)))
}

pub(crate) fn status_json(s: &ComplaintStatus, offset: time::UtcOffset) -> Value {
    json!({
        "ticket": s.ticket,
        "about": s.about.as_str(),
        "state": s.state,
        "state_label": { "id": s.state.label().0, "en": s.state.label().1 },
        "filed_at": format_time(s.filed_at_ms, offset),
        "class": s.class,
        "due_at": s.due_at_ms.map(|t| format_time(t, offset)),
        "extension": s.extension.as_ref().map(|(days, notice)| json!({ "days": days, "notice": notice })),
        "lapor": s.lapor.first(),
        "answers": s.answers.iter().map(|(at, text)| json!({ "at": format_time(*at, offset), "text": text })).collect::<Vec<_>>(),
        "closed_at": s.closed_at_ms.map(|t| format_time(t, offset)),
        "flagged": s.flagged,
    })
}
