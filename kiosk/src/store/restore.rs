//! A kiosk's store after `kiosk restore` (issue 18): an older copy of the
//! kiosk's own disk comes back, and must not write as the kiosk it was.
//!
//! The hazard: the kiosk's Automerge actor wrote changes after the copy
//! was taken (requests filed, events, ratings) that the copy does not hold
//! but the server may. Writing again under the same actor would give a
//! second, different change the same (actor, seq): Automerge cannot merge
//! that, and the server would refuse the kiosk's pushes for good. So the
//! restored store takes a new actor at once, before it serves:
//!
//! - `meta.actor` becomes a fresh random actor; `meta.actor_pending` holds
//!   it until the server has registered it as this kiosk's
//!   (`POST /api/kiosk/actor`, [`crate::sync`]), which the kiosk asks for
//!   before it pushes anything. The server then also forgets which
//!   documents it believed the kiosk holds, so the next pulls bring back
//!   in full everything it holds of the office that the copy lacks: the
//!   kiosk's own later requests included.
//! - Ticket numbers: today's counter may be behind tickets the kiosk issued
//!   after the copy. Until those come back, numbers continue from
//!   [`RESTORED_TICKET_FLOOR`] (a kiosk files tens a day, never hundreds);
//!   a pulled request of this kiosk raises the counter of its day to its
//!   number ([`raise_ticket_counter`]), so no ticket is issued twice.

use std::path::Path;

use automerge::ActorId;
use loket_node::random_bytes;
use loket_node::sqlite::{meta_get, meta_set};
use rusqlite::Connection;

use super::{DocStore, StoreError, schema};

/// Where a restored kiosk's ticket numbers continue on the day of the
/// restore (and the next: the restore does not know the kiosk's time zone).
pub const RESTORED_TICKET_FLOOR: i64 = 500;

/// The `meta` key of a new actor the server has not registered yet.
const PENDING: &str = "actor_pending";

impl DocStore {
    /// Gives the restored store at `path` a new Automerge actor (see the
    /// module's documentation) and returns it. Run on the unpacked copy,
    /// before it is put in place.
    pub fn take_new_actor(path: &Path) -> Result<ActorId, StoreError> {
        let mut conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::migrate(&conn)?;
        let tx = conn.transaction()?;
        let old = meta_get(&tx, "actor")?.ok_or_else(|| StoreError::NotInitialised(path.to_path_buf()))?;
        let actor = ActorId::from(random_bytes::<16>());
        let hex = actor.to_hex_string();
        let previous = match meta_get(&tx, "previous_actors")? {
            Some(list) => format!("{list},{old}"),
            None => old,
        };
        meta_set(&tx, "previous_actors", &previous)?;
        meta_set(&tx, "actor", &hex)?;
        meta_set(&tx, PENDING, &hex)?;
        for day in local_days(time::OffsetDateTime::now_utc()) {
            raise_ticket_counter(&tx, &day.to_string(), RESTORED_TICKET_FLOOR)?;
        }
        tx.commit()?;
        Ok(actor)
    }

    /// The new actor this kiosk took at a restore, while the server has
    /// not registered it.
    pub fn pending_actor(&self) -> Result<Option<String>, StoreError> {
        let conn = self.reader()?;
        Ok(meta_get(&conn, PENDING)?)
    }

    /// Records that the server registered `actor` (a no-op if the pending
    /// actor is another one, which cannot happen short of two restores
    /// racing).
    pub fn actor_registered(&self, actor: &str) -> Result<(), StoreError> {
        let conn = Connection::open(self.path())?;
        conn.busy_timeout(loket_node::sqlite::BUSY_TIMEOUT)?;
        conn.execute("DELETE FROM meta WHERE key = ?1 AND value = ?2", [PENDING, actor])?;
        Ok(())
    }
}

/// Every date that is today somewhere on Earth at `now` (UTC-12 to
/// UTC+14): the restore does not know the kiosk's time zone. Two dates
/// most of the day, three from 10:00 to 12:00 UTC, when UTC-12 is still
/// on yesterday and UTC+14 already on tomorrow (taking only those two
/// missed Medan's own day then).
fn local_days(now: time::OffsetDateTime) -> Vec<time::Date> {
    let at = |h| now.to_offset(time::UtcOffset::from_hms(h, 0, 0).expect("a valid offset")).date();
    let (first, last) = (at(-12), at(14));
    std::iter::successors(Some(first), |d| d.next_day()).take_while(|d| *d <= last).collect()
}

/// Raises the ticket counter of `day` (`YYYY-MM-DD`, the kiosk's local
/// day) to at least `at_least`.
pub(super) fn raise_ticket_counter(conn: &Connection, day: &str, at_least: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO ticket_counters (day, last) VALUES (?1, ?2)
         ON CONFLICT (day) DO UPDATE SET last = max(last, excluded.last)",
    )?
    .execute(rusqlite::params![day, at_least])?;
    Ok(())
}

/// The day's number of a ticket (`K07-1128-023` → 23; a complaint's
/// `ADU-K07-1128-024` → 24).
pub(super) fn ticket_number(ticket: &str) -> Option<i64> {
    ticket.rsplit('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{local_days, ticket_number};

    #[test]
    fn a_restore_raises_every_day_that_is_today_somewhere() {
        let days = |utc: &str| {
            let at = time::PrimitiveDateTime::parse(utc, &time::format_description::well_known::Iso8601::DEFAULT)
                .unwrap()
                .assume_utc();
            local_days(at).iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        // 10:08 UTC: yesterday at UTC-12, tomorrow at UTC+14, and Medan's
        // (UTC+7) own day between them.
        assert_eq!(days("2026-12-05T10:08:00"), ["2026-12-04", "2026-12-05", "2026-12-06"]);
        assert_eq!(days("2026-12-05T03:00:00"), ["2026-12-04", "2026-12-05"]);
        assert_eq!(days("2026-12-05T13:00:00"), ["2026-12-05", "2026-12-06"]);
    }

    #[test]
    fn a_tickets_number_is_its_last_part() {
        assert_eq!(ticket_number("K07-1128-023"), Some(23));
        assert_eq!(ticket_number("ADU-K07-1128-1024"), Some(1024));
        assert_eq!(ticket_number("K07"), None);
    }
}
