//! The central app's users: who may log in, and disabling or enabling
//! one (with a reason, audited; disabling ends the user's sessions).

use super::*;

pub(super) async fn users_page(State(st): State<AppState>, page: Page, web: WebUser) -> Result<Response, PageError> {
    web.user.require(Role::Admin)?;
    let rows = crate::ops::admin::users(&st.db).await?;
    let catalog = crate::central::load_catalog(&st.db).await?;
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let body = html! {
        h1 { (t("Pengguna", "Users")) }
        p { (t(
            "Menonaktifkan akun mengakhiri semua sesinya saat itu juga; tercatat di log audit.",
            "Disabling an account ends all its sessions at once; it is audited.",
        )) }
        table #users .fit {
            thead { tr {
                th scope="col" { (t("Nama pengguna", "Username")) }
                th scope="col" { (t("Peran", "Role")) }
                th scope="col" { (t("Instansi atau kelurahan", "Agency or kelurahan")) }
                th scope="col" { "Status" }
                th scope="col" { (t("Tindakan", "Action")) }
            } }
            tbody {
                @for u in &rows {
                    @let disabled = u.disabled_at_ms.is_some();
                    tr data-user=(u.username) .revoked[disabled] {
                        td { (u.username) }
                        td data-role=(u.role) { @match u.role.parse::<Role>() { Ok(r) => (role_label(lang, r)), Err(_) => (u.role) } }
                        td {
                            @if let Some(a) = &u.agency {
                                (catalog.agency(a).map_or(a.as_str(), |x| x.name.as_str()))
                                @if !u.region.is_empty() {
                                    " — " (t("Kecamatan", "Kecamatan")) " "
                                    (u.region.iter().map(|k| place_name(k)).collect::<Vec<_>>().join(", "))
                                }
                            }
                            @else if let Some(k) = &u.kelurahan { (place_name(k)) }
                            @else { (t("Seluruh kota", "The whole city")) }
                        }
                        td.status {
                            @if let Some(at) = u.disabled_at_ms {
                                (tag("muted", t("Nonaktif", "Disabled"))) " " span.when { (t("sejak", "since")) " " (st.human_time(at)) }
                            }
                            @else { (tag("ok", t("Aktif", "Active"))) }
                        }
                        td {
                            @if u.username != web.user.username.as_str() {
                                details.revoke {
                                    summary { @if disabled { (t("Aktifkan…", "Enable…")) } @else { (t("Nonaktifkan…", "Disable…")) } }
                                    form method="post" action=(format!("/admin/pengguna/{}", u.username)) {
                                        input type="hidden" name="csrf" value=(page.csrf);
                                        input type="hidden" name="aksi" value=(if disabled { "aktifkan" } else { "nonaktifkan" });
                                        label { (t("Alasan", "Reason")) input name="alasan" type="text" required minlength="5" maxlength="200"; }
                                        button.danger type="submit" { @if disabled { (t("Aktifkan", "Enable")) } @else { (t("Nonaktifkan", "Disable")) } }
                                    }
                                }
                            } @else {
                                (t("(Anda)", "(you)"))
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = page.frame(t("Pengguna Aplikasi Pusat", "Central App Users"), &web.user, body);
    Ok(page.respond(StatusCode::OK, markup))
}

#[derive(Deserialize)]
pub(super) struct AccountForm {
    csrf: Option<String>,
    /// `nonaktifkan` or `aktifkan`.
    aksi: Option<String>,
    alasan: Option<String>,
}

pub(super) async fn account_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(username): Path<String>,
    PageForm(form): PageForm<AccountForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    let disable = match form.aksi.as_deref() {
        Some("nonaktifkan") => true,
        Some("aktifkan") => false,
        _ => return Err(ApiError::unprocessable("invalid_action", "aksi tidak dikenal / unknown action").into()),
    };
    let reason = form.alasan.unwrap_or_default();
    super::super::admin::change_account(&st, &web.user, &username, disable, &reason).await?;
    Ok((page.jar, Redirect::to("/admin/pengguna")).into_response())
}
