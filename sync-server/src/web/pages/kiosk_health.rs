//! Kiosk health: last contact, version, pending changes, time offline;
//! revoking a kiosk (with a confirmation).

use super::*;

// ------------------------------------------------------------------ kiosk health

pub(super) async fn kiosk_health(State(st): State<AppState>, page: Page, web: WebUser) -> Result<Response, PageError> {
    web.user.require(Role::Admin)?;
    let rows = crate::ops::admin::kiosks(&st.db).await?;
    let now = store::now_ms();
    let offline_after_ms = i64::try_from(st.config.kiosk_offline_after.as_millis()).unwrap_or(i64::MAX);
    let body = html! {
        h1 { "Kesehatan kiosk / Kiosk health" }
        table #kiosks {
            thead { tr {
                th scope="col" { "Kiosk" }
                th scope="col" { "Kelurahan" }
                th scope="col" { "Nama / Name" }
                th scope="col" { "Kontak terakhir / Last contact" }
                th scope="col" { "Versi / Version" }
                th scope="col" { "Perubahan tertunda / Pending" }
                th scope="col" { "Status" }
                th scope="col" {}
            } }
            tbody {
                @for k in &rows {
                    @let offline = k.last_seen_at_ms.is_none_or(|t| now - t > offline_after_ms);
                    tr data-kiosk=(k.code.as_str()) .revoked[k.revoked] .offline[offline && !k.revoked] {
                        td { (k.code.as_str()) }
                        td {
                            (k.kelurahan.as_str())
                            @if let Some(w) = loket_shared::wilayah::region(k.kelurahan.as_str()) { br; (w.name) }
                        }
                        td.name { (k.name) }
                        td { @if let Some(t) = k.last_seen_at_ms { (st.human_time(t)) } @else { "—" } }
                        td { (k.version.as_deref().unwrap_or("—")) }
                        td { @if let Some(p) = k.pending_known { (p) } @else { "—" } }
                        td.status {
                            @if k.revoked { "Dicabut / Revoked" }
                            @else if offline {
                                "Luring / Offline"
                                @if let Some(t) = k.last_seen_at_ms { br; (elapsed_text(now - t)) }
                            }
                            @else { "Daring / Online" }
                        }
                        td {
                            @if !k.revoked {
                                // Revoking is for a stolen or broken kiosk and needs a new
                                // enrollment: asked twice, with no script needed.
                                details.revoke {
                                    summary { "Cabut akses… / Revoke…" }
                                    form method="post" action=(format!("/admin/kiosk/{}/cabut", k.id)) {
                                        input type="hidden" name="csrf" value=(page.csrf);
                                        label {
                                            input type="checkbox" name="yakin" value="1" required;
                                            " Kiosk ini tidak bisa sinkron lagi sampai didaftarkan ulang. / This kiosk cannot sync again until it is enrolled anew."
                                        }
                                        button.danger type="submit" { "Cabut akses / Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = frame("Kondisi Kiosk Kelurahan", Some((&web.user, &page.csrf)), body);
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
