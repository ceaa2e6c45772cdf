//! Silent connections against a real `sync-server` (issue 12, item 2):
//! opens a flood of connections from one loopback address that never send
//! a request (half finish TLS, half never start it), and while they are
//! held measures how long another client's `GET /healthz` takes, each on
//! a new connection (TCP and TLS handshake included) and on a kept-alive
//! one. Then it waits for the server to close the flood and says when.
//!
//! The server is the `sync-server` binary beside this example (or
//! `--server-bin`), started on `127.0.0.1:0` in a temporary directory with
//! its default configuration; the flood comes from `127.0.0.2` (any
//! 127.0.0.x reaches a listener on 127.0.0.1 on Linux).
//!
//! ```text
//! cargo build --release -p loket-sync-server --bin sync-server --example silent_flood
//! target/release/examples/silent_flood --connections 2000
//! ```
//!
//! Prints a few lines for people, then `RESULT {json}`; exits 1 if any
//! `/healthz` under the flood failed or took a second or more.

#[path = "support/server.rs"]
mod server;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

struct Args {
    connections: usize,
    from: IpAddr,
    probes: usize,
    server_bin: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let beside = server::beside()?;
    let mut args = Args { connections: 2000, from: "127.0.0.2".parse()?, probes: 50, server_bin: beside };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connections" => args.connections = value.parse()?,
            "--from" => args.from = value.parse()?,
            "--probes" => args.probes = value.parse()?,
            "--server-bin" => args.server_bin = value.into(),
            other => bail!("unknown flag {other} (--connections N, --from ADDR, --probes N, --server-bin PATH)"),
        }
    }
    Ok(args)
}

#[derive(Debug, Default, serde::Serialize)]
struct Latency {
    ok: usize,
    failed: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn latency(mut ms: Vec<f64>, failed: usize) -> Latency {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms.get(((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len().max(1)) - 1).copied();
    Latency {
        ok: ms.len(),
        failed,
        p50_ms: at(0.5).unwrap_or(f64::NAN),
        p99_ms: at(0.99).unwrap_or(f64::NAN),
        max_ms: ms.last().copied().unwrap_or(f64::NAN),
    }
}

/// `GET /healthz` `n` times with `client`, each timed to the last byte.
async fn probe(client: &reqwest::Client, url: &str, n: usize) -> Latency {
    let (mut ms, mut failed) = (Vec::new(), 0);
    for _ in 0..n {
        let t = Instant::now();
        let ok = match client.get(url).send().await {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        } else {
            failed += 1;
        }
    }
    latency(ms, failed)
}

/// Reads until the server closes the stream; returns when it did.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(mut stream: S) -> Instant {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    Instant::now()
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if from.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

#[derive(serde::Serialize)]
struct Report {
    connections: usize,
    from: IpAddr,
    flood_open_ms: f64,
    closed_within_1s: usize,
    tls_completed: usize,
    all_closed_after_s: Option<f64>,
    healthz_baseline_new_connection: Latency,
    healthz_flood_new_connection: Latency,
    healthz_flood_kept_alive: Latency,
    /// One probe (new connection) every 100 ms until the flood was closed.
    healthz_while_held: Latency,
    within_1s: bool,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("silent_flood: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let args = parse_args()?;
    let server = server::start_server(&args.server_bin)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let ca = reqwest::Certificate::from_pem(&server.ca_pem)?;
        let client = |fresh: bool| {
            let mut b = reqwest::Client::builder()
                .tls_built_in_root_certs(false)
                .add_root_certificate(ca.clone())
                .timeout(Duration::from_secs(30));
            if fresh {
                b = b.pool_max_idle_per_host(0);
            }
            b.build()
        };
        let (fresh, kept) = (client(true)?, client(false)?);
        let url = format!("https://{}/healthz", server.addr);
        let baseline = probe(&fresh, &url, args.probes).await;

        // The flood: the first half tries TLS and then says nothing, the
        // rest never start TLS. Each connection reports when it is closed.
        let tls = tokio_rustls::TlsConnector::from(loket_sync_server::tls::client_config(&server.ca_pem)?);
        let started = Instant::now();
        let mut closings = tokio::task::JoinSet::new();
        let mut tls_completed = 0;
        for i in 0..args.connections {
            let tcp = match connect_from(args.from, server.addr).await {
                Ok(tcp) => tcp,
                Err(_) => {
                    closings.spawn(async { Instant::now() });
                    continue;
                }
            };
            if i < args.connections / 2 {
                let name = rustls::pki_types::ServerName::try_from("localhost")?;
                match tokio::time::timeout(Duration::from_secs(5), tls.connect(name, tcp)).await {
                    Ok(Ok(stream)) => {
                        tls_completed += 1;
                        closings.spawn(until_closed(stream));
                    }
                    _ => {
                        closings.spawn(async { Instant::now() });
                    }
                }
            } else {
                closings.spawn(until_closed(tcp));
            }
        }
        let flood_open = started.elapsed();
        // Probe at once, then every 100 ms while the flood holds what it
        // can, until the server has closed all of it (or 120 s).
        let under_fresh = probe(&fresh, &url, args.probes).await;
        let under_kept = probe(&kept, &url, args.probes).await;
        let probed = started.elapsed();
        let (closed_tx, mut closed_rx) = tokio::sync::oneshot::channel();
        let watcher = tokio::spawn(async move {
            let mut closed_within_1s = 0;
            let mut last = started;
            let all_closed = tokio::time::timeout(Duration::from_secs(120), async {
                while let Some(Ok(at)) = closings.join_next().await {
                    if at.duration_since(started) < Duration::from_secs(1) {
                        closed_within_1s += 1;
                    }
                    last = last.max(at);
                }
            })
            .await
            .is_ok();
            let _ = closed_tx.send(());
            (closed_within_1s, all_closed, last)
        });
        let mut during = Vec::new();
        let mut during_failed = 0;
        while closed_rx.try_recv().is_err() {
            let one = probe(&fresh, &url, 1).await;
            during.extend([one.max_ms].into_iter().filter(|ms| ms.is_finite()));
            during_failed += one.failed;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (closed_within_1s, all_closed, last) = watcher.await?;
        let during = latency(during, during_failed);
        let within_1s = [&under_fresh, &under_kept, &during].iter().all(|l| l.failed == 0 && l.max_ms < 1000.0);
        let report = Report {
            connections: args.connections,
            from: args.from,
            flood_open_ms: flood_open.as_secs_f64() * 1000.0,
            closed_within_1s,
            tls_completed,
            all_closed_after_s: all_closed.then(|| last.duration_since(started).as_secs_f64()),
            healthz_baseline_new_connection: baseline,
            healthz_flood_new_connection: under_fresh,
            healthz_flood_kept_alive: under_kept,
            healthz_while_held: during,
            within_1s,
        };
        println!(
            "silent flood: {} connections from {} opened in {:.0} ms ({} finished TLS); {} closed within 1 s",
            report.connections, report.from, report.flood_open_ms, report.tls_completed, report.closed_within_1s
        );
        let show = |what: &str, l: &Latency| {
            println!(
                "  /healthz {what}: {} ok, {} failed, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.ok, l.failed, l.p50_ms, l.p99_ms, l.max_ms
            )
        };
        show("before the flood, new connection each", &report.healthz_baseline_new_connection);
        show("under the flood, new connection each ", &report.healthz_flood_new_connection);
        show("under the flood, kept-alive          ", &report.healthz_flood_kept_alive);
        show("every 100 ms until the flood is gone ", &report.healthz_while_held);
        println!("  probes done {:.1} s after the flood began", probed.as_secs_f64());
        match report.all_closed_after_s {
            Some(s) => println!("  every flood connection closed by the server after {s:.1} s"),
            None => println!("  flood connections still open after 120 s"),
        }
        println!("  under 1 s throughout: {}", if within_1s { "yes" } else { "NO" });
        println!("RESULT {}", serde_json::to_string(&report)?);
        Ok(within_1s)
    })
}
