//! The kiosk's `/metrics` (Prometheus text): pending changes, last
//! successful sync, sync attempts and failures, documents held. Values are
//! read at scrape time from the store and the sync client's status, so the
//! registry never disagrees with `/healthz`.

use std::sync::atomic::Ordering;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

use crate::store::Counts;
use crate::sync::SyncStatus;

/// Renders the current figures.
pub fn render(counts: Counts, status: &SyncStatus, enrolled: bool) -> String {
    let mut registry = Registry::with_prefix("loket_kiosk");
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
        let g: Gauge = Gauge::default();
        g.set(value);
        registry.register(name, help, g);
    };
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let c: Counter = Counter::default();
        c.inc_by(value);
        registry.register(name, help, c);
    };
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    gauge(
        &mut registry,
        "pending_changes",
        "Local changes not yet acknowledged by the server",
        as_i64(counts.pending_changes),
    );
    gauge(&mut registry, "documents", "Documents held", as_i64(counts.documents));
    gauge(
        &mut registry,
        "quarantined_documents",
        "Documents the server refused, kept aside until staff retry them",
        as_i64(counts.quarantined),
    );
    gauge(&mut registry, "enrolled", "1 when enrolled with a sync server", i64::from(enrolled));
    gauge(
        &mut registry,
        "server_reachable",
        "1 when the last sync reached the server",
        i64::from(status.reachable.load(Ordering::Relaxed)),
    );
    gauge(
        &mut registry,
        "last_sync_ok_timestamp_seconds",
        "Unix time of the last successful sync (0: never)",
        status.last_ok_ms.load(Ordering::Relaxed) / 1000,
    );
    gauge(
        &mut registry,
        "update_needed",
        "1 when the server refused this kiosk's sync protocol",
        i64::from(status.update_needed.load(Ordering::Relaxed)),
    );
    counter(&mut registry, "sync_attempts", "Sync runs started", status.attempts.load(Ordering::Relaxed));
    counter(&mut registry, "sync_failures", "Sync runs that failed", status.failures.load(Ordering::Relaxed));
    counter(&mut registry, "synced_pushed_documents", "Documents pushed", status.pushed_docs.load(Ordering::Relaxed));
    counter(&mut registry, "synced_pulled_documents", "Documents pulled", status.pulled_docs.load(Ordering::Relaxed));
    counter(
        &mut registry,
        "sync_exchanges",
        "Request/response exchanges with the server",
        status.exchanges.load(Ordering::Relaxed),
    );
    counter(
        &mut registry,
        "sync_wire_bytes_out",
        "Sync message bytes sent",
        status.wire_bytes_out.load(Ordering::Relaxed),
    );
    counter(
        &mut registry,
        "sync_wire_bytes_in",
        "Sync message bytes received",
        status.wire_bytes_in.load(Ordering::Relaxed),
    );
    counter(
        &mut registry,
        "sync_change_bytes_out",
        "Raw Automerge change bytes sent",
        status.change_bytes_out.load(Ordering::Relaxed),
    );
    counter(
        &mut registry,
        "sync_change_bytes_in",
        "Raw Automerge change bytes received",
        status.change_bytes_in.load(Ordering::Relaxed),
    );
    let mut out = String::new();
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}
