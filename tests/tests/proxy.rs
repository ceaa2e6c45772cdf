//! The TCP fault proxy against tiny servers started here on `127.0.0.1:0`:
//! an echo server, and a minimal HTTP/1.1 server that records requests.
//! Every wait is on an event (a read completing, a counter, a request
//! arriving), guarded by a timeout; the only timeouts expected to fire are
//! the short client read timeouts that show a blackhole.
//!
//! The proxy seed comes from `LOKET_PROXY_SEED` or at random and is printed
//! when a test fails; payloads are drawn from it too.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loket_tests::proxy::{DUPLICATE_REPLAY_BYTES_MAX, Duplication, FaultProxy, Faults, Stats, send_duplicated};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Upper bound on anything a test awaits; never expected to fire.
const GUARD: Duration = Duration::from_secs(30);
/// A client read timeout expected to fire (blackhole).
const SHORT: Duration = Duration::from_millis(300);

/// Awaits `future` with the guard timeout.
async fn guarded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done within {GUARD:?}"),
    }
}

fn assert_adds_up(stats: &Stats) {
    assert_eq!(stats.accepted, stats.ended() + stats.active, "counters do not add up: {stats:?}");
}

fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill(&mut bytes[..]);
    bytes
}

/// FNV-1a, to name a payload in a failure message.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// An echo server; returns its address and a count of the connections it
/// accepted. Its tasks end with the test's runtime.
async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo server");
    let addr = listener.local_addr().expect("echo addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
        }
    });
    (addr, connections)
}

/// Sends `payload` (then a FIN) while reading until EOF or an error.
/// Returns what came back and the error, if the stream ended in one.
async fn transfer(stream: TcpStream, payload: Arc<Vec<u8>>) -> (Vec<u8>, Option<io::Error>) {
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        write.write_all(&payload).await?;
        write.shutdown().await
    });
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let error = loop {
        match read.read(&mut buf).await {
            Ok(0) => break None,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e),
        }
    };
    // After a cut the writer fails (reset, broken pipe); that is expected.
    let _ = writer.await;
    (received, error)
}

async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(message).await?;
    let mut echoed = vec![0u8; message.len()];
    stream.read_exact(&mut echoed).await?;
    Ok(echoed)
}

/// A refused connection: the kernel completes the handshake, the proxy
/// resets at once, so the client sees the reset either in `connect` (when
/// it lands first) or on its first read.
async fn assert_refused(addr: SocketAddr) {
    let Ok(mut stream) = guarded("connect", TcpStream::connect(addr)).await else { return };
    let outcome = guarded("refused", read_until_end(&mut stream)).await;
    assert!(matches!(outcome, Ok(0) | Err(_)), "expected EOF or a reset, got {outcome:?}");
}

/// Reads until the stream ends: `Ok(0)` for a FIN, or the error (a reset).
async fn read_until_end(stream: &mut TcpStream) -> io::Result<usize> {
    let mut buf = [0u8; 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_pass_through_unchanged() {
    let (echo, _) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    let big = Arc::new(payload(proxy.seed(), 8 * 1024 * 1024));
    let small: Vec<Arc<Vec<u8>>> =
        (0..8).map(|i| Arc::new(payload(proxy.seed().wrapping_add(i + 1), 256 * 1024 + i as usize))).collect();

    let mut transfers = tokio::task::JoinSet::new();
    for data in std::iter::once(big.clone()).chain(small.iter().cloned()) {
        let addr = proxy.addr();
        transfers.spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect through the proxy");
            let (received, error) = transfer(stream, data.clone()).await;
            assert!(error.is_none(), "clean pipe ended in {error:?}");
            assert_eq!(
                (received.len(), checksum(&received)),
                (data.len(), checksum(&data)),
                "echo differs from what was sent"
            );
            assert!(received == *data);
        });
    }
    guarded("transfers", async {
        while let Some(done) = transfers.join_next().await {
            done.expect("transfer task");
        }
    })
    .await;

    let total = (big.len() + small.iter().map(|d| d.len()).sum::<usize>()) as u64;
    let stats = guarded("connections closed", proxy.wait_for_stats(|s| s.closed == 9)).await;
    assert_eq!(stats.accepted, 9);
    assert_eq!((stats.refused, stats.cut, stats.upstream_failed, stats.active), (0, 0, 0, 0));
    assert_eq!(stats.bytes_to_upstream, total);
    assert_eq!(stats.bytes_to_client, total);
    assert_adds_up(&stats);
    assert_eq!(proxy.shutdown(), stats);
}

#[tokio::test]
async fn delay_adds_latency_to_new_and_existing_connections() {
    let (echo, _) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    let delay = Duration::from_millis(100);

    let mut existing = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(guarded("round trip", round_trip(&mut existing, b"before")).await.expect("echo"), b"before");

    proxy.set(Faults { delay, ..Faults::default() });
    let mut fresh = TcpStream::connect(proxy.addr()).await.expect("connect");
    for stream in [&mut existing, &mut fresh] {
        let started = Instant::now();
        assert_eq!(guarded("delayed round trip", round_trip(stream, b"ping")).await.expect("echo"), b"ping");
        // One chunk each way, each delayed. A lower bound only: a busy
        // machine may add any amount.
        let elapsed = started.elapsed();
        assert!(elapsed >= 2 * delay, "round trip took {elapsed:?}, expected at least {:?}", 2 * delay);
    }

    proxy.update(|f| f.delay = Duration::ZERO);
    assert_eq!(guarded("round trip", round_trip(&mut fresh, b"after")).await.expect("echo"), b"after");
    assert_adds_up(&proxy.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_bytes_cuts_mid_stream() {
    let (echo, _) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    let limit = 64 * 1024;
    proxy.set(Faults { cut_after_bytes: Some(limit), ..Faults::default() });
    let data = Arc::new(payload(proxy.seed(), 4 * 1024 * 1024));

    let stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    let (received, error) = guarded("cut transfer", transfer(stream, data.clone())).await;
    assert!(received.len() < data.len(), "the whole payload came back through a cut connection");
    assert!(received[..] == data[..received.len()], "what came back before the cut is not a prefix of the payload");

    let stats = guarded("cut counted", proxy.wait_for_stats(|s| s.cut == 1)).await;
    let forwarded = stats.bytes_to_upstream + stats.bytes_to_client;
    assert!(forwarded <= limit, "{forwarded} bytes passed a cut after at most {limit}");
    assert!(received.len() as u64 <= stats.bytes_to_client);
    eprintln!("cut after {forwarded} bytes; client got {} bytes and {error:?}", received.len());
    assert_eq!((stats.accepted, stats.closed, stats.active), (1, 0, 0));
    assert_adds_up(&stats);
}

#[tokio::test]
async fn cut_applies_to_an_open_connection() {
    let (echo, _) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(guarded("round trip", round_trip(&mut stream, b"hello")).await.expect("echo"), b"hello");

    // A budget drawn from 0..=0: the next byte in either direction cuts.
    proxy.set(Faults { cut_after_bytes: Some(0), ..Faults::default() });
    let _ = stream.write_all(b"x").await;
    let outcome = guarded("read after the cut", read_until_end(&mut stream)).await;
    assert!(matches!(outcome, Ok(0) | Err(_)), "expected EOF or a reset, got {outcome:?}");
    let stats = guarded("cut counted", proxy.wait_for_stats(|s| s.cut == 1)).await;
    assert_eq!((stats.bytes_to_upstream, stats.bytes_to_client), (5, 5), "nothing may pass after the cut");
    assert_adds_up(&stats);
}

#[tokio::test]
async fn partition_cuts_and_refuses_then_heals() {
    let (echo, _) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    let mut before = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(guarded("round trip", round_trip(&mut before, b"one")).await.expect("echo"), b"one");

    proxy.partition(true);
    assert!(proxy.handle().is_partitioned());
    let outcome = guarded("open connection cut", read_until_end(&mut before)).await;
    assert!(matches!(outcome, Ok(0) | Err(_)), "expected EOF or a reset, got {outcome:?}");

    assert_refused(proxy.addr()).await;
    let stats = guarded("counted", proxy.wait_for_stats(|s| s.cut == 1 && s.refused == 1)).await;
    assert_adds_up(&stats);

    proxy.partition(false);
    let mut after = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(guarded("round trip after healing", round_trip(&mut after, b"two")).await.expect("echo"), b"two");
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.active), (3, 1));
    assert_adds_up(&stats);
}

#[tokio::test]
async fn cut_all_resets_open_connections_but_serves_new_ones() {
    let (echo, _) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    let mut open = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(guarded("round trip", round_trip(&mut open, b"a")).await.expect("echo"), b"a");
    proxy.cut_all();
    let outcome = guarded("cut", read_until_end(&mut open)).await;
    assert!(matches!(outcome, Ok(0) | Err(_)), "expected EOF or a reset, got {outcome:?}");
    let mut fresh = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(guarded("round trip", round_trip(&mut fresh, b"b")).await.expect("echo"), b"b");
    let stats = guarded("cut counted", proxy.wait_for_stats(|s| s.cut == 1)).await;
    assert_eq!((stats.accepted, stats.refused, stats.active), (2, 0, 1));
}

#[tokio::test]
async fn blackhole_holds_everything_until_lifted() {
    let (echo, upstream_connections) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    let mut existing = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(guarded("round trip", round_trip(&mut existing, b"warm")).await.expect("echo"), b"warm");

    proxy.set(Faults { blackhole: true, ..Faults::default() });
    let mut fresh = TcpStream::connect(proxy.addr()).await.expect("connect (accepted, then held)");
    for (stream, message) in [(&mut existing, b"pong"), (&mut fresh, b"ping")] {
        stream.write_all(message).await.expect("writes still go into the socket buffer");
        // The client must time out: nothing comes back.
        let mut echoed = [0u8; 4];
        let read = timeout(SHORT, stream.read_exact(&mut echoed)).await;
        assert!(read.is_err(), "a read through the blackhole completed: {read:?}");
    }
    assert_eq!(upstream_connections.load(Ordering::SeqCst), 1, "a held connection was dialled upstream");

    // Lifted: the held bytes go through, streams intact.
    proxy.update(|f| f.blackhole = false);
    for (stream, message) in [(&mut existing, b"pong"), (&mut fresh, b"ping")] {
        let mut echoed = [0u8; 4];
        guarded("held bytes delivered", stream.read_exact(&mut echoed)).await.expect("echo");
        assert_eq!(&echoed, message);
    }
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.active, stats.ended()), (2, 2, 0));
}

#[tokio::test]
async fn drop_connections_refuses_new_connections() {
    let (echo, upstream_connections) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    proxy.set(Faults { drop_connections: 1.0, ..Faults::default() });
    for _ in 0..5 {
        assert_refused(proxy.addr()).await;
    }
    let stats = guarded("refusals counted", proxy.wait_for_stats(|s| s.refused == 5)).await;
    assert_eq!(upstream_connections.load(Ordering::SeqCst), 0);
    assert_adds_up(&stats);

    proxy.clear();
    let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert_eq!(guarded("round trip", round_trip(&mut stream, b"ok")).await.expect("echo"), b"ok");
}

/// Runs a fixed schedule of connections through a proxy with random
/// faults; returns, per connection, whether it was refused and how many
/// bytes the proxy forwarded before the cut.
async fn schedule(echo: SocketAddr, seed: u64) -> Vec<(bool, u64)> {
    let proxy = FaultProxy::start_seeded(echo, seed).expect("start proxy");
    proxy.set(Faults { drop_connections: 0.3, cut_after_bytes: Some(100_000), ..Faults::default() });
    let data = Arc::new(payload(seed, 256 * 1024));
    let mut outcomes = Vec::new();
    let mut before = proxy.stats();
    for i in 0..16 {
        // A refused connection may fail in `connect` already.
        if let Ok(stream) = TcpStream::connect(proxy.addr()).await {
            let _ = guarded("transfer", transfer(stream, data.clone())).await;
        }
        let after = guarded("connection ended", proxy.wait_for_stats(|s| s.ended() == i + 1)).await;
        let forwarded =
            (after.bytes_to_upstream + after.bytes_to_client) - (before.bytes_to_upstream + before.bytes_to_client);
        outcomes.push((after.refused > before.refused, forwarded));
        before = after;
    }
    let stats = proxy.shutdown();
    assert_eq!(stats.refused + stats.cut, 16, "every connection is refused or cut: {stats:?}");
    outcomes
}

#[tokio::test]
async fn the_same_seed_replays_the_same_faults() {
    let (echo, _) = echo_server().await;
    let seed = match std::env::var(loket_tests::proxy::SEED_ENV) {
        Ok(text) => text.parse().expect("seed"),
        Err(_) => rand::random(),
    };
    eprintln!("schedule seed {seed}");
    let first = schedule(echo, seed).await;
    let second = schedule(echo, seed).await;
    assert_eq!(first, second, "seed {seed} did not replay");
    for &(refused, forwarded) in &first {
        assert!(forwarded <= 100_000);
        if refused {
            assert_eq!(forwarded, 0);
        }
    }
}

/// A minimal HTTP/1.1 server (keep-alive, `content-length` bodies) that
/// answers `200 ok` and reports every request's body.
async fn http_server() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http server");
    let addr = listener.local_addr().expect("http addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = serve_http(stream, tx).await;
            });
        }
    });
    (addr, rx)
}

async fn serve_http(mut stream: TcpStream, requests: mpsc::UnboundedSender<String>) -> io::Result<()> {
    let mut buffered = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            buffered.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&buffered[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap_or(0));
        while buffered.len() < head_end + length {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            buffered.extend_from_slice(&buf[..n]);
        }
        let body = String::from_utf8_lossy(&buffered[head_end..head_end + length]).into_owned();
        buffered.drain(..head_end + length);
        let _ = requests.send(body);
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await?;
    }
}

#[tokio::test]
async fn duplicate_connections_replays_a_plaintext_request() {
    let (server, mut requests) = http_server().await;
    let proxy = FaultProxy::start(server).expect("start proxy");
    proxy.set(Faults { duplicate_connections: 1.0, ..Faults::default() });

    let client = reqwest::Client::new();
    let response = guarded("request", client.post(format!("{}/api/x", proxy.http_base())).body("order-17").send())
        .await
        .expect("request through the proxy");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "ok");

    // The original and its replay both reach the server.
    for copy in ["original", "duplicate"] {
        let body = guarded(copy, requests.recv()).await.expect("server running");
        assert_eq!(body, "order-17");
    }
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.duplicated), (1, 1));
    // What the client sent fits the replay bound, so the replay was whole.
    assert!(stats.bytes_to_upstream <= DUPLICATE_REPLAY_BYTES_MAX as u64);
    drop(client);
    let stats = proxy.shutdown();
    assert_eq!(stats.active, 0);
    assert_adds_up(&stats);
}

#[tokio::test]
async fn send_duplicated_sends_the_same_request_again() {
    let (server, mut requests) = http_server().await;
    let client = reqwest::Client::new();
    let url = format!("http://{server}/api/x");
    for (mode, copies) in [(Duplication::Concurrent, 3), (Duplication::Sequential, 2)] {
        let request = client.post(&url).header("idempotency-key", "k-1").body(format!("{mode:?}"));
        let outcomes = guarded("duplicated requests", send_duplicated(request, copies, mode)).await.expect("cloneable");
        assert_eq!(outcomes.len(), copies);
        for outcome in outcomes {
            assert_eq!(outcome.expect("answered").status(), 200);
        }
        for _ in 0..copies {
            assert_eq!(guarded("request arrives", requests.recv()).await.expect("server running"), format!("{mode:?}"));
        }
    }
    assert!(send_duplicated(client.get(&url), 0, Duplication::Concurrent).await.is_err());
}

/// The proxy brings its own runtime: plain threads and blocking sockets.
#[test]
fn works_from_sync_code() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let echo = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = stream.try_clone().expect("clone");
                let _ = io::copy(&mut reader, &mut stream);
            });
        }
    });

    let proxy = FaultProxy::start(echo).expect("start proxy");
    let mut stream = std::net::TcpStream::connect(proxy.addr()).expect("connect");
    stream.set_read_timeout(Some(GUARD)).expect("timeout");
    let mut echoed = [0u8; 5];
    stream.write_all(b"hello").expect("write");
    stream.read_exact(&mut echoed).expect("echo");
    assert_eq!(&echoed, b"hello");

    let delay = Duration::from_millis(50);
    proxy.handle().set(Faults { delay, ..Faults::default() });
    let started = Instant::now();
    stream.write_all(b"world").expect("write");
    stream.read_exact(&mut echoed).expect("echo");
    assert_eq!(&echoed, b"world");
    assert!(started.elapsed() >= 2 * delay);

    stream.shutdown(std::net::Shutdown::Write).expect("half close");
    assert_eq!(stream.read(&mut echoed).expect("EOF"), 0);
    drop(stream);
    let stats = proxy.shutdown();
    assert_eq!((stats.accepted, stats.closed, stats.bytes_to_upstream, stats.bytes_to_client), (1, 1, 10, 10));
}

#[tokio::test]
async fn dropping_the_proxy_ends_its_connections_and_listener() {
    let (echo, _) = echo_server().await;
    let proxy = FaultProxy::start(echo).expect("start proxy");
    let addr = proxy.addr();
    let handle = proxy.handle();
    let mut open = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(guarded("round trip", round_trip(&mut open, b"x")).await.expect("echo"), b"x");

    // Joins every task and the proxy's thread before returning.
    let stats = proxy.shutdown();
    assert_eq!((stats.accepted, stats.closed, stats.active), (1, 1, 0));
    let outcome = guarded("closed by shutdown", read_until_end(&mut open)).await;
    assert!(matches!(outcome, Ok(0) | Err(_)), "expected EOF or a reset, got {outcome:?}");
    assert!(TcpStream::connect(addr).await.is_err(), "the listener outlived the proxy");
    // A handle that outlives the proxy is harmless.
    handle.set(Faults::default());
    assert_eq!(handle.stats(), stats);
    // Waiting on a stopped proxy returns its final counters.
    assert_eq!(guarded("stopped proxy", handle.wait_for_stats(|s| s.accepted == 99)).await, stats);
}
