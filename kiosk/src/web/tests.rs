//! The router without a socket (`oneshot`), over a real store in a
//! temporary directory, on a manual clock: rules about time are checked at
//! given instants instead of by waiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use loket_shared::reference::{Roster, StaffMember, StaffRole};
use tower::ServiceExt;

use super::{AppState, Clock, IdleTracker, router, staff_router};
use crate::config::Config;
use crate::setup::default_catalog;
use crate::store::{DocStore, InitParams, StoreOptions};
use crate::sync::SyncClient;

const STAFF: &str = "198503122010011002";
const PASSWORD: &str = "rahasia-123";
const MS: Duration = Duration::from_millis(1);

/// A kiosk with one supervisor, not enrolled, its web state on a manual
/// clock.
struct Kiosk {
    _dir: tempfile::TempDir,
    store: Arc<DocStore>,
    config: Config,
    clock: Clock,
}

impl Kiosk {
    fn new() -> Kiosk {
        Kiosk::with_staff(Vec::new())
    }

    /// A kiosk whose roster has the supervisor and `more` (each with
    /// `PASSWORD`).
    fn with_staff(more: Vec<(&str, loket_shared::StaffKind)>) -> Kiosk {
        Kiosk::build(more, default_catalog())
    }

    fn build(more: Vec<(&str, loket_shared::StaffKind)>, catalog: loket_shared::reference::Catalog) -> Kiosk {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kiosk.db");
        let kelurahan: loket_shared::KelurahanCode = "12.71.01.1001".parse().unwrap();
        let hash = loket_node::password::hash_password(PASSWORD).unwrap();
        let mut staff = vec![StaffMember {
            id: STAFF.parse().unwrap(),
            name: "Rina".into(),
            role: StaffRole::Supervisor,
            kind: loket_shared::StaffKind::Pns,
            password_hash: hash.clone(),
            active: true,
        }];
        staff.extend(more.into_iter().map(|(id, kind)| StaffMember {
            id: id.parse().unwrap(),
            name: "Petugas".into(),
            role: StaffRole::Staff,
            kind,
            password_hash: hash.clone(),
            active: true,
        }));
        let roster = Roster { kelurahan: kelurahan.clone(), staff };
        let params = InitParams { kiosk: "K07".parse().unwrap(), kelurahan, name: "Kiosk Uji".into(), catalog, roster };
        DocStore::init(&db, params).unwrap();
        let store = Arc::new(DocStore::open(&db, StoreOptions::default()).unwrap());
        Kiosk { _dir: dir, store, config: Config::default(), clock: Clock::manual(Instant::now()) }
    }

    /// The web app as a process serving this store would build it; a
    /// second call is that process restarted (nothing in memory kept).
    fn serve(&self) -> Router {
        self.serve_both().citizen
    }

    /// Both listeners' apps of one process (one state between them).
    fn serve_both(&self) -> Apps {
        let sync = Arc::new(SyncClient::new(self.store.clone()).unwrap());
        let mut state = AppState::new(self.store.clone(), sync, &self.config, false);
        state.clock = self.clock.clone();
        Apps {
            citizen: router(state.clone(), self.config.body_bytes_max),
            staff: staff_router(state, self.config.body_bytes_max),
        }
    }
}

/// What one kiosk process serves: the citizen listener (screens and API)
/// and the staff listener (the console).
#[derive(Clone)]
struct Apps {
    citizen: Router,
    staff: Router,
}

async fn call(app: &Router, req: Request<Body>) -> Response {
    app.clone().oneshot(req).await.unwrap()
}

/// Logs the supervisor in through the API; the token is the console's
/// session cookie as well.
async fn login(app: &Router) -> String {
    let body = serde_json::json!({ "staff_id": STAFF, "password": PASSWORD }).to_string();
    let req = Request::post("/api/staff/login").header(header::CONTENT_TYPE, "application/json").body(Body::from(body));
    let resp = call(app, req.unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// Issue 14, item 11: a PPPK (in either number form) and a contract
/// worker on the roster log in like a PNS; the id is read in either case
/// for the `NA-` form; a wrong password still fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pppk_and_contract_staff_log_in_from_the_roster() {
    use loket_shared::StaffKind;
    let kiosk = Kiosk::with_staff(vec![
        ("199005232022212019", StaffKind::Pppk),
        ("198807202019031004", StaffKind::Pppk),
        ("NA-1271011001-001", StaffKind::NonAsn),
    ]);
    let app = kiosk.serve();
    let try_login = |id: &'static str, password: &'static str| {
        let app = app.clone();
        async move {
            let body = serde_json::json!({ "staff_id": id, "password": password }).to_string();
            let req = Request::post("/api/staff/login").header(header::CONTENT_TYPE, "application/json");
            call(&app, req.body(Body::from(body)).unwrap()).await.status()
        }
    };
    for id in [STAFF, "199005232022212019", "198807202019031004", "NA-1271011001-001", "na-1271011001-001"] {
        assert_eq!(try_login(id, PASSWORD).await, StatusCode::OK, "{id}");
    }
    assert_eq!(try_login("NA-1271011001-002", PASSWORD).await, StatusCode::UNAUTHORIZED, "not on the roster");
    assert_eq!(try_login("NA-1271011001-001", "salah-sekali-123").await, StatusCode::UNAUTHORIZED);
}

async fn page_text(app: &Router, uri: &str) -> String {
    let resp = call(app, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK, "{uri}");
    String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap()
}

/// Issue 14, item 13: the cost a citizen reads is the catalog's, not a
/// word the page supplies; the example ticket is in the form this kiosk
/// prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizen_pages_show_the_catalogs_cost_and_a_real_example_ticket() {
    let mut catalog = default_catalog();
    let skd = catalog.services.iter_mut().find(|s| s.code.as_str() == "SKD").unwrap();
    skd.cost_id = "Rp 10.000 (tarif uji)".into();
    // A service whose office published no English procedure.
    let skd_en = skd.procedure_en.clone();
    skd.procedure_en.clear();
    let kiosk = Kiosk::build(Vec::new(), catalog);
    let app = kiosk.serve();
    let list = page_text(&app, "/layanan").await;
    let at = list.find("data-service=\"SKD\"").expect("SKD listed");
    let skd_item = &list[at..at + list[at..].find("</a>").unwrap()];
    assert!(skd_item.contains("Rp 10.000 (tarif uji)"), "{skd_item}");
    assert!(!skd_item.contains("Gratis"), "{skd_item}");
    let detail = page_text(&app, "/layanan/SKD").await;
    assert!(detail.contains("id=\"service-cost\">Rp 10.000 (tarif uji)<"), "the detail shows the catalog's cost");
    assert!(!detail.contains("Gratis"), "nothing free is claimed beside it");
    // Other services keep the built-in catalog's words.
    assert!(page_text(&app, "/layanan/SKU").await.contains("id=\"service-cost\">Gratis<"));
    // The home screen no longer claims every service is free.
    let home = page_text(&app, "/").await;
    assert!(home.contains("id=\"start-lead\""), "{home}");
    assert!(!home.contains("Semua layanan di kiosk ini gratis"), "one service costs money");
    let free = Kiosk::build(Vec::new(), default_catalog()).serve();
    assert!(
        page_text(&free, "/").await.contains("Semua layanan di kiosk ini gratis"),
        "the built-in catalog is all free"
    );

    // Issue 15, item 7: in English the catalog's English texts; where a
    // catalog has none, the Indonesian text marked as such and said so.
    let english = |uri: &'static str| {
        let app = app.clone();
        async move {
            let req = Request::get(uri).header(header::COOKIE, "loket_lang=en").body(Body::empty()).unwrap();
            let resp = call(&app, req).await;
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap()
        }
    };
    let sku = english("/layanan/SKU").await;
    assert!(sku.contains("a clerk checks the business on site"), "{sku}");
    assert!(!sku.contains("<span lang=\"id\">") && !sku.contains("catalog-language"), "{sku}");
    let skd = english("/layanan/SKD").await;
    assert!(!skd_en.is_empty() && !skd.contains(&skd_en), "{skd}");
    assert!(skd.contains("id=\"catalog-language\"") && skd.contains("<span lang=\"id\">Ajukan di kiosk"), "{skd}");
    for uri in ["/cek", "/nilai"] {
        let html = page_text(&app, uri).await;
        let hint = &html[html.find("id=\"tiket-hint\"").expect(uri)..];
        let hint = &hint[..hint.find("</p>").unwrap()];
        assert!(hint.contains("K07-1128-023"), "{uri}: {hint}");
        let example = "K07-1128-023".parse::<loket_shared::Ticket>().unwrap();
        assert_eq!(example.as_str(), "K07-1128-023", "the example parses as a ticket");
    }
}

/// The console's queue page with the session cookie (on the staff
/// listener): 200, or where it sends the browser instead.
async fn console(apps: &Apps, token: &str) -> Result<StatusCode, String> {
    let app = &apps.staff;
    let req = Request::get("/staf").header(header::COOKIE, format!("loket_staff={token}")).body(Body::empty());
    let resp = call(app, req.unwrap()).await;
    match resp.headers().get(header::LOCATION) {
        Some(to) => Err(to.to_str().unwrap().to_owned()),
        None => Ok(resp.status()),
    }
}

/// Alive up to the limit, kept alive by activity, ended one instant past
/// it, and ended for good: the session row is gone, for the API too. The
/// sync indicator's polling of `/healthz` is not activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_console_session_ends_on_the_server_at_the_limit() {
    let kiosk = Kiosk::new();
    let limit = kiosk.config.staff_idle_timeout;
    let app = kiosk.serve_both();
    let token = login(&app.citizen).await;
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK));

    kiosk.clock.advance(limit - MS);
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK), "before the limit");
    kiosk.clock.advance(limit);
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK), "at the limit, counted from the last activity");
    kiosk.clock.advance(limit);
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK), "activity keeps extending it");

    kiosk.clock.advance(limit / 2);
    let health = call(&app.staff, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(health.status(), StatusCode::OK);
    kiosk.clock.advance(limit - limit / 2 + MS);
    assert_eq!(console(&app, &token).await, Err("/staf/masuk?diam=1".into()), "one instant past the limit");
    assert_eq!(console(&app, &token).await, Err("/staf/masuk?habis=1".into()), "the session row is gone");
    let api = Request::get("/api/staff/requests").header(header::AUTHORIZATION, format!("Bearer {token}"));
    assert_eq!(call(&app.citizen, api.body(Body::empty()).unwrap()).await.status(), StatusCode::UNAUTHORIZED);

    // Other sessions are not affected; a new login works at once.
    let again = login(&app.citizen).await;
    assert_eq!(console(&app, &again).await, Ok(StatusCode::OK));
}

/// The idle clocks live in memory: a restarted kiosk times every session
/// from its first request after the restart, not from before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_starts_the_idle_clock_afresh() {
    let kiosk = Kiosk::new();
    let limit = kiosk.config.staff_idle_timeout;
    let before = kiosk.serve_both();
    let token = login(&before.citizen).await;
    assert_eq!(console(&before, &token).await, Ok(StatusCode::OK));
    kiosk.clock.advance(limit * 3);

    let after = kiosk.serve_both();
    assert_eq!(console(&after, &token).await, Ok(StatusCode::OK), "known to no idle clock: alive");
    kiosk.clock.advance(limit);
    assert_eq!(console(&after, &token).await, Ok(StatusCode::OK));
    kiosk.clock.advance(limit + MS);
    assert_eq!(console(&after, &token).await, Err("/staf/masuk?diam=1".into()));
}

/// The limit is `staff_idle_timeout` as configured (the end-to-end
/// suite's two seconds), to the millisecond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_limit_is_the_configured_one() {
    let mut kiosk = Kiosk::new();
    kiosk.config.staff_idle_timeout = Duration::from_secs(2);
    let app = kiosk.serve_both();
    let token = login(&app.citizen).await;
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK));
    kiosk.clock.advance(Duration::from_secs(2));
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK));
    kiosk.clock.advance(Duration::from_secs(2) + MS);
    assert_eq!(console(&app, &token).await, Err("/staf/masuk?diam=1".into()));
}

#[test]
fn the_tracker_counts_from_the_last_touch_and_forgets_what_ended() {
    let idle = Duration::from_secs(900);
    let t0 = Instant::now();
    let tracker = IdleTracker::default();
    assert!(tracker.touch("a", t0, idle), "a new session is alive");
    assert!(tracker.touch("a", t0 + idle, idle), "at the limit");
    assert!(tracker.touch("a", t0 + idle * 2, idle), "the limit counts from the last touch");
    assert!(!tracker.touch("a", t0 + idle * 3 + MS, idle), "past it");
    // Ended sessions are forgotten: ending the session row is the caller's
    // part, and what keeps it ended.
    assert!(tracker.touch("a", t0 + idle * 3 + MS, idle));

    assert!(tracker.touch("b", t0, idle));
    tracker.forget("b");
    assert!(tracker.touch("b", t0 + idle * 5, idle), "logged out and in again: a fresh clock");
    assert!(tracker.touch("c", t0 + idle * 5, idle), "sessions are independent");
    assert!(!tracker.touch("b", t0 + idle * 6 + MS, idle));
}

#[test]
fn the_tracker_is_bounded_by_dropping_idle_sessions() {
    let idle = Duration::from_secs(900);
    let t0 = Instant::now();
    let tracker = IdleTracker::default();
    for i in 0..IdleTracker::CAPACITY {
        assert!(tracker.touch(&format!("s{i}"), t0, idle));
    }
    assert!(tracker.touch("fresh", t0 + idle, idle));
    assert_eq!(tracker.last.lock().unwrap().len(), IdleTracker::CAPACITY + 1, "none idle yet: all kept");
    assert!(tracker.touch("later", t0 + idle + MS, idle));
    assert_eq!(tracker.last.lock().unwrap().len(), 2, "the idle ones went");
}

#[test]
fn a_manual_clock_moves_only_when_told_and_for_every_clone() {
    let start = Instant::now();
    let clock = Clock::manual(start);
    let clone = clock.clone();
    assert_eq!(clock.now(), start);
    clone.advance(Duration::from_secs(5));
    assert_eq!(clock.now(), start + Duration::from_secs(5));
    assert!(Clock::System.now() >= start);
}

/// Issue 14, item 7: the rating API takes an optional respondent profile.
/// An unknown question or answer, or a value that is not a code, is
/// `422 invalid_profile` naming the question, never echoing the value, and
/// nothing is stored; part of the profile answered is stored as given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rating_api_takes_an_optional_profile_and_refuses_unknown_codes() {
    use crate::store::{CreateInput, EventInput};
    use loket_shared::Status;
    use loket_shared::respondent::Profile;
    let kiosk = Kiosk::new();
    let app = kiosk.serve();
    let applicant = loket_shared::request::Applicant {
        name: "Siti Aminah".parse().unwrap(),
        nik: "1271014101900003".parse().unwrap(),
        phone: None,
    };
    let created =
        kiosk.store.create_request(CreateInput { service: "SKD".parse().unwrap(), applicant }, None).await.unwrap();
    for to in [Status::InProgress, Status::Completed] {
        let step = EventInput { to, note: None, agency: None, by: STAFF.parse().unwrap() };
        kiosk.store.append_event(created.id, step, None).await.unwrap();
    }
    let scores = serde_json::json!({ "U1": 4, "U2": 3, "U3": 2, "U4": 4, "U5": 3, "U6": 1, "U7": 2, "U8": 3, "U9": 4 });
    let rate = |profile: serde_json::Value| {
        let app = app.clone();
        let body =
            serde_json::json!({ "scores": scores, "token": created.rating_token.to_string(), "profile": profile });
        async move {
            let req = Request::post(format!("/api/requests/{}/rating", created.id))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let resp = call(&app, req).await;
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    for (bad, names) in [
        (serde_json::json!({ "sex": "x-forged" }), "sex"),
        (serde_json::json!({ "age": 25 }), "age"),
        (serde_json::json!({ "education": ["sma"] }), "education"),
        (serde_json::json!({ "nik": "1271014101900003" }), "occupation"),
        (serde_json::json!({ "Sex": "p" }), "sex"),
    ] {
        let (status, text) = rate(bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {text}");
        assert!(text.contains("\"invalid_profile\"") && text.contains(names), "{bad}: {text}");
        assert!(!text.contains("x-forged") && !text.contains("1271014101900003"), "echoed: {text}");
    }
    let (view, _) = kiosk.store.request(&created.id).unwrap().unwrap();
    assert!(view.ratings.is_empty(), "a refused profile stores nothing");

    // Part of it answered, the rest left out or null.
    let (status, text) = rate(serde_json::json!({ "sex": "p", "age": "gt50", "education": null })).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (view, _) = kiosk.store.request(&created.id).unwrap().unwrap();
    assert_eq!(view.ratings[0].profile, Profile::from_pairs([("sex", "p"), ("age", "gt50")]).unwrap());

    // The staff view of the request says it was rated, never the scores
    // (issue 15, item 6) or the profile.
    let token = login(&app).await;
    let req = Request::get(format!("/api/staff/requests/{}", created.id))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = call(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let detail: serde_json::Value =
        serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(detail["rated"], true);
    assert!(detail.get("rating").is_none() && !detail.to_string().contains("gt50"), "{detail}");
}

async fn body_text(resp: Response) -> String {
    String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap()
}

/// Issue 15, item 1: the citizen listener has no staff page, not even
/// with a live session cookie (a browser sends a host's cookies to every
/// port), and no link to one; the staff listener has the console. The
/// citizen screen's reset clears only the citizen's cookies. Issue 15,
/// item 7: unknown URLs are pages for browsers, JSON for the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_citizen_listener_serves_no_staff_page_and_its_reset_spares_the_console() {
    let kiosk = Kiosk::new();
    let apps = kiosk.serve_both();
    let token = login(&apps.citizen).await;
    assert_eq!(console(&apps, &token).await, Ok(StatusCode::OK), "the console is on the staff listener");
    for path in ["/staf", "/staf/masuk", "/staf/permohonan/0190a7f0-0000-7000-8000-000000000000", "/staf/keluar"] {
        let req = Request::get(path)
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, format!("loket_staff={token}; loket_staff_csrf=00"));
        let resp = call(&apps.citizen, req.body(Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let html = body_text(resp).await;
        assert!(html.contains("error-page") && !html.contains("Rina") && !html.contains("logout"), "{path}: {html}");
    }
    let home = page_text(&apps.citizen, "/").await;
    assert!(!home.contains("/staf"), "the citizen home links to the console");
    let to_console = call(&apps.staff, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(to_console.headers()[header::LOCATION], "/staf");
    // The staff listener has no citizen screen and no API.
    for path in ["/layanan", "/cek", "/api/services", "/mulai-ulang"] {
        let resp = call(&apps.staff, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path} on the staff listener");
    }

    // Unknown URLs: a page for a browser, JSON for the API and for clients
    // that do not ask for HTML, on both listeners.
    for app in [&apps.citizen, &apps.staff] {
        let page = Request::get("/tidak-ada").header(header::ACCEPT, "text/html,application/xhtml+xml;q=0.9");
        let resp = call(app, page.body(Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        let html = body_text(resp).await;
        assert!(html.contains("data-code=\"not_found\"") && html.contains("<h1"), "{html}");
        for req in [Request::get("/tidak-ada"), Request::get("/api/tidak-ada").header(header::ACCEPT, "text/html")] {
            let resp = call(app, req.body(Body::empty()).unwrap()).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND);
            let v: serde_json::Value = serde_json::from_str(&body_text(resp).await).unwrap();
            assert_eq!(v["error"]["code"], "not_found");
        }
    }
    // A citizen's error page shows no code; the console's does, for the helpdesk.
    let citizen =
        call(&apps.citizen, Request::get("/x").header(header::ACCEPT, "text/html").body(Body::empty()).unwrap());
    assert!(!body_text(citizen.await).await.contains(">not_found<"));
    let staff = call(&apps.staff, Request::get("/x").header(header::ACCEPT, "text/html").body(Body::empty()).unwrap());
    assert!(body_text(staff.await).await.contains("not_found"));

    // The reset forgets the citizen's cookies, none of the console's.
    let reset = Request::get("/mulai-ulang").header(
        header::COOKIE,
        format!(
            "loket_staff={token}; loket_staff_csrf=1; loket_staff_lang=en; loket_csrf=2; loket_lang=en; loket_receipt=3"
        ),
    );
    let resp = call(&apps.citizen, reset.body(Body::empty()).unwrap()).await;
    let cleared: Vec<String> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split('=').next().unwrap().to_owned())
        .collect();
    for citizen in ["loket_csrf", "loket_lang", "loket_receipt"] {
        assert!(cleared.iter().any(|c| c == citizen), "{citizen} kept: {cleared:?}");
    }
    assert!(!cleared.iter().any(|c| c.starts_with("loket_staff")), "the reset touched the console: {cleared:?}");
    assert_eq!(console(&apps, &token).await, Ok(StatusCode::OK), "the clerk is still signed in");
}

/// Issue 15, item 2: the steps whose note the citizen reads need one,
/// without personal numbers or the applicant's name; others need none.
#[test]
fn a_reason_is_required_where_the_citizen_reads_it_and_holds_nothing_personal() {
    use loket_shared::Status::*;
    let name = "Siti Aminah";
    let cases: &[(loket_shared::Status, Option<&str>, Result<(), &str>)] = &[
        (InProgress, None, Ok(())),
        (Completed, None, Ok(())),
        (HandedOff, None, Ok(())),
        (Rejected, None, Err("reason_required")),
        (Rejected, Some("   "), Err("reason_required")),
        (Cancelled, None, Err("reason_required")),
        (WaitingCitizen, None, Err("reason_required")),
        (Rejected, Some("Surat pengantar RT/RW belum ada"), Ok(())),
        (WaitingCitizen, Some("Fotokopi KK 2 lembar"), Ok(())),
        (Rejected, Some("Nomor surat 470/123/2026"), Ok(())),
        (Rejected, Some("NIK 1271014808910137 tidak cocok"), Err("reason_personal_data")),
        (Rejected, Some("hubungi 0812 3456 7890"), Err("reason_personal_data")),
        (Rejected, Some("KK 1271-0101-0190-0001 salah"), Err("reason_personal_data")),
        (Cancelled, Some("dibatalkan oleh siti aminah sendiri"), Err("reason_personal_data")),
        (InProgress, Some("NIK 1271014808910137 dicek"), Ok(())),
    ];
    for (to, note, want) in cases {
        let got = super::check_step_note(*to, *note, name).map_err(|e| e.code);
        assert_eq!(got, *want, "{to:?} {note:?}");
    }
}

/// Issue 15, items 2 and 6, through the router: the ticket answer carries
/// the reason (numbers and the applicant's name blanked out, as a central
/// note was not checked here), the staff detail says that a request was
/// rated and never how.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_carries_the_reason_and_the_staff_detail_no_rating() {
    use crate::store::{CreateInput, EventInput, RatingInput};
    let kiosk = Kiosk::new();
    let app = kiosk.serve();
    let applicant = loket_shared::request::Applicant {
        name: "Siti Aminah".parse().unwrap(),
        nik: "1271014808910137".parse().unwrap(),
        phone: None,
    };
    let created =
        kiosk.store.create_request(CreateInput { service: "SKD".parse().unwrap(), applicant }, None).await.unwrap();
    let step = |to, note: Option<&str>| EventInput {
        to,
        note: note.map(str::to_owned),
        agency: None,
        by: STAFF.parse().unwrap(),
    };
    kiosk.store.append_event(created.id, step(loket_shared::Status::InProgress, None), None).await.unwrap();
    let long = format!("Data Siti Aminah (NIK 1271014808910137) tidak cocok. {}", "x".repeat(400));
    kiosk.store.append_event(created.id, step(loket_shared::Status::Rejected, Some(&long)), None).await.unwrap();
    let uri = format!("/api/tickets/{}", created.ticket.as_str().to_lowercase().replace('-', " ").replace(' ', "%20"));
    let resp = call(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK, "a ticket as typed");
    let v: serde_json::Value = serde_json::from_str(&body_text(resp).await).unwrap();
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.starts_with("Data ••• (NIK ••••••••••••••••) tidak cocok."), "{reason}");
    assert_eq!(reason.chars().count(), super::REASON_SHOWN_MAX_CHARS + 1, "bounded, with an ellipsis");

    let rating = RatingInput {
        scores: loket_shared::skm::Scores::new([1, 2, 3, 4, 1, 2, 3, 4, 1]).unwrap(),
        comment: Some("loket dua lambat".into()),
        token: created.rating_token,
        profile: loket_shared::respondent::Profile::default(),
    };
    kiosk.store.rate(created.id, rating, None).await.unwrap();
    let token = login(&app).await;
    let req = Request::get(format!("/api/staff/requests/{}", created.id))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty());
    let detail = body_text(call(&app, req.unwrap()).await).await;
    let v: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(v["rated"], true);
    assert!(v.get("rating").is_none() && !detail.contains("loket dua lambat"), "{detail}");
}

// ------------------------------------------------------------------ complaints (issue 16)

async fn json_call(app: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = call(app, req).await;
    let status = resp.status();
    let text = body_text(resp).await;
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

fn post_json(uri: &str, body: &serde_json::Value) -> Request<Body> {
    Request::post(uri).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
}

/// Issue 16, item 4: `POST /api/complaints` answers once the complaint is
/// durable, once per idempotency key; each refusal names its field with a
/// stable code and never echoes the value; `GET /api/complaints/{ticket}`
/// finds it however typed and tells nothing personal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complaint_api_files_once_refuses_by_field_and_reads_back_nothing_personal() {
    let kiosk = Kiosk::new();
    let app = kiosk.serve();
    let body = serde_json::json!({
        "about": { "kind": "staff", "staff": STAFF },
        "complainant": { "name": "Siti Aminah", "nik": "1271014107850003", "phone": "0812 3456 7890" },
        "text": "Petugas meminta uang rokok.\r\nTidak ada kuitansi.",
    });
    let with_key = |body: &serde_json::Value| {
        Request::post("/api/complaints")
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "pengaduan-0001")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, first) = json_call(&app, with_key(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let ticket = first["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("ADU-K07-"), "{ticket}");
    assert_eq!(first["state"], "received");
    let (status, again) = json_call(&app, with_key(&body)).await;
    assert_eq!((status, &again), (StatusCode::CREATED, &first), "a retry gets the first answer");
    assert_eq!(kiosk.store.complaints(10).unwrap().len(), 1);
    let (view, _) = kiosk.store.complaint(&ticket.parse().unwrap()).unwrap().unwrap();
    assert_eq!(view.text, "Petugas meminta uang rokok.\nTidak ada kuitansi.", "line breaks as \\n");
    assert_eq!(view.complainant.unwrap().nik.unwrap().as_str(), "1271014107850003");

    let typed = ticket.to_lowercase().replace('-', "%20");
    let (status, v) =
        json_call(&app, Request::get(format!("/api/complaints/{typed}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["ticket"].as_str(), v["state"].as_str(), v["about"].as_str()),
        (Some(&*ticket), Some("received"), Some("staff"))
    );
    assert!(v["answers"].as_array().unwrap().is_empty() && v["class"].is_null() && v["due_at"].is_null(), "{v}");
    let text = v.to_string();
    for personal in ["Siti", "1271014107850003", "3456", STAFF, "Rina", "rokok"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    // The number without its prefix finds it too (never a request's).
    let bare = ticket.trim_start_matches("ADU-");
    let (status, _) =
        json_call(&app, Request::get(format!("/api/complaints/{bare}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        json_call(&app, Request::get(format!("/api/tickets/{ticket}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a complaint ticket is no request ticket");
    let (status, v) =
        json_call(&app, Request::get("/api/complaints/ADU-K07-0101-999").body(Body::empty()).unwrap()).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    let hostile = "<script>alert(1)</script>";
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!({ "text": "x" }), "missing_field"),
        (serde_json::json!({ "about": {}, "text": "x" }), "missing_field"),
        (serde_json::json!({ "about": { "kind": hostile }, "text": "x" }), "invalid_about"),
        (serde_json::json!({ "about": { "kind": "request" }, "text": "x" }), "missing_field"),
        (serde_json::json!({ "about": { "kind": "request", "ticket": hostile }, "text": "x" }), "invalid_ticket"),
        (serde_json::json!({ "about": { "kind": "service", "service": hostile }, "text": "x" }), "unknown_service"),
        (serde_json::json!({ "about": { "kind": "service", "service": "XYZ" }, "text": "x" }), "unknown_service"),
        (
            serde_json::json!({ "about": { "kind": "staff", "staff": "199005232022212019" }, "text": "x" }),
            "unknown_staff",
        ),
        (serde_json::json!({ "about": { "kind": "staff", "staff": hostile }, "text": "x" }), "unknown_staff"),
        (serde_json::json!({ "about": { "kind": "general" }, "complainant": {}, "text": "x" }), "missing_field"),
        (
            serde_json::json!({ "about": { "kind": "general" }, "complainant": { "name": hostile }, "text": "x" }),
            "invalid_name",
        ),
        (
            serde_json::json!({ "about": { "kind": "general" }, "complainant": { "name": "Budi", "nik": "1271019999990001" }, "text": "x" }),
            "invalid_nik",
        ),
        (
            serde_json::json!({ "about": { "kind": "general" }, "complainant": { "name": "Budi", "phone": hostile }, "text": "x" }),
            "invalid_phone",
        ),
        (serde_json::json!({ "about": { "kind": "general" }, "text": "   " }), "missing_field"),
        (serde_json::json!({ "about": { "kind": "general" }, "text": "y".repeat(2001) }), "invalid_text"),
        (serde_json::json!({ "about": { "kind": "general" }, "text": "bel\u{7}" }), "invalid_text"),
    ];
    for (bad, code) in cases {
        let (status, v) = json_call(&app, post_json("/api/complaints", &bad)).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{bad}");
        assert!(!v.to_string().contains("script") && !v.to_string().contains("1271019999990001"), "echoed: {v}");
    }
    let (status, _) = json_call(
        &app,
        post_json(
            "/api/complaints",
            &serde_json::json!({ "about": { "kind": "general" }, "text": "x", "status": "closed" }),
        ),
    )
    .await;
    assert!(status.is_client_error(), "unknown fields are refused");
    assert_eq!(kiosk.store.complaints(10).unwrap().len(), 1, "nothing refused was stored");

    // Anonymous about a request of this office, by its ticket as typed.
    let applicant = loket_shared::request::Applicant {
        name: "Siti Aminah".parse().unwrap(),
        nik: "1271014101900003".parse().unwrap(),
        phone: None,
    };
    let created = kiosk
        .store
        .create_request(crate::store::CreateInput { service: "SKD".parse().unwrap(), applicant }, None)
        .await
        .unwrap();
    let loose = created.ticket.as_str().to_lowercase().replace('-', " ");
    let body =
        serde_json::json!({ "about": { "kind": "request", "ticket": loose }, "text": "Sudah 5 hari belum selesai" });
    let (status, v) = json_call(&app, post_json("/api/complaints", &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (view, _) = kiosk.store.complaint(&v["ticket"].as_str().unwrap().parse().unwrap()).unwrap().unwrap();
    assert_eq!(view.about, loket_shared::complaint::About::Request(created.ticket.clone()));
    assert!(view.complainant.is_none(), "anonymous without a complainant");
}

/// A browser as the kiosk sees one, without a socket: its cookies, and
/// what the last page gave.
struct Screen {
    app: Router,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Screen {
    fn new(app: Router) -> Screen {
        Screen { app, cookies: Default::default() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, req: axum::http::request::Builder, body: Body) -> (StatusCode, Option<String>, String) {
        let req = req.header(header::COOKIE, self.cookie_header()).header(header::ACCEPT, "text/html").body(body);
        let resp = call(&self.app, req.unwrap()).await;
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = resp.status();
        let location = resp.headers().get(header::LOCATION).map(|l| l.to_str().unwrap().to_owned());
        (status, location, body_text(resp).await)
    }

    async fn get(&mut self, uri: &str) -> (StatusCode, Option<String>, String) {
        self.send(Request::get(uri), Body::empty()).await
    }

    async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> (StatusCode, Option<String>, String) {
        let body = form.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect::<Vec<_>>().join("&");
        let req = Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(req, Body::from(body)).await
    }
}

fn url_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") }).collect()
}

fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a form with a CSRF token");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The whole start tag that contains `needle`.
fn tag_with<'a>(html: &'a str, needle: &str) -> &'a str {
    let at = html.find(needle).unwrap_or_else(|| panic!("{needle} in the page"));
    let start = html[..at].rfind('<').unwrap();
    &html[start..at + html[at..].find('>').unwrap()]
}

/// The `data-code` of the error paragraph of `field` (`<p … id="{field}-error" data-code=…>`).
fn field_code(html: &str, field: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{field}-error\""))?;
    let tag = &html[at..at + html[at..].find('>')?];
    let code = tag.split("data-code=\"").nth(1)?;
    Some(code[..code.find('"')?].to_owned())
}

/// Issue 16, item 1: the complaint screens, post/redirect/get all the
/// way: the check redirects to the confirmation, filing to the receipt,
/// Back never files again; CSRF on the form; hostile text shown as text;
/// staff chosen by name (no NIP on the page); errors by field with their
/// codes; the receipt's ticket found by the status check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complaint_screens_post_redirect_get_and_show_text_as_text() {
    let kiosk = Kiosk::new();
    let mut s = Screen::new(kiosk.serve());
    let (_, _, home) = s.get("/").await;
    assert!(home.contains("id=\"start-complaint\"") && home.contains("id=\"footer-complaint\""), "the entries");
    let (status, _, form) = s.get("/pengaduan").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(">Rina<") && !form.contains(STAFF), "staff by name, never by NIP");
    assert!(tag_with(&form, "id=\"anonymous\"").contains(" checked"), "anonymous by default");
    assert!(!tag_with(&form, "id=\"named\"").contains(" checked"));
    let csrf = csrf_of(&form);

    // Without this browser's token: refused, nothing kept.
    let (status, _, _) = s.post("/pengaduan", &[("csrf", "00"), ("kind", "general"), ("text", "x")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Every field wrong at once: each says so, with its code.
    let (status, _, page) = s
        .post(
            "/pengaduan",
            &[
                ("csrf", &csrf),
                ("step", "periksa"),
                ("kind", "staff"),
                ("staff", "bukan-token"),
                ("named", "1"),
                ("name", ""),
                ("nik", "123"),
                ("text", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_code(&page, "staff").as_deref(), Some("unknown_staff"));
    assert_eq!(field_code(&page, "name").as_deref(), Some("missing_field"));
    assert_eq!(field_code(&page, "nik").as_deref(), Some("invalid_nik"));
    assert_eq!(field_code(&page, "text").as_deref(), Some("missing_field"));
    assert!(page.contains("id=\"complaint-alert\""));

    // About a staff member, chosen by name; hostile text.
    let token = {
        let at = form.find(">Rina<").unwrap();
        let before = &form[..at];
        let v = &before[before.rfind("value=\"").unwrap() + 7..];
        v[..v.find('"').unwrap()].to_owned()
    };
    let hostile = "<script>alert('x')</script>\r\nLoket 2 & <b>tutup</b>";
    let (status, to, _) = s
        .post(
            "/pengaduan",
            &[
                ("csrf", &csrf),
                ("step", "periksa"),
                ("kind", "staff"),
                ("staff", &token),
                ("named", ""),
                ("text", hostile),
            ],
        )
        .await;
    assert_eq!((status, to.as_deref()), (StatusCode::SEE_OTHER, Some("/pengaduan/periksa")));
    let (status, _, confirm) = s.get("/pengaduan/periksa").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        confirm.contains("&lt;script&gt;alert('x')&lt;/script&gt;\nLoket 2 &amp; &lt;b&gt;tutup&lt;/b&gt;"),
        "{confirm}"
    );
    assert!(!confirm.contains("<script>alert") && !confirm.contains("<b>tutup"));
    assert!(confirm.contains("id=\"confirm-anonymous\"") && confirm.contains("Petugas: Rina"));
    // "Ubah" is the form again, as typed.
    let (_, _, again) = s.get("/pengaduan").await;
    assert!(again.contains("&lt;script&gt;") && again.contains("selected"), "kept for editing");

    let (status, to, _) = s.post("/pengaduan", &[("csrf", &csrf), ("step", "kirim")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = to.unwrap();
    assert!(to.starts_with("/tiket/ADU-K07-") && to.ends_with("?baru=1"), "{to}");
    let ticket = to.trim_start_matches("/tiket/").trim_end_matches("?baru=1").to_owned();
    let (status, _, receipt) = s.get(&to).await;
    assert_eq!(status, StatusCode::OK);
    assert!(receipt.contains(&format!("id=\"ticket-number\">{ticket}<")) && receipt.contains("<svg"), "ticket and QR");
    assert!(receipt.contains("data-state=\"received\""));
    for personal in ["Rina", "alert(", "tutup"] {
        assert!(!receipt.contains(personal), "{personal} on the receipt");
    }
    // Back to the confirmation, or the same "Kirim" again: the ticket, not a second complaint.
    let (_, to_again, _) = s.post("/pengaduan", &[("csrf", &csrf), ("step", "kirim")]).await;
    assert_eq!(to_again.as_deref(), Some(format!("/tiket/{ticket}").as_str()));
    let (_, back, _) = s.get("/pengaduan/periksa").await;
    assert_eq!(back.as_deref(), Some(format!("/tiket/{ticket}").as_str()));
    assert_eq!(kiosk.store.complaints(10).unwrap().len(), 1);
    let (view, _) = kiosk.store.complaint(&ticket.parse().unwrap()).unwrap().unwrap();
    assert_eq!(view.about, loket_shared::complaint::About::Staff(STAFF.parse().unwrap()));
    assert_eq!(view.text, "<script>alert('x')</script>\nLoket 2 & <b>tutup</b>");

    // The status check finds it however typed; in English too.
    let typed = ticket.to_lowercase().replace('-', "+");
    let (status, to, _) = s.get(&format!("/cek?tiket={typed}")).await;
    assert_eq!((status, to.as_deref()), (StatusCode::SEE_OTHER, Some(format!("/tiket/{ticket}").as_str())));
    s.cookies.insert("loket_lang".into(), "en".into());
    let (_, _, status_page) = s.get(&format!("/tiket/{ticket}")).await;
    assert!(status_page.contains("Complaint status") && status_page.contains("Received"), "{status_page}");
    let (_, _, form_en) = s.get("/pengaduan").await;
    assert!(form_en.contains("Make a complaint") && form_en.contains("Anonymous"));
    // The idle reset forgets the draft.
    let (_, _, _) = s.get("/mulai-ulang").await;
    assert!(!s.cookies.contains_key("loket_complaint"));
}

/// Issue 16, item 2: what the status shows once the server's steps came
/// back: the class and deadline, the extension with its notice, the
/// LAPOR! number, the answer; never the complainant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_shows_the_central_steps_and_nothing_personal() {
    use loket_shared::complaint::{self, Class, Step, StepKind, Unit};
    let kiosk = Kiosk::new();
    let apps = kiosk.serve_both();
    let app = apps.citizen.clone();
    let body = serde_json::json!({
        "about": { "kind": "office" },
        "complainant": { "name": "Siti Aminah", "nik": "1271014107850003" },
        "text": "Ruang tunggu panas",
    });
    let (_, v) = json_call(&app, post_json("/api/complaints", &body)).await;
    let ticket: loket_shared::ComplaintTicket = v["ticket"].as_str().unwrap().parse().unwrap();
    let (view, derived) = kiosk.store.complaint(&ticket).unwrap().unwrap();
    let mut doc = {
        let db = kiosk.store.path().to_path_buf();
        let conn = rusqlite::Connection::open(db).unwrap();
        crate::store::load_doc(&conn, &view.id.to_string()).unwrap().unwrap().1
    };
    let heads = doc.get_heads();
    let at = view.created_at_ms;
    let central = |id: &str, kind, minutes: i64, parents: &[&str]| Step {
        id: id.into(),
        hlc: loket_shared::Hlc { wall_ms: (at + minutes * 60_000) as u64, counter: 0 },
        node: "c0c0".into(),
        at_ms: at + minutes * 60_000,
        by: "petugas_pengaduan".into(),
        kind,
        class: None,
        unit: None,
        days: None,
        lapor: None,
        text: None,
        parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        seal: Some("ab".repeat(32)),
    };
    let file = derived.frontier[0].clone();
    let steps = [
        Step {
            class: Some(Class::TidakBerkadarPengawasan),
            unit: Some(Unit::Kelurahan("12.71.01.1001".parse().unwrap())),
            ..central("s-reg", StepKind::Register, 5, &[file.as_str()])
        },
        Step {
            days: Some(7),
            text: Some("Menunggu pemeriksaan AC".into()),
            ..central("s-ext", StepKind::Extend, 10, &["s-reg"])
        },
        Step { lapor: Some("LAPOR-5512345".into()), ..central("s-fwd", StepKind::Forward, 15, &["s-ext"]) },
        Step { text: Some("AC <i>sudah</i> diperbaiki.".into()), ..central("s-ans", StepKind::Answer, 20, &["s-fwd"]) },
    ];
    doc.set_actor(automerge::ActorId::from([0xc0; 16]));
    for step in &steps {
        complaint::append_step(&mut doc, step).unwrap();
    }
    doc.commit();
    let pulled = loket_shared::sync::PullDoc {
        doc: view.id.to_bytes(),
        doc_type: loket_shared::sync::DocType::Complaint,
        changes: doc.save_after(&heads),
        heads: doc.get_heads().iter().map(|h| h.0).collect(),
    };
    let response = loket_shared::sync::SyncResponse {
        version: loket_shared::sync::PROTOCOL_VERSION,
        acks: Vec::new(),
        pull: vec![pulled],
        pull_next: 1,
        more: false,
        rewind_acked: None,
        summaries: Vec::new(),
    };
    let plan = kiosk.store.plan_push(0).unwrap();
    assert_eq!(kiosk.store.apply_sync(plan, response).await.unwrap().pulled, 1);

    let (status, v) =
        json_call(&app, Request::get(format!("/api/complaints/{ticket}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["state"], "answered");
    assert_eq!(v["class"], "tidak_berkadar_pengawasan");
    assert_eq!(v["extension"]["days"], 7);
    assert_eq!(v["lapor"], "LAPOR-5512345");
    assert_eq!(v["answers"][0]["text"], "AC <i>sudah</i> diperbaiki.");
    assert!(v["due_at"].is_string(), "{v}");
    let page = page_text(&app, &format!("/tiket/{ticket}")).await;
    for shown in [
        "data-state=\"answered\"",
        "data-class=\"tidak_berkadar_pengawasan\"",
        "Menunggu pemeriksaan AC",
        "LAPOR-5512345",
        "AC &lt;i&gt;sudah&lt;/i&gt; diperbaiki.",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    for personal in ["Siti", "1271014107850003", "Ruang tunggu"] {
        assert!(!page.contains(personal) && !v.to_string().contains(personal), "{personal}");
    }
    // The console lists it, read-only, naming no complainant.
    let token = login(&app).await;
    let req = Request::get("/staf/pengaduan").header(header::COOKIE, format!("loket_staff={token}"));
    let list = body_text(call(&apps.staff, req.body(Body::empty()).unwrap()).await).await;
    assert!(list.contains(&format!("data-ticket=\"{ticket}\" data-state=\"answered\"")), "{list}");
    assert!(list.contains("Tidak berkadar pengawasan") && !list.contains("Siti") && !list.contains("Ruang tunggu"));
}

/// Issue 16, item 7: an agency's result reaches the citizen's status
/// check; a letter number shows as written, a KK number only by its last
/// four digits, and nothing shows while a conflict waits.
#[test]
fn agency_results_show_on_the_status_check_with_long_numbers_blanked() {
    use loket_shared::workflow::{Event, EventKind, fold};
    use loket_shared::{Hlc, Status};
    let ev = |id: &str, wall: u64, to: Status, agency: Option<&str>, result: Option<&str>, parents: &[&str]| Event {
        id: id.into(),
        hlc: Hlc { wall_ms: wall, counter: 0 },
        node: "aa".into(),
        at_ms: i64::try_from(wall).unwrap(),
        by: if agency.is_some() { "agency:DISDUKCAPIL:dukcapil".into() } else { STAFF.into() },
        kind: if parents.is_empty() { EventKind::Create } else { EventKind::Transition },
        from: None,
        to,
        note: Some("alasan".into()),
        agency: agency.map(Into::into),
        waiting: Vec::new(),
        result_ref: result.map(Into::into),
        parents: parents.iter().map(|p| p.to_string()).collect(),
        seal: None,
    };
    let dk = Some("DISDUKCAPIL");
    let mut events = vec![
        ev("a", 1, Status::Submitted, None, None, &[]),
        ev("b", 2, Status::InProgress, None, None, &["a"]),
        ev("c", 3, Status::HandedOff, dk, None, &["b"]),
        ev("d", 4, Status::InProgress, dk, None, &["c"]),
        ev("e", 5, Status::InProgress, None, Some("KK 1271-0123-4567-0001, surat 470/12/2026"), &["d"]),
    ];
    let derived = fold(&events).unwrap();
    assert_eq!(derived.results.len(), 1, "{derived:?}");
    assert_eq!(
        super::citizen_results(&derived),
        vec![("DISDUKCAPIL".to_owned(), "KK ••••-••••-••••-0001, surat 470/12/2026".to_owned())]
    );
    // Completed and cancelled at once at two kiosks: a conflict; the
    // result waits with it.
    events.push(ev("f", 6, Status::Completed, None, None, &["e"]));
    events.push(ev("g", 7, Status::Cancelled, None, None, &["e"]));
    let derived = fold(&events).unwrap();
    assert!(derived.has_conflict());
    assert!(super::citizen_results(&derived).is_empty());
}
