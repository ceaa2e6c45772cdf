//! Bad input against a real kiosk process: every case gets a 4xx with a
//! stable error code, and stores nothing (the document count and the
//! change sequence do not move). Afterwards the kiosk still serves valid
//! requests.

use loket_tests::{KioskProcess, TestDir, http_client, init_kiosk, staff_login};
use reqwest::Method;
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    body: Body,
    auth: Auth,
    status: u16,
    code: &'static str,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, String),
}

#[derive(Clone, Copy)]
enum Auth {
    None,
    Staff,
    Bogus,
}

fn case(
    name: &'static str,
    method: Method,
    path: impl Into<String>,
    body: Body,
    status: u16,
    code: &'static str,
) -> Case {
    Case { name, method, path: path.into(), body, auth: Auth::None, status, code }
}

fn staff(mut c: Case) -> Case {
    c.auth = Auth::Staff;
    c
}

fn file(service: &str, name: &str, nik: &str) -> Body {
    Body::Json(json!({ "service": service, "applicant": { "name": name, "nik": nik } }))
}

/// A rating body with the receipt's code.
fn scores(v: Value, token: &str) -> Body {
    Body::Json(json!({ "scores": v, "token": token }))
}

async fn counts(client: &reqwest::Client, kiosk: &KioskProcess) -> (u64, u64) {
    let h: Value = client.get(kiosk.url("/healthz")).send().await.unwrap().json().await.unwrap();
    (h["documents"].as_u64().unwrap(), h["pending_changes"].as_u64().unwrap())
}

#[tokio::test]
async fn bad_input_is_refused_with_a_stable_code_and_nothing_is_stored() {
    let dir = TestDir::new("bad-input");
    let data = dir.path().join("kiosk");
    init_kiosk(&data, "K07").unwrap();
    let kiosk = KioskProcess::start(&data).unwrap();
    let client = http_client();
    let token = staff_login(&client, &kiosk.base).await.unwrap();

    // One valid, rated request and one in progress to aim the bad input at.
    let created: Value = client
        .post(kiosk.url("/api/requests"))
        .json(&json!({ "service": "SKD", "applicant": { "name": "Budi Santoso", "nik": "1271010101900003" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let ticket = created["ticket"].as_str().unwrap().to_owned();
    let code = created["rating_token"].as_str().unwrap().to_owned();
    let all4 = json!({"U1":4,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4});
    loket_tests::complete_request(&client, &kiosk.base, &id).await.unwrap();
    let r = client
        .post(kiosk.url(&format!("/api/requests/{id}/rating")))
        .json(&json!({ "scores": all4, "token": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let second: Value = client
        .post(kiosk.url("/api/requests"))
        .json(&json!({ "service": "SKTM", "applicant": { "name": "Siti Aminah", "nik": "1271014101900003" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id2 = second["id"].as_str().unwrap().to_owned();
    let code2 = second["rating_token"].as_str().unwrap().to_owned();
    let wrong2 = if code2.starts_with('Z') { "A000-0000" } else { "Z000-0000" };

    let post = Method::POST;
    let get = Method::GET;
    let json_ct = "application/json";
    let big_name = "A".repeat(20_000);
    let unknown_doc = "01a22073-f2e4-7896-9a15-58d561e82ba6";
    let events = format!("/api/staff/requests/{id}/events");
    let events2 = format!("/api/staff/requests/{id2}/events");
    let rating = format!("/api/requests/{id}/rating");
    let rating2 = format!("/api/requests/{id2}/rating");
    let hostile = "<script>alert('x')</script>";
    let cases = vec![
        // Filing a request.
        case(
            "malformed JSON",
            post.clone(),
            "/api/requests",
            Body::Raw(json_ct, "{\"service\": \"SKD\",".into()),
            400,
            "invalid_json",
        ),
        case(
            "not JSON at all",
            post.clone(),
            "/api/requests",
            Body::Raw(json_ct, "\u{0}\u{1}garbage".into()),
            400,
            "invalid_json",
        ),
        case(
            "wrong content type",
            post.clone(),
            "/api/requests",
            Body::Raw("text/plain", "{}".into()),
            415,
            "unsupported_media_type",
        ),
        case("JSON array", post.clone(), "/api/requests", Body::Json(json!([1, 2])), 422, "invalid_body"),
        case(
            "unknown field",
            post.clone(),
            "/api/requests",
            Body::Json(
                json!({"service":"SKD","applicant":{"name":"Budi","nik":"1271010101900003"},"status":"completed"}),
            ),
            422,
            "invalid_body",
        ),
        case(
            "missing service",
            post.clone(),
            "/api/requests",
            Body::Json(json!({"applicant":{"name":"Budi","nik":"1271010101900003"}})),
            422,
            "missing_field",
        ),
        case(
            "missing applicant",
            post.clone(),
            "/api/requests",
            Body::Json(json!({"service":"SKD"})),
            422,
            "missing_field",
        ),
        case(
            "missing NIK",
            post.clone(),
            "/api/requests",
            Body::Json(json!({"service":"SKD","applicant":{"name":"Budi"}})),
            422,
            "missing_field",
        ),
        case(
            "NIK too short",
            post.clone(),
            "/api/requests",
            file("SKD", "Budi", "127101010190003"),
            422,
            "invalid_nik",
        ),
        case(
            "NIK too long",
            post.clone(),
            "/api/requests",
            file("SKD", "Budi", "12710101019000031"),
            422,
            "invalid_nik",
        ),
        case(
            "NIK with letters",
            post.clone(),
            "/api/requests",
            file("SKD", "Budi", "12710101019000O3"),
            422,
            "invalid_nik",
        ),
        case("NIK day 32", post.clone(), "/api/requests", file("SKD", "Budi", "1271013201900003"), 422, "invalid_nik"),
        case(
            "NIK month 13",
            post.clone(),
            "/api/requests",
            file("SKD", "Budi", "1271010113900003"),
            422,
            "invalid_nik",
        ),
        case(
            "NIK 31 February",
            post.clone(),
            "/api/requests",
            file("SKD", "Budi", "1271013102900003"),
            422,
            "invalid_nik",
        ),
        case(
            "NIK serial 0000",
            post.clone(),
            "/api/requests",
            file("SKD", "Budi", "1271010101900000"),
            422,
            "invalid_nik",
        ),
        case(
            "NIK as a number",
            post.clone(),
            "/api/requests",
            Body::Json(json!({"service":"SKD","applicant":{"name":"Budi","nik":1271010101900003u64}})),
            422,
            "invalid_body",
        ),
        case(
            "unknown service",
            post.clone(),
            "/api/requests",
            file("XYZ", "Budi", "1271010101900003"),
            422,
            "unknown_service",
        ),
        case(
            "service path traversal",
            post.clone(),
            "/api/requests",
            file("../../etc/passwd", "Budi", "1271010101900003"),
            422,
            "unknown_service",
        ),
        case(
            "service SQL injection",
            post.clone(),
            "/api/requests",
            file("SKD'; DROP TABLE requests;--", "Budi", "1271010101900003"),
            422,
            "unknown_service",
        ),
        case(
            "hostile HTML in name",
            post.clone(),
            "/api/requests",
            file("SKD", hostile, "1271010101900003"),
            422,
            "invalid_name",
        ),
        case(
            "img onerror in name",
            post.clone(),
            "/api/requests",
            file("SKD", "Budi<img src=x onerror=alert(1)>", "1271010101900003"),
            422,
            "invalid_name",
        ),
        case(
            "SQL in name",
            post.clone(),
            "/api/requests",
            file("SKD", "Robert'); DROP TABLE requests;--", "1271010101900003"),
            422,
            "invalid_name",
        ),
        case("empty name", post.clone(), "/api/requests", file("SKD", "   ", "1271010101900003"), 422, "invalid_name"),
        case(
            "invalid phone",
            post.clone(),
            "/api/requests",
            Body::Json(json!({"service":"SKD","applicant":{"name":"Budi","nik":"1271010101900003","phone":"021-555"}})),
            422,
            "invalid_phone",
        ),
        case(
            "oversized body",
            post.clone(),
            "/api/requests",
            file("SKD", &big_name, "1271010101900003"),
            413,
            "body_too_large",
        ),
        case(
            "bad idempotency key",
            post.clone(),
            "/api/requests",
            Body::Raw(json_ct, String::new()),
            400,
            "invalid_idempotency_key",
        ),
        // Rating.
        case(
            "score 5",
            post.clone(),
            rating2.clone(),
            scores(json!({"U1":5,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4}), &code2),
            422,
            "invalid_score",
        ),
        case(
            "score 0",
            post.clone(),
            rating2.clone(),
            scores(json!({"U1":0,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4}), &code2),
            422,
            "invalid_score",
        ),
        case(
            "score -1",
            post.clone(),
            rating2.clone(),
            scores(json!({"U1":-1,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4}), &code2),
            422,
            "invalid_score",
        ),
        case(
            "score as text",
            post.clone(),
            rating2.clone(),
            scores(json!({"U1":"4","U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4}), &code2),
            422,
            "invalid_score",
        ),
        case(
            "score 3.5",
            post.clone(),
            rating2.clone(),
            scores(json!({"U1":3.5,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4}), &code2),
            422,
            "invalid_score",
        ),
        case(
            "element missing",
            post.clone(),
            rating2.clone(),
            scores(json!({"U1":4,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4}), &code2),
            422,
            "invalid_score",
        ),
        case(
            "unknown element",
            post.clone(),
            rating2.clone(),
            scores(json!({"U1":4,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4,"U10":4}), &code2),
            422,
            "invalid_score",
        ),
        case(
            "no scores",
            post.clone(),
            rating2.clone(),
            Body::Json(json!({"comment":"bagus","token":code2})),
            422,
            "missing_field",
        ),
        // The receipt's code (issue 12, item 6).
        case(
            "rating without a code",
            post.clone(),
            rating2.clone(),
            Body::Json(json!({"scores":all4})),
            403,
            "invalid_rating_token",
        ),
        case(
            "rating with a wrong code",
            post.clone(),
            rating2.clone(),
            scores(all4.clone(), wrong2),
            403,
            "invalid_rating_token",
        ),
        case(
            "rating with another request's code",
            post.clone(),
            rating2.clone(),
            scores(all4.clone(), &code),
            403,
            "invalid_rating_token",
        ),
        case(
            "rating with a malformed code",
            post.clone(),
            rating2.clone(),
            scores(all4.clone(), "<script>"),
            403,
            "invalid_rating_token",
        ),
        case("second rating", post.clone(), rating.clone(), scores(all4.clone(), &code), 409, "already_rated"),
        case(
            "rating of unknown request",
            post.clone(),
            format!("/api/requests/{unknown_doc}/rating"),
            scores(all4.clone(), &code),
            404,
            "not_found",
        ),
        case(
            "rating with bad id",
            post.clone(),
            "/api/requests/..%2F..%2Fkiosk.db/rating",
            scores(all4.clone(), &code),
            404,
            "not_found",
        ),
        // Tickets.
        case(
            "ticket SQL injection",
            get.clone(),
            "/api/tickets/K07-1128-001'%20OR%201=1--",
            Body::None,
            400,
            "invalid_ticket",
        ),
        case(
            "ticket path traversal",
            get.clone(),
            "/api/tickets/..%2F..%2Fetc%2Fpasswd",
            Body::None,
            400,
            "invalid_ticket",
        ),
        case("unknown ticket", get.clone(), "/api/tickets/K99-0101-001", Body::None, 404, "not_found"),
        // Staff.
        case(
            "wrong password",
            post.clone(),
            "/api/staff/login",
            Body::Json(json!({"staff_id": loket_tests::STAFF_ID, "password": "salah"})),
            401,
            "invalid_credentials",
        ),
        case(
            "unknown staff",
            post.clone(),
            "/api/staff/login",
            Body::Json(json!({"staff_id": "199001012015011001", "password": "x"})),
            401,
            "invalid_credentials",
        ),
        case(
            "malformed staff id",
            post.clone(),
            "/api/staff/login",
            Body::Json(json!({"staff_id": "' OR 1=1 --", "password": "x"})),
            401,
            "invalid_credentials",
        ),
        case("queue without token", get.clone(), "/api/staff/requests", Body::None, 401, "unauthorized"),
        Case {
            auth: Auth::Bogus,
            ..case("queue with forged token", get.clone(), "/api/staff/requests", Body::None, 401, "unauthorized")
        },
        case(
            "event without token",
            post.clone(),
            events.clone(),
            Body::Json(json!({"to":"in_progress"})),
            401,
            "unauthorized",
        ),
        staff(case(
            "forbidden transition",
            post.clone(),
            events2.clone(),
            Body::Json(json!({"to":"completed"})),
            409,
            "forbidden_transition",
        )),
        staff(case(
            "back to submitted",
            post.clone(),
            events2.clone(),
            Body::Json(json!({"to":"submitted"})),
            409,
            "forbidden_transition",
        )),
        staff(case(
            "unknown status",
            post.clone(),
            events2.clone(),
            Body::Json(json!({"to":"done"})),
            422,
            "invalid_status",
        )),
        staff(case(
            "missing status",
            post.clone(),
            events2.clone(),
            Body::Json(json!({"note":"x"})),
            422,
            "missing_field",
        )),
        staff(case(
            "note too long",
            post.clone(),
            events2.clone(),
            Body::Json(json!({"to":"in_progress","note":"x".repeat(1001)})),
            422,
            "invalid_note",
        )),
        staff(case(
            "agency on a non-handoff",
            post.clone(),
            events2.clone(),
            Body::Json(json!({"to":"in_progress","agency":"DISDUKCAPIL"})),
            422,
            "agency_not_expected",
        )),
        staff(case(
            "event on unknown request",
            post.clone(),
            format!("/api/staff/requests/{unknown_doc}/events"),
            Body::Json(json!({"to":"in_progress"})),
            404,
            "not_found",
        )),
        staff(case(
            "queue status injection",
            get.clone(),
            "/api/staff/requests?status=submitted'%20OR%201=1--",
            Body::None,
            400,
            "invalid_status",
        )),
        staff(case("queue bad limit", get.clone(), "/api/staff/requests?limit=-1", Body::None, 400, "invalid_query")),
        case("unknown path", get.clone(), "/api/../../etc/passwd", Body::None, 404, "not_found"),
    ];

    for c in &cases {
        let before = counts(&client, &kiosk).await;
        // A refused oversized body can make the server close the
        // connection; keep the cases off the pooled connections.
        let mut req = client.request(c.method.clone(), kiosk.url(&c.path)).header("connection", "close");
        req = match &c.body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Raw(ct, text) if c.code == "invalid_idempotency_key" => {
                req.header("content-type", *ct).header("idempotency-key", "bad key with spaces").body(
                    serde_json::to_string(
                        &json!({"service":"SKD","applicant":{"name":"Budi","nik":"1271010101900003"}}),
                    )
                    .unwrap()
                        + text,
                )
            }
            Body::Raw(ct, text) => req.header("content-type", *ct).body(text.clone()),
        };
        req = match c.auth {
            Auth::None => req,
            Auth::Staff => req.bearer_auth(&token),
            Auth::Bogus => req.bearer_auth("0".repeat(64)),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, c.status, "{}: {body}", c.name);
        assert_eq!(body["error"]["code"], c.code, "{}: {body}", c.name);
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: no message", c.name);
        assert_eq!(counts(&client, &kiosk).await, before, "{}: something was stored", c.name);
    }

    // Handing off needs an agency the service goes to (SKTM -> DINSOS etc.).
    let take =
        client.post(kiosk.url(&events2)).bearer_auth(&token).json(&json!({"to":"in_progress"})).send().await.unwrap();
    assert_eq!(take.status(), 201);
    for (body, code) in [
        (json!({"to":"handed_off"}), "agency_required"),
        (json!({"to":"handed_off","agency":"KUA"}), "unknown_agency"),
        (json!({"to":"handed_off","agency":"<b>X</b>"}), "unknown_agency"),
    ] {
        let before = counts(&client, &kiosk).await;
        let r = client.post(kiosk.url(&events2)).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}");
        assert_eq!(counts(&client, &kiosk).await, before);
    }
    let ok = client
        .post(kiosk.url(&events2))
        .bearer_auth(&token)
        .json(&json!({"to":"handed_off","agency":"DINSOS","note":"<script>alert(1)</script> cek DTKS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);

    // A note with markup is stored as text, exactly as typed (escaping is
    // the renderer's job), and the ticket view shows no personal data.
    let detail: Value = client
        .get(kiosk.url(&format!("/api/staff/requests/{id2}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = detail["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["note"], "<script>alert(1)</script> cek DTKS");
    assert_eq!(detail["applicant"]["nik"], "127101••••••0003");
    let public: Value =
        client.get(kiosk.url(&format!("/api/tickets/{ticket}"))).send().await.unwrap().json().await.unwrap();
    let text = public.to_string();
    assert!(!text.contains("Budi") && !text.contains("1271010101900003"), "ticket view leaks personal data: {text}");

    // Still serving.
    let fine = client
        .post(kiosk.url("/api/requests"))
        .json(&json!({ "service": "PKTP", "applicant": { "name": "Ngô Bảo Châu", "nik": "3174012902000001", "phone": "0812 3456 7890" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 201);
}

#[tokio::test]
async fn idempotent_retry_returns_the_first_answer_and_a_reused_key_is_refused() {
    let dir = TestDir::new("idempotency");
    let data = dir.path().join("kiosk");
    init_kiosk(&data, "K08").unwrap();
    let kiosk = KioskProcess::start(&data).unwrap();
    let client = http_client();
    let body = json!({ "service": "SKD", "applicant": { "name": "Budi", "nik": "1271010101900003" } });
    let send =
        |b: Value| client.post(kiosk.url("/api/requests")).header("idempotency-key", "key-0001-abcdef").json(&b).send();
    let first: Value = send(body.clone()).await.unwrap().json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = json!({ "service": "SKU", "applicant": { "name": "Budi", "nik": "1271010101900003" } });
    let reused = send(other).await.unwrap();
    assert_eq!(reused.status(), 422);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"]["code"], "idempotency_key_reused");
    let h: Value = client.get(kiosk.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["documents"], 3, "catalog, roster and exactly one request");
}
