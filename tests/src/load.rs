//! The load generator (issue 18, item 6): many kiosks in one process,
//! each a real kiosk store (`loket_kiosk::store::DocStore` on its own
//! SQLite file, `synchronous=FULL`) enrolled with the server through the
//! real enrollment (`loket_kiosk::setup::enroll`: its own one-time code,
//! credential and Automerge actor), syncing through the real sync client
//! (`loket_kiosk::sync::SyncClient`) over HTTPS. Each files requests at a
//! set pace, works each through four status events (taken, waiting for
//! the citizen, taken again, completed), has it rated, and syncs after
//! each finished request, as a kiosk in service does after its writes.
//!
//! Kiosks are spread over Medan's 151 kelurahan (two to an office at 300,
//! so each also pulls its partner's requests). Every sync run is timed at
//! the kiosk; errors are counted by their stable code.
//!
//! `loket-load` drives a server that is already running;
//! `loket-bench-load` starts one (or several instances on PostgreSQL)
//! and measures it (BENCHMARKS.md, "A city's load").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use loket_kiosk::store::{CreateInput, DocStore, EventInput, RatingInput, StoreOptions};
use loket_kiosk::sync::SyncClient;
use loket_shared::Status;
use loket_shared::request::Applicant;
use loket_shared::skm::Scores;
use serde_json::{Value, json};

use crate::{STAFF_ID, STAFF_PASSWORD, nik};

/// What each kiosk does.
#[derive(Debug, Clone)]
pub struct Work {
    /// Requests each kiosk files.
    pub requests: usize,
    /// Requests each kiosk files per second (0: as fast as it can).
    pub rate: f64,
}

/// One simulated kiosk.
pub struct Kiosk {
    pub kelurahan: String,
    /// Its data folder (`kiosk.db`), which `kiosk serve --data` can run.
    pub data: PathBuf,
    store: Arc<DocStore>,
    client: Arc<SyncClient>,
}

/// The server the kiosks are enrolled with, and an admin's way in.
pub struct Target<'a> {
    /// `https://host:port`.
    pub base: &'a str,
    pub ca_pem: &'a str,
    /// An HTTPS client that trusts the server's CA.
    pub https: &'a reqwest::Client,
    /// An admin's bearer token (enrollment codes, rosters).
    pub admin: &'a str,
}

/// The `i`th kiosk's kelurahan: Medan's 151 in turn.
pub fn kelurahan(i: usize) -> String {
    crate::reconnect::kelurahan(i)
}

async fn enroll_code(t: &Target<'_>, kelurahan: &str) -> anyhow::Result<String> {
    let r = t
        .https
        .post(format!("{}/api/admin/enroll-codes", t.base))
        .bearer_auth(t.admin)
        .json(&json!({ "kelurahan": kelurahan }))
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "enrollment code for {kelurahan}: {status} {body}");
    Ok(body["code"].as_str().context("code")?.to_owned())
}

/// Enrolls `n` kiosks in folders under `dir` (`k0000/kiosk.db`, …), with
/// a supervisor on each office's roster first (`STAFF_ID`), at most
/// `parallel` at a time. Each one's first sync pulls the catalog and its
/// roster, as `kiosk enroll` does.
pub async fn enroll(t: &Target<'_>, dir: &Path, n: usize, parallel: usize) -> anyhow::Result<Vec<Kiosk>> {
    let offices: std::collections::BTreeSet<String> = (0..n).map(kelurahan).collect();
    for kel in &offices {
        let r = t
            .https
            .put(format!("{}/api/admin/rosters/{kel}/staff/{STAFF_ID}", t.base))
            .bearer_auth(t.admin)
            .json(&json!({ "name": "Petugas Beban", "role": "supervisor", "password": STAFF_PASSWORD }))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "roster of {kel}: {}", r.status());
    }
    let mut kiosks: Vec<Option<Kiosk>> = (0..n).map(|_| None).collect();
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let kel = kelurahan(i);
        let code = enroll_code(t, &kel).await?;
        let db: PathBuf = dir.join(format!("k{i:04}")).join("kiosk.db");
        let (server, ca) = (t.base.to_owned(), t.ca_pem.to_owned());
        let permit = limit.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let _permit = permit;
            let enrolled = loket_kiosk::setup::enroll(&db, &server, &ca, &code, Some(format!("Kiosk beban {i}")))
                .await
                .with_context(|| format!("enrolling kiosk {i}"))?;
            if let Err(e) = &enrolled.first_sync {
                anyhow::bail!("kiosk {i}'s first sync: {e}");
            }
            let store = Arc::new(DocStore::open(&db, StoreOptions::default())?);
            let client = Arc::new(SyncClient::new(store.clone())?);
            let data = db.parent().expect("a folder").to_path_buf();
            anyhow::Ok((i, Kiosk { kelurahan: kel, data, store, client }))
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, k) = done??;
        kiosks[i] = Some(k);
    }
    Ok(kiosks.into_iter().map(|k| k.expect("every kiosk enrolled")).collect())
}

/// What a run of [`run`] saw.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: usize,
    /// Every sync run's time at the kiosk (all its exchanges).
    pub syncs: Vec<Duration>,
    pub exchanges: u64,
    /// Failed sync runs by code (`server_unreachable`, `rate_limited`, …).
    pub errors: BTreeMap<String, u64>,
    /// From the first filing to the last kiosk's last sync.
    pub elapsed: Duration,
}

impl Report {
    /// The `q` quantile of the sync runs (0.5: the median), in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut v: Vec<Duration> = self.syncs.clone();
        v.sort();
        v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1)).map_or(0.0, |d| crate::reconnect::ms(*d))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "sync_runs": self.syncs.len(),
            "exchanges": self.exchanges,
            "errors": self.errors,
            "sync_run_ms": {
                "p50": self.quantile_ms(0.5),
                "p99": self.quantile_ms(0.99),
                "max": self.quantile_ms(1.0),
            },
            "elapsed_s": (self.elapsed.as_secs_f64() * 10.0).round() / 10.0,
        })
    }
}

/// Files the `n`th request at `k`, works it through four status events
/// and has it rated.
async fn serve_one(k: &Kiosk, n: u64) -> anyhow::Result<()> {
    let staff: loket_shared::StaffId = STAFF_ID.parse()?;
    let applicant = Applicant { name: "Warga Beban".parse()?, nik: nik(n).parse()?, phone: None };
    let created = k.store.create_request(CreateInput { service: "SKD".parse()?, applicant }, None).await?;
    for to in [Status::InProgress, Status::WaitingCitizen, Status::InProgress, Status::Completed] {
        let note = (to == Status::WaitingCitizen).then(|| "fotokopi KK belum dibawa".to_owned());
        let ev = EventInput { to, note, agency: None, by: staff.clone() };
        k.store.append_event(created.id, ev, None).await?;
    }
    let scores = Scores::new([4, 3, 4, 4, 3, 4, 4, 3, 4])?;
    let rating = RatingInput { scores, comment: None, token: created.rating_token, profile: Default::default() };
    k.store.rate(created.id, rating, None).await?;
    Ok(())
}

/// One kiosk's part: `work.requests` requests filed at `work.rate`, each
/// worked, rated and synced; then a last sync until nothing is left. A
/// paced kiosk starts `phase` (0..1) of a period late, so the kiosks'
/// requests spread over each period as citizens' do, not all at once.
async fn day(
    k: &Kiosk,
    index: usize,
    phase: f64,
    work: &Work,
) -> anyhow::Result<(Vec<Duration>, BTreeMap<String, u64>)> {
    let (mut syncs, mut errors) = (Vec::new(), BTreeMap::new());
    let start = tokio::time::Instant::now();
    for j in 0..work.requests {
        if work.rate > 0.0 {
            tokio::time::sleep_until(start + Duration::from_secs_f64((j as f64 + phase) / work.rate)).await;
        }
        serve_one(k, (index * work.requests + j) as u64).await?;
        sync(k, &mut syncs, &mut errors).await;
    }
    // What is left (a failed sync above, the partner's last requests).
    for _ in 0..20 {
        if sync(k, &mut syncs, &mut errors).await {
            break;
        }
    }
    Ok((syncs, errors))
}

/// One sync run, timed; whether it succeeded with nothing more to do.
async fn sync(k: &Kiosk, syncs: &mut Vec<Duration>, errors: &mut BTreeMap<String, u64>) -> bool {
    let t = Instant::now();
    let result = k.client.run_once().await;
    syncs.push(t.elapsed());
    match result {
        Ok(summary) => !summary.more,
        Err(e) => {
            *errors.entry(e.code().to_owned()).or_default() += 1;
            if let Some(wait) = e.retry_after() {
                tokio::time::sleep(wait).await;
            }
            false
        }
    }
}

/// Every kiosk lives through `work` at once.
pub async fn run(kiosks: &Arc<Vec<Kiosk>>, work: &Work) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let n = kiosks.len();
    for i in 0..n {
        let (kiosks, work) = (kiosks.clone(), work.clone());
        tasks.spawn(async move { day(&kiosks[i], i, i as f64 / n as f64, &work).await });
    }
    let mut report = Report { requests: kiosks.len() * work.requests, ..Report::default() };
    while let Some(done) = tasks.join_next().await {
        let (syncs, errors) = done??;
        report.syncs.extend(syncs);
        for (code, n) in errors {
            *report.errors.entry(code).or_default() += n;
        }
    }
    report.elapsed = started.elapsed();
    report.exchanges = kiosks.iter().map(|k| k.client.status.exchanges.load(Ordering::Relaxed)).sum();
    Ok(report)
}

/// Starts each kiosk's own background sync loop (`sync_loop`: a sync
/// after its writes and every 30 s, its backoff while the server is away),
/// as a kiosk in service runs it; they stop when `stop` turns true.
pub fn start_loops(kiosks: &[Kiosk], stop: &tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinSet<()> {
    let mut loops = tokio::task::JoinSet::new();
    for k in kiosks {
        loops.spawn(loket_kiosk::sync::sync_loop(k.client.clone(), stop.clone()));
    }
    loops
}

/// Each kiosk files `per_kiosk` requests (worked and rated) while the
/// server is away, nudging its loop after each as the kiosk's handlers do.
pub async fn offline_work(kiosks: &Arc<Vec<Kiosk>>, per_kiosk: usize, first: u64) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..kiosks.len() {
        let kiosks = kiosks.clone();
        tasks.spawn(async move {
            let k = &kiosks[i];
            for j in 0..per_kiosk {
                serve_one(k, first + (i * per_kiosk + j) as u64).await?;
                k.client.nudge.notify_one();
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// How the kiosks came back after the server did (at `back`): when each
/// had its first successful sync with nothing left to push, and the
/// failed syncs since.
#[derive(Debug)]
pub struct Converged {
    /// Per kiosk, from `back` to that moment.
    pub after: Vec<Duration>,
    pub failures_since: u64,
}

/// Waits (polling every 50 ms, at most `limit`) until every kiosk has
/// synced successfully since `back_ms` (Unix ms) with nothing pending.
pub async fn converged(
    kiosks: &Arc<Vec<Kiosk>>,
    back: Instant,
    back_ms: i64,
    failures_before: u64,
    limit: Duration,
) -> anyhow::Result<Converged> {
    let mut after: Vec<Option<Duration>> = vec![None; kiosks.len()];
    loop {
        for (i, k) in kiosks.iter().enumerate() {
            if after[i].is_some() || k.client.status.last_ok_ms.load(Ordering::Relaxed) < back_ms {
                continue;
            }
            let store = k.store.clone();
            let pending = tokio::task::spawn_blocking(move || store.counts()).await??.pending_changes;
            if pending == 0 {
                after[i] = Some(back.elapsed());
            }
        }
        if after.iter().all(Option::is_some) {
            break;
        }
        let waiting = after.iter().filter(|a| a.is_none()).count();
        anyhow::ensure!(back.elapsed() < limit, "{waiting} kiosks not converged within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failures: u64 = kiosks.iter().map(|k| k.client.status.failures.load(Ordering::Relaxed)).sum();
    Ok(Converged { after: after.into_iter().flatten().collect(), failures_since: failures - failures_before })
}

/// Failed sync runs so far, all kiosks together.
pub fn failures(kiosks: &[Kiosk]) -> u64 {
    kiosks.iter().map(|k| k.client.status.failures.load(Ordering::Relaxed)).sum()
}

/// Stops every kiosk store (their writers flush and exit).
pub fn shutdown(kiosks: Arc<Vec<Kiosk>>) {
    if let Ok(kiosks) = Arc::try_unwrap(kiosks) {
        for k in kiosks {
            drop(k.client);
            if let Ok(store) = Arc::try_unwrap(k.store) {
                store.shutdown();
            }
        }
    }
}
