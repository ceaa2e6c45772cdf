//! A kiosk whose database was tampered with (a forged edit of a citizen's
//! name, by an actor that is not the kiosk's) syncs against a real server:
//! the server refuses that document, the kiosk puts it in a visible
//! quarantine instead of retrying it forever, and everything else keeps
//! syncing. Releasing it sends it again, and it is refused again.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT, ReadDoc};
use loket_tests::server::{ServerProcess, enroll_kiosk, init_server};
use loket_tests::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, nik, staff_login};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

const KEL: &str = "12.71.01.1001";

async fn file(client: &reqwest::Client, k: &KioskProcess, name: &str, i: u64) -> String {
    let v: Value = client
        .post(k.url("/api/requests"))
        .json(&json!({ "service": "SKD", "applicant": { "name": name, "nik": nik(i) } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["id"].as_str().unwrap_or_else(|| panic!("filed: {v}")).to_owned()
}

async fn sync(client: &reqwest::Client, k: &KioskProcess) -> Value {
    client.post(k.url("/api/sync")).send().await.unwrap().json().await.unwrap()
}

async fn health(client: &reqwest::Client, k: &KioskProcess) -> Value {
    client.get(k.url("/healthz")).send().await.unwrap().json().await.unwrap()
}

async fn server_request(https: &reqwest::Client, server: &ServerProcess, admin: &str, id: &str) -> Value {
    server.get_json(https, admin, &format!("/api/admin/requests/{id}")).await.unwrap()
}

/// Appends a forged change to document `id` in a stopped kiosk's database,
/// as someone with the file but not the kiosk's key would.
fn tamper(db: &std::path::Path, id: &str) {
    let conn = Connection::open(db).unwrap();
    let snapshot: Vec<u8> = conn.query_row("SELECT snapshot FROM docs WHERE doc_id = ?1", [id], |r| r.get(0)).unwrap();
    let mut doc = AutoCommit::load(&snapshot).unwrap();
    let chunks: Vec<Vec<u8>> = conn
        .prepare("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id")
        .unwrap()
        .query_map([id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for c in chunks {
        doc.load_incremental(&c).unwrap();
    }
    let before = doc.get_heads();
    let mut doc = doc.with_actor(ActorId::from([0x66u8; 16]));
    let (_, applicant) = doc.get(ROOT, "applicant").unwrap().unwrap();
    doc.put(&applicant, "name", "Mallory").unwrap();
    doc.commit();
    let chunk = doc.save_after(&before);
    conn.execute("INSERT INTO chunks (doc_id, data) VALUES (?1, ?2)", params![id, chunk]).unwrap();
    conn.execute("INSERT INTO change_log (doc_id, at_ms) VALUES (?1, 0)", [id]).unwrap();
    conn.execute(
        "UPDATE docs SET last_seq = ?2, chunk_count = chunk_count + 1 WHERE doc_id = ?1",
        params![id, conn.last_insert_rowid()],
    )
    .unwrap();
}

/// A server in `dir/server` whose roster for `KEL` holds the test's staff
/// member, with an HTTPS client and an admin token.
async fn server_with_staff(dir: &std::path::Path) -> (ServerProcess, reqwest::Client, String) {
    let server_dir = dir.join("server");
    init_server(&server_dir).unwrap();
    let server = ServerProcess::start(&server_dir).unwrap();
    let https = server.client();
    let admin = server.admin_token(&https).await.unwrap();
    server.put_staff(&https, &admin, KEL, STAFF_ID, STAFF_PASSWORD).await.unwrap();
    (server, https, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_document_is_quarantined_and_the_rest_syncs() {
    let dir = TestDir::new("quarantine");
    let (server, https, admin) = server_with_staff(dir.path()).await;
    let client = http_client();
    let data = dir.path().join("kiosk");
    enroll_kiosk(&data, &server, &server.enroll_code(KEL).unwrap()).unwrap();
    let mut kiosk = KioskProcess::start(&data).unwrap();

    let victim = file(&client, &kiosk, "Siti Aminah", 1).await;
    let v = sync(&client, &kiosk).await;
    assert_eq!(v["ok"], true, "{v}");
    let heads_before = server_request(&https, &server, &admin, &victim).await["heads"].clone();
    assert!(heads_before.as_array().is_some_and(|h| !h.is_empty()));

    kiosk.terminate().unwrap();
    tamper(&data.join("kiosk.db"), &victim);
    let kiosk = KioskProcess::start(&data).unwrap();
    let honest = file(&client, &kiosk, "Budi Santoso", 2).await;

    let v = sync(&client, &kiosk).await;
    assert_eq!(v["ok"], true, "the rest syncs despite the refused document: {v}");
    let h = health(&client, &kiosk).await;
    let quarantined = h["quarantined"].as_array().unwrap_or_else(|| panic!("healthz: {h}"));
    assert_eq!(quarantined.len(), 1, "{h}");
    assert_eq!(quarantined[0]["id"], victim.as_str());
    assert_eq!(quarantined[0]["code"], "forbidden_change");
    assert_eq!(h["pending_changes"], 0, "the quarantined change is not counted as waiting: {h}");
    let metrics = client.get(kiosk.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("quarantined_documents 1"), "{metrics}");

    // The server kept the victim as it was and took the honest request.
    let server_victim = server_request(&https, &server, &admin, &victim).await;
    assert_eq!(server_victim["heads"], heads_before, "the forged change was stored");
    assert_ne!(server_victim["applicant"]["name"], "Mallory", "{server_victim}");
    assert_eq!(server_request(&https, &server, &admin, &honest).await["id"], honest.as_str());

    // A retry by staff sends it again; the server refuses it again.
    let token = staff_login(&client, &kiosk.base).await.unwrap();
    let r = client
        .post(kiosk.url(&format!("/api/staff/quarantine/{victim}/release")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(health(&client, &kiosk).await["quarantined"].as_array().map(Vec::len), Some(0));
    let v = sync(&client, &kiosk).await;
    assert_eq!(v["ok"], true, "{v}");
    let h = health(&client, &kiosk).await;
    assert_eq!(h["quarantined"][0]["id"], victim.as_str(), "{h}");
    assert_eq!(server_request(&https, &server, &admin, &victim).await["heads"], heads_before);

    // Without a staff session, no release.
    let r = client.post(kiosk.url(&format!("/api/staff/quarantine/{victim}/release"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

/// Issue 12, item 3: a document the server stores but cannot read back (a
/// damaged disk) never wedges a kiosk. The office's other kiosk pulls
/// around it (the server names it and sends the rest); the kiosk that wrote
/// it is told which document the server cannot read when it pushes a step
/// to it, quarantines that one, and everything else keeps syncing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_server_document_wedges_no_kiosk() {
    let dir = TestDir::new("quarantine-unreadable");
    let (server, https, admin) = server_with_staff(dir.path()).await;
    let server_dir = server.data.clone();
    let client = http_client();
    let (one, two) = (dir.path().join("kiosk-1"), dir.path().join("kiosk-2"));
    enroll_kiosk(&one, &server, &server.enroll_code(KEL).unwrap()).unwrap();
    enroll_kiosk(&two, &server, &server.enroll_code(KEL).unwrap()).unwrap();
    let kiosk = KioskProcess::start(&one).unwrap();

    let damaged = file(&client, &kiosk, "Siti Aminah", 1).await;
    let intact = file(&client, &kiosk, "Budi Santoso", 2).await;
    assert_eq!(sync(&client, &kiosk).await["ok"], true);
    let db = Connection::open(server_dir.join("server.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let n = loket_tests::damage_stored_doc(&db, &damaged).unwrap();
    assert_eq!(n, 1);
    drop(db);

    // The partner (started only now, so it cannot have pulled the document
    // before the damage) pulls everything else and says what it refused.
    let partner = KioskProcess::start(&two).unwrap();
    // (Its own background sync may get there first: the refusal is then in
    // that run, and in the log either way.)
    let v = sync(&client, &partner).await;
    assert_eq!(v["ok"], true, "the partner is not wedged: {v}");
    // Stored documents are packed (loket_node::at_rest), so the server
    // finds the damage itself when it unpacks the document to send it: it
    // names the document and sends the rest.
    let log = std::fs::read_to_string(server_dir.join("server.log")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("does not read back: not sent") && l.contains(&damaged)),
        "the server names the document it cannot send:\n{log}"
    );
    let token = staff_login(&client, &partner.base).await.unwrap();
    let r = client.get(partner.url(&format!("/api/staff/requests/{intact}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200, "the partner holds the intact request");
    let r =
        client.get(partner.url(&format!("/api/staff/requests/{damaged}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 404, "and not the damaged one");

    // A step on the damaged request at the kiosk that wrote it: the server
    // names it, the kiosk sets it aside, a new request still syncs.
    let token = staff_login(&client, &kiosk.base).await.unwrap();
    let r = client
        .post(kiosk.url(&format!("/api/staff/requests/{damaged}/events")))
        .bearer_auth(&token)
        .json(&json!({ "to": "in_progress" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let fresh = file(&client, &kiosk, "Rina Siregar", 3).await;
    let v = sync(&client, &kiosk).await;
    assert_eq!(v["ok"], true, "{v}");
    let h = health(&client, &kiosk).await;
    assert_eq!(h["quarantined"][0]["id"], damaged.as_str(), "{h}");
    assert_eq!(h["quarantined"][0]["code"], "unreadable_document", "{h}");
    assert_eq!(server_request(&https, &server, &admin, &fresh).await["id"], fresh.as_str());
}
