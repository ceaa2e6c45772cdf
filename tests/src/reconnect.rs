//! The kiosk-reconnect benchmark (issue #3): K kiosks each hold D request
//! documents (3 events and a rating each) in sync with the server; all go
//! offline, each files N new requests and appends a status event to M
//! existing ones; then all reconnect at once. Real processes, real TLS,
//! real SQLite (`synchronous=FULL` on kiosks). The server's store is
//! SQLite, or a fresh PostgreSQL database with one or more instances on
//! it (`database`, `instances`): kiosk `i` talks to instance `i mod n`,
//! so the two kiosks of a kelurahan sync through different instances.
//!
//! Kiosks come in pairs per kelurahan, so each also has the other's
//! changes to pull. "Reconnect" is a `POST /api/sync` sent to every kiosk
//! at the same instant (their own backoff timers would otherwise decide
//! when they notice the server is back).
//!
//! Two reconnects are measured (issue 17). **Network cut**: the kiosks
//! reach the server through a proxy each (`proxy::FaultProxy`); the proxy
//! partitions them while they work offline, and the server keeps running
//! with whatever it holds in memory, as in life. **Server restart**: the
//! same offline work again with the server stopped meanwhile, so the
//! reconnect meets a cold process. Every phase prints the CPU seconds the
//! server and the kiosks spent in it (`/proc/<pid>/stat`), so the cost per
//! changed document compares across runs and machines' loads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use loket_kiosk::store::{CreateInput, DocStore, EventInput, RatingInput, StoreOptions};
use loket_shared::Status;
use loket_shared::request::Applicant;
use loket_shared::skm::Scores;
use serde_json::{Value, json};

use crate::postgres::TestDatabase;
use crate::proxy::FaultProxy;
use crate::server::{ServerProcess, add_instance, enroll_kiosk, enroll_kiosk_at, init_server, init_server_on};
use crate::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, http_client, nik, staff_login};

#[derive(Debug, Clone)]
pub struct Params {
    pub kiosks: usize,
    pub docs: usize,
    pub new_requests: usize,
    pub events: usize,
    pub idle_docs: Vec<usize>,
    /// A PostgreSQL URL whose role may create databases: the store is a
    /// fresh database there (dropped at the end) instead of SQLite.
    pub database: Option<String>,
    /// Server instances on that database (1 without one).
    pub instances: usize,
}

/// Medan kelurahan codes for the kiosk pairs.
pub(crate) fn kelurahan(pair: usize) -> String {
    let regions = loket_shared::wilayah::medan(loket_shared::wilayah::Level::Kelurahan);
    regions[pair % regions.len()].code.to_owned()
}

/// Files `docs` requests on a kiosk. With `full`, each gets three status
/// events (taken, waiting for the citizen, taken again); all but the last
/// `open` are then completed and rated (a rating needs a finished
/// request), and those `open` stay in progress for the offline work.
async fn seed(data: &std::path::Path, docs: usize, full: bool, open: usize) -> anyhow::Result<()> {
    let store = Arc::new(DocStore::open(&data.join("kiosk.db"), StoreOptions::default())?);
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = docs.div_ceil(32).max(1);
    for t in 0..docs.div_ceil(per_task) {
        let store = store.clone();
        let range = (t * per_task)..((t + 1) * per_task).min(docs);
        tasks.spawn(async move {
            for i in range {
                let applicant = Applicant { name: "Warga Uji".parse()?, nik: nik(i as u64).parse()?, phone: None };
                let created = store.create_request(CreateInput { service: "SKD".parse()?, applicant }, None).await?;
                if !full {
                    continue;
                }
                for to in [Status::InProgress, Status::WaitingCitizen, Status::InProgress] {
                    let note = (to == Status::WaitingCitizen).then(|| "fotokopi KK belum dibawa".to_owned());
                    let ev = EventInput { to, note, agency: None, by: STAFF_ID.parse()? };
                    store.append_event(created.id, ev, None).await?;
                }
                if i + open >= docs {
                    continue;
                }
                let ev = EventInput { to: Status::Completed, note: None, agency: None, by: STAFF_ID.parse()? };
                store.append_event(created.id, ev, None).await?;
                let scores = Scores::new([4, 3, 4, 4, 3, 4, 4, 3, 4])?;
                let token = created.rating_token;
                store
                    .rate(created.id, RatingInput { scores, comment: None, token, profile: Default::default() }, None)
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Arc::try_unwrap(store).map_err(|_| anyhow::anyhow!("store still shared"))?.shutdown();
    Ok(())
}

async fn metric(client: &reqwest::Client, k: &KioskProcess, name: &str) -> anyhow::Result<u64> {
    let text = client.get(k.url("/metrics")).send().await?.text().await?;
    let line = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .with_context(|| format!("metric {name}"))?;
    Ok(line.rsplit(' ').next().unwrap_or("0").parse::<f64>()? as u64)
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    wire_out: u64,
    wire_in: u64,
    change_out: u64,
    change_in: u64,
    exchanges: u64,
}

async fn counters(client: &reqwest::Client, kiosks: &[KioskProcess]) -> anyhow::Result<Counters> {
    let mut c = Counters::default();
    for k in kiosks {
        c.wire_out += metric(client, k, "loket_kiosk_sync_wire_bytes_out_total").await?;
        c.wire_in += metric(client, k, "loket_kiosk_sync_wire_bytes_in_total").await?;
        c.change_out += metric(client, k, "loket_kiosk_sync_change_bytes_out_total").await?;
        c.change_in += metric(client, k, "loket_kiosk_sync_change_bytes_in_total").await?;
        c.exchanges += metric(client, k, "loket_kiosk_sync_exchanges_total").await?;
    }
    Ok(c)
}

fn diff(a: Counters, b: Counters) -> Counters {
    Counters {
        wire_out: b.wire_out - a.wire_out,
        wire_in: b.wire_in - a.wire_in,
        change_out: b.change_out - a.change_out,
        change_in: b.change_in - a.change_in,
        exchanges: b.exchanges - a.exchanges,
    }
}

/// Sends `POST /api/sync` to every kiosk at once; returns each one's
/// completion time. Fails if any sync fails.
async fn sync_all(client: &reqwest::Client, kiosks: &[KioskProcess]) -> anyhow::Result<Vec<Duration>> {
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, k) in kiosks.iter().enumerate() {
        let client = client.clone();
        let url = k.url("/api/sync");
        set.spawn(async move {
            let v: Value = client.post(url).send().await?.json().await?;
            ensure!(v["ok"] == true, "sync failed: {v}");
            anyhow::Ok((i, t0.elapsed()))
        });
    }
    let mut times = vec![Duration::ZERO; kiosks.len()];
    while let Some(r) = set.join_next().await {
        let (i, t) = r??;
        times[i] = t;
    }
    Ok(times)
}

pub fn rss_peak_bytes(pid: u32) -> u64 {
    procfs::process::Process::new(i32::try_from(pid).unwrap_or(i32::MAX))
        .and_then(|p| p.status())
        .ok()
        .and_then(|s| s.vmhwm)
        .map_or(0, |kb| kb * 1024)
}

/// User and system CPU seconds a process has used so far (all threads).
pub fn cpu_seconds(pid: u32) -> f64 {
    procfs::process::Process::new(i32::try_from(pid).unwrap_or(i32::MAX))
        .and_then(|p| p.stat())
        .map_or(0.0, |st| (st.utime + st.stime) as f64 / procfs::ticks_per_second() as f64)
}

/// CPU seconds of the server instances and of the kiosks, at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    server: f64,
    kiosks: f64,
}

impl Cpu {
    fn now(servers: &Servers, kiosks: &[KioskProcess]) -> Cpu {
        Cpu {
            server: servers.running.iter().map(|s| cpu_seconds(s.pid())).sum(),
            kiosks: kiosks.iter().map(|k| cpu_seconds(k.pid())).sum(),
        }
    }

    /// What was spent since `before`, as JSON, with the cost per document.
    fn since(self, before: Cpu, documents: usize) -> Value {
        let (server, kiosks) = (self.server - before.server, self.kiosks - before.kiosks);
        let per_doc_ms = |s: f64| (s * 1e6 / documents.max(1) as f64).round() / 1e3;
        json!({
            "server_cpu_s": (server * 100.0).round() / 100.0,
            "kiosks_cpu_s": (kiosks * 100.0).round() / 100.0,
            "server_cpu_ms_per_doc": per_doc_ms(server),
            "kiosks_cpu_ms_per_doc": per_doc_ms(kiosks),
        })
    }
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

/// A SQLite store's bytes on disk: the file and its WAL.
fn store_bytes(db: &std::path::Path) -> u64 {
    let wal = db.with_extension("db-wal");
    [db, wal.as_path()].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// `SELECT count(*)` of `table` in the store at `db`, read-only.
fn count_rows(db: &std::path::Path, table: &str) -> anyhow::Result<u64> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    Ok(n as u64)
}

/// The server's store per request before and after `sync-server compact
/// --vacuum` (the server stopped), and the kiosks' stores per request they
/// hold (their own and their partner's), beside it.
fn disk_per_request(server_dir: &std::path::Path, kiosks: &[std::path::PathBuf]) -> anyhow::Result<Value> {
    let db = server_dir.join("server.db");
    let requests = count_rows(&db, "requests")?.max(1);
    let before = store_bytes(&db);
    let t = Instant::now();
    let out =
        crate::server::server_cli_ok(&["compact", "--data", server_dir.to_str().unwrap_or_default(), "--vacuum"])?;
    let took = t.elapsed();
    let after = store_bytes(&db);
    let (mut kiosk_bytes, mut kiosk_requests) = (0u64, 0u64);
    for k in kiosks {
        let db = k.join("kiosk.db");
        kiosk_bytes += store_bytes(&db);
        kiosk_requests += count_rows(&db, "requests")?;
    }
    Ok(json!({
        "server_requests": requests,
        "server_bytes_before": before,
        "server_bytes_per_request_before": before / requests,
        "server_bytes_after_compaction": after,
        "server_bytes_per_request_after_compaction": after / requests,
        "compact_ms": ms(took),
        "compact_said": out.trim(),
        "kiosk_bytes_per_request": kiosk_bytes / kiosk_requests.max(1),
    }))
}

pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The server instances, stopped and started together.
pub(crate) struct Servers {
    dirs: Vec<std::path::PathBuf>,
    pub(crate) addrs: Vec<std::net::SocketAddr>,
    pub(crate) running: Vec<ServerProcess>,
}

/// Server folders in `dir` for `instances` instances: on SQLite (one), or
/// on a fresh PostgreSQL database made from `database` (a URL whose role
/// may create databases; dropped with the returned value).
pub fn init_servers(
    dir: &std::path::Path,
    database: Option<&str>,
    instances: usize,
    prefix: &str,
) -> anyhow::Result<(Option<TestDatabase>, Vec<std::path::PathBuf>)> {
    ensure!(instances >= 1, "--instances must be at least 1");
    ensure!(instances == 1 || database.is_some(), "several instances need --database (PostgreSQL)");
    let database = database.map(|base| TestDatabase::try_create_in(base, prefix)).transpose()?;
    let dirs: Vec<_> = (0..instances).map(|i| dir.join(format!("server{i}"))).collect();
    match &database {
        Some(db) => {
            init_server_on(&dirs[0], db.url())?;
            for d in &dirs[1..] {
                add_instance(&dirs[0], d, &[])?;
            }
        }
        None => init_server(&dirs[0])?,
    }
    Ok((database, dirs))
}

impl Servers {
    pub(crate) fn start(dirs: Vec<std::path::PathBuf>) -> anyhow::Result<Servers> {
        let running = dirs.iter().map(|d| ServerProcess::start(d)).collect::<anyhow::Result<Vec<_>>>()?;
        let addrs = running.iter().map(ServerProcess::addr).collect();
        Ok(Servers { dirs, addrs, running })
    }

    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
        for s in self.running.drain(..) {
            let mut s = s;
            s.terminate()?;
        }
        Ok(())
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        for (d, a) in self.dirs.iter().zip(&self.addrs) {
            self.running.push(ServerProcess::restart_on(d, *a)?);
        }
        Ok(())
    }

    pub(crate) fn first(&self) -> &ServerProcess {
        &self.running[0]
    }

    pub(crate) fn peak_rss(&self) -> Vec<u64> {
        self.running.iter().map(|s| rss_peak_bytes(s.pid())).collect()
    }
}

/// A round of offline work at every kiosk: `events` open requests
/// completed, `new_requests` filed (NIKs distinct per round).
async fn offline_work(client: &reqwest::Client, kiosks: &[KioskProcess], p: &Params, round: u64) -> anyhow::Result<()> {
    for k in kiosks {
        let token = staff_login(client, &k.base).await?;
        let queue: Value = client
            .get(k.url(&format!("/api/staff/requests?status=in_progress&limit={}", p.events)))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let ids: Vec<String> = queue["items"]
            .as_array()
            .context("items")?
            .iter()
            .filter_map(|i| i["id"].as_str().map(str::to_owned))
            .collect();
        ensure!(ids.len() >= p.events.min(p.docs), "not enough requests in progress to update");
        for id in ids.iter().take(p.events) {
            let r = client
                .post(k.url(&format!("/api/staff/requests/{id}/events")))
                .bearer_auth(&token)
                .json(&json!({ "to": "completed" }))
                .send()
                .await?;
            ensure!(r.status().is_success(), "event: {}", r.status());
        }
        for i in 0..p.new_requests {
            let n = 1_000_000 + round * 100_000 + i as u64;
            let r = client
                .post(k.url("/api/requests"))
                .json(&json!({ "service": "SKD", "applicant": { "name": "Warga Baru", "nik": nik(n) } }))
                .send()
                .await?;
            ensure!(r.status().is_success(), "request: {}", r.status());
        }
    }
    Ok(())
}

/// Exchanges the server instances merged again because another writer
/// changed one of their documents first (`loket_sync_stale_commits_total`).
async fn stale_commits(servers: &Servers, admin: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for s in &servers.running {
        let text = s.client().get(format!("{}/metrics", s.base)).bearer_auth(admin).send().await?.text().await?;
        let line = text
            .lines()
            .find(|l| l.starts_with("loket_sync_stale_commits_total "))
            .context("loket_sync_stale_commits_total")?;
        total += line.rsplit(' ').next().unwrap_or("0").parse::<f64>()? as u64;
    }
    Ok(total)
}

/// Every kiosk syncs at once, then once more for what the partner pushed
/// after its pull: times, bytes, CPU and stale commits.
async fn reconnect(
    client: &reqwest::Client,
    servers: &Servers,
    admin: &str,
    kiosks: &[KioskProcess],
    p: &Params,
) -> anyhow::Result<Value> {
    let changed_docs = p.kiosks * (p.new_requests + p.events);
    let stale_before = stale_commits(servers, admin).await?;
    let before = counters(client, kiosks).await?;
    let cpu = Cpu::now(servers, kiosks);
    let first = sync_all(client, kiosks).await?;
    let t_first = *first.iter().max().unwrap_or(&Duration::ZERO);
    let cpu_first = Cpu::now(servers, kiosks);
    let t0 = Instant::now();
    sync_all(client, kiosks).await?;
    let t_both = t_first + t0.elapsed();
    let cpu_both = Cpu::now(servers, kiosks);
    let c = diff(before, counters(client, kiosks).await?);
    Ok(json!({
        "changed_documents": changed_docs,
        "all_first_syncs_done_ms": ms(t_first),
        "per_kiosk_first_sync_ms": first.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "both_directions_done_ms": ms(t_both),
        "cpu_first_syncs": cpu_first.since(cpu, changed_docs),
        "cpu_both_directions": cpu_both.since(cpu, changed_docs),
        "wire_bytes_out": c.wire_out, "wire_bytes_in": c.wire_in,
        "change_bytes_out": c.change_out, "change_bytes_in": c.change_in,
        "wire_over_change_bytes": (c.wire_out + c.wire_in) as f64 / ((c.change_out + c.change_in).max(1)) as f64,
        "exchanges": c.exchanges,
        "stale_commits": stale_commits(servers, admin).await? - stale_before,
    }))
}

pub async fn run(p: Params) -> anyhow::Result<Value> {
    ensure!(p.kiosks >= 2 && p.kiosks.is_multiple_of(2), "--kiosks must be even (pairs per kelurahan)");
    let dir = TestDir::new("bench-reconnect");
    let (database, dirs) = init_servers(dir.path(), p.database.as_deref(), p.instances, "bench_reconnect")?;
    let server_dir = dirs[0].clone();
    // The store before compaction is measured too (issue 18, item 2): the
    // background compaction stays off, `sync-server compact` runs at the end.
    for d in &dirs {
        std::fs::write(d.join("server.toml"), "compaction = false\n")?;
    }
    let mut servers = Servers::start(dirs)?;
    let https = servers.first().client();
    let admin = servers.first().admin_token(&https).await?;
    let _ = http_client;
    // Syncs of thousands of documents may take long on a loaded machine:
    // measure them rather than time them out.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1800)).build()?;
    // One proxy per instance: the kiosks' network, cut while they work
    // offline (the server keeps running).
    let proxies: Vec<FaultProxy> =
        servers.addrs.iter().map(|a| FaultProxy::start(*a)).collect::<std::io::Result<_>>()?;
    let mut datas = Vec::new();
    for i in 0..p.kiosks {
        let kel = kelurahan(i / 2);
        let server = servers.first();
        if i % 2 == 0 {
            server.put_staff(&https, &admin, &kel, STAFF_ID, STAFF_PASSWORD).await?;
        }
        let data = dir.path().join(format!("kiosk{i}"));
        let via = format!("https://{}", proxies[i % p.instances].addr());
        enroll_kiosk_at(&data, &via, &server.ca_pem(), &server.enroll_code(&kel)?)?;
        datas.push(data);
    }
    servers.stop()?;

    eprintln!("seeding {} kiosks x {} documents (3 events and a rating each)...", p.kiosks, p.docs);
    let seeded = Instant::now();
    for data in &datas {
        // Twice `events` stay open: one round of offline work each.
        seed(data, p.docs, true, 2 * p.events).await?;
    }
    eprintln!("  seeded in {:.1} s", seeded.elapsed().as_secs_f64());
    let mut kiosks = Vec::new();
    for data in &datas {
        kiosks.push(KioskProcess::start(data)?);
    }

    // Initial sync of every document to an empty server.
    servers.restart()?;
    let before = counters(&client, &kiosks).await?;
    let cpu = Cpu::now(&servers, &kiosks);
    let stale_before = stale_commits(&servers, &admin).await?;
    let initial = sync_all(&client, &kiosks).await?;
    let initial_stale = stale_commits(&servers, &admin).await? - stale_before;
    let initial_total = *initial.iter().max().unwrap_or(&Duration::ZERO);
    let initial_cpu = Cpu::now(&servers, &kiosks).since(cpu, p.kiosks * p.docs);
    let cpu = Cpu::now(&servers, &kiosks);
    sync_all(&client, &kiosks).await?; // pull the partner kiosk's documents
    let partner_cpu = Cpu::now(&servers, &kiosks).since(cpu, p.kiosks * p.docs);
    let initial_counters = diff(before, counters(&client, &kiosks).await?);
    eprintln!(
        "  initial sync of {} documents: {:.0} ms, {initial_cpu}, {initial_stale} stale commits",
        p.kiosks * p.docs,
        ms(initial_total)
    );

    // Reconnect after a network cut: the server keeps running.
    for proxy in &proxies {
        proxy.handle().partition(true);
    }
    offline_work(&client, &kiosks, &p, 0).await?;
    for proxy in &proxies {
        proxy.handle().partition(false);
    }
    // Progress, and the mark a profiler can start on.
    eprintln!("  offline work done: reconnecting after a network cut...");
    let cut = reconnect(&client, &servers, &admin, &kiosks, &p).await?;
    eprintln!("  reconnect after a network cut: {}", cut);

    // Reconnect to a restarted server: stopped while the kiosks work.
    servers.stop()?;
    offline_work(&client, &kiosks, &p, 1).await?;
    servers.restart()?;
    let restart = reconnect(&client, &servers, &admin, &kiosks, &p).await?;
    eprintln!("  reconnect to a restarted server: {}", restart);

    // Idle reconnect at D.
    let v: Value = client.post(kiosks[0].url("/api/sync")).send().await?.json().await?;
    ensure!(v["ok"] == true, "idle sync: {v}");
    let mut idle_results = vec![json!({ "docs": p.docs, "exchanges": v["exchanges"], "wire_bytes": v["wire_bytes"] })];

    let server_rss = servers.peak_rss();
    let server_disk = match &database {
        Some(db) => db.size_bytes()?,
        None => dir_bytes(&server_dir),
    };
    // Disk per request, server and kiosks, before and after compaction
    // (SQLite; the server stopped for `compact --vacuum` and started again).
    let disk = match &database {
        Some(_) => Value::Null,
        None => {
            servers.stop()?;
            let disk = disk_per_request(&server_dir, &datas)?;
            servers.restart()?;
            eprintln!("  disk: {disk}");
            disk
        }
    };
    let server = servers.first();

    // Idle reconnect at larger D: one more kiosk holding that many documents.
    for &d in &p.idle_docs {
        let kel = kelurahan(1000 + d);
        server.put_staff(&https, &admin, &kel, STAFF_ID, STAFF_PASSWORD).await?;
        let data = dir.path().join(format!("idle{d}"));
        enroll_kiosk(&data, server, &server.enroll_code(&kel)?)?;
        eprintln!("seeding an idle kiosk with {d} documents...");
        seed(&data, d, false, 0).await?;
        let k = KioskProcess::start(&data)?;
        let t = Instant::now();
        loop {
            let v: Value = client.post(k.url("/api/sync")).send().await?.json().await?;
            ensure!(v["ok"] == true, "sync: {v}");
            if v["more"] == false {
                break;
            }
        }
        eprintln!("  initial sync of {d}: {:.1} s", t.elapsed().as_secs_f64());
        // The kiosk's own loop may be running a sync of its own right now:
        // read this sync's figures from its answer, not from global counters.
        let t = Instant::now();
        let v: Value = client.post(k.url("/api/sync")).send().await?.json().await?;
        let took = t.elapsed();
        ensure!(v["ok"] == true, "idle sync: {v}");
        idle_results.push(json!({
            "docs": d, "exchanges": v["exchanges"], "wire_bytes": v["wire_bytes"], "ms": ms(took),
        }));
    }
    let server_rss_after = servers.peak_rss();
    drop(servers);
    if std::env::var_os("LOKET_BENCH_KEEP").is_some() {
        eprintln!("kept {}", dir.keep().display());
    }

    Ok(json!({
        "params": {
            "kiosks": p.kiosks, "docs_per_kiosk": p.docs, "new_requests": p.new_requests, "events": p.events,
            "store": if database.is_some() { "postgresql" } else { "sqlite" }, "instances": p.instances,
        },
        "initial_sync": {
            "documents": p.kiosks * p.docs,
            "ms": ms(initial_total),
            "wire_bytes_out": initial_counters.wire_out, "wire_bytes_in": initial_counters.wire_in,
            "change_bytes_out": initial_counters.change_out, "change_bytes_in": initial_counters.change_in,
        },
        "initial_sync_cpu": initial_cpu,
        "initial_sync_stale_commits": initial_stale,
        "partner_pull_cpu": partner_cpu,
        "reconnect_after_network_cut": cut,
        "reconnect_after_server_restart": restart,
        "idle_reconnect": idle_results,
        "server": {
            "peak_rss_bytes_after_reconnect": server_rss,
            "peak_rss_bytes_at_end": server_rss_after,
            "disk_bytes": server_disk,
        },
        "disk_per_request": disk,
        "note": "server RSS is per instance; disk is the data folder (SQLite) or pg_database_size (PostgreSQL); CPU seconds are user + system of every instance and every kiosk process during the phase",
        "targets": {
            "server_has_all_changes_ms": 400, "both_directions_ms": 800, "initial_sync_10000_docs_ms": 2000,
            "wire_over_change_bytes_max": 0.5, "server_bytes_per_request_after_compaction_max": 1536, "idle_reconnect_wire_bytes_max": 1024, "server_rss_bytes_max": 150 * 1024 * 1024,
        },
    }))
}
