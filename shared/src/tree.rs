//! A document as one plain tree, read in one pass over its op set.
//!
//! Automerge's `hydrate` looks each object up afresh (a seek through the
//! op set's columns per map and list); `ReadDoc::iter` walks the op set
//! once and visits every object after the one that holds it. For a
//! request (about 15 objects, 85 values) the walk costs about half of
//! `hydrate` (`merge_profile`: 21 against 52 µs), and every pushed and
//! every pulled request is read so.
//!
//! The tree is automerge's own `hydrate::Value`, so every reader and
//! `structure::check_tree` read it unchanged. Its public constructors
//! cannot mark a list item as contested, and the walk visits a table as
//! a list, so a document holding any of those (never one a kiosk writes)
//! is hydrated by automerge instead: both give the same tree
//! (`structure`'s property test `one_pass_hydrate_is_automerge_hydrate`).

use automerge::hydrate::{List, Map, MapValue, Value};
use automerge::iter::DocItem;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ValueRef};

/// Objects (the root included) the one pass keeps track of; a document with more (a request
/// a kiosk writes has 15 to 70) is hydrated by automerge, whose cost
/// grows with the objects as this walk's lookup would not.
const OBJECTS_MAX: usize = 256;

/// The document's root map and everything under it.
pub fn hydrate(doc: &AutoCommit) -> Result<Map, automerge::AutomergeError> {
    if let Some(root) = one_pass(doc) {
        return Ok(root);
    }
    match doc.hydrate(&ROOT, None)? {
        Value::Map(root) => Ok(root),
        // The root is always a map.
        _ => Ok(Map::default()),
    }
}

/// An object being filled: its own values, and where it goes in its
/// parent once every object under it is in.
struct Node {
    body: Body,
    parent: Option<(usize, Slot)>,
}

enum Body {
    Map(Map),
    List(Vec<Value>),
}

enum Slot {
    Key(String),
    Item(usize),
}

/// The walk, or `None` when the document holds something only
/// automerge's `hydrate` renders faithfully here (a table, a text, a
/// counter, a contested list item).
pub(crate) fn one_pass(doc: &AutoCommit) -> Option<Map> {
    let mut nodes = vec![Node { body: Body::Map(Map::default()), parent: None }];
    // Every object's id and node, found from the end (a request has
    // about 15 objects; hashing their ids cost more than this scan).
    let mut index: Vec<(ObjId, usize)> = vec![(ROOT, 0)];
    // Items of one object come together: look the object up once.
    let mut current: Option<(std::sync::Arc<ObjId>, usize)> = None;
    for item in doc.iter() {
        let at = match &current {
            Some((obj, at)) if std::sync::Arc::ptr_eq(obj, &item.obj) || **obj == *item.obj => *at,
            _ => {
                let at = index.iter().rev().find(|(id, _)| *id == *item.obj)?.1;
                current = Some((item.obj.clone(), at));
                at
            }
        };
        let (value, conflict, slot, child) = match item.item {
            // A contested list item: see the module's note.
            DocItem::List(l) if l.conflict => return None,
            DocItem::Map(m) => {
                let child = matches!(m.value, ValueRef::Object(_)).then(|| m.id());
                (m.value, m.conflict, Slot::Key(m.key.into_owned()), child)
            }
            DocItem::List(l) => {
                let child = matches!(l.value, ValueRef::Object(_)).then(|| l.id());
                (l.value, false, Slot::Item(l.index), child)
            }
            DocItem::Text(_) => return None,
        };
        let (rendered, body) = match value {
            ValueRef::Object(ObjType::Map) => (Value::Map(Map::default()), Some(Body::Map(Map::default()))),
            ValueRef::Object(ObjType::List) => (Value::List(List::default()), Some(Body::List(Vec::new()))),
            ValueRef::Object(ObjType::Table | ObjType::Text) => return None,
            ValueRef::Scalar(s) => match ScalarValue::from(s) {
                ScalarValue::Counter(_) => return None,
                s => (Value::Scalar(s), None),
            },
        };
        if let (Some(id), Some(body)) = (child, body) {
            let place = match &slot {
                Slot::Key(k) => Slot::Key(k.clone()),
                Slot::Item(i) => Slot::Item(*i),
            };
            if index.len() >= OBJECTS_MAX {
                return None;
            }
            index.push((id, nodes.len()));
            nodes.push(Node { body, parent: Some((at, place)) });
        }
        match (&mut nodes[at].body, slot) {
            (Body::Map(map), Slot::Key(key)) => {
                map.insert(key, MapValue { value: rendered, conflict });
            }
            (Body::List(list), Slot::Item(i)) if i == list.len() => list.push(rendered),
            // The walk gives a map's items keys and a list's items their
            // places in order: anything else is not a walk we understand.
            _ => return None,
        }
    }
    // An object is found while its holder is walked, so it comes after
    // it: fill holders from the last object back.
    while nodes.len() > 1 {
        let node = nodes.pop()?;
        let value = match node.body {
            Body::Map(m) => Value::Map(m),
            Body::List(items) => Value::List(List::from(items)),
        };
        let (holder, slot) = node.parent?;
        let place = match (&mut nodes[holder].body, slot) {
            (Body::Map(map), Slot::Key(key)) => map.get_mut(&key),
            (Body::List(list), Slot::Item(i)) => list.get_mut(i),
            _ => None,
        }?;
        *place = value;
    }
    match nodes.pop()?.body {
        Body::Map(root) => Some(root),
        Body::List(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    /// Past `OBJECTS_MAX` objects the walk gives way to automerge's
    /// `hydrate` (its object lookup is a scan), and the tree is the same.
    #[test]
    fn a_document_of_many_objects_is_hydrated_by_automerge() {
        let mut doc = AutoCommit::new();
        let list = doc.put_object(ROOT, "events", ObjType::List).unwrap();
        // The root, the list and its maps: one object more than the bound.
        for i in 0..OBJECTS_MAX - 1 {
            let m = doc.insert_object(&list, i, ObjType::Map).unwrap();
            doc.put(&m, "id", i as i64).unwrap();
        }
        assert!(one_pass(&doc).is_none());
        let want = doc.hydrate(&ROOT, None).unwrap();
        assert_eq!(Value::Map(hydrate(&doc).unwrap()), want);
        // At the bound: the one pass, the same tree.
        doc.delete(&list, 0).unwrap();
        let root = one_pass(&doc).expect("within the bound");
        assert_eq!(Value::Map(root), doc.hydrate(&ROOT, None).unwrap());
    }
}
