//! The `sync-server` binary as operators and kiosks meet it: real
//! processes, real sockets on 127.0.0.1:0, real TLS against the CA that
//! `init` made. A failed test keeps its directory and prints the path and
//! the server's log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "rahasia-admin-medan";
const KELURAHAN: &str = "12.71.01.1001";

fn sync_server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sync-server"))
}

/// A temporary directory kept (and printed) when the test fails.
struct TestDir(Option<tempfile::TempDir>);

impl TestDir {
    fn new() -> TestDir {
        TestDir(Some(tempfile::Builder::new().prefix("loket-sync-server-").tempdir().unwrap()))
    }

    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            let path = dir.keep();
            eprintln!("test failed; kept {}", path.display());
            if let Ok(log) = std::fs::read_to_string(path.join("server.log")) {
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("server.log (last lines):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
        }
    }
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn init(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let password = dir.join("admin-password");
    std::fs::write(&password, format!("  {ADMIN_PASSWORD}  \nignored second line\n")).unwrap();
    run_ok(
        sync_server()
            .args(["init", "--admin-user", "admin", "--hostname", "sync.medan.example", "--data"])
            .arg(&data)
            .arg("--admin-password-file")
            .arg(&password),
    );
    data
}

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(dir: &Path, data: &Path) -> ServerProcess {
        ServerProcess::start_with(dir, data, &[])
    }

    /// Starts the server with extra environment (`LOKET_SERVER_*` settings).
    fn start_with(dir: &Path, data: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut child = sync_server()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "info,loket_sync_server=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("listening on https://") {
                    let _ = tx.send(addr.trim().parse::<SocketAddr>().unwrap());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not print its address; see server.log");
            }
        };
        ServerProcess { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// SIGTERM, then wait (bounded) for the exit.
    fn terminate(&mut self, within: Duration) -> ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop within {within:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that trusts exactly the server's CA, as a kiosk does.
fn pinned_client(data: &Path) -> reqwest::Client {
    let pem = std::fs::read(data.join("tls/ca.pem")).unwrap();
    client_trusting(&pem)
}

fn client_trusting(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    json_of(req.send().await.unwrap()).await
}

async fn get(client: &reqwest::Client, url: String, token: Option<&str>) -> (u16, Value) {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    json_of(req.send().await.unwrap()).await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn enroll_code(data: &Path, ttl: &str) -> String {
    let out = run_ok(sync_server().args(["enroll-code", "--kelurahan", KELURAHAN, "--ttl", ttl, "--data"]).arg(data));
    let text = String::from_utf8(out.stdout).unwrap();
    let code = text.lines().next().unwrap().trim().to_owned();
    assert_eq!(code.len(), 19, "{text}");
    code
}

fn actor(i: u8) -> String {
    format!("{:032x}", 0x5eed_0000_u128 + u128::from(i))
}

// ------------------------------------------------------------------ the CLI

#[test]
fn help_lists_every_command() {
    let out = run_ok(sync_server().arg("--help"));
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["init", "serve", "enroll-code", "revoke", "add-user", "disable-user", "enable-user"] {
        assert!(text.contains(cmd), "--help lacks {cmd}:\n{text}");
        run_ok(sync_server().args([cmd, "--help"]));
    }
}

#[test]
fn init_makes_private_files_and_refuses_a_second_run() {
    let dir = TestDir::new();
    let data = init(dir.path());
    for f in ["server.db", "tls/ca.pem", "tls/ca-key.pem", "tls/server.pem", "tls/server-key.pem"] {
        assert!(data.join(f).exists(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("server.db")), 0o600);
        assert_eq!(mode(&data.join("tls/ca-key.pem")), 0o600);
        assert_eq!(mode(&data.join("tls/server-key.pem")), 0o600);
    }
    let password = dir.path().join("admin-password");
    let again = sync_server()
        .args(["init", "--admin-user", "admin", "--data"])
        .arg(&data)
        .arg("--admin-password-file")
        .arg(&password)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));

    let short = dir.path().join("short");
    std::fs::write(&short, "pendek\n").unwrap();
    let out = sync_server()
        .args(["init", "--admin-user", "admin", "--data"])
        .arg(dir.path().join("other"))
        .arg("--admin-password-file")
        .arg(&short)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a 6-character password was accepted");
    assert!(!dir.path().join("other").exists(), "a refused init left a directory behind");
}

#[test]
fn serve_and_enroll_code_without_init_say_what_to_do() {
    let dir = TestDir::new();
    let out = sync_server().args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sync-server init"), "{out:?}");
    let out = sync_server().args(["enroll-code", "--kelurahan", KELURAHAN, "--data"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(!dir.path().join("server.db").exists(), "enroll-code created a database");
    let out = sync_server().args(["enroll-code", "--kelurahan", "12.71", "--data"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success(), "a bad kelurahan code was accepted");
    let out = sync_server()
        .args(["enroll-code", "--kelurahan", KELURAHAN, "--ttl", "soon", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad ttl was accepted");
}

// ------------------------------------------------------------------ serving

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_only_with_the_pinned_ca() {
    let dir = TestDir::new();
    let data = init(dir.path());
    let mut server = ServerProcess::start(dir.path(), &data);
    let client = pinned_client(&data);

    let (status, body) = get(&client, server.url("/healthz"), None).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");

    // Plain HTTP on the HTTPS port: refused, with a hint.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let url = format!("http://{}/healthz", server.addr);
    let (status, body) = json_of(plain.get(url).send().await.unwrap()).await;
    assert_eq!((status, code(&body)), (400, "https_required"));

    // A client that trusts another CA (or none) does not get through.
    let other = loket_sync_server::tls::generate(&[], time::OffsetDateTime::now_utc()).unwrap();
    let stranger = client_trusting(other.ca_pem.as_bytes());
    let err = stranger.get(server.url("/healthz")).send().await.expect_err("a foreign CA was accepted");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let no_roots =
        reqwest::Client::builder().tls_built_in_root_certs(false).timeout(Duration::from_secs(10)).build().unwrap();
    assert!(no_roots.get(server.url("/healthz")).send().await.is_err(), "no trusted roots, yet connected");

    // The server is still healthy after the failed handshakes, and metrics
    // are served (to an admin).
    let (_, body) =
        post(&client, server.url("/api/login"), None, json!({ "username": "admin", "password": ADMIN_PASSWORD })).await;
    let resp = client.get(server.url("/metrics")).bearer_auth(body["token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("loket_kiosks_enrolled"));

    // SIGTERM with a kept-alive connection in the client's pool: the idle
    // connection does not hold the shutdown up.
    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_checked_and_rate_limited() {
    let dir = TestDir::new();
    let data = init(dir.path());
    let mut server = ServerProcess::start(dir.path(), &data);
    let client = pinned_client(&data);
    let login = |username: &str, password: &str| json!({ "username": username, "password": password });

    let (status, body) = post(&client, server.url("/api/login"), None, login("admin", ADMIN_PASSWORD)).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    let (status, body) = get(&client, server.url("/api/admin/kiosks"), Some(&token)).await;
    assert_eq!((status, &body["items"]), (200, &json!([])), "{body}");

    for _ in 0..5 {
        let (status, body) = post(&client, server.url("/api/login"), None, login("admin", "salah-sandi-123")).await;
        assert_eq!((status, code(&body)), (401, "invalid_credentials"));
    }
    let resp = client.post(server.url("/api/login")).json(&login("admin", ADMIN_PASSWORD)).send().await.unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let (status, body) = json_of(resp).await;
    assert_eq!((status, code(&body)), (429, "too_many_attempts"));
    // The lockout is that name's at that address: another name from the
    // same address (a colleague behind the office's NAT) is checked as usual.
    let (status, body) = post(&client, server.url("/api/login"), None, login("budi", "whatever-1234")).await;
    assert_eq!((status, code(&body)), (401, "invalid_credentials"));

    assert!(server.terminate(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_codes_work_once_and_revocation_is_immediate() {
    let dir = TestDir::new();
    let data = init(dir.path());
    let mut server = ServerProcess::start(dir.path(), &data);
    let client = pinned_client(&data);
    let enroll = |code: &str, actor: String| json!({ "code": code, "actor": actor, "version": "0.1.0" });

    // The CLI issues codes while the server runs.
    let code1 = enroll_code(&data, "30m");
    let (status, body) = post(&client, server.url("/api/enroll"), None, enroll(&code1, actor(1))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((&body["kiosk_code"], &body["kelurahan"]), (&json!("K001"), &json!(KELURAHAN)));
    let token = body["token"].as_str().unwrap().to_owned();
    let kiosk_id = body["kiosk_id"].as_str().unwrap().to_owned();

    let (status, body) = get(&client, server.url("/api/kiosk/whoami"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "id": kiosk_id, "code": "K001", "kelurahan": KELURAHAN, "actor": actor(1) }));

    let (status, body) = post(&client, server.url("/api/enroll"), None, enroll(&code1, actor(2))).await;
    assert_eq!((status, code(&body)), (403, "enrollment_code_used"));

    let expired = enroll_code(&data, "0s");
    let (status, body) = post(&client, server.url("/api/enroll"), None, enroll(&expired, actor(3))).await;
    assert_eq!((status, code(&body)), (403, "enrollment_code_expired"));

    // Typed sloppily (lower case, spaces for dashes) is still the code.
    let code2 = enroll_code(&data, "7d").to_lowercase().replace('-', " ");
    let (status, body) = post(&client, server.url("/api/enroll"), None, enroll(&code2, actor(4))).await;
    assert_eq!((status, &body["kiosk_code"]), (201, &json!("K002")), "{body}");

    let out = run_ok(sync_server().args(["revoke", "--kiosk", "K001", "--data"]).arg(&data));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
    let (status, body) = get(&client, server.url("/api/kiosk/whoami"), Some(&token)).await;
    assert_eq!((status, code(&body)), (403, "kiosk_revoked"));
    let (status, body) = get(&client, server.url("/api/kiosk/whoami"), Some(&"f".repeat(64))).await;
    assert_eq!((status, code(&body)), (401, "unknown_kiosk"));

    // The admin sees both kiosks, the first revoked.
    let (_, body) =
        post(&client, server.url("/api/login"), None, json!({ "username": "admin", "password": ADMIN_PASSWORD })).await;
    let admin = body["token"].as_str().unwrap().to_owned();
    let (status, body) = get(&client, server.url("/api/admin/kiosks"), Some(&admin)).await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    assert_eq!((&items[0]["code"], &items[0]["revoked"]), (&json!("K001"), &json!(true)));
    assert_eq!((&items[1]["code"], &items[1]["revoked"]), (&json!("K002"), &json!(false)));
    assert!(items[1]["enrolled_at"].as_str().unwrap().ends_with("+07:00"), "{body}");

    // Admins can issue codes over the API, and revoke by id.
    let (status, body) = post(
        &client,
        server.url("/api/admin/enroll-codes"),
        Some(&admin),
        json!({ "kelurahan": "12.71.01.1002", "ttl_seconds": 600 }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        post(&client, server.url("/api/enroll"), None, enroll(body["code"].as_str().unwrap(), actor(5))).await;
    assert_eq!((status, &body["kiosk_code"]), (201, &json!("K003")), "{body}");
    let third = body["token"].as_str().unwrap().to_owned();
    let third_id = body["kiosk_id"].as_str().unwrap().to_owned();
    let (status, _) =
        post(&client, server.url(&format!("/api/admin/kiosks/{third_id}/revoke")), Some(&admin), json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = get(&client, server.url("/api/kiosk/whoami"), Some(&third)).await;
    assert_eq!((status, code(&body)), (403, "kiosk_revoked"));

    assert!(server.terminate(Duration::from_secs(15)).success());
}

// ------------------------------------------------------------------ floods (issue 12, item 2)

/// A TCP connection to `to` from the loopback address `from` (127.0.0.x
/// all reach a listener on 127.0.0.1).
async fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// A TLS client that trusts the server's CA, for connections driven by hand.
fn tls_connector(data: &Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(data.join("tls/ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// Reads `stream` until the server closes it (EOF or an error), then says
/// so on `closed`. The client itself never writes a byte.
fn report_close<S>(mut stream: S, closed: tokio::sync::mpsc::UnboundedSender<Instant>)
where
    S: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 512];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        let _ = closed.send(Instant::now());
    });
}

/// Counts closings reported on `closed` until `want` or `deadline`.
async fn count_closed(
    closed: &mut tokio::sync::mpsc::UnboundedReceiver<Instant>,
    want: usize,
    deadline: Instant,
) -> usize {
    let mut n = 0;
    while n < want {
        match tokio::time::timeout_at(deadline.into(), closed.recv()).await {
            Ok(Some(_)) => n += 1,
            _ => break,
        }
    }
    n
}

/// Regression, issue 12 item 2: silent connections from one address (TLS
/// that never sends a request, TCP that never starts TLS) hold at most
/// `connections_per_address_max` (64) slots; the rest are closed at once,
/// another client's `/healthz` is answered promptly, and the held ones are
/// closed at their deadlines. Before, the flood filled the global cap and
/// a connection silent after TLS was held for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_from_one_address_leave_other_clients_served() {
    const SILENT_TLS: usize = 40;
    const SILENT_TCP: usize = 300;
    const PER_ADDRESS: usize = 64;
    let dir = TestDir::new();
    let data = init(dir.path());
    // A global cap the flood alone would fill, and deadlines short enough
    // for a test but long against the immediate refusals.
    let server = ServerProcess::start_with(
        dir.path(),
        &data,
        &[
            ("LOKET_SERVER_CONNECTIONS_MAX", "200"),
            ("LOKET_SERVER_TLS_HANDSHAKE_TIMEOUT", "6"),
            ("LOKET_SERVER_HEADER_READ_TIMEOUT", "6"),
        ],
    );
    let flooder: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let tls = tls_connector(&data);
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    for _ in 0..SILENT_TLS {
        let tcp = connect_from(flooder, server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tls.connect(name, tcp).await.expect("a handshake within the per-address cap");
        report_close(stream, closed_tx.clone());
    }
    for _ in 0..SILENT_TCP {
        match connect_from(flooder, server.addr).await {
            Ok(tcp) => report_close(tcp, closed_tx.clone()),
            Err(_) => closed_tx.send(Instant::now()).unwrap(),
        }
    }
    let flood = SILENT_TLS + SILENT_TCP;

    // Everything beyond the per-address cap is closed at once, long before
    // any deadline.
    let excess = flood - PER_ADDRESS;
    let n = count_closed(&mut closed, excess, started + Duration::from_secs(5)).await;
    assert_eq!(n, excess, "connections beyond the per-address cap closed before any deadline");

    // Another client is served promptly while the flood holds its slots.
    let client = pinned_client(&data);
    let asked = Instant::now();
    let (status, body) = get(&client, server.url("/healthz"), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(asked.elapsed() < Duration::from_secs(1), "/healthz took {:?} under the flood", asked.elapsed());

    // The held connections are closed at their deadlines (6 s from accept
    // without TLS, 6 s after TLS without a request).
    let n = count_closed(&mut closed, PER_ADDRESS, started + Duration::from_secs(20)).await;
    assert_eq!(n, PER_ADDRESS, "every silent connection closed by its deadline");
    let (status, _) = get(&client, server.url("/healthz"), None).await;
    assert_eq!(status, 200);
}

// ------------------------------------------------------------------ accounts and metrics (issue 12, item 11)

fn add_supervisor(dir: &Path, data: &Path, username: &str, password: &str) {
    let file = dir.join(format!("{username}-password"));
    std::fs::write(&file, format!("{password}\n")).unwrap();
    run_ok(
        sync_server()
            .args(["add-user", "--role", "supervisor", "--username", username, "--data"])
            .arg(data)
            .arg("--password-file")
            .arg(&file),
    );
}

/// Regression, issue 12 item 11: `disable-user` shuts a user out of a
/// running server at once (their sessions end, the right password is
/// refused) and is audited; `enable-user` lets them log in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_user_shuts_a_user_out_of_a_running_server() {
    let dir = TestDir::new();
    let data = init(dir.path());
    add_supervisor(dir.path(), &data, "pengawas", "rahasia-pengawas");
    let mut server = ServerProcess::start(dir.path(), &data);
    let client = pinned_client(&data);
    let login = |username: &str, password: &str| json!({ "username": username, "password": password });
    let (status, body) = post(&client, server.url("/api/login"), None, login("pengawas", "rahasia-pengawas")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&client, server.url("/api/admin/requests"), Some(&token)).await.0, 200);

    let out = run_ok(sync_server().args(["disable-user", "--username", "pengawas", "--data"]).arg(&data));
    assert!(String::from_utf8_lossy(&out.stdout).contains("disabled"), "{out:?}");
    let (status, body) = get(&client, server.url("/api/admin/requests"), Some(&token)).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"), "the session ended");
    let (status, body) = post(&client, server.url("/api/login"), None, login("pengawas", "rahasia-pengawas")).await;
    assert_eq!((status, code(&body)), (403, "account_disabled"));

    let (_, body) = post(&client, server.url("/api/login"), None, login("admin", ADMIN_PASSWORD)).await;
    let admin = body["token"].as_str().unwrap().to_owned();
    let (_, body) = get(&client, server.url("/api/admin/audit"), Some(&admin)).await;
    assert_eq!(
        (&body["items"][0]["action"], &body["items"][0]["subject"]),
        (&json!("disable_user"), &json!("pengawas"))
    );

    run_ok(sync_server().args(["enable-user", "--username", "pengawas", "--data"]).arg(&data));
    let (status, body) = post(&client, server.url("/api/login"), None, login("pengawas", "rahasia-pengawas")).await;
    assert_eq!(status, 200, "{body}");
    let out = sync_server().args(["disable-user", "--username", "nobody", "--data"]).arg(&data).output().unwrap();
    assert!(!out.status.success(), "an unknown user was disabled");
    assert!(server.terminate(Duration::from_secs(15)).success());
}

/// Regression, issue 12 item 11: `/metrics` was open to anyone. Prometheus
/// scrapes it with the token in `metrics_token_file`; admins may too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_with_the_metrics_token_only() {
    let dir = TestDir::new();
    let data = init(dir.path());
    let token = "ab".repeat(32);
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::write(data.join("server.toml"), format!("metrics_token_file = {:?}\n", token_file.display().to_string()))
        .unwrap();
    let mut server = ServerProcess::start(dir.path(), &data);
    let client = pinned_client(&data);
    let (status, body) = get(&client, server.url("/metrics"), None).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let (status, body) = get(&client, server.url("/metrics"), Some(&"cd".repeat(32))).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"), "another token");
    let resp = client.get(server.url("/metrics")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("loket_kiosks_enrolled"));
    assert!(server.terminate(Duration::from_secs(15)).success());
}

// ------------------------------------------------------------------ echoes (issue 12, item 9)

/// Regression, issue 12 item 9: neither an answer nor the server's log
/// holds a rejected value: a password typed where the username goes, a
/// NIK in a wrong-typed field or as an unknown key, a NIK as an enrollment
/// code. Before, serde's messages quoted them and the log named the
/// username tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_values_appear_in_neither_answers_nor_the_log() {
    let dir = TestDir::new();
    let data = init(dir.path());
    let mut server = ServerProcess::start(dir.path(), &data);
    let client = pinned_client(&data);
    let nik = "1271010101900003";
    let password = "rahasia-bocor-77";
    let mut answers = Vec::new();
    for body in [
        json!({ "username": password, "password": "salah-sandi-123" }),
        json!({ "username": "admin", "password": 1271010101900003u64 }),
        json!({ "username": "admin", "password": "x", nik: password }),
        json!({ "username": nik, "password": password }),
    ] {
        let (status, answer) = post(&client, server.url("/api/login"), None, body.clone()).await;
        assert!([401, 422].contains(&status), "{body}: {status} {answer}");
        answers.push(answer);
    }
    let enroll = json!({ "code": nik, "actor": password, "version": "1" });
    answers.push(post(&client, server.url("/api/enroll"), None, enroll).await.1);
    let (_, body) =
        post(&client, server.url("/api/login"), None, json!({ "username": "admin", "password": ADMIN_PASSWORD })).await;
    let admin = body["token"].as_str().unwrap().to_owned();
    answers.push(get(&client, server.url(&format!("/api/admin/audit?{nik}=1")), Some(&admin)).await.1);
    answers.push(get(&client, server.url(&format!("/api/admin/audit?limit={password}")), Some(&admin)).await.1);
    assert!(server.terminate(Duration::from_secs(15)).success());

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap().to_lowercase();
    for value in [nik, password] {
        for answer in &answers {
            assert!(!answer.to_string().to_lowercase().contains(value), "an answer echoed {value}: {answer}");
        }
        assert!(!log.contains(value), "the log holds {value}");
    }
}
