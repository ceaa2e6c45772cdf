//! The request workflow and its merge rules (DESIGN.md §3).
//!
//! The status of a request is never stored: it is derived from the
//! append-only event list. Each event names the events its writer had seen
//! as current (`parents`), so causality is explicit in the data and does not
//! depend on Automerge internals or on wall clocks:
//!
//! - the *frontier* is the set of events that no other event descends from;
//!   one event in the frontier means no concurrency;
//! - a terminal status in the frontier wins over concurrent non-terminal ones;
//! - two or more *different* terminal statuses in the frontier are a
//!   conflict: all are kept and reported, the request is flagged, and it
//!   stays so until someone writes a `resolve` event that descends from
//!   every side;
//! - with no terminal in the frontier, frontier events with different
//!   *holder chains* are a *routing conflict* when one of them was written
//!   over a state an agency held (a forward racing a return, a take racing
//!   the kelurahan taking it back): every frontier event is a side, and it
//!   is resolved like a terminal conflict, by an admin naming the status,
//!   holder and chain it settles on;
//! - otherwise the frontier event last in `(hlc, node, id)` order wins (so
//!   the kelurahan's own concurrent steps behave as they always did).
//!
//! Agencies pass a request along a chain. Each event records explicitly
//! who holds the request after it (`agency`, with `to` = `handed_off` or
//! `in_progress`) and which agencies wait below the holder (`waiting`,
//! bottom first); its holder chain is `waiting + [agency]`, empty while the
//! kelurahan holds it. A forward by A to B writes `waiting + [A]`; B's
//! return goes to the agency on top of `waiting` (`in_progress` at A), and
//! only a return with nobody waiting reaches the kelurahan; nobody
//! finishes a request while an agency waits below. The fold reads the
//! chain from the winning event, never by replaying history, so it needs
//! no order of arrival. Events written before the chain existed have an
//! empty `waiting` and mean what they always meant.
//!
//! Nothing is dropped: events that lose are still in the history. The fold
//! is a pure function of the *set* of events, so every replica that holds
//! the same events derives the same status whatever order they arrived in.
//!
//! Error codes of `check_transition` (stable, the APIs answer with them):
//! `forbidden_transition`, `in_conflict`, `agency_required`,
//! `agency_not_expected`, `not_your_agency`, `held_by_agency`,
//! `reason_required` (reject, ask the citizen, forward, return without a
//! result), `forward_cycle`, `chain_too_long`, `agencies_waiting`,
//! `result_not_expected`, `invalid_result_ref`, `waiting_mismatch`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hlc::Hlc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Submitted,
    InProgress,
    WaitingCitizen,
    HandedOff,
    Completed,
    Rejected,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Submitted,
        Status::InProgress,
        Status::WaitingCitizen,
        Status::HandedOff,
        Status::Completed,
        Status::Rejected,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::InProgress => "in_progress",
            Status::WaitingCitizen => "waiting_citizen",
            Status::HandedOff => "handed_off",
            Status::Completed => "completed",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Rejected | Status::Cancelled)
    }

    /// The transitions staff (and agencies) may make, per DESIGN.md §3:
    /// `submitted → in_progress → (waiting_citizen ⇄ in_progress) →
    /// handed_off(agency) → in_progress → completed | rejected`, and
    /// `cancelled` before work starts. An agency may also finish a handed-off
    /// request itself.
    pub fn allowed_next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Submitted => &[InProgress, Cancelled],
            InProgress => &[WaitingCitizen, HandedOff, Completed, Rejected],
            WaitingCitizen => &[InProgress, Cancelled],
            HandedOff => &[InProgress, Completed, Rejected],
            Completed | Rejected | Cancelled => &[],
        }
    }

    pub fn can_move_to(self, to: Status) -> bool {
        self.allowed_next().contains(&to)
    }

    pub fn label_id(self) -> &'static str {
        match self {
            Status::Submitted => "Diajukan",
            Status::InProgress => "Diproses",
            Status::WaitingCitizen => "Menunggu berkas warga",
            Status::HandedOff => "Diteruskan ke instansi",
            Status::Completed => "Selesai",
            Status::Rejected => "Ditolak",
            Status::Cancelled => "Dibatalkan",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("status tidak dikenal / unknown status")]
pub struct StatusParseError;

impl FromStr for Status {
    type Err = StatusParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL.into_iter().find(|st| st.as_str() == s).ok_or(StatusParseError)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The first event: the request was filed (`to = submitted`).
    Create,
    /// A workflow step by staff or an agency.
    Transition,
    /// An admin's decision on a conflict; descends from every side.
    Resolve,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Create => "create",
            EventKind::Transition => "transition",
            EventKind::Resolve => "resolve",
        }
    }
}

impl FromStr for EventKind {
    type Err = StatusParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "create" => Ok(EventKind::Create),
            "transition" => Ok(EventKind::Transition),
            "resolve" => Ok(EventKind::Resolve),
            _ => Err(StatusParseError),
        }
    }
}

/// Most agencies that may wait below the holder of a request: a forward
/// that would make more is refused (`chain_too_long`), and a document
/// that holds more is refused on read.
pub const WAITING_MAX: usize = 8;
/// A result reference (a new KK number, a letter number), in characters.
pub const RESULT_REF_MAX_CHARS: usize = 64;

/// Whether `s` may be a result reference: 1-64 characters, not blank, no
/// control characters and no bidirectional overrides that would disguise
/// it on a screen.
pub fn is_valid_result_ref(s: &str) -> bool {
    let bad =
        |c: char| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c);
    !s.trim().is_empty() && s.chars().count() <= RESULT_REF_MAX_CHARS && !s.chars().any(bad)
}

/// One entry of a request's event list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique id (a UUID made by the writer); parents refer to it.
    pub id: String,
    pub hlc: Hlc,
    /// The node that wrote it (its Automerge actor, hex): breaks HLC ties.
    pub node: String,
    /// Wall clock of the writer, unix milliseconds (may be wrong; `hlc` orders).
    pub at_ms: i64,
    /// Who acted: a staff id, `citizen`, or a central user.
    pub by: String,
    pub kind: EventKind,
    /// The status the writer saw (None for `create`).
    pub from: Option<Status>,
    pub to: Status,
    pub note: Option<String>,
    pub agency: Option<String>,
    /// The agencies waiting below the holder after this event, bottom
    /// first: each forwarded the request and gets it back, in reverse
    /// order, before the kelurahan does. Empty for every event before
    /// forwarding existed and whenever the kelurahan holds the request.
    pub waiting: Vec<String>,
    /// What an agency's step produced (a new KK number, a letter number):
    /// only on an agency's return or completion.
    pub result_ref: Option<String>,
    /// Ids of the events that were the frontier when this one was written.
    pub parents: Vec<String>,
    /// For central events: the server's MAC over the event (hex), so that a
    /// kiosk carrying the event back to a server that lost it (a restore)
    /// cannot have forged it. `None` for kiosk events.
    pub seal: Option<String>,
}

impl Event {
    fn order_key(&self) -> (Hlc, &str, &str) {
        (self.hlc, &self.node, &self.id)
    }

    /// The agency holding the request after this event: handed to it or
    /// taken by it. `None` when the kelurahan holds it or it is finished.
    pub fn holder(&self) -> Option<&str> {
        match self.to {
            Status::HandedOff | Status::InProgress => self.agency.as_deref(),
            _ => None,
        }
    }

    /// The holder chain after this event: the agencies waiting, then the
    /// holder; empty while the kelurahan holds the request.
    pub fn chain(&self) -> Vec<&str> {
        match self.holder() {
            Some(holder) => self.waiting.iter().map(String::as_str).chain([holder]).collect(),
            None => Vec::new(),
        }
    }
}

/// One side of a conflict: concurrent terminal statuses, or concurrent
/// routes while an agency held the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictSide {
    pub event_id: String,
    pub to: Status,
    pub by: String,
    pub at_ms: i64,
    pub node: String,
    pub agency: Option<String>,
    /// The agencies this side left waiting below `agency`.
    pub waiting: Vec<String>,
    pub note: Option<String>,
}

impl ConflictSide {
    fn of(e: &Event) -> ConflictSide {
        ConflictSide {
            event_id: e.id.clone(),
            to: e.to,
            by: e.by.clone(),
            at_ms: e.at_ms,
            node: e.node.clone(),
            agency: e.agency.clone(),
            waiting: e.waiting.clone(),
            note: e.note.clone(),
        }
    }
}

/// What the fold derives from a set of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub status: Status,
    /// Two or more sides when concurrent, different terminal statuses, or
    /// concurrent routes while an agency held the request, wait for review;
    /// empty otherwise.
    pub conflict: Vec<ConflictSide>,
    /// Ids of the frontier events, in `(hlc, node, id)` order: what a new
    /// event must name as its parents.
    pub frontier: Vec<String>,
    /// The agency that holds the request now: handed to it (`handed_off`)
    /// or taken by it (`in_progress` by that agency); `None` while the
    /// kelurahan holds it or it is finished.
    pub agency: Option<String>,
    /// The agencies waiting below `agency`, bottom first (from the same
    /// event as `agency`); empty when `agency` is `None`.
    pub waiting: Vec<String>,
    /// The result references agencies recorded, in display order: `(the
    /// agency that wrote it, or the writer's id when no agency held the
    /// request, reference)`.
    pub results: Vec<(String, String)>,
    /// All events, in display order `(hlc, node, id)`, duplicates removed.
    pub ordered: Vec<Event>,
}

impl Derived {
    pub fn has_conflict(&self) -> bool {
        !self.conflict.is_empty()
    }

    /// The conflict is about where the request goes (concurrent routes
    /// while an agency held it), not about how it ended.
    pub fn has_routing_conflict(&self) -> bool {
        self.has_conflict() && self.conflict.iter().all(|s| !s.to.is_terminal())
    }

    /// An agency has taken the request and is working on it.
    pub fn taken_by_agency(&self) -> bool {
        self.status == Status::InProgress && self.agency.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FoldError {
    #[error("request has no create event")]
    NoCreateEvent,
}

/// Derives the status of a request from its events (in any order, with
/// duplicates). Events whose parents are unknown are treated as having
/// only their known parents.
pub fn fold(events: &[Event]) -> Result<Derived, FoldError> {
    // Dedup by id: keep the first in order (a duplicate id is a writer bug
    // or tampering; the order makes the choice deterministic).
    let mut ordered: Vec<Event> = events.to_vec();
    ordered.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    let mut seen = BTreeSet::new();
    ordered.retain(|e| seen.insert(e.id.clone()));

    if !ordered.iter().any(|e| e.kind == EventKind::Create) {
        return Err(FoldError::NoCreateEvent);
    }

    let index: HashMap<&str, usize> = ordered.iter().enumerate().map(|(i, e)| (e.id.as_str(), i)).collect();
    // The known parents of an event, never itself.
    let parents_of = |e: &Event| -> Vec<usize> {
        e.parents.iter().filter_map(|p| index.get(p.as_str()).copied()).filter(|&i| ordered[i].id != e.id).collect()
    };
    // An event is in the frontier unless some event names it as a parent.
    let mut has_child = vec![false; ordered.len()];
    for e in &ordered {
        for i in parents_of(e) {
            has_child[i] = true;
        }
    }
    let frontier: Vec<&Event> = ordered.iter().zip(&has_child).filter(|(_, c)| !**c).map(|(e, _)| e).collect();

    let terminals: Vec<&Event> = frontier.iter().copied().filter(|e| e.to.is_terminal()).collect();
    let distinct_terminal: BTreeSet<Status> = terminals.iter().map(|e| e.to).collect();
    let (status, conflict) = match distinct_terminal.len() {
        0 => {
            // Concurrent routes are a conflict only when the race began
            // while an agency held the request; among the kelurahan's own
            // steps the last in order wins, as it always did.
            let chains: BTreeSet<Vec<&str>> = frontier.iter().map(|e| e.chain()).collect();
            let raced_at_agency = chains.len() > 1
                && frontier.iter().any(|e| parents_of(e).into_iter().any(|i| ordered[i].holder().is_some()));
            let sides =
                if raced_at_agency { frontier.iter().map(|e| ConflictSide::of(e)).collect() } else { Vec::new() };
            (frontier.last().map_or(Status::Submitted, |e| e.to), sides)
        }
        1 => (terminals[0].to, Vec::new()),
        // Report the earliest terminal as the status (stable across
        // replicas) and flag every terminal side.
        _ => (terminals[0].to, terminals.iter().map(|e| ConflictSide::of(e)).collect()),
    };

    // Handed to an agency and not yet taken, or taken by it (`in_progress`
    // with the agency named): the agency holds the request, with the
    // agencies that event names waiting below it.
    let holding = match status {
        Status::HandedOff | Status::InProgress => frontier.iter().rev().find(|e| e.to == status).copied(),
        _ => None,
    };
    let agency = holding.and_then(|e| e.agency.clone());
    let waiting = holding.filter(|_| agency.is_some()).map(|e| e.waiting.clone()).unwrap_or_default();

    // A result is credited to the agency that held the request when it
    // was written (the holder its writer saw: the last of its parents that
    // an agency held), else to the writer.
    let results = ordered
        .iter()
        .filter(|e| e.kind == EventKind::Transition)
        .filter_map(|e| {
            let reference = e.result_ref.clone()?;
            let holder = parents_of(e).into_iter().filter(|&i| ordered[i].holder().is_some()).max();
            let holder = holder.and_then(|i| ordered[i].holder());
            Some((holder.unwrap_or(&e.by).to_owned(), reference))
        })
        .collect();

    Ok(Derived {
        status,
        conflict,
        frontier: frontier.iter().map(|e| e.id.clone()).collect(),
        agency,
        waiting,
        results,
        ordered,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("perubahan status dari {from} ke {to} tidak diizinkan / moving from {from} to {to} is not allowed")]
    Forbidden { from: Status, to: Status },
    #[error(
        "permohonan ini sedang konflik dan harus ditinjau admin / this request is in conflict and must be resolved by an admin"
    )]
    InConflict,
    #[error("serahkan ke instansi mana? / hand off to which agency?")]
    AgencyRequired,
    #[error("instansi hanya diisi saat menyerahkan / an agency is given only when handing off")]
    AgencyNotExpected,
    #[error("tidak ada konflik untuk diselesaikan / there is no conflict to resolve")]
    NoConflict,
    #[error("permohonan ini tidak sedang di instansi Anda / this request is not with your agency")]
    NotYourAgency,
    #[error(
        "permohonan sedang dikerjakan instansi {agency}; tunggu hasilnya / an agency ({agency}) is working on this request: wait for its result"
    )]
    HeldByAgency { agency: String },
    #[error("hanya admin yang dapat menyelesaikan konflik / only an admin resolves a conflict")]
    ResolveByAdminOnly,
    #[error("alasan wajib diisi / a reason is required for this step")]
    ReasonRequired,
    #[error(
        "instansi ini sudah memegang atau menunggu permohonan ini / that agency already holds or waits for this request"
    )]
    ForwardCycle,
    #[error("terlalu banyak instansi menunggu / too many agencies would be waiting")]
    ChainTooLong,
    #[error(
        "instansi lain masih menunggu permohonan ini; kembalikan kepadanya dahulu / other agencies wait for this request: return it to them first"
    )]
    AgenciesWaiting,
    #[error(
        "nomor hasil hanya diisi saat instansi mengembalikan atau menyelesaikan / a result reference is given only when an agency returns or completes"
    )]
    ResultNotExpected,
    #[error("nomor hasil tidak valid (1-64 karakter) / invalid result reference (1-64 characters)")]
    InvalidResultRef,
    #[error("daftar instansi yang menunggu tidak sesuai / the agencies waiting do not follow from this step")]
    WaitingMismatch,
}

impl TransitionError {
    /// The stable error code the APIs answer with.
    pub fn code(&self) -> &'static str {
        match self {
            TransitionError::AgencyRequired => "agency_required",
            TransitionError::AgencyNotExpected => "agency_not_expected",
            TransitionError::NotYourAgency => "not_your_agency",
            TransitionError::HeldByAgency { .. } => "held_by_agency",
            TransitionError::InConflict | TransitionError::ResolveByAdminOnly => "in_conflict",
            TransitionError::Forbidden { .. } | TransitionError::NoConflict => "forbidden_transition",
            TransitionError::ReasonRequired => "reason_required",
            TransitionError::ForwardCycle => "forward_cycle",
            TransitionError::ChainTooLong => "chain_too_long",
            TransitionError::AgenciesWaiting => "agencies_waiting",
            TransitionError::ResultNotExpected => "result_not_expected",
            TransitionError::InvalidResultRef => "invalid_result_ref",
            TransitionError::WaitingMismatch => "waiting_mismatch",
        }
    }

    /// The step itself is malformed (a missing or unexpected field), as
    /// opposed to not fitting the request's current state.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TransitionError::AgencyRequired
                | TransitionError::AgencyNotExpected
                | TransitionError::ReasonRequired
                | TransitionError::ResultNotExpected
                | TransitionError::InvalidResultRef
        )
    }
}

/// Who writes an event: the rules differ for each (DESIGN.md §3 and the
/// agency portal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// Kelurahan staff (or the citizen) at a kiosk.
    Kelurahan,
    /// A central admin: any step the workflow allows, and resolving conflicts.
    Admin,
    /// A user of this agency: only on requests the agency holds; takes a
    /// handed-off request, then completes, rejects, forwards it to another
    /// agency, or returns it to the agency that forwarded it (or, when
    /// none waits, to the kelurahan).
    Agency(&'a str),
}

/// An event someone proposes to write, as `check_transition` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal<'a> {
    pub kind: EventKind,
    pub to: Status,
    pub agency: Option<&'a str>,
    /// The agencies the event says wait below `agency` after it; for a
    /// transition exactly [`waiting_after`], for a resolve the admin's
    /// choice.
    pub waiting: &'a [String],
    pub note: Option<&'a str>,
    pub result_ref: Option<&'a str>,
}

impl<'a> Proposal<'a> {
    /// A workflow step to `to`, with no agency, note or result.
    pub fn transition(to: Status) -> Proposal<'static> {
        Proposal { kind: EventKind::Transition, to, agency: None, waiting: &[], note: None, result_ref: None }
    }

    /// An admin's resolution settling on `to`.
    pub fn resolve(to: Status) -> Proposal<'static> {
        Proposal { kind: EventKind::Resolve, ..Proposal::transition(to) }
    }

    /// The proposal an existing event makes (to re-check what a peer wrote).
    pub fn of(e: &'a Event) -> Proposal<'a> {
        Proposal {
            kind: e.kind,
            to: e.to,
            agency: e.agency.as_deref(),
            waiting: &e.waiting,
            note: e.note.as_deref(),
            result_ref: e.result_ref.as_deref(),
        }
    }

    pub fn agency(self, agency: Option<&'a str>) -> Proposal<'a> {
        Proposal { agency, ..self }
    }

    pub fn waiting(self, waiting: &'a [String]) -> Proposal<'a> {
        Proposal { waiting, ..self }
    }

    pub fn note(self, note: Option<&'a str>) -> Proposal<'a> {
        Proposal { note, ..self }
    }

    pub fn result_ref(self, result_ref: Option<&'a str>) -> Proposal<'a> {
        Proposal { result_ref, ..self }
    }

    fn has_reason(&self) -> bool {
        self.note.is_some_and(|n| !n.trim().is_empty())
    }
}

/// The agencies a transition by `actor` to `to` (at `agency`) leaves
/// waiting below the holder: what the new event must carry as `waiting`.
///
/// - a forward by the holder A: the waiting agencies and A on top;
/// - a return by the holder to the agency on top of the waiting ones: the
///   rest of them;
/// - a take, or a hand-off (an admin reassigning the holder keeps the
///   chain): unchanged;
/// - anything that leaves no agency holding the request: empty.
pub fn waiting_after(derived: &Derived, actor: Actor<'_>, to: Status, agency: Option<&str>) -> Vec<String> {
    let holder = derived.agency.as_deref();
    match (actor, to, agency) {
        (Actor::Agency(mine), Status::HandedOff, Some(_)) if holder == Some(mine) && derived.taken_by_agency() => {
            derived.waiting.iter().cloned().chain([mine.to_owned()]).collect()
        }
        (Actor::Agency(mine), Status::InProgress, Some(a))
            if holder == Some(mine) && a != mine && derived.waiting.last().map(String::as_str) == Some(a) =>
        {
            derived.waiting[..derived.waiting.len() - 1].to_vec()
        }
        (_, Status::HandedOff | Status::InProgress, Some(_)) => derived.waiting.clone(),
        _ => Vec::new(),
    }
}

/// Checks that `actor` may write the event `p` proposes from the derived
/// state. Pure; the caller then builds the event with `parents =
/// derived.frontier` and `waiting = waiting_after(..)`.
///
/// `agency` on an event says where the request goes: the agency handed to
/// (`handed_off`), the agency taking it (`in_progress`, written only by
/// that agency), or the waiting agency it is returned to (`in_progress`,
/// written by the holder). An `in_progress` without one while an agency
/// holds the request and none waits returns it to the kelurahan.
///
/// Every actor must give a reason to reject or to ask the citizen for
/// documents; an agency also to forward, and a reason or a result
/// reference to return.
pub fn check_transition(derived: &Derived, actor: Actor<'_>, p: &Proposal<'_>) -> Result<(), TransitionError> {
    let to = p.to;
    let forbidden = Err(TransitionError::Forbidden { from: derived.status, to });
    if p.result_ref.is_some_and(|r| !is_valid_result_ref(r)) {
        return Err(TransitionError::InvalidResultRef);
    }
    match p.kind {
        EventKind::Resolve => return check_resolve(derived, actor, p),
        EventKind::Create => return forbidden,
        EventKind::Transition => {}
    }
    if derived.has_conflict() {
        return Err(TransitionError::InConflict);
    }
    let holder = derived.agency.as_deref();
    // Taken, returned to a waiting agency, or returned to the kelurahan:
    // `in_progress` again, with the holder changing.
    let moving_on = to == Status::InProgress && holder.is_some() && p.agency != holder;
    if !derived.status.can_move_to(to) && !moving_on {
        return forbidden;
    }
    let carries_result = match actor {
        Actor::Agency(mine) => {
            if holder != Some(mine) {
                return Err(TransitionError::NotYourAgency);
            }
            let on_top = derived.waiting.last().map(String::as_str);
            match (to, p.agency) {
                // Take (only what is not taken yet).
                (Status::InProgress, Some(a)) if a == mine && derived.status == Status::HandedOff => false,
                // Return: to the agency that forwarded it, or to the
                // kelurahan when none waits.
                (Status::InProgress, Some(a)) if Some(a) == on_top && a != mine => {
                    if !p.has_reason() && p.result_ref.is_none() {
                        return Err(TransitionError::ReasonRequired);
                    }
                    true
                }
                (Status::InProgress, Some(_)) => return forbidden,
                (Status::InProgress, None) => {
                    if on_top.is_some() {
                        return Err(TransitionError::AgenciesWaiting);
                    }
                    if !p.has_reason() && p.result_ref.is_none() {
                        return Err(TransitionError::ReasonRequired);
                    }
                    true
                }
                (Status::Completed | Status::Rejected, None) => {
                    if on_top.is_some() {
                        return Err(TransitionError::AgenciesWaiting);
                    }
                    to == Status::Completed
                }
                // Forward, from what this agency has taken.
                (Status::HandedOff, Some(next)) => {
                    if !p.has_reason() {
                        return Err(TransitionError::ReasonRequired);
                    }
                    if next == mine || derived.waiting.iter().any(|w| w == next) {
                        return Err(TransitionError::ForwardCycle);
                    }
                    if derived.waiting.len() + 1 > WAITING_MAX {
                        return Err(TransitionError::ChainTooLong);
                    }
                    false
                }
                (Status::HandedOff, None) => return Err(TransitionError::AgencyRequired),
                (_, Some(_)) => return Err(TransitionError::AgencyNotExpected),
                _ => return forbidden,
            }
        }
        Actor::Kelurahan | Actor::Admin => {
            if actor == Actor::Kelurahan
                && let Some(a) = holder.filter(|_| derived.taken_by_agency() || !derived.waiting.is_empty())
            {
                return Err(TransitionError::HeldByAgency { agency: a.to_owned() });
            }
            match (to == Status::HandedOff, p.agency) {
                (true, None) => return Err(TransitionError::AgencyRequired),
                (false, Some(_)) => return Err(TransitionError::AgencyNotExpected),
                (true, Some(a)) if derived.waiting.iter().any(|w| w == a) => return Err(TransitionError::ForwardCycle),
                _ => false,
            }
        }
    };
    if matches!(to, Status::Rejected | Status::WaitingCitizen) && !p.has_reason() {
        return Err(TransitionError::ReasonRequired);
    }
    if p.result_ref.is_some() && !carries_result {
        return Err(TransitionError::ResultNotExpected);
    }
    if p.waiting != waiting_after(derived, actor, to, p.agency).as_slice() {
        return Err(TransitionError::WaitingMismatch);
    }
    Ok(())
}

/// An admin's resolution: only of a conflict, naming a status, and an
/// agency and the agencies waiting below it that make a sound chain.
fn check_resolve(derived: &Derived, actor: Actor<'_>, p: &Proposal<'_>) -> Result<(), TransitionError> {
    if actor != Actor::Admin {
        return Err(TransitionError::ResolveByAdminOnly);
    }
    if !derived.has_conflict() {
        return Err(TransitionError::NoConflict);
    }
    if p.to == Status::Submitted {
        return Err(TransitionError::Forbidden { from: derived.status, to: p.to });
    }
    if p.result_ref.is_some() {
        return Err(TransitionError::ResultNotExpected);
    }
    match (p.to, p.agency) {
        (Status::HandedOff, None) => return Err(TransitionError::AgencyRequired),
        (Status::HandedOff | Status::InProgress, Some(a)) => {
            let mut chain: BTreeSet<&str> = BTreeSet::from([a]);
            if !p.waiting.iter().all(|w| chain.insert(w)) {
                return Err(TransitionError::ForwardCycle);
            }
            if p.waiting.len() > WAITING_MAX {
                return Err(TransitionError::ChainTooLong);
            }
        }
        (_, Some(_)) => return Err(TransitionError::AgencyNotExpected),
        (_, None) if !p.waiting.is_empty() => return Err(TransitionError::WaitingMismatch),
        (_, None) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, wall: u64, node: &str, kind: EventKind, to: Status, parents: &[&str]) -> Event {
        Event {
            id: id.into(),
            hlc: Hlc { wall_ms: wall, counter: 0 },
            node: node.into(),
            at_ms: wall as i64,
            by: "198503122010011002".into(),
            kind,
            from: None,
            to,
            note: None,
            agency: (to == Status::HandedOff).then(|| "DISDUKCAPIL".into()),
            waiting: Vec::new(),
            result_ref: None,
            parents: parents.iter().map(|p| p.to_string()).collect(),
            seal: None,
        }
    }

    use EventKind::{Create, Resolve, Transition};
    use Status::*;

    /// The old five-argument check: the chain the workflow gives the
    /// step, and always a reason (the rules on reasons have tests of
    /// their own).
    fn chk(
        d: &Derived,
        actor: Actor<'_>,
        kind: EventKind,
        to: Status,
        agency: Option<&str>,
    ) -> Result<(), TransitionError> {
        let waiting = if kind == Transition { waiting_after(d, actor, to, agency) } else { Vec::new() };
        let p = Proposal { kind, ..Proposal::transition(to) }.agency(agency).waiting(&waiting).note(Some("alasan"));
        check_transition(d, actor, &p)
    }

    #[test]
    fn linear_history() {
        let evs = [
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("c", 3, "k", Transition, HandedOff, &["b"]),
        ];
        let d = fold(&evs).unwrap();
        assert_eq!(d.status, HandedOff);
        assert_eq!(d.agency.as_deref(), Some("DISDUKCAPIL"));
        assert_eq!(d.frontier, vec!["c"]);
        assert!(!d.has_conflict());
    }

    #[test]
    fn terminal_wins_over_concurrent_non_terminal_even_if_older() {
        let evs = [
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("done", 3, "kiosk", Transition, Completed, &["b"]),
            ev("later", 9, "server", Transition, WaitingCitizen, &["b"]),
        ];
        let d = fold(&evs).unwrap();
        assert_eq!(d.status, Completed);
        assert!(!d.has_conflict());
        assert_eq!(d.frontier, vec!["done", "later"]);
    }

    #[test]
    fn concurrent_different_terminals_are_a_conflict_until_resolved() {
        let mut evs = vec![
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("kiosk-done", 3, "kiosk", Transition, Completed, &["b"]),
            ev("agency-no", 4, "server", Transition, Rejected, &["b"]),
        ];
        let d = fold(&evs).unwrap();
        assert_eq!(d.status, Completed);
        let sides: Vec<Status> = d.conflict.iter().map(|s| s.to).collect();
        assert_eq!(sides, vec![Completed, Rejected]);
        assert_eq!(chk(&d, Actor::Kelurahan, Transition, InProgress, None), Err(TransitionError::InConflict));
        chk(&d, Actor::Admin, Resolve, Rejected, None).unwrap();
        evs.push(ev("fix", 5, "server", Resolve, Rejected, &["kiosk-done", "agency-no"]));
        let d = fold(&evs).unwrap();
        assert_eq!(d.status, Rejected);
        assert!(!d.has_conflict());
        // Every event is still in the history.
        assert_eq!(d.ordered.len(), 5);
    }

    #[test]
    fn same_terminal_twice_is_no_conflict() {
        let evs = [
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("x", 3, "k1", Transition, Completed, &["b"]),
            ev("y", 3, "k2", Transition, Completed, &["b"]),
        ];
        let d = fold(&evs).unwrap();
        assert_eq!(d.status, Completed);
        assert!(!d.has_conflict());
    }

    #[test]
    fn concurrent_non_terminals_pick_last_in_clock_order() {
        let evs = [
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("x", 5, "k1", Transition, WaitingCitizen, &["b"]),
            ev("y", 4, "k2", Transition, HandedOff, &["b"]),
        ];
        assert_eq!(fold(&evs).unwrap().status, WaitingCitizen);
    }

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let evs = vec![
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("c", 3, "k", Transition, Rejected, &["b"]),
        ];
        let mut shuffled = vec![evs[2].clone(), evs[0].clone(), evs[2].clone(), evs[1].clone()];
        assert_eq!(fold(&evs).unwrap(), fold(&shuffled).unwrap());
        shuffled.reverse();
        assert_eq!(fold(&evs).unwrap(), fold(&shuffled).unwrap());
    }

    #[test]
    fn transitions_table() {
        // Every pair: allowed exactly when the table says so.
        let allowed: &[(Status, Status)] = &[
            (Submitted, InProgress),
            (Submitted, Cancelled),
            (InProgress, WaitingCitizen),
            (InProgress, HandedOff),
            (InProgress, Completed),
            (InProgress, Rejected),
            (WaitingCitizen, InProgress),
            (WaitingCitizen, Cancelled),
            (HandedOff, InProgress),
            (HandedOff, Completed),
            (HandedOff, Rejected),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(from.can_move_to(to), allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn handoff_needs_an_agency() {
        let evs = [ev("a", 1, "k", Create, Submitted, &[]), ev("b", 2, "k", Transition, InProgress, &["a"])];
        let d = fold(&evs).unwrap();
        assert_eq!(chk(&d, Actor::Kelurahan, Transition, HandedOff, None), Err(TransitionError::AgencyRequired));
        assert_eq!(
            chk(&d, Actor::Kelurahan, Transition, Completed, Some("DISDUKCAPIL")),
            Err(TransitionError::AgencyNotExpected)
        );
        assert_eq!(
            chk(&d, Actor::Kelurahan, Transition, Submitted, None),
            Err(TransitionError::Forbidden { from: InProgress, to: Submitted })
        );
        assert_eq!(chk(&d, Actor::Admin, Resolve, Completed, None), Err(TransitionError::NoConflict));
    }

    /// The agency portal: an agency takes what was handed to it, then
    /// completes, rejects or returns it; the kelurahan waits meanwhile.
    #[test]
    fn an_agency_takes_then_finishes_or_returns() {
        let d_agency = Actor::Agency("DISDUKCAPIL");
        let other = Actor::Agency("DISDIK");
        let mut evs = vec![
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("c", 3, "k", Transition, HandedOff, &["b"]),
        ];
        let d = fold(&evs).unwrap();
        assert!(!d.taken_by_agency());
        // Only the agency it was handed to acts, and only for itself.
        assert_eq!(chk(&d, other, Transition, InProgress, Some("DISDIK")), Err(TransitionError::NotYourAgency));
        assert_eq!(chk(&d, other, Transition, Completed, None), Err(TransitionError::NotYourAgency));
        assert_eq!(
            chk(&d, d_agency, Transition, InProgress, Some("DISDIK")),
            Err(TransitionError::Forbidden { from: HandedOff, to: InProgress })
        );
        // Kiosks and admins never take for an agency.
        for actor in [Actor::Kelurahan, Actor::Admin] {
            assert_eq!(
                chk(&d, actor, Transition, InProgress, Some("DISDUKCAPIL")),
                Err(TransitionError::AgencyNotExpected)
            );
        }
        chk(&d, d_agency, Transition, InProgress, Some("DISDUKCAPIL")).unwrap();
        let mut take = ev("take", 4, "server", Transition, InProgress, &["c"]);
        take.agency = Some("DISDUKCAPIL".into());
        evs.push(take);
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.agency.as_deref()), (InProgress, Some("DISDUKCAPIL")));
        assert!(d.taken_by_agency());
        // Taken: no second take, no hand-off to itself (a forward to
        // another agency has tests of its own), and the kelurahan waits.
        assert_eq!(
            chk(&d, d_agency, Transition, InProgress, Some("DISDUKCAPIL")),
            Err(TransitionError::Forbidden { from: InProgress, to: InProgress })
        );
        assert_eq!(chk(&d, d_agency, Transition, HandedOff, Some("DISDUKCAPIL")), Err(TransitionError::ForwardCycle));
        chk(&d, d_agency, Transition, HandedOff, Some("DISDIK")).unwrap();
        assert_eq!(
            chk(&d, d_agency, Transition, WaitingCitizen, None),
            Err(TransitionError::Forbidden { from: InProgress, to: WaitingCitizen })
        );
        assert_eq!(
            chk(&d, Actor::Kelurahan, Transition, Completed, None),
            Err(TransitionError::HeldByAgency { agency: "DISDUKCAPIL".into() })
        );
        for to in [Completed, Rejected, InProgress] {
            chk(&d, d_agency, Transition, to, None).unwrap();
        }
        // Returned: the kelurahan holds it again and the agency is out.
        evs.push(ev("back", 5, "server", Transition, InProgress, &["take"]));
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.agency.as_deref()), (InProgress, None));
        assert_eq!(chk(&d, d_agency, Transition, Completed, None), Err(TransitionError::NotYourAgency));
        chk(&d, Actor::Kelurahan, Transition, Completed, None).unwrap();
        assert_eq!(
            chk(&d, Actor::Kelurahan, Transition, InProgress, None),
            Err(TransitionError::Forbidden { from: InProgress, to: InProgress })
        );
    }

    #[test]
    fn only_admins_resolve() {
        let evs = [
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("x", 3, "k1", Transition, Completed, &["b"]),
            ev("y", 3, "k2", Transition, Rejected, &["b"]),
        ];
        let d = fold(&evs).unwrap();
        for actor in [Actor::Kelurahan, Actor::Agency("DISDUKCAPIL")] {
            assert_eq!(chk(&d, actor, Resolve, Completed, None), Err(TransitionError::ResolveByAdminOnly));
        }
        chk(&d, Actor::Admin, Resolve, Completed, None).unwrap();
    }

    // ------------------------------------------------------------ agencies in a chain

    const DK: &str = "DISDUKCAPIL";
    const DISDIK: &str = "DISDIK";

    /// A step by `by`, to `to`, held at `agency` with `waiting` below it.
    fn step(id: &str, wall: u64, to: Status, agency: Option<&str>, waiting: &[&str], parents: &[&str]) -> Event {
        let mut e = ev(id, wall, "server", Transition, to, parents);
        e.agency = agency.map(Into::into);
        e.waiting = waiting.iter().map(|w| w.to_string()).collect();
        e.note = Some("alasan".into());
        e
    }

    /// Filed, taken at the kelurahan, handed to Disdukcapil and taken there.
    fn taken_by_dukcapil() -> Vec<Event> {
        vec![
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            step("c", 3, HandedOff, Some(DK), &[], &["b"]),
            step("take", 4, InProgress, Some(DK), &[], &["c"]),
        ]
    }

    fn forward(d: &Derived, by: &str, to: &str, note: Option<&str>) -> Result<(), TransitionError> {
        let actor = Actor::Agency(by);
        let waiting = waiting_after(d, actor, HandedOff, Some(to));
        check_transition(d, actor, &Proposal::transition(HandedOff).agency(Some(to)).waiting(&waiting).note(note))
    }

    #[test]
    fn a_forward_needs_a_reason_a_taken_request_and_an_agency_not_in_the_chain() {
        let mut evs = taken_by_dukcapil();
        let d = fold(&evs).unwrap();
        assert_eq!(forward(&d, DK, DISDIK, None), Err(TransitionError::ReasonRequired));
        assert_eq!(forward(&d, DK, DISDIK, Some("  ")), Err(TransitionError::ReasonRequired), "blank is no reason");
        assert_eq!(forward(&d, DK, DK, Some("koreksi KK")), Err(TransitionError::ForwardCycle));
        assert_eq!(forward(&d, DISDIK, "DINSOS", Some("koreksi KK")), Err(TransitionError::NotYourAgency));
        assert_eq!(
            check_transition(&d, Actor::Agency(DK), &Proposal::transition(HandedOff).note(Some("koreksi"))),
            Err(TransitionError::AgencyRequired)
        );
        // The chain is the workflow's, not the writer's.
        let forged = vec!["DINSOS".to_owned(), DK.to_owned()];
        let p = Proposal::transition(HandedOff).agency(Some(DISDIK)).waiting(&forged).note(Some("koreksi KK"));
        assert_eq!(check_transition(&d, Actor::Agency(DK), &p), Err(TransitionError::WaitingMismatch));
        assert_eq!(waiting_after(&d, Actor::Agency(DK), HandedOff, Some(DISDIK)), vec![DK.to_owned()]);
        forward(&d, DK, DISDIK, Some("koreksi KK dahulu")).unwrap();

        // Not taken yet: no forward.
        let d_handed = fold(&evs[..3]).unwrap();
        assert_eq!(
            forward(&d_handed, DK, DISDIK, Some("koreksi")),
            Err(TransitionError::Forbidden { from: HandedOff, to: HandedOff })
        );

        evs.push(step("fwd", 5, HandedOff, Some(DISDIK), &[DK], &["take"]));
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.agency.as_deref(), d.waiting.clone()), (HandedOff, Some(DISDIK), vec![DK.to_owned()]));
        assert!(!d.has_conflict());
        // The kelurahan waits even before Disdik takes it; Disdukcapil waits too.
        for to in [InProgress, Completed] {
            assert_eq!(
                chk(&d, Actor::Kelurahan, Transition, to, None),
                Err(TransitionError::HeldByAgency { agency: DISDIK.into() })
            );
        }
        assert_eq!(chk(&d, Actor::Agency(DK), Transition, InProgress, Some(DK)), Err(TransitionError::NotYourAgency));
        // Disdik takes it; a forward back down the chain is a cycle.
        chk(&d, Actor::Agency(DISDIK), Transition, InProgress, Some(DISDIK)).unwrap();
        assert_eq!(waiting_after(&d, Actor::Agency(DISDIK), InProgress, Some(DISDIK)), vec![DK.to_owned()]);
        evs.push(step("take2", 6, InProgress, Some(DISDIK), &[DK], &["fwd"]));
        let d = fold(&evs).unwrap();
        assert!(d.taken_by_agency());
        assert_eq!(forward(&d, DISDIK, DK, Some("balik")), Err(TransitionError::ForwardCycle));
        forward(&d, DISDIK, "DINSOS", Some("butuh data DTKS")).unwrap();
    }

    #[test]
    fn a_chain_is_bounded() {
        let mut evs = taken_by_dukcapil();
        let agencies: Vec<String> = (0..=WAITING_MAX).map(|i| format!("AG{i}")).collect();
        let mut holder = DK.to_owned();
        let mut parent = "take".to_owned();
        for (i, next) in agencies.iter().enumerate() {
            let d = fold(&evs).unwrap();
            if d.waiting.len() == WAITING_MAX - 1 + 1 {
                assert_eq!(forward(&d, &holder, next, Some("lanjut")), Err(TransitionError::ChainTooLong));
                return;
            }
            forward(&d, &holder, next, Some("lanjut")).unwrap();
            let mut waiting: Vec<&str> = d.waiting.iter().map(String::as_str).collect();
            waiting.push(&holder);
            let (f, t) = (format!("f{i}"), format!("t{i}"));
            evs.push(step(&f, 10 + 2 * i as u64, HandedOff, Some(next), &waiting, &[&parent]));
            evs.push(step(&t, 11 + 2 * i as u64, InProgress, Some(next), &waiting, &[&f]));
            holder = next.clone();
            parent = t;
        }
        panic!("the chain grew past {WAITING_MAX}");
    }

    fn ret(
        d: &Derived,
        by: &str,
        to: Option<&str>,
        note: Option<&str>,
        result: Option<&str>,
    ) -> Result<(), TransitionError> {
        let actor = Actor::Agency(by);
        let waiting = waiting_after(d, actor, InProgress, to);
        let p = Proposal::transition(InProgress).agency(to).waiting(&waiting).note(note).result_ref(result);
        check_transition(d, actor, &p)
    }

    /// Kelurahan → Disdukcapil → Disdik → back to Disdukcapil → back to
    /// the kelurahan: each return goes one step down the chain, and
    /// nobody finishes the request while an agency waits below.
    #[test]
    fn a_return_goes_to_the_agency_waiting_on_top_then_to_the_kelurahan() {
        let mut evs = taken_by_dukcapil();
        evs.push(step("fwd", 5, HandedOff, Some(DISDIK), &[DK], &["take"]));
        evs.push(step("take2", 6, InProgress, Some(DISDIK), &[DK], &["fwd"]));
        let d = fold(&evs).unwrap();
        let me = Actor::Agency(DISDIK);
        assert_eq!(ret(&d, DISDIK, Some(DK), None, None), Err(TransitionError::ReasonRequired));
        assert_eq!(ret(&d, DISDIK, None, Some("selesai"), None), Err(TransitionError::AgenciesWaiting));
        assert_eq!(
            ret(&d, DISDIK, Some("DINSOS"), Some("salah"), None),
            Err(TransitionError::Forbidden { from: InProgress, to: InProgress })
        );
        assert_eq!(chk(&d, me, Transition, Completed, None), Err(TransitionError::AgenciesWaiting));
        assert_eq!(chk(&d, me, Transition, Rejected, None), Err(TransitionError::AgenciesWaiting));
        // Returning to the kelurahan's level with the chain kept is a lie.
        let kept = vec![DK.to_owned()];
        let p = Proposal::transition(InProgress).agency(Some(DK)).waiting(&kept).note(Some("selesai"));
        assert_eq!(check_transition(&d, me, &p), Err(TransitionError::WaitingMismatch));
        // A result reference alone is enough.
        ret(&d, DISDIK, Some(DK), None, Some("421.5/1234/2026")).unwrap();
        ret(&d, DISDIK, Some(DK), Some("mutasi diterima"), None).unwrap();
        let mut back = step("back1", 7, InProgress, Some(DK), &[], &["take2"]);
        back.note = None;
        back.result_ref = Some("421.5/1234/2026".into());
        evs.push(back);
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.agency.as_deref(), d.waiting.len()), (InProgress, Some(DK), 0));
        assert!(d.taken_by_agency(), "back with Disdukcapil, which had taken it");
        assert_eq!(d.results, vec![(DISDIK.to_owned(), "421.5/1234/2026".to_owned())]);
        assert_eq!(chk(&d, Actor::Agency(DISDIK), Transition, Completed, None), Err(TransitionError::NotYourAgency));
        assert_eq!(
            chk(&d, Actor::Kelurahan, Transition, Completed, None),
            Err(TransitionError::HeldByAgency { agency: DK.into() })
        );
        // Nobody waits below Disdukcapil now: it may return to the
        // kelurahan, or finish the request.
        assert_eq!(ret(&d, DK, None, None, None), Err(TransitionError::ReasonRequired));
        ret(&d, DK, None, None, Some("1271010101260001")).unwrap();
        for to in [Completed, Rejected] {
            chk(&d, Actor::Agency(DK), Transition, to, None).unwrap();
        }
        evs.push(step("back2", 8, InProgress, None, &[], &["back1"]));
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.agency.as_deref(), d.waiting.len()), (InProgress, None, 0));
        chk(&d, Actor::Kelurahan, Transition, Completed, None).unwrap();
    }

    #[test]
    fn a_returned_handoff_not_yet_taken_also_goes_down_the_chain() {
        let mut evs = taken_by_dukcapil();
        evs.push(step("fwd", 5, HandedOff, Some(DISDIK), &[DK], &["take"]));
        let d = fold(&evs).unwrap();
        assert_eq!(ret(&d, DISDIK, None, Some("bukan kami"), None), Err(TransitionError::AgenciesWaiting));
        ret(&d, DISDIK, Some(DK), Some("bukan wewenang kami"), None).unwrap();
    }

    #[test]
    fn result_references_only_on_an_agency_return_or_completion() {
        let evs = taken_by_dukcapil();
        let d = fold(&evs).unwrap();
        let dk = Actor::Agency(DK);
        let with = |to: Status, agency: Option<&'static str>, r: &'static str| {
            Proposal::transition(to).agency(agency).note(Some("alasan")).result_ref(Some(r))
        };
        check_transition(&d, dk, &with(Completed, None, "KK 1271010101260001")).unwrap();
        assert_eq!(check_transition(&d, dk, &with(Rejected, None, "470/1")), Err(TransitionError::ResultNotExpected));
        let waiting = vec![DK.to_owned()];
        let fwd = with(HandedOff, Some(DISDIK), "470/1").waiting(&waiting);
        assert_eq!(check_transition(&d, dk, &fwd), Err(TransitionError::ResultNotExpected));
        for bad in ["", "   ", "470/1\u{0}", "a\nb", "\u{202e}1/074", &"x".repeat(RESULT_REF_MAX_CHARS + 1)] {
            let p = Proposal::transition(Completed).result_ref(Some(bad));
            assert_eq!(check_transition(&d, dk, &p), Err(TransitionError::InvalidResultRef), "{bad:?}");
        }
        assert!(is_valid_result_ref(&"é".repeat(RESULT_REF_MAX_CHARS)));
        // Taking carries no result.
        let handed = fold(&evs[..3]).unwrap();
        assert_eq!(
            check_transition(&handed, dk, &with(InProgress, Some(DK), "470/1")),
            Err(TransitionError::ResultNotExpected)
        );
        // Nor does anything the kelurahan or an admin writes.
        let at_kelurahan = fold(&evs[..2]).unwrap();
        for actor in [Actor::Kelurahan, Actor::Admin] {
            assert_eq!(
                check_transition(&at_kelurahan, actor, &with(Completed, None, "470/1")),
                Err(TransitionError::ResultNotExpected)
            );
        }
        // A result is credited to the holder its writer saw, else to the writer.
        let mut done = step("done", 5, Completed, None, &[], &["take"]);
        done.result_ref = Some("470/1".into());
        let mut stray = step("stray", 1, Completed, None, &[], &["a"]);
        stray.result_ref = Some("470/0".into());
        stray.by = "198503122010011002".into();
        let mut all = evs.clone();
        all.extend([done, stray]);
        assert_eq!(
            fold(&all).unwrap().results,
            vec![("198503122010011002".to_owned(), "470/0".to_owned()), (DK.to_owned(), "470/1".to_owned())]
        );
    }

    /// A rejection and a request for documents need a reason, whoever
    /// writes them.
    #[test]
    fn rejecting_and_asking_the_citizen_need_a_reason_for_everyone() {
        let evs = taken_by_dukcapil();
        let at_kelurahan = fold(&evs[..2]).unwrap();
        let taken = fold(&evs).unwrap();
        let cases: [(&Derived, Actor<'_>, Status); 5] = [
            (&at_kelurahan, Actor::Kelurahan, Rejected),
            (&at_kelurahan, Actor::Kelurahan, WaitingCitizen),
            (&at_kelurahan, Actor::Admin, Rejected),
            (&at_kelurahan, Actor::Admin, WaitingCitizen),
            (&taken, Actor::Agency(DK), Rejected),
        ];
        for (d, actor, to) in cases {
            for note in [None, Some(""), Some(" \n ")] {
                let p = Proposal::transition(to).note(note);
                assert_eq!(
                    check_transition(d, actor, &p),
                    Err(TransitionError::ReasonRequired),
                    "{actor:?} {to} {note:?}"
                );
            }
            check_transition(d, actor, &Proposal::transition(to).note(Some("berkas kurang"))).unwrap();
        }
        // Other steps need none.
        check_transition(&at_kelurahan, Actor::Kelurahan, &Proposal::transition(Completed)).unwrap();
        check_transition(&taken, Actor::Agency(DK), &Proposal::transition(Completed)).unwrap();
    }

    /// Two users of Disdukcapil, one forwarding to Disdik, one returning
    /// to the kelurahan, at once: a routing conflict, both sides kept,
    /// everything blocked until an admin settles it.
    #[test]
    fn a_forward_racing_a_return_is_a_routing_conflict_until_resolved() {
        let mut evs = taken_by_dukcapil();
        evs.push(step("fwd", 5, HandedOff, Some(DISDIK), &[DK], &["take"]));
        evs.push(step("ret", 6, InProgress, None, &[], &["take"]));
        let d = fold(&evs).unwrap();
        assert!(d.has_conflict() && d.has_routing_conflict());
        let sides: Vec<(&str, Status, Option<&str>, Vec<String>)> =
            d.conflict.iter().map(|s| (s.event_id.as_str(), s.to, s.agency.as_deref(), s.waiting.clone())).collect();
        assert_eq!(
            sides,
            vec![("fwd", HandedOff, Some(DISDIK), vec![DK.to_owned()]), ("ret", InProgress, None, vec![])]
        );
        // The status is the last side's, stable on every replica.
        assert_eq!((d.status, d.agency.as_deref()), (InProgress, None));
        for actor in [Actor::Kelurahan, Actor::Admin, Actor::Agency(DK), Actor::Agency(DISDIK)] {
            assert_eq!(chk(&d, actor, Transition, Completed, None), Err(TransitionError::InConflict), "{actor:?}");
        }
        assert_eq!(chk(&d, Actor::Agency(DK), Resolve, InProgress, None), Err(TransitionError::ResolveByAdminOnly));
        // The admin names the status, the holder and who waits below it.
        let bad: [(&[&str], Option<&str>, TransitionError); 3] = [
            (&[DK, DK], Some(DISDIK), TransitionError::ForwardCycle),
            (&[DISDIK], Some(DISDIK), TransitionError::ForwardCycle),
            (&[DK], None, TransitionError::WaitingMismatch),
        ];
        for (waiting, agency, err) in bad {
            let waiting: Vec<String> = waiting.iter().map(|w| w.to_string()).collect();
            let to = if agency.is_some() { HandedOff } else { InProgress };
            let p = Proposal::resolve(to).agency(agency).waiting(&waiting);
            assert_eq!(check_transition(&d, Actor::Admin, &p), Err(err), "{waiting:?} {agency:?}");
        }
        let long: Vec<String> = (0..=WAITING_MAX).map(|i| format!("AG{i}")).collect();
        let p = Proposal::resolve(HandedOff).agency(Some(DISDIK)).waiting(&long);
        assert_eq!(check_transition(&d, Actor::Admin, &p), Err(TransitionError::ChainTooLong));
        let p = Proposal::resolve(Completed).result_ref(Some("470/1"));
        assert_eq!(check_transition(&d, Actor::Admin, &p), Err(TransitionError::ResultNotExpected));
        let chain = vec![DK.to_owned()];
        check_transition(&d, Actor::Admin, &Proposal::resolve(HandedOff).agency(Some(DISDIK)).waiting(&chain)).unwrap();
        check_transition(&d, Actor::Admin, &Proposal::resolve(InProgress).agency(Some(DK))).unwrap();

        let mut fix = step("fix", 7, HandedOff, Some(DISDIK), &[DK], &["fwd", "ret"]);
        fix.kind = Resolve;
        evs.push(fix);
        let d = fold(&evs).unwrap();
        assert!(!d.has_conflict());
        assert_eq!((d.status, d.agency.as_deref(), d.waiting.clone()), (HandedOff, Some(DISDIK), vec![DK.to_owned()]));
        assert_eq!(d.ordered.len(), 7, "both sides are still in the history");
    }

    #[test]
    fn a_kelurahan_pulling_back_while_the_agency_takes_is_a_routing_conflict() {
        let mut evs = taken_by_dukcapil();
        evs.push(ev("pull", 5, "k", Transition, InProgress, &["c"]));
        let d = fold(&evs).unwrap();
        assert!(d.has_routing_conflict());
        assert_eq!(d.conflict.iter().map(|s| s.event_id.as_str()).collect::<Vec<_>>(), ["take", "pull"]);
    }

    /// Races while only the kelurahan held the request keep the old rule,
    /// and a terminal status still wins over a routing race, or makes a
    /// terminal conflict with another terminal.
    #[test]
    fn routing_races_at_the_kelurahan_or_beside_a_terminal_keep_the_old_rules() {
        let evs = [
            ev("a", 1, "k", Create, Submitted, &[]),
            ev("b", 2, "k", Transition, InProgress, &["a"]),
            ev("x", 3, "k1", Transition, HandedOff, &["b"]),
            ev("y", 4, "k2", Transition, WaitingCitizen, &["b"]),
        ];
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.has_conflict()), (WaitingCitizen, false));

        let mut evs = taken_by_dukcapil();
        evs.push(step("fwd", 5, HandedOff, Some(DISDIK), &[DK], &["take"]));
        evs.push(step("ret", 6, InProgress, None, &[], &["take"]));
        evs.push(step("done", 2, Completed, None, &[], &["take"]));
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.has_conflict(), d.agency.clone()), (Completed, false, None));
        evs.push(step("no", 3, Rejected, None, &[], &["take"]));
        let d = fold(&evs).unwrap();
        assert!(d.has_conflict() && !d.has_routing_conflict());
        assert_eq!(d.conflict.iter().map(|s| s.to).collect::<Vec<_>>(), [Completed, Rejected]);
    }

    /// Concurrent identical routes (two replicas of one server step) are
    /// no conflict.
    #[test]
    fn the_same_route_twice_is_no_conflict() {
        let mut evs = taken_by_dukcapil();
        evs.push(step("r1", 5, InProgress, None, &[], &["take"]));
        evs.push(step("r2", 6, InProgress, None, &[], &["take"]));
        let d = fold(&evs).unwrap();
        assert!(!d.has_conflict());
        assert_eq!(d.frontier, ["r1", "r2"]);
    }
}
