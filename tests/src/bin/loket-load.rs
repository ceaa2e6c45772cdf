//! The load generator (issue 18, item 6; `loket_tests::load`): N kiosks
//! in one process, each enrolled with its own code, credential and
//! Automerge actor, each filing, working, rating and syncing requests at
//! a set pace through the real kiosk store and sync client.
//!
//! Against a running server:
//!
//! ```sh
//! loket-load --server https://loket.example:8443 --ca ca.pem \
//!   --admin-user admin --admin-password-file admin.pw --kiosks 50 --requests 60 --rate 0.5
//! ```
//!
//! Without `--server` it is the city's-load benchmark (BENCHMARKS.md): it
//! starts a server of its own (SQLite, or `--database URL --instances N`
//! on PostgreSQL, kiosk `i` talking to instance `i mod N`), runs the day
//! and prints one JSON object with the server's CPU seconds and peak RSS.
//! All the kiosks share this machine's loopback address, so that server
//! allows one address as many connections and requests as the city's
//! kiosks together would make from their own (`server.toml`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use loket_tests::load::{self, Target, Work};
use loket_tests::server::{ADMIN_USER, ServerProcess};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Many kiosks at once, speaking the real sync protocol")]
struct Args {
    /// Kiosks (spread over Medan's 151 kelurahan).
    #[arg(long, default_value_t = 300)]
    kiosks: usize,
    /// Requests each kiosk files (each with 4 status events and a rating).
    #[arg(long, default_value_t = 60)]
    requests: usize,
    /// Requests per second per kiosk (0: as fast as it can).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Kiosks enrolling at once.
    #[arg(long, default_value_t = 16)]
    enroll_parallel: usize,
    /// A running server's URL; without it, one is started here.
    #[arg(long, requires_all = ["ca", "admin_password_file"])]
    server: Option<String>,
    /// The CA the server's certificate is signed by (with --server).
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long, default_value = ADMIN_USER)]
    admin_user: String,
    /// A file holding the admin's password (with --server).
    #[arg(long)]
    admin_password_file: Option<PathBuf>,
    /// Without --server: the store in a fresh database on this PostgreSQL
    /// server (a URL whose role may create databases), dropped at the end.
    #[arg(long)]
    database: Option<String>,
    /// Without --server: instances on that database.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Where the kiosks' stores go (a temporary folder if not given).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Without --server: instead of the day, the reconnect storm after a
    /// city-wide outage. The kiosks run their own background sync loops;
    /// the server is stopped, each kiosk files this many requests (worked
    /// and rated), the outage lasts --outage seconds in all, and then the
    /// server returns on its address: the time until every kiosk has
    /// synced everything is measured.
    #[arg(long)]
    storm: Option<usize>,
    /// The outage's length for --storm, in seconds.
    #[arg(long, default_value_t = 30)]
    outage: u64,
    /// With --storm: every kiosk a real `kiosk serve` process (the
    /// binary beside this one) instead of a store in this process; the
    /// requests are filed through each kiosk's own API.
    #[arg(long, requires = "storm")]
    processes: bool,
    /// With --processes: as the server returns, every kiosk is also asked
    /// to sync through its API (`POST /api/sync`), as an operator might.
    #[arg(long, requires = "processes")]
    nudge: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Many kiosks' stores and TLS clients in one process: more threads
    // than the kiosk's own two.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build()?;
    let out = runtime.block_on(run(args))?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let tmp = loket_tests::TestDir::new("load");
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let work = Work { requests: args.requests, rate: args.rate };
    if let Some(server) = &args.server {
        let ca = std::fs::read_to_string(args.ca.as_ref().context("--ca")?)?;
        let password = std::fs::read_to_string(args.admin_password_file.as_ref().context("--admin-password-file")?)?;
        let https = loket_kiosk::sync::https_client(&ca, std::time::Duration::from_secs(60))?;
        let admin = login(&https, server, &args.admin_user, password.trim()).await?;
        let target = Target { base: server, ca_pem: &ca, https: &https, admin: &admin };
        eprintln!("enrolling {} kiosks with {server}…", args.kiosks);
        let kiosks = Arc::new(load::enroll(&target, &dir, args.kiosks, args.enroll_parallel).await?);
        eprintln!("each files {} requests…", args.requests);
        let report = load::run(&kiosks, &work).await?;
        load::shutdown(kiosks);
        return Ok(json!({ "kiosks": args.kiosks, "load": report.to_json() }));
    }
    let (_database, dirs) =
        loket_tests::reconnect::init_servers(tmp.path(), args.database.as_deref(), args.instances, "bench_load")?;
    for d in &dirs {
        // One loopback address for every kiosk (see the module's note).
        std::fs::write(d.join("server.toml"), "connections_per_address_max = 1024\nip_requests_per_second = 100000\n")?;
    }
    let mut servers: Vec<ServerProcess> =
        dirs.iter().map(|d| ServerProcess::start(d)).collect::<anyhow::Result<_>>()?;
    let https = servers[0].client();
    let admin = servers[0].admin_token(&https).await?;
    let ca = std::fs::read_to_string(servers[0].ca_pem())?;
    // Kiosk `i` enrolls with instance `i mod N` and syncs with it.
    eprintln!("enrolling {} kiosks on {} instance(s)…", args.kiosks, servers.len());
    let mut kiosks = Vec::new();
    let per_instance = args.kiosks.div_ceil(servers.len());
    for (n, server) in servers.iter().enumerate() {
        let target = Target { base: &server.base, ca_pem: &ca, https: &https, admin: &admin };
        let count = per_instance.min(args.kiosks - n * per_instance);
        let sub = dir.join(format!("via{n}"));
        kiosks.extend(load::enroll(&target, &sub, count, args.enroll_parallel).await?);
    }
    let kiosks = Arc::new(kiosks);
    if let Some(per_kiosk) = args.storm {
        if args.processes {
            return storm_processes(&args, kiosks, &mut servers, per_kiosk).await;
        }
        return storm(&args, kiosks, &mut servers, per_kiosk).await;
    }
    let pids: Vec<u32> = servers.iter().map(ServerProcess::pid).collect();
    let cpu = |pids: &[u32]| pids.iter().map(|p| loket_tests::reconnect::cpu_seconds(*p)).sum::<f64>();
    let me = std::process::id();
    let (server_before, kiosks_before) = (cpu(&pids), cpu(&[me]));
    eprintln!("each of {} kiosks files {} requests (4 events and a rating each)…", args.kiosks, args.requests);
    let report = load::run(&kiosks, &work).await?;
    let (server_cpu, kiosks_cpu) = (cpu(&pids) - server_before, cpu(&[me]) - kiosks_before);
    load::shutdown(kiosks);
    // Every request arrived finished and rated: the IKM counts each once.
    let ikm = servers[0].get_json(&https, &admin, "/api/admin/ikm?group_by=kecamatan").await?;
    let rated: u64 = ikm["groups"].as_array().into_iter().flatten().filter_map(|g| g["respondents"].as_u64()).sum();
    let rss: Vec<u64> = pids.iter().map(|p| loket_tests::reconnect::rss_peak_bytes(*p).div_ceil(1024 * 1024)).collect();
    Ok(json!({
        "kiosks": args.kiosks,
        "requests_per_kiosk": args.requests,
        "rate_per_kiosk": args.rate,
        "store": if args.database.is_some() { "postgresql" } else { "sqlite" },
        "instances": servers.len(),
        "load": report.to_json(),
        "server_cpu_s": (server_cpu * 100.0).round() / 100.0,
        "load_generator_cpu_s": (kiosks_cpu * 100.0).round() / 100.0,
        "server_peak_rss_mib": rss,
        "rated_requests_on_server": rated,
        "all_arrived": rated == report.requests as u64,
        "note": "sync_run_ms is one kiosk sync run (all its exchanges) timed at the kiosk; CPU is user + system of the server instances and of this process (every kiosk store and client)",
    }))
}

async fn login(https: &reqwest::Client, base: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let r =
        https.post(format!("{base}/api/login")).json(&json!({ "username": user, "password": password })).send().await?;
    anyhow::ensure!(r.status().is_success(), "admin login: {}", r.status());
    let v: serde_json::Value = r.json().await?;
    Ok(v["token"].as_str().context("token")?.to_owned())
}

/// The reconnect storm (issue 18, must show): see `Args::storm`.
async fn storm(
    args: &Args,
    kiosks: Arc<Vec<load::Kiosk>>,
    servers: &mut [ServerProcess],
    per_kiosk: usize,
) -> anyhow::Result<serde_json::Value> {
    use std::time::{Duration, Instant};
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut loops = load::start_loops(&kiosks, &stopped);
    let addrs: Vec<_> = servers.iter().map(ServerProcess::addr).collect();
    let dirs: Vec<_> = servers.iter().map(|s| s.data.clone()).collect();
    // The city-wide outage: the server is gone.
    for s in servers.iter_mut() {
        s.kill();
    }
    let down = Instant::now();
    eprintln!("server down; each of {} kiosks files {per_kiosk} requests offline…", kiosks.len());
    load::offline_work(&kiosks, per_kiosk, 10_000_000).await?;
    let filed = down.elapsed();
    tokio::time::sleep_until((down + Duration::from_secs(args.outage)).into()).await;
    let failures_before = load::failures(&kiosks);
    eprintln!("server back after {:.0} s ({failures_before} failed syncs meanwhile)…", down.elapsed().as_secs_f64());
    let back = Instant::now();
    let back_ms = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis())?;
    for (i, (d, a)) in dirs.iter().zip(&addrs).enumerate() {
        servers[i] = ServerProcess::restart_on(d, *a)?;
    }
    let pids: Vec<u32> = servers.iter().map(ServerProcess::pid).collect();
    let returned = back.elapsed();
    let converged = load::converged(&kiosks, back, back_ms, failures_before, Duration::from_secs(300)).await?;
    let server_cpu: f64 = pids.iter().map(|p| loket_tests::reconnect::cpu_seconds(*p)).sum();
    let _ = stop.send(true);
    while loops.join_next().await.is_some() {}
    let https = servers[0].client();
    let admin = servers[0].admin_token(&https).await?;
    let ikm = servers[0].get_json(&https, &admin, "/api/admin/ikm?group_by=kecamatan").await?;
    let rated: u64 = ikm["groups"].as_array().into_iter().flatten().filter_map(|g| g["respondents"].as_u64()).sum();
    load::shutdown(kiosks.clone());
    let mut after = converged.after.clone();
    after.sort();
    let expected = (kiosks.len() * per_kiosk) as u64;
    Ok(json!({
        "kiosks": kiosks.len(),
        "filed_offline_per_kiosk": per_kiosk,
        "store": if args.database.is_some() { "postgresql" } else { "sqlite" },
        "instances": servers.len(),
        "outage_s": args.outage,
        "filing_offline_s": (filed.as_secs_f64() * 10.0).round() / 10.0,
        "server_start_s": (returned.as_secs_f64() * 1e3).round() / 1e3,
        "converged_after_return_s": quantiles_s(&after),
        "failed_syncs_after_return": converged.failures_since,
        "server_cpu_s_until_converged": (server_cpu * 100.0).round() / 100.0,
        "rated_requests_on_server": rated,
        "all_arrived": rated == expected,
        "note": "a kiosk has converged at its first successful sync after the server's return with nothing left to push; times count from the moment the server was started again (its start included)",
    }))
}

/// The reconnect storm with every kiosk a process of its own (`--storm N
/// --processes`): the kiosks enrolled above are stopped here and started
/// as `kiosk serve`, each with its own background sync loop and backoff.
/// The server is killed, each kiosk files N requests through its API,
/// and after the outage the server returns on its address. A kiosk has
/// converged when its `/healthz` shows nothing left to push (it can only
/// get there through a successful sync after the return); every kiosk is
/// polled in turn, 16 at a time, so a time is late by at most one round
/// of polls (`poll_round_ms_max`).
async fn storm_processes(
    args: &Args,
    kiosks: Arc<Vec<load::Kiosk>>,
    servers: &mut [ServerProcess],
    per_kiosk: usize,
) -> anyhow::Result<serde_json::Value> {
    use std::time::{Duration, Instant};
    let dirs: Vec<PathBuf> = kiosks.iter().map(|k| k.data.clone()).collect();
    load::shutdown(kiosks);
    eprintln!("starting {} kiosk processes…", dirs.len());
    let mut procs = Vec::with_capacity(dirs.len());
    for d in &dirs {
        procs.push(loket_tests::KioskProcess::start_with(d, &[("RUST_LOG", "warn")])?);
    }
    let pids: Vec<u32> = procs.iter().map(loket_tests::KioskProcess::pid).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(4).build()?;
    let addrs: Vec<_> = servers.iter().map(ServerProcess::addr).collect();
    let server_dirs: Vec<_> = servers.iter().map(|s| s.data.clone()).collect();
    for s in servers.iter_mut() {
        s.kill();
    }
    let down = Instant::now();
    eprintln!("server down; each of {} kiosks files {per_kiosk} requests through its API…", procs.len());
    let bases: Vec<String> = procs.iter().map(|p| p.base.clone()).collect();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut filing_tasks = tokio::task::JoinSet::new();
    for (i, base) in bases.iter().enumerate() {
        let (client, base, limit) = (client.clone(), base.clone(), limit.clone());
        filing_tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            for j in 0..per_kiosk {
                let n = (20_000_000 + i * per_kiosk + j) as u64;
                let body =
                    json!({ "service": "SKD", "applicant": { "name": "Warga Badai", "nik": loket_tests::nik(n) } });
                let r = client.post(format!("{base}/api/requests")).json(&body).send().await?;
                anyhow::ensure!(r.status().is_success(), "kiosk {i} filing: {}", r.status());
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = filing_tasks.join_next().await {
        done??;
    }
    let filing = down.elapsed();
    tokio::time::sleep_until((down + Duration::from_secs(args.outage)).into()).await;
    eprintln!("server back after {:.0} s…", down.elapsed().as_secs_f64());
    let back = Instant::now();
    for (i, (d, a)) in server_dirs.iter().zip(&addrs).enumerate() {
        servers[i] = ServerProcess::restart_on(d, *a)?;
    }
    let server_pids: Vec<u32> = servers.iter().map(ServerProcess::pid).collect();
    let returned = back.elapsed();
    if args.nudge {
        for base in &bases {
            let (client, url) = (client.clone(), format!("{base}/api/sync"));
            tokio::spawn(async move { client.post(url).send().await });
        }
    }
    let mut after: Vec<Option<Duration>> = vec![None; bases.len()];
    let mut round_max = Duration::ZERO;
    while after.iter().any(Option::is_none) {
        anyhow::ensure!(back.elapsed() < Duration::from_secs(300), "kiosks not converged within 300 s");
        let round = Instant::now();
        let waiting: Vec<usize> = (0..bases.len()).filter(|i| after[*i].is_none()).collect();
        let mut polls = tokio::task::JoinSet::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(16));
        for i in waiting {
            let (client, url, limit) = (client.clone(), format!("{}/healthz", bases[i]), limit.clone());
            polls.spawn(async move {
                let _permit = limit.acquire_owned().await?;
                let v: serde_json::Value = client.get(url).send().await?.json().await?;
                anyhow::Ok((i, v["pending_changes"].as_u64()))
            });
        }
        while let Some(p) = polls.join_next().await {
            if let (i, Some(0)) = p?? {
                after[i] = Some(back.elapsed());
            }
        }
        round_max = round_max.max(round.elapsed());
    }
    let server_cpu: f64 = server_pids.iter().map(|p| loket_tests::reconnect::cpu_seconds(*p)).sum();
    let kiosk_rss_mib: u64 =
        pids.iter().map(|p| loket_tests::reconnect::rss_peak_bytes(*p)).sum::<u64>().div_ceil(1024 * 1024);
    let https = servers[0].client();
    let admin = servers[0].admin_token(&https).await?;
    let expected = (bases.len() * per_kiosk) as u64;
    let mut on_server = 0u64;
    let mut page = "/api/admin/requests?status=submitted&limit=1000".to_owned();
    loop {
        let listed = servers[0].get_json(&https, &admin, &page).await?;
        on_server += listed["items"].as_array().map_or(0, Vec::len) as u64;
        match listed["next"].as_str() {
            Some(next) => page = format!("/api/admin/requests?status=submitted&limit=1000&cursor={next}"),
            None => break,
        }
    }
    for mut p in procs {
        p.terminate()?;
    }
    let mut after: Vec<Duration> = after.into_iter().flatten().collect();
    after.sort();
    Ok(json!({
        "kiosks": bases.len(),
        "kiosk_processes": true,
        "nudged_through_api": args.nudge,
        "filed_offline_per_kiosk": per_kiosk,
        "instances": servers.len(),
        "outage_s": args.outage,
        "filing_offline_s": (filing.as_secs_f64() * 10.0).round() / 10.0,
        "server_start_s": (returned.as_secs_f64() * 1e3).round() / 1e3,
        "converged_after_return_s": quantiles_s(&after),
        "poll_round_ms_max": (round_max.as_secs_f64() * 1e3).round(),
        "server_cpu_s_until_converged": (server_cpu * 100.0).round() / 100.0,
        "kiosk_processes_peak_rss_mib_total": kiosk_rss_mib,
        "submitted_requests_on_server": on_server,
        "all_arrived": on_server == expected,
        "note": "a kiosk has converged when its /healthz shows no pending changes, polled in rounds; times count from the moment the server was started again (its start included)",
    }))
}

/// p50 / p90 / max of sorted durations, in seconds to the millisecond.
fn quantiles_s(sorted: &[std::time::Duration]) -> serde_json::Value {
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| (d.as_secs_f64() * 1e3).round() / 1e3)
    };
    json!({ "p50": at(0.5), "p90": at(0.9), "max": at(1.0) })
}
