//! The upgrade fixture (issue 18, item 3): the stores a previous release
//! wrote during a realistic day, and the figures it showed for them, so
//! that the current binaries can be started on those stores and show the
//! same figures.
//!
//! `loket-upgrade-fixture` (src/bin) makes one with another release's
//! binaries (`LOKET_TEST_SERVER_BIN`, `LOKET_TEST_KIOSK_BIN`) and packs
//! the day's folder (`server/`, a `kiosk-<kelurahan>/` per office, and
//! `figures.json`) into a `.tar.zst`; `tests/upgrade.rs` unpacks it and
//! compares. Figures are read only through the external interface
//! (DESIGN.md §9: the admin and kiosk JSON APIs), which releases keep
//! stable: a later release may add fields, never change what an earlier
//! one said.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use crate::KioskProcess;
use crate::day::{LALANG, PASAR_BARU};
use crate::server::ServerProcess;

/// Who reads each office's kiosk figures: `(kelurahan, staff id,
/// password)` of the supervisors on the day's rosters.
pub const READERS: [(&str, &str, &str); 2] =
    [(PASAR_BARU, crate::STAFF_ID, crate::STAFF_PASSWORD), (LALANG, "199203152019032007", "dewi-rahasia-1")];

/// Fields whose value moves with the clock or with the next sync, not
/// with the stored data: when a kiosk was last seen, what it had pending,
/// the version it runs; whether an unanswered complaint is past its due
/// date (`due_at` itself is compared).
pub const VOLATILE: [&str; 5] = ["last_seen", "last_sync_ok_at", "pending_known", "version", "overdue"];

/// GET `url` with a bearer token (none if empty); the JSON body (200
/// expected).
async fn get(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let mut r = client.get(url);
    if !token.is_empty() {
        r = r.bearer_auth(token);
    }
    let r = r.send().await.with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let body = r.text().await?;
    anyhow::ensure!(status.is_success(), "GET {url}: {status} {body}");
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON"))
}

/// Every page of a listing that answers `{items, next}`.
async fn all_items(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut page = get(client, url, token).await?;
    loop {
        items.extend(page["items"].as_array().context("items")?.iter().cloned());
        match page["next"].as_str() {
            Some(next) if !next.is_empty() => {
                let sep = if url.contains('?') { '&' } else { '?' };
                page = get(client, &format!("{url}{sep}cursor={next}"), token).await?;
            }
            _ => return Ok(items),
        }
    }
}

/// What the central server shows an admin of the stored day: the IKM of
/// 2026 by kelurahan, kecamatan and service; every request, whole; every
/// complaint, whole; the kiosks.
pub async fn server_figures(server: &ServerProcess, admin: &str) -> anyhow::Result<Value> {
    let https = server.client();
    let base = &server.base;
    let mut ikm = serde_json::Map::new();
    for by in ["kelurahan", "kecamatan", "service"] {
        let url = format!("{base}/api/admin/ikm?from=2026-01-01&to=2026-12-31&group_by={by}");
        ikm.insert(by.to_owned(), get(&https, &url, admin).await?);
    }
    let requests = all_items(&https, &format!("{base}/api/admin/requests?limit=100"), admin).await?;
    let mut details = serde_json::Map::new();
    for r in &requests {
        let id = r["id"].as_str().context("request id")?;
        details.insert(id.to_owned(), get(&https, &format!("{base}/api/admin/requests/{id}"), admin).await?);
    }
    let complaints = all_items(&https, &format!("{base}/api/admin/complaints?limit=100"), admin).await?;
    let mut complaint_details = serde_json::Map::new();
    for c in &complaints {
        let id = c["id"].as_str().context("complaint id")?;
        complaint_details
            .insert(id.to_owned(), get(&https, &format!("{base}/api/admin/complaints/{id}"), admin).await?);
    }
    let kiosks = get(&https, &format!("{base}/api/admin/kiosks"), admin).await?;
    Ok(json!({
        "ikm": ikm,
        "requests": requests,
        "request_details": details,
        "complaints": complaints,
        "complaint_details": complaint_details,
        "kiosks": kiosks["items"],
    }))
}

/// What a kiosk shows its staff and citizens of the stored day: the whole
/// queue with each request's page, each ticket's status as a citizen
/// checks it, and each of its complaints' status.
pub async fn kiosk_figures(k: &KioskProcess, kelurahan: &str, complaint_tickets: &[String]) -> anyhow::Result<Value> {
    let client = crate::http_client();
    let (_, staff_id, password) = READERS.iter().find(|r| r.0 == kelurahan).context("a reader for the office")?;
    let token = crate::day::login_staff(&client, k, staff_id, password).await?;
    let queue = get(&client, &k.url("/api/staff/requests?status=all&limit=1000"), &token).await?;
    let items = queue["items"].as_array().context("queue items")?;
    let mut details = serde_json::Map::new();
    let mut tickets = serde_json::Map::new();
    for item in items {
        let id = item["id"].as_str().context("id")?;
        let ticket = item["ticket"].as_str().context("ticket")?;
        details.insert(id.to_owned(), get(&client, &k.url(&format!("/api/staff/requests/{id}")), &token).await?);
        tickets.insert(ticket.to_owned(), get(&client, &k.url(&format!("/api/tickets/{ticket}")), "").await?);
    }
    let mut complaints = serde_json::Map::new();
    for ticket in complaint_tickets {
        complaints.insert(ticket.clone(), get(&client, &k.url(&format!("/api/complaints/{ticket}")), "").await?);
    }
    Ok(json!({ "queue": items, "details": details, "tickets": tickets, "complaints": complaints }))
}

/// The complaint tickets filed at `kelurahan`, from server figures.
pub fn complaint_tickets(server: &Value, kelurahan: &str) -> Vec<String> {
    server["complaints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["kelurahan"] == kelurahan)
        .filter_map(|c| c["ticket"].as_str().map(str::to_owned))
        .collect()
}

/// Where `now` says something other than `then` did: every field `then`
/// has (but the [`VOLATILE`] ones) must be in `now` with the same value;
/// `now` may have more fields (a later release adds, never changes).
/// Lists must be as long and agree element by element.
pub fn differences(then: &Value, now: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(then, now, "", &mut out);
    out
}

fn walk(then: &Value, now: &Value, at: &str, out: &mut Vec<String>) {
    match (then, now) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                if VOLATILE.contains(&key.as_str()) {
                    continue;
                }
                let here = format!("{at}.{key}");
                match b.get(key) {
                    Some(other) => walk(value, other, &here, out),
                    None => out.push(format!("{here}: gone (was {value})")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{at}: {} items, was {}", b.len(), a.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, &format!("{at}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{at}: {b}, was {a}")),
    }
}

/// Packs `dir` (the day's folder) into a zstd-compressed tar at `out`.
pub fn pack(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let zst = zstd::stream::Encoder::new(file, 19)?.auto_finish();
    let mut tar = tar::Builder::new(zst);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut entries: Vec<_> = files(dir)?;
    entries.sort();
    for path in entries {
        let name = path.strip_prefix(dir)?;
        tar.append_path_with_name(&path, name)?;
    }
    tar.into_inner()?;
    Ok(())
}

/// Every file under `dir`, at any depth.
pub fn files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            files.extend(self::files(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// Unpacks a fixture made by [`pack`] into `dir`.
pub fn unpack(fixture: &Path, dir: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(fixture).with_context(|| format!("opening {}", fixture.display()))?;
    let mut tar = tar::Archive::new(zstd::stream::Decoder::new(file)?);
    tar.set_preserve_permissions(true);
    tar.unpack(dir).with_context(|| format!("unpacking {}", fixture.display()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::differences;

    /// A later release may add fields; a changed, missing or extra value
    /// anywhere else is named with its path, volatile ones aside.
    #[test]
    fn differences_name_every_change_but_additions_and_volatile_fields() {
        let then = json!({"a": 1, "list": [{"x": "k", "last_seen": "t1"}], "gone": true});
        let same = json!({"a": 1, "list": [{"x": "k", "last_seen": "t2", "new": 5}], "gone": true, "added": []});
        assert!(differences(&then, &same).is_empty(), "{:?}", differences(&then, &same));
        let changed = json!({"a": 2, "list": [{"x": "k"}, {"x": "l"}]});
        assert_eq!(
            differences(&then, &changed),
            [".a: 2, was 1", ".gone: gone (was true)", ".list: 2 items, was 1"].map(String::from)
        );
    }
}
