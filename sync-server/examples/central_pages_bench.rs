//! Benchmark of the central web app's heaviest pages on a city-sized store:
//! N requests (default 1,000,000) spread over Medan's 151 kelurahan and a
//! year, most finished, a third rated, each with its event history (filed,
//! taken by one of the kelurahan's five clerks, a third handed to an agency
//! and taken there, finished), seeded straight into the projection tables;
//! then the overview, IKM, time-lost and staff pages are rendered through
//! the real router (session cookie, templates, SQL), and the times are
//! printed.
//!
//! `cargo run --release -p loket-sync-server --example central_pages_bench -- 1000000 10 [KEEP_DIR]`
//!
//! `LOKET_BENCH_REUSE=1` measures a store an earlier run seeded and kept
//! (KEEP_DIR on SQLite, the database on PostgreSQL) without seeding it
//! again.
//!
//! With `LOKET_BENCH_DATABASE_URL=postgres://…` (an empty database) the
//! store is PostgreSQL instead of SQLite: the same seeding, the same pages.
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, header};
use loket_shared::wilayah::{self, Level};
use loket_sync_server::config::Config;
use loket_sync_server::setup::{self, InitArgs};
use loket_sync_server::store::{RowBatch, Value, accounts, projection};
use loket_sync_server::web::{AppState, router};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let reps: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(10);
    // A third argument keeps the seeded store there, for a look with sqlite3.
    let dir = tempfile::tempdir()?;
    let data = args.get(3).map_or_else(|| dir.path().join("data"), std::path::PathBuf::from);
    let database = std::env::var("LOKET_BENCH_DATABASE_URL").ok().filter(|u| !u.is_empty());
    // `LOKET_BENCH_REUSE=1` with a PostgreSQL URL, or with KEEP_DIR on
    // SQLite: measure the pages of a store an earlier run seeded (and
    // left), without seeding again: seed on a busy machine, measure on a
    // quiet one.
    let reuse = std::env::var_os("LOKET_BENCH_REUSE").is_some() && (database.is_some() || args.get(3).is_some());
    if reuse {
        let config = Config { data: data.clone(), database: database.clone(), ..Config::default() };
        std::fs::create_dir_all(&data)?;
        let db = setup::Place { data: data.clone(), database }.open(config.read_connections)?;
        println!("store: {} (reused, not seeded)", db.describe());
        let seal = db.write(loket_sync_server::seal::SealKey::load_or_create)?;
        let writer = loket_sync_server::central::Writer::new(&seal);
        return render_pages(AppState::new(db, config, seal, writer), reps);
    }
    setup::init(InitArgs {
        data: data.clone(),
        database: database.clone(),
        admin_user: "admin".parse().map_err(anyhow::Error::msg)?,
        admin_password: "rahasia-admin-1".into(),
        hostnames: vec![],
    })?;
    let config = Config { data: data.clone(), database: database.clone(), ..Config::default() };
    let db = setup::Place { data: data.clone(), database }.open(config.read_connections)?;
    println!("store: {}", db.describe());
    let seal = db.write(loket_sync_server::seal::SealKey::load_or_create)?;
    let writer = loket_sync_server::central::Writer::new(&seal);
    db.write(|tx| loket_sync_server::central::ensure_catalog(tx, &writer))?;

    let kelurahan: Vec<&'static str> = wilayah::medan(Level::Kelurahan).iter().map(|r| r.code).collect();
    let services = ["SKD", "SKU", "SKTM", "PKK", "PKTP", "PINDAH", "LAHIR", "MATI", "NIKAH", "WARIS", "SKCK", "RAMAI"];
    let year_start: i64 = 1_767_200_400_000; // 2026-01-01 00:00 WIB
    let t0 = Instant::now();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    // Rows go in as multi-row INSERTs through the store's seam, so the
    // same seeding runs on SQLite and PostgreSQL.
    let mut requests = RowBatch::new(
        "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency,
                               rated, created_at_ms, updated_at_ms, finished_at_ms, working_ms, journey) VALUES ",
        "(?, 'K001-0101-001', ?, 'K001', ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
    );
    let mut handoffs = RowBatch::new("INSERT INTO request_handoffs (agency, doc_id) VALUES ", "(?, ?)");
    let mut ratings = RowBatch::new(
        "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9, comment,
                             age_band, sex, education, occupation) VALUES ",
        "(?, 'r', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
    );
    db.write(|tx| -> Result<(), loket_sync_server::store::StoreError> {
        for i in 0..n {
            let kel = kelurahan[next(kelurahan.len() as u64) as usize];
            let created = year_start + next(365 * 86_400) as i64 * 1000;
            let finished = (next(10) < 8).then(|| created + next(10 * 86_400) as i64 * 1000);
            let working = finished.map(|f| (f - created) * 5 / 7);
            let status = if finished.is_some() { "completed" } else { "in_progress" };
            let rated = next(3) == 0;
            let id = format!("{i:016x}");
            // The history: filed, taken by a clerk, maybe at an agency, finished.
            let clerk = format!("1985031220100110{:02}", next(5));
            let end = finished.unwrap_or(created + 86_400_000);
            let span = (end - created).max(4);
            let mut steps: Vec<(i64, &str, &str, Option<&str>)> = vec![
                (created, "citizen", "submitted", None),
                (created + span / 4, clerk.as_str(), "in_progress", None),
            ];
            if next(3) == 0 {
                steps.push((created + span / 2, clerk.as_str(), "handed_off", Some("DISDUKCAPIL")));
                steps.push((created + span * 3 / 4, "agency:DISDUKCAPIL:rina", "in_progress", Some("DISDUKCAPIL")));
                handoffs.push(tx, vec!["DISDUKCAPIL".into(), id.clone().into()])?;
            }
            if let Some(f) = finished {
                steps.push((f, clerk.as_str(), "completed", None));
            }
            let journey: Vec<projection::EventRow> = steps
                .iter()
                .enumerate()
                .map(|(k, (at, by, to, agency))| {
                    let kind = if k == 0 { "create" } else { "transition" };
                    (*at, (*by).to_owned(), kind.to_owned(), (*to).to_owned(), agency.map(str::to_owned))
                })
                .collect();
            requests.push(
                tx,
                vec![
                    id.clone().into(),
                    kel.into(),
                    services[next(services.len() as u64) as usize].into(),
                    status.into(),
                    (next(1000) == 0).into(),
                    rated.into(),
                    created.into(),
                    created.into(),
                    finished.into(),
                    working.into(),
                    projection::pack_journey(&journey)?.into(),
                ],
            )?;
            if rated {
                let mut row: Vec<Value> = vec![id.clone().into(), (finished.unwrap_or(created) + 60_000).into()];
                row.extend((0..9).map(|_| Value::from(2 + next(3) as i64)));
                // The respondent profile: each question answered three
                // times in four, so `skm_profile` holds every code.
                for d in loket_shared::respondent::Dimension::ALL {
                    let choices = d.choices();
                    let pick = next(4 * choices.len() as u64 / 3 + 1) as usize;
                    row.push(choices.get(pick).map(|c| c.code).into());
                }
                ratings.push(tx, row)?;
            }
        }
        requests.flush(tx)?;
        handoffs.flush(tx)?;
        ratings.flush(tx)?;
        Ok(())
    })?;
    // Seeded straight into the projections, as a tool would: the rollups
    // and step times are computed from them, as after a store is copied.
    let t1 = Instant::now();
    let measured = db.write(projection::rebuild_rollups)?;
    println!("rollups of {measured} requests computed in {:.1} s", t1.elapsed().as_secs_f64());
    // Fresh planner statistics, as a store in service has (both engines
    // spell it the same).
    db.write(|tx| tx.batch("ANALYZE"))?;
    println!("seeded {n} requests over {} kelurahan in {:.1} s", kelurahan.len(), t0.elapsed().as_secs_f64());

    render_pages(AppState::new(db, config, seal, writer), reps)
}

/// Renders each page `reps` times (after a warm-up) and prints the times.
fn render_pages(state: AppState, reps: usize) -> anyhow::Result<()> {
    let (token, hash) = loket_sync_server::auth::new_token();
    let admin = "admin".parse().map_err(anyhow::Error::msg)?;
    state.db.write(|tx| accounts::create_session(tx, &hash, &admin, i64::MAX / 2, 0))?;
    let app = router(state);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // `LOKET_BENCH_PAGES=staf` renders only the pages whose path has it
    // (to profile one).
    let only = std::env::var("LOKET_BENCH_PAGES").ok();
    for page in [
        "/admin/ringkasan?periode=2026&per=kecamatan",
        "/admin/ringkasan?periode=2026&per=kelurahan",
        "/admin/ikm?periode=2026&per=kelurahan",
        "/admin/ikm?periode=2026&per=layanan&kelurahan=12.71.01.1001",
        "/admin/ikm?periode=2026&per=kecamatan",
        "/admin/ikm?periode=2026-Q4&per=layanan",
        "/admin/waktu?periode=2026-11",
        "/admin/waktu?periode=2026-Q4",
        "/admin/waktu?periode=2026",
        "/admin/staf?periode=2026-11",
        "/admin/staf?periode=2026",
    ]
    .into_iter()
    .filter(|page| only.as_deref().is_none_or(|o| page.contains(o)))
    {
        let mut times = Vec::with_capacity(reps);
        let mut bytes = 0;
        for rep in 0..=reps {
            let req = Request::builder()
                .uri(page)
                .header(header::COOKIE, format!("__Host-loket_session={token}"))
                .body(Body::empty())?;
            let t = Instant::now();
            let resp = runtime.block_on(app.clone().oneshot(req))?;
            anyhow::ensure!(resp.status().is_success(), "{page}: {}", resp.status());
            let body = runtime.block_on(axum::body::to_bytes(resp.into_body(), 1 << 24))?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            bytes = body.len();
            if rep > 0 {
                times.push(ms); // the first is a warm-up
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{page:45} median {:7.1} ms  max {:7.1} ms  ({} runs, {} KiB)",
            times[times.len() / 2],
            times[times.len() - 1],
            times.len(),
            bytes / 1024
        );
    }
    Ok(())
}
