//! Eviction of personal data on a real kiosk (retention set to zero): once
//! a request is finished and the server holds it, the kiosk's database
//! files no longer contain the citizen's name or NIK; the ticket still
//! answers its status; the server still has everything; an open request
//! keeps its data.

use std::time::{Duration, Instant};

use loket_tests::server::{ServerProcess, enroll_kiosk, init_server};
use loket_tests::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, nik, staff_login};
use serde_json::{Value, json};

const KEL: &str = "12.71.01.1001";

async fn file(client: &reqwest::Client, k: &KioskProcess, name: &str, nik: &str) -> Value {
    client
        .post(k.url("/api/requests"))
        .json(&json!({ "service": "SKD", "applicant": { "name": name, "nik": nik } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn files_contain(data: &std::path::Path, needle: &str) -> bool {
    ["kiosk.db", "kiosk.db-wal"].iter().any(|f| {
        std::fs::read(data.join(f)).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_requests_lose_their_personal_data_on_the_kiosk_only() {
    let dir = TestDir::new("eviction");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).unwrap();
    let server = ServerProcess::start(&server_dir).unwrap();
    let https = server.client();
    let admin = server.admin_token(&https).await.unwrap();
    server.put_staff(&https, &admin, KEL, STAFF_ID, STAFF_PASSWORD).await.unwrap();
    let data = dir.path().join("kiosk");
    enroll_kiosk(&data, &server, &server.enroll_code(KEL).unwrap()).unwrap();
    let kiosk = KioskProcess::start_with(
        &data,
        &[("LOKET_KIOSK_PERSONAL_DATA_RETENTION", "0"), ("LOKET_KIOSK_COMPACT_INTERVAL", "1")],
    )
    .unwrap();
    let client = http_client();

    let (done_name, done_nik) = ("Rahmawati Siregar", nik(777));
    let (open_name, open_nik) = ("Tigor Nainggolan", nik(778));
    let done = file(&client, &kiosk, done_name, &done_nik).await;
    let open = file(&client, &kiosk, open_name, &open_nik).await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    let token = staff_login(&client, &kiosk.base).await.unwrap();
    for to in ["in_progress", "completed"] {
        let r = client
            .post(kiosk.url(&format!("/api/staff/requests/{done_id}/events")))
            .bearer_auth(&token)
            .json(&json!({ "to": to }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{to}: {}", r.status());
    }
    assert!(files_contain(&data, done_name), "the search finds the name before eviction");

    // Sync until the server holds it, then wait for the kiosk to evict it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = client.post(kiosk.url("/api/sync")).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["ok"], true, "{v}");
        let h: Value = client.get(kiosk.url("/healthz")).send().await.unwrap().json().await.unwrap();
        if h["evicted"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing evicted: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert!(!files_contain(&data, done_name), "the finished request's name is still in the kiosk's files");
    assert!(!files_contain(&data, &done_nik), "the finished request's NIK is still in the kiosk's files");
    assert!(files_contain(&data, open_name), "an open request keeps its data");

    // The citizen can still check the ticket; staff see it is gone here.
    let ticket = done["ticket"].as_str().unwrap();
    let t: Value = client.get(kiosk.url(&format!("/api/tickets/{ticket}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(t["status"], "completed", "{t}");
    let r = client.get(kiosk.url(&format!("/api/staff/requests/{done_id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // The server has all of it.
    let full = server
        .get_json(&https, &admin, &format!("/api/admin/requests/{done_id}/personal?reason=audit%20test"))
        .await
        .unwrap();
    assert_eq!(full["nik"], done_nik.as_str(), "{full}");
    assert_eq!(full["name"], done_name);

    // Syncing on is quiet: nothing evicted is pushed back or pulled in.
    let v: Value = client.post(kiosk.url("/api/sync")).send().await.unwrap().json().await.unwrap();
    assert_eq!((v["ok"].as_bool(), v["pushed"].as_u64()), (Some(true), Some(0)), "{v}");
    assert!(!files_contain(&data, done_name));
    let _ = open;
}
