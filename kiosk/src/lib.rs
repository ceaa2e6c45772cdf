//! The Loket kiosk: a local store of Automerge documents in SQLite, the
//! citizen and staff HTTP API, and (from the sync issue on) the sync
//! client. It works forever without a server.
//!
//! Entry points: [`run`] serves a configured kiosk on its two listeners
//! (the citizen screens and API; the staff console) until a shutdown
//! future resolves; [`setup::init`] creates a kiosk's store.

pub mod config;
pub mod metrics;
pub mod setup;
pub mod store;
pub mod sync;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

pub use config::Config;

/// This build: the package version and the commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("LOKET_COMMIT"), ")");
use store::{DocStore, StoreOptions};

impl Config {
    pub fn store_options(&self) -> anyhow::Result<StoreOptions> {
        Ok(StoreOptions {
            utc_offset: time::UtcOffset::from_hms(self.utc_offset_hours, 0, 0).context("utc_offset_hours")?,
            write_batch_max: self.write_batch_max,
            write_queue_max: self.write_queue_max,
            read_connections: self.read_connections,
            compact_chunks_min: self.compact_chunks_min,
        })
    }
}

/// Where a kiosk serves: the citizens' touch screen with the JSON API, and
/// the staff console, each on its own socket (so on its own origin: the
/// citizen screen's browser never holds or reaches a staff session).
pub struct Listeners {
    /// `listen`: citizen screens, `/api/…`, `/healthz`, `/metrics`.
    pub citizen: TcpListener,
    /// `staff_listen`: the staff console (`/staf…`).
    pub staff: TcpListener,
}

/// Serves the kiosk on `listeners` until `shutdown` resolves, then finishes
/// in-flight requests, stops background work and waits for the writer to
/// drain. Every write acknowledged before that is on disk.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Listeners { citizen: listener, staff: staff_listener } = listeners;
    let options = config.store_options()?;
    let db = config.db_path();
    let store = tokio::task::spawn_blocking(move || DocStore::open(&db, options))
        .await?
        .with_context(|| format!("opening the kiosk store in {}", config.data.display()))?;
    let store = Arc::new(store);
    let sync = Arc::new(sync::SyncClient::new(store.clone()).context("setting up sync")?);
    let secure_cookies = listener.local_addr()?.ip().is_loopback();
    let mut state = web::AppState::new(store.clone(), sync.clone(), &config, secure_cookies);
    state.staff_secure_cookies = staff_listener.local_addr()?.ip().is_loopback();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let compactor = tokio::spawn(compact_loop(
        store.clone(),
        config.compact_interval,
        config.personal_data_retention,
        stop_rx.clone(),
    ));
    let syncer = tokio::spawn(sync::sync_loop(sync.clone(), stop_rx));

    let app = web::router(state.clone(), config.body_bytes_max);
    let staff_app = web::staff_router(state, config.body_bytes_max);
    let addr = listener.local_addr()?;
    let staff_addr = staff_listener.local_addr()?;
    tracing::info!(%addr, %staff_addr, kiosk = %store.identity().kiosk, kelurahan = %store.identity().kelurahan, "kiosk serving");
    // One shutdown for both listeners: each finishes its in-flight requests.
    let (down_tx, down_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|down| *down).await;
    };
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = down_tx.send(true);
    });
    let citizen_serve = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(stopped(down_rx.clone()));
    let staff_serve =
        axum::serve(staff_listener, staff_app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(stopped(down_rx));
    let served =
        tokio::try_join!(async { citizen_serve.await.context("serving the citizen screens and API") }, async {
            staff_serve.await.context("serving the staff console")
        },);
    signal.abort();
    served?;

    let _ = stop_tx.send(true);
    compactor.await.context("compaction task")?;
    syncer.await.context("sync task")?;
    drop(sync);
    match Arc::try_unwrap(store) {
        Ok(store) => tokio::task::spawn_blocking(move || store.shutdown()).await?,
        Err(_) => tracing::warn!("store still shared at shutdown; the writer stops when the last user goes"),
    }
    tracing::info!("kiosk stopped");
    Ok(())
}

/// Compaction, then eviction of expired personal data, every `every`.
async fn compact_loop(
    store: Arc<DocStore>,
    every: std::time::Duration,
    retention: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick fires at once; start one period in
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                // Keep going while there is a backlog, yielding between rounds.
                loop {
                    match store.compact().await {
                        Ok(0) => break,
                        Ok(_) => tokio::task::yield_now().await,
                        Err(e) => {
                            tracing::warn!(error = %e, "compaction failed");
                            break;
                        }
                    }
                    if *stop.borrow() {
                        return;
                    }
                }
                let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
                loop {
                    match store.evict(loket_node::now_ms().saturating_sub(retention_ms)).await {
                        Ok(0) => break,
                        Ok(_) => tokio::task::yield_now().await,
                        Err(e) => {
                            tracing::warn!(error = %e, "eviction failed");
                            break;
                        }
                    }
                    if *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }
}
