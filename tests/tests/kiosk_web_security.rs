//! The kiosk's web forms against a real `kiosk serve`, spoken to as a
//! hostile client would: CSRF without or with someone else's token,
//! cookie flags, login lockout, logout, and injection and traversal
//! strings in paths and queries. Each refusal also checks that nothing
//! was stored.

use loket_tests::{KioskProcess, STAFF_ID, STAFF_PASSWORD, TestDir, init_kiosk, nik};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().expect("client")
}

fn kiosk(dir: &TestDir) -> KioskProcess {
    kiosk_with(dir, &[])
}

fn kiosk_with(dir: &TestDir, env: &[(&str, &str)]) -> KioskProcess {
    let data = dir.path().join("kiosk");
    init_kiosk(&data, "K01").expect("init");
    KioskProcess::start_with(&data, env).expect("start")
}

/// A browser as far as the kiosk can tell: a cookie and the CSRF token
/// of a page it was given.
struct Visitor {
    cookies: Vec<String>,
    csrf: String,
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap_or("").to_owned()).collect()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").trim().to_owned()
}

fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a form with a CSRF token");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("end of value")].to_owned()
}

/// `path` on the listener that serves it: the staff console (`/staf…`)
/// has an address of its own.
fn at(k: &KioskProcess, path: &str) -> String {
    if path.starts_with("/staf") { k.staff_url(path) } else { k.url(path) }
}

async fn visit(c: &reqwest::Client, k: &KioskProcess, path: &str) -> Visitor {
    let resp = c.get(at(k, path)).send().await.expect("GET");
    assert_eq!(resp.status(), 200, "{path}");
    let cookies: Vec<String> = set_cookies(&resp).iter().map(|s| cookie_pair(s)).collect();
    let html = resp.text().await.expect("body");
    Visitor { cookies, csrf: csrf_of(&html) }
}

impl Visitor {
    fn cookie_header(&self) -> String {
        self.cookies.join("; ")
    }
}

async fn post_form(
    c: &reqwest::Client,
    k: &KioskProcess,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = c.post(at(k, path)).form(form);
    if let Some(cookie) = cookie {
        r = r.header(COOKIE, cookie);
    }
    r.send().await.expect("POST")
}

async fn request_count(c: &reqwest::Client, k: &KioskProcess) -> usize {
    let token = loket_tests::staff_login(c, &k.base).await.expect("login");
    let v: Value = c
        .get(k.url("/api/staff/requests?status=all"))
        .bearer_auth(token)
        .send()
        .await
        .expect("queue")
        .json()
        .await
        .expect("json");
    v["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_this_browsers_token_are_refused_and_store_nothing() {
    let dir = TestDir::new("web-csrf");
    let k = kiosk(&dir);
    let c = client();
    let a = visit(&c, &k, "/layanan/SKD/ajukan").await;
    let b = visit(&c, &k, "/layanan/SKD/ajukan").await;
    assert_ne!(a.csrf, b.csrf, "each browser has its own token");
    let nik = nik(7);
    let filing = |csrf: &str| -> Vec<(&'static str, String)> {
        vec![
            ("csrf", csrf.to_owned()),
            ("name", "Siti Aminah".into()),
            ("nik", nik.clone()),
            ("phone", String::new()),
            ("step", "kirim".into()),
            ("key", "a4c1e1b6-6f0e-4d59-9d2f-0d5b3c1e2f10".into()),
        ]
    };
    let as_refs = |v: &Vec<(&'static str, String)>| v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();

    let cases: [(&str, Option<String>, String); 4] = [
        ("no token", Some(a.cookie_header()), String::new()),
        ("another browser's token", Some(a.cookie_header()), b.csrf.clone()),
        ("no cookie", None, a.csrf.clone()),
        ("a forged token", Some(a.cookie_header()), "00".repeat(32)),
    ];
    for (what, cookie, token) in cases {
        let form = as_refs(&filing(&token));
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = post_form(&c, &k, "/layanan/SKD/ajukan", cookie.as_deref(), &form).await;
        assert_eq!(resp.status(), 403, "{what}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("csrf_failed"), "{what}: {body}");
    }
    assert_eq!(request_count(&c, &k).await, 0, "nothing was filed");

    // The right token files once, and a retry of the same form does not file twice.
    let form = as_refs(&filing(&a.csrf));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = post_form(&c, &k, "/layanan/SKD/ajukan", Some(&a.cookie_header()), &form).await;
    assert_eq!(first.status(), 303);
    let to = first.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.starts_with("/tiket/K01-"), "{to}");
    let again = post_form(&c, &k, "/layanan/SKD/ajukan", Some(&a.cookie_header()), &form).await;
    assert_eq!(again.headers()[LOCATION].to_str().unwrap(), to, "the retry gets the same ticket");
    assert_eq!(request_count(&c, &k).await, 1);
}

async fn console_login(c: &reqwest::Client, k: &KioskProcess, password: &str) -> (reqwest::Response, Visitor) {
    let v = visit(c, k, "/staf/masuk").await;
    let resp = post_form(
        c,
        k,
        "/staf/masuk",
        Some(&v.cookie_header()),
        &[("csrf", &v.csrf), ("staff_id", STAFF_ID), ("password", password)],
    )
    .await;
    (resp, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_are_http_only_strict_and_secure_and_logout_ends_them() {
    let dir = TestDir::new("web-cookies");
    let k = kiosk(&dir);
    let c = client();
    let resp = c.get(k.url("/")).send().await.unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let csrf_cookie = set_cookies(&resp).into_iter().find(|s| s.starts_with("loket_csrf=")).expect("csrf cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(csrf_cookie.contains(flag), "{flag} in {csrf_cookie}");
    }

    let (resp, v) = console_login(&c, &k, STAFF_PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let session = set_cookies(&resp).into_iter().find(|s| s.starts_with("loket_staff=")).expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Max-Age="] {
        assert!(session.contains(flag), "{flag} in {session}");
    }
    let cookies = format!("{}; {}", v.cookie_header(), cookie_pair(&session));
    let queue = c.get(at(&k, "/staf")).header(COOKIE, &cookies).send().await.unwrap();
    assert_eq!(queue.status(), 200);
    let html = queue.text().await.unwrap();
    let token = csrf_of(&html);

    // Logout needs the token too.
    let refused = post_form(&c, &k, "/staf/keluar", Some(&cookies), &[("csrf", "")]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(c.get(at(&k, "/staf")).header(COOKIE, &cookies).send().await.unwrap().status(), 200, "still in");
    let out = post_form(&c, &k, "/staf/keluar", Some(&cookies), &[("csrf", &token)]).await;
    assert_eq!(out.status(), 303);
    // The old cookie no longer opens anything, even if a browser kept it.
    let after = c.get(at(&k, "/staf")).header(COOKIE, &cookies).send().await.unwrap();
    assert_eq!(after.status(), 303);
    assert!(after.headers()[LOCATION].to_str().unwrap().starts_with("/staf/masuk"));
}

/// The console's idle timeout reaches the kiosk from its environment and
/// the page: the running binary serves the console with the configured
/// limit for its script. When a session ends is tested on the kiosk's
/// router with a given clock, not by waiting here
/// (`kiosk/src/web/tests.rs`: alive up to the limit, extended by each
/// request but not by the indicator's polling, over 1 ms past it, the
/// session row gone, a restart starting every clock afresh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_idle_timeout_reaches_the_kiosk_from_its_environment() {
    let dir = TestDir::new("web-idle");
    let k = kiosk_with(&dir, &[("LOKET_KIOSK_STAFF_IDLE_TIMEOUT", "2")]);
    let c = client();
    let (resp, v) = console_login(&c, &k, STAFF_PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let session = set_cookies(&resp).into_iter().find(|s| s.starts_with("loket_staff=")).expect("session cookie");
    let cookies = format!("{}; {}", v.cookie_header(), cookie_pair(&session));
    let page = c.get(at(&k, "/staf")).header(COOKIE, &cookies).send().await.unwrap();
    assert_eq!(page.status(), 200, "logged in");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-staff-idle-seconds="2""#), "the configured limit reaches the page's script");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_lock_the_staff_id_out() {
    let dir = TestDir::new("web-lockout");
    let k = kiosk(&dir);
    let c = client();
    for i in 0..5 {
        let (resp, _) = console_login(&c, &k, "tebak-tebakan").await;
        assert_eq!(resp.status(), 401, "attempt {i}");
    }
    // Now even the right password is refused, on the form and the API alike.
    let (resp, _) = console_login(&c, &k, STAFF_PASSWORD).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.text().await.unwrap().to_lowercase().contains("terlalu banyak percobaan"));
    let api = c
        .post(k.url("/api/staff/login"))
        .json(&serde_json::json!({ "staff_id": STAFF_ID, "password": STAFF_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 429);
    let v: Value = api.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_and_traversal_strings_in_paths_and_queries_are_refused() {
    let dir = TestDir::new("web-hostile-paths");
    let k = kiosk(&dir);
    let c = client();
    let (resp, v) = console_login(&c, &k, STAFF_PASSWORD).await;
    let session = set_cookies(&resp).into_iter().find(|s| s.starts_with("loket_staff=")).expect("session");
    let cookies = format!("{}; {}", v.cookie_header(), cookie_pair(&session));
    let cases = [
        ("/layanan/..%2F..%2Fetc%2Fpasswd", 404),
        ("/layanan/SKD'%20OR%201=1--", 404),
        ("/layanan/%3Cscript%3Ealert(1)%3C%2Fscript%3E/ajukan", 404),
        ("/tiket/'%20OR%201=1--", 400),
        ("/tiket/..%2F..%2Fkiosk.db", 400),
        ("/nilai/%3Cscript%3E", 404),
        ("/cek?tiket=%27%20OR%201%3D1--", 404),
        ("/staf?status=%27%20OR%201%3D1--", 400),
        ("/staf?layanan=..%2F..%2F", 400),
        ("/staf?sla=%3Cscript%3E", 400),
        ("/staf/permohonan/..%2F..%2Fetc%2Fpasswd", 404),
        ("/staf/permohonan/'%20OR%201=1--", 404),
        ("/static/..%2F..%2FCargo.toml", 404),
    ];
    for (path, status) in cases {
        let resp = c.get(at(&k, path)).header(COOKIE, &cookies).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("<script>"), "{path} echoed markup unescaped");
        assert!(!body.contains("[package]") && !body.contains("SQLite format"), "{path} leaked a file");
    }
    // The language switch returns only to this kiosk: a browser drops tabs
    // and line breaks from a Location and reads `\\` as `/` (issue 12, item 10).
    for back in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "\t//evil.example",
        "/\t\\evil.example",
        "/ /evil.example",
    ] {
        let resp = c.get(k.url("/bahasa/en")).query(&[("kembali", back)]).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{back:?}");
        assert_eq!(resp.headers()[LOCATION], "/", "{back:?}");
    }
    // The console's sync button returns to a form field, checked the same way.
    let back = c.get(at(&k, "/staf")).header(COOKIE, &cookies).send().await.unwrap().text().await.unwrap();
    let token = csrf_of(&back);
    for back in ["/\t/evil.example", "//evil.example", "/\\evil.example"] {
        let resp = post_form(&c, &k, "/staf/sinkron", Some(&cookies), &[("csrf", &token), ("back", back)]).await;
        assert_eq!(resp.status(), 303, "{back:?}");
        assert_eq!(resp.headers()[LOCATION], "/", "{back:?}");
    }
    assert_eq!(request_count(&c, &k).await, 0);
}

/// Issue 12, item 9: a refusal names the field, never the value. Values a
/// person must not see echoed (a NIK, a password typed into the wrong
/// field) are sent every way the kiosk can refuse them; neither the answer
/// nor the kiosk's log may hold any trace of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_never_echo_the_rejected_value_in_answers_or_the_log() {
    const NIK: &str = "1271015507880042";
    const BAD_NIK: &str = "1271015507880000";
    const PASSWORD: &str = "Kucing-Oranye-731";
    const PASSWORD_DIGITS: &str = "98765432109876";
    const AGENCY: &str = "KUCINGORANYE731";
    let secrets = [NIK, BAD_NIK, PASSWORD, PASSWORD_DIGITS, AGENCY, "KUCING-ORANYE", "Oranye"];
    let dir = TestDir::new("web-no-echo");
    let k = kiosk(&dir);
    let c = client();
    let token = loket_tests::staff_login(&c, &k.base).await.expect("login");
    let (id, _, code) = loket_tests::file_request_with_code(&c, &k, "SKTM", "Siti Aminah", &nik(3)).await;
    let take = c
        .post(k.url(&format!("/api/staff/requests/{id}/events")))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "to": "in_progress" }))
        .send()
        .await
        .unwrap();
    assert_eq!(take.status(), 201);
    let nik_number: u64 = NIK.parse().unwrap();
    let password_number: u64 = PASSWORD_DIGITS.parse().unwrap();
    let all4 = serde_json::json!({"U1":4,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4});
    let mut nik_key_scores = all4.clone();
    nik_key_scores[NIK] = 4.into();
    // (what, path, bearer token, body, status, code)
    type Case<'a> = (&'a str, String, Option<&'a str>, Value, u16, &'a str);
    let json_cases: Vec<Case<'_>> = vec![
        (
            "NIK as a number",
            "/api/requests".into(),
            None,
            serde_json::json!({ "service": "SKD", "applicant": { "name": "Budi", "nik": nik_number } }),
            422,
            "invalid_body",
        ),
        (
            "an invalid NIK",
            "/api/requests".into(),
            None,
            serde_json::json!({ "service": "SKD", "applicant": { "name": "Budi", "nik": BAD_NIK } }),
            422,
            "invalid_nik",
        ),
        (
            "a NIK as an unknown field",
            "/api/requests".into(),
            None,
            serde_json::json!({ "service": "SKD", "applicant": { "name": "Budi", "nik": nik(4) }, NIK: true }),
            422,
            "invalid_body",
        ),
        (
            "a password in the name",
            "/api/requests".into(),
            None,
            serde_json::json!({ "service": "SKD", "applicant": { "name": format!("{PASSWORD}<"), "nik": nik(4) } }),
            422,
            "invalid_name",
        ),
        (
            "a password as a number",
            "/api/staff/login".into(),
            None,
            serde_json::json!({ "staff_id": STAFF_ID, "password": password_number }),
            422,
            "invalid_body",
        ),
        (
            "a password typed as the staff id",
            "/api/staff/login".into(),
            None,
            serde_json::json!({ "staff_id": PASSWORD, "password": "x" }),
            401,
            "invalid_credentials",
        ),
        (
            "a NIK as an SKM element",
            format!("/api/requests/{id}/rating"),
            None,
            serde_json::json!({ "scores": nik_key_scores, "token": code }),
            422,
            "invalid_score",
        ),
        (
            "an unknown agency",
            format!("/api/staff/requests/{id}/events"),
            Some(token.as_str()),
            serde_json::json!({ "to": "handed_off", "agency": AGENCY }),
            422,
            "unknown_agency",
        ),
    ];
    for (what, path, bearer, body, status, code) in json_cases {
        let mut req = c.post(k.url(&path)).json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{what}");
        let text = resp.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(v["error"]["code"], code, "{what}: {text}");
        assert_no_trace(what, &text, &secrets);
    }
    // A query parameter named like a secret.
    let resp = c.get(k.url(&format!("/api/staff/requests?{AGENCY}=1"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("invalid_query"), "{text}");
    assert_no_trace("a query parameter", &text, &secrets);
    // The console's login form, with the password typed as the staff id.
    let v = visit(&c, &k, "/staf/masuk").await;
    let resp = post_form(
        &c,
        &k,
        "/staf/masuk",
        Some(&v.cookie_header()),
        &[("csrf", &v.csrf), ("staff_id", PASSWORD), ("password", "x")],
    )
    .await;
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(text.contains("login-error"), "{text}");
    assert_no_trace("the console login", &text, &secrets);

    let log = std::fs::read_to_string(k.data.join("kiosk.log")).expect("kiosk log");
    assert!(log.contains("request refused"), "the refusals are logged: {log}");
    assert_no_trace("the kiosk's log", &log, &secrets);
}

fn assert_no_trace(what: &str, text: &str, secrets: &[&str]) {
    let lower = text.to_lowercase();
    for s in secrets {
        assert!(!lower.contains(&s.to_lowercase()), "{what}: {s} appears in\n{text}");
    }
}

/// Issue 12, item 8: a retry's fingerprint must not give back what the
/// citizen typed. An attacker holding the kiosk's idempotency table and
/// knowing the name, the region and the birth date tries every NIK serial,
/// as the review did (it found the NIK in a third of a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_fingerprints_do_not_give_the_nik_back() {
    use sha2::{Digest, Sha256};
    let dir = TestDir::new("web-fingerprints");
    let k = kiosk(&dir);
    let c = client();
    let (name, nik) = ("Siti Aminah", "1271014808910137");
    // At the screen: the filing form's retry key guards its fields.
    let a = visit(&c, &k, "/layanan/SKD/ajukan").await;
    let form = [
        ("csrf", a.csrf.as_str()),
        ("name", name),
        ("nik", nik),
        ("phone", ""),
        ("step", "kirim"),
        ("key", "5d1c2f0e-7a4b-4c59-9d2f-0d5b3c1e2f10"),
    ];
    let resp = post_form(&c, &k, "/layanan/SKD/ajukan", Some(&a.cookie_header()), &form).await;
    assert_eq!(resp.status(), 303);
    // Through the API, with an Idempotency-Key.
    let resp = c
        .post(k.url("/api/requests"))
        .header("idempotency-key", "api-retry-0001")
        .json(&serde_json::json!({ "service": "SKU", "applicant": { "name": name, "nik": nik } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let conn =
        rusqlite::Connection::open_with_flags(k.data.join("kiosk.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let stored: Vec<String> = conn
        .prepare("SELECT fingerprint FROM idempotency")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored.len(), 2, "both retries are guarded");
    let prefix = &nik[..12];
    let found = (1..=9999).find_map(|serial: u32| {
        let guess = format!("{prefix}{serial:04}");
        let screen = format!(r#"{{"service":"SKD","name":"{name}","nik":"{guess}","phone":null}}"#);
        let api = format!(r#"{{"service":"SKU","applicant":{{"name":"{name}","nik":"{guess}","phone":null}}}}"#);
        [screen, api].iter().any(|text| stored.contains(&hex::encode(Sha256::digest(text.as_bytes())))).then_some(guess)
    });
    assert_eq!(found, None, "a fingerprint gave the NIK back");
}

const ALL4: &str = r#"{"U1":4,"U2":4,"U3":4,"U4":4,"U5":4,"U6":4,"U7":4,"U8":4,"U9":4}"#;

async fn rate_api(c: &reqwest::Client, k: &KioskProcess, id: &str, token: Option<&str>) -> (u16, Value) {
    let mut body = serde_json::json!({ "scores": serde_json::from_str::<Value>(ALL4).unwrap() });
    if let Some(t) = token {
        body["token"] = t.into();
    }
    let resp = c.post(k.url(&format!("/api/requests/{id}/rating"))).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Issue 12, item 6: ticket numbers count up, so a rating needs the code
/// printed on the receipt. The API shows it once, at filing; the public
/// ticket answers never; a missing, malformed or wrong code is refused
/// (`403 invalid_rating_token`), and tries are limited per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rating_needs_the_code_from_the_receipt() {
    let dir = TestDir::new("web-rating-code");
    let k = kiosk(&dir);
    let c = client();
    let resp = c
        .post(k.url("/api/requests"))
        .json(&serde_json::json!({ "service": "SKD", "applicant": { "name": "Budi Santoso", "nik": nik(5) } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let filed: Value = resp.json().await.unwrap();
    let id = filed["id"].as_str().unwrap().to_owned();
    let ticket = filed["ticket"].as_str().unwrap().to_owned();
    let code = filed["rating_token"].as_str().expect("the filing answer carries the rating code").to_owned();
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-", "{code}");
    let bare = code.replace('-', "");
    // Typing the ticket later shows no code, in the API or on the page.
    let public = c.get(k.url(&format!("/api/tickets/{ticket}"))).send().await.unwrap().text().await.unwrap();
    let page = c.get(k.url(&format!("/tiket/{ticket}"))).send().await.unwrap().text().await.unwrap();
    for text in [&public, &page] {
        assert!(!text.contains(&code) && !text.contains(&bare), "the code is shown again: {text}");
    }

    let wrong = if code.starts_with('Z') { "A000-0000" } else { "Z000-0000" };
    for (what, token) in [("no code", None), ("a malformed code", Some("ABC")), ("a wrong code", Some(wrong))] {
        let (status, v) = rate_api(&c, &k, &id, token).await;
        assert_eq!((status, v["error"]["code"].as_str()), (403, Some("invalid_rating_token")), "{what}: {v}");
    }
    // Issue 14: the right code opens nothing before the request is
    // completed or rejected.
    let (status, v) = rate_api(&c, &k, &id, Some(&code)).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("not_finished")), "{v}");
    loket_tests::complete_request(&c, &k.base, &id).await.unwrap();
    // The right code however it is typed: lower case, spaces, O for 0.
    let typed = code.to_lowercase().replace('-', " ").replace('0', "o");
    let (status, v) = rate_api(&c, &k, &id, Some(&typed)).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = rate_api(&c, &k, &id, Some(&code)).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("already_rated")), "{v}");

    // Guessing is bounded per request: after five wrong codes even the
    // right one waits.
    let second: Value = c
        .post(k.url("/api/requests"))
        .json(&serde_json::json!({ "service": "SKD", "applicant": { "name": "Siti Aminah", "nik": nik(6) } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id2 = second["id"].as_str().unwrap();
    let code2 = second["rating_token"].as_str().unwrap();
    let wrong2 = if code2.starts_with('Z') { "A000-0000" } else { "Z000-0000" };
    for i in 0..5 {
        let (status, _) = rate_api(&c, &k, id2, Some(wrong2)).await;
        assert_eq!(status, 403, "try {i}");
    }
    let (status, v) = rate_api(&c, &k, id2, Some(code2)).await;
    assert_eq!((status, v["error"]["code"].as_str()), (429, Some("too_many_attempts")), "{v}");
    let log = std::fs::read_to_string(k.data.join("kiosk.log")).unwrap();
    assert!(!log.contains(&code) && !log.contains(code2), "a rating code reached the log");
}

/// The same at the screen: the receipt shows the code once, right after
/// filing; `/nilai` asks for it; a forged form without it stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rating_screen_asks_for_the_code_on_the_receipt() {
    let dir = TestDir::new("web-rating-screen");
    let k = kiosk(&dir);
    let c = client();
    let a = visit(&c, &k, "/layanan/SKD/ajukan").await;
    let form = [
        ("csrf", a.csrf.as_str()),
        ("name", "Siti Aminah"),
        ("nik", "1271014808910137"),
        ("phone", ""),
        ("step", "kirim"),
        ("key", "0f3c2a1e-7a4b-4c59-9d2f-0d5b3c1e2f10"),
    ];
    let filed = post_form(&c, &k, "/layanan/SKD/ajukan", Some(&a.cookie_header()), &form).await;
    assert_eq!(filed.status(), 303);
    let to = filed.headers()[LOCATION].to_str().unwrap().to_owned();
    let ticket = to.trim_start_matches("/tiket/").split('?').next().unwrap().to_owned();
    let mut cookies = a.cookies.clone();
    cookies.extend(set_cookies(&filed).iter().map(|s| cookie_pair(s)));
    let receipt = c.get(k.url(&to)).header(COOKIE, cookies.join("; ")).send().await.unwrap();
    assert_eq!(receipt.status(), 200);
    let html = receipt.text().await.unwrap();
    let at = html.find(r#"id="rating-code""#).expect("the receipt shows the rating code");
    let code: String = html[at..].split('>').nth(1).unwrap().chars().take(9).collect();
    assert_eq!(&code[4..5], "-", "{code}");
    // Only there: not on the ticket's page, even in the same browser, nor
    // anywhere once "Done" (or the idle timeout) starts over for the next
    // citizen.
    let status_page =
        c.get(k.url(&format!("/tiket/{ticket}"))).header(COOKIE, cookies.join("; ")).send().await.unwrap();
    assert!(!status_page.text().await.unwrap().contains(&code), "the ticket's page shows the code");
    let restart = c.get(k.url("/mulai-ulang")).header(COOKIE, cookies.join("; ")).send().await.unwrap();
    let cleared = set_cookies(&restart);
    assert!(cleared.iter().any(|s| s.starts_with("loket_receipt=") && s.contains("Max-Age=0")), "{cleared:?}");
    let after = c.get(k.url(&to)).header(COOKIE, a.cookie_header()).send().await.unwrap().text().await.unwrap();
    assert!(!after.contains(&code), "the receipt showed the code to the next citizen");

    // Without the code, or with a wrong one, no question is asked.
    let v = visit(&c, &k, "/nilai").await;
    let wrong = if code.starts_with('Z') { "A000-0000" } else { "Z000-0000" };
    for bad in ["", wrong] {
        let resp = post_form(
            &c,
            &k,
            "/nilai",
            Some(&v.cookie_header()),
            &[("csrf", &v.csrf), ("tiket", &ticket), ("kode", bad)],
        )
        .await;
        assert_eq!(resp.status(), 403, "{bad:?}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("invalid_rating_token") && !text.contains("question-form"), "{bad:?}: {text}");
    }
    // A forged last step without the code stores nothing.
    let forged = post_form(
        &c,
        &k,
        &format!("/nilai/{ticket}"),
        Some(&v.cookie_header()),
        &[("csrf", &v.csrf), ("answers", "444444444"), ("step", "kirim"), ("key", "forged-rating-0001")],
    )
    .await;
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("invalid_rating_token"));
    let public: Value = c.get(k.url(&format!("/api/tickets/{ticket}"))).send().await.unwrap().json().await.unwrap();
    let queue_rated = {
        let token = loket_tests::staff_login(&c, &k.base).await.unwrap();
        let q: Value = c
            .get(k.url("/api/staff/requests?status=all"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        q["items"][0]["rated"].clone()
    };
    assert_eq!(queue_rated, false, "{public}");

    // With the code but before the request is finished: not open yet.
    let early = post_form(
        &c,
        &k,
        "/nilai",
        Some(&v.cookie_header()),
        &[("csrf", &v.csrf), ("tiket", &ticket), ("kode", &code)],
    )
    .await;
    assert_eq!(early.status(), 409);
    let text = early.text().await.unwrap();
    assert!(text.contains("not-finished") && !text.contains("question-form"), "{text}");
    let id = {
        let public: Value = c.get(k.url(&format!("/api/tickets/{ticket}"))).send().await.unwrap().json().await.unwrap();
        let token = loket_tests::staff_login(&c, &k.base).await.unwrap();
        let q: Value = c
            .get(k.url("/api/staff/requests?status=all"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let item = q["items"].as_array().unwrap().iter().find(|i| i["ticket"] == public["ticket"]).unwrap().clone();
        item["id"].as_str().unwrap().to_owned()
    };
    loket_tests::complete_request(&c, &k.base, &id).await.unwrap();

    // With the code the questions start, and the code rides along. Every
    // step is a POST that redirects to the survey's page (issue 15, item
    // 7: Back never sends a form again), whose draft cookie names where
    // the survey stands; the code is never in a URL.
    let survey = format!("/nilai/{ticket}/survei");
    let mut v = v;
    let step = |resp: reqwest::Response, v: &mut Visitor| {
        assert_eq!(resp.status(), 303);
        assert_eq!(resp.headers()[LOCATION], survey.as_str());
        for set in set_cookies(&resp) {
            let pair = cookie_pair(&set);
            let name = pair.split('=').next().unwrap_or("").to_owned();
            v.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            v.cookies.push(pair);
        }
    };
    let resp = post_form(
        &c,
        &k,
        "/nilai",
        Some(&v.cookie_header()),
        &[("csrf", &v.csrf), ("tiket", &ticket), ("kode", &code)],
    )
    .await;
    step(resp, &mut v);
    let page = |v: &Visitor| {
        let (c, k, survey) = (&c, &k, &survey);
        let cookie = v.cookie_header();
        async move {
            let resp = c.get(k.url(survey)).header(COOKIE, cookie).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    let text = page(&v).await;
    assert!(text.contains("question-form") && text.contains("Pertanyaan 1 dari 9"), "{text}");
    assert!(!survey.contains(&code), "the code stays out of the URL");
    // Without this browser's draft the survey page asks for the code again.
    let stranger = c.get(k.url(&survey)).send().await.unwrap();
    assert_eq!(stranger.status(), 303);
    assert_eq!(stranger.headers()[LOCATION], format!("/nilai/{ticket}").as_str());
    let mut answers = String::new();
    for n in 0..9 {
        let resp = post_form(
            &c,
            &k,
            &format!("/nilai/{ticket}"),
            Some(&v.cookie_header()),
            &[("csrf", &v.csrf), ("kode", &code), ("answers", &answers), ("answer", "3")],
        )
        .await;
        step(resp, &mut v);
        answers.push('3');
        let text = page(&v).await;
        if n < 8 {
            assert!(text.contains(&format!("Pertanyaan {} dari 9", n + 2)), "{text}");
        } else {
            assert!(text.contains("comment-form"), "{text}");
        }
    }
    // Reloading a step's page asks nothing twice: the same screen again.
    assert!(page(&v).await.contains("comment-form"));
    // Issue 14, item 7: a profile answer the screen never offers is
    // refused and the survey's last screen shown again; nothing stored.
    let forged = post_form(
        &c,
        &k,
        &format!("/nilai/{ticket}"),
        Some(&v.cookie_header()),
        &[
            ("csrf", &v.csrf),
            ("kode", &code),
            ("answers", &answers),
            ("step", "kirim"),
            ("key", "screen-rating-0000"),
            ("sex", "<b>x</b>"),
        ],
    )
    .await;
    assert_eq!(forged.status(), 422);
    let text = forged.text().await.unwrap();
    assert!(text.contains("data-code=\"invalid_profile\"") && !text.contains("<b>x</b>"), "{text}");
    let done = post_form(
        &c,
        &k,
        &format!("/nilai/{ticket}"),
        Some(&v.cookie_header()),
        &[
            ("csrf", &v.csrf),
            ("kode", &code),
            ("answers", &answers),
            ("step", "kirim"),
            ("key", "screen-rating-0001"),
            ("age", "gt50"),
            ("sex", ""),
        ],
    )
    .await;
    assert_eq!(done.status(), 303, "the first try stored nothing");
    let thanks = format!("/nilai/{ticket}/terima-kasih");
    assert_eq!(done.headers()[LOCATION], thanks.as_str());
    assert!(
        set_cookies(&done).iter().any(|s| s.starts_with("loket_survei=") && s.contains("Max-Age=0")),
        "the survey's draft is forgotten once stored"
    );
    let resp = c.get(k.url(&thanks)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("thanks"));
    // Back to a question after storing finds the ticket rated.
    let again = c.get(k.url(&survey)).header(COOKIE, v.cookie_header()).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("already-rated"));
}
