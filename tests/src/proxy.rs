//! A TCP fault-injection proxy for end-to-end tests: it sits between a
//! client and a real server (`upstream`) on `127.0.0.1:0` and forwards each
//! connection byte for byte, or delays, drops, cuts, holds and duplicates
//! them as the test asks. It works at the TCP level, so TLS passes through
//! untouched (and a cut lands mid-record).
//!
//! The proxy runs on its own thread with its own single-threaded tokio
//! runtime, so sync tests can use it as well as `#[tokio::test]`s of either
//! flavour, and the test's runtime never has to drive it. Dropping the
//! [`FaultProxy`] (or calling [`FaultProxy::shutdown`]) stops the listener,
//! ends every connection task, joins them and joins the thread: nothing
//! outlives the proxy.
//!
//! Faults are changed at any time through [`FaultProxy::set`] /
//! [`FaultHandle::set`] (the handle is cheap to clone and can move into
//! client tasks). Each fault applies to new and, where it means something,
//! to existing connections:
//!
//! | fault | new connections | existing connections |
//! |---|---|---|
//! | `delay` | yes | yes, from the next chunk |
//! | `drop_connections` | yes | no |
//! | `cut_after_bytes` | yes | yes, counted from when they see it |
//! | `blackhole` | held before dialling upstream | held: nothing moves |
//! | `duplicate_connections` | yes | no |
//! | [`partition`](FaultHandle::partition) | refused | cut at once |
//!
//! Randomness comes from one `StdRng` seeded by the test (or from
//! `LOKET_PROXY_SEED`, or at random), printed when a test panics while the
//! proxy is alive. The accept loop draws the same three numbers for every
//! connection whatever the faults are, so with the same seed and the same
//! order of connections a failing schedule replays; each connection gets
//! its own generator for its cut points.
//!
//! Duplicates: `duplicate_connections` replays a client's first bytes on
//! a second upstream connection, which only means something for plaintext
//! protocols. Over TLS a replayed handshake simply fails (TLS is built to
//! refuse replays), so for HTTPS the meaningful duplicate is the
//! application sending the same request again, which tests do at the
//! client: [`send_duplicated`] sends copies at once or one after another,
//! and a retry after a lost answer is the test's own retry (with the same
//! idempotency key) after `cut_after_bytes` or a partition ate the first
//! answer.
//!
//! Invariants: at most [`CONNECTIONS_MAX`] client connections are served at
//! once (more wait in the kernel backlog); each connection moves at most one
//! chunk of [`CHUNK_BYTES`] per direction at a time; a duplicate connection
//! is sent at most [`DUPLICATE_REPLAY_BYTES_MAX`]. Counters change before
//! anything a client could observe, so a client that has seen an effect
//! (bytes, a reset) can assert on the counter without waiting, and every
//! snapshot satisfies `accepted == refused + upstream_failed + cut + closed
//! + active`.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

/// Client connections served at once; further ones wait in the kernel's
/// accept backlog until a slot frees up (they are not refused).
pub const CONNECTIONS_MAX: usize = 256;
/// The most bytes read and forwarded in one step of one direction. A
/// `delay` is added per chunk.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// The most client bytes replayed to a duplicate upstream connection.
pub const DUPLICATE_REPLAY_BYTES_MAX: usize = 64 * 1024;
/// A duplicate connection whose replay is over is closed after this long
/// without a byte from upstream (the server may keep it alive forever).
pub const DUPLICATE_IDLE: Duration = Duration::from_secs(2);
/// Dialling upstream gives up after this long.
pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for connection tasks before aborting them (they
/// all watch the shutdown signal, so in practice they end at once).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Copies one [`send_duplicated`] call may send.
pub const REQUEST_COPIES_MAX: usize = 16;

/// Environment variable that sets the seed of [`FaultProxy::start`].
pub const SEED_ENV: &str = "LOKET_PROXY_SEED";

/// The faults the proxy applies. `Faults::default()` is a clean pipe.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Added before each chunk is forwarded, in both directions. A chunk is
    /// whatever one read returned (at most [`CHUNK_BYTES`]), and the chunks
    /// of one direction are delayed one after another, so this is latency
    /// for small messages and also a bandwidth cap for bulk transfers.
    pub delay: Duration,
    /// Probability (0.0..=1.0) that a new connection is accepted and then
    /// reset at once, before anything is dialled upstream. The kernel has
    /// completed the handshake, so the client sees the reset either on its
    /// first read or write or, when the reset lands first, already in
    /// `connect` (`ConnectionReset`): tests must accept both.
    pub drop_connections: f64,
    /// Cut each connection after a random number of bytes, drawn uniformly
    /// in `0..=n`, counted over both directions together: the proxy
    /// forwards exactly that many bytes (splitting a chunk if needed) and
    /// then resets both sides (`SO_LINGER` 0, so an RST, not a FIN). A
    /// connection that is open when this is set draws its budget then and
    /// counts from there (setting the same value again keeps the budgets
    /// already drawn). `None` turns it off for every connection.
    pub cut_after_bytes: Option<u64>,
    /// Accept connections but move nothing: no upstream dial for new
    /// connections, no bytes in either direction for existing ones. Bytes
    /// are held in the socket buffers, not read and thrown away, so when
    /// the blackhole is lifted every stream resumes intact, as after a
    /// healed network partition. Clients see silence and must time out.
    pub blackhole: bool,
    /// Probability (0.0..=1.0) that a new connection is duplicated at the
    /// TCP level: the proxy opens a second upstream connection and sends
    /// it a copy of the first [`DUPLICATE_REPLAY_BYTES_MAX`] bytes the
    /// client sends, each chunk right after the real connection got it, and
    /// discards whatever upstream answers on it. For plaintext protocols
    /// this makes the server handle the same request twice, concurrently.
    ///
    /// With TLS this is useless: a replayed handshake cannot complete
    /// (the server's random differs, so the keys differ), and the server
    /// just sees a failed handshake. For HTTPS the meaningful duplicate is
    /// the application sending the same request again (a retry after a
    /// lost answer, or two in flight at once): do that at the client with
    /// [`send_duplicated`], possibly combined with `cut_after_bytes`.
    pub duplicate_connections: f64,
}

impl Faults {
    /// Panics on a probability outside 0.0..=1.0: a mistake in the test.
    fn validate(&self) {
        for (name, p) in
            [("drop_connections", self.drop_connections), ("duplicate_connections", self.duplicate_connections)]
        {
            assert!((0.0..=1.0).contains(&p), "Faults::{name} must be a probability in 0.0..=1.0, got {p}");
        }
    }
}

/// Counters for assertions. Every snapshot satisfies
/// `accepted == refused + upstream_failed + cut + closed + active`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client connections the listener accepted.
    pub accepted: u64,
    /// Reset right after accept: `drop_connections` or a partition.
    pub refused: u64,
    /// Reset because upstream could not be dialled.
    pub upstream_failed: u64,
    /// Reset mid-stream by the proxy: `cut_after_bytes`, a partition or
    /// [`FaultHandle::cut_all`].
    pub cut: u64,
    /// Ended without a fault: both directions finished, a peer failed (its
    /// reset is passed on to the other side) or the proxy shut down.
    pub closed: u64,
    /// Being served now.
    pub active: u64,
    /// Duplicate upstream connections opened (not part of the sum above).
    pub duplicated: u64,
    /// Bytes handed to upstream sockets (duplicates not included).
    pub bytes_to_upstream: u64,
    /// Bytes handed to client sockets.
    pub bytes_to_client: u64,
}

impl Stats {
    /// Connections that have ended, however they ended.
    pub fn ended(&self) -> u64 {
        self.refused + self.upstream_failed + self.cut + self.closed
    }
}

/// What every connection task watches: the faults and the signals that end
/// connections.
#[derive(Debug, Clone, Copy, Default)]
struct Control {
    faults: Faults,
    partitioned: bool,
    /// Bumped by `partition(true)` and `cut_all()`: a connection that was
    /// accepted under an older epoch cuts itself. A counter, not a flag, so
    /// that a quick partition-then-heal is never missed.
    cut_epoch: u64,
    shutdown: bool,
}

struct Shared {
    upstream: SocketAddr,
    addr: SocketAddr,
    seed: u64,
    control: watch::Sender<Control>,
    stats: watch::Sender<Stats>,
    /// Set by the proxy thread once every task has ended: the counters
    /// are final.
    stopped: watch::Sender<bool>,
}

impl Shared {
    fn count(&self, update: impl FnOnce(&mut Stats)) {
        self.stats.send_modify(update);
    }
}

/// A cheap, cloneable handle to change a running proxy's faults and read
/// its counters. It does not keep the proxy alive: once the [`FaultProxy`]
/// is dropped, changes through the handle have no effect.
#[derive(Clone)]
pub struct FaultHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FaultHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultHandle")
            .field("addr", &self.shared.addr)
            .field("upstream", &self.shared.upstream)
            .field("seed", &self.shared.seed)
            .finish()
    }
}

impl FaultHandle {
    /// The proxy's listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:port`, for HTTP clients.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Replaces all faults. Panics on a probability outside 0.0..=1.0.
    pub fn set(&self, faults: Faults) {
        faults.validate();
        self.shared.control.send_modify(|c| c.faults = faults);
    }

    /// Changes some faults: `proxy.update(|f| f.delay = Duration::ZERO)`.
    pub fn update(&self, change: impl FnOnce(&mut Faults)) {
        let mut faults = self.faults();
        change(&mut faults);
        self.set(faults);
    }

    /// Removes every fault and heals a partition.
    pub fn clear(&self) {
        self.shared.control.send_modify(|c| {
            c.faults = Faults::default();
            c.partitioned = false;
        });
    }

    pub fn faults(&self) -> Faults {
        self.shared.control.borrow().faults
    }

    /// `true`: the server becomes unreachable. Every connection accepted
    /// from now on is refused (reset), and every open one is cut (reset on
    /// both sides). The refusal applies as soon as this returns; the cuts
    /// happen promptly on the proxy's thread, so await them (a client read
    /// failing, or [`wait_for_stats`](Self::wait_for_stats)).
    /// `false`: heals; new connections are served again.
    /// Independent of [`Faults`]: `set` neither starts nor heals one.
    pub fn partition(&self, partitioned: bool) {
        self.shared.control.send_modify(|c| {
            c.partitioned = partitioned;
            if partitioned {
                c.cut_epoch += 1;
            }
        });
    }

    pub fn is_partitioned(&self) -> bool {
        self.shared.control.borrow().partitioned
    }

    /// Cuts every open connection now (reset on both sides) without
    /// refusing new ones: a server restart as the network sees it.
    pub fn cut_all(&self) {
        self.shared.control.send_modify(|c| c.cut_epoch += 1);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        *self.shared.stats.borrow()
    }

    /// Waits until the counters satisfy `condition` and returns that
    /// snapshot. Works on any runtime (it needs no timer). Bound it with a
    /// timeout in the test. If the proxy stops first, returns the final
    /// counters, which may not satisfy `condition`.
    pub async fn wait_for_stats(&self, condition: impl FnMut(&Stats) -> bool) -> Stats {
        let mut stats = self.shared.stats.subscribe();
        let mut stopped = self.shared.stopped.subscribe();
        tokio::select! {
            waited = stats.wait_for(condition) => if let Ok(snapshot) = waited {
                return *snapshot;
            },
            _ = stopped.wait_for(|stopped| *stopped) => {}
        }
        self.stats()
    }
}

/// A running proxy. Dropping it shuts it down and joins everything it
/// started. When dropped during a panic it prints its seed.
pub struct FaultProxy {
    handle: FaultHandle,
    thread: Option<JoinHandle<ShutdownReport>>,
}

/// What the proxy thread reports when it has stopped.
#[derive(Debug, Default)]
struct ShutdownReport {
    /// Tasks that had not ended within `SHUTDOWN_GRACE` and were aborted.
    aborted: usize,
    /// Tasks that panicked: a bug in the proxy.
    panicked: usize,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on `127.0.0.1:0`, seeded from
    /// `LOKET_PROXY_SEED` if set, else at random (see [`seed`](Self::seed)).
    pub fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let seed = match std::env::var(SEED_ENV) {
            Ok(text) => text.trim().parse().map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{SEED_ENV}={text:?} is not a u64: {e}"))
            })?,
            Err(_) => rand::random(),
        };
        FaultProxy::start_seeded(upstream, seed)
    }

    /// Starts a proxy to `upstream` on `127.0.0.1:0` with a fixed seed.
    /// Returns once it listens. It can be called from inside or outside a
    /// tokio runtime: the proxy brings its own, on its own thread.
    pub fn start_seeded(upstream: SocketAddr, seed: u64) -> io::Result<FaultProxy> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (control, _) = watch::channel(Control::default());
        let (stats, _) = watch::channel(Stats::default());
        let (stopped, _) = watch::channel(false);
        let shared = Arc::new(Shared { upstream, addr, seed, control, stats, stopped });
        // The runtime is built, run and dropped on the proxy thread only:
        // dropping a runtime inside the caller's async context would panic.
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name(format!("fault-proxy-{}", addr.port())).spawn(move || {
                let started = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|runtime| {
                    let listener = runtime.block_on(async { TcpListener::from_std(listener) })?;
                    Ok((runtime, listener))
                });
                let (runtime, listener) = match started {
                    Ok(started) => {
                        let _ = ready_tx.send(Ok(()));
                        started
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return ShutdownReport::default();
                    }
                };
                let report = runtime.block_on(accept_loop(shared.clone(), listener, StdRng::seed_from_u64(seed)));
                drop(runtime);
                shared.stopped.send_replace(true);
                report
            })?
        };
        let ready = ready_rx.recv().unwrap_or_else(|_| Err(io::Error::other("the fault proxy thread died starting")));
        if let Err(e) = ready {
            let _ = thread.join();
            return Err(e);
        }
        Ok(FaultProxy { handle: FaultHandle { shared }, thread: Some(thread) })
    }

    /// A cloneable handle, e.g. to move into a client task.
    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    pub fn http_base(&self) -> String {
        self.handle.http_base()
    }

    pub fn seed(&self) -> u64 {
        self.handle.seed()
    }

    pub fn set(&self, faults: Faults) {
        self.handle.set(faults);
    }

    pub fn update(&self, change: impl FnOnce(&mut Faults)) {
        self.handle.update(change);
    }

    pub fn clear(&self) {
        self.handle.clear();
    }

    pub fn faults(&self) -> Faults {
        self.handle.faults()
    }

    pub fn partition(&self, partitioned: bool) {
        self.handle.partition(partitioned);
    }

    pub fn cut_all(&self) {
        self.handle.cut_all();
    }

    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    pub async fn wait_for_stats(&self, condition: impl FnMut(&Stats) -> bool) -> Stats {
        self.handle.wait_for_stats(condition).await
    }

    /// Stops the proxy, joins every task and the thread, and returns the
    /// final counters (`active` is 0). Blocks briefly: from an async test
    /// that is fine, the proxy does not need the caller's runtime to stop.
    /// Panics if a proxy task panicked or had to be aborted (a proxy bug).
    pub fn shutdown(mut self) -> Stats {
        let report = self.stop();
        assert!(
            report.panicked == 0 && report.aborted == 0,
            "fault proxy tasks misbehaved on shutdown: {report:?} (seed {})",
            self.seed()
        );
        let stats = self.stats();
        assert_eq!(stats.active, 0, "connections still counted active after shutdown: {stats:?}");
        stats
    }

    fn stop(&mut self) -> ShutdownReport {
        let Some(thread) = self.thread.take() else { return ShutdownReport::default() };
        self.handle.shared.control.send_modify(|c| c.shutdown = true);
        match thread.join() {
            Ok(report) => report,
            Err(panic) if !std::thread::panicking() => std::panic::resume_unwind(panic),
            Err(_) => ShutdownReport { panicked: 1, ..ShutdownReport::default() },
        }
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy").field("handle", &self.handle).finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let seed = self.seed();
        if std::thread::panicking() {
            eprintln!("fault proxy seed: {seed} (replay with {SEED_ENV}={seed})");
        }
        let report = self.stop();
        if report.panicked > 0 || report.aborted > 0 {
            eprintln!("fault proxy (seed {seed}) tasks misbehaved on shutdown: {report:?}");
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, mut rng: StdRng) -> ShutdownReport {
    let mut tasks = JoinSet::new();
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let mut rx = shared.control.subscribe();
    let mut report = ShutdownReport::default();
    'accept: loop {
        let permit = loop {
            tokio::select! {
                permit = slots.clone().acquire_owned() => break permit.expect("the semaphore is never closed"),
                Some(done) = tasks.join_next() => report.note(done),
                _ = rx.wait_for(|c| c.shutdown) => break 'accept,
            }
        };
        let accepted = loop {
            tokio::select! {
                accepted = listener.accept() => break accepted,
                Some(done) = tasks.join_next() => report.note(done),
                _ = rx.wait_for(|c| c.shutdown) => break 'accept,
            }
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of file descriptors or an aborted handshake: back
                // off a little rather than spin.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = rx.wait_for(|c| c.shutdown) => break 'accept,
                }
                continue;
            }
        };
        // Always the same draws, whatever the faults, so a seed replays.
        let refuse_roll: f64 = rng.random();
        let duplicate_roll: f64 = rng.random();
        let connection_seed: u64 = rng.random();
        let control = *rx.borrow();
        if control.partitioned || refuse_roll < control.faults.drop_connections {
            shared.count(|s| {
                s.accepted += 1;
                s.refused += 1;
            });
            reset(client);
            continue;
        }
        shared.count(|s| {
            s.accepted += 1;
            s.active += 1;
        });
        let duplicate = duplicate_roll < control.faults.duplicate_connections;
        let connection = Connection {
            shared: shared.clone(),
            start_epoch: control.cut_epoch,
            budget: Mutex::new(Budget {
                rng: StdRng::seed_from_u64(connection_seed),
                drawn_for: None,
                remaining: None,
            }),
        };
        tasks.spawn(async move {
            connection.serve(client, duplicate).await;
            drop(permit);
        });
    }
    // Refuse new connections at the kernel from here on.
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(done) = tasks.join_next().await {
            report.note(done);
        }
    })
    .await;
    if drained.is_err() {
        report.aborted = tasks.len();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    report
}

impl ShutdownReport {
    fn note(&mut self, done: Result<(), tokio::task::JoinError>) {
        if let Err(e) = done
            && e.is_panic()
        {
            eprintln!("fault proxy: a connection task panicked: {e}");
            self.panicked += 1;
        }
    }
}

/// Resets a connection: `SO_LINGER` 0 makes the close send an RST.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// How a connection, or one direction of it, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The reading side finished; the FIN was passed on.
    Eof,
    /// A fault asks for the connection to be reset.
    Cut,
    /// A peer failed (reset, broken pipe).
    PeerError,
    Shutdown,
}

/// The cut point of one connection, shared by its two directions.
struct Budget {
    rng: StdRng,
    /// The `cut_after_bytes` the budget was drawn for.
    drawn_for: Option<u64>,
    /// Bytes that may still pass before the cut.
    remaining: Option<u64>,
}

impl Budget {
    /// How many of `n` ready bytes may be forwarded, and whether to cut
    /// right after them. A changed setting draws a new budget.
    fn take(&mut self, limit: Option<u64>, n: usize) -> (usize, bool) {
        if limit != self.drawn_for {
            self.drawn_for = limit;
            self.remaining = limit.map(|max| self.rng.random_range(0..=max));
        }
        match &mut self.remaining {
            None => (n, false),
            Some(remaining) if (n as u64) < *remaining => {
                *remaining -= n as u64;
                (n, false)
            }
            Some(remaining) => {
                let allowed = usize::try_from(*remaining).expect("remaining <= n, a usize");
                *remaining = 0;
                (allowed, true)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    ToUpstream,
    ToClient,
}

/// A copy of the client's bytes on its way to a duplicate connection. The
/// channel is unbounded in messages but carries at most
/// `DUPLICATE_REPLAY_BYTES_MAX` bytes in all.
struct Mirror {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    remaining: usize,
}

struct Connection {
    shared: Arc<Shared>,
    start_epoch: u64,
    budget: Mutex<Budget>,
}

impl Connection {
    fn interruption(&self, control: &Control) -> Option<End> {
        if control.shutdown {
            Some(End::Shutdown)
        } else if control.cut_epoch != self.start_epoch {
            Some(End::Cut)
        } else {
            None
        }
    }

    /// Resolves when this connection must end: shutdown, or a partition or
    /// `cut_all` since it was accepted.
    async fn interrupted(&self, rx: &mut watch::Receiver<Control>) -> End {
        let result = rx.wait_for(|c| self.interruption(c).is_some()).await;
        match result {
            Ok(control) => self.interruption(&control).expect("waited for it"),
            Err(_) => End::Shutdown,
        }
    }

    /// Waits while the blackhole is on; returns the faults to apply next.
    async fn hold(&self, rx: &mut watch::Receiver<Control>) -> Result<Faults, End> {
        let control = match rx.wait_for(|c| self.interruption(c).is_some() || !c.faults.blackhole).await {
            Ok(control) => *control,
            Err(_) => return Err(End::Shutdown),
        };
        match self.interruption(&control) {
            Some(end) => Err(end),
            None => Ok(control.faults),
        }
    }

    async fn serve(self, mut client: TcpStream, duplicate: bool) {
        let mut rx = self.shared.control.subscribe();
        let _ = client.set_nodelay(true);
        let upstream = match self.hold(&mut rx).await {
            Ok(_) => self.dial(&mut rx).await,
            Err(end) => Err(Some(end)),
        };
        let mut upstream = match upstream {
            Ok(upstream) => upstream,
            Err(end) => {
                self.finish(end);
                reset(client);
                return;
            }
        };
        let _ = upstream.set_nodelay(true);

        let (mirror, duplicate) = if duplicate {
            // Dialled after the real connection, so the real one reaches
            // the server first.
            match self.dial(&mut rx).await {
                Ok(stream) => {
                    self.shared.count(|s| s.duplicated += 1);
                    let (tx, bytes) = mpsc::unbounded_channel();
                    let mirror = Mirror { tx, remaining: DUPLICATE_REPLAY_BYTES_MAX };
                    (Some(mirror), Some((stream, bytes)))
                }
                // Upstream failed or a fault ends the connection: the real
                // connection finds out for itself.
                Err(_) => (None, None),
            }
        } else {
            (None, None)
        };

        let this = &self;
        let primary = async move {
            let end = this.relay(&mut client, &mut upstream, mirror).await;
            this.finish(Some(end));
            if matches!(end, End::Cut | End::PeerError) {
                reset(client);
                reset(upstream);
            }
        };
        let replay = async move {
            if let Some((stream, bytes)) = duplicate {
                this.replay(stream, bytes).await;
            }
        };
        tokio::join!(primary, replay);
    }

    /// Dials upstream, bounded by `UPSTREAM_CONNECT_TIMEOUT`. `Err(None)`:
    /// upstream failed; `Err(Some(end))`: interrupted.
    async fn dial(&self, rx: &mut watch::Receiver<Control>) -> Result<TcpStream, Option<End>> {
        tokio::select! {
            dialled = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(self.shared.upstream)) => {
                match dialled {
                    Ok(Ok(upstream)) => Ok(upstream),
                    _ => Err(None),
                }
            }
            end = self.interrupted(rx) => Err(Some(end)),
        }
    }

    /// Counts how the connection ended. `None`: upstream could not be
    /// dialled. Called before the sockets are reset, so a client that sees
    /// the reset also sees the count.
    fn finish(&self, end: Option<End>) {
        self.shared.count(|s| {
            s.active -= 1;
            match end {
                None => s.upstream_failed += 1,
                Some(End::Cut) => s.cut += 1,
                Some(End::Eof | End::PeerError | End::Shutdown) => s.closed += 1,
            }
        });
    }

    /// Runs both directions until both have finished, or one ends the
    /// connection.
    async fn relay(&self, client: &mut TcpStream, upstream: &mut TcpStream, mirror: Option<Mirror>) -> End {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        let to_upstream = self.pump(Direction::ToUpstream, &mut client_read, &mut upstream_write, mirror);
        let to_client = self.pump(Direction::ToClient, &mut upstream_read, &mut client_write, None);
        tokio::pin!(to_upstream, to_client);
        let (mut upstream_done, mut client_done) = (false, false);
        loop {
            let end = tokio::select! {
                end = &mut to_upstream, if !upstream_done => {
                    upstream_done = true;
                    end
                }
                end = &mut to_client, if !client_done => {
                    client_done = true;
                    end
                }
            };
            match end {
                End::Eof if upstream_done && client_done => return End::Eof,
                End::Eof => {}
                other => return other,
            }
        }
    }

    /// Forwards one direction chunk by chunk, applying the faults.
    async fn pump(
        &self,
        direction: Direction,
        reader: &mut ReadHalf<'_>,
        writer: &mut WriteHalf<'_>,
        mut mirror: Option<Mirror>,
    ) -> End {
        let mut rx = self.shared.control.subscribe();
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = tokio::select! {
                read = reader.read(&mut buf) => match read {
                    Ok(n) => n,
                    Err(_) => return End::PeerError,
                },
                end = self.interrupted(&mut rx) => return end,
            };
            if n == 0 {
                let _ = writer.shutdown().await;
                return End::Eof;
            }
            let delay = rx.borrow().faults.delay;
            if !delay.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    end = self.interrupted(&mut rx) => return end,
                }
            }
            let faults = match self.hold(&mut rx).await {
                Ok(faults) => faults,
                Err(end) => return end,
            };
            let (allowed, cut) = self.budget.lock().expect("budget lock").take(faults.cut_after_bytes, n);
            let chunk = &buf[..allowed];
            self.shared.count(|s| match direction {
                Direction::ToUpstream => s.bytes_to_upstream += allowed as u64,
                Direction::ToClient => s.bytes_to_client += allowed as u64,
            });
            tokio::select! {
                written = writer.write_all(chunk) => if written.is_err() {
                    return End::PeerError;
                },
                end = self.interrupted(&mut rx) => return end,
            }
            if let Some(m) = &mut mirror {
                let copied = allowed.min(m.remaining);
                m.remaining -= copied;
                if m.tx.send(chunk[..copied].to_vec()).is_err() || m.remaining == 0 {
                    // Dropping the sender tells the duplicate the replay is over.
                    mirror = None;
                }
            }
            if cut {
                return End::Cut;
            }
        }
    }

    /// Drives a duplicate connection: sends it the mirrored bytes, reads
    /// and discards its answers, and closes it when upstream does, when it
    /// has been idle for `DUPLICATE_IDLE` after the replay ended, or on a
    /// partition or shutdown.
    async fn replay(&self, mut stream: TcpStream, mut bytes: mpsc::UnboundedReceiver<Vec<u8>>) {
        let mut rx = self.shared.control.subscribe();
        let (mut read, mut write) = stream.split();
        let mut sink = vec![0u8; CHUNK_BYTES];
        let mut pending: Vec<u8> = Vec::new();
        let mut sent = 0;
        let mut replaying = true;
        loop {
            tokio::select! {
                chunk = bytes.recv(), if replaying && sent == pending.len() => match chunk {
                    Some(chunk) => {
                        pending = chunk;
                        sent = 0;
                    }
                    None => replaying = false,
                },
                written = write.write(&pending[sent..]), if sent < pending.len() => match written {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sent += n,
                },
                answer = read.read(&mut sink) => match answer {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
                _ = tokio::time::sleep(DUPLICATE_IDLE), if !replaying && sent == pending.len() => break,
                _ = self.interrupted(&mut rx) => break,
            }
        }
        reset(stream);
    }
}

/// How [`send_duplicated`] sends its copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplication {
    /// All copies in flight at once: the server sees them race.
    Concurrent,
    /// One after another, each sent once the previous one's response
    /// headers arrived (or it failed): a client retrying after losing the
    /// answer.
    Sequential,
}

/// The application-level duplicate, the one that means something over
/// HTTPS: sends `copies` identical copies of `request` (same method, URL,
/// headers, e.g. the same `idempotency-key`, and body) and returns every
/// outcome in sending order. Fails if the request cannot be cloned (a
/// streaming body) or `copies` is not in `1..=REQUEST_COPIES_MAX`.
pub async fn send_duplicated(
    request: reqwest::RequestBuilder,
    copies: usize,
    mode: Duplication,
) -> anyhow::Result<Vec<reqwest::Result<reqwest::Response>>> {
    anyhow::ensure!(
        (1..=REQUEST_COPIES_MAX).contains(&copies),
        "copies must be in 1..={REQUEST_COPIES_MAX}, got {copies}"
    );
    let mut requests = Vec::with_capacity(copies);
    for _ in 1..copies {
        requests
            .push(request.try_clone().ok_or_else(|| anyhow::anyhow!("the request cannot be cloned (streaming body)"))?);
    }
    requests.push(request);
    Ok(match mode {
        Duplication::Concurrent => {
            let mut in_flight = JoinSet::new();
            for (i, request) in requests.into_iter().enumerate() {
                in_flight.spawn(async move { (i, request.send().await) });
            }
            let mut outcomes: Vec<Option<reqwest::Result<reqwest::Response>>> = (0..copies).map(|_| None).collect();
            while let Some(done) = in_flight.join_next().await {
                let (i, outcome) = done.map_err(|e| anyhow::anyhow!("a request task failed: {e}"))?;
                outcomes[i] = Some(outcome);
            }
            outcomes.into_iter().map(|o| o.expect("every task reported")).collect()
        }
        Duplication::Sequential => {
            let mut outcomes = Vec::with_capacity(copies);
            for request in requests {
                outcomes.push(request.send().await);
            }
            outcomes
        }
    })
}
