//! Progress on stderr for the long commands of both binaries (backup,
//! restore, reproject, migrate-store, seeding): indicatif, hidden when
//! stderr is not a terminal, so logs and scripts see only the result
//! lines the commands print.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A counter: `{bytes}` or `{human_pos}` in `template` says what it counts.
fn spinner(template: &str, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Bytes done so far, with the rate.
pub fn bytes(what: &'static str) -> ProgressBar {
    spinner("{spinner} {msg}: {bytes} ({binary_bytes_per_sec}) {elapsed}", what)
}

/// Items done so far, with the rate.
pub fn count(what: &'static str) -> ProgressBar {
    spinner("{spinner} {human_pos} {msg} ({per_sec}) {elapsed}", what)
}
