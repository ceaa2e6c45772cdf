//! Short-lived form state handed from a POST to the page it redirects to
//! (post/redirect/get: Back never asks to send a form again). A draft is
//! named by a random id that travels in a URL or a cookie; what it holds
//! (a citizen's name and NIK on the way to the confirmation screen, a
//! clerk's search) never does.
//!
//! In memory only: a restart forgets every draft (the page then starts
//! over). Bounded: a draft lives `ttl`, and past `CAPACITY` drafts the
//! oldest go first.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Drafts<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
    ttl: Duration,
}

impl<T: Clone> Drafts<T> {
    /// Drafts held at most; a kiosk has a handful of screens.
    pub const CAPACITY: usize = 1024;

    pub fn new(ttl: Duration) -> Drafts<T> {
        Drafts { entries: Mutex::default(), ttl }
    }

    /// Keeps `value` from `now`; its id (32 hex characters).
    pub fn put(&self, value: T, now: Instant) -> String {
        let id = hex_id();
        self.insert(id.clone(), value, now);
        id
    }

    /// Keeps `value` under an id of the caller's (a session's), replacing
    /// what was there.
    pub fn insert(&self, id: String, value: T, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, (at, _)| now.saturating_duration_since(*at) <= self.ttl);
        }
        while entries.len() >= Self::CAPACITY {
            let Some(oldest) = entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) else { break };
            entries.remove(&oldest);
        }
        entries.insert(id, (now, value));
    }

    /// The draft `id` if it is still alive at `now`, forgotten here.
    pub fn take(&self, id: &str, now: Instant) -> Option<T> {
        let value = self.get(id, now);
        self.remove(id);
        value
    }

    /// The draft `id` if it is still alive at `now`.
    pub fn get(&self, id: &str, now: Instant) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(id) {
            Some((at, value)) if now.saturating_duration_since(*at) <= self.ttl => Some(value.clone()),
            Some(_) => {
                entries.remove(id);
                None
            }
            None => None,
        }
    }

    /// Replaces the draft `id` (alive again from `now`); `false` if it is gone.
    pub fn replace(&self, id: &str, value: T, now: Instant) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get_mut(id) {
            Some(entry) => {
                *entry = (now, value);
                true
            }
            None => false,
        }
    }

    pub fn remove(&self, id: &str) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }
}

fn hex_id() -> String {
    loket_node::random_bytes::<16>().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_live_their_ttl_and_are_bounded() {
        let ttl = Duration::from_secs(60);
        let t0 = Instant::now();
        let drafts: Drafts<u32> = Drafts::new(ttl);
        let a = drafts.put(1, t0);
        assert_eq!(a.len(), 32);
        assert_eq!(drafts.get(&a, t0 + ttl), Some(1), "alive at the limit");
        assert_eq!(drafts.get(&a, t0 + ttl + Duration::from_millis(1)), None, "gone past it");
        assert_eq!(drafts.get(&a, t0), None, "and forgotten");
        let b = drafts.put(2, t0);
        assert!(drafts.replace(&b, 3, t0 + ttl));
        assert_eq!(drafts.get(&b, t0 + ttl * 2), Some(3), "a replacement lives from then");
        assert_eq!(drafts.take(&b, t0 + ttl), Some(3));
        assert_eq!(drafts.get(&b, t0), None, "taken once");
        drafts.insert("mine".into(), 5, t0);
        assert_eq!(drafts.get("mine", t0), Some(5));
        assert!(!drafts.replace(&b, 4, t0));
        assert_eq!(drafts.get("unknown", t0), None);

        let first = drafts.put(0, t0);
        for i in 1..Drafts::<u32>::CAPACITY * 2 {
            drafts.put(u32::try_from(i).unwrap(), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(drafts.entries.lock().unwrap().len(), Drafts::<u32>::CAPACITY);
        assert_eq!(drafts.get(&first, t0), None, "the oldest went first");
    }
}
