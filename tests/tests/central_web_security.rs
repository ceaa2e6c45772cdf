//! The central web app's login, session cookie and forms against a real
//! `sync-server` over HTTPS: cookie flags, CSRF refusals that change
//! nothing, logout, lockout, a session cookie that opens no API, and a
//! hostile kiosk name shown as text.

use loket_tests::TestDir;
use loket_tests::server::{ADMIN_PASSWORD, ADMIN_USER, ServerProcess, init_server};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

const HOSTILE: &str = r#"<img src=x onerror=alert(1)><script>alert(1)</script>"#;

fn client(server: &ServerProcess) -> reqwest::Client {
    let ca = std::fs::read(server.ca_pem()).expect("ca.pem");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn cookies_of(resp: &reqwest::Response) -> Vec<String> {
    resp.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap_or("").to_owned()).collect()
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").trim().to_owned()
}

fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let at = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[at..at + html[at..].find('"').expect("end")].to_owned()
}

/// Opens the login page and logs in; returns the browser's cookies.
async fn web_login(c: &reqwest::Client, s: &ServerProcess, password: &str) -> (reqwest::Response, String) {
    let page = c.get(format!("{}/masuk", s.base)).send().await.unwrap();
    let csrf_cookie = cookies_of(&page).into_iter().find(|c| c.starts_with("__Host-loket_csrf=")).expect("csrf cookie");
    let cookie = pair(&csrf_cookie);
    let token = csrf_of(&page.text().await.unwrap());
    let resp = c
        .post(format!("{}/masuk", s.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", token.as_str()), ("username", ADMIN_USER), ("password", password)])
        .send()
        .await
        .unwrap();
    (resp, cookie)
}

async fn kiosk_revoked(c: &reqwest::Client, s: &ServerProcess, admin: &str, code: &str) -> bool {
    let v = s.get_json(c, admin, "/api/admin/kiosks").await.unwrap();
    v["items"].as_array().unwrap().iter().find(|k| k["code"] == code).expect("kiosk")["revoked"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sessions_and_forms_refuse_what_they_should() {
    let dir = TestDir::new("central-web");
    let data = dir.path().join("server");
    init_server(&data).expect("init");
    let s = ServerProcess::start(&data).expect("server");
    let c = client(&s);
    let admin = s.admin_token(&c).await.unwrap();

    // A kiosk enrolls with markup in its name.
    let code = s.enroll_code(loket_tests::KELURAHAN).unwrap();
    let r = c
        .post(format!("{}/api/enroll", s.base))
        .json(&json!({ "code": code, "actor": "0123456789abcdef0123456789abcdef", "name": HOSTILE, "version": "test" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let kiosk: Value = s.get_json(&c, &admin, "/api/admin/kiosks").await.unwrap()["items"][0].clone();
    let (kiosk_id, kiosk_code) = (kiosk["id"].as_str().unwrap().to_owned(), kiosk["code"].as_str().unwrap().to_owned());

    // Login: the session cookie is Secure, HttpOnly, SameSite=Strict, host-only.
    let (resp, csrf_cookie) = web_login(&c, &s, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let session = cookies_of(&resp).into_iter().find(|c| c.starts_with("__Host-loket_session=")).expect("session");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(session.contains(flag), "{flag} in {session}");
    }
    assert!(!session.contains("Domain="), "host-only: {session}");
    let cookies = format!("{csrf_cookie}; {}", pair(&session));

    // The kiosk page: the name is text, not markup.
    let page = c.get(format!("{}/admin/kiosk", s.base)).header(COOKIE, &cookies).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(!html.contains(HOSTILE), "the kiosk name was not escaped");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;"), "the name is shown as text");
    let token = csrf_of(&html);

    // The session cookie opens no API: the API takes bearer tokens only.
    let api = c.get(format!("{}/api/admin/kiosks", s.base)).header(COOKIE, &cookies).send().await.unwrap();
    assert_eq!(api.status(), 401);

    // Revoking without this browser's token changes nothing.
    let revoke = format!("{}/admin/kiosk/{kiosk_id}/cabut", s.base);
    for (what, cookie, csrf) in [
        ("no token", cookies.clone(), String::new()),
        ("a forged token", cookies.clone(), "ab".repeat(32)),
        ("no csrf cookie", pair(&session), token.clone()),
    ] {
        let r = c.post(&revoke).header(COOKIE, cookie).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), 403, "{what}");
        assert!(r.text().await.unwrap().contains("csrf_failed"), "{what}");
        assert!(!kiosk_revoked(&c, &s, &admin, &kiosk_code).await, "{what} revoked the kiosk");
    }
    // The right token but no confirmation: refused, still active.
    let r = c.post(&revoke).header(COOKIE, &cookies).form(&[("csrf", token.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("confirmation_required"));
    assert!(!kiosk_revoked(&c, &s, &admin, &kiosk_code).await);
    let r = c
        .post(&revoke)
        .header(COOKIE, &cookies)
        .form(&[("csrf", token.as_str()), ("yakin", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(kiosk_revoked(&c, &s, &admin, &kiosk_code).await);

    // Logout ends the session for good.
    let out = c
        .post(format!("{}/keluar", s.base))
        .header(COOKIE, &cookies)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = c.get(format!("{}/admin/kiosk", s.base)).header(COOKIE, &cookies).send().await.unwrap();
    assert_eq!(after.status(), 303);
    assert_eq!(after.headers()[LOCATION], "/masuk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_login_locks_out_after_repeated_failures() {
    let dir = TestDir::new("central-web-lockout");
    let data = dir.path().join("server");
    init_server(&data).expect("init");
    let s = ServerProcess::start(&data).expect("server");
    let c = client(&s);
    for i in 0..5 {
        let (resp, _) = web_login(&c, &s, "salah-sandi").await;
        assert_eq!(resp.status(), 401, "attempt {i}");
        assert!(resp.text().await.unwrap().contains("login-error"));
    }
    let (resp, _) = web_login(&c, &s, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), 429, "even the right password, for now");
    assert!(cookies_of(&resp).iter().all(|c| !c.starts_with("__Host-loket_session=")));
}
