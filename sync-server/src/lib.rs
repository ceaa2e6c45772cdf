//! The Loket central sync server: enrolls kiosks, merges their documents
//! (`sync`), and serves the admin and agency API, over HTTPS only.
//!
//! Entry points: [`run`] serves a configured server on a listener until a
//! shutdown future resolves ([`Server::prepare`] + [`Server::serve`] when
//! the caller wants to know it is ready before serving); [`router`] is the
//! whole HTTP API without a socket, for tests; [`setup`] holds the
//! operator commands (`init`, `enroll-code`, `revoke`, `add-user`).
//!
//! Connections: at most `connections_max` open, and at most
//! `connections_per_address_max` from one client address (an IPv6 /64
//! counts as one); more are closed on accept. Every phase of a connection
//! has a deadline, so a silent one gives its slot back: the TLS handshake
//! (`tls_handshake_timeout` from accept), the first request after it
//! (`header_read_timeout`), each request's headers (hyper's
//! `header_read_timeout`, also the HTTP/1 keep-alive wait), the handler
//! (`request_timeout`), and an HTTP/2 connection without a request in
//! flight (`idle_timeout`, then a GOAWAY and a few seconds to finish).
//!
//! Shutdown: stop accepting, let every open connection finish its
//! in-flight requests (idle keep-alive connections close at once) for at
//! most `shutdown_grace`, then drop whatever is left. Every connection is
//! a task in one `JoinSet`, so `serve` returns only when all have ended.

//! Layers, every import pointing down: `web` (HTTP: handlers, pages,
//! extractors, the accept loop's router) → `ops` (what the product does,
//! domain errors, no HTTP) → `store` (the tables behind one seam, SQLite
//! or PostgreSQL). `config`, `tls` and `metrics` are leaves any layer may
//! use; `fuzzing` is an entry point for the fuzz targets.

pub mod config;
pub mod fuzzing;
pub mod metrics;
pub mod ops;
pub mod store;
pub mod tls;
pub mod web;

pub use ops::{auth, central, enroll, seal, setup, sync};

/// This build's version and the commit it was built from (`0.1.0
/// (1a2b3c4d5e6f)`), as `--version`, `/livez` and backups say it.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("LOKET_COMMIT"), ")");

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub use config::Config;
pub use web::{AppState, router};

/// A server ready to serve: store open, certificate loaded.
pub struct Server {
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
}

impl Server {
    /// Opens the store in `config.data` and loads the TLS certificate;
    /// fails, saying what to do, if `sync-server init` has not run there.
    pub async fn prepare(config: Config) -> anyhow::Result<Server> {
        config.check()?;
        let place = ops::setup::Place { data: config.data.clone(), database: config.database.clone() };
        let read_connections = config.read_connections;
        // Connecting and migrating block (the PostgreSQL client runs its
        // own runtime): off the async threads.
        let db = tokio::task::spawn_blocking(move || place.open(read_connections))
            .await?
            .with_context(|| format!("opening the store of {}", config.data.display()))?;
        tracing::info!(store = %db.describe(), "store open");
        // The seal key; a new Automerge actor for this run; the service
        // catalog is a document the server owns: make it on first start.
        let seal = {
            let db = db.clone();
            // The projections count working time in this offset.
            let hours = config.utc_offset_hours.to_string();
            tokio::task::spawn_blocking(move || {
                db.write(|tx| store::meta_set(tx, "utc_offset_hours", &hours))?;
                let seal = db.write(seal::SealKey::load_or_create)?;
                let writer = central::Writer::new(&seal);
                db.write(|tx| central::ensure_catalog(tx, &writer))?;
                Ok::<_, store::StoreError>((seal, writer))
            })
            .await??
        };
        let tls = tls::server_config(&config.tls_dir())?;
        let metrics_token_hash = config.metrics_token_file.as_deref().map(web::load_metrics_token).transpose()?;
        let (seal, writer) = seal;
        let mut state = AppState::new(db, config, seal, writer);
        state.metrics_token_hash = metrics_token_hash.map(Arc::from);
        Ok(Server { state, tls })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTPS on `listener` until `shutdown` resolves, then shuts
    /// down gracefully (see the module docs).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let config = self.state.config.clone();
        let limits = self.state.limits.clone();
        let (db, guard) = (self.state.db.clone(), self.state.login_guard);
        let janitor = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.shrink();
                // Failed-login counts that no longer count (any instance
                // may do it; it deletes only what has ended).
                if let Err(e) = ops::write(&db, move |tx| Ok(guard.purge(tx, store::now_ms())?)).await {
                    tracing::warn!(error = %e, "purging old login failures");
                }
            }
        });
        let compactor =
            config.compaction.then(|| tokio::spawn(compact_loop(self.state.db.clone(), self.state.metrics.clone())));
        let metrics = self.state.metrics.clone();
        let served = serve_app(router(self.state), self.tls, &config, metrics, listener, shutdown).await;
        janitor.abort();
        if let Some(c) = compactor {
            c.abort();
        }
        served
    }
}

/// Compaction in the background (`store::compact`): a step of at most
/// [`store::compact::STEP_BUDGET`], then a pause five times as long; while
/// kiosks are syncing (an exchange in the last two seconds) one step in
/// ten seconds at most. A pass that found nothing waits a minute. Any instance may run it: a document changed meanwhile
/// is left for the next pass.
async fn compact_loop(db: store::Db, metrics: Arc<metrics::Metrics>) {
    const PAUSE: Duration = Duration::from_millis(250);
    const IDLE: Duration = Duration::from_secs(60);
    // Kiosks syncing come first: no step within this long of an exchange,
    // but a step at least this often, so a busy city still gets compacted.
    const YIELD_MS: i64 = 2_000;
    const YIELD_MAX: Duration = Duration::from_secs(10);
    let mut cursor = store::compact::Cursor::default();
    let mut yielding_since: Option<std::time::Instant> = None;
    loop {
        let last_sync = metrics.last_sync_ms.load(std::sync::atomic::Ordering::Relaxed);
        let since = *yielding_since.get_or_insert_with(std::time::Instant::now);
        if store::now_ms() - last_sync < YIELD_MS && since.elapsed() < YIELD_MAX {
            tokio::time::sleep(PAUSE).await;
            continue;
        }
        yielding_since = None;
        let (db2, mut c) = (db.clone(), cursor.clone());
        let stepped = tokio::task::spawn_blocking(move || {
            store::compact::step(&db2, &mut c, store::compact::STEP_BUDGET).map(|done| (done, c))
        })
        .await;
        let wait = match stepped {
            Ok(Ok((done, c))) => {
                cursor = c;
                metrics.compacted_documents.inc_by(done.documents);
                metrics.compacted_bytes.inc_by(done.bytes_before.saturating_sub(done.bytes_after));
                if done.documents > 0 {
                    tracing::debug!(documents = done.documents, raced = done.raced, "compacted");
                }
                if cursor.done && done.documents == 0 { IDLE } else { PAUSE }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "compaction step failed; trying again later");
                IDLE
            }
            Err(e) => {
                tracing::error!(error = %e, "compaction step panicked; trying again later");
                IDLE
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Serves a configured server on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Server::prepare(config).await?.serve(listener, shutdown).await
}

/// The accept loop: TLS, HTTP/1.1 and HTTP/2, connection limits, and the
/// graceful shutdown described in the module docs.
async fn serve_app(
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    config: &Config,
    metrics: Arc<metrics::Metrics>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout).max_buf_size(256 * 1024);
    // Pings find HTTP/2 peers that vanished (a kiosk losing power) so
    // their connection slots come back; idle ones are closed by
    // `serve_connection`.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_STREAMS_MAX)
        .max_header_list_size(HTTP2_HEADER_LIST_BYTES_MAX)
        .max_pending_accept_reset_streams(HTTP2_PENDING_RESETS_MAX)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let deadlines = Deadlines {
        handshake: config.tls_handshake_timeout,
        first_request: config.header_read_timeout,
        idle: config.idle_timeout,
    };
    let connection = Arc::new(ConnectionContext { acceptor, app, builder, deadlines, metrics: metrics.clone() });
    let slots = Arc::new(Semaphore::new(config.connections_max));
    let per_address = Arc::new(PerAddress::new(config.connections_per_address_max));

    let addr = listener.local_addr()?;
    tracing::info!(%addr, "sync-server serving HTTPS");
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while let Some(done) = connections.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(error = %e, "a connection task panicked");
            }
        }
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a
                    // little rather than spin, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // The per-address cap first: a flood from one host is refused
        // without touching the slots everyone else needs.
        let Some(address_slot) = per_address.try_acquire(peer.ip()) else {
            metrics.record_closed("address_limit");
            tracing::debug!(%peer, "too many connections from this address; closing a new one");
            drop(stream);
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.record_closed("server_limit");
            tracing::warn!(%peer, "too many connections; closing a new one");
            drop(stream);
            continue;
        };
        let accepted_at = Instant::now();
        connections.spawn(serve_connection(
            stream,
            peer,
            accepted_at,
            connection.clone(),
            stopping.clone(),
            (slot, address_slot, OpenConnection::new(&metrics)),
        ));
    }
    drop(listener);
    while connections.try_join_next().is_some() {}

    tracing::info!(connections = connections.len(), grace_secs = config.shutdown_grace.as_secs(), "shutting down");
    let _ = stop.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(config.shutdown_grace, drained).await.is_err() {
        tracing::warn!(connections = connections.len(), "the grace period ended; closing what is left");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    tracing::info!("sync-server stopped");
    Ok(())
}

/// Streams one HTTP/2 connection may have open at once.
const HTTP2_STREAMS_MAX: u32 = 64;
/// Largest header list of one HTTP/2 request (HTTP/1 headers are bounded
/// by hyper's read buffer, 256 KiB).
const HTTP2_HEADER_LIST_BYTES_MAX: u32 = 64 * 1024;
/// Streams a client may open and reset before the server reads them
/// (the "rapid reset" flood), before its connection is closed.
const HTTP2_PENDING_RESETS_MAX: usize = 20;
/// How long a connection closed for idleness gets to say goodbye (GOAWAY,
/// the end of a response) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The deadlines of a connection's phases (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    /// From accept to the end of the TLS handshake.
    handshake: Duration,
    /// From the end of the handshake to the first request.
    first_request: Duration,
    /// Without a request in flight, after the first.
    idle: Duration,
}

/// What every connection task shares.
struct ConnectionContext {
    acceptor: TlsAcceptor,
    app: Router,
    builder: auto::Builder<TokioExecutor>,
    deadlines: Deadlines,
    metrics: Arc<metrics::Metrics>,
}

/// Open connections per client address, each at most `max`. IPv6
/// addresses count per /64, the block one host or one subscriber gets.
struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    fn new(max: usize) -> PerAddress {
        PerAddress { max: max.max(1), open: Mutex::new(HashMap::new()) }
    }

    /// A slot for one more connection from `ip`, unless it has `max`.
    fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = ops::auth::address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot { owner: self.clone(), key })
    }
}

/// One connection's place in [`PerAddress`], given back on drop. The map
/// holds only addresses with connections open, so it is bounded by
/// `connections_max`.
struct AddressSlot {
    owner: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Counts a connection in `loket_connections_open` while it lives.
struct OpenConnection(Arc<metrics::Metrics>);

impl OpenConnection {
    fn new(metrics: &Arc<metrics::Metrics>) -> OpenConnection {
        metrics.connections_open.inc();
        OpenConnection(metrics.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

/// What a connection's requests are doing, for its deadlines.
struct Activity {
    /// When the connection began serving HTTP, for the clock below.
    origin: Instant,
    /// Requests started on the connection.
    started: AtomicUsize,
    /// Requests whose handler has not finished.
    in_flight: AtomicUsize,
    /// When the last request finished, in ms since `origin`.
    last_done_ms: AtomicU64,
}

impl Activity {
    fn new(origin: Instant) -> Activity {
        Activity {
            origin,
            started: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// When the connection may next be closed for silence or idleness, if
    /// not now: `None` means "close it".
    fn next_check(&self, deadlines: &Deadlines, now: Instant) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Some(now + deadlines.idle);
        }
        if self.started.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let idle_until =
            self.origin + Duration::from_millis(self.last_done_ms.load(Ordering::Acquire)) + deadlines.idle;
        (idle_until > now).then_some(idle_until)
    }
}

/// A request in flight on a connection; its end is the connection's last
/// activity.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_done_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until it is done.
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl Tracked {
    fn body(body: axum::body::Body, in_flight: InFlight) -> axum::body::Body {
        axum::body::Body::new(Tracked { body, _in_flight: in_flight })
    }
}

impl axum::body::HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A TLS record starts with its content type; a handshake is 0x16.
const TLS_HANDSHAKE: u8 = 0x16;

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    accepted_at: Instant,
    context: Arc<ConnectionContext>,
    mut stopping: watch::Receiver<bool>,
    _slots: (OwnedSemaphorePermit, AddressSlot, OpenConnection),
) {
    let ConnectionContext { acceptor, app, builder, deadlines, metrics } = &*context;
    let _ = stream.set_nodelay(true);
    // One deadline for the first byte and the whole handshake.
    let handshake_deadline = accepted_at + deadlines.handshake;
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(handshake_deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != TLS_HANDSHAKE => {
            tracing::debug!(%peer, "plain HTTP on the HTTPS port");
            https_required(stream).await;
            return;
        }
        Ok(Ok(1)) => {}
        Err(_) => {
            metrics.record_closed("handshake_timeout");
            tracing::debug!(%peer, "silent connection closed");
            return;
        }
        _ => return, // closed or failed
    }
    let tls = match tokio::time::timeout_at(handshake_deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            metrics.record_closed("handshake_timeout");
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };

    let activity = Arc::new(Activity::new(Instant::now()));
    let service = {
        let (app, activity) = (app.clone(), activity.clone());
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = activity.begin();
            let answer = app.clone().oneshot(request);
            // In flight until the answer's body is sent (or dropped).
            async move { Ok::<_, std::convert::Infallible>(answer.await?.map(|body| Tracked::body(body, in_flight))) }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    // Until the first request: `first_request`; then checked again at the
    // end of each idle period. Once closing, the deadline to be gone.
    let mut check_at = activity.origin + deadlines.first_request;
    let mut closing = false;
    let mut shutting_down = false;
    loop {
        tokio::select! {
            done = connection.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stopping.changed(), if !shutting_down => {
                // The server is shutting down (or gone): finish what is in
                // flight; `serve_app` bounds the wait.
                shutting_down = true;
                if changed.is_err() || *stopping.borrow() {
                    connection.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(check_at), if !shutting_down => {
                if closing {
                    tracing::debug!(%peer, "connection did not close in time; dropped");
                    return;
                }
                let now = Instant::now();
                match activity.next_check(deadlines, now) {
                    Some(later) => check_at = later,
                    None if activity.started.load(Ordering::Relaxed) == 0 => {
                        // Not one request since the handshake: nothing to
                        // finish, nothing to say.
                        metrics.record_closed("first_request_timeout");
                        tracing::debug!(%peer, "no request after the TLS handshake; closed");
                        return;
                    }
                    None => {
                        metrics.record_closed("idle");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        check_at = now + CLOSE_GRACE;
                    }
                }
            }
        }
    }
}

/// Answers a plain-HTTP request with a JSON 400 saying to use HTTPS, so an
/// operator who typed `http://` learns why, then closes.
async fn https_required(mut stream: TcpStream) {
    let body = r#"{"error":{"code":"https_required","message":"gunakan https:// / use https://"}}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut head = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut head)).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests;
