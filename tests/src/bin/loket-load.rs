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
    let at = |q: f64| {
        after
            .get(((after.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| (d.as_secs_f64() * 1e3).round() / 1e3)
    };
    let expected = (kiosks.len() * per_kiosk) as u64;
    Ok(json!({
        "kiosks": kiosks.len(),
        "filed_offline_per_kiosk": per_kiosk,
        "store": if args.database.is_some() { "postgresql" } else { "sqlite" },
        "instances": servers.len(),
        "outage_s": args.outage,
        "filing_offline_s": (filed.as_secs_f64() * 10.0).round() / 10.0,
        "server_start_s": (returned.as_secs_f64() * 1e3).round() / 1e3,
        "converged_after_return_s": { "p50": at(0.5), "p90": at(0.9), "max": at(1.0) },
        "failed_syncs_after_return": converged.failures_since,
        "server_cpu_s_until_converged": (server_cpu * 100.0).round() / 100.0,
        "rated_requests_on_server": rated,
        "all_arrived": rated == expected,
        "note": "a kiosk has converged at its first successful sync after the server's return with nothing left to push; times count from the moment the server was started again (its start included)",
    }))
}
