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
        docs::save(tx, &doc_id, &mut stored, false, now)?;
        docs::record_receipts(tx, &doc_id, &mut stored.doc, &heads_before, now)?;
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

// ------------------------------------------------------------------ figures

/// An office's complaint figures: `received`, `answered_*` and the median
/// are of the complaints received in the period; `open` and `overdue` are
/// now, whenever received (what an office head must still act on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfficeFigures {
    pub kelurahan: String,
    pub received: u64,
    pub open: u64,
    pub overdue: u64,
    /// Of those, received in the period (what a training need counts).
    pub overdue_of_period: u64,
    /// First answered no later than the deadline (with its extension).
    pub answered_in_time: u64,
    pub answered_late: u64,
    /// The median time from receipt to the first answer, in working-day
    /// milliseconds of the office's calendar (as the deadline counts).
    pub median_answer_ms: Option<i64>,
    /// SKM U8 (complaint handling) over the same period.
    pub u8: U8,
}

/// SKM element U8 of an office: its NRR and from how many ratings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct U8 {
    pub nrr: Option<f64>,
    pub rated: u64,
}

/// A service's complaint figures: complaints about the service itself
/// or about one of its requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceFigures {
    pub service: String,
    pub received: u64,
    pub open: u64,
    pub overdue: u64,
    pub median_answer_ms: Option<i64>,
}

/// What a recurring theme is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ThemeAbout {
    /// The office itself.
    Office,
    /// A service, named directly.
    Service(String),
    /// Requests of a service (`None`: a request not known here).
    Request(Option<String>),
    /// A staff member: their staff id, or `None` where the viewer may not
    /// see it (an agency's user; the staff member it is about).
    Staff(Option<String>),
}

/// Complaints of one office about the same thing, received in the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub kelurahan: String,
    pub about: ThemeAbout,
    pub count: u64,
}

/// The complaint figures of a period within the user's scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Every office with a complaint received in the period, one open
    /// now, or SKM ratings in the period; by kelurahan code.
    pub offices: Vec<OfficeFigures>,
    /// Every service complained about (in the period, or open now).
    pub services: Vec<ServiceFigures>,
    /// Groups of at least [`THEME_MIN`], most first.
    pub themes: Vec<Theme>,
}

/// How many complaints about the same thing make a recurring theme.
pub const THEME_MIN: u64 = 2;

/// Who reads the figures, for what a theme may show.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// Admins and supervisors (who keep the staff register) see staff
    /// ids; agencies do not.
    pub sees_staff: bool,
    /// The viewer's own staff id: a theme about them never shows it.
    pub staff_id: Option<String>,
}

impl Viewer {
    fn of(user: &User, staff_id: Option<String>) -> Viewer {
        Viewer { sees_staff: matches!(user.role, Role::Admin | Role::Supervisor), staff_id }
    }
}

/// The median of `v` (lower middle of an even count; `None` if empty).
fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[(v.len() - 1) / 2])
}

/// The figures from the rows of [`store::figure_rows`]: pure, so the
/// arithmetic is tested without a database. `u8s` is U8 per kelurahan.
pub fn aggregate(
    rows: &[store::FigureRow],
    cals: &crate::store::projection::Calendars,
    (from, to): (i64, i64),
    now_ms: i64,
    u8s: &std::collections::BTreeMap<String, U8>,
    viewer: &Viewer,
) -> Figures {
    use std::collections::BTreeMap;
    let mut offices: BTreeMap<&str, (OfficeFigures, Vec<i64>)> = BTreeMap::new();
    let mut services: BTreeMap<&str, (ServiceFigures, Vec<i64>)> = BTreeMap::new();
    let mut themes: BTreeMap<(&str, ThemeAbout), u64> = BTreeMap::new();
    for r in rows {
        let in_period = (from..to).contains(&r.received_at_ms);
        let open = matches!(r.state.as_str(), "received" | "registered");
        let overdue = open && now_ms > r.due_at_ms;
        let answer_ms = r
            .answered_at_ms
            .filter(|_| in_period)
            .map(|at| cals.of_kelurahan(&r.kelurahan).working_between(r.received_at_ms, at));
        let (o, times) = offices.entry(r.kelurahan.as_str()).or_default();
        o.received += u64::from(in_period);
        o.open += u64::from(open);
        o.overdue += u64::from(overdue);
        o.overdue_of_period += u64::from(overdue && in_period);
        if let (true, Some(at)) = (in_period, r.answered_at_ms) {
            if at <= r.due_at_ms {
                o.answered_in_time += 1;
            } else {
                o.answered_late += 1;
            }
        }
        times.extend(answer_ms);
        let service = match r.about_kind.as_str() {
            "service" => r.about_target.as_deref(),
            "request" => r.request_service.as_deref(),
            _ => None,
        };
        if let Some(s) = service {
            let (f, times) = services.entry(s).or_default();
            f.received += u64::from(in_period);
            f.open += u64::from(open);
            f.overdue += u64::from(overdue);
            times.extend(answer_ms);
        }
        if in_period {
            let about = match r.about_kind.as_str() {
                "office" => Some(ThemeAbout::Office),
                "service" => r.about_target.clone().map(ThemeAbout::Service),
                "request" => Some(ThemeAbout::Request(r.request_service.clone())),
                "staff" => Some(ThemeAbout::Staff(r.about_target.clone())),
                _ => None,
            };
            if let Some(about) = about {
                *themes.entry((r.kelurahan.as_str(), about)).or_default() += 1;
            }
        }
    }
    for k in u8s.keys() {
        offices.entry(k.as_str()).or_default();
    }
    let offices = offices
        .into_iter()
        .map(|(k, (mut o, times))| {
            o.kelurahan = k.to_owned();
            o.median_answer_ms = median(times);
            o.u8 = u8s.get(k).copied().unwrap_or_default();
            o
        })
        .collect();
    let services = services
        .into_iter()
        .map(|(s, (mut f, times))| {
            f.service = s.to_owned();
            f.median_answer_ms = median(times);
            f
        })
        .collect();
    let mut themes: Vec<Theme> = themes
        .into_iter()
        .filter(|(_, n)| *n >= THEME_MIN)
        .map(|((k, about), count)| {
            let about = match about {
                ThemeAbout::Staff(Some(id))
                    if !viewer.sees_staff || viewer.staff_id.as_deref() == Some(id.as_str()) =>
                {
                    ThemeAbout::Staff(None)
                }
                a => a,
            };
            Theme { kelurahan: k.to_owned(), about, count }
        })
        .collect();
    // Most first; ties by office and what (grouped before any id was
    // hidden, so two staff members never merge into one line).
    themes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kelurahan.cmp(&b.kelurahan)));
    Figures { offices, services, themes }
}

/// U8 per office over a period, within the user's scope: from the
/// monthly rollups where they serve the user, else from the ratings.
async fn u8_per_office(
    db: &Db,
    user: &User,
    offset: time::UtcOffset,
    range: (i64, i64),
    months: (i64, i64),
) -> Result<std::collections::BTreeMap<String, U8>, OpError> {
    use super::reports::{self, IkmKey};
    let groups = if reports::rollups_serve(user) {
        reports::ikm_rollup(db, user, months, IkmKey::Kelurahan).await?
    } else {
        reports::ikm_groups(db, user, offset, range, IkmKey::Kelurahan).await?
    };
    Ok(groups
        .into_iter()
        .filter(|g| g.tally.respondents > 0)
        .map(|g| {
            let u8 = U8 { nrr: g.tally.nrr(loket_shared::skm::Element::U8), rated: g.tally.respondents };
            (g.key, u8)
        })
        .collect())
}

/// The complaint figures of a period (`range` in ms, `months` as
/// `yyyymm` for the SKM rollups) within the user's scope.
pub async fn figures(
    db: &Db,
    user: &User,
    offset: time::UtcOffset,
    range: (i64, i64),
    months: (i64, i64),
    now: i64,
) -> Result<Figures, OpError> {
    let scope = scope(user)?;
    let username = user.username.clone();
    let (rows, cals, staff_id) = read(db, move |c| {
        let rows = store::figure_rows(c, &scope, range.0, range.1)?;
        Ok((rows, crate::store::projection::Calendars::load(c)?, accounts::staff_id_of(c, &username)?))
    })
    .await?;
    if rows.len() > store::FIGURE_ROWS_MAX {
        return Err(OpError::unprocessable(
            "too_many_complaints",
            "terlalu banyak pengaduan untuk satu periode; pilih periode yang lebih pendek / too many complaints for \
             one period; choose a shorter period",
        ));
    }
    let u8s = u8_per_office(db, user, offset, range, months).await?;
    Ok(aggregate(&rows, &cals, range, now, &u8s, &Viewer::of(user, staff_id)))
}

/// Why an office needs training in complaint handling, in numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ComplaintNeedReason {
    /// Complaints received in the period, unanswered past their deadline now.
    Overdue { count: u64 },
    /// First answers after the deadline, of all answered.
    Late { late: u64, answered: u64 },
    /// U8 below B, from at least `JUDGED_MIN` ratings.
    LowU8 { nrr: f64, rated: u64 },
}

/// The offices that need training in complaint handling ("Penanganan
/// pengaduan"), with why: overdue complaints or late answers in the
/// period (each is a citizen let down, so one is enough), or U8 below B
/// judged, as the staff page judges U6 and U7, only from `JUDGED_MIN`
/// ratings.
pub fn complaint_needs(figures: &Figures) -> Vec<(String, Vec<ComplaintNeedReason>)> {
    use super::reports::{JUDGED_MIN, NRR_GOOD};
    figures
        .offices
        .iter()
        .filter_map(|o| {
            let mut reasons = Vec::new();
            if o.overdue_of_period > 0 {
                reasons.push(ComplaintNeedReason::Overdue { count: o.overdue_of_period });
            }
            if o.answered_late > 0 {
                reasons.push(ComplaintNeedReason::Late {
                    late: o.answered_late,
                    answered: o.answered_late + o.answered_in_time,
                });
            }
            if o.u8.rated >= JUDGED_MIN
                && let Some(nrr) = o.u8.nrr.filter(|v| *v < NRR_GOOD)
            {
                reasons.push(ComplaintNeedReason::LowU8 { nrr, rated: o.u8.rated });
            }
            (!reasons.is_empty()).then(|| (o.kelurahan.clone(), reasons))
        })
        .collect()
}

#[cfg(test)]
mod figure_tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::complaints::FigureRow;
    use crate::store::projection::Calendars;

    /// Monday 2 November 2026, 08:00 WIB: an office opens.
    const MONDAY_8: i64 = 1_793_581_200_000;
    const HOUR: i64 = 3_600_000;
    /// November 2026 in WIB.
    const NOVEMBER: (i64, i64) = (1_793_466_000_000, 1_796_058_000_000);
    const A: &str = "12.71.01.1001";
    const B: &str = "12.71.01.1002";

    fn cals() -> Calendars {
        Calendars {
            offset: time::UtcOffset::from_hms(7, 0, 0).unwrap(),
            holidays: loket_shared::sla::Holidays::none(),
            city: loket_shared::sla::ServiceHours::CITY_DEFAULT,
            kelurahan: std::collections::HashMap::new(),
        }
    }

    fn row(k: &str, about: (&str, Option<&str>), state: &str, received: i64, answered: Option<i64>) -> FigureRow {
        FigureRow {
            kelurahan: k.into(),
            about_kind: about.0.into(),
            about_target: about.1.filter(|_| about.0 != "request").map(Into::into),
            request_service: about.1.filter(|_| about.0 == "request").map(Into::into),
            state: state.into(),
            received_at_ms: received,
            // Two working days (Monday 08:00 → Tuesday 16:00).
            due_at_ms: received + 32 * HOUR,
            answered_at_ms: answered,
        }
    }

    #[test]
    fn figures_count_the_period_and_now_in_working_time() {
        let before = NOVEMBER.0 - 40 * 24 * HOUR;
        let rows = [
            // Open from before the period and overdue: open and overdue now, not received.
            row(A, ("office", None), "registered", before, None),
            // Answered in 4 service hours (half a working day): in time.
            row(A, ("service", Some("KTP")), "answered", MONDAY_8, Some(MONDAY_8 + 4 * HOUR)),
            // Answered the next Monday: 5 working days, late.
            row(A, ("request", Some("KTP")), "closed", MONDAY_8, Some(MONDAY_8 + 7 * 24 * HOUR)),
            // Received, not answered, overdue.
            row(A, ("staff", Some("198001012006041001")), "received", MONDAY_8, None),
            row(A, ("staff", Some("198001012006041001")), "received", MONDAY_8 + HOUR, None),
            row(B, ("general", None), "received", MONDAY_8 + 10 * 24 * HOUR, None),
        ];
        let now = MONDAY_8 + 10 * 24 * HOUR + HOUR;
        let u8s: BTreeMap<String, U8> = [("12.71.01.1003".to_owned(), U8 { nrr: Some(2.5), rated: 6 })].into();
        let admin = Viewer { sees_staff: true, staff_id: None };
        let f = aggregate(&rows, &cals(), NOVEMBER, now, &u8s, &admin);
        assert_eq!(f.offices.len(), 3, "{f:?}");
        let a = &f.offices[0];
        assert_eq!((a.received, a.open, a.overdue, a.overdue_of_period), (4, 3, 3, 2));
        assert_eq!((a.answered_in_time, a.answered_late), (1, 1));
        // Medians of 0.5 and 5 working days: the lower middle.
        assert_eq!(a.median_answer_ms, Some(loket_shared::sla::DAY_MS / 2));
        let b = &f.offices[1];
        assert_eq!((b.received, b.open, b.overdue, b.median_answer_ms), (1, 1, 0, None));
        assert_eq!(f.offices[2].u8, U8 { nrr: Some(2.5), rated: 6 }, "an office with ratings only is listed");
        assert_eq!(f.offices[2].received, 0);
        // KTP: one about the service, one about a KTP request.
        assert_eq!(f.services.len(), 1);
        assert_eq!((f.services[0].service.as_str(), f.services[0].received, f.services[0].open), ("KTP", 2, 0));
        assert_eq!(f.services[0].median_answer_ms, Some(loket_shared::sla::DAY_MS / 2));
        // The one recurring theme: the staff member, twice.
        let staff = ThemeAbout::Staff(Some("198001012006041001".into()));
        assert_eq!(f.themes, [Theme { kelurahan: A.into(), about: staff, count: 2 }]);
        // An agency, and the staff member it is about, never see the id.
        for viewer in [
            Viewer { sees_staff: false, staff_id: None },
            Viewer { sees_staff: true, staff_id: Some("198001012006041001".into()) },
        ] {
            let f = aggregate(&rows, &cals(), NOVEMBER, now, &u8s, &viewer);
            assert_eq!(f.themes[0].about, ThemeAbout::Staff(None));
        }
        // Training needs: A for overdue and late; the third office for U8.
        let needs = complaint_needs(&aggregate(&rows, &cals(), NOVEMBER, now, &u8s, &admin));
        assert_eq!(
            needs,
            [
                (
                    A.to_owned(),
                    vec![ComplaintNeedReason::Overdue { count: 2 }, ComplaintNeedReason::Late { late: 1, answered: 2 }]
                ),
                ("12.71.01.1003".to_owned(), vec![ComplaintNeedReason::LowU8 { nrr: 2.5, rated: 6 }]),
            ]
        );
    }

    #[test]
    fn a_low_u8_is_judged_only_from_enough_ratings() {
        let u8s: BTreeMap<String, U8> = [(A.to_owned(), U8 { nrr: Some(1.0), rated: 4 })].into();
        let f = aggregate(&[], &cals(), NOVEMBER, MONDAY_8, &u8s, &Viewer::default());
        assert!(complaint_needs(&f).is_empty());
    }
}
