//! Citizen screens: choose a service, file it, get a ticket, check its
//! status, rate the service (SKM). One task per screen, large targets,
//! plain words. Nothing personal is ever put in a URL.

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, SameSite};
use loket_shared::rating_token::RatingToken;
use loket_shared::reference::{Service, ServiceGroup};
use loket_shared::request::{Applicant, COMMENT_MAX_CHARS};
use loket_shared::respondent::{Dimension, Profile};
use loket_shared::skm::{Element, Scores};
use loket_shared::{Code, ComplaintTicket, DocId, Nik, PersonName, Phone, Ticket};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::{
    ClientAddr, Ctx, RECEIPT_COOKIE, RECEIPT_COOKIE_PATH, UiError, UiForm, blocking, csrf_field, layout, local_time,
    status_label, trusted_svg,
};
use crate::store::{CreateInput, RatingInput};
use crate::web::{check_rating_token, free_text, idem_for_key};

pub fn routes() -> Router<crate::web::AppState> {
    Router::new()
        .route("/", get(start))
        .route("/layanan", get(services))
        .route("/layanan/{code}", get(service_detail))
        .route("/layanan/{code}/ajukan", get(file_form).post(file_post))
        .route("/layanan/{code}/periksa", get(confirm_page))
        .route("/tiket/{ticket}", get(ticket_page))
        .route("/cek", get(check))
        .route("/nilai", get(rate_start).post(rate_enter))
        .route("/nilai/{ticket}", get(rate_first).post(rate_post))
        .route("/nilai/{ticket}/survei", get(survey_page))
        .route("/nilai/{ticket}/terima-kasih", get(thanks_page))
}

fn page(ctx: &Ctx, title: &str, body: Markup) -> Markup {
    layout(ctx, "citizen", title, html! {}, body)
}

async fn start(ctx: Ctx) -> Response {
    let store = ctx.state.store.clone();
    // The home screen works without it: a store error only hides the card.
    let ikm = match blocking(move || store.published_ikm()).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = ?e, "the published IKM could not be read");
            None
        }
    };
    // "Free" is said only when the catalog says it of every service on
    // offer; a store error drops the claim rather than the screen.
    let all_free = match load_services(&ctx).await {
        Ok(all) => !all.is_empty() && all.iter().all(|s| s.cost_id.trim().eq_ignore_ascii_case("gratis")),
        Err(_) => false,
    };
    let body = html! {
        h1 { (ctx.t("Selamat datang", "Welcome")) }
        p.lead #start-lead {
            @if all_free { (ctx.t("Semua layanan di kiosk ini gratis. ", "Every service at this kiosk is free. ")) }
            (ctx.t("Pilih yang ingin Anda lakukan:", "Choose what you would like to do:"))
        }
        nav.choices aria-label=(ctx.t("Pilihan", "Choices")) {
            a.choice #start-file href="/layanan" {
                span.choice-title { (ctx.t("Ajukan permohonan", "File a request")) }
                span.choice-hint { (ctx.t("Surat keterangan, pengantar KK/KTP, dan lainnya",
                                          "Certificates, family card and ID referrals, and more")) }
            }
            a.choice #start-check href="/cek" {
                span.choice-title { (ctx.t("Cek status tiket", "Check a ticket")) }
                span.choice-hint { (ctx.t("Lihat sampai mana permohonan Anda", "See how far your request has got")) }
            }
            a.choice #start-complaint href="/pengaduan" {
                span.choice-title { (ctx.t("Sampaikan pengaduan", "Make a complaint")) }
                span.choice-hint { (ctx.t("Tentang pelayanan, petugas, atau kantor ini; boleh tanpa nama",
                                          "About a service, a staff member or this office; anonymous if you like")) }
            }
            a.choice #start-rate href="/nilai" {
                span.choice-title { (ctx.t("Nilai pelayanan kami", "Rate our service")) }
                span.choice-hint { (ctx.t("Survei Kepuasan Masyarakat (SKM), 9 pertanyaan",
                                          "Public satisfaction survey (SKM), 9 questions")) }
            }
        }
        @if let Some(p) = &ikm { (published_ikm_card(&ctx, p)) }
        // No way to the staff console from here: it has an address of its own.
    };
    let title = ctx.t("Beranda", "Home").to_owned();
    let markup = page(&ctx, &title, body);
    ctx.page(StatusCode::OK, markup)
}

/// The office's latest published satisfaction index, as the city
/// published it (PermenPANRB 14/2017: survey results are made public).
fn published_ikm_card(ctx: &Ctx, p: &loket_shared::reference::PublishedIkm) -> Markup {
    let grade = p.grade();
    // Indonesian writes a decimal comma.
    let value = match ctx.lang {
        super::Lang::Id => p.ikm_text().replace('.', ","),
        super::Lang::En => p.ikm_text(),
    };
    let published = super::local_time(p.published_at_ms, ctx.state.utc_offset);
    let published = published.split(' ').next().unwrap_or_default();
    html! {
        section.ikm-card #published-ikm data-period=(p.period) data-grade=(grade.to_string()) {
            h2 { (ctx.t("Kepuasan masyarakat atas layanan kantor ini", "Public satisfaction with this office's service")) }
            p.ikm-figure {
                span.ikm-value #published-ikm-value { (value) }
                " "
                span.ikm-grade { (ctx.t("Mutu", "Grade")) " " (grade.to_string()) " · " (ctx.t(grade.performance_id(), grade.performance_en())) }
            }
            p.ikm-source {
                @match ctx.lang {
                    super::Lang::Id => { "Indeks Kepuasan Masyarakat (IKM) " (p.period_label) ", dari " (p.respondents) " responden; diterbitkan Pemerintah Kota Medan " (published) "." }
                    super::Lang::En => { "Public Satisfaction Index (IKM) for " (p.period_label) ", from " (p.respondents) " respondents; published by the City of Medan on " (published) "." }
                }
                @if !p.sample_sufficient() {
                    " " (ctx.t("Jumlah responden belum mencapai sampel minimum", "Fewer respondents than the minimum sample")) " (" (p.sample_min) ")."
                }
            }
        }
    }
}

fn service_name<'a>(ctx: &Ctx, s: &'a Service) -> &'a str {
    ctx.lang.t(&s.name_id, &s.name_en)
}

/// The catalog's cost as published (in Bahasa Indonesia); in English the
/// one word every office uses, "Gratis", reads "Free".
fn cost_text(ctx: &Ctx, s: &Service) -> String {
    match ctx.lang {
        super::Lang::En if s.cost_id.trim().eq_ignore_ascii_case("gratis") => "Free".to_owned(),
        _ => s.cost_id.clone(),
    }
}

/// A catalog text in the screen's language: the English one in English
/// mode when the catalog has it, else the Indonesian one, marked
/// `lang="id"` in English mode so a screen reader reads it as such.
fn english_or_id(ctx: &Ctx, id: &str, en: &str) -> Markup {
    match ctx.lang {
        super::Lang::En if !en.is_empty() => html! { (en) },
        super::Lang::En => html! { span lang="id" { (id) } },
        super::Lang::Id => html! { (id) },
    }
}

fn sla_text(ctx: &Ctx, days: u32) -> String {
    match ctx.lang {
        super::Lang::Id => format!("Selesai dalam {days} hari kerja"),
        super::Lang::En => format!("Done within {days} working day{}", if days == 1 { "" } else { "s" }),
    }
}

/// An example ticket in the form this kiosk prints (its own code, a day,
/// a sequence), made by the same constructor as real tickets.
fn example_ticket(ctx: &Ctx) -> loket_shared::Ticket {
    loket_shared::Ticket::new(&ctx.state.store.identity().kiosk, 11, 28, 23)
}

async fn load_services(ctx: &Ctx) -> Result<Vec<Service>, UiError> {
    let store = ctx.state.store.clone();
    blocking(move || store.services()).await
}

async fn find_service(ctx: &Ctx, raw: &str) -> Result<Service, UiError> {
    let code: Code = raw.parse().map_err(|_| UiError::not_found())?;
    load_services(ctx).await?.into_iter().find(|s| s.code == code).ok_or_else(UiError::not_found)
}

async fn services(ctx: Ctx) -> Result<Response, UiError> {
    let all = load_services(&ctx).await?;
    let body = html! {
        nav.crumbs { a href="/" { "← " (ctx.t("Kembali", "Back")) } }
        h1 { (ctx.t("Pilih layanan", "Choose a service")) }
        @for group in ServiceGroup::ALL {
            @let members: Vec<&Service> = all.iter().filter(|s| s.group == group).collect();
            @if !members.is_empty() {
                section.group aria-labelledby=(format!("group-{}", group.as_str())) {
                    h2 id=(format!("group-{}", group.as_str())) { (ctx.lang.t(group.label().0, group.label().1)) }
                    ul.services {
                        @for s in members {
                            li {
                                a.service href=(format!("/layanan/{}", s.code)) data-service=(s.code.as_str()) {
                                    span.service-code aria-hidden="true" { (s.code.as_str()) }
                                    span.service-name { (service_name(&ctx, s)) }
                                    span.service-meta { (sla_text(&ctx, s.sla_days)) " · " span.cost { (cost_text(&ctx, s)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let title = ctx.t("Pilih layanan", "Choose a service").to_owned();
    let markup = page(&ctx, &title, body);
    Ok(ctx.page(StatusCode::OK, markup))
}

async fn service_detail(ctx: Ctx, Path(raw): Path<String>) -> Result<Response, UiError> {
    let s = find_service(&ctx, &raw).await?;
    let requirements = if ctx.lang == super::Lang::En { &s.requirements_en } else { &s.requirements_id };
    let body = html! {
        nav.crumbs { a href="/layanan" { "← " (ctx.t("Semua layanan", "All services")) } }
        h1 { (service_name(&ctx, &s)) }
        dl.facts {
            dt { (ctx.t("Waktu penyelesaian", "Time to complete")) } dd { (sla_text(&ctx, s.sla_days)) }
            dt { (ctx.t("Biaya", "Cost")) } dd.cost #service-cost { (cost_text(&ctx, &s)) }
            dt { (ctx.t("Hasil", "You receive")) } dd { (english_or_id(&ctx, &s.product_id, &s.product_en)) }
        }
        h2 { (ctx.t("Yang perlu dibawa", "What to bring")) }
        ul.requirements { @for r in requirements { li { (r) } } }
        h2 { (ctx.t("Prosedur", "Procedure")) }
        // Where the catalog has no English text the Indonesian one is
        // shown, said so and marked for screen readers, rather than passed
        // off as English.
        @if ctx.lang == super::Lang::En && [&s.procedure_en, &s.product_en, &s.complaint_en].iter().any(|t| t.is_empty()) {
            p.hint #catalog-language { "Where the office publishes a text only in Bahasa Indonesia, it is shown as published." }
        }
        p #service-procedure { (english_or_id(&ctx, &s.procedure_id, &s.procedure_en)) }
        p.complaint {
            (ctx.t("Pengaduan: ", "Complaints: ")) span { (english_or_id(&ctx, &s.complaint_id, &s.complaint_en)) } " "
            a #service-complaint href=(format!("/pengaduan?layanan={}", s.code)) { (ctx.t("Sampaikan di kiosk ini", "Make one at this kiosk")) }
        }
        div.actions.main-actions {
            a.button.primary.big #apply href=(format!("/layanan/{}/ajukan", s.code)) { (ctx.t("Ajukan sekarang", "Apply now")) }
        }
    };
    let title = service_name(&ctx, &s).to_owned();
    let markup = page(&ctx, &title, body);
    Ok(ctx.page(StatusCode::OK, markup))
}

// ------------------------------------------------------------------ filing

#[derive(Debug, Default, Deserialize)]
pub struct FileForm {
    csrf: Option<String>,
    name: Option<String>,
    nik: Option<String>,
    phone: Option<String>,
    /// `periksa` (check, then confirm), `ubah` (back to editing), `kirim` (file).
    step: Option<String>,
    key: Option<String>,
}

/// What the idempotency fingerprint covers: the request as filed.
#[derive(Serialize)]
struct FileFingerprint<'a> {
    service: &'a str,
    name: &'a str,
    nik: &'a str,
    phone: Option<&'a str>,
}

#[derive(Default)]
struct FieldErrors {
    name: Option<String>,
    nik: Option<String>,
    phone: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.name.is_some() || self.nik.is_some() || self.phone.is_some()
    }
}

fn split_message(ctx: &Ctx, e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    match text.split_once(" / ") {
        Some((id, en)) => ctx.t(id, en).to_owned(),
        None => text,
    }
}

fn parse_applicant(ctx: &Ctx, form: &FileForm) -> Result<Applicant, FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = form.name.as_deref().unwrap_or("");
    let name: Option<PersonName> = match name.parse::<PersonName>() {
        Ok(n) => Some(n),
        Err(e) => {
            errors.name = Some(split_message(ctx, e));
            None
        }
    };
    let nik: Option<Nik> = match form.nik.as_deref().unwrap_or("").trim().parse::<Nik>() {
        Ok(n) => Some(n),
        Err(e) => {
            errors.nik = Some(split_message(ctx, e));
            None
        }
    };
    let phone = match form.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => match p.parse::<Phone>() {
            Ok(p) => Some(p),
            Err(e) => {
                errors.phone = Some(split_message(ctx, e));
                None
            }
        },
    };
    match (name, nik) {
        (Some(name), Some(nik)) if !errors.any() => Ok(Applicant { name, nik, phone }),
        _ => Err(errors),
    }
}

fn field(
    ctx: &Ctx,
    id: &str,
    label: &str,
    hint: &str,
    value: Option<&str>,
    error: Option<&str>,
    attrs: &FieldAttrs,
) -> Markup {
    let hint_id = format!("{id}-hint");
    let err_id = format!("{id}-error");
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            p.hint id=(hint_id) { (hint) }
            input id=(id) name=(id) type="text" value=[value] autocomplete="off" autocapitalize=(attrs.autocapitalize)
                inputmode=(attrs.inputmode) maxlength=(attrs.maxlength) required[attrs.required]
                spellcheck="false" data-validate=(id) data-lang=(ctx.lang.code())
                aria-describedby=(format!("{hint_id} {err_id}")) aria-invalid=(if error.is_some() { "true" } else { "false" });
            p.error id=(err_id) aria-live="polite" { @if let Some(e) = error { (e) } }
        }
    }
}

struct FieldAttrs {
    inputmode: &'static str,
    maxlength: u32,
    required: bool,
    autocapitalize: &'static str,
}

fn file_form_markup(ctx: &Ctx, s: &Service, form: &FileForm, errors: &FieldErrors) -> Markup {
    let name_attrs = FieldAttrs { inputmode: "text", maxlength: 100, required: true, autocapitalize: "words" };
    let nik_attrs = FieldAttrs { inputmode: "numeric", maxlength: 16, required: true, autocapitalize: "off" };
    let phone_attrs = FieldAttrs { inputmode: "tel", maxlength: 20, required: false, autocapitalize: "off" };
    let body = html! {
        nav.crumbs { a href=(format!("/layanan/{}", s.code)) { "← " (service_name(ctx, s)) } }
        h1 { (ctx.t("Data pemohon", "Your details")) }
        p.lead { (service_name(ctx, s)) }
        @if errors.any() {
            div.alert role="alert" { (ctx.t("Periksa kembali isian yang ditandai.", "Please check the marked fields.")) }
        }
        form #file-form method="post" action=(format!("/layanan/{}/ajukan", s.code)) autocomplete="off" novalidate {
            (csrf_field(ctx))
            input type="hidden" name="step" value="periksa";
            (field(ctx, "name", ctx.t("Nama lengkap", "Full name"),
                   ctx.t("Sesuai KTP-el.", "As on your ID card (KTP-el)."),
                   form.name.as_deref(), errors.name.as_deref(), &name_attrs))
            (field(ctx, "nik", ctx.t("NIK", "NIK (national ID number)"),
                   ctx.t("16 angka, tertera di KTP-el atau Kartu Keluarga.", "16 digits, on your ID card or family card."),
                   form.nik.as_deref(), errors.nik.as_deref(), &nik_attrs))
            (field(ctx, "phone", ctx.t("Nomor HP (boleh dikosongkan)", "Mobile number (optional)"),
                   ctx.t("Contoh: 0812 3456 7890. Untuk kabar bila berkas kurang.", "E.g. 0812 3456 7890. For news if something is missing."),
                   form.phone.as_deref(), errors.phone.as_deref(), &phone_attrs))
            div.actions.main-actions {
                button.primary.big type="submit" #next { (ctx.t("Lanjut", "Continue")) }
            }
        }
    };
    page(ctx, ctx.t("Data pemohon", "Your details"), body)
}

/// What the filing form's check hands to its confirmation page: the
/// cookie `loket_draft` (path `/layanan`) names the draft, so what was
/// typed stays out of URLs and history, and Back never resends a form.
/// Gone with the idle reset, and after `citizen_idle_timeout`.
#[derive(Debug, Clone)]
pub struct CitizenDraft {
    pub service: Code,
    pub name: String,
    pub nik: String,
    pub phone: String,
    /// The idempotency key of the confirmation's "Submit".
    pub key: String,
    /// Filed (the personal data dropped): Back to the confirmation shows
    /// the ticket instead.
    pub ticket: Option<String>,
}

pub const DRAFT_COOKIE: &str = "loket_draft";
pub const DRAFT_COOKIE_PATH: &str = "/layanan";

/// Where a survey stands between its screens (issue 15, item 7): every
/// answer is a POST that redirects to the survey's page, which shows the
/// next question from this draft, so Back and reload never send a form
/// again. Named by the cookie `loket_survei` (path `/nilai`); the rating
/// code it carries never travels in a URL. Gone with the idle reset, when
/// the rating is stored, and after `citizen_idle_timeout`.
#[derive(Debug, Clone)]
pub struct SurveyDraft {
    /// The ticket in its canonical form.
    pub ticket: String,
    pub code: RatingToken,
    /// One score 1-4 per question answered, in `QUESTION_ORDER`.
    pub answers: Vec<u8>,
}

pub const SURVEY_COOKIE: &str = "loket_survei";
pub const SURVEY_COOKIE_PATH: &str = "/nilai";

/// This browser's survey draft, if it is for `ticket` and still alive.
fn survey_of(ctx: &Ctx, ticket: &str) -> Option<(String, SurveyDraft)> {
    let id = ctx.jar.get(SURVEY_COOKIE)?.value().to_owned();
    let draft = ctx.state.survey_drafts.get(&id, ctx.state.clock.now())?;
    (draft.ticket == ticket).then_some((id, draft))
}

/// Keeps `draft` as this browser's survey (replacing the one it had) and
/// redirects to the survey's page.
fn to_survey(ctx: Ctx, draft: SurveyDraft) -> Response {
    let now = ctx.state.clock.now();
    let to = format!("/nilai/{}/survei", draft.ticket);
    if let Some(old) = ctx.jar.get(SURVEY_COOKIE) {
        ctx.state.survey_drafts.remove(old.value());
    }
    let id = ctx.state.survey_drafts.put(draft, now);
    let ttl = i64::try_from(ctx.state.citizen_idle_timeout.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build((SURVEY_COOKIE, id))
        .path(SURVEY_COOKIE_PATH)
        .http_only(true)
        .secure(ctx.state.secure_cookies)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::seconds(ttl));
    (ctx.jar.add(cookie), Redirect::to(&to)).into_response()
}

/// This browser's filing draft, if it is for `service` and still alive.
fn draft_of(ctx: &Ctx, service: &Code) -> Option<(String, CitizenDraft)> {
    let id = ctx.jar.get(DRAFT_COOKIE)?.value().to_owned();
    let draft = ctx.state.citizen_drafts.get(&id, ctx.state.clock.now())?;
    (draft.service == *service).then_some((id, draft))
}

async fn file_form(ctx: Ctx, Path(raw): Path<String>) -> Result<Response, UiError> {
    let s = find_service(&ctx, &raw).await?;
    // Back from the confirmation ("Ubah") fills in what was typed.
    let form = match draft_of(&ctx, &s.code) {
        Some((_, d)) if d.ticket.is_none() => {
            FileForm { name: Some(d.name), nik: Some(d.nik), phone: Some(d.phone), ..FileForm::default() }
        }
        _ => FileForm::default(),
    };
    let markup = file_form_markup(&ctx, &s, &form, &FieldErrors::default());
    Ok(ctx.page(StatusCode::OK, markup))
}

/// The confirmation: the citizen checks what they typed before filing.
fn confirm_markup(ctx: &Ctx, s: &Service, applicant: &Applicant, key: &str) -> Markup {
    let body = html! {
        h1 { (ctx.t("Periksa kembali", "Check your details")) }
        dl.facts.confirm {
            dt { (ctx.t("Layanan", "Service")) } dd { (service_name(ctx, s)) }
            dt { (ctx.t("Nama", "Name")) } dd #confirm-name { (applicant.name.as_str()) }
            dt { "NIK" } dd #confirm-nik .mono { (applicant.nik.as_str()) }
            dt { (ctx.t("Nomor HP", "Mobile")) }
            dd { (applicant.phone.as_ref().map_or("—", Phone::as_str)) }
        }
        form #confirm-form method="post" action=(format!("/layanan/{}/ajukan", s.code)) autocomplete="off" {
            (csrf_field(ctx))
            input type="hidden" name="name" value=(applicant.name.as_str());
            input type="hidden" name="nik" value=(applicant.nik.as_str());
            input type="hidden" name="phone" value=(applicant.phone.as_ref().map_or("", Phone::as_str));
            input type="hidden" name="key" value=(key);
            div.actions.main-actions {
                button.secondary.big type="submit" name="step" value="ubah" #edit { (ctx.t("Ubah", "Change")) }
                button.primary.big type="submit" name="step" value="kirim" #submit data-once {
                    (ctx.t("Kirim permohonan", "Submit request"))
                }
            }
        }
    };
    page(ctx, ctx.t("Periksa kembali", "Check your details"), body)
}

/// The confirmation page, from this browser's draft.
async fn confirm_page(ctx: Ctx, Path(raw): Path<String>) -> Result<Response, UiError> {
    let s = find_service(&ctx, &raw).await?;
    let form_page = format!("/layanan/{}/ajukan", s.code);
    let Some((_, draft)) = draft_of(&ctx, &s.code) else {
        return Ok((ctx.jar, Redirect::to(&form_page)).into_response());
    };
    if let Some(ticket) = &draft.ticket {
        return Ok((ctx.jar, Redirect::to(&format!("/tiket/{ticket}"))).into_response());
    }
    let form = FileForm {
        name: Some(draft.name.clone()),
        nik: Some(draft.nik.clone()),
        phone: Some(draft.phone.clone()),
        ..FileForm::default()
    };
    let Ok(applicant) = parse_applicant(&ctx, &form) else {
        return Ok((ctx.jar, Redirect::to(&form_page)).into_response());
    };
    let markup = confirm_markup(&ctx, &s, &applicant, &draft.key);
    Ok(ctx.page(StatusCode::OK, markup))
}

async fn file_post(ctx: Ctx, Path(raw): Path<String>, UiForm(form): UiForm<FileForm>) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let s = find_service(&ctx, &raw).await?;
    let applicant = match parse_applicant(&ctx, &form) {
        Ok(a) => a,
        Err(errors) => {
            tracing::info!(service = %s.code, "filing form refused: invalid fields");
            let markup = file_form_markup(&ctx, &s, &form, &errors);
            return Ok(ctx.page(StatusCode::UNPROCESSABLE_ENTITY, markup));
        }
    };
    let now = ctx.state.clock.now();
    match form.step.as_deref() {
        Some("kirim") => {
            let key = form.key.as_deref().unwrap_or("");
            let fingerprint = FileFingerprint {
                service: s.code.as_str(),
                name: applicant.name.as_str(),
                nik: applicant.nik.as_str(),
                phone: applicant.phone.as_ref().map(Phone::as_str),
            };
            let idem = idem_for_key(&ctx.state.store, key, &fingerprint)?;
            let input = CreateInput { service: s.code.clone(), applicant };
            let created = ctx.state.store.create_request(input, Some(idem)).await?;
            ctx.state.sync.nudge.notify_one();
            tracing::info!(doc = %created.id, ticket = %created.ticket, "request filed at the kiosk screen");
            // Back to the confirmation now finds the ticket, not the form
            // (and nothing personal is kept for it).
            if let Some((id, draft)) = draft_of(&ctx, &s.code) {
                let filed = CitizenDraft {
                    name: String::new(),
                    nik: String::new(),
                    phone: String::new(),
                    ticket: Some(created.ticket.to_string()),
                    ..draft
                };
                ctx.state.citizen_drafts.replace(&id, filed, now);
            }
            // The receipt shows the rating code once. It travels to the
            // receipt in a short-lived cookie, never in a URL.
            let receipt = Cookie::build((RECEIPT_COOKIE, format!("{}:{}", created.ticket, created.rating_token)))
                .path(RECEIPT_COOKIE_PATH)
                .http_only(true)
                .secure(ctx.state.secure_cookies)
                .same_site(SameSite::Strict)
                .max_age(time::Duration::minutes(5));
            let to = format!("/tiket/{}?baru=1", created.ticket);
            Ok((ctx.jar.add(receipt), Redirect::to(&to)).into_response())
        }
        step => {
            // "Ubah" goes back to the form, a check to the confirmation;
            // both by a redirect, with what was typed in a draft.
            let key = match draft_of(&ctx, &s.code) {
                Some((_, d)) if d.ticket.is_none() => d.key,
                _ => uuid::Uuid::from_bytes(loket_node::random_bytes::<16>()).to_string(),
            };
            let draft = CitizenDraft {
                service: s.code.clone(),
                name: applicant.name.as_str().to_owned(),
                nik: applicant.nik.as_str().to_owned(),
                phone: applicant.phone.as_ref().map_or_else(String::new, |p| p.as_str().to_owned()),
                key,
                ticket: None,
            };
            if let Some((old, _)) = draft_of(&ctx, &s.code) {
                ctx.state.citizen_drafts.remove(&old);
            }
            let id = ctx.state.citizen_drafts.put(draft, now);
            let ttl = i64::try_from(ctx.state.citizen_idle_timeout.as_secs()).unwrap_or(i64::MAX);
            let cookie = Cookie::build((DRAFT_COOKIE, id))
                .path(DRAFT_COOKIE_PATH)
                .http_only(true)
                .secure(ctx.state.secure_cookies)
                .same_site(SameSite::Strict)
                .max_age(time::Duration::seconds(ttl));
            let to = if step == Some("ubah") {
                format!("/layanan/{}/ajukan", s.code)
            } else {
                format!("/layanan/{}/periksa", s.code)
            };
            Ok((ctx.jar.add(cookie), Redirect::to(&to)).into_response())
        }
    }
}

// ------------------------------------------------------------------ tickets

#[derive(Deserialize)]
struct TicketQuery {
    baru: Option<String>,
}

/// The rating link a receipt's QR code holds: this kiosk's `/nilai` page
/// for the ticket with its code (scanned into the ticket field, or opened).
fn rating_link(ctx: &Ctx, ticket: &str, code: &RatingToken) -> String {
    let path = format!("/nilai/{ticket}?kode={code}");
    match &ctx.host {
        Some(host) => format!("http://{host}{path}"),
        None => path,
    }
}

/// A rating link scanned or pasted into the ticket field: the ticket and,
/// if the link has one, the code.
pub(super) fn scanned_link(text: &str) -> Option<(&str, Option<&str>)> {
    let rest = &text[text.find("/nilai/")? + "/nilai/".len()..];
    let (ticket, query) = rest.split_once('?').unwrap_or((rest, ""));
    let code = query.split('&').find_map(|kv| kv.strip_prefix("kode="));
    Some((ticket, code))
}

fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(180, 180)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // Drop the XML declaration: the SVG sits inside HTML.
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// A complaint's receipt and status (`/tiket/ADU-…`), found however its
/// ticket was typed; `None` if this kiosk holds no such complaint.
async fn complaint_ticket(ctx: &Ctx, raw: &str, fresh: bool) -> Result<Option<Response>, UiError> {
    let store = ctx.state.store.clone();
    let typed = raw.to_owned();
    let Some(status) = blocking(move || crate::web::complaints::find_typed(&store, &typed)).await? else {
        return Ok(None);
    };
    if status.ticket.as_str() != raw {
        let fresh = if fresh { "?baru=1" } else { "" };
        return Ok(Some(Redirect::to(&format!("/tiket/{}{fresh}", status.ticket)).into_response()));
    }
    Ok(Some(super::complaint::status_markup(ctx, &status, fresh, qr_svg(status.ticket.as_str())).into_response()))
}

async fn ticket_page(ctx: Ctx, Path(raw): Path<String>, Query(q): Query<TicketQuery>) -> Result<Response, UiError> {
    // A complaint's ticket (`ADU-…`) is never a request's.
    if !ComplaintTicket::candidates(&raw).is_empty()
        && let Some(resp) = complaint_ticket(&ctx, &raw, q.baru.is_some()).await?
    {
        return Ok((ctx.jar, resp).into_response());
    }
    if !ComplaintTicket::candidates(&raw).is_empty() && Ticket::candidates(&raw).is_empty() {
        let title = ctx.t("Cek status tiket", "Check a ticket").to_owned();
        let message = ctx.t("Tiket tidak ditemukan di kiosk ini.", "No such ticket at this kiosk.").to_owned();
        let markup = ticket_entry(&ctx, "/cek", &title, None, Some(&message));
        return Ok(ctx.page(StatusCode::NOT_FOUND, markup));
    }
    let candidates = Ticket::candidates(&raw);
    if candidates.is_empty() {
        return Err(UiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_ticket",
            "Nomor tiket tidak sah.",
            "That is not a valid ticket number.",
        ));
    }
    let store = ctx.state.store.clone();
    let Some(view) = blocking(move || store.find_ticket(&candidates)).await? else {
        // A complaint's number typed without its prefix.
        if let Some(resp) = complaint_ticket(&ctx, &raw, false).await? {
            return Ok((ctx.jar, resp).into_response());
        }
        // The status check again, saying so where the number is typed:
        // no error code for a citizen to puzzle over.
        let title = ctx.t("Cek status tiket", "Check a ticket").to_owned();
        let message = ctx.t("Tiket tidak ditemukan di kiosk ini.", "No such ticket at this kiosk.").to_owned();
        let markup = ticket_entry(&ctx, "/cek", &title, None, Some(&message));
        return Ok(ctx.page(StatusCode::NOT_FOUND, markup));
    };
    if view.ticket != raw {
        // Typed loosely: the ticket's own address.
        let fresh = if q.baru.is_some() { "?baru=1" } else { "" };
        return Ok((ctx.jar, Redirect::to(&format!("/tiket/{}{fresh}", view.ticket))).into_response());
    }
    let store = ctx.state.store.clone();
    let doc: Option<DocId> = view.id.parse().ok();
    let (catalog, reason, results) = blocking(move || {
        let request = match doc {
            Some(doc) => store.request(&doc)?,
            None => None,
        };
        let reason = request.as_ref().and_then(|(v, d)| crate::web::citizen_reason(v, d));
        let results = request.as_ref().map(|(_, d)| crate::web::citizen_results(d)).unwrap_or_default();
        Ok((store.catalog()?, reason, results))
    })
    .await?;
    let service = catalog.service(&view.service);
    let offset = ctx.state.utc_offset;
    let fresh = q.baru.is_some();
    // The rating code: only on the receipt right after filing, in the
    // browser that filed (the filing set the cookie; "Done" and the idle
    // timeout clear it). A ticket typed in later never shows it.
    let code: Option<RatingToken> = if fresh {
        ctx.jar
            .get(RECEIPT_COOKIE)
            .and_then(|c| c.value().split_once(':').map(|(t, c)| (t.to_owned(), c.to_owned())))
            .filter(|(t, _)| *t == view.ticket)
            .and_then(|(_, c)| c.parse().ok())
    } else {
        None
    };
    let qr = match &code {
        Some(code) => qr_svg(&rating_link(&ctx, &view.ticket, code)),
        None => qr_svg(&view.ticket),
    };
    // Expected by: the SLA in the office's service hours from filing; not
    // shown while the request waits for the citizen or sits at an agency.
    let holidays = catalog.holiday_set();
    let cal = loket_shared::sla::Calendar {
        offset,
        hours: catalog.hours_for(ctx.state.store.identity().kelurahan.as_str()),
        holidays: &holidays,
    };
    let due = service
        .filter(|_| !matches!(view.status, loket_shared::Status::WaitingCitizen | loket_shared::Status::HandedOff))
        .map(|s| cal.due_at(view.created_at_ms, s.sla_days));
    let body = html! {
        @if fresh {
            h1 { (ctx.t("Permohonan Anda diterima", "Your request has been received")) }
            p.lead { (ctx.t("Simpan nomor tiket ini. Tunjukkan kepada petugas bersama berkas Anda.",
                            "Keep this ticket number. Show it to the staff with your documents.")) }
        } @else {
            h1 { (ctx.t("Status tiket", "Ticket status")) }
        }
        section.receipt aria-label=(ctx.t("Tanda terima", "Receipt")) {
            p.receipt-office { (ctx.state.store.identity().name) }
            p.ticket-label { (ctx.t("Nomor tiket", "Ticket number")) }
            p.ticket #ticket-number { (view.ticket) }
            @if let Some(code) = &code {
                p.ticket-label { (ctx.t("Kode penilaian", "Rating code")) }
                p.rating-code #rating-code { (code) }
                p.rating-hint { (ctx.t("Diperlukan untuk menilai pelayanan; hanya tercetak di tanda terima ini. Jangan berikan kepada orang lain.",
                                       "Needed to rate the service; it is only on this receipt. Do not share it.")) }
            }
            @if let Some(svg) = qr {
                @let label = if code.is_some() {
                    ctx.t("Kode QR untuk menilai pelayanan (nomor tiket dan kode penilaian)", "QR code to rate the service (ticket number and rating code)")
                } else {
                    ctx.t("Kode QR nomor tiket", "QR code of the ticket number")
                };
                div.qr role="img" aria-label=(label) { (trusted_svg(svg)) }
            }
            dl.facts {
                dt { (ctx.t("Layanan", "Service")) }
                dd { (service.map_or(view.service.as_str(), |s| service_name(&ctx, s))) }
                dt { (ctx.t("Diajukan", "Filed")) } dd { (local_time(view.created_at_ms, offset)) }
                dt { (ctx.t("Status", "Status")) }
                dd #ticket-status data-status=(view.status.as_str()) {
                    @if view.conflict {
                        (ctx.t("Sedang ditinjau ulang oleh petugas", "Being reviewed again by staff"))
                    } @else {
                        (status_label(ctx.lang, view.status))
                    }
                }
                // Only the text staff gave as the reason (checked when it
                // was written, blanked of numbers and the name here).
                @if let Some(reason) = &reason {
                    dt { @if view.status == loket_shared::Status::WaitingCitizen { (ctx.t("Berkas yang diperlukan", "What is needed")) } @else { (ctx.t("Alasan", "Reason")) } }
                    dd #ticket-reason .note { (reason) }
                }
                // What an agency issued (issue 16, item 7), long numbers
                // blanked but their last four digits.
                @for (agency, reference) in &results {
                    dt { (ctx.t("Hasil dari ", "Result from ")) (catalog.agency(agency).map_or(agency.as_str(), |a| a.name.as_str())) }
                    dd.ticket-result data-agency=(agency) { span.mono { (reference) } }
                }
                @if let Some(due) = due {
                    @if view.conflict || !view.status.is_terminal() {
                        dt { (ctx.t("Perkiraan selesai", "Expected by")) } dd { (local_time(due, offset)) }
                    }
                }
                // The catalog's cost, as published; a service withdrawn
                // from the catalog since shows none rather than a guess.
                @if let Some(s) = service {
                    dt { (ctx.t("Biaya", "Cost")) } dd.cost #ticket-cost { (cost_text(&ctx, s)) }
                }
            }
        }
        div.actions.main-actions.no-print {
            @if fresh {
                button.secondary.big type="button" #print data-print { (ctx.t("Cetak tanda terima", "Print receipt")) }
            }
            @if !view.rated && crate::store::rating_open(view.status) {
                @if let Some(code) = &code {
                    // The code goes in a form, not in a link: no URL holds it.
                    form.inline method="post" action="/nilai" {
                        (csrf_field(&ctx))
                        input type="hidden" name="tiket" value=(view.ticket);
                        input type="hidden" name="kode" value=(code);
                        button.secondary.big type="submit" #rate-link { (ctx.t("Nilai pelayanan", "Rate the service")) }
                    }
                } @else {
                    a.button.secondary.big #rate-link href=(format!("/nilai/{}", view.ticket)) { (ctx.t("Nilai pelayanan", "Rate the service")) }
                }
            }
            a.button.primary.big #done href="/mulai-ulang" { (ctx.t("Selesai", "Done")) }
        }
    };
    let title = ctx.t("Tiket", "Ticket").to_owned();
    let markup = page(&ctx, &title, body);
    Ok(ctx.page(StatusCode::OK, markup))
}

#[derive(Deserialize)]
struct TicketLookup {
    tiket: Option<String>,
}

fn ticket_entry(ctx: &Ctx, action: &str, title: &str, value: Option<&str>, error: Option<&str>) -> Markup {
    let body = html! {
        nav.crumbs { a href="/" { "← " (ctx.t("Kembali", "Back")) } }
        h1 { (title) }
        form #ticket-form method="get" action=(action) autocomplete="off" {
            div.field.invalid[error.is_some()] {
                label for="tiket" { (ctx.t("Nomor tiket", "Ticket number")) }
                p.hint #tiket-hint { (ctx.t("Tertera di tanda terima, contoh: ", "On your receipt, e.g. ")) (example_ticket(ctx).to_string()) "." }
                input #tiket name="tiket" type="text" value=[value] autocapitalize="characters" spellcheck="false"
                    maxlength="40" required aria-describedby="tiket-hint tiket-error" aria-invalid=(if error.is_some() { "true" } else { "false" });
                p.error #tiket-error aria-live="polite" { @if let Some(e) = error { (e) } }
            }
            div.actions { button.primary.big type="submit" #ticket-go { (ctx.t("Lanjut", "Continue")) } }
        }
    };
    page(ctx, title, body)
}

/// Looks a ticket up however it was typed (`Ticket::candidates`: any
/// case, spaces or no dashes, a missing or extra leading zero); `Err` is
/// the message to show at the field.
async fn lookup(ctx: &Ctx, raw: &str) -> Result<crate::store::TicketView, String> {
    let candidates = Ticket::candidates(raw);
    if candidates.is_empty() {
        return Err(ctx
            .t(
                "Nomor tiket tidak sah. Periksa kembali tanda terima Anda.",
                "Not a valid ticket number. Please check your receipt.",
            )
            .to_owned());
    }
    let store = ctx.state.store.clone();
    match blocking(move || store.find_ticket(&candidates)).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(ctx.t("Tiket tidak ditemukan di kiosk ini.", "No such ticket at this kiosk.").to_owned()),
        Err(e) => Err(ctx.lang.t(&e.id, &e.en).to_owned()),
    }
}

async fn check(ctx: Ctx, Query(q): Query<TicketLookup>) -> Result<Response, UiError> {
    let title = ctx.t("Cek status tiket", "Check a ticket").to_owned();
    let raw = q.tiket.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let Some(raw) = raw else {
        let markup = ticket_entry(&ctx, "/cek", &title, None, None);
        return Ok(ctx.page(StatusCode::OK, markup));
    };
    // A complaint's ticket (`ADU-…`), else a request's, else a complaint's
    // number typed without its prefix.
    let is_complaint = !ComplaintTicket::candidates(raw).is_empty();
    let find_complaint = |typed: &str| {
        let store = ctx.state.store.clone();
        let typed = typed.to_owned();
        blocking(move || crate::web::complaints::find_typed(&store, &typed))
    };
    let complaint = if is_complaint { find_complaint(raw).await? } else { None };
    let request = match complaint {
        Some(found) => Ok(found.ticket.to_string()),
        None => match lookup(&ctx, raw).await {
            Ok(view) => Ok(view.ticket),
            Err(_) if is_complaint => {
                Err(ctx.t("Tiket tidak ditemukan di kiosk ini.", "No such ticket at this kiosk.").to_owned())
            }
            Err(msg) => match find_complaint(raw).await? {
                Some(found) => Ok(found.ticket.to_string()),
                None => Err(msg),
            },
        },
    };
    match request {
        Ok(ticket) => Ok((ctx.jar, Redirect::to(&format!("/tiket/{ticket}"))).into_response()),
        Err(msg) => {
            // Typed back only if it reads as a ticket number (someone may
            // have typed their NIK).
            let keep = (is_complaint || !Ticket::candidates(raw).is_empty()).then_some(raw);
            let markup = ticket_entry(&ctx, "/cek", &title, keep, Some(&msg));
            Ok(ctx.page(StatusCode::NOT_FOUND, markup))
        }
    }
}

// ------------------------------------------------------------------ rating

/// The order of the official questionnaire: U9 (facilities) is asked
/// eighth and U8 (complaints) ninth. Answers are stored by element code.
const QUESTION_ORDER: [Element; 9] = [
    Element::U1,
    Element::U2,
    Element::U3,
    Element::U4,
    Element::U5,
    Element::U6,
    Element::U7,
    Element::U9,
    Element::U8,
];

/// Where a rating starts: the ticket number and the code on the receipt.
/// A form POST, so the code never sits in a URL.
fn rating_entry(ctx: &Ctx, ticket: Option<&str>, code: Option<&str>, error: Option<(&str, &str)>) -> Markup {
    let title = ctx.t("Nilai pelayanan", "Rate the service");
    let body = html! {
        nav.crumbs { a href="/" { "← " (ctx.t("Kembali", "Back")) } }
        h1 { (title) }
        p.lead { (ctx.t("Masukkan nomor tiket dan kode penilaian yang tertera di tanda terima Anda.",
                        "Enter the ticket number and the rating code printed on your receipt.")) }
        @if let Some((code, message)) = error {
            div.alert #rate-error role="alert" data-code=(code) { (message) }
        }
        form #rate-entry method="post" action="/nilai" autocomplete="off" {
            (csrf_field(ctx))
            div.field {
                label for="tiket" { (ctx.t("Nomor tiket", "Ticket number")) }
                p.hint #tiket-hint { (ctx.t("Tertera di tanda terima, contoh: ", "On your receipt, e.g. ")) (example_ticket(ctx).to_string()) "." }
                input #tiket name="tiket" type="text" value=[ticket] autocapitalize="characters" spellcheck="false"
                    maxlength="200" required aria-describedby="tiket-hint";
            }
            div.field.invalid[error.is_some()] {
                label for="kode" { (ctx.t("Kode penilaian", "Rating code")) }
                p.hint #kode-hint {
                    (ctx.t("8 huruf/angka di bawah nomor tiket, contoh: 7K2M-9QXD. Tiket yang diajukan sebelum ada kode penilaian tidak dapat dinilai di kiosk.",
                           "8 letters and digits below the ticket number, e.g. 7K2M-9QXD. Tickets filed before rating codes cannot be rated at the kiosk."))
                }
                input #kode name="kode" type="text" value=[code] autocapitalize="characters" spellcheck="false"
                    maxlength="32" required aria-describedby="kode-hint" aria-invalid=(if error.is_some() { "true" } else { "false" });
            }
            div.actions { button.primary.big type="submit" #rate-go { (ctx.t("Lanjut", "Continue")) } }
        }
    };
    page(ctx, title, body)
}

async fn rate_start(ctx: Ctx, Query(q): Query<TicketLookup>) -> Response {
    // A ticket number in the query (an old link) is only filled in.
    let ticket = q.tiket.as_deref().map(str::trim).filter(|t| t.parse::<Ticket>().is_ok());
    let markup = rating_entry(&ctx, ticket, None, None);
    ctx.page(StatusCode::OK, markup)
}

#[derive(Debug, Default, Deserialize)]
pub struct RateEntryForm {
    csrf: Option<String>,
    tiket: Option<String>,
    kode: Option<String>,
}

/// The ticket and code typed (or a scanned rating link): checked, then the
/// first question.
async fn rate_enter(
    ctx: Ctx,
    ClientAddr(addr): ClientAddr,
    UiForm(form): UiForm<RateEntryForm>,
) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let typed = form.tiket.as_deref().unwrap_or("").trim();
    let (raw_ticket, scanned_code) = scanned_link(typed).unwrap_or((typed, None));
    let raw_code = form.kode.as_deref().map(str::trim).filter(|c| !c.is_empty()).or(scanned_code);
    let view = match lookup(&ctx, raw_ticket).await {
        Ok(view) => view,
        Err(msg) => {
            let keep = raw_ticket.parse::<Ticket>().is_ok().then_some(raw_ticket);
            let markup = rating_entry(&ctx, keep, None, Some(("ticket_not_found", &msg)));
            return Ok(ctx.page(StatusCode::NOT_FOUND, markup));
        }
    };
    let doc: DocId = view.id.parse().map_err(|_| UiError::not_found())?;
    let code = match check_rating_token(&ctx.state, doc, raw_code, addr).await {
        Ok(code) => code,
        Err(e) if e.status.is_client_error() => {
            // The form again, with the reason; what was typed as the code
            // is not typed back.
            let (status, code) = (e.status, e.code);
            let msg = UiError::from(e);
            let markup = rating_entry(&ctx, Some(&view.ticket), None, Some((code, ctx.lang.t(&msg.id, &msg.en))));
            return Ok(ctx.page(status, markup));
        }
        Err(e) => return Err(e.into()),
    };
    if view.rated {
        let markup = already_rated(&ctx);
        return Ok(ctx.page(StatusCode::OK, markup));
    }
    if !crate::store::rating_open(view.status) {
        let markup = not_finished(&ctx, &view.ticket);
        return Ok(ctx.page(StatusCode::CONFLICT, markup));
    }
    Ok(to_survey(ctx, SurveyDraft { ticket: view.ticket.to_string(), code, answers: Vec::new() }))
}

/// The survey's current screen, from this browser's draft: the next
/// question, or the last screen once all nine are answered. Without a
/// draft (expired, another browser) the code is asked for again.
async fn survey_page(ctx: Ctx, Path(raw): Path<String>) -> Result<Response, UiError> {
    let view = rate_ticket(&ctx, &raw).await?;
    if view.rated {
        let markup = already_rated(&ctx);
        return Ok(ctx.page(StatusCode::OK, markup));
    }
    let Some((_, draft)) = survey_of(&ctx, view.ticket.as_str()) else {
        return Ok(Redirect::to(&format!("/nilai/{}", view.ticket)).into_response());
    };
    let markup = if draft.answers.len() >= QUESTION_ORDER.len() {
        comment_page(&ctx, &view.ticket, &draft.code, &draft.answers, &Profile::default(), None, None)
    } else {
        question_page(&ctx, &view.ticket, &draft.code, &draft.answers)
    };
    Ok(ctx.page(StatusCode::OK, markup))
}

/// Where a stored rating's POST redirects: thanks, once the ticket is
/// rated; otherwise its survey starts over.
async fn thanks_page(ctx: Ctx, Path(raw): Path<String>) -> Result<Response, UiError> {
    let view = rate_ticket(&ctx, &raw).await?;
    if !view.rated {
        return Ok(Redirect::to(&format!("/nilai/{}", view.ticket)).into_response());
    }
    let body = html! {
        h1 #thanks { (ctx.t("Terima kasih atas penilaian Anda", "Thank you for your rating")) }
        p.lead { (ctx.t("Penilaian Anda membantu kami memperbaiki pelayanan.", "Your rating helps us improve our service.")) }
        a.button.primary.big href="/mulai-ulang" #done { (ctx.t("Selesai", "Done")) }
    };
    let markup = page(&ctx, ctx.t("Terima kasih", "Thank you"), body);
    Ok(ctx.page(StatusCode::OK, markup))
}

/// The survey asks about a service received: before the request is
/// completed or rejected there is nothing to rate yet.
fn not_finished(ctx: &Ctx, ticket: &str) -> Markup {
    let body = html! {
        h1 #not-finished data-code="not_finished" { (ctx.t("Penilaian belum dibuka", "The rating is not open yet")) }
        p.lead { (ctx.t("Pelayanan dapat dinilai setelah permohonan Anda selesai atau ditolak. Simpan tanda terima Anda dan kembali nanti.",
                        "You can rate the service once your request is completed or rejected. Keep your receipt and come back later.")) }
        div.actions {
            a.button.secondary.big href=(format!("/tiket/{ticket}")) { (ctx.t("Lihat status tiket", "See the ticket's status")) }
            a.button.primary.big href="/mulai-ulang" { (ctx.t("Selesai", "Done")) }
        }
    };
    page(ctx, ctx.t("Penilaian belum dibuka", "Not open yet"), body)
}

fn already_rated(ctx: &Ctx) -> Markup {
    let body = html! {
        h1 #already-rated { (ctx.t("Terima kasih, tiket ini sudah dinilai", "Thank you, this ticket has been rated")) }
        p.lead { (ctx.t("Setiap tiket dapat dinilai satu kali.", "Each ticket can be rated once.")) }
        a.button.primary.big href="/mulai-ulang" { (ctx.t("Selesai", "Done")) }
    };
    page(ctx, ctx.t("Sudah dinilai", "Already rated"), body)
}

async fn rate_ticket(ctx: &Ctx, raw: &str) -> Result<crate::store::TicketView, UiError> {
    lookup(ctx, raw).await.map_err(|msg| UiError::new(StatusCode::NOT_FOUND, "ticket_not_found", msg.clone(), msg))
}

#[derive(Deserialize)]
struct RateQuery {
    /// The code, from a receipt's QR code: only filled in.
    kode: Option<String>,
}

async fn rate_first(ctx: Ctx, Path(raw): Path<String>, Query(q): Query<RateQuery>) -> Result<Response, UiError> {
    let view = rate_ticket(&ctx, &raw).await?;
    if view.rated {
        let markup = already_rated(&ctx);
        return Ok(ctx.page(StatusCode::OK, markup));
    }
    let code = q.kode.as_deref().and_then(|c| c.parse::<RatingToken>().ok()).map(|c| c.to_string());
    let markup = rating_entry(&ctx, Some(&view.ticket), code.as_deref(), None);
    Ok(ctx.page(StatusCode::OK, markup))
}

#[derive(Debug, Default, Deserialize)]
pub struct RateForm {
    csrf: Option<String>,
    /// Answers so far, one digit 1-4 per question in `QUESTION_ORDER`.
    answers: Option<String>,
    /// The answer to the current question.
    answer: Option<String>,
    /// `kembali` goes back one question; `kirim` submits.
    step: Option<String>,
    comment: Option<String>,
    key: Option<String>,
    /// The receipt's rating code, carried from screen to screen and
    /// checked at every one.
    kode: Option<String>,
    /// The respondent profile's answers (codes; empty: not answered).
    age: Option<String>,
    sex: Option<String>,
    education: Option<String>,
    occupation: Option<String>,
}

fn parse_answers(raw: &str) -> Option<Vec<u8>> {
    if raw.len() > 9 {
        return None;
    }
    raw.bytes().map(|b| matches!(b, b'1'..=b'4').then_some(b - b'0')).collect()
}

fn answers_string(answers: &[u8]) -> String {
    answers.iter().map(|a| char::from(b'0' + a)).collect()
}

fn question_page(ctx: &Ctx, ticket: &str, code: &RatingToken, answers: &[u8]) -> Markup {
    let n = answers.len();
    let element = QUESTION_ORDER[n];
    let info = element.info();
    let labels = if ctx.lang == super::Lang::En { info.labels_en } else { info.labels_id };
    let progress = match ctx.lang {
        super::Lang::Id => format!("Pertanyaan {} dari 9", n + 1),
        super::Lang::En => format!("Question {} of 9", n + 1),
    };
    let body = html! {
        p.progress #progress { (progress) }
        progress.bar max="9" value=(n) aria-hidden="true" {}
        form #question-form method="post" action=(format!("/nilai/{ticket}")) data-element=(element.code()) {
            (csrf_field(ctx))
            input type="hidden" name="kode" value=(code);
            input type="hidden" name="answers" value=(answers_string(answers));
            fieldset.question {
                legend { h1 { (ctx.lang.t(info.question_id, info.question_en)) } }
                p.element { (ctx.lang.t(info.name_id, info.name_en)) }
                div.answers {
                    // Best first is how people read a scale left to right here.
                    @for score in (1..=4u8).rev() {
                        button.answer type="submit" name="answer" value=(score) data-score=(score) {
                            span.answer-score aria-hidden="true" { (score) }
                            span.answer-label { (labels[usize::from(score) - 1]) }
                        }
                    }
                }
            }
            @if n > 0 {
                div.actions { button.secondary type="submit" name="step" value="kembali" formnovalidate { "← " (ctx.t("Pertanyaan sebelumnya", "Previous question")) } }
            }
        }
    };
    page(ctx, ctx.t("Nilai pelayanan", "Rate the service"), body)
}

/// The respondent profile (issue 14, item 7): four questions, each with
/// its answers as large choices and "tidak menjawab" chosen until the
/// citizen picks another; said plainly to be optional and anonymous.
fn profile_fields(ctx: &Ctx, chosen: &Profile, error: Option<&str>) -> Markup {
    html! {
        fieldset.profile #profile aria-describedby="profile-hint" {
            legend { h2 { (ctx.t("Profil responden (tidak wajib)", "About you (optional)")) } }
            p.hint #profile-hint {
                (ctx.t("Boleh dilewati. Jawaban ini anonim: tidak dikaitkan dengan nama atau NIK Anda dan hanya dihitung sebagai jumlah dalam laporan survei.",
                       "You may skip this. These answers are anonymous: never linked to your name or NIK, only counted in the survey report."))
            }
            @if let Some(e) = error { p.error #profile-error role="alert" data-code="invalid_profile" { (e) } }
            @for d in Dimension::ALL {
                fieldset.profile-question data-dimension=(d.key()) {
                    legend { (ctx.lang.t(d.label_id(), d.label_en())) }
                    div.profile-options {
                        @for c in d.choices() {
                            label.profile-option {
                                input type="radio" name=(d.key()) value=(c.code) checked[chosen.code(d) == Some(c.code)];
                                span { (ctx.lang.t(c.label_id, c.label_en)) }
                            }
                        }
                        label.profile-option.no-answer {
                            input type="radio" name=(d.key()) value="" checked[chosen.code(d).is_none()];
                            span { (ctx.t("Tidak menjawab", "Prefer not to say")) }
                        }
                    }
                }
            }
        }
    }
}

/// The answers of the profile form: nothing chosen (or "tidak menjawab")
/// is no answer; anything but a question's code is refused.
fn parse_profile_form(form: &RateForm) -> Result<Profile, loket_shared::respondent::ProfileError> {
    let mut profile = Profile::default();
    for (d, raw) in [
        (Dimension::Age, &form.age),
        (Dimension::Sex, &form.sex),
        (Dimension::Education, &form.education),
        (Dimension::Occupation, &form.occupation),
    ] {
        if let Some(code) = raw.as_deref().filter(|c| !c.is_empty()) {
            profile.set(d, code)?;
        }
    }
    Ok(profile)
}

fn comment_page(
    ctx: &Ctx,
    ticket: &str,
    code: &RatingToken,
    answers: &[u8],
    profile: &Profile,
    error: Option<&str>,
    profile_error: Option<&str>,
) -> Markup {
    let key = uuid::Uuid::from_bytes(loket_node::random_bytes::<16>()).to_string();
    let body = html! {
        p.progress { (ctx.t("Terakhir", "Last step")) }
        h1 { (ctx.t("Saran atau masukan (boleh dikosongkan)", "Comments or suggestions (optional)")) }
        form #comment-form method="post" action=(format!("/nilai/{ticket}")) autocomplete="off" {
            (csrf_field(ctx))
            input type="hidden" name="kode" value=(code);
            input type="hidden" name="answers" value=(answers_string(answers));
            input type="hidden" name="key" value=(key);
            (profile_fields(ctx, profile, profile_error))
            div.field.invalid[error.is_some()] {
                label for="comment" { (ctx.t("Masukan Anda", "Your comments")) }
                textarea #comment name="comment" rows="4" maxlength=(COMMENT_MAX_CHARS) aria-describedby="comment-error" {}
                p.error #comment-error aria-live="polite" { @if let Some(e) = error { (e) } }
            }
            div.actions {
                button.secondary.big type="submit" name="step" value="kembali" { "← " (ctx.t("Kembali", "Back")) }
                button.primary.big type="submit" name="step" value="kirim" #rate-submit data-once { (ctx.t("Kirim penilaian", "Submit rating")) }
            }
        }
    };
    page(ctx, ctx.t("Nilai pelayanan", "Rate the service"), body)
}

#[derive(Serialize)]
struct RateFingerprint<'a> {
    ticket: &'a str,
    answers: &'a str,
    comment: Option<&'a str>,
    code: &'a str,
    profile: Vec<(&'static str, &'static str)>,
}

async fn rate_post(
    ctx: Ctx,
    ClientAddr(addr): ClientAddr,
    Path(raw): Path<String>,
    UiForm(form): UiForm<RateForm>,
) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let view = rate_ticket(&ctx, &raw).await?;
    let doc: DocId = view.id.parse().map_err(|_| UiError::not_found())?;
    // Every screen checks the code: a form cannot skip to the last one.
    let code = check_rating_token(&ctx.state, doc, form.kode.as_deref(), addr).await?;
    let invalid = || {
        UiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_score",
            "Jawaban tidak sah. Silakan mulai lagi.",
            "Invalid answers. Please start again.",
        )
    };
    if !view.rated && !crate::store::rating_open(view.status) {
        let markup = not_finished(&ctx, &view.ticket);
        return Ok(ctx.page(StatusCode::CONFLICT, markup));
    }
    let mut answers = parse_answers(form.answers.as_deref().unwrap_or("")).ok_or_else(invalid)?;
    match form.step.as_deref() {
        Some("kembali") => {
            answers.pop();
            return Ok(to_survey(ctx, SurveyDraft { ticket: view.ticket.to_string(), code, answers }));
        }
        Some("kirim") if answers.len() == 9 => {
            let profile = match parse_profile_form(&form) {
                Ok(p) => p,
                Err(_) => {
                    let text = ctx.t(
                        "Jawaban profil tidak dikenal. Pilih salah satu pilihan atau \"Tidak menjawab\".",
                        "Unknown answer about you. Pick one of the choices or \"Prefer not to say\".",
                    );
                    let markup =
                        comment_page(&ctx, &view.ticket, &code, &answers, &Profile::default(), None, Some(text));
                    return Ok(ctx.page(StatusCode::UNPROCESSABLE_ENTITY, markup));
                }
            };
            let comment = match free_text(form.comment.clone(), COMMENT_MAX_CHARS, "invalid_comment") {
                Ok(c) => c,
                Err(e) => {
                    let msg = UiError::from(e);
                    let text = ctx.lang.t(&msg.id, &msg.en);
                    let markup = comment_page(&ctx, &view.ticket, &code, &answers, &profile, Some(text), None);
                    return Ok(ctx.page(StatusCode::UNPROCESSABLE_ENTITY, markup));
                }
            };
            let mut values = [0u8; 9];
            for (element, answer) in QUESTION_ORDER.iter().zip(&answers) {
                values[element.index()] = *answer;
            }
            let scores = Scores::new(values).map_err(|_| invalid())?;
            let answers_text = answers_string(&answers);
            let code_text = code.to_string();
            let fingerprint = RateFingerprint {
                ticket: &view.ticket,
                answers: &answers_text,
                comment: comment.as_deref(),
                code: &code_text,
                profile: profile.answers().map(|(d, c)| (d.key(), c)).collect(),
            };
            let idem = idem_for_key(&ctx.state.store, form.key.as_deref().unwrap_or(""), &fingerprint)?;
            match ctx.state.store.rate(doc, RatingInput { scores, comment, token: code, profile }, Some(idem)).await {
                Ok(_) => {}
                Err(crate::store::OpError::AlreadyRated) => {
                    let markup = already_rated(&ctx);
                    return Ok(ctx.page(StatusCode::OK, markup));
                }
                Err(crate::store::OpError::NotFinished) => {
                    let markup = not_finished(&ctx, &view.ticket);
                    return Ok(ctx.page(StatusCode::CONFLICT, markup));
                }
                Err(e) => return Err(e.into()),
            }
            ctx.state.sync.nudge.notify_one();
            tracing::info!(ticket = %view.ticket, "rating recorded at the kiosk screen");
            // Stored: the draft goes, and Back finds "already rated".
            if let Some(id) = ctx.jar.get(SURVEY_COOKIE) {
                ctx.state.survey_drafts.remove(id.value());
            }
            let jar = ctx.jar.clone().remove(Cookie::build(SURVEY_COOKIE).path(SURVEY_COOKIE_PATH));
            return Ok((jar, Redirect::to(&format!("/nilai/{}/terima-kasih", view.ticket))).into_response());
        }
        _ => {}
    }
    if view.rated {
        let markup = already_rated(&ctx);
        return Ok(ctx.page(StatusCode::OK, markup));
    }
    if let Some(answer) = form.answer.as_deref() {
        let a = parse_answers(answer).filter(|a| a.len() == 1).ok_or_else(invalid)?;
        if answers.len() < 9 {
            answers.push(a[0]);
        }
    }
    Ok(to_survey(ctx, SurveyDraft { ticket: view.ticket.to_string(), code, answers }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_only_digits_one_to_four() {
        assert_eq!(parse_answers("1234"), Some(vec![1, 2, 3, 4]));
        assert_eq!(parse_answers(""), Some(vec![]));
        assert_eq!(parse_answers("5"), None);
        assert_eq!(parse_answers("0"), None);
        assert_eq!(parse_answers("1234123412"), None, "more than nine");
        assert_eq!(parse_answers("<script>"), None);
    }

    #[test]
    fn a_scanned_rating_link_gives_the_ticket_and_the_code() {
        type Read<'a> = Option<(&'a str, Option<&'a str>)>;
        let cases: &[(&str, Read<'_>)] = &[
            ("http://127.0.0.1:8081/nilai/K07-1128-023?kode=7K2M-9QXD", Some(("K07-1128-023", Some("7K2M-9QXD")))),
            ("/nilai/K07-1128-023?kode=7K2M-9QXD", Some(("K07-1128-023", Some("7K2M-9QXD")))),
            ("/nilai/K07-1128-023?x=1&kode=7K2M-9QXD", Some(("K07-1128-023", Some("7K2M-9QXD")))),
            ("/nilai/K07-1128-023", Some(("K07-1128-023", None))),
            ("K07-1128-023", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(scanned_link(text), *want, "{text}");
        }
    }

    #[test]
    fn the_questionnaire_asks_every_element_once() {
        let mut seen: Vec<&str> = QUESTION_ORDER.iter().map(|e| e.code()).collect();
        seen.sort_unstable();
        assert_eq!(seen, ["U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8", "U9"]);
        assert_eq!(QUESTION_ORDER[7], Element::U9, "U9 is question 8 on the official form");
    }
}
