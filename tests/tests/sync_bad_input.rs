//! Bad input to the sync endpoint of a real server: garbage bytes,
//! truncated and oversized batches, an unknown protocol version, changes
//! that are not Automerge, a document of another kelurahan, a catalog
//! written by a kiosk, unknown and revoked credentials. Each gets a clear
//! error with a stable code, nothing is stored, and the server keeps
//! serving (a valid sync works afterwards).

use loket_shared::sync::{DocType, PROTOCOL_VERSION, PushDoc, SyncRequest};
use loket_tests::server::{ServerProcess, free_addr, init_server};
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
        service: "SKD".parse().unwrap(),
        created_at_ms: 1_764_300_000_000,
        hlc,
        applicant: Applicant { name: "Budi".parse().unwrap(), nik: nik(1).parse().unwrap(), phone: None },
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sync_input_is_refused_and_nothing_is_stored() {
    let dir = TestDir::new("sync-bad-input");
    let data = dir.path().join("server");
    init_server(&data).unwrap();
    let server = ServerProcess::start(&data, free_addr()).unwrap();
    let https = server.client();
    let admin = server.admin_token(&https).await.unwrap();
    let actor = [7u8; 16];
    let (token, kiosk_code) = enroll(&https, &server, KEL, &hex::encode(actor)).await;
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
    let m = https.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_changes_are_refused_and_nothing_is_stored() {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ObjType, ROOT, ReadDoc};
    use loket_shared::request::append_event;
    use loket_shared::workflow::EventKind;

    let dir = TestDir::new("sync-forged");
    let data = dir.path().join("server");
    init_server(&data).unwrap();
    let server = ServerProcess::start(&data, free_addr()).unwrap();
    let https = server.client();
    let admin = server.admin_token(&https).await.unwrap();
    let actor = [7u8; 16];
    let node = hex::encode(actor);
    let (token, kiosk_code) = enroll(&https, &server, KEL, &node).await;
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
        assert!(code == "forbidden_change" || code == "invalid_document", "{name}: {v}");
        assert_eq!(admin_heads(&https, &server, &admin, id).await, stored_heads, "{name}: the document moved");
        assert_eq!(stored_requests(&https, &server, &admin).await, 1, "{name}: something was stored");
    }

    // The kiosk's own, honest step still goes through.
    let honest = with(actor, &|d| append_event(d, &event("ok1", "e1", &node, staff, EventKind::Transition)).unwrap());
    let (status, v) = sync(request(vec![honest]).encode()).await;
    assert_eq!(status, 200, "{v}");
    assert_ne!(admin_heads(&https, &server, &admin, id).await, stored_heads);
}
