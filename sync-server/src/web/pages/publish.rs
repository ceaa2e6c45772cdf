//! Publishing the IKM to the kiosks: an admin picks a period, and each
//! office's IKM for it goes into the catalog document every kiosk holds,
//! so the office's kiosks show it (offline too) from their next sync.

use super::*;

#[derive(Deserialize)]
pub(super) struct PublishQuery {
    /// The period just published (after the redirect), for the message.
    diterbitkan: Option<String>,
}

/// The publications in force, one row per office, and the form.
pub(super) async fn publish_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<PublishQuery>,
) -> Result<Response, PageError> {
    web.user.require(Role::Admin)?;
    let message = q.diterbitkan.as_deref().and_then(Period::parse).map(|p| {
        (
            format!(
                "IKM {} diterbitkan; kiosk menampilkannya setelah sinkronisasi berikutnya. / The IKM of {} is published; kiosks show it after their next sync.",
                p.label(),
                p.label_in(Lang::En)
            ),
            true,
        )
    });
    publish_markup(&st, page, &web, StatusCode::OK, message).await
}

async fn publish_markup(
    st: &AppState,
    page: Page,
    web: &WebUser,
    status: StatusCode,
    message: Option<(String, bool)>,
) -> Result<Response, PageError> {
    let offset = st.config.utc_offset();
    let now = Period::from_query(None, offset, false)?;
    let catalog = crate::central::load_catalog(&st.db).await?;
    // Quarters, halves and years of this year and the last, newest first:
    // what a city publishes.
    let mut choices: Vec<Period> = Vec::new();
    for year in [now.year, now.year - 1] {
        choices.extend((1..=4).rev().map(|q| Period { year, months: (3 * q - 2, 3 * q) }));
        choices.push(Period { year, months: (7, 12) });
        choices.push(Period { year, months: (1, 6) });
        choices.push(Period { year, months: (1, 12) });
    }
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let body = html! {
        h1 { (t("Terbitkan IKM ke kiosk", "Publish the IKM to the kiosks")) }
        p { (t(
            "IKM setiap kelurahan untuk periode yang dipilih dikirim ke kiosk kelurahan itu dan tampil di layar beranda warga, juga saat kiosk luring. Kelurahan tanpa responden pada periode itu tetap menampilkan terbitan sebelumnya. Tercatat di log audit.",
            "Each kelurahan's IKM for the chosen period goes to that kelurahan's kiosks and shows on the citizens' home screen, offline too. A kelurahan without respondents in the period keeps its earlier publication. Audited.",
        )) }
        @if let Some((text, ok)) = &message {
            p.alert.ok[*ok] #message role=(if *ok { "status" } else { "alert" }) { (lang.pick(text)) }
        }
        form #publish-form method="post" action="/admin/ikm/terbit" {
            input type="hidden" name="csrf" value=(page.csrf);
            label for="periode" { (t("Periode", "Period")) }
            select #periode name="periode" {
                @for (year, group) in [(now.year, &choices[..7]), (now.year - 1, &choices[7..])] {
                    optgroup label=(format!("{} {year}", t("Tahun", "Year"))) {
                        @for p in group { option value=(p.code()) { (p.label_in(lang)) } }
                    }
                }
            }
            button type="submit" #publish { (t("Terbitkan", "Publish")) }
        }
        h2 { (t("Terbitan yang berlaku", "Publications in force")) }
        @if catalog.published_ikm.is_empty() {
            (empty_state("no-publications", t(
                "Belum ada IKM yang diterbitkan; kiosk belum menampilkan IKM. Setelah diterbitkan, setiap kelurahan tampil di sini dengan periode, IKM dan mutunya.",
                "No IKM published yet; kiosks show none. Once published, each kelurahan shows here with its period, IKM and grade.",
            )))
        } @else {
            table #publications .fit {
                thead { tr {
                    th scope="col" { "Kelurahan" } th scope="col" { (t("Periode", "Period")) } th.num scope="col" { "IKM" }
                    th scope="col" { (t("Mutu", "Grade")) } th.num scope="col" { (t("Responden", "Respondents")) }
                    th.num scope="col" { (t("Sampel minimum", "Minimum sample")) } th scope="col" { (t("Diterbitkan", "Published")) }
                } }
                tbody {
                    @for (k, p) in &catalog.published_ikm {
                        tr data-kelurahan=(k.as_str()) data-period=(p.period) .insufficient[!p.sample_sufficient()] {
                            td { (place_name(k.as_str())) }
                            td { (Period::parse(&p.period).map_or_else(|| p.period_label.clone(), |x| x.label_in(lang))) }
                            td.num.ikm { (p.ikm_text()) }
                            td.grade { (grade_tag(lang, p.grade())) }
                            td.num { (p.respondents) }
                            td.num { (p.sample_min) @if !p.sample_sufficient() { " " (tag("warn", t("kurang", "short"))) } }
                            td.when { (st.human_time(p.published_at_ms)) }
                        }
                    }
                }
            }
        }
    };
    let markup = page.frame(t("Terbitkan IKM", "Publish the IKM"), &web.user, body);
    Ok(page.respond(status, markup))
}

#[derive(Deserialize)]
pub(super) struct PublishForm {
    csrf: Option<String>,
    periode: Option<String>,
}

/// Publishes, then redirects to the page (a reload never publishes twice).
pub(super) async fn publish_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    PageForm(form): PageForm<PublishForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let raw = form.periode.as_deref().unwrap_or_default();
    match publish(&st, &web.user, raw).await {
        Ok((period, _)) => {
            Ok((page.jar, Redirect::to(&format!("/admin/ikm/terbit?diterbitkan={}", period.code()))).into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let text = e.message.clone();
            publish_markup(&st, page, &web, e.status, Some((text, false))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Computes each office's IKM for the period `raw` names (from the
/// rollups, as the IKM page does) and publishes it; shared by the page and
/// `POST /api/admin/ikm/publish`. The period and the number of offices
/// published.
pub(crate) async fn publish(st: &AppState, user: &User, raw: &str) -> Result<(Period, usize), ApiError> {
    user.require(Role::Admin)?;
    let period = Period::parse(raw.trim()).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_period",
            "periode: 2026, 2026-H1, 2026-Q3 atau 2026-11 / period: 2026, 2026-H1, 2026-Q3 or 2026-11",
        )
    })?;
    let groups =
        crate::ops::reports::ikm_rollup(&st.db, user, period.months(), crate::ops::reports::IkmKey::Kelurahan).await?;
    let offices =
        crate::central::publish_ikm(&st.db, &st.writer, user, (period.code(), period.label()), groups).await?;
    Ok((period, offices))
}
