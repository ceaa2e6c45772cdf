//! The complaint (pengaduan) document and its merge rules (issue 16;
//! facts in ../shared/data/COMPLAINTS.md: UU 25/2009, Perpres 76/2013,
//! SP4N-LAPOR!).
//!
//! Layout (schema 1):
//!
//! ```text
//! ROOT { type: "complaint", schema: 1, id, ticket (ADU-K07-1128-024), kelurahan, kiosk,
//!        created_at (unix ms, kiosk clock), hlc,
//!        about: { kind: "request" | "office" | "service" | "staff" | "general",
//!                 ticket?, service?, staff? },
//!        complainant?: { name, nik?, phone? },      (absent: anonymous)
//!        text,
//!        steps: [ { id, hlc, node, at, by, kind, class?, unit?, days?,
//!                   lapor?, text?, seal?, parents: [id] } ] }
//! ```
//!
//! A citizen files a complaint at a kiosk (the `file` step, written with
//! the document). Everything after that is central: the unit responsible
//! registers it (classifies it and names the unit: the kelurahan's
//! complaints officer, or the agency whose part it is about), may extend
//! its deadline once with notice, may forward it to SP4N-LAPOR! (then it
//! carries the tracking number), answers it, and closes it. Kiosks carry
//! those steps (sealed by the server, like central request events) to the
//! citizen, who reads the answer with the complaint's ticket.
//!
//! Merge rules, a pure function of the *set* of steps (every replica that
//! holds the same steps derives the same state, whatever order they came
//! in). Each step names the steps its writer had seen as current
//! (`parents`), so "concurrent" means "neither descends from the other":
//!
//! - answers: an answer that descends from an earlier one amends it (the
//!   citizen reads the newest); concurrent answers are all current, all
//!   shown, and flagged until an answer that descends from every one of
//!   them is written;
//! - registrations: the latest in `(hlc, node, id)` order counts;
//!   concurrent ones that disagree on class or unit are flagged;
//! - the one extension: the earliest counts; a concurrent second one is
//!   flagged, never added;
//! - LAPOR! numbers: all kept; concurrent different numbers are flagged;
//! - closing is final; an answer the closer had not seen is still shown,
//!   and flagged.
//!
//! Nothing is dropped: every step stays in the history.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hlc::Hlc;
use crate::ids::{Code, ComplaintTicket, DocId, KelurahanCode, KioskCode, Nik, PersonName, Phone, StaffId, Ticket};
use crate::request::SchemaError;
use crate::sla::Calendar;

pub const SCHEMA_VERSION: i64 = 1;
/// The complaint's own text and an answer.
pub const TEXT_MAX_CHARS: usize = 2000;
/// A notice of extension or a closing note.
pub const NOTE_MAX_CHARS: usize = 1000;
/// The most working days one extension may add.
pub const EXTENSION_MAX_DAYS: u32 = 14;

// ------------------------------------------------------------------ vocabulary

/// How a complaint is classified, with its resolution time in working days
/// from receipt (COMPLAINTS.md: the kelurahan and city service standards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Simple: 2 working days.
    Ringan,
    /// About rules or procedure: 5 working days.
    Normatif,
    /// Needs no investigation: 14 working days.
    TidakBerkadarPengawasan,
    /// Needs investigation: 60 working days.
    BerkadarPengawasan,
}

impl Class {
    pub const ALL: [Class; 4] =
        [Class::Ringan, Class::Normatif, Class::TidakBerkadarPengawasan, Class::BerkadarPengawasan];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Ringan => "ringan",
            Class::Normatif => "normatif",
            Class::TidakBerkadarPengawasan => "tidak_berkadar_pengawasan",
            Class::BerkadarPengawasan => "berkadar_pengawasan",
        }
    }

    /// Working days from receipt to resolution.
    pub fn days(self) -> u32 {
        match self {
            Class::Ringan => 2,
            Class::Normatif => 5,
            Class::TidakBerkadarPengawasan => 14,
            Class::BerkadarPengawasan => 60,
        }
    }

    /// `(Bahasa Indonesia, English)`.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Class::Ringan => ("Ringan", "Simple"),
            Class::Normatif => ("Normatif", "About rules or procedure"),
            Class::TidakBerkadarPengawasan => ("Tidak berkadar pengawasan", "No investigation needed"),
            Class::BerkadarPengawasan => ("Berkadar pengawasan", "Needs investigation"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("nilai tidak dikenal / unknown value")]
pub struct UnknownValue;

impl FromStr for Class {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Class, UnknownValue> {
        Class::ALL.into_iter().find(|c| c.as_str() == s).ok_or(UnknownValue)
    }
}

/// What a complaint is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AboutKind {
    /// A request, by its ticket.
    Request,
    /// The office as a whole (the kelurahan).
    Office,
    /// A service of the catalog.
    Service,
    /// A staff member (by staff id).
    Staff,
    General,
}

impl AboutKind {
    pub const ALL: [AboutKind; 5] =
        [AboutKind::Request, AboutKind::Office, AboutKind::Service, AboutKind::Staff, AboutKind::General];

    pub fn as_str(self) -> &'static str {
        match self {
            AboutKind::Request => "request",
            AboutKind::Office => "office",
            AboutKind::Service => "service",
            AboutKind::Staff => "staff",
            AboutKind::General => "general",
        }
    }

    /// `(Bahasa Indonesia, English)`.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            AboutKind::Request => ("Permohonan", "A request"),
            AboutKind::Office => ("Kantor kelurahan", "The kelurahan office"),
            AboutKind::Service => ("Layanan", "A service"),
            AboutKind::Staff => ("Petugas", "A staff member"),
            AboutKind::General => ("Umum", "General"),
        }
    }
}

impl FromStr for AboutKind {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<AboutKind, UnknownValue> {
        AboutKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(UnknownValue)
    }
}

/// What a complaint is about: the kind and the one reference it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    Request(Ticket),
    Office,
    Service(Code),
    Staff(StaffId),
    General,
}

impl About {
    pub fn kind(&self) -> AboutKind {
        match self {
            About::Request(_) => AboutKind::Request,
            About::Office => AboutKind::Office,
            About::Service(_) => AboutKind::Service,
            About::Staff(_) => AboutKind::Staff,
            About::General => AboutKind::General,
        }
    }
}

/// Who answers for a complaint: the kelurahan (its complaints officer) or
/// an agency (the part of a request it handled). Written `kelurahan:CODE`
/// or `agency:CODE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Kelurahan(KelurahanCode),
    Agency(Code),
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Kelurahan(k) => write!(f, "kelurahan:{k}"),
            Unit::Agency(a) => write!(f, "agency:{a}"),
        }
    }
}

impl FromStr for Unit {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Unit, UnknownValue> {
        match s.split_once(':') {
            Some(("kelurahan", k)) => k.parse().map(Unit::Kelurahan).map_err(|_| UnknownValue),
            Some(("agency", a)) => a.parse().map(Unit::Agency).map_err(|_| UnknownValue),
            _ => Err(UnknownValue),
        }
    }
}

/// A step of a complaint's handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Filed at a kiosk (the first step, written with the document).
    File,
    /// Classified and routed to a unit (again: reclassified or rerouted).
    Register,
    /// The one extension of the deadline, with a notice to the citizen.
    Extend,
    /// Forwarded to SP4N-LAPOR!, with its tracking number.
    Forward,
    /// The answer the citizen reads (again: an amended answer).
    Answer,
    Close,
}

impl StepKind {
    pub const ALL: [StepKind; 6] =
        [StepKind::File, StepKind::Register, StepKind::Extend, StepKind::Forward, StepKind::Answer, StepKind::Close];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::File => "file",
            StepKind::Register => "register",
            StepKind::Extend => "extend",
            StepKind::Forward => "forward",
            StepKind::Answer => "answer",
            StepKind::Close => "close",
        }
    }
}

impl FromStr for StepKind {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<StepKind, UnknownValue> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(UnknownValue)
    }
}

/// One entry of a complaint's step list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique id (a UUID made by the writer); parents refer to it.
    pub id: String,
    pub hlc: Hlc,
    /// The writer's Automerge actor (hex): breaks HLC ties.
    pub node: String,
    /// The writer's wall clock, unix ms (may be wrong; `hlc` orders).
    pub at_ms: i64,
    /// `citizen` for `file`; otherwise the central user.
    pub by: String,
    pub kind: StepKind,
    /// `register`: the class and the unit.
    pub class: Option<Class>,
    pub unit: Option<Unit>,
    /// `extend`: working days added.
    pub days: Option<u32>,
    /// `forward`: the SP4N-LAPOR! tracking number.
    pub lapor: Option<String>,
    /// `answer`: the answer; `extend`: the notice; `close`: a note.
    pub text: Option<String>,
    /// The ids of the steps that were current when this one was written.
    pub parents: Vec<String>,
    /// The server's MAC over a central step (hex); `None` for `file`.
    pub seal: Option<String>,
}

impl Step {
    fn order_key(&self) -> (Hlc, &str, &str) {
        (self.hlc, &self.node, &self.id)
    }
}

/// Whether a SP4N-LAPOR! tracking number looks like one: 4-32 letters,
/// digits, `-`, `/` or `#`.
pub fn is_lapor_number(s: &str) -> bool {
    (4..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'#'))
}

// ------------------------------------------------------------------ the fold

/// Where a complaint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Filed, not registered yet.
    Received,
    /// Classified and routed: being handled.
    Registered,
    Answered,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Registered => "registered",
            State::Answered => "answered",
            State::Closed => "closed",
        }
    }

    /// `(Bahasa Indonesia, English)`.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            State::Received => ("Diterima", "Received"),
            State::Registered => ("Sedang ditangani", "Being handled"),
            State::Answered => ("Sudah dijawab", "Answered"),
            State::Closed => ("Selesai", "Closed"),
        }
    }

    /// Answered or closed: the unit has given its answer in time or not.
    pub fn is_answered(self) -> bool {
        matches!(self, State::Answered | State::Closed)
    }
}

impl FromStr for State {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<State, UnknownValue> {
        [State::Received, State::Registered, State::Answered, State::Closed]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or(UnknownValue)
    }
}

/// Something concurrent writers did that someone should look at. The steps
/// involved, in `(hlc, node, id)` order; nothing is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// Two or more answers neither of which saw the other: all are shown.
    ConcurrentAnswers(Vec<String>),
    /// Concurrent registrations that disagree on the class or the unit.
    ConcurrentRegistrations(Vec<String>),
    /// A second extension written without seeing the first: not counted.
    ExtraExtension(Vec<String>),
    /// Concurrent forwards with different LAPOR! numbers.
    ConcurrentForwards(Vec<String>),
    /// Answers the closer had not seen when closing: still shown.
    AnswerUnseenAtClose(Vec<String>),
}

/// An answer the citizen reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub step_id: String,
    pub by: String,
    pub at_ms: i64,
    pub text: String,
}

/// What the fold derives from a set of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub state: State,
    /// The class and unit of the registration that counts.
    pub class: Option<Class>,
    pub unit: Option<Unit>,
    /// Days added by the extension that counts.
    pub extension_days: Option<u32>,
    /// LAPOR! numbers, in the order they were written, each once.
    pub lapor: Vec<String>,
    /// The current answers: every answer no later answer descends from.
    /// One normally; more when written concurrently (then flagged).
    pub answers: Vec<Answer>,
    /// When the first answer was written (writer's clock): the unit's
    /// time to answer ends here.
    pub first_answer_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    pub flags: Vec<Flag>,
    /// What a new step must name as its parents, in `(hlc, node, id)` order.
    pub frontier: Vec<String>,
    /// Every step, in `(hlc, node, id)` order, duplicates removed.
    pub ordered: Vec<Step>,
}

impl Derived {
    pub fn has_flags(&self) -> bool {
        !self.flags.is_empty()
    }

    /// The working days the unit has: the class's (unclassified: the
    /// strictest, so an unregistered complaint is never hidden from the
    /// overdue list) plus the extension.
    pub fn allowed_days(&self) -> u32 {
        self.class.unwrap_or(Class::Ringan).days() + self.extension_days.unwrap_or(0)
    }

    /// When the answer is due, counted in the office's working time from
    /// `received_ms` (the filing).
    pub fn due_at(&self, calendar: &Calendar<'_>, received_ms: i64) -> i64 {
        calendar.due_at(received_ms, self.allowed_days())
    }

    /// Unanswered past its deadline at `now_ms`.
    pub fn overdue(&self, calendar: &Calendar<'_>, received_ms: i64, now_ms: i64) -> bool {
        !self.state.is_answered() && now_ms > self.due_at(calendar, received_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FoldError {
    #[error("complaint has no file step")]
    NoFileStep,
}

/// Derives a complaint's state from its steps (in any order, with
/// duplicates). Parents that are unknown are ignored.
pub fn fold(steps: &[Step]) -> Result<Derived, FoldError> {
    let mut ordered: Vec<Step> = steps.to_vec();
    ordered.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    let mut seen = BTreeSet::new();
    ordered.retain(|s| seen.insert(s.id.clone()));
    if !ordered.iter().any(|s| s.kind == StepKind::File) {
        return Err(FoldError::NoFileStep);
    }
    let index: HashMap<&str, usize> = ordered.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    // ancestors[i]: every step step i descends from (its parents, theirs, …).
    let n = ordered.len();
    let mut ancestors: Vec<Option<BTreeSet<usize>>> = vec![None; n];
    fn visit(
        i: usize,
        ordered: &[Step],
        index: &HashMap<&str, usize>,
        memo: &mut Vec<Option<BTreeSet<usize>>>,
        on_path: &mut BTreeSet<usize>,
    ) -> BTreeSet<usize> {
        if let Some(a) = &memo[i] {
            return a.clone();
        }
        // A cycle can only come from forged parents: cut it.
        if !on_path.insert(i) {
            return BTreeSet::new();
        }
        let mut out = BTreeSet::new();
        for p in &ordered[i].parents {
            if let Some(&j) = index.get(p.as_str())
                && j != i
            {
                out.insert(j);
                out.extend(visit(j, ordered, index, memo, on_path));
            }
        }
        on_path.remove(&i);
        memo[i] = Some(out.clone());
        out
    }
    for i in 0..n {
        let mut path = BTreeSet::new();
        visit(i, &ordered, &index, &mut ancestors, &mut path);
    }
    let anc: Vec<BTreeSet<usize>> = ancestors.into_iter().map(Option::unwrap_or_default).collect();
    let descends = |a: usize, b: usize| anc[a].contains(&b);
    let of_kind = |k: StepKind| -> Vec<usize> { (0..n).filter(|&i| ordered[i].kind == k).collect() };
    // The steps of a kind that no other step of the same kind supersedes
    // (descends from it without being its ancestor: forged cycles
    // supersede nothing, so both sides stay visible).
    let current = |all: &[usize]| -> Vec<usize> {
        all.iter().copied().filter(|&i| !all.iter().any(|&j| j != i && descends(j, i) && !descends(i, j))).collect()
    };
    let ids = |v: &[usize]| -> Vec<String> { v.iter().map(|&i| ordered[i].id.clone()).collect() };
    let mut flags = Vec::new();

    let registers = of_kind(StepKind::Register);
    let current_registers = current(&registers);
    let counted_register = registers.last().copied();
    let distinct: BTreeSet<(Option<Class>, Option<&Unit>)> =
        current_registers.iter().map(|&i| (ordered[i].class, ordered[i].unit.as_ref())).collect();
    if distinct.len() > 1 {
        flags.push(Flag::ConcurrentRegistrations(ids(&current_registers)));
    }

    let extends = of_kind(StepKind::Extend);
    if extends.len() > 1 {
        flags.push(Flag::ExtraExtension(ids(&extends)));
    }

    let forwards = of_kind(StepKind::Forward);
    let mut lapor: Vec<String> = Vec::new();
    for &i in &forwards {
        if let Some(l) = &ordered[i].lapor
            && !lapor.contains(l)
        {
            lapor.push(l.clone());
        }
    }
    if lapor.len() > 1 {
        flags.push(Flag::ConcurrentForwards(ids(&forwards)));
    }

    let answers_all = of_kind(StepKind::Answer);
    let current_answers = current(&answers_all);
    if current_answers.len() > 1 {
        flags.push(Flag::ConcurrentAnswers(ids(&current_answers)));
    }
    let closes = of_kind(StepKind::Close);
    if !closes.is_empty() {
        // Answers that no close descends from were written without the
        // closer seeing them.
        let unseen: Vec<usize> =
            current_answers.iter().copied().filter(|&a| !closes.iter().any(|&c| descends(c, a))).collect();
        if !unseen.is_empty() {
            flags.push(Flag::AnswerUnseenAtClose(ids(&unseen)));
        }
    }

    let state = if !closes.is_empty() {
        State::Closed
    } else if !current_answers.is_empty() {
        State::Answered
    } else if counted_register.is_some() {
        State::Registered
    } else {
        State::Received
    };
    // The frontier: steps no other step names as a parent.
    let mut has_child = vec![false; n];
    for (j, s) in ordered.iter().enumerate() {
        for p in &s.parents {
            if let Some(&i) = index.get(p.as_str())
                && i != j
            {
                has_child[i] = true;
            }
        }
    }
    let frontier = (0..n).filter(|&i| !has_child[i]).map(|i| ordered[i].id.clone()).collect();
    Ok(Derived {
        state,
        class: counted_register.and_then(|i| ordered[i].class),
        unit: counted_register.and_then(|i| ordered[i].unit.clone()),
        extension_days: extends.first().and_then(|&i| ordered[i].days),
        lapor,
        answers: current_answers
            .iter()
            .map(|&i| Answer {
                step_id: ordered[i].id.clone(),
                by: ordered[i].by.clone(),
                at_ms: ordered[i].at_ms,
                text: ordered[i].text.clone().unwrap_or_default(),
            })
            .collect(),
        first_answer_at_ms: answers_all.iter().map(|&i| ordered[i].at_ms).min(),
        closed_at_ms: closes.iter().map(|&i| ordered[i].at_ms).min(),
        flags,
        frontier,
        ordered,
    })
}

// ------------------------------------------------------------------ the rules for new steps

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StepError {
    #[error("pengaduan sudah selesai / the complaint is closed")]
    Closed,
    #[error("daftarkan dan klasifikasikan pengaduan dulu / register and classify the complaint first")]
    NotRegistered,
    #[error("pengaduan belum dijawab / the complaint has not been answered")]
    NotAnswered,
    #[error("tenggat sudah pernah diperpanjang / the deadline was extended once already")]
    AlreadyExtended,
    #[error("pengaduan sudah diteruskan ke SP4N-LAPOR! / the complaint was forwarded to SP4N-LAPOR! already")]
    AlreadyForwarded,
    #[error("isian {0} wajib / {0} is required")]
    Missing(&'static str),
    #[error("isian {0} tidak valid / {0} is invalid")]
    Invalid(&'static str),
    #[error("langkah ini hanya ditulis saat pengaduan dibuat / this step is written only when the complaint is filed")]
    FileOnlyOnce,
}

impl StepError {
    /// The stable error code the APIs answer with.
    pub fn code(&self) -> &'static str {
        match self {
            StepError::Closed => "complaint_closed",
            StepError::NotRegistered => "not_registered",
            StepError::NotAnswered => "not_answered",
            StepError::AlreadyExtended => "already_extended",
            StepError::AlreadyForwarded => "already_forwarded",
            StepError::Missing(_) => "missing_field",
            StepError::Invalid(_) => "invalid_field",
            StepError::FileOnlyOnce => "forbidden_step",
        }
    }
}

fn bounded(text: Option<&str>, max: usize, field: &'static str, required: bool) -> Result<(), StepError> {
    match text.map(str::trim) {
        None | Some("") if required => Err(StepError::Missing(field)),
        None | Some("") => Ok(()),
        Some(t) if t.chars().count() > max || t.chars().any(|c| c.is_control() && c != '\n') => {
            Err(StepError::Invalid(field))
        }
        Some(_) => Ok(()),
    }
}

/// Checks a new central step against the derived state and its own fields.
/// Pure; the caller builds the step with `parents = derived.frontier`.
pub fn check_step(derived: &Derived, step: &Step) -> Result<(), StepError> {
    let fields_only = |class: bool, unit: bool, days: bool, lapor: bool| {
        (step.class.is_some() && !class)
            || (step.unit.is_some() && !unit)
            || (step.days.is_some() && !days)
            || (step.lapor.is_some() && !lapor)
    };
    if step.kind == StepKind::File {
        return Err(StepError::FileOnlyOnce);
    }
    if derived.state == State::Closed {
        return Err(StepError::Closed);
    }
    match step.kind {
        StepKind::File => unreachable!("refused above"),
        StepKind::Register => {
            if fields_only(true, true, false, false) {
                return Err(StepError::Invalid("days/lapor"));
            }
            if derived.state.is_answered() {
                return Err(StepError::Invalid("register"));
            }
            step.class.ok_or(StepError::Missing("class"))?;
            step.unit.as_ref().ok_or(StepError::Missing("unit"))?;
            bounded(step.text.as_deref(), NOTE_MAX_CHARS, "text", false)
        }
        StepKind::Extend => {
            if fields_only(false, false, true, false) {
                return Err(StepError::Invalid("class/unit/lapor"));
            }
            if derived.state != State::Registered {
                return Err(if derived.state == State::Received {
                    StepError::NotRegistered
                } else {
                    StepError::Invalid("extend")
                });
            }
            if derived.extension_days.is_some() {
                return Err(StepError::AlreadyExtended);
            }
            match step.days {
                None => return Err(StepError::Missing("days")),
                Some(d) if !(1..=EXTENSION_MAX_DAYS).contains(&d) => return Err(StepError::Invalid("days")),
                Some(_) => {}
            }
            // The notice to the complainant is the point of an extension.
            bounded(step.text.as_deref(), NOTE_MAX_CHARS, "text", true)
        }
        StepKind::Forward => {
            if fields_only(false, false, false, true) {
                return Err(StepError::Invalid("class/unit/days"));
            }
            if derived.state == State::Received {
                return Err(StepError::NotRegistered);
            }
            if !derived.lapor.is_empty() {
                return Err(StepError::AlreadyForwarded);
            }
            match step.lapor.as_deref() {
                None => Err(StepError::Missing("lapor")),
                Some(l) if !is_lapor_number(l) => Err(StepError::Invalid("lapor")),
                Some(_) => bounded(step.text.as_deref(), NOTE_MAX_CHARS, "text", false),
            }
        }
        StepKind::Answer => {
            if fields_only(false, false, false, false) {
                return Err(StepError::Invalid("class/unit/days/lapor"));
            }
            if derived.state == State::Received {
                return Err(StepError::NotRegistered);
            }
            bounded(step.text.as_deref(), TEXT_MAX_CHARS, "text", true)
        }
        StepKind::Close => {
            if fields_only(false, false, false, false) {
                return Err(StepError::Invalid("class/unit/days/lapor"));
            }
            // Closed once answered, or once LAPOR! has it.
            if !derived.state.is_answered() && derived.lapor.is_empty() {
                return Err(StepError::NotAnswered);
            }
            bounded(step.text.as_deref(), NOTE_MAX_CHARS, "text", false)
        }
    }
}

// ------------------------------------------------------------------ the document

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complainant {
    pub name: PersonName,
    pub nik: Option<Nik>,
    pub phone: Option<Phone>,
}

/// Everything needed to create a complaint document.
#[derive(Debug, Clone)]
pub struct NewComplaint {
    pub id: DocId,
    /// `ADU-…`: never a request ticket.
    pub ticket: ComplaintTicket,
    pub kelurahan: KelurahanCode,
    pub kiosk: KioskCode,
    pub created_at_ms: i64,
    pub hlc: Hlc,
    pub about: About,
    /// `None`: anonymous.
    pub complainant: Option<Complainant>,
    pub text: String,
    /// The `file` step (no parents).
    pub file_step: Step,
}

/// A complaint document read back into domain types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintView {
    pub id: DocId,
    /// `ADU-…`: never a request ticket.
    pub ticket: ComplaintTicket,
    pub kelurahan: KelurahanCode,
    pub kiosk: KioskCode,
    pub created_at_ms: i64,
    pub hlc: Hlc,
    pub about: About,
    pub complainant: Option<Complainant>,
    pub text: String,
    /// In document order: fold them with [`fold`].
    pub steps: Vec<Step>,
}

fn invalid(field: &str, reason: impl fmt::Display) -> SchemaError {
    SchemaError::Invalid { field: field.into(), reason: reason.to_string() }
}

/// Checks the filed text: 1..=2000 characters, no control characters but
/// newlines.
pub fn check_text(text: &str) -> Result<(), StepError> {
    bounded(Some(text), TEXT_MAX_CHARS, "text", true)
}

/// Creates the document in one commit.
pub fn create(doc: &mut AutoCommit, new: &NewComplaint) -> Result<(), SchemaError> {
    check_text(&new.text).map_err(|e| invalid("text", e))?;
    if new.file_step.kind != StepKind::File || !new.file_step.parents.is_empty() {
        return Err(invalid("steps", "the first step files the complaint"));
    }
    doc.put(ROOT, "type", "complaint")?;
    doc.put(ROOT, "schema", SCHEMA_VERSION)?;
    doc.put(ROOT, "id", new.id.to_string())?;
    doc.put(ROOT, "ticket", new.ticket.as_str())?;
    doc.put(ROOT, "kelurahan", new.kelurahan.as_str())?;
    doc.put(ROOT, "kiosk", new.kiosk.as_str())?;
    doc.put(ROOT, "created_at", ScalarValue::Timestamp(new.created_at_ms))?;
    doc.put(ROOT, "hlc", new.hlc.to_string())?;
    let about = doc.put_object(ROOT, "about", ObjType::Map)?;
    doc.put(&about, "kind", new.about.kind().as_str())?;
    match &new.about {
        About::Request(t) => doc.put(&about, "ticket", t.as_str())?,
        About::Service(s) => doc.put(&about, "service", s.as_str())?,
        About::Staff(s) => doc.put(&about, "staff", s.as_str())?,
        About::Office | About::General => {}
    }
    if let Some(c) = &new.complainant {
        let m = doc.put_object(ROOT, "complainant", ObjType::Map)?;
        doc.put(&m, "name", c.name.as_str())?;
        if let Some(nik) = &c.nik {
            doc.put(&m, "nik", nik.as_str())?;
        }
        if let Some(p) = &c.phone {
            doc.put(&m, "phone", p.as_str())?;
        }
    }
    doc.put(ROOT, "text", new.text.trim())?;
    doc.put_object(ROOT, "steps", ObjType::List)?;
    append_step(doc, &new.file_step)?;
    doc.commit();
    Ok(())
}

/// Appends a step (does not commit). The caller checks it first
/// ([`check_step`]).
pub fn append_step(doc: &mut AutoCommit, s: &Step) -> Result<(), SchemaError> {
    let steps = match doc.get(ROOT, "steps")? {
        Some((Value::Object(ObjType::List), id)) => id,
        _ => return Err(SchemaError::Field("steps".into())),
    };
    let at = doc.length(&steps);
    let m = doc.insert_object(&steps, at, ObjType::Map)?;
    doc.put(&m, "id", s.id.as_str())?;
    doc.put(&m, "hlc", s.hlc.to_string())?;
    doc.put(&m, "node", s.node.as_str())?;
    doc.put(&m, "at", ScalarValue::Timestamp(s.at_ms))?;
    doc.put(&m, "by", s.by.as_str())?;
    doc.put(&m, "kind", s.kind.as_str())?;
    if let Some(c) = s.class {
        doc.put(&m, "class", c.as_str())?;
    }
    if let Some(u) = &s.unit {
        doc.put(&m, "unit", u.to_string())?;
    }
    if let Some(d) = s.days {
        doc.put(&m, "days", i64::from(d))?;
    }
    if let Some(l) = &s.lapor {
        doc.put(&m, "lapor", l.as_str())?;
    }
    if let Some(t) = &s.text {
        doc.put(&m, "text", t.trim())?;
    }
    if let Some(seal) = &s.seal {
        doc.put(&m, "seal", seal.as_str())?;
    }
    let parents = doc.put_object(&m, "parents", ObjType::List)?;
    for (i, p) in s.parents.iter().enumerate() {
        doc.insert(&parents, i, p.as_str())?;
    }
    Ok(())
}

fn scalar(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<Option<ScalarValue>, SchemaError> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => Ok(Some(s.into_owned())),
        Some(_) => Err(SchemaError::Field(key.into())),
    }
}

fn opt_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<Option<String>, SchemaError> {
    match scalar(doc, obj, key)? {
        None => Ok(None),
        Some(ScalarValue::Str(s)) => Ok(Some(s.to_string())),
        Some(_) => Err(SchemaError::Field(key.into())),
    }
}

fn req_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<String, SchemaError> {
    opt_str(doc, obj, key)?.ok_or_else(|| SchemaError::Field(key.into()))
}

fn parsed<T: FromStr>(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<T, SchemaError>
where
    T::Err: fmt::Display,
{
    req_str(doc, obj, key)?.parse().map_err(|e| invalid(key, e))
}

fn opt_parsed<T: FromStr>(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<Option<T>, SchemaError>
where
    T::Err: fmt::Display,
{
    opt_str(doc, obj, key)?.map(|s| s.parse().map_err(|e| invalid(key, e))).transpose()
}

fn timestamp(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<i64, SchemaError> {
    match scalar(doc, obj, key)? {
        Some(ScalarValue::Timestamp(t) | ScalarValue::Int(t)) => Ok(t),
        _ => Err(SchemaError::Field(key.into())),
    }
}

fn map(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<Option<ObjId>, SchemaError> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Object(ObjType::Map), id)) => Ok(Some(id)),
        Some(_) => Err(SchemaError::Field(key.into())),
    }
}

fn bounded_text(doc: &AutoCommit, obj: &ObjId, key: &str, max: usize) -> Result<Option<String>, SchemaError> {
    let t = opt_str(doc, obj, key)?;
    if let Some(t) = &t {
        bounded(Some(t), max, "text", false).map_err(|e| invalid(key, e))?;
    }
    Ok(t)
}

fn read_step(doc: &AutoCommit, m: &ObjId) -> Result<Step, SchemaError> {
    let kind: StepKind = parsed(doc, m, "kind")?;
    let days = match scalar(doc, m, "days")? {
        None => None,
        Some(ScalarValue::Int(d)) => Some(u32::try_from(d).map_err(|_| invalid("days", "out of range"))?),
        Some(ScalarValue::Uint(d)) => Some(u32::try_from(d).map_err(|_| invalid("days", "out of range"))?),
        Some(_) => return Err(SchemaError::Field("days".into())),
    };
    let lapor = opt_str(doc, m, "lapor")?;
    if lapor.as_deref().is_some_and(|l| !is_lapor_number(l)) {
        return Err(invalid("lapor", "not a LAPOR! number"));
    }
    let max = if kind == StepKind::Answer { TEXT_MAX_CHARS } else { NOTE_MAX_CHARS };
    let parents = match doc.get(m, "parents")? {
        Some((Value::Object(ObjType::List), l)) => {
            let mut out = Vec::new();
            for i in 0..doc.length(&l) {
                match doc.get(&l, i)? {
                    Some((Value::Scalar(s), _)) => match s.as_ref() {
                        ScalarValue::Str(p) => out.push(p.to_string()),
                        _ => return Err(SchemaError::Field("parents".into())),
                    },
                    _ => return Err(SchemaError::Field("parents".into())),
                }
            }
            out
        }
        _ => return Err(SchemaError::Field("parents".into())),
    };
    Ok(Step {
        id: req_str(doc, m, "id")?,
        hlc: parsed(doc, m, "hlc")?,
        node: req_str(doc, m, "node")?,
        at_ms: timestamp(doc, m, "at")?,
        by: req_str(doc, m, "by")?,
        kind,
        class: opt_parsed(doc, m, "class")?,
        unit: opt_parsed(doc, m, "unit")?,
        days,
        lapor,
        text: bounded_text(doc, m, "text", max)?,
        parents,
        seal: opt_str(doc, m, "seal")?,
    })
}

/// Reads a complaint document, checking every field.
pub fn read(doc: &AutoCommit) -> Result<ComplaintView, SchemaError> {
    match opt_str(doc, &ROOT, "type")?.as_deref() {
        Some("complaint") => {}
        Some(other) => return Err(SchemaError::WrongType(other.into())),
        None => return Err(SchemaError::Field("type".into())),
    }
    match scalar(doc, &ROOT, "schema")? {
        Some(ScalarValue::Int(SCHEMA_VERSION)) => {}
        Some(ScalarValue::Int(v)) => return Err(SchemaError::Version(v)),
        _ => return Err(SchemaError::Field("schema".into())),
    }
    let about_obj = map(doc, &ROOT, "about")?.ok_or_else(|| SchemaError::Field("about".into()))?;
    let about = match parsed::<AboutKind>(doc, &about_obj, "kind")? {
        AboutKind::Request => About::Request(parsed(doc, &about_obj, "ticket")?),
        AboutKind::Office => About::Office,
        AboutKind::Service => About::Service(parsed(doc, &about_obj, "service")?),
        AboutKind::Staff => About::Staff(parsed(doc, &about_obj, "staff")?),
        AboutKind::General => About::General,
    };
    let complainant = match map(doc, &ROOT, "complainant")? {
        None => None,
        Some(m) => Some(Complainant {
            name: parsed(doc, &m, "name")?,
            nik: opt_parsed(doc, &m, "nik")?,
            phone: opt_parsed(doc, &m, "phone")?,
        }),
    };
    let text = req_str(doc, &ROOT, "text")?;
    check_text(&text).map_err(|e| invalid("text", e))?;
    let steps_obj = match doc.get(ROOT, "steps")? {
        Some((Value::Object(ObjType::List), id)) => id,
        _ => return Err(SchemaError::Field("steps".into())),
    };
    let mut steps = Vec::new();
    for i in 0..doc.length(&steps_obj) {
        match doc.get(&steps_obj, i)? {
            Some((Value::Object(ObjType::Map), m)) => steps.push(read_step(doc, &m)?),
            _ => return Err(SchemaError::Field("steps".into())),
        }
    }
    Ok(ComplaintView {
        id: parsed(doc, &ROOT, "id")?,
        ticket: parsed(doc, &ROOT, "ticket")?,
        kelurahan: parsed(doc, &ROOT, "kelurahan")?,
        kiosk: parsed(doc, &ROOT, "kiosk")?,
        created_at_ms: timestamp(doc, &ROOT, "created_at")?,
        hlc: parsed(doc, &ROOT, "hlc")?,
        about,
        complainant,
        text,
        steps,
    })
}

#[cfg(test)]
mod tests;
