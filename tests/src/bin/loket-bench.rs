//! `loket-bench`: benchmarks that drive the real binaries over real sockets.
//!
//! `kiosk-write` measures the citizen write path, `POST /api/requests`,
//! against a real `kiosk serve` (no sync server). For every scenario
//! (stored documents × concurrent clients) a fresh kiosk process starts on
//! its own copy of the data, so its memory starts cold as after a reboot
//! (the OS page cache is not dropped). The clients run a warm-up, then a
//! fixed number of measured requests, each timed client-side from sending
//! the request to the last byte of the answer. Then the kiosk's peak RSS
//! (`VmHWM`) is read, the kiosk is stopped with SIGTERM (it must exit
//! cleanly), and the database size and document count are read from disk.
//!
//! Seeding never goes through HTTP: the bench opens the store itself
//! (`DocStore::open`) and keeps many `create_request` calls in flight so the
//! group commit batches them, then shuts the store down. Each document
//! count is seeded once and the database file copied for every scenario
//! that uses it, so every scenario starts with exactly that many request
//! documents.
//!
//! The machine is shared by the clients and the kiosk (and anything else
//! running): the CPU time of each during the measured phase is recorded,
//! and a run disturbed by other processes is flagged.
//!
//! Output: a table for people, then one line `RESULT {json}` for scripts.
//! Exits 1 if any request failed, a document count was wrong or the kiosk
//! did not stop cleanly; with `--fail-on-target-miss`, also if a target was
//! missed; 2 on any other error (such as a missing kiosk binary).
//!
//! `cargo build --release -p loket-kiosk`, then
//! `cargo run --release -p loket-tests --bin loket-bench -- kiosk-write`
//! (under cargo the harness rebuilds the kiosk binary if it is stale).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use loket_kiosk::store::{CreateInput, DocStore, StoreOptions};
use loket_shared::request::Applicant;
use loket_tests::{KioskProcess, http_client, init_kiosk, nik, target_profile_dir};
use serde::Serialize;

const KIOSK_CODE: &str = "K01";
const SERVICE: &str = "SKD";
const APPLICANT_NAME: &str = "Warga Uji";
/// Request numbers (for the NIK) of measured traffic start here, away from
/// the seeded ones.
const TRAFFIC_INDEX_BASE: u64 = 10_000_000;
/// Examples of failures kept per scenario (all are counted).
const ERROR_EXAMPLES_MAX: usize = 5;

#[derive(Parser)]
#[command(name = "loket-bench", about = "Loket benchmarks against the real binaries")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The kiosk write path: `POST /api/requests` over HTTP against a real
    /// `kiosk serve`, for each number of stored documents and clients.
    KioskWrite(KioskWriteArgs),
}

#[derive(Args, Debug, Clone, Serialize)]
struct KioskWriteArgs {
    /// Request documents stored before each scenario (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,50000")]
    docs: Vec<u64>,
    /// Concurrent clients, each one request at a time (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    clients: Vec<usize>,
    /// Measured requests per scenario.
    #[arg(long, default_value_t = 2000)]
    requests: u64,
    /// Requests per scenario sent before measuring (not counted).
    #[arg(long, default_value_t = 100)]
    warmup: u64,
    /// `create_request` calls in flight while seeding. The store refuses
    /// work beyond its queue limit, so keep this below `write_queue_max`.
    #[arg(long, default_value_t = 512)]
    seed_concurrency: usize,
    /// `RUST_LOG` of the kiosk process (its production default).
    #[arg(long, default_value = "info,tower_http=warn")]
    kiosk_log: String,
    /// Extra environment of the kiosk process, `KEY=VALUE` (repeatable),
    /// e.g. `MIMALLOC_ALLOW_THP=0` or `LOKET_KIOSK_WRITE_BATCH_MAX=16`.
    #[arg(long, value_parser = parse_env_pair)]
    kiosk_env: Vec<(String, String)>,
    /// Directory for the benchmark's data (a new temporary directory if
    /// absent). It must be on the disk you want to measure: fsync cost is
    /// most of a write.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the data directories afterwards.
    #[arg(long)]
    keep: bool,
    /// Target: p99 latency, in milliseconds, with `synchronous=FULL`.
    #[arg(long, default_value_t = 10.0)]
    p99_target_ms: f64,
    /// Target: peak RSS of the kiosk process, in MiB (stated for 50,000
    /// documents; checked in every scenario, as fewer documents must not
    /// need more).
    #[arg(long, default_value_t = 64.0)]
    rss_target_mib: f64,
    /// Exit non-zero when a target is missed, not only on failures.
    #[arg(long)]
    fail_on_target_miss: bool,
}

fn parse_env_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {raw:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::KioskWrite(args) => kiosk_write(args),
    };
    match outcome {
        Ok(Verdict::Pass) => ExitCode::SUCCESS,
        Ok(Verdict::Fail(why)) => {
            eprintln!("loket-bench: FAILED: {why}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("loket-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

enum Verdict {
    Pass,
    Fail(String),
}

// ------------------------------------------------------------ kiosk-write

#[derive(Debug, Serialize)]
struct Machine {
    nproc: usize,
    kernel: String,
    cpu: String,
    memory_total_kib: Option<u64>,
    bench_dir: String,
    bench_dir_fs: String,
    build_profile: String,
    kiosk_bin: String,
}

#[derive(Debug, Serialize)]
struct Git {
    commit: Option<String>,
    dirty: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Seeded {
    docs: u64,
    seconds: f64,
    docs_per_s: f64,
    db_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Scenario {
    docs: u64,
    clients: usize,
    warmup: u64,
    requests: u64,
    ok: u64,
    failures: u64,
    failure_examples: Vec<String>,
    seconds: f64,
    requests_per_s: f64,
    latency_ms: Latency,
    /// CPU time during the measured phase, in seconds.
    cpu: CpuUse,
    /// Kiosk CPU time per measured request (all its threads).
    kiosk_cpu_ms_per_request: f64,
    /// Once the kiosk prints its address (before it opens the store).
    rss_start_kib: u64,
    /// After the warm-up requests.
    rss_warm_kib: u64,
    rss_peak_kib: u64,
    rss_end_kib: u64,
    rss_end_anon_kib: u64,
    rss_end_file_kib: u64,
    threads: u64,
    /// `kiosk.db` after a clean stop.
    db_bytes: u64,
    /// Its WAL after a clean stop (0 if the kiosk checkpointed on exit).
    wal_bytes: u64,
    /// The WAL just after the measured run, before stopping.
    wal_bytes_running: u64,
    request_docs_after: u64,
    request_docs_expected: u64,
    clean_stop: bool,
    p99_met: bool,
    rss_met: bool,
}

#[derive(Debug, Default, Serialize)]
struct Latency {
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

#[derive(Debug, Serialize)]
struct Targets {
    p99_ms_max: f64,
    p99_note: &'static str,
    rss_mib_max: f64,
    rss_note: &'static str,
    p99_met: bool,
    rss_met: bool,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    bench: &'static str,
    machine: &'a Machine,
    git: &'a Git,
    args: &'a KioskWriteArgs,
    seeded: &'a [Seeded],
    scenarios: &'a [Scenario],
    targets: Targets,
    failures: u64,
    ok: bool,
}

fn kiosk_write(args: KioskWriteArgs) -> anyhow::Result<Verdict> {
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    anyhow::ensure!(!args.docs.is_empty() && !args.clients.is_empty(), "give at least one --docs and one --clients");
    anyhow::ensure!(args.clients.iter().all(|&c| (1..=1024).contains(&c)), "--clients must each be 1..=1024");
    anyhow::ensure!((1..=1000).contains(&args.seed_concurrency), "--seed-concurrency must be 1..=1000");
    let kiosk_bin = kiosk_binary()?;

    // Removed on return unless --keep (or --dir) says otherwise.
    let mut _temp = None;
    let root = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            let t = tempfile::Builder::new().prefix("loket-bench-").tempdir().context("creating a temp dir")?;
            if args.keep {
                t.keep()
            } else {
                let path = t.path().to_path_buf();
                _temp = Some(t);
                path
            }
        }
    };

    let machine = machine_facts(&root, &kiosk_bin);
    let git = git_facts();
    print_header(&machine, &git, &args);
    if machine.build_profile != "release" {
        eprintln!("warning: this is a {} build; figures are only meaningful in release", machine.build_profile);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;

    let mut seeded = Vec::new();
    let mut seed_dirs = Vec::new();
    let mut wanted: Vec<u64> = args.docs.iter().copied().filter(|&d| d > 0).collect();
    wanted.sort_unstable();
    wanted.dedup();
    for &docs in &wanted {
        let dir = root.join(format!("seed-{docs}"));
        println!("seeding {docs} documents in {} ...", dir.display());
        let s = seed(&runtime, &dir, docs, args.seed_concurrency)?;
        println!(
            "seeded {docs} documents in {:.1} s ({:.0}/s), database {:.1} MiB",
            s.seconds,
            s.docs_per_s,
            mib(s.db_bytes)
        );
        seeded.push(s);
        seed_dirs.push((docs, dir));
    }

    let mut scenarios = Vec::new();
    for &docs in &args.docs {
        for &clients in &args.clients {
            let dir = root.join(format!("run-d{docs}-c{clients}"));
            let seed_dir = seed_dirs.iter().find(|(d, _)| *d == docs).map(|(_, p)| p.as_path());
            println!("scenario: {docs} documents, {clients} client(s) ...");
            let s = run_scenario(&runtime, &args, &dir, seed_dir, docs, clients)?;
            println!(
                "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, peak RSS {:.1} MiB, {} failure(s)",
                s.requests_per_s,
                s.latency_ms.p50,
                s.latency_ms.p99,
                s.latency_ms.max,
                kib_to_mib(s.rss_peak_kib),
                s.failures
            );
            if !args.keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            scenarios.push(s);
        }
    }
    if args.keep {
        println!("kept {}", root.display());
    } else {
        for (_, dir) in &seed_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    print_table(&scenarios, &args);
    let failures: u64 = scenarios.iter().map(|s| s.failures).sum();
    let unclean = scenarios.iter().filter(|s| !s.clean_stop).count();
    let miscounted = scenarios.iter().filter(|s| s.request_docs_after != s.request_docs_expected).count();
    let p99_met = scenarios.iter().all(|s| s.p99_met);
    let rss_met = scenarios.iter().all(|s| s.rss_met);
    let ok = failures == 0 && unclean == 0 && miscounted == 0;
    println!(
        "targets: p99 <= {} ms (synchronous=FULL): {}; peak RSS <= {} MiB: {}",
        args.p99_target_ms,
        met(p99_met),
        args.rss_target_mib,
        met(rss_met)
    );
    let report = Report {
        bench: "kiosk-write",
        machine: &machine,
        git: &git,
        args: &args,
        seeded: &seeded,
        scenarios: &scenarios,
        targets: Targets {
            p99_ms_max: args.p99_target_ms,
            p99_note: "client-side, per scenario, kiosk with synchronous=FULL (its only setting)",
            rss_mib_max: args.rss_target_mib,
            rss_note: "VmHWM of the kiosk process; stated for 50,000 documents, checked in every scenario",
            p99_met,
            rss_met,
        },
        failures,
        ok,
    };
    println!("RESULT {}", serde_json::to_string(&report)?);

    if !ok {
        return Ok(Verdict::Fail(format!(
            "{failures} failed request(s), {unclean} unclean stop(s), {miscounted} scenario(s) with a wrong document count"
        )));
    }
    if args.fail_on_target_miss && !(p99_met && rss_met) {
        return Ok(Verdict::Fail("a target was missed".into()));
    }
    Ok(Verdict::Pass)
}

/// The kiosk binary the harness will run, or a clear error. Under `cargo
/// run` the harness first builds it in this bench's profile; run directly,
/// the bench needs it built already.
fn kiosk_binary() -> anyhow::Result<PathBuf> {
    const HOW: &str = "build it first with `cargo build --release -p loket-kiosk` (the same profile as this \
                       bench), or point LOKET_TEST_KIOSK_BIN at one";
    // The harness reports a missing or unbuildable binary by panicking,
    // right for a test; here it deserves a plain message.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = std::panic::catch_unwind(loket_tests::kiosk_bin);
    std::panic::set_hook(hook);
    match found {
        Ok(bin) if bin.is_file() => Ok(bin),
        Ok(bin) => bail!("the kiosk binary {} is missing: {HOW}", bin.display()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown reason".into());
            bail!("no kiosk binary ({why}): {HOW}")
        }
    }
}

fn create_input(i: u64) -> anyhow::Result<CreateInput> {
    Ok(CreateInput {
        service: SERVICE.parse().map_err(|e| anyhow!("service code: {e}"))?,
        applicant: Applicant {
            name: APPLICANT_NAME.parse().map_err(|e| anyhow!("name: {e}"))?,
            nik: nik(i).parse().map_err(|e| anyhow!("nik: {e}"))?,
            phone: None,
        },
    })
}

/// Initialises a kiosk in `dir` and stores `docs` requests through the
/// store's own API, many in flight so that the group commit batches them.
fn seed(runtime: &tokio::runtime::Runtime, dir: &Path, docs: u64, concurrency: usize) -> anyhow::Result<Seeded> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    init_kiosk(dir, KIOSK_CODE)?;
    let db = dir.join("kiosk.db");
    let options = StoreOptions { write_batch_max: 256, write_queue_max: 2048, ..StoreOptions::default() };
    let store = Arc::new(DocStore::open(&db, options).with_context(|| format!("opening {}", db.display()))?);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let store = store.clone();
            let next = next.clone();
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= docs {
                        return anyhow::Ok(());
                    }
                    store
                        .create_request(create_input(i)?, None)
                        .await
                        .map_err(|e| anyhow!("seeding request {i}: {e}"))?;
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.context("seeding task")??;
        }
        anyhow::Ok(())
    })?;
    let store = Arc::try_unwrap(store).map_err(|_| anyhow!("the store is still shared after seeding"))?;
    store.shutdown();
    let seconds = started.elapsed().as_secs_f64();
    // The store's read-only connections close last and cannot checkpoint,
    // so the WAL outlives it; fold it in so that one file can be copied.
    let conn = rusqlite::Connection::open(&db).with_context(|| format!("opening {}", db.display()))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    let stored = count_request_docs(&db)?;
    anyhow::ensure!(stored == docs, "seeding stored {stored} request documents, not {docs}");
    anyhow::ensure!(file_len(&dir.join("kiosk.db-wal")) == 0, "the WAL is not empty after a checkpoint");
    Ok(Seeded { docs, seconds, docs_per_s: docs as f64 / seconds, db_bytes: file_len(&db) })
}

fn count_request_docs(db: &Path) -> anyhow::Result<u64> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", db.display()))?;
    let n: i64 = conn.query_row("SELECT count(*) FROM docs WHERE doc_type = 'request'", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn run_scenario(
    runtime: &tokio::runtime::Runtime,
    args: &KioskWriteArgs,
    dir: &Path,
    seed_dir: Option<&Path>,
    docs: u64,
    clients: usize,
) -> anyhow::Result<Scenario> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    match seed_dir {
        Some(seed) => {
            std::fs::create_dir_all(dir)?;
            std::fs::copy(seed.join("kiosk.db"), dir.join("kiosk.db"))
                .with_context(|| format!("copying the seeded database to {}", dir.display()))?;
        }
        None => init_kiosk(dir, KIOSK_CODE)?,
    }
    let db = dir.join("kiosk.db");
    // Write the fresh copy out now: otherwise the kiosk's first checkpoint
    // fsync pays for flushing the whole copied file (measured: 78 ms at
    // 50,000 documents), which a kiosk after a reboot never does.
    std::fs::File::open(&db).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", db.display()))?;

    let mut env = vec![("RUST_LOG", args.kiosk_log.as_str())];
    env.extend(args.kiosk_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut kiosk = KioskProcess::start_with(dir, &env)?;
    let pid = kiosk.pid();
    let rss_start_kib = proc_status_kib(pid, "VmRSS")?;
    let url: Arc<str> = Arc::from(kiosk.url("/api/requests"));

    let (warm, rss_warm_kib, measured, seconds, cpu) = runtime.block_on(async {
        let client = http_client();
        let base = TRAFFIC_INDEX_BASE;
        let warm = drive(&client, &url, clients, base..base + args.warmup).await;
        let rss_warm_kib = proc_status_kib(pid, "VmRSS").unwrap_or(0);
        let cpu_before = CpuSnapshot::take(pid);
        let started = Instant::now();
        let measured = drive(&client, &url, clients, base + args.warmup..base + args.warmup + args.requests).await;
        let seconds = started.elapsed().as_secs_f64();
        (warm, rss_warm_kib, measured, seconds, CpuSnapshot::take(pid).since(&cpu_before))
    });
    if cpu.other_s > 0.1 * seconds {
        eprintln!(
            "  warning: other processes used {:.2} s of CPU during the {seconds:.2} s run: figures are disturbed",
            cpu.other_s
        );
    }

    let rss_peak_kib = proc_status_kib(pid, "VmHWM")?;
    let rss_end_kib = proc_status_kib(pid, "VmRSS")?;
    let rss_end_anon_kib = proc_status_kib(pid, "RssAnon")?;
    let rss_end_file_kib = proc_status_kib(pid, "RssFile")?;
    let threads = proc_status_kib(pid, "Threads")?;
    let wal_bytes_running = file_len(&dir.join("kiosk.db-wal"));
    let clean_stop = match kiosk.terminate() {
        Ok(status) => status.success(),
        Err(e) => {
            eprintln!("  kiosk did not stop cleanly: {e:#}");
            false
        }
    };
    let request_docs_after = count_request_docs(&db)?;
    let db_bytes = file_len(&db);
    let wal_bytes = file_len(&dir.join("kiosk.db-wal"));

    let ok = warm.ok + measured.ok;
    let failures = warm.failures + measured.failures;
    let mut failure_examples = warm.examples;
    failure_examples.extend(measured.examples);
    failure_examples.truncate(ERROR_EXAMPLES_MAX);
    for e in &failure_examples {
        eprintln!("  failure: {e}");
    }
    let latency_ms = latency(measured.latencies_us);
    Ok(Scenario {
        docs,
        clients,
        warmup: args.warmup,
        requests: args.requests,
        ok,
        failures,
        failure_examples,
        seconds,
        requests_per_s: measured.ok as f64 / seconds,
        p99_met: measured.ok > 0 && latency_ms.p99 <= args.p99_target_ms,
        rss_met: kib_to_mib(rss_peak_kib) <= args.rss_target_mib,
        latency_ms,
        kiosk_cpu_ms_per_request: cpu.kiosk_s * 1000.0 / measured.ok.max(1) as f64,
        cpu,
        rss_start_kib,
        rss_warm_kib,
        rss_peak_kib,
        rss_end_kib,
        rss_end_anon_kib,
        rss_end_file_kib,
        threads,
        db_bytes,
        wal_bytes,
        wal_bytes_running,
        request_docs_after,
        // A failed request may still have been stored (an answer lost after
        // the commit), so only a clean run has an exact expectation.
        request_docs_expected: if failures == 0 { docs + ok } else { request_docs_after },
        clean_stop,
    })
}

#[derive(Default)]
struct Phase {
    ok: u64,
    failures: u64,
    examples: Vec<String>,
    latencies_us: Vec<u64>,
}

/// Sends the requests numbered `range` from `clients` concurrent clients,
/// each one request at a time, sharing one HTTP client (and its pool).
async fn drive(client: &reqwest::Client, url: &Arc<str>, clients: usize, range: Range<u64>) -> Phase {
    let next = Arc::new(AtomicU64::new(range.start));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, url, next, end) = (client.clone(), url.clone(), next.clone(), range.end);
        tasks.spawn(async move {
            let mut phase = Phase::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return phase;
                }
                let body = serde_json::json!({
                    "service": SERVICE,
                    "applicant": { "name": APPLICANT_NAME, "nik": nik(i) },
                });
                let body = serde_json::to_vec(&body).expect("a JSON value serialises");
                match post(&client, &url, body).await {
                    Ok(us) => {
                        phase.ok += 1;
                        phase.latencies_us.push(us);
                    }
                    Err(e) => {
                        phase.failures += 1;
                        if phase.examples.len() < ERROR_EXAMPLES_MAX {
                            phase.examples.push(format!("request {i}: {e:#}"));
                        }
                    }
                }
            }
        });
    }
    let mut all = Phase::default();
    while let Some(joined) = tasks.join_next().await {
        let phase = joined.unwrap_or_else(|e| Phase {
            failures: 1,
            examples: vec![format!("client task failed: {e}")],
            ..Phase::default()
        });
        all.ok += phase.ok;
        all.failures += phase.failures;
        all.examples.extend(phase.examples);
        all.latencies_us.extend(phase.latencies_us);
    }
    all
}

/// One request; its latency in µs (send to last byte) if it was a 201 with
/// a ticket.
async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<u64> {
    let started = Instant::now();
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .context("sending")?;
    let status = resp.status();
    let bytes = resp.bytes().await.context("reading the answer")?;
    let elapsed = started.elapsed();
    if status != reqwest::StatusCode::CREATED {
        bail!("status {status}: {}", String::from_utf8_lossy(&bytes));
    }
    let answer: serde_json::Value = serde_json::from_slice(&bytes).context("answer is not JSON")?;
    anyhow::ensure!(answer["ticket"].is_string() && answer["id"].is_string(), "answer without id or ticket: {answer}");
    Ok(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
}

fn latency(mut us: Vec<u64>) -> Latency {
    if us.is_empty() {
        return Latency::default();
    }
    us.sort_unstable();
    // Nearest rank: the smallest value with at least p of the samples at or below it.
    let rank = |p: f64| {
        let n = us.len();
        let k = ((p * n as f64).ceil() as usize).clamp(1, n);
        us[k - 1] as f64 / 1000.0
    };
    let sum: u64 = us.iter().sum();
    Latency {
        mean: sum as f64 / us.len() as f64 / 1000.0,
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        p999: rank(0.999),
        max: *us.last().expect("not empty") as f64 / 1000.0,
    }
}

// ------------------------------------------------------------ facts

/// A `kB` (or plain count) field of `/proc/<pid>/status`.
fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

/// CPU time of the kiosk, of this bench, and of the whole machine, in
/// clock ticks, to tell how busy the machine was and who was busy.
struct CpuSnapshot {
    kiosk: u64,
    bench: u64,
    machine_busy: u64,
}

#[derive(Debug, Serialize)]
struct CpuUse {
    kiosk_s: f64,
    bench_s: f64,
    /// Everything else on the machine: should be near zero.
    other_s: f64,
}

/// `USER_HZ`, the unit of `/proc` CPU times (100 on every Linux port
/// that matters here).
const TICKS_PER_S: f64 = 100.0;

impl CpuSnapshot {
    fn take(kiosk_pid: u32) -> CpuSnapshot {
        CpuSnapshot {
            kiosk: process_ticks(&format!("/proc/{kiosk_pid}/stat")).unwrap_or(0),
            bench: process_ticks("/proc/self/stat").unwrap_or(0),
            machine_busy: machine_busy_ticks().unwrap_or(0),
        }
    }

    fn since(&self, before: &CpuSnapshot) -> CpuUse {
        let kiosk = self.kiosk.saturating_sub(before.kiosk);
        let bench = self.bench.saturating_sub(before.bench);
        let busy = self.machine_busy.saturating_sub(before.machine_busy);
        CpuUse {
            kiosk_s: kiosk as f64 / TICKS_PER_S,
            bench_s: bench as f64 / TICKS_PER_S,
            other_s: busy.saturating_sub(kiosk + bench) as f64 / TICKS_PER_S,
        }
    }
}

/// utime + stime of a process (all its threads) from `/proc/<pid>/stat`.
fn process_ticks(path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Ticks every CPU spent not idle, from the first line of `/proc/stat`.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    let all: u64 = ticks.iter().take(8).sum();
    Some(all.saturating_sub(ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0)))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn machine_facts(dir: &Path, kiosk_bin: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let dir_str = dir.display().to_string();
    Machine {
        nproc: std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default(),
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_default(),
        memory_total_kib: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse().ok()),
        bench_dir_fs: command_output("stat", &["-f", "-c", "%T", &dir_str]).unwrap_or_else(|| "unknown".into()),
        bench_dir: dir_str,
        build_profile: target_profile_dir().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        kiosk_bin: kiosk_bin.display().to_string(),
    }
}

fn git_facts() -> Git {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    let ws = workspace.to_string_lossy();
    let commit = command_output("git", &["-C", &ws, "rev-parse", "HEAD"]);
    let dirty = commit
        .as_ref()
        .and_then(|_| command_output("git", &["-C", &ws, "status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    Git { commit, dirty }
}

fn print_header(m: &Machine, git: &Git, args: &KioskWriteArgs) {
    println!("loket-bench kiosk-write");
    println!(
        "  machine: {} cpu(s) [{}], kernel {}, {} MiB RAM",
        m.nproc,
        m.cpu,
        m.kernel,
        m.memory_total_kib.unwrap_or(0) / 1024
    );
    println!("  data:    {} ({})", m.bench_dir, m.bench_dir_fs);
    println!("  build:   {} ({})", m.build_profile, m.kiosk_bin);
    match (&git.commit, git.dirty) {
        (Some(c), Some(true)) => println!("  git:     {c} (with uncommitted changes)"),
        (Some(c), _) => println!("  git:     {c}"),
        (None, _) => println!("  git:     unknown"),
    }
    println!(
        "  plan:    docs {:?} x clients {:?}, {} warm-up + {} measured requests each, kiosk RUST_LOG={}",
        args.docs, args.clients, args.warmup, args.requests, args.kiosk_log
    );
    for (k, v) in &args.kiosk_env {
        println!("  kiosk env: {k}={v}");
    }
}

fn print_table(scenarios: &[Scenario], args: &KioskWriteArgs) {
    let header = [
        "docs",
        "clients",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "cpu ms/rq",
        "warm MiB",
        "peak MiB",
        "db MiB",
        "failures",
        "targets",
    ];
    let widths = [7, 7, 8, 8, 8, 8, 8, 9, 8, 9, 8, 8, 8];
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:>w$}")).collect();
        println!("{}", padded.join(" "));
    };
    println!();
    line(header.iter().map(|h| h.to_string()).collect());
    for s in scenarios {
        let targets = match (s.p99_met, s.rss_met) {
            (true, true) => "ok",
            (false, true) => "p99",
            (true, false) => "rss",
            (false, false) => "p99+rss",
        };
        line(vec![
            s.docs.to_string(),
            s.clients.to_string(),
            s.requests.to_string(),
            format!("{:.0}", s.requests_per_s),
            format!("{:.2}", s.latency_ms.p50),
            format!("{:.2}", s.latency_ms.p99),
            format!("{:.2}", s.latency_ms.max),
            format!("{:.2}", s.kiosk_cpu_ms_per_request),
            format!("{:.1}", kib_to_mib(s.rss_warm_kib)),
            format!("{:.1}", kib_to_mib(s.rss_peak_kib)),
            format!("{:.1}", mib(s.db_bytes)),
            s.failures.to_string(),
            targets.to_string(),
        ]);
    }
    println!(
        "(latency client-side per request; cpu ms/rq = kiosk CPU time per measured request; warm = kiosk RSS \
         after the warm-up; peak = VmHWM after the run; db = kiosk.db after a clean stop, WAL not included; the targets column \
         lists what was missed: p99 <= {} ms, peak <= {} MiB)",
        args.p99_target_ms, args.rss_target_mib
    );
    let busy: Vec<String> = scenarios
        .iter()
        .filter(|s| s.cpu.other_s > 0.1 * s.seconds)
        .map(|s| format!("{} docs/{} clients: {:.2} s", s.docs, s.clients, s.cpu.other_s))
        .collect();
    if !busy.is_empty() {
        println!(
            "WARNING: other processes used CPU during {} (figures disturbed; rerun on a quiet machine)",
            busy.join(", ")
        );
    }
}
