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
//! - otherwise the frontier event last in `(hlc, node, id)` order wins.
//!
//! Nothing is dropped: events that lose are still in the history. The fold
//! is a pure function of the *set* of events, so every replica that holds
//! the same events derives the same status whatever order they arrived in.

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
}

/// One side of a conflict between concurrent terminal statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictSide {
    pub event_id: String,
    pub to: Status,
    pub by: String,
    pub at_ms: i64,
    pub node: String,
    pub agency: Option<String>,
    pub note: Option<String>,
}

/// What the fold derives from a set of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub status: Status,
    /// Two or more sides when concurrent, different terminal statuses wait
    /// for review; empty otherwise.
    pub conflict: Vec<ConflictSide>,
    /// Ids of the frontier events, in `(hlc, node, id)` order: what a new
    /// event must name as its parents.
    pub frontier: Vec<String>,
    /// The agency that holds the request now: handed to it (`handed_off`)
    /// or taken by it (`in_progress` by that agency); `None` while the
    /// kelurahan holds it or it is finished.
    pub agency: Option<String>,
    /// All events, in display order `(hlc, node, id)`, duplicates removed.
    pub ordered: Vec<Event>,
}

impl Derived {
    pub fn has_conflict(&self) -> bool {
        !self.conflict.is_empty()
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
    // An event is in the frontier unless some event names it as a parent.
    let mut has_child = vec![false; ordered.len()];
    for e in &ordered {
        for p in &e.parents {
            if let Some(&i) = index.get(p.as_str())
                && ordered[i].id != e.id
            {
                has_child[i] = true;
            }
        }
    }
    let frontier: Vec<&Event> = ordered.iter().zip(&has_child).filter(|(_, c)| !**c).map(|(e, _)| e).collect();

    let terminals: Vec<&Event> = frontier.iter().copied().filter(|e| e.to.is_terminal()).collect();
    let distinct_terminal: BTreeSet<Status> = terminals.iter().map(|e| e.to).collect();
    let (status, conflict) = match distinct_terminal.len() {
        0 => (frontier.last().map_or(Status::Submitted, |e| e.to), Vec::new()),
        1 => (terminals[0].to, Vec::new()),
        _ => {
            // Report the earliest terminal as the status (stable across
            // replicas) and flag every terminal side.
            let sides = terminals
                .iter()
                .map(|e| ConflictSide {
                    event_id: e.id.clone(),
                    to: e.to,
                    by: e.by.clone(),
                    at_ms: e.at_ms,
                    node: e.node.clone(),
                    agency: e.agency.clone(),
                    note: e.note.clone(),
                })
                .collect();
            (terminals[0].to, sides)
        }
    };

    // Handed to an agency and not yet taken, or taken by it (`in_progress`
    // with the agency named): the agency holds the request.
    let agency = match status {
        Status::HandedOff | Status::InProgress => {
            frontier.iter().rev().find(|e| e.to == status).and_then(|e| e.agency.clone())
        }
        _ => None,
    };

    Ok(Derived { status, conflict, frontier: frontier.iter().map(|e| e.id.clone()).collect(), agency, ordered })
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
        }
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
    /// handed-off request, then completes, rejects or returns it to the
    /// kelurahan (`in_progress` without an agency).
    Agency(&'a str),
}

/// Checks that `actor` may write a new event of `kind` moving to `to` from
/// the derived state. Pure; the caller then builds the event with
/// `parents = derived.frontier`.
///
/// `agency` on an event says where the request goes: the agency handed to
/// (`handed_off`), or the agency taking it (`in_progress`, written only by
/// that agency). An `in_progress` without one while an agency holds the
/// request returns it to the kelurahan.
pub fn check_transition(
    derived: &Derived,
    actor: Actor<'_>,
    kind: EventKind,
    to: Status,
    agency: Option<&str>,
) -> Result<(), TransitionError> {
    let forbidden = Err(TransitionError::Forbidden { from: derived.status, to });
    match kind {
        EventKind::Resolve => {
            if actor != Actor::Admin {
                return Err(TransitionError::ResolveByAdminOnly);
            }
            if !derived.has_conflict() {
                return Err(TransitionError::NoConflict);
            }
            if to == Status::Submitted {
                return forbidden;
            }
            return match (to == Status::HandedOff, agency) {
                (true, None) => Err(TransitionError::AgencyRequired),
                (false, Some(_)) => Err(TransitionError::AgencyNotExpected),
                _ => Ok(()),
            };
        }
        EventKind::Create => return forbidden,
        EventKind::Transition => {}
    }
    if derived.has_conflict() {
        return Err(TransitionError::InConflict);
    }
    let returning = to == Status::InProgress && agency.is_none() && derived.agency.is_some();
    if !derived.status.can_move_to(to) && !returning {
        return forbidden;
    }
    match actor {
        Actor::Agency(mine) => {
            if derived.agency.as_deref() != Some(mine) {
                return Err(TransitionError::NotYourAgency);
            }
            match (to, agency) {
                // Take (only what is not taken yet) or return.
                (Status::InProgress, Some(a)) if a == mine && derived.status == Status::HandedOff => Ok(()),
                (Status::InProgress, Some(_)) => forbidden,
                (Status::InProgress | Status::Completed | Status::Rejected, None) => Ok(()),
                (_, Some(_)) => Err(TransitionError::AgencyNotExpected),
                _ => forbidden,
            }
        }
        Actor::Kelurahan | Actor::Admin => {
            if actor == Actor::Kelurahan
                && let Some(a) = derived.agency.as_ref().filter(|_| derived.taken_by_agency())
            {
                return Err(TransitionError::HeldByAgency { agency: a.clone() });
            }
            match (to == Status::HandedOff, agency) {
                (true, None) => Err(TransitionError::AgencyRequired),
                (false, Some(_)) => Err(TransitionError::AgencyNotExpected),
                _ => Ok(()),
            }
        }
    }
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
            parents: parents.iter().map(|p| p.to_string()).collect(),
            seal: None,
        }
    }

    use EventKind::{Create, Resolve, Transition};
    use Status::*;

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
        assert_eq!(
            check_transition(&d, Actor::Kelurahan, Transition, InProgress, None),
            Err(TransitionError::InConflict)
        );
        check_transition(&d, Actor::Admin, Resolve, Rejected, None).unwrap();
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
        assert_eq!(
            check_transition(&d, Actor::Kelurahan, Transition, HandedOff, None),
            Err(TransitionError::AgencyRequired)
        );
        assert_eq!(
            check_transition(&d, Actor::Kelurahan, Transition, Completed, Some("DISDUKCAPIL")),
            Err(TransitionError::AgencyNotExpected)
        );
        assert_eq!(
            check_transition(&d, Actor::Kelurahan, Transition, Submitted, None),
            Err(TransitionError::Forbidden { from: InProgress, to: Submitted })
        );
        assert_eq!(check_transition(&d, Actor::Admin, Resolve, Completed, None), Err(TransitionError::NoConflict));
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
        assert_eq!(
            check_transition(&d, other, Transition, InProgress, Some("DISDIK")),
            Err(TransitionError::NotYourAgency)
        );
        assert_eq!(check_transition(&d, other, Transition, Completed, None), Err(TransitionError::NotYourAgency));
        assert_eq!(
            check_transition(&d, d_agency, Transition, InProgress, Some("DISDIK")),
            Err(TransitionError::Forbidden { from: HandedOff, to: InProgress })
        );
        // Kiosks and admins never take for an agency.
        for actor in [Actor::Kelurahan, Actor::Admin] {
            assert_eq!(
                check_transition(&d, actor, Transition, InProgress, Some("DISDUKCAPIL")),
                Err(TransitionError::AgencyNotExpected)
            );
        }
        check_transition(&d, d_agency, Transition, InProgress, Some("DISDUKCAPIL")).unwrap();
        let mut take = ev("take", 4, "server", Transition, InProgress, &["c"]);
        take.agency = Some("DISDUKCAPIL".into());
        evs.push(take);
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.agency.as_deref()), (InProgress, Some("DISDUKCAPIL")));
        assert!(d.taken_by_agency());
        // Taken: no second take, no onward hand-off, and the kelurahan waits.
        assert_eq!(
            check_transition(&d, d_agency, Transition, InProgress, Some("DISDUKCAPIL")),
            Err(TransitionError::Forbidden { from: InProgress, to: InProgress })
        );
        assert_eq!(
            check_transition(&d, d_agency, Transition, HandedOff, Some("DISDIK")),
            Err(TransitionError::AgencyNotExpected)
        );
        assert_eq!(
            check_transition(&d, d_agency, Transition, WaitingCitizen, None),
            Err(TransitionError::Forbidden { from: InProgress, to: WaitingCitizen })
        );
        assert_eq!(
            check_transition(&d, Actor::Kelurahan, Transition, Completed, None),
            Err(TransitionError::HeldByAgency { agency: "DISDUKCAPIL".into() })
        );
        for to in [Completed, Rejected, InProgress] {
            check_transition(&d, d_agency, Transition, to, None).unwrap();
        }
        // Returned: the kelurahan holds it again and the agency is out.
        evs.push(ev("back", 5, "server", Transition, InProgress, &["take"]));
        let d = fold(&evs).unwrap();
        assert_eq!((d.status, d.agency.as_deref()), (InProgress, None));
        assert_eq!(check_transition(&d, d_agency, Transition, Completed, None), Err(TransitionError::NotYourAgency));
        check_transition(&d, Actor::Kelurahan, Transition, Completed, None).unwrap();
        assert_eq!(
            check_transition(&d, Actor::Kelurahan, Transition, InProgress, None),
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
            assert_eq!(check_transition(&d, actor, Resolve, Completed, None), Err(TransitionError::ResolveByAdminOnly));
        }
        check_transition(&d, Actor::Admin, Resolve, Completed, None).unwrap();
    }
}
