//! Hybrid logical clock (Kulkarni et al.): a wall-clock reading in
//! milliseconds plus a counter, so that events order sensibly even when a
//! kiosk's wall clock stands still, jumps back after a power cut, or is
//! days off. Ties between nodes are broken by the node id where events are
//! ordered (`workflow::EventOrder`).
//!
//! Invariant: a node's clock never goes backwards. The owner persists the
//! last stamp it issued (in the same transaction as the write that used it)
//! and ticks from it after a restart, so a restart with a wrong
//! wall clock cannot issue a stamp lower than one already written.
//!
//! Time is passed in; this module reads no clock.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A stamp. Ordered by wall time, then counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    pub wall_ms: u64,
    pub counter: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not a hybrid logical clock stamp (want 15 digits, '-', 5 digits)")]
pub struct HlcParseError;

/// Stamps are at most this far ahead of the local wall clock before
/// [`Hlc::observe`] stops following a remote clock (a kiosk whose clock is
/// a year ahead must not drag everyone along with it).
pub const MAX_FORWARD_DRIFT_MS: u64 = 7 * 24 * 3600 * 1000;

impl Hlc {
    pub const ZERO: Hlc = Hlc { wall_ms: 0, counter: 0 };

    /// The next stamp for a local event at wall time `now_ms`. Always
    /// strictly greater than `self`.
    pub fn tick(self, now_ms: u64) -> Hlc {
        if now_ms > self.wall_ms { Hlc { wall_ms: now_ms, counter: 0 } } else { self.successor() }
    }

    /// The next stamp after receiving `remote` at wall time `now_ms`: above
    /// both. A remote stamp further ahead of our wall clock than
    /// [`MAX_FORWARD_DRIFT_MS`] is not followed (the event still merges; it
    /// just does not move our clock).
    pub fn observe(self, remote: Hlc, now_ms: u64) -> Hlc {
        let remote_plausible = remote.wall_ms <= now_ms.saturating_add(MAX_FORWARD_DRIFT_MS);
        let base = if remote_plausible && remote > self { remote } else { self };
        base.tick(now_ms)
    }

    fn successor(self) -> Hlc {
        match self.counter.checked_add(1) {
            Some(counter) if counter <= 99_999 => Hlc { wall_ms: self.wall_ms, counter },
            // The counter field is five digits wide; move the wall part on.
            _ => Hlc { wall_ms: self.wall_ms + 1, counter: 0 },
        }
    }
}

/// Fixed-width decimal, so that string order equals stamp order:
/// `001764300000000-00003`.
impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:015}-{:05}", self.wall_ms, self.counter)
    }
}

impl FromStr for Hlc {
    type Err = HlcParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (wall, counter) = s.split_once('-').ok_or(HlcParseError)?;
        if wall.len() != 15 || counter.len() != 5 {
            return Err(HlcParseError);
        }
        if !wall.bytes().chain(counter.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(HlcParseError);
        }
        Ok(Hlc {
            wall_ms: wall.parse().map_err(|_| HlcParseError)?,
            counter: counter.parse().map_err(|_| HlcParseError)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tick_follows_wall_clock_and_never_goes_back() {
        let a = Hlc::ZERO.tick(1000);
        assert_eq!(a, Hlc { wall_ms: 1000, counter: 0 });
        // The wall clock jumped back (RTC reset after a power cut).
        let b = a.tick(10);
        assert_eq!(b, Hlc { wall_ms: 1000, counter: 1 });
        assert!(b > a);
        let c = b.tick(2000);
        assert_eq!(c, Hlc { wall_ms: 2000, counter: 0 });
    }

    #[test]
    fn observe_moves_past_remote_but_not_an_absurd_one() {
        let local = Hlc { wall_ms: 1000, counter: 5 };
        let remote = Hlc { wall_ms: 5000, counter: 2 };
        assert_eq!(local.observe(remote, 1200), Hlc { wall_ms: 5000, counter: 3 });
        let absurd = Hlc { wall_ms: 1200 + MAX_FORWARD_DRIFT_MS + 1, counter: 0 };
        assert_eq!(local.observe(absurd, 1200), Hlc { wall_ms: 1200, counter: 0 });
    }

    #[test]
    fn counter_overflow_moves_wall_part() {
        let h = Hlc { wall_ms: 7, counter: 99_999 };
        assert_eq!(h.tick(0), Hlc { wall_ms: 8, counter: 0 });
    }

    proptest! {
        #[test]
        fn string_order_is_stamp_order(a in 0u64..10u64.pow(15), ac in 0u32..100_000, b in 0u64..10u64.pow(15), bc in 0u32..100_000) {
            let x = Hlc { wall_ms: a, counter: ac };
            let y = Hlc { wall_ms: b, counter: bc };
            prop_assert_eq!(x.to_string().cmp(&y.to_string()), x.cmp(&y));
            prop_assert_eq!(x.to_string().parse::<Hlc>().unwrap(), x);
        }

        #[test]
        fn ticks_are_strictly_increasing(walls in proptest::collection::vec(0u64..5_000, 1..200)) {
            let mut h = Hlc::ZERO;
            for w in walls {
                let next = h.tick(w);
                prop_assert!(next > h);
                h = next;
            }
        }
    }
}
