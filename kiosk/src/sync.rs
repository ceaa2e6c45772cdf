//! The kiosk's sync client: talks to the sync server over HTTPS with the
//! server's CA pinned (no other root is trusted), and the background loop
//! that syncs soon after each local write, retries with capped exponential
//! backoff and jitter when the server is unreachable, and never makes a
//! citizen or clerk wait: handlers only nudge it.
//!
//! A server at its limit answers 429 or 503 with `Retry-After`. A run sits
//! out a short wait (plus jitter, so kiosks told the same wait do not come
//! back together) and goes on; a longer one ends the run, and the
//! background loop waits what the server said instead of its own backoff.
//! The backoff is capped at a few seconds: after an outage of hours a
//! kiosk still finds the server within seconds of its return, and a
//! server that is up says itself when to come back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use loket_shared::sync::{SyncResponse, WireError};
use rand::Rng;
use tokio::sync::{Mutex, Notify, watch};

use crate::store::DocStore;
use crate::store::sync::{Enrollment, SyncSummary};

/// Documents per push (the protocol allows up to 500).
const PUSH_DOCS: usize = 200;
/// Exchanges in one sync run before yielding (bounds one run's work).
const ROUNDS_MAX: usize = 1000;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Capped low: trying a server that is down costs a refused connection;
/// a server that is up but busy says when to come back (`Retry-After`).
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The longest `Retry-After` a run sits out before trying again; a longer
/// one ends the run (the background loop waits it out).
const RETRY_AFTER_IN_RUN_MAX: Duration = Duration::from_secs(10);
/// `Retry-After` waits one run sits out before it gives up.
const RETRY_AFTER_WAITS_MAX: u32 = 30;
/// While failures last, a warning at most this often (debug otherwise).
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(600);
/// With nothing to do, still check the server this often (to pull).
const IDLE_INTERVAL: Duration = Duration::from_secs(30);
/// After a local write, wait this long for more before syncing (batching).
const DEBOUNCE: Duration = Duration::from_millis(50);
/// The server speaks another sync protocol: this kiosk needs an update
/// (or the server does), which no retry brings; still ask now and then, so
/// a server rolled back is noticed without a restart.
const OTHER_PROTOCOL_RETRY: Duration = Duration::from_secs(300);
/// The refusal code of a server that speaks another sync protocol.
pub const OTHER_PROTOCOL: &str = "unsupported_protocol_version";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("kiosk belum terdaftar / this kiosk is not enrolled")]
    NotEnrolled,
    #[error("server tidak terjangkau / server unreachable: {0}")]
    Unreachable(String),
    #[error("server menolak / server refused ({status}): {code}: {message}")]
    Refused { status: u16, code: String, message: String, retry_after: Option<Duration> },
    #[error("jawaban server rusak / bad answer from the server: {0}")]
    BadAnswer(String),
    #[error("gagal menyimpan / storing failed: {0}")]
    Store(String),
}

impl SyncError {
    pub fn code(&self) -> &str {
        match self {
            SyncError::NotEnrolled => "not_enrolled",
            SyncError::Unreachable(_) => "server_unreachable",
            SyncError::Refused { code, .. } => code,
            SyncError::BadAnswer(_) => "bad_server_answer",
            SyncError::Store(_) => "store_failed",
        }
    }

    /// How long the server asked us to wait (`Retry-After` on a 429 or
    /// 503), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// `wait` plus up to half of it again, at random: kiosks told the same wait
/// do not all come back in the same instant.
fn jittered(wait: Duration) -> Duration {
    let half = u64::try_from(wait.as_millis() / 2).unwrap_or(u64::MAX).max(200);
    wait + Duration::from_millis(rand::rng().random_range(0..=half))
}

/// A `Retry-After` in whole seconds (the only form our server sends).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs))
}

/// Builds an HTTPS client that trusts only the pinned CA.
pub fn https_client(ca_pem: &str, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())?;
    Ok(reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .https_only(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .build()?)
}

/// What the health endpoint and the staff console show.
#[derive(Debug, Default)]
pub struct SyncStatus {
    pub reachable: AtomicBool,
    pub last_ok_ms: AtomicI64,
    /// When the server became unreachable (0 while it is reachable).
    pub offline_since_ms: AtomicI64,
    pub last_attempt_ms: AtomicI64,
    pub attempts: AtomicU64,
    pub failures: AtomicU64,
    pub pushed_docs: AtomicU64,
    pub pulled_docs: AtomicU64,
    /// Bytes on the wire (sync message bodies), both ways.
    pub wire_bytes_out: AtomicU64,
    pub wire_bytes_in: AtomicU64,
    /// Raw Automerge change bytes carried, both ways (what had to move).
    pub change_bytes_out: AtomicU64,
    pub change_bytes_in: AtomicU64,
    /// Request/response exchanges with the server.
    pub exchanges: AtomicU64,
    pub last_error: std::sync::Mutex<Option<String>>,
    /// The server refused this kiosk's sync protocol (`OTHER_PROTOCOL`):
    /// one of the two needs updating. Work goes on offline meanwhile.
    pub update_needed: AtomicBool,
}

/// Owns the sync connection; `run_once` is serialised so that the loop
/// and `POST /api/sync` never interleave exchanges.
pub struct SyncClient {
    store: Arc<DocStore>,
    enrollment: Option<Enrollment>,
    http: Option<reqwest::Client>,
    running: Mutex<()>,
    pub status: SyncStatus,
    pub nudge: Notify,
}

impl SyncClient {
    pub fn new(store: Arc<DocStore>) -> anyhow::Result<SyncClient> {
        let enrollment = store.enrollment()?;
        let http = match &enrollment {
            Some(e) => Some(https_client(&e.ca_pem, Duration::from_secs(30))?),
            None => None,
        };
        let status = SyncStatus::default();
        if let Some(ms) = store.last_sync_ok_ms()? {
            status.last_ok_ms.store(ms, Ordering::Relaxed);
        }
        Ok(SyncClient { store, enrollment, http, running: Mutex::new(()), status, nudge: Notify::new() })
    }

    pub fn enrolled(&self) -> bool {
        self.enrollment.is_some()
    }

    /// Syncs until there is nothing more to push or pull.
    pub async fn run_once(&self) -> Result<SyncSummary, SyncError> {
        let (Some(enrollment), Some(http)) = (&self.enrollment, &self.http) else {
            return Err(SyncError::NotEnrolled);
        };
        let _one_at_a_time = self.running.lock().await;
        self.status.attempts.fetch_add(1, Ordering::Relaxed);
        self.status.last_attempt_ms.store(loket_node::now_ms(), Ordering::Relaxed);
        let result = self.exchange_all(enrollment, http).await;
        match &result {
            Ok(summary) => {
                self.status.reachable.store(true, Ordering::Relaxed);
                self.status.offline_since_ms.store(0, Ordering::Relaxed);
                self.status.last_ok_ms.store(loket_node::now_ms(), Ordering::Relaxed);
                self.status.pushed_docs.fetch_add(summary.pushed as u64, Ordering::Relaxed);
                self.status.pulled_docs.fetch_add(summary.pulled as u64, Ordering::Relaxed);
                *self.status.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                self.status.update_needed.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                self.status.failures.fetch_add(1, Ordering::Relaxed);
                let reachable = !matches!(e, SyncError::Unreachable(_));
                self.status.reachable.store(reachable, Ordering::Relaxed);
                if reachable {
                    self.status.offline_since_ms.store(0, Ordering::Relaxed);
                } else {
                    // Keep the first failure's time while the outage lasts.
                    let now = loket_node::now_ms();
                    let _ = self.status.offline_since_ms.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                }
                *self.status.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                self.status.update_needed.store(e.code() == OTHER_PROTOCOL, Ordering::Relaxed);
            }
        }
        result
    }

    async fn exchange_all(&self, enrollment: &Enrollment, http: &reqwest::Client) -> Result<SyncSummary, SyncError> {
        let mut total = SyncSummary::default();
        // The credential as stored now: `kiosk rotate-credential` may have
        // replaced it while we run; its first use completes the rotation.
        let store = self.store.clone();
        let token = tokio::task::spawn_blocking(move || store.enrollment())
            .await
            .map_err(|e| SyncError::Store(e.to_string()))?
            .map_err(|e| SyncError::Store(e.to_string()))?
            .map_or_else(|| enrollment.token.clone(), |e| e.token);
        // Restored from an older copy of its disk: the server must know the
        // new actor before anything written by it is pushed.
        let store = self.store.clone();
        let pending = tokio::task::spawn_blocking(move || store.pending_actor())
            .await
            .map_err(|e| SyncError::Store(e.to_string()))?
            .map_err(|e| SyncError::Store(e.to_string()))?;
        if let Some(actor) = pending {
            register_actor(enrollment, http, &token, &actor).await?;
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.actor_registered(&actor))
                .await
                .map_err(|e| SyncError::Store(e.to_string()))?
                .map_err(|e| SyncError::Store(e.to_string()))?;
            tracing::warn!("restored kiosk: the server registered its new actor and sends back what it holds");
        }
        let mut waits = 0u32;
        for _ in 0..ROUNDS_MAX {
            let store = self.store.clone();
            let plan = tokio::task::spawn_blocking(move || store.plan_push(PUSH_DOCS))
                .await
                .map_err(|e| SyncError::Store(e.to_string()))?
                .map_err(|e| SyncError::Store(e.to_string()))?;
            let pushed_full = plan.sent.len() >= PUSH_DOCS;
            let body = plan.request.encode();
            let body_len = body.len();
            let raw_out: usize = plan.request.push.iter().map(|p| p.changes.len()).sum();
            self.status.wire_bytes_out.fetch_add(body.len() as u64, Ordering::Relaxed);
            self.status.change_bytes_out.fetch_add(raw_out as u64, Ordering::Relaxed);
            self.status.exchanges.fetch_add(1, Ordering::Relaxed);
            let url = format!("{}/api/sync", enrollment.server_url.trim_end_matches('/'));
            let resp = http
                .post(&url)
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, "application/x-loket-sync")
                .body(body)
                .send()
                .await
                .map_err(|e| SyncError::Unreachable(e.without_url().to_string()))?;
            let status = resp.status();
            let wait = retry_after(resp.headers());
            let bytes = resp.bytes().await.map_err(|e| SyncError::Unreachable(e.without_url().to_string()))?;
            if !status.is_success() {
                let (code, message) = error_of(&bytes);
                let doc = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["error"]["doc"].as_str().map(str::to_owned))
                    .filter(|d| plan.sent.iter().any(|s| &s.doc_id == d));
                if let Some(doc) = doc.filter(|_| matches!(status.as_u16(), 400 | 403 | 409 | 413 | 422)) {
                    // The server refused one of our documents: keep it aside,
                    // visibly, and sync the rest instead of failing forever.
                    self.store.quarantine(doc, code, message).await.map_err(|e| SyncError::Store(e.to_string()))?;
                    total.quarantined += 1;
                    continue;
                }
                let busy = matches!(status.as_u16(), 429 | 503);
                if let Some(w) = wait.filter(|w| busy && *w <= RETRY_AFTER_IN_RUN_MAX && waits < RETRY_AFTER_WAITS_MAX)
                {
                    // The server is at its limit and said when to come back.
                    waits += 1;
                    tracing::debug!(code, wait_ms = w.as_millis() as u64, "server busy: waiting as it asked");
                    tokio::time::sleep(jittered(w)).await;
                    continue;
                }
                let retry_after = wait.filter(|_| busy);
                return Err(SyncError::Refused { status: status.as_u16(), code, message, retry_after });
            }
            let response = SyncResponse::decode(&bytes).map_err(|e: WireError| SyncError::BadAnswer(e.to_string()))?;
            let raw_in: usize = response.pull.iter().map(|p| p.changes.len()).sum();
            self.status.wire_bytes_in.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            total.exchanges += 1;
            total.wire_bytes += body_len + bytes.len();
            self.status.change_bytes_in.fetch_add(raw_in as u64, Ordering::Relaxed);
            let summary = self.store.apply_sync(plan, response).await.map_err(|e| SyncError::Store(e.to_string()))?;
            total.pushed += summary.pushed;
            total.pulled += summary.pulled;
            total.fallbacks += summary.fallbacks;
            total.refused += summary.refused;
            // A deferred document waits for another kiosk's push: nothing
            // more to gain by asking again now (the next sync retries it).
            if summary.deferred > 0 || !(summary.more || pushed_full || summary.fallbacks > 0) {
                total.more = false;
                return Ok(total);
            }
        }
        total.more = true;
        Ok(total)
    }
}

/// The `(code, message)` of a refusal's JSON body (`{error: {code,
/// message}}`), or `unknown` and the start of whatever came instead.
fn error_of(bytes: &[u8]) -> (String, String) {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .map(|v| {
            (
                v["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
                v["error"]["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .unwrap_or_else(|| ("unknown".into(), String::from_utf8_lossy(bytes).chars().take(200).collect()))
}

/// `POST /api/kiosk/actor`: has the server register the actor this kiosk
/// took when it was restored (`store::restore`). A retry is harmless.
async fn register_actor(
    enrollment: &Enrollment,
    http: &reqwest::Client,
    token: &str,
    actor: &str,
) -> Result<(), SyncError> {
    let url = format!("{}/api/kiosk/actor", enrollment.server_url.trim_end_matches('/'));
    let resp = http
        .post(&url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "actor": actor }))
        .send()
        .await
        .map_err(|e| SyncError::Unreachable(e.without_url().to_string()))?;
    let status = resp.status();
    let wait = retry_after(resp.headers());
    let bytes = resp.bytes().await.map_err(|e| SyncError::Unreachable(e.without_url().to_string()))?;
    if status.is_success() {
        return Ok(());
    }
    let (code, message) = error_of(&bytes);
    let retry_after = wait.filter(|_| matches!(status.as_u16(), 429 | 503));
    Err(SyncError::Refused { status: status.as_u16(), code, message, retry_after })
}

/// The background loop: sync after local writes (debounced), every
/// `IDLE_INTERVAL` otherwise, backing off exponentially with jitter while
/// the server cannot be reached. Stops when `stop` turns true.
pub async fn sync_loop(client: Arc<SyncClient>, stop: watch::Receiver<bool>) {
    use tracing::Instrument;
    let kiosk = client.store.identity().kiosk.clone();
    run_loop(client, stop).instrument(tracing::info_span!("sync_loop", kiosk = %kiosk)).await
}

async fn run_loop(client: Arc<SyncClient>, mut stop: watch::Receiver<bool>) {
    if !client.enrolled() {
        return;
    }
    let mut backoff = BACKOFF_MIN;
    let mut wait = Duration::ZERO; // sync once at start
    // When the last warning about failing syncs was logged (None: syncing works).
    let mut warned: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = client.nudge.notified() => {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(DEBOUNCE) => {}
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
        match client.run_once().await {
            Ok(summary) => {
                backoff = BACKOFF_MIN;
                if warned.take().is_some() {
                    tracing::info!("sync works again");
                }
                wait = if summary.more { Duration::ZERO } else { IDLE_INTERVAL };
                if summary.pushed + summary.pulled > 0 {
                    tracing::info!(pushed = summary.pushed, pulled = summary.pulled, "synced");
                }
            }
            Err(e) => {
                wait = wait_after(&e, &mut backoff);
                let retry_in_ms = wait.as_millis() as u64;
                if warned.is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY) {
                    warned = Some(std::time::Instant::now());
                    tracing::warn!(error = %e, retry_in_ms, "sync failed");
                } else {
                    tracing::debug!(error = %e, retry_in_ms, "sync failed again");
                }
            }
        }
    }
}

/// How long the background loop waits after a failed run: what the server
/// asked for, if it did; long when only an update helps (`POST /api/sync`
/// still tries at once); else the backoff, which doubles up to its cap.
/// Always jittered, so kiosks that failed together do not return together.
fn wait_after(e: &SyncError, backoff: &mut Duration) -> Duration {
    match e.retry_after() {
        Some(asked) => jittered(asked),
        None if e.code() == OTHER_PROTOCOL => jittered(OTHER_PROTOCOL_RETRY),
        None => {
            let w = jittered(*backoff);
            *backoff = (*backoff * 2).min(BACKOFF_MAX);
            w
        }
    }
}

/// Enrolls with the server: one-time code in, kiosk credential out.
/// Asks the server for a new credential (`POST /api/kiosk/credential`) and
/// returns it. The old one keeps working until the new one is first used.
pub async fn rotate_credential(enrollment: &Enrollment) -> anyhow::Result<String> {
    let http = https_client(&enrollment.ca_pem, Duration::from_secs(30))?;
    let url = format!("{}/api/kiosk/credential", enrollment.server_url);
    let resp = http
        .post(&url)
        .bearer_auth(&enrollment.token)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {}: {}", enrollment.server_url, e.without_url()))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "rotation refused ({status}): {} {}",
        body["error"]["code"].as_str().unwrap_or("unknown"),
        body["error"]["message"].as_str().unwrap_or("")
    );
    body["token"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("the answer lacks a token"))
}

pub async fn enroll(
    server_url: &str,
    ca_pem: &str,
    code: &str,
    actor_hex: &str,
    name: Option<&str>,
) -> anyhow::Result<(Enrollment, String, String)> {
    let http = https_client(ca_pem, Duration::from_secs(30))?;
    let url = format!("{}/api/enroll", server_url.trim_end_matches('/'));
    let resp = http
        .post(&url)
        .json(&serde_json::json!({
            "code": code.trim(),
            "actor": actor_hex,
            "name": name,
            "version": env!("CARGO_PKG_VERSION"),
        }))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {server_url}: {}", e.without_url()))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!(
            "enrollment refused ({status}): {} {}",
            body["error"]["code"].as_str().unwrap_or("unknown"),
            body["error"]["message"].as_str().unwrap_or("")
        );
    }
    let field = |k: &str| -> anyhow::Result<String> {
        body[k].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("enrollment answer lacks {k}"))
    };
    let enrollment = Enrollment {
        server_url: server_url.trim_end_matches('/').to_owned(),
        token: field("token")?,
        kiosk_id: field("kiosk_id")?,
        ca_pem: ca_pem.to_owned(),
    };
    Ok((enrollment, field("kiosk_code")?, field("kelurahan")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: &str, retry_after: Option<Duration>) -> SyncError {
        SyncError::Refused { status, code: code.into(), message: String::new(), retry_after }
    }

    /// A kiosk one protocol version behind the server cannot sync until it
    /// is updated: it does not hammer the server meanwhile (the refusal is
    /// the server's real answer: `sync_bad_input.rs`), while a network
    /// failure is retried within seconds and a busy server's wait is kept.
    #[test]
    fn the_loop_waits_long_only_when_an_update_is_needed() {
        let mut backoff = BACKOFF_MIN;
        let other = wait_after(&refused(400, OTHER_PROTOCOL, None), &mut backoff);
        assert!(other >= OTHER_PROTOCOL_RETRY && other <= OTHER_PROTOCOL_RETRY * 3 / 2, "{other:?}");
        assert_eq!(backoff, BACKOFF_MIN, "an update is not a failure to back off from");
        let busy = wait_after(&refused(503, "overloaded", Some(Duration::from_secs(7))), &mut backoff);
        assert!(busy >= Duration::from_secs(7) && busy <= Duration::from_secs(11), "{busy:?}");
        let mut waits = Vec::new();
        for _ in 0..6 {
            waits.push(wait_after(&SyncError::Unreachable("refused".into()), &mut backoff));
        }
        assert!(waits.iter().all(|w| *w <= BACKOFF_MAX * 3 / 2), "{waits:?}");
        assert_eq!(backoff, BACKOFF_MAX);
    }
}
