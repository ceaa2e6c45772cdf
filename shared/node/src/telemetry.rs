//! Logging and stopping, as every binary's `main` does them.
//!
//! Invariants:
//! - The subscriber is set up once, in `main` (never in a library or a
//!   test): `RUST_LOG` decides what is logged, [`DEFAULT_FILTER`] without
//!   it; logs go to stderr (stdout carries the `listening on` line that
//!   scripts and tests read); colours only when stderr is a terminal, so a
//!   log file holds plain text.
//! - [`shutdown_signal`] installs its handlers before it returns: a SIGTERM
//!   sent as soon as the `listening on` line appears is never missed (and
//!   never kills the process before it drains).

use std::future::Future;

use anyhow::Context;

/// What is logged without `RUST_LOG`: our `info`, the HTTP layer's warnings.
pub const DEFAULT_FILTER: &str = "info,tower_http=warn";

/// Installs the global tracing subscriber: text, or JSON lines when `json`
/// (`--log-json`, `LOKET_LOG_JSON`).
///
/// # Panics
///
/// If a global subscriber is already installed (a second call).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves at SIGTERM or SIGINT (Ctrl-C), whichever comes first. The
/// handlers are installed before this returns (call it inside the tokio
/// runtime, before announcing the listener).
#[cfg(unix)]
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutdown requested");
    })
}

/// Resolves at Ctrl-C (the only signal there is off Unix).
#[cfg(not(unix))]
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown requested");
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A SIGTERM sent after `shutdown_signal` returned and before anyone
    /// awaits it is still seen, and the process lives on to drain.
    #[tokio::test]
    async fn a_sigterm_sent_before_the_future_is_polled_is_not_missed() {
        let stop = shutdown_signal().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(10), stop).await.expect("the signal was seen");
    }
}
