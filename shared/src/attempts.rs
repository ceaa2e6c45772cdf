//! Failed-attempt counting for logins and enrollment codes: a fixed
//! window per key (a staff id, a username, a client address) that starts
//! at the first failure. In memory and bounded; the time is passed in.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Counts failures per key (a username, a client address) in a fixed
/// window that starts at the first failure; once `max` failures are in the
/// window, the key is refused until it ends. In memory, bounded to
/// `capacity` keys (expired windows go first, then the oldest).
#[derive(Debug)]
pub struct AttemptLimiter {
    max: u32,
    window: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

impl AttemptLimiter {
    pub const CAPACITY_DEFAULT: usize = 100_000;

    pub fn new(max: u32, window: Duration) -> AttemptLimiter {
        AttemptLimiter::with_capacity(max, window, AttemptLimiter::CAPACITY_DEFAULT)
    }

    pub fn with_capacity(max: u32, window: Duration, capacity: usize) -> AttemptLimiter {
        AttemptLimiter { max: max.max(1), window, capacity: capacity.max(1), entries: Mutex::new(HashMap::new()) }
    }

    /// How long `key` must wait, if it is refused now.
    pub fn blocked(&self, key: &str, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let w = entries.get(key)?;
        let end = w.start + self.window;
        (w.failures >= self.max && now < end).then(|| end - now)
    }

    /// Counts one failure for `key`.
    pub fn failed(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = entries.get_mut(key) {
            if now < w.start + self.window {
                w.failures = w.failures.saturating_add(1);
            } else {
                *w = Window { start: now, failures: 1 };
            }
            return;
        }
        if entries.len() >= self.capacity {
            let window = self.window;
            entries.retain(|_, w| now < w.start + window);
            if entries.len() >= self.capacity
                && let Some(oldest) = entries.iter().min_by_key(|(_, w)| w.start).map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key.to_owned(), Window { start: now, failures: 1 });
    }

    /// Forgets `key`'s failures (after a success).
    pub fn clear(&self, key: &str) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_refuses_after_max_failures_until_the_window_ends() {
        let t0 = Instant::now();
        let window = Duration::from_secs(900);
        let l = AttemptLimiter::new(5, window);
        for i in 0..5 {
            assert_eq!(l.blocked("user:rina", t0), None, "refused after {i} failures");
            l.failed("user:rina", t0 + Duration::from_secs(i));
        }
        let wait = l.blocked("user:rina", t0 + Duration::from_secs(10)).expect("refused after 5 failures");
        assert_eq!(wait, Duration::from_secs(890));
        assert_eq!(l.blocked("user:other", t0), None, "keys are separate");
        assert_eq!(l.blocked("user:rina", t0 + window), None, "the window ends");
        l.failed("user:rina", t0 + window);
        assert_eq!(l.blocked("user:rina", t0 + window), None, "a new window starts at one failure");
        l.clear("user:rina");
        assert!(l.is_empty());
    }

    #[test]
    fn limiter_stays_within_its_capacity() {
        let t0 = Instant::now();
        let l = AttemptLimiter::with_capacity(3, Duration::from_secs(60), 100);
        for i in 0..1000u64 {
            l.failed(&format!("ip:{i}"), t0 + Duration::from_millis(i));
        }
        assert!(l.len() <= 100, "{} keys", l.len());
        // The newest key survived.
        l.failed("ip:999", t0 + Duration::from_secs(1));
        l.failed("ip:999", t0 + Duration::from_secs(1));
        assert!(l.blocked("ip:999", t0 + Duration::from_secs(2)).is_some());
    }
}
