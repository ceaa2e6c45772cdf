//! Follow-up plans of the SKM report (rencana tindak lanjut, issue 14 item
//! 8): for an element of a period's survey, city-wide or for one
//! kelurahan, what will be done, who answers for it, by when, and its
//! progress (direncanakan, berjalan, selesai, with a note).
//!
//! Only admins write; every creation and change is written to the audit
//! log in the same transaction. Supervisors read their scope's plans (a
//! kelurahan's supervisor: that kelurahan's and the city's); agencies
//! have none. The texts are stored as typed, bounded, and shown escaped.

use loket_shared::KelurahanCode;
use loket_shared::skm::Element;

use super::auth::{Role, User};
use super::{OpError, read, write};
use crate::store::accounts::{self, AuditEntry};
use crate::store::followups::{self as q, FollowupChange, FollowupRow, NewFollowup};
use crate::store::{Db, now_ms};

/// Most characters of the planned action and of a progress note.
pub const ACTION_MAX_CHARS: usize = 500;
pub const NOTE_MAX_CHARS: usize = 500;
/// Most characters of who answers for it (a name, a post or a unit).
pub const RESPONSIBLE_MAX_CHARS: usize = 120;

/// How far a plan got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Progress {
    Planned,
    Ongoing,
    Done,
}

impl Progress {
    pub const ALL: [Progress; 3] = [Progress::Planned, Progress::Ongoing, Progress::Done];

    /// The stable code (store, forms, exports).
    pub fn code(self) -> &'static str {
        match self {
            Progress::Planned => "direncanakan",
            Progress::Ongoing => "berjalan",
            Progress::Done => "selesai",
        }
    }

    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Progress::Planned => ("Direncanakan", "Planned"),
            Progress::Ongoing => ("Berjalan", "In progress"),
            Progress::Done => ("Selesai", "Done"),
        }
    }

    pub fn parse(s: &str) -> Option<Progress> {
        Progress::ALL.into_iter().find(|p| p.code() == s)
    }
}

/// A plan as people see it.
#[derive(Debug, Clone)]
pub struct Followup {
    pub id: i64,
    /// `None`: the whole city.
    pub kelurahan: Option<String>,
    pub period: String,
    pub months: (i64, i64),
    pub element: Element,
    pub action: String,
    pub responsible: String,
    pub target: time::Date,
    pub progress: Progress,
    pub progress_note: Option<String>,
    pub updated_by: String,
    pub updated_ms: i64,
}

impl TryFrom<FollowupRow> for Followup {
    type Error = OpError;
    fn try_from(r: FollowupRow) -> Result<Followup, OpError> {
        let corrupt = |what: &str| OpError::internal(format!("follow-up plan {}: unreadable {what}", r.id));
        Ok(Followup {
            id: r.id,
            element: r.element.parse().map_err(|_| corrupt("element"))?,
            target: loket_shared::reference::ymd::parse(&r.target_day).ok_or_else(|| corrupt("target"))?,
            progress: Progress::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            kelurahan: r.kelurahan,
            period: r.period,
            months: (r.month_from, r.month_to),
            action: r.action,
            responsible: r.responsible,
            progress_note: r.progress_note,
            updated_by: r.updated_by,
            updated_ms: r.updated_ms,
        })
    }
}

/// What an admin fills in; the texts as typed.
#[derive(Debug, Clone, Default)]
pub struct FollowupForm {
    pub action: String,
    pub responsible: String,
    /// `YYYY-MM-DD`.
    pub target: String,
    /// A [`Progress`] code; empty is `direncanakan`.
    pub status: String,
    pub progress_note: String,
}

/// The checked fields of a form.
#[derive(Debug)]
struct Checked {
    action: String,
    responsible: String,
    target: time::Date,
    progress: Progress,
    note: Option<String>,
}

/// Text as people type it: trimmed, within `max` characters, without
/// control characters but line breaks and tabs, nor the bidirectional
/// overrides that disguise text. Refusals name the field, never the value.
fn text(raw: &str, max: usize, required: bool, code: &'static str, what: (&str, &str)) -> Result<String, OpError> {
    let t = raw.trim();
    let bad = |c: char| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if (required && t.is_empty()) || t.chars().count() > max || t.chars().any(bad) {
        return Err(OpError::unprocessable(
            code,
            format!(
                "{}: {}1-{max} karakter tanpa karakter kendali / {}: {}up to {max} characters, no control characters",
                what.0,
                if required { "wajib, " } else { "" },
                what.1,
                if required { "required, " } else { "" },
            ),
        ));
    }
    Ok(t.to_owned())
}

fn check(form: &FollowupForm) -> Result<Checked, OpError> {
    let action =
        text(&form.action, ACTION_MAX_CHARS, true, "invalid_action", ("rencana tindak lanjut", "follow-up action"))?;
    let responsible = text(
        &form.responsible,
        RESPONSIBLE_MAX_CHARS,
        true,
        "invalid_responsible",
        ("penanggung jawab", "person or unit responsible"),
    )?;
    let target = loket_shared::reference::ymd::parse(form.target.trim())
        .filter(|d| (2000..=2100).contains(&d.year()))
        .ok_or_else(|| {
            OpError::unprocessable("invalid_date", "target: tanggal YYYY-MM-DD / target: a YYYY-MM-DD date")
        })?;
    let progress = match form.status.trim() {
        "" => Progress::Planned,
        s => Progress::parse(s).ok_or_else(|| {
            OpError::unprocessable(
                "invalid_status",
                "status: direncanakan, berjalan atau selesai / status: direncanakan, berjalan or selesai",
            )
        })?,
    };
    let note = text(&form.progress_note, NOTE_MAX_CHARS, false, "invalid_note", ("catatan progres", "progress note"))?;
    Ok(Checked { action, responsible, target, progress, note: (!note.is_empty()).then_some(note) })
}

/// The scope of plans a user reads; `None` for a role that has none.
fn scope(user: &User) -> Option<crate::store::reports::Scope> {
    (user.role != Role::Agency).then(|| super::reports::scope(user))
}

/// Whether the user may read plans at all (admins and supervisors).
pub fn may_read(user: &User) -> bool {
    scope(user).is_some()
}

/// Plans the user may read whose period overlaps `months` (`yyyymm`,
/// inclusive; every period when `None`).
pub async fn list(db: &Db, user: &User, months: Option<(i64, i64)>) -> Result<Vec<Followup>, OpError> {
    let Some(scope) = scope(user) else { return Ok(Vec::new()) };
    list_in(db, user, scope, months).await
}

/// The plans of a report's scope (`reports::report_scope`, never wider
/// than the user's): the city's and, for one kelurahan, its own; every
/// office's for the whole city.
pub async fn list_in(
    db: &Db,
    user: &User,
    scope: crate::store::reports::Scope,
    months: Option<(i64, i64)>,
) -> Result<Vec<Followup>, OpError> {
    if !may_read(user) {
        return Ok(Vec::new());
    }
    let rows = read(db, move |c| Ok(q::list(c, &scope, months)?)).await?;
    rows.into_iter().map(Followup::try_from).collect()
}

/// Where a new plan belongs: the period (its code, already parsed by the
/// caller, and its months), the element, and the office (`None`: city).
#[derive(Debug, Clone)]
pub struct Target {
    pub kelurahan: Option<KelurahanCode>,
    pub period: String,
    pub months: (i64, i64),
    pub element: Element,
}

fn office(kelurahan: Option<&str>) -> &str {
    kelurahan.unwrap_or("kota")
}

/// Records a new plan (admins only), audited as `followup_create`;
/// answers its id.
pub async fn create(db: &Db, user: &User, target: Target, form: FollowupForm) -> Result<i64, OpError> {
    user.require(Role::Admin)?;
    if let Some(k) = &target.kelurahan
        && !loket_shared::wilayah::is_known_kelurahan(k.as_str())
    {
        return Err(OpError::unprocessable("unknown_kelurahan", "kelurahan tidak dikenal / unknown kelurahan"));
    }
    let c = check(&form)?;
    let (who, role) = (user.username.to_string(), user.role.as_str());
    write(db, move |tx| {
        let kelurahan = target.kelurahan.as_ref().map(|k| k.as_str().to_owned());
        let target_day = loket_shared::reference::ymd::format(c.target);
        let plan = NewFollowup {
            kelurahan: kelurahan.as_deref(),
            period: &target.period,
            months: target.months,
            element: target.element.code(),
            action: &c.action,
            responsible: &c.responsible,
            target_day: &target_day,
            status: c.progress.code(),
            progress_note: c.note.as_deref(),
        };
        let now = now_ms();
        let id = q::insert(tx, &plan, &who, now)?;
        let reason = format!(
            "{} {} {}: {}, target {target_day}",
            target.element.code(),
            target.period,
            office(kelurahan.as_deref()),
            c.progress.code()
        );
        let subject = format!("rtl:{id}");
        let entry = AuditEntry {
            at_ms: now,
            username: &who,
            role,
            action: "followup_create",
            doc_id: None,
            reason: &reason,
            subject: Some(&subject),
        };
        accounts::audit(tx, &entry)?;
        Ok(id)
    })
    .await
}

/// Changes a plan's action, responsible, target, status and note (admins
/// only), audited as `followup_update` naming what changed. `404` if
/// there is no such plan.
pub async fn update(db: &Db, user: &User, id: i64, form: FollowupForm) -> Result<(), OpError> {
    user.require(Role::Admin)?;
    let c = check(&form)?;
    let (who, role) = (user.username.to_string(), user.role.as_str());
    write(db, move |tx| {
        let Some(before) = q::get(tx, id)? else { return Err(OpError::not_found()) };
        let target_day = loket_shared::reference::ymd::format(c.target);
        let change = FollowupChange {
            action: &c.action,
            responsible: &c.responsible,
            target_day: &target_day,
            status: c.progress.code(),
            progress_note: c.note.as_deref(),
        };
        let changed: Vec<&str> = [
            ("rencana", before.action != c.action),
            ("penanggung_jawab", before.responsible != c.responsible),
            ("target", before.target_day != target_day),
            ("status", before.status != c.progress.code()),
            ("catatan", before.progress_note != c.note),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
        let now = now_ms();
        if !q::update(tx, id, &change, &who, now)? {
            return Err(OpError::not_found());
        }
        let reason = format!(
            "{} {} {}: {}, target {target_day}; diubah: {}",
            before.element,
            before.period,
            office(before.kelurahan.as_deref()),
            c.progress.code(),
            if changed.is_empty() { "-".to_owned() } else { changed.join(", ") }
        );
        let subject = format!("rtl:{id}");
        let entry = AuditEntry {
            at_ms: now,
            username: &who,
            role,
            action: "followup_update",
            doc_id: None,
            reason: &reason,
            subject: Some(&subject),
        };
        accounts::audit(tx, &entry)?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(action: &str, responsible: &str, target: &str, status: &str, note: &str) -> FollowupForm {
        FollowupForm {
            action: action.into(),
            responsible: responsible.into(),
            target: target.into(),
            status: status.into(),
            progress_note: note.into(),
        }
    }

    #[test]
    fn forms_are_checked_field_by_field() {
        let ok = check(&form(" Papan alur layanan ", "Sekretaris Lurah", "2026-12-31", "", "")).unwrap();
        assert_eq!((ok.action.as_str(), ok.progress, ok.note), ("Papan alur layanan", Progress::Planned, None));
        let cases = [
            (form("", "Lurah", "2026-12-31", "", ""), "invalid_action"),
            (form(&"x".repeat(ACTION_MAX_CHARS + 1), "Lurah", "2026-12-31", "", ""), "invalid_action"),
            (form("a\u{0}b", "Lurah", "2026-12-31", "", ""), "invalid_action"),
            (form("ok", "\u{202e}hal", "2026-12-31", "", ""), "invalid_responsible"),
            (form("ok", "Lurah", "31-12-2026", "", ""), "invalid_date"),
            (form("ok", "Lurah", "2026-02-30", "", ""), "invalid_date"),
            (form("ok", "Lurah", "2026-12-31", "done", ""), "invalid_status"),
            (form("ok", "Lurah", "2026-12-31", "selesai", &"n".repeat(NOTE_MAX_CHARS + 1)), "invalid_note"),
        ];
        for (f, want) in cases {
            match check(&f) {
                Err(OpError::Refused { code, message, .. }) => {
                    assert_eq!(code, want);
                    assert!(!message.contains("hal") && !message.contains("2026"), "echoed: {message}");
                }
                other => panic!("{want}: {other:?}"),
            }
        }
        let done = check(&form("ok", "Lurah", "2026-12-31", "selesai", "Terpasang 3 Nov")).unwrap();
        assert_eq!((done.progress, done.note.as_deref()), (Progress::Done, Some("Terpasang 3 Nov")));
    }
}
