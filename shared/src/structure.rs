//! The shape of a request document, checked on the Automerge objects
//! themselves rather than on what `request::read` reads out of them.
//!
//! `read` sees one winner per key and the list that currently sits under
//! `events`; a writer can hide a partner's data from it while every field
//! it reads looks the same. Two ways it was done:
//!
//! - replace the `events` list object with an identical-looking new one:
//!   a partner's concurrent append lands in the old, no longer visible
//!   list, acknowledged as applied yet invisible;
//! - write a second, concurrent value under a header key: `read` shows
//!   one winner, chosen by op id, not by the rules.
//!
//! [`check`] refuses both and their relatives: the header, applicant,
//! events and ratings objects keep their identity from `before`; the items
//! of both lists keep theirs and their order (new items may sit anywhere,
//! since concurrent appends interleave); every key holds one value; no key
//! outside the layout appears (`request.rs` documents it); a rating's
//! `profile` holds only the four questions, each a text that is one of the
//! question's codes (`respondent`). [`check_event`] and [`check_rating`]
//! bound the length and character class of every string a writer may put
//! in an event or a rating.

use std::collections::HashSet;

use automerge::legacy::{ObjectId, OpId, OpType};
use automerge::{ActorId, AutoCommit, ChangeHash, ExpandedChange, ObjId, ObjType, ROOT, ReadDoc, ValueRef};
use thiserror::Error;

use crate::request::{COMMENT_MAX_CHARS, NOTE_MAX_CHARS, Rating};
use crate::workflow::{Event, WAITING_MAX, is_valid_result_ref};

const ROOT_KEYS: &[&str] = &[
    "type",
    "schema",
    "id",
    "ticket",
    "kelurahan",
    "kiosk",
    "service",
    "created_at",
    "hlc",
    "applicant",
    "events",
    "ratings",
    "rating_key",
];
const APPLICANT_KEYS: &[&str] = &["name", "nik", "phone"];
const EVENT_KEYS: &[&str] = &[
    "id",
    "hlc",
    "node",
    "at",
    "by",
    "kind",
    "from",
    "to",
    "note",
    "agency",
    "waiting",
    "result_ref",
    "seal",
    "parents",
];
const RATING_KEYS: &[&str] = &["id", "hlc", "node", "at", "scores", "comment", "profile"];
const PROFILE_KEYS: &[&str] = &["age", "sex", "education", "occupation"];
const SCORE_KEYS: &[&str] = &["U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8", "U9"];
/// Most items either list may hold: a request's life is tens of events.
pub const LIST_ITEMS_MAX: usize = 1_000;
/// Most parents one event may name (the frontier it saw).
pub const PARENTS_MAX: usize = 64;
/// Event and rating ids: UUIDs as the writers make them, with room.
const ID_MAX_CHARS: usize = 64;
/// Automerge actors in hex (kiosks 16 bytes, the server 16).
const NODE_MAX_CHARS: usize = 64;
/// Who acted: a NIP, `citizen`, or for central events `admin:NAME` /
/// `agency:CODE:NAME`.
const BY_MAX_CHARS: usize = 64;
const SEAL_MAX_CHARS: usize = 128;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StructureError {
    #[error("a key the layout does not have in {0}")]
    UnknownKey(&'static str),
    #[error("key {0:?} in {1} holds concurrent values")]
    Conflict(String, &'static str),
    #[error("{0} has the wrong type")]
    WrongType(&'static str),
    #[error("the {0} object was replaced")]
    Replaced(&'static str),
    #[error("an item of {0} was removed, replaced or moved")]
    ListRewritten(&'static str),
    #[error("{0} has more than {1} items")]
    TooMany(&'static str, usize),
    #[error("field {0} is too long or holds characters it may not")]
    Text(&'static str),
}

/// Checks the objects of a request document. With `before` (heads the
/// document had before foreign changes were applied) also checks that
/// nothing that existed then was replaced, removed or reordered.
pub fn check(doc: &AutoCommit, before: Option<&[ChangeHash]>) -> Result<(), StructureError> {
    let root = keys_of(doc, &ROOT, ROOT_KEYS, "the document")?;
    let applicant = object(&root, "applicant", ObjType::Map)?;
    let events = object(&root, "events", ObjType::List)?;
    let ratings = object(&root, "ratings", ObjType::List)?;
    if let Some(applicant) = &applicant {
        keys_of(doc, applicant, APPLICANT_KEYS, "the applicant")?;
    }
    let event_items = match &events {
        Some(list) => items(doc, list, "events")?,
        None => Vec::new(),
    };
    for item in &event_items {
        check_event_item(doc, item)?;
    }
    let rating_items = match &ratings {
        Some(list) => items(doc, list, "ratings")?,
        None => Vec::new(),
    };
    for item in &rating_items {
        check_rating_item(doc, item)?;
    }
    let Some(heads) = before else { return Ok(()) };
    for (key, now) in [("applicant", &applicant), ("events", &events), ("ratings", &ratings)] {
        let then = match doc.get_at(ROOT, key, heads) {
            Ok(Some((_, id))) => Some(id),
            _ => None,
        };
        if then.is_some() && then.as_ref() != now.as_ref() {
            return Err(StructureError::Replaced(key));
        }
        if let (Some(then), "events" | "ratings") = (then, key) {
            let old: Vec<ObjId> = doc.list_range_at(&then, .., heads).map(|i| i.id()).collect();
            let now_items = if key == "events" { &event_items } else { &rating_items };
            if !is_subsequence(&old, now_items) {
                return Err(StructureError::ListRewritten(if key == "events" { "events" } else { "ratings" }));
            }
        }
    }
    Ok(())
}

/// [`check`] without `before`, on the document as `request::hydrate`
/// made it: the same rules, the same errors, without a second walk over
/// the op set (a new request pushed whole is read anyway; checking it
/// from Automerge again was a tenth of the server's initial sync, issue
/// 17). `hydrate` keeps what `check` looks at: every key with its
/// winning value and whether others compete, every list item likewise,
/// objects by kind. Only identity (an object replaced by a look-alike)
/// is not in the tree, which is why a stored document's push takes
/// [`check`] with `before`.
pub fn check_tree(root: &HMap) -> Result<(), StructureError> {
    let root = tree_keys(root, ROOT_KEYS, "the document")?;
    let applicant = tree_object(&root, "applicant", Kind::Map)?;
    let events = tree_object(&root, "events", Kind::List)?;
    let ratings = tree_object(&root, "ratings", Kind::List)?;
    if let Some(HValue::Map(applicant)) = applicant {
        tree_keys(applicant, APPLICANT_KEYS, "the applicant")?;
    }
    let event_items = match events {
        Some(HValue::List(list)) => tree_items(list, "events")?,
        _ => Vec::new(),
    };
    for item in event_items {
        let keys = tree_keys(item, EVENT_KEYS, "an event")?;
        if let Some(HValue::List(parents)) = tree_object(&keys, "parents", Kind::List)? {
            tree_scalars(parents, ("parents", PARENTS_MAX), "a parent")?;
        }
        if let Some(HValue::List(waiting)) = tree_object(&keys, "waiting", Kind::List)? {
            tree_scalars(waiting, ("waiting", WAITING_MAX), "a waiting agency")?;
        }
    }
    let rating_items = match ratings {
        Some(HValue::List(list)) => tree_items(list, "ratings")?,
        _ => Vec::new(),
    };
    for item in rating_items {
        let keys = tree_keys(item, RATING_KEYS, "a rating")?;
        if let Some(HValue::Map(scores)) = tree_object(&keys, "scores", Kind::Map)? {
            tree_keys(scores, SCORE_KEYS, "the scores")?;
        }
        if let Some(HValue::Map(profile)) = tree_object(&keys, "profile", Kind::Map)? {
            let keys = tree_keys(profile, PROFILE_KEYS, "the profile")?;
            for (key, value) in keys {
                let Ok(dimension) = key.parse::<crate::respondent::Dimension>() else {
                    return Err(StructureError::UnknownKey("the profile"));
                };
                let known = match value {
                    HValue::Scalar(automerge::ScalarValue::Str(code)) => dimension.position(code).is_ok(),
                    _ => false,
                };
                if !known {
                    return Err(StructureError::Text("profile"));
                }
            }
        }
    }
    Ok(())
}

type HMap = automerge::hydrate::Map;
type HValue = automerge::hydrate::Value;

/// The kinds of object the layout has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    List,
}

/// [`keys_of`] on a tree: the keys in the order Automerge keeps them (by
/// key), so the first fault found is the one `check` finds.
fn tree_keys<'v>(
    obj: &'v HMap,
    known: &[&'static str],
    what: &'static str,
) -> Result<Vec<(&'static str, &'v HValue)>, StructureError> {
    let mut entries: Vec<_> = obj.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut keys = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Some(known_key) = known.iter().find(|k| **k == key.as_str()) else {
            return Err(StructureError::UnknownKey(what));
        };
        if value.conflict {
            return Err(StructureError::Conflict((*known_key).to_owned(), what));
        }
        keys.push((*known_key, &value.value));
    }
    Ok(keys)
}

/// [`object`] on a tree.
fn tree_object<'v>(
    keys: &[(&'static str, &'v HValue)],
    key: &'static str,
    kind: Kind,
) -> Result<Option<&'v HValue>, StructureError> {
    match keys.iter().find(|(k, _)| *k == key) {
        None => Ok(None),
        Some((_, v @ HValue::Map(_))) if kind == Kind::Map => Ok(Some(v)),
        Some((_, v @ HValue::List(_))) if kind == Kind::List => Ok(Some(v)),
        Some(_) => Err(StructureError::WrongType(key)),
    }
}

/// [`items`] on a tree.
fn tree_items<'v>(list: &'v automerge::hydrate::List, what: &'static str) -> Result<Vec<&'v HMap>, StructureError> {
    if list.len() > LIST_ITEMS_MAX {
        return Err(StructureError::TooMany(what, LIST_ITEMS_MAX));
    }
    list.iter()
        .map(|item| match &item.value {
            HValue::Map(m) if !item.conflict => Ok(m),
            _ => Err(StructureError::WrongType(what)),
        })
        .collect()
}

/// [`scalars`] on a tree.
fn tree_scalars(
    list: &automerge::hydrate::List,
    (many, max): (&'static str, usize),
    one: &'static str,
) -> Result<(), StructureError> {
    if list.len() > max {
        return Err(StructureError::TooMany(many, max));
    }
    if list.iter().any(|item| item.conflict || !matches!(item.value, HValue::Scalar(_))) {
        return Err(StructureError::WrongType(one));
    }
    Ok(())
}

/// One event object: known keys, one value each; its `parents` and
/// `waiting` lists bounded, of plain values.
fn check_event_item(doc: &AutoCommit, item: &ObjId) -> Result<(), StructureError> {
    let keys = keys_of(doc, item, EVENT_KEYS, "an event")?;
    if let Some(parents) = object(&keys, "parents", ObjType::List)? {
        scalars(doc, &parents, ("parents", PARENTS_MAX), "a parent")?;
    }
    if let Some(waiting) = object(&keys, "waiting", ObjType::List)? {
        scalars(doc, &waiting, ("waiting", WAITING_MAX), "a waiting agency")?;
    }
    Ok(())
}

/// A list of at most `max` plain values, one each (`many` names the list
/// and `one` an item in the error).
fn scalars(
    doc: &AutoCommit,
    list: &ObjId,
    (many, max): (&'static str, usize),
    one: &'static str,
) -> Result<(), StructureError> {
    if doc.length(list) > max {
        return Err(StructureError::TooMany(many, max));
    }
    for item in doc.list_range(list, ..) {
        if item.conflict || !matches!(item.value, ValueRef::Scalar(_)) {
            return Err(StructureError::WrongType(one));
        }
    }
    Ok(())
}

/// One rating object: known keys, one value each; its scores and profile
/// likewise.
fn check_rating_item(doc: &AutoCommit, item: &ObjId) -> Result<(), StructureError> {
    let keys = keys_of(doc, item, RATING_KEYS, "a rating")?;
    if let Some(scores) = object(&keys, "scores", ObjType::Map)? {
        keys_of(doc, &scores, SCORE_KEYS, "the scores")?;
    }
    if let Some(profile) = object(&keys, "profile", ObjType::Map)? {
        check_profile(doc, &profile)?;
    }
    Ok(())
}

/// The events and ratings a push appended, each by the `id` it holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Appended {
    pub events: HashSet<String>,
    pub ratings: HashSet<String>,
}

/// An object or operation named by its Automerge op id.
type OpKey = (u64, ActorId);

fn op_key(id: &ObjId) -> Option<OpKey> {
    match id {
        ObjId::Root => None,
        ObjId::Id(counter, actor, _) => Some((*counter, actor.clone())),
    }
}

/// [`check`] with `before` for the push every kiosk sends, at a fraction
/// of its cost: when `changes` (every change the document took since
/// `before`, decoded) only insert new maps into `events` or `ratings` and
/// write inside objects they themselves made, nothing that existed before
/// can have changed, been replaced, removed or reordered, so only the new
/// items need checking. Returns them by id, checked as `check` checks
/// every item (and failing as it would).
///
/// `Ok(None)`: the changes do something else (a root key, an item that
/// existed, a delete, an operation naming an older one as its
/// predecessor): run [`check`] with `before` and compare with the document
/// as it was, which says what is wrong. Never refuses what `check` would
/// let through, never lets through what it would refuse.
pub fn appended(doc: &AutoCommit, changes: &[ExpandedChange]) -> Result<Option<Appended>, StructureError> {
    let mut new_ops: HashSet<OpKey> = HashSet::new();
    let mut made: HashSet<OpKey> = HashSet::new();
    for change in changes {
        let start = change.start_op.get();
        for (i, op) in change.operations.iter().enumerate() {
            let id = (start + i as u64, change.actor_id.clone());
            if matches!(op.action, OpType::Make(_)) {
                made.insert(id.clone());
            }
            new_ops.insert(id);
        }
    }
    let root = keys_of(doc, &ROOT, ROOT_KEYS, "the document")?;
    let (Some(events), Some(ratings)) =
        (object(&root, "events", ObjType::List)?, object(&root, "ratings", ObjType::List)?)
    else {
        return Ok(None);
    };
    let lists = [op_key(&events), op_key(&ratings)];
    for op in changes.iter().flat_map(|c| &c.operations) {
        let ObjectId::Id(OpId(counter, actor)) = &op.obj else { return Ok(None) };
        let obj = (*counter, actor.clone());
        // An operation that names an older one as its predecessor
        // overwrites or deletes something that was there.
        if op.pred.iter().any(|OpId(c, a)| !new_ops.contains(&(*c, a.clone()))) {
            return Ok(None);
        }
        let appends_item = op.insert && op.action == OpType::Make(ObjType::Map) && op.pred.is_empty();
        if !(made.contains(&obj) || (appends_item && lists.iter().any(|l| l.as_ref() == Some(&obj)))) {
            return Ok(None);
        }
    }
    let mut out = Appended::default();
    for (list, what, ids) in [(&events, "events", &mut out.events), (&ratings, "ratings", &mut out.ratings)] {
        for item in items(doc, list, what)? {
            if !op_key(&item).is_some_and(|k| made.contains(&k)) {
                continue;
            }
            if what == "events" {
                check_event_item(doc, &item)?;
            } else {
                check_rating_item(doc, &item)?;
            }
            match doc.get(&item, "id") {
                Ok(Some((automerge::Value::Scalar(v), _))) => match v.as_ref() {
                    automerge::ScalarValue::Str(id) => {
                        ids.insert(id.to_string());
                    }
                    _ => return Ok(None),
                },
                _ => return Ok(None),
            }
        }
    }
    Ok(Some(out))
}

/// A rating's respondent profile: known questions only, one value each,
/// and that value a text naming one of the question's answers.
fn check_profile(doc: &AutoCommit, profile: &ObjId) -> Result<(), StructureError> {
    keys_of(doc, profile, PROFILE_KEYS, "the profile")?;
    for item in doc.map_range(profile, ..) {
        let Ok(dimension) = item.key.as_ref().parse::<crate::respondent::Dimension>() else {
            return Err(StructureError::UnknownKey("the profile"));
        };
        let known = match &item.value {
            ValueRef::Scalar(automerge::ScalarValueRef::Str(code)) => dimension.position(code).is_ok(),
            _ => false,
        };
        if !known {
            return Err(StructureError::Text("profile"));
        }
    }
    Ok(())
}

/// The keys of a map with one value each, all of them known; returns them
/// with the objects they hold, for nested lookups.
fn keys_of(doc: &AutoCommit, obj: &ObjId, known: &[&'static str], what: &'static str) -> Result<Keyed, StructureError> {
    let mut keys = Vec::new();
    for item in doc.map_range(obj, ..) {
        let key = item.key.as_ref();
        let Some(known_key) = known.iter().find(|k| **k == key) else {
            return Err(StructureError::UnknownKey(what));
        };
        if item.conflict {
            return Err(StructureError::Conflict((*known_key).to_owned(), what));
        }
        let object = match item.value {
            ValueRef::Object(ty) => Some((ty, item.id())),
            _ => None,
        };
        keys.push((*known_key, object));
    }
    Ok(Keyed { keys })
}

struct Keyed {
    keys: Vec<(&'static str, Option<(ObjType, ObjId)>)>,
}

/// The object under `key`, of type `ty`, if the key is there at all. A
/// table (Automerge's older keyed map) is a map here, as it is to every
/// reader (`hydrate` makes both the same) and to [`check_tree`].
fn object(keyed: &Keyed, key: &'static str, ty: ObjType) -> Result<Option<ObjId>, StructureError> {
    match keyed.keys.iter().find(|(k, _)| *k == key) {
        None => Ok(None),
        Some((_, Some((t, id)))) if as_read(*t) == ty => Ok(Some(id.clone())),
        Some(_) => Err(StructureError::WrongType(key)),
    }
}

/// An object's type as a reader sees it: a table is a map.
fn as_read(ty: ObjType) -> ObjType {
    match ty {
        ObjType::Table => ObjType::Map,
        other => other,
    }
}

/// The map items of a list, each holding one value.
fn items(doc: &AutoCommit, list: &ObjId, what: &'static str) -> Result<Vec<ObjId>, StructureError> {
    if doc.length(list) > LIST_ITEMS_MAX {
        return Err(StructureError::TooMany(what, LIST_ITEMS_MAX));
    }
    doc.list_range(list, ..)
        .map(|item| match item.value {
            ValueRef::Object(ObjType::Map | ObjType::Table) if !item.conflict => Ok(item.id()),
            _ => Err(StructureError::WrongType(what)),
        })
        .collect()
}

fn is_subsequence(old: &[ObjId], now: &[ObjId]) -> bool {
    let mut rest = now.iter();
    old.iter().all(|o| rest.any(|n| n == o))
}

/// Bounds every string of an event a writer supplies.
pub fn check_event(e: &Event) -> Result<(), StructureError> {
    token(&e.id, ID_MAX_CHARS, "event id")?;
    hex(&e.node, NODE_MAX_CHARS, "node")?;
    let by_ok = !e.by.is_empty()
        && e.by.chars().count() <= BY_MAX_CHARS
        && e.by.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':'));
    if !by_ok {
        return Err(StructureError::Text("by"));
    }
    if let Some(agency) = &e.agency
        && agency.parse::<crate::ids::Code>().is_err()
    {
        return Err(StructureError::Text("agency"));
    }
    if let Some(note) = &e.note {
        free_text(note, NOTE_MAX_CHARS, "note")?;
    }
    if e.waiting.len() > WAITING_MAX {
        return Err(StructureError::TooMany("waiting", WAITING_MAX));
    }
    if e.waiting.iter().any(|a| a.parse::<crate::ids::Code>().is_err()) {
        return Err(StructureError::Text("waiting"));
    }
    if e.result_ref.as_deref().is_some_and(|r| !is_valid_result_ref(r)) {
        return Err(StructureError::Text("result_ref"));
    }
    if let Some(seal) = &e.seal {
        hex(seal, SEAL_MAX_CHARS, "seal")?;
    }
    if e.parents.len() > PARENTS_MAX {
        return Err(StructureError::TooMany("parents", PARENTS_MAX));
    }
    for p in &e.parents {
        token(p, ID_MAX_CHARS, "parents")?;
    }
    Ok(())
}

/// Bounds every string of a rating a writer supplies.
pub fn check_rating(r: &Rating) -> Result<(), StructureError> {
    token(&r.id, ID_MAX_CHARS, "rating id")?;
    hex(&r.node, NODE_MAX_CHARS, "node")?;
    if let Some(c) = &r.comment {
        free_text(c, COMMENT_MAX_CHARS, "comment")?;
    }
    Ok(())
}

const COMPLAINT_ROOT_KEYS: &[&str] = &[
    "type",
    "schema",
    "id",
    "ticket",
    "kelurahan",
    "kiosk",
    "created_at",
    "hlc",
    "about",
    "complainant",
    "text",
    "steps",
];
const ABOUT_KEYS: &[&str] = &["kind", "ticket", "service", "staff"];
const COMPLAINANT_KEYS: &[&str] = &["name", "nik", "phone"];
const STEP_KEYS: &[&str] =
    &["id", "hlc", "node", "at", "by", "kind", "class", "unit", "days", "lapor", "text", "seal", "parents"];

/// Checks the objects of a complaint document (`complaint.rs` documents
/// the layout), as [`check`] does for a request: known keys only, one
/// value each, the steps a list of maps; with `before`, the `about`,
/// `complainant` and `steps` objects keep their identity and the steps
/// theirs and their order, so no writer can hide a step another wrote.
pub fn check_complaint(doc: &AutoCommit, before: Option<&[ChangeHash]>) -> Result<(), StructureError> {
    let root = keys_of(doc, &ROOT, COMPLAINT_ROOT_KEYS, "the document")?;
    let about = object(&root, "about", ObjType::Map)?;
    let complainant = object(&root, "complainant", ObjType::Map)?;
    let steps = object(&root, "steps", ObjType::List)?;
    if let Some(about) = &about {
        keys_of(doc, about, ABOUT_KEYS, "about")?;
    }
    if let Some(c) = &complainant {
        keys_of(doc, c, COMPLAINANT_KEYS, "the complainant")?;
    }
    let step_items = match &steps {
        Some(list) => items(doc, list, "steps")?,
        None => Vec::new(),
    };
    for item in &step_items {
        let keys = keys_of(doc, item, STEP_KEYS, "a step")?;
        if let Some(parents) = object(&keys, "parents", ObjType::List)? {
            scalars(doc, &parents, ("parents", PARENTS_MAX), "a parent")?;
        }
    }
    let Some(heads) = before else { return Ok(()) };
    for (key, now) in [("about", &about), ("complainant", &complainant), ("steps", &steps)] {
        let then = match doc.get_at(ROOT, key, heads) {
            Ok(Some((_, id))) => Some(id),
            _ => None,
        };
        if then.as_ref() != now.as_ref() {
            return Err(StructureError::Replaced(key));
        }
        if let (Some(then), "steps") = (then, key) {
            let old: Vec<ObjId> = doc.list_range_at(&then, .., heads).map(|i| i.id()).collect();
            if !is_subsequence(&old, &step_items) {
                return Err(StructureError::ListRewritten("steps"));
            }
        }
    }
    Ok(())
}

/// Bounds every string of a complaint step a writer supplies (the text,
/// class, unit, days and LAPOR! number are `complaint::read`'s).
pub fn check_complaint_step(s: &crate::complaint::Step) -> Result<(), StructureError> {
    token(&s.id, ID_MAX_CHARS, "step id")?;
    hex(&s.node, NODE_MAX_CHARS, "node")?;
    let by_ok = !s.by.is_empty()
        && s.by.chars().count() <= BY_MAX_CHARS
        && s.by.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':'));
    if !by_ok {
        return Err(StructureError::Text("by"));
    }
    if let Some(text) = &s.text {
        free_text(text, crate::complaint::TEXT_MAX_CHARS, "text")?;
    }
    if let Some(seal) = &s.seal {
        hex(seal, SEAL_MAX_CHARS, "seal")?;
    }
    if s.parents.len() > PARENTS_MAX {
        return Err(StructureError::TooMany("parents", PARENTS_MAX));
    }
    for p in &s.parents {
        token(p, ID_MAX_CHARS, "parents")?;
    }
    Ok(())
}

fn token(s: &str, max: usize, field: &'static str) -> Result<(), StructureError> {
    let ok = !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(StructureError::Text(field)) }
}

fn hex(s: &str, max: usize, field: &'static str) -> Result<(), StructureError> {
    let ok = !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok { Ok(()) } else { Err(StructureError::Text(field)) }
}

/// Free text as people type it: bounded, no control characters but line
/// breaks and tabs, no bidirectional overrides that would disguise it.
fn free_text(s: &str, max_chars: usize, field: &'static str) -> Result<(), StructureError> {
    let bad = |c: char| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if s.chars().count() > max_chars || s.chars().any(bad) {
        return Err(StructureError::Text(field));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
    use proptest::prelude::*;

    use super::*;

    fn doc() -> AutoCommit {
        let mut d = AutoCommit::new();
        d.put(ROOT, "type", "request").unwrap();
        d.put(ROOT, "ticket", "K001-1128-001").unwrap();
        let a = d.put_object(ROOT, "applicant", ObjType::Map).unwrap();
        d.put(&a, "name", "Budi").unwrap();
        let events = d.put_object(ROOT, "events", ObjType::List).unwrap();
        d.put_object(ROOT, "ratings", ObjType::List).unwrap();
        let e = d.insert_object(&events, 0, ObjType::Map).unwrap();
        d.put(&e, "id", "e1").unwrap();
        let p = d.put_object(&e, "parents", ObjType::List).unwrap();
        d.insert(&p, 0, "e0").unwrap();
        d.commit();
        d
    }

    fn events(d: &AutoCommit) -> ObjId {
        d.get(ROOT, "events").unwrap().unwrap().1
    }

    #[test]
    fn a_well_formed_document_passes_and_appends_are_fine() {
        let mut d = doc();
        check(&d, None).unwrap();
        let heads = d.get_heads();
        let list = events(&d);
        let e = d.insert_object(&list, 1, ObjType::Map).unwrap();
        d.put(&e, "id", "e2").unwrap();
        d.commit();
        check(&d, Some(&heads)).unwrap();
    }

    #[test]
    fn a_replaced_event_list_is_refused_though_it_reads_the_same() {
        let mut d = doc();
        let heads = d.get_heads();
        let list = d.put_object(ROOT, "events", ObjType::List).unwrap();
        let e = d.insert_object(&list, 0, ObjType::Map).unwrap();
        d.put(&e, "id", "e1").unwrap();
        d.commit();
        assert_eq!(check(&d, Some(&heads)), Err(StructureError::Replaced("events")));
    }

    #[test]
    fn removed_and_moved_items_are_refused() {
        let mut d = doc();
        let list = events(&d);
        let e = d.insert_object(&list, 1, ObjType::Map).unwrap();
        d.put(&e, "id", "e2").unwrap();
        d.commit();
        let heads = d.get_heads();
        d.delete(&list, 0).unwrap();
        d.commit();
        assert_eq!(check(&d, Some(&heads)), Err(StructureError::ListRewritten("events")));
    }

    #[test]
    fn concurrent_header_values_and_unknown_keys_are_refused() {
        let mut base = doc();
        let mut a = base.fork();
        let mut b = base.fork();
        a.put(ROOT, "ticket", "K001-1128-002").unwrap();
        b.put(ROOT, "ticket", "K001-1128-003").unwrap();
        a.commit();
        b.commit();
        a.merge(&mut b).unwrap();
        assert!(matches!(check(&a, None), Err(StructureError::Conflict(k, _)) if k == "ticket"));
        let mut c = doc();
        c.put(ROOT, "status", "completed").unwrap();
        c.commit();
        assert_eq!(check(&c, None), Err(StructureError::UnknownKey("the document")));
        let mut s = doc();
        s.put(ROOT, "events", "not a list").unwrap();
        s.commit();
        assert_eq!(check(&s, None), Err(StructureError::WrongType("events")));
    }

    #[test]
    fn strings_are_bounded() {
        use crate::hlc::Hlc;
        use crate::workflow::{EventKind, Status};
        let ok = Event {
            id: "0193a1b2-0000-7000-8000-000000000001".into(),
            hlc: Hlc { wall_ms: 1, counter: 0 },
            node: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
            at_ms: 1,
            by: "198503122010011002".into(),
            kind: EventKind::Transition,
            from: Some(Status::Submitted),
            to: Status::HandedOff,
            note: Some("berkas lengkap\nlanjut".into()),
            agency: Some("DISDUKCAPIL".into()),
            waiting: Vec::new(),
            result_ref: None,
            parents: vec!["0193a1b2-0000-7000-8000-000000000000".into()],
            seal: None,
        };
        check_event(&ok).unwrap();
        type Mutation = Box<dyn Fn(&mut Event)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("agency", Box::new(|e| e.agency = Some("=HYPERLINK(\"http://x\")".into()))),
            ("by", Box::new(|e| e.by = "<script>".into())),
            ("note", Box::new(|e| e.note = Some("a\u{0}b".into()))),
            ("note", Box::new(|e| e.note = Some("x".repeat(NOTE_MAX_CHARS + 1)))),
            ("note", Box::new(|e| e.note = Some("\u{202e}gnp.exe".into()))),
            ("event id", Box::new(|e| e.id = "a b".into())),
            ("node", Box::new(|e| e.node = "XYZ".into())),
            ("parents", Box::new(|e| e.parents = vec!["'; DROP".into()])),
        ];
        for (field, mutate) in cases {
            let mut e = ok.clone();
            mutate(&mut e);
            assert_eq!(check_event(&e), Err(StructureError::Text(field)), "{field}");
        }
    }

    /// A rating with a profile map holding `edit`'s keys.
    fn rated(edit: impl Fn(&mut AutoCommit, &ObjId)) -> AutoCommit {
        let mut d = doc();
        let (_, ratings) = d.get(ROOT, "ratings").unwrap().unwrap();
        let r = d.insert_object(&ratings, 0, ObjType::Map).unwrap();
        d.put(&r, "id", "r1").unwrap();
        let scores = d.put_object(&r, "scores", ObjType::Map).unwrap();
        d.put(&scores, "U1", 4).unwrap();
        let profile = d.put_object(&r, "profile", ObjType::Map).unwrap();
        edit(&mut d, &profile);
        d.commit();
        d
    }

    /// Issue 14, item 7: the profile's four questions with their codes
    /// pass; any other key, any other value, a value of another type or
    /// two concurrent values are refused.
    #[test]
    fn a_profile_holds_the_four_questions_with_known_answers_only() {
        let ok = rated(|d, p| {
            d.put(p, "age", "gt50").unwrap();
            d.put(p, "sex", "l").unwrap();
            d.put(p, "education", "d1-d3").unwrap();
            d.put(p, "occupation", "pns-tni-polri").unwrap();
        });
        check(&ok, None).unwrap();
        check(&rated(|_, _| {}), None).unwrap();
        type Forge = Box<dyn Fn(&mut AutoCommit, &ObjId)>;
        let cases: Vec<(Forge, StructureError)> = vec![
            (Box::new(|d, p| d.put(p, "nik", "1271014101900003").unwrap()), StructureError::UnknownKey("the profile")),
            (Box::new(|d, p| d.put(p, "sex", "x").unwrap()), StructureError::Text("profile")),
            (Box::new(|d, p| d.put(p, "sex", "L").unwrap()), StructureError::Text("profile")),
            (Box::new(|d, p| d.put(p, "age", 25).unwrap()), StructureError::Text("profile")),
            (
                Box::new(|d, p| drop(d.put_object(p, "education", ObjType::Map).unwrap())),
                StructureError::Text("profile"),
            ),
            (Box::new(|d, p| drop(d.put_object(p, "age", ObjType::Text).unwrap())), StructureError::Text("profile")),
        ];
        for (i, (forge, want)) in cases.into_iter().enumerate() {
            assert_eq!(check(&rated(forge), None), Err(want), "case {i}");
        }
        // The profile as a list.
        let mut d = doc();
        let (_, ratings) = d.get(ROOT, "ratings").unwrap().unwrap();
        let r = d.insert_object(&ratings, 0, ObjType::Map).unwrap();
        d.put_object(&r, "profile", ObjType::List).unwrap();
        d.commit();
        assert_eq!(check(&d, None), Err(StructureError::WrongType("profile")));
        // Two writers answering the same question differently.
        let mut base = rated(|_, _| {});
        let (mut a, mut b) = (base.fork(), base.fork());
        for (d, code) in [(&mut a, "l"), (&mut b, "p")] {
            let (_, ratings) = d.get(ROOT, "ratings").unwrap().unwrap();
            let (_, r) = d.get(&ratings, 0).unwrap().unwrap();
            let (_, p) = d.get(&r, "profile").unwrap().unwrap();
            d.put(&p, "sex", code).unwrap();
            d.commit();
        }
        a.merge(&mut b).unwrap();
        assert!(matches!(check(&a, None), Err(StructureError::Conflict(k, "the profile")) if k == "sex"));
    }

    /// The changes `d` took since `heads`, decoded, as the server decodes
    /// a push.
    fn pushed(d: &mut AutoCommit, heads: &[ChangeHash]) -> Vec<ExpandedChange> {
        d.get_changes(heads).iter().map(|c| c.decode()).collect()
    }

    /// Each way a writer may edit a stored request, and what `appended`
    /// must say of it: `Some` only where `check` with `before` passes and
    /// nothing that was there changed; the same error where `check` finds
    /// a malformed new item.
    #[test]
    fn appended_takes_appends_only_and_agrees_with_check() {
        type Edit = fn(&mut AutoCommit);
        fn ratings(d: &AutoCommit) -> ObjId {
            d.get(ROOT, "ratings").unwrap().unwrap().1
        }
        /// The events and ratings appended, by id, or the error.
        type Want = Result<Option<(Vec<&'static str>, Vec<&'static str>)>, StructureError>;
        let cases: Vec<(&str, Edit, Want)> = vec![
            (
                "an event appended",
                |d| {
                    let e = d.insert_object(events(d), 1, ObjType::Map).unwrap();
                    d.put(&e, "id", "e2").unwrap();
                    let p = d.put_object(&e, "parents", ObjType::List).unwrap();
                    d.insert(&p, 0, "e1").unwrap();
                },
                Ok(Some((vec!["e2"], vec![]))),
            ),
            (
                "a rating appended, with scores",
                |d| {
                    let r = d.insert_object(ratings(d), 0, ObjType::Map).unwrap();
                    d.put(&r, "id", "r1").unwrap();
                    let s = d.put_object(&r, "scores", ObjType::Map).unwrap();
                    d.put(&s, "U1", 4).unwrap();
                },
                Ok(Some((vec![], vec!["r1"]))),
            ),
            (
                "an event inserted before the old one",
                |d| {
                    let e = d.insert_object(events(d), 0, ObjType::Map).unwrap();
                    d.put(&e, "id", "e0").unwrap();
                },
                Ok(Some((vec!["e0"], vec![]))),
            ),
            ("a header field rewritten", |d| d.put(ROOT, "ticket", "K001-1128-999").unwrap(), Ok(None)),
            (
                "the applicant rewritten",
                |d| {
                    let a = d.get(ROOT, "applicant").unwrap().unwrap().1;
                    d.put(&a, "name", "Orang Lain").unwrap();
                },
                Ok(None),
            ),
            (
                "an old event rewritten",
                |d| {
                    let e = d.get(events(d), 0).unwrap().unwrap().1;
                    d.put(&e, "id", "e9").unwrap();
                },
                Ok(None),
            ),
            (
                "an old event's parents edited",
                |d| {
                    let e = d.get(events(d), 0).unwrap().unwrap().1;
                    let p = d.get(&e, "parents").unwrap().unwrap().1;
                    d.insert(&p, 1, "e7").unwrap();
                },
                Ok(None),
            ),
            ("an old event removed", |d| d.delete(events(d), 0).unwrap(), Ok(None)),
            (
                "the event list replaced",
                |d| {
                    let l = d.put_object(ROOT, "events", ObjType::List).unwrap();
                    let e = d.insert_object(&l, 0, ObjType::Map).unwrap();
                    d.put(&e, "id", "e1").unwrap();
                },
                Ok(None),
            ),
            ("a plain value in the event list", |d| d.insert(events(d), 1, "e2").unwrap(), Ok(None)),
            (
                "a new event with a key the layout lacks",
                |d| {
                    let e = d.insert_object(events(d), 1, ObjType::Map).unwrap();
                    d.put(&e, "id", "e2").unwrap();
                    d.put(&e, "status", "completed").unwrap();
                },
                Err(StructureError::UnknownKey("an event")),
            ),
            (
                "a new event with an object for a parent",
                |d| {
                    let e = d.insert_object(events(d), 1, ObjType::Map).unwrap();
                    d.put(&e, "id", "e2").unwrap();
                    let p = d.put_object(&e, "parents", ObjType::List).unwrap();
                    d.insert_object(&p, 0, ObjType::Map).unwrap();
                },
                Err(StructureError::WrongType("a parent")),
            ),
            (
                "a new event without an id",
                |d| {
                    let e = d.insert_object(events(d), 1, ObjType::Map).unwrap();
                    d.put(&e, "by", "citizen").unwrap();
                },
                Ok(None),
            ),
        ];
        for (name, edit, want) in cases {
            let mut d = doc();
            let heads = d.get_heads();
            edit(&mut d);
            d.commit();
            let changes = pushed(&mut d, &heads);
            let got = appended(&d, &changes);
            let want = want.map(|o| {
                o.map(|(e, r)| Appended {
                    events: e.into_iter().map(str::to_owned).collect(),
                    ratings: r.into_iter().map(str::to_owned).collect(),
                })
            });
            assert_eq!(got, want, "{name}");
            match &got {
                Ok(Some(_)) => assert_eq!(check(&d, Some(&heads)), Ok(()), "{name}: check disagrees"),
                Err(e) => assert_eq!(check(&d, Some(&heads)).as_ref(), Err(e), "{name}: check disagrees"),
                Ok(None) => {}
            }
        }
    }

    /// Two appends from different writers, pushed together: each writer's
    /// objects count as made by the push.
    #[test]
    fn appended_covers_several_writers_changes() {
        let mut base = doc();
        let heads = base.get_heads();
        let mut a = base.fork();
        let mut b = base.fork();
        let e = a.insert_object(events(&a), 1, ObjType::Map).unwrap();
        a.put(&e, "id", "ea").unwrap();
        a.commit();
        let e = b.insert_object(events(&b), 1, ObjType::Map).unwrap();
        b.put(&e, "id", "eb").unwrap();
        b.commit();
        a.merge(&mut b).unwrap();
        let changes = pushed(&mut a, &heads);
        let got = appended(&a, &changes).unwrap().unwrap();
        assert_eq!(got.events, ["ea", "eb"].into_iter().map(str::to_owned).collect());
    }

    /// A value as the generator below writes it into a document.
    #[derive(Debug, Clone)]
    enum Node {
        Str(&'static str),
        Int(i64),
        Map(Vec<(&'static str, Node)>),
        Table(Vec<(&'static str, Node)>),
        List(Vec<Node>),
        Text,
    }

    /// Keys of every object of the layout, and one of none.
    const KEYS: &[&str] = &[
        "type",
        "id",
        "ticket",
        "applicant",
        "events",
        "ratings",
        "name",
        "nik",
        "parents",
        "waiting",
        "scores",
        "profile",
        "U1",
        "U9",
        "age",
        "sex",
        "education",
        "hlc",
        "to",
        "note",
        "comment",
        "bogus",
    ];
    /// Texts, some of them answers a profile takes.
    const TEXTS: &[&str] = &["sma", "L", "P", "x", "", "request"];

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![
            4 => proptest::sample::select(TEXTS).prop_map(Node::Str),
            2 => any::<i64>().prop_map(Node::Int),
            1 => Just(Node::Text),
        ];
        leaf.prop_recursive(2, 12, 3, |inner| {
            let entries = proptest::collection::vec((proptest::sample::select(KEYS), inner.clone()), 0..3);
            prop_oneof![
                3 => entries.clone().prop_map(Node::Map),
                1 => entries.prop_map(Node::Table),
                2 => proptest::collection::vec(inner, 0..3).prop_map(Node::List),
            ]
        })
    }

    /// One writer's edit: at the `n`th object of the document (counted
    /// as `objects` lists them), a key put, or an item put or inserted.
    type Edit = (usize, &'static str, Node, bool);

    fn edits(most: usize) -> impl Strategy<Value = Vec<Edit>> {
        proptest::collection::vec((any::<usize>(), proptest::sample::select(KEYS), node(), any::<bool>()), 0..most)
    }

    /// Every object of `d` and its type, root first.
    fn objects(d: &AutoCommit) -> Vec<(ObjId, ObjType)> {
        let mut out = vec![(ROOT, ObjType::Map)];
        let mut at = 0;
        while at < out.len() {
            let (obj, ty) = out[at].clone();
            let children: Vec<(ObjId, ObjType)> = match ty {
                ObjType::Map | ObjType::Table => d
                    .map_range(&obj, ..)
                    .filter_map(|i| match i.value {
                        ValueRef::Object(t) => Some((i.id(), t)),
                        _ => None,
                    })
                    .collect(),
                ObjType::List => d
                    .list_range(&obj, ..)
                    .filter_map(|i| match i.value {
                        ValueRef::Object(t) => Some((i.id(), t)),
                        _ => None,
                    })
                    .collect(),
                ObjType::Text => Vec::new(),
            };
            out.extend(children);
            at += 1;
        }
        out
    }

    fn apply(d: &mut AutoCommit, edits: &[Edit]) {
        for (n, key, node, insert_item) in edits {
            let objs = objects(d);
            let (obj, ty) = objs[n % objs.len()].clone();
            match ty {
                ObjType::Map | ObjType::Table => put(d, &obj, key, node),
                ObjType::List if *insert_item || d.length(&obj) == 0 => insert(d, &obj, 0, node),
                ObjType::List => match node {
                    Node::Str(s) => {
                        d.put(&obj, 0, *s).ok();
                    }
                    Node::Int(i) => {
                        d.put(&obj, 0, *i).ok();
                    }
                    _ => {
                        d.put_object(&obj, 0, ObjType::Map).ok();
                    }
                },
                ObjType::Text => {}
            }
        }
        d.commit();
    }

    /// Where a generated value goes: under a key of a map, or inserted
    /// into a list.
    #[derive(Clone, Copy)]
    enum At<'k> {
        Key(&'k str),
        Item(usize),
    }

    fn put(d: &mut AutoCommit, obj: &ObjId, key: &str, n: &Node) {
        write(d, obj, At::Key(key), n);
    }

    fn insert(d: &mut AutoCommit, list: &ObjId, at: usize, n: &Node) {
        write(d, list, At::Item(at), n);
    }

    /// Writes `n` at `at` of `obj`. automerge 0.12 refuses some writes
    /// (into a table, for one): those are left out of the document.
    fn write(d: &mut AutoCommit, obj: &ObjId, at: At<'_>, n: &Node) {
        let scalar = |d: &mut AutoCommit, v: automerge::ScalarValue| match at {
            At::Key(k) => d.put(obj, k, v).is_ok(),
            At::Item(i) => d.insert(obj, i, v).is_ok(),
        };
        let object = |d: &mut AutoCommit, ty: ObjType| match at {
            At::Key(k) => d.put_object(obj, k, ty).ok(),
            At::Item(i) => d.insert_object(obj, i, ty).ok(),
        };
        match n {
            Node::Str(s) => {
                scalar(d, (*s).into());
            }
            Node::Int(i) => {
                scalar(d, (*i).into());
            }
            Node::Text => {
                if let Some(t) = object(d, ObjType::Text) {
                    d.splice_text(&t, 0, 0, "teks").ok();
                }
            }
            Node::Map(e) | Node::Table(e) => {
                let ty = if matches!(n, Node::Map(_)) { ObjType::Map } else { ObjType::Table };
                let Some(o) = object(d, ty) else { return };
                for (k, v) in e {
                    put(d, &o, k, v);
                }
            }
            Node::List(items) => {
                let Some(l) = object(d, ObjType::List) else { return };
                for (i, item) in items.iter().enumerate() {
                    insert(d, &l, i, item);
                }
            }
        }
    }

    /// A well-formed request with a rated, profiled event history, as the
    /// base the generated edits start from.
    fn well_formed() -> AutoCommit {
        let mut d = rated(|d, profile| {
            d.put(profile, "education", "sma").unwrap();
        });
        d.commit();
        d
    }

    /// A well-formed request after `base`, then two writers' concurrent
    /// `ours` and `theirs`, each also making the same writes `both`
    /// (concurrent values of one key or item), merged.
    fn concurrently(base: &[Edit], ours: &[Edit], theirs: &[Edit], both: &[Edit]) -> AutoCommit {
        let mut a = well_formed();
        apply(&mut a, base);
        let mut b = a.fork().with_actor(automerge::ActorId::from([7u8; 16]));
        apply(&mut a, ours);
        apply(&mut b, theirs);
        apply(&mut a, both);
        apply(&mut b, both);
        a.merge(&mut b).unwrap();
        a
    }

    /// Whether a list anywhere in `v` holds a contested item.
    fn contested_item(v: &automerge::hydrate::Value) -> bool {
        match v {
            automerge::hydrate::Value::Map(m) => m.iter().any(|(_, e)| contested_item(&e.value)),
            automerge::hydrate::Value::List(l) => l.iter().any(|e| e.conflict || contested_item(&e.value)),
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// `check_tree` on the hydrated document says exactly what
        /// `check` without `before` says, whatever two writers did to
        /// it concurrently.
        #[test]
        fn check_tree_agrees_with_check(base in edits(3), ours in edits(3), theirs in edits(3), both in edits(2)) {
            let a = concurrently(&base, &ours, &theirs, &both);
            let tree = crate::request::hydrate(&a).unwrap();
            prop_assert_eq!(check_tree(&tree), check(&a, None));
        }

        /// `tree::hydrate`'s one pass gives exactly automerge's tree,
        /// contested keys and items, tables and texts included.
        #[test]
        fn one_pass_hydrate_is_automerge_hydrate(base in edits(3), ours in edits(3), theirs in edits(3), both in edits(2)) {
            let a = concurrently(&base, &ours, &theirs, &both);
            let want = a.hydrate(&ROOT, None).unwrap();
            prop_assert_eq!(automerge::hydrate::Value::Map(crate::tree::hydrate(&a).unwrap()), want.clone());
            // And the one pass itself gave it whenever it can.
            let plain = objects(&a).iter().all(|(_, t)| matches!(t, ObjType::Map | ObjType::List))
                && !contested_item(&want);
            prop_assert_eq!(crate::tree::one_pass(&a).is_some(), plain);
        }
    }

    #[test]
    fn check_tree_passes_what_check_passes_and_refuses_a_conflict() {
        let mut d = well_formed();
        assert_eq!(check(&d, None), Ok(()));
        assert_eq!(check_tree(&crate::request::hydrate(&d).unwrap()), Ok(()));
        let mut other = d.fork().with_actor(automerge::ActorId::from([9u8; 16]));
        d.put(ROOT, "ticket", "K001-1128-002").unwrap();
        other.put(ROOT, "ticket", "K001-1128-003").unwrap();
        d.merge(&mut other).unwrap();
        let want = Err(StructureError::Conflict("ticket".into(), "the document"));
        assert_eq!(check(&d, None), want);
        assert_eq!(check_tree(&crate::request::hydrate(&d).unwrap()), want);
    }
}
