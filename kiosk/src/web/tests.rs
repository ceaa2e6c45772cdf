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

use super::{AppState, Clock, IdleTracker, router};
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
        let sync = Arc::new(SyncClient::new(self.store.clone()).unwrap());
        let mut state = AppState::new(self.store.clone(), sync, &self.config, false);
        state.clock = self.clock.clone();
        router(state, self.config.body_bytes_max)
    }
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

    for uri in ["/cek", "/nilai"] {
        let html = page_text(&app, uri).await;
        let hint = &html[html.find("id=\"tiket-hint\"").expect(uri)..];
        let hint = &hint[..hint.find("</p>").unwrap()];
        assert!(hint.contains("K07-1128-023"), "{uri}: {hint}");
        let example = "K07-1128-023".parse::<loket_shared::Ticket>().unwrap();
        assert_eq!(example.as_str(), "K07-1128-023", "the example parses as a ticket");
    }
}

/// The console's queue page with the session cookie: 200, or where it
/// sends the browser instead.
async fn console(app: &Router, token: &str) -> Result<StatusCode, String> {
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
    let app = kiosk.serve();
    let token = login(&app).await;
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK));

    kiosk.clock.advance(limit - MS);
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK), "before the limit");
    kiosk.clock.advance(limit);
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK), "at the limit, counted from the last activity");
    kiosk.clock.advance(limit);
    assert_eq!(console(&app, &token).await, Ok(StatusCode::OK), "activity keeps extending it");

    kiosk.clock.advance(limit / 2);
    let health = call(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(health.status(), StatusCode::OK);
    kiosk.clock.advance(limit - limit / 2 + MS);
    assert_eq!(console(&app, &token).await, Err("/staf/masuk?diam=1".into()), "one instant past the limit");
    assert_eq!(console(&app, &token).await, Err("/staf/masuk?habis=1".into()), "the session row is gone");
    let api = Request::get("/api/staff/requests").header(header::AUTHORIZATION, format!("Bearer {token}"));
    assert_eq!(call(&app, api.body(Body::empty()).unwrap()).await.status(), StatusCode::UNAUTHORIZED);

    // Other sessions are not affected; a new login works at once.
    let again = login(&app).await;
    assert_eq!(console(&app, &again).await, Ok(StatusCode::OK));
}

/// The idle clocks live in memory: a restarted kiosk times every session
/// from its first request after the restart, not from before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_starts_the_idle_clock_afresh() {
    let kiosk = Kiosk::new();
    let limit = kiosk.config.staff_idle_timeout;
    let before = kiosk.serve();
    let token = login(&before).await;
    assert_eq!(console(&before, &token).await, Ok(StatusCode::OK));
    kiosk.clock.advance(limit * 3);

    let after = kiosk.serve();
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
    let app = kiosk.serve();
    let token = login(&app).await;
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
