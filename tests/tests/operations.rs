//! What an operator relies on (issue 18): backup and restore, the version
//! the binaries report, and the systemd units that run them.
//!
//! The restore drill (item 1), with real processes: a server and
//! two kiosks of one kelurahan on loopback, real TLS, real SQLite files.
//!
//! The kiosks file, work and rate requests, an agency acts centrally, and
//! `sync-server backup` runs while a kiosk keeps filing and syncing. After
//! the backup more work is acknowledged, and a kiosk pulls a central event.
//! Then the server is killed (SIGKILL) and `sync-server restore` puts the
//! backup into a new directory, served on the same address. The kiosks,
//! which never stopped, sync: every request any kiosk acknowledged, every
//! rating and the central event a kiosk pulled after the backup are on
//! the server again, each exactly once, with the same heads as on the
//! kiosks.

use std::collections::{BTreeMap, BTreeSet};

use loket_tests::postgres::TestDatabase;
use loket_tests::server::{ServerProcess, enroll_kiosk, init_server, server_cli, server_cli_ok};
use loket_tests::{
    KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, complete_request, file_request_with_code, http_client,
    kiosk_cli_ok, nik, repeated_actor_seqs, staff_login, wait_synced,
};
use serde_json::{Value, json};

const KEL: &str = "12.71.01.1001";

async fn get(client: &reqwest::Client, url: String, token: &str) -> Value {
    let resp = client.get(&url).bearer_auth(token).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
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

/// A server with one kelurahan's roster and two of its kiosks enrolled,
/// running and synced once.
struct Office {
    dir: TestDir,
    server_dir: std::path::PathBuf,
    server: ServerProcess,
    https: reqwest::Client,
    admin: String,
    client: reqwest::Client,
    kiosks: Vec<KioskProcess>,
}

async fn office(name: &str) -> Office {
    let dir = TestDir::new(name);
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let server = ServerProcess::start(&server_dir).expect("server start");
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin login");
    server.put_staff(&https, &admin, KEL, STAFF_ID, STAFF_PASSWORD).await.expect("roster");
    let client = http_client();
    let mut kiosks = Vec::new();
    for i in 0..2 {
        let data = dir.path().join(format!("kiosk{i}"));
        enroll_kiosk(&data, &server, &server.enroll_code(KEL).expect("code")).expect("enroll");
        let k = KioskProcess::start(&data).expect("kiosk start");
        wait_synced(&client, &k).await;
        kiosks.push(k);
    }
    Office { dir, server_dir, server, https, admin, client, kiosks }
}

/// Files a request, completes it and rates it; its id.
async fn rated_request(client: &reqwest::Client, k: &KioskProcess, n: u64) -> String {
    let (id, _, code) = file_request_with_code(client, k, "SKD", "Warga Dinilai", &nik(n)).await;
    complete_request(client, &k.base, &id).await.expect("complete");
    let scores = json!({"U1":4,"U2":3,"U3":4,"U4":4,"U5":3,"U6":4,"U7":4,"U8":3,"U9":4});
    post(client, k.url(&format!("/api/requests/{id}/rating")), None, json!({ "scores": scores, "token": code })).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restored_from_an_earlier_backup_gets_back_everything_the_kiosks_were_told_it_had() {
    let Office { dir, server_dir, mut server, https, admin, client, kiosks } = office("restore-drill").await;
    let addr = server.addr();

    // Before the backup: filed, rated, and one handed to an agency.
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut rated: BTreeSet<String> = BTreeSet::new();
    for n in 0..3 {
        let (id, _, _) = file_request_with_code(&client, &kiosks[0], "SKD", "Warga Sebelum", &nik(n)).await;
        acknowledged.insert(id);
    }
    let id = rated_request(&client, &kiosks[1], 10).await;
    rated.insert(id.clone());
    acknowledged.insert(id);
    let (handed, _, _) = file_request_with_code(&client, &kiosks[0], "PKTP", "Warga Agensi", &nik(20)).await;
    let token = staff_login(&client, &kiosks[0].base).await.expect("staff login");
    for body in [json!({ "to": "in_progress" }), json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })] {
        post(&client, kiosks[0].url(&format!("/api/staff/requests/{handed}/events")), Some(&token), body).await;
    }
    acknowledged.insert(handed.clone());
    for k in &kiosks {
        wait_synced(&client, k).await;
    }

    // The backup, while kiosk 1 keeps filing and syncing.
    let backup = dir.path().join("server-backup.tar.zst");
    let backing_up = {
        let (data, out) = (server_dir.clone(), backup.clone());
        tokio::task::spawn_blocking(move || {
            server_cli_ok(&["backup", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()])
        })
    };
    for n in 100..110 {
        let (id, _, _) = file_request_with_code(&client, &kiosks[1], "SKD", "Warga Saat Cadangan", &nik(n)).await;
        wait_synced(&client, &kiosks[1]).await;
        acknowledged.insert(id);
    }
    let out = backing_up.await.expect("backup task").expect("backup while serving");
    assert!(out.contains("backup written"), "{out}");

    // After the backup: more acknowledged work, and a central event that
    // kiosk 0 pulls.
    for n in 200..203 {
        let (id, _, _) = file_request_with_code(&client, &kiosks[0], "SKD", "Warga Sesudah", &nik(n)).await;
        acknowledged.insert(id);
    }
    let id = rated_request(&client, &kiosks[0], 210).await;
    rated.insert(id.clone());
    acknowledged.insert(id);
    post(
        &https,
        format!("{}/api/admin/requests/{handed}/events", server.base),
        Some(&admin),
        json!({ "to": "completed", "note": "KTP-el sudah dicetak" }),
    )
    .await;
    for k in &kiosks {
        wait_synced(&client, k).await;
    }
    let on_kiosk = get(&client, kiosks[0].url(&format!("/api/staff/requests/{handed}")), &token).await;
    assert_eq!(on_kiosk["status"], "completed", "kiosk 0 pulled the central completion: {on_kiosk}");

    // The disaster: the server dies and comes back from the backup.
    server.kill();
    let restored_dir = dir.path().join("server-restored");
    let out = server_cli_ok(&["restore", "--from", backup.to_str().unwrap(), "--data", restored_dir.to_str().unwrap()])
        .expect("restore");
    assert!(out.contains("restored into"), "{out}");
    // The restored store lacks what came after the backup. Counted in the
    // file before the server starts: the kiosks' background sync reaches a
    // started server within seconds and would fill the gap first.
    let before_sync: i64 = rusqlite::Connection::open(restored_dir.join("server.db"))
        .expect("the restored store opens")
        .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .expect("count requests");
    assert!((before_sync as usize) < acknowledged.len(), "the backup is older than the last work: {before_sync}");
    server = ServerProcess::restart_on(&restored_dir, addr).expect("the restored server starts");
    let admin = server.admin_token(&https).await.expect("admin login on the restored server");

    for _ in 0..2 {
        for k in &kiosks {
            wait_synced(&client, k).await;
        }
    }

    // Every acknowledged request, exactly once.
    let list = get(&https, format!("{}/api/admin/requests?limit=1000", server.base), &admin).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for item in list["items"].as_array().unwrap() {
        *counts.entry(item["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for id in &acknowledged {
        assert_eq!(counts.get(id), Some(&1), "{id} on the restored server exactly once");
    }
    assert_eq!(counts.len(), acknowledged.len(), "nothing extra: {counts:?}");
    let tok =
        [staff_login(&client, &kiosks[0].base).await.unwrap(), staff_login(&client, &kiosks[1].base).await.unwrap()];
    for id in &acknowledged {
        let on_server = get(&https, format!("{}/api/admin/requests/{id}", server.base), &admin).await;
        for (k, t) in kiosks.iter().zip(&tok) {
            let on_kiosk = get(&client, k.url(&format!("/api/staff/requests/{id}")), t).await;
            assert_eq!(on_kiosk["heads"], on_server["heads"], "heads of {id} on {}", k.base);
        }
        let event_ids: Vec<&str> =
            on_server["events"].as_array().unwrap().iter().filter_map(|e| e["id"].as_str()).collect();
        let unique: BTreeSet<&str> = event_ids.iter().copied().collect();
        assert_eq!(unique.len(), event_ids.len(), "no event twice in {id}");
        if rated.contains(id) {
            assert!(on_server["rating"].is_object(), "the rating of {id} is back: {on_server}");
            assert_eq!(on_server["extra_ratings"], 0, "one rating, once");
        }
    }
    // The central event kiosk 0 pulled after the backup came back with it.
    let d = get(&https, format!("{}/api/admin/requests/{handed}", server.base), &admin).await;
    assert_eq!(d["status"], "completed", "{d}");
    let notes: Vec<&str> = d["events"].as_array().unwrap().iter().filter_map(|e| e["note"].as_str()).collect();
    assert_eq!(notes.iter().filter(|n| **n == "KTP-el sudah dicetak").count(), 1, "{notes:?}");
}

/// The kiosk restore drill (issue 18, item 1): a kiosk's disk dies and
/// yesterday's copy comes back while the network is out too. The restored
/// kiosk works offline at once, on documents its old self changed after
/// the copy as well; then the network returns. It must take a new actor
/// (its old one wrote changes after the copy that only the server holds),
/// get back everything it wrote since the copy, issue no ticket twice, and
/// converge with the server and its partner kiosk, with no (actor, seq)
/// naming two changes anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_restored_from_yesterdays_copy_takes_a_new_actor_and_gets_back_what_it_wrote_since() {
    let Office { dir, server_dir, mut server, https, client, mut kiosks, .. } = office("kiosk-restore-drill").await;
    let addr = server.addr();
    let partner = kiosks.pop().expect("two kiosks");
    let mut kiosk = kiosks.pop().expect("two kiosks");

    // Yesterday: filed, worked, rated, synced; then the copy of the disk,
    // taken while the kiosk serves.
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut tickets: BTreeMap<String, String> = BTreeMap::new();
    for n in 0..3 {
        let (id, ticket, _) = file_request_with_code(&client, &kiosk, "SKD", "Warga Kemarin", &nik(n)).await;
        tickets.insert(id.clone(), ticket);
        acknowledged.insert(id);
    }
    let worked_after_copy = acknowledged.iter().next().cloned().expect("three filed");
    let rated = rated_request(&client, &kiosk, 10).await;
    acknowledged.insert(rated);
    wait_synced(&client, &kiosk).await;
    let copy = dir.path().join("kiosk0-yesterday.tar.zst");
    let out = kiosk_cli_ok(&["backup", "--data", kiosk.data.to_str().unwrap(), "--out", copy.to_str().unwrap()])
        .expect("kiosk backup while serving");
    assert!(out.contains("backup written"), "{out}");

    // Today, after the copy: more filed, and a request of yesterday taken
    // (the old actor's next change to it is one the copy lacks).
    let mut filed_after_copy = Vec::new();
    for n in 100..104 {
        let (id, ticket, _) = file_request_with_code(&client, &kiosk, "SKD", "Warga Hari Ini", &nik(n)).await;
        tickets.insert(id.clone(), ticket);
        acknowledged.insert(id.clone());
        filed_after_copy.push(id);
    }
    let token = staff_login(&client, &kiosk.base).await.expect("staff login");
    let take = json!({ "to": "in_progress" });
    post(&client, kiosk.url(&format!("/api/staff/requests/{worked_after_copy}/events")), Some(&token), take.clone())
        .await;
    wait_synced(&client, &kiosk).await;
    let (id, ticket, _) = file_request_with_code(&client, &partner, "SKD", "Warga Kiosk Lain", &nik(200)).await;
    tickets.insert(id.clone(), ticket);
    acknowledged.insert(id);
    wait_synced(&client, &partner).await;

    // The kiosk's disk dies, and the office's network is out as well.
    kiosk.kill();
    server.kill();
    let restored_dir = dir.path().join("kiosk0-restored");
    let out = kiosk_cli_ok(&["restore", "--from", copy.to_str().unwrap(), "--data", restored_dir.to_str().unwrap()])
        .expect("kiosk restore");
    assert!(out.contains("restored into") && out.contains("actor"), "{out}");
    let restored = KioskProcess::start(&restored_dir).expect("the restored kiosk starts");

    // Offline, the clerk carries on: new requests, and yesterday's request
    // taken again (the copy shows it waiting).
    let mut filed_restored = Vec::new();
    for n in 300..302 {
        let (id, ticket, _) = file_request_with_code(&client, &restored, "SKD", "Warga Pulih", &nik(n)).await;
        let number: u32 = ticket.rsplit('-').next().unwrap().parse().unwrap();
        assert!(number > 500, "a restored kiosk numbers past what its lost disk may have issued: {ticket}");
        tickets.insert(id.clone(), ticket);
        acknowledged.insert(id.clone());
        filed_restored.push(id);
    }
    let token = staff_login(&client, &restored.base).await.expect("staff login on the restored kiosk");
    post(&client, restored.url(&format!("/api/staff/requests/{worked_after_copy}/events")), Some(&token), take).await;

    // The network is back.
    server = ServerProcess::restart_on(&server_dir, addr).expect("server back");
    for _ in 0..2 {
        for k in [&restored, &partner] {
            wait_synced(&client, k).await;
        }
    }

    // Everything any kiosk acknowledged is on the server once; the restored
    // kiosk has back what it wrote after the copy; all agree on the heads.
    let admin = server.admin_token(&https).await.expect("admin login");
    let list = get(&https, format!("{}/api/admin/requests?limit=1000", server.base), &admin).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut on_server_tickets = BTreeSet::new();
    for item in list["items"].as_array().unwrap() {
        *counts.entry(item["id"].as_str().unwrap().to_owned()).or_default() += 1;
        assert!(on_server_tickets.insert(item["ticket"].as_str().unwrap().to_owned()), "a ticket twice: {item}");
    }
    for id in &acknowledged {
        assert_eq!(counts.get(id), Some(&1), "{id} on the server exactly once");
    }
    assert_eq!(counts.len(), acknowledged.len(), "nothing extra: {counts:?}");
    let partner_token = staff_login(&client, &partner.base).await.expect("staff login");
    for id in &acknowledged {
        let on_server = get(&https, format!("{}/api/admin/requests/{id}", server.base), &admin).await;
        if let Some(ticket) = tickets.get(id) {
            assert_eq!(on_server["ticket"].as_str(), Some(ticket.as_str()), "{id}");
        }
        for (k, t) in [(&restored, &token), (&partner, &partner_token)] {
            let on_kiosk = get(&client, k.url(&format!("/api/staff/requests/{id}")), t).await;
            assert_eq!(on_kiosk["heads"], on_server["heads"], "heads of {id} on {}", k.base);
        }
    }
    let worked = get(&https, format!("{}/api/admin/requests/{worked_after_copy}", server.base), &admin).await;
    let takes = worked["events"].as_array().unwrap().iter().filter(|e| e["to"] == "in_progress").count();
    assert_eq!(takes, 2, "both takes kept, the lost disk's and the restored kiosk's: {worked}");
    // A new ticket after the lost ones came back continues above them all.
    let (_, ticket, _) = file_request_with_code(&client, &restored, "SKD", "Warga Berikutnya", &nik(400)).await;
    assert!(!on_server_tickets.contains(&ticket), "{ticket} was issued before");

    for db in [server_dir.join("server.db"), restored_dir.join("kiosk.db"), partner.data.join("kiosk.db")] {
        let repeated = repeated_actor_seqs(&db).expect("every document loads");
        assert!(repeated.is_empty(), "(actor, seq) naming two changes in {}: {repeated:?}", db.display());
    }
}

#[test]
fn restore_refuses_a_damaged_backup_and_a_folder_in_use() {
    let dir = TestDir::new("restore-refusals");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let backup = dir.path().join("b.tar.zst");
    server_cli_ok(&["backup", "--data", server_dir.to_str().unwrap(), "--out", backup.to_str().unwrap()])
        .expect("backup of a stopped server");
    // Not over an existing file.
    let again = server_cli(&["backup", "--data", server_dir.to_str().unwrap(), "--out", backup.to_str().unwrap()])
        .expect("runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    // Not into a folder that holds a server.
    let over = server_cli(&["restore", "--from", backup.to_str().unwrap(), "--data", server_dir.to_str().unwrap()])
        .expect("runs");
    assert!(!over.status.success());
    assert!(String::from_utf8_lossy(&over.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&over.stderr));
    // A truncated backup restores nothing.
    let bytes = std::fs::read(&backup).unwrap();
    let cut = dir.path().join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let into = dir.path().join("from-cut");
    let bad =
        server_cli(&["restore", "--from", cut.to_str().unwrap(), "--data", into.to_str().unwrap()]).expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("damaged"), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(!into.exists(), "nothing restored from a truncated backup");
    // A good one restores, and the restored server starts.
    let good = dir.path().join("restored");
    server_cli_ok(&["restore", "--from", backup.to_str().unwrap(), "--data", good.to_str().unwrap()]).expect("restore");
    let mut s = ServerProcess::start(&good).expect("a restored server serves");
    s.terminate().expect("stops");

    // `kiosk restore` takes only a kiosk's backup, into an empty folder.
    let kiosk_dir = dir.path().join("kiosk");
    loket_tests::init_kiosk(&kiosk_dir, "K09").expect("kiosk init");
    let kiosk_backup = dir.path().join("k.tar.zst");
    let out = kiosk_cli_ok(&["backup", "--data", kiosk_dir.to_str().unwrap(), "--out", kiosk_backup.to_str().unwrap()])
        .expect("kiosk backup");
    assert!(out.contains("backup written"), "{out}");
    let into = dir.path().join("kiosk-from-server-backup");
    let wrong = kiosk_cli_ok(&["restore", "--from", backup.to_str().unwrap(), "--data", into.to_str().unwrap()])
        .expect_err("a server backup is not a kiosk's");
    assert!(format!("{wrong:#}").contains("not of a kiosk"), "{wrong:#}");
    assert!(!into.exists(), "nothing restored");
    let over =
        kiosk_cli_ok(&["restore", "--from", kiosk_backup.to_str().unwrap(), "--data", kiosk_dir.to_str().unwrap()])
            .expect_err("not over a kiosk's folder");
    assert!(format!("{over:#}").contains("not empty"), "{over:#}");
    let out = kiosk_cli_ok(&["restore", "--from", kiosk_backup.to_str().unwrap(), "--data", into.to_str().unwrap()])
        .expect("kiosk restore");
    let new_actor = out.split("actor ").nth(1).and_then(|r| r.split_whitespace().next()).expect("the new actor");
    let old = rusqlite::Connection::open(kiosk_dir.join("kiosk.db"))
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = 'actor'", [], |r| r.get::<_, String>(0))
        .unwrap();
    assert_ne!(new_actor, old, "the restored kiosk writes under a new actor");
}

/// Issue 18, item 4: both binaries say their version and the commit they
/// were built from (what an operator reports, what a backup records, and
/// what `/livez` answers).
#[test]
fn both_binaries_say_their_version_and_commit() {
    let pattern = |name: &str, out: &str| {
        let rest = out.trim().strip_prefix(&format!("{name} ")).unwrap_or_else(|| panic!("{out:?}"));
        let (version, commit) = rest.split_once(' ').unwrap_or_else(|| panic!("{out:?}"));
        assert_eq!(version, env!("CARGO_PKG_VERSION"), "{out:?}");
        let commit = commit.strip_prefix('(').and_then(|c| c.strip_suffix(')')).unwrap_or_else(|| panic!("{out:?}"));
        assert!(
            commit == "unknown" || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{out:?}"
        );
    };
    pattern("sync-server", &server_cli_ok(&["--version"]).expect("sync-server --version"));
    let kiosk =
        std::process::Command::new(loket_tests::kiosk_bin()).arg("--version").output().expect("kiosk --version");
    assert!(kiosk.status.success());
    pattern("kiosk", &String::from_utf8_lossy(&kiosk.stdout));
}

/// Issue 18, item 4: the shipped systemd units parse (`systemd-analyze
/// verify`, with `ExecStart` pointed at this build's binaries) and the
/// services are sandboxed (`systemd-analyze security` rates their exposure
/// 2.0 or lower: "OK" on its 0-10 scale).
#[test]
fn the_systemd_units_verify_and_are_sandboxed() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let dir = TestDir::new("systemd-units");
    let bins =
        [("/usr/bin/sync-server", loket_tests::server::server_bin()), ("/usr/bin/kiosk", loket_tests::kiosk_bin())];
    let mut units: Vec<String> = std::fs::read_dir(repo.join("deploy/systemd"))
        .expect("deploy/systemd")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    units.sort();
    assert!(units.len() >= 4, "{units:?}");
    for unit in &units {
        let mut text = std::fs::read_to_string(repo.join("deploy/systemd").join(unit)).expect("unit file");
        for (installed, built) in &bins {
            text = text.replace(installed, built.to_str().unwrap());
        }
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    for unit in &units {
        let path = dir.path().join(unit);
        let verify = std::process::Command::new("systemd-analyze")
            .args(["verify", path.to_str().unwrap()])
            .output()
            .expect("systemd-analyze (Debian package systemd; tests/run installs it)");
        let said = String::from_utf8_lossy(&verify.stderr);
        let problems: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(verify.status.success() && problems.is_empty(), "{unit}: {said}");
        if !unit.ends_with(".service") {
            continue;
        }
        let security = std::process::Command::new("systemd-analyze")
            .args(["security", "--offline=true", path.to_str().unwrap()])
            .output()
            .expect("systemd-analyze security");
        let out = String::from_utf8_lossy(&security.stdout);
        let level: f64 = out
            .lines()
            .find_map(|l| l.split("Overall exposure level for").nth(1))
            .and_then(|rest| rest.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{unit}: no exposure level in {out}"));
        assert!(level <= 2.0, "{unit}: exposure {level}\n{out}");
    }
}

/// Issue 18, item 4: the Debian packages (`cargo deb -p loket-sync-server`,
/// `-p loket-kiosk`) ship every systemd unit in `deploy/systemd` between
/// them, each file they name exists, each binary goes where its unit
/// starts it, and their maintainer scripts parse and keep the token
/// cargo-deb fills in.
#[test]
fn the_debian_packages_ship_every_unit_and_sound_scripts() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let mut shipped_units = BTreeSet::new();
    for (crate_dir, bin) in [("sync-server", "sync-server"), ("kiosk", "kiosk")] {
        let dir = repo.join(crate_dir);
        let manifest: toml::Table =
            std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml").parse().expect("toml");
        let deb = &manifest["package"]["metadata"]["deb"];
        let assets = deb["assets"].as_array().expect("assets");
        for asset in assets {
            let asset = asset.as_array().expect("[source, destination, mode]");
            let (source, dest) = (asset[0].as_str().expect("source"), asset[1].as_str().expect("destination"));
            if let Some(built) = source.strip_prefix("target/release/") {
                assert_eq!((built, dest), (bin, "usr/bin/"), "{crate_dir}: the binary goes to /usr/bin");
                continue;
            }
            assert!(dir.join(source).is_file(), "{crate_dir}: {source} is missing");
            if dest == "lib/systemd/system/" {
                let name = std::path::Path::new(source).file_name().unwrap().to_str().unwrap().to_owned();
                let unit = std::fs::read_to_string(dir.join(source)).unwrap();
                if name.ends_with(".service") {
                    assert!(unit.contains(&format!("/usr/bin/{bin} ")), "{name} starts /usr/bin/{bin}");
                }
                assert!(shipped_units.insert(name.clone()), "{name} shipped twice");
            }
        }
        let scripts = dir.join(deb["maintainer-scripts"].as_str().expect("maintainer-scripts"));
        for script in ["postinst", "prerm"] {
            let path = scripts.join(script);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(text.contains("#DEBHELPER#"), "{}: no #DEBHELPER#", path.display());
            let parsed = std::process::Command::new("sh").arg("-n").arg(&path).status().expect("sh");
            assert!(parsed.success(), "{} does not parse", path.display());
        }
    }
    let units: BTreeSet<String> = std::fs::read_dir(repo.join("deploy/systemd"))
        .expect("deploy/systemd")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(shipped_units, units, "every unit in exactly one package");
}

/// Issue 18, item 5: the Prometheus alert rules load (`promtool check
/// rules`) and fire when they should and not before (`promtool test
/// rules` with `deploy/prometheus/loket.rules.test.yml`).
#[test]
fn the_alert_rules_load_and_fire_when_they_should() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let dir = repo.join("deploy/prometheus");
    for args in [["check", "rules", "loket.rules.yml"], ["test", "rules", "loket.rules.test.yml"]] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool (Debian package prometheus; tests/run installs it)");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Issue 18, item 5: every metric either binary exports is documented in
/// `docs/METRICS.md` (what it counts and what an operator does about it).
/// The names come from live `/metrics` of a server and an enrolled kiosk,
/// so a new metric without documentation fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exported_metric_is_documented() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let doc = std::fs::read_to_string(repo.join("docs/METRICS.md")).expect("docs/METRICS.md");
    let dir = TestDir::new("metrics-doc");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).expect("server init");
    let server = ServerProcess::start(&server_dir).expect("server start");
    let https = server.client();
    let admin = server.admin_token(&https).await.expect("admin login");
    let data = dir.path().join("kiosk");
    enroll_kiosk(&data, &server, &server.enroll_code(KEL).expect("code")).expect("enroll");
    let kiosk = KioskProcess::start(&data).expect("kiosk start");
    let client = http_client();
    wait_synced(&client, &kiosk).await;

    let server_text =
        https.get(format!("{}/metrics", server.base)).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
    let kiosk_text = client.get(kiosk.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let mut names = BTreeSet::new();
    for text in [&server_text, &kiosk_text] {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, _kind) = rest.split_once(' ').expect("# TYPE name kind");
                names.insert(name.to_owned());
            }
        }
    }
    assert!(names.len() > 20, "both binaries export their metrics: {names:?}");
    let missing: Vec<&String> = names.iter().filter(|n| !doc.contains(&format!("`{n}`"))).collect();
    assert!(missing.is_empty(), "metrics not in docs/METRICS.md: {missing:?}");
}

/// Issue 18, item 5: the Grafana dashboard is valid JSON with a query in
/// every panel, and it and the alert rules use only metrics that
/// `docs/METRICS.md` documents (a renamed metric would leave a blank
/// panel or an alert that never fires).
#[test]
fn the_dashboard_and_the_alerts_use_only_documented_metrics() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let doc = std::fs::read_to_string(repo.join("docs/METRICS.md")).expect("docs/METRICS.md");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("deploy/grafana/loket.json")).expect("dashboard"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{}", panels.len());
    let mut queries = Vec::new();
    for p in panels {
        let exprs: Vec<String> = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("panel {} has no targets", p["title"]))
            .iter()
            .map(|t| t["expr"].as_str().expect("expr").to_owned())
            .collect();
        assert!(!exprs.is_empty(), "panel {} has no query", p["title"]);
        queries.extend(exprs);
    }
    queries.push(std::fs::read_to_string(repo.join("deploy/prometheus/loket.rules.yml")).expect("rules"));
    let mut used = BTreeSet::new();
    for q in &queries {
        let mut rest = q.as_str();
        while let Some(at) = rest.find("loket_") {
            let name: String =
                rest[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            // A histogram's series are documented under its own name.
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .map_or(name.clone(), str::to_owned);
            used.insert(name);
        }
    }
    assert!(used.len() > 10, "{used:?}");
    let missing: Vec<&String> = used.iter().filter(|n| !doc.contains(&format!("`{n}`"))).collect();
    assert!(missing.is_empty(), "used but not documented (or not existing): {missing:?}");
}

/// The stores the previous release wrote (`tests/fixtures/upgrade`, made by
/// `loket-upgrade-fixture` with that release's binaries).
fn schema_version(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    conn.query_row("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .expect("schema_version")
}

/// The server store's schema version, in its SQLite file or in the
/// PostgreSQL database (`psql`).
fn server_schema_version(server_dir: &std::path::Path, database: Option<&TestDatabase>) -> i64 {
    let Some(db) = database else {
        return schema_version(&server_dir.join("server.db"));
    };
    let out = std::process::Command::new("psql")
        .args(["--no-psqlrc", "-tAc", "SELECT value FROM meta WHERE key = 'schema_version'", db.url()])
        .output()
        .expect("psql (tests/run installs it)");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a version")
}

/// Issue 18, item 3: the server's and both kiosks' stores as the previous
/// release left them after a day's work open with this release's binaries
/// (which migrate them), show every figure that release showed, and
/// serve: the kiosks sync, a new request is filed, worked and reaches the
/// server. On SQLite, and with the server's store in PostgreSQL (the
/// release's database, dumped with `pg_dump`, loaded into a fresh one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_the_previous_release_wrote_open_and_serve_with_their_figures_unchanged() {
    upgrade_from("fixtures/upgrade/release-41e8049.tar.zst", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_store_the_previous_release_wrote_opens_and_serves_with_its_figures_unchanged() {
    upgrade_from("fixtures/upgrade/release-41e8049-postgres.tar.zst", true).await;
}

async fn upgrade_from(fixture: &str, postgres: bool) {
    use loket_tests::day::{LALANG, PASAR_BARU};
    use loket_tests::upgrade;
    let dir = TestDir::new("upgrade");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture);
    upgrade::unpack(&fixture, dir.path()).expect("unpack");
    let then: Value = serde_json::from_slice(&std::fs::read(dir.path().join("figures.json")).expect("figures"))
        .expect("figures.json");
    let server_dir = dir.path().join("server");
    let kiosk_dir = |kel: &str| dir.path().join(format!("kiosk-{kel}"));
    let database = postgres.then(|| TestDatabase::create("upgrade"));
    if let Some(db) = &database {
        let loaded = std::process::Command::new("psql")
            .args(["--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(dir.path().join("server.sql"))
            .arg(db.url())
            .output()
            .expect("psql (tests/run installs it)");
        assert!(loaded.status.success(), "loading the dump: {}", String::from_utf8_lossy(&loaded.stderr));
        std::fs::write(server_dir.join("database.url"), format!("{}\n", db.url())).expect("database.url");
    }
    // What the release wrote is older than what this one writes: the
    // migrations have something to do.
    let old_server = server_schema_version(&server_dir, database.as_ref());
    assert!(old_server < loket_sync_server::store::migrate::LATEST, "fixture at server schema {old_server}");
    let old_kiosk = schema_version(&kiosk_dir(PASAR_BARU).join("kiosk.db"));

    // The kiosks enrolled with the server's URL: it serves there again.
    let addr = then["server_addr"].as_str().expect("server_addr").parse().expect("address");
    let server = ServerProcess::restart_on(&server_dir, addr).expect("server starts on the old store");
    assert_eq!(server_schema_version(&server_dir, database.as_ref()), loket_sync_server::store::migrate::LATEST);
    let https = server.client();
    let ready = https.get(format!("{}/readyz", server.base)).send().await.expect("readyz");
    assert!(ready.status().is_success(), "not ready after the upgrade: {}", ready.status());
    let admin = server.admin_token(&https).await.expect("the release's admin still signs in");
    let now = upgrade::server_figures(&server, &admin).await.expect("server figures");
    let diffs = upgrade::differences(&then["server"], &now);
    assert!(diffs.is_empty(), "the server's figures changed with the upgrade:\n{}", diffs.join("\n"));
    let requests_then = then["server"]["requests"].as_array().expect("requests").len();
    assert!(requests_then >= 20, "a fixture of {requests_then} requests proves little");

    let client = http_client();
    let mut kiosks = Vec::new();
    for kel in [PASAR_BARU, LALANG] {
        let k = KioskProcess::start(&kiosk_dir(kel)).expect("kiosk starts on the old store");
        // Before any sync: what the kiosk itself kept.
        let tickets = upgrade::complaint_tickets(&then["server"], kel);
        let now = upgrade::kiosk_figures(&k, kel, &tickets).await.expect("kiosk figures");
        let diffs = upgrade::differences(&then["kiosks"][kel], &now);
        assert!(diffs.is_empty(), "kiosk {kel}'s figures changed with the upgrade:\n{}", diffs.join("\n"));
        kiosks.push(k);
    }
    assert!(old_kiosk < loket_kiosk::store::SCHEMA_VERSION, "fixture at kiosk schema {old_kiosk}");
    for kel in [PASAR_BARU, LALANG] {
        assert_eq!(schema_version(&kiosk_dir(kel).join("kiosk.db")), loket_kiosk::store::SCHEMA_VERSION);
    }

    // And they serve: both sync with the upgraded server, a new request is
    // filed at one, taken and completed there, and the server has it.
    for k in &kiosks {
        wait_synced(&client, k).await;
    }
    let (id, _, _) = file_request_with_code(&client, &kiosks[0], "SKD", "Sari Upgrade", &nik(7_777)).await;
    complete_request(&client, &kiosks[0].base, &id).await.expect("worked");
    wait_synced(&client, &kiosks[0]).await;
    let detail = get(&https, format!("{}/api/admin/requests/{id}", server.base), &admin).await;
    assert_eq!(detail["status"], "completed", "{detail}");
    let after = upgrade::server_figures(&server, &admin).await.expect("server figures");
    assert_eq!(after["requests"].as_array().expect("requests").len(), requests_then + 1);
    // Nothing the release wrote moved with the sync either.
    let diffs = upgrade::differences(&then["server"]["request_details"], &after["request_details"]);
    assert!(diffs.is_empty(), "the release's requests changed after the kiosks synced:\n{}", diffs.join("\n"));
}
