//! Test harness: runs the real `kiosk` binary (and, in [`server`],
//! `sync-server`) as child processes on `127.0.0.1:0` in temporary
//! directories, reads the address each prints once it listens, and kills
//! them with SIGKILL or SIGTERM. Directories of a failed test are kept and
//! their path printed. [`postgres::TestDatabase`] gives a test a fresh
//! PostgreSQL database of its own; [`switch::Switch`] puts several server
//! instances behind one address.
//!
//! The binaries are found in the test executable's target directory
//! (`target/<profile>/kiosk`), built by `cargo test --workspace`; see
//! [`workspace_bin`]. `LOKET_TEST_KIOSK_BIN` / `LOKET_TEST_SERVER_BIN` override the
//! paths (e.g. to run the suites against an older release's binaries); not
//! `LOKET_KIOSK_*` / `LOKET_SERVER_*`, which the binaries read as configuration.

pub mod browser;
pub mod day;
pub mod load;
pub mod postgres;
pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

pub mod reconnect;
pub mod server;
pub mod switch;
pub mod upgrade;

pub const STAFF_ID: &str = "198503122010011002";
pub const STAFF_PASSWORD: &str = "rahasia-petugas-1";
pub const KELURAHAN: &str = "12.71.01.1001";

/// `target/<profile>` of the running test or bench executable.
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Locates a workspace binary in the test's own target directory.
///
/// `cargo test --workspace` builds `kiosk` and `sync-server` before any
/// test runs (their packages have integration tests, which makes cargo
/// build their binaries with the same feature resolution as the tests).
/// Building them from here instead (`cargo build -p …`) would resolve
/// features differently and rebuild, slowly, every run. When running only
/// this package's tests after changing a binary, run
/// `cargo test --workspace --no-run` first, or set `LOKET_BUILD_BINS=1`.
pub fn workspace_bin(package: &str, bin: &str, env_override: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_override) {
        return PathBuf::from(p);
    }
    if std::env::var_os("LOKET_BUILD_BINS").is_some()
        && let Some(cargo) = std::env::var_os("CARGO")
    {
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", package, "--bin", bin]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "cargo build -p {package} --bin {bin} failed");
    }
    let path = target_profile_dir().join(bin);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (it builds the binaries), or `cargo build -p {package}`",
        path.display()
    );
    path
}

pub fn kiosk_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| workspace_bin("loket-kiosk", "kiosk", "LOKET_TEST_KIOSK_BIN")).clone()
}

/// A temporary directory that is kept (and its path printed) when the
/// test that owns it panics.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
}

impl TestDir {
    pub fn new(prefix: &str) -> TestDir {
        let dir = tempfile::Builder::new().prefix(&format!("loket-{prefix}-")).tempdir().expect("temp dir");
        TestDir { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }

    /// Keeps the folder after the run (to look into a benchmark's stores);
    /// its path.
    pub fn keep(mut self) -> PathBuf {
        self.dir.take().expect("present until drop").keep()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("test failed: kept {}", kept.display());
        }
    }
}

/// Writes a roster with one supervisor (`STAFF_ID` / `STAFF_PASSWORD`)
/// and runs `kiosk init`.
pub fn init_kiosk(data: &Path, kiosk_code: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)?;
    let roster = data.join("roster.toml");
    std::fs::write(
        &roster,
        format!(
            "[[staff]]\nid = \"{STAFF_ID}\"\nname = \"Rina Siregar\"\nrole = \"supervisor\"\npassword = \"{STAFF_PASSWORD}\"\n"
        ),
    )?;
    let out = Command::new(kiosk_bin())
        .args(["init", "--data"])
        .arg(data)
        .args(["--kelurahan", KELURAHAN, "--kiosk-code", kiosk_code, "--roster"])
        .arg(&roster)
        .env("RUST_LOG", "warn")
        .output()
        .context("running kiosk init")?;
    if !out.status.success() {
        bail!("kiosk init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Runs `kiosk ARGS` to the end (a CLI command: backup, restore, ...) and
/// returns its stdout if it succeeded.
pub fn kiosk_cli_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> anyhow::Result<String> {
    let out = Command::new(kiosk_bin()).args(args).env("RUST_LOG", "warn").stdin(Stdio::null()).output()?;
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
    anyhow::ensure!(
        out.status.success(),
        "kiosk {} failed ({}): {}",
        shown.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// A document's id and the (actor hex, seq) pairs naming two changes in it.
/// Damages document `doc_id` in a server's store as a failing disk
/// would: its first stored piece (the snapshot, or the first chunk of a
/// document kept as a kiosk sent it) loses its last 20 bytes. Returns the
/// rows changed (1).
pub fn damage_stored_doc(conn: &rusqlite::Connection, doc_id: &str) -> rusqlite::Result<usize> {
    let snapshot = conn.execute(
        "UPDATE docs SET snapshot = substr(snapshot, 1, length(snapshot) - 20)
         WHERE doc_id = ?1 AND snapshot IS NOT NULL",
        [doc_id],
    )?;
    if snapshot > 0 {
        return Ok(snapshot);
    }
    conn.execute(
        "UPDATE chunks SET data = substr(data, 1, length(data) - 20)
         WHERE id = (SELECT min(id) FROM chunks WHERE doc_id = ?1)",
        [doc_id],
    )
}

pub type RepeatedSeqs = (String, Vec<(String, u64)>);

/// Every document of a store (the server's `server.db` or a kiosk's
/// `kiosk.db`: both keep a snapshot plus chunks per document, the server's
/// packed), loaded with
/// Automerge; for each, the (actor, seq) pairs that name more than one
/// change. Read-only, beside a running process (WAL).
pub fn repeated_actor_seqs(db: &Path) -> anyhow::Result<Vec<RepeatedSeqs>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut docs = conn.prepare("SELECT doc_id, snapshot FROM docs ORDER BY doc_id")?;
    let mut chunks = conn.prepare("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
    let rows: Vec<(String, Option<Vec<u8>>)> =
        docs.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    anyhow::ensure!(!rows.is_empty(), "{} holds no documents", db.display());
    let mut out = Vec::new();
    for (doc_id, snapshot) in rows {
        let mut bytes = loket_node::at_rest::unpack(snapshot.unwrap_or_default())?;
        for chunk in chunks.query_map([&doc_id], |r| r.get::<_, Vec<u8>>(0))? {
            bytes.extend_from_slice(&loket_node::at_rest::unpack(chunk?)?);
        }
        let mut doc = automerge::AutoCommit::load(&bytes).with_context(|| format!("loading {doc_id}"))?;
        let mut seen: std::collections::HashMap<(String, u64), automerge::ChangeHash> = Default::default();
        let mut repeated = Vec::new();
        for change in doc.get_changes(&[]) {
            let key = (change.actor_id().to_hex_string(), change.seq());
            if let Some(other) = seen.insert(key.clone(), change.hash())
                && other != change.hash()
            {
                repeated.push(key);
            }
        }
        if !repeated.is_empty() {
            out.push((doc_id, repeated));
        }
    }
    Ok(out)
}

/// A running `kiosk serve`. Killed with SIGKILL when dropped.
pub struct KioskProcess {
    child: Child,
    /// The citizen screens and the API, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// The staff console, on a port of its own.
    pub staff: String,
    pub data: PathBuf,
}

impl KioskProcess {
    /// Starts `kiosk serve` on free loopback ports (the citizen screens
    /// and API; the staff console) and returns once it listens (it prints
    /// both addresses when bound). Logs go to `DATA/kiosk.log`.
    pub fn start(data: &Path) -> anyhow::Result<KioskProcess> {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, env: &[(&str, &str)]) -> anyhow::Result<KioskProcess> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data.join("kiosk.log"))?;
        let mut cmd = Command::new(kiosk_bin());
        cmd.args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--staff-listen", "127.0.0.1:0"])
            .env("RUST_LOG", std::env::var("LOKET_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning kiosk serve")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut base, mut staff) = (None, None);
        while base.is_none() || staff.is_none() {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        base = Some(addr.trim().to_owned());
                    } else if let Some(addr) = line.strip_prefix("staff console on ") {
                        staff = Some(addr.trim().to_owned());
                    }
                }
                Some(Err(e)) => bail!("reading kiosk stdout: {e}"),
                None => {
                    let _ = child.wait();
                    let log = std::fs::read_to_string(data.join("kiosk.log")).unwrap_or_default();
                    bail!("kiosk exited before listening; log tail:\n{}", tail(&log, 20));
                }
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let (base, staff) = (base.unwrap_or_default(), staff.unwrap_or_default());
        let kiosk = KioskProcess { child, base, staff, data: data.to_path_buf() };
        // The lines must name the ports bound, not the `0` asked for.
        for said in [&kiosk.base, &kiosk.staff] {
            anyhow::ensure!(!said.ends_with(":0"), "kiosk said it listens on {said}, not on the port it bound");
        }
        anyhow::ensure!(kiosk.base != kiosk.staff, "the staff console shares the citizen screen's address");
        Ok(kiosk)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to flush or clean up, like a
    /// power cut as far as the process is concerned.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit (bounded).
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "kiosk did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A URL on the staff console's listener.
    pub fn staff_url(&self, path: &str) -> String {
        format!("{}{}", self.staff, path)
    }
}

impl Drop for KioskProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A valid NIK for test number `i` (serial never 0000, dates always valid).
pub fn nik(i: u64) -> String {
    let day = 1 + (i % 28);
    let month = 1 + (i / 28 % 12);
    let serial = 1 + (i % 9998);
    format!("127101{day:02}{month:02}90{serial:04}")
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(16).build().expect("http client")
}

/// Logs in the test supervisor and returns the bearer token.
pub async fn staff_login(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let resp = client
        .post(format!("{base}/api/staff/login"))
        .json(&serde_json::json!({ "staff_id": STAFF_ID, "password": STAFF_PASSWORD }))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "login failed: {}", resp.status());
    let body: serde_json::Value = resp.json().await?;
    Ok(body["token"].as_str().context("token")?.to_owned())
}

/// Files a request through the kiosk's API (`201` expected); its
/// `(id, ticket)`.
pub async fn file_request(
    client: &reqwest::Client,
    k: &KioskProcess,
    service: &str,
    name: &str,
    nik: &str,
) -> (String, String) {
    let (id, ticket, _) = file_request_with_code(client, k, service, name, nik).await;
    (id, ticket)
}

/// [`file_request`], with the receipt's rating code too: `(id, ticket,
/// rating_token)`.
pub async fn file_request_with_code(
    client: &reqwest::Client,
    k: &KioskProcess,
    service: &str,
    name: &str,
    nik: &str,
) -> (String, String, String) {
    let resp = client
        .post(k.url("/api/requests"))
        .json(&serde_json::json!({ "service": service, "applicant": { "name": name, "nik": nik } }))
        .send()
        .await
        .expect("file");
    assert_eq!(resp.status(), 201);
    let v: serde_json::Value = resp.json().await.expect("json");
    let text = |key: &str| v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned();
    (text("id"), text("ticket"), text("rating_token"))
}

/// Takes a request and completes it through the staff API (the test
/// supervisor's login), so that it may be rated (issue 14).
pub async fn complete_request(client: &reqwest::Client, base: &str, id: &str) -> anyhow::Result<()> {
    let token = staff_login(client, base).await?;
    for to in ["in_progress", "completed"] {
        let resp = client
            .post(format!("{base}/api/staff/requests/{id}/events"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "to": to }))
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 201, "{to}: {}", resp.status());
    }
    Ok(())
}

/// Asks the kiosk to sync (`POST /api/sync`) until it reports a successful
/// sync with nothing pending; fails after 60 s. The health endpoint is the
/// event waited on.
pub async fn wait_synced(client: &reqwest::Client, k: &KioskProcess) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let sync: serde_json::Value = client.post(k.url("/api/sync")).send().await.unwrap().json().await.unwrap();
        let h: serde_json::Value = client.get(k.url("/healthz")).send().await.unwrap().json().await.unwrap();
        if sync["ok"] == true && h["pending_changes"] == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "kiosk did not sync: {sync} {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
