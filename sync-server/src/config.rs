//! Server configuration: defaults, then `DATA/server.toml` (or `--config`),
//! then `LOKET_SERVER_*` environment variables, then command-line flags.
//! Every key and its default is documented in `config.example.toml`, which
//! a test parses. Durations are whole seconds. The layering is
//! `loket_node::config`'s, the same as the kiosk's; what is checked here
//! ([`Config::check`]) is the server's own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use loket_node::config::{Sources, secs};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding tls/ and server.db (SQLite) or database.url
    /// (PostgreSQL).
    pub data: PathBuf,
    /// A PostgreSQL URL overriding `DATA/database.url`, from `--database`
    /// or `LOKET_DATABASE_URL` (never from a file: the URL may carry a
    /// password, and lives in `database.url`, 0600).
    #[serde(skip)]
    pub database: Option<String>,
    /// Address to serve HTTPS on.
    pub listen: SocketAddr,
    /// Offset of local time from UTC in hours (Medan: WIB, +7), for the
    /// times the API shows.
    pub utc_offset_hours: i8,
    /// How long a login to the central app stays valid.
    #[serde(with = "secs")]
    pub session_ttl: Duration,
    /// Largest body of a sync request, in bytes.
    pub body_bytes_max: usize,
    /// Largest body of any other API request, in bytes.
    pub api_body_bytes_max: usize,
    /// Longest a request may take before it is answered 503 `timeout`.
    #[serde(with = "secs")]
    pub request_timeout: Duration,
    /// Requests handled at once; more are answered 503 `overloaded`.
    pub requests_max: usize,
    /// Open connections at once; more are closed on accept.
    pub connections_max: usize,
    /// Open connections from one client address (an IPv6 /64 counts as
    /// one); more are closed on accept, so one host cannot take them all.
    pub connections_per_address_max: usize,
    /// Requests per second from one client address (sustained; bursts up
    /// to ten times that); more are answered 429 `rate_limited`.
    pub ip_requests_per_second: u32,
    /// Sync exchanges per minute from one kiosk (bursts up to half that).
    pub kiosk_syncs_per_minute: u32,
    /// Longest a client may take over its TLS handshake.
    #[serde(with = "secs")]
    pub tls_handshake_timeout: Duration,
    /// Longest a client may take to send a request's headers, and on a new
    /// connection to send its first request after the TLS handshake.
    #[serde(with = "secs")]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed
    /// (HTTP/2; an idle HTTP/1 connection waits `header_read_timeout`).
    #[serde(with = "secs")]
    pub idle_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests get to finish.
    #[serde(with = "secs")]
    pub shutdown_grace: Duration,
    /// SQLite connections for reads (writes have their own).
    pub read_connections: u32,
    /// Fold stored documents' chunks into snapshots in the background
    /// (`store::compact`). Off only to measure a store before compaction,
    /// or on an instance that should leave it to the others.
    pub compaction: bool,
    /// Failed logins for one username from one client address in
    /// `login_failure_window` before that pair is refused (429); the user
    /// elsewhere and others at that address are not.
    pub login_failures_max: u32,
    #[serde(with = "secs")]
    pub login_failure_window: Duration,
    /// Failed logins for one username from all addresses in the window
    /// before attempts for it are slowed down to one per `login_slowdown`
    /// (except from addresses where the user logged in before).
    pub login_user_failures_max: u32,
    /// Failed logins from one address for all usernames in the window
    /// before attempts from it are slowed down the same way.
    pub login_address_failures_max: u32,
    /// While slowed down, one attempt per this many seconds.
    #[serde(with = "secs")]
    pub login_slowdown: Duration,
    /// A file holding the bearer token (64 hex characters, e.g. from
    /// `openssl rand -hex 32`) that may read `/metrics` (Prometheus);
    /// admins' sessions may too. Without it only admins may.
    pub metrics_token_file: Option<PathBuf>,
    /// Failed enrollments per client address in `login_failure_window`
    /// before enrollment is refused (429).
    pub enroll_failures_max: u32,
    /// Longest validity an enrollment code may be given.
    #[serde(with = "secs")]
    pub enroll_code_ttl_max: Duration,
    /// A kiosk not heard from for this long shows as offline in the web app.
    #[serde(with = "secs")]
    pub kiosk_offline_after: Duration,
    /// The government the web app speaks for, in its header and footer.
    pub government_name: String,
    /// An image (SVG or PNG) of the government's crest for the web app's
    /// header; without it, a plain shield stands in its place.
    pub crest_file: Option<PathBuf>,
    /// Who runs the service, for the web app's footer and privacy notice:
    /// the unit, its address, telephone and e-mail.
    pub contact_unit: String,
    pub contact_address: String,
    pub contact_phone: String,
    pub contact_email: String,
    /// The city's own complaint page, named in the footer beside
    /// SP4N-LAPOR! (an `https://` address), if it has one.
    pub complaint_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("server-data"),
            database: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            utc_offset_hours: 7,
            session_ttl: Duration::from_secs(12 * 3600),
            body_bytes_max: 8 * 1024 * 1024,
            api_body_bytes_max: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            requests_max: 256,
            connections_max: 1024,
            connections_per_address_max: 64,
            ip_requests_per_second: 50,
            kiosk_syncs_per_minute: 240,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(20),
            read_connections: 4,
            compaction: true,
            login_failures_max: 5,
            login_failure_window: Duration::from_secs(15 * 60),
            login_user_failures_max: 20,
            login_address_failures_max: 50,
            login_slowdown: Duration::from_secs(30),
            metrics_token_file: None,
            enroll_failures_max: 20,
            enroll_code_ttl_max: Duration::from_secs(30 * 24 * 3600),
            kiosk_offline_after: Duration::from_secs(3600),
            government_name: "Pemerintah Kota Medan".into(),
            crest_file: None,
            contact_unit: "Dinas Komunikasi dan Informatika Kota Medan".into(),
            contact_address: "Jl. Kapten Maulana Lubis No. 2, Medan 20112".into(),
            contact_phone: "061-6610114".into(),
            contact_email: "kominfo@pemkomedan.go.id".into(),
            complaint_url: None,
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
}

impl Config {
    /// Loads the layered configuration. `file` defaults to
    /// `DATA/server.toml` when it exists.
    pub fn load(file: Option<&Path>, cli: &CliOverrides) -> anyhow::Result<Config> {
        let sources = Sources {
            file,
            default_file: cli.data.as_ref().map(|d| d.join("server.toml")),
            env_prefix: "LOKET_SERVER_",
            what: "the server configuration",
        };
        let config: Config = loket_node::config::load(&sources, cli)?;
        config.check()?;
        Ok(config)
    }

    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!((-12..=14).contains(&self.utc_offset_hours), "utc_offset_hours must be between -12 and 14");
        anyhow::ensure!(self.session_ttl >= Duration::from_secs(60), "session_ttl must be at least 60 seconds");
        anyhow::ensure!(self.body_bytes_max >= 64 * 1024, "body_bytes_max must be at least 65536");
        anyhow::ensure!(self.api_body_bytes_max >= 1024, "api_body_bytes_max must be at least 1024");
        anyhow::ensure!(self.request_timeout >= Duration::from_secs(1), "request_timeout must be at least 1 second");
        anyhow::ensure!(self.requests_max >= 1, "requests_max must be at least 1");
        anyhow::ensure!(self.connections_max >= 1, "connections_max must be at least 1");
        anyhow::ensure!(
            (1..=self.connections_max).contains(&self.connections_per_address_max),
            "connections_per_address_max must be 1..=connections_max"
        );
        anyhow::ensure!(self.ip_requests_per_second >= 1, "ip_requests_per_second must be at least 1");
        anyhow::ensure!(self.kiosk_syncs_per_minute >= 2, "kiosk_syncs_per_minute must be at least 2");
        anyhow::ensure!(
            self.tls_handshake_timeout >= Duration::from_secs(1),
            "tls_handshake_timeout must be at least 1"
        );
        anyhow::ensure!(self.header_read_timeout >= Duration::from_secs(1), "header_read_timeout must be at least 1");
        anyhow::ensure!(self.idle_timeout >= Duration::from_secs(1), "idle_timeout must be at least 1");
        anyhow::ensure!((1..=64).contains(&self.read_connections), "read_connections must be 1..=64");
        anyhow::ensure!(self.login_failures_max >= 1, "login_failures_max must be at least 1");
        anyhow::ensure!(self.enroll_failures_max >= 1, "enroll_failures_max must be at least 1");
        anyhow::ensure!(self.login_user_failures_max >= 1, "login_user_failures_max must be at least 1");
        anyhow::ensure!(self.login_address_failures_max >= 1, "login_address_failures_max must be at least 1");
        anyhow::ensure!(self.login_slowdown >= Duration::from_secs(1), "login_slowdown must be at least 1 second");
        anyhow::ensure!(
            self.login_failure_window >= Duration::from_secs(1),
            "login_failure_window must be at least 1 second"
        );
        anyhow::ensure!(
            (1..=120).contains(&self.government_name.chars().count()),
            "government_name must be 1 to 120 characters"
        );
        for (key, value) in [
            ("contact_unit", &self.contact_unit),
            ("contact_address", &self.contact_address),
            ("contact_phone", &self.contact_phone),
            ("contact_email", &self.contact_email),
        ] {
            anyhow::ensure!(value.chars().count() <= 200, "{key} must be at most 200 characters");
        }
        if let Some(url) = &self.complaint_url {
            anyhow::ensure!(
                url.starts_with("https://") && url.len() <= 200 && !url.chars().any(char::is_whitespace),
                "complaint_url must be an https:// address without spaces"
            );
        }
        Ok(())
    }

    pub fn db_path(&self) -> PathBuf {
        self.data.join("server.db")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.data.join("tls")
    }

    pub fn utc_offset(&self) -> time::UtcOffset {
        time::UtcOffset::from_hms(self.utc_offset_hours, 0, 0).unwrap_or(time::UtcOffset::UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../config.example.toml");
        let parsed: Config = toml::from_str(text).expect("config.example.toml parses");
        assert_eq!(parsed, Config::default(), "config.example.toml documents the defaults");
        parsed.check().expect("the defaults pass the checks");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"127.0.0.1:1\"").is_err());
    }

    #[test]
    fn flags_beat_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.toml"), "listen = \"127.0.0.1:1\"\nsession_ttl = 600\n").unwrap();
        let cli = CliOverrides { data: Some(dir.path().to_path_buf()), listen: Some("127.0.0.1:2".parse().unwrap()) };
        let c = Config::load(None, &cli).unwrap();
        assert_eq!(c.listen, "127.0.0.1:2".parse().unwrap());
        assert_eq!(c.session_ttl, Duration::from_secs(600));
        assert_eq!(c.data, dir.path());
    }

    #[test]
    fn bad_values_are_refused() {
        let c = Config { read_connections: 0, ..Config::default() };
        assert!(c.check().is_err());
    }
}
