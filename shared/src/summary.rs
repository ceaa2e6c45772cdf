//! What a kiosk's lists need of a request: its projection row, read from
//! the document (issue 17).
//!
//! A kiosk shows the requests of its office, its partner kiosk's too, in
//! its staff console's lists. Loading and reading a request a kiosk pulls
//! for the first time cost it more than half its CPU in the initial sync
//! (`AutoCommit::load` and `request::read`). The server has read every
//! request it merged; from protocol 3 it sends this summary beside a
//! request a kiosk does not hold yet, and the kiosk stores the document as
//! it came and projects the summary, without loading it.
//!
//! Invariants:
//! - [`Summary::of`] is the only way one is made, and the kiosk's own
//!   writes project through it too: a row from a summary is the row the
//!   kiosk would have made from the document;
//! - a summary is only a short cut: one that does not [`Summary::check`]
//!   is ignored and the document is read instead, never refused for it.

use serde::{Deserialize, Serialize};

use crate::ids::{Code, KioskCode, Nik, PersonName, Ticket};
use crate::request::RequestView;
use crate::workflow::{Derived, EventKind, Status};

/// Longest node a summary may carry (an Automerge actor: 32 hex digits).
const NODE_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The request's id, as the pulled document's (`PullDoc::doc`).
    pub doc: [u8; 16],
    pub ticket: Ticket,
    /// The kiosk that filed it.
    pub kiosk: KioskCode,
    pub service: Code,
    pub status: Status,
    pub conflict: bool,
    /// The agency that holds it now (`Derived::agency`).
    pub agency: Option<String>,
    pub applicant_name: PersonName,
    /// Whole: the kiosk keeps it masked (`Nik::masked`), as from the document.
    pub nik: Nik,
    pub rated: bool,
    pub created_at_ms: i64,
    /// The latest event's or rating's wall clock, else `created_at_ms`.
    pub updated_at_ms: i64,
    /// The `create` event's node: the filing kiosk's Automerge actor, hex.
    pub create_node: Option<String>,
    /// The latest event's clock, `(wall ms, counter)`: a kiosk's next
    /// event must sort after it.
    pub latest_hlc: Option<(u64, u32)>,
}

impl Summary {
    /// The summary of a request as read and folded.
    pub fn of(view: &RequestView, derived: &Derived) -> Summary {
        let updated_at = derived.ordered.iter().map(|e| e.at_ms).max().unwrap_or(view.created_at_ms);
        let updated_at_ms = view.ratings.iter().map(|r| r.at_ms).fold(updated_at, i64::max);
        Summary {
            doc: view.id.to_bytes(),
            ticket: view.ticket.clone(),
            kiosk: view.kiosk.clone(),
            service: view.service.clone(),
            status: derived.status,
            conflict: derived.has_conflict(),
            agency: derived.agency.clone(),
            applicant_name: view.applicant.name.clone(),
            nik: view.applicant.nik.clone(),
            rated: !view.ratings.is_empty(),
            created_at_ms: view.created_at_ms,
            updated_at_ms,
            create_node: view.events.iter().find(|e| e.kind == EventKind::Create).map(|e| e.node.clone()),
            latest_hlc: derived.ordered.iter().map(|e| e.hlc).max().map(|h| (h.wall_ms, h.counter)),
        }
    }

    /// Whether what the wire's types do not bound holds: the agency is a
    /// code (as `structure` requires of every event's), the node short
    /// hex. The rest was checked as it decoded (the ids' own types).
    pub fn check(&self) -> bool {
        self.agency.as_deref().is_none_or(|a| a.parse::<Code>().is_ok())
            && self
                .create_node
                .as_deref()
                .is_none_or(|n| (1..=NODE_MAX).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The latest event's clock.
    pub fn latest_hlc(&self) -> Option<crate::Hlc> {
        self.latest_hlc.map(|(wall_ms, counter)| crate::Hlc { wall_ms, counter })
    }
}

#[cfg(test)]
mod tests {
    use automerge::AutoCommit;

    use super::*;
    use crate::request::{self, tests::new_request};
    use crate::workflow::{self, Event};
    use crate::{DocId, Hlc};

    /// A request filed, then taken up by staff at a later clock.
    fn taken_up() -> (RequestView, Derived) {
        let new = new_request(None);
        let mut doc = AutoCommit::new();
        request::create(&mut doc, &new).unwrap();
        let step = Event {
            id: "e2".into(),
            hlc: Hlc { wall_ms: 1_764_300_060_000, counter: 2 },
            node: "bb".into(),
            at_ms: 1_764_300_060_500,
            by: "199001012020011001".into(),
            kind: EventKind::Transition,
            from: Some(Status::Submitted),
            to: Status::InProgress,
            parents: vec!["e1".into()],
            ..new.create_event.clone()
        };
        request::append_event(&mut doc, &step).unwrap();
        doc.commit();
        let view = request::read(&doc).unwrap();
        let derived = workflow::fold(&view.events).unwrap();
        (view, derived)
    }

    #[test]
    fn a_summary_is_the_row_the_document_reads_as() {
        let (view, derived) = taken_up();
        let s = Summary::of(&view, &derived);
        assert_eq!(DocId::from_bytes(s.doc), view.id);
        assert_eq!((s.ticket.as_str(), s.kiosk.as_str(), s.service.as_str()), ("K07-1128-023", "K07", "SKD"));
        assert_eq!(s.status, Status::InProgress);
        assert!(!s.conflict && !s.rated);
        assert_eq!(s.agency, None);
        assert_eq!((s.applicant_name.as_str(), s.nik.masked().as_str()), ("Siti Aminah", "127101••••••0003"));
        assert_eq!((s.created_at_ms, s.updated_at_ms), (1_764_300_000_000, 1_764_300_060_500));
        assert_eq!(s.create_node.as_deref(), Some("aa"), "the create event's node, not the latest");
        assert_eq!(s.latest_hlc(), Some(Hlc { wall_ms: 1_764_300_060_000, counter: 2 }));
        assert!(s.check());
        // Through the wire's encoding and back, unchanged.
        let bytes = postcard::to_allocvec(&s).unwrap();
        assert_eq!(postcard::from_bytes::<Summary>(&bytes).unwrap(), s);
    }

    #[test]
    fn a_summary_with_an_unbounded_agency_or_node_does_not_check() {
        let (view, derived) = taken_up();
        let good = Summary::of(&view, &derived);
        let with = |f: &dyn Fn(&mut Summary)| {
            let mut s = good.clone();
            f(&mut s);
            s.check()
        };
        assert!(with(&|s| s.agency = Some("DISDUKCAPIL".into())));
        assert!(!with(&|s| s.agency = Some("A".repeat(25))));
        assert!(!with(&|s| s.agency = Some("<script>".into())), "markup is no code");
        assert!(!with(&|s| s.agency = Some(String::new())));
        assert!(!with(&|s| s.create_node = Some("not hex".into())));
        assert!(!with(&|s| s.create_node = Some("a".repeat(NODE_MAX + 1))));
        // What the ids' types bound is refused as it decodes.
        let mut bytes = postcard::to_allocvec(&good).unwrap();
        let at = bytes.windows(11).position(|w| w == b"Siti Aminah").unwrap();
        bytes[at] = b'<';
        assert!(postcard::from_bytes::<Summary>(&bytes).is_err(), "a name with markup is no name");
    }
}
