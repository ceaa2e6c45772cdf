//! Follow-up plans of the SKM report (rencana tindak lanjut) at
//! `/admin/ikm/tindak-lanjut`: admins record a plan for an element of a
//! period's survey, city-wide or for one kelurahan, and keep its progress;
//! supervisors read their scope's plans; agencies have none. Every write
//! is audited (`ops::followups`); the texts are shown as text.

use loket_shared::skm::Element;

use super::ikm::plans_table;
use super::*;
use crate::ops::followups::{self, Followup, FollowupForm, Progress, Target};

#[derive(Deserialize)]
pub(super) struct FollowupsQuery {
    /// The period whose plans are listed (all periods when absent), and
    /// the new plan's, prefilled.
    periode: Option<String>,
    /// Prefills the new plan's element and office (from the IKM page).
    unsur: Option<String>,
    kelurahan: Option<String>,
}

pub(super) async fn followups_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<FollowupsQuery>,
) -> Result<Response, PageError> {
    if !followups::may_read(&web.user) {
        return Err(crate::ops::OpError::forbidden().into());
    }
    let period = match q.periode.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(Period::from_query(Some(p), st.config.utc_offset(), true)?),
    };
    let prefill = Prefill {
        period,
        element: q.unsur.as_deref().and_then(|e| e.parse().ok()),
        kelurahan: q.kelurahan.clone().filter(|k| k.parse::<loket_shared::KelurahanCode>().is_ok()),
    };
    followups_markup(&st, page, &web, prefill, None).await
}

/// What the new-plan form starts with.
#[derive(Default)]
struct Prefill {
    period: Option<Period>,
    element: Option<Element>,
    kelurahan: Option<String>,
}

async fn followups_markup(
    st: &AppState,
    page: Page,
    web: &WebUser,
    prefill: Prefill,
    message: Option<(&str, bool)>,
) -> Result<Response, PageError> {
    let plans = followups::list(&st.db, &web.user, prefill.period.map(Period::months)).await?;
    let is_admin = web.user.role == Role::Admin;
    let this_year = Period::from_query(None, st.config.utc_offset(), true)?.year;
    let shown_period = prefill.period.unwrap_or(Period { year: this_year, months: (1, 12) });
    let mut offices = loket_shared::wilayah::medan(loket_shared::wilayah::Level::Kelurahan);
    offices.sort_by_key(|r| r.code);
    let refs: Vec<&Followup> = plans.iter().collect();
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let body = html! {
        h1 { (t("Rencana tindak lanjut SKM", "SKM follow-up plans")) }
        p { (t(
            "Tindak lanjut atas unsur pelayanan dengan nilai terendah dalam laporan SKM (PermenPANRB 14/2017): apa yang dilakukan, siapa penanggung jawabnya, kapan target selesainya, dan sejauh mana progresnya. Setiap perubahan dicatat dalam log audit.",
            "Follow-up on the lowest-rated service elements of the SKM report (PermenPANRB 14/2017): the action, who is responsible, the target date and the progress. Every change is written to the audit log.",
        )) }
        @if let Some((text, ok)) = message {
            p.alert.ok[ok] #message role=(if ok { "status" } else { "alert" }) { (lang.pick(text)) }
        }
        nav.filters aria-label=(t("Periode", "Period")) {
            (t("Periode", "Period")) ": "
            @if prefill.period.is_none() { strong { (t("Semua", "All")) } } @else { a href="/admin/ikm/tindak-lanjut" { (t("Semua", "All")) } }
            @for p in [Period { year: this_year, months: (1, 12) }, Period { year: this_year - 1, months: (1, 12) }] {
                " · "
                @if prefill.period == Some(p) { strong { (p.label_in(lang)) } } @else { a href=(format!("/admin/ikm/tindak-lanjut?periode={}", p.code())) { (p.label_in(lang)) } }
            }
            " · " a href=(format!("/admin/ikm?periode={}", shown_period.code())) { (t("Laporan IKM", "IKM report")) }
        }
        @if plans.is_empty() {
            (empty_state("no-plans", t(
                "Belum ada rencana tindak lanjut. Rencana untuk unsur terendah laporan SKM, dengan penanggung jawab, target dan progresnya, akan tampil di sini.",
                "No follow-up plans yet. Plans for the SKM report's lowest elements, with who is responsible, the target and the progress, will show here.",
            )))
        } @else if !is_admin {
            (plans_table(lang, &refs, st))
        } @else {
            table #plans .plans .fit {
                thead { tr {
                    th scope="col" { (t("Kantor", "Office")) } th scope="col" { (t("Periode", "Period")) } th scope="col" { (t("Unsur", "Element")) }
                    th scope="col" { (t("Rencana, penanggung jawab, target, status, catatan", "Plan, responsible, target, status, note")) }
                } }
                tbody {
                    @for f in &plans {
                        tr data-plan=(f.id) data-status=(f.progress.code()) {
                            td { @if let Some(k) = &f.kelurahan { (place_name(k)) } @else { "Kota Medan" } }
                            td { (Period::parse(&f.period).map_or(f.period.clone(), |p| p.label_in(lang))) }
                            td { (f.element.code()) " " (lang.t(f.element.info().name_id, f.element.info().name_en)) }
                            td { (edit_form(lang, &page.csrf, f)) }
                        }
                    }
                }
            }
        }
        @if is_admin {
            h2 { (t("Tambah rencana", "Add a plan")) }
            form #plan-form method="post" action="/admin/ikm/tindak-lanjut" {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="p-kel" { (t("Kantor", "Office")) }
                select #p-kel name="kelurahan" {
                    option value="" selected[prefill.kelurahan.is_none()] { (t("Seluruh kota", "Whole city")) }
                    @for r in &offices {
                        option value=(r.code) selected[prefill.kelurahan.as_deref() == Some(r.code)] { (r.name) " (" (r.code) ")" }
                    }
                }
                label for="p-period" { (t("Periode laporan", "Report period")) }
                (period_select(lang, "p-period", shown_period, &[this_year, this_year - 1]))
                label for="p-element" { (t("Unsur", "Element")) }
                select #p-element name="unsur" {
                    @for e in Element::ALL {
                        option value=(e.code()) selected[prefill.element == Some(e)] { (e.code()) " " (lang.t(e.info().name_id, e.info().name_en)) }
                    }
                }
                (plan_fields(lang, "p", None))
                button.primary type="submit" #plan-save { (t("Simpan", "Save")) }
            }
        }
    };
    let status = match message {
        Some((_, false)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let markup = page.frame(t("Rencana Tindak Lanjut SKM", "SKM Follow-up Plans"), &web.user, body);
    Ok(page.respond(status, markup))
}

/// The fields every plan has, empty or with a plan's values.
fn plan_fields(lang: Lang, prefix: &str, plan: Option<&Followup>) -> Markup {
    let id = |name: &str| format!("{prefix}-{name}");
    let progress = plan.map_or(Progress::Planned, |p| p.progress);
    html! {
        label for=(id("action")) { (lang.t("Rencana tindak lanjut", "Action")) }
        textarea id=(id("action")) name="rencana" rows="3" required maxlength=(followups::ACTION_MAX_CHARS) {
            @if let Some(p) = plan { (p.action) }
        }
        label for=(id("resp")) { (lang.t("Penanggung jawab", "Responsible")) }
        input id=(id("resp")) name="penanggung_jawab" type="text" required maxlength=(followups::RESPONSIBLE_MAX_CHARS)
            value=[plan.map(|p| p.responsible.as_str())] autocomplete="off";
        label for=(id("target")) { (lang.t("Target selesai (TTTT-BB-HH)", "Target date (YYYY-MM-DD)")) }
        input id=(id("target")) name="target" type="text" required maxlength="10" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}"
            value=[plan.map(|p| loket_shared::reference::ymd::format(p.target))] autocomplete="off";
        label for=(id("status")) { "Status" }
        select id=(id("status")) name="status" {
            @for s in Progress::ALL {
                option value=(s.code()) selected[s == progress] { (lang.t(s.label().0, s.label().1)) }
            }
        }
        label for=(id("note")) { (lang.t("Catatan progres", "Progress note")) }
        textarea id=(id("note")) name="catatan" rows="2" maxlength=(followups::NOTE_MAX_CHARS) {
            @if let Some(n) = plan.and_then(|p| p.progress_note.as_deref()) { (n) }
        }
    }
}

/// A plan's values in a form that saves them (an admin's view).
fn edit_form(lang: Lang, csrf: &str, f: &Followup) -> Markup {
    html! {
        form.plan-edit method="post" action=(format!("/admin/ikm/tindak-lanjut/{}", f.id)) data-plan=(f.id) {
            input type="hidden" name="csrf" value=(csrf);
            (plan_fields(lang, &format!("e{}", f.id), Some(f)))
            button type="submit" { (lang.t("Simpan perubahan", "Save changes")) }
        }
        p { small { (lang.t("Terakhir diubah oleh", "Last changed by")) " " (f.updated_by) } }
    }
}

#[derive(Deserialize)]
pub(super) struct PlanForm {
    csrf: Option<String>,
    kelurahan: Option<String>,
    periode: Option<String>,
    unsur: Option<String>,
    rencana: Option<String>,
    penanggung_jawab: Option<String>,
    target: Option<String>,
    status: Option<String>,
    catatan: Option<String>,
}

impl PlanForm {
    fn fields(&self) -> FollowupForm {
        FollowupForm {
            action: self.rencana.clone().unwrap_or_default(),
            responsible: self.penanggung_jawab.clone().unwrap_or_default(),
            target: self.target.clone().unwrap_or_default(),
            status: self.status.clone().unwrap_or_default(),
            progress_note: self.catatan.clone().unwrap_or_default(),
        }
    }
}

/// The page again after a form, with what happened.
async fn outcome(
    st: &AppState,
    page: Page,
    web: &WebUser,
    period: Option<Period>,
    done: Result<&str, crate::ops::OpError>,
) -> Result<Response, PageError> {
    let prefill = Prefill { period, ..Prefill::default() };
    match done.map_err(ApiError::from) {
        Ok(text) => followups_markup(st, page, web, prefill, Some((text, true))).await,
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            let text = e.message.clone();
            followups_markup(st, page, web, prefill, Some((&text, false))).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn plan_create(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    PageForm(form): PageForm<PlanForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let period = form.periode.as_deref().and_then(Period::parse);
    let done = async {
        let period = period.ok_or_else(|| {
            crate::ops::OpError::unprocessable(
                "invalid_period",
                "periode: 2026, 2026-H1, 2026-Q3 atau 2026-11 / period: 2026, 2026-H1, 2026-Q3 or 2026-11",
            )
        })?;
        let element: Element = form
            .unsur
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| crate::ops::OpError::unprocessable("invalid_element", e))?;
        let kelurahan = match form.kelurahan.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            Some(k) => Some(k.parse::<loket_shared::KelurahanCode>().map_err(|_| {
                crate::ops::OpError::unprocessable(
                    "invalid_kelurahan",
                    "kode kelurahan tidak valid / invalid kelurahan code",
                )
            })?),
        };
        let target = Target { kelurahan, period: period.code(), months: period.months(), element };
        followups::create(&st.db, &web.user, target, form.fields()).await
    }
    .await;
    if let Ok(id) = &done {
        tracing::info!(plan = id, by = %web.user.username, "follow-up plan recorded (web)");
    }
    let done = done.map(|_| "Rencana tindak lanjut tersimpan. / The follow-up plan was saved.");
    outcome(&st, page, &web, period, done).await
}

pub(super) async fn plan_update(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(id): Path<String>,
    PageForm(form): PageForm<PlanForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let id: i64 = id.parse().map_err(|_| crate::ops::OpError::not_found())?;
    let done = followups::update(&st.db, &web.user, id, form.fields()).await;
    if done.is_ok() {
        tracing::info!(plan = id, by = %web.user.username, "follow-up plan changed (web)");
    }
    if matches!(&done, Err(crate::ops::OpError::Refused { code: "not_found", .. })) {
        return Err(crate::ops::OpError::not_found().into());
    }
    let done = done.map(|()| "Perubahan tersimpan. / The changes were saved.");
    outcome(&st, page, &web, None, done).await
}
