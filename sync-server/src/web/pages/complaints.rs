//! Complaints (pengaduan, issue 16): per office, how many were received,
//! are open and are overdue, with the list below; one complaint with its
//! history and a form per central step. The rules are
//! `ops::complaints`'s, shared with the API; this page only offers what
//! the user may do.

use loket_shared::complaint::{Class, State as ComplaintState};

use super::*;

#[derive(Deserialize)]
pub(super) struct ComplaintQuery {
    kelurahan: Option<String>,
    /// `terlambat=1`: only the overdue ones.
    terlambat: Option<String>,
    /// The page cursor (`<received_ms>_<id>`).
    setelah: Option<String>,
}

fn state_tag(lang: Lang, state: &str, overdue: bool) -> Markup {
    let s = [ComplaintState::Received, ComplaintState::Registered, ComplaintState::Answered, ComplaintState::Closed]
        .into_iter()
        .find(|s| s.as_str() == state);
    let text = s.map_or_else(|| state.to_owned(), |s| lang.t(s.label().0, s.label().1).to_owned());
    let kind = match (s, overdue) {
        (_, true) => "bad",
        (Some(ComplaintState::Answered | ComplaintState::Closed), _) => "ok",
        _ => "info",
    };
    html! {
        (tag(kind, &text))
        @if overdue { " " (tag("bad", lang.t("Lewat tenggat", "Overdue"))) }
    }
}

pub(super) async fn complaints_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<ComplaintQuery>,
) -> Result<Response, PageError> {
    let now = store::now_ms();
    let mut f = crate::ops::complaints::ListFilter { limit: LIST_PAGE, ..Default::default() };
    if let Some(k) = q.kelurahan.as_deref().filter(|s| !s.is_empty()) {
        f.kelurahan = Some(k.parse().map_err(|e| ApiError::bad_request("invalid_kelurahan", e))?);
    }
    let overdue_only = q.terlambat.as_deref() == Some("1");
    f.overdue = overdue_only.then_some(true);
    if let Some(c) = q.setelah.as_deref().filter(|s| !s.is_empty()) {
        f.after = Some(crate::web::central::parse_cursor(c).map(|(ms, id)| (ms, id.to_string()))?);
    }
    let kelurahan = f.kelurahan.clone();
    let counts = crate::ops::complaints::counts(&st.db, &web.user, now).await?;
    let mut rows = crate::ops::complaints::list(&st.db, &web.user, f, now).await?;
    let next = (rows.len() > LIST_PAGE as usize).then(|| {
        rows.truncate(LIST_PAGE as usize);
        let last = rows.last().map(|r| format!("{}_{}", r.received_at_ms, r.id)).unwrap_or_default();
        let mut url = format!("/admin/pengaduan?setelah={last}");
        if let Some(k) = &kelurahan {
            url.push_str(&format!("&kelurahan={k}"));
        }
        if overdue_only {
            url.push_str("&terlambat=1");
        }
        url
    });
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let body = html! {
        h1 { (t("Pengaduan", "Complaints")) }
        p #figures-link { a href="/admin/pengaduan/angka" { (t(
            "Angka pengaduan: per kantor dan layanan, waktu jawaban, tema berulang dan U8 →",
            "Complaint figures: per office and service, time to answer, recurring themes and U8 →",
        )) } }
        p { (t(
            "Tenggat dihitung dalam hari kerja kantor sejak pengaduan diterima: ringan 2, normatif 5, tidak berkadar pengawasan 14, berkadar pengawasan 60 hari, ditambah satu perpanjangan. Pengaduan yang belum diklasifikasi memakai tenggat paling ketat.",
            "Deadlines count the office's working days from receipt: simple 2, about rules 5, no investigation 14, needs investigation 60 days, plus one extension. Complaints not yet classified take the strictest deadline.",
        )) }
        @if counts.is_empty() {
            (empty_state("complaints-empty", t(
                "Belum ada pengaduan. Pengaduan yang diajukan warga di kiosk muncul di sini setelah kiosk sinkron.",
                "No complaints yet. Complaints citizens file at a kiosk show here once the kiosk has synced.",
            )))
        } @else {
            table #complaint-offices .fit {
                thead { tr {
                    th scope="col" { "Kelurahan" }
                    th.num scope="col" { (t("Diterima", "Received")) }
                    th.num scope="col" { (t("Terbuka", "Open")) }
                    th.num scope="col" { (t("Lewat tenggat", "Overdue")) }
                } }
                tbody {
                    @for c in &counts {
                        tr data-kelurahan=(c.kelurahan) {
                            td { a href=(format!("/admin/pengaduan?kelurahan={}", c.kelurahan)) { (place_name(&c.kelurahan)) } }
                            td.num { (c.received) }
                            td.num { (c.open) }
                            td.num { @if c.overdue > 0 {
                                a href=(format!("/admin/pengaduan?kelurahan={}&terlambat=1", c.kelurahan)) { (c.overdue) }
                            } @else { "0" } }
                        }
                    }
                }
            }
            h2 {
                @if let Some(k) = &kelurahan { (place_name(k.as_str())) } @else { (t("Semua pengaduan", "All complaints")) }
                @if overdue_only { " — " (t("lewat tenggat", "overdue")) }
            }
            @if rows.is_empty() {
                (empty_state("complaints-none", t("Tidak ada pengaduan dengan saringan ini.", "No complaint matches this filter.")))
            } @else {
                table #complaints .fit {
                    thead { tr {
                        th scope="col" { (t("Tiket", "Ticket")) }
                        th scope="col" { "Kelurahan" }
                        th scope="col" { (t("Tentang", "About")) }
                        th scope="col" { (t("Diterima", "Received")) }
                        th scope="col" { (t("Tenggat", "Due")) }
                        th scope="col" { "Status" }
                    } }
                    tbody {
                        @for r in &rows {
                            @let about = r.about_kind.parse::<loket_shared::complaint::AboutKind>().map(|k| k.label());
                            tr data-complaint=(r.id) {
                                td.mono { a href=(format!("/admin/pengaduan/{}", r.id)) { (r.ticket) } }
                                td { (place_name(&r.kelurahan)) }
                                td { @match about { Ok((id, en)) => { (lang.t(id, en)) } Err(_) => { (r.about_kind) } } }
                                td.when { (st.human_time(r.received_at_ms)) }
                                td.when { (st.human_time(r.due_at_ms)) }
                                td.status { (state_tag(lang, &r.state, r.overdue(now))) }
                            }
                        }
                    }
                }
                @if let Some(n) = next { p { a href=(n) { (t("Berikutnya →", "Next →")) } } }
            }
        }
    };
    let markup = page.frame(t("Pengaduan", "Complaints"), &web.user, body);
    Ok(page.respond(StatusCode::OK, markup))
}

pub(super) async fn complaint_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let markup = complaint_markup(&st, &page, &web, &raw, None).await?;
    Ok(page.respond(StatusCode::OK, markup))
}

#[derive(Deserialize)]
pub(super) struct StepForm {
    csrf: Option<String>,
    /// `register`, `extend`, `lapor`, `answer` or `close`.
    langkah: Option<String>,
    klasifikasi: Option<String>,
    unit: Option<String>,
    hari: Option<String>,
    lapor: Option<String>,
    teks: Option<String>,
}

pub(super) async fn complaint_step(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(raw): Path<String>,
    PageForm(form): PageForm<StepForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    let days = match form.hari.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(d) => Some(
            d.parse::<u32>()
                .map_err(|_| ApiError::unprocessable("invalid_field", "isian days tidak valid / days is invalid"))?,
        ),
    };
    let req = crate::ops::complaints::StepRequest {
        kind: form.langkah.unwrap_or_default(),
        class: form.klasifikasi,
        unit: form.unit,
        days,
        lapor: form.lapor,
        text: form.teks,
    };
    let result = crate::ops::complaints::append_step(&st.db, &st.writer, &web.user, &raw, req).await;
    match result.map_err(ApiError::from) {
        Ok(_) => {
            let markup = complaint_markup(&st, &page, &web, &raw, Some(("Tersimpan / Saved", true))).await?;
            Ok(page.respond(StatusCode::OK, markup))
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let markup = complaint_markup(&st, &page, &web, &raw, Some((&e.message, false))).await?;
            Ok(page.respond(e.status, markup))
        }
        Err(e) => Err(e.into()),
    }
}

async fn complaint_markup(
    st: &AppState,
    page: &Page,
    web: &WebUser,
    raw: &str,
    message: Option<(&str, bool)>,
) -> Result<Markup, PageError> {
    let d = crate::ops::complaints::load_visible(&st.db, &web.user, raw).await?;
    let catalog = crate::central::load_catalog(&st.db).await?;
    let now = store::now_ms();
    let (view, derived) = (&d.view, &d.derived);
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let action = format!("/admin/pengaduan/{}", view.id);
    let state = derived.state;
    let open = state != ComplaintState::Closed;
    let csrf = html! { input type="hidden" name="csrf" value=(page.csrf); };
    let (about_id, about_en) = view.about.kind().label();
    let body = html! {
        p { a href="/admin/pengaduan" { "← " (t("Pengaduan", "Complaints")) } }
        h1 { (t("Pengaduan", "Complaint")) " " span #ticket .mono { (view.ticket.as_str()) } }
        @if let Some((text, ok)) = message {
            p.alert.ok[ok] #message role=(if ok { "status" } else { "alert" }) { (lang.pick(text)) }
        }
        dl.facts {
            dt { "Status" }
            dd #state data-state=(state.as_str()) { (state_tag(lang, state.as_str(), d.row.as_ref().is_some_and(|r| r.overdue(now)))) }
            dt { "Kelurahan" } dd { (place_name(view.kelurahan.as_str())) }
            dt { (t("Tentang", "About")) }
            dd { (lang.t(about_id, about_en))
                @if let Some(target) = crate::store::complaints::about_target(&view.about) { " " span.mono { (target) } } }
            dt { (t("Pengadu", "Complainant")) }
            dd #complainant {
                @if d.complainant_hidden { (t("Dilindungi: pengaduan ini tentang Anda.", "Protected: this complaint is about you.")) }
                @else if let Some(c) = &view.complainant {
                    (c.name.masked())
                    @if let Some(n) = &c.nik { " · NIK " span.mono { (n.masked()) } }
                }
                @else { (t("Anonim", "Anonymous")) }
            }
            @if let Some(r) = &d.row {
                dt { (t("Diterima", "Received")) } dd { (st.human_time(r.received_at_ms)) }
                dt { (t("Tenggat", "Due")) } dd #due { (st.human_time(r.due_at_ms))
                    @if let Some(x) = derived.extension_days { " (" (t("diperpanjang", "extended by")) " " (x) " " (t("hari kerja", "working days")) ")" } }
            }
            @if let Some(c) = derived.class { dt { (t("Klasifikasi", "Class")) } dd { @let (i, e) = c.label(); (lang.t(i, e)) } }
            @if let Some(u) = &derived.unit { dt { (t("Unit", "Unit")) } dd #unit data-unit=(u.to_string()) { (unit_name(lang, u, &catalog)) } }
            @if !derived.lapor.is_empty() { dt { "SP4N-LAPOR!" } dd.mono { (derived.lapor.join(", ")) } }
        }
        h2 { (t("Isi pengaduan", "What was said")) }
        p #complaint-text .prewrap { (view.text) }
        @if !derived.answers.is_empty() {
            h2 { (t("Jawaban", "Answer")) }
            @if derived.answers.len() > 1 {
                p.alert role="alert" { (t("Beberapa jawaban ditulis bersamaan; tulis satu jawaban yang menggantikan semuanya.", "Several answers were written at once; write one answer that replaces them all.")) }
            }
            @for a in &derived.answers { blockquote.prewrap { (a.text) } p.small { (by_name(lang, &a.by)) " · " (st.human_time(a.at_ms)) } }
        }
        h2 { (t("Riwayat", "History")) }
        ol #steps {
            @for s in &derived.ordered {
                li data-kind=(crate::ops::complaints::kind_name(s.kind)) {
                    strong { @let (i, e) = step_label(s.kind); (lang.t(i, e)) } " · " (by_name(lang, &s.by)) " · " (st.human_time(s.at_ms))
                    @if let Some(c) = s.class { " · " @let (i, e) = c.label(); (lang.t(i, e)) }
                    @if let Some(u) = &s.unit { " · " (unit_name(lang, u, &catalog)) }
                    @if let Some(x) = s.days { " · +" (x) " " (t("hari", "days")) }
                    @if let Some(l) = &s.lapor { " · LAPOR! " span.mono { (l) } }
                    @if let Some(text) = &s.text { br; span.prewrap { (text) } }
                }
            }
        }
        @if d.may_act && open {
            h2 { (t("Tindakan", "Actions")) }
            @if !state.is_answered() {
                form.step method="post" action=(action) {
                    (csrf)
                    input type="hidden" name="langkah" value="register";
                    h3 { (t("Daftarkan dan klasifikasikan", "Register and classify")) }
                    label { (t("Klasifikasi", "Class")) " "
                        select name="klasifikasi" required {
                            @for c in Class::ALL { @let (i, e) = c.label(); option value=(c.as_str()) selected[derived.class == Some(c)] { (lang.t(i, e)) " (" (c.days()) " " (t("hari kerja", "working days")) ")" } }
                        }
                    }
                    label { (t("Unit penanggung jawab", "Responsible unit")) " "
                        select name="unit" required {
                            option value=(format!("kelurahan:{}", view.kelurahan)) { (t("Kelurahan", "Kelurahan")) " " (place_name(view.kelurahan.as_str())) }
                            @for a in &catalog.agencies { option value=(format!("agency:{}", a.code)) selected[derived.unit.as_ref().is_some_and(|u| u.to_string() == format!("agency:{}", a.code))] { (a.name) } }
                        }
                    }
                    button type="submit" { (t("Daftarkan", "Register")) }
                }
            }
            @if state == ComplaintState::Registered && derived.extension_days.is_none() {
                form.step method="post" action=(action) {
                    (csrf)
                    input type="hidden" name="langkah" value="extend";
                    h3 { (t("Perpanjang tenggat (sekali)", "Extend the deadline (once)")) }
                    label { (t("Hari kerja", "Working days")) " " input type="number" name="hari" min="1" max="14" value="7" required; }
                    label { (t("Pemberitahuan kepada pengadu", "Notice to the complainant")) textarea name="teks" maxlength="1000" required {} }
                    button type="submit" { (t("Perpanjang", "Extend")) }
                }
            }
            @if state != ComplaintState::Received && derived.lapor.is_empty() {
                form.step method="post" action=(action) {
                    (csrf)
                    input type="hidden" name="langkah" value="lapor";
                    h3 { (t("Teruskan ke SP4N-LAPOR!", "Forward to SP4N-LAPOR!")) }
                    label { (t("Nomor pelacakan", "Tracking number")) " " input type="text" name="lapor" maxlength="32" required; }
                    button type="submit" { (t("Teruskan", "Forward")) }
                }
            }
            @if state != ComplaintState::Received {
                form.step method="post" action=(action) {
                    (csrf)
                    input type="hidden" name="langkah" value="answer";
                    h3 { (t("Jawab", "Answer")) }
                    label { (t("Jawaban yang dibaca pengadu", "The answer the complainant reads")) textarea name="teks" maxlength="2000" required {} }
                    button type="submit" { (t("Kirim jawaban", "Send the answer")) }
                }
            }
            @if state.is_answered() || !derived.lapor.is_empty() {
                form.step method="post" action=(action) {
                    (csrf)
                    input type="hidden" name="langkah" value="close";
                    h3 { (t("Tutup pengaduan", "Close the complaint")) }
                    label { (t("Catatan (tidak wajib)", "Note (optional)")) textarea name="teks" maxlength="1000" {} }
                    button type="submit" { (t("Tutup", "Close")) }
                }
            }
        }
    };
    Ok(page.frame(t("Pengaduan", "Complaint"), &web.user, body))
}

/// A step's kind in words (the `data-kind` attribute keeps the code).
fn step_label(kind: loket_shared::complaint::StepKind) -> (&'static str, &'static str) {
    use loket_shared::complaint::StepKind;
    match kind {
        StepKind::File => ("Diajukan di kiosk", "Filed at the kiosk"),
        StepKind::Register => ("Didaftarkan", "Registered"),
        StepKind::Extend => ("Tenggat diperpanjang", "Deadline extended"),
        StepKind::Forward => ("Diteruskan ke SP4N-LAPOR!", "Forwarded to SP4N-LAPOR!"),
        StepKind::Answer => ("Dijawab", "Answered"),
        StepKind::Close => ("Ditutup", "Closed"),
    }
}

/// Who wrote a step: the citizen in words, a central user by name
/// (`role:username` as stored).
fn by_name(lang: super::Lang, by: &str) -> String {
    match by {
        "citizen" => lang.t("Warga", "Citizen").to_owned(),
        _ => by.split_once(':').map_or(by, |(_, user)| user).to_owned(),
    }
}

/// The responsible unit as an official reads it: the kelurahan's name,
/// or the agency's from the catalog.
fn unit_name(
    lang: super::Lang,
    unit: &loket_shared::complaint::Unit,
    catalog: &loket_shared::reference::Catalog,
) -> String {
    use loket_shared::complaint::Unit;
    match unit {
        Unit::Kelurahan(k) => format!("{} {}", lang.t("Kelurahan", "Kelurahan"), place_name(k.as_str())),
        Unit::Agency(a) => {
            catalog.agencies.iter().find(|x| x.code == *a).map_or_else(|| a.to_string(), |x| x.name.clone())
        }
    }
}
