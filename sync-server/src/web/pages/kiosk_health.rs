//! Kiosk health: last contact, version, pending changes, time offline;
//! revoking a kiosk (with a confirmation).

use super::*;

// ------------------------------------------------------------------ kiosk health

pub(super) async fn kiosk_health(State(st): State<AppState>, page: Page, web: WebUser) -> Result<Response, PageError> {
    web.user.require(Role::Admin)?;
    let rows = crate::ops::admin::kiosks(&st.db).await?;
    let now = store::now_ms();
    let offline_after_ms = i64::try_from(st.config.kiosk_offline_after.as_millis()).unwrap_or(i64::MAX);
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let body = html! {
        h1 { (t("Kesehatan kiosk", "Kiosk health")) }
        p { (t("Kiosk dianggap luring bila tidak menghubungi server lebih dari", "A kiosk counts as offline when it has not reached the server for more than")) " "
            (st.config.kiosk_offline_after.as_secs() / 60) " " (t("menit.", "minutes.")) }
        @if rows.is_empty() {
            (empty_state("kiosks-empty", t(
                "Belum ada kiosk yang terdaftar. Setiap kiosk yang didaftarkan dengan kode pendaftaran muncul di sini dengan kontak terakhir, versi, perubahan yang belum terkirim, dan statusnya.",
                "No kiosk is enrolled yet. Each kiosk enrolled with an enrollment code shows here with its last contact, version, changes not yet sent, and status.",
            )))
        } @else {
            table #kiosks .fit {
                thead { tr {
                    th scope="col" { "Kiosk" }
                    th scope="col" { "Kelurahan" }
                    th scope="col" { (t("Nama", "Name")) }
                    th scope="col" { (t("Kontak terakhir", "Last contact")) }
                    th scope="col" { (t("Versi", "Version")) }
                    th.num scope="col" { (t("Perubahan tertunda", "Pending changes")) }
                    th scope="col" { "Status" }
                    th scope="col" { (t("Tindakan", "Action")) }
                } }
                tbody {
                    @for k in &rows {
                        @let offline = k.last_seen_at_ms.is_none_or(|t| now - t > offline_after_ms);
                        tr data-kiosk=(k.code.as_str()) .revoked[k.revoked] .offline[offline && !k.revoked] {
                            td.mono { (k.code.as_str()) }
                            td {
                                @if let Some(w) = loket_shared::wilayah::region(k.kelurahan.as_str()) { (w.name) br; }
                                span.mono { (k.kelurahan.as_str()) }
                            }
                            td.name { (k.name) }
                            td.when { @if let Some(t) = k.last_seen_at_ms { (st.human_time(t)) } @else { "—" } }
                            td { (k.version.as_deref().unwrap_or("—")) }
                            td.num { @if let Some(p) = k.pending_known { (p) } @else { "—" } }
                            td.status {
                                @if k.revoked { (tag("muted", t("Dicabut", "Revoked"))) }
                                @else if offline {
                                    (tag("warn", t("Luring", "Offline")))
                                    @if let Some(at) = k.last_seen_at_ms { br; (elapsed_text(lang, now - at)) }
                                }
                                @else { (tag("ok", t("Daring", "Online"))) }
                            }
                            td {
                                @if !k.revoked {
                                    // Revoking is for a stolen or broken kiosk and needs a new
                                    // enrollment: asked twice, with no script needed.
                                    details.revoke {
                                        summary { (t("Cabut akses…", "Revoke…")) }
                                        form method="post" action=(format!("/admin/kiosk/{}/cabut", k.id)) {
                                            input type="hidden" name="csrf" value=(page.csrf);
                                            label {
                                                input type="checkbox" name="yakin" value="1" required;
                                                " " (t("Kiosk ini tidak bisa sinkron lagi sampai didaftarkan ulang.", "This kiosk cannot sync again until it is enrolled anew."))
                                            }
                                            button.danger type="submit" { (t("Cabut akses", "Revoke")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = page.frame(t("Kondisi Kiosk Kelurahan", "Kelurahan Kiosk Health"), &web.user, body);
    Ok(page.respond(StatusCode::OK, markup))
}

pub(super) async fn revoke(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(id): Path<String>,
    PageForm(form): PageForm<RevokeForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    if form.yakin.as_deref() != Some("1") {
        return Err(ApiError::unprocessable(
            "confirmation_required",
            "centang konfirmasi untuk mencabut akses / tick the confirmation to revoke",
        )
        .into());
    }
    let row = crate::ops::admin::revoke_kiosk(&st.db, &id).await?;
    tracing::warn!(kiosk = %row.code, id = %row.id, by = %web.user.username, "kiosk revoked (web)");
    Ok((page.jar, Redirect::to("/admin/kiosk")).into_response())
}
