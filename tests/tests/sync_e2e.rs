//! End to end with real processes: one sync server and three enrolled
//! kiosks (two in one kelurahan, one in another), on loopback with real
//! TLS and real SQLite files.
//!
//! The server is stopped; the kiosks file requests, staff work them and
//! citizens rate them; one kiosk completes a handed-off request and is
//! then switched off. The server comes back, an agency rejects that same
//! request centrally, the kiosk comes back. Everything converges: every
//! document has identical heads on the server and on every kiosk of its
//! kelurahan, the admin API shows every request with the right status, a
//! central event reaches the kiosk, and the kiosk-vs-agency terminal
//! states are a flagged conflict on both sides.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use loket_tests::server::{ServerProcess, enroll_kiosk, init_server, server_cli_ok};
use loket_tests::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, nik};
use serde_json::{Value, json};

const KEL_A: &str = "12.71.01.1001";
const KEL_B: &str = "12.71.01.1002";

struct Kiosk {
    proc: KioskProcess,
    kelurahan: &'static str,
    token: String,
}

async fn get(client: &reqwest::Client, url: String, token: Option<&str>) -> Value {
    let mut r = client.get(&url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.expect("json")
}

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut r = client.post(&url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "POST {url}: {status} {v}");
    v
}

/// Waits (bounded) until the kiosk reports a successful sync after `since`
/// with nothing pending. Polls the health endpoint: the event we wait for.
async fn wait_synced(client: &reqwest::Client, k: &KioskProcess, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sync: Value = client.post(k.url("/api/sync")).send().await.expect("sync").json().await.expect("json");
        let h = get(client, k.url("/healthz"), None).await;
        if sync["ok"] == true && sync["more"] == false && h["pending_changes"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: kiosk did not sync: {sync} {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn staff_event(client: &reqwest::Client, k: &Kiosk, id: &str, body: Value) -> Value {
    post(client, k.proc.url(&format!("/api/staff/requests/{id}/events")), Some(&k.token), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_kiosks_and_central_edits_converge() {
    let dir = TestDir::new("sync-e2e");
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

    // Enroll and start three kiosks; each pulls the catalog and its roster.
    let mut kiosks = Vec::new();
    for (i, kel) in [KEL_A, KEL_A, KEL_B].into_iter().enumerate() {
        let data = dir.path().join(format!("kiosk{i}"));
        let code = server.enroll_code(kel).expect("code");
        enroll_kiosk(&data, &server, &code).expect("enroll");
        let proc = KioskProcess::start(&data).expect("kiosk start");
        wait_synced(&client, &proc, "after enrollment").await;
        let token = loket_tests::staff_login(&client, &proc.base).await.expect("staff login with the server's roster");
        kiosks.push(Kiosk { proc, kelurahan: kel, token });
    }

    // Before the outage: a request on kiosk 0 handed off to Disdukcapil, synced.
    let contested = post(
        &client,
        kiosks[0].proc.url("/api/requests"),
        None,
        json!({ "service": "PKK", "applicant": { "name": "Rahmat Hidayat", "nik": nik(900) } }),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    staff_event(&client, &kiosks[0], &contested, json!({ "to": "in_progress" })).await;
    staff_event(&client, &kiosks[0], &contested, json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })).await;
    // And one the agency will complete centrally.
    let central = post(
        &client,
        kiosks[2].proc.url("/api/requests"),
        None,
        json!({ "service": "PKTP", "applicant": { "name": "Sri Wahyuni", "nik": nik(901) } }),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    staff_event(&client, &kiosks[2], &central, json!({ "to": "in_progress" })).await;
    staff_event(&client, &kiosks[2], &central, json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })).await;
    for k in &kiosks {
        wait_synced(&client, &k.proc, "before the outage").await;
    }

    // The outage: the server stops; the kiosks keep working.
    server.terminate().expect("server stops on SIGTERM");
    let mut filed: Vec<(usize, String)> = Vec::new();
    let mut expected_status: BTreeMap<String, &str> = BTreeMap::new();
    for (ki, k) in kiosks.iter().enumerate() {
        for j in 0..6u64 {
            let v = post(
                &client,
                k.proc.url("/api/requests"),
                None,
                json!({ "service": "SKD", "applicant": { "name": "Warga Offline", "nik": nik(ki as u64 * 100 + j) } }),
            )
            .await;
            let id = v["id"].as_str().expect("id").to_owned();
            let status = match j % 3 {
                0 => "submitted",
                1 => {
                    staff_event(&client, k, &id, json!({ "to": "in_progress" })).await;
                    "in_progress"
                }
                _ => {
                    staff_event(&client, k, &id, json!({ "to": "in_progress" })).await;
                    staff_event(&client, k, &id, json!({ "to": "completed", "note": "selesai saat offline" })).await;
                    let all = json!({"U1":4,"U2":3,"U3":4,"U4":4,"U5":3,"U6":4,"U7":4,"U8":3,"U9":4});
                    let token = v["rating_token"].clone();
                    post(
                        &client,
                        k.proc.url(&format!("/api/requests/{id}/rating")),
                        None,
                        json!({ "scores": all, "token": token }),
                    )
                    .await;
                    "completed"
                }
            };
            expected_status.insert(id.clone(), status);
            filed.push((ki, id));
        }
        let h = get(&client, k.proc.url("/healthz"), None).await;
        assert!(h["pending_changes"].as_u64().unwrap() > 0, "offline work is pending: {h}");
    }
    // Kiosk 0's clerk completes the handed-off request, then the kiosk is switched off.
    staff_event(&client, &kiosks[0], &contested, json!({ "to": "completed", "note": "diserahkan ke warga" })).await;
    kiosks[0].proc.terminate().expect("kiosk 0 stops");

    // The server comes back; the agency rejects the same request meanwhile.
    server = ServerProcess::restart_on(&server_dir, addr).expect("server restart");
    let admin = server.admin_token(&https).await.expect("admin login again");
    post(
        &https,
        format!("{}/api/admin/requests/{contested}/events", server.base),
        Some(&admin),
        json!({ "to": "rejected", "note": "data KK tidak cocok" }),
    )
    .await;
    post(
        &https,
        format!("{}/api/admin/requests/{central}/events", server.base),
        Some(&admin),
        json!({ "to": "completed", "note": "KTP-el sudah dicetak" }),
    )
    .await;
    let data0 = kiosks[0].proc.data.clone();
    kiosks[0].proc = KioskProcess::start(&data0).expect("kiosk 0 back");
    for _ in 0..2 {
        for k in &kiosks {
            wait_synced(&client, &k.proc, "after the outage").await;
        }
    }

    // Every request: identical heads on the server and on every kiosk of its kelurahan.
    let mut all_ids: Vec<(String, &'static str)> =
        filed.iter().map(|(ki, id)| (id.clone(), kiosks[*ki].kelurahan)).collect();
    all_ids.push((contested.clone(), KEL_A));
    all_ids.push((central.clone(), KEL_B));
    for (id, kel) in &all_ids {
        let on_server = get(&https, format!("{}/api/admin/requests/{id}", server.base), Some(&admin)).await;
        for k in kiosks.iter().filter(|k| k.kelurahan == *kel) {
            let on_kiosk = get(&client, k.proc.url(&format!("/api/staff/requests/{id}")), Some(&k.token)).await;
            assert_eq!(on_kiosk["heads"], on_server["heads"], "heads of {id} on {}", k.proc.base);
            assert_eq!(on_kiosk["status"], on_server["status"], "status of {id}");
            assert_eq!(on_kiosk["conflict"], on_server["conflict"], "conflict flag of {id}");
        }
        if let Some(want) = expected_status.get(id) {
            assert_eq!(on_server["status"], *want, "status of {id} on the server");
        }
    }
    // Kelurahan B's kiosk does not hold kelurahan A's requests.
    let b_queue = get(&client, kiosks[2].proc.url("/api/staff/requests?status=all"), Some(&kiosks[2].token)).await;
    assert_eq!(b_queue["items"].as_array().unwrap().len(), 7, "kiosk of B: its 6 offline requests + 1");

    // The admin list shows every request exactly once.
    let list = get(&https, format!("{}/api/admin/requests?limit=1000", server.base), Some(&admin)).await;
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids.len(), all_ids.len());
    for (id, _) in &all_ids {
        assert!(ids.contains(&id.as_str()), "{id} missing from the admin list");
    }

    // The central completion reached kiosk 2.
    let c = get(&client, kiosks[2].proc.url(&format!("/api/staff/requests/{central}")), Some(&kiosks[2].token)).await;
    assert_eq!(c["status"], "completed");
    assert!(c["events"].as_array().unwrap().iter().any(|e| e["note"] == "KTP-el sudah dicetak"));

    // Kiosk staff completed while the agency rejected: a conflict, on both sides.
    for k in &kiosks[..2] {
        let d = get(&client, k.proc.url(&format!("/api/staff/requests/{contested}")), Some(&k.token)).await;
        assert_eq!(d["conflict"], true, "conflict flagged on kiosk {}", k.proc.base);
        let mut sides: Vec<&str> = d["conflicts"].as_array().unwrap().iter().filter_map(|s| s["to"].as_str()).collect();
        sides.sort();
        assert_eq!(sides, ["completed", "rejected"]);
    }
    let d = get(&https, format!("{}/api/admin/requests/{contested}", server.base), Some(&admin)).await;
    assert_eq!(d["conflict"], true);
    let listed = list["items"].as_array().unwrap().iter().find(|i| i["id"] == contested.as_str()).unwrap();
    assert_eq!(listed["conflict"], true);

    // An admin resolves it; the resolution reaches the kiosk.
    post(
        &https,
        format!("{}/api/admin/requests/{contested}/events", server.base),
        Some(&admin),
        json!({ "to": "completed", "note": "dicek ulang" }),
    )
    .await;
    wait_synced(&client, &kiosks[0].proc, "after the resolution").await;
    let d = get(&client, kiosks[0].proc.url(&format!("/api/staff/requests/{contested}")), Some(&kiosks[0].token)).await;
    assert_eq!(d["conflict"], false);
    assert_eq!(d["status"], "completed");

    // A catalog edit by an admin reaches the kiosks, which keep working offline with it.
    let catalog = get(&https, format!("{}/api/admin/catalog", server.base), Some(&admin)).await;
    let mut skd = catalog["services"].as_array().unwrap().iter().find(|s| s["code"] == "SKD").unwrap().clone();
    skd["sla_days"] = json!(2);
    skd["requirements_id"].as_array_mut().unwrap().push(json!("Surat pernyataan domisili"));
    let r = https
        .put(format!("{}/api/admin/catalog/services/SKD", server.base))
        .bearer_auth(&admin)
        .json(&skd)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    wait_synced(&client, &kiosks[1].proc, "after the catalog edit").await;
    let services = get(&client, kiosks[1].proc.url("/api/services"), None).await;
    let skd = services["items"].as_array().unwrap().iter().find(|s| s["code"] == "SKD").unwrap();
    assert_eq!(skd["sla_days"], 2);
    assert!(skd["requirements_id"].as_array().unwrap().iter().any(|r| r == "Surat pernyataan domisili"));

    // The kiosk's own metrics agree.
    let m = client.get(kiosks[0].proc.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("loket_kiosk_pending_changes 0"), "{m}");
    assert!(m.contains("loket_kiosk_server_reachable 1"), "{m}");
    assert!(!m.contains("loket_kiosk_sync_attempts_total 0\n"), "{m}");

    // The kiosks' sync shows up in the server's kiosk health.
    let ks = get(&https, format!("{}/api/admin/kiosks", server.base), Some(&admin)).await;
    assert_eq!(ks["items"].as_array().unwrap().len(), 3);
    for k in ks["items"].as_array().unwrap() {
        assert!(k["last_seen"].is_string(), "{k}");
        assert_eq!(k["revoked"], false);
    }
}

/// Issue 14 item 9: the city publishes each office's IKM; it reaches the
/// office's kiosks at their next sync and stays on the citizens' home
/// screen while the server is gone. An office without respondents in the
/// period gets nothing (its kiosk says so with a stable code), a
/// supervisor cannot publish, and a period without respondents anywhere
/// is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_published_ikm_reaches_the_offices_kiosk_and_shows_offline() {
    let dir = TestDir::new("sync-ikm");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let password = dir.path().join("pengawas.pw");
    std::fs::write(&password, "rahasia-pengawas-1\n").unwrap();
    #[rustfmt::skip]
    server_cli_ok(&["add-user", "--data", server_dir.to_str().unwrap(), "--username", "pengawas",
                    "--role", "supervisor", "--password-file", password.to_str().unwrap()])
        .expect("a supervisor");
    let mut server = ServerProcess::start(&server_dir).expect("server start");
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin login");
    let client = http_client();
    let mut kiosks = Vec::new();
    for (i, kel) in [KEL_A, KEL_B].into_iter().enumerate() {
        server.put_staff(&https, &admin, kel, STAFF_ID, STAFF_PASSWORD).await.expect("roster");
        let data = dir.path().join(format!("kiosk{i}"));
        let code = server.enroll_code(kel).expect("code");
        enroll_kiosk(&data, &server, &code).expect("enroll");
        let proc = KioskProcess::start(&data).expect("kiosk start");
        wait_synced(&client, &proc, "after enrollment").await;
        let token = loket_tests::staff_login(&client, &proc.base).await.expect("staff login");
        kiosks.push(Kiosk { proc, kelurahan: kel, token });
    }
    let not_published = client.get(kiosks[0].proc.url("/api/ikm")).send().await.unwrap();
    assert_eq!(not_published.status(), 404);
    assert_eq!(not_published.json::<Value>().await.unwrap()["error"]["code"], "not_published");

    // Two citizens of kelurahan A rate their finished requests: all 4s and all 3s.
    for (j, score) in [4, 3].into_iter().enumerate() {
        let k = &kiosks[0];
        let v = post(
            &client,
            k.proc.url("/api/requests"),
            None,
            json!({ "service": "SKD", "applicant": { "name": "Warga Menilai", "nik": nik(700 + j as u64) } }),
        )
        .await;
        let id = v["id"].as_str().expect("id").to_owned();
        staff_event(&client, k, &id, json!({ "to": "in_progress" })).await;
        staff_event(&client, k, &id, json!({ "to": "completed" })).await;
        let scores: BTreeMap<String, u8> = (1..=9).map(|e| (format!("U{e}"), score)).collect();
        post(
            &client,
            k.proc.url(&format!("/api/requests/{id}/rating")),
            None,
            json!({ "scores": scores, "token": v["rating_token"] }),
        )
        .await;
    }
    wait_synced(&client, &kiosks[0].proc, "the ratings").await;

    // The quarter the ratings fall in, in Medan's time (UTC+7).
    let local = time::OffsetDateTime::now_utc().to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap());
    let quarter = format!("{}-Q{}", local.year(), (u8::from(local.month()) - 1) / 3 + 1);
    let publish = |token: String, period: String| {
        let https = https.clone();
        let url = format!("{}/api/admin/ikm/publish", server.base);
        async move {
            let resp = https.post(url).bearer_auth(token).json(&json!({ "period": period })).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let supervisor = {
        let resp = https
            .post(format!("{}/api/login", server.base))
            .json(&json!({ "username": "pengawas", "password": "rahasia-pengawas-1" }))
            .send()
            .await
            .unwrap();
        resp.json::<Value>().await.unwrap()["token"].as_str().expect("supervisor token").to_owned()
    };
    let (status, body) = publish(supervisor, quarter.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = publish(admin.clone(), "2001-Q1".into()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("no_respondents")), "{body}");
    let (status, body) = publish(admin.clone(), "2026-Q5".into()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_period")), "{body}");
    let (status, body) = publish(admin.clone(), quarter.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["period"].as_str(), body["offices"].as_u64()), (Some(quarter.as_str()), Some(1)));
    let audit = get(&https, format!("{}/api/admin/audit", server.base), Some(&admin)).await;
    assert!(audit.to_string().contains("publish_ikm"), "the publication is audited: {audit}");

    for k in &kiosks {
        wait_synced(&client, &k.proc, "after publishing").await;
    }
    // 2 respondents, 9 x 4 + 9 x 3 = 63 points: IKM = 63 / 9 / 2 x 25 = 87.50, B (76.61-88.30).
    let ikm = get(&client, kiosks[0].proc.url("/api/ikm"), None).await;
    assert_eq!(ikm["kelurahan"], KEL_A);
    assert_eq!(ikm["period"], quarter.as_str());
    assert_eq!((ikm["ikm"].as_str(), ikm["grade"].as_str()), (Some("87.50"), Some("B")), "{ikm}");
    assert_eq!((ikm["respondents"].as_u64(), ikm["sample_min"].as_u64()), (Some(2), Some(2)), "{ikm}");
    assert!(ikm["label"].as_str().unwrap().starts_with("Triwulan "), "{ikm}");
    let other = client.get(kiosks[1].proc.url("/api/ikm")).send().await.unwrap();
    assert_eq!(other.status(), 404, "kelurahan B had no respondents: nothing of A's shows there");
    assert_eq!(kiosks[1].kelurahan, KEL_B);

    // The server goes away; the home screen still shows the figure.
    server.terminate().expect("server stops");
    let home = client.get(kiosks[0].proc.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains(r#"id="published-ikm""#), "the home screen shows the IKM offline");
    assert!(home.contains("87,50"), "with a decimal comma in Indonesian");
    assert!(home.contains("Mutu B"), "and the grade");
    let home_b = client.get(kiosks[1].proc.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(!home_b.contains(r#"id="published-ikm""#), "no card where nothing was published");
}

/// Issue 18: a server at its limit says when to come back (429 with
/// `Retry-After`), and a kiosk asked to sync waits that long and goes on
/// instead of failing. The server lets a kiosk 60 exchanges a minute here
/// (a burst of 30, then one a second); the kiosk is asked to sync until
/// the server has turned one of its exchanges away, and every sync it was
/// asked for succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_waits_as_long_as_a_busy_server_asks_instead_of_failing() {
    let dir = TestDir::new("retry-after");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    std::fs::write(server_dir.join("server.toml"), "kiosk_syncs_per_minute = 60\n").expect("server.toml");
    let server = ServerProcess::start(&server_dir).expect("server start");
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin login");
    let client = http_client();
    let data = dir.path().join("kiosk");
    enroll_kiosk(&data, &server, &server.enroll_code(KEL_A).expect("code")).expect("enroll");
    let kiosk = KioskProcess::start(&data).expect("kiosk start");

    let limited = || async {
        let text = https
            .get(format!("{}/metrics", server.base))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find(|l| l.starts_with("loket_sync_refusals_total{reason=\"rate_limited\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut calls = 0;
    while limited().await == 0.0 {
        calls += 1;
        assert!(calls <= 100, "the server never turned the kiosk away");
        let sync: Value = client.post(kiosk.url("/api/sync")).send().await.expect("sync").json().await.expect("json");
        assert_eq!(sync["ok"], true, "sync {calls} failed instead of waiting as the server asked: {sync}");
    }
    assert!(calls > 1, "the burst let some syncs through first");
}
