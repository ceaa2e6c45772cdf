//! Power-cut safety: a real `kiosk serve` is SIGKILLed at random moments
//! while clients file requests and staff move them through the workflow.
//! After every restart, everything that was acknowledged before the kill
//! must be there; at the end, after retrying every unanswered operation
//! with its idempotency key, every operation exists exactly once and the
//! database passes `PRAGMA integrity_check`.
//!
//! Kills are triggered by progress, not by the clock: after a random
//! number of acknowledgements (0-12), plus a random few hundred
//! microseconds so that the kill lands inside the next writes.
//! `LOKET_POWER_CUT_KILLS` sets the number of kills (default 200);
//! `LOKET_POWER_CUT_SEED` replays a run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loket_tests::{KioskProcess, TestDir, http_client, init_kiosk, nik, staff_login};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

/// One client operation, remembered until it is acknowledged.
#[derive(Debug, Clone)]
enum Op {
    Create { key: String, n: u64 },
    Event { key: String, doc: String, to: &'static str },
}

#[derive(Debug, Default)]
struct Ledger {
    /// Creates acknowledged: key -> (doc id, ticket).
    created: BTreeMap<String, (String, String)>,
    /// Events acknowledged: key -> (doc id, event id).
    events: BTreeMap<String, (String, String)>,
    /// Per document: the status after its last acknowledged event, and
    /// whether an event for it is still unanswered.
    docs: BTreeMap<String, (&'static str, bool)>,
    /// Sent but not answered (the kiosk died): retried with the same key.
    unanswered: Vec<Op>,
    /// Acknowledged since the last restart: checked right after it.
    fresh_creates: Vec<String>,
    fresh_events: Vec<String>,
}

fn next_status(current: &str, pick: usize) -> Option<&'static str> {
    let options: &[&'static str] = match current {
        "submitted" => &["in_progress"],
        "in_progress" => &["waiting_citizen", "completed", "rejected"],
        "waiting_citizen" => &["in_progress"],
        _ => &[],
    };
    (!options.is_empty()).then(|| options[pick % options.len()])
}

async fn send(client: &reqwest::Client, base: &str, token: &str, op: &Op) -> Result<Value, String> {
    let req = match op {
        Op::Create { key, n } => client
            .post(format!("{base}/api/requests"))
            .header("idempotency-key", key)
            .json(&json!({ "service": "SKD", "applicant": { "name": "Warga Uji", "nik": nik(*n) } })),
        Op::Event { key, doc, to } => client
            .post(format!("{base}/api/staff/requests/{doc}/events"))
            .header("idempotency-key", key)
            .bearer_auth(token)
            .json(&json!({ "to": to, "note": "uji listrik padam" })),
    };
    let resp = req.send().await.map_err(|e| format!("transport: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| format!("body: {e}"))?;
    if status.as_u16() == 201 {
        Ok(body)
    } else {
        // Any answer other than success is a bug: every op here is valid.
        panic!("kiosk refused a valid operation {op:?}: {status} {body}");
    }
}

fn record(ledger: &mut Ledger, op: &Op, body: &Value) {
    match op {
        Op::Create { key, .. } => {
            let id = body["id"].as_str().expect("id").to_owned();
            let ticket = body["ticket"].as_str().expect("ticket").to_owned();
            if let Some(prev) = ledger.created.insert(key.clone(), (id.clone(), ticket)) {
                assert_eq!(prev.0, id, "a retried create made a second document");
            }
            ledger.docs.entry(id).or_insert(("submitted", false));
            ledger.fresh_creates.push(key.clone());
        }
        Op::Event { key, doc, to } => {
            let event_id = body["event_id"].as_str().expect("event_id").to_owned();
            if let Some(prev) = ledger.events.insert(key.clone(), (doc.clone(), event_id.clone())) {
                assert_eq!(prev.1, event_id, "a retried event was applied twice");
            }
            ledger.docs.insert(doc.clone(), (to, false));
            ledger.fresh_events.push(key.clone());
        }
    }
}

/// Picks the next operation: retries first, then new work.
fn next_op(ledger: &mut Ledger, rng: &mut StdRng, counter: &mut u64) -> Op {
    if let Some(op) = ledger.unanswered.pop() {
        return op;
    }
    *counter += 1;
    let n = *counter;
    if rng.random_bool(0.4) {
        let candidates: Vec<(String, &'static str)> = ledger
            .docs
            .iter()
            .filter(|(_, (status, pending))| !pending && next_status(status, 0).is_some())
            .map(|(d, (s, _))| (d.clone(), *s))
            .collect();
        if !candidates.is_empty() {
            let (doc, status) = candidates[rng.random_range(0..candidates.len())].clone();
            let to = next_status(status, rng.random_range(0..3)).expect("has a next status");
            ledger.docs.insert(doc.clone(), (status, true));
            return Op::Event { key: format!("ev-{n:08}"), doc, to };
        }
    }
    Op::Create { key: format!("cr-{n:08}"), n }
}

async fn verify_fresh(client: &reqwest::Client, base: &str, token: &str, ledger: &mut Ledger) {
    for key in std::mem::take(&mut ledger.fresh_creates) {
        let (_, ticket) = &ledger.created[&key];
        let resp = client.get(format!("{base}/api/tickets/{ticket}")).send().await.expect("ticket lookup");
        assert_eq!(resp.status(), 200, "acknowledged ticket {ticket} lost after a kill");
    }
    let mut by_doc: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in std::mem::take(&mut ledger.fresh_events) {
        let (doc, event_id) = ledger.events[&key].clone();
        by_doc.entry(doc).or_default().push(event_id);
    }
    for (doc, event_ids) in by_doc {
        let detail: Value = client
            .get(format!("{base}/api/staff/requests/{doc}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("detail")
            .json()
            .await
            .expect("detail json");
        let have: Vec<&str> =
            detail["events"].as_array().expect("events").iter().filter_map(|e| e["id"].as_str()).collect();
        for id in event_ids {
            assert!(have.contains(&id.as_str()), "acknowledged event {id} of {doc} lost after a kill");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let kills: usize = std::env::var("LOKET_POWER_CUT_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let seed: u64 =
        std::env::var("LOKET_POWER_CUT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    println!("power-cut: {kills} kills, seed {seed} (replay with LOKET_POWER_CUT_SEED={seed})");
    let dir = TestDir::new("power-cut");
    let data = dir.path().join("kiosk");
    init_kiosk(&data, "K07").expect("init");
    let client = http_client();
    let mut rng = StdRng::seed_from_u64(seed);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let counter = Arc::new(Mutex::new(0u64));

    let mut kiosk = KioskProcess::start(&data).expect("start");
    // Sessions are stored durably: one login serves every restart.
    let token = staff_login(&client, &kiosk.base).await.expect("login");

    for round in 0..kills {
        let acks = Arc::new(AtomicUsize::new(0));
        let trigger = Arc::new(Notify::new());
        let kill_after = rng.random_range(0..=12usize);
        let mut workers = Vec::new();
        for w in 0..4u64 {
            let (client, base, token) = (client.clone(), kiosk.base.clone(), token.clone());
            let (ledger, counter, acks, trigger) = (ledger.clone(), counter.clone(), acks.clone(), trigger.clone());
            let mut wrng = StdRng::seed_from_u64(seed ^ (round as u64) << 8 ^ w);
            workers.push(tokio::spawn(async move {
                loop {
                    let op = {
                        let mut l = ledger.lock().await;
                        let mut c = counter.lock().await;
                        next_op(&mut l, &mut wrng, &mut c)
                    };
                    match send(&client, &base, &token, &op).await {
                        Ok(body) => {
                            record(&mut *ledger.lock().await, &op, &body);
                            if acks.fetch_add(1, Ordering::SeqCst) + 1 >= kill_after {
                                trigger.notify_one();
                            }
                        }
                        Err(_) => {
                            // The kiosk died under us: remember the op for a retry.
                            ledger.lock().await.unanswered.push(op);
                            return;
                        }
                    }
                }
            }));
        }
        if kill_after > 0 {
            trigger.notified().await;
        }
        let jitter_us = rng.random_range(0..800u64);
        tokio::time::sleep(Duration::from_micros(jitter_us)).await;
        kiosk.kill();
        for w in workers {
            w.await.expect("worker");
        }
        kiosk = KioskProcess::start(&data).expect("restart after kill");
        let mut l = ledger.lock().await;
        verify_fresh(&client, &kiosk.base, &token, &mut l).await;
    }

    // Settle: answer every unanswered operation (same key, same body).
    loop {
        let op = ledger.lock().await.unanswered.pop();
        let Some(op) = op else { break };
        let body = send(&client, &kiosk.base, &token, &op).await.expect("retry on a live kiosk");
        record(&mut *ledger.lock().await, &op, &body);
    }
    let l = ledger.lock().await;
    // SIGTERM must also stop it cleanly (graceful shutdown drains the writer).
    let status = kiosk.terminate().expect("stop on SIGTERM");
    assert!(status.success(), "kiosk exited with {status} on SIGTERM");

    // The database itself: intact, and every operation exactly once.
    let db = rusqlite::Connection::open(data.join("kiosk.db")).expect("open db");
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(check, "ok");
    let requests: i64 = db.query_row("SELECT count(*) FROM requests", [], |r| r.get(0)).expect("count");
    assert_eq!(requests as usize, l.created.len(), "requests stored vs distinct requests filed");
    let tickets: i64 = db.query_row("SELECT count(DISTINCT ticket) FROM requests", [], |r| r.get(0)).expect("tickets");
    assert_eq!(tickets, requests, "two requests share a ticket");
    drop(db);

    // Every document holds exactly its create event plus its acknowledged events.
    let mut events_per_doc: BTreeMap<&str, usize> = BTreeMap::new();
    for (doc, _) in l.events.values() {
        *events_per_doc.entry(doc.as_str()).or_default() += 1;
    }
    let kiosk = KioskProcess::start(&data).expect("final start");
    for (doc, ticket) in l.created.values() {
        let resp = client.get(kiosk.url(&format!("/api/tickets/{ticket}"))).send().await.expect("ticket");
        assert_eq!(resp.status(), 200, "ticket {ticket}");
        let detail: Value = client
            .get(kiosk.url(&format!("/api/staff/requests/{doc}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("detail")
            .json()
            .await
            .expect("json");
        let n = detail["events"].as_array().expect("events").len();
        assert_eq!(n, 1 + events_per_doc.get(doc.as_str()).copied().unwrap_or(0), "events of {doc}");
        let (status, _) = l.docs[doc];
        assert_eq!(detail["status"], status, "status of {doc}");
    }
    println!(
        "power-cut: {kills} kills, {} requests and {} events acknowledged, 0 lost, 0 duplicated, integrity ok",
        l.created.len(),
        l.events.len()
    );
}
