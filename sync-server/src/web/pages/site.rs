//! The frame every central page sits in, so the app reads as the city's:
//! the government's name and crest, the menu, who is signed in, the
//! language switch; a footer with the service's contact, the complaint
//! channels (SP4N-LAPOR! and the city's) and the privacy notice, which is
//! a page of its own (`/privasi`, open without a login).
//!
//! The crest is the deployment's (`crest_file`): Loket ships no crest
//! image, only a plain shield in its place.

use super::*;

/// The shield shown when no crest is configured: a plain outline, no
/// emblem of anyone's.
const CREST_PLACEHOLDER: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 56" width="48" height="56"><path d="M24 2 L45 9 V26 C45 40 36 49 24 54 C12 49 3 40 3 26 V9 Z" fill="#ffffff" stroke="#c9a227" stroke-width="3"/><path d="M24 10 L38 15 V26 C38 36 32 42 24 46 C16 42 10 36 10 26 V15 Z" fill="#0b3d91"/><path d="M24 18 l3 7 h7 l-5.5 4.5 2 7 -6.5-4 -6.5 4 2-7 -5.5-4.5 h7 z" fill="#c9a227"/></svg>"##;

/// The crest: the configured file, or the plain shield.
pub(super) async fn crest(State(st): State<AppState>) -> Response {
    let cache = (header::CACHE_CONTROL, "public, max-age=300");
    if let Some(path) = st.config.crest_file.clone() {
        let kind = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => "image/svg+xml",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("webp") => "image/webp",
            _ => "image/png",
        };
        let read = tokio::task::spawn_blocking({
            let path = path.clone();
            move || std::fs::read(path)
        })
        .await;
        match read {
            Ok(Ok(bytes)) => return ([(header::CONTENT_TYPE, kind), cache], bytes).into_response(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, path = %path.display(), "crest_file unreadable; the plain shield instead")
            }
            Err(e) => tracing::warn!(error = %e, "reading crest_file failed"),
        }
    }
    ([(header::CONTENT_TYPE, "image/svg+xml"), cache], CREST_PLACEHOLDER).into_response()
}

#[derive(Deserialize)]
pub(super) struct BackTo {
    kembali: Option<String>,
}

/// `/bahasa/{id|en}?kembali=PATH`: remembers the language (a year) and
/// returns to the page (a local path only).
pub(super) async fn set_language(
    jar: CookieJar,
    Path(lang): Path<String>,
    axum::extract::Query(back): axum::extract::Query<BackTo>,
) -> (CookieJar, Redirect) {
    let value = if lang == "en" { "en" } else { "id" };
    let mut c = cookie(LANG_COOKIE, value.to_owned());
    c.set_max_age(time::Duration::days(365));
    (jar.add(c), Redirect::to(loket_node::web::local_path(back.kembali.as_deref())))
}

/// Percent-encodes a path and query for a query parameter.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The menu: `(id, path, Bahasa Indonesia, English)` and who sees it.
fn menu(role: Role) -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let mut items = Vec::new();
    if role != Role::Agency {
        items.push(("nav-overview", "/admin/ringkasan", "Ringkasan", "Overview"));
    }
    items.push(("nav-requests", "/admin/permohonan", "Permohonan", "Requests"));
    items.push(("nav-complaints", "/admin/pengaduan", "Pengaduan", "Complaints"));
    items.push(("nav-ikm", "/admin/ikm", "Kepuasan (IKM)", "Satisfaction (IKM)"));
    items.push(("nav-time", "/admin/waktu", "Waktu layanan", "Service time"));
    // Staff competency is the city's and the kelurahan's, not an agency's.
    if role != Role::Agency {
        items.push(("nav-staff", "/admin/staf", "Kompetensi petugas", "Staff competency"));
    }
    if role == Role::Admin {
        items.push(("nav-conflicts", "/admin/konflik", "Konflik", "Conflicts"));
        items.push(("nav-kiosks", "/admin/kiosk", "Kesehatan kiosk", "Kiosk health"));
        items.push(("nav-holidays", "/admin/libur", "Kalender kerja", "Working calendar"));
        items.push(("nav-users", "/admin/pengguna", "Pengguna", "Users"));
    }
    items
}

/// Whether the menu item at `path` is the page at `here` (its path and
/// query): the review queue is the request list with `konflik`.
fn is_current(path: &str, here: &str) -> bool {
    let conflicts = here.starts_with("/admin/permohonan?konflik");
    match path {
        "/admin/konflik" => conflicts,
        "/admin/permohonan" => here.starts_with(path) && !conflicts,
        p => here == p || here.starts_with(&format!("{p}?")) || here.starts_with(&format!("{p}/")),
    }
}

/// A page in the frame: `who` is the signed-in user and the CSRF token of
/// the logout form (none on the login, error and privacy pages).
pub(super) fn frame(view: &View, title: &str, who: Option<(&User, &str)>, body: Markup) -> Markup {
    let lang = view.lang;
    let c = &view.config;
    let other = lang.other();
    let switch = format!("/bahasa/{}?kembali={}", other.code(), urlencode(&view.back));
    html! {
        (maud::DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Loket · " (c.government_name) }
                link rel="stylesheet" href="/static/central.css";
            }
            body {
                a.skip href="#main" { (lang.t("Langsung ke isi", "Skip to content")) }
                header.top {
                    div.bar {
                        a.brand href="/" {
                            img.crest src="/static/lambang" alt="" width="40" height="46";
                            span.names {
                                span.government #government { (c.government_name) }
                                span.app { "Loket · " (lang.t("Layanan Kelurahan — Aplikasi Pusat", "Kelurahan Services — Central App")) }
                            }
                        }
                        div.account {
                            @if let Some((user, _)) = who {
                                span.who #who {
                                    (user.username.as_str())
                                    span.role #who-role { (role_label(lang, user.role)) }
                                }
                            }
                            a.lang-switch #lang-switch href=(switch) lang=(other.code()) hreflang=(other.code()) {
                                (other.t("Bahasa Indonesia", "English"))
                            }
                            @if let Some((_, csrf)) = who {
                                form.inline method="post" action="/keluar" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" #logout { (lang.t("Keluar", "Log out")) }
                                }
                            }
                        }
                    }
                    @if let Some((user, _)) = who {
                        nav.menu aria-label=(lang.t("Menu utama", "Main menu")) {
                            ul {
                                @for (id, path, label_id, label_en) in menu(user.role) {
                                    li {
                                        a id=(id) href=(path) aria-current=[is_current(path, &view.back).then_some("page")] {
                                            (lang.t(label_id, label_en))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
                (footer(view))
            }
        }
    }
}

/// The footer: who runs the service and how to reach them, where to
/// complain, the privacy notice.
fn footer(view: &View) -> Markup {
    let lang = view.lang;
    let c = &view.config;
    html! {
        footer.site #footer {
            div.cols {
                section aria-labelledby="footer-contact" {
                    h2 #footer-contact { (lang.t("Kontak", "Contact")) }
                    p {
                        strong { (c.government_name) } br;
                        (c.contact_unit) br;
                        (c.contact_address)
                    }
                    p {
                        @if !c.contact_phone.is_empty() { (lang.t("Telepon", "Telephone")) " " (c.contact_phone) br; }
                        @if !c.contact_email.is_empty() {
                            (lang.t("Surel", "E-mail")) " " a href=(format!("mailto:{}", c.contact_email)) { (c.contact_email) }
                        }
                    }
                }
                section aria-labelledby="footer-complaints" {
                    h2 #footer-complaints { (lang.t("Pengaduan", "Complaints")) }
                    p {
                        "SP4N-LAPOR!: " a href="https://www.lapor.go.id" { "www.lapor.go.id" } " · SMS 1708"
                    }
                    p {
                        (c.government_name) ": "
                        @if let Some(url) = &c.complaint_url {
                            a #complaint-city href=(url) { (url.trim_start_matches("https://")) }
                        } @else {
                            (lang.t("petugas informasi dan pengaduan di kantor kelurahan, atau kontak di samping",
                                    "the information and complaints desk at the kelurahan office, or the contact beside"))
                        }
                    }
                }
                section aria-labelledby="footer-privacy" {
                    h2 #footer-privacy { (lang.t("Privasi", "Privacy")) }
                    p {
                        a #privacy-link href="/privasi" { (lang.t("Pemberitahuan privasi", "Privacy notice")) }
                        br;
                        (lang.t(
                            "NIK dan nomor HP tampil tersamar; tampilan lengkap tercatat di log audit.",
                            "NIK and mobile numbers are masked; every full view is in the audit log.",
                        ))
                    }
                    p.version { "Loket " (env!("CARGO_PKG_VERSION")) }
                }
            }
        }
    }
}

/// `/privasi`: what personal data Loket keeps, for what, who sees it,
/// how long, and the rights of the people it is about, in plain words.
pub(super) async fn privacy_page(page: Page) -> Response {
    let lang = page.lang();
    let c = page.view.config.clone();
    let body = html! {
        h1 { (lang.t("Pemberitahuan privasi", "Privacy notice")) }
        p.lead { (lang.t(
            "Loket adalah layanan kiosk kelurahan. Halaman ini menjelaskan data pribadi apa yang disimpan, untuk apa, siapa yang dapat melihatnya, berapa lama, dan hak Anda, sesuai Undang-Undang Nomor 27 Tahun 2022 tentang Pelindungan Data Pribadi.",
            "Loket is the kelurahan offices' kiosk service. This page says what personal data it keeps, what for, who can see it, for how long, and your rights, under Law No. 27 of 2022 on Personal Data Protection.",
        )) }
        h2 { (lang.t("Siapa yang bertanggung jawab", "Who is responsible")) }
        p {
            (c.government_name) ". "
            (lang.t("Pengelola: ", "Run by: ")) (c.contact_unit) ", " (c.contact_address) "."
        }
        h2 { (lang.t("Data yang disimpan", "What is kept")) }
        ul #privacy-data {
            li { strong { (lang.t("Permohonan warga", "Citizens' requests")) } ": " (lang.t(
                "nama, NIK, nomor HP (boleh dikosongkan), layanan yang diminta, dan riwayatnya: siapa mengerjakan apa dan kapan.",
                "name, NIK, mobile number (optional), the service asked for, and its history: who did what and when.",
            )) }
            li { strong { (lang.t("Penilaian layanan (SKM)", "Service ratings (SKM)")) } ": " (lang.t(
                "nilai sembilan unsur dan komentar, tanpa nama. Penilaian dikaitkan dengan permohonannya agar dapat dihitung per layanan, kelurahan dan petugas.",
                "the scores of the nine elements and a comment, without a name. A rating is linked to its request so it can be counted per service, kelurahan and staff member.",
            )) }
            li { strong { (lang.t("Petugas kelurahan", "Kelurahan staff")) } ": " (lang.t(
                "NIP atau nomor pegawai, nama, jabatan, jenis pegawai, pekerjaan yang ditangani, dan pelatihan.",
                "civil service or staff number, name, role, kind of employment, the work handled, and trainings.",
            )) }
            li { strong { (lang.t("Pengguna aplikasi pusat", "Users of the central app")) } ": " (lang.t(
                "nama pengguna, peran, instansi atau kelurahan, waktu masuk, dan alamat jaringan percobaan masuk (untuk menahan tebakan kata sandi). Kata sandi hanya disimpan sebagai hash.",
                "username, role, agency or kelurahan, sign-in times, and the network address of login attempts (to hold back password guessing). Passwords are kept only as hashes.",
            )) }
        }
        h2 { (lang.t("Untuk apa", "What for")) }
        p { (lang.t(
            "Untuk memproses permohonan, mengukur waktu layanan dan kepuasan masyarakat (IKM), dan merencanakan pelatihan petugas. Data tidak dijual dan tidak dipakai untuk iklan.",
            "To process requests, to measure service times and public satisfaction (IKM), and to plan staff training. The data is not sold and not used for advertising.",
        )) }
        h2 { (lang.t("Siapa yang dapat melihat", "Who can see it")) }
        ul #privacy-access {
            li { (lang.t(
                "Petugas kelurahan: permohonan kantornya sendiri, dengan NIK dan nomor HP tersamar (mis. 127101••••••0003).",
                "Kelurahan staff: their own office's requests, with the NIK and mobile number masked (e.g. 127101••••••0003).",
            )) }
            li { (lang.t(
                "Instansi (mis. Disdukcapil): hanya permohonan yang diteruskan kepadanya.",
                "Agencies (e.g. Disdukcapil): only the requests handed to them.",
            )) }
            li { (lang.t(
                "Pengawas: angka kinerja dan daftar permohonan, tanpa pernah melihat NIK atau nomor HP lengkap.",
                "Supervisors: performance figures and request lists, never the full NIK or mobile number.",
            )) }
            li { (lang.t(
                "Admin Pemko dan instansi yang memegang permohonan dapat membuka NIK dan nomor HP lengkap hanya dengan menuliskan alasan; setiap pembukaan dan setiap unduhan data lengkap dicatat di log audit: siapa, kapan, permohonan mana, dan alasannya.",
                "City administrators, and the agency holding a request, can open the full NIK and mobile number only by giving a reason; every such view and every full download is written to the audit log: who, when, which request, and why.",
            )) }
        }
        h2 { (lang.t("Berapa lama", "For how long")) }
        p { (lang.t(
            "Kiosk menghapus nama, NIK dan nomor HP permohonan yang sudah selesai setelah server pusat menyimpannya dan masa simpan di kiosk lewat. Di server pusat data disimpan selama diperlukan untuk layanan dan menurut ketentuan kearsipan.",
            "Kiosks delete the name, NIK and mobile number of finished requests once the central server holds them and the kiosk's retention period has passed. The central server keeps data as long as the service needs it and as the archiving rules require.",
        )) }
        h2 { (lang.t("Pengamanan", "Safeguards")) }
        p { (lang.t(
            "Semua hubungan antara kiosk dan server pusat terenkripsi; setiap kiosk memiliki kredensial sendiri yang dapat dicabut; akses dibatasi menurut peran; halaman tidak disimpan di peramban.",
            "Every connection between kiosks and the central server is encrypted; each kiosk has its own credential, which can be revoked; access is limited by role; pages are not kept in the browser.",
        )) }
        h2 { (lang.t("Hak Anda", "Your rights")) }
        p { (lang.t(
            "Anda berhak mengetahui data apa tentang Anda yang disimpan, meminta salinannya, meminta perbaikan data yang salah, dan meminta penghapusan sesuai ketentuan. Hubungi:",
            "You may ask what data about you is kept, ask for a copy, ask for wrong data to be corrected, and ask for deletion as the law allows. Contact:",
        )) }
        p #privacy-contact {
            (c.contact_unit) br;
            (c.contact_address)
            @if !c.contact_phone.is_empty() { br; (lang.t("Telepon", "Telephone")) " " (c.contact_phone) }
            @if !c.contact_email.is_empty() { br; (lang.t("Surel", "E-mail")) " " a href=(format!("mailto:{}", c.contact_email)) { (c.contact_email) } }
        }
        p { (lang.t(
            "Keluhan tentang layanan dapat juga disampaikan melalui SP4N-LAPOR! (www.lapor.go.id, SMS 1708).",
            "Complaints about the service can also go to SP4N-LAPOR! (www.lapor.go.id, SMS 1708).",
        )) }
    };
    let markup = frame(&page.view, lang.t("Pemberitahuan privasi", "Privacy notice"), None, body);
    page.respond(StatusCode::OK, markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_marks_the_page_shown() {
        assert!(is_current("/admin/ikm", "/admin/ikm?periode=2026"));
        assert!(is_current("/admin/ikm", "/admin/ikm/terbit"), "publishing is part of the IKM");
        assert!(is_current("/admin/permohonan", "/admin/permohonan/0190"));
        assert!(!is_current("/admin/permohonan", "/admin/permohonan?konflik=1"));
        assert!(is_current("/admin/konflik", "/admin/permohonan?konflik=1"));
        assert!(!is_current("/admin/staf", "/admin/stafx"));
    }

    #[test]
    fn the_language_switch_returns_to_the_page_after_a_form_too() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        assert_eq!(back_path(&Method::GET, &uri("/admin/ikm?periode=2026")), "/admin/ikm?periode=2026");
        assert_eq!(back_path(&Method::POST, &uri("/admin/libur/impor")), "/admin/libur");
        assert_eq!(back_path(&Method::POST, &uri("/admin/permohonan/abc/data-pribadi")), "/admin/permohonan/abc");
        assert_eq!(back_path(&Method::POST, &uri("/admin/kiosk/abc/cabut")), "/admin/kiosk");
        assert_eq!(back_path(&Method::POST, &uri("/admin/staf/pelatihan")), "/admin/staf");
        assert_eq!(back_path(&Method::POST, &uri("/admin/pengguna/rina")), "/admin/pengguna");
        assert_eq!(back_path(&Method::POST, &uri("/masuk")), "/masuk");
        assert_eq!(urlencode("/admin/ikm?periode=2026&per=x"), "/admin/ikm%3Fperiode%3D2026%26per%3Dx");
    }
}
