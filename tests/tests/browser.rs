//! The kiosk's web UI in a real headless Chromium, against the real
//! `kiosk` (and `sync-server`) binaries: what a citizen at the touch
//! screen and a clerk at the console actually do. Screenshots of every
//! main screen land in `target/screenshots/<test>/`.

use loket_tests::browser::Browser;
use loket_tests::proxy::FaultProxy;
use loket_tests::server::{ServerProcess, enroll_kiosk, enroll_kiosk_at, init_server};
use loket_tests::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, init_kiosk, nik, wait_synced};
use serde_json::{Value, json};

/// Markup that would run script or change the page if it were not escaped.
const HOSTILE: &str =
    r#"<img src=x onerror="window.__pwned=true;document.title='pwned'"><script>window.__pwned=true</script>&amp;"#;

fn standalone_kiosk(dir: &TestDir, env: &[(&str, &str)]) -> KioskProcess {
    let data = dir.path().join("kiosk");
    init_kiosk(&data, "K01").expect("kiosk init");
    KioskProcess::start_with(&data, env).expect("kiosk start")
}

/// Fills the filing form on the screen and confirms; returns the ticket.
async fn file_on_screen(b: &Browser, name: &str, nik: &str, phone: &str) -> String {
    b.go("/").await.unwrap();
    b.click("#start-file").await.unwrap();
    b.wait_path("/layanan").await.unwrap();
    b.click("a[data-service=SKD]").await.unwrap();
    b.wait_path("/layanan/SKD").await.unwrap();
    b.click("#apply").await.unwrap();
    b.wait_path("/layanan/SKD/ajukan").await.unwrap();
    b.type_into("#name", name).await.unwrap();
    b.type_into("#nik", nik).await.unwrap();
    b.type_into("#phone", phone).await.unwrap();
    b.click("#next").await.unwrap();
    b.find("#confirm-nik").await.unwrap();
    b.click("#submit").await.unwrap();
    b.wait_path("/tiket/").await.unwrap();
    b.text("#ticket-number").await.unwrap()
}

/// Presses a workflow action on the open request page and waits for the
/// new status.
async fn act(b: &Browser, to: &str, note: Option<&str>) {
    let form = format!("form[data-action={to}]");
    if let Some(note) = note {
        b.type_into(&format!("{form} textarea"), note).await.unwrap();
    }
    b.click(&format!("{form} button[type=submit]")).await.unwrap();
    let css = format!("#detail-status[data-status={to}]");
    b.wait_until(&format!("status {to}"), || async { b.exists(&css).await }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_files_a_request_and_reads_the_ticket() {
    let dir = TestDir::new("browser-file");
    let kiosk = standalone_kiosk(&dir, &[]);
    let b = Browser::start("a_citizen_files_a_request", &kiosk.base).await.expect("browser");
    let client = http_client();

    b.go("/").await.unwrap();
    b.shot("start").await.unwrap();
    b.assert_min_font_px(18.0).await.unwrap();
    b.click("#start-file").await.unwrap();
    b.wait_path("/layanan").await.unwrap();
    // Services come grouped, each with its time and cost.
    assert!(b.exists("#group-keterangan").await.unwrap() && b.exists("#group-kependudukan").await.unwrap());
    assert!(b.text("a[data-service=SKD]").await.unwrap().contains("Gratis"));
    b.shot("services").await.unwrap();
    b.click("a[data-service=SKD]").await.unwrap();
    b.wait_path("/layanan/SKD").await.unwrap();
    let detail = b.text("main").await.unwrap();
    assert!(
        detail.contains("Yang perlu dibawa") && detail.contains("KTP-el") && detail.contains("1 hari kerja"),
        "{detail}"
    );
    b.shot("service-detail").await.unwrap();
    b.click("#apply").await.unwrap();
    b.wait_path("/layanan/SKD/ajukan").await.unwrap();

    // Validation as you type, in words a citizen understands.
    b.type_into("#nik", "12710abc").await.unwrap();
    let err = b.text("#nik-error").await.unwrap();
    assert!(err.contains("angka"), "NIK message: {err:?}");
    b.type_into("#nik", "1271019999990001").await.unwrap();
    b.click("#name").await.unwrap(); // leaves the NIK field
    b.wait_until("the NIK date message", || async { Ok(b.text("#nik-error").await?.contains("Tanggal lahir")) })
        .await
        .unwrap();
    b.shot("validation").await.unwrap();
    // The form is not sent while a field is wrong.
    b.click("#next").await.unwrap();
    assert_eq!(b.path().await.unwrap(), "/layanan/SKD/ajukan");

    b.type_into("#name", "Siti Nurhaliza").await.unwrap();
    b.type_into("#nik", &nik(1)).await.unwrap();
    b.type_into("#phone", "0812 3456 7890").await.unwrap();
    b.click("#next").await.unwrap();
    assert_eq!(b.text("#confirm-nik").await.unwrap(), nik(1));
    assert_eq!(b.text("#confirm-name").await.unwrap(), "Siti Nurhaliza");
    b.shot("confirm").await.unwrap();
    b.click("#submit").await.unwrap();
    b.wait_path("/tiket/").await.unwrap();
    let ticket = b.text("#ticket-number").await.unwrap();
    assert!(ticket.starts_with("K01-"), "{ticket}");
    assert!(b.exists(".qr svg").await.unwrap(), "the receipt has a QR code");
    assert!(!b.source_contains(&nik(1)).await, "the receipt shows no NIK");
    let code = b.text("#rating-code").await.unwrap();
    assert_eq!((code.len(), &code[4..5]), (9, "-"), "the receipt shows the rating code: {code}");
    b.shot("receipt").await.unwrap();
    b.assert_min_font_px(18.0).await.unwrap();

    // The kiosk holds it, durably, as the API shows.
    let v: Value = client.get(kiosk.url(&format!("/api/tickets/{ticket}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["status"], "submitted");

    // English is one tap away and keeps the page.
    b.click(".lang-switch").await.unwrap();
    b.wait_until("English", || async { Ok(b.text("h1").await?.contains("received")) }).await.unwrap();
    assert_eq!(b.text("#rating-code").await.unwrap(), code, "the code stays on the receipt");
    b.shot("receipt-en").await.unwrap();
    // Typing the ticket in later shows its status, never the code.
    b.go("/cek").await.unwrap();
    b.type_into("#tiket", &ticket).await.unwrap();
    b.click("#ticket-go").await.unwrap();
    b.wait_path(&format!("/tiket/{ticket}")).await.unwrap();
    assert!(!b.exists("#rating-code").await.unwrap() && !b.source_contains(&code).await, "the code is shown again");
    b.assert_only_local_requests().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_check_and_a_full_skm_rating() {
    let dir = TestDir::new("browser-rate");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let (id, ticket, code) = loket_tests::file_request_with_code(&client, &kiosk, "SKD", "Budi Santoso", &nik(2)).await;
    let b = Browser::start("a_status_check_and_a_full_skm_rating", &kiosk.base).await.expect("browser");

    // Status check: a wrong number is explained, the right one shows the status.
    b.go("/cek").await.unwrap();
    b.type_into("#tiket", "K01-9999-0001").await.unwrap();
    b.click("#ticket-go").await.unwrap();
    b.wait_until("the error", || async { Ok(!b.text("#tiket-error").await?.is_empty()) }).await.unwrap();
    b.type_into("#tiket", &ticket.to_lowercase()).await.unwrap();
    b.click("#ticket-go").await.unwrap();
    b.wait_path(&format!("/tiket/{ticket}")).await.unwrap();
    assert_eq!(b.text("#ticket-status").await.unwrap(), "Diterima, menunggu petugas");
    b.shot("status").await.unwrap();

    // Issue 14: the survey asks about a service received. Before the
    // request is completed the status check offers no rating, and the
    // right code opens nothing.
    assert!(!b.exists("#rate-link").await.unwrap(), "no rating before the request is finished");
    b.go("/nilai").await.unwrap();
    b.type_into("#tiket", &ticket).await.unwrap();
    b.type_into("#kode", &code).await.unwrap();
    b.click("#rate-go").await.unwrap();
    b.find("#not-finished").await.unwrap();
    assert!(!b.exists("#question-form").await.unwrap());
    b.shot("rating-not-open").await.unwrap();
    // The clerk completes it; the status check now offers the rating.
    loket_tests::complete_request(&client, &kiosk.base, &id).await.unwrap();
    b.go("/cek").await.unwrap();
    b.type_into("#tiket", &ticket).await.unwrap();
    b.click("#ticket-go").await.unwrap();
    b.wait_path(&format!("/tiket/{ticket}")).await.unwrap();
    b.wait_until("the rating is offered", || async { b.exists("#rate-link").await }).await.unwrap();

    // Nine questions, one per screen, official labels; answers by element.
    let chosen = [("U1", 4), ("U2", 3), ("U3", 2), ("U4", 4), ("U5", 3), ("U6", 1), ("U7", 2), ("U8", 3), ("U9", 4)];
    b.click("#rate-link").await.unwrap();
    b.wait_path(&format!("/nilai/{ticket}")).await.unwrap();
    // The code from the receipt: a wrong one is refused, the right one
    // however it is typed (lower case, a space for the dash) is taken.
    let wrong = if code.starts_with('Z') { "A000-0000" } else { "Z000-0000" };
    b.type_into("#kode", wrong).await.unwrap();
    b.click("#rate-go").await.unwrap();
    b.wait_until("the code is refused", || async { b.exists("#rate-error[data-code=invalid_rating_token]").await })
        .await
        .unwrap();
    b.shot("rating-code-refused").await.unwrap();
    b.type_into("#kode", &code.to_lowercase().replace('-', " ")).await.unwrap();
    b.click("#rate-go").await.unwrap();
    let mut asked = Vec::new();
    for n in 1..=9 {
        b.wait_until(&format!("question {n}"), || async {
            Ok(b.text("#progress").await?.starts_with(&format!("Pertanyaan {n} dari 9")))
        })
        .await
        .unwrap();
        let element = b.find("#question-form").await.unwrap().attr("data-element").await.unwrap().unwrap();
        let score = chosen.iter().find(|(e, _)| *e == element).unwrap().1;
        if n == 1 {
            assert!(b.text(".answers").await.unwrap().contains("Sangat sesuai"), "official labels");
            b.shot("question-1").await.unwrap();
        }
        if element == "U7" {
            assert!(b.text(".answers").await.unwrap().contains("Sangat sopan dan ramah"));
        }
        asked.push(element);
        b.click(&format!("button[data-score='{score}']")).await.unwrap();
    }
    assert_eq!(asked, ["U1", "U2", "U3", "U4", "U5", "U6", "U7", "U9", "U8"], "the official order");
    b.type_into("#comment", HOSTILE).await.unwrap();
    b.shot("comment").await.unwrap();
    b.click("#rate-submit").await.unwrap();
    b.find("#thanks").await.unwrap();
    b.shot("thanks").await.unwrap();

    // Stored by element code, comment as typed.
    let token = loket_tests::staff_login(&client, &kiosk.base).await.unwrap();
    let detail: Value = client
        .get(kiosk.url(&format!("/api/staff/requests/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (element, score) in chosen {
        assert_eq!(detail["rating"]["scores"][element], score, "{element}: {detail}");
    }
    assert_eq!(detail["rating"]["comment"], HOSTILE);

    // Once only.
    b.go(&format!("/nilai/{ticket}")).await.unwrap();
    b.find("#already-rated").await.unwrap();

    // The clerk sees the comment as text.
    b.kiosk_staff_login().await.unwrap();
    b.go(&format!("/staf/permohonan/{id}")).await.unwrap();
    b.find("#rating-title").await.unwrap();
    assert!(b.text("main").await.unwrap().contains(HOSTILE), "the comment is shown as typed");
    b.assert_not_injected().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_clears_personal_data() {
    let dir = TestDir::new("browser-idle");
    let kiosk = standalone_kiosk(&dir, &[("LOKET_KIOSK_CITIZEN_IDLE_TIMEOUT", "3")]);
    let b = Browser::start("the_idle_timeout_clears_personal_data", &kiosk.base).await.expect("browser");
    let secret_nik = nik(3);

    // A citizen switches to English, types, reaches the confirmation and walks away.
    b.go("/bahasa/en?kembali=/layanan/SKD/ajukan").await.unwrap();
    b.type_into("#name", "Walked Away").await.unwrap();
    b.type_into("#nik", &secret_nik).await.unwrap();
    b.click("#next").await.unwrap();
    b.find("#confirm-nik").await.unwrap();
    assert!(b.source_contains(&secret_nik).await);
    b.wait_until("the idle warning", || async {
        Ok(b.js("return !document.getElementById('idle-warning').hidden").await? == true)
    })
    .await
    .unwrap();
    b.shot("idle-warning").await.unwrap();
    b.wait_until("the start screen", || async { Ok(b.path().await? == "/") }).await.unwrap();
    b.find("#start-file").await.unwrap();
    b.shot("after-idle").await.unwrap();

    // Nothing of it is left: not on screen, not in storage, and the next
    // citizen gets Bahasa Indonesia.
    assert!(!b.source_contains(&secret_nik).await);
    assert!(!b.source_contains("Walked Away").await);
    assert_eq!(b.js("return document.documentElement.lang").await.unwrap(), "id");
    assert_eq!(b.js("return sessionStorage.length + localStorage.length").await.unwrap(), 0);
    // Going back does not bring it back either (pages are never cached,
    // the confirmation was a form result).
    b.client.back().await.unwrap();
    b.wait_until("the previous page", || async { Ok(b.path().await? != "/") }).await.unwrap();
    assert!(!b.source_contains(&secret_nik).await, "back shows no NIK: {}", b.path().await.unwrap());
    let values = b.js("return [...document.querySelectorAll('input')].map(i => i.value).join('|')").await.unwrap();
    assert!(!values.as_str().unwrap_or("").contains(&secret_nik), "{values}");
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_html_in_every_field_is_shown_as_text() {
    let dir = TestDir::new("browser-hostile");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let b = Browser::start("hostile_html_in_every_field", &kiosk.base).await.expect("browser");

    // Filing: the server refuses each field and shows it back as typed.
    b.go("/layanan/SKD/ajukan").await.unwrap();
    for field in ["#name", "#nik", "#phone"] {
        b.force_value(field, HOSTILE).await.unwrap();
    }
    // Past the script's checks, straight to the server.
    b.js("document.getElementById('file-form').submit()").await.unwrap();
    b.wait_until("the refusal", || async { b.exists(".alert").await }).await.unwrap();
    for field in ["#name", "#nik", "#phone"] {
        let value = b.find(field).await.unwrap().prop("value").await.unwrap().unwrap_or_default();
        assert_eq!(value, HOSTILE, "{field} keeps the text, escaped");
        let err = b.text(&format!("{field}-error")).await.unwrap();
        assert!(!err.is_empty(), "{field} has a message");
    }
    b.assert_not_injected().await.unwrap();
    b.shot("filing-refused").await.unwrap();

    // Ticket look-up.
    b.go("/cek").await.unwrap();
    b.force_value("#tiket", HOSTILE).await.unwrap();
    b.click("#ticket-go").await.unwrap();
    b.wait_until("the error", || async { Ok(!b.text("#tiket-error").await?.is_empty()) }).await.unwrap();
    // What is not a ticket is not typed back (it may be anything someone
    // typed, a NIK too: issue 12, item 9).
    assert_eq!(b.find("#tiket").await.unwrap().prop("value").await.unwrap().unwrap_or_default(), "");
    b.assert_not_injected().await.unwrap();

    // Staff login.
    b.go("/staf/masuk").await.unwrap();
    b.force_value("#staff_id", HOSTILE).await.unwrap();
    b.type_into("#password", HOSTILE).await.unwrap();
    b.click("#login").await.unwrap();
    b.find("#login-error").await.unwrap();
    b.assert_not_injected().await.unwrap();

    // Staff notes.
    let (id, _) = loket_tests::file_request(&client, &kiosk, "SKD", "Dewi Lestari", &nik(4)).await;
    b.kiosk_staff_login().await.unwrap();
    b.go(&format!("/staf/permohonan/{id}")).await.unwrap();
    act(&b, "in_progress", Some(HOSTILE)).await;
    let notes = b.text("#history .note").await.unwrap();
    assert_eq!(notes, HOSTILE);
    b.assert_not_injected().await.unwrap();
    b.shot("note-as-text").await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_works_through_an_outage_and_the_indicator_drains() {
    let dir = TestDir::new("browser-offline");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let mut server = ServerProcess::start(&server_dir).expect("server");
    let addr = server.addr();
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin");
    server.put_staff(&https, &admin, loket_tests::KELURAHAN, STAFF_ID, STAFF_PASSWORD).await.expect("roster");
    let data = dir.path().join("kiosk");
    let code = server.enroll_code(loket_tests::KELURAHAN).expect("code");
    enroll_kiosk(&data, &server, &code).expect("enroll");
    let kiosk = KioskProcess::start(&data).expect("kiosk");
    let client = http_client();
    wait_synced(&client, &kiosk).await;
    let b = Browser::start("a_clerk_works_through_an_outage", &kiosk.base).await.expect("browser");

    // The power to the server room goes.
    server.terminate().expect("server stop");

    // A citizen files at the screen all the same.
    let ticket = file_on_screen(&b, "Rahmat Hidayat", &nik(5), "081234567890").await;
    b.shot("receipt-offline").await.unwrap();

    // The clerk logs in (the roster is on the kiosk) and works the request.
    b.kiosk_staff_login().await.unwrap();
    b.wait_until("the offline indicator", || async { b.exists("#sync-indicator[data-state=offline]").await })
        .await
        .unwrap();
    let row = format!("tr[data-ticket='{ticket}'] a");
    b.click(&row).await.unwrap();
    b.wait_path("/staf/permohonan/").await.unwrap();
    b.shot("detail").await.unwrap();
    b.assert_min_font_px(18.0).await.unwrap();
    act(&b, "in_progress", Some("Berkas lengkap")).await;
    act(&b, "completed", None).await;
    b.shot("completed-offline").await.unwrap();

    b.go("/staf").await.unwrap();
    let text = b.text("#sync-text").await.unwrap();
    assert!(text.starts_with("Luring sejak ") && text.ends_with("perubahan menunggu"), "{text}");
    let pending: u64 =
        b.find("#sync-indicator").await.unwrap().attr("data-pending").await.unwrap().unwrap().parse().unwrap();
    assert!(pending >= 3, "filing, taking and completing wait: {text}");
    b.shot("indicator-offline").await.unwrap();

    // Power is back; the clerk presses "Sinkronkan" and the count drains.
    let server = ServerProcess::restart_on(&server_dir, addr).expect("server restart");
    b.click("#sync-now").await.unwrap();
    b.wait_until("the indicator online with nothing waiting", || async {
        b.exists("#sync-indicator[data-state=online][data-pending='0']").await
    })
    .await
    .unwrap();
    let text = b.text("#sync-text").await.unwrap();
    assert_eq!(text, "Daring — semua tersinkron");
    assert!(!b.text("#sync-last").await.unwrap().contains("belum pernah"));
    b.shot("indicator-online").await.unwrap();

    // The server holds the completed request.
    let https = server.client();
    let admin = server.admin_token(&https).await.unwrap();
    let list = server.get_json(&https, &admin, "/api/admin/requests?limit=10").await.unwrap();
    let item = list["items"].as_array().unwrap().iter().find(|i| i["ticket"] == ticket.as_str()).cloned();
    assert_eq!(item.expect("the request reached the server")["status"], "completed");
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_filters_and_a_conflict_shows_what_each_side_did() {
    let dir = TestDir::new("browser-conflict");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let server = ServerProcess::start(&server_dir).expect("server");
    let addr = server.addr();
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin");
    server.put_staff(&https, &admin, loket_tests::KELURAHAN, STAFF_ID, STAFF_PASSWORD).await.expect("roster");
    // The kiosk reaches the server through a proxy the test can cut.
    let proxy = FaultProxy::start_seeded(addr, 5).expect("proxy");
    let data = dir.path().join("kiosk");
    let code = server.enroll_code(loket_tests::KELURAHAN).expect("code");
    enroll_kiosk_at(&data, &format!("https://{}", proxy.addr()), &server.ca_pem(), &code).expect("enroll");
    let kiosk = KioskProcess::start(&data).expect("kiosk");
    let client = http_client();
    wait_synced(&client, &kiosk).await;

    // Two requests: a letter, and a family-card referral handed to Disdukcapil on screen.
    let (_, skd) = loket_tests::file_request(&client, &kiosk, "SKD", "Ani Lubis", &nik(8)).await;
    let resp = client
        .post(kiosk.url("/api/requests"))
        .json(&json!({ "service": "PKK", "applicant": { "name": "Rudi Hartono", "nik": nik(9) } }))
        .send()
        .await
        .unwrap();
    let pkk: Value = resp.json().await.unwrap();
    let (pkk_id, pkk_ticket) = (pkk["id"].as_str().unwrap().to_owned(), pkk["ticket"].as_str().unwrap().to_owned());
    let b = Browser::start("the_queue_filters_and_a_conflict", &kiosk.base).await.expect("browser");
    b.kiosk_staff_login().await.unwrap();
    b.go("/staf?layanan=PKK").await.unwrap();
    assert!(b.exists(&format!("tr[data-ticket='{pkk_ticket}']")).await.unwrap());
    assert!(!b.exists(&format!("tr[data-ticket='{skd}']")).await.unwrap(), "filtered by service");
    b.go("/staf?sla=overdue").await.unwrap();
    b.find("#queue-empty").await.unwrap();
    b.go("/staf").await.unwrap();
    assert_eq!(b.client.find_all(fantoccini::Locator::Css("#queue tbody tr")).await.unwrap().len(), 2);
    b.shot("queue").await.unwrap();
    b.go(&format!("/staf/permohonan/{pkk_id}")).await.unwrap();
    act(&b, "in_progress", None).await;
    b.find("form[data-action=handed_off] select").await.unwrap().select_by_value("DISDUKCAPIL").await.unwrap();
    act(&b, "handed_off", Some("Mohon diterbitkan KK baru")).await;
    assert!(b.text("main").await.unwrap().contains("Dinas Kependudukan dan Pencatatan Sipil"));
    b.go("/staf?status=handed_off").await.unwrap();
    assert!(b.exists(&format!("tr[data-ticket='{pkk_ticket}']")).await.unwrap(), "filtered by status");
    wait_synced(&client, &kiosk).await;

    // The line to the server is cut. Disdukcapil completes centrally while
    // the clerk, offline, rejects the same request.
    proxy.handle().partition(true);
    let r = https
        .post(format!("{}/api/admin/requests/{pkk_id}/events", server.base))
        .bearer_auth(&admin)
        .json(&json!({ "to": "completed", "note": "KK sudah terbit" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    b.go(&format!("/staf/permohonan/{pkk_id}")).await.unwrap();
    act(&b, "rejected", Some("Berkas tidak sah")).await;

    // The line comes back; both sides' steps meet.
    proxy.handle().partition(false);
    wait_synced(&client, &kiosk).await;
    b.go(&format!("/staf/permohonan/{pkk_id}")).await.unwrap();
    let conflict = b.text("#conflict").await.unwrap();
    for expected in ["Konflik", "KK sudah terbit", "Berkas tidak sah", "pusat/instansi", "kiosk ini"] {
        assert!(conflict.contains(expected), "{expected:?} in {conflict}");
    }
    assert!(!b.exists("form.action").await.unwrap(), "actions wait for the central decision");
    assert!(b.text("#detail-status").await.unwrap().starts_with("Konflik"), "no side's status is shown as final");
    b.shot("conflict").await.unwrap();
    b.go("/staf").await.unwrap();
    assert!(b.exists(&format!("tr.conflict[data-ticket='{pkk_ticket}']")).await.unwrap(), "listed as open, flagged");
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_left_alone_logs_itself_out() {
    let dir = TestDir::new("browser-staff-idle");
    let kiosk = standalone_kiosk(&dir, &[("LOKET_KIOSK_STAFF_IDLE_TIMEOUT", "3")]);
    let b = Browser::start("a_console_left_alone_logs_itself_out", &kiosk.base).await.expect("browser");
    b.kiosk_staff_login().await.unwrap();
    b.wait_path("/staf/masuk?diam=1").await.unwrap();
    assert!(b.text(".alert").await.unwrap().contains("keluar otomatis"));
    // The session is over, not just hidden.
    b.go("/staf").await.unwrap();
    b.wait_path("/staf/masuk").await.unwrap();
    b.close().await.unwrap();
}
