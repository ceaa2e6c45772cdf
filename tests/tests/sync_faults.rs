//! Sync under faults, with real processes: each kiosk reaches the server
//! through its own fault proxy that delays, drops, cuts connections
//! mid-stream (mid-TLS-record) and partitions; meanwhile the server and the
//! kiosks are SIGKILLed during syncs and restarted. Clients file requests
//! and staff events with idempotency keys and retry what went unanswered.
//! After healing: every acknowledged request and event is on the server
//! exactly once, and the server and every kiosk hold identical documents.
//!
//! `LOKET_FAULTS_SEED` replays a run; `LOKET_FAULTS_ROUNDS` sets its length.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use loket_tests::proxy::{FaultProxy, Faults};
use loket_tests::server::{ServerProcess, enroll_kiosk_at, init_server};
use loket_tests::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, nik};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const KEL: &str = "12.71.01.1001";

async fn send(client: &reqwest::Client, req: reqwest::RequestBuilder) -> Option<Value> {
    let _ = client;
    let resp = req.send().await.ok()?;
    let status = resp.status();
    let v: Value = resp.json().await.ok()?;
    assert!(status.is_success(), "a valid operation was refused: {status} {v}");
    Some(v)
}

async fn settle(client: &reqwest::Client, k: &KioskProcess) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client.post(k.url("/api/sync")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["ok"] == true
            && v["more"] == false
        {
            let h: Value = client.get(k.url("/healthz")).send().await.unwrap().json().await.unwrap();
            if h["pending_changes"] == 0 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "kiosk {} did not settle", k.base);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_work_arrives_exactly_once_through_faults_and_kills() {
    let seed: u64 = std::env::var("LOKET_FAULTS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    let rounds: usize = std::env::var("LOKET_FAULTS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    println!("sync faults: {rounds} rounds, seed {seed} (replay with LOKET_FAULTS_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = TestDir::new("sync-faults");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).unwrap();
    let mut server = Some(ServerProcess::start(&server_dir).unwrap());
    let addr = server.as_ref().unwrap().addr();
    let https = server.as_ref().unwrap().client();
    let admin = server.as_ref().unwrap().admin_token(&https).await.unwrap();
    server.as_ref().unwrap().put_staff(&https, &admin, KEL, STAFF_ID, STAFF_PASSWORD).await.unwrap();
    let client = http_client();

    // Two kiosks of one kelurahan, each behind its own proxy.
    let mut proxies = Vec::new();
    let mut kiosks = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..2u64 {
        let proxy = FaultProxy::start_seeded(addr, seed ^ (i + 1)).unwrap();
        let data = dir.path().join(format!("kiosk{i}"));
        let s = server.as_ref().unwrap();
        enroll_kiosk_at(&data, &format!("https://{}", proxy.addr()), &s.ca_pem(), &s.enroll_code(KEL).unwrap())
            .unwrap();
        let k = KioskProcess::start(&data).unwrap();
        settle(&client, &k).await;
        tokens.push(loket_tests::staff_login(&client, &k.base).await.unwrap());
        kiosks.push(k);
        proxies.push(proxy);
    }

    // Ledger: what each kiosk acknowledged.
    let mut created: BTreeMap<String, String> = BTreeMap::new(); // idempotency key -> doc id
    let mut events: BTreeMap<String, (String, String)> = BTreeMap::new(); // key -> (doc, event id)
    let mut status: BTreeMap<String, &'static str> = BTreeMap::new();
    // Staff events for a request go to the kiosk that filed it (the other
    // kiosk may not have pulled it yet, or only an older state).
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    let mut unanswered: Vec<(usize, String, Value, Option<String>)> = Vec::new(); // kiosk, key, body, doc
    let mut n = 0u64;

    for round in 0..rounds {
        for p in &proxies {
            let faults = Faults {
                delay: Duration::from_millis(rng.random_range(0..15)),
                drop_connections: if rng.random_bool(0.3) { 0.4 } else { 0.0 },
                cut_after_bytes: rng.random_bool(0.5).then(|| rng.random_range(200..20_000)),
                ..Faults::default()
            };
            p.set(faults);
            p.handle().partition(rng.random_bool(0.15));
        }
        // Work on a random kiosk, retrying what went unanswered first.
        let ki = rng.random_range(0..kiosks.len());
        let mut ops: Vec<(usize, String, Value, Option<String>)> = std::mem::take(&mut unanswered);
        for _ in 0..3 {
            n += 1;
            let candidates: Vec<&String> = status
                .iter()
                .filter(|(d, s)| matches!(**s, "submitted" | "in_progress") && owner.get(*d) == Some(&ki))
                .map(|(d, _)| d)
                .collect();
            if !candidates.is_empty() && rng.random_bool(0.4) {
                let doc = candidates[rng.random_range(0..candidates.len())].clone();
                if ops.iter().any(|o| o.3.as_deref() == Some(doc.as_str())) {
                    continue;
                }
                let to = if status[&doc] == "submitted" { "in_progress" } else { "completed" };
                ops.push((ki, format!("ev-{seed}-{n}"), json!({ "to": to }), Some(doc)));
            } else {
                ops.push((
                    ki,
                    format!("cr-{seed}-{n}"),
                    json!({ "service": "SKD", "applicant": { "name": "Warga Uji", "nik": nik(n) } }),
                    None,
                ));
            }
        }
        for (ki, key, body, doc) in ops {
            let k = &kiosks[ki];
            let req = match &doc {
                None => client.post(k.url("/api/requests")),
                Some(d) => client.post(k.url(&format!("/api/staff/requests/{d}/events"))).bearer_auth(&tokens[ki]),
            }
            .header("idempotency-key", &key)
            .json(&body);
            match send(&client, req).await {
                Some(v) => match &doc {
                    None => {
                        let id = v["id"].as_str().unwrap().to_owned();
                        status.entry(id.clone()).or_insert("submitted");
                        owner.insert(id.clone(), ki);
                        created.insert(key, id);
                    }
                    Some(d) => {
                        events.insert(key, (d.clone(), v["event_id"].as_str().unwrap().to_owned()));
                        status.insert(d.clone(), if body["to"] == "completed" { "completed" } else { "in_progress" });
                    }
                },
                None => unanswered.push((ki, key, body, doc)),
            }
        }
        // Nudge syncs through the faults; they may fail.
        for k in &kiosks {
            let _ = client.post(k.url("/api/sync")).send().await;
        }
        // Kills during sync.
        if rng.random_bool(0.2) {
            let k = rng.random_range(0..kiosks.len());
            let _ = client
                .post(kiosks[k].url("/api/sync"))
                .timeout(Duration::from_millis(rng.random_range(1..30)))
                .send()
                .await;
            kiosks[k].kill();
            let data = kiosks[k].data.clone();
            kiosks[k] = KioskProcess::start(&data).unwrap();
        }
        if rng.random_bool(0.15) {
            let k = rng.random_range(0..kiosks.len());
            let _ = client
                .post(kiosks[k].url("/api/sync"))
                .timeout(Duration::from_millis(rng.random_range(1..30)))
                .send()
                .await;
            if let Some(mut s) = server.take() {
                s.kill();
            }
            if rng.random_bool(0.5) {
                server = Some(ServerProcess::restart_on(&server_dir, addr).unwrap());
            }
        }
        if server.is_none() && rng.random_bool(0.5) {
            server = Some(ServerProcess::restart_on(&server_dir, addr).unwrap());
        }
        let _ = round;
    }

    // Heal: no faults, everything running, retry the unanswered.
    for p in &proxies {
        p.clear();
        p.handle().partition(false);
    }
    if server.is_none() {
        server = Some(ServerProcess::restart_on(&server_dir, addr).unwrap());
    }
    let server = server.unwrap();
    for (ki, key, body, doc) in std::mem::take(&mut unanswered) {
        let k = &kiosks[ki];
        let req = match &doc {
            None => client.post(k.url("/api/requests")),
            Some(d) => client.post(k.url(&format!("/api/staff/requests/{d}/events"))).bearer_auth(&tokens[ki]),
        }
        .header("idempotency-key", &key)
        .json(&body);
        let v = send(&client, req).await.expect("a healed kiosk answers");
        match doc {
            None => {
                let id = v["id"].as_str().unwrap().to_owned();
                status.entry(id.clone()).or_insert("submitted");
                created.insert(key, id);
            }
            Some(d) => {
                events.insert(key, (d.clone(), v["event_id"].as_str().unwrap().to_owned()));
                status.insert(d, if body["to"] == "completed" { "completed" } else { "in_progress" });
            }
        }
    }
    for _ in 0..2 {
        for k in &kiosks {
            settle(&client, k).await;
        }
    }

    // Exactly once on the server, identical everywhere.
    let admin = server.admin_token(&https).await.unwrap();
    let list: Value = https
        .get(format!("{}/api/admin/requests?limit=1000", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let on_server: BTreeSet<String> =
        list["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
    let acked: BTreeSet<String> = created.values().cloned().collect();
    assert_eq!(on_server, acked, "requests on the server vs acknowledged (seed {seed})");
    assert_eq!(list["items"].as_array().unwrap().len(), acked.len(), "no request twice (seed {seed})");
    let mut events_per_doc: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (doc, ev) in events.values() {
        events_per_doc.entry(doc).or_default().insert(ev);
    }
    for id in &acked {
        let d: Value = https
            .get(format!("{}/api/admin/requests/{id}", server.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = d["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        let want = events_per_doc.get(id.as_str()).cloned().unwrap_or_default();
        assert_eq!(ids.len(), 1 + want.len(), "events of {id} (seed {seed})");
        for ev in want {
            assert!(ids.contains(&ev), "acknowledged event {ev} of {id} missing (seed {seed})");
        }
        assert_eq!(d["status"], status[id], "status of {id} (seed {seed})");
        for (ki, k) in kiosks.iter().enumerate() {
            let kd: Value = client
                .get(k.url(&format!("/api/staff/requests/{id}")))
                .bearer_auth(&tokens[ki])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(kd["heads"], d["heads"], "heads of {id} on kiosk {ki} (seed {seed})");
        }
    }
    println!(
        "sync faults: {} requests and {} events acknowledged, all on the server exactly once; proxies: {:?}",
        acked.len(),
        events.len(),
        proxies.iter().map(|p| p.handle().stats()).collect::<Vec<_>>()
    );
}
