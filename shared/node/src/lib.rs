//! `loket-node`: the plumbing both Loket binaries (the kiosk and the sync
//! server) need, written once so the two cannot drift apart.
//!
//! `loket-shared` is pure: no IO, no clock, no randomness. This crate is
//! the other side of that line, where the wall clock and the operating
//! system's random bytes come from ([`now_ms`], [`random_bytes`]), and the
//! IO-bound pieces every node repeats:
//!
//! - [`at_rest`]: Automerge bytes as stored, packed with zstd and a
//!   dictionary trained on Loket's documents.
//! - [`backup`]: backup archives of a data folder (tar + zstd, SHA-256
//!   manifest), written and restored atomically.
//! - [`password`]: argon2id hashing and verification (OWASP's baseline).
//! - [`token`]: session tokens and secrets: 32 random bytes shown once,
//!   SHA-256 stored; the `Authorization: Bearer` parser.
//! - [`config`]: defaults → TOML file → environment prefix → flags, and
//!   durations as whole seconds.
//! - [`error`]: [`error::ApiError`], the JSON error body with a stable code,
//!   and the mapping of axum's rejections onto it (field named, value never
//!   echoed).
//! - [`web`]: security headers, CSRF tokens and cookies, the client address,
//!   the JSON and query extractors whose rejections are `ApiError`s.
//! - [`telemetry`]: the tracing subscriber and the shutdown signals.
//! - [`sqlite`]: connection settings (WAL, `synchronous=FULL`, foreign keys,
//!   busy timeout), a database file only its owner can read, `meta` rows.
//!
//! What differs between the binaries (product words in messages, cookie
//! names, the CSP, environment prefixes) is a parameter, never a branch on
//! which binary this is.

pub mod at_rest;
pub mod backup;
pub mod config;
pub mod error;
pub mod password;
pub mod progress;
pub mod sqlite;
pub mod telemetry;
pub mod token;
pub mod web;

/// Milliseconds since the Unix epoch by this machine's clock (0 if the
/// clock is before 1970, `i64::MAX` past the year 292 million).
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `N` bytes from the operating system's random source.
///
/// # Panics
///
/// Without an OS random source: there is nothing safe to do then, as no
/// token, key, salt or id may be made from anything weaker.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source works");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_past_2025_and_random_bytes_differ() {
        assert!(now_ms() > 1_735_689_600_000, "{}", now_ms());
        assert_ne!(random_bytes::<16>(), random_bytes::<16>());
    }
}
