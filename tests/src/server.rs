//! Harness for the real `sync-server` binary and for enrolled kiosks:
//! `sync-server init` in a temp dir, `serve` on a fixed loopback port (so
//! that kiosks, which store the server URL at enrollment, find it again
//! after a restart), admin login, enrollment codes, `kiosk enroll`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A free loopback port (bound and released: a tiny race, fine for tests).
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Runs `sync-server init` in `data`.
pub fn init_server(data: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)?;
    let pw = data.with_extension("adminpw");
    std::fs::write(&pw, format!("{ADMIN_PASSWORD}\n"))?;
    let out = Command::new(server_bin())
        .args(["init", "--data"])
        .arg(data)
        .args(["--admin-user", ADMIN_USER, "--admin-password-file"])
        .arg(&pw)
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!("sync-server init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A running `sync-server serve`. Killed with SIGKILL when dropped.
pub struct ServerProcess {
    child: Child,
    pub base: String,
    pub data: PathBuf,
}

impl ServerProcess {
    pub fn start(data: &Path, addr: SocketAddr) -> anyhow::Result<ServerProcess> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data.join("server.log"))?;
        let mut child = Command::new(server_bin())
            .args(["serve", "--data"])
            .arg(data)
            .args(["--listen", &addr.to_string()])
            .env("RUST_LOG", std::env::var("LOKET_TEST_LOG").unwrap_or_else(|_| "info".into()))
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
                    let log = std::fs::read_to_string(data.join("server.log")).unwrap_or_default();
                    bail!("sync-server exited before listening:\n{}", tail(&log, 20));
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(ServerProcess { child, base, data: data.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
        let r = client
            .post(format!("{}/api/login", self.base))
            .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "admin login: {}", r.status());
        let v: Value = r.json().await?;
        Ok(v["token"].as_str().context("token")?.to_owned())
    }

    /// `GET path` on the server with a bearer token, as JSON (error bodies too).
    pub async fn get_json(&self, client: &reqwest::Client, token: &str, path: &str) -> anyhow::Result<Value> {
        Ok(client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await?.json().await?)
    }

    /// A one-time enrollment code from the CLI (works while serving).
    pub fn enroll_code(&self, kelurahan: &str) -> anyhow::Result<String> {
        let out = Command::new(server_bin())
            .args(["enroll-code", "--data"])
            .arg(&self.data)
            .args(["--kelurahan", kelurahan])
            .env("RUST_LOG", "warn")
            .output()?;
        anyhow::ensure!(out.status.success(), "enroll-code: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout)?;
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
