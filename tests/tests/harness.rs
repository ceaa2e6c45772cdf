//! The harness's own promises about addresses: a server started on port 0
//! reports the port it bound, and a restart gets the same address back
//! even when something held it for a while (a real restart's situation).

use std::time::{Duration, Instant};

use loket_tests::TestDir;
use loket_tests::server::{ServerProcess, init_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_gets_its_address_back_after_waiting_for_it() {
    let dir = TestDir::new("harness-restart");
    let data = dir.path().join("server");
    init_server(&data).unwrap();
    let mut server = ServerProcess::start(&data).unwrap();
    let addr = server.addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(server.base, format!("https://{addr}"));
    server.kill();

    // Something else holds the port for a moment.
    let held = Duration::from_millis(500);
    let squatter = std::net::TcpListener::bind(addr).unwrap();
    let asked = Instant::now();
    let release = std::thread::spawn(move || {
        std::thread::sleep(held);
        drop(squatter);
    });
    let server = ServerProcess::restart_on(&data, addr).unwrap();
    assert!(asked.elapsed() >= held, "started while the port was taken?");
    release.join().unwrap();
    assert_eq!(server.addr(), addr);
    let health: serde_json::Value =
        server.client().get(format!("{}/healthz", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
}
