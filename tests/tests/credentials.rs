//! Kiosk credential rotation against a real server and a serving kiosk:
//! `kiosk rotate-credential` gets a new secret while the kiosk keeps
//! serving; the old secret works until the kiosk's next sync uses the new
//! one, and from then on it is refused.

use loket_tests::server::{ServerProcess, enroll_kiosk, init_server};
use loket_tests::{KioskProcess, TestDir, http_client, kiosk_bin};
use serde_json::Value;

const KEL: &str = "12.71.01.1001";

fn stored_token(data: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(data.join("kiosk.db")).unwrap();
    conn.query_row("SELECT value FROM meta WHERE key = 'server_token'", [], |r| r.get(0)).unwrap()
}

async fn whoami(https: &reqwest::Client, server: &ServerProcess, token: &str) -> (u16, Value) {
    let r = https.get(format!("{}/api/kiosk/whoami", server.base)).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_credential_retires_the_old_one_at_first_use() {
    let dir = TestDir::new("credentials");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).unwrap();
    let server = ServerProcess::start(&server_dir).unwrap();
    let https = server.client();
    let data = dir.path().join("kiosk");
    enroll_kiosk(&data, &server, &server.enroll_code(KEL).unwrap()).unwrap();
    let kiosk = KioskProcess::start(&data).unwrap();
    let client = http_client();
    let old = stored_token(&data);
    assert_eq!(whoami(&https, &server, &old).await.0, 200);

    let out =
        std::process::Command::new(kiosk_bin()).args(["rotate-credential", "--data"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = stored_token(&data);
    assert_ne!(new, old);
    assert_eq!(whoami(&https, &server, &old).await.0, 200, "the old one works until the new one is used");

    let v: Value = client.post(kiosk.url("/api/sync")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["ok"], true, "the serving kiosk syncs with the new credential: {v}");
    let (status, v) = whoami(&https, &server, &old).await;
    assert_eq!((status, v["error"]["code"].as_str()), (401, Some("unknown_kiosk")), "{v}");
    assert_eq!(whoami(&https, &server, &new).await.0, 200);
}

/// Issue 14, item 13: `enroll-code` refuses a well-formed kelurahan code
/// that is not in the region list (exit status, the stable code on
/// stderr, no code printed) and still issues one for a listed kelurahan.
#[test]
fn enroll_code_refuses_a_kelurahan_not_in_the_region_list() {
    use loket_tests::server::server_cli;
    let dir = TestDir::new("enroll-unknown-kelurahan");
    let server_dir = dir.path().join("server");
    init_server(&server_dir).unwrap();
    for unknown in ["12.71.01.1013", "12.71.22.1001", "31.74.01.1001"] {
        let out = server_cli(&[
            std::ffi::OsStr::new("enroll-code"),
            "--data".as_ref(),
            server_dir.as_os_str(),
            "--kelurahan".as_ref(),
            unknown.as_ref(),
        ])
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{unknown} was accepted");
        assert!(stderr.contains("unknown_kelurahan"), "{unknown}: {stderr}");
        assert!(out.stdout.is_empty(), "{unknown}: a code was printed");
    }
    let listed = server_cli(&[
        std::ffi::OsStr::new("enroll-code"),
        "--data".as_ref(),
        server_dir.as_os_str(),
        "--kelurahan".as_ref(),
        "12.71.20.1006".as_ref(),
    ])
    .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("12.71.20.1006"));
}
