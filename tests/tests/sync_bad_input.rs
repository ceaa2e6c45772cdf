//! Bad input to the sync endpoint of a real server: garbage bytes,
//! truncated and oversized batches, an unknown protocol version, changes
//! that are not Automerge, a document of another kelurahan, a catalog
//! written by a kiosk, unknown and revoked credentials. Each gets a clear
//! error with a stable code, nothing is stored, and the server keeps
//! serving (a valid sync works afterwards).

use loket_shared::sync::{DocType, PROTOCOL_VERSION, PROTOCOL_VERSION_OLDEST, PushDoc, SyncRequest};
use loket_tests::server::{ServerProcess, init_server};
use loket_tests::{TestDir, nik};
use serde_json::{Value, json};

const KEL: &str = "12.71.01.1001";

async fn enroll(https: &reqwest::Client, server: &ServerProcess, kel: &str, actor: &str) -> (String, String) {
    let code = server.enroll_code(kel).unwrap();
    let v: Value = https
        .post(format!("{}/api/enroll", server.base))
        .json(&json!({ "code": code, "actor": actor, "version": "test" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (v["token"].as_str().unwrap().to_owned(), v["kiosk_code"].as_str().unwrap().to_owned())
}

fn request(push: Vec<PushDoc>) -> SyncRequest {
    SyncRequest {
        version: PROTOCOL_VERSION,
        client: "test".into(),
        push,
        pull_after: 0,
        acked: 0,
        through: 0,
        pending: 0,
    }
}

/// A real request document of `kelurahan`, as a kiosk would push it.
fn new_doc(kelurahan: &str, kiosk: &str, actor: [u8; 16]) -> (loket_shared::DocId, automerge::AutoCommit) {
    new_doc_of("SKD", kelurahan, kiosk, actor)
}

/// The same for a request of `service`.
fn new_doc_of(
    service: &str,
    kelurahan: &str,
    kiosk: &str,
    actor: [u8; 16],
) -> (loket_shared::DocId, automerge::AutoCommit) {
    use loket_shared::request::{Applicant, NewRequest, create};
    use loket_shared::workflow::{Event, EventKind};
    use loket_shared::{DocId, Hlc, Status, Ticket};
    let id = DocId::new_v7(1_764_300_000_000, rand::random());
    let hlc = Hlc { wall_ms: 1_764_300_000_000, counter: 0 };
    let mut doc = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(actor));
    let new = NewRequest {
        id,
        ticket: Ticket::new(&kiosk.parse().unwrap(), 11, 28, 1),
        kelurahan: kelurahan.parse().unwrap(),
        kiosk: kiosk.parse().unwrap(),
        service: service.parse().unwrap(),
        created_at_ms: 1_764_300_000_000,
        hlc,
        applicant: Applicant { name: "Budi".parse().unwrap(), nik: nik(1).parse().unwrap(), phone: None },
        rating_key: None,
        create_event: Event {
            id: "e1".into(),
            hlc,
            node: hex::encode(actor),
            at_ms: 1_764_300_000_000,
            by: "citizen".into(),
            kind: EventKind::Create,
            from: None,
            to: Status::Submitted,
            note: None,
            agency: None,
            waiting: Vec::new(),
            result_ref: None,
            parents: vec![],
            seal: None,
        },
    };
    create(&mut doc, &new).unwrap();
    (id, doc)
}

/// The whole document as a push (the server has none of it).
fn push_all(id: loket_shared::DocId, doc: &mut automerge::AutoCommit) -> PushDoc {
    let heads = doc.get_heads().iter().map(|h| h.0).collect();
    PushDoc { doc: id.to_bytes(), doc_type: DocType::Request, base: vec![], changes: doc.save(), heads, fallback: None }
}

/// What `doc` has after `base`, as a push.
fn push_after(id: loket_shared::DocId, doc: &mut automerge::AutoCommit, base: &[automerge::ChangeHash]) -> PushDoc {
    let heads = doc.get_heads().iter().map(|h| h.0).collect();
    PushDoc {
        doc: id.to_bytes(),
        doc_type: DocType::Request,
        base: base.iter().map(|h| h.0).collect(),
        changes: doc.save_after(base),
        heads,
        fallback: None,
    }
}

fn request_doc(kelurahan: &str, kiosk: &str, actor: [u8; 16]) -> PushDoc {
    let (id, mut doc) = new_doc(kelurahan, kiosk, actor);
    push_all(id, &mut doc)
}

async fn stored_requests(https: &reqwest::Client, server: &ServerProcess, admin: &str) -> usize {
    let v = server.get_json(https, admin, "/api/admin/requests?limit=1000").await.unwrap();
    v["items"].as_array().unwrap().len()
}

/// The kiosk actor the tests enroll.
const ACTOR: [u8; 16] = [7; 16];

/// A real server in a temporary directory with one kiosk of `KEL`
/// enrolled as [`ACTOR`].
struct Fixture {
    dir: TestDir,
    data: std::path::PathBuf,
    server: ServerProcess,
    https: reqwest::Client,
    admin: String,
    token: String,
    kiosk_code: String,
}

async fn fixture(name: &str) -> Fixture {
    let dir = TestDir::new(name);
    let data = dir.path().join("server");
    init_server(&data).unwrap();
    let server = ServerProcess::start(&data).unwrap();
    let https = server.client();
    let admin = server.admin_token(&https).await.unwrap();
    let (token, kiosk_code) = enroll(&https, &server, KEL, &hex::encode(ACTOR)).await;
    Fixture { dir, data, server, https, admin, token, kiosk_code }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sync_input_is_refused_and_nothing_is_stored() {
    // `_dir` keeps the directory for the whole test.
    let Fixture { dir: _dir, server, https, admin, token, kiosk_code, .. } = fixture("sync-bad-input").await;
    let actor = ACTOR;
    let (other_token, _) = enroll(&https, &server, "12.71.01.1002", &hex::encode([8u8; 16])).await;

    let good = request_doc(KEL, &kiosk_code, actor);
    let mut truncated = request(vec![good.clone()]).encode();
    truncated.truncate(truncated.len() / 2);
    let mut wrong_version = request(vec![]).encode();
    wrong_version[5] = wrong_version[5].wrapping_add(1);
    let mut not_automerge = good.clone();
    not_automerge.changes = b"definitely not automerge".to_vec();
    let foreign = request_doc("12.71.01.1002", &kiosk_code, actor);
    let mut catalog = good.clone();
    catalog.doc_type = DocType::Catalog;
    let mut oversized = request(vec![]).encode();
    oversized.resize(9 * 1024 * 1024, 0);

    let unknown = "ab".repeat(32);
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        ("garbage bytes", b"\x00\xffGET / HTTP/1.1 garbage".to_vec(), &token, 400, "invalid_sync_message"),
        ("empty body", Vec::new(), &token, 400, "invalid_sync_message"),
        ("truncated batch", truncated, &token, 400, "invalid_sync_message"),
        ("unknown protocol version", wrong_version, &token, 400, "unsupported_protocol_version"),
        ("oversized batch", oversized, &token, 413, "body_too_large"),
        ("changes that are not Automerge", request(vec![not_automerge]).encode(), &token, 400, "invalid_changes"),
        ("a document of another kelurahan", request(vec![foreign.clone()]).encode(), &token, 403, "forbidden_document"),
        ("a catalog from a kiosk", request(vec![catalog]).encode(), &token, 403, "forbidden_document"),
        (
            "a valid doc in a batch with a bad one",
            request(vec![good.clone(), foreign]).encode(),
            &token,
            403,
            "forbidden_document",
        ),
        (
            "the same document twice in one batch",
            request(vec![good.clone(), good.clone()]).encode(),
            &token,
            400,
            "batch_limit",
        ),
        ("unknown credential", request(vec![good.clone()]).encode(), &unknown, 401, "unknown_kiosk"),
        (
            "a kelurahan B kiosk pushing A's document",
            request(vec![good.clone()]).encode(),
            &other_token,
            403,
            "forbidden_document",
        ),
    ];
    for (name, body, bearer, status, code) in cases {
        let oversized = status == 413;
        let sent = https
            .post(format!("{}/api/sync", server.base))
            .bearer_auth(bearer)
            .header("content-type", "application/x-loket-sync")
            // A refused oversized body makes the server close the
            // connection; keep these off the pooled connections.
            .header("connection", "close")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            // The server answers 413 as soon as it sees the length and
            // closes without reading 9 MiB; the client may still be
            // writing then and see a broken pipe instead of the answer
            // (seen once in CI-like runs). Refused either way: what must
            // hold is that nothing was stored.
            Err(e) if oversized && e.is_request() => {
                assert_eq!(stored_requests(&https, &server, &admin).await, 0, "{name}: something was stored");
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let got = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "{name}: {v}");
        assert_eq!(v["error"]["code"], code, "{name}: {v}");
        assert_eq!(stored_requests(&https, &server, &admin).await, 0, "{name}: something was stored");
    }

    // Still serving: the same good document goes through, once, however
    // often it is sent (replay of an old batch is harmless).
    for _ in 0..3 {
        let resp = https
            .post(format!("{}/api/sync", server.base))
            .bearer_auth(&token)
            .body(request(vec![good.clone()]).encode())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(stored_requests(&https, &server, &admin).await, 1);

    // A revoked kiosk is refused on its next request.
    let kiosks = server.get_json(&https, &admin, "/api/admin/kiosks").await.unwrap();
    let id = kiosks["items"].as_array().unwrap().iter().find(|k| k["code"] == kiosk_code.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r =
        https.post(format!("{}/api/admin/kiosks/{id}/revoke", server.base)).bearer_auth(&admin).send().await.unwrap();
    assert!(r.status().is_success());
    let resp = https
        .post(format!("{}/api/sync", server.base))
        .bearer_auth(&token)
        .body(request(vec![request_doc(KEL, &kiosk_code, actor)]).encode())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "kiosk_revoked");
    assert_eq!(stored_requests(&https, &server, &admin).await, 1);

    // Metrics count the refusals by reason.
    let m =
        https.get(format!("{}/metrics", server.base)).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("forbidden_document"), "metrics lack refusal reasons:\n{m}");
}

/// An event as a kiosk would append it, on top of `parent`.
fn event(
    id: &str,
    parent: &str,
    node: &str,
    by: &str,
    kind: loket_shared::workflow::EventKind,
) -> loket_shared::workflow::Event {
    use loket_shared::{Hlc, Status};
    loket_shared::workflow::Event {
        id: id.into(),
        hlc: Hlc { wall_ms: 1_764_300_100_000, counter: 0 },
        node: node.into(),
        at_ms: 1_764_300_100_000,
        by: by.into(),
        kind,
        from: Some(Status::Submitted),
        to: Status::InProgress,
        note: None,
        agency: None,
        waiting: Vec::new(),
        result_ref: None,
        parents: vec![parent.into()],
        seal: None,
    }
}

async fn admin_heads(https: &reqwest::Client, server: &ServerProcess, admin: &str, id: loket_shared::DocId) -> Value {
    server.get_json(https, admin, &format!("/api/admin/requests/{id}")).await.unwrap()["heads"].clone()
}

/// Change-level authorization: whatever a kiosk adds to a document must be
/// its own work. Each forged push is refused as a whole (`forbidden_change`)
/// and the stored document does not move; the kiosk's honest next step
/// still goes through.
/// Issue 18, item 3: a kiosk of a sync protocol older than the server
/// still answers (not yet updated when the server was) gets an answer
/// that says what to do, not a bare refusal: update the kiosk, and it
/// serves offline meanwhile; one ahead is told the server must be
/// updated first. Nothing it sent is stored, and the refusal is counted
/// for the alert. (A kiosk of the release before is still answered:
/// `a_kiosk_of_the_release_before_still_syncs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_too_old_for_the_server_is_told_to_update() {
    let Fixture { dir: _dir, server, https, admin, token, kiosk_code, .. } = fixture("sync-old-protocol").await;
    let frame = |version: u16| {
        let mut bytes = request(vec![request_doc(KEL, &kiosk_code, ACTOR)]).encode();
        bytes[4..6].copy_from_slice(&version.to_be_bytes());
        bytes
    };
    for (version, says) in [
        (PROTOCOL_VERSION_OLDEST - 1, ["perbarui kiosk", "update the kiosk", "offline"]),
        (PROTOCOL_VERSION + 1, ["perbarui server", "update the server", "newer than the server"]),
    ] {
        let (status, body) = sync_raw(&https, &server, &token, frame(version)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "unsupported_protocol_version", "{body}");
        assert_eq!(body["error"]["server_protocol"], PROTOCOL_VERSION, "{body}");
        let message = body["error"]["message"].as_str().expect("message");
        for words in says {
            assert!(message.contains(words), "{message:?} lacks {words:?}");
        }
        assert!(message.contains(&version.to_string()), "{message:?} names the kiosk's protocol");
    }
    assert_eq!(stored_requests(&https, &server, &admin).await, 0);
    let metrics = https.get(format!("{}/metrics", server.base)).bearer_auth(&admin).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    assert!(
        metrics.lines().any(|l| l.starts_with("loket_sync_refusals_total{reason=\"unsupported_protocol_version\"} 2")),
        "{metrics}"
    );
}

/// Issue 17: a partner kiosk pulling a request it does not hold gets,
/// from protocol 3, what the server read of it (`shared::summary`) at
/// exactly the pulled heads, and stores it unread. A kiosk of the
/// release before (protocol 2) still syncs: it is answered in 2, in the
/// shape it knows, with no summaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_of_the_release_before_still_syncs() {
    use loket_shared::summary::Summary;
    use loket_shared::sync::{PullDoc, PushAck, SyncResponse};
    let Fixture { dir: _dir, server, https, admin, token, kiosk_code, .. } = fixture("sync-protocol-2").await;
    let (partner, _) = enroll(&https, &server, KEL, &hex::encode([8u8; 16])).await;
    let (old_kiosk, _) = enroll(&https, &server, KEL, &hex::encode([9u8; 16])).await;
    let (id, mut doc) = new_doc(KEL, &kiosk_code, ACTOR);
    let (status, body) = sync_as(&https, &server, &token, &request(vec![push_all(id, &mut doc)])).await;
    assert_eq!(status, 200, "{body}");

    let pull = |token: String, version: u16| {
        let https = https.clone();
        let url = format!("{}/api/sync", server.base);
        async move {
            let req = SyncRequest { version, ..request(vec![]) };
            let r = https.post(url).bearer_auth(token).body(req.encode()).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap().to_vec()
        }
    };
    // This release: the summary of what the server read, at the pulled heads.
    let resp = SyncResponse::decode(&pull(partner, PROTOCOL_VERSION).await).unwrap();
    let pulled = resp.pull.iter().find(|p| p.doc == id.to_bytes()).expect("the request is pulled");
    let view = loket_shared::request::read(&doc).unwrap();
    let derived = loket_shared::workflow::fold(&view.events).unwrap();
    assert_eq!(resp.summaries, vec![Summary::of(&view, &derived)]);
    let mut heads = loket_shared::chunks::document_heads(&pulled.changes).expect("one whole document");
    heads.sort();
    assert_eq!(heads, pulled.heads, "the summary's heads are the bytes' own");

    // The release before: framed in 2 and read with the types it has.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)] // read as a kiosk of 2 reads it
    struct ResponseOf2 {
        version: u16,
        acks: Vec<PushAck>,
        pull: Vec<PullDoc>,
        pull_next: u64,
        more: bool,
        rewind_acked: Option<u64>,
    }
    let framed = pull(old_kiosk, PROTOCOL_VERSION_OLDEST).await;
    assert_eq!(&framed[..6], b"LKT1\x00\x02");
    let raw = zstd::bulk::decompress(&framed[6..], loket_shared::sync::DECODED_BYTES_MAX).unwrap();
    let old: ResponseOf2 = postcard::from_bytes(&raw).expect("the shape of protocol 2");
    assert_eq!(old.version, 2);
    let old_pulled = old.pull.iter().find(|p| p.doc == id.to_bytes()).expect("the request is pulled");
    assert_eq!((&old_pulled.changes, &old_pulled.heads), (&pulled.changes, &pulled.heads));
    let whole: SyncResponse = postcard::from_bytes(&raw).unwrap();
    assert!(whole.summaries.is_empty(), "no summaries in protocol 2");
    assert_eq!(stored_requests(&https, &server, &admin).await, 1);
}

async fn sync_raw(https: &reqwest::Client, server: &ServerProcess, token: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = https
        .post(format!("{}/api/sync", server.base))
        .bearer_auth(token)
        .header("content-type", "application/x-loket-sync")
        .body(body)
        .send()
        .await
        .expect("sync");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_changes_are_refused_and_nothing_is_stored() {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ObjType, ROOT, ReadDoc};
    use loket_shared::request::append_event;
    use loket_shared::workflow::EventKind;

    // `_dir` keeps the directory for the whole test.
    let Fixture { dir: _dir, server, https, admin, token, kiosk_code, .. } = fixture("sync-forged").await;
    let actor = ACTOR;
    let node = hex::encode(actor);
    // Another kiosk, in another kelurahan: its actor is registered, not ours.
    let (_, _) = enroll(&https, &server, "12.71.01.1002", &hex::encode([8u8; 16])).await;

    let sync = |body: Vec<u8>| {
        let https = https.clone();
        let url = format!("{}/api/sync", server.base);
        let token = token.clone();
        async move {
            let r = https.post(url).bearer_auth(token).body(body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (id, mut doc) = new_doc(KEL, &kiosk_code, actor);
    let (status, v) = sync(request(vec![push_all(id, &mut doc)]).encode()).await;
    assert_eq!(status, 200, "{v}");
    let base = doc.get_heads();
    let stored_heads = admin_heads(&https, &server, &admin, id).await;

    let staff = "198001012006041001";
    let mut with = |actor: [u8; 16], edit: &dyn Fn(&mut automerge::AutoCommit)| {
        let mut d = doc.fork().with_actor(ActorId::from(actor));
        edit(&mut d);
        d.commit();
        push_after(id, &mut d, &base)
    };
    let cases: Vec<(&str, PushDoc)> = vec![
        (
            "a change by an unregistered actor",
            with([9; 16], &|d| append_event(d, &event("x1", "e1", &node, staff, EventKind::Transition)).unwrap()),
        ),
        (
            "a change by another kiosk's actor",
            with([8; 16], &|d| append_event(d, &event("x2", "e1", &node, staff, EventKind::Transition)).unwrap()),
        ),
        (
            "the applicant's name edited",
            with(actor, &|d| {
                let (_, applicant) = d.get(ROOT, "applicant").unwrap().unwrap();
                d.put(&applicant, "name", "Mallory").unwrap();
            }),
        ),
        ("the service changed", with(actor, &|d| d.put(ROOT, "service", "SKTM").unwrap())),
        ("the receipt's rating code replaced", with(actor, &|d| d.put(ROOT, "rating_key", "00".repeat(32)).unwrap())),
        (
            "an event claiming to be an admin's",
            with(actor, &|d| append_event(d, &event("x3", "e1", &node, "admin:ani", EventKind::Transition)).unwrap()),
        ),
        (
            "a resolve, which only admins write",
            with(actor, &|d| append_event(d, &event("x4", "e1", &node, staff, EventKind::Resolve)).unwrap()),
        ),
        (
            "a take for an agency, which only that agency writes",
            with(actor, &|d| {
                let mut e = event("x7", "e1", &node, staff, EventKind::Transition);
                e.agency = Some("DISDUKCAPIL".into());
                append_event(d, &e).unwrap()
            }),
        ),
        (
            "a central event with a made-up seal",
            with(actor, &|d| {
                let mut e = event("x5", "e1", "ab".repeat(16).as_str(), "admin:ani", EventKind::Transition);
                e.seal = Some("00".repeat(32));
                append_event(d, &e).unwrap()
            }),
        ),
        (
            "an event of another kiosk's node",
            with(actor, &|d| {
                append_event(d, &event("x6", "e1", &hex::encode([8u8; 16]), staff, EventKind::Transition)).unwrap()
            }),
        ),
        (
            "the create event removed",
            with(actor, &|d| {
                let (_, events) = d.get(ROOT, "events").unwrap().unwrap();
                d.delete(&events, 0).unwrap();
            }),
        ),
        (
            "a new field smuggled into an old event",
            with(actor, &|d| {
                let (_, events) = d.get(ROOT, "events").unwrap().unwrap();
                let (_, first) = d.get(&events, 0).unwrap().unwrap();
                d.put(&first, "agency", "disdukcapil").unwrap();
            }),
        ),
        ("a new request filed as another kiosk", {
            let (id2, mut d) = new_doc(KEL, "K999", actor);
            push_all(id2, &mut d)
        }),
        (
            "a rating list replaced by a map",
            with(actor, &|d| {
                d.put_object(ROOT, "ratings", ObjType::Map).unwrap();
            }),
        ),
    ];
    for (name, push) in cases {
        let (status, v) = sync(request(vec![push]).encode()).await;
        let code = v["error"]["code"].as_str().unwrap_or_default().to_owned();
        assert!(status == 403 || status == 422, "{name}: {status} {v}");
        assert!(
            matches!(code.as_str(), "forbidden_change" | "invalid_document" | "invalid_structure" | "unknown_staff"),
            "{name}: {v}"
        );
        assert_eq!(admin_heads(&https, &server, &admin, id).await, stored_heads, "{name}: the document moved");
        assert_eq!(stored_requests(&https, &server, &admin).await, 1, "{name}: something was stored");
    }

    // The kiosk's own, honest step still goes through.
    let honest = with(actor, &|d| append_event(d, &event("ok1", "e1", &node, staff, EventKind::Transition)).unwrap());
    let (status, v) = sync(request(vec![honest]).encode()).await;
    assert_eq!(status, 200, "{v}");
    assert_ne!(admin_heads(&https, &server, &admin, id).await, stored_heads);
}

// ---------------------------------------------------------------- issue 12

async fn sync_as(https: &reqwest::Client, server: &ServerProcess, token: &str, req: &SyncRequest) -> (u16, Value) {
    let r = https
        .post(format!("{}/api/sync", server.base))
        .bearer_auth(token)
        .header("content-type", "application/x-loket-sync")
        .body(req.encode())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The server's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

/// Issue 12, item 1: Automerge bytes whose compressed parts or run-length
/// columns decode to gigabytes are refused before Automerge inflates them
/// (`changes_too_large`, naming the document), whichever way they come (a
/// compressed change, a document's DEFLATE column, a run-length column, a
/// fallback sync message); the server stays small and serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_bombs_are_refused_before_they_inflate() {
    // `_dir` keeps the directory for the whole test.
    let Fixture { dir: _dir, server, https, admin, token, kiosk_code, .. } = fixture("sync-bombs").await;
    let actor = ACTOR;

    let doc = loket_shared::DocId::new_v7(1_764_300_000_000, rand::random());
    let push = |changes: Vec<u8>, fallback: Option<Vec<u8>>| PushDoc {
        doc: doc.to_bytes(),
        doc_type: DocType::Request,
        base: vec![],
        changes,
        heads: vec![],
        fallback,
    };
    // Each would inflate to a gigabyte (or allocate for four billion
    // probes); all of them weigh under 2 MB.
    let cases: Vec<(&str, PushDoc)> = loket_shared::chunks::bombs::all(1024)
        .into_iter()
        .map(|b| (b.name, if b.sync_message { push(Vec::new(), Some(b.bytes)) } else { push(b.bytes, None) }))
        .collect();
    for (name, p) in cases {
        let (status, v) = sync_as(&https, &server, &token, &request(vec![p])).await;
        assert_eq!((status, v["error"]["code"].as_str()), (413, Some("changes_too_large")), "{name}: {v}");
        assert_eq!(v["error"]["doc"], doc.to_string(), "{name}: the refusal names the document");
        assert_eq!(stored_requests(&https, &server, &admin).await, 0, "{name}: something was stored");
    }
    let peak = peak_rss_mib(server.pid());
    eprintln!("server peak memory after the bombs: {peak} MiB");
    assert!(peak < 200, "the server's peak memory reached {peak} MiB");
    // Still serving: an honest document goes through.
    let (status, v) = sync_as(&https, &server, &token, &request(vec![request_doc(KEL, &kiosk_code, actor)])).await;
    assert_eq!(status, 200, "{v}");
}

/// Issue 12, item 3: bytes that only a lenient load accepts are never
/// stored, and a stored document that does not read back (a damaged
/// disk, an older release) is refused by id while everything else works:
/// its page, the other requests, a partner kiosk's pull, `reproject`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_document_is_refused_by_id_and_nothing_else_stops() {
    // `_dir` keeps the directory for the whole test.
    let Fixture { dir: _dir, data, server, https, admin, token, kiosk_code } = fixture("sync-unreadable").await;
    let actor = ACTOR;
    let (partner, _) = enroll(&https, &server, KEL, &hex::encode([6u8; 16])).await;

    // Trailing junk after a valid document: Automerge's lenient load skips
    // it, a strict one (every later reader) fails.
    let (id, mut doc) = new_doc(KEL, &kiosk_code, actor);
    let mut junk = push_all(id, &mut doc);
    junk.changes.extend_from_slice(&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 40, 1, 2, 3]);
    let (status, v) = sync_as(&https, &server, &token, &request(vec![junk])).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_changes")), "{v}");
    assert_eq!(stored_requests(&https, &server, &admin).await, 0);

    // Two good documents; then one is damaged on disk.
    let (bad, mut bad_doc) = new_doc(KEL, &kiosk_code, actor);
    let (good, mut good_doc) = new_doc(KEL, &kiosk_code, actor);
    let req = request(vec![push_all(bad, &mut bad_doc), push_all(good, &mut good_doc)]);
    assert_eq!(sync_as(&https, &server, &token, &req).await.0, 200);
    let db = rusqlite::Connection::open(data.join("server.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let damaged = loket_tests::damage_stored_doc(&db, &bad.to_string()).unwrap();
    assert_eq!(damaged, 1);
    drop(db);

    let r = https.get(format!("{}/api/admin/requests/{bad}", server.base)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unreadable_document", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(&bad.to_string()), "names the document: {v}");
    let v = server.get_json(&https, &admin, &format!("/api/admin/requests/{good}")).await.unwrap();
    assert_eq!(v["id"], good.to_string());

    // The kiosk pushing a step to the damaged document is told which one,
    // so it sets that one aside and syncs the rest.
    let base = bad_doc.get_heads();
    let mut step = bad_doc.fork();
    loket_shared::request::append_event(
        &mut step,
        &event("s1", "e1", &hex::encode(actor), "198001012006041001", loket_shared::workflow::EventKind::Transition),
    )
    .unwrap();
    step.commit();
    let (status, v) = sync_as(&https, &server, &token, &request(vec![push_after(bad, &mut step, &base)])).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("unreadable_document")), "{v}");
    assert_eq!(v["error"]["doc"], bad.to_string());

    // A partner kiosk of the office that has none of it still pulls the rest.
    let (status, v) = sync_as(&https, &server, &partner, &request(vec![])).await;
    assert_eq!(status, 200, "{v}");

    // `reproject` skips it and says so.
    let out = std::process::Command::new(loket_tests::server::server_bin())
        .args(["reproject", "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "reproject failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1 unreadable skipped"), "{stdout}");
}

/// An event id a forger filled with a NIK: no answer or log may repeat it.
const FORGED_ID: &str = "1271010101900003";

/// A kiosk pushing forged steps, and the admin watching the stored heads.
struct Attacker<'a> {
    https: &'a reqwest::Client,
    server: &'a ServerProcess,
    token: &'a str,
    admin: &'a str,
}

type Edit<'a> = Box<dyn Fn(&mut automerge::AutoCommit) + 'a>;

impl Attacker<'_> {
    /// Tries `edit` on top of what the server holds; it must be refused
    /// with `want` and leave the stored document as it was.
    async fn refused(
        &self,
        name: &str,
        id: loket_shared::DocId,
        doc: &automerge::AutoCommit,
        edit: &dyn Fn(&mut automerge::AutoCommit),
        want: (u16, &str),
    ) {
        let before = admin_heads(self.https, self.server, self.admin, id).await;
        let mut d = doc.clone();
        let base = d.get_heads();
        edit(&mut d);
        d.commit();
        let (status, v) =
            sync_as(self.https, self.server, self.token, &request(vec![push_after(id, &mut d, &base)])).await;
        assert_eq!((status, v["error"]["code"].as_str().unwrap_or_default()), want, "{name}: {v}");
        assert_eq!(v["error"]["doc"], id.to_string(), "{name}: names the document");
        assert!(!v.to_string().contains(FORGED_ID), "{name}: echoes what the kiosk wrote: {v}");
        assert_eq!(admin_heads(self.https, self.server, self.admin, id).await, before, "{name}: the document moved");
    }
}

/// A request of `service` with its create event and a first step by
/// `staff` (in progress), as a kiosk writes them.
fn started_doc(
    service: &str,
    kiosk: &str,
    actor: [u8; 16],
    staff: &str,
) -> (loket_shared::DocId, automerge::AutoCommit) {
    let (id, mut doc) = new_doc_of(service, KEL, kiosk, actor);
    let mut e = event("s1", "e1", &hex::encode(actor), staff, loket_shared::workflow::EventKind::Transition);
    e.hlc.wall_ms += 1;
    loket_shared::request::append_event(&mut doc, &e).unwrap();
    doc.commit();
    (id, doc)
}

/// Applies what the server sends this kiosk for `id` to `doc`.
async fn pull_into(
    https: &reqwest::Client,
    server: &ServerProcess,
    token: &str,
    id: loket_shared::DocId,
    doc: &mut automerge::AutoCommit,
) {
    let r = https
        .post(format!("{}/api/sync", server.base))
        .bearer_auth(token)
        .body(request(vec![]).encode())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let resp = loket_shared::sync::SyncResponse::decode(&r.bytes().await.unwrap()).unwrap();
    let pulled = resp.pull.iter().find(|p| p.doc == id.to_bytes()).expect("the request is pulled");
    doc.load_incremental(&pulled.changes).unwrap();
    assert!(doc.get_missing_deps(&[]).is_empty());
}

/// Issue 12, items 4 and 5: a compromised kiosk cannot hide a partner's
/// data behind a look-alike object, add keys the layout lacks, or write a
/// step the workflow does not allow from what it saw: every new kiosk
/// event is folded from its parents and checked with the same rule book
/// the kiosk uses; hand-offs go to agencies that take the service; `by`
/// is on the roster; strings are bounded. Each refusal has its code and
/// leaves the stored document where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_enforces_structure_and_workflow_on_kiosk_events() {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    use loket_shared::request::append_event;
    use loket_shared::workflow::{Event, EventKind};
    use loket_shared::{Hlc, Status};

    let Fixture { dir, data, server, https, admin, token, kiosk_code } = fixture("sync-workflow").await;
    let actor = ACTOR;
    let node = hex::encode(actor);
    let staff = "198503122010011002";
    server.put_staff(&https, &admin, KEL, staff, "petugas-rahasia-1").await.unwrap();
    // A Disdukcapil agency user.
    let pw = dir.path().join("agency.pw");
    std::fs::write(&pw, "dukcapil-rahasia-1\n").unwrap();
    let out = std::process::Command::new(loket_tests::server::server_bin())
        .args(["add-user", "--data"])
        .arg(&data)
        .args(["--username", "dukcapil", "--role", "agency", "--agency", "DISDUKCAPIL", "--password-file"])
        .arg(&pw)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let agency: String = https
        .post(format!("{}/api/login", server.base))
        .json(&json!({ "username": "dukcapil", "password": "dukcapil-rahasia-1" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let agency_step = |id: loket_shared::DocId, body: Value| {
        let https = https.clone();
        let url = format!("{}/api/admin/requests/{id}/events", server.base);
        let agency = agency.clone();
        async move {
            let r = https.post(url).bearer_auth(agency).json(&body).send().await.unwrap();
            assert!(r.status().is_success(), "agency step: {}", r.text().await.unwrap());
        }
    };

    // A family-card referral (PKK: Disdukcapil takes it), in progress.
    let (id, mut doc) = started_doc("PKK", &kiosk_code, actor, staff);
    let (status, v) = sync_as(&https, &server, &token, &request(vec![push_all(id, &mut doc)])).await;
    assert_eq!(status, 200, "{v}");

    let step = |id_: &str, from: Status, to: Status, parents: Vec<String>, wall: u64| Event {
        id: id_.into(),
        hlc: Hlc { wall_ms: wall, counter: 0 },
        node: node.clone(),
        at_ms: wall as i64,
        by: staff.into(),
        kind: EventKind::Transition,
        from: Some(from),
        to,
        note: None,
        agency: None,
        waiting: Vec::new(),
        result_ref: None,
        parents,
        seal: None,
    };
    let t = 1_764_300_200_000;
    let s1 = vec!["s1".to_string()];
    let attacker = Attacker { https: &https, server: &server, token: &token, admin: &admin };
    let cases: Vec<(&str, Edit<'_>, (u16, &str))> = vec![
        (
            "the events list replaced by a look-alike",
            Box::new(|d| {
                let view = loket_shared::request::read(d).unwrap();
                d.put_object(ROOT, "events", ObjType::List).unwrap();
                for e in &view.events {
                    append_event(d, e).unwrap();
                }
            }),
            (422, "invalid_structure"),
        ),
        (
            "a key the layout does not have",
            Box::new(|d| d.put(ROOT, "status", "completed").unwrap()),
            (422, "invalid_structure"),
        ),
        (
            "handed to an agency that does not take the service",
            Box::new(|d| {
                let mut e = step("x1", Status::InProgress, Status::HandedOff, s1.clone(), t);
                e.agency = Some("DINKES".into());
                append_event(d, &e).unwrap()
            }),
            (403, "unknown_agency"),
        ),
        (
            "an agency name that is a spreadsheet formula",
            Box::new(|d| {
                let mut e = step("x2", Status::InProgress, Status::HandedOff, s1.clone(), t);
                e.agency = Some("=HYPERLINK(\"http://evil.example\")".into());
                append_event(d, &e).unwrap()
            }),
            (422, "invalid_structure"),
        ),
        (
            "a step by someone on no roster",
            Box::new(|d| {
                // An id that is a NIK: refusals name events by place.
                let mut e = step(FORGED_ID, Status::InProgress, Status::Completed, s1.clone(), t);
                e.by = "198001012006041001".into();
                append_event(d, &e).unwrap()
            }),
            (403, "unknown_staff"),
        ),
        (
            "a step that lies about what it saw",
            Box::new(|d| append_event(d, &step("x4", Status::Submitted, Status::Completed, s1.clone(), t)).unwrap()),
            (403, "forbidden_transition"),
        ),
        (
            "a step the workflow does not allow",
            Box::new(|d| append_event(d, &step("x5", Status::InProgress, Status::Submitted, s1.clone(), t)).unwrap()),
            (403, "forbidden_transition"),
        ),
        (
            "a step naming a parent that does not exist",
            Box::new(|d| {
                append_event(d, &step("x6", Status::InProgress, Status::Completed, vec!["nope".into()], t)).unwrap()
            }),
            (422, "invalid_structure"),
        ),
        (
            "a second create event",
            Box::new(|d| {
                let mut e = step("x7", Status::InProgress, Status::Submitted, vec![], t);
                e.kind = EventKind::Create;
                e.from = None;
                e.by = "citizen".into();
                append_event(d, &e).unwrap()
            }),
            (403, "forbidden_transition"),
        ),
        (
            // Issue 14: the survey follows a finished request.
            "a rating of a request still in progress",
            Box::new(|d| {
                let rating = loket_shared::request::Rating {
                    id: "r-early".into(),
                    hlc: Hlc { wall_ms: t, counter: 0 },
                    node: node.clone(),
                    at_ms: t as i64,
                    scores: loket_shared::skm::Scores::new([4; 9]).unwrap(),
                    comment: None,
                    profile: Default::default(),
                };
                loket_shared::request::append_rating(d, &rating).unwrap()
            }),
            (403, "not_finished"),
        ),
        (
            "a note with control characters",
            Box::new(|d| {
                let mut e = step("x8", Status::InProgress, Status::Completed, s1.clone(), t);
                e.note = Some("ok\u{7}\u{1b}[2J".into());
                append_event(d, &e).unwrap()
            }),
            (422, "invalid_structure"),
        ),
    ];
    for (name, edit, want) in &cases {
        attacker.refused(name, id, &doc, edit.as_ref(), *want).await;
    }

    // Honest: handed to Disdukcapil, which takes it.
    let base = doc.get_heads();
    let mut handoff = step("h1", Status::InProgress, Status::HandedOff, s1.clone(), t);
    handoff.agency = Some("DISDUKCAPIL".into());
    append_event(&mut doc, &handoff).unwrap();
    doc.commit();
    let (status, v) = sync_as(&https, &server, &token, &request(vec![push_after(id, &mut doc, &base)])).await;
    assert_eq!(status, 200, "{v}");
    agency_step(id, json!({ "to": "in_progress", "agency": "DISDUKCAPIL" })).await;
    pull_into(&https, &server, &token, id, &mut doc).await;
    let take = loket_shared::workflow::fold(&loket_shared::request::read(&doc).unwrap().events).unwrap();
    assert!(take.taken_by_agency());
    let frontier = take.frontier.clone();
    attacker
        .refused(
            "completing a request the agency holds",
            id,
            &doc,
            &|d| {
                append_event(d, &step("y1", Status::InProgress, Status::Completed, frontier.clone(), t + 10_000))
                    .unwrap()
            },
            (403, "held_by_agency"),
        )
        .await;

    // The agency completes; the kiosk may not turn that into a rejection.
    agency_step(id, json!({ "to": "completed" })).await;
    pull_into(&https, &server, &token, id, &mut doc).await;
    let done = loket_shared::workflow::fold(&loket_shared::request::read(&doc).unwrap().events).unwrap();
    assert_eq!(done.status, Status::Completed);
    let frontier = done.frontier.clone();
    attacker
        .refused(
            "a sealed completion turned into a rejection",
            id,
            &doc,
            &|d| {
                append_event(d, &step("y2", Status::Completed, Status::Rejected, frontier.clone(), t + 20_000)).unwrap()
            },
            (403, "forbidden_transition"),
        )
        .await;
    let v = server.get_json(&https, &admin, &format!("/api/admin/requests/{id}")).await.unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["conflict"], false);

    // Issue 14, item 7: a rating's respondent profile holds the four
    // questions with their codes only, and a stored one never changes.
    pull_into(&https, &server, &token, id, &mut doc).await;
    let wall = t + 30_000;
    let cases: Vec<(&str, Edit<'_>, (u16, &str))> = vec![
        (
            "a profile answer no question has",
            Box::new(|d| rating_with_profile(d, &node, wall, &|d, p| d.put(p, "sex", "x").unwrap())),
            (422, "invalid_document"),
        ),
        (
            "a profile question the survey does not ask",
            Box::new(|d| rating_with_profile(d, &node, wall, &|d, p| d.put(p, "nik", FORGED_ID).unwrap())),
            (422, "invalid_document"),
        ),
        (
            "a profile answer that is a map",
            Box::new(|d| {
                rating_with_profile(d, &node, wall, &|d, p| drop(d.put_object(p, "age", ObjType::Map).unwrap()))
            }),
            (422, "invalid_document"),
        ),
        (
            "two concurrent answers to one profile question",
            Box::new(|d| {
                rating_with_profile(d, &node, wall, &|_, _| {});
                d.commit();
                let mut other = d.fork();
                let (_, ratings) = other.get(ROOT, "ratings").unwrap().unwrap();
                let last = other.length(&ratings) - 1;
                let (_, r) = other.get(&ratings, last).unwrap().unwrap();
                let (_, p) = other.get(&r, "profile").unwrap().unwrap();
                other.put(&p, "sex", "l").unwrap();
                d.put(&p, "sex", "p").unwrap();
                d.commit();
                other.commit();
                d.merge(&mut other).unwrap();
            }),
            (422, "invalid_structure"),
        ),
    ];
    for (name, edit, want) in &cases {
        attacker.refused(name, id, &doc, edit.as_ref(), *want).await;
    }
    // Honest: part of the profile answered.
    let base = doc.get_heads();
    rating_with_profile(&mut doc, &node, wall, &|d, p| {
        d.put(p, "sex", "p").unwrap();
        d.put(p, "age", "31-40").unwrap();
    });
    doc.commit();
    let (status, v) = sync_as(&https, &server, &token, &request(vec![push_after(id, &mut doc, &base)])).await;
    assert_eq!(status, 200, "{v}");
    attacker
        .refused(
            "the stored rating's profile changed",
            id,
            &doc,
            &|d| {
                let (_, ratings) = d.get(ROOT, "ratings").unwrap().unwrap();
                let (_, r) = d.get(&ratings, 0).unwrap().unwrap();
                let (_, p) = d.get(&r, "profile").unwrap().unwrap();
                d.put(&p, "sex", "l").unwrap();
            },
            (403, "forbidden_change"),
        )
        .await;
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert!(!log.contains(FORGED_ID), "the server's log repeats what a kiosk wrote");
}

/// Appends this kiosk's rating (all 4) whose `profile` map `forge` fills,
/// as a forger writes it.
fn rating_with_profile(
    d: &mut automerge::AutoCommit,
    node: &str,
    wall: u64,
    forge: &dyn Fn(&mut automerge::AutoCommit, &automerge::ObjId),
) {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    let rating = loket_shared::request::Rating {
        id: "r-profile".into(),
        hlc: loket_shared::Hlc { wall_ms: wall, counter: 0 },
        node: node.into(),
        at_ms: wall as i64,
        scores: loket_shared::skm::Scores::new([4; 9]).unwrap(),
        comment: None,
        profile: Default::default(),
    };
    loket_shared::request::append_rating(d, &rating).unwrap();
    let (_, ratings) = d.get(ROOT, "ratings").unwrap().unwrap();
    let last = d.length(&ratings) - 1;
    let (_, r) = d.get(&ratings, last).unwrap().unwrap();
    let profile = d.put_object(&r, "profile", ObjType::Map).unwrap();
    forge(d, &profile);
}

// ---------------------------------------------------------------- issue 16

/// A complaint filed at a kiosk of `kelurahan` as `kiosk`, as the kiosk
/// writes it: the document and its `file` step.
fn new_complaint(kelurahan: &str, kiosk: &str, actor: [u8; 16]) -> (loket_shared::DocId, automerge::AutoCommit) {
    use loket_shared::complaint::{About, Complainant, NewComplaint, Step, StepKind, create};
    use loket_shared::{ComplaintTicket, DocId, Hlc};
    let id = DocId::new_v7(1_764_300_000_000, rand::random());
    let hlc = Hlc { wall_ms: 1_764_300_000_000, counter: 0 };
    let mut doc = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(actor));
    let new = NewComplaint {
        id,
        ticket: ComplaintTicket::new(&kiosk.parse().unwrap(), 11, 28, 7),
        kelurahan: kelurahan.parse().unwrap(),
        kiosk: kiosk.parse().unwrap(),
        created_at_ms: 1_764_300_000_000,
        hlc,
        about: About::Staff("198001012006041001".parse().unwrap()),
        complainant: Some(Complainant {
            name: "Budi".parse().unwrap(),
            nik: Some(nik(1).parse().unwrap()),
            phone: None,
        }),
        text: "Petugas meminta uang.".into(),
        file_step: Step {
            id: "f1".into(),
            hlc,
            node: hex::encode(actor),
            at_ms: 1_764_300_000_000,
            by: "citizen".into(),
            kind: StepKind::File,
            class: None,
            unit: None,
            days: None,
            lapor: None,
            text: None,
            parents: vec![],
            seal: None,
        },
    };
    create(&mut doc, &new).unwrap();
    (id, doc)
}

/// A central-looking step a kiosk writes itself, on top of `parent`.
fn complaint_step(
    id: &str,
    parent: &str,
    node: &str,
    kind: loket_shared::complaint::StepKind,
) -> loket_shared::complaint::Step {
    use loket_shared::complaint::{Class, StepKind};
    let register = kind == StepKind::Register;
    loket_shared::complaint::Step {
        id: id.into(),
        hlc: loket_shared::Hlc { wall_ms: 1_764_300_100_000, counter: 0 },
        node: node.into(),
        at_ms: 1_764_300_100_000,
        by: "admin:ani".into(),
        kind,
        class: register.then_some(Class::Ringan),
        unit: register.then(|| format!("kelurahan:{KEL}").parse().unwrap()),
        days: None,
        lapor: None,
        text: (!register).then(|| "Sudah selesai.".into()),
        parents: vec![parent.into()],
        seal: None,
    }
}

fn as_complaint(mut push: PushDoc) -> PushDoc {
    push.doc_type = DocType::Complaint;
    push
}

async fn complaint_count(https: &reqwest::Client, server: &ServerProcess, admin: &str) -> usize {
    let v = server.get_json(https, admin, "/api/admin/complaints?limit=1000").await.unwrap();
    v["items"].as_array().unwrap().len()
}

/// Issue 16: a kiosk files complaints, its own, in its own kelurahan, and
/// writes nothing after that: every later step is the centre's. A kiosk
/// that writes a register, answer or close itself, edits what was filed,
/// files as another kiosk or for another kelurahan is refused with a
/// stable code and nothing of the push is stored; the honest complaint
/// and the centre's steps reach every kiosk of its kelurahan and no
/// other kelurahan's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosks_only_file_complaints_and_only_their_kelurahan_pulls_them() {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ROOT, ReadDoc};
    use loket_shared::complaint::{StepKind, append_step};

    let Fixture { dir: _dir, server, https, admin, token, kiosk_code, .. } = fixture("sync-complaints").await;
    let node = hex::encode(ACTOR);
    let (other_token, other_code) = enroll(&https, &server, "12.71.01.1002", &hex::encode([8u8; 16])).await;
    let (partner_token, _) = enroll(&https, &server, KEL, &hex::encode([6u8; 16])).await;

    let (id, mut doc) = new_complaint(KEL, &kiosk_code, ACTOR);
    let (status, v) = sync_as(&https, &server, &token, &request(vec![as_complaint(push_all(id, &mut doc))])).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(complaint_count(&https, &server, &admin).await, 1);
    let detail = format!("/api/admin/complaints/{id}");
    let heads = server.get_json(&https, &admin, &detail).await.unwrap()["heads"].clone();
    let base = doc.get_heads();

    let mut with = |actor: [u8; 16], edit: &dyn Fn(&mut automerge::AutoCommit)| {
        let mut d = doc.fork().with_actor(ActorId::from(actor));
        edit(&mut d);
        d.commit();
        as_complaint(push_after(id, &mut d, &base))
    };
    let server_like = "ab".repeat(16);
    let cases: Vec<(&str, PushDoc, &str)> = vec![
        (
            "a register the kiosk wrote",
            with(ACTOR, &|d| append_step(d, &complaint_step("x1", "f1", &node, StepKind::Register)).unwrap()),
            "forbidden_change",
        ),
        (
            "an answer the kiosk wrote",
            with(ACTOR, &|d| append_step(d, &complaint_step("x2", "f1", &node, StepKind::Answer)).unwrap()),
            "forbidden_change",
        ),
        (
            "a close the kiosk wrote",
            with(ACTOR, &|d| append_step(d, &complaint_step("x3", "f1", &node, StepKind::Close)).unwrap()),
            "forbidden_change",
        ),
        (
            "an answer with a made-up seal and a server-looking node",
            with(ACTOR, &|d| {
                let mut s = complaint_step("x4", "f1", &server_like, StepKind::Answer);
                s.seal = Some("00".repeat(32));
                append_step(d, &s).unwrap()
            }),
            "forbidden_change",
        ),
        (
            "a second file step",
            with(ACTOR, &|d| {
                let mut s = complaint_step("x5", "f1", &node, StepKind::File);
                s.by = "citizen".into();
                s.parents.clear();
                s.text = None;
                append_step(d, &s).unwrap()
            }),
            "forbidden_change",
        ),
        (
            "the filed text edited",
            with(ACTOR, &|d| d.put(ROOT, "text", "Tidak ada masalah.").unwrap()),
            "forbidden_change",
        ),
        (
            "the complainant's name edited",
            with(ACTOR, &|d| {
                let (_, c) = d.get(ROOT, "complainant").unwrap().unwrap();
                d.put(&c, "name", "Mallory").unwrap();
            }),
            "forbidden_change",
        ),
        (
            "the complaint moved to another kiosk",
            with(ACTOR, &|d| d.put(ROOT, "kiosk", "K999").unwrap()),
            "forbidden_change",
        ),
        (
            "the steps list replaced",
            with(ACTOR, &|d| {
                d.put_object(ROOT, "steps", automerge::ObjType::List).unwrap();
            }),
            "invalid_document",
        ),
        (
            "an answer by an unregistered actor",
            with([9; 16], &|d| append_step(d, &complaint_step("x6", "f1", &node, StepKind::Answer)).unwrap()),
            "forbidden_change",
        ),
        (
            "a new complaint claiming another kiosk",
            {
                let (id2, mut d) = new_complaint(KEL, "K999", ACTOR);
                as_complaint(push_all(id2, &mut d))
            },
            "forbidden_change",
        ),
        (
            "a new complaint filed with its answer",
            {
                let (id2, mut d) = new_complaint(KEL, &kiosk_code, ACTOR);
                append_step(&mut d, &complaint_step("x7", "f1", &node, StepKind::Answer)).unwrap();
                d.commit();
                as_complaint(push_all(id2, &mut d))
            },
            "forbidden_change",
        ),
        (
            "a new complaint of another kelurahan",
            {
                let (id2, mut d) = new_complaint("12.71.01.1002", &kiosk_code, ACTOR);
                as_complaint(push_all(id2, &mut d))
            },
            "forbidden_document",
        ),
        (
            "a request pushed as a complaint",
            {
                let (id2, mut d) = new_doc(KEL, &kiosk_code, ACTOR);
                as_complaint(push_all(id2, &mut d))
            },
            "invalid_document",
        ),
    ];
    for (name, push, want) in cases {
        let (status, v) = sync_as(&https, &server, &token, &request(vec![push])).await;
        let code = v["error"]["code"].as_str().unwrap_or_default();
        assert!(code == want || (want == "invalid_document" && code == "invalid_structure"), "{name}: {status} {v}");
        assert!(status == 403 || status == 422, "{name}: {status} {v}");
        assert_eq!(complaint_count(&https, &server, &admin).await, 1, "{name}: something was stored");
        assert_eq!(
            server.get_json(&https, &admin, &detail).await.unwrap()["heads"],
            heads,
            "{name}: the complaint moved"
        );
    }
    // The kelurahan B kiosk cannot push A's complaint either.
    let (status, v) =
        sync_as(&https, &server, &other_token, &request(vec![as_complaint(push_all(id, &mut doc))])).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("forbidden_document")), "{v}");
    // A complaint document pushed as a request is not a request.
    let (status, v) = sync_as(&https, &server, &token, &request(vec![push_all(id, &mut doc)])).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("forbidden_document")), "{v}");

    // The centre registers and answers; the steps travel to both kiosks
    // of the kelurahan, never to the other kelurahan's.
    for body in [
        json!({ "kind": "register", "class": "ringan", "unit": format!("kelurahan:{KEL}") }),
        json!({ "kind": "answer", "text": "Petugas sudah ditegur." }),
    ] {
        let r =
            https.post(format!("{}{detail}/steps", server.base)).bearer_auth(&admin).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let pulled = |t: String| {
        let (https, base) = (https.clone(), server.base.clone());
        async move {
            let r = https
                .post(format!("{base}/api/sync"))
                .bearer_auth(t)
                .body(request(vec![]).encode())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            loket_shared::sync::SyncResponse::decode(&r.bytes().await.unwrap()).unwrap()
        }
    };
    for t in [&token, &partner_token] {
        let resp = pulled(t.clone()).await;
        let p = resp.pull.iter().find(|p| p.doc == id.to_bytes()).expect("the office's kiosks pull its complaint");
        assert_eq!(p.doc_type, DocType::Complaint);
        let mut mine = doc.fork();
        mine.load_incremental(&p.changes).unwrap();
        let view = loket_shared::complaint::read(&mine).unwrap();
        let derived = loket_shared::complaint::fold(&view.steps).unwrap();
        assert_eq!(derived.state, loket_shared::complaint::State::Answered);
        assert!(view.steps.iter().filter(|s| s.kind != StepKind::File).all(|s| s.seal.is_some()), "sealed");
    }
    let resp = pulled(other_token.clone()).await;
    assert!(resp.pull.iter().all(|p| p.doc != id.to_bytes() && p.doc_type != DocType::Complaint), "{other_code}");

    // The kiosk pushes the merged document back (what it holds after the
    // pull): the server's sealed steps are accepted, nothing changes.
    let resp = pulled(token.clone()).await;
    let p = resp.pull.iter().find(|p| p.doc == id.to_bytes());
    let mut merged = doc.fork();
    if let Some(p) = p {
        merged.load_incremental(&p.changes).unwrap();
    }
    let (status, v) = sync_as(&https, &server, &token, &request(vec![as_complaint(push_all(id, &mut merged))])).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(complaint_count(&https, &server, &admin).await, 1);
}
