//! Complaints (pengaduan, issue 16) at the centre: the list and detail
//! a user may see, the audited view of a complainant's identity, and the
//! central steps (register, extend, forward to SP4N-LAPOR!, answer,
//! close), each checked with `complaint::check_step`, sealed by the
//! server, written with `parents = derived frontier`, and saved,
//! projected and logged in one transaction like a central request event;
//! the kelurahan's kiosks pull it at their next sync.
//!
//! Who may see and act:
//! - admins: every complaint;
//! - a supervisor limited to one kelurahan: that kelurahan's, and acts on
//!   them (the office's complaints officer); a city-wide supervisor only
//!   reads;
//! - an agency user: the complaints routed to its agency (`agency:CODE`),
//!   and acts on them.
//!
//! The complainant's identity (name, NIK, phone) is masked for everyone;
//! the full view needs a reason and writes an audit row first (as a
//! request's personal data), and neither is ever given to the staff
//! member the complaint is about (`About::Staff(id)` where `id` is the
//! viewer's recorded staff id, `users.staff_id`).

use loket_shared::complaint::{self, About, Class, ComplaintView, Derived, StepError, StepKind, Unit};
use loket_shared::sync::DocType;
use loket_shared::{DocId, KelurahanCode};
use serde_json::{Value, json};

use super::auth::{Role, User};
use super::central::{Writer, check_personal_role, check_reason};
use super::{OpError, Refusal, read, write};
use crate::store::accounts::{self, AuditEntry};
use crate::store::complaints::{self as store, ListRow, OfficeCounts};
use crate::store::{Db, Sql, StoreError, docs, now_ms, random_bytes};

/// The limits a user's role puts on what complaints they see: an
/// agency's those routed to it, a unit's only within its region.
fn scope(user: &User) -> Result<store::Scope, OpError> {
    match user.role {
        Role::Admin => Ok(store::Scope::default()),
        Role::Supervisor => {
            Ok(store::Scope { kelurahan: user.kelurahan.as_ref().map(ToString::to_string), ..store::Scope::default() })
        }
        Role::Agency => match &user.agency {
            Some(a) => {
                Ok(store::Scope { unit: Some(format!("agency:{a}")), region: user.region.clone(), kelurahan: None })
            }
            None => Err(OpError::forbidden()),
        },
    }
}

fn may_see(user: &User, view: &ComplaintView, derived: &Derived) -> bool {
    match user.role {
        Role::Admin => true,
        Role::Supervisor => user.kelurahan.as_ref().is_none_or(|k| *k == view.kelurahan),
        Role::Agency => routed_to_agency(user, derived) && user.covers(view.kelurahan.as_str()),
    }
}

fn routed_to_agency(user: &User, derived: &Derived) -> bool {
    matches!((&derived.unit, &user.agency), (Some(Unit::Agency(a)), Some(mine)) if a.as_str() == mine)
}

/// Whether the user may write a step on this complaint.
fn may_act(user: &User, view: &ComplaintView, derived: &Derived) -> bool {
    match user.role {
        Role::Admin => true,
        Role::Supervisor => user.kelurahan.as_ref() == Some(&view.kelurahan),
        Role::Agency => routed_to_agency(user, derived) && user.covers(view.kelurahan.as_str()),
    }
}

/// Whether the complaint is about the viewer (by their recorded staff id).
fn is_about(view: &ComplaintView, staff_id: Option<&str>) -> bool {
    matches!((&view.about, staff_id), (About::Staff(s), Some(me)) if s.as_str() == me)
}

/// The list's filters, as parsed by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub kelurahan: Option<KelurahanCode>,
    pub state: Option<complaint::State>,
    pub overdue: Option<bool>,
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// Complaints the user may see, newest first, at most `limit + 1`.
pub async fn list(db: &Db, user: &User, f: ListFilter, now: i64) -> Result<Vec<ListRow>, OpError> {
    let filter = store::Filter {
        scope: scope(user)?,
        kelurahan: f.kelurahan.map(|k| k.to_string()),
        state: f.state,
        overdue: f.overdue,
        after: f.after,
        limit: f.limit,
        now_ms: now,
    };
    read(db, move |c| Ok(store::list(c, &filter)?)).await
}

/// Received, open and overdue complaints per office, within the user's scope.
pub async fn counts(db: &Db, user: &User, now: i64) -> Result<Vec<OfficeCounts>, OpError> {
    let scope = scope(user)?;
    read(db, move |c| Ok(store::counts(c, &scope, now)?)).await
}

/// A complaint as one user may see it.
#[derive(Debug, Clone)]
pub struct Detail {
    pub view: ComplaintView,
    pub derived: Derived,
    /// Its projection row (received and due times), if projected.
    pub row: Option<ListRow>,
    /// The complaint is about the viewer: no identity of the complainant,
    /// not even masked.
    pub complainant_hidden: bool,
    /// Whether the viewer may write a step.
    pub may_act: bool,
    pub heads: Vec<String>,
}

fn load_in(c: &mut dyn Sql, id: &DocId) -> Result<Option<(ComplaintView, Derived, Vec<String>)>, OpError> {
    match docs::load(c, &id.to_string())? {
        Some(mut s) if s.doc_type == DocType::Complaint => {
            let mut heads: Vec<String> = s.doc.get_heads().iter().map(|h| h.to_string()).collect();
            heads.sort();
            store::read_complaint(&s.doc)
                .map(|(v, d)| Some((v, d, heads)))
                .map_err(|e| OpError::Store(StoreError::Corrupt { what: id.to_string(), reason: e }))
        }
        _ => Ok(None),
    }
}

/// A complaint the user may see; 404 for anything else (unknown, not a
/// complaint, not theirs).
pub async fn load_visible(db: &Db, user: &User, raw: &str) -> Result<Detail, OpError> {
    let id: DocId = raw.parse().map_err(|_| OpError::not_found())?;
    let username = user.username.clone();
    let (loaded, row, staff_id) = read(db, move |c| {
        let loaded = load_in(c, &id)?;
        let row = store::row(c, &id.to_string())?;
        let staff_id = accounts::staff_id_of(c, &username)?;
        Ok((loaded, row, staff_id))
    })
    .await?;
    let (view, derived, heads) = loaded.ok_or_else(OpError::not_found)?;
    if !may_see(user, &view, &derived) {
        return Err(OpError::not_found());
    }
    let complainant_hidden = is_about(&view, staff_id.as_deref());
    let may_act = may_act(user, &view, &derived) && !complainant_hidden;
    Ok(Detail { view, derived, row, complainant_hidden, may_act, heads })
}

fn about_you() -> OpError {
    OpError::new(
        Refusal::Forbidden,
        "complaint_about_you",
        "pengaduan ini tentang Anda: identitas pengadu dilindungi / this complaint is about you: the complainant's \
         identity is protected",
    )
}

/// A complainant's full identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub name: String,
    pub nik: Option<String>,
    pub phone: Option<String>,
}

/// The complainant's full name, NIK and phone, for roles whose work needs
/// them (an admin; the agency the complaint is routed to), never for the
/// staff member it is about. Audited (`view_complainant`) before anything
/// is shown; an anonymous complaint has nothing to show (404
/// `anonymous`).
pub async fn reveal_complainant(db: &Db, user: &User, raw: &str, reason: &str) -> Result<Identity, OpError> {
    check_personal_role(user)?;
    let reason = check_reason(reason)?;
    let detail = load_visible(db, user, raw).await?;
    if detail.complainant_hidden {
        return Err(about_you());
    }
    let Some(c) = detail.view.complainant.clone() else {
        return Err(OpError::new(Refusal::NotFound, "anonymous", "pengaduan ini anonim / this complaint is anonymous"));
    };
    let (who, role, doc) = (user.username.as_str().to_owned(), user.role.as_str(), detail.view.id.to_string());
    let doc2 = doc.clone();
    write(db, move |tx| {
        let entry = AuditEntry {
            at_ms: now_ms(),
            username: &who,
            role,
            action: "view_complainant",
            doc_id: Some(&doc2),
            reason: &reason,
            subject: None,
        };
        Ok(accounts::audit(tx, &entry)?)
    })
    .await?;
    tracing::info!(doc = %doc, user = %user.username.as_str(), "complainant's identity viewed (audited)");
    Ok(Identity {
        id: doc,
        name: c.name.as_str().to_owned(),
        nik: c.nik.as_ref().map(|n| n.as_str().to_owned()),
        phone: c.phone.as_ref().map(|p| p.as_str().to_owned()),
    })
}

/// A central step as a user asks for it (HTTP fields, not yet checked).
#[derive(Debug, Clone, Default)]
pub struct StepRequest {
    /// `register`, `extend`, `lapor` (or `forward`), `answer`, `close`.
    pub kind: String,
    pub class: Option<String>,
    pub unit: Option<String>,
    pub days: Option<u32>,
    pub lapor: Option<String>,
    pub text: Option<String>,
}

fn step_error(e: &StepError) -> OpError {
    let kind = match e {
        StepError::Missing(_) | StepError::Invalid(_) | StepError::FileOnlyOnce => Refusal::Unprocessable,
        _ => Refusal::Conflict,
    };
    OpError::new(kind, e.code(), e)
}

fn parse_kind(kind: &str) -> Result<StepKind, OpError> {
    match kind.trim() {
        "lapor" | "forward" => Ok(StepKind::Forward),
        k @ ("register" | "extend" | "answer" | "close") => Ok(k.parse().expect("listed above")),
        _ => Err(OpError::unprocessable(
            "invalid_step",
            "langkah: register, extend, lapor, answer atau close / kind: register, extend, lapor, answer or close",
        )),
    }
}

/// Checks and writes a central step (the API and the pages share it):
/// who may act, the complaint rules (`complaint::check_step`), the unit
/// (the complaint's own kelurahan or an agency of the catalog), the seal.
/// Returns the step's id and the state after it.
pub async fn append_step(
    db: &Db,
    writer: &std::sync::Arc<Writer>,
    user: &User,
    raw: &str,
    req: StepRequest,
) -> Result<Value, OpError> {
    let id: DocId = raw.parse().map_err(|_| OpError::not_found())?;
    let kind = parse_kind(&req.kind)?;
    let class = match req.class.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(
            c.parse::<Class>()
                .map_err(|_| OpError::unprocessable("invalid_class", "klasifikasi tidak dikenal / unknown class"))?,
        ),
    };
    let unit = match req.unit.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(u) => Some(u.parse::<Unit>().map_err(|_| {
            OpError::unprocessable(
                "invalid_unit",
                "unit: kelurahan:KODE atau agency:KODE / unit: kelurahan:CODE or agency:CODE",
            )
        })?),
    };
    let lapor = req.lapor.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    let text = req.text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let by = match (&user.role, &user.agency) {
        (Role::Agency, Some(a)) => format!("agency:{a}:{}", user.username.as_str()),
        (role, _) => format!("{}:{}", role.as_str(), user.username.as_str()),
    };
    let user2 = user.clone();
    let writer = writer.clone();
    let result = write(db, move |tx| {
        let doc_id = id.to_string();
        docs::lock_doc(tx, &doc_id)?;
        let Some(mut stored) = docs::load(tx, &doc_id)? else { return Err(OpError::not_found()) };
        if stored.doc_type != DocType::Complaint {
            return Err(OpError::not_found());
        }
        let (view, derived) =
            store::read_complaint(&stored.doc).map_err(|e| StoreError::Corrupt { what: doc_id.clone(), reason: e })?;
        if !may_see(&user2, &view, &derived) {
            return Err(OpError::not_found());
        }
        if !may_act(&user2, &view, &derived) {
            return Err(OpError::forbidden());
        }
        // Nobody handles a complaint about themselves.
        if is_about(&view, accounts::staff_id_of(tx, &user2.username)?.as_deref()) {
            return Err(about_you());
        }
        match &unit {
            Some(Unit::Kelurahan(k)) if *k != view.kelurahan => {
                return Err(OpError::unprocessable(
                    "invalid_unit",
                    "kelurahan unit harus kelurahan pengaduan ini / the kelurahan unit must be the complaint's own",
                ));
            }
            Some(Unit::Agency(a)) if super::central::catalog_of(tx)?.agency(a.as_str()).is_none() => {
                return Err(OpError::unprocessable("unknown_agency", "instansi tidak dikenal / unknown agency"));
            }
            _ => {}
        }
        let now = now_ms();
        let latest = derived.ordered.iter().map(|s| s.hlc).max();
        let mut step = complaint::Step {
            id: DocId::new_v7(u64::try_from(now).unwrap_or(0), random_bytes()).to_string(),
            hlc: writer.next_hlc(latest),
            node: writer.actor().to_hex_string(),
            at_ms: now,
            by: by.clone(),
            kind,
            class,
            unit: unit.clone(),
            days: req.days,
            lapor: lapor.clone(),
            text: text.clone(),
            parents: derived.frontier.clone(),
            seal: None,
        };
        complaint::check_step(&derived, &step).map_err(|e| step_error(&e))?;
        loket_shared::structure::check_complaint_step(&step).map_err(|e| OpError::unprocessable("invalid_field", e))?;
        step.seal = Some(super::seal::SealKey::load_or_create(tx)?.seal_step(&doc_id, &step));
        let heads_before = stored.doc.get_heads();
        stored.doc.set_actor(writer.actor());
        complaint::append_step(&mut stored.doc, &step).map_err(|e| StoreError::Invalid(e.to_string()))?;
        stored.doc.commit();
        let (view, after) =
            store::read_complaint(&stored.doc).map_err(|e| StoreError::Corrupt { what: doc_id.clone(), reason: e })?;
        docs::save(tx, &doc_id, &mut stored, &heads_before, false, None, now)?;
        docs::record_receipts(tx, &doc_id, &mut stored.doc, &heads_before, None, now)?;
        store::project_complaint(tx, &view, &after)?;
        Ok(json!({
            "id": doc_id, "step_id": step.id, "kind": kind_name(kind), "state": after.state.as_str(),
            "flags": after.flags.iter().map(store::flag_name).collect::<Vec<_>>(),
        }))
    })
    .await?;
    tracing::info!(doc = %id, user = %user.username.as_str(), kind = kind_name(kind), "central complaint step");
    Ok(result)
}

/// A step kind as the API names it (`forward` is `lapor` there).
pub fn kind_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Forward => "lapor",
        k => k.as_str(),
    }
}
