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
    let (_database, dirs) = loket_tests::reconnect::init_servers(
        tmp.path(),
        args.database.as_deref(),
        args.instances,
        "bench_load",
    )?;
    for d in &dirs {
        // One loopback address for every kiosk (see the module's note).
        std::fs::write(
            d.join("server.toml"),
            "connections_per_address_max = 1024\nip_requests_per_second = 100000\n",
        )?;
    }
    let servers: Vec<ServerProcess> = dirs.iter().map(|d| ServerProcess::start(d)).collect::<anyhow::Result<_>>()?;
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
    let rss: Vec<u64> =
        pids.iter().map(|p| loket_tests::reconnect::rss_peak_bytes(*p).div_ceil(1024 * 1024)).collect();
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
    let r = https.post(format!("{base}/api/login")).json(&json!({ "username": user, "password": password })).send().await?;
    anyhow::ensure!(r.status().is_success(), "admin login: {}", r.status());
    let v: serde_json::Value = r.json().await?;
    Ok(v["token"].as_str().context("token")?.to_owned())
}
