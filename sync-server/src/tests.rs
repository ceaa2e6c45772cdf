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
        serve_app(app, server_tls, &config, Arc::new(metrics::Metrics::new()), listener, async move {
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

/// Connections count per client address; IPv6 per /64 (one host's
/// block), an IPv4-mapped IPv6 address as its IPv4 address; the map holds
/// only addresses with connections open.
#[test]
fn connections_count_per_address_and_per_ipv6_64() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let limit = Arc::new(PerAddress::new(2));
    let a = limit.try_acquire(ip("2001:db8:1:2::1")).unwrap();
    let b = limit.try_acquire(ip("2001:db8:1:2:ffff::9")).unwrap();
    assert!(limit.try_acquire(ip("2001:db8:1:2::77")).is_none(), "the same /64");
    let c = limit.try_acquire(ip("2001:db8:1:3::1")).unwrap();
    let d = limit.try_acquire(ip("10.0.0.1")).unwrap();
    let e = limit.try_acquire(ip("::ffff:10.0.0.1")).unwrap();
    assert!(limit.try_acquire(ip("10.0.0.1")).is_none(), "mapped and plain IPv4 are one address");
    drop(a);
    let a = limit.try_acquire(ip("2001:db8:1:2::1")).expect("a slot came back");
    drop((a, b, c, d, e));
    assert!(limit.open.lock().unwrap().is_empty());
}

/// A connection is closed when it has sent no request by its first
/// deadline, or when it has had none in flight for the idle time.
#[test]
fn connections_are_closed_when_silent_or_idle() {
    let d = Deadlines {
        handshake: Duration::from_secs(10),
        first_request: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };
    let t0 = tokio::time::Instant::now();
    let activity = Arc::new(Activity::new(t0));
    assert_eq!(activity.next_check(&d, t0 + Duration::from_secs(10)), None, "silent since the handshake");
    let request = activity.begin();
    let later = t0 + Duration::from_secs(500);
    assert_eq!(activity.next_check(&d, later), Some(later + d.idle), "busy, however long");
    drop(request);
    let done = tokio::time::Instant::now();
    let next = activity.next_check(&d, done).expect("just used");
    assert!(next >= done + d.idle - Duration::from_millis(5) && next <= done + d.idle, "{next:?}");
    assert_eq!(activity.next_check(&d, next + Duration::from_millis(1)), None, "idle for the idle time");
}
