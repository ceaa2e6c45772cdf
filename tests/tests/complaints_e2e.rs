//! Complaints (pengaduan, issue 16) end to end with the real binaries: a
//! real sync server and enrolled kiosks on loopback with real TLS and
//! real SQLite files, and a real Chromium for the central pages.
//!
//! A complaint filed at a kiosk while the server is away reaches the
//! central list once the kiosk syncs, routed to its kelurahan; an admin
//! registers and answers it centrally; the answer comes back to every
//! kiosk of that kelurahan (and no other), where the citizen reads it by
//! ticket. A complaint filed long ago at a kiosk that was offline since
//! shows as overdue until it is answered. In the browser an admin does
//! the same through the central pages, which axe-core checks.
//!
//! The long-offline kiosk is the one thing not a real kiosk process: the
//! kiosk binary takes its filing time from the system clock, which a test
//! cannot move, so that complaint is written here as a kiosk writes it
//! (its document and `file` step, dated 30 days ago) and pushed with an
//! enrolled kiosk's credentials through the real sync endpoint. Its
//! deadline is then the server's own arithmetic on the filing time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loket_shared::sync::{DocType, PROTOCOL_VERSION, PushDoc, SyncRequest};
use loket_tests::browser::Browser;
use loket_tests::server::{ADMIN_PASSWORD, ADMIN_USER, ServerProcess, enroll_kiosk, init_server};
use loket_tests::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, nik};
use serde_json::{Value, json};

const KEL_A: &str = "12.71.01.1001";
const KEL_B: &str = "12.71.01.1002";
const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis()).expect("ms")
}

/// Asks the kiosk to sync until it reports a whole successful exchange
/// (nothing more to pull) with nothing pending; fails after 60 s. The
/// kiosk's own answer and its health endpoint are the events waited on.
async fn sync_fully(client: &reqwest::Client, k: &KioskProcess, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sync: Value = client.post(k.url("/api/sync")).send().await.expect("sync").json().await.expect("json");
        let h: Value = client.get(k.url("/healthz")).send().await.expect("health").json().await.expect("json");
        if sync["ok"] == true && sync["more"] == false && h["pending_changes"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: kiosk did not sync: {sync} {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts an enrolled kiosk of `kelurahan` and waits for its first sync
/// (catalog and roster).
async fn enrolled_kiosk(
    client: &reqwest::Client,
    dir: &TestDir,
    server: &ServerProcess,
    name: &str,
    kelurahan: &str,
) -> KioskProcess {
    let data = dir.path().join(name);
    let code = server.enroll_code(kelurahan).expect("code");
    enroll_kiosk(&data, server, &code).expect("enroll");
    let kiosk = KioskProcess::start(&data).expect("kiosk start");
    sync_fully(client, &kiosk, "after enrollment").await;
    kiosk
}

/// A citizen files a named complaint about a service at the kiosk's API;
/// its ticket.
async fn file_complaint(client: &reqwest::Client, k: &KioskProcess, name: &str, nik: &str, text: &str) -> String {
    let r = client
        .post(k.url("/api/complaints"))
        .json(&json!({
            "about": { "kind": "service", "service": "SKD" },
            "complainant": { "name": name, "nik": nik },
            "text": text,
        }))
        .send()
        .await
        .expect("file a complaint");
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["state"], "received", "{v}");
    let ticket = v["ticket"].as_str().expect("ticket").to_owned();
    assert!(ticket.starts_with("ADU-"), "{ticket}");
    ticket
}

/// `GET /api/complaints/{ticket}` at a kiosk: the status and its JSON.
async fn kiosk_status(client: &reqwest::Client, k: &KioskProcess, ticket: &str) -> (u16, Value) {
    let r = client.get(k.url(&format!("/api/complaints/{ticket}"))).send().await.expect("status");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The admin's list of complaints (`query` after `?`); its items.
async fn central_list(server: &ServerProcess, https: &reqwest::Client, admin: &str, query: &str) -> Vec<Value> {
    let v = server.get_json(https, admin, &format!("/api/admin/complaints?{query}")).await.expect("list");
    v["items"].as_array().unwrap_or_else(|| panic!("items in {v}")).clone()
}

fn item<'a>(items: &'a [Value], id: &str) -> Option<&'a Value> {
    items.iter().find(|i| i["id"] == id)
}

/// A central step through the API (`201` expected); the answer.
async fn central_step(server: &ServerProcess, https: &reqwest::Client, admin: &str, id: &str, body: Value) -> Value {
    let r = https
        .post(format!("{}/api/admin/complaints/{id}/steps", server.base))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .expect("step");
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{body}: {v}");
    v
}

/// A kiosk of `kelurahan` that was switched off (or offline) for a month:
/// it enrolled as `actor`, and on coming back pushes the complaint a
/// citizen filed there 30 days ago, as the kiosk wrote it. Returns the
/// complaint's document id and ticket.
async fn push_month_old_complaint(
    server: &ServerProcess,
    https: &reqwest::Client,
    kelurahan: &str,
    actor: [u8; 16],
) -> (String, String) {
    use loket_shared::complaint::{About, NewComplaint, Step, StepKind, create};
    use loket_shared::{ComplaintTicket, DocId, Hlc};

    let code = server.enroll_code(kelurahan).expect("code");
    let enrolled: Value = https
        .post(format!("{}/api/enroll", server.base))
        .json(&json!({ "code": code, "actor": hex::encode(actor), "version": "test" }))
        .send()
        .await
        .expect("enroll")
        .json()
        .await
        .expect("json");
    let token = enrolled["token"].as_str().unwrap_or_else(|| panic!("token in {enrolled}"));
    let kiosk = enrolled["kiosk_code"].as_str().unwrap_or_else(|| panic!("kiosk_code in {enrolled}"));

    let filed_ms = now_ms() - 30 * DAY_MS;
    // The ticket's date is the kiosk's, in Medan (WIB, UTC+7).
    let filed_day = time::OffsetDateTime::from_unix_timestamp(filed_ms / 1000)
        .expect("a date")
        .to_offset(time::UtcOffset::from_hms(7, 0, 0).expect("WIB"));
    let id = DocId::new_v7(u64::try_from(filed_ms).expect("after 1970"), rand::random());
    let ticket =
        ComplaintTicket::new(&kiosk.parse().expect("kiosk code"), filed_day.month().into(), filed_day.day(), 1);
    let hlc = Hlc { wall_ms: u64::try_from(filed_ms).expect("after 1970"), counter: 0 };
    let mut doc = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(actor));
    let new = NewComplaint {
        id,
        ticket: ticket.clone(),
        kelurahan: kelurahan.parse().expect("kelurahan"),
        kiosk: kiosk.parse().expect("kiosk code"),
        created_at_ms: filed_ms,
        hlc,
        about: About::Office,
        complainant: None,
        text: "Kantor tutup pada jam layanan.".into(),
        file_step: Step {
            id: "file-1".into(),
            hlc,
            node: hex::encode(actor),
            at_ms: filed_ms,
            by: "citizen".into(),
            kind: StepKind::File,
            class: None,
            unit: None,
            days: None,
            lapor: None,
            text: None,
            parents: vec![],
            seal: None,
        },
    };
    create(&mut doc, &new).expect("a complaint document");
    let push = PushDoc {
        doc: id.to_bytes(),
        doc_type: DocType::Complaint,
        base: vec![],
        changes: doc.save(),
        heads: doc.get_heads().iter().map(|h| h.0).collect(),
        fallback: None,
    };
    let request = SyncRequest {
        version: PROTOCOL_VERSION,
        client: "test".into(),
        push: vec![push],
        pull_after: 0,
        acked: 0,
        through: 0,
        pending: 0,
    };
    let r = https
        .post(format!("{}/api/sync", server.base))
        .bearer_auth(token)
        .header("content-type", "application/x-loket-sync")
        .body(request.encode())
        .send()
        .await
        .expect("sync");
    assert_eq!(r.status(), 200, "the month-old complaint is accepted: {}", r.text().await.unwrap_or_default());
    (id.to_string(), ticket.as_str().to_owned())
}

/// Issue 16, must show: a complaint filed offline at a kiosk reaches the
/// unit, is answered centrally, and the answer reaches the citizen's
/// ticket at the kiosk (and at the other kiosk of the office, not at
/// another office's); an overdue complaint shows as overdue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_filed_offline_is_answered_centrally_and_read_at_the_kiosks() {
    let dir = TestDir::new("complaints-e2e");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let mut server = ServerProcess::start(&server_dir).expect("server start");
    let addr = server.addr();
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin login");
    for kel in [KEL_A, KEL_B] {
        server.put_staff(&https, &admin, kel, STAFF_ID, STAFF_PASSWORD).await.expect("roster");
    }
    let client = http_client();
    // Two kiosks of one office, one of another.
    let filing = enrolled_kiosk(&client, &dir, &server, "kiosk-a1", KEL_A).await;
    let sibling = enrolled_kiosk(&client, &dir, &server, "kiosk-a2", KEL_A).await;
    let elsewhere = enrolled_kiosk(&client, &dir, &server, "kiosk-b", KEL_B).await;

    // The server is away; the citizen files anyway and gets a ticket.
    server.terminate().expect("server stops on SIGTERM");
    let text = "Antrean layanan SKD lebih dari tiga jam tanpa nomor antrean.";
    let ticket = file_complaint(&client, &filing, "Siti Aminah", &nik(301), text).await;
    let sync: Value = client.post(filing.url("/api/sync")).send().await.unwrap().json().await.unwrap();
    assert_eq!(sync["ok"], false, "no server to sync with: {sync}");
    let h: Value = client.get(filing.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert!(h["pending_changes"].as_u64().unwrap_or(0) > 0, "the complaint waits to be pushed: {h}");
    let (status, v) = kiosk_status(&client, &filing, &ticket).await;
    assert_eq!((status, v["state"].as_str()), (200, Some("received")), "readable offline: {v}");

    // The server comes back; the kiosk pushes the complaint.
    server = ServerProcess::restart_on(&server_dir, addr).expect("server restart");
    let admin = server.admin_token(&https).await.expect("admin login again");
    sync_fully(&client, &filing, "after the outage").await;
    let items = central_list(&server, &https, &admin, "").await;
    let fresh =
        items.iter().find(|i| i["ticket"] == ticket.as_str()).unwrap_or_else(|| panic!("{ticket} in {items:?}"));
    let id = fresh["id"].as_str().expect("id").to_owned();
    assert_eq!(fresh["kelurahan"], KEL_A, "{fresh}");
    assert_eq!((fresh["state"].as_str(), fresh["class"].as_str()), (Some("received"), None), "{fresh}");
    assert_eq!(fresh["overdue"], false, "filed minutes ago: {fresh}");
    // Received when filed, by the kiosk's clock, not when the kiosk came
    // back: the deadline counts from the citizen's visit.
    let (_, v) = kiosk_status(&client, &filing, &ticket).await;
    assert_eq!(fresh["received_at"], v["filed_at"], "{fresh} {v}");
    assert!(item(&central_list(&server, &https, &admin, &format!("kelurahan={KEL_A}")).await, &id).is_some());
    assert!(item(&central_list(&server, &https, &admin, &format!("kelurahan={KEL_B}")).await, &id).is_none());
    let detail = server.get_json(&https, &admin, &format!("/api/admin/complaints/{id}")).await.unwrap();
    assert_eq!((detail["text"].as_str(), detail["anonymous"].as_bool()), (Some(text), Some(false)), "{detail}");
    assert!(!detail["complainant"].to_string().contains(&nik(301)), "masked: {detail}");

    // A complaint filed a month ago at a kiosk offline since: overdue
    // from the moment it arrives, unlike the fresh one.
    let (old_id, old_ticket) = push_month_old_complaint(&server, &https, KEL_A, [0x5a; 16]).await;
    let items = central_list(&server, &https, &admin, "").await;
    let old = item(&items, &old_id).unwrap_or_else(|| panic!("{old_id} in {items:?}"));
    assert_eq!((old["state"].as_str(), old["overdue"].as_bool()), (Some("received"), Some(true)), "{old}");
    assert_eq!(item(&items, &id).expect("fresh")["overdue"], false);
    let overdue = central_list(&server, &https, &admin, "overdue=true").await;
    assert_eq!(overdue.iter().map(|i| i["id"].as_str()).collect::<Vec<_>>(), vec![Some(old_id.as_str())]);
    let on_time = central_list(&server, &https, &admin, "overdue=false").await;
    assert!(item(&on_time, &id).is_some() && item(&on_time, &old_id).is_none(), "{on_time:?}");

    // The admin routes the fresh one to the kelurahan and answers it.
    let unit = format!("kelurahan:{KEL_A}");
    let v =
        central_step(&server, &https, &admin, &id, json!({ "kind": "register", "class": "normatif", "unit": unit }))
            .await;
    assert_eq!(v["state"], "registered", "{v}");
    let answer = "Mulai Senin loket SKD memakai nomor antrean dan dibuka dua petugas.";
    let v = central_step(&server, &https, &admin, &id, json!({ "kind": "answer", "text": answer })).await;
    assert_eq!(v["state"], "answered", "{v}");
    let items = central_list(&server, &https, &admin, "").await;
    let row = item(&items, &id).expect("listed");
    assert_eq!(
        (row["state"].as_str(), row["class"].as_str(), row["unit"].as_str()),
        (Some("answered"), Some("normatif"), Some(unit.as_str())),
        "{row}"
    );
    // Registering the old one does not stop its clock; answering does.
    central_step(&server, &https, &admin, &old_id, json!({ "kind": "register", "class": "ringan", "unit": unit }))
        .await;
    let items = central_list(&server, &https, &admin, "").await;
    assert_eq!(item(&items, &old_id).expect("listed")["overdue"], true, "registered, still unanswered");
    central_step(&server, &https, &admin, &old_id, json!({ "kind": "answer", "text": "Jam layanan kini dijaga." }))
        .await;
    let items = central_list(&server, &https, &admin, "").await;
    assert_eq!(item(&items, &old_id).expect("listed")["overdue"], false, "answered, late but no longer open");
    assert!(central_list(&server, &https, &admin, "overdue=true").await.is_empty());

    // Every kiosk syncs; the citizen reads the answer by ticket at both
    // kiosks of the office, on the API and on the ticket page.
    for k in [&filing, &sibling, &elsewhere] {
        sync_fully(&client, k, "after the answer").await;
    }
    let items = central_list(&server, &https, &admin, "").await;
    let central_due =
        |id: &str| item(&items, id).and_then(|i| i["due_at"].as_str()).expect("a deadline once registered").to_owned();
    for (name, k) in [("the filing kiosk", &filing), ("the other kiosk of the office", &sibling)] {
        let (status, v) = kiosk_status(&client, k, &ticket).await;
        assert_eq!(status, 200, "{name}: {v}");
        assert_eq!((v["state"].as_str(), v["class"].as_str()), (Some("answered"), Some("normatif")), "{name}: {v}");
        let answers: Vec<&str> =
            v["answers"].as_array().expect("answers").iter().filter_map(|a| a["text"].as_str()).collect();
        assert_eq!(answers, vec![answer], "{name}: {v}");
        // The deadline the kiosk works out from the synced calendar is the
        // server's.
        assert_eq!(v["due_at"].as_str(), Some(central_due(&id).as_str()), "{name}: {v}");
        let shown = v.to_string();
        assert!(!shown.contains("Siti") && !shown.contains(&nik(301)) && !shown.contains("tiga jam"), "{name}: {v}");
        let page = client.get(k.url(&format!("/tiket/{ticket}"))).send().await.unwrap();
        assert_eq!(page.status(), 200, "{name}");
        let html = page.text().await.unwrap();
        assert!(html.contains(r#"data-state="answered""#), "{name}: the ticket page's state");
        assert!(html.contains(answer), "{name}: the ticket page shows the answer");
        assert!(!html.contains("Siti") && !html.contains("tiga jam"), "{name}: nothing personal on the page");
        // The month-old one came to the office's kiosks too, answered.
        let (status, v) = kiosk_status(&client, k, &old_ticket).await;
        assert_eq!((status, v["state"].as_str()), (200, Some("answered")), "{name}: {v}");
        assert_eq!(v["due_at"].as_str(), Some(central_due(&old_id).as_str()), "{name}: {v}");
    }
    // Another office's kiosk holds neither.
    for t in [&ticket, &old_ticket] {
        let (status, v) = kiosk_status(&client, &elsewhere, t).await;
        assert_eq!(status, 404, "{t} at another kelurahan's kiosk: {v}");
    }
}

/// Waits for the page the server answers a central form with: the old
/// page is marked first, so the saved message of an earlier step cannot
/// pass for this one's.
async fn submit_step(b: &Browser, form: &str) {
    b.js("document.body.dataset.stale = '1'").await.unwrap();
    b.click(&format!("{form} button[type=submit]")).await.unwrap();
    b.wait_until("the saved message on a new page", || async {
        Ok(!b.exists("body[data-stale]").await.unwrap_or(true)
            && b.text("#message").await.unwrap_or_default().contains("Tersimpan"))
    })
    .await
    .unwrap();
}

/// The form of a central step on a complaint's page.
fn step_form(kind: &str) -> String {
    format!("form.step:has(input[name=langkah][value={kind}])")
}

/// Issue 16, must show: an admin answers a complaint in the central app
/// (the complaints page, the complaint's page, its step forms), the
/// answer shows there and, after a sync, on the citizen's ticket at the
/// kiosk; an overdue complaint is marked on the list; axe-core finds no
/// serious or critical violation on the complaint pages in either
/// language, nor on the kiosk's ticket page with the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_answers_a_complaint_in_the_central_pages() {
    let dir = TestDir::new("complaints-browser");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let server = ServerProcess::start(&server_dir).expect("server start");
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin login");
    server.put_staff(&https, &admin, KEL_A, STAFF_ID, STAFF_PASSWORD).await.expect("roster");
    let client = http_client();
    let kiosk = enrolled_kiosk(&client, &dir, &server, "kiosk", KEL_A).await;
    let text = "Petugas loket tidak ada di tempat pukul 10.00 sampai 11.30.";
    let ticket = file_complaint(&client, &kiosk, "Budi Santoso", &nik(302), text).await;
    sync_fully(&client, &kiosk, "the complaint pushed").await;
    let (old_id, _) = push_month_old_complaint(&server, &https, KEL_A, [0x5b; 16]).await;
    let id = central_list(&server, &https, &admin, "")
        .await
        .into_iter()
        .find(|i| i["ticket"] == ticket.as_str())
        .and_then(|i| i["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{ticket} on the server"));

    let b = Browser::start_https("complaints_central", &server.base).await.expect("browser");
    b.set_viewport(1366, 768).await.unwrap();
    b.go("/masuk").await.unwrap();
    b.type_into("#username", ADMIN_USER).await.unwrap();
    b.type_into("#password", ADMIN_PASSWORD).await.unwrap();
    b.click("#login").await.unwrap();
    b.wait_path("/admin/ringkasan").await.unwrap();
    b.click("#nav-complaints").await.unwrap();
    b.wait_path("/admin/pengaduan").await.unwrap();

    // The office's counts, and the month-old one marked overdue.
    let counts = b
        .js(&format!(
            "return [...document.querySelectorAll(\"#complaint-offices tr[data-kelurahan='{KEL_A}'] td.num\")].map(c => c.innerText.trim());"
        ))
        .await
        .unwrap();
    assert_eq!(counts, json!(["2", "2", "1"]), "received, open, overdue");
    let old_status = b.text(&format!("tr[data-complaint='{old_id}'] td.status")).await.unwrap();
    assert!(old_status.contains("Lewat tenggat"), "{old_status}");
    let fresh_status = b.text(&format!("tr[data-complaint='{id}'] td.status")).await.unwrap();
    assert!(!fresh_status.contains("Lewat tenggat"), "{fresh_status}");
    b.assert_accessible().await.unwrap();
    let too_wide = b.tables_too_wide().await.unwrap();
    assert!(too_wide.is_empty(), "tables wider than 1366 px: {too_wide:?}");
    b.shot("complaints").await.unwrap();

    // The complaint's page: what was said, the complainant masked.
    b.click(&format!("tr[data-complaint='{id}'] a")).await.unwrap();
    b.wait_path(&format!("/admin/pengaduan/{id}")).await.unwrap();
    assert_eq!(b.text("#ticket").await.unwrap(), ticket);
    assert_eq!(b.find("#state").await.unwrap().attr("data-state").await.unwrap().as_deref(), Some("received"));
    assert_eq!(b.text("#complaint-text").await.unwrap(), text);
    let complainant = b.text("#complainant").await.unwrap();
    assert!(!complainant.contains("Budi Santoso") && !complainant.contains(&nik(302)), "masked: {complainant}");
    assert!(!b.exists(&step_form("answer")).await.unwrap(), "registered before it is answered");
    b.assert_accessible().await.unwrap();
    b.shot("complaint-received").await.unwrap();

    // Register: a class and the unit responsible.
    let register = step_form("register");
    b.find(&format!("{register} select[name=klasifikasi]")).await.unwrap().select_by_value("normatif").await.unwrap();
    b.find(&format!("{register} select[name=unit]"))
        .await
        .unwrap()
        .select_by_value(&format!("kelurahan:{KEL_A}"))
        .await
        .unwrap();
    submit_step(&b, &register).await;
    assert_eq!(b.find("#state").await.unwrap().attr("data-state").await.unwrap().as_deref(), Some("registered"));
    assert!(b.exists("#due").await.unwrap(), "a deadline once registered");
    b.assert_accessible().await.unwrap();

    // Answer.
    let answer = "Petugas sudah ditegur; jadwal istirahat kini bergantian.";
    b.type_into(&format!("{} textarea[name=teks]", step_form("answer")), answer).await.unwrap();
    submit_step(&b, &step_form("answer")).await;
    assert_eq!(b.find("#state").await.unwrap().attr("data-state").await.unwrap().as_deref(), Some("answered"));
    assert_eq!(b.text("main blockquote").await.unwrap(), answer, "the answer on the complaint's page");
    let kinds = b.js("return [...document.querySelectorAll('#steps li')].map(l => l.dataset.kind);").await.unwrap();
    assert_eq!(kinds, json!(["file", "register", "answer"]));
    assert!(b.exists(&step_form("close")).await.unwrap(), "an answered complaint may be closed");
    b.assert_accessible().await.unwrap();
    b.shot("complaint-answered").await.unwrap();
    let detail = server.get_json(&https, &admin, &format!("/api/admin/complaints/{id}")).await.unwrap();
    assert_eq!((detail["state"].as_str(), detail["answers"][0]["text"].as_str()), (Some("answered"), Some(answer)));

    // Both pages in English pass axe too.
    b.click("#lang-switch").await.unwrap();
    b.wait_until("English", || async { Ok(b.js("return document.documentElement.lang").await? == "en") })
        .await
        .unwrap();
    b.assert_accessible().await.unwrap();
    b.go("/admin/pengaduan").await.unwrap();
    b.find("#complaints").await.unwrap();
    b.assert_accessible().await.unwrap();
    b.close().await.unwrap();

    // The kiosk pulls the answer; the citizen checks the ticket.
    sync_fully(&client, &kiosk, "the answer pulled").await;
    let k = Browser::start("complaints_kiosk_ticket", &kiosk.base).await.expect("browser");
    k.go("/cek").await.unwrap();
    k.type_into("#tiket", &ticket).await.unwrap();
    k.click("#ticket-go").await.unwrap();
    k.wait_path(&format!("/tiket/{ticket}")).await.unwrap();
    assert_eq!(
        k.find("#complaint-state").await.unwrap().attr("data-state").await.unwrap().as_deref(),
        Some("answered")
    );
    assert_eq!(k.text(".complaint-answer").await.unwrap(), answer);
    assert_eq!(
        k.find("#complaint-class").await.unwrap().attr("data-class").await.unwrap().as_deref(),
        Some("normatif")
    );
    k.assert_accessible().await.unwrap();
    k.shot("ticket-answered").await.unwrap();
    k.close().await.unwrap();
}
