//! The complaint screens (pengaduan, issue 16): the form (what it is
//! about, who complains or nobody, what happened), its confirmation, and
//! the complaint's receipt and status (`/tiket/ADU-…`).
//!
//! Post/redirect/get, like filing a request: the form's check keeps what
//! was typed in a draft (`loket_complaint` cookie, path `/pengaduan`) and
//! redirects to the confirmation; "Kirim" files from the draft and
//! redirects to the receipt, and the draft then names only the ticket,
//! so Back never files twice. A staff member is chosen by name: the form
//! carries a keyed token, never a NIP. Anonymous is the default.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, SameSite};
use loket_shared::complaint::{AboutKind, TEXT_MAX_CHARS};
use loket_shared::{StaffId, Ticket};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::{Ctx, UiError, UiForm, blocking, csrf_field, layout, local_time, trusted_svg};
use crate::web::complaints::{ComplaintFields, ComplaintStatus, FieldError, check_fields};
use crate::web::idem_for_key;

pub const DRAFT_COOKIE: &str = "loket_complaint";
pub const DRAFT_COOKIE_PATH: &str = "/pengaduan";

pub fn routes() -> Router<crate::web::AppState> {
    Router::new().route("/pengaduan", get(form_page).post(form_post)).route("/pengaduan/periksa", get(confirm_page))
}

/// The complaint form as typed (the staff choice as its token).
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ComplaintForm {
    #[serde(skip_serializing)]
    csrf: Option<String>,
    #[serde(skip_serializing)]
    step: Option<String>,
    kind: Option<String>,
    ticket: Option<String>,
    service: Option<String>,
    staff: Option<String>,
    /// `1`: named; anything else: anonymous.
    named: Option<String>,
    name: Option<String>,
    nik: Option<String>,
    phone: Option<String>,
    text: Option<String>,
}

impl ComplaintForm {
    fn named(&self) -> bool {
        self.named.as_deref() == Some("1")
    }

    fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("general")
    }
}

/// What the form's check hands to the confirmation, and the filing to
/// the Back button: see the module docs. Gone with the idle reset.
#[derive(Debug, Clone)]
pub struct ComplaintDraft {
    form: ComplaintForm,
    /// The idempotency key of "Kirim".
    key: String,
    /// Filed (what was typed dropped): Back shows the ticket instead.
    ticket: Option<String>,
}

fn draft_of(ctx: &Ctx) -> Option<(String, ComplaintDraft)> {
    let id = ctx.jar.get(DRAFT_COOKIE)?.value().to_owned();
    let draft = ctx.state.complaint_drafts.get(&id, ctx.state.clock.now())?;
    Some((id, draft))
}

/// The form's token for a staff member: keyed, so it tells nothing of
/// the NIP, and stable while the kiosk's key is.
fn staff_token(ctx: &Ctx, id: &StaffId) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(ctx.state.store.web_key()).expect("any key length");
    mac.update(b"loket-kiosk-complaint-staff:");
    mac.update(id.as_str().as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..12])
}

/// What the form offers: the active services `(code, name)` and staff
/// `(token, name, id)`.
struct Choices {
    services: Vec<(String, String)>,
    staff: Vec<(String, String, StaffId)>,
}

async fn choices(ctx: &Ctx) -> Result<Choices, UiError> {
    let store = ctx.state.store.clone();
    let (services, staff) = blocking(move || Ok((store.services()?, store.active_staff()?))).await?;
    Ok(Choices {
        services: services
            .into_iter()
            .map(|s| (s.code.to_string(), ctx.lang.t(&s.name_id, &s.name_en).to_owned()))
            .collect(),
        staff: staff.into_iter().map(|(id, name)| (staff_token(ctx, &id), name, id)).collect(),
    })
}

/// The form's fields as the shared rules take them (the staff token
/// turned back into an id; an unknown token into nothing).
fn fields(form: &ComplaintForm, choices: &Choices) -> ComplaintFields {
    let staff = form.staff.as_deref().filter(|t| !t.is_empty()).map(|token| {
        choices.staff.iter().find(|(t, _, _)| t == token).map_or_else(|| "?".to_owned(), |(_, _, id)| id.to_string())
    });
    ComplaintFields {
        kind: Some(form.kind().to_owned()),
        ticket: form.ticket.clone(),
        service: form.service.clone(),
        staff,
        named: form.named(),
        name: form.name.clone(),
        nik: form.nik.clone(),
        phone: form.phone.clone(),
        text: form.text.clone(),
    }
}

fn page(ctx: &Ctx, title: &str, body: Markup) -> Markup {
    layout(ctx, "citizen", title, html! {}, body)
}

fn error_of<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a FieldError> {
    errors.iter().find(|e| e.field == field)
}

/// A field's error paragraph: the message in the page's language, the
/// stable code in `data-code`.
fn error_p(ctx: &Ctx, id: &str, error: Option<&FieldError>) -> Markup {
    let message = error.map(|e| {
        let m = &e.error.message;
        match m.split_once(" / ") {
            Some((id_text, en)) => ctx.t(id_text, en).to_owned(),
            None => m.clone(),
        }
    });
    html! {
        p.error id=(format!("{id}-error")) aria-live="polite" data-code=[error.map(|e| e.error.code)] {
            @if let Some(m) = message { (m) }
        }
    }
}

fn text_input(
    ctx: &Ctx,
    id: &str,
    label: &str,
    hint: &str,
    value: Option<&str>,
    max: u32,
    error: Option<&FieldError>,
) -> Markup {
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            p.hint id=(format!("{id}-hint")) { (hint) }
            input id=(id) name=(id) type="text" value=[value] autocomplete="off" spellcheck="false" maxlength=(max)
                data-lang=(ctx.lang.code())
                aria-describedby=(format!("{id}-hint {id}-error")) aria-invalid=(if error.is_some() { "true" } else { "false" });
            (error_p(ctx, id, error))
        }
    }
}

fn form_markup(ctx: &Ctx, form: &ComplaintForm, choices: &Choices, errors: &[FieldError]) -> Markup {
    let kind = form.kind();
    let example = Ticket::new(&ctx.state.store.identity().kiosk, 11, 28, 23);
    let body = html! {
        nav.crumbs { a href="/" { "← " (ctx.t("Kembali", "Back")) } }
        h1 { (ctx.t("Sampaikan pengaduan", "Make a complaint")) }
        p.lead { (ctx.t("Pengaduan Anda dicatat di kiosk ini dan ditangani oleh petugas pengelola pengaduan. Anda mendapat nomor tiket untuk melihat jawabannya.",
                        "Your complaint is recorded at this kiosk and handled by the complaints officer. You get a ticket number to read the answer.")) }
        @if !errors.is_empty() {
            div.alert #complaint-alert role="alert" { (ctx.t("Periksa kembali isian yang ditandai.", "Please check the marked fields.")) }
        }
        form #complaint-form method="post" action="/pengaduan" autocomplete="off" novalidate {
            (csrf_field(ctx))
            input type="hidden" name="step" value="periksa";
            fieldset.profile #complaint-about aria-describedby="kind-error" {
                legend { h2 { (ctx.t("Tentang apa?", "What is it about?")) } }
                div.profile-options {
                    @for k in [AboutKind::General, AboutKind::Office, AboutKind::Service, AboutKind::Request, AboutKind::Staff] {
                        label.profile-option {
                            input type="radio" name="kind" value=(k.as_str()) checked[kind == k.as_str()];
                            span { (ctx.lang.t(k.label().0, k.label().1)) }
                        }
                    }
                }
                (error_p(ctx, "kind", error_of(errors, "kind")))
                div.field.invalid[error_of(errors, "service").is_some()] {
                    label for="service" { (ctx.t("Layanan (bila tentang layanan)", "Service (if it is about a service)")) }
                    select #service name="service" aria-describedby="service-error"
                        aria-invalid=(if error_of(errors, "service").is_some() { "true" } else { "false" }) {
                        option value="" { (ctx.t("— pilih layanan —", "— choose a service —")) }
                        @for (code, name) in &choices.services {
                            option value=(code) selected[form.service.as_deref() == Some(code.as_str())] { (name) }
                        }
                    }
                    (error_p(ctx, "service", error_of(errors, "service")))
                }
                (text_input(ctx, "ticket", ctx.t("Nomor tiket permohonan (bila tentang permohonan)", "Request ticket number (if it is about a request)"),
                    &format!("{}{}.", ctx.t("Tertera di tanda terima, contoh: ", "On the receipt, e.g. "), example),
                    form.ticket.as_deref(), 40, error_of(errors, "ticket")))
                div.field.invalid[error_of(errors, "staff").is_some()] {
                    label for="staff" { (ctx.t("Nama petugas (bila tentang petugas)", "Staff member's name (if it is about a staff member)")) }
                    select #staff name="staff" aria-describedby="staff-error"
                        aria-invalid=(if error_of(errors, "staff").is_some() { "true" } else { "false" }) {
                        option value="" { (ctx.t("— pilih nama petugas —", "— choose a name —")) }
                        @for (token, name, _) in &choices.staff {
                            option value=(token) selected[form.staff.as_deref() == Some(token.as_str())] { (name) }
                        }
                    }
                    (error_p(ctx, "staff", error_of(errors, "staff")))
                }
            }
            fieldset.profile #complaint-who aria-describedby="who-hint" {
                legend { h2 { (ctx.t("Identitas Anda", "Who you are")) } }
                p.hint #who-hint {
                    (ctx.t("Tanpa nama adalah pilihan awal: nama Anda tidak dicatat, dan Anda tetap mendapat nomor tiket untuk melihat jawaban. Bila Anda mencantumkan nama, identitas Anda dilindungi dan tidak ditunjukkan kepada petugas yang Anda adukan.",
                           "Anonymous is the default: your name is not recorded, and you still get a ticket number to read the answer. If you give your name, it is protected and never shown to a staff member you complain about."))
                }
                div.profile-options {
                    label.profile-option {
                        input type="radio" name="named" value="" #anonymous checked[!form.named()];
                        span { (ctx.t("Tanpa nama (anonim)", "Anonymous")) }
                    }
                    label.profile-option {
                        input type="radio" name="named" value="1" #named checked[form.named()];
                        span { (ctx.t("Dengan nama saya", "With my name")) }
                    }
                }
                (text_input(ctx, "name", ctx.t("Nama lengkap (bila dengan nama)", "Full name (if with your name)"),
                    ctx.t("Sesuai KTP-el.", "As on your ID card (KTP-el)."), form.name.as_deref(), 100, error_of(errors, "name")))
                (text_input(ctx, "nik", ctx.t("NIK (boleh dikosongkan)", "NIK (optional)"),
                    ctx.t("16 angka, tertera di KTP-el atau Kartu Keluarga.", "16 digits, on your ID card or family card."),
                    form.nik.as_deref(), 16, error_of(errors, "nik")))
                (text_input(ctx, "phone", ctx.t("Nomor HP (boleh dikosongkan)", "Mobile number (optional)"),
                    ctx.t("Contoh: 0812 3456 7890. Untuk menghubungi Anda tentang pengaduan ini.", "E.g. 0812 3456 7890. To reach you about this complaint."),
                    form.phone.as_deref(), 20, error_of(errors, "phone")))
            }
            div.field.invalid[error_of(errors, "text").is_some()] {
                label for="text" { (ctx.t("Isi pengaduan", "Your complaint")) }
                p.hint #text-hint {
                    (ctx.t("Ceritakan apa yang terjadi, kapan, dan di mana. Paling banyak 2000 huruf.",
                           "Say what happened, when and where. At most 2000 characters."))
                }
                textarea #text name="text" rows="6" maxlength=(TEXT_MAX_CHARS) required aria-describedby="text-hint text-error"
                    aria-invalid=(if error_of(errors, "text").is_some() { "true" } else { "false" }) {
                    (form.text.as_deref().unwrap_or(""))
                }
                (error_p(ctx, "text", error_of(errors, "text")))
            }
            div.actions.main-actions {
                button.primary.big type="submit" #complaint-next { (ctx.t("Lanjut", "Continue")) }
            }
        }
    };
    page(ctx, ctx.t("Sampaikan pengaduan", "Make a complaint"), body)
}

#[derive(Deserialize)]
struct FormQuery {
    /// A service to complain about (from its page).
    layanan: Option<String>,
}

async fn form_page(ctx: Ctx, axum::extract::Query(q): axum::extract::Query<FormQuery>) -> Result<Response, UiError> {
    let choices = choices(&ctx).await?;
    // Back from the confirmation ("Ubah") fills in what was typed.
    let form = match draft_of(&ctx) {
        Some((_, d)) if d.ticket.is_none() => d.form,
        _ => match q.layanan.filter(|code| choices.services.iter().any(|(c, _)| c == code)) {
            Some(code) => {
                ComplaintForm { kind: Some("service".into()), service: Some(code), ..ComplaintForm::default() }
            }
            None => ComplaintForm::default(),
        },
    };
    let markup = form_markup(&ctx, &form, &choices, &[]);
    Ok(ctx.page(StatusCode::OK, markup))
}

fn about_text(ctx: &Ctx, form: &ComplaintForm, choices: &Choices) -> String {
    let kind: AboutKind = form.kind().parse().unwrap_or(AboutKind::General);
    let label = ctx.lang.t(kind.label().0, kind.label().1).to_owned();
    let detail = match kind {
        AboutKind::Request => form.ticket.as_deref().map(|t| t.trim().to_ascii_uppercase()),
        AboutKind::Service => {
            choices.services.iter().find(|(c, _)| Some(c.as_str()) == form.service.as_deref()).map(|(_, n)| n.clone())
        }
        AboutKind::Staff => {
            choices.staff.iter().find(|(t, _, _)| Some(t.as_str()) == form.staff.as_deref()).map(|(_, n, _)| n.clone())
        }
        AboutKind::Office => Some(ctx.state.store.identity().name.clone()),
        AboutKind::General => None,
    };
    match detail {
        Some(d) => format!("{label}: {d}"),
        None => label,
    }
}

fn confirm_markup(ctx: &Ctx, form: &ComplaintForm, choices: &Choices, text: &str) -> Markup {
    let body = html! {
        h1 { (ctx.t("Periksa kembali pengaduan Anda", "Check your complaint")) }
        dl.facts.confirm {
            dt { (ctx.t("Tentang", "About")) } dd #confirm-about { (about_text(ctx, form, choices)) }
            dt { (ctx.t("Identitas", "Identity")) }
            @if form.named() {
                dd #confirm-name { (form.name.as_deref().unwrap_or("").trim()) }
                @if let Some(nik) = form.nik.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                    dt { "NIK" } dd #confirm-nik .mono { (nik) }
                }
                @if let Some(phone) = form.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                    dt { (ctx.t("Nomor HP", "Mobile")) } dd { (phone) }
                }
            } @else {
                dd #confirm-anonymous { (ctx.t("Tanpa nama (anonim)", "Anonymous")) }
            }
            dt { (ctx.t("Isi pengaduan", "Your complaint")) } dd #confirm-text .note { (text) }
        }
        div.actions.main-actions {
            a.button.secondary.big #complaint-edit href="/pengaduan" { (ctx.t("Ubah", "Change")) }
            form.inline #complaint-confirm method="post" action="/pengaduan" {
                (csrf_field(ctx))
                button.primary.big type="submit" name="step" value="kirim" #complaint-submit data-once {
                    (ctx.t("Kirim pengaduan", "Send complaint"))
                }
            }
        }
    };
    page(ctx, ctx.t("Periksa kembali", "Check your complaint"), body)
}

async fn confirm_page(ctx: Ctx) -> Result<Response, UiError> {
    let Some((_, draft)) = draft_of(&ctx) else {
        return Ok((ctx.jar, Redirect::to("/pengaduan")).into_response());
    };
    if let Some(ticket) = &draft.ticket {
        return Ok((ctx.jar, Redirect::to(&format!("/tiket/{ticket}"))).into_response());
    }
    let choices = choices(&ctx).await?;
    let text = crate::web::complaints::normalise_text(draft.form.text.as_deref().unwrap_or(""));
    let markup = confirm_markup(&ctx, &draft.form, &choices, &text);
    Ok(ctx.page(StatusCode::OK, markup))
}

async fn form_post(ctx: Ctx, UiForm(form): UiForm<ComplaintForm>) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let now = ctx.state.clock.now();
    let choices = choices(&ctx).await?;
    if form.step.as_deref() == Some("kirim") {
        // Filed from the draft: what was checked and confirmed, nothing else.
        let Some((id, draft)) = draft_of(&ctx) else {
            return Ok((ctx.jar, Redirect::to("/pengaduan")).into_response());
        };
        if let Some(ticket) = &draft.ticket {
            return Ok((ctx.jar, Redirect::to(&format!("/tiket/{ticket}"))).into_response());
        }
        let store = ctx.state.store.clone();
        let f = fields(&draft.form, &choices);
        let input = match blocking(move || check_fields(&store, &f)).await? {
            Ok(input) => input,
            // The roster or catalog changed since the check: the form again.
            Err(errors) => {
                let markup = form_markup(&ctx, &draft.form, &choices, &errors);
                return Ok(ctx.page(StatusCode::UNPROCESSABLE_ENTITY, markup));
            }
        };
        let idem = idem_for_key(&ctx.state.store, &draft.key, &draft.form)?;
        let filed = ctx.state.store.file_complaint(input, Some(idem)).await?;
        ctx.state.sync.nudge.notify_one();
        tracing::info!(doc = %filed.id, ticket = %filed.ticket, "complaint filed at the kiosk screen");
        let done =
            ComplaintDraft { form: ComplaintForm::default(), key: draft.key, ticket: Some(filed.ticket.to_string()) };
        ctx.state.complaint_drafts.replace(&id, done, now);
        return Ok((ctx.jar, Redirect::to(&format!("/tiket/{}?baru=1", filed.ticket))).into_response());
    }
    let store = ctx.state.store.clone();
    let f = fields(&form, &choices);
    if let Err(errors) = blocking(move || check_fields(&store, &f)).await? {
        tracing::info!(fields = ?errors.iter().map(|e| e.field).collect::<Vec<_>>(), "complaint form refused");
        let markup = form_markup(&ctx, &form, &choices, &errors);
        return Ok(ctx.page(StatusCode::UNPROCESSABLE_ENTITY, markup));
    }
    let typed = ComplaintForm { csrf: None, step: None, ..form };
    // The same complaint checked again keeps its key (a retry files it once).
    let key = match draft_of(&ctx) {
        Some((old, d)) => {
            ctx.state.complaint_drafts.remove(&old);
            if d.ticket.is_none() && d.form == typed { d.key } else { new_key() }
        }
        None => new_key(),
    };
    let draft = ComplaintDraft { form: typed, key, ticket: None };
    let id = ctx.state.complaint_drafts.put(draft, now);
    let ttl = i64::try_from(ctx.state.citizen_idle_timeout.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build((DRAFT_COOKIE, id))
        .path(DRAFT_COOKIE_PATH)
        .http_only(true)
        .secure(ctx.state.secure_cookies)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::seconds(ttl));
    Ok((ctx.jar.add(cookie), Redirect::to("/pengaduan/periksa")).into_response())
}

fn new_key() -> String {
    uuid::Uuid::from_bytes(loket_node::random_bytes::<16>()).to_string()
}

// ------------------------------------------------------------------ status

fn state_text(ctx: &Ctx, s: &ComplaintStatus) -> String {
    let (id, en) = s.state.label();
    ctx.t(id, en).to_owned()
}

/// The receipt (`fresh`: right after filing) and the status of a
/// complaint: nothing personal, not even what it says.
pub(super) fn status_markup(ctx: &Ctx, s: &ComplaintStatus, fresh: bool, qr: Option<String>) -> Markup {
    let offset = ctx.state.utc_offset;
    let body = html! {
        @if fresh {
            h1 { (ctx.t("Pengaduan Anda diterima", "Your complaint has been received")) }
            p.lead { (ctx.t("Simpan nomor tiket ini. Dengan nomor ini Anda dapat melihat jawabannya di kiosk kantor ini (menu Cek status tiket).",
                            "Keep this ticket number. With it you can read the answer at this office's kiosks (Check a ticket).")) }
        } @else {
            h1 { (ctx.t("Status pengaduan", "Complaint status")) }
        }
        section.receipt aria-label=(ctx.t("Tanda terima pengaduan", "Complaint receipt")) {
            p.receipt-office { (ctx.state.store.identity().name) }
            p.ticket-label { (ctx.t("Nomor tiket pengaduan", "Complaint ticket number")) }
            p.ticket #ticket-number { (s.ticket) }
            @if let Some(svg) = qr {
                div.qr role="img" aria-label=(ctx.t("Kode QR nomor tiket pengaduan", "QR code of the complaint ticket number")) { (trusted_svg(svg)) }
            }
            dl.facts {
                dt { (ctx.t("Tentang", "About")) } dd #complaint-about { (ctx.lang.t(s.about.label().0, s.about.label().1)) }
                dt { (ctx.t("Diajukan", "Filed")) } dd { (local_time(s.filed_at_ms, offset)) }
                dt { (ctx.t("Status", "Status")) }
                dd #complaint-state data-state=(s.state.as_str()) { (state_text(ctx, s)) }
                @if let Some(class) = s.class {
                    dt { (ctx.t("Klasifikasi", "Classified as")) }
                    dd #complaint-class data-class=(class.as_str()) { (ctx.lang.t(class.label().0, class.label().1)) }
                }
                @if let (Some(due), false) = (s.due_at_ms, s.state.is_answered()) {
                    dt { (ctx.t("Dijawab paling lambat", "Answer due by")) } dd #complaint-due { (local_time(due, offset)) }
                }
                @if let Some((days, notice)) = &s.extension {
                    dt { (ctx.t("Tenggat diperpanjang", "Deadline extended")) }
                    dd #complaint-extension {
                        @match ctx.lang {
                            super::Lang::Id => { (days) " hari kerja" }
                            super::Lang::En => { (days) " working day" @if *days != 1 { "s" } }
                        }
                    }
                    @if !notice.is_empty() {
                        dt { (ctx.t("Pemberitahuan", "Notice")) } dd #complaint-notice .note { (notice) }
                    }
                }
                @if let Some(number) = s.lapor.first() {
                    dt { (ctx.t("Diteruskan ke SP4N-LAPOR!", "Forwarded to SP4N-LAPOR!")) }
                    dd #complaint-lapor {
                        (ctx.t("Nomor pelacakan: ", "Tracking number: ")) span.mono { (number) }
                    }
                }
                @if let Some(closed) = s.closed_at_ms {
                    dt { (ctx.t("Ditutup", "Closed")) } dd { (local_time(closed, offset)) }
                }
            }
        }
        @if !s.answers.is_empty() {
            section #complaint-answers aria-labelledby="answers-title" {
                h2 #answers-title { (ctx.t("Jawaban", "Answer")) }
                @if s.flagged {
                    p.hint #complaint-flagged { (ctx.t("Ada lebih dari satu jawaban; petugas sedang menyatukannya.",
                                                       "There is more than one answer; the officers are bringing them together.")) }
                }
                @for (at, text) in &s.answers {
                    div.answer {
                        p.hint { (local_time(*at, offset)) }
                        p.note.complaint-answer { (text) }
                    }
                }
            }
        }
        div.actions.main-actions.no-print {
            @if fresh {
                button.secondary.big type="button" #print data-print { (ctx.t("Cetak tanda terima", "Print receipt")) }
            }
            a.button.primary.big #done href="/mulai-ulang" { (ctx.t("Selesai", "Done")) }
        }
    };
    page(ctx, ctx.t("Pengaduan", "Complaint"), body)
}
