//! The sync server on PostgreSQL, end to end with the real binaries: each
//! test has a database of its own (`TestDatabase`).
//!
//! - Two instances on one database, six kiosks each behind a
//!   [`Switch`] that sends it to A or B in turn. Each instance is
//!   SIGKILLed once while three kiosks' pushes are committed but their
//!   answers held (the kiosks never learn they went through) and the
//!   other kiosks' syncs are on the wire, and restarts on its address.
//!   After everything syncs: every request and event a kiosk or an
//!   instance acknowledged is on both instances exactly once, and every
//!   kiosk holds what the server holds for its kelurahan, head for head.
//! - What instances share: a session made on A works on B (and a logout
//!   on B ends it on A), a kiosk revoked on A is refused by B at its next
//!   request, an enrollment code used on A is refused by B, failed logins
//!   on A lock the user out on B, and a second `init` on the same
//!   database is refused. B is given its database with `--database`.
//! - `migrate-store`: an SQLite server with requests, ratings, a conflict,
//!   central events and an audit trail moves to PostgreSQL; heads, API
//!   figures and central pages are the same before and after, and kiosks
//!   keep syncing with it. A non-empty database is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loket_tests::postgres::TestDatabase;
use loket_tests::proxy::FaultProxy;
use loket_tests::server::{
    ADMIN_PASSWORD, ADMIN_USER, ServeArgs, ServerProcess, add_instance, enroll_kiosk_at, init_server, init_server_on,
    server_cli, server_cli_ok,
};
use loket_tests::switch::Switch;
use loket_tests::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, nik};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

/// Three kelurahan (two of Medan Kota, one of Medan Sunggal), two kiosks each.
const KELURAHAN: [&str; 3] = ["12.71.01.1001", "12.71.01.1002", "12.71.02.1001"];
const SCORES: &str = r#"{"U1":4,"U2":3,"U3":4,"U4":4,"U5":3,"U6":4,"U7":4,"U8":3,"U9":4}"#;
/// Bound on every wait for an event (a sync, a counter, a process).
const WAIT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ HTTP

/// `GET url` (bearer `token`), which must succeed; its JSON.
async fn get_ok(client: &reqwest::Client, url: &str, token: Option<&str>) -> Value {
    let (status, body) = get(client, url, token).await;
    assert!(status.is_success(), "GET {url}: {status} {body}");
    body
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = client.get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let resp = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(client: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = client.post(url).json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let resp = request.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post_ok(client: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> Value {
    let (status, v) = post(client, url, token, body).await;
    assert!(status.is_success(), "POST {url}: {status} {v}");
    v
}

/// Asks the kiosk to sync until it reports a sync with nothing more to do
/// and nothing pending (bounded by `WAIT`).
async fn settle(client: &reqwest::Client, k: &KioskProcess, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let sync: Value = client.post(k.url("/api/sync")).send().await.expect("kiosk answers").json().await.unwrap();
        let health = get_ok(client, &k.url("/healthz"), None).await;
        if sync["ok"] == true && sync["more"] == false && health["pending_changes"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: kiosk {} did not settle: {sync} {health}", k.base);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn items(list: &Value) -> &Vec<Value> {
    list["items"].as_array().unwrap_or_else(|| panic!("a list with items: {list}"))
}

/// An instance's whole request list (one page: the tests stay far below 1000).
async fn server_list(https: &reqwest::Client, s: &ServerProcess, token: &str, query: &str) -> Vec<Value> {
    let list = get_ok(https, &format!("{}/api/admin/requests?limit=1000{query}", s.base), Some(token)).await;
    assert!(list["next"].is_null(), "more than one page: {list}");
    items(&list).clone()
}

// ------------------------------------------------------------------ kiosks

struct Kiosk {
    proc: KioskProcess,
    kelurahan: &'static str,
    /// A staff session on the kiosk.
    token: String,
}

/// Enrolls a kiosk of `kelurahan` at `url` (code from `sync-server
/// enroll-code --data FROM`), starts it, lets it sync and logs its
/// supervisor in.
async fn start_kiosk(
    client: &reqwest::Client,
    data: &Path,
    from: &ServerProcess,
    url: &str,
    kelurahan: &'static str,
) -> Kiosk {
    let code = from.enroll_code(kelurahan).expect("enroll-code");
    enroll_kiosk_at(data, url, &from.ca_pem(), &code).expect("kiosk enroll");
    let proc = KioskProcess::start(data).expect("kiosk start");
    settle(client, &proc, "after enrollment").await;
    let token = loket_tests::staff_login(client, &proc.base).await.expect("staff login with the server's roster");
    Kiosk { proc, kelurahan, token }
}

/// What kiosks and instances acknowledged (answered 201): every request
/// with the events written on it since its creation and the status they
/// lead to.
#[derive(Default)]
struct Ledger {
    requests: BTreeMap<String, Filed>,
    /// Numbers for NIKs, so every applicant differs.
    filed: u64,
    /// PKK requests taken to an end (or handed off) so far.
    finished: u64,
}

struct Filed {
    service: &'static str,
    /// The kiosk that filed it (and alone works it).
    kiosk: usize,
    status: String,
    /// Event ids, creation excluded.
    events: BTreeSet<String>,
}

impl Ledger {
    async fn file(&mut self, client: &reqwest::Client, kiosks: &[Kiosk], ki: usize) -> String {
        self.filed += 1;
        // PKK is handed off to Disdukcapil; SKD stays at the kelurahan.
        let service = if self.filed.is_multiple_of(2) { "SKD" } else { "PKK" };
        let (id, _) = loket_tests::file_request(client, &kiosks[ki].proc, service, "Warga Uji", &nik(self.filed)).await;
        let filed = Filed { service, kiosk: ki, status: "submitted".into(), events: BTreeSet::new() };
        assert!(self.requests.insert(id.clone(), filed).is_none(), "the kiosk gave out id {id} twice");
        id
    }

    /// A staff event on the kiosk that filed the request.
    async fn step(&mut self, client: &reqwest::Client, kiosks: &[Kiosk], id: &str, body: Value) {
        let k = &kiosks[self.requests[id].kiosk];
        let url = k.proc.url(&format!("/api/staff/requests/{id}/events"));
        let v = post_ok(client, &url, Some(&k.token), body.clone()).await;
        self.acknowledged(id, &v, &body);
    }

    /// A central event through an instance's admin API.
    async fn central(&mut self, https: &reqwest::Client, s: &ServerProcess, admin: &str, id: &str, body: Value) {
        let url = format!("{}/api/admin/requests/{id}/events", s.base);
        let v = post_ok(https, &url, Some(admin), body.clone()).await;
        self.acknowledged(id, &v, &body);
    }

    fn acknowledged(&mut self, id: &str, answer: &Value, body: &Value) {
        let event = answer["event_id"].as_str().unwrap_or_else(|| panic!("event_id in {answer}")).to_owned();
        let filed = self.requests.get_mut(id).expect("a request of the ledger");
        assert!(filed.events.insert(event.clone()), "event id {event} acknowledged twice");
        filed.status = body["to"].as_str().expect("to").to_owned();
        assert_eq!(answer["status"], filed.status, "the answer's status after {body}");
    }

    /// One round of a kiosk's work: each of its open requests moves one
    /// step (taken; then completed, or for about half of the PKK ones
    /// handed off to Disdukcapil, which the kiosk then leaves alone), and
    /// two new ones.
    async fn work(&mut self, client: &reqwest::Client, kiosks: &[Kiosk], ki: usize) {
        let open: Vec<(String, String, &str)> = self
            .requests
            .iter()
            .filter(|(_, f)| f.kiosk == ki && matches!(f.status.as_str(), "submitted" | "in_progress"))
            .map(|(id, f)| (id.clone(), f.status.clone(), f.service))
            .collect();
        for (id, status, service) in open {
            let body = if status == "submitted" {
                json!({ "to": "in_progress" })
            } else {
                self.finished += u64::from(service == "PKK");
                if service == "PKK" && !self.finished.is_multiple_of(2) {
                    json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })
                } else {
                    json!({ "to": "completed", "note": "selesai" })
                }
            };
            self.step(client, kiosks, &id, body).await;
        }
        for _ in 0..2 {
            self.file(client, kiosks, ki).await;
        }
    }
}

// ------------------------------------------------------------------ instances

/// `init --database URL` in DIR/a and `add-instance` into DIR/b.
fn make_pair(dir: &Path, url: &str) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("a"), dir.join("b"));
    init_server_on(&a, url).expect("sync-server init --database");
    add_instance(&a, &b, &["loket-b.test"]).expect("sync-server add-instance");
    (a, b)
}

/// Two instances on one database and six kiosks, each behind a switch of
/// its own, with the ledger of what was acknowledged.
struct Province {
    /// A and B; `None` while killed.
    servers: [Option<ServerProcess>; 2],
    addrs: [SocketAddr; 2],
    kiosks: Vec<Kiosk>,
    switches: Vec<Switch>,
    client: reqwest::Client,
    https: reqwest::Client,
    admin: String,
    ledger: Ledger,
    /// Tries at holding a push's answer (one per kiosk when no idle sync
    /// of its own got in the way).
    held_attempts: u32,
}

impl Province {
    fn server(&self, i: usize) -> &ServerProcess {
        self.servers[i].as_ref().expect("the instance runs")
    }

    /// Points kiosk `ki` at the other instance (its open connections are cut).
    fn flip(&self, ki: usize) {
        let to = if self.switches[ki].upstream() == self.addrs[0] { self.addrs[1] } else { self.addrs[0] };
        self.switches[ki].route_to(to);
    }

    /// A round: each kiosk switches instance, works and syncs.
    async fn round(&mut self, what: &str) {
        for ki in 0..self.kiosks.len() {
            self.flip(ki);
            self.ledger.work(&self.client, &self.kiosks, ki).await;
            settle(&self.client, &self.kiosks[ki].proc, what).await;
        }
    }

    /// Waits until kiosk `ki`'s switch holds an answer, then tells whether
    /// it is the answer to the push of `id`: the request is on instance
    /// `survivor` (so it is committed) while the kiosk still counts changes
    /// as pending (so it has not heard). `false`: an exchange of the
    /// kiosk's own that began before `id` was filed is held instead, and
    /// the push waits behind it.
    async fn push_is_held(&self, ki: usize, survivor: usize, id: &str) -> bool {
        let switch = &self.switches[ki];
        switch.wait_for_stats(WAIT, |s| s.held_bytes > 0).await.expect("an answer held");
        let url = format!("{}/api/admin/requests/{id}", self.server(survivor).base);
        let (committed, _) = get(&self.https, &url, Some(&self.admin)).await;
        let health = get_ok(&self.client, &self.kiosks[ki].proc.url("/healthz"), None).await;
        committed == StatusCode::OK && health["pending_changes"].as_u64().unwrap_or(0) > 0
    }

    /// SIGKILLs instance `victim` while exchanges are in flight through
    /// it, and starts it again on its address. Kiosks 0, 2 and 4 push a
    /// new request to it and it commits them, but their answers are held,
    /// so they die with it: the other instance shows the requests while
    /// the kiosks still count them pending. Kiosks 1, 3 and 5 file and
    /// sync through it as it dies. Meanwhile the other instance serves.
    async fn kill_mid_exchange(&mut self, victim: usize) {
        let survivor = 1 - victim;
        let target = self.addrs[victim];
        let held = [0, 2, 4];
        for ki in held {
            let mut attempts = 0;
            loop {
                attempts += 1;
                self.held_attempts += 1;
                self.switches[ki].route_to(target);
                settle(&self.client, &self.kiosks[ki].proc, "before the held push").await;
                self.switches[ki].hold_answers(true);
                // The kiosk pushes 50 ms after a write: the hold is on long before.
                let id = self.ledger.file(&self.client, &self.kiosks, ki).await;
                if self.push_is_held(ki, survivor, &id).await {
                    break;
                }
                assert!(attempts < 5, "kiosk {ki}: the push of {id} was never the held exchange");
                self.switches[ki].hold_answers(false);
            }
        }
        let mut in_flight = tokio::task::JoinSet::new();
        let mut sent = BTreeMap::new();
        for ki in [1, 3, 5] {
            self.switches[ki].route_to(target);
            sent.insert(ki, self.switches[ki].stats().bytes_to_upstream);
            self.ledger.file(&self.client, &self.kiosks, ki).await;
            let (client, url) = (self.client.clone(), self.kiosks[ki].proc.url("/api/sync"));
            in_flight.spawn(async move { client.post(url).send().await.ok() });
        }
        for (ki, before) in sent {
            self.switches[ki].wait_for_stats(WAIT, |s| s.bytes_to_upstream > before).await.expect("a sync on the wire");
        }
        // Answers each held kiosk lost before (an earlier kill): the wait
        // below is for this kill's, not a count an earlier round reached.
        let lost_before: Vec<u64> = held.iter().map(|&ki| self.switches[ki].stats().answers_lost).collect();
        let mut dead = self.servers[victim].take().expect("the victim runs");
        let (data, serve) = (dead.data.clone(), dead.serve_args().clone());
        dead.kill();
        while in_flight.join_next().await.is_some() {}
        for (ki, before) in held.into_iter().zip(lost_before) {
            let switch = &self.switches[ki];
            switch
                .wait_for_stats(WAIT, |s| s.answers_lost > before)
                .await
                .expect("the held answer died with the instance");
            switch.hold_answers(false);
            let health = get_ok(&self.client, &self.kiosks[ki].proc.url("/healthz"), None).await;
            assert!(health["pending_changes"].as_u64().unwrap() > 0, "kiosk {ki} never heard its push went through");
        }
        // The survivor serves alone.
        self.switches[1].route_to(self.addrs[survivor]);
        settle(&self.client, &self.kiosks[1].proc, "with one instance down").await;
        self.servers[victim] =
            Some(ServerProcess::restart_on_with(&data, target, &serve).expect("restart on the address"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_database_kiosks_alternating_and_kills_mid_exchange() {
    let started = Instant::now();
    let database = TestDatabase::create("two_instances");
    let dir = TestDir::new("instances");
    let (dir_a, dir_b) = make_pair(dir.path(), database.url());
    let a = ServerProcess::start(&dir_a).expect("instance A");
    let b = ServerProcess::start(&dir_b).expect("instance B");
    let addrs = [a.addr(), b.addr()];
    let https = a.client();
    let admin = a.admin_token(&https).await.expect("admin login on A");
    for kel in KELURAHAN {
        b.put_staff(&https, &admin, kel, STAFF_ID, STAFF_PASSWORD).await.expect("roster through B");
    }
    let client = http_client();

    // Six kiosks, each behind its own switch; they enroll alternately
    // through A and B with codes from A's command line.
    let mut kiosks = Vec::new();
    let mut switches = Vec::new();
    for i in 0..6 {
        let switch = Switch::start(addrs[i % 2]).expect("switch");
        let url = format!("https://{}", switch.addr());
        kiosks.push(start_kiosk(&client, &dir.path().join(format!("kiosk{i}")), &a, &url, KELURAHAN[i / 2]).await);
        switches.push(switch);
    }
    let mut p = Province {
        servers: [Some(a), Some(b)],
        addrs,
        kiosks,
        switches,
        client,
        https,
        admin,
        ledger: Ledger::default(),
        held_attempts: 0,
    };
    println!("instances: 2 instances and 6 kiosks up after {:?}", started.elapsed());

    // Work, switching instance between rounds; kill each instance once
    // mid-exchange; central events on both (A's with the session made
    // before it was killed).
    p.round("round 1").await;
    p.round("round 2").await;
    p.kill_mid_exchange(0).await;
    p.round("after A's kill").await;
    p.kill_mid_exchange(1).await;
    p.round("after B's kill").await;
    let handed: Vec<String> =
        p.ledger.requests.iter().filter(|(_, f)| f.status == "handed_off").map(|(id, _)| id.clone()).collect();
    assert!(handed.len() >= 2, "the work hands some requests off: {handed:?}");
    let (https, admin) = (p.https.clone(), p.admin.clone());
    let (a, b) = (p.servers[0].take().unwrap(), p.servers[1].take().unwrap());
    p.ledger.central(&https, &b, &admin, &handed[0], json!({ "to": "completed", "note": "KTP-el dicetak (B)" })).await;
    p.ledger.central(&https, &a, &admin, &handed[1], json!({ "to": "rejected", "note": "berkas kurang (A)" })).await;
    for pass in 0..2 {
        for ki in 0..p.kiosks.len() {
            p.flip(ki);
            settle(&p.client, &p.kiosks[ki].proc, &format!("final pass {pass}")).await;
        }
    }
    println!("instances: settled after {:?}", started.elapsed());

    // Both instances: every acknowledged request once, every acknowledged
    // event once, the status the events lead to, and the same answer.
    let acked: BTreeSet<&str> = p.ledger.requests.keys().map(String::as_str).collect();
    for (name, s) in [("A", &a), ("B", &b)] {
        let list = server_list(&https, s, &admin, "").await;
        let ids: Vec<&str> = list.iter().map(|i| i["id"].as_str().expect("id")).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "instance {name} lists a request twice: {ids:?}");
        let missing: Vec<_> = acked.difference(&unique).collect();
        let unknown: Vec<_> = unique.difference(&acked).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "instance {name}: acknowledged but missing {missing:?}; listed but never acknowledged {unknown:?}"
        );
    }
    for (id, filed) in &p.ledger.requests {
        let on_a = get_ok(&https, &format!("{}/api/admin/requests/{id}", a.base), Some(&admin)).await;
        let on_b = get_ok(&https, &format!("{}/api/admin/requests/{id}", b.base), Some(&admin)).await;
        assert_eq!(on_a, on_b, "request {id}: A and B answer differently");
        let events = on_a["events"].as_array().expect("events");
        let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().expect("event id")).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "request {id}: an event twice: {ids:?}");
        let created: Vec<&Value> = events.iter().filter(|e| e["kind"] == "create").collect();
        assert_eq!(created.len(), 1, "request {id}: one creation: {events:?}");
        let written: BTreeSet<String> =
            unique.iter().filter(|e| created[0]["id"] != **e).map(|e| (*e).to_owned()).collect();
        let missing: Vec<_> = filed.events.difference(&written).collect();
        let unknown: Vec<_> = written.difference(&filed.events).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "request {id}: acknowledged events missing {missing:?}; events never acknowledged {unknown:?}"
        );
        assert_eq!(on_a["status"], filed.status, "request {id}: status");
        assert_eq!(on_a["conflict"], false, "request {id}: a conflict, though each kiosk works its own");
    }

    // Every kiosk holds what the server holds for its kelurahan, head for head.
    for k in &p.kiosks {
        assert_converged(&p.client, &https, &b, &admin, k).await;
    }
    let lost: u64 = p.switches.iter().map(|s| s.stats().answers_lost).sum();
    println!(
        "instances: {} requests and {} events acknowledged, each once on A and B; {lost} answers lost with the \
         killed instances ({} tries to hold 6 pushes); {:?}",
        p.ledger.requests.len(),
        p.ledger.requests.values().map(|f| f.events.len()).sum::<usize>(),
        p.held_attempts,
        started.elapsed()
    );
}

// ------------------------------------------------------------------ shared state

/// `POST /api/enroll` as a kiosk sends it.
async fn enroll(https: &reqwest::Client, s: &ServerProcess, code: &str, actor: &str) -> (StatusCode, Value) {
    post(https, &format!("{}/api/enroll", s.base), None, json!({ "code": code, "actor": actor, "version": "test" }))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_sessions_revocations_and_enrollment_codes() {
    let database = TestDatabase::create("shared_state");
    let dir = TestDir::new("instances-shared");
    let (dir_a, dir_b) = make_pair(dir.path(), database.url());
    // B is told its database on the command line, not by its directory.
    std::fs::remove_file(dir_b.join("database.url")).expect("remove B's database.url");
    let a = ServerProcess::start(&dir_a).expect("instance A");
    let b = ServerProcess::start_with(&dir_b, &ServeArgs { database: Some(database.url().to_owned()) })
        .expect("instance B with --database");
    let https = a.client();
    let client = http_client();

    // A session made on A works on B; a logout on B ends it on A too.
    let token = a.admin_token(&https).await.expect("login on A");
    let (status, body) = get(&https, &format!("{}/api/admin/kiosks", b.base), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "A's session on B: {body}");
    let out = https.post(format!("{}/api/logout", b.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT, "logout on B");
    let (status, body) = get(&https, &format!("{}/api/admin/kiosks", a.base), Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session ended on B still opens A: {body}");
    let admin = b.admin_token(&https).await.expect("login on B");

    // An enrollment code used on A is refused by B.
    let code = a.enroll_code(KELURAHAN[0]).expect("enroll-code on A");
    let (status, enrolled) = enroll(&https, &a, &code, &"a1".repeat(16)).await;
    assert_eq!(status, StatusCode::CREATED, "enrollment on A: {enrolled}");
    let (status, refused) = enroll(&https, &b, &code, &"b2".repeat(16)).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("enrollment_code_used")),
        "the code used on A, again on B: {refused}"
    );
    let kiosk_token = enrolled["token"].as_str().expect("kiosk token");
    let whoami = format!("{}/api/kiosk/whoami", b.base);
    let (status, me) = get(&https, &whoami, Some(kiosk_token)).await;
    assert_eq!(status, StatusCode::OK, "B knows the kiosk enrolled on A: {me}");
    assert_eq!(me["code"], enrolled["kiosk_code"]);

    // Revoked through A's admin API: refused by B at its next request.
    let id = enrolled["kiosk_id"].as_str().expect("kiosk_id");
    post_ok(&https, &format!("{}/api/admin/kiosks/{id}/revoke", a.base), Some(&admin), json!({})).await;
    let (status, refused) = get(&https, &whoami, Some(kiosk_token)).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("kiosk_revoked")),
        "B after A's admin API revoked the kiosk: {refused}"
    );

    // A real kiosk syncing with B, revoked with A's command line: its next sync is refused.
    b.put_staff(&https, &admin, KELURAHAN[0], STAFF_ID, STAFF_PASSWORD).await.expect("roster");
    let kiosk = start_kiosk(&client, &dir.path().join("kiosk"), &a, &b.base, KELURAHAN[0]).await;
    let health = get_ok(&client, &kiosk.proc.url("/healthz"), None).await;
    let kiosk_code = health["kiosk"].as_str().expect("kiosk code");
    let revoked = server_cli_ok(&["revoke", "--data", path_str(&dir_a), "--kiosk", kiosk_code]).expect("revoke on A");
    assert!(revoked.contains("revoked"), "{revoked}");
    let sync = post_ok(&client, &kiosk.proc.url("/api/sync"), None, json!({})).await;
    assert_eq!(
        (&sync["ok"], &sync["error"]),
        (&json!(false), &json!("kiosk_revoked")),
        "the kiosk's sync with B: {sync}"
    );

    // A second `init` on the same database is refused and changes nothing.
    let dir_c = dir.path().join("c");
    let password = dir.path().join("c.adminpw");
    std::fs::write(&password, "sandi-baru-yang-panjang\n").unwrap();
    let out = server_cli(&[
        "init",
        "--data",
        path_str(&dir_c),
        "--database",
        database.url(),
        "--admin-user",
        "admin2",
        "--admin-password-file",
        path_str(&password),
    ])
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second init on the database succeeded: {stderr}");
    assert!(stderr.contains("already initialised"), "why the second init was refused: {stderr}");
    assert!(!dir_c.join("tls").exists() && !dir_c.join("database.url").exists(), "the refused init left files");
    let users = get_ok(&https, &format!("{}/api/admin/users", a.base), Some(&admin)).await;
    let names: Vec<&str> = items(&users).iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, [ADMIN_USER], "the refused init added a user");
    a.admin_token(&https).await.expect("the first admin's password still works on A");

    // Failed logins count in the database: five on A lock the pair out on B too.
    let login = |s: &ServerProcess, password: &str| {
        let body = json!({ "username": ADMIN_USER, "password": password });
        let (https, url) = (https.clone(), format!("{}/api/login", s.base));
        async move { post(&https, &url, None, body).await }
    };
    for attempt in 0..5 {
        let (status, body) = login(&a, "sandi-yang-salah").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong password {attempt} on A: {body}");
    }
    let (status, body) = login(&b, ADMIN_PASSWORD).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("too_many_attempts")),
        "the right password on B after five failures on A: {body}"
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

// ------------------------------------------------------------------ migrate-store

/// A browser of the central web app: trusts the server's CA, follows no redirect.
fn web_client(s: &ServerProcess) -> reqwest::Client {
    let ca = std::fs::read(s.ca_pem()).expect("ca.pem");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("web client")
}

/// `name=value` of the `Set-Cookie` for `name`.
fn cookie(resp: &reqwest::Response, name: &str) -> String {
    let set = resp.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find(|c| c.starts_with(name));
    set.unwrap_or_else(|| panic!("a {name} cookie")).split(';').next().unwrap().trim().to_owned()
}

fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let at = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[at..at + html[at..].find('"').expect("end of the token")].to_owned()
}

/// Logs the admin in through the web form; the browser's cookies.
async fn web_login(web: &reqwest::Client, base: &str) -> String {
    let page = web.get(format!("{base}/masuk")).send().await.expect("login page");
    let csrf = cookie(&page, "__Host-loket_csrf=");
    let token = csrf_of(&page.text().await.unwrap());
    let resp = web
        .post(format!("{base}/masuk"))
        .header(COOKIE, &csrf)
        .form(&[("csrf", token.as_str()), ("username", ADMIN_USER), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "web login");
    format!("{csrf}; {}", cookie(&resp, "__Host-loket_session="))
}

/// What the move must leave as it was, by path: the admin API's answers
/// (every request's detail with its heads, the list, IKM, audit, users,
/// catalog) and the central pages (overview and IKM for `year`, the
/// request list, every request's page), all as the same admin session
/// and the same browser cookies see them.
async fn central_view(
    https: &reqwest::Client,
    web: &reqwest::Client,
    s: &ServerProcess,
    admin: &str,
    cookies: &str,
    ids: &[String],
    year: &str,
) -> BTreeMap<String, String> {
    let mut view = BTreeMap::new();
    let mut api: Vec<String> = [
        "/api/admin/requests?limit=1000",
        "/api/admin/ikm?group_by=kelurahan",
        "/api/admin/ikm?group_by=service",
        "/api/admin/audit",
        "/api/admin/users",
        "/api/admin/catalog",
    ]
    .map(String::from)
    .into();
    api.extend(ids.iter().map(|id| format!("/api/admin/requests/{id}")));
    for path in api {
        let v = get_ok(https, &format!("{}{path}", s.base), Some(admin)).await;
        view.insert(path, serde_json::to_string_pretty(&v).unwrap());
    }
    let mut pages = vec![format!("/admin/ringkasan?periode={year}"), format!("/admin/ikm?periode={year}")];
    pages.push("/admin/permohonan".into());
    pages.extend(ids.iter().map(|id| format!("/admin/permohonan/{id}")));
    for path in pages {
        let resp = web.get(format!("{}{path}", s.base)).header(COOKIE, cookies).send().await.expect("page");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        view.insert(path, resp.text().await.unwrap());
    }
    view
}

/// Where two texts first differ, with some context on each side.
fn first_difference(before: &str, after: &str) -> String {
    let (b, a): (Vec<char>, Vec<char>) = (before.chars().collect(), after.chars().collect());
    let at = b.iter().zip(&a).position(|(x, y)| x != y).unwrap_or(b.len().min(a.len()));
    let around = |s: &[char]| s[at.saturating_sub(100)..(at + 100).min(s.len())].iter().collect::<String>();
    format!("at character {at}:\n  before: …{}…\n  after:  …{}…", around(&b), around(&a))
}

async fn staff(client: &reqwest::Client, k: &Kiosk, id: &str, body: Value) {
    post_ok(client, &k.proc.url(&format!("/api/staff/requests/{id}/events")), Some(&k.token), body).await;
}

/// Files a request on the kiosk: its id and the receipt's rating code.
async fn file(client: &reqwest::Client, k: &Kiosk, service: &str, n: u64) -> (String, String) {
    let (id, _, code) = loket_tests::file_request_with_code(client, &k.proc, service, "Warga Uji", &nik(n)).await;
    (id, code)
}

async fn rate(client: &reqwest::Client, k: &Kiosk, id: &str, code: &str) {
    let scores: Value = serde_json::from_str(SCORES).unwrap();
    let url = k.proc.url(&format!("/api/requests/{id}/rating"));
    post_ok(client, &url, None, json!({ "scores": scores, "token": code })).await;
}

/// The kiosk's list is the server's for its kelurahan (ids, tickets,
/// statuses, conflict flags), and every document has the server's heads.
async fn assert_converged(
    client: &reqwest::Client,
    https: &reqwest::Client,
    s: &ServerProcess,
    admin: &str,
    k: &Kiosk,
) {
    let row = |i: &Value| {
        let id = i["id"].as_str().expect("id").to_owned();
        (id, [i["ticket"].clone(), i["status"].clone(), i["conflict"].clone()])
    };
    let query = format!("&kelurahan={}", k.kelurahan);
    let on_server: BTreeMap<_, _> = server_list(https, s, admin, &query).await.iter().map(row).collect();
    let queue = get_ok(client, &k.proc.url("/api/staff/requests?status=all&limit=1000"), Some(&k.token)).await;
    let on_kiosk: BTreeMap<_, _> = items(&queue).iter().map(row).collect();
    assert_eq!(on_kiosk, on_server, "kiosk {} ({}): its list (left) vs the server's", k.proc.base, k.kelurahan);
    for id in on_kiosk.keys() {
        let kd = get_ok(client, &k.proc.url(&format!("/api/staff/requests/{id}")), Some(&k.token)).await;
        let sd = get_ok(https, &format!("{}/api/admin/requests/{id}", s.base), Some(admin)).await;
        assert_eq!(kd["heads"], sd["heads"], "kiosk {}: heads of {id} vs the server's", k.proc.base);
    }
    let health = get_ok(client, &k.proc.url("/healthz"), None).await;
    assert_eq!(health["quarantined"], json!([]), "kiosk {}: the server refused something", k.proc.base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_moves_an_sqlite_server_to_postgresql_unchanged() {
    let started = Instant::now();
    let dir = TestDir::new("migrate-store");
    let data = dir.path().join("server");
    init_server(&data).expect("init (SQLite)");
    let mut server = ServerProcess::start(&data).expect("server");
    let addr = server.addr();
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin login");
    for kel in &KELURAHAN[..2] {
        server.put_staff(&https, &admin, kel, STAFF_ID, STAFF_PASSWORD).await.expect("roster");
    }
    let client = http_client();
    // Kiosks 0 and 1 of one kelurahan, 2 of another, each behind a fault proxy.
    let mut proxies = Vec::new();
    let mut kiosks = Vec::new();
    for (i, kel) in [KELURAHAN[0], KELURAHAN[0], KELURAHAN[1]].into_iter().enumerate() {
        let proxy = FaultProxy::start(addr).expect("proxy");
        let url = format!("https://{}", proxy.addr());
        kiosks.push(start_kiosk(&client, &dir.path().join(format!("kiosk{i}")), &server, &url, kel).await);
        proxies.push(proxy);
    }

    // Requests taken, completed and rated, handed off, left waiting.
    let (r_rated, r_code) = file(&client, &kiosks[0], "SKD", 101).await;
    let (r_handed, _) = file(&client, &kiosks[0], "PKK", 102).await;
    let (r_conflict, _) = file(&client, &kiosks[0], "SKD", 103).await;
    file(&client, &kiosks[0], "SKU", 104).await;
    let (s_rated, s_code) = file(&client, &kiosks[2], "SKD", 201).await;
    let (s_handed, _) = file(&client, &kiosks[2], "PKK", 202).await;
    let (s_taken, _) = file(&client, &kiosks[2], "SKD", 203).await;
    for (ki, id) in [(0, &r_rated), (0, &r_handed), (0, &r_conflict), (2, &s_rated), (2, &s_handed), (2, &s_taken)] {
        staff(&client, &kiosks[ki], id, json!({ "to": "in_progress" })).await;
    }
    for (ki, id, code) in [(0, &r_rated, &r_code), (2, &s_rated, &s_code)] {
        staff(&client, &kiosks[ki], id, json!({ "to": "completed", "note": "selesai" })).await;
        rate(&client, &kiosks[ki], id, code).await;
    }
    for (ki, id) in [(0, &r_handed), (2, &s_handed)] {
        staff(&client, &kiosks[ki], id, json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })).await;
    }
    for ki in [0, 2, 1] {
        settle(&client, &kiosks[ki].proc, "after the work").await;
    }

    // A conflict: kiosks 0 and 1, cut off from the server, end the same
    // request differently; then both sync.
    for p in &proxies[..2] {
        p.handle().partition(true);
    }
    staff(&client, &kiosks[0], &r_conflict, json!({ "to": "completed", "note": "selesai di loket 1" })).await;
    staff(&client, &kiosks[1], &r_conflict, json!({ "to": "rejected", "note": "berkas tidak sah" })).await;
    for p in &proxies[..2] {
        p.handle().partition(false);
    }
    for ki in [0, 1, 0] {
        settle(&client, &kiosks[ki].proc, "after the partition").await;
    }
    let d = get_ok(&https, &format!("{}/api/admin/requests/{r_conflict}", server.base), Some(&admin)).await;
    assert_eq!(d["conflict"], true, "two kiosks ended {r_conflict} differently: {d}");

    // Central events, personal data seen (audited), an account disabled
    // and enabled again from the command line (audited).
    let events = |id: &str| format!("{}/api/admin/requests/{id}/events", server.base);
    post_ok(&https, &events(&r_handed), Some(&admin), json!({ "to": "completed", "note": "KK dicetak" })).await;
    post_ok(&https, &events(&s_handed), Some(&admin), json!({ "to": "rejected", "note": "data tidak cocok" })).await;
    for id in [&r_rated, &s_rated] {
        let url = format!("{}/api/admin/requests/{id}/personal?reason=verifikasi%20pengaduan%20warga", server.base);
        get_ok(&https, &url, Some(&admin)).await;
    }
    let password = dir.path().join("rina.pw");
    std::fs::write(&password, "sandi-rina-panjang-1\n").unwrap();
    let server_dir = path_str(&data);
    #[rustfmt::skip]
    let commands: [&[&str]; 3] = [
        &["add-user", "--data", server_dir, "--username", "rina", "--role", "supervisor",
          "--password-file", path_str(&password), "--kelurahan", KELURAHAN[0]],
        &["disable-user", "--data", server_dir, "--username", "rina", "--reason", "pindah tugas"],
        &["enable-user", "--data", server_dir, "--username", "rina", "--reason", "kembali bertugas"],
    ];
    for args in commands {
        server_cli_ok(args).expect("a user command");
    }
    for _ in 0..2 {
        for k in &kiosks {
            settle(&client, &k.proc, "before the move").await;
        }
    }

    // What the central side shows before the move.
    let list = server_list(&https, &server, &admin, "").await;
    let ids: Vec<String> = list.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 7);
    let year = list[0]["created_at"].as_str().expect("created_at")[..4].to_owned();
    let web = web_client(&server);
    let cookies = web_login(&web, &server.base).await;
    let before = central_view(&https, &web, &server, &admin, &cookies, &ids, &year).await;
    // Not an empty picture: the figures are there to compare.
    let overview = &before[&format!("/admin/ringkasan?periode={year}")];
    for figure in [r#"id="c-filed">7<"#, r#"id="c-conflicts">1<"#] {
        assert!(overview.contains(figure), "the overview shows {figure}: {overview}");
    }
    let ikm: Value = serde_json::from_str(&before["/api/admin/ikm?group_by=kelurahan"]).unwrap();
    let rated: BTreeMap<&str, &Value> = ikm["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), &g["respondents"]))
        .collect();
    assert_eq!(rated.get(KELURAHAN[0]), Some(&&json!(1)), "IKM by kelurahan: {ikm}");
    assert_eq!(rated.get(KELURAHAN[1]), Some(&&json!(1)), "IKM by kelurahan: {ikm}");
    assert!(before[&format!("/admin/ikm?periode={year}")].contains("Pasar Baru"), "the IKM page lists the kelurahan");
    let audit = &before["/api/admin/audit"];
    for action in ["view_personal", "disable_user", "enable_user"] {
        assert!(audit.contains(action), "the audit log has {action}: {audit}");
    }
    server.terminate().expect("the server stops on SIGTERM");

    // Into a database that holds a store already: refused, nothing changed.
    let occupied = TestDatabase::create("occupied");
    init_server_on(&dir.path().join("other"), occupied.url()).expect("another server's store");
    let out = server_cli(&["migrate-store", "--data", server_dir, "--to", occupied.url()]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "migrate-store into an occupied database succeeded: {stderr}");
    assert!(stderr.contains("already holds a store"), "why it was refused: {stderr}");
    assert!(!data.join("database.url").exists(), "the refused move pointed the server at the database");

    // The move; the SQLite file then goes aside, so the server can only
    // be using PostgreSQL.
    let target = TestDatabase::create("migrated");
    let moved = server_cli_ok(&["migrate-store", "--data", server_dir, "--to", target.url()]).expect("migrate-store");
    assert!(moved.contains("now uses PostgreSQL"), "{moved}");
    let named = std::fs::read_to_string(data.join("database.url")).expect("database.url");
    assert_eq!(named.trim(), target.url());
    std::fs::rename(data.join("server.db"), data.join("server.db.before-move")).unwrap();
    let server = ServerProcess::restart_on(&data, addr).expect("the server on PostgreSQL");
    let (status, body) = get(&https, &format!("{}/api/admin/kiosks", server.base), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "a session made before the move, after it: {body}");
    let after = central_view(&https, &web, &server, &admin, &cookies, &ids, &year).await;

    // The same, answer for answer and page for page (nothing stripped:
    // the same session and browser cookies, and the seal key moved too, so
    // even the pages' CSRF tokens are the same).
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    let differences: Vec<String> = before
        .iter()
        .filter(|(path, text)| after[*path] != **text)
        .map(|(path, text)| format!("{path} {}", first_difference(text, &after[path])))
        .collect();
    assert!(differences.is_empty(), "the move changed what the central side shows:\n{}", differences.join("\n"));

    // The kiosks carry on with the moved server.
    let (t, _) = file(&client, &kiosks[2], "SKD", 301).await;
    staff(&client, &kiosks[2], &t, json!({ "to": "in_progress" })).await;
    for k in &kiosks {
        settle(&client, &k.proc, "after the move").await;
    }
    for k in &kiosks {
        assert_converged(&client, &https, &server, &admin, k).await;
    }
    println!("migrate-store: {} pages and answers the same after the move; {:?}", before.len(), started.elapsed());
}

/// Issue 18, item 5: with its PostgreSQL database gone, a server is alive
/// (`/livez` answers at once) but not ready (`/readyz`: 503 `not_ready`,
/// so a load balancer sends kiosks elsewhere), and ready again once the
/// database is back, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_database_is_gone_is_alive_but_not_ready() {
    let db = TestDatabase::create("readyz");
    let dir = TestDir::new("readyz");
    let data = dir.path().join("a");
    init_server_on(&data, db.url()).expect("sync-server init --database");
    let server = ServerProcess::start(&data).expect("server start");
    let https = server.client();
    let status = |path: &'static str| {
        let (https, base) = (https.clone(), server.base.clone());
        async move { https.get(format!("{base}{path}")).send().await.expect(path).status() }
    };
    assert_eq!(status("/readyz").await, StatusCode::OK);

    db.set_accepting(false).expect("closing the database");
    let started = Instant::now();
    assert_eq!(status("/livez").await, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2), "liveness waited {:?}", started.elapsed());
    let (code, body) = get(&https, &format!("{}/readyz", server.base), None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "not_ready", "{body}");

    db.set_accepting(true).expect("opening the database again");
    let deadline = Instant::now() + WAIT;
    while status("/readyz").await != StatusCode::OK {
        assert!(Instant::now() < deadline, "still not ready a minute after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
