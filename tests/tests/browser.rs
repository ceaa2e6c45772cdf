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

/// The respondent profile of request `id`'s rating, read from the
/// running kiosk's database (snapshot and chunks, read-only).
fn stored_rating_profile(data: &std::path::Path, id: &str) -> loket_shared::respondent::Profile {
    let conn = rusqlite::Connection::open_with_flags(data.join("kiosk.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("the kiosk's database");
    let snapshot: Vec<u8> =
        conn.query_row("SELECT snapshot FROM docs WHERE doc_id = ?1", [id], |r| r.get(0)).expect("the document");
    let mut doc = automerge::AutoCommit::load(&snapshot).expect("a document");
    let mut chunks = conn.prepare("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id").unwrap();
    for chunk in chunks.query_map([id], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
        doc.load_incremental(&chunk.unwrap()).unwrap();
    }
    loket_shared::request::read(&doc).expect("a request").ratings[0].profile
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

/// Chooses a step in the open request page's action panel, with a note,
/// confirms it if it is final, and waits for the new status.
async fn act(b: &Browser, to: &str, note: Option<&str>) {
    b.click(&format!("#action-panel input[name=to][value={to}]")).await.unwrap();
    if let Some(note) = note {
        b.type_into("#action-note", note).await.unwrap();
    }
    b.click("#action-submit").await.unwrap();
    if ["completed", "rejected", "cancelled"].contains(&to) {
        b.click("#confirm-action").await.unwrap();
    }
    let css = format!("#detail-status[data-status={to}]");
    b.wait_until(&format!("status {to}"), || async { b.exists(&css).await }).await.unwrap();
}

/// The rating a kiosk stored for a request, read from its database file
/// as the document holds it (staff see none of it: issue 15, item 6).
fn stored_rating(kiosk: &KioskProcess, id: &str) -> (Vec<(String, u8)>, Option<String>) {
    let conn =
        rusqlite::Connection::open_with_flags(kiosk.data.join("kiosk.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut bytes: Vec<u8> = conn.query_row("SELECT snapshot FROM docs WHERE doc_id = ?1", [id], |r| r.get(0)).unwrap();
    let mut chunks = conn.prepare("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id").unwrap();
    for chunk in chunks.query_map([id], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
        bytes.extend(chunk.unwrap());
    }
    let doc = automerge::AutoCommit::load(&bytes).unwrap();
    let view = loket_shared::request::read(&doc).unwrap();
    let rating = view.ratings.first().expect("a rating").clone();
    let scores = rating.scores.to_map().into_iter().map(|(e, v)| (e.code().to_owned(), v)).collect();
    (scores, rating.comment)
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
    // Issue 14, item 7: the respondent profile, said to be optional and
    // anonymous; "Tidak menjawab" is chosen until another answer is.
    let about = b.text("#profile").await.unwrap();
    assert!(about.contains("tidak wajib") && about.contains("NIK"), "{about}");
    for question in ["age", "sex", "education", "occupation"] {
        let skip = format!("input[name={question}][value='']");
        assert_eq!(b.js(&format!("return document.querySelector(\"{skip}\").checked")).await.unwrap(), true);
    }
    // Two of the four answered, by touching their labels.
    b.click("label.profile-option:has(input[name=sex][value=p])").await.unwrap();
    b.click("label.profile-option:has(input[name=education][value=sma])").await.unwrap();
    // Every choice, "Tidak menjawab" too, is on the screen, large.
    let hidden = b
        .js("return [...document.querySelectorAll('#profile label.profile-option')]
                 .map(l => l.getBoundingClientRect())
                 .filter(r => r.left < 0 || r.width < 150 || r.height < 56).length")
        .await
        .unwrap();
    assert_eq!(hidden, 0, "choices off the screen or too small to touch");
    b.js("document.getElementById('profile').scrollIntoView(); return null").await.unwrap();
    b.shot("profile").await.unwrap();
    b.type_into("#comment", HOSTILE).await.unwrap();
    b.shot("comment").await.unwrap();
    b.click("#rate-submit").await.unwrap();
    b.find("#thanks").await.unwrap();
    b.shot("thanks").await.unwrap();
    // Issue 15, item 7: every survey step was a POST answered by a
    // redirect, so Back shows a page, not "Confirm Form Resubmission":
    // here the survey's page, which now says the ticket is rated.
    assert_eq!(b.path().await.unwrap(), format!("/nilai/{ticket}/terima-kasih"));
    b.js("history.back(); return null").await.unwrap();
    b.wait_path(&format!("/nilai/{ticket}/survei")).await.unwrap();
    b.find("#already-rated").await.unwrap();
    // In the kiosk's document, only what was answered.
    let profile = stored_rating_profile(&kiosk.data, &id);
    assert_eq!(profile, loket_shared::respondent::Profile::from_pairs([("sex", "p"), ("education", "sma")]).unwrap());

    // Stored by element code, comment as typed.
    let (scores, comment) = stored_rating(&kiosk, &id);
    for (element, score) in chosen {
        assert!(scores.contains(&(element.to_owned(), score)), "{element}: {scores:?}");
    }
    assert_eq!(comment.as_deref(), Some(HOSTILE));

    // Once only.
    b.go(&format!("/nilai/{ticket}")).await.unwrap();
    b.find("#already-rated").await.unwrap();

    // The clerk sees that it was rated, not how (issue 15, item 6), and
    // nothing the comment held runs.
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.go_url(&kiosk.staff_url(&format!("/staf/permohonan/{id}"))).await.unwrap();
    b.find("#detail-rated[data-rated=true]").await.unwrap();
    assert!(!b.source_contains("window.__pwned").await, "the comment is not on the clerk's page");
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
    // It counts down, and sits at the top, above where an on-screen
    // keyboard would be (issue 15, item 7).
    let left: u64 = b.text("#idle-count").await.unwrap().parse().expect("seconds left");
    assert!((1..=3).contains(&left), "{left} seconds left of 3");
    let top = b
        .js("return document.getElementById('idle-warning').getBoundingClientRect().bottom / window.innerHeight")
        .await
        .unwrap();
    assert!(top.as_f64().unwrap() < 0.5, "the warning is not at the top: {top}");
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
    b.go_url(&kiosk.staff_url("/staf/masuk")).await.unwrap();
    b.force_value("#staff_id", HOSTILE).await.unwrap();
    b.type_into("#password", HOSTILE).await.unwrap();
    b.click("#login").await.unwrap();
    b.find("#login-error").await.unwrap();
    b.assert_not_injected().await.unwrap();

    // Staff notes.
    let (id, _) = loket_tests::file_request(&client, &kiosk, "SKD", "Dewi Lestari", &nik(4)).await;
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.go_url(&kiosk.staff_url(&format!("/staf/permohonan/{id}"))).await.unwrap();
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
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
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

    b.go_url(&kiosk.staff_url("/staf")).await.unwrap();
    let text = b.text("#sync-text").await.unwrap();
    assert!(text.starts_with("Luring sejak ") && text.ends_with("perubahan menunggu"), "{text}");
    let pending: u64 =
        b.find("#sync-indicator").await.unwrap().attr("data-pending").await.unwrap().unwrap().parse().unwrap();
    assert!(pending >= 3, "filing, taking and completing wait: {text}");
    b.shot("indicator-offline").await.unwrap();
    // "Sinkronkan" while offline says what happened (issue 15, item 7).
    b.click("#sync-now").await.unwrap();
    let said = b.text("#sync-message").await.unwrap();
    assert!(said.contains("tidak terjangkau") && said.contains("tersimpan di kiosk ini"), "{said}");

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
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.go_url(&kiosk.staff_url("/staf?layanan=PKK")).await.unwrap();
    assert!(b.exists(&format!("tr[data-ticket='{pkk_ticket}']")).await.unwrap());
    assert!(!b.exists(&format!("tr[data-ticket='{skd}']")).await.unwrap(), "filtered by service");
    b.go_url(&kiosk.staff_url("/staf?sla=overdue")).await.unwrap();
    b.find("#queue-empty").await.unwrap();
    b.go_url(&kiosk.staff_url("/staf")).await.unwrap();
    assert_eq!(b.client.find_all(fantoccini::Locator::Css("#queue tbody tr")).await.unwrap().len(), 2);
    b.shot("queue").await.unwrap();
    b.go_url(&kiosk.staff_url(&format!("/staf/permohonan/{pkk_id}"))).await.unwrap();
    act(&b, "in_progress", None).await;
    b.find("#action-agency").await.unwrap().select_by_value("DISDUKCAPIL").await.unwrap();
    act(&b, "handed_off", Some("Mohon diterbitkan KK baru")).await;
    assert!(b.text("main").await.unwrap().contains("Dinas Kependudukan dan Pencatatan Sipil"));
    b.go_url(&kiosk.staff_url("/staf?status=handed_off")).await.unwrap();
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
    b.go_url(&kiosk.staff_url(&format!("/staf/permohonan/{pkk_id}"))).await.unwrap();
    act(&b, "rejected", Some("Berkas tidak sah")).await;

    // The line comes back; both sides' steps meet.
    proxy.handle().partition(false);
    wait_synced(&client, &kiosk).await;
    b.go_url(&kiosk.staff_url(&format!("/staf/permohonan/{pkk_id}"))).await.unwrap();
    let conflict = b.text("#conflict").await.unwrap();
    for expected in ["Konflik", "KK sudah terbit", "Berkas tidak sah", "admin pusat", "kiosk ini", "Petugas Uji"] {
        assert!(conflict.contains(expected), "{expected:?} in {conflict}");
    }
    assert!(!b.exists("#action-panel").await.unwrap(), "actions wait for the central decision");
    assert!(b.text("#detail-status").await.unwrap().starts_with("Konflik"), "no side's status is shown as final");
    b.shot("conflict").await.unwrap();
    b.go_url(&kiosk.staff_url("/staf")).await.unwrap();
    assert!(b.exists(&format!("tr.conflict[data-ticket='{pkk_ticket}']")).await.unwrap(), "listed as open, flagged");
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_left_alone_logs_itself_out() {
    let dir = TestDir::new("browser-staff-idle");
    let kiosk = standalone_kiosk(&dir, &[("LOKET_KIOSK_STAFF_IDLE_TIMEOUT", "3")]);
    let b = Browser::start("a_console_left_alone_logs_itself_out", &kiosk.base).await.expect("browser");
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.wait_path("/staf/masuk?diam=1").await.unwrap();
    assert!(b.text(".alert").await.unwrap().contains("keluar otomatis"));
    // The session is over, not just hidden.
    b.go_url(&kiosk.staff_url("/staf")).await.unwrap();
    b.wait_path("/staf/masuk").await.unwrap();
    b.close().await.unwrap();
}

/// Issue 15, item 1: a clerk's session outlives the citizen screen's
/// reset, so the citizen screen must have no way to it. The console is on
/// its own origin; even in this one browser (the worst case: a clerk used
/// the console on the touch screen's browser), the citizen home links to
/// no staff page, the citizen origin serves none, and the reset ends only
/// the citizen's state: the clerk's console is still signed in and its
/// forms still submit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_citizen_screen_cannot_reach_a_staff_session_after_a_reset() {
    let dir = TestDir::new("browser-two-origins");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let (id, _) = loket_tests::file_request(&client, &kiosk, "SKD", "Dewi Kartika", &nik(21)).await;
    let b = Browser::start("the_citizen_screen_cannot_reach_a_staff_session", &kiosk.base).await.expect("browser");
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    assert!(b.text("#queue").await.unwrap().contains("Dewi Kartika"), "the clerk sees the queue");

    // The citizen screen resets, as its idle timeout does.
    b.go("/mulai-ulang").await.unwrap();
    b.find("#start-file").await.unwrap();
    b.shot("citizen-home-after-reset").await.unwrap();
    let links =
        b.js("return [...document.querySelectorAll('a')].map(a => a.href + ' ' + a.textContent)").await.unwrap();
    for link in links.as_array().unwrap() {
        let link = link.as_str().unwrap();
        assert!(!link.contains("/staf") && !link.contains("Petugas"), "a way to the console: {link}");
    }
    // Typed on the citizen screen, the console's paths find nothing of it.
    for path in ["/staf".to_owned(), "/staf/masuk".to_owned(), format!("/staf/permohonan/{id}")] {
        b.go(&path).await.unwrap();
        b.find("main.error-page[data-code=not_found]").await.unwrap();
        assert_eq!(b.origin().await.unwrap(), kiosk.base, "{path} stays on the citizen origin");
        for leak in ["Dewi Kartika", "••••••", "Rina Siregar"] {
            assert!(!b.source_contains(leak).await, "{path} shows {leak}");
        }
        assert!(!b.exists("#logout").await.unwrap() && !b.exists("#queue").await.unwrap(), "{path}");
    }
    b.shot("citizen-origin-staff-path").await.unwrap();

    // The clerk's console, on its own origin, was not touched by the reset.
    b.go_url(&kiosk.staff_url("/staf")).await.unwrap();
    b.find("#logout").await.unwrap();
    b.click("#sync-now").await.unwrap();
    b.wait_until("the console after its sync button", || async { b.exists("#queue").await }).await.unwrap();
    assert!(!b.source_contains("csrf_failed").await, "the console's forms still submit after the citizen reset");
    b.close().await.unwrap();
}

/// The border colour of an action's choice in the panel.
async fn action_colour(b: &Browser, to: &str) -> Value {
    let script =
        format!("return getComputedStyle(document.querySelector('#action-panel label[data-action={to}]')).borderColor");
    b.js(&script).await.unwrap()
}

/// Issue 15, item 2: one action panel with one note box; a reject, a
/// cancel or a request for documents needs a reason (the page asks for
/// it, the kiosk refuses without it, on the form and in the API); final
/// steps ask for a confirmation and look dangerous; and the reason, and
/// nothing personal, shows on the citizen's status check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reject_needs_a_reason_and_a_confirmation_and_the_citizen_reads_the_reason() {
    let dir = TestDir::new("browser-reject");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let (id, ticket) = loket_tests::file_request(&client, &kiosk, "SKD", "Yusuf Nasution", &nik(31)).await;
    let b = Browser::start("a_reject_needs_a_reason_and_a_confirmation", &kiosk.base).await.expect("browser");
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.go_url(&kiosk.staff_url(&format!("/staf/permohonan/{id}"))).await.unwrap();
    act(&b, "in_progress", None).await;
    let panel = b.find("#action-panel").await.unwrap();
    assert_eq!(panel.find_all(fantoccini::Locator::Css("textarea")).await.unwrap().len(), 1, "one note box");
    b.shot("action-panel").await.unwrap();
    // Final steps look different from the others.
    let rejected = action_colour(&b, "rejected").await;
    assert_ne!(rejected, action_colour(&b, "completed").await, "reject looks like complete");
    assert_ne!(rejected, action_colour(&b, "waiting_citizen").await);

    // Reject without a reason: the page asks for one and sends nothing.
    b.click("#action-panel input[value=rejected]").await.unwrap();
    b.click("#action-submit").await.unwrap();
    assert_eq!(b.js("return document.getElementById('action-note').validity.valueMissing").await.unwrap(), true);
    assert!(b.exists("#detail-status[data-status=in_progress]").await.unwrap());
    // Sent anyway (past the page's check), the kiosk refuses it.
    b.js("document.getElementById('action-form').submit()").await.unwrap();
    b.wait_until("the refusal", || async { b.exists("#action-message[data-code=reason_required]").await })
        .await
        .unwrap();
    assert!(b.exists("#detail-status[data-status=in_progress]").await.unwrap(), "nothing was done");
    b.shot("reason-required").await.unwrap();
    // The API refuses it too, with the same code.
    let token = loket_tests::staff_login(&client, &kiosk.base).await.unwrap();
    for body in [json!({ "to": "rejected" }), json!({ "to": "rejected", "note": "   " }), json!({ "to": "cancelled" })]
    {
        let r = client
            .post(kiosk.url(&format!("/api/staff/requests/{id}/events")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{body}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "reason_required", "{body}");
    }
    // A reason the citizen would read with a NIK in it is refused.
    b.click("#action-panel input[value=rejected]").await.unwrap();
    b.type_into("#action-note", &format!("NIK {} tidak cocok", nik(31))).await.unwrap();
    b.click("#action-submit").await.unwrap();
    b.wait_until("the refusal", || async { b.exists("#action-message[data-code=reason_personal_data]").await })
        .await
        .unwrap();

    // With a reason: a confirmation first, then the step.
    let reason = "Surat pengantar RT/RW belum dilampirkan";
    b.click("#action-panel input[value=rejected]").await.unwrap();
    b.type_into("#action-note", reason).await.unwrap();
    b.click("#action-submit").await.unwrap();
    let confirm = b.text("#confirm-box").await.unwrap();
    assert!(confirm.contains("Tolak") && confirm.contains(reason), "{confirm}");
    assert!(b.exists("#detail-status[data-status=in_progress]").await.unwrap(), "not before it is confirmed");
    assert!(b.exists("#confirm-action.danger").await.unwrap(), "the confirmation looks dangerous");
    b.shot("confirm-reject").await.unwrap();
    b.click("#confirm-action").await.unwrap();
    b.wait_until("rejected", || async { b.exists("#detail-status[data-status=rejected]").await }).await.unwrap();
    assert!(b.text("#history").await.unwrap().contains(reason));

    // The citizen's status check shows the reason, and nothing personal.
    b.go("/cek").await.unwrap();
    b.type_into("#tiket", &ticket).await.unwrap();
    b.click("#ticket-go").await.unwrap();
    b.wait_path(&format!("/tiket/{ticket}")).await.unwrap();
    assert_eq!(b.text("#ticket-reason").await.unwrap(), reason);
    for personal in ["Yusuf", "Nasution", &nik(31)[..], &nik(31)[12..], "Rina"] {
        assert!(!b.text("main").await.unwrap().contains(personal), "{personal} on the citizen's page");
    }
    b.shot("citizen-reads-reason").await.unwrap();
    let api: Value =
        client.get(kiosk.url(&format!("/api/tickets/{ticket}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(api["reason"], reason, "{api}");
    b.close().await.unwrap();
}

/// Moves a request's filing time back in the kiosk's queue table (as if
/// it had been filed `days` ago), so that it is overdue now. Test data
/// only: the document keeps its own time.
fn backdate_in_queue(kiosk: &KioskProcess, ticket: &str, days: i64) {
    let conn = rusqlite::Connection::open(kiosk.data.join("kiosk.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let n = conn
        .execute(
            "UPDATE requests SET created_at_ms = created_at_ms - ?1 WHERE ticket = ?2",
            rusqlite::params![days * 86_400_000, ticket],
        )
        .unwrap();
    assert_eq!(n, 1, "{ticket}");
}

/// The number of the queue's rows wholly inside the window.
async fn rows_in_view(b: &Browser) -> u64 {
    b.js("return [...document.querySelectorAll('#queue tbody tr')].filter(r => r.getBoundingClientRect().bottom <= window.innerHeight).length")
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

/// Presses keys on whatever has the focus, as a keyboard does.
async fn keys(b: &Browser, text: &str) {
    b.client.active_element().await.unwrap().send_keys(text).await.unwrap();
}

/// Presses Tab until the focus is on `css` (at most 60 times): the
/// element is reachable from the keyboard.
async fn tab_to(b: &Browser, css: &str) {
    for _ in 0..60 {
        let on = b.js(&format!("return document.activeElement.matches({css:?})")).await.unwrap();
        if on == true {
            return;
        }
        keys(b, "\u{e004}").await;
    }
    panic!("Tab never reaches {css} on {}", b.path().await.unwrap());
}

/// Issue 15, item 3: the queue at a 1366×768 counter PC with a day's
/// work: search by ticket (as a QR scanner types it, Enter included),
/// name or NIK; ticket numbers and dates on one line; coloured status
/// tags; overdue requests marked; many rows at once; and the keyboard
/// alone finds and works a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_finds_tickets_by_scanner_name_or_nik_and_fits_a_counter_screen() {
    let dir = TestDir::new("browser-queue");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let names = [
        "Ahmad Fauzi",
        "Butet Simanjuntak",
        "Citra Lestari",
        "Dedi Kurniawan",
        "Erna Sitompul",
        "Fajar Siddiq",
        "Gita Purnama",
        "Hendra Saragih",
        "Indah Permata",
        "Joko Susilo",
        "Kartini Manurung",
        "Lukman Hakim",
        "Maya Sari",
        "Nanda Pratama",
        "Oktaviani Ginting",
        "Putra Ramadhan",
        "Rahmawati Lubis",
        "Sahat Panjaitan",
        "Tiurma Hutapea",
        "Umar Bakri",
    ];
    let mut filed = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let service = if i % 3 == 0 { "SKTM" } else { "SKD" };
        filed.push(loket_tests::file_request(&client, &kiosk, service, name, &nik(40 + i as u64)).await);
    }
    let token = loket_tests::staff_login(&client, &kiosk.base).await.unwrap();
    for (id, _) in filed.iter().take(4) {
        let r = client
            .post(kiosk.url(&format!("/api/staff/requests/{id}/events")))
            .bearer_auth(&token)
            .json(&json!({ "to": "in_progress" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    backdate_in_queue(&kiosk, &filed[5].1, 30);
    // One at an agency, whose long name must not widen the table.
    let (pkk, _) = loket_tests::file_request(&client, &kiosk, "PKK", "Vera Sinaga", &nik(39)).await;
    for body in [json!({ "to": "in_progress" }), json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })] {
        let r = client
            .post(kiosk.url(&format!("/api/staff/requests/{pkk}/events")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{body}");
    }

    let b = Browser::start("the_queue_finds_tickets", &kiosk.staff).await.expect("browser");
    b.viewport(1366, 768).await.unwrap();
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.shot("queue-1366x768").await.unwrap();
    let seen = rows_in_view(&b).await;
    assert!(seen >= 12, "only {seen} rows fit a 1366×768 screen");
    assert_eq!(b.tables_too_wide().await.unwrap(), Vec::<String>::new(), "the queue is wider than a 1366 px screen");
    // Ticket numbers and dates stay on one line.
    let wrapped = b
        .js("return [...document.querySelectorAll('#queue td.ticket, #queue td.date')].filter(td => {
               const r = document.createRange(); r.selectNodeContents(td);
               const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
               return tops.size > 1; }).length")
        .await
        .unwrap();
    assert_eq!(wrapped, 0, "ticket numbers or dates wrap");
    // Status tags have colours of their own.
    let tag = |status: &str| {
        format!(
            "return getComputedStyle(document.querySelector('#queue .badge[data-status={status}]')).backgroundColor"
        )
    };
    let (submitted, in_progress) = (b.js(&tag("submitted")).await.unwrap(), b.js(&tag("in_progress")).await.unwrap());
    assert_ne!(submitted, in_progress, "status tags look alike");
    // The overdue request stands out.
    let overdue = format!("#queue tr.overdue[data-ticket='{}']", filed[5].1);
    assert!(b.exists(&overdue).await.unwrap(), "the overdue request is not marked");
    let (late_bg, plain_bg) = (
        b.js(&format!("return getComputedStyle(document.querySelector(\"{overdue} td\")).backgroundColor"))
            .await
            .unwrap(),
        b.js(&format!(
            "return getComputedStyle(document.querySelector(\"#queue tr[data-ticket='{}'] td\")).backgroundColor",
            filed[6].1
        ))
        .await
        .unwrap(),
    );
    assert_ne!(late_bg, plain_bg, "the overdue row looks like the others");

    // A QR scanner types the ticket and Enter into the field that has the
    // focus when the queue opens: the request opens.
    let (id, ticket) = &filed[7];
    assert_eq!(b.js("return document.activeElement.id").await.unwrap(), "search", "the search field waits for a scan");
    keys(&b, &format!("{ticket}\u{e007}")).await;
    b.wait_path(&format!("/staf/permohonan/{id}")).await.unwrap();
    assert_eq!(b.text("#detail-ticket").await.unwrap(), *ticket);
    // A receipt's QR code holds the rating link: it finds the ticket too,
    // and its code goes into no URL.
    b.go("/staf").await.unwrap();
    let (id, ticket) = &filed[8];
    keys(&b, &format!("http://127.0.0.1:8080/nilai/{ticket}?kode=7K2M-9QXD\u{e007}")).await;
    b.wait_path(&format!("/staf/permohonan/{id}")).await.unwrap();
    assert!(!b.path().await.unwrap().contains("7K2M"));
    // Typed as people type it.
    b.go("/staf").await.unwrap();
    let (id, ticket) = &filed[9];
    let loose = ticket.to_lowercase().replace('-', " ");
    b.type_into("#search", &format!("{loose}\u{e007}")).await.unwrap();
    b.wait_path(&format!("/staf/permohonan/{id}")).await.unwrap();
    // By part of a name, in any case: the matching rows only.
    b.go("/staf").await.unwrap();
    b.type_into("#search", "simanjuntak\u{e007}").await.unwrap();
    b.wait_until("the name's result", || async { Ok(b.text("#search-summary").await.is_ok()) }).await.unwrap();
    let rows = b.client.find_all(fantoccini::Locator::Css("#queue tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "one Butet");
    assert_eq!(rows[0].attr("data-ticket").await.unwrap().as_deref(), Some(filed[1].1.as_str()));
    b.shot("search-by-name").await.unwrap();
    // By the whole NIK from the KTP: found, and the NIK is in no URL.
    b.go("/staf").await.unwrap();
    b.type_into("#search", &format!("{}\u{e007}", nik(52))).await.unwrap();
    b.wait_path(&format!("/staf/permohonan/{}", filed[12].0)).await.unwrap();
    assert!(!b.path().await.unwrap().contains(&nik(52)));
    let history = b.js("return performance.getEntriesByType('navigation').map(e => e.name).join(' ')").await.unwrap();
    assert!(!history.as_str().unwrap().contains(&nik(52)), "{history}");

    // The keyboard alone: from the queue to a request and through a step.
    b.go("/staf").await.unwrap();
    let (id, ticket) = &filed[10];
    tab_to(&b, &format!("#queue tr[data-ticket='{ticket}'] a")).await;
    keys(&b, "\u{e007}").await;
    b.wait_path(&format!("/staf/permohonan/{id}")).await.unwrap();
    tab_to(&b, "#action-panel input[value=in_progress]").await;
    keys(&b, " ").await;
    tab_to(&b, "#action-submit").await;
    let outline = b.js("return getComputedStyle(document.activeElement).outlineStyle").await.unwrap();
    assert_ne!(outline, "none", "the focus is visible");
    keys(&b, "\u{e007}").await;
    b.wait_until("taken", || async { b.exists("#detail-status[data-status=in_progress]").await }).await.unwrap();
    b.close().await.unwrap();
}

const SECOND_STAFF_ID: &str = "199001012015031001";
const SECOND_STAFF_PASSWORD: &str = "rahasia-petugas-2";

/// Puts a named staff member on a kelurahan's roster at the server.
async fn put_named_staff(
    server: &ServerProcess,
    https: &reqwest::Client,
    admin: &str,
    id: &str,
    name: &str,
    password: &str,
) {
    let r = https
        .put(format!("{}/api/admin/rosters/{}/staff/{id}", server.base, loket_tests::KELURAHAN))
        .bearer_auth(admin)
        .json(&json!({ "name": name, "role": "staff", "password": password }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// A staff step through a kiosk's API as `staff_id`.
async fn step_as(client: &reqwest::Client, k: &KioskProcess, staff_id: &str, password: &str, id: &str, body: Value) {
    let login: Value = client
        .post(k.url("/api/staff/login"))
        .json(&json!({ "staff_id": staff_id, "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap_or_else(|| panic!("login: {login}"));
    let r = client
        .post(k.url(&format!("/api/staff/requests/{id}/events")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{body}: {}", r.text().await.unwrap());
}

/// Issue 15, item 4: who did what, by name and kiosk, everywhere. Two
/// kiosks of one office (K001, K002) and two clerks: a step taken at the
/// other kiosk is that kiosk's, not "central"; no history shows a bare
/// NIP; and in a conflict between the two kiosks, the kiosk's console
/// and the admin's page both tell the sides apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_are_named_by_staff_name_and_kiosk_on_both_kiosks_and_centrally() {
    let dir = TestDir::new("browser-who");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let server = ServerProcess::start(&server_dir).expect("server");
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin");
    put_named_staff(&server, &https, &admin, STAFF_ID, "Rina Siregar", STAFF_PASSWORD).await;
    put_named_staff(&server, &https, &admin, SECOND_STAFF_ID, "Budi Harahap", SECOND_STAFF_PASSWORD).await;
    // Each kiosk reaches the server through a proxy the test can cut.
    let mut kiosks = Vec::new();
    let mut proxies = Vec::new();
    for n in 1..=2 {
        let proxy = FaultProxy::start_seeded(server.addr(), n).expect("proxy");
        let data = dir.path().join(format!("kiosk{n}"));
        let code = server.enroll_code(loket_tests::KELURAHAN).expect("code");
        enroll_kiosk_at(&data, &format!("https://{}", proxy.addr()), &server.ca_pem(), &code).expect("enroll");
        kiosks.push(KioskProcess::start(&data).expect("kiosk"));
        proxies.push(proxy);
    }
    let client = http_client();
    for k in &kiosks {
        wait_synced(&client, k).await;
    }
    let (k1, k2) = (&kiosks[0], &kiosks[1]);
    // A day at the office: citizens file at both kiosks.
    loket_tests::file_request(&client, k2, "SKU", "Hotman Pardede", &nik(62)).await;
    wait_synced(&client, k2).await;
    let (id, _) = loket_tests::file_request(&client, k1, "SKD", "Sri Wahyuni", &nik(61)).await;
    wait_synced(&client, k1).await;
    wait_synced(&client, k2).await;
    // Budi takes it at the second kiosk.
    step_as(&client, k2, SECOND_STAFF_ID, SECOND_STAFF_PASSWORD, &id, json!({ "to": "in_progress" })).await;
    wait_synced(&client, k2).await;
    wait_synced(&client, k1).await;
    // Both lines are cut; Rina completes at the first kiosk, Budi rejects at the second.
    for p in &proxies {
        p.handle().partition(true);
    }
    step_as(&client, k1, STAFF_ID, STAFF_PASSWORD, &id, json!({ "to": "completed", "note": "Surat sudah diserahkan" }))
        .await;
    step_as(
        &client,
        k2,
        SECOND_STAFF_ID,
        SECOND_STAFF_PASSWORD,
        &id,
        json!({ "to": "rejected", "note": "Berkas tidak lengkap" }),
    )
    .await;
    for p in &proxies {
        p.handle().partition(false);
    }
    wait_synced(&client, k1).await;
    wait_synced(&client, k2).await;
    wait_synced(&client, k1).await;

    // Kiosk 1's console.
    let b = Browser::start("steps_are_named_by_staff_name_and_kiosk", &k1.staff).await.expect("browser");
    b.kiosk_staff_login(&k1.staff).await.unwrap();
    b.go(&format!("/staf/permohonan/{id}")).await.unwrap();
    let history = b.text("#history").await.unwrap();
    for expected in ["Rina Siregar", "Budi Harahap", "K001", "K002"] {
        assert!(history.contains(expected), "{expected:?} in {history}");
    }
    for wrong in [STAFF_ID, SECOND_STAFF_ID, "pusat/instansi"] {
        assert!(!history.contains(wrong), "{wrong:?} in {history}");
    }
    let conflict = b.text("#conflict").await.unwrap();
    let rows: Vec<&str> =
        conflict.lines().filter(|l| l.contains("Surat sudah") || l.contains("Berkas tidak")).collect();
    assert!(
        rows.iter().any(|r| r.contains("Rina Siregar") && r.contains("K001"))
            && rows.iter().any(|r| r.contains("Budi Harahap") && r.contains("K002")),
        "the sides are not told apart: {conflict}"
    );
    b.shot("kiosk-conflict-named").await.unwrap();
    b.close().await.unwrap();

    // The admin's page at the server tells them apart too.
    let b = Browser::start_https("steps_are_named_centrally", &server.base).await.expect("browser");
    b.go("/masuk").await.unwrap();
    b.type_into("#username", loket_tests::server::ADMIN_USER).await.unwrap();
    b.type_into("#password", loket_tests::server::ADMIN_PASSWORD).await.unwrap();
    b.click("#login").await.unwrap();
    b.wait_path("/admin/").await.unwrap();
    b.go(&format!("/admin/permohonan/{id}")).await.unwrap();
    let conflict = b.text("#conflict").await.unwrap();
    let history = b.text("#history").await.unwrap();
    for text in [&conflict, &history] {
        for expected in ["Rina Siregar", "Budi Harahap", "K001", "K002"] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
        for wrong in [STAFF_ID, SECOND_STAFF_ID] {
            assert!(!text.contains(wrong), "a bare NIP: {text}");
        }
    }
    b.shot("central-conflict-named").await.unwrap();
    b.close().await.unwrap();
}

/// Issue 15, item 5: a ticket as people type it (any case, spaces or
/// nothing for the dashes, a missing or extra leading zero) finds the
/// ticket at the status check and the rating entry, whose example is in
/// the form this kiosk prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_are_found_as_people_type_them() {
    let dir = TestDir::new("browser-loose-tickets");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let (id, ticket, code) =
        loket_tests::file_request_with_code(&client, &kiosk, "SKD", "Rudi Tarigan", &nik(71)).await;
    let (prefix, day, seq) = {
        let mut parts = ticket.split('-');
        (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned())
    };
    let number: u32 = seq.parse().unwrap();
    let b = Browser::start("tickets_are_found_as_people_type_them", &kiosk.base).await.expect("browser");
    for typed in [
        format!("{} {day} {seq}", prefix.to_lowercase()),
        format!("{prefix}{day}{seq}"),
        format!("{prefix}-{day}-0{seq}"),
        format!("{prefix}-{day}-{number}"),
        format!(" {prefix} - {day} - {seq} "),
    ] {
        b.go("/cek").await.unwrap();
        let example = b.text("#tiket-hint").await.unwrap();
        let example = example.split_whitespace().last().unwrap().trim_end_matches('.');
        assert!(example.parse::<loket_shared::Ticket>().is_ok() && example.starts_with(&prefix), "{example}");
        b.type_into("#tiket", &typed).await.unwrap();
        b.click("#ticket-go").await.unwrap();
        b.wait_path(&format!("/tiket/{ticket}")).await.unwrap_or_else(|e| panic!("{typed:?}: {e}"));
        assert_eq!(b.text("#ticket-number").await.unwrap(), ticket, "{typed:?}");
    }
    // A ticket's page under a loose number shows the ticket's own.
    b.go(&format!("/tiket/{}", format!("{prefix}{day}{seq}").to_lowercase())).await.unwrap();
    b.wait_path(&format!("/tiket/{ticket}")).await.unwrap();
    // The rating entry takes it the same way.
    loket_tests::complete_request(&client, &kiosk.base, &id).await.unwrap();
    b.go("/nilai").await.unwrap();
    let example = b.text("#tiket-hint").await.unwrap();
    assert!(example.contains(&format!("{prefix}-")), "{example}");
    b.type_into("#tiket", &format!("{} {day} {number}", prefix.to_lowercase())).await.unwrap();
    b.type_into("#kode", &code).await.unwrap();
    b.click("#rate-go").await.unwrap();
    b.find("#question-form").await.unwrap();
    b.close().await.unwrap();
}

/// Issue 15, item 6: the survey is anonymous to staff. A rated request's
/// page on the console, and the staff API beside the applicant's name,
/// say that it was rated, never the scores or the comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_never_see_a_citizens_scores_or_comment() {
    let dir = TestDir::new("browser-anonymous-skm");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let (id, _, code) = loket_tests::file_request_with_code(&client, &kiosk, "SKD", "Lina Marbun", &nik(81)).await;
    loket_tests::complete_request(&client, &kiosk.base, &id).await.unwrap();
    let comment = "Petugas loket dua kurang ramah";
    let r = client
        .post(kiosk.url(&format!("/api/requests/{id}/rating")))
        .json(&json!({
            "scores": {"U1":1,"U2":2,"U3":1,"U4":2,"U5":1,"U6":2,"U7":1,"U8":2,"U9":1},
            "comment": comment, "token": code,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let b = Browser::start("staff_never_see_a_citizens_scores", &kiosk.staff).await.expect("browser");
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.go(&format!("/staf/permohonan/{id}")).await.unwrap();
    let page = b.text("main").await.unwrap();
    assert!(page.contains("Lina Marbun"), "the clerk's page for the applicant");
    assert!(page.contains("Sudah dinilai"), "it says that it was rated: {page}");
    for hidden in [comment, "Kesesuaian persyaratan", "Penilaian warga (SKM)"] {
        assert!(!page.contains(hidden), "{hidden:?} beside the citizen's name: {page}");
    }
    assert!(!b.exists(".scores").await.unwrap());
    b.shot("rated-request").await.unwrap();
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
    assert_eq!(detail["rated"], true, "{detail}");
    let text = detail.to_string();
    assert!(!text.contains(comment) && detail.get("rating").is_none_or(Value::is_null), "{detail}");
    b.close().await.unwrap();
}

/// Whether the element's box ends inside the window (above the fold).
async fn in_view(b: &Browser, css: &str) -> bool {
    b.find(css).await.unwrap();
    b.js(&format!("const r = document.querySelector({css:?}).getBoundingClientRect(); return r.bottom <= window.innerHeight && r.top >= 0"))
        .await
        .unwrap()
        == true
}

/// Issue 15, item 7, as a citizen meets it: Back after filing shows the
/// ticket, not the browser's "Confirm Form Resubmission"; the main button
/// of each screen is in view at 1280×800; a 1080×1920 portrait panel
/// gets larger text and targets; in English the cost reads "Free" and the
/// catalog's Indonesian text says what it is; an unknown ticket is said
/// so where it is typed, without an error code; the console's sync button
/// says what happened when it could not sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_after_filing_screens_at_their_sizes_and_plain_messages() {
    let dir = TestDir::new("browser-item7");
    let kiosk = standalone_kiosk(&dir, &[]);
    let b = Browser::start("back_after_filing_screens_at_their_sizes", &kiosk.base).await.expect("browser");
    b.viewport(1280, 800).await.unwrap();
    b.go("/layanan/SKTM").await.unwrap();
    assert!(in_view(&b, "#apply").await, "Ajukan sekarang below the fold at 1280×800");
    b.click("#apply").await.unwrap();
    b.wait_path("/layanan/SKTM/ajukan").await.unwrap();
    assert!(in_view(&b, "#next").await, "Lanjut below the fold at 1280×800");
    b.type_into("#name", "Agus Salim").await.unwrap();
    b.type_into("#nik", &nik(91)).await.unwrap();
    b.click("#next").await.unwrap();
    b.find("#confirm-nik").await.unwrap();
    assert!(!b.path().await.unwrap().contains(&nik(91)), "the NIK is in no URL");
    assert!(in_view(&b, "#submit").await);
    b.click("#submit").await.unwrap();
    b.wait_path("/tiket/").await.unwrap();
    let ticket = b.text("#ticket-number").await.unwrap();
    assert!(in_view(&b, "#done").await);
    // Back: the ticket again, never a form sent twice or the browser's question.
    b.client.back().await.unwrap();
    b.wait_until("a page after Back", || async {
        Ok(b.exists("#ticket-number").await? || b.exists("#confirm-nik").await?)
    })
    .await
    .unwrap_or_else(|e| panic!("Back after filing: {e}"));
    assert_eq!(b.text("#ticket-number").await.unwrap(), ticket, "Back shows the ticket");
    assert!(!b.source_contains("ERR_CACHE_MISS").await);
    b.go("/mulai-ulang").await.unwrap();

    // An unknown ticket: said where it is typed, no code.
    b.go("/tiket/K01-0101-999").await.unwrap();
    let error = b.text("#tiket-error").await.unwrap();
    assert!(error.contains("tidak ditemukan"), "{error}");
    assert!(!b.text("main").await.unwrap().contains("ticket_not_found"));
    // Unknown URLs are pages.
    b.go("/tidak-ada").await.unwrap();
    b.find("main.error-page #error-home").await.unwrap();
    assert!(!b.text("body").await.unwrap().contains("{\""), "raw JSON");

    // English: the cost and the built-in catalog's procedure in English,
    // nothing in Indonesian passed off as English.
    b.go("/bahasa/en?kembali=/layanan/SKD").await.unwrap();
    assert_eq!(b.text("#service-cost").await.unwrap(), "Free");
    let procedure = b.text("#service-procedure").await.unwrap();
    assert!(procedure.contains("Lurah signs the letter"), "{procedure}");
    assert!(!b.exists("#catalog-language").await.unwrap() && !b.exists("main [lang=id]").await.unwrap());
    b.shot("service-en").await.unwrap();
    b.go("/mulai-ulang").await.unwrap();

    // A portrait panel uses its height: larger text and targets.
    b.viewport(1080, 1920).await.unwrap();
    b.go("/").await.unwrap();
    let size = b.js("return parseFloat(getComputedStyle(document.documentElement).fontSize)").await.unwrap();
    assert!(size.as_f64().unwrap() >= 26.0, "root font {size} on 1080×1920");
    let height = b.js("return document.getElementById('start-file').getBoundingClientRect().height").await.unwrap();
    assert!(height.as_f64().unwrap() >= 150.0, "a choice {height}px high on 1080×1920");
    b.shot("home-portrait").await.unwrap();

    // The console's sync button, on a kiosk that cannot sync, says why.
    b.viewport(1366, 768).await.unwrap();
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.click("#sync-now").await.unwrap();
    let said = b.text("#sync-message").await.unwrap();
    assert!(said.contains("belum terdaftar") && said.contains("tersimpan"), "{said}");
    b.close().await.unwrap();
}

/// Issue 15, must show: axe-core (vendored) finds no serious or critical
/// violation on the main kiosk and staff screens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_screens_pass_an_accessibility_check() {
    let dir = TestDir::new("browser-a11y");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let (done_id, done_ticket, code) =
        loket_tests::file_request_with_code(&client, &kiosk, "SKD", "Nurhayati Siregar", &nik(95)).await;
    loket_tests::complete_request(&client, &kiosk.base, &done_id).await.unwrap();
    let (open_id, _) = loket_tests::file_request(&client, &kiosk, "PKK", "Bonar Situmorang", &nik(96)).await;
    let b = Browser::start("the_main_screens_pass_an_accessibility_check", &kiosk.base).await.expect("browser");
    for path in ["/", "/layanan", "/layanan/SKD", "/layanan/SKD/ajukan", "/cek", "/nilai", "/tidak-ada"] {
        b.go(path).await.unwrap();
        b.assert_accessible().await.unwrap();
    }
    // The filing form with its errors, the confirmation, the receipt.
    b.go("/layanan/SKD/ajukan").await.unwrap();
    b.force_value("#nik", "123").await.unwrap();
    b.js("document.getElementById('file-form').submit()").await.unwrap();
    b.wait_until("the refusal", || async { b.exists(".alert").await }).await.unwrap();
    b.assert_accessible().await.unwrap();
    b.type_into("#name", "Togar Sihombing").await.unwrap();
    b.type_into("#nik", &nik(97)).await.unwrap();
    b.click("#next").await.unwrap();
    b.find("#confirm-nik").await.unwrap();
    b.assert_accessible().await.unwrap();
    b.click("#submit").await.unwrap();
    b.find("#rating-code").await.unwrap();
    b.assert_accessible().await.unwrap();
    // A question of the survey, in English too.
    b.go("/nilai").await.unwrap();
    b.type_into("#tiket", &done_ticket).await.unwrap();
    b.type_into("#kode", &code).await.unwrap();
    b.click("#rate-go").await.unwrap();
    b.find("#question-form").await.unwrap();
    b.assert_accessible().await.unwrap();
    b.go("/bahasa/en?kembali=/").await.unwrap();
    b.assert_accessible().await.unwrap();
    b.go("/mulai-ulang").await.unwrap();

    // The console: login, queue, a request with its panel and a confirmation, a search.
    b.go_url(&kiosk.staff_url("/staf/masuk")).await.unwrap();
    b.assert_accessible().await.unwrap();
    b.kiosk_staff_login(&kiosk.staff).await.unwrap();
    b.assert_accessible().await.unwrap();
    b.go_url(&kiosk.staff_url(&format!("/staf/permohonan/{open_id}"))).await.unwrap();
    b.assert_accessible().await.unwrap();
    b.click("#action-panel input[value=cancelled]").await.unwrap();
    b.type_into("#action-note", "Pemohon membatalkan sendiri").await.unwrap();
    b.click("#action-submit").await.unwrap();
    b.find("#confirm-box").await.unwrap();
    b.assert_accessible().await.unwrap();
    b.go_url(&kiosk.staff_url(&format!("/staf/permohonan/{done_id}"))).await.unwrap();
    b.assert_accessible().await.unwrap();
    b.go_url(&kiosk.staff_url("/staf")).await.unwrap();
    b.type_into("#search", "siregar\u{e007}").await.unwrap();
    b.find("#search-summary").await.unwrap();
    b.assert_accessible().await.unwrap();
    b.close().await.unwrap();
}

/// Clicks what a citizen would tap, scrolled to the middle of the screen
/// first (the bar of main actions stays at the bottom).
async fn tap(b: &Browser, css: &str) {
    let css_js = serde_json::to_string(css).unwrap();
    b.js(&format!("document.querySelector({css_js}).scrollIntoView({{block: 'center'}}); return true;")).await.unwrap();
    b.click(css).await.unwrap();
}

/// Issue 16: a citizen files a complaint at the kiosk, in Bahasa
/// Indonesia (named, about a service, with hostile markup in the text)
/// and in English (anonymous, about a staff member chosen by name); the
/// text is shown as text, the receipt's ticket is found by the status
/// check, and every new screen passes axe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_files_a_complaint_in_either_language_and_reads_its_status() {
    let dir = TestDir::new("browser-complaint");
    let kiosk = standalone_kiosk(&dir, &[]);
    let client = http_client();
    let b = Browser::start("a_citizen_files_a_complaint", &kiosk.base).await.expect("browser");

    // Bahasa Indonesia: from the start screen, named, about a service.
    b.go("/").await.unwrap();
    assert!(b.exists("#footer-complaint").await.unwrap(), "the footer leads to complaints");
    b.click("#start-complaint").await.unwrap();
    b.wait_path("/pengaduan").await.unwrap();
    assert!(b.text("h1").await.unwrap().contains("Sampaikan pengaduan"));
    assert!(
        b.find("#anonymous").await.unwrap().prop("checked").await.unwrap().as_deref() == Some("true"),
        "anonymous by default"
    );
    b.assert_accessible().await.unwrap();
    b.shot("form").await.unwrap();
    // Sent with what is missing: the server says which field, as text.
    tap(&b, "input[name=kind][value=service]").await;
    b.click("#complaint-next").await.unwrap();
    b.wait_until("the refusal", || async { b.exists("#complaint-alert").await }).await.unwrap();
    assert!(!b.text("#service-error").await.unwrap().is_empty() && !b.text("#text-error").await.unwrap().is_empty());
    b.assert_accessible().await.unwrap();
    tap(&b, "#service option[value=SKD]").await;
    tap(&b, "#named").await;
    b.type_into("#name", "Siti Nurhaliza").await.unwrap();
    b.type_into("#nik", &nik(41)).await.unwrap();
    b.type_into("#text", &format!("Antre tiga jam.\n{HOSTILE}")).await.unwrap();
    b.click("#complaint-next").await.unwrap();
    b.wait_path("/pengaduan/periksa").await.unwrap();
    assert!(b.text("#confirm-text").await.unwrap().contains(HOSTILE), "the text as typed, as text");
    assert_eq!(b.text("#confirm-nik").await.unwrap(), nik(41));
    b.assert_not_injected().await.unwrap();
    b.assert_accessible().await.unwrap();
    b.shot("confirm").await.unwrap();
    b.click("#complaint-submit").await.unwrap();
    b.wait_path("/tiket/ADU-").await.unwrap();
    let ticket = b.text("#ticket-number").await.unwrap();
    assert!(ticket.starts_with("ADU-K01-"), "{ticket}");
    assert!(b.exists(".qr svg").await.unwrap(), "the receipt has a QR code");
    assert_eq!(
        b.find("#complaint-state").await.unwrap().attr("data-state").await.unwrap().as_deref(),
        Some("received")
    );
    assert!(!b.source_contains(&nik(41)).await && !b.source_contains("Siti").await, "nothing personal on the receipt");
    b.assert_not_injected().await.unwrap();
    b.assert_accessible().await.unwrap();
    b.shot("receipt").await.unwrap();
    // Back does not file it again: the confirmation now leads to the ticket.
    b.js("history.back()").await.unwrap();
    b.wait_path(&format!("/tiket/{ticket}")).await.unwrap();
    // The kiosk holds it, durably, and the API tells nothing personal.
    let v: Value =
        client.get(kiosk.url(&format!("/api/complaints/{ticket}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!((v["state"].as_str(), v["about"].as_str()), (Some("received"), Some("service")), "{v}");
    assert!(!v.to_string().contains("Siti") && !v.to_string().contains("Antre"), "{v}");

    // The status check finds the receipt's ticket, typed loosely.
    b.go("/mulai-ulang").await.unwrap();
    b.go("/cek").await.unwrap();
    b.type_into("#tiket", &ticket.to_lowercase().replace('-', " ")).await.unwrap();
    b.click("#ticket-go").await.unwrap();
    b.wait_path(&format!("/tiket/{ticket}")).await.unwrap();
    assert!(b.text("h1").await.unwrap().contains("Status pengaduan"));
    b.assert_accessible().await.unwrap();

    // English: anonymous, about a staff member chosen by name (no NIP shown).
    b.go("/bahasa/en?kembali=/pengaduan").await.unwrap();
    b.wait_until("English", || async { Ok(b.text("h1").await?.contains("Make a complaint")) }).await.unwrap();
    assert!(!b.source_contains(STAFF_ID).await, "no NIP on the citizen screen");
    tap(&b, "input[name=kind][value=staff]").await;
    tap(&b, "#staff option:nth-child(2)").await;
    let staff_name = b.text("#staff option:nth-child(2)").await.unwrap();
    b.type_into("#text", "Rude at the counter.").await.unwrap();
    b.assert_accessible().await.unwrap();
    b.click("#complaint-next").await.unwrap();
    b.wait_path("/pengaduan/periksa").await.unwrap();
    assert_eq!(b.text("#confirm-anonymous").await.unwrap(), "Anonymous");
    assert!(b.text("#confirm-about").await.unwrap().contains(&staff_name));
    b.assert_accessible().await.unwrap();
    b.click("#complaint-submit").await.unwrap();
    b.wait_path("/tiket/ADU-").await.unwrap();
    assert!(b.text("h1").await.unwrap().contains("Your complaint has been received"));
    let second = b.text("#ticket-number").await.unwrap();
    assert_ne!(second, ticket);
    assert!(!b.source_contains(&staff_name).await, "the status does not name whom it is about");
    b.assert_accessible().await.unwrap();
    b.shot("receipt-en").await.unwrap();
    b.go("/cek").await.unwrap();
    b.type_into("#tiket", &second).await.unwrap();
    b.click("#ticket-go").await.unwrap();
    b.wait_path(&format!("/tiket/{second}")).await.unwrap();
    assert_eq!(b.text("#complaint-state").await.unwrap(), "Received");
    b.assert_only_local_requests().await.unwrap();
    b.close().await.unwrap();
}
