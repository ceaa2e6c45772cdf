//! The central web app in a real headless Chromium against a real
//! `sync-server` and an enrolled `kiosk`: an agency completes a hand-off
//! that then reaches the kiosk, and an admin resolves a kiosk-vs-agency
//! conflict from the review queue, which reaches the kiosk too.

use loket_tests::browser::Browser;
use loket_tests::proxy::FaultProxy;
use loket_tests::server::{ADMIN_PASSWORD, ADMIN_USER, ServerProcess, enroll_kiosk_at, init_server, server_bin};
use loket_tests::{KELURAHAN, KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, nik, wait_synced};
use serde_json::{Value, json};

const AGENCY_USER: &str = "dukcapil-rina";
const AGENCY_PASSWORD: &str = "dukcapil-rahasia-1";

async fn kiosk_json(client: &reqwest::Client, k: &KioskProcess, token: &str, path: &str) -> Value {
    client.get(k.url(path)).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

async fn staff_event(client: &reqwest::Client, k: &KioskProcess, token: &str, id: &str, body: Value) {
    let r = client
        .post(k.url(&format!("/api/staff/requests/{id}/events")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{body}");
}

async fn web_login(b: &Browser, user: &str, password: &str) {
    b.go("/masuk").await.unwrap();
    b.type_into("#username", user).await.unwrap();
    b.type_into("#password", password).await.unwrap();
    b.click("#login").await.unwrap();
    // Agencies land on their work list, admins on the overview.
    b.wait_path("/admin/").await.unwrap();
}

/// Presses an action on the open request page and waits for the page the
/// server answers with: the old page is marked first, so a "saved" message
/// left from the previous action cannot pass for this one's.
async fn act(b: &Browser, to: &str, note: &str) {
    let form = format!("form[data-action={to}]");
    b.type_into(&format!("{form} textarea"), note).await.unwrap();
    b.js("document.body.dataset.stale = '1'").await.unwrap();
    b.click(&format!("{form} button")).await.unwrap();
    b.wait_until("the saved message on a new page", || async {
        Ok(!b.exists("body[data-stale]").await.unwrap_or(true)
            && b.text("#message").await.unwrap_or_default().contains("Tersimpan"))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_completes_a_handoff_and_an_admin_resolves_a_conflict() {
    let dir = TestDir::new("central-browser");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("init");
    let pw = dir.path().join("agency-password");
    std::fs::write(&pw, format!("{AGENCY_PASSWORD}\n")).unwrap();
    let out = std::process::Command::new(server_bin())
        .args(["add-user", "--data"])
        .arg(&server_dir)
        .args(["--username", AGENCY_USER, "--role", "agency", "--agency", "DISDUKCAPIL", "--password-file"])
        .arg(&pw)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = ServerProcess::start(&server_dir).expect("server");
    let addr = server.addr();
    let https = server.client();
    let admin = server.admin_token(&https).await.unwrap();
    server.put_staff(&https, &admin, KELURAHAN, STAFF_ID, STAFF_PASSWORD).await.unwrap();
    let proxy = FaultProxy::start_seeded(addr, 9).expect("proxy");
    let data = dir.path().join("kiosk");
    let code = server.enroll_code(KELURAHAN).unwrap();
    enroll_kiosk_at(&data, &format!("https://{}", proxy.addr()), &server.ca_pem(), &code).expect("enroll");
    let kiosk = KioskProcess::start(&data).expect("kiosk");
    let client = http_client();
    wait_synced(&client, &kiosk).await;
    let staff = loket_tests::staff_login(&client, &kiosk.base).await.unwrap();

    // Two family-card referrals handed to Disdukcapil at the kiosk.
    let (done_id, done_ticket) = loket_tests::file_request(&client, &kiosk, "PKK", "Sri Wahyuni", &nik(11)).await;
    let (contested_id, contested_ticket) =
        loket_tests::file_request(&client, &kiosk, "PKK", "Sri Wahyuni", &nik(12)).await;
    for id in [&done_id, &contested_id] {
        staff_event(&client, &kiosk, &staff, id, json!({ "to": "in_progress" })).await;
        staff_event(&client, &kiosk, &staff, id, json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })).await;
    }
    wait_synced(&client, &kiosk).await;

    // The agency sees both in its list and completes one with a note.
    let b = Browser::start_https("central_agency_and_conflict", &server.base).await.expect("browser");
    web_login(&b, AGENCY_USER, AGENCY_PASSWORD).await;
    assert_eq!(b.path().await.unwrap(), "/admin/permohonan");
    assert!(b.exists(&format!("tr[data-ticket='{done_ticket}']")).await.unwrap());
    assert!(b.exists(&format!("tr[data-ticket='{contested_ticket}']")).await.unwrap());
    assert!(!b.exists("#nav-conflicts").await.unwrap(), "agencies have no review queue");
    b.shot("agency-list").await.unwrap();
    b.click(&format!("tr[data-ticket='{done_ticket}'] a")).await.unwrap();
    b.wait_path("/admin/permohonan/").await.unwrap();
    b.shot("agency-request").await.unwrap();
    // The agency takes it first, so colleagues see it is being worked on;
    // the kelurahan sees that at its next sync and waits.
    act(&b, "take", "Diproses di loket Disdukcapil").await;
    assert_eq!(b.find("#status").await.unwrap().attr("data-status").await.unwrap().as_deref(), Some("in_progress"));
    assert!(b.text("#status").await.unwrap().contains("Kependudukan"), "the page says who holds it");
    assert!(!b.exists("form[data-action=take]").await.unwrap(), "taken once");
    b.shot("agency-taken").await.unwrap();
    wait_synced(&client, &kiosk).await;
    let d = kiosk_json(&client, &kiosk, &staff, &format!("/api/staff/requests/{done_id}")).await;
    assert_eq!((d["status"].clone(), d["agency"].clone()), (json!("in_progress"), json!("DISDUKCAPIL")), "{d}");
    let refused = client
        .post(format!("{}/api/staff/requests/{done_id}/events", kiosk.base))
        .bearer_auth(&staff)
        .json(&json!({ "to": "completed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["error"]["code"], "held_by_agency");
    // The clerk's console says who works on it and offers no action.
    let console = Browser::start("central_agency_kiosk_console", &kiosk.staff).await.expect("browser");
    console.kiosk_staff_login(&kiosk.staff).await.unwrap();
    console.go(&format!("/staf/permohonan/{done_id}")).await.unwrap();
    assert!(console.text("#held-by-agency").await.unwrap().contains("Kependudukan"));
    assert!(console.text("#detail-status").await.unwrap().contains("Sedang dikerjakan"));
    assert!(!console.exists("#action-panel").await.unwrap(), "the kelurahan waits");
    console.shot("held-by-agency").await.unwrap();
    console.close().await.unwrap();
    act(&b, "completed", "KK baru sudah dicetak").await;
    assert_eq!(b.find("#status").await.unwrap().attr("data-status").await.unwrap().as_deref(), Some("completed"));
    // The agency's page offers nothing more on it.
    assert!(!b.exists("form.action").await.unwrap());

    // It reaches the kiosk at its next sync.
    wait_synced(&client, &kiosk).await;
    let d = kiosk_json(&client, &kiosk, &staff, &format!("/api/staff/requests/{done_id}")).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert!(d["events"].as_array().unwrap().iter().any(|e| e["note"] == "KK baru sudah dicetak"));

    // The agency's other pages, scoped to what was handed to it; staff
    // competency is not in its menu and not open to it.
    for (nav, path, table) in [("#nav-ikm", "/admin/ikm", "#ikm"), ("#nav-time", "/admin/waktu", "#by-agency")] {
        b.click(nav).await.unwrap();
        b.wait_path(path).await.unwrap();
        b.find(table).await.unwrap();
    }
    assert!(b.exists("#by-agency tr[data-agency=DISDUKCAPIL][data-status=in_progress]").await.unwrap());
    b.shot("agency-time-lost").await.unwrap();
    assert!(!b.exists("#nav-staff").await.unwrap() && !b.exists("#nav-overview").await.unwrap());
    b.go("/admin/staf").await.unwrap();
    assert!(!b.exists("#register").await.unwrap(), "the staff register is not the agency's");

    // The agency needs the full NIK to process the other one: it gives a
    // reason, sees it, and the view is in the audit log under its name.
    b.go(&format!("/admin/permohonan/{contested_id}")).await.unwrap();
    assert!(b.text("#nik").await.unwrap().contains("••••••"), "masked by default");
    b.click("#personal summary").await.unwrap();
    b.type_into("#reason", "Verifikasi data KK di SIAK").await.unwrap();
    b.click("#reveal").await.unwrap();
    b.wait_until("the full NIK", || async { Ok(b.exists("#nik-full").await.unwrap_or(false)) }).await.unwrap();
    assert_eq!(b.text("#nik-full").await.unwrap(), loket_tests::nik(12));
    let audit: serde_json::Value = https
        .get(format!("{}/api/admin/audit", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen = &audit["items"][0];
    assert_eq!(
        (seen["username"].as_str(), seen["action"].as_str()),
        (Some(AGENCY_USER), Some("view_personal")),
        "{audit}"
    );
    assert_eq!(seen["reason"], "Verifikasi data KK di SIAK");

    // Meanwhile the line to the kiosk is cut: the agency rejects the other
    // one while the clerk, offline, completes it.
    proxy.handle().partition(true);
    b.go("/admin/permohonan").await.unwrap();
    b.click(&format!("tr[data-ticket='{contested_ticket}'] a")).await.unwrap();
    b.wait_path("/admin/permohonan/").await.unwrap();
    act(&b, "rejected", "Data KK tidak cocok").await;
    staff_event(&client, &kiosk, &staff, &contested_id, json!({ "to": "completed", "note": "sudah diserahkan" })).await;
    proxy.handle().partition(false);
    wait_synced(&client, &kiosk).await;
    let d = kiosk_json(&client, &kiosk, &staff, &format!("/api/staff/requests/{contested_id}")).await;
    assert_eq!(d["conflict"], true, "{d}");

    // The agency cannot decide it; an admin can, from the review queue.
    b.go(&format!("/admin/permohonan/{contested_id}")).await.unwrap();
    assert!(!b.exists("form.action").await.unwrap(), "agency users do not resolve");
    b.click("#logout").await.unwrap();
    b.wait_path("/masuk").await.unwrap();
    web_login(&b, ADMIN_USER, ADMIN_PASSWORD).await;
    b.click("#nav-conflicts").await.unwrap();
    b.wait_path("/admin/permohonan?konflik=1").await.unwrap();
    assert!(!b.exists(&format!("tr[data-ticket='{done_ticket}']")).await.unwrap(), "only conflicts");
    b.click(&format!("tr[data-ticket='{contested_ticket}'] a")).await.unwrap();
    b.wait_path("/admin/permohonan/").await.unwrap();
    let sides = b.text("#conflict").await.unwrap();
    // The kiosk's side by the clerk's name and the kiosk (issue 15, item 4).
    for expected in ["Data KK tidak cocok", "sudah diserahkan", "Petugas Uji · K001", AGENCY_USER] {
        assert!(sides.contains(expected), "{expected:?} in {sides}");
    }
    b.shot("conflict-review").await.unwrap();
    act(&b, "completed", "Dicek ulang: KK sah, sudah diserahkan").await;
    assert_eq!(b.find("#status").await.unwrap().attr("data-conflict").await.unwrap().as_deref(), Some("false"));
    b.shot("conflict-resolved").await.unwrap();

    // The decision reaches the kiosk.
    wait_synced(&client, &kiosk).await;
    let d = kiosk_json(&client, &kiosk, &staff, &format!("/api/staff/requests/{contested_id}")).await;
    assert_eq!((d["conflict"].clone(), d["status"].clone()), (json!(false), json!("completed")), "{d}");

    // The IKM page renders for the period, with its table and trend chart.
    b.click("#nav-ikm").await.unwrap();
    b.wait_path("/admin/ikm").await.unwrap();
    b.find("#ikm").await.unwrap();
    b.find("#trend").await.unwrap();
    assert!(b.text("#ikm tbody").await.unwrap().contains("Pasar Baru"), "groups with users but no ratings are listed");
    b.shot("ikm").await.unwrap();

    // Where time is lost: the request the agency completed is measured,
    // and its hand-off shows under Disdukcapil.
    b.click("#nav-time").await.unwrap();
    b.wait_path("/admin/waktu").await.unwrap();
    b.find("#by-agency").await.unwrap();
    assert!(b.exists("#by-agency tr[data-agency=DISDUKCAPIL]").await.unwrap());
    b.shot("time-lost").await.unwrap();
    b.click("#nav-staff").await.unwrap();
    b.wait_path("/admin/staf").await.unwrap();
    assert!(b.exists(&format!("#register tr[data-nip='{STAFF_ID}']")).await.unwrap(), "the roster's staff are listed");
    // A training is recorded through the form and listed.
    b.type_into("#t-day", "2026-11-20").await.unwrap();
    b.type_into("#t-topic", "Pelayanan prima").await.unwrap();
    b.type_into("#t-provider", "BKPSDM Kota Medan").await.unwrap();
    b.type_into("#t-hours", "8").await.unwrap();
    b.click("#training-form button").await.unwrap();
    b.wait_until("the training listed", || async {
        Ok(b.source_contains("Pelayanan prima").await && b.source_contains("BKPSDM Kota Medan").await)
    })
    .await
    .unwrap();
    b.shot("staff").await.unwrap();

    // Downloads, asked for with this browser's cookies (the pages' CSP lets
    // no script fetch): masked by the link; the full NIK through the form,
    // with a reason and the form's CSRF token.
    b.click("#nav-requests").await.unwrap();
    b.wait_path("/admin/permohonan").await.unwrap();
    let cookies = b.cookie_header().await.unwrap();
    let link = b.find("#requests-csv").await.unwrap().prop("href").await.unwrap().unwrap();
    let masked = https.get(link).header("cookie", &cookies).send().await.unwrap();
    assert_eq!(masked.status(), 200);
    let masked = masked.text().await.unwrap();
    assert!(masked.contains(&done_ticket) && !masked.contains(&loket_tests::nik(11)), "{masked}");
    let form = [
        ("csrf", b.value("#full-download input[name=csrf]").await.unwrap()),
        ("periode", b.value("#full-period").await.unwrap()),
        ("format", "csv".to_owned()),
        ("alasan", "Rekonsiliasi bulanan dengan Disdukcapil".to_owned()),
    ];
    let full = https
        .post(format!("{}/admin/permohonan/unduh-lengkap", server.base))
        .header("cookie", &cookies)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    let disposition = full.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.contains("permohonan-lengkap"), "{disposition}");
    let text = full.text().await.unwrap();
    assert!(text.contains(&loket_tests::nik(11)) && text.contains(&loket_tests::nik(12)), "{text}");
    assert!(text.lines().next().unwrap().ends_with(",telepon"), "{text}");
    // Kiosk health lists the enrolled kiosk, in contact and not revoked.
    b.click("#nav-kiosks").await.unwrap();
    b.wait_path("/admin/kiosk").await.unwrap();
    let row = b.text("#kiosks tbody tr").await.unwrap();
    assert!(row.contains("Pasar Baru") && row.contains("Daring"), "{row}");
    b.shot("kiosk-health").await.unwrap();
    // Holidays: the fixed national ones come with the catalog; an admin
    // adds a movable one from the year's decree, and can take it out again.
    b.click("#nav-holidays").await.unwrap();
    b.wait_path("/admin/libur").await.unwrap();
    b.go("/admin/libur?tahun=2026").await.unwrap();
    assert!(b.exists("#holidays tr[data-date='2026-08-17']").await.unwrap(), "Independence Day is built in");
    b.type_into("#h-date", "2026-03-20").await.unwrap();
    b.type_into("#h-name", "Hari Raya Idul Fitri 1447 H").await.unwrap();
    b.click("#holiday-form button").await.unwrap();
    // Read in the wait: the element found first may belong to the page
    // the form's answer is replacing (a stale element otherwise).
    b.wait_until("the holiday listed, on a Friday", || async {
        Ok(b.text("#holidays tr[data-date='2026-03-20']").await.unwrap_or_default().contains("Jumat"))
    })
    .await
    .unwrap();
    b.shot("holidays").await.unwrap();
    b.click("#holidays tr[data-date='2026-03-20'] button").await.unwrap();
    b.wait_until("the holiday removed", || async {
        Ok(b.exists("#message").await.unwrap_or(false)
            && !b.exists("#holidays tr[data-date='2026-03-20']").await.unwrap_or(true))
    })
    .await
    .unwrap();

    b.click("#nav-overview").await.unwrap();
    b.wait_path("/admin/ringkasan").await.unwrap();
    assert_eq!(b.text("#c-filed").await.unwrap(), "2");
    b.shot("overview").await.unwrap();
    b.assert_only_local_requests().await.unwrap();
    b.close().await.unwrap();
}

/// The central app's main screens, as an admin sees them: `(name, path)`;
/// `{request}` is a request's id.
const MAIN_SCREENS: [(&str, &str); 9] = [
    ("overview", "/admin/ringkasan"),
    ("ikm", "/admin/ikm"),
    ("follow-up plans", "/admin/ikm/tindak-lanjut"),
    ("time-lost", "/admin/waktu"),
    ("staff", "/admin/staf"),
    ("requests", "/admin/permohonan"),
    ("request", "/admin/permohonan/{request}"),
    ("kiosk-health", "/admin/kiosk"),
    ("holidays", "/admin/libur"),
];

/// Words of the app's own English labels, which a page in Bahasa
/// Indonesia must not show (issue 15, item 8: one language at a time).
const ENGLISH_UI: [&str; 22] = [
    "Log in",
    "Log out",
    "Show",
    "Period",
    "Requests",
    "Overview",
    "Download",
    "Submitted",
    "In progress",
    "Completed",
    "Rejected",
    "Cancelled",
    "Handed",
    "Waiting",
    "working days",
    "Kiosk health",
    "Users",
    "Back",
    "Name",
    "Date",
    "Service",
    "Agency",
];

/// And the Indonesian labels a page in English must not show. (What
/// people typed, kelurahan and agency names and the holidays' names stay
/// as they are.)
const INDONESIAN_UI: [&str; 22] = [
    "Masuk",
    "Keluar",
    "Tampilkan",
    "Periode",
    "Ringkasan",
    "Diajukan",
    "Selesai",
    "Ditolak",
    "Dibatalkan",
    "Menunggu",
    "Diproses",
    "Unduh",
    "hari kerja",
    "Kesehatan kiosk",
    "Kalender kerja",
    "Pengguna",
    "Kembali",
    "Tindakan",
    "Riwayat",
    "Nama",
    "Tanggal",
    "Layanan",
];

/// The page's language and the UI words of the other language it shows.
async fn words_of_the_other_language(b: &Browser, other: &[&str]) -> (String, Vec<String>) {
    let page = b
        .js("return [document.documentElement.lang, document.title + '\\n' + document.body.innerText];")
        .await
        .unwrap();
    let lang = page[0].as_str().unwrap_or("").to_owned();
    let text = page[1].as_str().unwrap_or("");
    let found = other
        .iter()
        .filter(|w| {
            text.match_indices(**w).any(|(at, _)| {
                // Whole words: `Selesai` is not in `Diselesaikan`.
                let before = text[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
                let after = text[at + w.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric());
                before && after
            })
        })
        .map(|w| (*w).to_owned())
        .collect();
    (lang, found)
}

async fn admin_login(b: &Browser) {
    b.go("/masuk").await.unwrap();
    b.type_into("#username", ADMIN_USER).await.unwrap();
    b.type_into("#password", ADMIN_PASSWORD).await.unwrap();
    b.click("#login").await.unwrap();
    b.wait_path("/admin/ringkasan").await.unwrap();
}

/// Issue 16, item 6, must show: agency units with a region. At each of
/// the day's offices, in two kecamatan (Pasar Baru in Medan Kota, Lalang
/// in Medan Sunggal: real kiosks, real sync), a clerk hands an heirs'
/// letter to the Camat. Each Camat's account sees its own kecamatan's
/// request and nothing of the other's, through the API and in the central
/// pages, and cannot act on the other's; the page names the unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camat_of_one_kecamatan_sees_nothing_of_another() {
    use loket_tests::day::{self, CAMAT_KOTA, CAMAT_PASSWORD, CAMAT_SUNGGAL};
    let d = day::realistic_day("central-units", 2).await.expect("a day");
    let client = http_client();
    let clerks = [(STAFF_ID, STAFF_PASSWORD), ("199203152019032007", "dewi-rahasia-1")];
    let mut handed = Vec::new();
    for (i, (kiosk, (clerk, password))) in d.kiosks.iter().zip(clerks).enumerate() {
        let n = 90 + u64::try_from(i).unwrap();
        let (id, ticket, _) =
            loket_tests::file_request_with_code(&client, kiosk, "WARIS", "Siti Aminah", &nik(n)).await;
        let token = day::login_staff(&client, kiosk, clerk, password).await.unwrap();
        day::step(&client, kiosk, &token, &id, json!({ "to": "in_progress" })).await.unwrap();
        day::step(&client, kiosk, &token, &id, json!({ "to": "handed_off", "agency": "CAMAT" })).await.unwrap();
        wait_synced(&client, kiosk).await;
        handed.push((id, ticket));
    }
    let https = d.server.client();
    let kota = d.server.login(&https, CAMAT_KOTA, CAMAT_PASSWORD).await.unwrap();
    let sunggal = d.server.login(&https, CAMAT_SUNGGAL, CAMAT_PASSWORD).await.unwrap();
    for (token, mine, theirs) in [(&kota, &handed[0], &handed[1]), (&sunggal, &handed[1], &handed[0])] {
        let list = d.server.get_json(&https, token, "/api/admin/requests").await.unwrap();
        let ids: Vec<&str> = list["items"].as_array().unwrap().iter().filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(ids, [mine.0.as_str()], "{list}");
        let own = d.server.get_json(&https, token, &format!("/api/admin/requests/{}", mine.0)).await.unwrap();
        assert_eq!((own["status"].as_str(), own["agency"].as_str()), (Some("handed_off"), Some("CAMAT")), "{own}");
        let other = d.server.get_json(&https, token, &format!("/api/admin/requests/{}", theirs.0)).await.unwrap();
        assert_eq!(other["error"]["code"], "not_found", "{other}");
        let take = https
            .post(format!("{}/api/admin/requests/{}/events", d.server.base, theirs.0))
            .bearer_auth(token)
            .json(&json!({ "to": "in_progress", "agency": "CAMAT" }))
            .send()
            .await
            .unwrap();
        assert_eq!(take.status(), 404, "another kecamatan's request cannot be taken");
    }

    let b = Browser::start_https("central_units", &d.server.base).await.expect("browser");
    web_login(&b, CAMAT_KOTA, CAMAT_PASSWORD).await;
    b.go("/admin/permohonan").await.unwrap();
    let rows = b.text("#requests tbody").await.unwrap();
    assert!(rows.contains(&handed[0].1) && !rows.contains(&handed[1].1), "{rows}");
    b.go(&format!("/admin/permohonan/{}", handed[0].0)).await.unwrap();
    let page = b.text("main").await.unwrap();
    assert!(page.contains("Kantor Camat Medan Kota"), "the unit by its kecamatan: {page}");
    b.go(&format!("/admin/permohonan/{}", handed[1].0)).await.unwrap();
    b.find("#error-code").await.unwrap();
    b.close().await.unwrap();
}

/// Issue 16, item 5, must show: work that crosses agencies, with real
/// processes. A school applicant's letter of domicile (SKD_SPMB) is handed
/// from the kiosk to Disdukcapil, which takes it and, in the central app,
/// forwards it to Dinas Pendidikan with a reason; Dinas Pendidikan can only
/// send it back up the chain (to Disdukcapil, with its letter number), and
/// Disdukcapil returns it to the kelurahan with the new KK number. The
/// kiosk's status check shows both results (the KK by its last four
/// digits), the clerk completes it, and the time-lost page judges each
/// agency against its own SLA, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_crosses_disdukcapil_and_dinas_pendidikan_and_comes_back() {
    use loket_tests::day::{self, AGENCY_PASSWORD, AGENCY_USER, DISDIK_PASSWORD, DISDIK_USER};
    let d = day::realistic_day("central-chain", 1).await.expect("a day");
    let client = http_client();
    let kiosk = &d.kiosks[0];
    let (id, ticket, _) =
        loket_tests::file_request_with_code(&client, kiosk, "SKD_SPMB", "Rina Marpaung", &nik(77)).await;
    let clerk = day::login_staff(&client, kiosk, STAFF_ID, STAFF_PASSWORD).await.unwrap();
    day::step(&client, kiosk, &clerk, &id, json!({ "to": "in_progress" })).await.unwrap();
    day::step(&client, kiosk, &clerk, &id, json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })).await.unwrap();
    wait_synced(&client, kiosk).await;

    let https = d.server.client();
    let events = format!("{}/api/admin/requests/{id}/events", d.server.base);
    let post = |token: String, body: Value| {
        let (https, events) = (https.clone(), events.clone());
        async move {
            let r = https.post(&events).bearer_auth(token).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let dukcapil = d.server.login(&https, AGENCY_USER, AGENCY_PASSWORD).await.unwrap();
    let disdik = d.server.login(&https, DISDIK_USER, DISDIK_PASSWORD).await.unwrap();
    // Dinas Pendidikan sees nothing of it before it is forwarded there.
    let before = d.server.get_json(&https, &disdik, &format!("/api/admin/requests/{id}")).await.unwrap();
    assert_eq!(before["error"]["code"], "not_found", "{before}");
    let (status, v) = post(dukcapil.clone(), json!({ "to": "in_progress", "agency": "DISDUKCAPIL" })).await;
    assert_eq!(status, 201, "Disdukcapil takes it: {v}");

    // Disdukcapil forwards it in the central app, with a reason.
    let b = Browser::start_https("central_chain", &d.server.base).await.expect("browser");
    web_login(&b, AGENCY_USER, AGENCY_PASSWORD).await;
    b.go(&format!("/admin/permohonan/{id}")).await.unwrap();
    b.find("form[data-action=forward] select[name=instansi]").await.unwrap().select_by_value("DISDIK").await.unwrap();
    act(&b, "forward", "KK sudah diperbaiki; mohon verifikasi domisili calon murid").await;
    assert_eq!(b.js("return document.querySelector('#status').dataset.status").await.unwrap(), "handed_off");
    assert!(b.text("#agency").await.unwrap().contains("Dinas Pendidikan"), "held by Dinas Pendidikan now");
    assert!(b.text("#waiting").await.unwrap().contains("Kependudukan"), "Disdukcapil waits below");
    assert!(!b.exists("form[data-action]").await.unwrap(), "nothing left for Disdukcapil to do while it waits");

    // Dinas Pendidikan takes it; it cannot skip Disdukcapil on the way back.
    let (status, v) = post(disdik.clone(), json!({ "to": "in_progress", "agency": "DISDIK" })).await;
    assert_eq!(status, 201, "Dinas Pendidikan takes it: {v}");
    let (status, v) = post(disdik.clone(), json!({ "to": "completed" })).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("agencies_waiting")), "{v}");
    let letter = "421.2/0457/SPMB/2026";
    let back =
        json!({ "to": "in_progress", "agency": "DISDUKCAPIL", "note": "domisili terverifikasi", "result_ref": letter });
    let (status, v) = post(disdik.clone(), back).await;
    assert_eq!(status, 201, "back to Disdukcapil: {v}");
    let kk = "1271010412260003";
    let home = json!({ "to": "in_progress", "note": "KK baru terbit", "result_ref": kk });
    let (status, v) = post(dukcapil.clone(), home).await;
    assert_eq!(status, 201, "back to the kelurahan: {v}");
    b.go(&format!("/admin/permohonan/{id}")).await.unwrap();
    let results = b.text("main").await.unwrap();
    assert!(results.contains(letter) && results.contains(kk), "both results on the request page: {results}");
    b.close().await.unwrap();

    // The kelurahan gets it back with both results; the citizen's check
    // shows the KK by its last four digits only.
    wait_synced(&client, kiosk).await;
    let status_check: Value =
        client.get(kiosk.url(&format!("/api/tickets/{ticket}"))).send().await.unwrap().json().await.unwrap();
    let shown: Vec<(&str, &str)> = status_check["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["agency"].as_str().unwrap(), r["reference"].as_str().unwrap()))
        .collect();
    assert!(shown.contains(&("DISDIK", letter)), "{status_check}");
    let masked = shown.iter().find(|r| r.0 == "DISDUKCAPIL").expect("Disdukcapil's result").1;
    assert!(masked.ends_with("0003") && !masked.contains(&kk[..12]), "{masked}");
    day::step(&client, kiosk, &clerk, &id, json!({ "to": "completed" })).await.unwrap();
    wait_synced(&client, kiosk).await;

    // The time-lost page: each agency once, against its own SLA.
    let b = Browser::start_https("central_chain_admin", &d.server.base).await.expect("browser");
    admin_login(&b).await;
    b.go("/admin/waktu").await.unwrap();
    for agency in ["DISDUKCAPIL", "DISDIK"] {
        let worked = format!("#by-agency tr[data-agency={agency}][data-status=in_progress]");
        assert!(b.exists(&worked).await.unwrap(), "{agency} worked on it");
        let finished = b
            .js(&format!(
                "return document.querySelector('#agency-sla tr[data-agency={agency}] td:nth-child(2)').textContent"
            ))
            .await
            .unwrap();
        assert_eq!(finished, "1", "one request finished through {agency}, counted once");
    }
    let names = b.text("#agency-sla").await.unwrap();
    assert!(names.contains("Dinas Pendidikan") && names.contains("Kependudukan"), "{names}");
    b.close().await.unwrap();
}

/// Issue 15, item 8: the central app speaks one language at a time,
/// Bahasa Indonesia unless the header's switch chose English; the choice
/// holds from page to page (and on the login and error pages) until it
/// is switched back; roles and statuses are words, never codes. (On the
/// code before, every label read "Indonesian / English" and there was no
/// switch: this test failed at its first check.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_central_app_speaks_one_language_at_a_time() {
    let day = loket_tests::day::realistic_day("central-language", 8).await.expect("a day");
    let request = day.request_with("completed").expect("a completed request").0.clone();
    let b = Browser::start_https("central_language", &day.server.base).await.expect("browser");

    // The login page: Bahasa Indonesia by default, with the switch.
    b.go("/masuk").await.unwrap();
    let (lang, english) = words_of_the_other_language(&b, &ENGLISH_UI).await;
    assert_eq!((lang.as_str(), english), ("id", Vec::<String>::new()), "the login page");
    assert_eq!(b.text("#lang-switch").await.unwrap(), "English");
    admin_login(&b).await;
    assert_eq!(b.text("#who-role").await.unwrap(), "Admin Pemko", "the role in words");

    for (name, path) in MAIN_SCREENS {
        b.go(&path.replace("{request}", &request)).await.unwrap();
        b.find("main h1").await.unwrap();
        let (lang, english) = words_of_the_other_language(&b, &ENGLISH_UI).await;
        assert_eq!((lang.as_str(), english), ("id", Vec::<String>::new()), "{name} in Bahasa Indonesia");
    }
    // Statuses in words: the list says "Selesai", never `completed`.
    b.go("/admin/permohonan").await.unwrap();
    let statuses = b.text("#requests tbody").await.unwrap();
    assert!(statuses.contains("Selesai"), "{statuses}");
    for code in ["completed", "in_progress", "handed_off", "submitted", "waiting_citizen"] {
        assert!(!statuses.contains(code), "a status code shown: {code} in {statuses}");
    }
    b.shot("id-requests").await.unwrap();

    // Switch to English on the IKM page: the same page comes back in English.
    b.go("/admin/ikm?periode=2026&per=kecamatan").await.unwrap();
    b.click("#lang-switch").await.unwrap();
    b.wait_until("the English page", || async { Ok(b.js("return document.documentElement.lang").await? == "en") })
        .await
        .unwrap();
    assert_eq!(b.path().await.unwrap(), "/admin/ikm?periode=2026&per=kecamatan", "back on the same page");
    assert_eq!(b.text("#lang-switch").await.unwrap(), "Bahasa Indonesia");
    assert_eq!(b.text("#who-role").await.unwrap(), "City administrator");
    for (name, path) in MAIN_SCREENS {
        b.go(&path.replace("{request}", &request)).await.unwrap();
        b.find("main h1").await.unwrap();
        let (lang, indonesian) = words_of_the_other_language(&b, &INDONESIAN_UI).await;
        assert_eq!((lang.as_str(), indonesian), ("en", Vec::<String>::new()), "{name} in English");
    }
    b.go("/admin/permohonan").await.unwrap();
    let statuses = b.text("#requests tbody").await.unwrap();
    assert!(statuses.contains("Completed"), "{statuses}");
    b.go("/admin/pengguna").await.unwrap();
    let roles = b.text("#users tbody").await.unwrap();
    for role in ["City administrator", "Agency officer", "Supervisor"] {
        assert!(roles.contains(role), "{role} in {roles}");
    }
    assert!(!roles.contains("agency") && !roles.contains("supervisor"), "role codes shown: {roles}");
    b.shot("en-users").await.unwrap();
    // An error page speaks the chosen language too.
    b.go("/admin/permohonan/00000000-0000-0000-0000-000000000000").await.unwrap();
    b.find("#error-code").await.unwrap();
    let (lang, indonesian) = words_of_the_other_language(&b, &INDONESIAN_UI).await;
    assert_eq!((lang.as_str(), indonesian), ("en", Vec::<String>::new()), "the error page");
    // The choice outlives the session: after logging out, the login page
    // is in English.
    b.go("/admin/ringkasan").await.unwrap();
    b.click("#logout").await.unwrap();
    b.wait_path("/masuk").await.unwrap();
    let (lang, indonesian) = words_of_the_other_language(&b, &INDONESIAN_UI).await;
    assert_eq!((lang.as_str(), indonesian), ("en", Vec::<String>::new()), "the login page after logout");
    assert_eq!(b.text("h1").await.unwrap(), "Log in to Loket Central");
    // And back.
    b.click("#lang-switch").await.unwrap();
    b.wait_until("the page in Bahasa Indonesia", || async {
        Ok(b.js("return document.documentElement.lang").await? == "id")
    })
    .await
    .unwrap();
    assert_eq!(b.text("h1").await.unwrap(), "Masuk ke Loket Pusat");
    b.close().await.unwrap();
}

/// Issue 15, must show: axe-core finds no serious or critical
/// accessibility violation on the central app's main screens (login,
/// overview, IKM, time lost, staff, requests, a request, kiosk health,
/// holidays, and the privacy notice) in either language; and at a staff
/// PC's 1366×768 every table fits the screen, no column cut, no page-wide
/// horizontal scroll (item 9). The official frame is there: the
/// government's name, the crest's place, the footer's contact, complaint
/// channels and privacy notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_screens_pass_axe_and_fit_a_staff_pc() {
    // Enough requests that the staff page lists a training need too.
    let day = loket_tests::day::realistic_day("central-axe", 18).await.expect("a day");
    let request = day.request_with("completed").expect("a completed request").0.clone();
    let b = Browser::start_https("central_axe", &day.server.base).await.expect("browser");
    b.set_viewport(1366, 768).await.unwrap();
    let mut findings = Vec::new();
    for lang in ["id", "en"] {
        b.go("/masuk").await.unwrap();
        if lang == "en" {
            b.click("#lang-switch").await.unwrap();
            b.wait_until("English", || async { Ok(b.js("return document.documentElement.lang").await? == "en") })
                .await
                .unwrap();
        }
        for v in b.axe_serious_violations().await.unwrap() {
            findings.push(format!("{lang} login: {v}"));
        }
        admin_login(&b).await;
        if lang == "id" {
            // A training, so the staff page shows its before/after table too.
            loket_tests::day::record_training(&b).await.unwrap();
        }
        let screens = MAIN_SCREENS.iter().copied().chain([("privacy", "/privasi")]);
        for (name, path) in screens {
            b.go(&path.replace("{request}", &request)).await.unwrap();
            b.find("main h1").await.unwrap();
            if name == "staff" {
                assert!(b.exists("#needs tbody tr").await.unwrap(), "the day has a training need to show");
                assert!(b.exists("#trainings tbody tr").await.unwrap(), "and a training");
            }
            for v in b.axe_serious_violations().await.unwrap() {
                findings.push(format!("{lang} {name}: {v}"));
            }
            for t in b.tables_too_wide().await.unwrap() {
                findings.push(format!("{lang} {name}: a table wider than 1366 px: {t}"));
            }
        }
        b.go("/admin/ringkasan").await.unwrap();
        b.click("#logout").await.unwrap();
        b.wait_path("/masuk").await.unwrap();
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));

    // The frame: whose app it is, and where to ask, complain and read
    // about privacy, on every page (the login page too).
    b.go("/masuk").await.unwrap();
    b.click("#lang-switch").await.unwrap();
    b.wait_until("Bahasa Indonesia", || async { Ok(b.js("return document.documentElement.lang").await? == "id") })
        .await
        .unwrap();
    assert_eq!(b.text("#government").await.unwrap(), "Pemerintah Kota Medan");
    let crest =
        b.js("const i = document.querySelector('header img.crest'); return i.complete && i.naturalWidth > 0;").await;
    assert_eq!(crest.unwrap(), true, "the crest's place shows an image");
    let footer = b.text("#footer").await.unwrap();
    for want in
        ["Dinas Komunikasi dan Informatika Kota Medan", "SP4N-LAPOR!", "www.lapor.go.id", "Pemberitahuan privasi"]
    {
        assert!(footer.contains(want), "{want} in the footer: {footer}");
    }
    b.click("#privacy-link").await.unwrap();
    b.wait_path("/privasi").await.unwrap();
    let notice = b.text("main").await.unwrap();
    for want in ["NIK", "log audit", "Pengawas", "27 Tahun 2022"] {
        assert!(notice.contains(want), "{want} in the privacy notice");
    }
    b.shot("privacy").await.unwrap();
    b.close().await.unwrap();
}
