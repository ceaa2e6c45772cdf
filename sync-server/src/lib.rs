//! The Loket central sync server: enrolls kiosks, merges their documents
//! (`sync`), and serves the admin and agency API, over HTTPS only.
//!
//! Entry points: [`run`] serves a configured server on a listener until a
//! shutdown future resolves ([`Server::prepare`] + [`Server::serve`] when
//! the caller wants to know it is ready before serving); [`router`] is the
//! whole HTTP API without a socket, for tests; [`setup`] holds the
//! operator commands (`init`, `enroll-code`, `revoke`, `add-user`).
//!
//! Shutdown: stop accepting, let every open connection finish its
//! in-flight requests (idle keep-alive connections close at once) for at
//! most `shutdown_grace`, then drop whatever is left. Every connection is
//! a task in one `JoinSet`, so `serve` returns only when all have ended.

pub mod auth;
pub mod central;
pub mod config;
pub mod enroll;
pub mod fuzzing;
pub mod metrics;
pub mod ratelimit;
pub mod seal;
pub mod setup;
pub mod store;
pub mod sync;
pub mod tls;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub use config::Config;
pub use web::{AppState, router};

use store::Db;

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
        let db_path = config.db_path();
        anyhow::ensure!(
            db_path.exists(),
            "{} has no server.db: run `sync-server init --data {}` first",
            config.data.display(),
            config.data.display()
        );
        let read_connections = config.read_connections;
        let db = tokio::task::spawn_blocking(move || Db::open_with(&db_path, read_connections))
            .await?
            .with_context(|| format!("opening the store in {}", config.data.display()))?;
        let initialised = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || db.is_initialised()).await??
        };
        anyhow::ensure!(
            initialised,
            "{} was not initialised completely: remove it and run `sync-server init` again",
            config.data.display()
        );
        // The seal key; a new Automerge actor for this run; the service
        // catalog is a document the server owns: make it on first start.
        let seal = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || {
                db.write(|tx| {
                    let seal = seal::SealKey::load_or_create(tx)?;
                    central::rotate_server_actor(tx)?;
                    central::ensure_catalog(tx)?;
                    Ok::<_, store::StoreError>(seal)
                })
            })
            .await??
        };
        let tls = tls::server_config(&config.tls_dir())?;
        Ok(Server { state: AppState::new(db, config, seal), tls })
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
        let janitor = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.shrink();
            }
        });
        let served = serve_app(router(self.state), self.tls, &config, listener, shutdown).await;
        janitor.abort();
        served
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
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout).max_buf_size(256 * 1024);
    // Pings find HTTP/2 peers that vanished (a kiosk losing power) so
    // their connection slots come back.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(config.connections_max));

    let addr = listener.local_addr()?;
    tracing::info!(%addr, "sync-server serving HTTPS");
    let graceful = GracefulShutdown::new();
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections; closing a new one");
            drop(stream);
            continue;
        };
        connections.spawn(serve_connection(
            stream,
            peer,
            acceptor.clone(),
            app.clone(),
            builder.clone(),
            graceful.watcher(),
            config.tls_handshake_timeout,
            slot,
        ));
    }
    drop(listener);
    while connections.try_join_next().is_some() {}

    tracing::info!(connections = connections.len(), grace_secs = config.shutdown_grace.as_secs(), "shutting down");
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(connections = connections.len(), "the grace period ended; closing what is left");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    tracing::info!("sync-server stopped");
    Ok(())
}

/// A TLS record starts with its content type; a handshake is 0x16.
const TLS_HANDSHAKE: u8 = 0x16;

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    handshake_timeout: Duration,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    match tokio::time::timeout(handshake_timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] != TLS_HANDSHAKE => {
            tracing::debug!(%peer, "plain HTTP on the HTTPS port");
            https_required(stream).await;
            return;
        }
        Ok(Ok(1)) => {}
        _ => return, // closed, failed or silent
    }
    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request)
    });
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
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
