//! Request rates: per client address for every request, per kiosk for
//! sync exchanges (GCRA token buckets from `governor`, in memory).
//!
//! A well-behaved kiosk syncs a few times a minute (debounced after writes,
//! every 30 s otherwise, backing off when refused), so the per-kiosk limit
//! only bites a kiosk that is broken or stolen; the per-address limit
//! bounds what one host can make the server do before authentication.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::web::{ApiError, AppState};

pub struct Limits {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_kiosk: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("at least 1")
}

impl Limits {
    pub fn new(ip_per_second: u32, kiosk_per_minute: u32) -> Limits {
        let ip = Quota::per_second(nonzero(ip_per_second)).allow_burst(nonzero(ip_per_second.saturating_mul(10)));
        let kiosk = Quota::per_minute(nonzero(kiosk_per_minute)).allow_burst(nonzero(kiosk_per_minute / 2));
        Limits { by_ip: RateLimiter::keyed(ip), by_kiosk: RateLimiter::keyed(kiosk) }
    }

    /// `Err(wait)` when `kiosk` syncs too often.
    pub fn check_kiosk(&self, kiosk: &str) -> Result<(), Duration> {
        self.by_kiosk.check_key(&kiosk.to_owned()).map_err(|n| n.wait_time_from(DefaultClock::default().now()))
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.by_ip.check_key(&ip).map_err(|n| n.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets idle keys so the maps stay bounded.
    pub fn shrink(&self) {
        self.by_ip.retain_recent();
        self.by_kiosk.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_kiosk.shrink_to_fit();
    }
}

pub use crate::ops::auth::address_key;

pub fn too_many(wait: Duration) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "terlalu banyak permintaan, coba lagi sebentar / too many requests, try again shortly",
    )
    .with_retry_after(wait)
}

/// Middleware: the per-address limit (requests without a peer address,
/// in-process tests, pass).
pub async fn by_address(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(wait) = st.limits.check_ip(address_key(peer.ip()))
    {
        st.metrics.record_refusal("rate_limited");
        tracing::warn!(%peer, "rate limited");
        return too_many(wait).into_response();
    }
    next.run(req).await
}
