//! The central app's users: who may log in, and disabling or enabling
//! one (with a reason, audited; disabling ends the user's sessions).

use super::*;

pub(super) async fn users_page(State(st): State<AppState>, page: Page, web: WebUser) -> Result<Response, PageError> {
    web.user.require(Role::Admin)?;
    let rows = crate::ops::admin::users(&st.db).await?;
    let body = html! {
        h1 { "Pengguna / Users" }
        p { "Menonaktifkan akun mengakhiri semua sesinya saat itu juga; tercatat di log audit. / Disabling an account ends all its sessions at once; it is audited." }
        table #users {
            thead { tr {
                th scope="col" { "Nama pengguna / Username" }
                th scope="col" { "Peran / Role" }
                th scope="col" { "Instansi / Kelurahan" }
                th scope="col" { "Status" }
                th scope="col" {}
            } }
            tbody {
                @for u in &rows {
                    @let disabled = u.disabled_at_ms.is_some();
                    tr data-user=(u.username) .revoked[disabled] {
                        td { (u.username) }
                        td { (u.role) }
                        td { (u.agency.as_deref().or(u.kelurahan.as_deref()).unwrap_or("—")) }
                        td.status {
                            @if let Some(t) = u.disabled_at_ms { "Nonaktif sejak / Disabled since " (st.human_time(t)) }
                            @else { "Aktif / Active" }
                        }
                        td {
                            @if u.username != web.user.username.as_str() {
                                details.revoke {
                                    summary { @if disabled { "Aktifkan… / Enable…" } @else { "Nonaktifkan… / Disable…" } }
                                    form method="post" action=(format!("/admin/pengguna/{}", u.username)) {
                                        input type="hidden" name="csrf" value=(page.csrf);
                                        input type="hidden" name="aksi" value=(if disabled { "aktifkan" } else { "nonaktifkan" });
                                        label { "Alasan / Reason" input name="alasan" type="text" required minlength="5" maxlength="200"; }
                                        button.danger type="submit" { @if disabled { "Aktifkan / Enable" } @else { "Nonaktifkan / Disable" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = frame("Pengguna Aplikasi Pusat", Some((&web.user, &page.csrf)), body);
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
