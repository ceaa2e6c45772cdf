//! Compression bombs against a real `sync-server` (issue 12, item 1): an
//! enrolled kiosk pushes Automerge bytes that would inflate to a gigabyte
//! or more each (`loket_shared::chunks::bombs`: a compressed change, a
//! document's DEFLATE column, a run-length column of 2^40 rows, fallback
//! sync messages carrying the first or four billion bloom probes), several
//! rounds of each, and the server's peak resident memory is read from
//! `/proc` before and after. Every push must be refused with
//! `changes_too_large`.
//!
//! ```text
//! cargo build --release -p loket-sync-server --bin sync-server --example bomb_rss
//! target/release/examples/bomb_rss --rounds 5
//! ```
//!
//! Prints a few lines for people, then `RESULT {json}`; exits 1 if a bomb
//! was not refused or the server's peak RSS reached 200 MB.

#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use loket_shared::sync::{DocType, PROTOCOL_VERSION, PushDoc, SyncRequest};

const PEAK_RSS_MAX_MIB: u64 = 200;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("bomb_rss: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let mut rounds = 5;
    let mut bin = server::beside()?;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().unwrap_or_default().parse()?,
            "--server-bin" => bin = args.next().unwrap_or_default().into(),
            other => anyhow::bail!("unknown argument {other} (--rounds N, --server-bin PATH)"),
        }
    }
    let server = server::start_server(&bin)?;
    let code = server.command(&["enroll-code", "--kelurahan", "12.71.01.1001"])?;
    // The code alone on the first line.
    let code = code.lines().next().unwrap_or_default().trim().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let bombs = loket_shared::chunks::bombs::all(1024);
    runtime.block_on(async move {
        let ca = reqwest::Certificate::from_pem(&server.ca_pem)?;
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(120))
            .build()?;
        let base = format!("https://{}", server.addr);
        let enrolled: serde_json::Value = client
            .post(format!("{base}/api/enroll"))
            .json(&serde_json::json!({ "code": code, "actor": "07".repeat(16), "version": "bomb_rss" }))
            .send()
            .await?
            .json()
            .await?;
        let token = enrolled["token"].as_str().ok_or_else(|| anyhow::anyhow!("enrollment: {enrolled}"))?.to_owned();
        let (_, peak_before) = server::rss_mib(server.child.id())?;
        let mut all_refused = true;
        let mut wire_bytes = 0;
        for round in 0..rounds {
            for bomb in &bombs {
                let doc = [round as u8 + 1; 16];
                let (changes, fallback) = match bomb.sync_message {
                    true => (Vec::new(), Some(bomb.bytes.clone())),
                    false => (bomb.bytes.clone(), None),
                };
                let req = SyncRequest {
                    version: PROTOCOL_VERSION,
                    client: "bomb_rss".into(),
                    push: vec![PushDoc {
                        doc,
                        doc_type: DocType::Request,
                        base: vec![],
                        changes,
                        heads: vec![],
                        fallback,
                    }],
                    pull_after: 0,
                    acked: 0,
                    through: 0,
                    pending: 0,
                };
                let body = req.encode();
                wire_bytes = wire_bytes.max(body.len());
                let r = client.post(format!("{base}/api/sync")).bearer_auth(&token).body(body).send().await?;
                let status = r.status().as_u16();
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                let refused = status == 413 && v["error"]["code"] == "changes_too_large";
                if !refused {
                    eprintln!("NOT refused as expected: {}: {status} {v}", bomb.name);
                }
                all_refused &= refused;
            }
        }
        let (rss_after, peak_after) = server::rss_mib(server.child.id())?;
        println!("bombs pushed: {} x {rounds} rounds, largest request {wire_bytes} bytes", bombs.len());
        println!("server peak RSS: {peak_before} MiB before, {peak_after} MiB after (RSS now {rss_after} MiB)");
        let ok = all_refused && peak_after < PEAK_RSS_MAX_MIB;
        println!(
            "RESULT {}",
            serde_json::json!({
                "bombs": bombs.len() * rounds,
                "all_refused": all_refused,
                "largest_request_bytes": wire_bytes,
                "peak_rss_before_mib": peak_before,
                "peak_rss_after_mib": peak_after,
                "rss_after_mib": rss_after,
                "peak_rss_max_mib": PEAK_RSS_MAX_MIB,
            })
        );
        Ok(ok)
    })
}
