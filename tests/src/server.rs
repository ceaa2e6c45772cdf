//! Harness for the real `sync-server` binary and for enrolled kiosks:
//! `sync-server init` in a temp dir, `serve` on `127.0.0.1:0` (the address
//! it bound is read back from its `listening on` line), a restart on the
//! address the first run got (kiosks store the server URL at enrollment,
//! so they find it again), admin login, enrollment codes, `kiosk enroll`.
//! For PostgreSQL: `init --database`, `add-instance`, `serve --database`
//! ([`ServeArgs`]), and any other command through [`server_cli`]. The
//! children never inherit `LOKET_DATABASE_URL`: a test names its database
//! (a `TestDatabase` of its own) or none.
//!
//! No address is ever chosen here and bound by a process later: between
//! the two another process may take it (and a test then talks to the
//! wrong server). A restart binds again the port its own killed
//! predecessor held, as a real restart does; should something have taken
//! it meanwhile, the restart waits for it (bounded) rather than moving.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{kiosk_bin, tail};

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-rahasia-123";

pub fn server_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| crate::workspace_bin("loket-sync-server", "sync-server", "LOKET_TEST_SERVER_BIN")).clone()
}

/// Runs `sync-server init` in `data` (the store in SQLite there).
pub fn init_server(data: &Path) -> anyhow::Result<()> {
    init(data, None)
}

/// Runs `sync-server init --database URL` in `data`: the store in that
/// (empty) PostgreSQL database, its URL kept in `DATA/database.url`.
pub fn init_server_on(data: &Path, database_url: &str) -> anyhow::Result<()> {
    init(data, Some(database_url))
}

fn init(data: &Path, database_url: Option<&str>) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)?;
    let pw = data.with_extension("adminpw");
    std::fs::write(&pw, format!("{ADMIN_PASSWORD}\n"))?;
    let mut args: Vec<OsString> = vec!["init".into(), "--data".into(), data.into()];
    args.extend(["--admin-user", ADMIN_USER, "--admin-password-file"].map(OsString::from));
    args.push(pw.into());
    if let Some(url) = database_url {
        args.extend(["--database".into(), url.into()]);
    }
    let out = server_cli(&args)?;
    if !out.status.success() {
        bail!("sync-server init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Runs `sync-server ARGS` to completion (`RUST_LOG=warn`), successful or
/// not: for refusals, the exit status and stderr are the point.
pub fn server_cli<S: AsRef<OsStr>>(args: &[S]) -> anyhow::Result<Output> {
    Command::new(server_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("LOKET_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .context("running sync-server")
}

/// [`server_cli`] that must succeed; its stdout.
pub fn server_cli_ok<S: AsRef<OsStr>>(args: &[S]) -> anyhow::Result<String> {
    let out = server_cli(args)?;
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
    anyhow::ensure!(
        out.status.success(),
        "sync-server {} failed ({}): {}",
        shown.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// `sync-server add-instance --data FROM --out OUT --hostname …`: another
/// instance's directory on FROM's PostgreSQL database, its certificate
/// signed by FROM's CA (for localhost and 127.0.0.1 too).
pub fn add_instance(from: &Path, out: &Path, hostnames: &[&str]) -> anyhow::Result<()> {
    let mut args: Vec<OsString> = vec!["add-instance".into(), "--data".into(), from.into(), "--out".into(), out.into()];
    for h in hostnames {
        args.extend(["--hostname".into(), (*h).into()]);
    }
    server_cli_ok(&args)?;
    Ok(())
}

/// A running `sync-server serve`. Killed with SIGKILL when dropped.
pub struct ServerProcess {
    child: Child,
    pub base: String,
    pub data: PathBuf,
    serve: ServeArgs,
}

/// What `serve` gets besides `--data` and `--listen`.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    /// `--database URL`: the store there, whatever `DATA/database.url`
    /// says (none: that file, else SQLite in DATA).
    pub database: Option<String>,
}

/// How long a restart waits for its port while something else holds it.
const REBIND_WAIT: Duration = Duration::from_secs(20);

impl ServerProcess {
    /// Starts `sync-server serve` on `127.0.0.1:0` and returns once it
    /// listens, with `base` the address it bound. Logs go to
    /// `DATA/server.log`.
    pub fn start(data: &Path) -> anyhow::Result<ServerProcess> {
        Self::start_with(data, &ServeArgs::default())
    }

    /// [`ServerProcess::start`] with `serve`'s other arguments.
    pub fn start_with(data: &Path, serve: &ServeArgs) -> anyhow::Result<ServerProcess> {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        match Self::spawn(data, listen, serve)? {
            Started::Listening(server) => Ok(server),
            Started::AddressInUse(log) => bail!("sync-server could not bind 127.0.0.1:0:\n{log}"),
        }
    }

    /// Starts the server again on `addr`, the address an earlier
    /// [`ServerProcess::start`] for the same data got ([`ServerProcess::addr`]),
    /// after that process was killed or stopped: the kiosks enrolled with
    /// that URL. If the port is taken meanwhile (the kernel may hand a
    /// freed port to another test's outgoing connection), waits up to 20 s
    /// for it, without sleeping when it is free.
    pub fn restart_on(data: &Path, addr: SocketAddr) -> anyhow::Result<ServerProcess> {
        Self::restart_on_with(data, addr, &ServeArgs::default())
    }

    /// [`ServerProcess::restart_on`] with `serve`'s other arguments (those
    /// of the first start: [`ServerProcess::serve_args`]).
    pub fn restart_on_with(data: &Path, addr: SocketAddr, serve: &ServeArgs) -> anyhow::Result<ServerProcess> {
        let deadline = std::time::Instant::now() + REBIND_WAIT;
        loop {
            match Self::spawn(data, addr, serve)? {
                Started::Listening(server) => return Ok(server),
                Started::AddressInUse(log) => {
                    anyhow::ensure!(
                        std::time::Instant::now() < deadline,
                        "sync-server could not bind {addr} again within {REBIND_WAIT:?}:\n{log}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn spawn(data: &Path, listen: SocketAddr, serve: &ServeArgs) -> anyhow::Result<Started> {
        let log_path = data.join("server.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        // Where this run's log starts, to tell its own bind failure apart.
        let log_start = log.metadata()?.len() as usize;
        let mut command = Command::new(server_bin());
        command.args(["serve", "--data"]).arg(data).args(["--listen", &listen.to_string()]);
        if let Some(url) = &serve.database {
            command.args(["--database", url]);
        }
        let mut child = command
            .env("RUST_LOG", std::env::var("LOKET_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .env_remove("LOKET_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawning sync-server")?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        break a.trim().to_owned();
                    }
                }
                Some(Err(e)) => bail!("reading server stdout: {e}"),
                None => {
                    let _ = child.wait();
                    let log = std::fs::read(&log_path).unwrap_or_default();
                    let run = String::from_utf8_lossy(log.get(log_start..).unwrap_or_default());
                    if run.contains("Address already in use") {
                        return Ok(Started::AddressInUse(tail(&run, 20)));
                    }
                    bail!("sync-server exited before listening:\n{}", tail(&run, 20));
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let server = ServerProcess { child, base, data: data.to_path_buf(), serve: serve.clone() };
        // The line must name the port bound, not the `0` asked for: the
        // tests connect to it, and a restart binds it again.
        let addr = base_addr(&server.base)?;
        anyhow::ensure!(addr.port() != 0, "sync-server said it listens on {addr}, not on the port it bound");
        Ok(Started::Listening(server))
    }

    /// The address the server listens on (from its `listening on` line).
    pub fn addr(&self) -> SocketAddr {
        base_addr(&self.base).expect("checked at start")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What this server was started with besides `--data` and `--listen`.
    pub fn serve_args(&self) -> &ServeArgs {
        &self.serve
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> anyhow::Result<()> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "sync-server exited with {status}");
        Ok(())
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.data.join("tls").join("ca.pem")
    }

    /// An HTTPS client that trusts only this server's CA.
    pub fn client(&self) -> reqwest::Client {
        let ca = std::fs::read(self.ca_pem()).expect("ca.pem");
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    pub async fn admin_token(&self, client: &reqwest::Client) -> anyhow::Result<String> {
        self.login(client, ADMIN_USER, ADMIN_PASSWORD).await
    }

    /// A central user's bearer token (`POST /api/login`).
    pub async fn login(&self, client: &reqwest::Client, username: &str, password: &str) -> anyhow::Result<String> {
        let r = client
            .post(format!("{}/api/login", self.base))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "{username} login: {}", r.status());
        let v: Value = r.json().await?;
        Ok(v["token"].as_str().context("token")?.to_owned())
    }

    /// `GET path` on the server with a bearer token, as JSON (error bodies too).
    pub async fn get_json(&self, client: &reqwest::Client, token: &str, path: &str) -> anyhow::Result<Value> {
        Ok(client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await?.json().await?)
    }

    /// A one-time enrollment code from the CLI (works while serving).
    pub fn enroll_code(&self, kelurahan: &str) -> anyhow::Result<String> {
        let text = server_cli_ok(&[
            OsStr::new("enroll-code"),
            OsStr::new("--data"),
            self.data.as_os_str(),
            OsStr::new("--kelurahan"),
            OsStr::new(kelurahan),
        ])?;
        Ok(text.lines().next().context("no code printed")?.trim().to_owned())
    }

    /// Adds a staff member to a kelurahan's roster through the admin API.
    pub async fn put_staff(
        &self,
        client: &reqwest::Client,
        token: &str,
        kelurahan: &str,
        staff_id: &str,
        password: &str,
    ) -> anyhow::Result<()> {
        let r = client
            .put(format!("{}/api/admin/rosters/{kelurahan}/staff/{staff_id}", self.base))
            .bearer_auth(token)
            .json(&json!({ "name": "Petugas Uji", "role": "supervisor", "password": password }))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "put staff: {} {}", r.status(), r.text().await.unwrap_or_default());
        Ok(())
    }
}

/// `https://127.0.0.1:8443` → `127.0.0.1:8443`.
fn base_addr(base: &str) -> anyhow::Result<SocketAddr> {
    let authority = base.split_once("://").map_or(base, |(_, rest)| rest);
    authority.trim_end_matches('/').parse().with_context(|| format!("sync-server listens on {base:?}?"))
}

enum Started {
    Listening(ServerProcess),
    /// The port was taken; this run's log.
    AddressInUse(String),
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `kiosk enroll` for a new kiosk data directory.
pub fn enroll_kiosk(data: &Path, server: &ServerProcess, code: &str) -> anyhow::Result<()> {
    enroll_kiosk_at(data, &server.base, &server.ca_pem(), code)
}

/// Runs `kiosk enroll` against `server_url` (e.g. a fault proxy in front
/// of the server: the kiosk keeps talking to whatever URL it enrolled with).
pub fn enroll_kiosk_at(data: &Path, server_url: &str, ca_pem: &Path, code: &str) -> anyhow::Result<()> {
    let out = Command::new(kiosk_bin())
        .args(["enroll", "--data"])
        .arg(data)
        .args(["--server", server_url, "--ca"])
        .arg(ca_pem)
        .args(["--code", code])
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!("kiosk enroll failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
