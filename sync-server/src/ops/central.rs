//! Central reads and writes over the merged documents: central and
//! agency workflow events (merged like any other change and pulled by the
//! kiosk at its next sync), staff rosters and the catalog (documents the
//! server owns), holidays, and audited full personal data.
//!
//! Writes load the document, apply the same workflow rules as a kiosk
//! (`loket_shared::workflow`), and save, project and log it in one
//! transaction that first takes the document's cursor partition, so two
//! instances editing one document take turns. Each instance writes with
//! its own Automerge actor (made at start, never reused) and a hybrid
//! logical clock shared through `meta`.

use std::collections::HashMap;

use automerge::{ActorId, AutoCommit};
use loket_shared::reference::{self, Roster, StaffMember, StaffRole};
use loket_shared::request::{self, NOTE_MAX_CHARS};
use loket_shared::sync::DocType;
use loket_shared::workflow::{self, Event, EventKind, TransitionError};
use loket_shared::{DocId, Hlc, KelurahanCode, StaffId, Status};
use serde_json::{Value, json};

use super::auth::{Role, User};
use super::{OpError, Refusal, read, write};
use crate::store::accounts::{self, AuditEntry};
use crate::store::{Db, Sql, StoreError, docs, meta_get, meta_set, now_ms, projection, random_bytes};

/// A request with its derived workflow and sorted hex heads.
pub type Detail = (request::RequestView, workflow::Derived, Vec<String>);

// ------------------------------------------------------------------ reference documents

/// Creates the catalog document from the built-in catalog if the server
/// has none yet (first start).
pub fn ensure_catalog(db: &mut dyn Sql, writer: &Writer) -> Result<(), StoreError> {
    docs::lock_partitions(db, None)?;
    if let Some(id) = docs::reference_doc(db, DocType::Catalog, None)? {
        // Keep the rollups' SLA table in step with the stored catalog.
        if let Some(stored) = docs::load(db, &id)?
            && let Ok(catalog) = reference::read_catalog(&stored.doc)
        {
            projection::record_service_slas(db, &catalog)?;
            projection::record_holidays(db, &catalog)?;
        }
        build_step_times_once(db)?;
        return Ok(());
    }
    let catalog: reference::Catalog = toml::from_str(reference::DEFAULT_CATALOG_TOML)
        .map_err(|e| StoreError::Invalid(format!("built-in catalog: {e}")))?;
    let mut doc = AutoCommit::new().with_actor(writer.actor());
    reference::create_catalog(&mut doc, &catalog).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let id = docs::create_reference(db, DocType::Catalog, None, doc, now_ms(), random_bytes())?;
    projection::record_service_slas(db, &catalog)?;
    projection::record_holidays(db, &catalog)?;
    build_step_times_once(db)?;
    tracing::info!(doc = %id, services = catalog.services.len(), "created the service catalog");
    Ok(())
}

/// Fills `request_steps` from the projections the first time a store
/// starts with it (a store from before it has finished requests).
fn build_step_times_once(db: &mut dyn Sql) -> Result<(), StoreError> {
    if meta_get(db, "request_steps_built")?.is_none() {
        let n = projection::rebuild_request_steps(db)?;
        meta_set(db, "request_steps_built", "1")?;
        tracing::info!(requests = n, "step times measured for the time-lost page");
    }
    Ok(())
}

/// This instance as a writer of documents: its own Automerge actor and
/// hybrid logical clock, both in memory and made at start.
///
/// An actor must never write two different changes with the same sequence
/// number. Two instances on one database, or a server restored from a
/// backup that forgot what its actor wrote after it (kiosks may still
/// hold those changes), would do exactly that with a stored actor; a fresh
/// actor per instance and start makes it impossible, at the cost of one
/// more actor in the documents the server edits. The actor is derived from
/// the shared seal key, so every instance recognises every other's
/// changes as the server's. The clock needs no storage either: a new
/// actor starts a new sequence of stamps, each above the wall clock and
/// every stamp it has seen.
#[derive(Debug)]
pub struct Writer {
    actor: ActorId,
    hlc: std::sync::Mutex<Hlc>,
}

impl Writer {
    pub fn new(seal: &super::seal::SealKey) -> Writer {
        Writer { actor: seal.new_actor(), hlc: std::sync::Mutex::new(Hlc::ZERO) }
    }

    pub fn actor(&self) -> ActorId {
        self.actor.clone()
    }

    /// The next stamp, above `seen` and every stamp issued before.
    pub fn next_hlc(&self, seen: Option<Hlc>) -> Hlc {
        let mut last = self.hlc.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let next = match seen {
            Some(remote) => last.observe(remote, now),
            None => last.tick(now),
        };
        *last = next;
        next
    }
}

fn may_see(user: &User, view: &request::RequestView, derived: &workflow::Derived) -> bool {
    match user.role {
        Role::Admin => true,
        Role::Supervisor => user.kelurahan.as_ref().is_none_or(|k| *k == view.kelurahan),
        Role::Agency => {
            user.covers(view.kelurahan.as_str())
                && derived
                    .ordered
                    .iter()
                    .any(|e| e.to == Status::HandedOff && e.agency.as_deref() == user.agency.as_deref())
        }
    }
}

/// A request the user may see, with its derived workflow and heads; 404
/// for anything else (unknown, not a request, not theirs).
pub async fn load_visible(db: &Db, user: &User, raw: &str) -> Result<Detail, OpError> {
    let id: DocId = raw.parse().map_err(|_| OpError::not_found())?;
    let loaded = read(db, move |c| match docs::load(c, &id.to_string())? {
        Some(mut s) if s.doc_type == DocType::Request => {
            let mut heads: Vec<String> = s.doc.get_heads().iter().map(|h| h.to_string()).collect();
            heads.sort();
            docs::read_request(&s.doc)
                .map(|(v, d)| Some((v, d, heads)))
                .map_err(|e| OpError::Store(StoreError::Corrupt { what: id.to_string(), reason: e }))
        }
        _ => Ok(None),
    })
    .await?;
    let (view, derived, heads) = loaded.ok_or_else(OpError::not_found)?;
    if !may_see(user, &view, &derived) {
        return Err(OpError::not_found());
    }
    Ok((view, derived, heads))
}

/// Who may have written a kelurahan's events, so pages name them: its
/// roster's staff by NIP and its kiosks by their Automerge actor (an
/// event's `node`).
#[derive(Debug, Default, Clone)]
pub struct Authors {
    /// NIP → name.
    pub staff: HashMap<String, String>,
    /// Actor (hex) → kiosk code.
    pub kiosks: HashMap<String, String>,
}

pub async fn authors(db: &Db, kelurahan: KelurahanCode) -> Result<Authors, OpError> {
    read(db, move |c| -> Result<Authors, OpError> {
        let mut out = Authors::default();
        if let Some(id) = docs::reference_doc(c, DocType::Roster, Some(kelurahan.as_str()))?
            && let Some(stored) = docs::load(c, &id)?
            && let Ok(roster) = reference::read_roster(&stored.doc)
        {
            out.staff = roster.staff.into_iter().map(|s| (s.id.as_str().to_owned(), s.name)).collect();
        }
        out.kiosks = crate::store::kiosks::actors_of(c, kelurahan.as_str())?.into_iter().collect();
        Ok(out)
    })
    .await
}

/// An applicant's full personal data.
pub struct Personal {
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
pub fn check_reason(reason: &str) -> Result<String, OpError> {
    let reason = reason.trim().to_owned();
    if reason.chars().count() < 5 || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(OpError::unprocessable(
            "reason_required",
            "sebutkan keperluan (5-200 huruf) / give the reason (5-200 characters)",
        ));
    }
    Ok(reason)
}

/// Refuses full personal data to roles that see masked values only.
pub fn check_personal_role(user: &User) -> Result<(), OpError> {
    if user.role == Role::Supervisor {
        return Err(OpError::new(
            Refusal::Forbidden,
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
pub async fn reveal_personal(db: &Db, user: &User, raw: &str, reason: &str) -> Result<Personal, OpError> {
    let id: DocId = raw.parse().map_err(|_| OpError::not_found())?;
    check_personal_role(user)?;
    let reason = check_reason(reason)?;
    let (view, _, _) = load_visible(db, user, raw).await?;
    let (who, role, doc) = (user.username.as_str().to_owned(), user.role.as_str(), id.to_string());
    write(db, move |tx| {
        let entry = AuditEntry {
            at_ms: now_ms(),
            username: &who,
            role,
            action: "view_personal",
            doc_id: Some(&doc),
            reason: &reason,
            subject: None,
        };
        Ok(accounts::audit(tx, &entry)?)
    })
    .await?;
    tracing::info!(doc = %id, user = %user.username.as_str(), "full personal data viewed (audited)");
    Ok(Personal::of(id.to_string(), &view))
}

/// What a central or agency event asks for, as the API or a page's form
/// gave it (unchecked).
#[derive(Debug, Default)]
pub struct EventInput {
    pub to: Option<String>,
    pub note: Option<String>,
    pub agency: Option<String>,
    /// An agency's result (a new KK number, a letter number).
    pub result_ref: Option<String>,
}

/// Checks and writes a central or agency event (shared by the API and the
/// web app's forms): who may act, the workflow, the seal, the projection.
pub async fn append_central_event(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    user: &User,
    raw: &str,
    body: EventInput,
) -> Result<Value, OpError> {
    // An agency's result (a new KK number, a letter number): the
    // workflow checks its form and who may give one (issue 16, item 7).
    let result_ref = body.result_ref.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let id: DocId = raw.parse().map_err(|_| OpError::not_found())?;
    if user.role == Role::Supervisor {
        return Err(OpError::forbidden());
    }
    let to: Status = body
        .to
        .as_deref()
        .ok_or_else(|| OpError::missing("to"))?
        .parse()
        .map_err(|e| OpError::unprocessable("invalid_status", e))?;
    let note = body.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if let Some(n) = &note
        && (n.chars().count() > NOTE_MAX_CHARS || n.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(OpError::unprocessable("invalid_note", "catatan tidak valid / invalid note"));
    }
    let agency = body.agency.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    let by = match (&user.role, &user.agency) {
        (Role::Agency, Some(a)) => format!("agency:{a}:{}", user.username.as_str()),
        _ => format!("admin:{}", user.username.as_str()),
    };
    let user2 = user.clone();
    let writer = writer.clone();
    let result = write(db, move |tx| {
        let doc_id = id.to_string();
        docs::lock_doc(tx, &doc_id)?;
        let Some(mut stored) = docs::load(tx, &doc_id)? else { return Err(OpError::not_found()) };
        if stored.doc_type != DocType::Request {
            return Err(OpError::not_found());
        }
        let (view, derived) =
            docs::read_request(&stored.doc).map_err(|e| StoreError::Corrupt { what: doc_id.clone(), reason: e })?;
        if !may_see(&user2, &view, &derived) {
            return Err(OpError::not_found());
        }
        let kind = if derived.has_conflict() { EventKind::Resolve } else { EventKind::Transition };
        let actor = match (&user2.role, &user2.agency) {
            (Role::Agency, Some(a)) => workflow::Actor::Agency(a.as_str()),
            (Role::Agency, None) => return Err(OpError::forbidden()),
            _ => workflow::Actor::Admin,
        };
        // A resolve settles on the agency named and no one waiting below
        // it; a transition carries the chain the workflow gives it.
        let waiting = match kind {
            EventKind::Resolve => Vec::new(),
            _ => workflow::waiting_after(&derived, actor, to, agency.as_deref()),
        };
        let proposal = workflow::Proposal { kind, ..workflow::Proposal::transition(to) }
            .agency(agency.as_deref())
            .waiting(&waiting)
            .note(note.as_deref())
            .result_ref(result_ref.as_deref());
        if let Err(e) = workflow::check_transition(&derived, actor, &proposal) {
            let status = match e {
                TransitionError::NotYourAgency => Refusal::Forbidden,
                _ if e.is_bad_input() => Refusal::Unprocessable,
                _ => Refusal::Conflict,
            };
            return Err(OpError::new(status, e.code(), e));
        }
        // A hand-off or forward goes to an agency of the catalog: one that
        // does not exist would leave the request where nobody can take it.
        if to == Status::HandedOff
            && let Some(a) = agency.as_deref()
            && catalog_or_built_in(tx)?.agency(a).is_none()
        {
            return Err(OpError::unprocessable("unknown_agency", "instansi tidak dikenal / unknown agency"));
        }
        let heads_before = stored.doc.get_heads();
        stored.doc.set_actor(writer.actor());
        let latest = derived.ordered.iter().map(|e| e.hlc).max();
        let now = now_ms();
        let mut event = Event {
            id: DocId::new_v7(u64::try_from(now).unwrap_or(0), random_bytes()).to_string(),
            hlc: writer.next_hlc(latest),
            node: writer.actor().to_hex_string(),
            at_ms: now,
            by: by.clone(),
            kind,
            from: Some(derived.status),
            to,
            note: note.clone(),
            agency: agency.clone(),
            waiting,
            result_ref: result_ref.clone(),
            parents: derived.frontier.clone(),
            seal: None,
        };
        event.seal = Some(super::seal::SealKey::load_or_create(tx)?.seal(&doc_id, &event));
        request::append_event(&mut stored.doc, &event).map_err(|e| StoreError::Invalid(e.to_string()))?;
        stored.doc.commit();
        let (view, after) =
            docs::read_request(&stored.doc).map_err(|e| StoreError::Corrupt { what: doc_id.clone(), reason: e })?;
        docs::save(tx, &doc_id, &mut stored, false, now)?;
        docs::record_receipts(tx, &doc_id, &mut stored.doc, &heads_before, now)?;
        projection::project_request(tx, &view, &after)?;
        Ok(json!({ "id": doc_id, "event_id": event.id, "status": after.status, "conflict": after.has_conflict() }))
    })
    .await?;
    tracing::info!(doc = %id, user = %user.username.as_str(), to = %to, "central event");
    Ok(result)
}

/// The catalog as the server holds it.
pub async fn load_catalog(db: &Db) -> Result<reference::Catalog, OpError> {
    read(db, |c| -> Result<reference::Catalog, OpError> { Ok(catalog_of(c)?) }).await
}

/// The catalog as stored (the built-in default before the first start).
pub fn catalog_of(c: &mut dyn Sql) -> Result<reference::Catalog, StoreError> {
    {
        {
            let Some(id) = docs::reference_doc(c, DocType::Catalog, None)? else {
                return Ok(reference::Catalog::default());
            };
            let stored = docs::load(c, &id)?
                .ok_or_else(|| StoreError::Corrupt { what: id.clone(), reason: "missing".into() })?;
            reference::read_catalog(&stored.doc).map_err(|e| StoreError::Corrupt { what: id, reason: e.to_string() })
        }
    }
}

/// The catalog as stored, or the built-in one the first start will store
/// (for commands run between `init` and the first start).
pub fn catalog_or_built_in(c: &mut dyn Sql) -> Result<reference::Catalog, StoreError> {
    if docs::reference_doc(c, DocType::Catalog, None)?.is_some() {
        return catalog_of(c);
    }
    toml::from_str(reference::DEFAULT_CATALOG_TOML).map_err(|e| StoreError::Invalid(format!("built-in catalog: {e}")))
}

pub fn parse_holiday_date(s: &str) -> Result<time::Date, OpError> {
    reference::ymd::parse(s.trim())
        .ok_or_else(|| OpError::unprocessable("invalid_date", "tanggal harus YYYY-MM-DD / the date must be YYYY-MM-DD"))
}

/// Applies `edit` to the catalog document and saves it, in one
/// transaction with the projections a calendar change moves (working
/// times of the requests it touches are projected again). Returns what
/// `edit` returned and how many requests were re-projected.
async fn edit_catalog<T: Send + 'static>(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    edit: impl FnOnce(&mut AutoCommit, &reference::Catalog) -> Result<T, OpError> + Send + 'static,
) -> Result<(T, usize), OpError> {
    edit_catalog_audited(db, writer, None, edit).await
}

/// Who changed the catalog and why, for the audit log.
struct CatalogAudit {
    username: String,
    role: &'static str,
    action: &'static str,
    reason: String,
}

/// [`edit_catalog`], with an audit row written in the same transaction
/// when `audit` is given (the change and its record stand or fall
/// together).
async fn edit_catalog_audited<T: Send + 'static>(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    audit: Option<CatalogAudit>,
    edit: impl FnOnce(&mut AutoCommit, &reference::Catalog) -> Result<T, OpError> + Send + 'static,
) -> Result<(T, usize), OpError> {
    let writer = writer.clone();
    write(db, move |tx| {
        if let Some(a) = &audit {
            let entry = AuditEntry {
                at_ms: now_ms(),
                username: &a.username,
                role: a.role,
                action: a.action,
                doc_id: None,
                reason: &a.reason,
                subject: None,
            };
            accounts::audit(tx, &entry)?;
        }
        docs::lock_partitions(tx, None)?;
        let Some(id) = docs::reference_doc(tx, DocType::Catalog, None)? else {
            return Err(StoreError::Invalid("no catalog document".into()).into());
        };
        let mut stored =
            docs::load(tx, &id)?.ok_or_else(|| StoreError::Corrupt { what: id.clone(), reason: "missing".into() })?;
        let before = reference::read_catalog(&stored.doc)
            .map_err(|e| StoreError::Corrupt { what: id.clone(), reason: e.to_string() })?;
        let heads_before = stored.doc.get_heads();
        stored.doc.set_actor(writer.actor());
        let out = edit(&mut stored.doc, &before)?;
        stored.doc.commit();
        let mut reprojected = 0;
        if stored.doc.get_heads() != heads_before {
            docs::check_reference(&stored.doc, DocType::Catalog).map_err(StoreError::Invalid)?;
            docs::save(tx, &id, &mut stored, false, now_ms())?;
            let catalog = reference::read_catalog(&stored.doc)
                .map_err(|e| StoreError::Corrupt { what: id.clone(), reason: e.to_string() })?;
            reprojected = projection::record_holidays(tx, &catalog)?;
        }
        Ok((out, reprojected))
    })
    .await
}

fn schema_error(e: request::SchemaError) -> OpError {
    StoreError::Invalid(e.to_string()).into()
}

/// Adds, renames (`Some(name)`) or removes (`None`) a holiday in the
/// catalog document, in one transaction with the projections it changes
/// (shared by the API and the web app).
pub async fn set_holiday(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    date: time::Date,
    name: Option<(String, reference::HolidayKind)>,
) -> Result<Value, OpError> {
    let holiday = match name {
        Some((name, kind)) => {
            let h = reference::Holiday { date, name: name.trim().to_owned(), kind };
            h.check().map_err(|e| OpError::unprocessable("invalid_holiday", e))?;
            Some(h)
        }
        None => None,
    };
    let h = holiday.clone();
    let ((), reprojected) = edit_catalog(db, writer, move |doc, _| {
        match &h {
            Some(h) => reference::put_holiday(doc, h).map_err(schema_error)?,
            None => {
                if !reference::delete_holiday(doc, date).map_err(schema_error)? {
                    return Err(OpError::not_found());
                }
            }
        }
        Ok(())
    })
    .await?;
    tracing::info!(date = %reference::ymd::format(date), removed = holiday.is_none(), "holiday changed");
    Ok(json!({
        "date": reference::ymd::format(date),
        "name": holiday.as_ref().map(|h| h.name.clone()),
        "kind": holiday.as_ref().map(|h| h.kind.as_str()),
        "reprojected": reprojected,
    }))
}

/// The most lines a holiday import takes (a year has a few dozen).
pub const HOLIDAY_IMPORT_MAX: usize = 400;

/// Parses a year's holiday list as CSV, `tanggal,nama[,jenis]` (a header
/// line with those names is allowed; `jenis` is `libur` or
/// `cuti_bersama`, default `libur`). Every line must be valid and in
/// `year`; the first bad one is reported by its line number, without its
/// content.
pub fn parse_holiday_csv(year: i32, text: &str) -> Result<Vec<reference::Holiday>, OpError> {
    let bad = |line: usize, what: &str| {
        OpError::unprocessable("invalid_holiday_csv", format!("baris {line}: {what} / line {line}: {what}"))
    };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let mut out: Vec<reference::Holiday> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 1;
        let record = record.map_err(|_| bad(line, "CSV tidak terbaca / unreadable CSV"))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if line == 1 && record.get(0).is_some_and(|f| f.eq_ignore_ascii_case("tanggal")) {
            continue;
        }
        if out.len() == HOLIDAY_IMPORT_MAX {
            return Err(bad(line, "terlalu banyak baris / too many lines"));
        }
        if !(2..=3).contains(&record.len()) {
            return Err(bad(line, "harus tanggal,nama[,jenis] / must be date,name[,kind]"));
        }
        let date = reference::ymd::parse(&record[0])
            .ok_or_else(|| bad(line, "tanggal harus YYYY-MM-DD / the date must be YYYY-MM-DD"))?;
        if date.year() != year {
            return Err(bad(line, "tanggal di luar tahun yang diimpor / a date outside the year imported"));
        }
        let kind = match record.get(2).unwrap_or("") {
            "" => reference::HolidayKind::Libur,
            k => reference::HolidayKind::parse(k)
                .ok_or_else(|| bad(line, "jenis harus libur atau cuti_bersama / kind must be libur or cuti_bersama"))?,
        };
        let h = reference::Holiday { date, name: record[1].to_owned(), kind };
        h.check().map_err(|_| bad(line, "nama 1-120 huruf / a name of 1-120 characters"))?;
        if out.iter().any(|o| o.date == date) {
            return Err(bad(line, "tanggal ganda / a date listed twice"));
        }
        out.push(h);
    }
    if out.is_empty() {
        return Err(OpError::unprocessable("invalid_holiday_csv", "tidak ada baris / no lines"));
    }
    Ok(out)
}

/// Replaces a year's holidays with `list` (an import of the year's
/// decree): the year's other days are removed, in one change.
pub async fn import_holidays(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    year: i32,
    list: Vec<reference::Holiday>,
) -> Result<Value, OpError> {
    let n = list.len();
    let (removed, reprojected) = edit_catalog(db, writer, move |doc, before| {
        let mut removed = 0;
        for h in before.holidays.iter().filter(|h| h.date.year() == year) {
            if !list.iter().any(|n| n.date == h.date) {
                reference::delete_holiday(doc, h.date).map_err(schema_error)?;
                removed += 1;
            }
        }
        for h in &list {
            if before.holidays.iter().all(|b| b != h) {
                reference::put_holiday(doc, h).map_err(schema_error)?;
            }
        }
        Ok(removed)
    })
    .await?;
    tracing::info!(year, days = n, removed, reprojected, "holidays imported");
    Ok(json!({ "year": year, "days": n, "removed": removed, "reprojected": reprojected }))
}

/// Sets whether offices open on cuti bersama days.
pub async fn set_cuti_bersama_open(db: &Db, writer: &std::sync::Arc<Writer>, open: bool) -> Result<Value, OpError> {
    let ((), reprojected) =
        edit_catalog(db, writer, move |doc, _| reference::put_cuti_bersama_open(doc, open).map_err(schema_error))
            .await?;
    tracing::info!(open, reprojected, "cuti bersama setting changed");
    Ok(json!({ "cuti_bersama_open": open, "reprojected": reprojected }))
}

/// Sets the city's service hours (`kelurahan` `None`) or a kelurahan's
/// (`hours` `None`: it follows the city's again).
pub async fn set_hours(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    kelurahan: Option<KelurahanCode>,
    hours: Option<loket_shared::sla::ServiceHours>,
) -> Result<Value, OpError> {
    if let Some(k) = &kelurahan
        && loket_shared::wilayah::medan(loket_shared::wilayah::Level::Kelurahan).iter().all(|r| r.code != k.as_str())
    {
        return Err(OpError::unprocessable("unknown_kelurahan", "kelurahan tidak dikenal / unknown kelurahan"));
    }
    let k = kelurahan.clone();
    let ((), reprojected) = edit_catalog(db, writer, move |doc, _| {
        match (&k, &hours) {
            (_, Some(h)) => reference::put_hours(doc, k.as_ref(), h).map_err(schema_error)?,
            (Some(k), None) => {
                reference::delete_hours(doc, k).map_err(schema_error)?;
            }
            (None, None) => {
                return Err(OpError::unprocessable(
                    "invalid_hours",
                    "jam layanan kota wajib diisi / the city's hours are required",
                ));
            }
        }
        Ok(())
    })
    .await?;
    tracing::info!(kelurahan = ?kelurahan.as_ref().map(KelurahanCode::as_str), reprojected, "service hours changed");
    Ok(json!({
        "kelurahan": kelurahan.as_ref().map(KelurahanCode::as_str),
        "hours": hours.map(|h| h.to_spec()),
        "reprojected": reprojected,
    }))
}

/// Publishes each office's IKM for a period to its kiosks, through the
/// catalog document every kiosk holds (and reads offline): the figure from
/// the first rating of every request rated in the period, with the
/// period's minimum sample. An office without respondents in the period
/// keeps what was published for it before (still its latest). Admins
/// only; audited in the same transaction. `groups` are the period's IKM
/// per kelurahan, city-wide. The number of offices published.
pub async fn publish_ikm(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    admin: &User,
    period: (String, String),
    groups: Vec<crate::ops::reports::IkmGroup>,
) -> Result<usize, OpError> {
    admin.require(Role::Admin)?;
    let now = now_ms();
    let mut list = Vec::new();
    for g in groups {
        let (Ok(k), Some(ikm)) = (g.key.parse::<KelurahanCode>(), g.tally.ikm()) else { continue };
        let p = reference::PublishedIkm {
            period: period.0.clone(),
            period_label: period.1.clone(),
            ikm_centi: ikm.centi,
            respondents: g.tally.respondents,
            sample_min: g.sample_min.min(385),
            published_at_ms: now,
        };
        p.check().map_err(|e| OpError::unprocessable("invalid_ikm", e))?;
        list.push((k, p));
    }
    if list.is_empty() {
        return Err(OpError::unprocessable(
            "no_respondents",
            "belum ada responden pada periode ini / no respondents in this period",
        ));
    }
    let offices = list.len();
    let audit = CatalogAudit {
        username: admin.username.as_str().to_owned(),
        role: admin.role.as_str(),
        action: "publish_ikm",
        reason: format!("IKM {} ({} kelurahan)", period.1, offices),
    };
    edit_catalog_audited(db, writer, Some(audit), move |doc, _| {
        for (k, p) in &list {
            reference::put_published_ikm(doc, k, p).map_err(schema_error)?;
        }
        Ok(())
    })
    .await?;
    tracing::info!(period = %period.0, offices, by = %admin.username.as_str(), "IKM published to the kiosks");
    Ok(offices)
}

/// Full personal data of many requests, for an export by a role that may
/// see it: one audit row per request (`export_personal`), written before
/// anything is returned. The caller has already scoped `doc_ids` to the
/// user.
pub async fn reveal_personal_many(
    db: &Db,
    user: &User,
    doc_ids: Vec<String>,
    reason: &str,
) -> Result<HashMap<String, Personal>, OpError> {
    check_personal_role(user)?;
    let reason = check_reason(reason)?;
    let (who, role) = (user.username.as_str().to_owned(), user.role.as_str());
    let count = doc_ids.len();
    let found = write(db, move |tx| -> Result<HashMap<String, Personal>, OpError> {
        let now = now_ms();
        let mut out = HashMap::with_capacity(doc_ids.len());
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
                Err(e) => return Err(e.into()),
            };
            let Ok((view, _)) = docs::read_request(&stored.doc) else {
                tracing::error!(doc = %id, "full export: unreadable request left out");
                continue;
            };
            let entry = AuditEntry {
                at_ms: now,
                username: &who,
                role,
                action: "export_personal",
                doc_id: Some(&id),
                reason: &reason,
                subject: None,
            };
            accounts::audit(tx, &entry)?;
            out.insert(id.clone(), Personal::of(id, &view));
        }
        Ok(out)
    })
    .await?;
    tracing::info!(user = %user.username.as_str(), requests = count, "full personal data exported (audited)");
    Ok(found)
}

/// Adds or changes a staff member in a kelurahan's roster document (made
/// on first use); the kiosks of that kelurahan get it at their next sync
/// and can log in with it offline from then on. `active: false` revokes.
/// `new_hash` is a new password's argon2id hash, or `None` to keep the
/// current one (a new member needs one).
#[allow(clippy::too_many_arguments)]
pub async fn put_staff(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    kel: KelurahanCode,
    sid: StaffId,
    name: String,
    role: StaffRole,
    kind: loket_shared::StaffKind,
    new_hash: Option<String>,
    active: bool,
) -> Result<Value, OpError> {
    let writer = writer.clone();
    write(db, move |tx| {
        docs::lock_partitions(tx, Some(&[kel.as_str()]))?;
        let now = now_ms();
        let existing = docs::reference_doc(tx, DocType::Roster, Some(kel.as_str()))?;
        let member =
            |hash: String| StaffMember { id: sid.clone(), name: name.clone(), role, kind, password_hash: hash, active };
        match existing {
            None => {
                let Some(hash) = new_hash.clone() else {
                    return Err(OpError::missing("password"));
                };
                let roster = Roster { kelurahan: kel.clone(), staff: vec![member(hash)] };
                let mut doc = AutoCommit::new().with_actor(writer.actor());
                reference::create_roster(&mut doc, &roster).map_err(|e| StoreError::Invalid(e.to_string()))?;
                docs::create_reference(tx, DocType::Roster, Some(kel.as_str()), doc, now, random_bytes())?;
            }
            Some(doc_id) => {
                let Some(mut stored) = docs::load(tx, &doc_id)? else {
                    return Err(StoreError::Corrupt { what: doc_id, reason: "listed but missing".into() }.into());
                };
                let roster = reference::read_roster(&stored.doc)
                    .map_err(|e| StoreError::Corrupt { what: doc_id.clone(), reason: e.to_string() })?;
                let hash = match (new_hash.clone(), roster.staff.iter().find(|s| s.id == sid)) {
                    (Some(h), _) => h,
                    (None, Some(current)) => current.password_hash.clone(),
                    (None, None) => return Err(OpError::missing("password")),
                };
                let heads_before = stored.doc.get_heads();
                stored.doc.set_actor(writer.actor());
                reference::put_staff(&mut stored.doc, &member(hash)).map_err(|e| StoreError::Invalid(e.to_string()))?;
                stored.doc.commit();
                if stored.doc.get_heads() != heads_before {
                    docs::save(tx, &doc_id, &mut stored, false, now)?;
                }
            }
        }
        Ok(json!({ "kelurahan": kel, "staff_id": sid, "active": active }))
    })
    .await
}

/// Checks a service's fields as an admin sends them.
pub fn check_service(code: &str, service: &reference::Service) -> Result<(), OpError> {
    if service.code.as_str() != code {
        return Err(OpError::unprocessable(
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
    // The English texts may be left out (the kiosk then shows the
    // Indonesian one, said so); given, they follow the same rule.
    let english_ok =
        [&service.procedure_en, &service.product_en, &service.complaint_en].iter().all(|t| t.is_empty() || text_ok(t));
    if !lists_ok || !fields_ok || !english_ok || !(1..=365).contains(&service.sla_days) {
        return Err(OpError::unprocessable("invalid_service", "isian layanan tidak valid / invalid service fields"));
    }
    Ok(())
}

/// Adds or changes a service in the catalog (the server's document); the
/// kiosks get it at their next sync. `active: false` withdraws it.
pub async fn put_service(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    code: &str,
    service: reference::Service,
) -> Result<Value, OpError> {
    check_service(code, &service)?;
    let writer = writer.clone();
    write(db, move |tx| {
        docs::lock_partitions(tx, None)?;
        let Some(id) = docs::reference_doc(tx, DocType::Catalog, None)? else {
            return Err(StoreError::Invalid("no catalog document".into()).into());
        };
        let mut stored =
            docs::load(tx, &id)?.ok_or_else(|| StoreError::Corrupt { what: id.clone(), reason: "missing".into() })?;
        let catalog = reference::read_catalog(&stored.doc)
            .map_err(|e| StoreError::Corrupt { what: id.clone(), reason: e.to_string() })?;
        if service.handoff.iter().any(|a| catalog.agency(a.as_str()).is_none()) {
            return Err(OpError::unprocessable(
                "unknown_agency",
                "instansi dalam handoff tidak dikenal / an agency in handoff is not known",
            ));
        }
        let heads_before = stored.doc.get_heads();
        stored.doc.set_actor(writer.actor());
        reference::put_service(&mut stored.doc, &service).map_err(|e| StoreError::Invalid(e.to_string()))?;
        projection::record_service_slas(
            tx,
            &reference::Catalog { services: vec![service.clone()], ..Default::default() },
        )?;
        stored.doc.commit();
        if stored.doc.get_heads() != heads_before {
            docs::check_reference(&stored.doc, DocType::Catalog).map_err(StoreError::Invalid)?;
            docs::save(tx, &id, &mut stored, false, now_ms())?;
        }
        Ok(json!({ "code": service.code, "active": service.active }))
    })
    .await
}

/// The audit log, newest first.
pub async fn audit_log(db: &Db, limit: u32) -> Result<Vec<accounts::AuditRow>, OpError> {
    read(db, move |c| Ok(accounts::audit_log(c, limit)?)).await
}
