//! The server's seal: what lets it recognise its own work when a kiosk
//! carries it back.
//!
//! Kiosks may only push changes made by their own Automerge actor, with one
//! exception: after the server was restored from a backup, a kiosk may
//! hold central events (an agency's handoff result, an admin's resolve)
//! that the restored server has lost, and pushing its documents again must
//! bring them back. Automerge changes are not signed, so the server seals
//! what it writes:
//!
//! - its actor for a run is 8 random bytes followed by 8 bytes of
//!   HMAC-SHA256(key, nonce): a change by any other non-kiosk actor is
//!   refused;
//! - each central event carries `seal` = HMAC-SHA256(key, document id and
//!   every field of the event; `waiting` and `result_ref` only when
//!   present, so older seals still verify): a kiosk can replay a real central event into
//!   its own document, which is harmless, but cannot make one up.
//!
//! The key is 32 random bytes in the database's `meta` table, made on first
//! start; a backup holds the same key, so a restore keeps recognising it.
//! The web app's CSRF tokens are MACs under the same key in a domain of
//! their own ([`SealKey::csrf_key`]).

use automerge::ActorId;
use hmac::{Hmac, Mac};
use loket_shared::complaint;
use loket_shared::workflow::Event;
use sha2::Sha256;

use crate::store::meta::meta_set_once;
use crate::store::{Sql, StoreError, meta_get, random_bytes};

type HmacSha256 = Hmac<Sha256>;

const ACTOR_DOMAIN: &[u8] = b"loket/server-actor/v1";
const EVENT_DOMAIN: &[u8] = b"loket/central-event/v1";
const COMPLAINT_STEP_DOMAIN: &[u8] = b"loket/complaint-step/v1";

#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// The database's key, made on first use.
    /// Every instance on one database gets the same key: the first to
    /// start makes it, the others read it.
    pub fn load_or_create(db: &mut dyn Sql) -> Result<SealKey, StoreError> {
        let hex = match meta_get(db, "seal_key")? {
            Some(hex) => hex,
            None => meta_set_once(db, "seal_key", &hex::encode(random_bytes::<32>()))?,
        };
        let bytes = hex::decode(&hex).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
        bytes
            .map(SealKey)
            .ok_or_else(|| StoreError::Corrupt { what: "meta.seal_key".into(), reason: "not 32 hex bytes".into() })
    }

    /// A key from its bytes (tests and fuzzing).
    pub fn from_bytes(key: [u8; 32]) -> SealKey {
        SealKey(key)
    }

    fn mac(&self, domain: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(domain);
        mac
    }

    /// The key's bytes, for the web app's CSRF tokens: MACs under this key
    /// in their own domain (`loket-web-csrf:`, see
    /// `loket_node::web::csrf`), so a token never equals a seal or an
    /// actor tag, and the key is one secret in one place.
    pub fn csrf_key(&self) -> &[u8] {
        &self.0
    }

    /// A new actor for this server run.
    pub fn new_actor(&self) -> ActorId {
        self.actor_with_nonce(random_bytes::<8>())
    }

    /// The server actor for `nonce` (deterministic: for simulations).
    pub fn actor_with_nonce(&self, nonce: [u8; 8]) -> ActorId {
        let mut mac = self.mac(ACTOR_DOMAIN);
        mac.update(&nonce);
        let tag = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&nonce);
        bytes[8..].copy_from_slice(&tag[..8]);
        ActorId::from(bytes)
    }

    /// Whether `actor` was made by [`SealKey::new_actor`] with this key.
    pub fn is_server_actor(&self, actor: &[u8]) -> bool {
        if actor.len() != 16 {
            return false;
        }
        let mut mac = self.mac(ACTOR_DOMAIN);
        mac.update(&actor[..8]);
        mac.verify_truncated_left(&actor[8..]).is_ok()
    }

    fn event_mac(&self, doc_id: &str, e: &Event) -> HmacSha256 {
        let mut mac = self.mac(EVENT_DOMAIN);
        let mut field = |s: &str| {
            mac.update(&(s.len() as u64).to_be_bytes());
            mac.update(s.as_bytes());
        };
        field(doc_id);
        field(&e.id);
        field(&e.hlc.to_string());
        field(&e.node);
        field(&e.at_ms.to_string());
        field(&e.by);
        field(e.kind.as_str());
        field(e.from.map_or("", |s| s.as_str()));
        field(e.to.as_str());
        field(e.note.as_deref().unwrap_or("\u{0}none"));
        field(e.agency.as_deref().unwrap_or("\u{0}none"));
        // Added with agency forwarding: only when present, so seals made
        // before them still verify.
        if !e.waiting.is_empty() {
            field("\u{0}waiting");
            field(&e.waiting.len().to_string());
            for a in &e.waiting {
                field(a);
            }
        }
        if let Some(r) = &e.result_ref {
            field("\u{0}result_ref");
            field(r);
        }
        field(&e.parents.len().to_string());
        for p in &e.parents {
            field(p);
        }
        mac
    }

    /// The seal of a central event in document `doc_id` (hex).
    pub fn seal(&self, doc_id: &str, e: &Event) -> String {
        hex::encode(self.event_mac(doc_id, e).finalize().into_bytes())
    }

    /// Whether `e` carries this server's seal for document `doc_id`.
    pub fn verify(&self, doc_id: &str, e: &Event) -> bool {
        let Some(tag) = e.seal.as_deref().and_then(|s| hex::decode(s).ok()) else { return false };
        self.event_mac(doc_id, e).verify_slice(&tag).is_ok()
    }
}

impl SealKey {
    fn step_mac(&self, doc_id: &str, s: &complaint::Step) -> HmacSha256 {
        let mut mac = self.mac(COMPLAINT_STEP_DOMAIN);
        let mut field = |v: &str| {
            mac.update(&(v.len() as u64).to_be_bytes());
            mac.update(v.as_bytes());
        };
        let none = "\u{0}none";
        field(doc_id);
        field(&s.id);
        field(&s.hlc.to_string());
        field(&s.node);
        field(&s.at_ms.to_string());
        field(&s.by);
        field(s.kind.as_str());
        field(s.class.map_or(none, complaint::Class::as_str));
        field(&s.unit.as_ref().map_or_else(|| none.to_owned(), ToString::to_string));
        field(&s.days.map_or_else(|| none.to_owned(), |d| d.to_string()));
        field(s.lapor.as_deref().unwrap_or(none));
        // As `append_step` stores it (trimmed), so a step reads back sealed.
        field(s.text.as_deref().map_or(none, str::trim));
        field(&s.parents.len().to_string());
        for p in &s.parents {
            field(p);
        }
        mac
    }

    /// The seal of a central complaint step in document `doc_id` (hex):
    /// every field of the step and the document, in a domain of its own.
    pub fn seal_step(&self, doc_id: &str, s: &complaint::Step) -> String {
        hex::encode(self.step_mac(doc_id, s).finalize().into_bytes())
    }

    /// Whether complaint step `s` carries this server's seal for `doc_id`.
    pub fn verify_step(&self, doc_id: &str, s: &complaint::Step) -> bool {
        let Some(tag) = s.seal.as_deref().and_then(|v| hex::decode(v).ok()) else { return false };
        self.step_mac(doc_id, s).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use loket_shared::Hlc;
    use loket_shared::workflow::{EventKind, Status};

    use super::*;

    fn key() -> SealKey {
        SealKey([9; 32])
    }

    fn event() -> Event {
        Event {
            id: "e1".into(),
            hlc: Hlc { wall_ms: 1, counter: 0 },
            node: "ab".into(),
            at_ms: 1,
            by: "admin:ani".into(),
            kind: EventKind::Transition,
            from: Some(Status::HandedOff),
            to: Status::Completed,
            note: None,
            agency: None,
            waiting: Vec::new(),
            result_ref: None,
            parents: vec!["e0".into()],
            seal: None,
        }
    }

    #[test]
    fn server_actors_are_recognised_and_others_are_not() {
        let a = key().new_actor();
        assert!(key().is_server_actor(a.to_bytes()));
        assert!(!SealKey([8; 32]).is_server_actor(a.to_bytes()), "another server's key");
        assert!(!key().is_server_actor(ActorId::random().to_bytes()));
        assert!(!key().is_server_actor(&[1, 2, 3]));
    }

    #[test]
    fn a_seal_covers_every_field_and_the_document() {
        let mut e = event();
        e.seal = Some(key().seal("d1", &e));
        assert!(key().verify("d1", &e));
        assert!(!key().verify("d2", &e), "moved to another document");
        let mut changed = e.clone();
        changed.to = Status::Rejected;
        assert!(!key().verify("d1", &changed));
        let mut noted = e.clone();
        noted.note = Some(String::new());
        assert!(!key().verify("d1", &noted), "an empty note is not no note");
        let mut rerouted = e.clone();
        rerouted.waiting = vec!["DISDUKCAPIL".into()];
        assert!(!key().verify("d1", &rerouted), "agencies added to the chain");
        let mut resulted = e.clone();
        resulted.result_ref = Some("470/12/2026".into());
        assert!(!key().verify("d1", &resulted), "a result added");
        let mut chained = rerouted.clone();
        chained.seal = Some(key().seal("d1", &chained));
        assert!(key().verify("d1", &chained));
        chained.waiting.push("DISDIK".into());
        assert!(!key().verify("d1", &chained), "the chain changed");
        let mut unsealed = e.clone();
        unsealed.seal = None;
        assert!(!key().verify("d1", &unsealed));
        unsealed.seal = Some("zz".into());
        assert!(!key().verify("d1", &unsealed));
    }

    #[test]
    fn a_step_seal_covers_every_field_and_the_document() {
        use loket_shared::complaint::{Class, Step, StepKind};
        let mut s = Step {
            id: "s2".into(),
            hlc: Hlc { wall_ms: 2, counter: 0 },
            node: "ab".into(),
            at_ms: 2,
            by: "admin:ani".into(),
            kind: StepKind::Register,
            class: Some(Class::Ringan),
            unit: Some("kelurahan:12.71.01.1001".parse().unwrap()),
            days: None,
            lapor: None,
            text: None,
            parents: vec!["s1".into()],
            seal: None,
        };
        s.seal = Some(key().seal_step("d1", &s));
        assert!(key().verify_step("d1", &s));
        assert!(!key().verify_step("d2", &s), "moved to another document");
        let mut other = s.clone();
        other.class = Some(Class::Normatif);
        assert!(!key().verify_step("d1", &other));
        let mut other = s.clone();
        other.kind = StepKind::Answer;
        assert!(!key().verify_step("d1", &other));
        let mut e = event();
        e.seal = s.seal.clone();
        assert!(!key().verify("d1", &e), "a step's seal is no event's");
    }
}
