//! Kiosk configuration: defaults, then `DIR/kiosk.toml` (or `--config`),
//! then `LOKET_KIOSK_*` environment variables, then command-line flags
//! (the layering is `loket_node::config`'s). Durations are whole seconds.
//! Every key and its default is documented in `config.example.toml`, which
//! a test parses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use loket_node::config::{Sources, secs};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the kiosk's database lives.
    pub data: PathBuf,
    /// Address of the citizen screens and the local JSON API (loopback or
    /// office LAN only). Serves no staff page.
    pub listen: SocketAddr,
    /// Address of the staff console (`/staf…`), a listener of its own so
    /// that the citizens' touch screen, on `listen`, never reaches a staff
    /// session: a browser keeps the two origins' pages, storage and
    /// scripts apart. Loopback, or the office LAN for a counter PC.
    pub staff_listen: SocketAddr,
    /// Offset of local time from UTC, in hours (Medan: WIB, +7). Decides
    /// the day in ticket numbers.
    pub utc_offset_hours: i8,
    /// How long a staff login stays valid.
    #[serde(with = "secs")]
    pub staff_session_ttl: Duration,
    /// Largest request body accepted, in bytes.
    pub body_bytes_max: usize,
    /// Most writes committed in one transaction (group commit).
    pub write_batch_max: usize,
    /// Writes waiting for the writer before new ones are refused (503).
    pub write_queue_max: usize,
    /// A document is compacted once it has this many appended chunks.
    pub compact_chunks_min: u32,
    /// How often the background compaction looks for work.
    #[serde(with = "secs")]
    pub compact_interval: Duration,
    /// Connections for reads (writes have their own).
    pub read_connections: u32,
    /// How long a finished request keeps its personal data (name, NIK,
    /// phone) on this kiosk once the server holds it; then it is evicted.
    #[serde(with = "secs")]
    pub personal_data_retention: Duration,
    /// Seconds without a touch before the citizen screens return to the
    /// start and clear everything typed.
    #[serde(with = "secs")]
    pub citizen_idle_timeout: Duration,
    /// Seconds without a touch before the staff console logs out (a
    /// counter PC is shared; the session itself lasts `staff_session_ttl`).
    #[serde(with = "secs")]
    pub staff_idle_timeout: Duration,
    /// Staff login failures per staff id before that id is locked out
    /// for `staff_lockout` (and per client address, ten times as many).
    pub staff_login_failures_max: u32,
    #[serde(with = "secs")]
    pub staff_lockout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("kiosk-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            staff_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            utc_offset_hours: 7,
            staff_session_ttl: Duration::from_secs(12 * 3600),
            body_bytes_max: 16 * 1024,
            write_batch_max: 64,
            write_queue_max: 1024,
            compact_chunks_min: 8,
            compact_interval: Duration::from_secs(30),
            read_connections: 4,
            personal_data_retention: Duration::from_secs(30 * 24 * 3600),
            citizen_idle_timeout: Duration::from_secs(90),
            staff_idle_timeout: Duration::from_secs(15 * 60),
            staff_login_failures_max: 5,
            staff_lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// Overrides from the command line (only the flags the user gave).
#[derive(Debug, Default, Serialize)]
pub struct CliOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_listen: Option<SocketAddr>,
}

impl Config {
    /// Loads the layered configuration. `file` defaults to `DATA/kiosk.toml`
    /// when it exists.
    pub fn load(file: Option<&Path>, cli: &CliOverrides) -> anyhow::Result<Config> {
        let sources = Sources {
            file,
            default_file: cli.data.as_ref().map(|d| d.join("kiosk.toml")),
            env_prefix: "LOKET_KIOSK_",
            what: "kiosk configuration",
        };
        let config: Config = loket_node::config::load(&sources, cli)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.listen != self.staff_listen || self.listen.port() == 0,
            "staff_listen must differ from listen: the staff console has an address of its own"
        );
        anyhow::ensure!((-12..=14).contains(&self.utc_offset_hours), "utc_offset_hours must be between -12 and 14");
        anyhow::ensure!(self.body_bytes_max >= 1024, "body_bytes_max must be at least 1024");
        anyhow::ensure!((1..=1024).contains(&self.write_batch_max), "write_batch_max must be 1..=1024");
        anyhow::ensure!(self.write_queue_max >= 1, "write_queue_max must be at least 1");
        anyhow::ensure!(self.compact_chunks_min >= 2, "compact_chunks_min must be at least 2");
        anyhow::ensure!((1..=64).contains(&self.read_connections), "read_connections must be 1..=64");
        anyhow::ensure!(
            (2..=3600).contains(&self.citizen_idle_timeout.as_secs()),
            "citizen_idle_timeout must be 2..=3600 seconds"
        );
        anyhow::ensure!(
            (2..=86_400).contains(&self.staff_idle_timeout.as_secs()),
            "staff_idle_timeout must be 2..=86400 seconds"
        );
        anyhow::ensure!((1..=100).contains(&self.staff_login_failures_max), "staff_login_failures_max must be 1..=100");
        anyhow::ensure!(self.staff_lockout.as_secs() >= 1, "staff_lockout must be at least 1 second");
        Ok(())
    }

    pub fn db_path(&self) -> PathBuf {
        self.data.join("kiosk.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../config.example.toml");
        let parsed: Config = toml::from_str(text).expect("config.example.toml parses");
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&parsed).expect("serialise"),
            serde_json::to_value(&defaults).expect("serialise"),
            "config.example.toml documents the defaults"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"127.0.0.1:1\"").is_err());
    }
}
