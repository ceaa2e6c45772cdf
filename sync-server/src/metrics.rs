//! Prometheus metrics (`GET /metrics`, text format 0.0.4).
//!
//! Label values are `&'static str` on purpose: a label made from input
//! (a kiosk id, an error message) would grow the series without bound.
//! The sync endpoint counts through [`Metrics::record_sync`] and
//! [`Metrics::record_refusal`], or through the public fields directly;
//! the kiosk gauges are refreshed from the database at each scrape.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// `result="ok"|"refused"|"error"` and the like.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// `direction="in"|"out"` (in: from kiosks to the server).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DirectionLabels {
    pub direction: &'static str,
}

/// `reason="<stable error code>"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// `loket_syncs_total{result}`: sync exchanges, by `ok` / `refused` / `error`.
    pub syncs: Family<ResultLabels, Counter>,
    /// `loket_sync_batches_total{direction}`: non-empty push (`in`) and pull (`out`) batches.
    pub batches: Family<DirectionLabels, Counter>,
    /// `loket_sync_documents_total{direction}`: documents received (`in`) and sent (`out`).
    pub documents: Family<DirectionLabels, Counter>,
    /// `loket_sync_bytes_total{direction}`: sync body bytes received (`in`) and sent (`out`).
    pub bytes: Family<DirectionLabels, Counter>,
    /// `loket_sync_apply_seconds`: time to handle one sync exchange.
    pub apply_seconds: Histogram,
    /// `loket_sync_refusals_total{reason}`: refused sync batches by error code.
    pub refusals: Family<ReasonLabels, Counter>,
    /// `loket_sync_stale_commits_total`: exchange commits found stale
    /// because another writer changed one of their documents first
    /// (optimistic commits meeting); the documents it changed are merged
    /// again, the rest kept. Many of them mean CPU spent twice.
    pub stale_commits: Counter,
    /// `loket_sync_full_checks_total`: pushed changes to a stored request
    /// that did more than append events and ratings, so the server read
    /// the stored request and checked the whole document
    /// (`structure::appended`).
    pub full_checks: Counter,
    /// `loket_kiosks_seen`: kiosks (not revoked) seen in the last
    /// [`Metrics::SEEN_WINDOW`]; refreshed at each scrape.
    pub kiosks_seen: Gauge,
    /// `loket_kiosks_enrolled`: kiosks enrolled and not revoked; refreshed at each scrape.
    pub kiosks_enrolled: Gauge,
    /// `loket_logins_total{result}`: `ok` / `failed` / `limited`.
    pub logins: Family<ResultLabels, Counter>,
    /// `loket_enrollments_total{result}`: `ok` or the refusal code.
    pub enrollments: Family<ResultLabels, Counter>,
    /// `loket_connections_open`: client connections open now.
    pub connections_open: Gauge,
    /// `loket_connections_closed_total{reason}`: connections the server
    /// closed before they were done: `address_limit`, `server_limit` (on
    /// accept), `handshake_timeout`, `first_request_timeout`, `idle`.
    pub connections_closed: Family<ReasonLabels, Counter>,
    /// `loket_compacted_documents_total`: documents whose chunks the
    /// background compaction folded into one snapshot.
    pub compacted_documents: Counter,
    /// `loket_compacted_bytes_total`: stored document bytes compaction
    /// saved (before minus after).
    pub compacted_bytes: Counter,
    /// When the last sync exchange was handled (ms since the epoch; not
    /// exported): background compaction yields while kiosks sync.
    pub last_sync_ms: std::sync::atomic::AtomicI64,
}

impl Metrics {
    /// The window of [`Metrics::kiosks_seen`].
    pub const SEEN_WINDOW: Duration = Duration::from_secs(24 * 3600);

    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("loket");
        let syncs = Family::<ResultLabels, Counter>::default();
        registry.register("syncs", "Sync exchanges by result", syncs.clone());
        let batches = Family::<DirectionLabels, Counter>::default();
        registry.register("sync_batches", "Non-empty sync batches pushed (in) and pulled (out)", batches.clone());
        let documents = Family::<DirectionLabels, Counter>::default();
        registry.register("sync_documents", "Documents received (in) and sent (out)", documents.clone());
        let bytes = Family::<DirectionLabels, Counter>::default();
        registry.register("sync_bytes", "Sync body bytes received (in) and sent (out)", bytes.clone());
        // 1 ms .. ~16 s
        let apply_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register("sync_apply_seconds", "Time to handle one sync exchange", apply_seconds.clone());
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register("sync_refusals", "Refused sync batches by reason", refusals.clone());
        let stale_commits = Counter::default();
        registry.register(
            "sync_stale_commits",
            "Sync commits found stale because another writer changed one of their documents first \
             (those documents are merged again)",
            stale_commits.clone(),
        );
        let full_checks = Counter::default();
        registry.register(
            "sync_full_checks",
            "Pushed changes to a stored request checked whole against it, because they did more than append",
            full_checks.clone(),
        );
        let kiosks_seen = Gauge::default();
        registry.register("kiosks_seen", "Kiosks (not revoked) seen in the last 24 hours", kiosks_seen.clone());
        let kiosks_enrolled = Gauge::default();
        registry.register("kiosks_enrolled", "Kiosks enrolled and not revoked", kiosks_enrolled.clone());
        let logins = Family::<ResultLabels, Counter>::default();
        registry.register("logins", "Central app logins by result", logins.clone());
        let enrollments = Family::<ResultLabels, Counter>::default();
        registry.register("enrollments", "Kiosk enrollments by result", enrollments.clone());
        let connections_open = Gauge::default();
        registry.register("connections_open", "Client connections open", connections_open.clone());
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the server closed before they were done, by reason",
            connections_closed.clone(),
        );
        let compacted_documents = Counter::default();
        registry.register(
            "compacted_documents",
            "Documents whose chunks compaction folded into one snapshot",
            compacted_documents.clone(),
        );
        let compacted_bytes = Counter::default();
        registry.register("compacted_bytes", "Stored document bytes compaction saved", compacted_bytes.clone());
        Metrics {
            registry,
            compacted_documents,
            compacted_bytes,
            last_sync_ms: std::sync::atomic::AtomicI64::new(0),
            syncs,
            batches,
            documents,
            bytes,
            apply_seconds,
            refusals,
            stale_commits,
            full_checks,
            kiosks_seen,
            kiosks_enrolled,
            logins,
            enrollments,
            connections_open,
            connections_closed,
        }
    }

    /// Counts one sync exchange. `ok = false` counts it as `refused`
    /// (count the reason with [`Metrics::record_refusal`]).
    pub fn record_sync(
        &self,
        ok: bool,
        bytes_in: usize,
        bytes_out: usize,
        docs_in: usize,
        docs_out: usize,
        elapsed: Duration,
    ) {
        let result = if ok { "ok" } else { "refused" };
        self.syncs.get_or_create(&ResultLabels { result }).inc();
        self.last_sync_ms.store(crate::store::now_ms(), std::sync::atomic::Ordering::Relaxed);
        let count = |family: &Family<DirectionLabels, Counter>, direction: &'static str, n: usize| {
            family.get_or_create(&DirectionLabels { direction }).inc_by(n as u64);
        };
        count(&self.bytes, "in", bytes_in);
        count(&self.bytes, "out", bytes_out);
        count(&self.documents, "in", docs_in);
        count(&self.documents, "out", docs_out);
        if docs_in > 0 {
            count(&self.batches, "in", 1);
        }
        if docs_out > 0 {
            count(&self.batches, "out", 1);
        }
        self.apply_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a refused sync batch by its stable error code.
    pub fn record_refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a connection the server closed, by why.
    pub fn record_closed(&self, reason: &'static str) {
        self.connections_closed.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts a sync that failed on the server's side (store, bug).
    pub fn record_sync_error(&self) {
        self.syncs.get_or_create(&ResultLabels { result: "error" }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text_format() {
        let m = Metrics::new();
        m.record_sync(true, 1000, 200, 3, 0, Duration::from_millis(12));
        m.record_sync(false, 10, 0, 0, 0, Duration::from_millis(1));
        m.record_refusal("wrong_actor");
        m.kiosks_seen.set(7);
        let text = m.encode();
        for line in [
            "loket_syncs_total{result=\"ok\"} 1",
            "loket_syncs_total{result=\"refused\"} 1",
            "loket_sync_bytes_total{direction=\"in\"} 1010",
            "loket_sync_documents_total{direction=\"in\"} 3",
            "loket_sync_batches_total{direction=\"in\"} 1",
            "loket_sync_refusals_total{reason=\"wrong_actor\"} 1",
            "loket_kiosks_seen 7",
            "loket_sync_apply_seconds_count 2",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }
}
