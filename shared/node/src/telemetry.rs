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

/// Added to every filter that does not name automerge itself: automerge
/// 0.12 wraps each `load` in an `info`-level span whose fields (the load
/// options) are formatted at every call, ~9 % of the server's sync time
/// (issue 17's profile), and its warnings are all we want from it.
pub const AUTOMERGE_DIRECTIVE: &str = "automerge=warn";

/// Installs the global tracing subscriber: text, or JSON lines when `json`
/// (`--log-json`, `LOKET_LOG_JSON`).
///
/// # Panics
///
/// If a global subscriber is already installed (a second call).
pub fn init_tracing(json: bool) {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
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

/// The filter for `RUST_LOG`'s value (or [`DEFAULT_FILTER`] without a
/// valid one), with [`AUTOMERGE_DIRECTIVE`] unless it names automerge.
fn filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    let spec = rust_log.filter(|s| tracing_subscriber::EnvFilter::try_new(s).is_ok()).unwrap_or(DEFAULT_FILTER);
    let spec = if spec.contains("automerge") { spec.to_owned() } else { format!("{spec},{AUTOMERGE_DIRECTIVE}") };
    tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER))
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
    #[test]
    fn automerge_logs_only_warnings_unless_rust_log_names_it() {
        for rust_log in [None, Some("info"), Some("debug,tower_http=warn"), Some("not a ] filter")] {
            let f = super::filter(rust_log).to_string();
            assert!(f.contains("automerge=warn"), "{rust_log:?}: {f}");
        }
        let f = super::filter(Some("info,automerge=debug"));
        assert!(f.to_string().contains("automerge=debug") && !f.to_string().contains("automerge=warn"), "{f}");
        assert_eq!(super::filter(Some("debug")).max_level_hint(), Some(tracing::level_filters::LevelFilter::DEBUG));
    }

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
