//! A real `sync-server` for the examples that measure one: initialised in
//! a temporary directory, serving on `127.0.0.1:0`, killed on drop.
//! Included with `#[path = "support/server.rs"] mod server;`; each example
//! uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// The `sync-server` binary beside the running example
/// (`target/<profile>/examples/x` → `target/<profile>/sync-server`).
pub fn beside() -> anyhow::Result<PathBuf> {
    std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("sync-server"))
        .context("locating the sync-server binary")
}

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub ca_pem: Vec<u8>,
    pub data: PathBuf,
    pub bin: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Runs another `sync-server` command on this server's data, returning
    /// its standard output.
    pub fn command(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin).args(args).arg("--data").arg(&self.data).env("RUST_LOG", "warn").output()?;
        anyhow::ensure!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?)
    }
}

pub fn start_server(bin: &Path) -> anyhow::Result<Server> {
    anyhow::ensure!(bin.exists(), "{} is missing: build it (see the example's docs)", bin.display());
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let password = dir.path().join("password");
    std::fs::write(&password, "rahasia-admin-bench\n")?;
    let out = Command::new(bin)
        .args(["init", "--admin-user", "admin", "--data"])
        .arg(&data)
        .arg("--admin-password-file")
        .arg(&password)
        .env("RUST_LOG", "warn")
        .output()?;
    anyhow::ensure!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(line) => {
                if let Some(a) = line?.strip_prefix("listening on https://") {
                    break a.trim().parse()?;
                }
            }
            None => bail!("the server exited before listening"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let ca_pem = std::fs::read(data.join("tls/ca.pem"))?;
    Ok(Server { child, addr, ca_pem, data, bin: bin.to_path_buf(), _dir: dir })
}

/// A process's resident memory now and at its peak (`VmRSS`, `VmHWM`), MiB.
pub fn rss_mib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{name} in /proc/{pid}/status"))?;
        Ok(kb / 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}
