//! The accept loop's shutdown, driven in-process with a router that has
//! slow routes: in-flight requests finish, and the wait is bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

use super::*;

struct Running {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
    client: reqwest::Client,
}

async fn start(app: Router, grace: Duration) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let generated = tls::generate(&[], time::OffsetDateTime::now_utc()).unwrap();
    tls::write(&dir.path().join("tls"), &generated).unwrap();
    let server_tls = tls::server_config(&dir.path().join("tls")).unwrap();
    let config = Config { shutdown_grace: grace, ..Config::default() };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        serve_app(app, server_tls, &config, listener, async move {
            let _ = stopped.await;
        })
        .await
    });
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(generated.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Running { _dir: dir, addr, stop, served, client }
}

/// A route that says when it has started, then takes `takes` to answer.
fn slow_app(started: Arc<Notify>, takes: Duration) -> Router {
    Router::new().route(
        "/slow",
        get(move || {
            let started = started.clone();
            async move {
                started.notify_one();
                tokio::time::sleep(takes).await;
                "done"
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_after_shutdown_begins() {
    let started = Arc::new(Notify::new());
    let r = start(slow_app(started.clone(), Duration::from_millis(300)), Duration::from_secs(20)).await;
    let url = format!("https://{}/slow", r.addr);
    let request = tokio::spawn(r.client.get(url).send());
    started.notified().await;
    r.stop.send(()).unwrap();
    let response = request.await.unwrap().expect("the in-flight request was answered");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(10), r.served).await.expect("serve returned").unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(r.addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_the_wait() {
    let started = Arc::new(Notify::new());
    let r = start(slow_app(started.clone(), Duration::from_secs(600)), Duration::from_millis(300)).await;
    let url = format!("https://{}/slow", r.addr);
    let request = tokio::spawn(r.client.get(url).send());
    started.notified().await;
    let t0 = Instant::now();
    r.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), r.served).await.expect("serve returned").unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?}", t0.elapsed());
    assert!(request.await.unwrap().is_err(), "a request cut off by the grace period got an answer");
}
