//! The API driven through the router, without a socket.

use axum::body::Body;
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
        admin_user: "admin".parse().unwrap(),
        admin_password: ADMIN_PASSWORD.into(),
        hostnames: vec![],
    })
    .unwrap();
    setup::add_user(
        &data,
        NewUser {
            username: "pengawas".parse().unwrap(),
            password: "rahasia-pengawas".into(),
            role: Role::Supervisor,
            agency: None,
            kelurahan: None,
        },
    )
    .unwrap();
    let config = Config { data: data.clone(), ..Config::default() };
    let db = Db::open(&config.db_path()).unwrap();
    let seal = db.write(|tx| crate::seal::SealKey::load_or_create(tx)).unwrap();
    let state = AppState::new(db, config, seal);
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
    let (status, body) = call(&f.app, "GET", "/nope", None, None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
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
    let req = Request::get("/metrics").body(Body::empty()).unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], metrics::CONTENT_TYPE);
    let text = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(text.contains("loket_sync_refusals_total{reason=\"wrong_actor\"} 1"), "{text}");
    assert!(text.contains("loket_kiosks_enrolled 0"), "{text}");
}

/// Files one request on the server as kiosk K07 of 12.71.01.1001 would.
fn push_request(state: &AppState, nik: &str) -> String {
    use loket_shared::request::{Applicant, NewRequest, create};
    use loket_shared::sync::{DocType, PROTOCOL_VERSION, PushDoc, SyncRequest};
    use loket_shared::workflow::{Event, EventKind};
    use loket_shared::{DocId, Hlc, Status, Ticket};
    let actor = [5u8; 16];
    let id = DocId::new_v7(1_764_300_000_000, [1; 10]);
    let hlc = Hlc { wall_ms: 1_764_300_000_000, counter: 0 };
    let mut doc = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(actor));
    let new = NewRequest {
        id,
        ticket: Ticket::new(&"K07".parse().unwrap(), 11, 28, 1),
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
    let heads = doc.get_heads().iter().map(|h| h.0).collect();
    let push = PushDoc {
        doc: id.to_bytes(),
        doc_type: DocType::Request,
        base: vec![],
        changes: doc.save(),
        heads,
        fallback: None,
    };
    let req = SyncRequest {
        version: PROTOCOL_VERSION,
        client: "test".into(),
        push: vec![push],
        pull_after: 0,
        acked: 0,
        through: 0,
        pending: 0,
    };
    let kiosk = crate::auth::KioskAuth {
        id: "k07".into(),
        code: "K07".parse().unwrap(),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        actor: hex::encode(actor),
    };
    crate::sync::exchange(&state.db, &state.seal, &kiosk, &req, 1_764_300_000_000).unwrap();
    id.to_string()
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
    let f = fixture();
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
            &f.state.config.data,
            NewUser {
                username: name.parse().unwrap(),
                password: format!("rahasia-{name}-1"),
                role: Role::Agency,
                agency: Some(agency.into()),
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
    // The admin still sees it, and the agency completes it.
    assert_eq!(call(&f.app, "POST", &events, Some(&mine), Some(done)).await.0, StatusCode::CREATED);
}
